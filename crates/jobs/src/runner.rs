//! Worker threads that claim, run, renew and finish jobs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use store::{JobOutcome, JobRecord, Store};

use crate::{JobContext, JobError, JobHandler, now_micros};

/// How the runner works.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Worker threads, each running one job at a time. None: this process only enqueues, and
    /// other processes on the same store run the jobs.
    pub workers: usize,
    /// How often an idle worker looks for due jobs (a [`Runner::wake`] makes it look at once).
    pub poll_interval: Duration,
    /// How long a claim holds a job without renewal; renewed every third of it.
    pub lease: Duration,
    /// The wait before the first retry; each later one waits twice as long, up to
    /// `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RunnerConfig {
    fn default() -> RunnerConfig {
        RunnerConfig {
            workers: 2,
            poll_interval: Duration::from_secs(2),
            lease: Duration::from_secs(60),
            first_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
        }
    }
}

#[derive(Default)]
struct Signal {
    stopping: bool,
    woken: bool,
}

struct Shared {
    store: Arc<dyn Store>,
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
    config: RunnerConfig,
    signal: Mutex<Signal>,
    wake: Condvar,
    owner_prefix: String,
}

/// Runs jobs until dropped (or [`Runner::stop`]ped).
pub struct Runner {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Runner {
    /// Starts `config.workers` threads running jobs of the kinds `handlers` know.
    pub fn start(
        store: Arc<dyn Store>,
        handlers: Vec<Arc<dyn JobHandler>>,
        config: RunnerConfig,
    ) -> Runner {
        let shared = Arc::new(Shared {
            store,
            handlers: handlers.into_iter().map(|h| (h.kind(), h)).collect(),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            owner_prefix: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4()),
            config,
        });
        let workers = (0..shared.config.workers)
            .filter_map(|n| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("job-worker-{n}"))
                    .spawn(move || work(&shared, n))
                    .map_err(|error| tracing::error!(%error, "starting a job worker"))
                    .ok()
            })
            .collect();
        Runner { shared, workers }
    }

    /// Makes idle workers look for due jobs now (after an enqueue).
    pub fn wake(&self) {
        let mut signal = lock(&self.shared.signal);
        signal.woken = true;
        self.shared.wake.notify_all();
    }

    /// Stops claiming; jobs in hand are handed back to the queue, to run again at once in the
    /// next process (or another worker), once their handlers see [`JobContext::should_stop`].
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        {
            let mut signal = lock(&self.shared.signal);
            signal.stopping = true;
            self.shared.wake.notify_all();
        }
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                tracing::error!("a job worker panicked");
            }
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn stopping(shared: &Shared) -> bool {
    lock(&shared.signal).stopping
}

fn work(shared: &Shared, n: usize) {
    let owner = format!("{}-{n}", shared.owner_prefix);
    let kinds: Vec<&str> = shared.handlers.keys().copied().collect();
    while !stopping(shared) {
        let now = now_micros();
        let lease_until = now + shared.config.lease.as_micros() as i64;
        match shared.store.jobs().claim(&kinds, &owner, now, lease_until) {
            Ok(Some(job)) => run(shared, &owner, job),
            Ok(None) => idle(shared),
            Err(error) => {
                tracing::warn!(%error, "claiming a job failed");
                idle(shared);
            }
        }
    }
}

/// Waits for the poll interval, a wake-up or the stop.
fn idle(shared: &Shared) {
    let signal = lock(&shared.signal);
    if signal.stopping || signal.woken {
        drop(signal);
        lock(&shared.signal).woken = false;
        return;
    }
    let (mut signal, _) = shared
        .wake
        .wait_timeout(signal, shared.config.poll_interval)
        .unwrap_or_else(|p| p.into_inner());
    signal.woken = false;
}

struct Context<'a> {
    job: &'a JobRecord,
    progress: &'a Mutex<Option<String>>,
    stop: &'a AtomicBool,
}

