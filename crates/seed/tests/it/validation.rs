//! Every generated resource passes the server's structural validation.

use std::collections::BTreeSet;

use crate::support;

fn assert_valid(patients: u64, seed: u64) -> usize {
    let model = fhir_model::r4();
    let resources = support::all(patients, seed);
    let mut failures = Vec::new();
    for (resource_type, resource) in &resources {
        let issues = fhir_model::validate(model, resource);
        if !issues.is_empty() {
            failures.push(format!("{resource_type}/{}: {issues:?}", resource["id"]));
        }
    }
    assert!(
        failures.is_empty(),
        "{} invalid resources, the first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    resources.len()
}

#[test]
fn every_resource_of_two_regions_passes_structural_validation() {
    let checked = assert_valid(400, 7) + assert_valid(200, 8);
    assert!(checked > 5_000, "only {checked} resources checked");
}

#[test]
fn every_resource_type_is_covered_by_the_validation_run() {
    let types: BTreeSet<_> = support::all(400, 7).iter().map(|(t, _)| *t).collect();
    let expected: BTreeSet<_> = seed::RESOURCE_TYPES.into_iter().collect();
    assert_eq!(types, expected);
}

/// The validator is not a rubber stamp: the same resources, broken, fail it.
#[test]
fn a_broken_generated_resource_fails_validation() {
    let model = fhir_model::r4();
    let resources = support::all(50, 7);
    let mut patient = support::of_type(&resources, "Patient")
        .next()
        .unwrap()
        .clone();
    patient["gender"] = "M".into();
    assert!(!fhir_model::validate(model, &patient).is_empty());
    let mut observation = support::of_type(&resources, "Observation")
        .next()
        .unwrap()
        .clone();
    observation["effectiveDateTime"] = "2025-13-01T08:00:00+08:00".into();
    assert!(!fhir_model::validate(model, &observation).is_empty());
}
