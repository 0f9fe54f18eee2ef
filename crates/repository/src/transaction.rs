//! A write transaction as the repository runs it: the store's transaction, the caller it runs
//! for, and what the repository must remember until the commit (the versions the write hooks
//! have yet to see, whether a SearchParameter was written). This state lives in the transaction
//! itself, not in thread-locals: a hook that writes cannot clear its caller's state, and work
//! that moves between threads keeps it.

use std::ops::{Deref, DerefMut};

use caller::Caller;
use store::{Transaction, VersionRecord};

/// The repository's view of one store transaction. Derefs to the store's [`Transaction`].
pub struct WriteTx<'a> {
    store: Box<dyn Transaction + 'a>,
    caller: &'a Caller,
    /// Versions written that some hook wants and has not been shown yet, each with the
    /// version it replaced.
    pub(crate) pending: Vec<(VersionRecord, Option<VersionRecord>)>,
    /// A SearchParameter was written: the indexer is rebuilt once the transaction commits.
    pub(crate) wrote_search_parameters: bool,
    /// A domain service is writing (a write hook, a service's operation): the access policy
    /// decides who holds what it writes but does not refuse it (see `WriteFacts::by_service`).
    pub(crate) by_service: bool,
}

impl<'a> WriteTx<'a> {
    pub(crate) fn new(store: Box<dyn Transaction + 'a>, caller: &'a Caller) -> WriteTx<'a> {
        WriteTx {
            store,
            caller,
            pending: Vec::new(),
            wrote_search_parameters: false,
            by_service: false,
        }
    }

    /// The caller the transaction writes for.
    pub fn caller(&self) -> &'a Caller {
        self.caller
    }

    /// Commits the store's transaction. (The verifiable log follows from the change log:
    /// `crate::ledgering`.)
    pub(crate) fn commit(self) -> Result<(), store::StoreError> {
        self.store.commit()
    }
}

impl<'a> Deref for WriteTx<'a> {
    type Target = dyn Transaction + 'a;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut *self.store
    }
}
