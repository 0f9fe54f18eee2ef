//! The embedded store: SQLite in WAL mode, compiled into the binary, the default for a fresh
//! machine. One writer connection (SQLite serialises writers anyway; holding our own lock keeps
//! the wait in our hands), whose transactions commit in groups (`group`), and a pool of reader
//! connections that read committed snapshots while the writer works.

mod bulk;
mod checkpoint;
mod group;
mod jobs;
mod ledger;
mod read;
mod schema;
#[cfg(test)]
mod search_cost;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use search::query::SearchQuery;
use store::{
    HistoryPage, HistoryQuery, ScanQuery, SearchPage, Store, StoreError, Transaction, VersionRecord,
};

/// How hard a commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is on disk before it is acknowledged (`synchronous = FULL`).
    Full,
    /// Commits survive a crash of the process but the last ones may be lost on power failure
    /// (`synchronous = NORMAL`): for bulk loads, tests, and `serve --sqlite-synchronous
    /// normal` when its operator accepts that loss.
    Normal,
}

/// Where and how to open the database.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file (its directory must exist).
    pub path: PathBuf,
    pub durability: Durability,
    /// The most reader connections kept open at once.
    pub max_readers: usize,
}

impl SqliteConfig {
    /// The database `meridian.db` inside `data_dir`.
    pub fn in_dir(data_dir: &Path) -> SqliteConfig {
        SqliteConfig {
            path: data_dir.join("meridian.db"),
            durability: Durability::Full,
            max_readers: 8,
        }
    }
}

/// The SQLite store.
pub struct SqliteStore {
    config: SqliteConfig,
    writers: group::Writers,
    readers: Mutex<Vec<Connection>>,
    _checkpointer: checkpoint::Checkpointer,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(config: SqliteConfig) -> Result<SqliteStore, StoreError> {
        let mut writer = open_connection(&config, false)?;
        schema::migrate(&mut writer)?;
        // A bulk load that died before its end left its indexes to build.
        bulk::end(&mut writer)?;
        let checkpointer = checkpoint::Checkpointer::start(
            &mut writer,
            open_connection(&config, false)?,
            checkpoint::Limits::DEFAULT,
        )?;
        Ok(SqliteStore {
            config,
            writers: group::Writers::new(writer),
            readers: Mutex::new(Vec::new()),
            _checkpointer: checkpointer,
        })
    }

    fn reader(&self) -> Result<PooledReader<'_>, StoreError> {
        let idle = lock(&self.readers).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_connection(&self.config, true)?,
        };
        Ok(PooledReader {
            store: self,
            connection: Some(connection),
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection leaves it usable: SQLite rolls back the open
    // transaction when the next BEGIN fails or the guard's transaction is dropped.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_connection(config: &SqliteConfig, read_only: bool) -> Result<Connection, StoreError> {
    // Readers open read-write but set `query_only`: a read-only handle on a WAL database needs
    // the shared-memory file to exist already, which is not true of a fresh database.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let connection = Connection::open_with_flags(&config.path, flags)
        .map_err(|e| StoreError::Unavailable(format!("opening {}: {e}", config.path.display())))?;
    connection
        .busy_timeout(Duration::from_secs(10))
        .map_err(map_error)?;
    connection.set_prepared_statement_cache_capacity(128);
    // The query planner stability guarantee: plans do not depend on the values bound. Without
    // it, SQLite (built with STAT4) expires a cached statement whenever a parameter the
    // statistics could plan on is bound again, and parses and plans it anew at its next step:
    // every search re-prepared its whole SQL, the access rule's included (an institution's
    // token search 0.70 ms at the median, 0.25 ms with the guarantee; BENCHMARKS.md, "Care
    // across levels"). The search plan is chosen by `store-sql` from counts, not by SQLite
    // from bound values.
    connection
        .set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(map_error)?;
    let synchronous = match config.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    let pragmas = if read_only {
        "PRAGMA query_only = 1; PRAGMA cache_size = -65536; PRAGMA mmap_size = 268435456;"
            .to_owned()
    } else {
        format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA cache_size = -131072; \
             PRAGMA temp_store = MEMORY; PRAGMA mmap_size = 268435456;"
        )
    };
    connection.execute_batch(&pragmas).map_err(map_error)?;
    Ok(connection)
}

