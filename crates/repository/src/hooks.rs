//! Write hooks: domain services that must act in the same transaction as a write (the master
//! patient index links every Patient before the write answers) register a [`WriteHook`]. The
//! repository calls it with the open transaction for every version written, before the commit,
//! so whatever the hook writes commits or rolls back with the write that caused it. The
//! repository knows nothing of what a hook does; hooks know nothing of the store's SQL.
//!
//! [`InTransaction`] is also how a service runs its own operations (link, unlink, merge) as
//! one transaction with the same retries and the same hooks as ordinary writes.

use std::sync::Arc;

use caller::Caller;
use serde_json::Value;
use store::{Transaction, VersionRecord};

use crate::meta::new_id;
use crate::{Repository, RepositoryError, WriteTx, Written};

/// Something to do inside the transaction of every write.
pub trait WriteHook: Send + Sync {
    /// Whether the hook wants to see versions of this type: lets the repository skip the
    /// bookkeeping for every other write (bulk loads of Observations pay nothing).
    fn wants(&self, resource_type: &str) -> bool;

    /// Called once for each version written of a type the hook wants, after the write and
    /// before the commit, with the version it replaced (`None` for a create; a deleted one when
    /// the resource is written again after a delete). An error rolls the whole transaction
    /// back and is the write's error.
    fn after_write(
        &self,
        tx: &mut InTransaction<'_, '_>,
        record: &VersionRecord,
        previous: Option<&VersionRecord>,
    ) -> Result<(), RepositoryError>;
}

/// How many rounds of hooks (a hook's writes seen by hooks again) a transaction may take: a
/// hook that keeps writing what it wants to see is a bug, and this stops it.
const MAX_HOOK_ROUNDS: usize = 8;

/// Everything the repository offers code that runs inside one of its transactions.
pub struct InTransaction<'a, 't> {
    repository: &'a Repository,
    tx: &'a mut WriteTx<'t>,
}

impl<'a, 't> InTransaction<'a, 't> {
    pub(crate) fn new(repository: &'a Repository, tx: &'a mut WriteTx<'t>) -> Self {
        InTransaction { repository, tx }
    }

    /// The request the transaction serves (who acts, for which organisation).
    pub fn ctx(&self) -> &Caller {
        self.tx.caller()
    }

    pub fn repository(&self) -> &Repository {
        self.repository
    }

    pub(crate) fn parts(&mut self) -> (&'a Repository, &mut WriteTx<'t>) {
        (self.repository, &mut *self.tx)
    }

    /// The store transaction itself, for what the repository does not wrap (locks).
    pub fn transaction(&mut self) -> &mut dyn Transaction {
        &mut **self.tx
    }

    /// The current version of a resource as this transaction sees it, `None` when it never
    /// existed or is deleted. A service's look-ups see everything (see
    /// `Repository::service_reader`).
    pub fn read(
        &mut self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<(VersionRecord, Value)>, RepositoryError> {
        let caller = self.tx.caller();
        match self
            .repository
            .service_reader(caller)
            .current_in(self.tx, resource_type, id)?
        {
            Some(record) if !record.is_deleted() => {
                let resource = crate::stored::parse_stored(&record)?;
                Ok(Some((record, resource)))
            }
            _ => Ok(None),
        }
    }

    /// A search that sees this transaction's writes: at most `count` current resources.
    pub fn search(
        &mut self,
        resource_type: &str,
        params: &[(String, String)],
        count: usize,
    ) -> Result<Vec<VersionRecord>, RepositoryError> {
        let caller = self.tx.caller();
        self.repository
            .service_reader(caller)
            .find_in(self.tx, resource_type, params, count)
    }

    /// Creates a resource with a new id (validated and indexed like any create).
    pub fn create(&mut self, resource: Value) -> Result<VersionRecord, RepositoryError> {
        let prepared = self.repository.prepare(resource, &new_id())?;
        self.repository
            .put_version(self.tx, &prepared, None, fhir_model::clock::now_micros())
    }

    /// Creates or updates the resource under its own id. With `if_match`, fails when the
    /// current version is another one.
    pub fn update(
        &mut self,
        resource: Value,
        if_match: Option<i64>,
    ) -> Result<Written, RepositoryError> {
        let id = own_id(&resource)?;
        let prepared = self.repository.prepare(resource, &id)?;
        self.repository.upsert_in(
            self.tx,
            &prepared,
            if_match,
            fhir_model::clock::now_micros(),
        )
    }
}

/// The id a resource written under its own id carries (a service's update, a prepared
/// resource), or the error that it has none.
pub(crate) fn own_id(resource: &Value) -> Result<String, RepositoryError> {
    resource
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            RepositoryError::invalid(
                fhir_model::IssueCode::Required,
                "a resource written under its own id needs one",
            )
        })
}

