//! Matching every Patient write inside its transaction: a new Patient is linked to the Person it
//! matches, or queued for review beside a Person of its own, or given a Person of its own; an
//! updated Patient refreshes its Person; a deleted one leaves it.

use std::sync::Arc;

use repository::{InTransaction, RepositoryError, WriteHook};
use serde_json::Value;
use store::VersionRecord;

use super::Mpi;
use super::person::{Link, PersonState, lock_keys, tag_keys};
use crate::blocking::blocking_keys;
use crate::model::{Decision, Verdict};
use crate::record::Record;

pub(super) struct MatchOnWrite(pub Arc<Mpi>);

impl WriteHook for MatchOnWrite {
    fn wants(&self, resource_type: &str) -> bool {
        resource_type == "Patient"
    }

    fn after_write(
        &self,
        tx: &mut InTransaction<'_, '_>,
        record: &VersionRecord,
        previous: Option<&VersionRecord>,
    ) -> Result<(), RepositoryError> {
        if let (Some(new), Some(old)) = (
            record.content.as_deref(),
            previous.and_then(|p| p.content.as_deref()),
        ) && same_demographics(new, old)
            && self.0.person_of(tx, &record.id)?.is_some()
        {
            // A contact, a flag, a general practitioner changed: nothing the master record
            // is made of, nothing it was matched on. No locks, no matching, no rewrite. (A
            // Patient written before the index was registered, with no Person yet, is
            // registered now, as before.)
            return Ok(());
        }
        self.0.on_patient_write(tx, record)
    }
}

/// Whether two stored Patients agree on everything a Person is built from and matched on
/// (the survivorship rules' keys, `person::LISTED` and `person::VOTED`).
fn same_demographics(a: &[u8], b: &[u8]) -> bool {
    let (Ok(a), Ok(b)) = (
        serde_json::from_slice::<Value>(a),
        serde_json::from_slice::<Value>(b),
    ) else {
        return false;
    };
    super::person::DEMOGRAPHICS
        .iter()
        .all(|key| a.get(key) == b.get(key))
}

/// A candidate master record and how well a record matches it.
pub(crate) struct Candidate {
    pub person: PersonState,
    pub verdict: Verdict,
}

