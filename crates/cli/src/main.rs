//! `meridian`: the one binary. The only crate that reads the command line and the environment.

mod fhirpath_command;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "meridian", version, about = "Meridian: an open regional health information platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        Command::Fhirpath { typed, expression, file } => fhirpath_command::run(typed, &expression, file.as_deref()),
    }
}
