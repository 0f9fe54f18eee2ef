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
    for key in keys {
        tx.transaction().lock_key(key as i64)?;
    }
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
        let mut person = survivorship(&mut patients);
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

/// The survivorship rules. Names, identifiers, telecoms and addresses: every distinct value,
/// those of the most recently updated Patient first. Sex and birth date: the value most Patients
/// agree on, ties going to the most recently updated.
fn survivorship(patients: &mut [(i64, Value)]) -> Value {
    patients.sort_by_key(|p| std::cmp::Reverse(p.0));
    let mut person = Map::new();
    for key in ["identifier", "name", "telecom", "address"] {
        let mut values: Vec<Value> = Vec::new();
        for (_, patient) in patients.iter() {
            for value in patient
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let value = strip_ids(value);
                let duplicate = values.iter().any(|v| match key {
                    "identifier" | "telecom" => {
                        v.get("system") == value.get("system")
                            && v.get("value") == value.get("value")
                    }
                    _ => *v == value,
                });
                if !duplicate {
                    values.push(value);
                }
            }
        }
        if !values.is_empty() {
            person.insert(key.into(), Value::Array(values));
        }
    }
    for key in ["gender", "birthDate"] {
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
