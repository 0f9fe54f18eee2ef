//! The one read path. Every read of stored resources (read, vread, history, every search with
//! its includes, chains and `_has`, `$everything`, exports, conditional operations, write
//! hooks' look-ups, the identity service's queries) goes through a [`Reader`] for a caller, and
//! these few methods are the only ones in the repository that ask the store for resources.
//! That is where the read policy will be applied to every query, so that a rule added there
//! holds everywhere.

use caller::Caller;
use search::query::SearchQuery;
use search::{Handling, SearchTarget, parse_search};
use store::{HistoryPage, HistoryQuery, ScanQuery, SearchPage, VersionRecord};

use crate::{Repository, RepositoryError, WriteTx};

/// Reads for one caller.
#[derive(Clone, Copy)]
pub struct Reader<'r> {
    pub(crate) repository: &'r Repository,
    pub(crate) caller: &'r Caller,
}

impl Repository {
    /// The reads `caller` may make.
    pub fn reader<'r>(&'r self, caller: &'r Caller) -> Reader<'r> {
        Reader {
            repository: self,
            caller,
        }
    }
}

impl<'r> Reader<'r> {
    pub fn caller(&self) -> &'r Caller {
        self.caller
    }

    pub fn repository(&self) -> &'r Repository {
        self.repository
    }

    /// The current version of a resource (which may be a deletion), `None` when it never
    /// existed.
    pub fn current(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<VersionRecord>, RepositoryError> {
        Ok(self.repository.store.read(resource_type, id)?)
    }

    /// One version of a resource.
    pub fn version_of(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<VersionRecord>, RepositoryError> {
        Ok(self
            .repository
            .store
            .read_version(resource_type, id, version)?)
    }

    /// A page of versions.
    pub fn history_page(&self, query: &HistoryQuery) -> Result<HistoryPage, RepositoryError> {
        Ok(self.repository.store.history(query)?)
    }

    /// A page of a search in the intermediate form.
    pub fn page(&self, query: &SearchQuery) -> Result<SearchPage, RepositoryError> {
        Ok(self.repository.store.search(query)?)
    }

    /// Current, undeleted resources in row order after `query.after_row`.
    pub fn scan(&self, query: &ScanQuery) -> Result<Vec<VersionRecord>, RepositoryError> {
        Ok(self.repository.store.scan(query)?)
    }

    /// Search criteria (`identifier=...`) on one type as a query of at most `count` matches:
    /// what conditional operations, hooks and services search with. Unknown parameters are
    /// errors.
    pub fn criteria(
        &self,
        resource_type: &str,
        criteria: &[(String, String)],
        count: usize,
    ) -> Result<SearchQuery, RepositoryError> {
        // Criteria do not know the base they were sent to.
        let mut parsed = parse_search(
            self.repository.indexer().registry(),
            None,
            SearchTarget::Type(resource_type),
            criteria,
            Handling::Strict,
        )?;
        parsed.query.count = count;
        Ok(parsed.query)
    }

    /// The current resources of `resource_type` matching `criteria`, at most `count`, from
    /// committed data.
    pub fn find(
        &self,
        resource_type: &str,
        criteria: &[(String, String)],
        count: usize,
    ) -> Result<Vec<VersionRecord>, RepositoryError> {
        let query = self.criteria(resource_type, criteria, count)?;
        Ok(self.page(&query)?.matches)
    }

    /// [`Reader::find`] inside a write transaction, seeing its writes.
    pub fn find_in(
        &self,
        tx: &mut WriteTx<'_>,
        resource_type: &str,
        criteria: &[(String, String)],
        count: usize,
    ) -> Result<Vec<VersionRecord>, RepositoryError> {
        let query = self.criteria(resource_type, criteria, count)?;
        Ok(tx.search(&query)?.matches)
    }

    /// The resources a conditional operation's criteria match, inside its transaction: at most
    /// two, which tells none, one and several apart. Atomic with respect to the criteria: the
    /// criteria's locks are taken first (`SearchQuery::criteria_locks`), so a concurrent
    /// conditional operation deciding about the same resource waits until this transaction
    /// ends, then sees its write. Criteria that ask nothing are refused: they would match every
    /// resource of the type.
    pub fn conditional_matches(
        &self,
        tx: &mut WriteTx<'_>,
        resource_type: &str,
        criteria: &[(String, String)],
    ) -> Result<Vec<VersionRecord>, RepositoryError> {
        if criteria.is_empty() {
            return Err(RepositoryError::PreconditionFailed(
                "a conditional operation needs search criteria".into(),
            ));
        }
        let query = self.criteria(resource_type, criteria, 2)?;
        if query.filters.is_empty() {
            return Err(RepositoryError::PreconditionFailed(
                "a conditional operation needs search criteria with a value".into(),
            ));
        }
        for key in query.criteria_locks() {
            tx.lock_key(key)?;
        }
        Ok(tx.search(&query)?.matches)
    }

    /// [`Reader::page`] inside a write transaction, seeing its writes.
    pub fn page_in(
        &self,
        tx: &mut WriteTx<'_>,
        query: &SearchQuery,
    ) -> Result<SearchPage, RepositoryError> {
        Ok(tx.search(query)?)
    }

    /// The current version of a resource as the transaction sees it.
    pub fn current_in(
        &self,
        tx: &mut WriteTx<'_>,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<VersionRecord>, RepositoryError> {
        Ok(tx.current(resource_type, id)?)
    }
}
