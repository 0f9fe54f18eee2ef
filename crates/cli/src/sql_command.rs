//! `meridian sql QUERY [--dir DIR] [--format table|csv|ndjson]`: a query over the views
//! `meridian view materialise` wrote (each a table named as its view), run by the embedded
//! SQL engine (`analytics-sql`). The answer goes to standard output, nothing else.
//!
//! Exit status: 0 with an answer, 2 when the query is refused (not SQL, not a query, names
//! what is not there), 1 when it failed or ran past a limit.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use analytics::output::{Format as TextFormat, RowWriter};
use analytics_sql::{Engine, Limits, SqlError};
use serde_json::Value;

use crate::config::{StoreArgs, StoreConfig};

#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// The query.
    query: String,
    /// The directory of materialised views [default: DATA/views].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// `table` (aligned columns), `csv` (a header row, RFC 4180) or `ndjson` (an object a row).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// The most rows an answer may have.
    #[arg(long, default_value_t = 100_000)]
    max_rows: usize,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Ndjson,
}

pub fn run(args: SqlArgs) -> ExitCode {
    let dir = match args.dir {
        Some(dir) => dir,
        None => match StoreConfig::resolve(&args.store, |key| std::env::var(key).ok()) {
            Ok(config) => server::views::default_root(&config.data),
            Err(error) => {
                eprintln!("meridian sql: {error:#}");
                return ExitCode::from(2);
            }
        },
    };
    let limits = Limits {
        rows: args.max_rows,
        ..Limits::default()
    };
    let answer = Engine::over(&dir, limits).and_then(|mut engine| engine.query(&args.query));
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            eprintln!("meridian sql: {error}");
            return match error {
                SqlError::Query(_) => ExitCode::from(2),
                SqlError::Limit(_) | SqlError::Engine(_) => ExitCode::FAILURE,
            };
        }
    };
    let text = match args.format {
        Format::Ndjson => rows_as(&answer, TextFormat::Ndjson),
        Format::Csv => rows_as(&answer, TextFormat::Csv { header: true }),
        Format::Table => table(&answer.columns, &answer.rows).into_bytes(),
    };
    let mut out = std::io::stdout().lock();
    if out.write_all(&text).and_then(|()| out.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The answer as NDJSON or CSV, as `view run` writes rows.
fn rows_as(answer: &analytics_sql::Answer, format: TextFormat) -> Vec<u8> {
    let written = RowWriter::with_columns(answer.columns.clone(), format, Vec::new()).and_then(
        |mut writer| {
            for row in &answer.rows {
                writer.write(row)?;
            }
            writer.finish()
        },
    );
    // Writing to memory does not fail.
    written.map(|(_, bytes)| bytes).unwrap_or_default()
}

/// Columns aligned under their names, numbers to the right.
fn table(columns: &[String], rows: &[Vec<Value>]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell(value).chars().count());
        }
    }
    let line = |values: Vec<(String, bool)>| {
        let cells: Vec<String> = values
            .into_iter()
            .zip(&widths)
            .map(|((text, number), &width)| {
                let pad = " ".repeat(width - text.chars().count());
                if number {
                    format!("{pad}{text}")
                } else {
                    format!("{text}{pad}")
                }
            })
            .collect();
        format!("{}\n", cells.join("  ").trim_end())
    };
    let mut text = line(columns.iter().map(|c| (c.clone(), false)).collect());
    text.push_str(&line(
        widths.iter().map(|w| ("-".repeat(*w), false)).collect(),
    ));
    for row in rows {
        text.push_str(&line(
            row.iter().map(|v| (cell(v), v.is_number())).collect(),
        ));
    }
    text.push_str(&format!(
        "({} row{})\n",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    ));
    text
}
