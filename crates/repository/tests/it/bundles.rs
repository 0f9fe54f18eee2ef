//! Transactions (all or nothing, reference rewriting, processing order) and batches (each
//! entry on its own).

use repository::BundleOptions;
use serde_json::{Value, json};
use test_support::backend_tests;

use crate::support::*;

fn process(
    repository: &repository::Repository,
    bundle: Value,
) -> Result<Value, repository::RepositoryError> {
    repository
        .process_bundle(
            &ctx(),
            BASE,
            bundle,
            BundleOptions {
                return_representation: true,
            },
        )
        .map(|bytes| json(&bytes))
}

fn practitioner() -> Value {
    json!({"resourceType": "Practitioner", "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "9999"}]})
}

/// Standard base64 with padding, for Binary.data.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

backend_tests! {
    fn a_transaction_resolves_bundle_and_conditional_references(store) {
        let repository = repository(store);
        let practitioner_id = repository.create(&ctx(), practitioner(), None).unwrap().record.unwrap().id;
        let response = process(&repository, transaction(vec![
            json!({"fullUrl": "urn:uuid:7f8a2b1c-0000-4000-8000-000000000002",
                   "resource": {"resourceType": "Encounter", "status": "finished",
                                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                                "subject": {"reference": "urn:uuid:7f8a2b1c-0000-4000-8000-000000000001"},
                                "participant": [{"individual": {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999"}}]},
                   "request": {"method": "POST", "url": "Encounter"}}),
            json!({"fullUrl": "urn:uuid:7f8a2b1c-0000-4000-8000-000000000001",
                   "resource": {"resourceType": "Patient", "gender": "female"},
                   "request": {"method": "POST", "url": "Patient"}}),
        ])).unwrap();
        assert_eq!(response["type"], json!("transaction-response"));
        let entries = response["entry"].as_array().unwrap();
        assert_eq!(entries[0]["response"]["status"], json!("201 Created"));
        let patient_id = entries[1]["resource"]["id"].as_str().unwrap();
        let encounter_id = entries[0]["resource"]["id"].as_str().unwrap();
        let encounter = json(repository.read(&ctx(), "Encounter", encounter_id).unwrap().content.as_deref().unwrap());
        assert_eq!(encounter["subject"]["reference"], json!(format!("Patient/{patient_id}")));
        assert_eq!(encounter["participant"][0]["individual"]["reference"], json!(format!("Practitioner/{practitioner_id}")));
        assert_eq!(entries[1]["response"]["location"], json!(format!("Patient/{patient_id}/_history/1")));
        assert_eq!(search_ids(&repository, "Encounter", &[("subject", &format!("Patient/{patient_id}"))]), [encounter_id]);
    }

    fn a_failing_entry_rolls_the_whole_transaction_back(store) {
        let repository = repository(store);
        let error = process(&repository, transaction(vec![
            json!({"resource": {"resourceType": "Patient", "gender": "female"}, "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": {"resourceType": "Patient", "gender": "not-a-gender"}, "request": {"method": "POST", "url": "Patient"}}),
        ])).unwrap_err();
        assert_eq!(error.http_status(), 400);
        let issue = &error.issues("r")[0];
        assert_eq!(issue.expression.as_deref(), Some("Bundle.entry[1].resource.gender"));
        assert!(search_ids(&repository, "Patient", &[]).is_empty(), "the first entry was rolled back");

        let unresolvable = process(&repository, transaction(vec![
            json!({"resource": {"resourceType": "Encounter", "status": "finished",
                                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                                "participant": [{"individual": {"reference": "Practitioner?identifier=nobody"}}]},
                   "request": {"method": "POST", "url": "Encounter"}}),
            json!({"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}),
        ])).unwrap_err();
        assert_eq!(unresolvable.http_status(), 412);
        let dangling = process(&repository, transaction(vec![
            json!({"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-00000000dead"}},
                   "request": {"method": "POST", "url": "Observation"}}),
        ])).unwrap_err();
        assert_eq!(dangling.http_status(), 400);
        assert!(search_ids(&repository, "Patient", &[]).is_empty());
        assert!(search_ids(&repository, "Observation", &[]).is_empty());
    }

    fn a_transaction_deletes_before_it_creates_and_reads_last(store) {
        let repository = repository(store);
        let id = repository.create(&ctx(), practitioner(), None).unwrap().record.unwrap().id;
        // Written in the "wrong" order: the read, the conditional create, then the delete.
        let response = process(&repository, transaction(vec![
            json!({"request": {"method": "GET", "url": format!("Practitioner/{id}")}}),
            json!({"resource": practitioner(), "request": {"method": "POST", "url": "Practitioner",
                   "ifNoneExist": "identifier=http://hl7.org/fhir/sid/us-npi|9999"}}),
            json!({"request": {"method": "DELETE", "url": format!("Practitioner/{id}")}}),
        ])).unwrap();
        let entries = response["entry"].as_array().unwrap();
        assert_eq!(entries[2]["response"]["status"], json!("204 No Content"));
        assert_eq!(entries[1]["response"]["status"], json!("201 Created"), "the delete ran first, so no match");
        assert_eq!(entries[0]["response"]["status"], json!("410 Gone"), "the read ran last");
        assert_eq!(search_ids(&repository, "Practitioner", &[]).len(), 1);
    }

    fn a_bundle_with_a_repeated_full_url_is_refused_whole_bdl_7(store) {
        // Regression: two entries with one fullUrl were accepted, and references to it went to
        // whichever entry was planned last.
        let repository = repository(store);
        let full_url = "urn:uuid:3c0e8f2a-0000-4000-8000-000000000001";
        let entries = vec![
            json!({"fullUrl": full_url, "resource": {"resourceType": "Patient", "gender": "male"}, "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": full_url}},
                   "request": {"method": "POST", "url": "Observation"}}),
            json!({"fullUrl": full_url, "resource": {"resourceType": "Patient", "gender": "female"}, "request": {"method": "POST", "url": "Patient"}}),
        ];
        for kind in ["transaction", "batch"] {
            let error = process(&repository, json!({"resourceType": "Bundle", "type": kind, "entry": entries.clone()})).unwrap_err();
            assert_eq!(error.http_status(), 400, "{kind}");
            let issues = error.issues("r");
            assert_eq!(issues.len(), 1, "{kind}: {issues:?}");
            assert_eq!(issues[0].expression.as_deref(), Some("Bundle.entry[2].fullUrl"), "{kind}");
            assert!(issues[0].diagnostics.contains("bdl-7"), "{}", issues[0].diagnostics);
        }
        assert!(search_ids(&repository, "Patient", &[]).is_empty(), "nothing was written");
        assert!(search_ids(&repository, "Observation", &[]).is_empty(), "nothing was written");
    }

    fn a_patch_whose_binary_names_a_property_twice_is_refused(store) {
        // The JSON Patch inside a Binary comes from the client too: read like any body.
        let repository = repository(store);
        repository.update(&ctx(), "Patient", "p1", json!({"resourceType": "Patient", "id": "p1", "active": true}), None).unwrap();
        let patch = |document: &str| json!({"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                                                          "data": base64(document.as_bytes())},
                                            "request": {"method": "PATCH", "url": "Patient/p1"}});
        let twice = r#"[{"op": "replace", "path": "/active", "value": false, "value": true}]"#;
        let error = process(&repository, transaction(vec![patch(twice)])).unwrap_err();
        assert_eq!(error.http_status(), 400);
        let issue = &error.issues("r")[0];
        assert_eq!(issue.expression.as_deref(), Some("Bundle.entry[0]"));
        assert!(issue.diagnostics.contains("'value' appears twice"), "{}", issue.diagnostics);
        let batch = process(&repository, json!({"resourceType": "Bundle", "type": "batch", "entry": [patch(twice)]})).unwrap();
        assert_eq!(batch["entry"][0]["response"]["status"], json!("400 Bad Request"));
        assert_eq!(repository.read(&ctx(), "Patient", "p1").unwrap().version, 1, "nothing was written");
        // The same patch, said once, applies.
        let once = r#"[{"op": "replace", "path": "/active", "value": false}]"#;
        process(&repository, transaction(vec![patch(once)])).unwrap();
        assert_eq!(repository.read(&ctx(), "Patient", "p1").unwrap().version, 2);
    }

    fn batch_entries_succeed_or_fail_on_their_own(store) {
        let repository = repository(store);
        let response = process(&repository, json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Patient", "gender": "male"}, "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "gender": "purple"}, "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/missing"}},
            {"resource": {"resourceType": "Patient", "id": "b1"}, "request": {"method": "PUT", "url": "Patient/b1"}},
        ]})).unwrap();
        assert_eq!(response["type"], json!("batch-response"));
        let statuses: Vec<&str> = response["entry"].as_array().unwrap().iter().map(|e| e["response"]["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["201 Created", "400 Bad Request", "404 Not Found", "201 Created"]);
        assert_eq!(response["entry"][1]["response"]["outcome"]["resourceType"], json!("OperationOutcome"));
        assert_eq!(search_ids(&repository, "Patient", &[]).len(), 2);
    }

    fn malformed_bundles_are_refused_whole(store) {
        let repository = repository(store);
        let not_bundle = process(&repository, json!({"resourceType": "Patient"})).unwrap_err();
        assert_eq!(not_bundle.http_status(), 400);
        let collection = process(&repository, json!({"resourceType": "Bundle", "type": "collection"})).unwrap_err();
        assert_eq!(collection.http_status(), 400);
        let no_method = process(&repository, transaction(vec![json!({"resource": {"resourceType": "Patient"}})])).unwrap_err();
        assert_eq!(no_method.issues("r")[0].expression.as_deref(), Some("Bundle.entry[0].request.method"));
        let mismatched = process(&repository, transaction(vec![
            json!({"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Observation"}}),
        ])).unwrap_err();
        assert_eq!(mismatched.http_status(), 400);
        let empty = process(&repository, transaction(vec![])).unwrap();
        assert!(empty.get("entry").is_none());
    }
}
