//! Events: the change log's committed versions, matched against the topics and every
//! subscription's filters, numbered per subscription without a gap (1, 2, 3, ... since the
//! subscription started) and kept in the store. The numbering runs inside the change-log
//! consumer's transaction ([`record`]), so each change is numbered exactly once however many
//! servers share the store and whenever they restart; a subscription is given only events
//! about what its owner may read (the one read path, under the owner's caller).

use std::collections::HashMap;

use caller::Caller;
use repository::{InTransaction, Repository, RepositoryError};
use serde_json::{Value, json};
use store::{Change, Method, Store};

use crate::subscription::{COUNT_PREFIX, DELIVERY_PREFIX, EVENT_PREFIX, SUB_PREFIX, Subscriber};

/// How many events of each subscription are kept for `$events` (older ones are dropped).
pub const KEPT_EVENTS: u64 = 1000;

/// One event of one subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub number: u64,
    /// When the change was committed (microseconds).
    pub timestamp: i64,
    pub topic: String,
    pub resource_type: String,
    pub id: String,
    pub version: i64,
}

impl Event {
    fn to_json(&self) -> Value {
        json!({"n": self.number, "at": self.timestamp, "topic": self.topic,
            "type": self.resource_type, "id": self.id, "version": self.version})
    }

    fn from_json(value: &Value) -> Option<Event> {
        Some(Event {
            number: value.get("n")?.as_u64()?,
            timestamp: value.get("at")?.as_i64()?,
            topic: value.get("topic")?.as_str()?.to_owned(),
            resource_type: value.get("type")?.as_str()?.to_owned(),
            id: value.get("id")?.as_str()?.to_owned(),
            version: value.get("version")?.as_i64()?,
        })
    }

    /// `Type/id`.
    pub fn focus(&self) -> String {
        format!("{}/{}", self.resource_type, self.id)
    }
}

fn event_key(subscription: &str, number: u64) -> String {
    format!("{EVENT_PREFIX}{subscription}/{number:012}")
}

/// Every subscription's configuration.
pub fn subscribers(store: &dyn Store) -> Result<Vec<Subscriber>, RepositoryError> {
    Ok(store
        .checkpoints_with_prefix(SUB_PREFIX)?
        .iter()
        .filter_map(|(_, value)| {
            serde_json::from_str::<Value>(value)
                .ok()
                .as_ref()
                .and_then(Subscriber::from_json)
        })
        .collect())
}

/// Whether any of `changes` could be some subscription's event: [`record`] looks only at
/// subscriptions that are not off and began no later than the change. Read after the changes
/// were, so every subscription committed before them is seen.
pub fn concern_anyone(store: &dyn Store, changes: &[Change]) -> Result<bool, RepositoryError> {
    let Some(latest) = changes.iter().map(|c| c.last_updated).max() else {
        return Ok(false);
    };
    Ok(subscribers(store)?
        .iter()
        .any(|s| s.status != "off" && s.since <= latest))
}

/// One subscription's configuration.
pub fn subscriber(store: &dyn Store, id: &str) -> Result<Option<Subscriber>, RepositoryError> {
    Ok(store
        .checkpoint(&format!("{SUB_PREFIX}{id}"))?
        .and_then(|value| serde_json::from_str::<Value>(&value).ok())
        .as_ref()
        .and_then(Subscriber::from_json))
}

