//! Write throughput of the two stores, measured in one run: synthetic resources with 15 index
//! rows each, written in transactions of 500 (`current_many`, then one `put` per resource, then
//! `commit`), as a bulk import does. Prints resources/s per store and writer count.
//!
//! `cargo bench -p store-postgres --bench write -- [--resources N] [--batch N]`
//! PostgreSQL is the server `MERIDIAN_TEST_DATABASE_URL` names (a fresh database is created and
//! dropped); SQLite is a file in a temporary directory.
//!
//! The index entries are made here, not extracted from the JSON: this measures the store's
//! write path alone, not validation or FHIRPath.

use std::sync::Arc;
use std::time::Instant;

use search::IndexEntries;
use search::index::{
    CompositeEntry, CompositeSecond, DateEntry, QuantityEntry, ReferenceEntry, StringEntry,
    TokenEntry, UriEntry,
};
use search::keys::{ParamKey, PatientKey};
use store::{Method, Store, VersionWrite};

struct Resource {
    id: String,
    content: Vec<u8>,
    index: IndexEntries,
}

fn token(code: &str, system: &str, value: &str) -> TokenEntry {
    TokenEntry {
        param: ParamKey::new("Observation", code),
        system: Some(system.into()),
        code: value.into(),
    }
}

/// An Observation-like resource: a blood-pressure reading from a village kiosk, with 15 index
/// rows (7 tokens, 2 references, 2 dates, 1 quantity, 1 string, 1 uri, 1 composite).
fn resource(n: usize) -> Resource {
    let id = format!("obs-{n:08}");
    let patient = format!("pat-{:06}", n % 5_000);
    let systolic = 100 + (n * 7) % 60;
    let day = 1 + n % 28;
    let content = format!(
        r#"{{"resourceType":"Observation","id":"{id}","status":"final","category":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}}]}}],"code":{{"coding":[{{"system":"http://loinc.org","code":"8480-6","display":"Systolic blood pressure"}}],"text":"Systolic blood pressure"}},"subject":{{"reference":"Patient/{patient}"}},"encounter":{{"reference":"Encounter/enc-{n}"}},"effectiveDateTime":"2024-03-{day:02}T08:30:00+08:00","issued":"2024-03-{day:02}T08:31:00+08:00","performer":[{{"reference":"Organization/village-{}"}}],"valueQuantity":{{"value":{systolic},"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},"identifier":[{{"system":"urn:oid:2.16.156.10011.1.{}","value":"{n}"}}]}}"#,
        n % 40,
        n % 300
    )
    .into_bytes();
    let micros = 1_709_000_000_000_000 + n as i64 * 1_000_000;
    let index = IndexEntries {
        patient_key: PatientKey::of_patient(&patient),
        tokens: vec![
            token("status", "http://hl7.org/fhir/observation-status", "final"),
            token(
                "category",
                "http://terminology.hl7.org/CodeSystem/observation-category",
                "vital-signs",
            ),
            token("code", "http://loinc.org", "8480-6"),
            token("combo-code", "http://loinc.org", "8480-6"),
            token(
                "identifier",
                &format!("urn:oid:2.16.156.10011.1.{}", n % 300),
                &n.to_string(),
            ),
            token("_id", "", &id),
            token(
                "value-concept",
                "http://example.org/flags",
                if systolic >= 140 { "H" } else { "N" },
            ),
        ],
        strings: vec![StringEntry {
            param: ParamKey::derived("Observation", "code", "text"),
            normalized: "systolic blood pressure".into(),
            exact: "Systolic blood pressure".into(),
        }],
        dates: vec![
            DateEntry {
                param: ParamKey::new("Observation", "date"),
                low: micros,
                high: micros + 999_999,
            },
            DateEntry {
                param: ParamKey::new("Observation", "issued"),
                low: micros + 60_000_000,
                high: micros + 60_999_999,
            },
        ],
        numbers: Vec::new(),
        quantities: vec![QuantityEntry {
            param: ParamKey::new("Observation", "value-quantity"),
            system: Some("http://unitsofmeasure.org".into()),
            code: Some("mm[Hg]".into()),
            value: systolic as f64,
            low: systolic as f64 - 0.5,
            high: systolic as f64 + 0.5,
            canonical: Some(("g.m-1.s-2".into(), systolic as f64 * 133.322)),
        }],
        references: vec![
            ReferenceEntry {
                param: ParamKey::new("Observation", "subject"),
                target_type: Some("Patient".into()),
                target_id: Some(patient.as_str().into()),
                url: None,
                version: None,
            },
            ReferenceEntry {
                param: ParamKey::new("Observation", "encounter"),
                target_type: Some("Encounter".into()),
                target_id: Some(format!("enc-{n}").into()),
                url: None,
                version: None,
            },
        ],
        uris: vec![UriEntry {
            param: ParamKey::new("Observation", "_profile"),
            uri: "http://hl7.org/fhir/StructureDefinition/bp".into(),
        }],
        composites: vec![CompositeEntry {
            param: ParamKey::new("Observation", "code-value-quantity"),
            first: token("code", "http://loinc.org", "8480-6"),
            second: CompositeSecond::Range {
                value: systolic as f64,
                low: systolic as f64 - 0.5,
                high: systolic as f64 + 0.5,
                unit: Some(token("code", "http://unitsofmeasure.org", "mm[Hg]")),
            },
        }],
    };
    Resource { id, content, index }
}