impl InTransaction<'_, '_> {
    /// Deletes a resource (nothing happens when there is none).
    pub fn delete(&mut self, resource_type: &str, id: &str) -> Result<Written, RepositoryError> {
        self.repository.delete_in(
            self.tx,
            resource_type,
            id,
            None,
            fhir_model::clock::now_micros(),
        )
    }
}

impl Repository {
    /// Registers a hook; every later write's transaction runs it.
    pub fn add_write_hook(&self, hook: Arc<dyn WriteHook>) {
        self.hooks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(hook);
    }

    fn hooks(&self) -> Vec<Arc<dyn WriteHook>> {
        self.hooks
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Remembers, in the transaction, a version just written for the hooks that want its type.
    pub(crate) fn note_for_hooks(
        &self,
        tx: &mut WriteTx<'_>,
        record: &VersionRecord,
        previous: Option<&VersionRecord>,
    ) {
        let hooks = self.hooks.read().unwrap_or_else(|p| p.into_inner());
        if hooks.iter().any(|hook| hook.wants(&record.resource_type)) {
            tx.pending.push((record.clone(), previous.cloned()));
        }
    }

    /// Shows every pending version to the hooks, and what they write to the hooks again, until
    /// nothing is pending.
    pub(crate) fn run_hooks(&self, tx: &mut WriteTx<'_>) -> Result<(), RepositoryError> {
        for _ in 0..MAX_HOOK_ROUNDS {
            let pending = std::mem::take(&mut tx.pending);
            if pending.is_empty() {
                return Ok(());
            }
            let hooks = self.hooks();
            let by_client = !std::mem::replace(&mut tx.by_service, true);
            let mut in_tx = InTransaction {
                repository: self,
                tx: &mut *tx,
            };
            let mut result = Ok(());
            'records: for (record, previous) in &pending {
                for hook in hooks.iter().filter(|h| h.wants(&record.resource_type)) {
                    result = hook.after_write(&mut in_tx, record, previous.as_ref());
                    if result.is_err() {
                        break 'records;
                    }
                }
            }
            if by_client {
                tx.by_service = false;
            }
            result?;
        }
        Err(RepositoryError::Internal(
            "write hooks kept writing what they watch; gave up".into(),
        ))
    }

    /// Runs `work` as one transaction of this repository: all or nothing, again from the start
    /// when it raced another writer, with the write hooks run before the commit.
    pub fn run_in_transaction<T>(
        &self,
        ctx: &Caller,
        mut work: impl FnMut(&mut InTransaction<'_, '_>) -> Result<T, RepositoryError>,
    ) -> Result<T, RepositoryError> {
        self.with_transaction(ctx, |tx| {
            tx.by_service = true;
            let mut in_tx = InTransaction {
                repository: self,
                tx,
            };
            work(&mut in_tx)
        })
    }

    /// Current resources matching a search, from committed data (outside any transaction).
    pub fn find(
        &self,
        ctx: &Caller,
        resource_type: &str,
        params: &[(String, String)],
        count: usize,
    ) -> Result<Vec<VersionRecord>, RepositoryError> {
        self.reader(ctx).find(resource_type, params, count)
    }
}
