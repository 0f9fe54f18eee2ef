//! What validation refuses is refused by every way in (create, update, patch, transaction,
//! import) with the status FHIR prescribes, and leaves nothing written.

use repository::{ImportCounts, ImportOptions, ImportUnit};
use serde_json::{Value, json};
use test_support::backend_tests;

use crate::support::*;

fn names(count: usize) -> Value {
    Value::Array(
        (0..count)
            .map(|i| json!({"family": format!("F{i}")}))
            .collect(),
    )
}

const XHTML: &str = "http://www.w3.org/1999/xhtml";

backend_tests! {
    fn a_resource_over_a_repetition_limit_is_a_422_naming_the_element(store) {
        // Regression: a valid Patient with 10,000 names was stored, and made searches slow.
        let repository = repository(store);
        let crowded = json!({"resourceType": "Patient", "id": "p1", "name": names(10_000)});
        let error = repository.create(&ctx(), crowded.clone(), None).unwrap_err();
        assert_eq!(error.http_status(), 422);
        let issues = error.issues("r");
        assert_eq!(issues[0].code.as_str(), "business-rule");
        assert_eq!(issues[0].expression.as_deref(), Some("Patient.name"));
        assert!(issues[0].diagnostics.contains("at most 1000"), "{}", issues[0].diagnostics);

        repository.update(&ctx(), "Patient", "p1", json!({"resourceType": "Patient", "id": "p1", "name": names(3)}), None).unwrap();
        let error = repository.update(&ctx(), "Patient", "p1", crowded.clone(), None).unwrap_err();
        assert_eq!(error.http_status(), 422);
        assert_eq!(repository.read(&ctx(), "Patient", "p1").unwrap().version, 1, "the update wrote nothing");

        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient", "id": "p2"}, "request": {"method": "PUT", "url": "Patient/p2"}},
            {"resource": crowded.clone(), "request": {"method": "PUT", "url": "Patient/p1"}}
        ]});
        let error = repository.process_bundle(&ctx(), BASE, bundle, Default::default()).unwrap_err();
        assert_eq!(error.http_status(), 422);
        assert_eq!(error.issues("r")[0].expression.as_deref(), Some("Bundle.entry[1].resource.name"));
        assert!(repository.read(&ctx(), "Patient", "p2").is_err(), "the transaction was rolled back");

        let unit = ImportUnit { source: "data.ndjson:7".into(), json: serde_json::to_vec(&crowded).unwrap() };
        let report = repository.import(&ctx(), vec![unit].into_iter(), ImportOptions { workers: 1, batch_resources: 10, ..ImportOptions::default() }, &|_: &ImportCounts| {});
        assert_eq!((report.counts.updated, report.counts.failed), (0, 1));
        assert_eq!(report.failures[0].source, "data.ndjson:7");
        assert_eq!(report.failures[0].issues[0].expression.as_deref(), Some("Patient.name"));
        assert_eq!(repository.read(&ctx(), "Patient", "p1").unwrap().version, 1);
    }

    fn a_patch_cannot_bring_in_what_a_write_refuses(store) {
        let repository = repository(store);
        repository.update(&ctx(), "Patient", "p1", json!({"resourceType": "Patient", "id": "p1", "active": true}), None).unwrap();
        let script = json!([{"op": "add", "path": "/text", "value": {"status": "generated",
            "div": format!("<div xmlns=\"{XHTML}\">x<script>alert(1)</script></div>")}}]);
        let orphan = json!([{"op": "add", "path": "/contained", "value": [{"resourceType": "Organization", "id": "o", "name": "X"}]}]);
        let crowd = json!([{"op": "add", "path": "/name", "value": names(1_001)}]);
        for (patch, expression) in [(script, "Patient.text.div"), (orphan, "Patient.contained[0]"), (crowd, "Patient.name")] {
            let error = repository.patch(&ctx(), "Patient", "p1", &patch, None).unwrap_err();
            assert_eq!(error.http_status(), 422, "{patch}");
            assert_eq!(error.issues("r")[0].expression.as_deref(), Some(expression));
        }
        assert_eq!(repository.read(&ctx(), "Patient", "p1").unwrap().version, 1, "no patch wrote anything");
    }
}
