//! How long structural validation takes, on real Synthea resources: the per-write cost the server
//! pays. Run with `cargo bench -p fhir-model --bench validate`. Parsing the same JSON is measured
//! alongside, so the figures can be read as ratios that survive a noisy shared machine; so is
//! the FHIR JSON reader (`fhir_model::json::parse`) against plain `serde_json`, on the patient
//! bundle and on a 4 MB bundle made of its entries repeated.

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use fhir_model::{r4, validate};
use serde_json::Value;

const BUNDLE: &str = include_str!("data/synthea-patient-bundle.json");

fn main() {
    // Load the model outside the timings.
    let _ = r4();
    divan::main();
}

fn resources() -> Vec<Value> {
    let bundle: Value = serde_json::from_str(BUNDLE).expect("the bench bundle parses");
    bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["resource"].clone())
        .collect()
}

/// The resource whose compact JSON is closest to 2 KB: "a typical resource".
fn typical() -> (Value, String) {
    let resource = resources()
        .into_iter()
        .min_by_key(|r| serde_json::to_string(r).unwrap().len().abs_diff(2048))
        .unwrap();
    let text = serde_json::to_string(&resource).unwrap();
    (resource, text)
}

#[divan::bench]
fn validate_typical_2kb_resource(bencher: Bencher) {
    let (resource, text) = typical();
    assert!(validate(r4(), &resource).is_empty());
    bencher
        .counter(BytesCount::new(text.len()))
        .bench(|| validate(r4(), black_box(&resource)));
}

#[divan::bench]
fn parse_typical_2kb_resource(bencher: Bencher) {
    let (_, text) = typical();
    bencher
        .counter(BytesCount::new(text.len()))
        .bench(|| serde_json::from_str::<Value>(black_box(&text)).unwrap());
}

/// The patient bundle's entries repeated to about 4 MB, compact: a large Synthea bundle.
fn large_bundle() -> Vec<u8> {
    let mut bundle: Value = serde_json::from_str(BUNDLE).unwrap();
    let entries = bundle["entry"].as_array().unwrap().clone();
    let copies = (4 << 20) / BUNDLE.len() + 1;
    bundle["entry"] = Value::Array(
        entries
            .iter()
            .cycle()
            .take(entries.len() * copies)
            .cloned()
            .collect(),
    );
    serde_json::to_vec(&bundle).unwrap()
}

#[divan::bench]
fn parse_bundle_with_serde_json(bencher: Bencher) {
    bencher
        .counter(BytesCount::new(BUNDLE.len()))
        .bench(|| serde_json::from_slice::<Value>(black_box(BUNDLE.as_bytes())).unwrap());
}

#[divan::bench]
fn parse_bundle_with_fhir_json_reader(bencher: Bencher) {
    bencher
        .counter(BytesCount::new(BUNDLE.len()))
        .bench(|| fhir_model::json::parse(black_box(BUNDLE.as_bytes())).unwrap());
}

#[divan::bench(sample_count = 30)]
fn parse_large_bundle_with_serde_json(bencher: Bencher) {
    let bytes = large_bundle();
    bencher
        .counter(BytesCount::new(bytes.len()))
        .bench(|| serde_json::from_slice::<Value>(black_box(&bytes)).unwrap());
}

#[divan::bench(sample_count = 30)]
fn parse_large_bundle_with_fhir_json_reader(bencher: Bencher) {
    let bytes = large_bundle();
    assert_eq!(
        fhir_model::json::parse(&bytes).unwrap(),
        serde_json::from_slice::<Value>(&bytes).unwrap()
    );
    bencher
        .counter(BytesCount::new(bytes.len()))
        .bench(|| fhir_model::json::parse(black_box(&bytes)).unwrap());
}

#[divan::bench]
fn validate_every_resource_of_a_patient(bencher: Bencher) {
    let all = resources();
    assert!(all.iter().all(|r| validate(r4(), r).is_empty()));
    bencher.counter(ItemsCount::new(all.len())).bench(|| {
        for resource in &all {
            black_box(validate(r4(), black_box(resource)));
        }
    });
}

/// The vendored R4 examples: every one has a narrative, many of them rich (tables, links,
/// images), so this is where the narrative check shows.
fn r4_examples() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/examples");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("the examples are vendored")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

#[divan::bench]
fn validate_r4_examples_with_narratives(bencher: Bencher) {
    let all = r4_examples();
    bencher.counter(ItemsCount::new(all.len())).bench(|| {
        for resource in &all {
            black_box(validate(r4(), black_box(resource)));
        }
    });
}

#[divan::bench]
fn parse_r4_examples(bencher: Bencher) {
    let texts: Vec<String> = r4_examples()
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    bencher.counter(ItemsCount::new(texts.len())).bench(|| {
        for text in &texts {
            black_box(serde_json::from_str::<Value>(black_box(text)).unwrap());
        }
    });
}

#[divan::bench]
fn validate_whole_transaction_bundle(bencher: Bencher) {
    let bundle: Value = serde_json::from_str(BUNDLE).unwrap();
    bencher
        .counter(BytesCount::new(BUNDLE.len()))
        .bench(|| validate(r4(), black_box(&bundle)));
}
