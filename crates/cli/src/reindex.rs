//! `meridian reindex`: brings every resource's index rows up to date with the search parameters
//! in force, in batches, printing progress; interrupted, it resumes where it stopped.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;

use crate::config::StoreConfig;
use crate::stores::open_repository;

pub fn run(config: &StoreConfig, batch: usize, restart: bool) -> Result<()> {
    let ctx = crate::operator("reindex");
    let repository = open_repository(config, &ctx)?;
    if restart {
        repository.restart_reindex(&ctx)?;
    }
    let started = Instant::now();
    let mut total = 0usize;
    let stderr = std::io::stderr();
    loop {
        let progress = repository.reindex_batch(&ctx, batch)?;
        total += progress.processed;
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        let mut out = stderr.lock();
        write!(
            out,
            "\rreindexed {total} resources ({:.0}/s), at row {}   ",
            total as f64 / seconds,
            progress.after_row
        )?;
        out.flush()?;
        if progress.done {
            writeln!(out, "\ndone in {:.1} s", seconds)?;
            return Ok(());
        }
    }
}
