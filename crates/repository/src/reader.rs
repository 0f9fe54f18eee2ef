//! The one read path. Every read of stored resources (read, vread, history, every search with
//! its includes, chains and `_has`, `$everything`, exports, conditional operations, write
//! hooks' look-ups, the identity service's queries) goes through a [`Reader`] for a caller, and
//! these few methods are the only ones in the repository that ask the store for resources.
//! Each states, inside the query it sends, what the read policy lets the caller see
//! ([`Visibility`]), so that a rule of the policy holds everywhere at once.

use caller::Caller;
use search::query::{Filter, SearchQuery, Visibility};
use search::{Handling, SearchTarget, parse_search};
use store::{HistoryPage, HistoryQuery, ScanQuery, SearchPage, VersionRecord};

use crate::{Repository, RepositoryError, WriteTx};

/// Reads for one caller.
#[derive(Clone)]
pub struct Reader<'r> {
    pub(crate) repository: &'r Repository,
    pub(crate) caller: &'r Caller,
    /// What the read policy lets the caller see, decided once for the reader.
    visibility: Visibility,
}

impl Repository {
    /// The reads `caller` may make.
    pub fn reader<'r>(&'r self, caller: &'r Caller) -> Reader<'r> {
        Reader {
            repository: self,
            caller,
            visibility: self.access_policy().visibility(caller),
        }
    }
}

