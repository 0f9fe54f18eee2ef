//! The write hook: a Subscription is checked when written (an unknown topic, a filter the
//! topic does not offer, a plain-HTTP endpoint outside loopback and the allow-list are 422),
//! and its configuration and owner are kept for the change-log consumer and the deliverer in
//! the same transaction.

use caller::Actor;
use repository::{InTransaction, RepositoryError, WriteHook};
use store::VersionRecord;

use crate::subscription::{DELIVERY_PREFIX, EndpointPolicy, SUB_PREFIX, Subscriber};

pub struct SubscriptionHook {
    endpoints: EndpointPolicy,
}

impl SubscriptionHook {
    pub fn new(endpoints: EndpointPolicy) -> SubscriptionHook {
        SubscriptionHook { endpoints }
    }
}

impl WriteHook for SubscriptionHook {
    fn wants(&self, resource_type: &str) -> bool {
        resource_type == "Subscription"
    }

    fn after_write(
        &self,
        tx: &mut InTransaction<'_, '_>,
        record: &VersionRecord,
        _previous: Option<&VersionRecord>,
    ) -> Result<(), RepositoryError> {
        let key = format!("{SUB_PREFIX}{}", record.id);
        if record.is_deleted() {
            tx.transaction().set_checkpoint(&key, None)?;
            return Ok(());
        }
        let resource = repository::parse_stored(record)?;
        let existing = tx
            .transaction()
            .take_checkpoint(&key)?
            .and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok())
            .as_ref()
            .and_then(Subscriber::from_json);
        let writer = tx.ctx().clone();
        let mut subscriber =
            Subscriber::from_resource(&resource, &writer, record.last_updated, &self.endpoints)?;
        let platform = matches!(writer.actor, Actor::Operator);
        if let Some(existing) = existing {
            // Its events keep counting from where they were; the platform's own writes (the
            // status after a handshake) keep its owner.
            subscriber.since = existing.since;
            if platform {
                subscriber.owner = existing.owner;
            }
        }
        if !platform {
            // Written by a client (a new endpoint, a subscription in error asked to try
            // again): the deliverer starts over with a handshake, from the events not yet
            // delivered.
            let delivery_key = format!("{DELIVERY_PREFIX}{}", record.id);
            if let Some(value) = tx.transaction().take_checkpoint(&delivery_key)? {
                let mut state: serde_json::Value =
                    serde_json::from_str(&value).unwrap_or(serde_json::Value::Null);
                if state.is_object() {
                    state["handshake"] = serde_json::Value::Bool(false);
                    state["failures"] = serde_json::json!(0);
                    state["next"] = serde_json::json!(0);
                    tx.transaction()
                        .set_checkpoint(&delivery_key, Some(&state.to_string()))?;
                }
            }
        }
        tx.transaction()
            .set_checkpoint(&key, Some(&subscriber.to_json().to_string()))?;
        Ok(())
    }
}