/// How many events a subscription has had since it started.
pub fn count(store: &dyn Store, id: &str) -> Result<u64, RepositoryError> {
    Ok(store
        .checkpoint(&format!("{COUNT_PREFIX}{id}"))?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// A subscription's kept events numbered `from..=to`.
pub fn events(
    store: &dyn Store,
    id: &str,
    from: u64,
    to: u64,
) -> Result<Vec<Event>, RepositoryError> {
    if from > to {
        return Ok(Vec::new());
    }
    Ok(store
        .checkpoints_with_prefix(&format!("{EVENT_PREFIX}{id}/"))?
        .iter()
        .filter_map(|(_, value)| {
            serde_json::from_str::<Value>(value)
                .ok()
                .as_ref()
                .and_then(Event::from_json)
        })
        .filter(|e| e.number >= from && e.number <= to)
        .collect())
}

fn interaction(method: Method) -> &'static str {
    match method {
        Method::Create => "create",
        Method::Update => "update",
        Method::Delete => "delete",
    }
}

/// The topics a change raises, each with the resource the filters look at (the version
/// written, or for a deletion the one it ended). Read as `platform` (the consumer's caller).
pub fn raised_topics(
    repository: &Repository,
    platform: &Caller,
    change: &Change,
) -> Result<Vec<(&'static crate::topic::Topic, Value)>, RepositoryError> {
    if !crate::topic::watched(&change.resource_type) {
        return Ok(Vec::new());
    }
    let reader = repository.reader(platform);
    let content = |version: i64| -> Result<Option<Value>, RepositoryError> {
        match reader.version_of(&change.resource_type, &change.id, version)? {
            Some(record) if !record.is_deleted() => repository::parse_stored(&record).map(Some),
            _ => Ok(None),
        }
    };
    let current = if change.method == Method::Delete {
        None
    } else {
        content(change.version)?
    };
    let previous = if change.version > 1 {
        content(change.version - 1)?
    } else {
        None
    };
    let Some(about) = current.as_ref().or(previous.as_ref()) else {
        return Ok(Vec::new());
    };
    Ok(crate::topic::topics()
        .iter()
        .filter(|topic| {
            topic.raised_by(
                &change.resource_type,
                interaction(change.method),
                previous.as_ref(),
                current.as_ref(),
            )
        })
        .map(|topic| (topic, about.clone()))
        .collect())
}

/// The topics a change raises with the NATS subject of each (`meridian.<topic>`).
pub fn raised(
    repository: &Repository,
    platform: &Caller,
    change: &Change,
) -> Result<Vec<(String, String)>, RepositoryError> {
    Ok(raised_topics(repository, platform, change)?
        .into_iter()
        .map(|(topic, _)| (topic.url(), format!("meridian.{}", topic.code)))
        .collect())
}

/// Numbers the events `changes` raise, inside the change-log consumer's transaction `tx` (of
/// `repository`).
/// Returns the subscriptions that got new events.
pub fn record(
    repository: &Repository,
    tx: &mut InTransaction<'_, '_>,
    changes: &[Change],
) -> Result<Vec<String>, RepositoryError> {
    let subscribers: Vec<Subscriber> = subscribers(&**repository.store())?
        .into_iter()
        .filter(|s| s.status != "off")
        .collect();
    if subscribers.is_empty() {
        return Ok(Vec::new());
    }
    let platform: Caller = tx.ctx().clone();
    let mut counts: HashMap<String, u64> = HashMap::new();
    // What was written before the oldest subscription started is nobody's event: not read.
    let oldest = subscribers
        .iter()
        .map(|s| s.since)
        .min()
        .unwrap_or(i64::MAX);
    // Each owner's reader, built once for the batch: only what the owner may read is theirs.
    let readers: Vec<(&Subscriber, repository::Reader<'_>)> = subscribers
        .iter()
        .map(|s| (s, repository.reader(&s.owner)))
        .collect();
    for change in changes.iter().filter(|c| c.last_updated >= oldest) {
        for (topic, about) in raised_topics(repository, &platform, change)? {
            let url = topic.url();
            for (subscriber, reader) in readers.iter().filter(|(s, _)| s.topic == url) {
                if change.last_updated < subscriber.since
                    || !topic.passes(&about, &subscriber.filters)
                {
                    continue;
                }
                let visible = reader
                    .version_of(&change.resource_type, &change.id, change.version)?
                    .is_some();
                if !visible {
                    continue;
                }
                let count = match counts.get(&subscriber.id) {
                    Some(n) => *n,
                    None => tx
                        .transaction()
                        .take_checkpoint(&format!("{COUNT_PREFIX}{}", subscriber.id))?
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                };
                let number = count + 1;
                counts.insert(subscriber.id.clone(), number);
                let event = Event {
                    number,
                    timestamp: change.last_updated,
                    topic: url.clone(),
                    resource_type: change.resource_type.clone(),
                    id: change.id.clone(),
                    version: change.version,
                };
                let store = tx.transaction();
                store.set_checkpoint(
                    &event_key(&subscriber.id, number),
                    Some(&event.to_json().to_string()),
                )?;
                if number > KEPT_EVENTS {
                    store.set_checkpoint(&event_key(&subscriber.id, number - KEPT_EVENTS), None)?;
                }
            }
        }
    }
    let mut touched = Vec::new();
    for (id, count) in counts {
        tx.transaction()
            .set_checkpoint(&format!("{COUNT_PREFIX}{id}"), Some(&count.to_string()))?;
        touched.push(id);
    }
    Ok(touched)
}

/// What the deliverer knows of one rest-hook subscription.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    /// The handshake was answered.
    pub handshake: bool,
    /// The last event number delivered.
    pub delivered: u64,
    /// Failed attempts in a row.
    pub failures: u32,
    /// Not before this instant (microseconds).
    pub next_attempt: i64,
    /// When anything was last sent (for heartbeats).
    pub last_sent: i64,
    /// The last error, for `$status`.
    pub error: Option<String>,
}

impl Delivery {
    fn to_json(&self) -> Value {
        json!({"handshake": self.handshake, "delivered": self.delivered, "failures": self.failures,
            "next": self.next_attempt, "sent": self.last_sent, "error": self.error})
    }

    fn from_json(value: &Value) -> Delivery {
        Delivery {
            handshake: value
                .get("handshake")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            delivered: value.get("delivered").and_then(Value::as_u64).unwrap_or(0),
            failures: value
                .get("failures")
                .and_then(Value::as_u64)
                .map_or(0, |n| n.min(u32::MAX as u64) as u32),
            next_attempt: value.get("next").and_then(Value::as_i64).unwrap_or(0),
            last_sent: value.get("sent").and_then(Value::as_i64).unwrap_or(0),
            error: value
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// The delivery state of a subscription.
pub fn delivery(store: &dyn Store, id: &str) -> Result<Delivery, RepositoryError> {
    Ok(store
        .checkpoint(&format!("{DELIVERY_PREFIX}{id}"))?
        .and_then(|v| serde_json::from_str::<Value>(&v).ok())
        .map(|v| Delivery::from_json(&v))
        .unwrap_or_default())
}

/// Keeps a subscription's delivery state.
pub fn set_delivery(
    store: &dyn Store,
    id: &str,
    delivery: &Delivery,
) -> Result<(), RepositoryError> {
    let mut tx = store.begin()?;
    tx.set_checkpoint(
        &format!("{DELIVERY_PREFIX}{id}"),
        Some(&delivery.to_json().to_string()),
    )?;
    tx.commit()?;
    Ok(())
}

/// The wait before attempt `failures + 1`: 1 s doubling to at most 5 minutes.
pub fn back_off(failures: u32) -> i64 {
    let seconds = 1i64 << failures.min(9);
    seconds.min(300) * 1_000_000
}
