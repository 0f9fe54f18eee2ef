//! The intake service over a real store (both backends): a message applied once per control id
//! and content, a failed one kept and replayed after its sender's configuration is fixed,
//! configured senders' refusals, readings idempotent and refused with reasons.

use std::sync::Arc;

use caller::{Actor, Caller};
use hl7v2::AckCode;
use intake::device::{ReadingStatus, Readings, Upload};
use intake::senders::CodeMapping;
use intake::{Disposition, Intake, SenderConfig, Senders};
use repository::Repository;
use serde_json::{Value, json};
use test_support::TestStore;

fn stores() -> Vec<(&'static str, TestStore)> {
    vec![
        ("sqlite", test_support::sqlite()),
        ("postgres", test_support::postgres()),
    ]
}

fn repository(store: &TestStore) -> Arc<Repository> {
    let repository = Repository::new(Arc::clone(&store.store));
    repository.set_access_policy(Arc::new(access::policy::Policy::new()));
    Arc::new(repository)
}

/// The caller an edge builds for a sender (as the MLLP listener does).
fn caller_of(sender: &intake::Sender) -> Caller {
    let mut caller = Caller::operator("intake-test");
    caller.actor = Actor::Client(format!("hl7v2:{}", sender.key));
    caller.organization = Some(format!("Organization/{}", sender.organization));
    caller.scopes = vec!["system/*.cru".into(), "system/*.s".into()];
    caller
}

fn count(repository: &Repository, resource_type: &str, criteria: &[(&str, &str)]) -> usize {
    let criteria: Vec<(String, String)> = criteria
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    repository
        .find(&Caller::operator("count"), resource_type, &criteria, 1_000)
        .unwrap()
        .len()
}

const ADMIT: &str = "MSH|^~\\&|HIS|CNTY|MERIDIAN|TONGREN|20260601083000+0800||ADT^A01^ADT_A01|CTRL-1|P|2.5\r\
EVN|A01|20260601083000+0800\r\
PID|1||MRN-77^^^^MR||王^小明||19600302|M\r\
PV1|1|I|WARD-3^12^1||||D-1^李^华||||||||||||V-9001|||||||||||||||||||||||||20260601083000+0800\r";

const RESULT: &str = "MSH|^~\\&|LIS|CNTY|MERIDIAN|TONGREN|20260601093000+0800||ORU^R01^ORU_R01|CTRL-2|P|2.5\r\
PID|1||MRN-77^^^^MR||王^小明||19600302|M\r\
OBR|1|P-1|F-1|GLU^Glucose^L|||20260601090000+0800|||||||||||||||20260601093000+0800|||F\r\
OBX|1|NM|GLU^Glucose^L||6.1|mmol/L|3.9-6.1|N|||F|||20260601090000+0800\r";

fn parse(text: &str) -> hl7v2::Message {
    hl7v2::parse(text.as_bytes()).expect("a test message parses")
}

