//! `meridian`: the one binary. The only crate that reads the command line and the environment.

mod config;
mod fhirpath_command;
mod identity;
mod reindex;
mod serve;
mod stores;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "meridian",
    version,
    about = "Meridian: an open regional health information platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform: the FHIR server on the embedded store or PostgreSQL.
    Serve(config::ServeArgs),
    /// Bring every resource's search index up to date with the search parameters in force
    /// (after SearchParameter resources were added or changed). Resumes an interrupted run.
    Reindex {
        #[command(flatten)]
        store: config::StoreArgs,
        /// Resources per transaction.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Start from the beginning instead of resuming.
        #[arg(long)]
        restart: bool,
    },
    /// Evaluate a FHIRPath expression against a resource and print the result as a JSON array.
    Fhirpath {
        /// Print each item as {"type": ..., "value": ...} with its FHIR or System type.
        #[arg(long)]
        typed: bool,
        /// The FHIRPath expression.
        expression: String,
        /// The resource: a JSON file, or `-` (the default) for standard input.
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            match config::ServeConfig::resolve(&args, |key| std::env::var(key).ok()) {
                Ok(config) => match serve::run(config) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) => {
                        eprintln!("meridian serve: {error:#}");
                        ExitCode::FAILURE
                    }
                },
                Err(error) => {
                    eprintln!("meridian serve: {error:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Reindex {
            store,
            batch,
            restart,
        } => {
            let outcome = config::StoreConfig::resolve(&store, |key| std::env::var(key).ok())
                .and_then(|config| reindex::run(&config, batch.max(1), restart));
            match outcome {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("meridian reindex: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Fhirpath {
            typed,
            expression,
            file,
        } => fhirpath_command::run(typed, &expression, file.as_deref()),
    }
}
