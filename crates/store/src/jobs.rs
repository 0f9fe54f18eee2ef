//! Durable jobs: long work (a Bulk Data export, a reindex, later analytics refreshes and
//! notification deliveries) recorded in the store, so that it survives a restart. A worker
//! claims a due job with a lease, renews the lease while it works (and learns there whether the
//! job was cancelled), and finishes it; a job whose worker died is claimed again once its lease
//! has run out. The runner that does this lives in the `jobs` crate; this is what a store keeps.

use crate::StoreError;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting to run at `run_after` (first run, or a retry).
    Queued,
    /// A worker holds it until `lease_until`.
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn code(self) -> i64 {
        match self {
            JobState::Queued => 0,
            JobState::Running => 1,
            JobState::Succeeded => 2,
            JobState::Failed => 3,
            JobState::Cancelled => 4,
        }
    }

    pub fn from_code(code: i64) -> Option<JobState> {
        Some(match code {
            0 => JobState::Queued,
            1 => JobState::Running,
            2 => JobState::Succeeded,
            3 => JobState::Failed,
            4 => JobState::Cancelled,
            _ => return None,
        })
    }

    /// Whether the job will not run again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub id: String,
    /// Which handler runs it (`bulk-export`, `reindex`, ...).
    pub kind: String,
    /// The handler's input, JSON.
    pub params: String,
    /// Runs at most this many times (retries included).
    pub max_attempts: i64,
    /// Not before this instant (microseconds since the epoch).
    pub run_after: i64,
    /// When it was made (microseconds since the epoch).
    pub created: i64,
}

/// A job as the store keeps it. Times are microseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: String,
    pub kind: String,
    pub state: JobState,
    pub params: String,
    /// The handler's last report of its progress, JSON.
    pub progress: Option<String>,
    /// What a succeeded job produced, JSON.
    pub result: Option<String>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_after: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub cancel_requested: bool,
    pub created: i64,
    pub updated: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded {
        result: String,
    },
    /// For good.
    Failed {
        error: String,
    },
    /// Queued again, to run at `run_after`.
    Retry {
        run_after: i64,
        error: String,
    },
    /// The job saw its cancellation and stopped.
    Cancelled,
}

impl JobOutcome {
    /// What a store writes for it: the job's new state, its result, its error and the time it
    /// runs again (the last three when there are any).
    pub fn columns(&self) -> (JobState, Option<&str>, Option<&str>, Option<i64>) {
        match self {
            JobOutcome::Succeeded { result } => (JobState::Succeeded, Some(result), None, None),
            JobOutcome::Failed { error } => (JobState::Failed, None, Some(error), None),
            JobOutcome::Retry { run_after, error } => {
                (JobState::Queued, None, Some(error), Some(*run_after))
            }
            JobOutcome::Cancelled => (JobState::Cancelled, None, None, None),
        }
    }
}

/// What a lease renewal learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// The worker still holds the job (its lease had not been taken over).
    pub held: bool,
    /// Someone asked for the job to stop.
    pub cancel_requested: bool,
}

/// The jobs a store keeps. Every method is its own transaction.
pub trait JobQueue: Send + Sync {
    /// Records a new job, queued.
    fn enqueue(&self, job: &NewJob) -> Result<JobRecord, StoreError>;

    fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;

    /// Takes the due job of one of `kinds` that has waited longest (queued with `run_after`
    /// reached, or running with its lease run out), for `owner` until `lease_until`. Two
    /// workers never hold one job.
    fn claim(
        &self,
        kinds: &[&str],
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<JobRecord>, StoreError>;

    /// Extends `owner`'s lease and records `progress` when given.
    fn heartbeat(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        lease_until: i64,
        progress: Option<&str>,
    ) -> Result<Heartbeat, StoreError>;

    /// Ends `owner`'s attempt. False when the job was no longer held by `owner`.
    fn finish(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        outcome: &JobOutcome,
    ) -> Result<bool, StoreError>;

    /// Asks a job to stop: a queued job is cancelled at once, a running one when its worker
    /// next renews its lease. The job as it is now; `None` when there is no such job.
    fn cancel(&self, id: &str, now: i64) -> Result<Option<JobRecord>, StoreError>;

    /// Forgets a job. False when there was none.
    fn remove(&self, id: &str) -> Result<bool, StoreError>;
}
