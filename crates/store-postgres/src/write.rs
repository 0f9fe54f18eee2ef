//! The write transaction: `BEGIN` (read committed) on a pooled connection, resource rows locked
//! by `current`, and writes buffered until the next read or the commit, then sent as one
//! statement (see `flush.rs`).
//!
//! What the transaction knows of each resource it has read or written is what lets it buffer
//! safely: a write based on a version this transaction read (and so locked) cannot lose a race,
//! and a create of an id it saw absent can only lose one to a concurrent create, which the
//! unique index turns into a conflict at the flush. A write based on anything else is sent at
//! once, so that its conflict is reported by `put` itself.
//!
//! On a distributed store (`distribution`) the lock is an advisory lock on the coordinator
//! instead of `FOR UPDATE`, and the unique index is the locator's.

use std::collections::{HashMap, HashSet};

use search::IndexEntries;
use search::query::SearchQuery;
use store::{Method, SearchPage, StoreError, Transaction, VersionRecord, VersionWrite};

use crate::flush::Pending;
use crate::pool::PooledConnection;
use crate::read::{self, record_at};
use crate::{PostgresStore, is_broken, map_error};

/// Up to how many resources a locked read on a distributed store reads one by one through
/// their locators; more are read by one statement across the shards.
const LOCATED_READS: usize = 4;

/// What the transaction knows of one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Read as absent by this transaction.
    Absent,
    /// Read (and locked) or written by this transaction; `version` is its current one.
    Present { row: i64, version: i64 },
}

pub(crate) struct PostgresTransaction<'a> {
    store: &'a PostgresStore,
    connection: PooledConnection<'a>,
    known: HashMap<(String, String), Known>,
    pending: Pending,
    /// Resources with a buffered write: a second write to one of them flushes the first.
    pending_rows: HashSet<i64>,
    /// Set once a statement failed or a flush was partly refused: the database transaction is
    /// then aborted or unusable, and a commit must not pretend otherwise (PostgreSQL answers
    /// `COMMIT` in an aborted transaction with a rollback, not an error).
    failed: Option<String>,
    finished: bool,
}

