//! Alerts for critical readings: exactly one per Observation, to the family doctor and their
//! institution (or the record keeper), and none for readings that are not critical.

use chronic::{ALERT_IDENTIFIER, ALERT_SYSTEM, process_all};
use serde_json::json;

use crate::common::*;

fn alerts_about(repository: &repository::Repository, observation: &str) -> Vec<serde_json::Value> {
    all(
        repository,
        "Communication",
        &[("identifier", &format!("{ALERT_IDENTIFIER}|{observation}"))],
    )
}

test_support::backend_tests! {
    fn critical_readings_raise_one_alert_each_to_the_right_people(store) {
        let repository = repository(store);
        region(&repository);
        let op = operator();
        // A kiosk's readings, uploaded by the platform.
        put(&repository, &op, blood_pressure("bp-high", "p1", 186, 100, "2025-06-01T07:30:00+08:00", None));
        put(&repository, &op, blood_pressure("bp-ok", "p1", 128, 82, "2025-06-02T07:30:00+08:00", None));
        put(&repository, &op, blood_pressure("bp-uncontrolled", "p1", 162, 96, "2025-06-03T07:30:00+08:00", None));
        put(&repository, &op, glucose("glu-high", "p2", "14743-9", 17.4, "2025-06-01T07:33:00+08:00", None));
        put(&repository, &op, glucose("glu-low", "p2", "14771-0", 3.6, "2025-06-04", None));
        put(&repository, &op, glucose("glu-ok", "p2", "14771-0", 6.1, "2025-06-05", None));

        let done = process_all(&repository, &op, 4).unwrap();
        assert_eq!(done.alerts, 3);
        assert!(alerts_about(&repository, "bp-ok").is_empty());
        assert!(alerts_about(&repository, "bp-uncontrolled").is_empty());
        assert!(alerts_about(&repository, "glu-ok").is_empty());

        let bp = alerts_about(&repository, "bp-high");
        assert_eq!(bp.len(), 1);
        let bp = &bp[0];
        assert_eq!(bp["status"], "in-progress");
        assert_eq!(bp["priority"], "urgent");
        assert_eq!(bp["category"][0]["coding"][0]["system"], ALERT_SYSTEM);
        assert_eq!(bp["category"][0]["coding"][0]["code"], "critical-reading");
        assert_eq!(bp["subject"]["reference"], "Patient/p1");
        assert_eq!(refs(&bp["about"]), ["Observation/bp-high"]);
        assert_eq!(refs(&bp["recipient"]), ["Practitioner/doc-v", "Organization/vc"]);
        assert_eq!(bp["meta"]["source"], "Organization/vc");
        let text = bp["payload"][0]["contentString"].as_str().unwrap();
        assert!(text.contains("186/100 mmHg") && text.contains("血压") && text.contains("2025-06-01"), "{text}");

        let glucose_alert = &alerts_about(&repository, "glu-high")[0];
        assert_eq!(refs(&glucose_alert["recipient"]), ["Organization/thc"]);
        assert!(glucose_alert["payload"][0]["contentString"].as_str().unwrap().contains("17.4 mmol/L"));
        assert_eq!(alerts_about(&repository, "glu-low").len(), 1);

        // The village clinic sees the alert addressed to it; another institution does not.
        let village = clinician("doc-v", "vc");
        let criteria = [("identifier".to_owned(), format!("{ALERT_IDENTIFIER}|bp-high"))];
        assert_eq!(repository.find(&village, "Communication", &criteria, 10).unwrap().len(), 1);
        let elsewhere = clinician("doc-e", "elsewhere");
        assert!(repository.find(&elsewhere, "Communication", &criteria, 10).unwrap().is_empty());

        // Written again (a kiosk re-uploads), and raised again directly: still one alert.
        let mut again = blood_pressure("bp-high", "p1", 186, 100, "2025-06-01T07:30:00+08:00", None);
        again["note"] = json!([{"text": "重传"}]);
        put(&repository, &op, again);
        assert_eq!(process_all(&repository, &op, 10).unwrap().alerts, 0);
        let rules = chronic::rules::rules().unwrap();
        let observation = all(&repository, "Observation", &[("_id", "bp-high")]).remove(0);
        let raised = repository
            .run_in_transaction(&op, |tx| chronic::alert::raise(tx, rules, &observation))
            .unwrap();
        assert!(matches!(raised, chronic::alert::Raised::Already(_)));
        assert_eq!(alerts_about(&repository, "bp-high").len(), 1);
    }
}
