//! The same configuration gives the same bytes; another seed gives another region; a region
//! is a prefix of a larger one.

use std::collections::BTreeSet;

use crate::support;

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let first = support::ndjson(300, 42);
    let second = support::ndjson(300, 42);
    assert!(first.len() > 1_000_000, "{} bytes", first.len());
    assert!(first == second, "two runs with seed 42 differ");
}

#[test]
fn another_seed_gives_other_people_and_other_records() {
    let a = support::all(300, 1);
    let b = support::all(300, 2);
    let ids = |resources: &[(&'static str, serde_json::Value)]| -> BTreeSet<String> {
        support::of_type(resources, "Patient")
            .map(|p| {
                support::identifier(p, seed::systems::RESIDENT_ID)
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let (ids_a, ids_b) = (ids(&a), ids(&b));
    assert!(
        ids_a.intersection(&ids_b).count() < 5,
        "seeds 1 and 2 share resident ID numbers"
    );
    let names = |resources: &[(&'static str, serde_json::Value)]| -> Vec<String> {
        support::of_type(resources, "Patient")
            .map(|p| p["name"][0]["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let (names_a, names_b) = (names(&a), names(&b));
    let same_position = names_a.iter().zip(&names_b).filter(|(x, y)| x == y).count();
    assert!(
        same_position < 30,
        "{same_position} of 300 residents have the same name"
    );
    let observations = |resources: &[(&'static str, serde_json::Value)]| {
        support::of_type(resources, "Observation").count()
    };
    assert_ne!(observations(&a), observations(&b));
}

#[test]
fn a_resident_has_the_same_records_in_a_larger_region() {
    let small = support::region(300, 9);
    let large = support::region(5_000, 9);
    for index in [0, 1, 150, 299] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        small.resident(index, &mut a);
        large.resident(index, &mut b);
        assert_eq!(a, b, "resident {index}");
    }
}

#[test]
fn the_stream_is_the_directory_then_each_resident_in_turn() {
    let region = support::region(120, 3);
    let mut expected = Vec::new();
    region.directory(&mut expected);
    for index in 0..120 {
        region.resident(index, &mut expected);
    }
    let streamed: Vec<_> = region.resources().collect();
    assert_eq!(streamed, expected);
}
