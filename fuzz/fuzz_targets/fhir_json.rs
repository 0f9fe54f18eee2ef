//! Bytes as a request body: the FHIR JSON reader, then the structural validation every write
//! runs, then the Bundle invariants a transaction or an import checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(resource) = fhir_model::json::parse(data) else {
        return;
    };
    let model = fhir_model::r4();
    let issues = fhir_model::validate(model, &resource);
    // The cap on issues is what bounds the work on a broken resource: check that it holds
    // (the extra one is the note that the list was cut short).
    assert!(issues.len() <= fhir_model::ValidationOptions::default().max_issues + 1);
    let _ = fhir_model::bundle_invariants(&resource);
});
