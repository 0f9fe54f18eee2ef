//! Bytes as the query string of a search: the first byte picks what is searched (one of a few
//! resource types, a system search or a Patient compartment) and whether unknown parameters
//! are refused; the rest is split and decoded as the server does, then parsed against the R4
//! search parameters.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use search::{Handling, Registry, SearchTarget};

const TYPES: [&str; 6] = [
    "Patient",
    "Observation",
    "Encounter",
    "MedicationRequest",
    "Condition",
    "Bundle",
];

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::r4(fhir_model::r4()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, query)) = data.split_first() else {
        return;
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let resource_type = TYPES[usize::from(selector & 0x07) % TYPES.len()];
    let target = match (selector >> 3) & 0x03 {
        0 | 1 => SearchTarget::Type(resource_type),
        2 => SearchTarget::System,
        _ => SearchTarget::Compartment {
            compartment: "Patient",
            id: "example",
            resource_type,
        },
    };
    let handling = if selector & 0x20 == 0 {
        Handling::Lenient
    } else {
        Handling::Strict
    };
    let params = repository::parse_query(query);
    let _ = search::parse_search(
        registry(),
        Some("http://example.org/fhir"),
        target,
        &params,
        handling,
    );
});
