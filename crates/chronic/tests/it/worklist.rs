//! Worklists under real callers: an institution sees the episodes it keeps and the alerts
//! addressed to it; a family doctor at a village clinic sees the alerts to them but not the
//! township's episodes (the access rules do not share them); another institution sees nothing.

use chronic::dates::day_of;
use chronic::operations::{invoke_worklist, parameters_of};
use chronic::{DueState, WorklistQuery, process_all, worklist};
use serde_json::json;

use crate::common::*;

const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";

fn query(practitioner: Option<&str>, organization: Option<&str>, as_of: &str) -> WorklistQuery {
    WorklistQuery {
        practitioner: practitioner.map(str::to_owned),
        organization: organization.map(str::to_owned),
        as_of: day_of(as_of).unwrap(),
    }
}

test_support::backend_tests! {
    fn the_worklist_holds_what_the_callers_read_path_allows(store) {
        let repository = repository(store);
        region(&repository);
        let township = clinician("doc-t", "thc");
        put(&repository, &township, condition("c1", "p1", ICD10, "I10", "2025-01-10"));
        put(&repository, &township, condition("c2", "p2", ICD10, "E11.9", "2025-03-01"));
        put(&repository, &township, follow_up("e1", "p1", "2025-01-10T09:00:00+08:00", None));
        put(&repository, &township, blood_pressure("o1", "p1", 150, 95, "2025-01-10T09:05:00+08:00", Some("e1")));
        put(&repository, &township, follow_up("e2", "p1", "2025-04-08T09:00:00+08:00", None));
        put(&repository, &township, blood_pressure("o2", "p1", 155, 96, "2025-04-08T09:05:00+08:00", Some("e2")));
        put(&repository, &operator(), blood_pressure("k1", "p1", 188, 112, "2025-04-20T07:00:00+08:00", None));
        let done = process_all(&repository, &operator(), 50).unwrap();
        assert_eq!((done.registrations, done.alerts), (2, 1));

        // The township centre keeps both records.
        let list = worklist(&repository, &township, query(None, Some("thc"), "2025-05-01")).unwrap();
        assert_eq!(list.episodes.len(), 2);
        let p1 = &list.episodes[0];
        assert_eq!((p1.patient.as_str(), p1.program.as_str()), ("Patient/p1", "hypertension"));
        assert_eq!(p1.state, DueState::Overdue);
        assert_eq!(chronic::dates::format_day(p1.next_due), "2025-04-22");
        assert!(p1.uncontrolled && p1.referral_suggested);
        let p2 = &list.episodes[1];
        assert_eq!((p2.program.as_str(), p2.state), ("type-2-diabetes", DueState::Ok));
        assert_eq!(chronic::dates::format_day(p2.next_due), "2025-06-01");
        // The alert went to the family doctor and the village clinic, not the township.
        assert!(list.alerts.is_empty());
        let fhir = list.to_fhir();
        assert!(repository.validate(&fhir).iter().all(|i| !i.is_error()), "{fhir:#}");

        // The family doctor, by default their own list: the alert, not the township's episodes.
        let doctor = clinician("doc-v", "vc");
        let own = worklist(&repository, &doctor, query(None, None, "2025-05-01")).unwrap();
        assert_eq!(own.practitioner.as_deref(), Some("Practitioner/doc-v"));
        assert!(own.episodes.is_empty());
        assert_eq!(own.alerts.len(), 1);
        assert_eq!(own.alerts[0].observation.as_deref(), Some("Observation/k1"));

        // Another institution, asking for the township's list, sees nothing of it.
        let elsewhere = clinician("doc-e", "elsewhere");
        let theirs = worklist(&repository, &elsewhere, query(Some("doc-v"), Some("thc"), "2025-05-01")).unwrap();
        assert!(theirs.episodes.is_empty() && theirs.alerts.is_empty());

        // The platform sees everything.
        let everything = worklist(&repository, &operator(), query(None, None, "2025-05-01")).unwrap();
        assert_eq!((everything.episodes.len(), everything.alerts.len()), (2, 1));

        // The doctor acknowledges the alert: it leaves the list.
        let alert_id = own.alerts[0].communication.trim_start_matches("Communication/").to_owned();
        let mut alert = repository::parse_stored(&repository.read(&doctor, "Communication", &alert_id).unwrap()).unwrap();
        alert["status"] = json!("completed");
        put(&repository, &doctor, alert);
        assert!(worklist(&repository, &doctor, query(None, None, "2025-05-01")).unwrap().alerts.is_empty());
        assert_eq!(process_all(&repository, &operator(), 50).unwrap().alerts, 0);

        // The operation, by GET parameters and by a Parameters body.
        let by_get = invoke_worklist(&repository, &township, &[
            ("organization".into(), "Organization/thc".into()),
            ("date".into(), "2025-05-01".into()),
        ]).unwrap();
        assert_eq!(by_get, fhir);
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "organization", "valueReference": {"reference": "Organization/thc"}},
            {"name": "date", "valueDate": "2025-05-01"}]});
        let by_post = invoke_worklist(&repository, &township, &parameters_of(&body).unwrap()).unwrap();
        assert_eq!(by_post, fhir);
        for bad in [("date", "2025-05"), ("date", "tomorrow"), ("colour", "red"), ("practitioner", "a b")] {
            let error = invoke_worklist(&repository, &township, &[(bad.0.into(), bad.1.into())]).unwrap_err();
            assert_eq!(fhir_model::Outcome::http_status(&error), 400, "{bad:?}");
        }
    }
}
