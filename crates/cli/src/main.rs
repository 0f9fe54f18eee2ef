//! `meridian`: the one binary. The only crate that reads the command line and the environment.

mod config;
mod fhirpath_command;
mod identity;
mod import;
mod intake_command;
mod ledger_command;
mod measure_command;
mod progress;
mod reindex;
mod schedule;
mod seed_command;
mod serve;
mod sign_in;
mod sql_command;
mod stores;
mod view_command;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The caller the command line acts as: the operator, for `work` (`import`, `seed`, `reindex`,
/// the server's own start-up and schedules). The one place this edge makes a caller.
/// An `Organization/ID` reference, as `--organization` takes it.
fn parse_organization(text: &str) -> Result<String, String> {
    let id = text.strip_prefix("Organization/").unwrap_or(text);
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(format!(
            "{text:?} is not an Organization id (Organization/ID)"
        ));
    }
    Ok(format!("Organization/{id}"))
}

pub(crate) fn operator(work: &str) -> caller::Caller {
    caller::Caller::operator(work)
}

/// mimalloc instead of the system allocator: parsing, validating and indexing allocate many
/// small objects, and profiling showed the system allocator at a fifth of import time
/// (docs/decisions/0004-allocator.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    // Boxed: its many settings would make every command as large as it.
    Serve(Box<config::ServeArgs>),
    /// Load FHIR Bundles, resources and NDJSON files (or directories of them) into the store.
    Import {
        #[command(flatten)]
        store: config::StoreArgs,
        /// Files or directories (.json: a resource or Bundle; .ndjson: one resource per line).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Threads that parse, validate and index [default: the number of cores].
        #[arg(long)]
        workers: Option<usize>,
        /// Resources per store transaction (larger batches write each index page once for
        /// more entries: 5,000 loaded 18% faster than 1,000 into a store of 1.4M resources).
        #[arg(long, default_value_t = 5000)]
        batch: usize,
        /// The institution that holds what is loaded (`Organization/ID`): the custodian the
        /// access rules go by. Without it, a resource's own `meta.source` names its custodian
        /// when it ends with `Organization/ID`; otherwise it belongs to no institution (only
        /// administrators and platform clients see it).
        #[arg(long, value_parser = parse_organization)]
        organization: Option<String>,
    },
    /// Generate a synthetic region (institutions, staff, residents and their records) and
    /// load it into the store, or write it as NDJSON files with --out.
    Seed(seed_command::SeedArgs),
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
    /// Print an access token signed with the server's key (without --user: an administrator's,
    /// with full access), for `curl -H "Authorization: Bearer $(meridian token)" ...`.
    Token {
        #[command(flatten)]
        store: config::StoreArgs,
        /// The account the token is for [default: an administrator].
        #[arg(long)]
        user: Option<String>,
        /// The scopes, space-separated [default: the account's full access].
        #[arg(long)]
        scope: Option<String>,
        /// Seconds the token lives.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Manage the accounts that sign in (practitioners, residents, administrators).
    #[command(subcommand)]
    User(sign_in::UserCommand),
    /// Manage the registered OAuth clients.
    #[command(subcommand)]
    Client(sign_in::ClientCommand),
    /// The verifiable log: verify a store against it, prove a version's inclusion, or run a
    /// witness.
    #[command(subcommand)]
    Ledger(ledger_command::LedgerCommand),
    /// The intake: HL7 v2 messages kept in the dead-letter store and their replay, readings
    /// refused for review, devices' credentials.
    #[command(subcommand)]
    Intake(intake_command::IntakeCommand),
    /// SQL on FHIR v2 views: evaluate a ViewDefinition over an NDJSON file or the store, or
    /// materialise views as Parquet files.
    #[command(subcommand)]
    View(view_command::ViewCommand),
    /// A SQL query over the materialised views, each a table named as its view.
    Sql(sql_command::SqlArgs),
    /// The region's indicators (Measures): list them, or compute one for a period.
    #[command(subcommand)]
    Measure(measure_command::MeasureCommand),
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
        Command::Import {
            store,
            paths,
            workers,
            batch,
            organization,
        } => {
            let mut options = repository::ImportOptions::default();
            if let Some(workers) = workers {
                options.workers = workers.max(1);
            }
            options.batch_resources = batch.max(1);
            let outcome = config::StoreConfig::resolve(&store, |key| std::env::var(key).ok())
                .and_then(|config| import::run(&config, &paths, options, organization));
            match outcome {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(error) => {
                    eprintln!("meridian import: {error:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Seed(args) => seed_command::run(args),
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
        Command::Token {
            store,
            user,
            scope,
            ttl,
        } => finish(
            "token",
            config::StoreConfig::resolve(&store, |key| std::env::var(key).ok())
                .and_then(|config| sign_in::token(&config, user.as_deref(), scope.as_deref(), ttl)),
        ),
        Command::User(command) => finish("user", sign_in::user(command)),
        Command::Client(command) => finish("client", sign_in::client(command)),
        Command::Ledger(command) => ledger_command::run(command),
        Command::Intake(command) => intake_command::run(command),
        Command::View(command) => view_command::run(command),
        Command::Sql(args) => sql_command::run(args),
        Command::Measure(command) => measure_command::run(command),
        Command::Fhirpath {
            typed,
            expression,
            file,
        } => fhirpath_command::run(typed, &expression, file.as_deref()),
    }
}

/// The exit of a command that only succeeds or fails.
fn finish(command: &str, outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("meridian {command}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
