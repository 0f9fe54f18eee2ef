//! The write hook: a Subscription is checked when written (an unknown topic, a filter the
//! topic does not offer, a plain-HTTP endpoint outside loopback and the allow-list are 422),
//! and its configuration and owner are kept for the change-log consumer and the deliverer in
//! the same transaction.

use caller::Actor;
use repository::{InTransaction, RepositoryError, WriteHook};
use store::VersionRecord;

use crate::subscription::{EndpointPolicy, SUB_PREFIX, Subscriber};

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
        if let Some(existing) = existing {
            // Its events keep counting from where they were; the platform's own writes (the
            // status after a handshake) keep its owner.
            subscriber.since = existing.since;
            if matches!(writer.actor, Actor::Operator) {
                subscriber.owner = existing.owner;
            }
        }
        tx.transaction()
            .set_checkpoint(&key, Some(&subscriber.to_json().to_string()))?;
        Ok(())
    }
}
