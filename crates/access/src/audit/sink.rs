//! The audit sink: makes AuditEvents durable before the answer they record leaves, at the cost
//! of one store transaction for many requests (group commit).
//!
//! Requests validate and index their events on their own threads ([`AuditSink::prepare`], in
//! parallel and outside any transaction) and hand them to [`AuditSink::submit`] (or do both
//! and wait in [`AuditSink::record`]); one writer thread takes everything queued, creates it
//! in one store transaction through the repository's internal path (no request, so nothing
//! audits the audit), commits, and only then completes each submission. While one
//! batch commits the next gathers, so under load a commit carries many requests' events, and
//! when idle an event is written at once (no timer to wait out). When the store refuses, every
//! submission of that batch fails; when the sink is closed or its queue is full, a submission
//! fails at once. Either way the caller must not answer with the data (fail closed).
//! `docs/decisions/0015-audit-group-commit.md` says why and what it costs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use caller::Caller;
use fhir_model::{Issue, IssueCode, Outcome, internal_issue};
use repository::{NewResource, Repository};
use serde_json::Value;

/// Why events could not be made durable (or, for [`AuditError::Immutable`], why a request may
/// not touch the trail).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The sink was closed (the server is stopping).
    #[error("the audit trail is closed")]
    Closed,
    /// More events wait than the sink's limit: the store is not keeping up.
    #[error("the audit trail is full ({0} events wait to be written)")]
    Overloaded(usize),
    /// The store did not commit the events.
    #[error("the audit trail could not be written: {0}")]
    Unavailable(String),
    /// An event the server built is not a valid AuditEvent: a bug.
    #[error("an audit event is not valid: {0}")]
    Invalid(String),
    /// A request would create, change or delete an AuditEvent (the entry of a Bundle, when
    /// in one).
    #[error("AuditEvents are written by the server only and are never changed or deleted")]
    Immutable { entry: Option<usize> },
}

impl Outcome for AuditError {
    fn http_status(&self) -> u16 {
        match self {
            AuditError::Closed | AuditError::Overloaded(_) | AuditError::Unavailable(_) => 503,
            AuditError::Invalid(_) => 500,
            AuditError::Immutable { .. } => 403,
        }
    }

    fn issues(&self, request_id: &str) -> Vec<Issue> {
        match self {
            AuditError::Closed | AuditError::Overloaded(_) | AuditError::Unavailable(_) => {
                vec![Issue::error(
                    IssueCode::Transient,
                    format!(
                        "the access could not be recorded in the audit trail, so nothing was \
                         answered; try again later (request id {request_id})"
                    ),
                )]
            }
            AuditError::Invalid(_) => vec![internal_issue(request_id)],
            AuditError::Immutable { entry } => {
                let issue = Issue::error(IssueCode::Forbidden, self.to_string());
                vec![match entry {
                    Some(i) => issue.at(format!("Bundle.entry[{i}]")),
                    None => issue,
                }]
            }
        }
    }
}

/// How the sink batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkConfig {
    /// The most events one transaction carries (a submission is never split).
    pub max_batch_events: usize,
    /// The most events waiting; a submission beyond it fails at once (503).
    pub max_queued_events: usize,
    /// Writer threads, each committing its own batches. One was measured best on both stores
    /// (decision 0015): more split the queue into smaller batches, and SQLite has a single
    /// writer anyway.
    pub writers: usize,
}

impl Default for SinkConfig {
    fn default() -> SinkConfig {
        SinkConfig {
            max_batch_events: 2_000,
            max_queued_events: 100_000,
            writers: 1,
        }
    }
}

/// What the sink has written, for measurements and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub events: u64,
    pub transactions: u64,
}

type Done = Box<dyn FnOnce(Result<(), AuditError>) + Send>;

/// AuditEvents validated and indexed, ready for [`AuditSink::submit`].
pub struct PreparedEvents(Vec<NewResource>);

