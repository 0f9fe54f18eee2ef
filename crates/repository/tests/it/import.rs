//! Bulk import: every record loaded or reported, idempotent re-imports, and conditional
//! references that point at earlier input, whatever the workers' timing.

use repository::{ImportCounts, ImportOptions, ImportUnit, Repository};
use serde_json::{Value, json};
use test_support::backend_tests;

use crate::support::*;

fn synthea_units() -> Vec<ImportUnit> {
    crate::synthea::FILES
        .iter()
        .map(|name| ImportUnit {
            source: (*name).into(),
            json: serde_json::to_vec(&crate::synthea::bundle(name)).unwrap(),
        })
        .collect()
}

fn import(
    repository: &Repository,
    units: Vec<ImportUnit>,
    workers: usize,
    batch: usize,
) -> repository::ImportReport {
    let options = ImportOptions {
        workers,
        batch_resources: batch,
        ..ImportOptions::default()
    };
    repository.import(&ctx(), units.into_iter(), options, &|_: &ImportCounts| {})
}

fn line(resource: Value, n: usize) -> ImportUnit {
    ImportUnit {
        source: format!("data.ndjson:{n}"),
        json: serde_json::to_vec(&resource).unwrap(),
    }
}

backend_tests! {
    fn importing_the_sample_twice_writes_nothing_the_second_time(store) {
        let repository = repository(store);
        let first = import(&repository, synthea_units(), 2, 300);
        assert!(first.failures.is_empty(), "{:?}", first.failures);
        assert_eq!(first.counts.created, 388 + 390 + 66 + 134 + 146);
        let second = import(&repository, synthea_units(), 2, 300);
        assert!(second.failures.is_empty(), "{:?}", second.failures);
        assert_eq!((second.counts.created, second.counts.updated), (0, 0));
        assert_eq!(second.counts.unchanged, first.counts.created);
        // Ids come from the bundle's urn:uuid full URLs, and references follow them.
        let patient = repository.read(&ctx(), "Patient", "8a4c9c04-1524-9f1c-d65b-9b17e4520fef").unwrap();
        assert_eq!(patient.version, 1);
        assert!(!search_ids(&repository, "Encounter", &[("subject", "Patient/8a4c9c04-1524-9f1c-d65b-9b17e4520fef")]).is_empty());
    }

    fn bad_records_are_reported_and_the_rest_is_loaded(store) {
        let repository = repository(store);
        let units = vec![
            line(json!({"resourceType": "Patient", "id": "good-1", "gender": "male"}), 1),
            ImportUnit { source: "data.ndjson:2".into(), json: b"{not json".to_vec() },
            line(json!({"resourceType": "Patient", "id": "bad", "gender": "purple"}), 3),
            line(json!({"resourceType": "Patient", "id": "bad id!"}), 4),
            line(json!({"resourceType": "Nonsense", "id": "x"}), 5),
            line(json!({"resourceType": "Patient", "id": "good-2"}), 6),
        ];
        let report = import(&repository, units, 2, 2);
        assert_eq!(report.counts.created, 2);
        assert_eq!(report.counts.failed, 4);
        let mut sources: Vec<&str> = report.failures.iter().map(|f| f.source.as_str()).collect();
        sources.sort();
        assert_eq!(sources, ["data.ndjson:2", "data.ndjson:3", "data.ndjson:4", "data.ndjson:5"]);
        let gender = report.failures.iter().find(|f| f.source == "data.ndjson:3").unwrap();
        assert_eq!(gender.issues[0].expression.as_deref(), Some("Patient.gender"));
        assert!(repository.read(&ctx(), "Patient", "good-1").is_ok() && repository.read(&ctx(), "Patient", "good-2").is_ok());
    }

    fn a_line_that_names_a_property_twice_is_reported_with_its_place(store) {
        // Regression: serde_json kept the last `gender` and the line was imported.
        let repository = repository(store);
        let units = vec![
            ImportUnit { source: "data.ndjson:1".into(), json: br#"{"resourceType":"Patient","id":"twice","gender":"male","gender":"female"}"#.to_vec() },
            ImportUnit { source: "data.ndjson:2".into(), json: br#"{"resourceType":"Patient","id":"once","gender":"male"}"#.to_vec() },
        ];
        let report = import(&repository, units, 1, 10);
        assert_eq!((report.counts.created, report.counts.failed), (1, 1));
        let failure = &report.failures[0];
        assert_eq!(failure.source, "data.ndjson:1");
        assert_eq!(failure.issues[0].expression.as_deref(), Some("Patient.gender"));
        assert!(failure.issues[0].diagnostics.contains("'gender' appears twice"), "{}", failure.issues[0].diagnostics);
        assert!(failure.issues[0].diagnostics.contains("line 1, column"), "{}", failure.issues[0].diagnostics);
        assert!(repository.read(&ctx(), "Patient", "twice").is_err(), "nothing of it was written");
        // A file (here a Bundle) with the key repeated in an entry fails whole, with the place.
        let bundle = br#"{"resourceType":"Bundle","type":"transaction","entry":[
            {"fullUrl":"urn:uuid:00000000-0000-4000-8000-0000000000b1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
            {"resource":{"resourceType":"Patient","active":true,"active":false},"request":{"method":"POST","url":"Patient"}}]}"#;
        let report = import(&repository, vec![ImportUnit { source: "bundles/b.json".into(), json: bundle.to_vec() }], 1, 10);
        assert_eq!((report.counts.created, report.counts.failed), (0, 1));
        assert_eq!(report.failures[0].source, "bundles/b.json");
        assert_eq!(report.failures[0].issues[0].expression.as_deref(), Some("Bundle.entry[1].resource.active"));
        assert!(repository.read(&ctx(), "Patient", "00000000-0000-4000-8000-0000000000b1").is_err());
    }

    fn a_bundle_with_a_repeated_full_url_fails_whole_bdl_7(store) {
        let repository = repository(store);
        let full_url = "urn:uuid:3c0e8f2a-0000-4000-8000-000000000002";
        for kind in ["transaction", "batch"] {
            let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": [
                {"fullUrl": full_url, "resource": {"resourceType": "Patient", "gender": "male"}, "request": {"method": "POST", "url": "Patient"}},
                {"fullUrl": full_url, "resource": {"resourceType": "Patient", "gender": "female"}, "request": {"method": "POST", "url": "Patient"}}
            ]});
            let unit = ImportUnit { source: format!("bundles/{kind}.json"), json: serde_json::to_vec(&bundle).unwrap() };
            let report = import(&repository, vec![unit], 1, 10);
            assert_eq!((report.counts.created, report.counts.failed), (0, 1), "{kind}");
            assert_eq!(report.failures[0].source, format!("bundles/{kind}.json"));
            assert_eq!(report.failures[0].issues[0].expression.as_deref(), Some("Bundle.entry[1].fullUrl"));
        }
        assert!(repository.read(&ctx(), "Patient", "3c0e8f2a-0000-4000-8000-000000000002").is_err(), "nothing was written");
    }

    fn a_file_that_starts_with_a_byte_order_mark_is_imported(store) {
        // Regression: the mark a Windows editor writes made the first line "not valid JSON".
        let repository = repository(store);
        let mut first = b"\xEF\xBB\xBF".to_vec();
        first.extend_from_slice(br#"{"resourceType":"Patient","id":"marked"}"#);
        let report = import(&repository, vec![ImportUnit { source: "data.ndjson:1".into(), json: first }], 1, 10);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(report.counts.created, 1);
        assert!(repository.read(&ctx(), "Patient", "marked").is_ok());
    }

    fn a_failing_transaction_bundle_loads_nothing_of_itself(store) {
        let repository = repository(store);
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "bogus", "code": {"text": "x"}}, "request": {"method": "POST", "url": "Observation"}}
        ]});
        let report = import(&repository, vec![line(bundle, 1)], 1, 100);
        assert_eq!((report.counts.created, report.counts.failed), (0, 1));
        assert_eq!(report.failures[0].issues[0].expression.as_deref(), Some("Bundle.entry[1].resource.status"));
        assert!(repository.read(&ctx(), "Patient", "00000000-0000-4000-8000-000000000001").is_err());
    }

    fn conditional_references_to_earlier_units_resolve_whatever_the_worker_timing(store) {
        // Regression: a patient bundle prepared while the practitioner bundle it refers to was
        // still being prepared by another worker failed with "matches no resource".
        let repository = repository(store);
        let mut units = synthea_units();
        // Many small units after the practitioners, so workers race ahead.
        let patients = units.split_off(2);
        for round in 0..4 {
            for unit in &patients {
                units.push(ImportUnit { source: format!("{}#{round}", unit.source), json: unit.json.clone() });
            }
        }
        let report = import(&repository, units, 4, 50);
        assert!(report.failures.is_empty(), "{:?}", report.failures.iter().map(|f| &f.source).collect::<Vec<_>>());
    }

    fn an_unresolvable_reference_is_reported_not_waited_for_forever(store) {
        let repository = repository(store);
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Encounter", "status": "finished",
                          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                          "participant": [{"individual": {"reference": "Practitioner?identifier=nobody"}}]},
             "request": {"method": "POST", "url": "Encounter"}}
        ]});
        let report = import(&repository, vec![line(bundle.clone(), 1), line(bundle, 2)], 2, 10);
        assert_eq!(report.counts.failed, 2);
        assert!(report.failures[0].issues[0].diagnostics.contains("matches no resource"));
    }
    fn a_resource_written_twice_in_one_batch_gets_two_versions(store) {
        // The writer reads a batch's current versions up front; the second write of the same
        // resource in the batch must see the first, and an existing resource its stored version.
        let repository = repository(store);
        let seeded = import(&repository, vec![line(json!({"resourceType": "Patient", "id": "old", "gender": "male"}), 1)], 1, 100);
        assert!(seeded.failures.is_empty(), "{:?}", seeded.failures);
        let units = vec![
            line(json!({"resourceType": "Patient", "id": "twice", "gender": "male"}), 1),
            line(json!({"resourceType": "Patient", "id": "old", "gender": "female"}), 2),
            line(json!({"resourceType": "Patient", "id": "twice", "gender": "female"}), 3),
            line(json!({"resourceType": "Patient", "id": "twice", "gender": "female"}), 4),
        ];
        let report = import(&repository, units, 1, 100);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!((report.counts.created, report.counts.updated, report.counts.unchanged), (1, 2, 1));
        let body = |record: &store::VersionRecord| json(record.content.as_deref().expect("content"));
        let twice = repository.read(&ctx(), "Patient", "twice").unwrap();
        assert_eq!(twice.version, 2);
        assert_eq!(body(&twice)["gender"], "female");
        let old = repository.read(&ctx(), "Patient", "old").unwrap();
        assert_eq!(old.version, 2);
        assert_eq!(repository.vread(&ctx(), "Patient", "twice", "1").map(|r| body(&r)["gender"].clone()).unwrap(), "male");
    }
}
