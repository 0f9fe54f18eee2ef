//! Master records: a `Person` computed from its linked Patients by survivorship rules, with
//! its blocking keys as tags so that candidates are found through the ordinary `_tag` index on
//! every store backend.

use std::collections::HashMap;

use repository::{InTransaction, RepositoryError};
use serde_json::{Map, Value, json};

use super::{BLOCKING_TAG_SYSTEM, FORMER_LINK_EXTENSION, Mpi};
use crate::blocking::{blocking_keys, key_code};
use crate::record::Record;

/// One link of a Person to a Patient.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub patient: String,
    pub assurance: &'static str,
    pub score: Option<f64>,
}

impl Link {
    /// The link the matcher makes on its own: assurance level 3 from a match probability of
    /// 0.999, level 2 below.
    pub fn automatic(patient: &str, probability: f64) -> Link {
        Link {
            patient: patient.to_owned(),
            assurance: if probability >= 0.999 {
                "level3"
            } else {
                "level2"
            },
            score: Some(probability),
        }
    }
}

/// A Person as the index sees it.
#[derive(Debug, Clone)]
pub struct PersonState {
    pub id: String,
    pub version: i64,
    pub active: bool,
    pub links: Vec<Link>,
    /// For an inactive Person merged into another: the Person it went to.
    pub merged_into: Option<String>,
    /// For an inactive Person: the Patients it held when merged.
    pub former: Vec<String>,
}

impl PersonState {
    pub fn from_resource(id: &str, version: i64, person: &Value) -> PersonState {
        let mut links = Vec::new();
        let mut merged_into = None;
        for link in person
            .get("link")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(reference) = link.pointer("/target/reference").and_then(Value::as_str) else {
                continue;
            };
            let assurance = match link.get("assurance").and_then(Value::as_str) {
                Some("level1") => "level1",
                Some("level2") => "level2",
                Some("level4") => "level4",
                _ => "level3",
            };
            if let Some(patient) = reference.strip_prefix("Patient/") {
                let score = link
                    .get("extension")
                    .and_then(Value::as_array)
                    .and_then(|e| e.iter().find(|x| x["url"] == super::MATCH_SCORE_EXTENSION))
                    .and_then(|x| x.get("valueDecimal"))
                    .and_then(|v| v.to_string().parse().ok());
                links.push(Link {
                    patient: patient.to_owned(),
                    assurance,
                    score,
                });
            } else if let Some(other) = reference.strip_prefix("Person/") {
                merged_into = Some(other.to_owned());
            }
        }
        let former = person
            .get("extension")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|x| x["url"] == FORMER_LINK_EXTENSION)
            .filter_map(|x| {
                x.pointer("/valueReference/reference")
                    .and_then(Value::as_str)
            })
            .filter_map(|r| r.strip_prefix("Patient/"))
            .map(str::to_owned)
            .collect();
        PersonState {
            id: id.to_owned(),
            version,
            active: person
                .get("active")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            links,
            merged_into,
            former,
        }
    }
}