/// Writes `resources` in transactions of `batch`, answering the seconds taken.
fn load(store: &dyn Store, resources: &[Resource], batch: usize) -> f64 {
    let started = Instant::now();
    for chunk in resources.chunks(batch) {
        let mut tx = store.begin().expect("begin");
        let keys: Vec<(&str, &str)> = chunk
            .iter()
            .map(|r| ("Observation", r.id.as_str()))
            .collect();
        let current = tx.current_many(&keys).expect("current_many");
        for (resource, previous) in chunk.iter().zip(&current) {
            let version = previous.as_ref().map_or(1, |p| p.version + 1);
            tx.put(VersionWrite {
                resource_type: "Observation",
                id: &resource.id,
                previous: previous.as_ref(),
                version,
                last_updated: 1_709_000_000_000_000,
                method: if previous.is_some() {
                    Method::Update
                } else {
                    Method::Create
                },
                content: Some(&resource.content),
                content_hash: version,
                custodian: None,
                sensitivity: 0,
                index: &resource.index,
            })
            .expect("put");
        }
        tx.commit().expect("commit");
    }
    started.elapsed().as_secs_f64()
}

/// Writes `resources` split between `writers` threads, answering the seconds taken.
fn load_parallel(
    store: &Arc<dyn Store>,
    resources: &[Resource],
    batch: usize,
    writers: usize,
) -> f64 {
    let started = Instant::now();
    let share = resources.len().div_ceil(writers);
    std::thread::scope(|scope| {
        for part in resources.chunks(share) {
            let store = Arc::clone(store);
            scope.spawn(move || load(&*store, part, batch));
        }
    });
    started.elapsed().as_secs_f64()
}

fn argument(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let count = argument("--resources", 20_000);
    let batch = argument("--batch", 500);
    let resources: Vec<Resource> = (0..count).map(resource).collect();
    let rows: usize = resources.iter().map(|r| r.index.len()).sum();
    println!(
        "{count} resources, {:.1} index rows and {} bytes of JSON each on average, {batch} per transaction",
        rows as f64 / count as f64,
        resources.iter().map(|r| r.content.len()).sum::<usize>() / count
    );
    println!(
        "{:<10} {:>7} {:>9} {:>13} {:>15}",
        "store", "writers", "seconds", "resources/s", "index rows/s"
    );
    let report = |name: &str, writers: usize, seconds: f64| {
        println!(
            "{name:<10} {writers:>7} {seconds:>9.2} {:>13.0} {:>15.0}",
            count as f64 / seconds,
            rows as f64 / seconds
        );
    };
    // What one round trip to the database costs: the price of a health check per checkout,
    // which this store's pool avoids (see docs/decisions/0003-postgres-driver-and-pool.md).
    {
        let postgres = test_support::postgres();
        let pings = 2_000;
        let started = Instant::now();
        for _ in 0..pings {
            postgres.ping().expect("ping");
        }
        println!(
            "postgres round trip (Store::ping): {:.0} µs",
            started.elapsed().as_secs_f64() * 1e6 / pings as f64
        );
    }
    for writers in [1, 2] {
        let sqlite = test_support::sqlite();
        report(
            "sqlite",
            writers,
            load_parallel(&sqlite.store, &resources, batch, writers),
        );
        let postgres = test_support::postgres();
        report(
            "postgres",
            writers,
            load_parallel(&postgres.store, &resources, batch, writers),
        );
    }
}