impl<'a> PostgresTransaction<'a> {
    pub(crate) fn new(
        store: &'a PostgresStore,
        connection: PooledConnection<'a>,
    ) -> PostgresTransaction<'a> {
        PostgresTransaction {
            store,
            connection,
            known: HashMap::new(),
            pending: Pending::default(),
            pending_rows: HashSet::new(),
            failed: None,
            finished: false,
        }
    }

    fn check_usable(&self) -> Result<(), StoreError> {
        match &self.failed {
            Some(reason) => Err(StoreError::Conflict(format!(
                "the transaction already failed ({reason}); run it again"
            ))),
            None => Ok(()),
        }
    }

    /// Remembers a failure so that nothing more runs in this transaction.
    fn note<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(error) = &result {
            if self.failed.is_none() {
                self.failed = Some(error.to_string());
            }
            if is_broken(error, &self.connection) {
                self.connection.discard();
            }
        }
        result
    }

    /// Runs one cached statement that answers no rows: the rows it changed.
    fn execute_cached(
        &mut self,
        sql: &str,
        parameters: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.check_usable()?;
        let connection = &mut *self.connection;
        let result = connection.prepare_cached(sql).and_then(|statement| {
            connection
                .client
                .execute(&statement, parameters)
                .map_err(map_error)
        });
        self.note(result)
    }

    /// Sends the buffered writes.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_rows.clear();
        let result = pending.send(&mut self.connection);
        self.note(result)
    }

    /// Locks the rows of `keys` that exist and reads their current versions.
    fn lock_and_read(
        &mut self,
        keys: &[(&str, &str)],
    ) -> Result<Vec<Option<VersionRecord>>, StoreError> {
        let connection = &mut *self.connection;
        // One statement locks the rows (in row-key order, so that two transactions locking
        // overlapping sets cannot deadlock) and reads their current versions. If it had to
        // wait for a lock, read committed hands it the locked row's newest state but keeps its
        // own snapshot for the version table, where the newest version is not yet visible: the
        // outer join then yields no version (or an older one), and those rows are read again
        // by a second statement, whose snapshot sees them, while the lock keeps them still.
        let types: Vec<&str> = keys.iter().map(|(t, _)| *t).collect();
        let ids: Vec<&str> = keys.iter().map(|(_, id)| *id).collect();
        let sql = if connection.distributed {
            // Rows on several shards cannot be locked by one query: on a distributed store the
            // writers of a resource serialise on a transaction-scoped advisory lock on the
            // coordinator, through which every writer comes, taken in one order. The read
            // after it sees whatever the lock's previous holder committed.
            let advisory = connection.prepare_cached(
                "SELECT pg_advisory_xact_lock(1835365218, h) FROM (SELECT DISTINCT hashtext(t || '/' || i) AS h \
                 FROM unnest($1::text[], $2::text[]) AS k(t, i) ORDER BY h) s",
            )?;
            connection
                .client
                .execute(&advisory, &[&types, &ids])
                .map_err(map_error)?;
            if keys.len() <= LOCATED_READS {
                // A few resources: each through its locator to its resident's shard (two
                // single-shard reads) rather than one read of every shard.
                let out = keys
                    .iter()
                    .map(|(resource_type, id)| read::current(connection, resource_type, id))
                    .collect::<Result<Vec<_>, _>>()?;
                self.remember(keys, &out);
                return Ok(out);
            }
            let join = store_sql::current_version_join(connection.dialect());
            format!(
                "SELECT r.rid, r.type, r.id, v.version, v.last_updated, v.method, v.content, v.content_hash, \
                 v.custodian, v.sensitivity, r.version FROM unnest($1::text[], $2::text[]) AS k(type, id) \
                 JOIN resource r ON r.type = k.type AND r.id = k.id LEFT {join} ORDER BY r.rid"
            )
        } else {
            // The keys are found first, each apart (`LATERAL ... OFFSET 0`), and the rows they
            // name are locked by row key, their versions looked up each apart too. Joined, the
            // generic plan made while the tables looked empty (statistics taken then, none
            // since) walked the whole resource table in row-key order for the `ORDER BY`,
            // testing every key against every row: 3 to 17 s a batch by 30,000 resources.
            "SELECT r.rid, r.type, r.id, v.version, v.last_updated, v.method, v.content, v.content_hash, \
                 v.custodian, v.sensitivity, r.version FROM resource r \
                 LEFT JOIN LATERAL (SELECT v.* FROM version v WHERE v.rid = r.rid AND v.version = r.version OFFSET 0) v ON true \
                 WHERE r.rid = ANY(ARRAY(SELECT x.rid FROM unnest($1::text[], $2::text[]) AS k(type, id) \
                       CROSS JOIN LATERAL (SELECT f.rid FROM resource f WHERE f.type = k.type AND f.id = k.id OFFSET 0) x)) \
                 ORDER BY r.rid FOR UPDATE OF r".to_owned()
        };
        let lock = connection.prepare_cached(&sql)?;
        let locked = connection.query_generic(&lock, &[&types, &ids])?;
        let mut positions: HashMap<(&str, &str), Vec<usize>> = HashMap::with_capacity(keys.len());
        for (position, key) in keys.iter().enumerate() {
            positions.entry(*key).or_default().push(position);
        }
        let mut out: Vec<Option<VersionRecord>> = vec![None; keys.len()];
        let mut moved: HashMap<i64, Vec<usize>> = HashMap::new();
        for row in &locked {
            let key: (&str, &str) = (row.get(1), row.get(2));
            let Some(at) = positions.get(&key) else {
                continue;
            };
            let version: Option<i64> = row.get(3);
            let current: i64 = row.get(10);
            if version == Some(current) {
                let record = record_at(row, 0)?;
                for &position in at {
                    out[position] = Some(record.clone());
                }
            } else {
                moved.entry(row.get(0)).or_default().extend(at);
            }
        }
        if !moved.is_empty() {
            let rows: Vec<i64> = moved.keys().copied().collect();
            for record in read::records_by_row(connection, &rows)? {
                for &position in &moved[&record.row] {
                    out[position] = Some(record.clone());
                }
            }
        }
        self.remember(keys, &out);
        Ok(out)
    }

    /// Records what a locked read found of `keys`.
    fn remember(&mut self, keys: &[(&str, &str)], records: &[Option<VersionRecord>]) {
        for ((resource_type, id), record) in keys.iter().zip(records) {
            let known = match record {
                Some(record) => Known::Present {
                    row: record.row,
                    version: record.version,
                },
                None => Known::Absent,
            };
            self.known
                .insert(((*resource_type).to_owned(), (*id).to_owned()), known);
        }
    }

    /// On a distributed store, the index of resource `row` when it is outside any patient's
    /// compartment, with a key of its own instead of none: the negated row key, unique to the
    /// resource and never a patient's (those are positive), which Citus's hash spreads over
    /// the shards (decision 0025, item 2). With none, every directory entry, every AuditEvent
    /// about no patient and every unlinked Person would sit on the one shard of key 0.
    fn spread(&self, row: i64, index: &IndexEntries) -> Option<IndexEntries> {
        (self.connection.distributed && index.patient_key == search::PatientKey::NONE).then(|| {
            IndexEntries {
                patient_key: search::PatientKey(-row),
                ..index.clone()
            }
        })
    }

    fn put_inner(&mut self, write: VersionWrite<'_>) -> Result<i64, StoreError> {
        let key = (write.resource_type.to_owned(), write.id.to_owned());
        let known = self.known.get(&key).copied();
        let conflict = |what: &str| {
            StoreError::Conflict(format!("{}/{} {what}", write.resource_type, write.id))
        };
        // Whether this transaction's own reads vouch for `previous`; if not, the write is sent
        // at once so that a conflict surfaces here.
        let (row, vouched) = match (write.previous, known) {
            (None, Some(Known::Absent)) => (self.next_row_key()?, true),
            (None, None) => (self.next_row_key()?, false),
            (None, Some(Known::Present { .. })) => return Err(conflict("already exists")),
            (Some(previous), Some(Known::Present { row, version })) => {
                if row != previous.row || version != previous.version {
                    return Err(conflict(&format!(
                        "changed since version {}",
                        previous.version
                    )));
                }
                (row, true)
            }
            (Some(previous), Some(Known::Absent)) => {
                return Err(conflict(&format!(
                    "does not exist (expected version {})",
                    previous.version
                )));
            }
            (Some(previous), None) => (previous.row, false),
        };
        if self.pending_rows.contains(&row) {
            self.flush()?;
        }
        // A deletion has no content, so no patient key of its own; on a distributed store it
        // stays in its resident's shard (elsewhere its key is none, as its index).
        let kept_key = if write.method == Method::Delete && self.connection.distributed {
            let located = read::located(&mut self.connection, write.resource_type, write.id);
            self.note(located)?
        } else {
            None
        };
        let spread = self.spread(row, write.index);
        let write = match &spread {
            Some(index) => VersionWrite { index, ..write },
            None => write,
        };
        self.pending.push(row, &write, kept_key)?;
        self.pending_rows.insert(row);
        if !vouched {
            self.flush()?;
        }
        self.known.insert(
            key,
            Known::Present {
                row,
                version: write.version,
            },
        );
        Ok(row)
    }

    fn next_row_key(&mut self) -> Result<i64, StoreError> {
        self.store.row_keys.next(&mut self.connection.client)
    }
}

