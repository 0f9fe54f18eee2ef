//! Enrolment from the change log: once per resident and programme, whatever else wrote an
//! episode, and nothing for a diagnosis that does not hold.

use chronic::{PROGRAM_SYSTEM, process_all};
use serde_json::json;

use crate::common::*;

const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";

test_support::backend_tests! {
    fn a_condition_from_a_county_hospital_registers_the_resident_once(store) {
        let repository = repository(store);
        region(&repository);
        let county = clinician("doc-c", "county-hosp");
        put(&repository, &county, condition("c1", "p1", ICD10, "I10.x00", "2025-02-10T10:00:00+08:00"));

        let first = process_all(&repository, &operator(), 100).unwrap();
        assert_eq!(first.registrations, 1);
        let episodes = all(&repository, "EpisodeOfCare", &[("patient", "Patient/p1")]);
        assert_eq!(episodes.len(), 1);
        let episode = &episodes[0];
        assert_eq!(episode["status"], "active");
        assert_eq!(episode["type"][0]["coding"][0]["system"], PROGRAM_SYSTEM);
        assert_eq!(episode["type"][0]["coding"][0]["code"], "hypertension");
        assert_eq!(episode["diagnosis"][0]["condition"]["reference"], "Condition/c1");
        assert_eq!(episode["managingOrganization"]["reference"], "Organization/thc");
        assert_eq!(episode["careManager"]["reference"], "Practitioner/doc-v");
        assert_eq!(episode["period"]["start"], "2025-02-10");
        assert_eq!(episode["meta"]["source"], "Organization/thc");

        let plans = all(&repository, "CarePlan", &[("patient", "Patient/p1")]);
        assert_eq!(plans.len(), 1);
        let plan = &plans[0];
        assert_eq!(plan["category"][0]["coding"][0]["code"], "443402002");
        assert_eq!(plan["author"]["reference"], "Practitioner/doc-v");
        assert_eq!(refs(&plan["contributor"]), ["Organization/vc"]);
        assert_eq!(
            refs(&plan["activity"][0]["detail"]["performer"]),
            ["Practitioner/doc-v", "Organization/vc"]
        );
        assert_eq!(plan["activity"][0]["detail"]["scheduledTiming"]["repeat"]["period"], 3);
        // The village clinic is a party of the plan, so its doctor sees it.
        let village = clinician("doc-v", "vc");
        let seen = repository.find(&village, "CarePlan", &[("patient".into(), "Patient/p1".into())], 10).unwrap();
        assert_eq!(seen.len(), 1);

        // Processed again, and the Condition written again: nothing new.
        assert_eq!(process_all(&repository, &operator(), 100).unwrap().changes, 0);
        let mut again = condition("c1", "p1", ICD10, "I10.x00", "2025-02-10T10:00:00+08:00");
        again["note"] = json!([{"text": "复诊确认"}]);
        put(&repository, &county, again);
        put(&repository, &county, condition("c1b", "p1", "http://snomed.info/sct", "38341003", "2025-03-01"));
        let later = process_all(&repository, &operator(), 100).unwrap();
        assert_eq!(later.changes, 2);
        assert_eq!(later.registrations, 0);
        assert_eq!(all(&repository, "EpisodeOfCare", &[("patient", "Patient/p1")]).len(), 1);

        // Type 2 diabetes is a second programme.
        put(&repository, &county, condition("c2", "p1", "http://snomed.info/sct", "44054006", "2025-04-01"));
        assert_eq!(process_all(&repository, &operator(), 100).unwrap().registrations, 1);
        let diabetes = all(&repository, "EpisodeOfCare", &[("patient", "Patient/p1"), ("type", &format!("{PROGRAM_SYSTEM}|type-2-diabetes"))]);
        assert_eq!(diabetes.len(), 1);
    }

    fn an_existing_seed_style_episode_is_reused_and_a_refuted_diagnosis_enrols_nobody(store) {
        let repository = repository(store);
        region(&repository);
        let op = operator();
        put(&repository, &op, condition("c1", "p1", ICD10, "E11.9", "2024-01-05"));
        put(&repository, &op, json!({"resourceType": "EpisodeOfCare", "id": "seed-eoc",
            "status": "active",
            "type": [{"coding": [{"system": PROGRAM_SYSTEM, "code": "type-2-diabetes"}]}],
            "diagnosis": [{"condition": {"reference": "Condition/c1"}, "rank": 1}],
            "patient": {"reference": "Patient/p1"},
            "managingOrganization": {"reference": "Organization/thc"},
            "period": {"start": "2024-01-05"},
            "careManager": {"reference": "Practitioner/doc-v"}}));
        let mut refuted = condition("c2", "p2", ICD10, "I10", "2024-01-05");
        refuted["verificationStatus"]["coding"][0]["code"] = json!("refuted");
        put(&repository, &op, refuted);
        let mut resolved = condition("c3", "p2", ICD10, "E11.9", "2024-01-05");
        resolved["clinicalStatus"]["coding"][0]["code"] = json!("resolved");
        put(&repository, &op, resolved);
        // A diagnosis of someone who does not exist enrols nobody and does not stop the log.
        put(&repository, &op, condition("c4", "nobody", ICD10, "I10", "2024-01-05"));

        let done = process_all(&repository, &op, 2).unwrap();
        assert_eq!(done.registrations, 0);
        assert_eq!(all(&repository, "EpisodeOfCare", &[]).len(), 1);
        assert!(all(&repository, "CarePlan", &[]).is_empty());
    }
}
