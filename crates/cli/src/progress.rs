//! The progress line and final report of the loading commands (`import`, `seed`) and of
//! `view materialise`.
//!
//! On a terminal the line is redrawn in place twice a second. Otherwise (a log file, CI) a
//! whole line is written every five seconds, each starting with the seconds since the start
//! and the resources so far, so a log of a long load shows how its rate changed
//! (`bench/ingest` reads it).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use repository::{ImportCounts, ImportReport, Repository};

pub struct Progress {
    started: Instant,
    last: Mutex<Option<Instant>>,
    terminal: bool,
}

impl Progress {
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            last: Mutex::new(None),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// Shows the counts so far and `detail` (made only when the line is due), unless the last
    /// line is too recent.
    pub fn show(&self, counts: &ImportCounts, detail: impl FnOnce(f64) -> String) {
        self.tick(|seconds| {
            format!(
                "{seconds:.1} s  {} resources  {:.0}/s  {}  {} failed",
                counts.resources(),
                counts.resources() as f64 / seconds,
                detail(seconds),
                counts.failed
            )
        });
    }

    /// Shows the line `line` makes from the seconds so far, unless the last one is too
    /// recent: redrawn in place on a terminal, a line every five seconds elsewhere.
    pub fn tick(&self, line: impl FnOnce(f64) -> String) {
        let every = if self.terminal {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        };
        {
            let mut last = self
                .last
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|at| at.elapsed() < every) {
                return;
            }
            *last = Some(Instant::now());
        }
        let line = line(self.seconds());
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r{line}   ")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    /// Runs `load` as a bulk load of `repository`'s store: into an empty store the search
    /// indexes are deferred and built at the end, with a line saying so (the build of a
    /// million-resource load takes a minute or so, with nothing else to show); then a
    /// checkpoint of the verifiable log is published.
    pub fn bulk_load(
        &self,
        repository: &Repository,
        load: impl FnOnce() -> ImportReport,
    ) -> anyhow::Result<ImportReport> {
        let store = repository.store();
        let deferred = store.begin_bulk_load()?;
        let report = load();
        if deferred {
            let started = Instant::now();
            self.line(&format!(
                "{:.1} s  building the search indexes deferred during the load",
                self.seconds()
            ));
            store.end_bulk_load()?;
            self.line(&format!(
                "{:.1} s  search indexes built in {:.1} s",
                self.seconds(),
                started.elapsed().as_secs_f64()
            ));
        }
        // What was loaded is covered by a signed checkpoint at once, not at a server's next
        // schedule (the log's key is made here when the store has none yet).
        let now = fhir_model::clock::now_micros() / 1_000_000;
        let log = ledger::log::Log::open(std::sync::Arc::clone(store), DEFAULT_LEDGER_ORIGIN, now)?;
        let (note, _) = log.publish()?;
        if let Some(size) = note.lines().nth(1) {
            self.line(&format!(
                "{:.1} s  ledger checkpoint of {size} leaves published",
                self.seconds()
            ));
        }
        Ok(report)
    }

    /// Writes a line of its own, ending a progress line drawn in place.
    pub fn line(&self, line: &str) {
        if self.terminal {
            eprintln!();
        }
        eprintln!("{line}");
    }

    /// Ends the progress line and prints the summary and every failure with its source and
    /// OperationOutcome issues. Answers whether every record was loaded.
    pub fn finish(&self, verb: &str, report: &ImportReport) -> bool {
        let seconds = self.seconds();
        let counts = report.counts;
        if self.terminal {
            eprintln!();
        }
        eprintln!(
            "{verb} {} resources in {:.1} s ({:.0}/s): {} created, {} updated, {} unchanged; {} failed",
            counts.resources(),
            seconds,
            counts.resources() as f64 / seconds,
            counts.created,
            counts.updated,
            counts.unchanged,
            counts.failed
        );
        for failure in &report.failures {
            for issue in &failure.issues {
                let at = issue
                    .expression
                    .as_deref()
                    .map(|e| format!(" at {e}"))
                    .unwrap_or_default();
                eprintln!(
                    "  {}: {} ({}){at}",
                    failure.source,
                    issue.diagnostics,
                    issue.code.as_str()
                );
            }
        }
        report.failures.is_empty()
    }
}

/// The estimated seconds left when `fraction` of the work took `seconds`.
pub fn eta(seconds: f64, fraction: f64) -> f64 {
    if fraction > 0.0 {
        (seconds / fraction - seconds).max(0.0)
    } else {
        0.0
    }
}

/// The log's origin when a loading command makes its key (a server started later keeps it).
const DEFAULT_LEDGER_ORIGIN: &str = "meridian.local/ledger";

/// `view materialise`'s progress: the resources a build has read, and a line per view.
impl server::views::Progress for Progress {
    fn tick(&self, name: &str, read: u64) {
        Progress::tick(self, |seconds| {
            format!(
                "{seconds:.1} s  {name}: {read} resources  {:.0}/s",
                read as f64 / seconds
            )
        });
    }

    fn line(&self, line: &str) {
        Progress::line(self, line);
    }
}