impl Drop for PostgresTransaction<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.connection.transaction_ended();
        if let Err(error) = self.connection.client.batch_execute("ROLLBACK") {
            // The connection's state is unknown: close it rather than lend it again.
            tracing::warn!(%error, "rolling back a PostgreSQL transaction failed");
            self.connection.discard();
        }
    }
}

impl Transaction for PostgresTransaction<'_> {
    fn current(
        &mut self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.check_usable()?;
        self.flush()?;
        let result = self
            .lock_and_read(&[(resource_type, id)])
            .map(|mut records| records.pop().flatten());
        self.note(result)
    }

    fn current_many(
        &mut self,
        keys: &[(&str, &str)],
    ) -> Result<Vec<Option<VersionRecord>>, StoreError> {
        self.check_usable()?;
        self.flush()?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let result = self.lock_and_read(keys);
        self.note(result)
    }

    fn assume_new(&mut self, keys: &[(&str, &str)]) {
        for &(resource_type, id) in keys {
            self.known
                .entry((resource_type.to_owned(), id.to_owned()))
                .or_insert(Known::Absent);
        }
    }

    fn put(&mut self, write: VersionWrite<'_>) -> Result<i64, StoreError> {
        self.check_usable()?;
        if write.method == Method::Delete && write.content.is_some() {
            return Err(StoreError::Internal(
                "a deletion carries no content".to_owned(),
            ));
        }
        self.put_inner(write)
    }

    fn search(&mut self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        self.check_usable()?;
        self.flush()?;
        let result = read::search(&mut self.connection, query);
        self.note(result)
    }

    fn replace_index(&mut self, row: i64, index: &IndexEntries) -> Result<(), StoreError> {
        self.check_usable()?;
        if self.pending_rows.contains(&row) {
            self.flush()?;
        }
        let spread = self.spread(row, index);
        self.pending
            .push_reindex(row, spread.as_ref().unwrap_or(index));
        self.pending_rows.insert(row);
        Ok(())
    }

    fn lock_key(&mut self, key: i64) -> Result<(), StoreError> {
        self.execute_cached("SELECT pg_advisory_xact_lock($1)", &[&key])?;
        Ok(())
    }

    fn lock_keys(&mut self, keys: &[i64]) -> Result<(), StoreError> {
        // `unnest` yields the array in its order and the locks are taken row by row as the
        // scan reaches them: the order the caller gave, as one `lock_key` after another.
        self.execute_cached(
            "SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS k",
            &[&keys],
        )?;
        Ok(())
    }

    fn set_checkpoint(&mut self, name: &str, value: Option<&str>) -> Result<(), StoreError> {
        match value {
            Some(value) => self.execute_cached(
                "INSERT INTO checkpoint (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                &[&name, &value],
            )?,
            None => self.execute_cached("DELETE FROM checkpoint WHERE name = $1", &[&name])?,
        };
        Ok(())
    }

    fn take_checkpoint(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        self.check_usable()?;
        let connection = &mut *self.connection;
        // Read committed: a concurrent taker waits for this row's lock, then finds it gone.
        let result = connection
            .prepare_cached("DELETE FROM checkpoint WHERE name = $1 RETURNING value")
            .and_then(|statement| {
                connection
                    .client
                    .query_opt(&statement, &[&name])
                    .map_err(map_error)
            });
        self.note(result.map(|row| row.map(|row| row.get(0))))
    }

    fn insert_checkpoint_if_absent(&mut self, name: &str, value: &str) -> Result<bool, StoreError> {
        let inserted = self.execute_cached(
            "INSERT INTO checkpoint (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &value],
        )?;
        Ok(inserted == 1)
    }

    fn ledger_size(&mut self) -> Result<u64, StoreError> {
        self.check_usable()?;
        let result = crate::ledger::size(&mut self.connection);
        self.note(result)
    }

    fn ledger_tile(&mut self, level: u32, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_usable()?;
        let result = crate::ledger::tile(&mut self.connection, level, index);
        self.note(result)
    }

    fn put_ledger(
        &mut self,
        leaves: &[store::LedgerLeaf],
        tiles: &[(u32, u64, &[u8])],
    ) -> Result<(), StoreError> {
        self.check_usable()?;
        let result = crate::ledger::put(&mut self.connection, leaves, tiles);
        self.note(result)
    }

    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.check_usable()?;
        self.flush()?;
        let result = self
            .connection
            .client
            .batch_execute("COMMIT")
            .map_err(map_error);
        // Whatever COMMIT answered, the transaction is over: nothing to roll back on drop.
        self.finished = true;
        self.connection.transaction_ended();
        if let Err(error) = &result
            && is_broken(error, &self.connection)
        {
            self.connection.discard();
        }
        result
    }
}
