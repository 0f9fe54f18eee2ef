//! A small connection pool: idle connections in a `Mutex<Vec>`, a `Condvar` for callers waiting
//! on an exhausted pool, a cap on open connections, and broken connections dropped instead of
//! reused. Each connection keeps its own cache of prepared statements, so a statement is parsed
//! and planned once per connection rather than once per call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls, Statement};
use store::StoreError;

use crate::{describe, map_error};

/// How many distinct statement texts one connection keeps prepared. Searches render a text per
/// query shape; past this many the cache starts again, so a stream of odd shapes cannot grow it
/// without bound.
const STATEMENT_CACHE_CAPACITY: usize = 256;

/// One open connection and its prepared statements.
pub(crate) struct Connection {
    pub(crate) client: Client,
    statements: HashMap<String, Statement>,
    /// Whether the store's tables are distributed (Citus), which changes some statements.
    pub(crate) distributed: bool,
    /// Whether the open transaction plans its statements as key lookups ([`KEY_LOOKUPS`], by
    /// [`Connection::begin`] and [`Connection::query_generic`]); false outside a transaction,
    /// whose end undoes a `SET LOCAL`.
    generic_plans: bool,
    /// Write transactions begun on every connection of the pool ([`Connection::begin`]).
    pool_writes: Arc<AtomicU64>,
    /// The doubling of `pool_writes` at which this connection's plans were last made (its
    /// bit length then), so they are made again at the next one.
    planned_at: u32,
}

/// The doubling a count of write transactions is at: its bit length (1 for 1, 2 for 2-3, 3 for
/// 4-7, ...).
fn doubling(writes: u64) -> u32 {
    u64::BITS - writes.leading_zeros()
}

/// How a transaction plans statements that find rows by their keys: generically (their plan
/// does not depend on the values: see [`Connection::query_generic`]), and never by reading a
/// whole table. A generic plan is made once per connection and kept until the tables' next
/// analysis, and one made while a table was small (a new store, a new shard, a table kept
/// small by deletions) read the table whole for every write while it grew: on a new store
/// under 64 clients of the CRUD workload, the write statement's deletions and updates by
/// `rid = ANY($n)` read 67 million rows of whole tables in 15 s. Off, a table is read whole
/// only where no index can serve.
const KEY_LOOKUPS: &str =
    "SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off";

/// Undoes [`KEY_LOOKUPS`] for a statement planned for its values.
const FOR_VALUES: &str =
    "SET LOCAL plan_cache_mode TO DEFAULT; SET LOCAL enable_seqscan TO DEFAULT";

impl Connection {
    /// The dialect of the shared SQL for this store's layout.
    pub(crate) fn dialect(&self) -> store_sql::Dialect {
        if self.distributed {
            store_sql::Dialect::Citus
        } else {
            store_sql::Dialect::Postgres
        }
    }

    /// Opens a transaction (read committed) in one round trip, set to plan its prepared
    /// statements generically where the store is not distributed (see
    /// [`Connection::query_generic`]).
    pub(crate) fn begin(&mut self) -> Result<(), StoreError> {
        if self.distributed {
            return self
                .client
                .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
                .map_err(map_error);
        }
        // A generic plan is kept until the tables' next analysis, which may be late (the
        // store's keeper off or behind a burst): one made while the tables were small stays a
        // plan for small tables (a write's lookup of its key read every resource of the type,
        // in the index on type and row key, where the unique index on type and id finds one:
        // on an empty table, index scans off, the two cost the same). Made again each time the
        // pool's writes double, a plan is made for tables at most about that many writes ago
        // in size (PostgreSQL scales stale statistics by a table's present size), at a cost
        // that vanishes: 20 times a connection in a million writes. Counted by the pool, not
        // by the connection: a connection whose early plan made its writes slow (4 to 40 s a
        // statement in a bulk load of ten copies of the Synthea sample) began too few of them
        // to reach its own next doubling, and kept the plan for minutes.
        let begun = self.pool_writes.fetch_add(1, Ordering::Relaxed) + 1;
        let remake = if doubling(begun) > self.planned_at {
            self.planned_at = doubling(begun);
            "DISCARD PLANS; "
        } else {
            ""
        };
        if let Err(error) = self.client.batch_execute(&format!(
            "{remake}BEGIN ISOLATION LEVEL READ COMMITTED; {KEY_LOOKUPS}"
        )) {
            // A `BEGIN` that went through must not stay open on a connection lent again (a
            // `ROLLBACK` with none open only warns).
            let _ = self.client.batch_execute("ROLLBACK");
            return Err(map_error(error));
        }
        self.generic_plans = true;
        Ok(())
    }

