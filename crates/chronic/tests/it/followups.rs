//! Due dates from the record, as the crate documents them: the regular interval, the two-week
//! recall after an uncontrolled follow-up or reading, and the referral after two uncontrolled
//! follow-ups in a row.

use chronic::dates::{day_of, format_day};
use chronic::followup::{DueReason, evaluate};
use chronic::{DueState, EpisodeStatus, PROGRAM_SYSTEM};
use serde_json::{Value, json};

use crate::common::{blood_pressure, follow_up, glucose};

fn episode(program: &str, start: &str) -> Value {
    json!({"resourceType": "EpisodeOfCare", "id": "eoc", "status": "active",
        "type": [{"coding": [{"system": PROGRAM_SYSTEM, "code": program}]}],
        "patient": {"reference": "Patient/p"}, "period": {"start": start}})
}

fn status(
    program: &str,
    birth: &str,
    encounters: &[Value],
    observations: &[Value],
    as_of: &str,
) -> EpisodeStatus {
    let rules = chronic::rules::rules().unwrap();
    evaluate(
        rules,
        &episode(program, "2025-01-10"),
        day_of(birth),
        encounters,
        observations,
        day_of(as_of).unwrap(),
    )
    .expect("an active programme episode")
}

fn visits() -> Vec<Value> {
    vec![
        follow_up("e1", "p", "2025-01-10T09:00:00+08:00", Some("eoc")),
        // A follow-up visit that names no episode counts by its type.
        follow_up("e2", "p", "2025-04-08T09:00:00+08:00", None),
    ]
}

#[test]
fn controlled_follow_ups_are_due_three_calendar_months_after_the_last() {
    let readings = [
        blood_pressure("o1", "p", 130, 80, "2025-01-10T09:05:00+08:00", Some("e1")),
        blood_pressure("o2", "p", 132, 84, "2025-04-08T09:05:00+08:00", Some("e2")),
    ];
    let s = status(
        "hypertension",
        "1970-01-01",
        &visits(),
        &readings,
        "2025-06-20",
    );
    assert_eq!(s.follow_ups.len(), 2);
    assert_eq!(s.last_follow_up().unwrap().encounter, "Encounter/e2");
    assert_eq!(format_day(s.next_due), "2025-07-08");
    assert_eq!(s.due_reason, DueReason::Interval);
    assert_eq!(s.state, DueState::Ok);
    assert!(!s.uncontrolled && !s.referral_suggested);
    assert_eq!(
        status(
            "hypertension",
            "1970-01-01",
            &visits(),
            &readings,
            "2025-07-01"
        )
        .state,
        DueState::Due
    );
    assert_eq!(
        status(
            "hypertension",
            "1970-01-01",
            &visits(),
            &readings,
            "2025-07-08"
        )
        .state,
        DueState::Due
    );
    assert_eq!(
        status(
            "hypertension",
            "1970-01-01",
            &visits(),
            &readings,
            "2025-07-09"
        )
        .state,
        DueState::Overdue
    );
    // As of a date before the second visit, only the first counts.
    let earlier = status(
        "hypertension",
        "1970-01-01",
        &visits(),
        &readings,
        "2025-03-01",
    );
    assert_eq!(earlier.follow_ups.len(), 1);
    assert_eq!(format_day(earlier.next_due), "2025-04-10");
}

#[test]
fn an_uncontrolled_follow_up_brings_the_next_within_two_weeks() {
    let readings = [
        blood_pressure("o1", "p", 130, 80, "2025-01-10T09:05:00+08:00", Some("e1")),
        blood_pressure("o2", "p", 150, 95, "2025-04-08T09:05:00+08:00", Some("e2")),
    ];
    let s = status(
        "hypertension",
        "1970-01-01",
        &visits(),
        &readings,
        "2025-04-20",
    );
    assert_eq!(format_day(s.next_due), "2025-04-22");
    assert_eq!(s.due_reason, DueReason::UncontrolledFollowUp);
    assert_eq!(s.state, DueState::Due);
    assert!(s.uncontrolled && !s.referral_suggested);
    // The same pressure at 66 meets the older target (below 150/90): not this one, 150 is not
    // below 150.
    let older = status(
        "hypertension",
        "1959-01-01",
        &visits(),
        &readings,
        "2025-04-20",
    );
    assert!(older.uncontrolled);
    let mildly = [
        blood_pressure("o1", "p", 130, 80, "2025-01-10T09:05:00+08:00", Some("e1")),
        blood_pressure("o2", "p", 145, 85, "2025-04-08T09:05:00+08:00", Some("e2")),
    ];
    assert!(
        !status(
            "hypertension",
            "1959-01-01",
            &visits(),
            &mildly,
            "2025-04-20"
        )
        .uncontrolled
    );
    assert!(
        status(
            "hypertension",
            "1970-01-01",
            &visits(),
            &mildly,
            "2025-04-20"
        )
        .uncontrolled
    );
}

