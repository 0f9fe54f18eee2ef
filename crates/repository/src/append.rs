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
pub struct NewResource(Prepared);

impl NewResource {
    pub fn resource_type(&self) -> &str {
        &self.0.resource_type
    }

    pub fn id(&self) -> &str {
        self.0.id()
    }
}

impl Repository {
    /// Validates `resource` and extracts its index entries under its own id (a service that
    /// derives ids from what it receives: a kiosk reading's Observation), without writing
    /// anything; on threads of the caller's, away from the transaction.
    pub fn prepare_own(&self, resource: Value) -> Result<NewResource, RepositoryError> {
        let id = crate::hooks::own_id(&resource)?;
        crate::check_id(&id)?;
        Ok(NewResource(self.prepare(resource, &id)?))
    }

    /// Validates `resource` and extracts its index entries under a new id, as a create does,
    /// without writing anything.
    pub fn prepare_new(&self, resource: Value) -> Result<NewResource, RepositoryError> {
        Ok(NewResource(self.prepare(resource, &new_id())?))
    }

    /// Creates every resource of `resources` in one transaction for `ctx` (all or none, with
    /// the write hooks and the retries of any write), and answers their versions in order.
    pub fn create_prepared(
        &self,
        ctx: &Caller,
        resources: &[NewResource],
    ) -> Result<Vec<VersionRecord>, RepositoryError> {
        self.with_transaction(ctx, |tx| {
            // Asking first whether the new ids are free, in one call, lets a store that
            // buffers writes (PostgreSQL) send the whole batch at the commit instead of one
            // round trip per resource to find out.
            let keys: Vec<(&str, &str)> = resources
                .iter()
                .map(|resource| (resource.resource_type(), resource.id()))
                .collect();
            if tx.current_many(&keys)?.iter().any(Option::is_some) {
                return Err(RepositoryError::Internal(
                    "a new resource's id is already taken".into(),
                ));
            }
            let now = clock::now_micros();
            resources
                .iter()
                .map(|resource| self.put_version(tx, &resource.0, None, now))
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
        repository.put_version(tx, &resource.0, None, clock::now_micros())?;
        Ok(true)
    }
}
