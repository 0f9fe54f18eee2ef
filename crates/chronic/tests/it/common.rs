//! What the tests share: a repository over a test store under the real access rules, callers,
//! and a small region (a county hospital, a township health centre, a village clinic, their
//! doctors and two residents).

use std::sync::Arc;

use caller::{Actor, Caller};
use repository::Repository;
use serde_json::{Value, json};
use test_support::TestStore;

pub fn repository(store: &TestStore) -> Arc<Repository> {
    let repository = Repository::new(Arc::clone(&store.store));
    repository.set_access_policy(Arc::new(access::policy::Policy::new()));
    Arc::new(repository)
}

pub fn operator() -> Caller {
    Caller::operator("chronic")
}

pub fn clinician(practitioner: &str, organization: &str) -> Caller {
    let mut caller = Caller::operator("chronic-test");
    caller.actor = Actor::User(format!("Practitioner/{practitioner}"));
    caller.organization = Some(format!("Organization/{organization}"));
    caller.scopes = vec!["user/*.cruds".into()];
    caller
}

pub fn put(repository: &Repository, by: &Caller, resource: Value) -> Value {
    let (t, id) = (
        resource["resourceType"].as_str().unwrap().to_owned(),
        resource["id"].as_str().unwrap().to_owned(),
    );
    let written = repository
        .update(by, &t, &id, resource, None)
        .unwrap_or_else(|e| panic!("{t}/{id}: {e}"));
    repository::parse_stored(written.record.as_ref().unwrap()).unwrap()
}

/// Every current resource of a type matching `criteria`, as the operator sees them.
pub fn all(repository: &Repository, resource_type: &str, criteria: &[(&str, &str)]) -> Vec<Value> {
    let criteria: Vec<(String, String)> = criteria
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    repository
        .find(&operator(), resource_type, &criteria, 10_000)
        .unwrap()
        .iter()
        .map(|r| repository::parse_stored(r).unwrap())
        .collect()
}

pub fn refs(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["reference"].as_str().map(str::to_owned))
        .collect()
}

/// The directory and two residents: `p1` (family doctor `doc-v` of the village clinic `vc`,
/// record kept by the township centre `thc`, born 1960) and `p2` (no family doctor, born 1980).
pub fn region(repository: &Repository) {
    let op = operator();
    for (id, part_of) in [
        ("county-hosp", None),
        ("thc", None),
        ("vc", Some("thc")),
        ("elsewhere", None),
    ] {
        let mut organization =
            json!({"resourceType": "Organization", "id": id, "name": format!("{id} 卫生机构")});
        if let Some(parent) = part_of {
            organization["partOf"] = json!({"reference": format!("Organization/{parent}")});
        }
        put(repository, &op, organization);
    }
    for (doctor, organization) in [
        ("doc-v", "vc"),
        ("doc-t", "thc"),
        ("doc-c", "county-hosp"),
        ("doc-e", "elsewhere"),
    ] {
        put(
            repository,
            &op,
            json!({"resourceType": "Practitioner", "id": doctor,
            "name": [{"text": format!("医生 {doctor}")}]}),
        );
        put(
            repository,
            &op,
            json!({"resourceType": "PractitionerRole", "id": doctor, "active": true,
            "practitioner": {"reference": format!("Practitioner/{doctor}")},
            "organization": {"reference": format!("Organization/{organization}")}}),
        );
    }
    put(repository, &op, patient("p1", Some("doc-v"), "1960-05-10"));
    put(repository, &op, patient("p2", None, "1980-01-01"));
}

pub fn patient(id: &str, family_doctor: Option<&str>, birth: &str) -> Value {
    let mut patient = json!({"resourceType": "Patient", "id": id,
        "meta": {"source": "Organization/thc"},
        "name": [{"text": format!("居民 {id}")}], "birthDate": birth,
        "managingOrganization": {"reference": "Organization/thc"}});
    if let Some(doctor) = family_doctor {
        patient["generalPractitioner"] = json!([{"reference": format!("Practitioner/{doctor}")}]);
    }
    patient
}

pub fn condition(id: &str, patient: &str, system: &str, code: &str, onset: &str) -> Value {
    json!({"resourceType": "Condition", "id": id,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "onsetDateTime": onset, "recordedDate": onset})
}

pub fn blood_pressure(
    id: &str,
    patient: &str,
    systolic: u32,
    diastolic: u32,
    at: &str,
    encounter: Option<&str>,
) -> Value {
    let mut observation = json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": at,
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": systolic, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": {"value": diastolic, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]});
    if let Some(encounter) = encounter {
        observation["encounter"] = json!({"reference": format!("Encounter/{encounter}")});
    }
    observation
}

pub fn glucose(
    id: &str,
    patient: &str,
    code: &str,
    value: f64,
    at: &str,
    encounter: Option<&str>,
) -> Value {
    let mut observation = json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": at,
        "valueQuantity": {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}});
    if let Some(encounter) = encounter {
        observation["encounter"] = json!({"reference": format!("Encounter/{encounter}")});
    }
    observation
}

pub fn follow_up(id: &str, patient: &str, at: &str, episode: Option<&str>) -> Value {
    let mut encounter = json!({"resourceType": "Encounter", "id": id, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "390906007"}]}],
        "subject": {"reference": format!("Patient/{patient}")},
        "period": {"start": at, "end": at}});
    if let Some(episode) = episode {
        encounter["episodeOfCare"] = json!([{"reference": format!("EpisodeOfCare/{episode}")}]);
    }
    encounter
}
