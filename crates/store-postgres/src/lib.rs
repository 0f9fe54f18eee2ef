//! The production store: PostgreSQL through the synchronous `postgres` driver, with a small
//! connection pool of its own. Same schema shape and observable behaviour as the embedded
//! SQLite store, proven by the store contract suite.
//!
//! The server calls the store on tokio's blocking threads; the synchronous driver runs its own
//! small runtime per connection, which is fine there and keeps the store trait synchronous.

mod changes;
mod distribution;
mod flush;
mod jobs;
mod ledger;
mod pool;
mod read;
mod schema;
mod statistics;
mod write;

use std::sync::Mutex;
use std::time::Duration;

/// How often the store looks whether its tables' planner statistics are stale.
const STATISTICS_EVERY: Duration = Duration::from_secs(5);

use search::query::SearchQuery;
use store::{
    HistoryPage, HistoryQuery, ScanQuery, SearchPage, Store, StoreError, Transaction, VersionRecord,
};

pub use pool::PoolStatus;
use pool::{Pool, PooledConnection};

/// Where the database is and how many connections to hold.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://user@host:port/database` (or the key=value form libpq accepts).
    pub url: String,
    /// The most connections open at once; callers beyond it wait.
    pub max_connections: usize,
    /// How long a caller waits for a connection before the store answers `Unavailable`.
    pub acquire_timeout: Duration,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// Whether the store keeps the planner's statistics fresh itself (`statistics`). Off only
    /// to measure plans on stale statistics (the plan-regression benchmark).
    pub keep_statistics: bool,
}

/// The connections a store's pool opens at most by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

impl PostgresConfig {
    /// The defaults: 16 connections, 30 s to get one, 10 s to open one, statistics kept.
    pub fn new(url: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            keep_statistics: true,
        }
    }
}

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool,
    row_keys: RowKeys,
    /// Keeps the planner's statistics fresh (`statistics`), unless configured off; stops with
    /// the store.
    _statistics: Option<statistics::Keeper>,
}

