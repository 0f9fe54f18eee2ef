//! The job queue: claims with leases, renewals that learn of cancellation, retries, and no job
//! held by two workers, on every backend.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use store::{JobOutcome, JobState, NewJob};
use test_support::contract_tests;

fn job(id: &str, kind: &str, run_after: i64) -> NewJob {
    NewJob {
        id: id.into(),
        kind: kind.into(),
        params: format!(r#"{{"job":"{id}"}}"#),
        max_attempts: 3,
        run_after,
        created: run_after,
    }
}

contract_tests! {
    fn a_job_is_claimed_when_due_by_one_worker_and_again_after_its_lease_runs_out(store) {
        let jobs = store.jobs();
        let queued = jobs.enqueue(&job("j1", "export", 100)).unwrap();
        assert_eq!(queued.state, JobState::Queued);
        assert_eq!(queued.attempts, 0);
        assert_eq!(jobs.claim(&["export"], "w1", 99, 200).unwrap(), None, "not due yet");
        assert_eq!(jobs.claim(&["reindex"], "w1", 100, 200).unwrap(), None, "another kind");
        let claimed = jobs.claim(&["reindex", "export"], "w1", 100, 200).unwrap().unwrap();
        assert_eq!((claimed.state, claimed.attempts), (JobState::Running, 1));
        assert_eq!(claimed.lease_owner.as_deref(), Some("w1"));
        assert_eq!(claimed.params, r#"{"job":"j1"}"#);
        assert_eq!(jobs.claim(&["export"], "w2", 150, 300).unwrap(), None, "held by w1");

        // w1 renews and reports progress; w2 cannot renew what it does not hold.
        let beat = jobs.heartbeat("j1", "w1", 150, 250, Some(r#"{"written":10}"#)).unwrap();
        assert!(beat.held && !beat.cancel_requested);
        assert!(!jobs.heartbeat("j1", "w2", 150, 250, None).unwrap().held);
        assert_eq!(jobs.get("j1").unwrap().unwrap().progress.as_deref(), Some(r#"{"written":10}"#));

        // w1 dies: once its lease has run out, w2 takes the job over, and w1 cannot finish it.
        assert_eq!(jobs.claim(&["export"], "w2", 250, 400).unwrap(), None, "the lease ends after 250");
        let taken = jobs.claim(&["export"], "w2", 251, 400).unwrap().unwrap();
        assert_eq!((taken.lease_owner.as_deref(), taken.attempts), (Some("w2"), 2));
        assert!(!jobs.finish("j1", "w1", 260, &JobOutcome::Succeeded { result: "{}".into() }).unwrap());
        assert!(jobs.finish("j1", "w2", 260, &JobOutcome::Succeeded { result: r#"{"files":2}"#.into() }).unwrap());
        let done = jobs.get("j1").unwrap().unwrap();
        assert_eq!((done.state, done.result.as_deref()), (JobState::Succeeded, Some(r#"{"files":2}"#)));
        assert_eq!(done.lease_owner, None);
        assert_eq!(jobs.claim(&["export"], "w3", 10_000, 20_000).unwrap(), None, "finished jobs stay finished");
    }

    fn a_failed_attempt_is_retried_later_and_cancellation_reaches_the_worker(store) {
        let jobs = store.jobs();
        jobs.enqueue(&job("r", "export", 0)).unwrap();
        jobs.claim(&["export"], "w", 0, 10).unwrap().unwrap();
        let retry = JobOutcome::Retry { run_after: 50, error: "the disk was full".into() };
        assert!(jobs.finish("r", "w", 5, &retry).unwrap());
        let queued = jobs.get("r").unwrap().unwrap();
        assert_eq!((queued.state, queued.run_after), (JobState::Queued, 50));
        assert_eq!(queued.error.as_deref(), Some("the disk was full"));
        assert_eq!(jobs.claim(&["export"], "w", 49, 100).unwrap(), None);
        assert_eq!(jobs.claim(&["export"], "w", 50, 100).unwrap().unwrap().attempts, 2);

        // A running job is asked to stop; its worker learns it at its next renewal.
        let asked = jobs.cancel("r", 60).unwrap().unwrap();
        assert_eq!((asked.state, asked.cancel_requested), (JobState::Running, true));
        assert!(jobs.heartbeat("r", "w", 61, 100, None).unwrap().cancel_requested);
        assert!(jobs.finish("r", "w", 62, &JobOutcome::Cancelled).unwrap());
        assert_eq!(jobs.get("r").unwrap().unwrap().state, JobState::Cancelled);

        // A queued job is cancelled at once and never claimed.
        jobs.enqueue(&job("q", "export", 0)).unwrap();
        assert_eq!(jobs.cancel("q", 1).unwrap().unwrap().state, JobState::Cancelled);
        assert_eq!(jobs.claim(&["export"], "w", 100, 200).unwrap(), None);
        assert_eq!(jobs.cancel("nothing", 1).unwrap(), None);
        assert!(jobs.remove("q").unwrap());
        assert!(!jobs.remove("q").unwrap());
        assert_eq!(jobs.get("q").unwrap(), None);

        // Failing for good keeps the error.
        jobs.enqueue(&job("f", "export", 0)).unwrap();
        jobs.claim(&["export"], "w", 0, 10).unwrap().unwrap();
        jobs.finish("f", "w", 1, &JobOutcome::Failed { error: "no such Group".into() }).unwrap();
        let failed = jobs.get("f").unwrap().unwrap();
        assert_eq!((failed.state, failed.error.as_deref()), (JobState::Failed, Some("no such Group")));
        assert!(failed.state.is_final());
    }

    fn concurrent_workers_never_claim_one_job_twice(store) {
        for i in 0..40 {
            store.jobs().enqueue(&job(&format!("c{i}"), "export", i)).unwrap();
        }
        let claimed = Arc::new(Mutex::new(Vec::new()));
        std::thread::scope(|scope| {
            for worker in 0..6 {
                let claimed = Arc::clone(&claimed);
                let store = &store.store;
                scope.spawn(move || {
                    let owner = format!("w{worker}");
                    while let Some(job) = store.jobs().claim(&["export"], &owner, 1_000, 1_000_000).unwrap() {
                        claimed.lock().unwrap().push(job.id);
                    }
                });
            }
        });
        let claimed = claimed.lock().unwrap();
        let distinct: HashSet<&String> = claimed.iter().collect();
        assert_eq!(claimed.len(), 40, "every job claimed once: {claimed:?}");
        assert_eq!(distinct.len(), 40);
    }
}