    /// Runs `statement` inside the current transaction with PostgreSQL's generic plan, for a
    /// statement whose every parameter is an array of rows found by their keys, so that its
    /// plan does not depend on the values: left to choose, PostgreSQL kept planning such
    /// statements afresh at each execution (the write statement: 0.7 ms of planning at every
    /// write). The transaction stays so until a statement that should be planned for its
    /// values ([`Connection::plan_for_values`]: the shared SQL of searches) or its end: the
    /// rest of a write's statements find rows by their keys, and a `SET` before and after
    /// each generic statement was two round trips more for each (6.5 a request, 1 client;
    /// [`Connection::begin`] sets it with the `BEGIN`).
    /// On a distributed store Citus plans the statement its own way, as before.
    pub(crate) fn query_generic(
        &mut self,
        statement: &Statement,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, StoreError> {
        if self.distributed {
            return self.client.query(statement, params).map_err(map_error);
        }
        if !self.generic_plans {
            self.client.batch_execute(KEY_LOOKUPS).map_err(map_error)?;
            self.generic_plans = true;
        }
        self.client.query(statement, params).map_err(map_error)
    }

    /// Before a statement whose plan depends on its values (a search's shared SQL): undoes
    /// [`KEY_LOOKUPS`] if the transaction has it.
    pub(crate) fn plan_for_values(&mut self) -> Result<(), StoreError> {
        if self.generic_plans {
            self.client.batch_execute(FOR_VALUES).map_err(map_error)?;
            self.generic_plans = false;
        }
        Ok(())
    }

    /// The transaction ended (committed or rolled back), and its `SET LOCAL` with it.
    pub(crate) fn transaction_ended(&mut self) {
        self.generic_plans = false;
    }

    /// The prepared form of `text`, prepared on first use.
    pub(crate) fn prepare_cached(&mut self, text: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(text) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(text).map_err(map_error)?;
        if self.statements.len() >= STATEMENT_CACHE_CAPACITY {
            self.statements.clear();
        }
        self.statements.insert(text.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// What the pool holds right now (for tests and `/health/ready` detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open, in use or idle.
    pub open: usize,
    /// Connections open and waiting in the pool.
    pub idle: usize,
    /// Callers waiting for a connection because the pool is at its cap.
    pub waiting: usize,
}

struct State {
    idle: Vec<Connection>,
    open: usize,
    waiting: usize,
}

pub(crate) struct Pool {
    config: postgres::Config,
    max_connections: usize,
    acquire_timeout: Duration,
    state: Mutex<State>,
    released: Condvar,
    /// Set once the store found its tables distributed; connections opened after know it.
    distributed: AtomicBool,
    /// Write transactions begun on the pool's connections, for their plans' remaking.
    writes: Arc<AtomicU64>,
}

impl Pool {
    pub(crate) fn new(
        config: postgres::Config,
        max_connections: usize,
        acquire_timeout: Duration,
    ) -> Pool {
        Pool {
            config,
            max_connections: max_connections.max(1),
            acquire_timeout,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                waiting: 0,
            }),
            released: Condvar::new(),
            distributed: AtomicBool::new(false),
            writes: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// How connections are made (for a connection of another's own, outside the pool).
    pub(crate) fn config(&self) -> postgres::Config {
        self.config.clone()
    }

    /// A connection outside the pool's count (for migrations, which hold a session lock).
    pub(crate) fn connect_unpooled(&self) -> Result<Connection, StoreError> {
        let mut client = self.config.connect(NoTls).map_err(|error| {
            StoreError::Unavailable(format!("connecting to PostgreSQL: {}", describe(&error)))
        })?;
        let distributed = self.distributed.load(Ordering::Acquire);
        if distributed {
            client
                .batch_execute(crate::distribution::SESSION)
                .map_err(map_error)?;
        }
        Ok(Connection {
            client,
            statements: HashMap::new(),
            distributed,
            generic_plans: false,
            // A new connection has no plans: they are made as of now.
            planned_at: doubling(self.writes.load(Ordering::Relaxed)),
            pool_writes: Arc::clone(&self.writes),
        })
    }

    /// Marks the store's tables distributed, before any pooled connection is opened.
    pub(crate) fn set_distributed(&self) {
        self.distributed.store(true, Ordering::Release);
    }

    /// An idle connection, a new one if the pool is below its cap, or the first one released
    /// within the acquire timeout.
    pub(crate) fn get(&self) -> Result<PooledConnection<'_>, StoreError> {
        let deadline = Instant::now() + self.acquire_timeout;
        let mut state = lock(&self.state);
        loop {
            while let Some(connection) = state.idle.pop() {
                // A connection whose socket is known to be gone is of no use; one that broke
                // silently is caught by the caller's first statement, which then
                // discards it and asks again (see `PostgresStore::with_connection`).
                if connection.client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(self.wrap(connection));
            }
            if state.open < self.max_connections {
                state.open += 1;
                drop(state);
                return match self.connect_unpooled() {
                    Ok(connection) => Ok(self.wrap(connection)),
                    Err(error) => {
                        let mut state = lock(&self.state);
                        state.open -= 1;
                        drop(state);
                        self.released.notify_one();
                        Err(error)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "no database connection free within {:?} (pool of {})",
                    self.acquire_timeout, self.max_connections
                )));
            }
            state.waiting += 1;
            let (next, _) = self
                .released
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state = next;
            state.waiting -= 1;
        }
    }

    pub(crate) fn status(&self) -> PoolStatus {
        let state = lock(&self.state);
        PoolStatus {
            open: state.open,
            idle: state.idle.len(),
            waiting: state.waiting,
        }
    }

    fn wrap(&self, connection: Connection) -> PooledConnection<'_> {
        PooledConnection {
            pool: self,
            connection: Some(connection),
            discard: false,
        }
    }

    fn give_back(&self, connection: Connection, discard: bool) {
        let mut state = lock(&self.state);
        if discard || connection.client.is_closed() {
            state.open -= 1;
        } else {
            state.idle.push(connection);
        }
        drop(state);
        self.released.notify_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is a list and two counters, consistent after every statement: a panic elsewhere
    // while holding the lock cannot leave it half-changed.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A connection on loan from the pool, returned when dropped.
pub(crate) struct PooledConnection<'a> {
    pool: &'a Pool,
    connection: Option<Connection>,
    discard: bool,
}

impl PooledConnection<'_> {
    /// Closes the connection instead of returning it to the pool (its state is unknown).
    pub(crate) fn discard(&mut self) {
        self.discard = true;
    }
}

impl std::ops::Deref for PooledConnection<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.connection
            .as_ref()
            .expect("connection present until drop")
    }
}

impl std::ops::DerefMut for PooledConnection<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.connection
            .as_mut()
            .expect("connection present until drop")
    }
}

impl Drop for PooledConnection<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.pool.give_back(connection, self.discard);
        }
    }
}
