//! The region grows with the number of residents: the directory by steps, the records in
//! proportion.

use std::collections::BTreeMap;

use crate::support;

fn resident_counts(patients: u64, seed: u64) -> BTreeMap<&'static str, u64> {
    let region = support::region(patients, seed);
    let mut counts = BTreeMap::new();
    let mut records = Vec::new();
    for index in 0..patients {
        region.resident(index, &mut records);
        for (resource_type, _) in records.drain(..) {
            *counts.entry(resource_type).or_default() += 1;
        }
    }
    counts
}

#[test]
fn records_grow_in_proportion_to_residents() {
    let small = resident_counts(500, 41);
    let large = resident_counts(2_000, 41);
    assert_eq!(small["Patient"], 500);
    assert_eq!(large["Patient"], 2_000);
    let total = |counts: &BTreeMap<&str, u64>| counts.values().sum::<u64>() as f64;
    let ratio = total(&large) / total(&small);
    assert!((3.6..4.4).contains(&ratio), "total ratio {ratio}");
    for resource_type in ["Encounter", "Observation", "DiagnosticReport"] {
        let ratio = large[resource_type] as f64 / small[resource_type] as f64;
        assert!(
            (3.5..4.5).contains(&ratio),
            "{resource_type}: ratio {ratio}"
        );
    }
}

#[test]
fn the_directory_grows_by_villages_townships_and_counties() {
    for (patients, villages, counties, townships) in [
        (0, 1, 1, 1),
        (1, 1, 1, 1),
        (1_500, 1, 1, 1),
        (1_501, 2, 2, 2),
        (15_000, 10, 10, 10),
        (180_000, 120, 10, 10),
        (181_500, 121, 10, 11),
        (3_580_000, 2_387, 10, 200),
    ] {
        let size = support::region(patients, 1).size();
        assert_eq!(
            (size.villages, size.counties, size.townships),
            (villages, counties, townships),
            "{patients} residents"
        );
        assert_eq!(size.institutions, 2 + counties + townships + villages);
    }
}

#[test]
fn the_size_agrees_with_the_generated_directory() {
    let region = support::region(20_000, 2);
    let size = region.size();
    let mut directory = Vec::new();
    region.directory(&mut directory);
    let count = |wanted: &str| directory.iter().filter(|(t, _)| *t == wanted).count() as u64;
    assert_eq!(count("Organization"), size.institutions);
    assert_eq!(count("Location"), size.institutions);
    assert_eq!(count("Practitioner"), size.practitioners);
    assert_eq!(count("PractitionerRole"), size.practitioners);
    assert_eq!(count("Device"), size.villages);
}

#[test]
fn too_many_residents_for_unique_id_numbers_is_refused() {
    assert!(seed::Region::new(seed::Config::new(18_000_000, 1)).is_ok());
    let refused = seed::Region::new(seed::Config::new(19_000_000, 1)).unwrap_err();
    assert_eq!(
        refused,
        seed::Error::TooManyResidents {
            requested: 19_000_000,
            limit: 18_240_000
        }
    );
}
