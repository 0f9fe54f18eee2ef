//! Bytes as a Subscription written to the server: read as FHIR JSON, then checked as the
//! notification service checks every Subscription written (topic, filter criteria, channel,
//! endpoint policy, payload, extensions). Nothing may panic; an accepted subscription names a
//! known topic and, for rest-hook, an endpoint the policy allows. The same JSON as a changed
//! resource: every topic's criterion and filters evaluated on it as %previous and %current.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notify::{Channel, EndpointPolicy, Subscriber};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = fhir_model::json::parse(data) else {
        return;
    };
    let policy = EndpointPolicy {
        allowed_http_hosts: vec!["his.county.local".into()],
    };
    let owner = caller::Caller::operator("fuzz");
    if let Ok(subscriber) = Subscriber::from_resource(&value, &owner, 0, &policy) {
        let topic = subscriber.topic().expect("an accepted subscription names a known topic");
        if subscriber.channel == Channel::RestHook {
            let endpoint = subscriber.endpoint.as_deref().expect("a rest-hook has an endpoint");
            assert!(policy.check(endpoint).is_ok());
        }
        let _ = topic.passes(&value, &subscriber.filters);
    }
    let resource_type = value
        .get("resourceType")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("Task");
    for topic in notify::topic::topics() {
        let _ = topic.raised_by(resource_type, "update", Some(&value), Some(&value));
        let _ = topic.raised_by(resource_type, "create", None, Some(&value));
        let _ = topic.passes(&value, &[("patient".into(), vec!["Patient/p1".into()])]);
    }
});
