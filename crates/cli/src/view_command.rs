//! `meridian view materialise` (in `materialise.rs`) keeps views as Parquet files.
//!
//! `meridian view run VIEW.json [--resources FILE.ndjson] [--format ndjson|csv] [--out FILE]`:
//! a SQL on FHIR v2 ViewDefinition evaluated over the resources of an NDJSON file (no store
//! needed), or over the store's current resources of the view's type, read as this machine's
//! operator. With no `--out`, the rows and nothing else go to standard output; what the command
//! says about its work goes to standard error.
//!
//! Exit status: 0 when every resource was evaluated, 1 when the input could not be read or a
//! resource could not be evaluated (the rows written before stay written), 2 when the view is
//! invalid or the arguments are wrong.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use analytics::View;
use analytics::output::{self, TableFormat, TableWriter};
use anyhow::{Context, Result, anyhow};
use serde_json::Value;

use crate::config::{StoreArgs, StoreConfig};

#[derive(Debug, clap::Subcommand)]
pub enum ViewCommand {
    /// Evaluate a ViewDefinition and write its rows.
    Run {
        /// The ViewDefinition (a JSON file).
        view: PathBuf,
        /// Evaluate over the resources of this NDJSON file (one resource per line) instead of
        /// the store.
        #[arg(long)]
        resources: Option<PathBuf>,
        /// The rows' format: `ndjson` (a JSON object a row, every column named, null when
        /// empty), `csv` (RFC 4180 with CRLF line ends, a header row; empty when null, a
        /// collection as JSON) or `parquet` (one file, written as the rows come).
        #[arg(long, value_enum, default_value_t = Format::Ndjson)]
        format: Format,
        /// Write the rows to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write views as directories of Parquet files (one per view, named as the view, that
    /// pandas, DuckDB, Spark and `meridian sql` read as tables), refreshed from the store's
    /// change log when they were written before.
    Materialise {
        /// The ViewDefinitions (JSON files); the catalogue's views when none is given.
        views: Vec<PathBuf>,
        /// The directory the views' directories go in [default: DATA/views].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Rebuild from every resource, even a view whose files can be refreshed.
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Ndjson,
    Csv,
    /// One Parquet file, its Arrow schema from the columns' types (decision 0023).
    Parquet,
}

/// Why the command stopped: its exit status tells the view's faults from the input's.
enum Failure {
    /// The view or the arguments (exit 2).
    Usage(anyhow::Error),
    /// Reading, evaluating or writing (exit 1).
    Run(anyhow::Error),
}

pub fn run(command: ViewCommand) -> ExitCode {
    let (verb, outcome) = match command {
        ViewCommand::Run {
            view,
            resources,
            format,
            out,
            store,
        } => (
            "run",
            run_view(&view, resources.as_deref(), format, out.as_deref(), &store),
        ),
        ViewCommand::Materialise {
            views,
            dir,
            full,
            store,
        } => ("materialise", materialise(&views, dir, full, &store)),
    };
    match outcome {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(error)) => {
            eprintln!("meridian view {verb}: {error:#}");
            ExitCode::from(2)
        }
        Err(Failure::Run(error)) => {
            eprintln!("meridian view {verb}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_view(
    view_path: &Path,
    resources: Option<&Path>,
    format: Format,
    out: Option<&Path>,
    store: &StoreArgs,
) -> Result<String, Failure> {
    let view = read_view(view_path).map_err(Failure::Usage)?;
    let output: Box<dyn Write + Send> = match out {
        Some(path) => Box::new(
            File::create(path)
                .with_context(|| format!("creating {}", path.display()))
                .map_err(Failure::Run)?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let output = BufWriter::new(output);
    let table_format = match format {
        Format::Csv => TableFormat::Text(output::Format::Csv { header: true }),
        Format::Ndjson => TableFormat::Text(output::Format::Ndjson),
        Format::Parquet => TableFormat::Parquet,
    };
    let mut writer = TableWriter::new(&view, table_format, output)
        .context("starting the output")
        .map_err(Failure::Run)?;
    let mut resources_read = 0u64;
    let mut each = |resource: &Value| -> Result<()> {
        resources_read += 1;
        let rows = view.rows(resource).map_err(|error| {
            let id = resource
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("(no id)");
            anyhow!("{}/{id}: {error}", view.resource())
        })?;
        for row in &rows {
            writer.write(row).context("writing the rows")?;
        }
        Ok(())
    };
    match resources {
        Some(path) => each_in_ndjson(path, &mut each),
        None => each_in_store(store, view.resource(), &mut each),
    }
    .map_err(Failure::Run)?;
    let (rows, _) = writer
        .finish()
        .context("writing the rows")
        .map_err(Failure::Run)?;
    Ok(format!(
        "{rows} row(s) from {resources_read} resource(s) read"
    ))
}

fn read_view(path: &Path) -> Result<View> {
    read_view_json(path).map(|(view, _)| view)
}

fn read_view_json(path: &Path) -> Result<(View, Value)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let view = View::parse(&json).with_context(|| format!("the view in {}", path.display()))?;
    Ok((view, json))
}

fn materialise(
    views: &[PathBuf],
    dir: Option<PathBuf>,
    full: bool,
    store: &StoreArgs,
) -> Result<String, Failure> {
    let views = if views.is_empty() {
        server::views::catalogue()
    } else {
        views
            .iter()
            .map(|path| {
                let (view, json) = read_view_json(path)?;
                let name = view
                    .name()
                    .map(str::to_owned)
                    .with_context(|| format!("the view in {} has no name", path.display()))?;
                Ok((name, json, view))
            })
            .collect()
    }
    .map_err(Failure::Usage)?;
    let count = views.len();
    let config =
        StoreConfig::resolve(store, |key| std::env::var(key).ok()).map_err(Failure::Run)?;
    let root = dir.unwrap_or_else(|| server::views::default_root(&config.data));
    let operator = crate::operator("view-materialise");
    let repository = crate::stores::open_repository(&config, &operator).map_err(Failure::Run)?;
    let progress = crate::progress::Progress::start();
    server::views::materialise(&repository, &operator, views, &root, full, &progress)
        .map_err(Failure::Run)?;
    Ok(format!(
        "{count} view(s) materialised in {}",
        root.display()
    ))
}

/// Calls `each` with every resource of an NDJSON file, in order; blank lines are skipped.
fn each_in_ndjson(path: &Path, each: &mut dyn FnMut(&Value) -> Result<()>) -> Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let resource: Value = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: not JSON", path.display(), number + 1))?;
        each(&resource).with_context(|| format!("{} line {}", path.display(), number + 1))?;
    }
    Ok(())
}

/// Calls `each` with every current resource of `resource_type` in the store, in row order,
/// read as this machine's operator.
fn each_in_store(
    store: &StoreArgs,
    resource_type: &str,
    each: &mut dyn FnMut(&Value) -> Result<()>,
) -> Result<()> {
    let config = StoreConfig::resolve(store, |key| std::env::var(key).ok())?;
    let operator = crate::operator("view-run");
    let repository = crate::stores::open_repository(&config, &operator)?;
    let reader = repository.reader(&operator);
    let mut query = store::ScanQuery {
        types: vec![resource_type.to_owned()],
        limit: 1_000,
        ..store::ScanQuery::default()
    };
    loop {
        let page = reader.scan(&query)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        query.after_row = last.row;
        for record in &page {
            let resource = repository::parse_stored(record)?;
            each(&resource)?;
        }
    }
}
