//! Admission of store work. Every request's repository work runs on a blocking thread; reads
//! and writes are admitted through separate limits, so a flood of reads waits in a queue of its
//! own instead of occupying every thread and core while a write waits behind it. With 200
//! clients reading, creates took 6-11 s at the median on the embedded store (1.8 ms idle): each
//! write held the single writer while it competed for the CPU with every reader.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::ApiError;

/// How much store work runs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkLimits {
    /// Reads (read, search, history, operations that only read) running at once; more wait.
    pub reads: usize,
    /// Writes running at once (their validation and indexing; the store then serialises or
    /// locks what it must).
    pub writes: usize,
}

/// Connections of a database server's pool kept for the work outside the lanes (the audit
/// trail's writer, the consumers of the change log, durable jobs).
pub const RESERVED_CONNECTIONS: usize = 4;

/// The cores this process may run on (2 when unknown).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl WorkLimits {
    /// Twice the cores for reads (enough to keep them busy while some wait on the disk or the
    /// database); eight per core for writes on the embedded store, whose commits are grouped
    /// (a write admitted mostly waits for its group's sync, and the more wait together, the
    /// fewer syncs: Observation CRUD with 64 clients on 2 cores, 851 requests/s with 2 writes
    /// admitted, 1,205 with 8, 1,748 with 16, 1,400 with 32; BENCHMARKS.md, "Group commit").
    pub fn for_this_machine() -> WorkLimits {
        WorkLimits {
            reads: (2 * cores()).max(4),
            writes: (8 * cores()).max(2),
        }
    }

    /// For a store on a database server with `connections` pooled connections (PostgreSQL): a
    /// write there spends most of its time waiting on the server (round trips, the WAL's
    /// flush), so more run at once than there are cores, four per core (concurrent commits
    /// share a flush), up to half the pool; reads as on this machine; and together never
    /// more than the pool less the connections the work outside the lanes needs. Admitting
    /// more than the pool holds made writes wait 30 s for a connection and fail: 16 writes at
    /// once on a pool of 16 turned 1,086 CRUD requests/s into 10.
    pub fn for_a_database_server(connections: usize) -> WorkLimits {
        let machine = WorkLimits::for_this_machine();
        let room = connections.saturating_sub(RESERVED_CONNECTIONS).max(2);
        let writes = (4 * cores()).min(connections / 2).clamp(1, room - 1);
        let reads = machine.reads.min(room - writes).max(1);
        WorkLimits { reads, writes }
    }
}

impl Default for WorkLimits {
    fn default() -> WorkLimits {
        WorkLimits::for_this_machine()
    }
}

/// Which limit a request's work is admitted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    Read,
    Write,
}

/// The two queues.
pub(crate) struct Lanes {
    reads: Semaphore,
    writes: Semaphore,
    /// Counts write work done, for whoever waits on the store's changes (the notification
    /// consumer): it wakes at once instead of at its next poll.
    pub(crate) written: Arc<Written>,
}

/// A count of writes done, and a condition to wait on for the next.
#[derive(Default)]
pub(crate) struct Written {
    count: std::sync::Mutex<u64>,
    changed: std::sync::Condvar,
}

impl Written {
    pub(crate) fn bump(&self) {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.changed.notify_all();
    }

    /// Waits until a write is done after `seen` (the count last returned), or `timeout`;
    /// answers the count.
    pub(crate) fn wait_after(&self, seen: u64, timeout: std::time::Duration) -> u64 {
        let count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        let (count, _) = self
            .changed
            .wait_timeout_while(count, timeout, |count| *count == seen)
            .unwrap_or_else(|p| p.into_inner());
        *count
    }
}

impl Lanes {
    pub(crate) fn new(limits: WorkLimits) -> Lanes {
        Lanes {
            reads: Semaphore::new(limits.reads.max(1)),
            writes: Semaphore::new(limits.writes.max(1)),
            written: Arc::default(),
        }
    }
}

tokio::task_local! {
    /// The lanes of the server and the lane of the request this task serves, set once by the
    /// dispatcher for the whole request, so that every handler's blocking work is admitted
    /// under the request's kind without each handler carrying the server state.
    static LANE: (Arc<Lanes>, Lane);
}

/// Runs `request` with its work admitted on `lane` of `lanes`.
pub(crate) async fn within<F: Future>(lanes: Arc<Lanes>, lane: Lane, request: F) -> F::Output {
    LANE.scope((lanes, lane), request).await
}

/// Runs repository work on a blocking thread once its lane admits it; a panic there becomes a
/// 500, not a lost worker. Outside a request (no lane set), it runs at once.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let lanes = LANE
        .try_with(|(lanes, lane)| (Arc::clone(lanes), *lane))
        .ok();
    let _permit = match &lanes {
        Some((lanes, Lane::Read)) => Some(lanes.reads.acquire().await),
        Some((lanes, Lane::Write)) => Some(lanes.writes.acquire().await),
        None => None,
    };
    let done = tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?;
    if let Some((lanes, Lane::Write)) = &lanes {
        lanes.written.bump();
    }
    done
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn a_database_servers_lanes_fit_its_pool() {
        for connections in [2, 4, 8, 16, 32, 64] {
            let limits = WorkLimits::for_a_database_server(connections);
            assert!(
                limits.reads >= 1 && limits.writes >= 1,
                "{connections}: {limits:?}"
            );
            if connections > RESERVED_CONNECTIONS + 2 {
                assert!(
                    limits.reads + limits.writes + RESERVED_CONNECTIONS <= connections,
                    "{connections}: {limits:?}"
                );
            }
        }
        let sixteen = WorkLimits::for_a_database_server(16);
        assert_eq!(
            sixteen.writes,
            (4 * cores()).min(8),
            "four per core, half the pool"
        );
    }
}
