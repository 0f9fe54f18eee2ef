//! The job runner against every backend: results recorded, failures retried, cancellation
//! obeyed, and a job abandoned by a stopped runner finished by the next one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jobs::{JobContext, JobError, JobHandler, Runner, RunnerConfig};
use store::{JobRecord, JobState, Store};
use test_support::backend_tests;

fn quick() -> RunnerConfig {
    RunnerConfig {
        workers: 2,
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_millis(300),
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    }
}

/// Waits (up to 30 s) until job `id` is in a final state, and answers it.
fn finished(store: &dyn Store, id: &str) -> JobRecord {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = store.jobs().get(id).unwrap().unwrap();
        if job.state.is_final() || Instant::now() > deadline {
            return job;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Succeeds on attempt `succeed_on`, asking for a retry before; counts its runs.
struct Flaky {
    succeed_on: i64,
    runs: AtomicUsize,
}

impl JobHandler for Flaky {
    fn kind(&self) -> &'static str {
        "flaky"
    }

    fn run(&self, context: &dyn JobContext) -> Result<String, JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let job = context.job();
        if job.attempts >= self.succeed_on {
            Ok(format!(
                r#"{{"echo":{},"attempt":{}}}"#,
                job.params, job.attempts
            ))
        } else {
            Err(JobError::Retry(format!("attempt {} failed", job.attempts)))
        }
    }
}

/// Works until told to stop, reporting progress; stops with `Stopped`.
struct Endless {
    started: AtomicUsize,
}

impl JobHandler for Endless {
    fn kind(&self) -> &'static str {
        "endless"
    }

    fn run(&self, context: &dyn JobContext) -> Result<String, JobError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut step = 0;
        while !context.should_stop() {
            step += 1;
            context.progress(format!(r#"{{"step":{step}}}"#));
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(JobError::Stopped)
    }
}

/// Finishes at once, unless its parameters say to hang until stopped.
struct Export;

impl JobHandler for Export {
    fn kind(&self) -> &'static str {
        "export"
    }

    fn run(&self, context: &dyn JobContext) -> Result<String, JobError> {
        if context.job().params.contains("hang") && context.job().attempts == 1 {
            while !context.should_stop() {
                std::thread::sleep(Duration::from_millis(5));
            }
            return Err(JobError::Stopped);
        }
        Ok(r#"{"files":3}"#.into())
    }
}

struct Panics;

impl JobHandler for Panics {
    fn kind(&self) -> &'static str {
        "panics"
    }

    fn run(&self, _: &dyn JobContext) -> Result<String, JobError> {
        panic!("a bug in a handler")
    }
}

backend_tests! {
    fn jobs_run_to_their_result_and_failed_attempts_are_retried(store) {
        let flaky = Arc::new(Flaky { succeed_on: 3, runs: AtomicUsize::new(0) });
        let runner = Runner::start(Arc::clone(&store.store), vec![flaky.clone(), Arc::new(Panics)], quick());
        let job = jobs::enqueue(store.jobs(), "flaky", r#"{"n":7}"#.into(), 5).unwrap();
        let panicking = jobs::enqueue(store.jobs(), "panics", "{}".into(), 5).unwrap();
        runner.wake();
        let done = finished(&*store.store, &job.id);
        assert_eq!(done.state, JobState::Succeeded, "{done:?}");
        assert_eq!(done.result.as_deref(), Some(r#"{"echo":{"n":7},"attempt":3}"#));
        assert_eq!(flaky.runs.load(Ordering::SeqCst), 3);
        let failed = finished(&*store.store, &panicking.id);
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.attempts, 1, "a panic is not retried");

        // Out of attempts: failed, with the last error.
        let hopeless = jobs::enqueue(store.jobs(), "flaky", "{}".into(), 2).unwrap();
        let done = finished(&*store.store, &hopeless.id);
        assert_eq!(done.state, JobState::Failed);
        assert!(done.error.unwrap().contains("gave up after 2 attempts"));
        runner.stop();
    }

    fn a_cancelled_job_stops_and_says_so(store) {
        let endless = Arc::new(Endless { started: AtomicUsize::new(0) });
        let runner = Runner::start(Arc::clone(&store.store), vec![endless.clone()], quick());
        let job = jobs::enqueue(store.jobs(), "endless", "{}".into(), 3).unwrap();
        runner.wake();
        let deadline = Instant::now() + Duration::from_secs(30);
        while store.jobs().get(&job.id).unwrap().unwrap().progress.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(store.jobs().get(&job.id).unwrap().unwrap().progress.unwrap().contains("step"));
        store.jobs().cancel(&job.id, jobs::now_micros()).unwrap();
        let done = finished(&*store.store, &job.id);
        assert_eq!(done.state, JobState::Cancelled);
        assert_eq!(endless.started.load(Ordering::SeqCst), 1);
        runner.stop();
    }

    fn a_job_held_by_a_dead_worker_is_taken_over_when_its_lease_runs_out(store) {
        // A worker (another process) claimed the job and died: no runner of this test holds it.
        let job = jobs::enqueue(store.jobs(), "export", "{}".into(), 3).unwrap();
        let now = jobs::now_micros();
        store.jobs().claim(&["export"], "dead-worker", now, now + 200_000).unwrap().unwrap();
        let runner = Runner::start(Arc::clone(&store.store), vec![Arc::new(Export)], quick());
        let done = finished(&*store.store, &job.id);
        assert_eq!((done.state, done.attempts), (JobState::Succeeded, 2));
        runner.stop();
    }

    fn a_job_left_by_a_stopped_runner_is_finished_by_the_next(store) {
        // The first process claims the job and stops (a restart) before the job is done.
        let first = Runner::start(Arc::clone(&store.store), vec![Arc::new(Export)], quick());
        let job = jobs::enqueue(store.jobs(), "export", r#"{"hang":true}"#.into(), 3).unwrap();
        first.wake();
        let deadline = Instant::now() + Duration::from_secs(30);
        while store.jobs().get(&job.id).unwrap().unwrap().state != JobState::Running && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        first.stop();
        let left = store.jobs().get(&job.id).unwrap().unwrap();
        assert_eq!((left.state, left.attempts), (JobState::Queued, 1), "handed back");
        assert!(left.error.unwrap().contains("stopped"));
        // The next process takes it, and finishes it.
        let second = Runner::start(Arc::clone(&store.store), vec![Arc::new(Export)], quick());
        let done = finished(&*store.store, &job.id);
        assert_eq!(done.state, JobState::Succeeded);
        assert_eq!(done.attempts, 2);
        assert_eq!(done.result.as_deref(), Some(r#"{"files":3}"#));
        second.stop();
    }
}
