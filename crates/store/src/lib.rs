//! The store: one trait ([`Store`]) that the embedded SQLite backend and the PostgreSQL backend
//! implement with the same behaviour, the records it reads and writes, its portable errors, and
//! how a resource's bytes are kept (`content`). This crate has no SQL: the backends and the
//! SQL they share (`store-sql`) are the only places SQL lives.

pub mod content;
mod error;
mod jobs;
mod record;

pub use error::StoreError;
pub use jobs::{Heartbeat, JobOutcome, JobQueue, JobRecord, JobState, NewJob};
pub use record::{
    Change, HistoryPage, HistoryQuery, HistoryScope, LedgerLeaf, Method, ScanQuery, SearchPage,
    VersionRecord, VersionWrite,
};

use search::query::SearchQuery;

/// A database holding resources, their versions and their search indexes.
///
/// The store knows nothing of who asks: access is decided above it, and what a caller may see
/// reaches it as part of the query. Reads see committed data; writes happen inside a
/// [`Transaction`] from [`Store::begin`], all or nothing.
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Starts a transaction. Dropping it without [`Transaction::commit`] rolls it back.
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError>;

    /// The current version of a resource (which may be a deletion).
    fn read(&self, resource_type: &str, id: &str) -> Result<Option<VersionRecord>, StoreError>;

    /// One version of a resource.
    fn read_version(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<VersionRecord>, StoreError>;

    /// Versions of several resources (type, id, version), in the order asked, `None` where
    /// there is no such version: one round trip where the database is remote (the ledger
    /// keeper reads every version a batch of changes names).
    fn read_versions(
        &self,
        keys: &[(&str, &str, i64)],
    ) -> Result<Vec<Option<VersionRecord>>, StoreError> {
        keys.iter()
            .map(|&(resource_type, id, version)| self.read_version(resource_type, id, version))
            .collect()
    }

    /// Versions, newest first, at instance, type or system level.
    fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError>;

    /// Runs a search.
    fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError>;

    /// Current, not deleted resources in row order after `query.after_row`: the way through
    /// everything, for reindexing and export.
    fn scan(&self, query: &ScanQuery) -> Result<Vec<VersionRecord>, StoreError>;

    /// A named checkpoint of a long-running job (`reindex`), or `None` when there is none.
    /// Checkpoints are also the store's small key-value surface for state that is not a
    /// resource (the access service's accounts, clients, codes and keys, under `auth/`).
    fn checkpoint(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Every checkpoint whose name starts with `prefix`, ordered by name (byte order).
    fn checkpoints_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// Up to `limit` committed changes after position `after` (0 for the start), in the order
    /// they became visible: every committed version appears exactly once, at a position greater
    /// than every change already returned, and nothing rolled back ever appears. Consumers keep
    /// their own position (in a checkpoint, committed with what they did with the changes).
    fn changes(&self, after: i64, limit: usize) -> Result<Vec<Change>, StoreError>;

    /// The durable jobs kept in this store.
    fn jobs(&self) -> &dyn JobQueue;

    /// Whether the database answers (for `/health/ready`).
    fn ping(&self) -> Result<(), StoreError>;

    /// How many leaves the verifiable log holds, committed. Leaves and their tiles commit
    /// together, so the tiles read after this hold at least this many leaves.
    fn ledger_size(&self) -> Result<u64, StoreError>;

    /// One tile of the log's tree (`ledger::tree`): its hashes, concatenated.
    fn ledger_tile(&self, level: u32, index: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Several tiles, in the order asked (one round trip where the database is remote).
    fn ledger_tiles(&self, keys: &[(u32, u64)]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter()
            .map(|&(level, index)| self.ledger_tile(level, index))
            .collect()
    }

    /// The log's leaves `start..end`, in order.
    fn ledger_leaves(&self, start: u64, end: u64) -> Result<Vec<LedgerLeaf>, StoreError>;

    /// The leaf that records a version, if it was logged.
    fn ledger_leaf_of(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<LedgerLeaf>, StoreError>;

    /// The leaves that record several versions (type, id, version), in the order asked,
    /// `None` for a version not logged (one round trip where the database is remote).
    fn ledger_leaves_of(
        &self,
        keys: &[(&str, &str, i64)],
    ) -> Result<Vec<Option<LedgerLeaf>>, StoreError> {
        keys.iter()
            .map(|&(resource_type, id, version)| self.ledger_leaf_of(resource_type, id, version))
            .collect()
    }

    /// Starts a bulk load. Into an empty store, the secondary indexes that only searches use
    /// are dropped, so the load appends rows instead of inserting each index entry at a random
    /// place, and [`Store::end_bulk_load`] builds them once, by sorting. Writes and searches stay
    /// correct meanwhile (searches slower). The store remembers the deferral, so a load that
    /// dies before its end has the indexes built when the store is next opened. Answers whether
    /// indexes were deferred; a store with data, or a backend without the notion, does nothing.
    fn begin_bulk_load(&self) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Builds whatever [`Store::begin_bulk_load`] deferred (nothing if it deferred nothing).
    fn end_bulk_load(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Brings the query planner's statistics up to date after a bulk load, which changes the
    /// data faster than the database's own maintenance notices. A store whose planner needs
    /// no statistics does nothing.
    fn refresh_statistics(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// One database transaction. Writes may be buffered until the next read in the transaction or
/// the commit, so reads inside it always see its own writes.
pub trait Transaction {
    /// The current version of a resource, locked against concurrent writers until the end of
    /// the transaction.
    fn current(
        &mut self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<VersionRecord>, StoreError>;

    /// The current versions of many resources at once, in the order asked (for bulk loads).
    fn current_many(
        &mut self,
        keys: &[(&str, &str)],
    ) -> Result<Vec<Option<VersionRecord>>, StoreError> {
        keys.iter().map(|(t, id)| self.current(t, id)).collect()
    }

    /// Declares that no resource has these keys, without reading: ids this write generated
    /// itself. A store that buffers writes then buffers theirs as it does after a read that
    /// found nothing; should one be taken after all, the write fails as a conflict, by the
    /// commit at the latest.
    fn assume_new(&mut self, keys: &[(&str, &str)]) {
        let _ = keys;
    }

    /// Writes a new version and answers the resource's row key. `write.previous` must be what
    /// [`Transaction::current`] returned (or `None` after [`Transaction::assume_new`]): the
    /// store relies on it to know whether the resource exists, and fails with a conflict if
    /// another writer got there first.
    fn put(&mut self, write: VersionWrite<'_>) -> Result<i64, StoreError>;

    /// Runs a search that sees this transaction's writes (conditional operations).
    fn search(&mut self, query: &SearchQuery) -> Result<SearchPage, StoreError>;

    /// Replaces the index rows (and patient-compartment key) of a resource's current version
    /// without writing a new version: for reindexing after search parameters change.
    fn replace_index(&mut self, row: i64, index: &search::IndexEntries) -> Result<(), StoreError>;

    /// Sets (or with `None` clears) a named checkpoint, committed with the transaction.
    fn set_checkpoint(&mut self, name: &str, value: Option<&str>) -> Result<(), StoreError>;

    /// Removes a named checkpoint and answers its value, atomically: of two transactions
    /// taking the same name, at most one gets the value (one-time authorization codes).
    fn take_checkpoint(&mut self, name: &str) -> Result<Option<String>, StoreError>;

    /// Sets a named checkpoint only when there is none by that name, and answers whether it
    /// did: of two transactions inserting the same name, at most one succeeds (an assertion's
    /// `jti` used once).
    fn insert_checkpoint_if_absent(&mut self, name: &str, value: &str) -> Result<bool, StoreError>;

    /// Takes a lock on `key` held until the transaction ends, so that two transactions deciding
    /// about the same thing (the master patient index: two registrations of one new person)
    /// run one after the other. Keys are the caller's 64-bit hashes. A backend whose write
    /// transactions are already serialised (SQLite) has nothing to do; PostgreSQL takes
    /// `pg_advisory_xact_lock(key)`. Callers taking several keys take them in ascending order.
    fn lock_key(&mut self, key: i64) -> Result<(), StoreError>;

    /// [`Transaction::lock_key`] on each of `keys`, in the order given (callers give them
    /// ascending): on PostgreSQL one statement for all, not a round trip each.
    fn lock_keys(&mut self, keys: &[i64]) -> Result<(), StoreError> {
        for key in keys {
            self.lock_key(*key)?;
        }
        Ok(())
    }

    /// The log's size as this transaction sees it. A writer appending takes the log's lock
    /// first ([`Transaction::lock_key`] with `ledger`'s key), so that no other writer appends
    /// between this read and the commit: two writers never make two trees of one size.
    fn ledger_size(&mut self) -> Result<u64, StoreError>;

    /// One tile of the log's tree as this transaction sees it.
    fn ledger_tile(&mut self, level: u32, index: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Appends leaves (numbered from the current size on) and writes the tiles they change,
    /// whole.
    fn put_ledger(
        &mut self,
        leaves: &[LedgerLeaf],
        tiles: &[(u32, u64, &[u8])],
    ) -> Result<(), StoreError>;

    /// Makes every write of the transaction durable and visible, at once.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}
