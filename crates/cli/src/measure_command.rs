//! `meridian measure list` and `meridian measure evaluate ID --period-start S --period-end E`:
//! the region's indicator catalogue (`analytics::indicators`), and one indicator computed over
//! the materialised views (brought up to date with the store first) as a `MeasureReport` on
//! standard output.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Subcommand;

use crate::config::{StoreArgs, StoreConfig};

#[derive(Debug, Subcommand)]
pub enum MeasureCommand {
    /// The indicators computed from the views: id, scoring, title and the views each reads
    /// (result recognition is computed by the decision-support service, over HTTP).
    List,
    /// Compute an indicator for a period, as a MeasureReport (JSON) on standard output.
    Evaluate {
        /// The indicator's id (`meridian measure list`), or its Measure's canonical URL.
        id: String,
        /// The first day of the period (YYYY-MM-DD, or YYYY-MM, or YYYY).
        #[arg(long)]
        period_start: String,
        /// The last day of the period, included (YYYY-MM-DD, or YYYY-MM, or YYYY).
        #[arg(long)]
        period_end: String,
        /// List the members of each population (a subject-list report).
        #[arg(long)]
        subject_list: bool,
        /// The directory of materialised views [default: DATA/views].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run(command: MeasureCommand) -> ExitCode {
    match command {
        MeasureCommand::List => match list() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("meridian measure list: {error:#}");
                ExitCode::FAILURE
            }
        },
        MeasureCommand::Evaluate {
            id,
            period_start,
            period_end,
            subject_list,
            dir,
            store,
        } => {
            let Some(indicator) = analytics::indicators::indicator(&id) else {
                eprintln!("meridian measure evaluate: no indicator '{id}' (meridian measure list)");
                return ExitCode::from(2);
            };
            let Some(period) = analytics::indicators::Period::parse(&period_start, &period_end)
            else {
                eprintln!(
                    "meridian measure evaluate: the period must be two dates (YYYY-MM-DD, YYYY-MM or YYYY), the end not before the start"
                );
                return ExitCode::from(2);
            };
            match evaluate(&indicator, &period, subject_list, dir, &store) {
                Ok(report) => {
                    println!("{report:#}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("meridian measure evaluate: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn list() -> Result<()> {
    let indicators = analytics::indicators::indicators().map_err(|e| anyhow!("{e}"))?;
    for indicator in indicators {
        println!(
            "{}\t{:?}\t{}\t{}",
            indicator.id,
            indicator.scoring,
            indicator.measure["title"].as_str().unwrap_or_default(),
            indicator.views.join(",")
        );
    }
    Ok(())
}

fn evaluate(
    indicator: &analytics::indicators::Indicator,
    period: &analytics::indicators::Period,
    subject_list: bool,
    dir: Option<PathBuf>,
    store: &StoreArgs,
) -> Result<serde_json::Value> {
    let config = StoreConfig::resolve(store, |key| std::env::var(key).ok())?;
    let root = dir.unwrap_or_else(|| server::views::default_root(&config.data));
    let operator = crate::operator("measure-evaluate");
    let repository = crate::stores::open_repository(&config, &operator)?;
    server::views::evaluate_indicator(
        &repository,
        &operator,
        &root,
        indicator,
        period,
        subject_list,
    )
    .with_context(|| format!("indicator {}", indicator.id))
}