impl Repository {
    /// The reads a domain service makes for its own work inside its transaction (a write
    /// hook's look-ups, a service operation's), for `caller`: they see everything, because
    /// what they find decides the service's work (a new registration is matched against every
    /// institution's), and what the caller is then shown goes through the ordinary read path
    /// or the operation's own rules.
    pub(crate) fn service_reader<'r>(&'r self, caller: &'r Caller) -> Reader<'r> {
        Reader {
            repository: self,
            caller,
            visibility: Visibility::All,
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

    /// What the caller may see.
    pub fn visibility(&self) -> &Visibility {
        &self.visibility
    }

    /// `query` as this caller may run it.
    fn scoped(&self, query: &SearchQuery) -> SearchQuery {
        let mut query = query.clone();
        query.visibility = self.visibility.clone();
        query
    }

    /// The search for one resource by its id, as this caller may see it.
    fn by_id(&self, resource_type: &str, id: &str) -> SearchQuery {
        let mut query = SearchQuery::of_type(resource_type);
        query.filters.push(Filter::Id(vec![id.into()]));
        query.count = 1;
        query.visibility = self.visibility.clone();
        query
    }

    /// Whether the resource `record` is one the caller may see: a resource the policy hides
    /// reads as one that does not exist. (A deleted resource has nothing left to hide: its
    /// deletion is seen as such.)
    fn may_see(
        &self,
        record: Option<VersionRecord>,
        search: impl FnOnce(&SearchQuery) -> Result<SearchPage, RepositoryError>,
    ) -> Result<Option<VersionRecord>, RepositoryError> {
        let Some(record) = record else {
            return Ok(None);
        };
        match &self.visibility {
            Visibility::All => Ok(Some(record)),
            Visibility::Nothing => Ok(None),
            Visibility::Where(_) if record.is_deleted() => Ok(Some(record)),
            Visibility::Where(_) => {
                let query = self.by_id(&record.resource_type, &record.id);
                Ok(if search(&query)?.matches.is_empty() {
                    None
                } else {
                    Some(record)
                })
            }
        }
    }

    /// The current version of a resource (which may be a deletion), `None` when it never
    /// existed or the caller may not see it.
    pub fn current(
        &self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<VersionRecord>, RepositoryError> {
        if let Visibility::Where(_) = &self.visibility {
            // One statement when the caller may see the resource: it, as a search under the
            // rule finds it (a read and then the rule's check was two, a clinician's read at
            // 1.8 times an administrator's p99). Only when that finds nothing is the row read,
            // to tell a deletion (which has nothing left to hide) from what is hidden.
            let store = &self.repository.store;
            if let Some(record) = store.search(&self.by_id(resource_type, id))?.matches.pop() {
                return Ok(Some(record));
            }
            return Ok(store
                .read(resource_type, id)?
                .filter(VersionRecord::is_deleted));
        }
        let record = self.repository.store.read(resource_type, id)?;
        self.may_see(record, |query| Ok(self.repository.store.search(query)?))
    }

    /// One version of a resource, when the caller may see the resource.
    pub fn version_of(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<VersionRecord>, RepositoryError> {
        let Some(current) = self.current(resource_type, id)? else {
            return Ok(None);
        };
        // Usually the version asked for is the current one (the ledger keeper reads each
        // version just written): the read that checked the caller may see it has it.
        if current.version == version {
            return Ok(Some(current));
        }
        Ok(self
            .repository
            .store
            .read_version(resource_type, id, version)?)
    }

    /// Several versions (type, id, version) in the order asked, each `None` where
    /// [`Reader::version_of`] would answer `None`: read together (one statement on PostgreSQL)
    /// when the caller may see everything, else one by one as `version_of` reads them.
    pub fn versions_of(
        &self,
        keys: &[(&str, &str, i64)],
    ) -> Result<Vec<Option<VersionRecord>>, RepositoryError> {
        if let Visibility::All = &self.visibility {
            return Ok(self.repository.store.read_versions(keys)?);
        }
        keys.iter()
            .map(|&(resource_type, id, version)| self.version_of(resource_type, id, version))
            .collect()
    }

    /// A page of versions (of resources the caller may see).
    pub fn history_page(&self, query: &HistoryQuery) -> Result<HistoryPage, RepositoryError> {
        let mut query = query.clone();
        query.visibility = self.visibility.clone();
        Ok(self.repository.store.history(&query)?)
    }

    /// A page of a search in the intermediate form, as the caller may see it.
    pub fn page(&self, query: &SearchQuery) -> Result<SearchPage, RepositoryError> {
        Ok(self.repository.store.search(&self.scoped(query))?)
    }

    /// Current, undeleted resources the caller may see, in row order after `query.after_row`.
    pub fn scan(&self, query: &ScanQuery) -> Result<Vec<VersionRecord>, RepositoryError> {
        let mut query = query.clone();
        query.visibility = self.visibility.clone();
        Ok(self.repository.store.scan(&query)?)
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
        parsed.query.visibility = self.visibility.clone();
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

    /// How many current resources of `resource_type` match `criteria` that the caller may not
    /// see: a count, never the resources, for a service that must say that something exists
    /// without showing it ("a result exists at another institution, not shared with you").
    pub fn hidden_count(
        &self,
        resource_type: &str,
        criteria: &[(String, String)],
    ) -> Result<u64, RepositoryError> {
        if matches!(self.visibility, Visibility::All) {
            return Ok(0);
        }
        let mut seen = self.criteria(resource_type, criteria, 1)?;
        seen.total = search::query::TotalMode::Accurate;
        let mut all = seen.clone();
        all.visibility = Visibility::All;
        let total = self.repository.store.search(&all)?.total.unwrap_or(0);
        let visible = self.repository.store.search(&seen)?.total.unwrap_or(0);
        Ok(total.saturating_sub(visible))
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
        tx.lock_keys(&query.criteria_locks())?;
        Ok(tx.search(&query)?.matches)
    }

    /// [`Reader::page`] inside a write transaction, seeing its writes.
    pub fn page_in(
        &self,
        tx: &mut WriteTx<'_>,
        query: &SearchQuery,
    ) -> Result<SearchPage, RepositoryError> {
        Ok(tx.search(&self.scoped(query))?)
    }

    /// The current version of a resource as the transaction sees it.
    pub fn current_in(
        &self,
        tx: &mut WriteTx<'_>,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<VersionRecord>, RepositoryError> {
        let record = tx.current(resource_type, id)?;
        self.may_see(record, |query| Ok(tx.search(query)?))
    }
}

/// The log's verification reads the versions it checks through the one read path.
impl ledger::log::Versions for Reader<'_> {
    fn version(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<VersionRecord>, store::StoreError> {
        self.version_of(resource_type, id, version)
            .map_err(into_store_error)
    }

    fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, store::StoreError> {
        self.history_page(query).map_err(into_store_error)
    }
}

fn into_store_error(error: RepositoryError) -> store::StoreError {
    match error {
        RepositoryError::Store(error) => error,
        other => store::StoreError::Internal(other.to_string()),
    }
}
