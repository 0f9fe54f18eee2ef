//! The notification bundles of the R4 backport: a `history` Bundle whose first entry is the
//! subscription's status (a `Parameters` resource with the `backport-subscription-status-r4`
//! profile), then, for `full-resource`, each event's focus as the subscriber may read it.

use fhir_model::clock;
use repository::{Repository, RepositoryError};
use serde_json::{Value, json};

use crate::events::Event;
use crate::subscription::{Content, Subscriber};

/// What a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Handshake,
    Heartbeat,
    EventNotification,
    QueryStatus,
    QueryEvent,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::Handshake => "handshake",
            Kind::Heartbeat => "heartbeat",
            Kind::EventNotification => "event-notification",
            Kind::QueryStatus => "query-status",
            Kind::QueryEvent => "query-event",
        }
    }
}

/// The status of `subscriber` as the backport's R4 `Parameters`.
pub fn status(
    base: &str,
    subscriber: &Subscriber,
    status: &str,
    kind: Kind,
    count: u64,
    events: &[Event],
    error: Option<&str>,
) -> Value {
    let mut parameters = vec![
        json!({"name": "subscription", "valueReference": {"reference": format!("{base}/Subscription/{}", subscriber.id)}}),
        json!({"name": "topic", "valueCanonical": subscriber.topic}),
        json!({"name": "status", "valueCode": status}),
        json!({"name": "type", "valueCode": kind.code()}),
        json!({"name": "events-since-subscription-start", "valueString": count.to_string()}),
    ];
    for event in events {
        let mut part = vec![
            json!({"name": "event-number", "valueString": event.number.to_string()}),
            json!({"name": "timestamp", "valueInstant": clock::format_instant(event.timestamp)}),
        ];
        if subscriber.content != Content::Empty {
            part.push(json!({"name": "focus", "valueReference": {"reference": format!("{base}/{}", event.focus())}}));
        }
        parameters.push(json!({"name": "notification-event", "part": part}));
    }
    if let Some(error) = error {
        parameters.push(json!({"name": "error", "valueCodeableConcept": {"text": error}}));
    }
    json!({
        "resourceType": "Parameters",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"profile": ["http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"]},
        "parameter": parameters,
    })
}

/// A notification Bundle: the status, then (for `full-resource`) each event's focus as the
/// subscriber's owner may read it now (an event whose focus it may no longer read carries
/// only its number).
pub fn notification(
    repository: &Repository,
    base: &str,
    subscriber: &Subscriber,
    status_code: &str,
    kind: Kind,
    count: u64,
    events: &[Event],
) -> Result<Value, RepositoryError> {
    let status = status(base, subscriber, status_code, kind, count, events, None);
    let mut entries = vec![json!({
        "fullUrl": format!("urn:uuid:{}", status["id"].as_str().unwrap_or_default()),
        "resource": status,
        "request": {"method": "GET", "url": format!("{base}/Subscription/{}/$status", subscriber.id)},
        "response": {"status": "200"},
    })];
    if subscriber.content == Content::FullResource {
        let reader = repository.reader(&subscriber.owner);
        for event in events {
            let Some(record) = reader.version_of(&event.resource_type, &event.id, event.version)?
            else {
                continue;
            };
            if record.is_deleted() {
                continue;
            }
            entries.push(json!({
                "fullUrl": format!("{base}/{}", event.focus()),
                "resource": repository::parse_stored(&record)?,
                "request": {"method": if event.version == 1 { "POST" } else { "PUT" }, "url": event.focus()},
                "response": {"status": if event.version == 1 { "201" } else { "200" }},
            }));
        }
    }
    Ok(json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "history",
        "timestamp": clock::format_instant(clock::now_micros()),
        "entry": entries,
    }))
}

/// What goes next to a subscriber that has had the events up to `sent` of `count`: the
/// following ones (at most its batch size), or, when there are none and `heartbeat_due`, a
/// heartbeat; `None` when nothing is due. With it, the last event number it carries.
pub fn next(
    repository: &Repository,
    base: &str,
    subscriber: &Subscriber,
    sent: u64,
    count: u64,
    heartbeat_due: bool,
) -> Result<Option<(Value, u64)>, RepositoryError> {
    if count > sent {
        let upto = count.min(sent + subscriber.max_count);
        let kept = crate::events::events(&**repository.store(), &subscriber.id, sent + 1, upto)?;
        let bundle = notification(
            repository,
            base,
            subscriber,
            "active",
            Kind::EventNotification,
            count,
            &kept,
        )?;
        return Ok(Some((bundle, upto)));
    }
    if heartbeat_due {
        let bundle = notification(
            repository,
            base,
            subscriber,
            "active",
            Kind::Heartbeat,
            count,
            &[],
        )?;
        return Ok(Some((bundle, sent)));
    }
    Ok(None)
}
