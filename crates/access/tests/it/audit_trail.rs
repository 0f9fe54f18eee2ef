//! The audit sink on every backend: what it records is committed and found by the searches a
//! resident and an administrator make (`patient`, `agent`, `date`, `entity`, `_security`),
//! concurrent recorders lose nothing, and a closed sink refuses instead of pretending.

use std::sync::Arc;

use access::audit::{
    self, AuditError, AuditSink, EventOutcome, Interaction, Observer, RestAccess, SinkConfig,
};
use caller::{Actor, Caller};
use repository::{Repository, SearchRequest};
use serde_json::Value;
use test_support::backend_tests;

fn clinician(request_id: &str) -> Caller {
    let mut caller = Caller::anonymous(request_id);
    caller.actor = Actor::User("Practitioner/7".into());
    caller.organization = Some("Organization/county-hospital".into());
    caller.client_id = Some("his".into());
    caller.address = Some("10.1.2.3".parse().unwrap());
    caller
}

fn read_of(patient: &str, resource: &str) -> RestAccess {
    let mut access = RestAccess::new(Interaction::Read, Some("Observation"));
    access.add_patient(patient);
    access.add_resource(resource);
    access
}

/// The AuditEvents a search finds.
fn search(repository: &Repository, params: &[(&str, &str)]) -> Vec<Value> {
    let mut params: Vec<(String, String)> = params
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    params.push(("_count".into(), "1000".into()));
    let bundle = repository
        .search(
            &Caller::operator("test"),
            "http://meridian.test/fhir",
            &SearchRequest::of_type("AuditEvent", params),
        )
        .unwrap();
    let bundle: Value = serde_json::from_slice(&bundle).unwrap();
    bundle["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["resource"].clone())
        .collect()
}

backend_tests! {
    fn recorded_events_are_committed_and_found_by_every_search_of_the_trail(store) {
        let repository = Arc::new(Repository::new(Arc::clone(&store.store)));
        let sink = AuditSink::start(Arc::clone(&repository), Caller::operator("audit-trail"), SinkConfig::default());
        let observer = Observer::default();
        let events = audit::rest_events(
            &clinician("req-1"),
            &observer,
            &read_of("Patient/12", "Observation/5/_history/1"),
        );
        sink.record(events).unwrap();
        let mut break_glass = clinician("req-2");
        break_glass.purpose = "ETREAT".into();
        break_glass.break_glass = Some("unconscious in the emergency room".into());
        sink.record(audit::rest_events(
            &break_glass,
            &observer,
            &read_of("Patient/12", "Observation/6/_history/1"),
        ))
        .unwrap();
        sink.record(vec![audit::login_failed(
            &observer,
            &audit::SignIn {
                request_id: "req-3",
                account: "resident-12",
                user: Some("Patient/12"),
                ..Default::default()
            },
            "wrong password",
        )])
        .unwrap();
        // Found by patient, agent, entity, date and the break-glass label, on a store read
        // after the sink returned (the commit happened before).
        let reopened = Repository::new(store.reopen());
        assert_eq!(search(&reopened, &[("patient", "Patient/12")]).len(), 3);
        assert_eq!(search(&reopened, &[("agent", "Practitioner/7")]).len(), 2);
        assert_eq!(search(&reopened, &[("agent", "Organization/county-hospital")]).len(), 2);
        assert_eq!(search(&reopened, &[("entity", "Observation/6")]).len(), 1);
        assert_eq!(search(&reopened, &[("date", "ge2020-01-01")]).len(), 3);
        assert_eq!(search(&reopened, &[("address", "10.1.2.3")]).len(), 2);
        assert_eq!(search(&reopened, &[("outcome", "4")]).len(), 1);
        let flagged = search(
            &reopened,
            &[("_security", "http://terminology.hl7.org/CodeSystem/v3-ActCode|BTG")],
        );
        assert_eq!(flagged.len(), 1);
        assert_eq!(
            flagged[0]["extension"][0]["valueString"],
            "unconscious in the emergency room"
        );
        assert_eq!(flagged[0]["agent"][0]["purposeOfUse"][0]["coding"][0]["code"], "ETREAT");
        assert_eq!(sink.stats().events, 3);
    }

    fn concurrent_recorders_lose_nothing(store) {
        let repository = Arc::new(Repository::new(Arc::clone(&store.store)));
        let sink = Arc::new(AuditSink::start(Arc::clone(&repository), Caller::operator("audit-trail"), SinkConfig::default()));
        std::thread::scope(|scope| {
            for thread in 0..16 {
                let sink = Arc::clone(&sink);
                scope.spawn(move || {
                    for n in 0..50 {
                        let caller = clinician(&format!("t{thread}-{n}"));
                        let access = read_of(&format!("Patient/p{thread}"), &format!("Observation/o{n}"));
                        sink.record(audit::rest_events(&caller, &Observer::default(), &access))
                            .unwrap();
                    }
                });
            }
        });
        for thread in 0..16 {
            let events = search(&repository, &[("patient", &format!("Patient/p{thread}"))]);
            assert_eq!(events.len(), 50, "thread {thread}");
        }
        let stats = sink.stats();
        assert_eq!(stats.events, 800);
        assert!(stats.transactions <= 800);
        eprintln!("{} events in {} transactions", stats.events, stats.transactions);
    }

    fn a_closed_sink_refuses_and_writes_what_it_had(store) {
        let repository = Arc::new(Repository::new(Arc::clone(&store.store)));
        let sink = AuditSink::start(Arc::clone(&repository), Caller::operator("audit-trail"), SinkConfig::default());
        let events = audit::rest_events(
            &clinician("req-1"),
            &Observer::default(),
            &read_of("Patient/12", "Observation/5"),
        );
        let (sender, receiver) = std::sync::mpsc::channel();
        sink.submit(sink.prepare(events.clone()).unwrap(), move |result| {
            sender.send(result).unwrap()
        });
        sink.close();
        // Submitted before the close: written.
        receiver.recv().unwrap().unwrap();
        assert!(matches!(sink.record(events), Err(AuditError::Closed)));
        assert_eq!(search(&repository, &[("patient", "Patient/12")]).len(), 1);
        // Nothing to record is no failure.
        sink.record(Vec::new()).unwrap();
    }

    fn a_full_queue_refuses_at_once(store) {
        let repository = Arc::new(Repository::new(Arc::clone(&store.store)));
        let sink = AuditSink::start(repository, Caller::operator("audit-trail"),
            SinkConfig { max_batch_events: 10, max_queued_events: 2, writers: 1 },
        );
        let mut access = read_of("Patient/1", "Observation/1");
        access.add_patient("Patient/2");
        access.add_patient("Patient/3");
        access.outcome = EventOutcome::Success;
        let events = audit::rest_events(&clinician("req"), &Observer::default(), &access);
        assert_eq!(events.len(), 3);
        assert!(matches!(sink.record(events), Err(AuditError::Overloaded(0))));
    }
}