/// The blocking keys a Person carries as tags.
pub(crate) fn tag_keys(person: &Value) -> Vec<u64> {
    person
        .pointer("/meta/tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t["system"] == BLOCKING_TAG_SYSTEM)
        .filter_map(|t| t["code"].as_str())
        .filter_map(|code| u64::from_str_radix(code, 16).ok())
        .collect()
}

/// Takes the key locks of `keys` in the one order every taker uses (ascending as signed
/// integers), so that two transactions deciding about the same residents run one after the
/// other and never wait on each other in a circle.
pub(crate) fn lock_keys(
    tx: &mut InTransaction<'_, '_>,
    mut keys: Vec<u64>,
) -> Result<(), RepositoryError> {
    keys.sort_unstable_by_key(|k| *k as i64);
    keys.dedup();
    let keys: Vec<i64> = keys.into_iter().map(|k| k as i64).collect();
    tx.transaction().lock_keys(&keys)?;
    Ok(())
}

impl Mpi {
    /// The Person that links `patient`, if any.
    pub(crate) fn person_of(
        &self,
        tx: &mut InTransaction<'_, '_>,
        patient: &str,
    ) -> Result<Option<PersonState>, RepositoryError> {
        let found = tx.search(
            "Person",
            &[("link".to_owned(), format!("Patient/{patient}"))],
            5,
        )?;
        for record in found {
            if let Some((record, person)) = tx.read("Person", &record.id)? {
                let state = PersonState::from_resource(&record.id, record.version, &person);
                if state.links.iter().any(|l| l.patient == patient) {
                    return Ok(Some(state));
                }
            }
        }
        Ok(None)
    }

    /// The id of the active Person of `patient`.
    pub fn master_of(
        &self,
        tx: &mut InTransaction<'_, '_>,
        patient: &str,
    ) -> Result<Option<String>, RepositoryError> {
        Ok(self
            .person_of(tx, patient)?
            .filter(|p| p.active)
            .map(|p| p.id))
    }

    /// Whether Person `id` exists and is active (not merged away, not emptied).
    pub fn active_person(
        &self,
        tx: &mut InTransaction<'_, '_>,
        id: &str,
    ) -> Result<bool, RepositoryError> {
        Ok(self.read_person(tx, id)?.is_some_and(|p| p.active))
    }

    pub(crate) fn read_person(
        &self,
        tx: &mut InTransaction<'_, '_>,
        id: &str,
    ) -> Result<Option<PersonState>, RepositoryError> {
        Ok(tx.read("Person", id)?.map(|(record, person)| {
            PersonState::from_resource(&record.id, record.version, &person)
        }))
    }

    /// Writes `state` as the Person's next version (or first, with no id), its demographics
    /// computed from its linked Patients. Answers the Person's id.
    pub(crate) fn write_person(
        &self,
        tx: &mut InTransaction<'_, '_>,
        state: &PersonState,
    ) -> Result<String, RepositoryError> {
        let mut patients = Vec::new();
        for link in &state.links {
            if let Some((record, patient)) = tx.read("Patient", &link.patient)? {
                patients.push((record.last_updated, patient));
            }
        }
        let person = survivorship(&mut patients);
        self.write_person_as(tx, state, person)
    }

    /// [`Mpi::write_person`] for a Person that has just gained `added`, the Patient written
    /// last: its demographics are the stored Person's with the new Patient's put first, which
    /// is what the survivorship rules give over every linked Patient, without reading them
    /// all again (a resident registered many times over, as retrying feeds do, would make
    /// every new link read every earlier one). Where the new Patient's sex or birth date
    /// disagrees with the Person's, the vote may turn: every Patient is read again.
    pub(crate) fn write_person_adding(
        &self,
        tx: &mut InTransaction<'_, '_>,
        state: &PersonState,
        added: &Value,
    ) -> Result<String, RepositoryError> {
        let stored = tx.read("Person", &state.id)?.map(|(_, person)| person);
        match stored.and_then(|stored| survivorship_adding(&stored, added)) {
            Some(person) => self.write_person_as(tx, state, person),
            None => self.write_person(tx, state),
        }
    }

    /// Writes `state` with the demographics `person` (survivorship's answer).
    fn write_person_as(
        &self,
        tx: &mut InTransaction<'_, '_>,
        state: &PersonState,
        mut person: Value,
    ) -> Result<String, RepositoryError> {
        let record = Record::from_fhir(&person, &self.config.systems);
        let tags: Vec<Value> = if state.active {
            blocking_keys(&record)
                .into_iter()
                .map(|k| json!({"system": BLOCKING_TAG_SYSTEM, "code": key_code(k)}))
                .collect()
        } else {
            // An inactive Person must not be found as a candidate.
            Vec::new()
        };
        let object = person
            .as_object_mut()
            .expect("survivorship builds an object");
        let mut out = Map::new();
        out.insert("resourceType".into(), json!("Person"));
        if !state.id.is_empty() {
            out.insert("id".into(), json!(state.id));
        }
        if !tags.is_empty() {
            out.insert("meta".into(), json!({"tag": tags}));
        }
        if !state.former.is_empty() {
            out.insert(
                "extension".into(),
                Value::Array(
                    state
                        .former
                        .iter()
                        .map(|p| json!({"url": FORMER_LINK_EXTENSION, "valueReference": {"reference": format!("Patient/{p}")}}))
                        .collect(),
                ),
            );
        }
        for (key, value) in std::mem::take(object) {
            out.insert(key, value);
        }
        out.insert("active".into(), json!(state.active));
        let mut links: Vec<Value> = state
            .links
            .iter()
            .map(|l| {
                let mut link = json!({"target": {"reference": format!("Patient/{}", l.patient)}, "assurance": l.assurance});
                if let Some(score) = l.score {
                    let rounded: f64 = (score * 10_000.0).round() / 10_000.0;
                    link["extension"] = json!([{"url": super::MATCH_SCORE_EXTENSION, "valueDecimal": rounded}]);
                }
                link
            })
            .collect();
        if let Some(into) = &state.merged_into {
            links.push(
                json!({"target": {"reference": format!("Person/{into}")}, "assurance": "level4"}),
            );
        }
        if !links.is_empty() {
            out.insert("link".into(), Value::Array(links));
        }
        let resource = Value::Object(out);
        if state.id.is_empty() {
            Ok(tx.create(resource)?.id)
        } else {
            tx.update(resource, Some(state.version))?;
            Ok(state.id.clone())
        }
    }
}

/// The survivorship keys whose values are lists of every distinct value.
const LISTED: [&str; 4] = ["identifier", "name", "telecom", "address"];
/// The survivorship keys decided by a vote.
const VOTED: [&str; 2] = ["gender", "birthDate"];
/// Every key a Person takes from its Patients: an update of a Patient that changes none of
/// them changes nothing of its Person.
pub(crate) const DEMOGRAPHICS: [&str; 6] = [
    LISTED[0], LISTED[1], LISTED[2], LISTED[3], VOTED[0], VOTED[1],
];

/// Whether `a` and `b` are one value of `key` (an identifier or telecom by system and value).
fn same_value(key: &str, a: &Value, b: &Value) -> bool {
    match key {
        "identifier" | "telecom" => {
            a.get("system") == b.get("system") && a.get("value") == b.get("value")
        }
        _ => a == b,
    }
}

/// The survivorship rules' answer over a Person's Patients and `added`, the most recently
/// updated, from the Person's demographics (`stored`, the rules' answer over the others) and
/// `added` alone; `None` when the vote on sex or birth date could turn (`added` disagrees).
fn survivorship_adding(stored: &Value, added: &Value) -> Option<Value> {
    let mut person = Map::new();
    for key in LISTED {
        // The newest Patient's values first, then the others' not among them.
        let mut values: Vec<Value> = Vec::new();
        let newest = added
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let earlier = stored
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (value, from_added) in newest.map(|v| (v, true)).chain(earlier.map(|v| (v, false))) {
            let value = if from_added {
                strip_ids(value)
            } else {
                value.clone()
            };
            if !values.iter().any(|v| same_value(key, v, &value)) {
                values.push(value);
            }
        }
        if !values.is_empty() {
            person.insert(key.into(), Value::Array(values));
        }
    }
    for key in VOTED {
        let voted = added
            .get(key)
            .and_then(Value::as_str)
            .filter(|v| !(key == "gender" && *v == "unknown"));
        match (voted, stored.get(key)) {
            // No vote, or one more for the winner: the winner stays.
            (None, Some(winner)) => {
                person.insert(key.into(), winner.clone());
            }
            (None, None) => {}
            (Some(vote), Some(winner)) if winner.as_str() == Some(vote) => {
                person.insert(key.into(), winner.clone());
            }
            // The first vote on it.
            (Some(vote), None) => {
                person.insert(key.into(), json!(vote));
            }
            (Some(_), Some(_)) => return None,
        }
    }
    Some(Value::Object(person))
}

/// The survivorship rules. Names, identifiers, telecoms and addresses: every distinct value,
/// those of the most recently updated Patient first. Sex and birth date: the value most Patients
/// agree on, ties going to the most recently updated.
fn survivorship(patients: &mut [(i64, Value)]) -> Value {
    patients.sort_by_key(|p| std::cmp::Reverse(p.0));
    let mut person = Map::new();
    for key in LISTED {
        let mut values: Vec<Value> = Vec::new();
        for (_, patient) in patients.iter() {
            for value in patient
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let value = strip_ids(value);
                if !values.iter().any(|v| same_value(key, v, &value)) {
                    values.push(value);
                }
            }
        }
        if !values.is_empty() {
            person.insert(key.into(), Value::Array(values));
        }
    }
    for key in VOTED {
        let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
        for (rank, (_, patient)) in patients.iter().enumerate() {
            if let Some(value) = patient.get(key).and_then(Value::as_str)
                && !(key == "gender" && value == "unknown")
            {
                let entry = counts.entry(value).or_insert((0, rank));
                entry.0 += 1;
            }
        }
        // Most agreed; on a tie, the lowest rank (most recent) wins.
        if let Some((value, _)) = counts
            .into_iter()
            .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
        {
            person.insert(key.into(), json!(value));
        }
    }
    Value::Object(person)
}

