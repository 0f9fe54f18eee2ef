//! `meridian seed --patients N [--seed S] [--out DIR]`: generates a synthetic region (the `seed`
//! crate) and writes it as NDJSON files, one per resource type, or loads it straight into the
//! store through the import pipeline.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use repository::{ImportCounts, ImportOptions, ImportUnit};

use crate::config::{StoreArgs, StoreConfig};
use crate::progress::{Progress, eta};
use crate::stores::open_repository;

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// How many residents.
    #[arg(long)]
    patients: u64,
    /// The seed: the same seed and number of residents give the same resources, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write NDJSON files (one per resource type) into this directory, created if needed,
    /// instead of loading into the store.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["data", "database_url"])]
    out: Option<PathBuf>,
    /// Threads that generate (with --out) or parse, validate and index (when loading)
    /// [default: the number of cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Resources per store transaction, when loading.
    #[arg(long, default_value_t = 5000)]
    batch: usize,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn run(args: SeedArgs) -> ExitCode {
    let region = match seed::Region::new(seed::Config::new(args.patients, args.seed)) {
        Ok(region) => region,
        Err(error) => {
            eprintln!("meridian seed: {error}");
            return ExitCode::from(2);
        }
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let size = region.size();
    eprintln!(
        "a region of {} (seed {}): {}, {}, {}; {}, {}",
        counted(size.residents, "resident", "residents"),
        args.seed,
        counted(size.counties, "county", "counties"),
        counted(size.townships, "township", "townships"),
        counted(size.villages, "village", "villages"),
        counted(size.institutions, "institution", "institutions"),
        counted(size.practitioners, "practitioner", "practitioners"),
    );
    let outcome = match &args.out {
        Some(dir) => write_files(&region, dir, threads).map(|()| true),
        None => {
            StoreConfig::resolve(&args.store, |key| std::env::var(key).ok()).and_then(|config| {
                let options = ImportOptions {
                    workers: threads.max(1),
                    batch_resources: args.batch.max(1),
                    ..ImportOptions::default()
                };
                load_into_store(&region, &config, options)
            })
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("meridian seed: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn counted(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// At most one progress line every this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

fn write_files(region: &seed::Region, dir: &Path, threads: usize) -> Result<()> {
    let started = Instant::now();
    let mut last = None::<Instant>;
    let summary = seed::ndjson::write_region(region, dir, threads, |progress| {
        if last.is_some_and(|at| at.elapsed() < PROGRESS_EVERY)
            && progress.residents_done < progress.residents
        {
            return;
        }
        last = Some(Instant::now());
        let seconds = progress.elapsed.as_secs_f64().max(1e-9);
        let fraction = progress.residents_done as f64 / progress.residents.max(1) as f64;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} of {} residents  {} resources  {:.0}/s  {:.0} MB  ETA {:.0} s   ",
            progress.residents_done,
            progress.residents,
            progress.resources,
            progress.resources as f64 / seconds,
            progress.bytes as f64 / 1e6,
            eta(seconds, fraction)
        );
        let _ = err.flush();
    })
    .with_context(|| format!("writing NDJSON files into {}", dir.display()))?;
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!();
    for resource_type in seed::RESOURCE_TYPES {
        if let Some(count) = summary.counts.get(resource_type) {
            eprintln!("  {resource_type:<18} {count:>12}");
        }
    }
    eprintln!(
        "wrote {} resources ({:.1} MB) in {:.1} s ({:.0}/s) into {}",
        summary.resources(),
        summary.bytes as f64 / 1e6,
        seconds,
        summary.resources() as f64 / seconds,
        dir.display()
    );
    Ok(())
}

/// Loads the region into the configured store through the import pipeline, resource by
/// resource in the generator's order (every reference points to a resource already sent).
/// Answers whether every resource was imported; failures are listed as `meridian import`
/// lists them.
fn load_into_store(
    region: &seed::Region,
    config: &StoreConfig,
    options: ImportOptions,
) -> Result<bool> {
    let ctx = crate::operator("seed");
    let repository = open_repository(config, &ctx)?;
    let residents = region.config().patients;
    let residents_generated = AtomicU64::new(0);
    let units = region.resources().map(|(resource_type, resource)| {
        if resource_type == "Patient" {
            residents_generated.fetch_add(1, Ordering::Relaxed);
        }
        ImportUnit {
            source: format!(
                "seed {resource_type}/{}",
                resource["id"].as_str().unwrap_or_default()
            ),
            json: serde_json::to_vec(&resource).expect("a Value serialises"),
        }
    });
    let progress = Progress::start();
    let show = |counts: &ImportCounts| {
        progress.show(counts, |seconds| {
            let generated = residents_generated.load(Ordering::Relaxed);
            let fraction = generated as f64 / residents.max(1) as f64;
            format!(
                "{generated} of {residents} residents  ETA {:.0} s",
                eta(seconds, fraction)
            )
        })
    };
    let report = progress.bulk_load(&repository, || {
        repository.import(&ctx, units, options, &show)
    })?;
    Ok(progress.finish("loaded", &report))
}