#[test]
fn a_message_is_applied_once_and_its_resend_is_acknowledged_without_a_second_write() {
    for (backend, store) in stores() {
        let repository = repository(&store);
        let intake = Intake::new(Arc::clone(&repository), Senders::default());
        let message = parse(ADMIT);
        let sender = intake.sender(&message, None).unwrap();
        assert!(sender.organization.starts_with("hl7-"), "{backend}");
        let caller = caller_of(&sender);
        let first = intake.receive(&caller, &sender, &message, ADMIT.as_bytes());
        assert_eq!(
            first.code,
            AckCode::ApplicationAccept,
            "{backend}: {:?}",
            first.errors
        );
        assert!(
            matches!(first.disposition, Disposition::Applied { .. }),
            "{backend}"
        );
        // The facility first seen is an institution now, holding what it sent.
        assert_eq!(
            count(
                &repository,
                "Organization",
                &[(
                    "identifier",
                    "https://meridian.example/sid/hl7v2-facility|CNTY"
                )]
            ),
            1,
            "{backend}"
        );
        // Sent again (a lost acknowledgement), with a new sending time: not applied again.
        let again_text = ADMIT.replace("20260601083000+0800||ADT", "20260601083500+0800||ADT");
        let again = intake.receive(&caller, &sender, &parse(&again_text), again_text.as_bytes());
        assert_eq!(again.code, AckCode::ApplicationAccept, "{backend}");
        assert!(
            matches!(again.disposition, Disposition::Duplicate),
            "{backend}"
        );
        let patients = count(&repository, "Patient", &[("identifier", "MRN-77")]);
        assert_eq!(patients, 1, "{backend}");
        let history = repository
            .find(
                &Caller::operator("t"),
                "Patient",
                &[("identifier".into(), "MRN-77".into())],
                5,
            )
            .unwrap();
        assert_eq!(
            history[0].version, 1,
            "{backend}: the resend wrote no new version"
        );
        // The same control id with other content is another message (a sender reusing ids).
        let renamed = ADMIT.replace("王^小明", "王^晓明");
        let applied = intake.receive(&caller, &sender, &parse(&renamed), renamed.as_bytes());
        assert!(
            matches!(applied.disposition, Disposition::Applied { .. }),
            "{backend}"
        );
        assert_eq!(
            count(&repository, "Patient", &[("identifier", "MRN-77")]),
            1,
            "{backend}"
        );
        // A result for the same patient joins the same registration.
        let result = intake.receive(&caller, &sender, &parse(RESULT), RESULT.as_bytes());
        assert_eq!(
            result.code,
            AckCode::ApplicationAccept,
            "{backend}: {:?}",
            result.errors
        );
        let observations = repository
            .find(
                &Caller::operator("t"),
                "Observation",
                &[("code".into(), "GLU".into())],
                5,
            )
            .unwrap();
        assert_eq!(observations.len(), 1, "{backend}");
        let observation = repository::parse_stored(&observations[0]).unwrap();
        let patient = repository::parse_stored(&history[0]).unwrap();
        assert_eq!(
            observation["subject"]["reference"],
            json!(format!("Patient/{}", patient["id"].as_str().unwrap())),
            "{backend}"
        );
        assert_eq!(
            observation["valueQuantity"]["value"],
            json!(6.1),
            "{backend}"
        );
        assert!(intake.dead_letters().unwrap().is_empty(), "{backend}");
    }
}

#[test]
fn a_message_the_store_refuses_is_kept_and_applies_on_replay_after_the_mapping_is_fixed() {
    for (backend, store) in stores() {
        let repository = repository(&store);
        let configured = |to_system: &str| {
            Senders::new(vec![SenderConfig {
                name: "county-lis".into(),
                facility: "CNTY".into(),
                application: None,
                organization: "county-hosp".into(),
                accept: vec!["ORU^R01".into()],
                addresses: Vec::new(),
                codes: vec![CodeMapping {
                    system: "L".into(),
                    code: "GLU".into(),
                    to_system: to_system.into(),
                    to_code: "14743-9".into(),
                    display: None,
                }],
            }])
        };
        // A mistyped mapping: a code system that is not a URI, which no Observation may carry.
        let broken = Intake::new(Arc::clone(&repository), configured("loinc org"));
        let message = parse(RESULT);
        let sender = broken.sender(&message, None).unwrap();
        let received = broken.receive(&caller_of(&sender), &sender, &message, RESULT.as_bytes());
        assert_eq!(received.code, AckCode::ApplicationError, "{backend}");
        assert!(!received.errors[0].text.is_empty(), "{backend}");
        let Disposition::DeadLettered { id } = &received.disposition else {
            panic!("{backend}: {:?}", received.disposition)
        };
        let kept = broken.dead_letters().unwrap();
        assert_eq!(kept.len(), 1, "{backend}");
        assert_eq!(&kept[0].id, id, "{backend}");
        assert_eq!(kept[0].control_id.as_deref(), Some("CTRL-2"), "{backend}");
        assert_eq!(kept[0].bytes, RESULT.as_bytes(), "{backend}");
        assert_eq!(
            count(&repository, "Observation", &[]),
            0,
            "{backend}: nothing half-written"
        );
        // The mapping fixed: replay applies it and it leaves the store.
        let fixed = Intake::new(Arc::clone(&repository), configured("http://loinc.org"));
        let replayed = fixed.replay(None, &caller_of).unwrap();
        assert_eq!(replayed.len(), 1, "{backend}");
        assert!(
            matches!(replayed[0].1.disposition, Disposition::Applied { .. })
                && replayed[0].2.is_some(),
            "{backend}: {:?}",
            replayed[0].1.errors
        );
        assert!(fixed.dead_letters().unwrap().is_empty(), "{backend}");
        let observations = repository
            .find(
                &Caller::operator("t"),
                "Observation",
                &[("code".into(), "http://loinc.org|14743-9".into())],
                5,
            )
            .unwrap();
        assert_eq!(observations.len(), 1, "{backend}");
        // The held institution is the configured one.
        assert_eq!(
            observations[0].custodian.as_deref(),
            Some("Organization/county-hosp"),
            "{backend}"
        );
        // Sent again after the replay: already applied.
        let again = fixed.receive(&caller_of(&sender), &sender, &message, RESULT.as_bytes());
        assert!(
            matches!(again.disposition, Disposition::Duplicate),
            "{backend}"
        );
    }
}