#[test]
fn two_uncontrolled_follow_ups_in_a_row_suggest_referral() {
    let readings = [
        blood_pressure("o1", "p", 158, 92, "2025-01-10T09:05:00+08:00", Some("e1")),
        blood_pressure("o2", "p", 150, 95, "2025-04-08T09:05:00+08:00", Some("e2")),
    ];
    let s = status(
        "hypertension",
        "1970-01-01",
        &visits(),
        &readings,
        "2025-05-01",
    );
    assert!(s.referral_suggested);
    assert_eq!(s.state, DueState::Overdue);
    // Diabetes: a capillary glucose of 8.2 at each visit.
    let sugars = [
        glucose(
            "g1",
            "p",
            "14743-9",
            8.2,
            "2025-01-10T09:05:00+08:00",
            Some("e1"),
        ),
        glucose(
            "g2",
            "p",
            "14743-9",
            7.0,
            "2025-04-08T09:05:00+08:00",
            Some("e2"),
        ),
    ];
    let d = status(
        "type-2-diabetes",
        "1970-01-01",
        &visits(),
        &sugars,
        "2025-05-01",
    );
    assert!(d.referral_suggested);
    // The blood pressures say nothing about the diabetes programme.
    let d = status(
        "type-2-diabetes",
        "1970-01-01",
        &visits(),
        &readings,
        "2025-05-01",
    );
    assert!(!d.referral_suggested && !d.uncontrolled);
}

#[test]
fn an_uncontrolled_kiosk_reading_after_the_last_follow_up_recalls_within_two_weeks() {
    let readings = [
        blood_pressure("o1", "p", 130, 80, "2025-01-10T09:05:00+08:00", Some("e1")),
        blood_pressure("o2", "p", 132, 84, "2025-04-08T09:05:00+08:00", Some("e2")),
        // Before the last visit: superseded by it.
        blood_pressure("k0", "p", 170, 100, "2025-03-01T07:00:00+08:00", None),
        blood_pressure("k1", "p", 162, 98, "2025-05-01T07:00:00+08:00", None),
        blood_pressure("k2", "p", 165, 99, "2025-05-03T07:00:00+08:00", None),
    ];
    let s = status(
        "hypertension",
        "1970-01-01",
        &visits(),
        &readings,
        "2025-05-10",
    );
    assert_eq!(format_day(s.next_due), "2025-05-15");
    assert_eq!(s.due_reason, DueReason::UncontrolledReading);
    assert_eq!(s.uncontrolled_reading.as_deref(), Some("Observation/k1"));
    assert!(s.uncontrolled && !s.referral_suggested);
    // A reading measured after the date asked about does not count yet.
    let before = status(
        "hypertension",
        "1970-01-01",
        &visits(),
        &readings,
        "2025-04-30",
    );
    assert_eq!(format_day(before.next_due), "2025-07-08");
}

#[test]
fn without_follow_ups_the_interval_runs_from_the_start_in_calendar_months() {
    let rules = chronic::rules::rules().unwrap();
    let s = evaluate(
        rules,
        &episode("hypertension", "2025-11-30"),
        None,
        &[],
        &[],
        day_of("2026-01-15").unwrap(),
    )
    .unwrap();
    assert_eq!(format_day(s.next_due), "2026-02-28");
    assert_eq!(s.state, DueState::Ok);
    let mut finished = episode("hypertension", "2025-11-30");
    finished["status"] = json!("finished");
    assert!(evaluate(rules, &finished, None, &[], &[], 0).is_none());
    assert!(
        evaluate(
            rules,
            &json!({"resourceType": "EpisodeOfCare"}),
            None,
            &[],
            &[],
            0
        )
        .is_none()
    );
}
