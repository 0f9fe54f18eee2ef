//! A repository with the master patient index registered, and small builders.

use std::sync::Arc;

use caller::Caller;
use repository::Repository;
use residents::mpi::{IdentityConfig, Mpi};
use serde_json::{Value, json};
use test_support::TestStore;

pub fn ctx() -> Caller {
    let mut caller = Caller::anonymous("identity-test");
    caller.actor = caller::Actor::User("Practitioner/clerk-1".into());
    caller.organization = Some("Organization/county-hospital".into());
    caller
}

pub struct Indexed {
    pub repository: Arc<Repository>,
    pub mpi: Arc<Mpi>,
}

/// A repository over the test's store with the index registered (the store outlives it: the
/// test body borrows it from the backend_tests! harness).
pub fn indexed(store: &TestStore) -> Indexed {
    let repository = Arc::new(Repository::new(Arc::clone(&store.store)));
    let mpi = Mpi::new(IdentityConfig::default());
    repository.add_write_hook(mpi.hook());
    Indexed { repository, mpi }
}

pub const ID_SYSTEM: &str = "urn:oid:2.16.156.10011.1.1";

/// A Patient as an institution registers it.
pub fn patient(
    family: &str,
    given: &str,
    birth: &str,
    id_number: Option<&str>,
    mrn: (&str, &str),
) -> Value {
    let mut identifiers = vec![json!({"system": mrn.0, "value": mrn.1})];
    if let Some(number) = id_number {
        identifiers.push(json!({"system": ID_SYSTEM, "value": number}));
    }
    json!({
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": [{"family": family, "given": [given]}],
        "gender": "male",
        "birthDate": birth,
        "telecom": [{"system": "phone", "value": "13800138000"}],
        "address": [{"line": ["和平镇桃园村3组"], "district": "碧江区", "postalCode": "554300"}]
    })
}

pub fn create(indexed: &Indexed, resource: Value) -> String {
    indexed
        .repository
        .create(&ctx(), resource, None)
        .expect("the write succeeds")
        .record
        .expect("a record")
        .id
}

pub fn read(indexed: &Indexed, resource_type: &str, id: &str) -> Value {
    let record = indexed
        .repository
        .read(&ctx(), resource_type, id)
        .expect("the resource exists");
    serde_json::from_slice(record.content.as_deref().expect("not deleted")).expect("JSON")
}

/// All current resources of a type matching `params`.
pub fn find(indexed: &Indexed, resource_type: &str, params: &[(&str, &str)]) -> Vec<Value> {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    indexed
        .repository
        .find(&ctx(), resource_type, &params, 100)
        .expect("search works")
        .into_iter()
        .map(|r| serde_json::from_slice(r.content.as_deref().unwrap_or(b"{}")).expect("JSON"))
        .collect()
}

/// The Persons that link Patient `id`.
pub fn persons_of(indexed: &Indexed, patient: &str) -> Vec<Value> {
    find(
        indexed,
        "Person",
        &[("link", &format!("Patient/{patient}"))],
    )
}

pub fn linked_patients(person: &Value) -> Vec<String> {
    let mut ids: Vec<String> = person["link"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["target"]["reference"].as_str())
        .filter_map(|r| r.strip_prefix("Patient/"))
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids
}
