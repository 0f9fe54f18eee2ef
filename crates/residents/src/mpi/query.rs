//! Queries over the index: `Patient/$match` (who is this?) and the IHE PIXm cross-reference
//! (which identifiers does this person have elsewhere?). Both read committed data.

use caller::Caller;
use repository::{Repository, RepositoryError, parse_stored};
use serde_json::Value;
use store::VersionRecord;

use super::Mpi;
use super::hook::tag_criteria;
use super::person::PersonState;
use crate::IdentityError;
use crate::blocking::blocking_keys;
use crate::model::{Decision, Verdict};
use crate::record::Record;

/// The match-grade codes of FHIR's `$match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchGrade {
    Certain,
    Probable,
    Possible,
    CertainlyNot,
}

impl MatchGrade {
    pub fn code(self) -> &'static str {
        match self {
            MatchGrade::Certain => "certain",
            MatchGrade::Probable => "probable",
            MatchGrade::Possible => "possible",
            MatchGrade::CertainlyNot => "certainly-not",
        }
    }
}

/// One resident found by `$match`: the Person, its Patients, the score.
#[derive(Debug, Clone)]
pub struct MatchResult {
    pub person: VersionRecord,
    pub patients: Vec<VersionRecord>,
    pub verdict: Verdict,
    pub grade: MatchGrade,
}

/// What PIXm answers for a source identifier.
#[derive(Debug, Clone, PartialEq)]
pub struct PixResult {
    /// (system, value) of every other identifier of the same person.
    pub identifiers: Vec<(String, String)>,
    /// The other Patients of the same person, as `Patient/id`.
    pub patients: Vec<String>,
    /// The master record, as `Person/id`.
    pub person: Option<String>,
}

impl Mpi {
    /// `Patient/$match`: the residents `patient` may be, best first. With
    /// `only_certain`, only those the index would link automatically.
    pub fn find_matches(
        &self,
        repository: &Repository,
        ctx: &Caller,
        patient: &Value,
        only_certain: bool,
        count: usize,
    ) -> Result<Vec<MatchResult>, IdentityError> {
        let demographics = Record::from_fhir(patient, &self.config.systems);
        if demographics.names.is_empty()
            && demographics.identifiers.is_empty()
            && demographics.phones.is_empty()
        {
            return Err(IdentityError::invalid(
                "the Patient to match needs at least a name, an identifier or a phone number",
                Some("Patient"),
            ));
        }
        let keys = blocking_keys(&demographics);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut found: Vec<VersionRecord> = Vec::new();
        for criteria in tag_criteria(&keys) {
            for record in repository.find(ctx, "Person", &[criteria], self.config.max_candidates)? {
                if !found.iter().any(|f| f.row == record.row) {
                    found.push(record);
                }
            }
        }
        let matcher = self.matcher();
        let mut results = Vec::new();
        for person in found {
            let resource = parse_stored(&person)?;
            let state = PersonState::from_resource(&person.id, person.version, &resource);
            if !state.active {
                continue;
            }
            let verdict = matcher.decide(
                &demographics,
                &Record::from_fhir(&resource, &self.config.systems),
            );
            let grade = match verdict.decision {
                Decision::AutoLink => MatchGrade::Certain,
                Decision::Review => MatchGrade::Probable,
                Decision::NoLink if verdict.score.probability >= 0.01 => MatchGrade::Possible,
                Decision::NoLink => MatchGrade::CertainlyNot,
            };
            if grade == MatchGrade::CertainlyNot || (only_certain && grade != MatchGrade::Certain) {
                continue;
            }
            let mut patients = Vec::new();
            for link in &state.links {
                if let Some(record) = repository.reader(ctx).current("Patient", &link.patient)?
                    && !record.is_deleted()
                {
                    patients.push(record);
                }
            }
            results.push(MatchResult {
                person,
                patients,
                verdict,
                grade,
            });
        }
        results.sort_by(|a, b| {
            b.verdict
                .score
                .probability
                .total_cmp(&a.verdict.score.probability)
        });
        // FHIR: with onlyCertainMatches, return one certain match or none at all.
        if only_certain && results.len() > 1 {
            results.clear();
        }
        results.truncate(count.max(1));
        Ok(results)
    }