impl JobContext for Context<'_> {
    fn job(&self) -> &JobRecord {
        self.job
    }

    fn progress(&self, progress: String) {
        *lock(self.progress) = Some(progress);
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

fn run(shared: &Shared, owner: &str, job: JobRecord) {
    let Some(handler) = shared.handlers.get(job.kind.as_str()) else {
        return;
    };
    tracing::info!(
        job = job.id,
        kind = job.kind,
        attempt = job.attempts,
        "job started"
    );
    let progress = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let done = (Mutex::new(false), Condvar::new());
    let outcome = std::thread::scope(|scope| {
        // The ticker renews the lease while the handler works, sends its progress, and tells
        // it to stop when the job was cancelled, its lease lost, or the runner stops.
        scope.spawn(|| {
            let renew_every = shared.config.lease / 3;
            let mut finished = lock(&done.0);
            loop {
                let (guard, _) = done
                    .1
                    .wait_timeout(finished, renew_every)
                    .unwrap_or_else(|p| p.into_inner());
                finished = guard;
                if *finished {
                    return;
                }
                let now = now_micros();
                let lease_until = now + shared.config.lease.as_micros() as i64;
                let reported = lock(&progress).take();
                match shared.store.jobs().heartbeat(
                    &job.id,
                    owner,
                    now,
                    lease_until,
                    reported.as_deref(),
                ) {
                    Ok(beat) if !beat.held || beat.cancel_requested => {
                        stop.store(true, Ordering::Relaxed)
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, job = job.id, "renewing a job's lease"),
                }
                if stopping(shared) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        });
        let context = Context {
            job: &job,
            progress: &progress,
            stop: &stop,
        };
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.run(&context)))
                .unwrap_or_else(|_| Err(JobError::Fail("the job's handler panicked".into())));
        *lock(&done.0) = true;
        done.1.notify_all();
        result
    });
    let now = now_micros();
    let outcome = match outcome {
        Ok(result) => JobOutcome::Succeeded { result },
        Err(JobError::Stopped) => {
            // Cancelled: record it. The runner stopping (a restart): hand the job back at once,
            // so the next process need not wait for the lease. Lease lost: another worker holds
            // it now, and finishing here would fail anyway.
            let cancelled = shared
                .store
                .jobs()
                .get(&job.id)
                .ok()
                .flatten()
                .is_some_and(|j| j.cancel_requested);
            if cancelled {
                JobOutcome::Cancelled
            } else if stopping(shared) {
                JobOutcome::Retry {
                    run_after: now,
                    error: "the server stopped while the job ran".into(),
                }
            } else {
                tracing::info!(job = job.id, "job left to whoever holds its lease");
                return;
            }
        }
        Err(JobError::Fail(error)) => JobOutcome::Failed { error },
        Err(JobError::Retry(error)) if job.attempts < job.max_attempts => {
            let exponent = (job.attempts - 1).clamp(0, 20) as u32;
            let wait = shared
                .config
                .first_backoff
                .saturating_mul(2u32.saturating_pow(exponent))
                .min(shared.config.max_backoff);
            JobOutcome::Retry {
                run_after: now + wait.as_micros() as i64,
                error,
            }
        }
        Err(JobError::Retry(error)) => JobOutcome::Failed {
            error: format!("gave up after {} attempts: {error}", job.attempts),
        },
    };
    tracing::info!(job = job.id, kind = job.kind, outcome = ?outcome_name(&outcome), "job attempt ended");
    match shared.store.jobs().finish(&job.id, owner, now, &outcome) {
        Ok(true) => {}
        Ok(false) => tracing::warn!(job = job.id, "the job was taken over before it finished"),
        Err(error) => tracing::error!(%error, job = job.id, "recording a job's outcome"),
    }
}

fn outcome_name(outcome: &JobOutcome) -> &'static str {
    match outcome {
        JobOutcome::Succeeded { .. } => "succeeded",
        JobOutcome::Failed { .. } => "failed",
        JobOutcome::Retry { .. } => "retry",
        JobOutcome::Cancelled => "cancelled",
    }
}
