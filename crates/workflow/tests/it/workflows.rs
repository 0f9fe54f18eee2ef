//! The workflows on a real store of each backend, under the real access rules and callers of
//! each institution: a consultation from request to answer (who may make which move, what
//! each side sees while it is open and after), escalation on a clock the test gives, atomic
//! booking by fifty concurrent writers, reserved capacity, and follow-ups from a discharge
//! plan.

use std::sync::Arc;

use caller::{Actor, Caller};
use fhir_model::clock;
use repository::{Repository, RepositoryError, WriteStatus};
use serde_json::{Value, json};
use test_support::TestStore;
use workflow::{WorkflowConfig, WorkflowHook};

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

fn repository(store: &TestStore) -> Arc<Repository> {
    let repository = Repository::new(Arc::clone(&store.store));
    repository.set_access_policy(Arc::new(access::policy::Policy::new()));
    repository.add_write_hook(Arc::new(WorkflowHook::new(WorkflowConfig::default())));
    Arc::new(repository)
}

fn clinician(practitioner: &str, organization: &str) -> Caller {
    let mut caller = Caller::operator("workflow-test");
    caller.actor = Actor::User(format!("Practitioner/{practitioner}"));
    caller.organization = Some(format!("Organization/{organization}"));
    caller.scopes = vec!["user/*.cruds".into()];
    caller
}

fn resident(patient: &str) -> Caller {
    let mut caller = Caller::operator("workflow-test");
    caller.actor = Actor::User(format!("Patient/{patient}"));
    caller.patient = Some(format!("Patient/{patient}"));
    caller.scopes = vec!["patient/*.cruds".into()];
    caller
}

fn operator() -> Caller {
    Caller::operator("workflow-test")
}

fn put(repository: &Repository, by: &Caller, resource: Value) -> Value {
    let (t, id) = (
        resource["resourceType"].as_str().unwrap().to_owned(),
        resource["id"].as_str().unwrap().to_owned(),
    );
    let written = repository
        .update(by, &t, &id, resource, None)
        .unwrap_or_else(|e| panic!("{t}/{id}: {e}"));
    repository::parse_stored(written.record.as_ref().unwrap()).unwrap()
}

fn try_put(
    repository: &Repository,
    by: &Caller,
    resource: Value,
) -> Result<Value, RepositoryError> {
    let (t, id) = (
        resource["resourceType"].as_str().unwrap().to_owned(),
        resource["id"].as_str().unwrap().to_owned(),
    );
    let written = repository.update(by, &t, &id, resource, None)?;
    Ok(repository::parse_stored(written.record.as_ref().unwrap()).unwrap())
}

fn read(repository: &Repository, by: &Caller, t: &str, id: &str) -> Result<Value, RepositoryError> {
    repository
        .read(by, t, id)
        .and_then(|record| repository::parse_stored(&record))
}

fn organization(id: &str, part_of: Option<&str>) -> Value {
    let mut o = json!({"resourceType": "Organization", "id": id, "name": format!("{id} health")});
    if let Some(parent) = part_of {
        o["partOf"] = json!({"reference": format!("Organization/{parent}")});
    }
    o
}