    /// PIXm: every identifier the person known by `system|value` has, optionally only in
    /// `target_systems`. `NotFound` when no Patient carries the source identifier.
    pub fn cross_reference(
        &self,
        repository: &Repository,
        ctx: &Caller,
        system: &str,
        value: &str,
        target_systems: &[String],
    ) -> Result<PixResult, IdentityError> {
        let sources = repository.find(
            ctx,
            "Patient",
            &[(
                "identifier".to_owned(),
                format!("{}|{}", escape(system), escape(value)),
            )],
            20,
        )?;
        if sources.is_empty() {
            return Err(IdentityError::NotFound(format!(
                "no Patient has the identifier {system}|{value}"
            )));
        }
        let mut result = PixResult {
            identifiers: Vec::new(),
            patients: Vec::new(),
            person: None,
        };
        let mut patients: Vec<String> = sources.iter().map(|s| s.id.clone()).collect();
        for source in &sources {
            let persons = repository.find(
                ctx,
                "Person",
                &[("link".to_owned(), format!("Patient/{}", source.id))],
                5,
            )?;
            for person in persons {
                let state =
                    PersonState::from_resource(&person.id, person.version, &parse_stored(&person)?);
                if !state.active {
                    continue;
                }
                result
                    .person
                    .get_or_insert_with(|| format!("Person/{}", person.id));
                for link in state.links {
                    if !patients.contains(&link.patient) {
                        patients.push(link.patient);
                    }
                }
            }
        }
        for id in &patients {
            let Some(record) = repository.reader(ctx).current("Patient", id)? else {
                continue;
            };
            if record.is_deleted() {
                continue;
            }
            if !sources.iter().any(|s| &s.id == id) {
                result.patients.push(format!("Patient/{id}"));
            }
            let patient = parse_stored(&record)?;
            for identifier in patient
                .get("identifier")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(s), Some(v)) = (
                    identifier.get("system").and_then(Value::as_str),
                    identifier.get("value").and_then(Value::as_str),
                ) else {
                    continue;
                };
                if (s == system && v == value)
                    || result.identifiers.iter().any(|(x, y)| x == s && y == v)
                {
                    continue;
                }
                if target_systems.is_empty() || target_systems.iter().any(|t| t == s) {
                    result.identifiers.push((s.to_owned(), v.to_owned()));
                }
            }
        }
        if !target_systems.is_empty() {
            // PIXm: targetId only when the request did not narrow to other systems.
            result.patients.clear();
        }
        Ok(result)
    }

    /// The Patients linked to the Person of Patient `id` (the Person itself first): what a
    /// resolved health code reveals.
    pub fn person_of_patient(
        &self,
        repository: &Repository,
        ctx: &Caller,
        patient: &str,
    ) -> Result<Option<(VersionRecord, Vec<VersionRecord>)>, IdentityError> {
        let persons = repository.find(
            ctx,
            "Person",
            &[("link".to_owned(), format!("Patient/{patient}"))],
            5,
        )?;
        for person in persons {
            let state =
                PersonState::from_resource(&person.id, person.version, &parse_stored(&person)?);
            if !state.active {
                continue;
            }
            let patients = self.patients_of(repository, ctx, &state)?;
            return Ok(Some((person, patients)));
        }
        Ok(None)
    }

    /// A Person and its Patients, by the Person's id.
    pub fn person_with_patients(
        &self,
        repository: &Repository,
        ctx: &Caller,
        person: &str,
    ) -> Result<Option<(VersionRecord, Vec<VersionRecord>)>, IdentityError> {
        let Some(record) = repository.reader(ctx).current("Person", person)? else {
            return Ok(None);
        };
        if record.is_deleted() {
            return Ok(None);
        }
        let state = PersonState::from_resource(&record.id, record.version, &parse_stored(&record)?);
        let patients = self.patients_of(repository, ctx, &state)?;
        Ok(Some((record, patients)))
    }

    fn patients_of(
        &self,
        repository: &Repository,
        ctx: &Caller,
        state: &PersonState,
    ) -> Result<Vec<VersionRecord>, RepositoryError> {
        let mut patients = Vec::new();
        for link in &state.links {
            if let Some(record) = repository.reader(ctx).current("Patient", &link.patient)?
                && !record.is_deleted()
            {
                patients.push(record);
            }
        }
        Ok(patients)
    }
}

/// Token search values escape `|`, `,` and `$` with a backslash.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '|' | ',' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
