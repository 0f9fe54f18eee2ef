//! `meridian ledger`: verify a store against its verifiable log, print a version's inclusion
//! proof for a third party, or run a witness.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use ledger::hash::{leaf_hash, to_base64};
use ledger::log::Log;
use serde_json::json;

use crate::config::{StoreArgs, StoreConfig};

#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// Recompute every leaf from the stored versions and the tree from the leaves, and check the
    /// latest checkpoint's signature and every witness cosignature. Names each version changed,
    /// deleted or added behind the server's back; exits 1 if there is one.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the inclusion proof of TYPE/ID/_history/N with a checkpoint that covers it and the
    /// keys to check it, as JSON anyone can verify without Meridian (docs/ledger.md).
    Prove {
        #[command(flatten)]
        store: StoreArgs,
        /// TYPE/ID/_history/VERSION.
        resource: String,
    },
    /// Add a new signing key to the log's ring and print its verifier key. Checkpoints signed
    /// with the old keys still verify (they stay published); running servers sign with the new
    /// key once restarted.
    RotateKey {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Run a witness: cosign a log's checkpoints (C2SP tlog-witness), each only if consistent
    /// with the last one cosigned. Prints its verifier key on start.
    Witness {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7380")]
        listen: String,
        /// Where the witness keeps its key and what it cosigned.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// The verifier key of a log it witnesses (GET /ledger/keys). Repeatable.
        #[arg(long, value_name = "VERIFIER_KEY", required = true)]
        log_key: Vec<String>,
        /// The witness's name, on its key and cosignatures (when its key is made).
        #[arg(long, value_name = "NAME", default_value = "meridian.local/witness")]
        name: String,
    },
}

pub fn run(command: LedgerCommand) -> ExitCode {
    let outcome = match command {
        LedgerCommand::Verify { store } => config(&store).and_then(|c| verify(&c)),
        LedgerCommand::Prove { store, resource } => {
            config(&store).and_then(|c| prove(&c, &resource).map(|()| true))
        }
        LedgerCommand::RotateKey { store } => config(&store).and_then(|c| {
            let store = crate::stores::open_store(&c)?;
            let now = fhir_model::clock::now_micros() / 1_000_000;
            let key = Log::rotate_key(&*store, now)?;
            println!("{key}");
            Ok(true)
        }),
        LedgerCommand::Witness {
            listen,
            state,
            log_key,
            name,
        } => witness(&listen, &state, &log_key, &name).map(|()| true),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("meridian ledger: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn config(store: &StoreArgs) -> Result<StoreConfig> {
    StoreConfig::resolve(store, |key| std::env::var(key).ok())
}

fn verify(config: &StoreConfig) -> Result<bool> {
    let caller = crate::operator("ledger-verify");
    let repository = crate::stores::open_repository(config, &caller)?;
    // Versions committed since the ledger keeper last ran are logged first.
    repository
        .catch_up_ledger(&crate::operator("ledger"))
        .context("appending committed versions to the ledger")?;
    let reader = repository.reader(&caller);
    let mut last_report = std::time::Instant::now();
    let report = ledger::log::verify(&**repository.store(), &reader, |done, total| {
        if last_report.elapsed().as_secs() >= 5 {
            eprintln!("checked {done} of {total} leaves");
            last_report = std::time::Instant::now();
        }
    })
    .context("verifying the ledger")?;
    for problem in &report.problems {
        println!("{problem}");
    }
    eprintln!(
        "{} leaves, {} logged versions, checkpoint of {} leaves with {} witness cosignatures: {}",
        report.leaves,
        report.versions,
        report
            .checkpoint_size
            .map_or_else(|| "none".to_owned(), |s| s.to_string()),
        report.cosignatures,
        if report.problems.is_empty() {
            "verified".to_owned()
        } else {
            format!("{} problems", report.problems.len())
        }
    );
    Ok(report.problems.is_empty())
}

fn prove(config: &StoreConfig, resource: &str) -> Result<()> {
    let parts: Vec<&str> = resource.split('/').collect();
    let [resource_type, id, "_history", version] = parts.as_slice() else {
        bail!("'{resource}' is not TYPE/ID/_history/VERSION");
    };
    let version: i64 = version
        .parse()
        .with_context(|| format!("'{version}' is not a version number"))?;
    let caller = crate::operator("ledger-prove");
    let repository = crate::stores::open_repository(config, &caller)?;
    repository
        .catch_up_ledger(&crate::operator("ledger"))
        .context("appending committed versions to the ledger")?;
    let store = Arc::clone(repository.store());
    let log = Log::open(Arc::clone(&store), "meridian.local/ledger", 0)?;
    let leaf = log
        .leaf_of(resource_type, id, version)?
        .with_context(|| format!("{resource} is not in the ledger"))?;
    // A checkpoint that covers the leaf: the published one, or a new one now.
    let mut checkpoint = log.latest()?.unwrap_or_default();
    let covers = |note: &str| ledger::Checkpoint::of_note(note).filter(|c| c.size > leaf.index);
    if covers(&checkpoint).is_none() {
        checkpoint = log.publish()?.0;
    }
    let signed = covers(&checkpoint).context("no checkpoint covers the leaf")?;
    let path = log.inclusion(leaf.index, signed.size)?;
    let body = repository
        .reader(&caller)
        .version_of(resource_type, id, version)?
        .and_then(|v| v.content)
        .map(|c| String::from_utf8_lossy(&c).into_owned());
    let proof = json!({
        "resource": resource,
        "leaf_index": leaf.index,
        "leaf_input": String::from_utf8_lossy(&leaf.input),
        "leaf_hash": to_base64(&leaf_hash(&leaf.input)),
        "tree_size": signed.size,
        "root_hash": to_base64(&signed.root),
        "audit_path": path.iter().map(to_base64).collect::<Vec<_>>(),
        "checkpoint": checkpoint,
        "log_keys": log.verifiers().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "witness_keys": log.witnesses()?.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "body": body,
    });
    println!("{}", serde_json::to_string_pretty(&proof)?);
    Ok(())
}

fn witness(listen: &str, state: &std::path::Path, log_keys: &[String], name: &str) -> Result<()> {
    let log_keys = log_keys
        .iter()
        .map(|k| ledger::VerifierKey::parse(k).map_err(|e| anyhow::anyhow!("--log-key '{k}': {e}")))
        .collect::<Result<Vec<_>>>()?;
    let service =
        server::WitnessService::open(state, name, log_keys).map_err(anyhow::Error::msg)?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        // The first line of standard output: the key to give the log (`serve --witness`).
        println!("{}", service.verifier());
        eprintln!(
            "witness {} listening on http://{}",
            service.verifier().name,
            listener.local_addr()?
        );
        server::serve_witness(listener, Arc::new(service), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")
    })
}