impl PostgresStore {
    /// Connects, checks the database can hold FHIR text, and brings its schema up to date.
    pub fn open(config: PostgresConfig) -> Result<PostgresStore, StoreError> {
        let mut pg_config: postgres::Config = config.url.parse().map_err(|error| {
            StoreError::Unavailable(format!("invalid database URL: {}", describe(&error)))
        })?;
        pg_config.connect_timeout(config.connect_timeout);
        // Searches are short statements, and where the planner misjudges a row count (an
        // `IN` list of a thousand row keys, estimated at twenty times its rows) the JIT
        // compiles them: the include step of `$everything` took 32 ms with it, 5 ms without.
        let options = match pg_config.get_options() {
            Some(options) if options.contains("jit") => options.to_owned(),
            Some(options) => format!("{options} -c jit=off"),
            None => "-c jit=off".to_owned(),
        };
        pg_config.options(&options);
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("meridian");
        }
        let pool = Pool::new(pg_config, config.max_connections, config.acquire_timeout);
        let block = {
            let mut connection = pool.connect_unpooled()?;
            check_encoding(&mut connection)?;
            if schema::migrate(&mut connection)? {
                pool.set_distributed();
            }
            schema::row_key_block(&mut connection)?
        };
        let statistics = config
            .keep_statistics
            .then(|| statistics::Keeper::start(pool.config(), STATISTICS_EVERY));
        Ok(PostgresStore {
            pool,
            row_keys: RowKeys {
                block,
                range: Mutex::new((0, 0)),
            },
            _statistics: statistics,
        })
    }

    /// How many connections are open, idle and waited for.
    pub fn pool_status(&self) -> PoolStatus {
        self.pool.status()
    }

    /// Runs `work` on a pooled connection. A connection found broken when used (the server
    /// restarted, an administrator ended the session) is discarded and the work runs again on a
    /// fresh one: `work` is a read or a `BEGIN`, so running it twice is harmless.
    fn with_connection<T>(
        &self,
        mut work: impl FnMut(&mut PooledConnection<'_>) -> Result<T, StoreError>,
    ) -> Result<(T, PooledConnection<'_>), StoreError> {
        // Every idle connection may have broken at once (a server restart): try past them all.
        let attempts = self.pool.max_connections() + 1;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut connection = self.pool.get()?;
            match work(&mut connection) {
                Ok(value) => return Ok((value, connection)),
                Err(error) if is_broken(&error, &connection) => {
                    connection.discard();
                    if attempt >= attempts {
                        return Err(error);
                    }
                    tracing::warn!(%error, "database connection broken; replacing it");
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn read_with<T>(
        &self,
        work: impl FnMut(&mut PooledConnection<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_connection(work).map(|(value, _)| value)
    }
}

/// Whether `error`, met on `connection`, means the connection itself is gone. An ended session
/// answers its next statement with a FATAL error (`Unavailable`) before the driver notices the
/// socket closing, so the error counts as much as the closed flag.
pub(crate) fn is_broken(error: &StoreError, connection: &PooledConnection<'_>) -> bool {
    matches!(error, StoreError::Unavailable(_)) || connection.client.is_closed()
}

fn check_encoding(connection: &mut pool::Connection) -> Result<(), StoreError> {
    let encoding: String = connection
        .client
        .query_one("SELECT current_setting('server_encoding')", &[])
        .map_err(map_error)?
        .get(0);
    if encoding != "UTF8" {
        return Err(StoreError::Unavailable(format!(
            "the database's encoding is {encoding}; Meridian needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8')"
        )));
    }
    Ok(())
}

/// Hands out resource row keys from blocks of the `resource_rid` sequence: one round trip per
/// block instead of one per resource. The blocks are shared by every transaction of this store,
/// so keys given out by one process increase with time, as keyset paging expects; two
/// processes on one database interleave blocks, which only matters to a reader paging while
/// both write (as with any sequence, whose values are not in commit order either).
struct RowKeys {
    block: i64,
    /// The next key to give and the end of the current block.
    range: Mutex<(i64, i64)>,
}

impl RowKeys {
    fn next(&self, client: &mut postgres::Client) -> Result<i64, StoreError> {
        let mut range = self
            .range
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if range.0 >= range.1 {
            let start: i64 = client
                .query_one("SELECT nextval('resource_rid')", &[])
                .map_err(map_error)?
                .get(0);
            *range = (start, start + self.block);
        }
        let key = range.0;
        range.0 += 1;
        Ok(key)
    }
}

/// Maps a driver error into a portable kind, once, here.
pub(crate) fn map_error(error: postgres::Error) -> StoreError {
    let detail = describe(&error);
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        return match code {
            // unique_violation, serialization_failure, deadlock_detected, lock_not_available
            "23505" | "40001" | "40P01" | "55P03" => StoreError::Conflict(detail),
            // Citus relays a worker's unique violation met inside a statement of several
            // steps (the flush's) as an internal error carrying the worker's message.
            "XX000"
                if db
                    .message()
                    .starts_with("duplicate key value violates unique constraint") =>
            {
                StoreError::Conflict(detail)
            }
            // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
            "57P01" | "57P02" | "57P03" | "53300" => StoreError::Unavailable(detail),
            // connection exceptions, invalid authorization, invalid catalog (no such database)
            _ if code.starts_with("08") || code.starts_with("28") || code == "3D000" => {
                StoreError::Unavailable(detail)
            }
            _ => StoreError::Internal(format!("{detail} (SQLSTATE {code})")),
        };
    }
    if error.is_closed()
        || std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>())
    {
        return StoreError::Unavailable(detail);
    }
    StoreError::Internal(detail)
}

/// The error with its causes: the driver's own message is only its kind ("db error", "error
/// connecting to server"), and the log needs the server's words.
pub(crate) fn describe(error: &postgres::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let ((), connection) = self.with_connection(|connection| connection.begin())?;
        Ok(Box::new(write::PostgresTransaction::new(self, connection)))
    }

    fn read(&self, resource_type: &str, id: &str) -> Result<Option<VersionRecord>, StoreError> {
        self.read_with(|connection| read::current(connection, resource_type, id))
    }

    fn read_version(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.read_with(|connection| read::version(connection, resource_type, id, version))
    }

    fn read_versions(
        &self,
        keys: &[(&str, &str, i64)],
    ) -> Result<Vec<Option<VersionRecord>>, StoreError> {
        self.read_with(|connection| read::versions(connection, keys))
    }

    fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.read_with(|connection| read::history(connection, query))
    }

    fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        self.read_with(|connection| read::search(connection, query))
    }

    fn scan(&self, query: &ScanQuery) -> Result<Vec<VersionRecord>, StoreError> {
        self.read_with(|connection| read::scan(connection, query))
    }

    fn checkpoint(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.read_with(|connection| read::checkpoint(connection, name))
    }

    fn checkpoints_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.read_with(|connection| read::checkpoints_with_prefix(connection, prefix))
    }

    fn ledger_size(&self) -> Result<u64, StoreError> {
        self.read_with(|connection| ledger::size(connection))
    }

    fn ledger_tile(&self, level: u32, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_with(|connection| ledger::tile(connection, level, index))
    }

    fn ledger_tiles(&self, keys: &[(u32, u64)]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.read_with(|connection| ledger::tiles(connection, keys))
    }

    fn ledger_leaves(&self, start: u64, end: u64) -> Result<Vec<store::LedgerLeaf>, StoreError> {
        self.read_with(|connection| ledger::leaves(connection, start, end))
    }

    fn ledger_leaf_of(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<store::LedgerLeaf>, StoreError> {
        self.read_with(|connection| ledger::leaf_of(connection, resource_type, id, version))
    }

    fn ledger_leaves_of(
        &self,
        keys: &[(&str, &str, i64)],
    ) -> Result<Vec<Option<store::LedgerLeaf>>, StoreError> {
        self.read_with(|connection| ledger::leaves_of(connection, keys))
    }

    fn changes(&self, after: i64, limit: usize) -> Result<Vec<store::Change>, StoreError> {
        self.read_with(|connection| changes::changes(connection, after, limit))
    }

    fn jobs(&self) -> &dyn store::JobQueue {
        self
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.read_with(|connection| {
            connection
                .client
                .simple_query("SELECT 1")
                .map(|_| ())
                .map_err(map_error)
        })
    }

    /// `VACUUM (ANALYZE)`. Without the statistics a freshly loaded database is planned as if its
    /// tables were empty (a date search on the Synthea sample took 112 ms instead of about
    /// 1 ms); without the visibility map an index-only scan still reads every row's heap page
    /// (a `_has` probe on freshly loaded Synthea read 10,409 heap pages for 21 patients).
    /// Autovacuum would get there, minutes later.
    fn refresh_statistics(&self) -> Result<(), StoreError> {
        self.read_with(|connection| {
            connection
                .client
                .batch_execute("VACUUM (ANALYZE)")
                .map_err(map_error)
        })
    }
}
