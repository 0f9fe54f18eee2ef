//! Create, read, update, patch, delete: plain, versioned and conditional.

use fhir_model::IssueCode;
use repository::{RepositoryError, WriteStatus};
use serde_json::json;
use test_support::backend_tests;

use crate::support::*;

fn patient(identifier: &str) -> serde_json::Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": identifier}],
        "name": [{"family": "张", "given": ["伟"]}],
        "gender": "male",
        "birthDate": "1980-02-29"
    })
}

backend_tests! {
    fn a_created_resource_reads_back_as_sent_plus_server_meta(store) {
        let repository = repository(store);
        let mut sent = patient("110105198002290011");
        sent["id"] = json!("client-chosen-and-ignored");
        let written = repository.create(&ctx(), sent.clone(), None).unwrap();
        assert_eq!(written.status, WriteStatus::Created);
        let record = written.record.unwrap();
        assert_ne!(record.id, "client-chosen-and-ignored", "create assigns the id");
        assert_eq!(record.version, 1);
        let read = json(repository.read(&ctx(), "Patient", &record.id).unwrap().content.as_deref().unwrap());
        assert_eq!(read["meta"]["versionId"], json!("1"));
        assert_eq!(read["meta"]["lastUpdated"], json!(fhir_model::clock::format_instant(record.last_updated)));
        let mut expected = sent;
        expected["id"] = json!(record.id);
        expected["meta"] = read["meta"].clone();
        assert_eq!(read, expected);
    }

    fn update_creates_with_the_clients_id_then_makes_versions(store) {
        let repository = repository(store);
        let mut resource = patient("1");
        resource["id"] = json!("p1");
        let first = repository.update(&ctx(), "Patient", "p1", resource.clone(), None).unwrap();
        assert_eq!(first.status, WriteStatus::Created);
        resource["gender"] = json!("female");
        let second = repository.update(&ctx(), "Patient", "p1", resource.clone(), None).unwrap();
        assert_eq!(second.status, WriteStatus::Updated);
        assert_eq!(second.record.as_ref().unwrap().version, 2);
        let unchanged = repository.update(&ctx(), "Patient", "p1", resource, None).unwrap();
        assert_eq!(unchanged.status, WriteStatus::Unchanged, "an identical update writes no version");
        assert_eq!(unchanged.record.unwrap().version, 2);
        let first_version = repository.vread(&ctx(), "Patient", "p1", "1").unwrap();
        assert_eq!(json(first_version.content.as_deref().unwrap())["gender"], json!("male"));
        assert!(matches!(repository.vread(&ctx(), "Patient", "p1", "3"), Err(RepositoryError::NotFound(_))));
        assert!(matches!(repository.vread(&ctx(), "Patient", "p1", "x"), Err(RepositoryError::NotFound(_))));
    }

    fn an_update_must_agree_with_its_url(store) {
        let repository = repository(store);
        let mut resource = patient("1");
        let no_id = repository.update(&ctx(), "Patient", "p1", resource.clone(), None).unwrap_err();
        assert_eq!(no_id.http_status(), 400);
        resource["id"] = json!("p2");
        let other_id = repository.update(&ctx(), "Patient", "p1", resource.clone(), None).unwrap_err();
        assert_eq!(other_id.http_status(), 400);
        assert_eq!(other_id.issues("r")[0].expression.as_deref(), Some("Patient.id"));
        resource["id"] = json!("bad_id!");
        let bad_id = repository.update(&ctx(), "Patient", "bad_id!", resource.clone(), None).unwrap_err();
        assert_eq!(bad_id.http_status(), 400);
        resource["id"] = json!("p1");
        let wrong_type = repository.update(&ctx(), "Observation", "p1", resource, None).unwrap_err();
        assert_eq!(wrong_type.http_status(), 400);
        assert!(repository.read(&ctx(), "Patient", "p1").is_err(), "nothing was written");
    }

    fn if_match_names_the_version_an_update_expects(store) {
        let repository = repository(store);
        let mut resource = patient("1");
        resource["id"] = json!("p1");
        repository.update(&ctx(), "Patient", "p1", resource.clone(), None).unwrap();
        resource["gender"] = json!("female");
        let stale = repository.update(&ctx(), "Patient", "p1", resource.clone(), Some(2)).unwrap_err();
        assert_eq!(stale.http_status(), 412);
        let fresh = repository.update(&ctx(), "Patient", "p1", resource, Some(1)).unwrap();
        assert_eq!(fresh.record.unwrap().version, 2);
        assert_eq!(repository.delete(&ctx(), "Patient", "p1", Some(1)).unwrap_err().http_status(), 412);
    }

    fn an_invalid_resource_is_refused_with_the_offending_element(store) {
        let repository = repository(store);
        let mut resource = patient("1");
        resource["gender"] = json!("unknown-gender-code");
        resource["birthDate"] = json!("1980-02-30");
        let error = repository.create(&ctx(), resource, None).unwrap_err();
        assert_eq!(error.http_status(), 400);
        let issues = error.issues("r");
        let at: Vec<(&str, IssueCode)> = issues.iter().map(|i| (i.expression.as_deref().unwrap_or(""), i.code)).collect();
        assert!(at.contains(&("Patient.gender", IssueCode::CodeInvalid)), "{at:?}");
        assert!(at.contains(&("Patient.birthDate", IssueCode::Value)), "{at:?}");
        let unknown = repository.create(&ctx(), json!({"resourceType": "Patient", "colour": "blue"}), None).unwrap_err();
        assert_eq!(unknown.issues("r")[0].expression.as_deref(), Some("Patient.colour"));
        let not_a_type = repository.create(&ctx(), json!({"resourceType": "Patientt"}), None).unwrap_err();
        assert_eq!(not_a_type.http_status(), 400);
        assert!(search_ids(&repository, "Patient", &[]).is_empty(), "nothing was written");
    }

    fn a_deleted_resource_is_gone_but_its_history_remains(store) {
        let repository = repository(store);
        let id = repository.create(&ctx(), patient("1"), None).unwrap().record.unwrap().id;
        let deleted = repository.delete(&ctx(), "Patient", &id, None).unwrap();
        assert_eq!(deleted.status, WriteStatus::Deleted);
        assert_eq!(deleted.record.as_ref().unwrap().version, 2);
        match repository.read(&ctx(), "Patient", &id).unwrap_err() {
            RepositoryError::Gone { version, .. } => assert_eq!(version, 2),
            other => panic!("expected Gone, got {other:?}"),
        }
        assert!(repository.vread(&ctx(), "Patient", &id, "1").is_ok());
        assert_eq!(repository.vread(&ctx(), "Patient", &id, "2").unwrap_err().http_status(), 410);
        let again = repository.delete(&ctx(), "Patient", &id, None).unwrap();
        assert_eq!(again.status, WriteStatus::NothingToDelete, "deleting twice writes no version");
        assert_eq!(repository.delete(&ctx(), "Patient", "never", None).unwrap().status, WriteStatus::NothingToDelete);
        assert!(search_ids(&repository, "Patient", &[]).is_empty());
        assert_eq!(repository.read(&ctx(), "Patient", "never").unwrap_err().http_status(), 404);
        assert_eq!(repository.read(&ctx(), "Patientt", "x").unwrap_err().http_status(), 404);
    }

    fn conditional_create_finds_what_exists(store) {
        let repository = repository(store);
        let condition = criteria(&[("identifier", "urn:oid:2.16.156.10011.1.1|42")]);
        let first = repository.create(&ctx(), patient("42"), Some(&condition)).unwrap();
        assert_eq!(first.status, WriteStatus::Created);
        let second = repository.create(&ctx(), patient("42"), Some(&condition)).unwrap();
        assert_eq!(second.status, WriteStatus::Existing);
        assert_eq!(second.record.unwrap().id, first.record.unwrap().id);
        repository.create(&ctx(), patient("43"), None).unwrap();
        repository.create(&ctx(), patient("43"), None).unwrap();
        let ambiguous = criteria(&[("identifier", "43")]);
        assert_eq!(repository.create(&ctx(), patient("43"), Some(&ambiguous)).unwrap_err().http_status(), 412);
        let unknown = criteria(&[("no-such-param", "x")]);
        assert_eq!(repository.create(&ctx(), patient("44"), Some(&unknown)).unwrap_err().http_status(), 400);
    }

    fn conditional_criteria_made_only_of_empty_parameters_are_refused(store) {
        // Search ignores an empty parameter, so `identifier=` alone would select every
        // patient: a conditional delete must not take that for "the one match".
        let repository = repository(store);
        let only = repository.create(&ctx(), patient("45"), None).unwrap().record.unwrap();
        let empty = criteria(&[("identifier", "")]);
        assert_eq!(repository.conditional_delete(&ctx(), "Patient", &empty).unwrap_err().http_status(), 412);
        assert_eq!(repository.conditional_update(&ctx(), "Patient", &empty, patient("45"), None).unwrap_err().http_status(), 412);
        assert_eq!(repository.create(&ctx(), patient("45"), Some(&empty)).unwrap_err().http_status(), 412);
        assert!(repository.read(&ctx(), "Patient", &only.id).is_ok(), "nothing was deleted");
        assert_eq!(search_ids(&repository, "Patient", &[("identifier", ""), ("_id", &only.id)]), std::slice::from_ref(&only.id));
    }

    fn conditional_update_and_delete_act_on_the_one_match(store) {
        let repository = repository(store);
        let condition = criteria(&[("identifier", "urn:oid:2.16.156.10011.1.1|7")]);
        let created = repository.conditional_update(&ctx(), "Patient", &condition, patient("7"), None).unwrap();
        assert_eq!(created.status, WriteStatus::Created);
        let id = created.record.unwrap().id;
        let mut changed = patient("7");
        changed["gender"] = json!("other");
        let updated = repository.conditional_update(&ctx(), "Patient", &condition, changed.clone(), None).unwrap();
        assert_eq!(updated.status, WriteStatus::Updated);
        assert_eq!(updated.record.unwrap().id, id);
        changed["id"] = json!("someone-else");
        assert_eq!(repository.conditional_update(&ctx(), "Patient", &condition, changed, None).unwrap_err().http_status(), 400);
        let by_id = criteria(&[("_id", &id)]);
        assert_eq!(repository.conditional_delete(&ctx(), "Patient", &by_id).unwrap().status, WriteStatus::Deleted);
        assert_eq!(repository.conditional_delete(&ctx(), "Patient", &by_id).unwrap().status, WriteStatus::NothingToDelete);
        repository.create(&ctx(), patient("8"), None).unwrap();
        repository.create(&ctx(), patient("8"), None).unwrap();
        let many = criteria(&[("identifier", "8")]);
        assert_eq!(repository.conditional_delete(&ctx(), "Patient", &many).unwrap_err().http_status(), 412);
        assert_eq!(search_ids(&repository, "Patient", &[("identifier", "8")]).len(), 2, "nothing was deleted");
    }

    fn json_patch_changes_a_resource_and_keeps_it_valid(store) {
        let repository = repository(store);
        let id = repository.create(&ctx(), patient("1"), None).unwrap().record.unwrap().id;
        let patch = json!([{"op": "replace", "path": "/gender", "value": "female"}, {"op": "add", "path": "/active", "value": true}]);
        let patched = repository.patch(&ctx(), "Patient", &id, &patch, Some(1)).unwrap();
        let body = content(&patched);
        assert_eq!((body["gender"].clone(), body["active"].clone()), (json!("female"), json!(true)));
        assert_eq!(patched.record.unwrap().version, 2);
        let invalid = json!([{"op": "replace", "path": "/gender", "value": "purple"}]);
        assert_eq!(repository.patch(&ctx(), "Patient", &id, &invalid, None).unwrap_err().http_status(), 422);
        let failing_test = json!([{"op": "test", "path": "/gender", "value": "male"}]);
        assert_eq!(repository.patch(&ctx(), "Patient", &id, &failing_test, None).unwrap_err().http_status(), 422);
        let moves_id = json!([{"op": "replace", "path": "/id", "value": "other"}]);
        assert_eq!(repository.patch(&ctx(), "Patient", &id, &moves_id, None).unwrap_err().http_status(), 422);
        let not_a_patch = json!({"gender": "male"});
        assert_eq!(repository.patch(&ctx(), "Patient", &id, &not_a_patch, None).unwrap_err().http_status(), 400);
        assert_eq!(repository.patch(&ctx(), "Patient", "missing", &patch, None).unwrap_err().http_status(), 404);
        assert_eq!(repository.read(&ctx(), "Patient", &id).unwrap().version, 2, "failed patches wrote nothing");
    }

    fn history_lists_every_version_newest_first(store) {
        let repository = repository(store);
        let mut resource = patient("1");
        resource["id"] = json!("p1");
        repository.update(&ctx(), "Patient", "p1", resource.clone(), None).unwrap();
        resource["gender"] = json!("female");
        repository.update(&ctx(), "Patient", "p1", resource, None).unwrap();
        repository.delete(&ctx(), "Patient", "p1", None).unwrap();
        let request = repository::HistoryRequest {
            scope: store::HistoryScope::Instance("Patient".into(), "p1".into()),
            params: criteria(&[("_count", "2")]),
        };
        let page = json(&repository.history(&ctx(), BASE, &request).unwrap());
        assert_eq!(page["type"], json!("history"));
        let methods: Vec<&str> = page["entry"].as_array().unwrap().iter().map(|e| e["request"]["method"].as_str().unwrap()).collect();
        assert_eq!(methods, ["DELETE", "PUT"]);
        let next = page["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next").unwrap()["url"].as_str().unwrap().to_owned();
        let query = next.split_once('?').unwrap().1;
        let request = repository::HistoryRequest { params: repository::parse_query(query), ..request };
        let rest = json(&repository.history(&ctx(), BASE, &request).unwrap());
        assert_eq!(rest["entry"][0]["request"]["method"], json!("POST"));
        assert_eq!(rest["entry"][0]["resource"]["meta"]["versionId"], json!("1"));
        let bad = repository::HistoryRequest { params: criteria(&[("_since", "yesterday")]), ..request };
        assert_eq!(repository.history(&ctx(), BASE, &bad).unwrap_err().http_status(), 400);
    }
}