fn region(repository: &Repository) {
    let op = operator();
    for (id, parent) in [
        ("city", None),
        ("county", Some("city")),
        ("township", Some("county")),
        ("village", Some("township")),
        ("elsewhere", None),
    ] {
        put(repository, &op, organization(id, parent));
    }
    let township = clinician("doctor-t", "township");
    put(
        repository,
        &township,
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Wang", "given": ["Fang"]}]}),
    );
    put(
        repository,
        &township,
        json!({"resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"text": "ECG"}, "subject": {"reference": "Patient/p1"}}),
    );
}

fn consultation(id: &str, priority: &str) -> Value {
    json!({
        "resourceType": "Task", "id": id, "status": "requested", "intent": "order",
        "priority": priority,
        "code": {"coding": [{"system": "https://meridian.example/CodeSystem/workflow", "code": "consultation"}]},
        "for": {"reference": "Patient/p1"},
        "requester": {"reference": "Practitioner/doctor-t"},
        "restriction": {"recipient": [{"reference": "Organization/county"}]},
        "input": [{"type": {"text": "ECG"}, "valueReference": {"reference": "Observation/o1"}}],
    })
}

fn with(mut task: Value, status: &str, owner: Option<&str>) -> Value {
    task["status"] = json!(status);
    if let Some(owner) = owner {
        task["owner"] = json!({"reference": owner});
    }
    task
}

fn status_of(error: &RepositoryError) -> u16 {
    fhir_model::Outcome::http_status(error)
}

test_support::backend_tests! {
    fn a_consultation_goes_from_request_to_answer(store) {
        let repository = repository(store);
        region(&repository);
        let township = clinician("doctor-t", "township");
        let expert = clinician("expert-1", "county");
        let second = clinician("expert-2", "county");
        let stranger = clinician("someone", "elsewhere");
        let task = put(&repository, &township, consultation("c1", "urgent"));

        // The county sees the request and what it shares; another institution sees neither.
        read(&repository, &expert, "Task", "c1").unwrap();
        read(&repository, &expert, "Observation", "o1").unwrap();
        read(&repository, &expert, "Patient", "p1").unwrap();
        assert_eq!(status_of(&read(&repository, &stranger, "Task", "c1").unwrap_err()), 404);
        assert_eq!(status_of(&read(&repository, &stranger, "Observation", "o1").unwrap_err()), 404);

        // The requester does not accept its own request; the addressee does not rewrite it.
        let error = try_put(&repository, &township, with(task.clone(), "accepted", Some("Practitioner/doctor-t"))).unwrap_err();
        assert_eq!(status_of(&error), 403, "{error}");
        let mut rewritten = with(task.clone(), "received", None);
        rewritten["for"] = json!({"reference": "Patient/p2"});
        assert_eq!(status_of(&try_put(&repository, &expert, rewritten).unwrap_err()), 403);

        let received = put(&repository, &expert, with(task.clone(), "received", None));
        // Completing without being accepted is an illegal move.
        let error = try_put(&repository, &expert, with(received.clone(), "completed", Some("Practitioner/expert-1"))).unwrap_err();
        assert_eq!(status_of(&error), 409, "{error}");
        let accepted = put(&repository, &expert, with(received.clone(), "accepted", Some("Practitioner/expert-1")));
        // A second expert cannot accept it too, by PUT or by PATCH.
        let error = try_put(&repository, &second, with(received, "accepted", Some("Practitioner/expert-2"))).unwrap_err();
        assert_eq!(status_of(&error), 409, "{error}");
        let patch = json!([{"op": "replace", "path": "/owner", "value": {"reference": "Practitioner/expert-2"}}]);
        let error = repository.patch(&second, "Task", "c1", &patch, None).unwrap_err();
        assert_eq!(status_of(&error), 409, "{error}");

        // The answer: a report held by the county, named in the Task's output.
        put(&repository, &expert, json!({"resourceType": "DiagnosticReport", "id": "answer-1",
            "status": "final", "code": {"text": "ECG reading"}, "subject": {"reference": "Patient/p1"},
            "conclusion": "sinus rhythm"}));
        assert_eq!(status_of(&read(&repository, &township, "DiagnosticReport", "answer-1").unwrap_err()), 404,
            "the report is the county's until it answers the township's Task");
        let working = put(&repository, &expert, with(accepted, "in-progress", None));
        let mut done = with(working, "completed", None);
        done["output"] = json!([{"type": {"text": "report"}, "valueReference": {"reference": "DiagnosticReport/answer-1"}}]);
        put(&repository, &expert, done.clone());
        read(&repository, &township, "DiagnosticReport", "answer-1").unwrap();
        assert_eq!(status_of(&read(&repository, &stranger, "DiagnosticReport", "answer-1").unwrap_err()), 404);
        // Closed, it shares nothing more; and a closed Task stays closed.
        assert_eq!(status_of(&read(&repository, &expert, "Observation", "o1").unwrap_err()), 404);
        let error = try_put(&repository, &expert, with(done, "in-progress", None)).unwrap_err();
        assert_eq!(status_of(&error), 409, "{error}");

        // The resident sees their consultation's state.
        let task = read(&repository, &resident("p1"), "Task", "c1").unwrap();
        assert_eq!(task["status"], "completed");

        // Rejecting needs a reason.
        put(&repository, &township, consultation("c2", "routine"));
        let c2 = read(&repository, &expert, "Task", "c2").unwrap();
        let error = try_put(&repository, &expert, with(c2.clone(), "rejected", None)).unwrap_err();
        assert_eq!(status_of(&error), 422, "{error}");
        let mut rejected = with(c2, "rejected", None);
        rejected["statusReason"] = json!({"text": "outside our specialties"});
        put(&repository, &expert, rejected);

        // The month's figures count both, for the county.
        let month = &clock::format_instant(clock::now_micros())[..7];
        let figures = workflow::deadline::turnaround(&**repository.store(), month, Some("Organization/county")).unwrap();
        let county = &figures["parameter"][1]["part"];
        let part = |name: &str| county.as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap_or(Value::Null);
        assert_eq!(part("institution")["valueReference"]["reference"], "Organization/county");
        assert_eq!(part("closed")["valueInteger"], 2);
        assert_eq!(part("completed")["valueInteger"], 1);
        assert_eq!(part("rejected")["valueInteger"], 1);
        assert!(part("minutes-to-complete-median")["valueDecimal"].is_number());
    }

    fn overdue_requests_escalate_on_the_clock_given(store) {
        let repository = repository(store);
        region(&repository);
        let township = clinician("doctor-t", "township");
        let city = clinician("chief", "city");
        put(&repository, &township, consultation("s1", "stat"));
        put(&repository, &township, consultation("r1", "routine"));
        assert_eq!(status_of(&read(&repository, &city, "Task", "s1").unwrap_err()), 404);
        let now = clock::now_micros();
        // Nothing is overdue yet.
        assert!(workflow::deadline::escalate(&repository, &operator(), now).unwrap().is_empty());
        // Thirty-one minutes on, the stat request is; the routine one is not.
        let escalated = workflow::deadline::escalate(&repository, &operator(), now + 31 * MINUTE).unwrap();
        assert_eq!(escalated, vec!["s1".to_owned()]);
        let task = read(&repository, &township, "Task", "s1").unwrap();
        assert_eq!(task["businessStatus"]["coding"][0]["code"], "overdue");
        assert_eq!(task["status"], "requested");
        // The institution above the county now sees it, and may act on it.
        read(&repository, &city, "Task", "s1").unwrap();
        // Escalated once only.
        assert!(workflow::deadline::escalate(&repository, &operator(), now + 40 * MINUTE).unwrap().is_empty());
        let escalated = workflow::deadline::escalate(&repository, &operator(), now + 25 * HOUR).unwrap();
        assert_eq!(escalated, vec!["r1".to_owned()]);
    }

    fn fifty_concurrent_bookings_of_ten_slots_give_ten(store) {
        let repository = repository(store);
        region(&repository);
        let hospital = clinician("scheduler", "county");
        publish_slots(&repository, &hospital, 10, clock::now_micros() + 3 * HOUR, false);
        let booker = clinician("doctor-t", "township");
        let results: Vec<Result<WriteStatus, RepositoryError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..50)
                .map(|i| {
                    let repository = Arc::clone(&repository);
                    let booker = booker.clone();
                    scope.spawn(move || {
                        let slot = i % 10;
                        let start = slot_start(&repository, slot);
                        repository
                            .create(&booker, appointment(&format!("p{i}"), slot, &start), None)
                            .map(|w| w.status)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let booked = results.iter().filter(|r| matches!(r, Ok(WriteStatus::Created))).count();
        let conflicts: Vec<_> = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .collect();
        assert_eq!(booked, 10, "{results:?}");
        assert_eq!(conflicts.len(), 40);
        assert!(conflicts.iter().all(|e| status_of(e) == 409), "{conflicts:?}");
        for slot in 0..10 {
            let slot = read(&repository, &booker, "Slot", &format!("s{slot}")).unwrap();
            assert_eq!(slot["status"], "busy");
        }
        // Cancelling frees the slot, and it can be booked again.
        let booked = repository
            .find(&operator(), "Appointment", &[("slot".into(), "Slot/s3".into()), ("status".into(), "booked".into())], 5)
            .unwrap();
        assert_eq!(booked.len(), 1);
        let mut cancelled = repository::parse_stored(&booked[0]).unwrap();
        cancelled["status"] = json!("cancelled");
        put(&repository, &booker, cancelled);
        assert_eq!(read(&repository, &booker, "Slot", "s3").unwrap()["status"], "free");
        let start = slot_start(&repository, 3);
        repository.create(&booker, appointment("late", 3, &start), None).unwrap();
        assert_eq!(read(&repository, &booker, "Slot", "s3").unwrap()["status"], "busy");
    }

    fn reserved_capacity_is_for_referrals_until_it_is_released(store) {
        let repository = repository(store);
        region(&repository);
        let hospital = clinician("scheduler", "county");
        let now = clock::now_micros();
        // s0 and s1: in five days, reserved; r1: tomorrow, reserved but released.
        publish_slots(&repository, &hospital, 2, now + 5 * DAY, true);
        let mut soon = read(&repository, &hospital, "Slot", "s0").unwrap();
        soon["id"] = json!("r1");
        soon["start"] = json!(clock::format_instant(now + DAY));
        soon["end"] = json!(clock::format_instant(now + DAY + 15 * MINUTE));
        put(&repository, &hospital, soon);
        let family_doctor = clinician("doctor-t", "township");
        let patient = resident("p1");
        let start = slot_start(&repository, 0);

        // Neither the resident nor a clinician without a referral books the reserved slot.
        let error = repository.create(&patient, appointment("p1", 0, &start), None).unwrap_err();
        assert_eq!(status_of(&error), 403, "{error}");
        let error = repository.create(&family_doctor, appointment("p1", 0, &start), None).unwrap_err();
        assert_eq!(status_of(&error), 403, "{error}");
        // $find shows the resident only the released slot.
        let reader = repository.reader(&patient);
        let found = workflow::booking::find(&reader, &WorkflowConfig::default(), &[], now).unwrap();
        let ids: Vec<&str> = found.iter().map(|(r, _)| r.id.as_str()).collect();
        assert_eq!(ids, vec!["r1"]);

        // The family doctor's referral to the county admits them.
        put(&repository, &family_doctor, json!({"resourceType": "ServiceRequest", "id": "ref-1",
            "status": "active", "intent": "order", "subject": {"reference": "Patient/p1"},
            "category": [{"text": "referral"}],
            "performer": [{"reference": "Organization/county"}]}));
        let reader = repository.reader(&family_doctor);
        let found = workflow::booking::find(&reader, &WorkflowConfig::default(),
            &[("referral".into(), "ServiceRequest/ref-1".into())], now).unwrap();
        assert_eq!(found.len(), 3);
        let mut referred = appointment("p1", 0, &start);
        referred["basedOn"] = json!([{"reference": "ServiceRequest/ref-1"}]);
        repository.create(&family_doctor, referred, None).unwrap();
        // A clinician of another institution cannot use that referral.
        let mut other = appointment("p1", 1, &slot_start(&repository, 1));
        other["basedOn"] = json!([{"reference": "ServiceRequest/ref-1"}]);
        let error = repository.create(&clinician("someone", "elsewhere"), other, None).unwrap_err();
        assert_eq!(status_of(&error), 403, "{error}");
        // The released slot is anyone's.
        let released_start = read(&repository, &patient, "Slot", "r1").unwrap()["start"].as_str().unwrap().to_owned();
        let mut released = appointment("p1", 0, &released_start);
        released["slot"] = json!([{"reference": "Slot/r1"}]);
        repository.create(&patient, released, None).unwrap();
    }

    fn a_discharge_plan_puts_follow_ups_on_the_village_worklist(store) {
        let repository = repository(store);
        region(&repository);
        let county = clinician("ward-doctor", "county");
        let village = clinician("village-doctor", "village");
        let due = clock::format_instant(clock::now_micros() + 7 * DAY);
        let plan = json!({
            "resourceType": "CarePlan", "id": "discharge-1", "status": "active", "intent": "plan",
            "subject": {"reference": "Patient/p1"},
            "author": {"reference": "Organization/county"},
            "activity": [
                {"detail": {"status": "scheduled", "description": "blood pressure check",
                    "scheduledPeriod": {"start": due},
                    "performer": [{"reference": "Organization/village"}]}},
                {"detail": {"status": "scheduled", "description": "county outpatient review",
                    "performer": [{"reference": "Organization/county"}]}}
            ]
        });
        put(&repository, &county, plan.clone());
        // Written again: no second follow-up.
        let mut again = plan;
        again["note"] = json!([{"text": "low-salt diet"}]);
        put(&repository, &county, again);
        let worklist = repository
            .find(&village, "Task", &[("party".into(), "Organization/village".into()),
                ("status".into(), "requested".into())], 10)
            .unwrap();
        assert_eq!(worklist.len(), 1);
        let task = repository::parse_stored(&worklist[0]).unwrap();
        assert_eq!(task["description"], "blood pressure check");
        assert_eq!(task["restriction"]["period"]["end"], json!(due));
        // The village sees the plan it works to, and moves its follow-up.
        read(&repository, &village, "CarePlan", "discharge-1").unwrap();
        let accepted = put(&repository, &village, with(task, "accepted", Some("Practitioner/village-doctor")));
        put(&repository, &village, with(accepted, "in-progress", None));
    }
}

fn publish_slots(
    repository: &Repository,
    hospital: &Caller,
    count: usize,
    first: i64,
    reserved: bool,
) {
    put(
        repository,
        hospital,
        json!({"resourceType": "HealthcareService", "id": "cardiology",
        "providedBy": {"reference": "Organization/county"}, "name": "Cardiology outpatients"}),
    );
    put(
        repository,
        hospital,
        json!({"resourceType": "Schedule", "id": "cardiology",
        "actor": [{"reference": "HealthcareService/cardiology"}],
        "serviceType": [{"text": "cardiology outpatient"}]}),
    );
    for i in 0..count {
        let start = first + i as i64 * 15 * MINUTE;
        let mut slot = json!({"resourceType": "Slot", "id": format!("s{i}"),
            "schedule": {"reference": "Schedule/cardiology"}, "status": "free",
            "start": clock::format_instant(start), "end": clock::format_instant(start + 15 * MINUTE)});
        if reserved {
            slot["extension"] =
                json!([{"url": workflow::vocabulary::RESERVED_FOR, "valueCode": "referral"}]);
        }
        put(repository, hospital, slot);
    }
}

fn slot_start(repository: &Repository, slot: usize) -> String {
    read(repository, &operator(), "Slot", &format!("s{slot}")).unwrap()["start"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn appointment(patient: &str, slot: usize, start: &str) -> Value {
    let end = clock::format_instant(clock::parse_instant(start).unwrap() + 15 * MINUTE);
    json!({"resourceType": "Appointment", "status": "booked",
        "slot": [{"reference": format!("Slot/s{slot}")}],
        "start": start, "end": end,
        "participant": [{"actor": {"reference": format!("Patient/{patient}")}, "status": "accepted"}]})
}