impl PreparedEvents {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

struct Submission {
    events: Vec<NewResource>,
    done: Done,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Submission>,
    events: usize,
    closed: bool,
}

struct Shared {
    repository: Arc<Repository>,
    /// Whom the trail is written as (the server, as its edge names it).
    writer: Caller,
    queue: Mutex<Queue>,
    wake: Condvar,
    config: SinkConfig,
    events: AtomicU64,
    transactions: AtomicU64,
}

/// The durable, batched audit trail over a repository. Dropping it writes what is queued and
/// stops its writer.
pub struct AuditSink {
    shared: Arc<Shared>,
    writers: Mutex<Vec<JoinHandle<()>>>,
}

impl AuditSink {
    /// Starts the writer threads over `repository`; they write as `writer` (the edge that
    /// starts the sink names the server's own principal, the operator).
    pub fn start(repository: Arc<Repository>, writer: Caller, config: SinkConfig) -> AuditSink {
        let shared = Arc::new(Shared {
            repository,
            writer,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            config,
            events: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
        });
        let writers = (0..config.writers.max(1))
            .map(|n| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("audit-writer-{n}"))
                    .spawn(move || write_batches(&shared))
                    .expect("an audit writer thread starts")
            })
            .collect();
        AuditSink {
            shared,
            writers: Mutex::new(writers),
        }
    }

    /// Validates `events` and extracts their index entries, as every write does: CPU work for
    /// the caller's thread (a blocking one), so that the writer only writes. An invalid event
    /// is a bug in the server that built it.
    pub fn prepare(&self, events: Vec<Value>) -> Result<PreparedEvents, AuditError> {
        let events: Result<Vec<NewResource>, _> = events
            .into_iter()
            .map(|event| self.shared.repository.prepare_new(event))
            .collect();
        match events {
            Ok(events) => Ok(PreparedEvents(events)),
            Err(error) => {
                tracing::error!(%error, "an audit event the server built is not valid");
                Err(AuditError::Invalid(error.to_string()))
            }
        }
    }

    /// Hands `events` to the writer and returns at once; `done` is called (on the writer's
    /// thread, or here when the sink refuses at once) with `Ok` once they are committed, or
    /// with why they are not. For callers that must not block a thread while they wait (the
    /// server passes a closure that completes a future).
    pub fn submit(
        &self,
        events: PreparedEvents,
        done: impl FnOnce(Result<(), AuditError>) + Send + 'static,
    ) {
        let PreparedEvents(events) = events;
        if events.is_empty() {
            return done(Ok(()));
        }
        let mut queue = self.lock();
        if queue.closed {
            drop(queue);
            return done(Err(AuditError::Closed));
        }
        if queue.events + events.len() > self.shared.config.max_queued_events {
            let waiting = queue.events;
            drop(queue);
            return done(Err(AuditError::Overloaded(waiting)));
        }
        queue.events += events.len();
        queue.waiting.push_back(Submission {
            events,
            done: Box::new(done),
        });
        drop(queue);
        self.shared.wake.notify_one();
    }

    /// Prepares and records `events`, and returns once they are committed in the store.
    pub fn record(&self, events: Vec<Value>) -> Result<(), AuditError> {
        let events = self.prepare(events)?;
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        self.submit(events, move |result| {
            let _ = sender.send(result);
        });
        receiver.recv().unwrap_or(Err(AuditError::Closed))
    }

    /// Refuses every later submission; what is queued is still written. The writer stops
    /// once the queue is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.shared.wake.notify_all();
    }

    /// Events and transactions written so far.
    pub fn stats(&self) -> SinkStats {
        SinkStats {
            events: self.shared.events.load(Ordering::Relaxed),
            transactions: self.shared.transactions.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for AuditSink {
    fn drop(&mut self) {
        self.close();
        let writers = std::mem::take(
            &mut *self
                .writers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for writer in writers {
            let _ = writer.join();
        }
    }
}

/// A writer thread: takes what is queued, writes it in one transaction, completes it; until
/// closed and empty.
fn write_batches(shared: &Shared) {
    let repository = &shared.repository;
    let caller = &shared.writer;
    loop {
        let batch = {
            let mut queue = shared
                .queue
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            while queue.waiting.is_empty() {
                if queue.closed {
                    return;
                }
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            let mut batch = Vec::new();
            let mut events = 0;
            while let Some(next) = queue.waiting.front() {
                if !batch.is_empty() && events + next.events.len() > shared.config.max_batch_events
                {
                    break;
                }
                events += next.events.len();
                batch.extend(queue.waiting.pop_front());
            }
            queue.events -= events;
            batch
        };
        let mut prepared: Vec<NewResource> = Vec::new();
        let mut waiting: Vec<Done> = Vec::new();
        for submission in batch {
            prepared.extend(submission.events);
            waiting.push(submission.done);
        }
        let result = match repository.create_prepared(caller, &prepared) {
            Ok(_) => {
                shared
                    .events
                    .fetch_add(prepared.len() as u64, Ordering::Relaxed);
                shared.transactions.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, events = prepared.len(), "the audit trail could not be written");
                Err(AuditError::Unavailable(error.to_string()))
            }
        };
        for done in waiting {
            done(result.clone());
        }
    }
}
