//! The durable job runner. Long work that must survive a restart (a Bulk Data export, a
//! reindex, later analytics refreshes and notification deliveries) is recorded in the store
//! ([`store::JobQueue`]) and run here by worker threads: a worker claims a due job with a
//! lease, a ticker renews the lease while the handler works (and learns there whether the job
//! was cancelled), and the outcome is recorded. A job whose worker died is claimed again once
//! its lease runs out; a failed attempt is retried with exponential back-off until its
//! attempts are spent. Handlers know nothing of threads or leases.
//!
//! Synchronous and runtime-free, like the store: the command line starts a runner beside the
//! HTTP server, and commands such as `reindex` run one until their job is done.

mod runner;

use std::time::{SystemTime, UNIX_EPOCH};

use store::{JobQueue, JobRecord, NewJob, StoreError};

pub use runner::{Runner, RunnerConfig};

/// How a handler's attempt ended, when not with a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Worth trying again later (a store that was unavailable, a full disk).
    Retry(String),
    /// Will fail the same way however often it runs (bad parameters, a missing Group).
    Fail(String),
    /// The job was cancelled, or its lease was lost to another worker: stop at once.
    Stopped,
}

impl From<StoreError> for JobError {
    fn from(error: StoreError) -> JobError {
        if error.is_retryable() || matches!(error, StoreError::Unavailable(_)) {
            JobError::Retry(error.to_string())
        } else {
            JobError::Fail(error.to_string())
        }
    }
}

/// What a handler sees of its job.
pub trait JobContext {
    /// The job as claimed (its id, parameters, attempt number).
    fn job(&self) -> &JobRecord;

    /// Records how far the job has come (JSON), for status reports; sent with the next lease
    /// renewal.
    fn progress(&self, progress: String);

    /// Whether the handler must stop now (the job was cancelled or its lease lost). Long loops
    /// check it between steps and answer [`JobError::Stopped`].
    fn should_stop(&self) -> bool;
}

/// Runs the jobs of one kind.
pub trait JobHandler: Send + Sync {
    /// The kind this handler runs (`bulk-export`, `reindex`, ...).
    fn kind(&self) -> &'static str;

    /// Does the work; answers the job's result (JSON).
    fn run(&self, context: &dyn JobContext) -> Result<String, JobError>;
}

/// Microseconds since the epoch, now.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Enqueues a job of `kind` with `params` (JSON), to run as soon as a worker is free, at most
/// `max_attempts` times.
pub fn enqueue(
    queue: &dyn JobQueue,
    kind: &str,
    params: String,
    max_attempts: i64,
) -> Result<JobRecord, StoreError> {
    let now = now_micros();
    queue.enqueue(&NewJob {
        id: uuid::Uuid::new_v4().to_string(),
        kind: kind.to_owned(),
        params,
        max_attempts: max_attempts.max(1),
        run_after: now,
        created: now,
    })
}
