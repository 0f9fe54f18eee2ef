//! Events from the change log on a real store of each backend: numbered per subscription
//! from 1 without a gap, only for what the subscription's owner may read and its filters let
//! through, exactly once across a consumer that stops and starts again on a reopened store;
//! a subscription that breaks the rules is refused when written.

use std::sync::Arc;

use caller::{Actor, Caller};
use notify::{EndpointPolicy, SubscriptionHook};
use repository::Repository;
use serde_json::{Value, json};
use store::Store;
use test_support::TestStore;

fn repository(store: Arc<dyn Store>) -> Repository {
    let repository = Repository::new(store);
    repository.set_access_policy(Arc::new(access::policy::Policy::new()));
    repository.add_write_hook(Arc::new(SubscriptionHook::new(EndpointPolicy::default())));
    repository
}

fn clinician(practitioner: &str, organization: &str) -> Caller {
    let mut caller = Caller::operator("notify-test");
    caller.actor = Actor::User(format!("Practitioner/{practitioner}"));
    caller.organization = Some(format!("Organization/{organization}"));
    caller.scopes = vec!["user/*.cruds".into()];
    caller
}

fn put(repository: &Repository, by: &Caller, resource: Value) {
    let (t, id) = (
        resource["resourceType"].as_str().unwrap().to_owned(),
        resource["id"].as_str().unwrap().to_owned(),
    );
    repository
        .update(by, &t, &id, resource, None)
        .unwrap_or_else(|e| panic!("{t}/{id}: {e}"));
}

fn subscription(id: &str, topic: &str, filter: Option<&str>) -> Value {
    let mut s = json!({
        "resourceType": "Subscription", "id": id, "status": "requested",
        "reason": "test", "criteria": format!("https://meridian.example/fhir/SubscriptionTopic/{topic}"),
        "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook", "payload": "application/fhir+json"},
    });
    if let Some(filter) = filter {
        s["_criteria"] = json!({"extension": [{
            "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria",
            "valueString": filter}]});
    }
    s
}

fn task(id: &str, status: &str, to: &str) -> Value {
    json!({"resourceType": "Task", "id": id, "status": status, "intent": "order",
        "for": {"reference": "Patient/p1"},
        "restriction": {"recipient": [{"reference": format!("Organization/{to}")}]},
        "owner": {"reference": "Practitioner/e1"}})
}

fn consume(repository: &Repository) -> usize {
    let operator = Caller::operator("notify-consumer");
    let mut touched = 0;
    while let Some(t) = repository
        .change_feed(notify::CONSUMER)
        .consume(&operator, 100, |tx, changes| {
            notify::events::record(repository, tx, changes)
        })
        .unwrap()
    {
        touched += t.len();
    }
    touched
}

test_support::backend_tests! {
    fn events_are_numbered_without_a_gap_for_what_the_owner_may_read(store) {
        let store: &TestStore = store;
        let repository = repository(Arc::clone(&store.store));
        let county = clinician("e1", "county");
        let city = clinician("c1", "city");
        put(&repository, &county, subscription("county-accepted", "task-accepted", None));
        put(&repository, &city, subscription("city-accepted", "task-accepted", None));
        put(&repository, &county, subscription("county-p2", "task-accepted", Some("Task?patient=Patient/p2")));
        // Refused: an unknown topic, a filter the topic lacks, plain HTTP to another host.
        for (bad, why) in [
            (subscription("bad-1", "no-such-topic", None), "unknown topic"),
            (subscription("bad-2", "task-accepted", Some("Task?colour=red")), "unknown filter"),
            ({
                let mut s = subscription("bad-3", "task-accepted", None);
                s["channel"]["endpoint"] = json!("http://example.org/hook");
                s
            }, "plain http"),
        ] {
            let error = repository.update(&county, "Subscription", bad["id"].as_str().unwrap(), bad.clone(), None).unwrap_err();
            assert_eq!(fhir_model::Outcome::http_status(&error), 422, "{why}: {error}");
        }

        let township = clinician("t1", "township");
        put(&repository, &township, task("a", "requested", "county"));
        put(&repository, &county, task("a", "accepted", "county"));
        consume(&repository);
        let s = &**repository.store();
        assert_eq!(notify::events::count(s, "county-accepted").unwrap(), 1);
        // The city may not read a Task addressed to the county: no event for it.
        assert_eq!(notify::events::count(s, "city-accepted").unwrap(), 0);
        assert_eq!(notify::events::count(s, "county-p2").unwrap(), 0);

        // A consumer on a reopened store (a restarted server) continues the numbering.
        let reopened = repository_of(store.reopen());
        put(&reopened, &township, task("b", "requested", "county"));
        put(&reopened, &county, task("b", "accepted", "county"));
        put(&reopened, &township, task("c", "requested", "county"));
        put(&reopened, &county, task("c", "accepted", "county"));
        consume(&reopened);
        consume(&reopened);
        let s = &**reopened.store();
        assert_eq!(notify::events::count(s, "county-accepted").unwrap(), 3);
        let events = notify::events::events(s, "county-accepted", 1, 10).unwrap();
        let numbers: Vec<u64> = events.iter().map(|e| e.number).collect();
        assert_eq!(numbers, vec![1, 2, 3]);
        let focus: Vec<String> = events.iter().map(|e| e.focus()).collect();
        assert_eq!(focus, vec!["Task/a", "Task/b", "Task/c"]);
        assert_eq!(notify::events::events(s, "county-accepted", 2, 2).unwrap().len(), 1);
    }
}

fn repository_of(store: Arc<dyn Store>) -> Repository {
    repository(store)
}