#[test]
fn configured_senders_are_the_only_ones_and_send_only_their_types() {
    let store = test_support::sqlite();
    let repository = repository(&store);
    let intake = Intake::new(
        Arc::clone(&repository),
        Senders::new(vec![SenderConfig {
            name: "county-lis".into(),
            facility: "CNTY".into(),
            application: Some("LIS".into()),
            organization: "county-hosp".into(),
            accept: vec!["ORU".into()],
            addresses: vec!["10.1.2.3".parse().unwrap()],
            codes: Vec::new(),
        }]),
    );
    // Only from its own address.
    let result = parse(RESULT);
    let from_elsewhere = intake.sender(&result, Some("10.9.9.9".parse().unwrap()));
    assert_eq!(from_elsewhere.unwrap_err().error.code, 204);
    assert!(
        intake
            .sender(&result, Some("10.1.2.3".parse().unwrap()))
            .is_ok()
    );
    // ADMIT comes from CNTY's HIS, which is not configured.
    let refusal = intake.sender(&parse(ADMIT), None).unwrap_err();
    assert_eq!(refusal.code, AckCode::ApplicationReject);
    assert_eq!(refusal.error.code, 204);
    // The LIS may send results but not admissions.
    let admit_from_lis = ADMIT.replace("|HIS|", "|LIS|");
    let message = parse(&admit_from_lis);
    let sender = intake.sender(&message, None).unwrap();
    let received = intake.receive(
        &caller_of(&sender),
        &sender,
        &message,
        admit_from_lis.as_bytes(),
    );
    assert_eq!(received.code, AckCode::ApplicationReject);
    assert_eq!(received.errors[0].code, 200);
    assert!(matches!(received.disposition, Disposition::Refused));
    assert!(intake.dead_letters().unwrap().is_empty());
    assert_eq!(count(&repository, "Patient", &[]), 0);
}

#[test]
fn bytes_that_are_no_message_are_kept_for_review() {
    let store = test_support::sqlite();
    let intake = Intake::new(repository(&store), Senders::default());
    let id = intake.keep_unreadable(b"PID|1||X\r", "no MSH").unwrap();
    let kept = intake.dead_letters().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, id);
    assert_eq!(kept[0].error, "no MSH");
    assert_eq!(kept[0].sender, None);
}

fn device_caller(device: &str, organization: &str) -> Caller {
    let mut caller = Caller::operator("device-test");
    caller.actor = Actor::Client(format!("device:{device}"));
    caller.organization = Some(format!("Organization/{organization}"));
    caller.scopes = vec!["system/Observation.cru".into()];
    caller
}

fn resident(repository: &Repository, id: &str, number: &str) {
    repository
        .update(
            &Caller::operator("t"),
            "Patient",
            id,
            json!({"resourceType": "Patient", "id": id,
                "identifier": [{"system": intake::device::RESIDENT_ID_SYSTEM, "value": number}]}),
            None,
        )
        .unwrap();
}