impl Mpi {
    fn on_patient_write(
        &self,
        tx: &mut InTransaction<'_, '_>,
        record: &VersionRecord,
    ) -> Result<(), RepositoryError> {
        let mut existing = self.person_of(tx, &record.id)?;
        if let Some(person) = &existing {
            // The Person may be merged by a re-estimation meanwhile (`learning`), which takes
            // the locks of its keys: take them too, then read it again as it is now.
            let mut keys = tx
                .read("Person", &person.id)?
                .map(|(_, p)| tag_keys(&p))
                .unwrap_or_default();
            if let Some(content) = record.content.as_deref()
                && let Ok(patient) = serde_json::from_slice::<Value>(content)
            {
                keys.extend(blocking_keys(&Record::from_fhir(
                    &patient,
                    &self.config.systems,
                )));
            }
            lock_keys(tx, keys)?;
            existing = self.person_of(tx, &record.id)?;
        }
        if record.is_deleted() {
            if let Some(mut person) = existing {
                person.links.retain(|l| l.patient != record.id);
                person.active = !person.links.is_empty();
                self.write_person(tx, &person)?;
                self.audit(
                    tx,
                    "patient-deleted",
                    &[
                        &format!("Person/{}", person.id),
                        &format!("Patient/{}", record.id),
                    ],
                    None,
                )?;
            }
            return Ok(());
        }
        let patient = repository::parse_stored(record)?;
        let demographics = Record::from_fhir(&patient, &self.config.systems);
        if let Some(person) = existing {
            // The Patient changed: its Person's demographics follow. A Person of this Patient
            // alone may now be recognised as another resident's (an ID number added later):
            // it is then linked there, as a new registration would be. Links between several
            // Patients stay made; splitting them is unlink's job, with a person deciding.
            if person.links.len() == 1 && person.active {
                let keys = blocking_keys(&demographics);
                let best = self
                    .candidates_in(tx, &demographics, &keys)?
                    .into_iter()
                    .filter(|c| c.person.id != person.id)
                    .find(|c| c.verdict.decision == Decision::AutoLink);
                if let Some(best) = best {
                    let probability = best.verdict.score.probability;
                    let mut own = person;
                    own.links.clear();
                    own.active = false;
                    own.merged_into = Some(best.person.id.clone());
                    own.former = vec![record.id.clone()];
                    self.write_person(tx, &own)?;
                    let mut target = best.person;
                    target.links.push(Link::automatic(&record.id, probability));
                    self.write_person(tx, &target)?;
                    self.audit(
                        tx,
                        "auto-link",
                        &[
                            &format!("Person/{}", target.id),
                            &format!("Patient/{}", record.id),
                            &format!("Person/{}", own.id),
                        ],
                        Some(&format!("on update; match probability {probability:.4}")),
                    )?;
                    return Ok(());
                }
            }
            self.write_person(tx, &person)?;
            return Ok(());
        }
        // Two registrations of one new person at the same moment must not both create a
        // Person: whoever holds the keys first decides, the other then finds its Person.
        let mut keys = blocking_keys(&demographics);
        keys.sort_unstable_by_key(|k| *k as i64);
        lock_keys(tx, keys.clone())?;
        let candidates = self.candidates_in(tx, &demographics, &keys)?;
        let best = candidates
            .iter()
            .filter(|c| c.verdict.decision == Decision::AutoLink)
            .max_by(|a, b| {
                a.verdict
                    .score
                    .probability
                    .total_cmp(&b.verdict.score.probability)
            });
        if let Some(best) = best {
            let mut person = best.person.clone();
            let probability = best.verdict.score.probability;
            person.links.push(Link::automatic(&record.id, probability));
            self.write_person_adding(tx, &person, &patient)?;
            self.audit(
                tx,
                "auto-link",
                &[
                    &format!("Person/{}", person.id),
                    &format!("Patient/{}", record.id),
                ],
                Some(&format!("match probability {probability:.4}")),
            )?;
            // Others that also match well may be the same resident twice: a person decides.
            let linked_to = person.id.clone();
            for other in candidates
                .iter()
                .filter(|c| c.person.id != linked_to && c.verdict.decision != Decision::NoLink)
            {
                self.queue_review(tx, &record.id, &linked_to, other)?;
            }
            return Ok(());
        }
        let own = PersonState {
            id: String::new(),
            version: 0,
            active: true,
            links: vec![Link {
                patient: record.id.clone(),
                assurance: "level3",
                score: None,
            }],
            merged_into: None,
            former: Vec::new(),
        };
        let own_id = self.write_person(tx, &own)?;
        for candidate in candidates
            .iter()
            .filter(|c| c.verdict.decision == Decision::Review)
        {
            self.queue_review(tx, &record.id, &own_id, candidate)?;
        }
        Ok(())
    }

    /// The active Persons sharing a blocking key with `demographics`, scored.
    pub(crate) fn candidates_in(
        &self,
        tx: &mut InTransaction<'_, '_>,
        demographics: &Record,
        keys: &[u64],
    ) -> Result<Vec<Candidate>, RepositoryError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut found: Vec<VersionRecord> = Vec::new();
        for criteria in tag_criteria(keys) {
            for record in tx.search("Person", &[criteria], self.config.max_candidates)? {
                if !found.iter().any(|f| f.row == record.row) {
                    found.push(record);
                }
            }
        }
        let matcher = self.matcher();
        let mut candidates = Vec::with_capacity(found.len());
        for record in found {
            let person = repository::parse_stored(&record)?;
            let state = PersonState::from_resource(&record.id, record.version, &person);
            if !state.active {
                continue;
            }
            let theirs = Record::from_fhir(&person, &self.config.systems);
            let verdict = matcher.decide(demographics, &theirs);
            candidates.push(Candidate {
                person: state,
                verdict,
            });
        }
        candidates.sort_by(|a, b| {
            b.verdict
                .score
                .probability
                .total_cmp(&a.verdict.score.probability)
        });
        Ok(candidates)
    }
}

/// One `_tag=system|key` search per key. One search with every key joined by commas means the
/// same, but the embedded store renders an OR of index lookups as a scan of every Person (its
/// query planner cannot drive an OR of subqueries from the index): 14 ms a match at 50,000
/// residents instead of well under one. Separate lookups each use the token index.
pub(crate) fn tag_criteria(keys: &[u64]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| {
            (
                "_tag".to_owned(),
                format!(
                    "{}|{}",
                    super::BLOCKING_TAG_SYSTEM,
                    crate::blocking::key_code(*k)
                ),
            )
        })
        .collect()
}
