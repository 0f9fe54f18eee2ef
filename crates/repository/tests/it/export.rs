//! Bulk export: an export of the sample re-imported into an empty store gives the same
//! resources; the levels, _type, _since and _typeFilter narrow it as the specification says.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

use repository::{ExportLevel, ExportRequest, ImportOptions, ImportUnit, Repository};
use serde_json::Value;
use test_support::backend_tests;

use crate::support::*;

fn load(repository: &Repository) {
    let units = crate::synthea::FILES.iter().map(|name| ImportUnit {
        source: (*name).into(),
        json: serde_json::to_vec(&crate::synthea::bundle(name)).unwrap(),
    });
    let report = repository.import(
        &ctx(),
        units,
        ImportOptions {
            workers: 2,
            batch_resources: 500,
            ..ImportOptions::default()
        },
        &|_| {},
    );
    assert!(report.failures.is_empty());
}

fn export(
    repository: &Repository,
    level: ExportLevel,
    params: &[(&str, &str)],
) -> (tempfile::TempDir, Vec<repository::ExportFile>) {
    let dir = tempfile::tempdir().unwrap();
    let request = ExportRequest::parse(repository, level, &criteria(params)).unwrap();
    let blobs = blob::FileBlobStore::open(dir.path()).unwrap();
    let files = repository
        .export(
            &ctx(),
            &request,
            &blobs,
            &blob::BlobKey::new("exports/test").unwrap(),
            &AtomicU64::new(0),
            &|| false,
        )
        .unwrap();
    (dir, files)
}

/// Where an exported file is on disk, under the export's directory.
fn path_of(dir: &tempfile::TempDir, file: &repository::ExportFile) -> PathBuf {
    dir.path().join(file.key.as_str())
}

/// Every resource in a store, by type/id, without the server's meta (versions and times differ).
fn everything(
    dir: &tempfile::TempDir,
    files: &[repository::ExportFile],
) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for file in files {
        for line in std::fs::read_to_string(path_of(dir, file)).unwrap().lines() {
            let mut resource: Value = serde_json::from_str(line).unwrap();
            let key = format!(
                "{}/{}",
                resource["resourceType"].as_str().unwrap(),
                resource["id"].as_str().unwrap()
            );
            let meta = resource["meta"].as_object_mut().unwrap();
            meta.remove("versionId");
            meta.remove("lastUpdated");
            all.insert(key, resource);
        }
    }
    all
}

backend_tests! {
    fn an_export_reimported_into_an_empty_store_gives_the_same_resources(store) {
        let repository = repository(store);
        load(&repository);
        let (dir, files) = export(&repository, ExportLevel::System, &[]);
        let total: u64 = files.iter().map(|f| f.count).sum();
        assert_eq!(total, 388 + 390 + 66 + 134 + 146);
        assert!(files.iter().all(|f| f.key.name() == format!("{}.ndjson", f.resource_type)));

        let fresh_store = test_support::sqlite();
        let fresh = crate::support::repository(&fresh_store);
        let units = files.iter().flat_map(|file| {
            std::fs::read_to_string(path_of(&dir, file)).unwrap().lines().enumerate().map(|(n, line)| ImportUnit {
                source: format!("{}:{}", file.key, n + 1),
                json: line.as_bytes().to_vec(),
            }).collect::<Vec<_>>()
        });
        let report = fresh.import(&ctx(), units, ImportOptions { workers: 2, batch_resources: 500, ..ImportOptions::default() }, &|_| {});
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        let (dir2, again) = export(&fresh, ExportLevel::System, &[]);
        assert_eq!(everything(&dir2, &again), everything(&dir, &files));
        drop(dir);
    }

    fn types_since_and_type_filters_narrow_the_export(store) {
        let repository = repository(store);
        load(&repository);
        let (_d, only) = export(&repository, ExportLevel::System, &[("_type", "Patient,Encounter")]);
        let types: Vec<&str> = only.iter().map(|f| f.resource_type.as_str()).collect();
        assert_eq!(types, ["Patient", "Encounter"], "in the order _type lists them");
        let (_d, future) = export(&repository, ExportLevel::System, &[("_since", "2999-01-01T00:00:00Z")]);
        assert!(future.is_empty());
        let (_d, filtered) = export(
            &repository,
            ExportLevel::System,
            &[("_type", "Observation"), ("_typeFilter", "Observation?code=http://loinc.org|8302-6,Observation?code=8867-4")],
        );
        let count = filtered.first().map_or(0, |f| f.count) as usize;
        let expected = search_ids(&repository, "Observation", &[("code", "http://loinc.org|8302-6,8867-4"), ("_count", "1000")]).len();
        assert_eq!(count, expected);
        assert!(count > 0);
    }

    fn patient_and_group_exports_hold_patient_data_only(store) {
        let repository = repository(store);
        load(&repository);
        let (_d, patient_level) = export(&repository, ExportLevel::Patient, &[]);
        let types: Vec<&str> = patient_level.iter().map(|f| f.resource_type.as_str()).collect();
        assert!(types.contains(&"Patient") && types.contains(&"Observation"));
        assert!(!types.contains(&"Organization") && !types.contains(&"Practitioner"), "{types:?}");

        let patient = search_ids(&repository, "Patient", &[("_count", "1")]).remove(0);
        let group = serde_json::json!({"resourceType": "Group", "type": "person", "actual": true,
                                       "member": [{"entity": {"reference": format!("Patient/{patient}")}}]});
        let group_id = repository.create(&ctx(), group, None).unwrap().record.unwrap().id;
        let (_d, group_files) = export(&repository, ExportLevel::Group(group_id), &[("_type", "Patient,Encounter")]);
        let patients = group_files.iter().find(|f| f.resource_type == "Patient").unwrap();
        assert_eq!(patients.count, 1);
        let encounters = group_files.iter().find(|f| f.resource_type == "Encounter").map_or(0, |f| f.count) as usize;
        assert_eq!(encounters, search_ids(&repository, "Encounter", &[("patient", &patient), ("_count", "1000")]).len());
    }

    fn bad_export_parameters_are_refused(store) {
        let repository = repository(store);
        for (name, value) in [("_outputFormat", "text/csv"), ("_type", "Nonsense"), ("_since", "yesterday"), ("_typeFilter", "Observation"), ("_typeFilter", "Observation?bogus=1"), ("_elements", "id")] {
            let error = ExportRequest::parse(&repository, ExportLevel::System, &criteria(&[(name, value)])).unwrap_err();
            assert_eq!(error.http_status(), 400, "{name}={value}");
        }
    }
}