#[test]
fn readings_become_observations_once_and_impossible_ones_are_refused_and_kept() {
    for (backend, store) in stores() {
        let repository = repository(&store);
        resident(&repository, "r1", "52220119580802021X");
        let reading = |id: &str, extra: Value| {
            let mut reading = json!({"id": id, "resident": {"idNumber": "52220119580802021X"},
                "measured": "2026-06-01T07:30:00+08:00"});
            for (k, v) in extra.as_object().unwrap() {
                reading[k] = v.clone();
            }
            reading
        };
        let upload = Upload {
            device: "kiosk-1".into(),
            readings: vec![
                reading(
                    "a",
                    json!({"type": "blood-pressure", "systolic": 150, "diastolic": 95, "unit": "mmHg"}),
                ),
                reading(
                    "b",
                    json!({"type": "glucose", "value": 126, "unit": "mg/dL"}),
                ),
                reading(
                    "c",
                    json!({"type": "temperature", "value": 98.6, "unit": "[degF]"}),
                ),
                reading(
                    "d",
                    json!({"type": "blood-pressure", "systolic": 80, "diastolic": 95}),
                ),
                reading("e", json!({"type": "spo2", "value": 97, "unit": "ppm"})),
                reading(
                    "f",
                    json!({"type": "heart-rate", "value": 72, "resident": {"idNumber": "110101199003074514"}}),
                ),
                reading(
                    "g",
                    json!({"type": "weight", "value": 61.5, "measured": "2026-06-01"}),
                ),
            ],
        };
        let readings = Readings::new();
        let caller = device_caller("kiosk-1", "vc");
        let no_codes = |_: &str| None;
        let statuses = readings
            .write(
                &repository,
                &caller,
                std::slice::from_ref(&upload),
                &no_codes,
            )
            .unwrap();
        let statuses = &statuses[0];
        let accepted = |i: usize| matches!(statuses[i].1, ReadingStatus::Accepted { .. });
        assert!(
            accepted(0) && accepted(1) && accepted(2),
            "{backend}: {statuses:?}"
        );
        for (i, words) in [
            (3, "higher than diastolic"),
            (4, "unknown unit"),
            (5, "no resident"),
            (6, "time zone"),
        ] {
            match &statuses[i].1 {
                ReadingStatus::Refused(reason) => {
                    assert!(reason.contains(words), "{backend}: {reason}")
                }
                other => panic!("{backend}: reading {i}: {other:?}"),
            }
        }
        // The measurement's time, converted units, the device and the resident.
        let ReadingStatus::Accepted { observation, .. } = &statuses[1].1 else {
            unreachable!()
        };
        let id = observation.trim_start_matches("Observation/");
        let record = repository
            .read(&Caller::operator("t"), "Observation", id)
            .unwrap();
        let glucose = repository::parse_stored(&record).unwrap();
        assert_eq!(
            glucose["effectiveDateTime"],
            json!("2026-06-01T07:30:00+08:00"),
            "{backend}"
        );
        assert_eq!(glucose["valueQuantity"]["value"], json!(7.0), "{backend}");
        assert_eq!(
            glucose["valueQuantity"]["code"],
            json!("mmol/L"),
            "{backend}"
        );
        assert_eq!(
            glucose["subject"]["reference"],
            json!("Patient/r1"),
            "{backend}"
        );
        assert_eq!(
            glucose["device"]["reference"],
            json!("Device/kiosk-1"),
            "{backend}"
        );
        assert_eq!(
            record.custodian.as_deref(),
            Some("Organization/vc"),
            "{backend}"
        );
        // Sent again in another order: the same Observations, nothing new.
        let mut again = upload.clone();
        again.readings.reverse();
        let second = readings
            .write(&repository, &caller, &[again], &no_codes)
            .unwrap();
        let duplicates = second[0]
            .iter()
            .filter(|(_, s)| matches!(s, ReadingStatus::Duplicate(_)))
            .count();
        assert_eq!(duplicates, 3, "{backend}");
        assert_eq!(count(&repository, "Observation", &[]), 3, "{backend}");
        let kept = Readings::refused(&repository).unwrap();
        assert_eq!(
            kept.len(),
            4,
            "{backend}: each refused reading kept once: {kept:?}"
        );
        assert!(
            kept.iter()
                .all(|k| k["reason"].as_str().is_some_and(|r| !r.is_empty())),
            "{backend}"
        );
    }
}