/// Element ids belong to the source resource, not to the Person.
fn strip_ids(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != "id")
                .map(|(k, v)| (k.clone(), strip_ids(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_ids).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Patients of one resident as registrations vary them: names, numbers, phones, sex and
    /// birth date that agree or not, element ids.
    fn patient(n: usize) -> Value {
        let mut patient = json!({
            "resourceType": "Patient",
            "identifier": [{"id": format!("i{n}"), "system": "urn:oid:2.16.156.10011.1.3",
                "value": if n.is_multiple_of(3) { "520602199001011234" } else { "520602199001011235" },
                "use": if n.is_multiple_of(2) { "official" } else { "usual" }}],
            "name": [{"family": "王", "given": [if n.is_multiple_of(4) { "芳" } else { "方" }]}],
        });
        if !n.is_multiple_of(5) {
            patient["telecom"] =
                json!([{"system": "phone", "value": format!("1390000000{}", n % 3)}]);
        }
        if !n.is_multiple_of(7) {
            patient["gender"] = json!(if n % 6 == 1 { "male" } else { "female" });
        }
        if n.is_multiple_of(2) {
            patient["birthDate"] = json!(if n.is_multiple_of(8) {
                "1990-01-02"
            } else {
                "1990-01-01"
            });
        }
        patient
    }

    #[test]
    fn adding_the_newest_patient_gives_what_reading_them_all_gives() {
        let mut checked = 0;
        for start in 0..12 {
            let mut patients: Vec<(i64, Value)> = Vec::new();
            for n in start..start + 12 {
                let stored = survivorship(&mut patients.clone());
                let added = patient(n);
                patients.push((n as i64, added.clone()));
                let whole = survivorship(&mut patients.clone());
                if let Some(incremental) = survivorship_adding(&stored, &added) {
                    assert_eq!(incremental, whole, "patients {start}..={n}");
                    checked += 1;
                }
            }
        }
        // Most additions agree with the vote; those are the ones taken without a reread.
        assert!(checked > 60, "only {checked} additions checked");
    }
}
