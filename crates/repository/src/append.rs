//! New resources the server writes on its own account in batches gathered from many requests
//! (the audit trail's group commit): validated and indexed ahead, away from the transaction,
//! then created together in one transaction, so the store holds its write lock only for the
//! writes themselves.

use caller::Caller;
use fhir_model::clock;
use serde_json::Value;
use store::VersionRecord;

use crate::meta::new_id;
use crate::write::Prepared;
use crate::{Repository, RepositoryError};

/// A resource checked and indexed under a new id, ready for [`Repository::create_prepared`].
pub struct NewResource {
    prepared: Prepared,
    /// Whether the id was made here ([`Repository::prepare_new`]), so that no resource can
    /// have it; else it is the resource's own and may be taken.
    generated: bool,
}

impl NewResource {
    pub fn resource_type(&self) -> &str {
        &self.prepared.resource_type
    }

    pub fn id(&self) -> &str {
        self.prepared.id()
    }
}

impl Repository {
    /// Validates `resource` and extracts its index entries under its own id (a service that
    /// derives ids from what it receives: a kiosk reading's Observation), without writing
    /// anything; on threads of the caller's, away from the transaction.
    pub fn prepare_own(&self, resource: Value) -> Result<NewResource, RepositoryError> {
        let id = crate::hooks::own_id(&resource)?;
        crate::check_id(&id)?;
        Ok(NewResource {
            prepared: self.prepare(resource, &id)?,
            generated: false,
        })
    }

    /// Validates `resource` and extracts its index entries under a new id, as a create does,
    /// without writing anything.
    pub fn prepare_new(&self, resource: Value) -> Result<NewResource, RepositoryError> {
        Ok(NewResource {
            prepared: self.prepare(resource, &new_id())?,
            generated: true,
        })
    }

    /// Creates every resource of `resources` in one transaction for `ctx` (all or none, with
    /// the write hooks and the retries of any write), and answers their versions in order.
    pub fn create_prepared(
        &self,
        ctx: &Caller,
        resources: &[NewResource],
    ) -> Result<Vec<VersionRecord>, RepositoryError> {
        self.with_transaction(ctx, |tx| {
            // Ids made here are new: the store is told so (PostgreSQL then sends the whole
            // batch at the commit, reading nothing first; asking would cost a statement per
            // batch, a locked read of keys that cannot exist). The resources' own ids are
            // asked about first, in one call, for the same reason.
            let keys = |generated: bool| -> Vec<(&str, &str)> {
                resources
                    .iter()
                    .filter(|resource| resource.generated == generated)
                    .map(|resource| (resource.resource_type(), resource.id()))
                    .collect()
            };
            tx.assume_new(&keys(true));
            let own = keys(false);
            if !own.is_empty() && tx.current_many(&own)?.iter().any(Option::is_some) {
                return Err(RepositoryError::Internal(
                    "a new resource's id is already taken".into(),
                ));
            }
            let now = clock::now_micros();
            resources
                .iter()
                .map(|resource| self.put_version(tx, &resource.prepared, None, now))
                .collect()
        })
    }
}

impl crate::InTransaction<'_, '_> {
    /// Creates a prepared resource ([`Repository::prepare_own`]) when no resource has its id
    /// (not even a deleted one); answers whether it did.
    pub fn create_if_absent(&mut self, resource: &NewResource) -> Result<bool, RepositoryError> {
        let (repository, tx) = self.parts();
        if tx
            .current(resource.resource_type(), resource.id())?
            .is_some()
        {
            return Ok(false);
        }
        repository.put_version(tx, &resource.prepared, None, clock::now_micros())?;
        Ok(true)
    }
}
