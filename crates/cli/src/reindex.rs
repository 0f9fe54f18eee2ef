//! `meridian reindex`: brings every resource's index rows up to date with the search parameters
//! in force. It runs as a durable job on the store: this command enqueues it and runs it to its
//! end, printing progress. Interrupted, the job stays in the store and goes on from its last
//! checkpoint, in the next `meridian reindex` or in a server on the same store.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use repository::{REINDEX_JOB, ReindexJob};
use store::JobState;

use crate::config::StoreConfig;
use crate::stores::open_repository;

pub fn run(config: &StoreConfig, batch: usize, restart: bool) -> Result<()> {
    let ctx = crate::operator("reindex");
    let repository = Arc::new(open_repository(config, &ctx)?);
    let store = Arc::clone(repository.store());
    let job = jobs::enqueue(
        store.jobs(),
        REINDEX_JOB,
        ReindexJob::params(&ctx, restart, batch),
        3,
    )?;
    let runner = jobs::Runner::start(
        Arc::clone(&store),
        vec![Arc::new(ReindexJob::new(Arc::clone(&repository)))],
        jobs::RunnerConfig {
            workers: 1,
            poll_interval: Duration::from_millis(200),
            ..jobs::RunnerConfig::default()
        },
    );
    let started = Instant::now();
    let stderr = std::io::stderr();
    let finished = loop {
        std::thread::sleep(Duration::from_millis(200));
        let Some(now) = store.jobs().get(&job.id)? else {
            bail!("the reindex job {} vanished from the store", job.id);
        };
        let reindexed = now
            .progress
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| p.get("reindexed").and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        let mut out = stderr.lock();
        write!(
            out,
            "\rreindexed {reindexed} resources ({:.0}/s)   ",
            reindexed as f64 / seconds
        )?;
        out.flush()?;
        if now.state.is_final() {
            break now;
        }
    };
    runner.stop();
    let seconds = started.elapsed().as_secs_f64();
    match finished.state {
        JobState::Succeeded => {
            eprintln!("\ndone in {seconds:.1} s");
            Ok(())
        }
        _ => bail!(
            "the reindex job {} ended {:?}: {}",
            finished.id,
            finished.state,
            finished.error.unwrap_or_default()
        ),
    }
}
