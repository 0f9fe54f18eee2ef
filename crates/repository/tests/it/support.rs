//! Shared helpers for the repository tests.

use std::sync::Arc;

use caller::Caller;
use repository::{Repository, Written};
use serde_json::Value;
use test_support::TestStore;

/// Errors' statuses and issues, for every test module.
pub use fhir_model::Outcome;

pub const BASE: &str = "http://test.example/fhir";

pub fn ctx() -> Caller {
    Caller::operator("repository-test")
}

pub fn repository(store: &TestStore) -> Repository {
    Repository::new(Arc::clone(&store.store))
}

pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("stored and returned JSON parses")
}

pub fn content(written: &Written) -> Value {
    json(
        written
            .record
            .as_ref()
            .expect("a record")
            .content
            .as_deref()
            .expect("content"),
    )
}

pub fn criteria(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A search through the repository, answered as the ids of the matches.
pub fn search_ids(
    repository: &Repository,
    resource_type: &str,
    params: &[(&str, &str)],
) -> Vec<String> {
    let request = repository::SearchRequest {
        scope: repository::SearchScope::Type(resource_type.into()),
        params: criteria(params),
        handling: search::Handling::Strict,
    };
    let bundle = json(&repository.search(&ctx(), BASE, &request).unwrap());
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