/// A reader connection, returned to the pool when dropped.
struct PooledReader<'a> {
    store: &'a SqliteStore,
    connection: Option<Connection>,
}

impl std::ops::Deref for PooledReader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.connection
            .as_ref()
            .expect("connection present until drop")
    }
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            let mut idle = lock(&self.store.readers);
            if idle.len() < self.store.config.max_readers {
                idle.push(connection);
            }
        }
    }
}

/// Maps a driver error into a portable kind, once, here.
pub(crate) fn map_error(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::ConstraintViolation => StoreError::Conflict(error.to_string()),
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                StoreError::Conflict(error.to_string())
            }
            ErrorCode::CannotOpen
            | ErrorCode::NotADatabase
            | ErrorCode::ReadOnly
            | ErrorCode::DiskFull => StoreError::Unavailable(error.to_string()),
            _ => StoreError::Internal(error.to_string()),
        },
        _ => StoreError::Internal(error.to_string()),
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        Ok(Box::new(write::SqliteTransaction::new(
            self.writers.begin()?,
        )))
    }

    fn read(&self, resource_type: &str, id: &str) -> Result<Option<VersionRecord>, StoreError> {
        read::current(&*self.reader()?, resource_type, id)
    }

    fn read_version(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        read::version(&*self.reader()?, resource_type, id, version)
    }

    fn read_versions(
        &self,
        keys: &[(&str, &str, i64)],
    ) -> Result<Vec<Option<VersionRecord>>, StoreError> {
        let reader = self.reader()?;
        keys.iter()
            .map(|&(resource_type, id, version)| read::version(&reader, resource_type, id, version))
            .collect()
    }

    fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        read::history(&*self.reader()?, query)
    }

    fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        read::search(&*self.reader()?, query)
    }

    fn scan(&self, query: &ScanQuery) -> Result<Vec<VersionRecord>, StoreError> {
        read::scan(&*self.reader()?, query)
    }

    fn checkpoint(&self, name: &str) -> Result<Option<String>, StoreError> {
        read::checkpoint(&*self.reader()?, name)
    }

    fn checkpoints_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        read::checkpoints_with_prefix(&*self.reader()?, prefix)
    }

    fn ledger_size(&self) -> Result<u64, StoreError> {
        ledger::size(&*self.reader()?)
    }

    fn ledger_tile(&self, level: u32, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        ledger::tile(&*self.reader()?, level, index)
    }

    fn ledger_leaves(&self, start: u64, end: u64) -> Result<Vec<store::LedgerLeaf>, StoreError> {
        ledger::leaves(&*self.reader()?, start, end)
    }

    fn ledger_leaf_of(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<store::LedgerLeaf>, StoreError> {
        ledger::leaf_of(&*self.reader()?, resource_type, id, version)
    }

    fn ledger_leaves_of(
        &self,
        keys: &[(&str, &str, i64)],
    ) -> Result<Vec<Option<store::LedgerLeaf>>, StoreError> {
        let reader = self.reader()?;
        keys.iter()
            .map(|&(resource_type, id, version)| {
                ledger::leaf_of(&reader, resource_type, id, version)
            })
            .collect()
    }

    fn begin_bulk_load(&self) -> Result<bool, StoreError> {
        bulk::begin(&mut self.writers.exclusive()?.connection)
    }

    fn end_bulk_load(&self) -> Result<(), StoreError> {
        bulk::end(&mut self.writers.exclusive()?.connection)
    }

    fn changes(&self, after: i64, limit: usize) -> Result<Vec<store::Change>, StoreError> {
        read::changes(&*self.reader()?, after, limit)
    }

    fn jobs(&self) -> &dyn store::JobQueue {
        self
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.reader()?
            .query_row("SELECT 1", [], |_| Ok(()))
            .map_err(map_error)
    }
}
