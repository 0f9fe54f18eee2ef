//! `meridian intake`: the HL7 v2 messages kept in the dead-letter store (list them, apply them
//! again after a mapping or configuration fix), the readings refused and kept for review, and
//! devices' credentials.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;

use crate::config::{StoreArgs, StoreConfig};

#[derive(Debug, clap::Subcommand)]
pub enum IntakeCommand {
    /// List the HL7 v2 messages kept in the dead-letter store, one JSON line each.
    DeadLetters {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Apply kept HL7 v2 messages again (all, or the one with --id), each as its sender, as
    /// the MLLP listener would; those that apply leave the store. Exits 1 if any is still kept.
    Replay {
        #[command(flatten)]
        store: StoreArgs,
        /// Only this kept message (an id `dead-letters` lists).
        #[arg(long)]
        id: Option<String>,
    },
    /// List the readings refused and kept for review, one JSON line each.
    RefusedReadings {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Issue a device (a kiosk, registered as a FHIR Device) a new secret for signing its
    /// uploads, and print it once; the earlier one stops working.
    DeviceSecret {
        #[command(flatten)]
        store: StoreArgs,
        /// The Device's id.
        device: String,
    },
}

pub fn run(command: IntakeCommand) -> ExitCode {
    let outcome = match command {
        IntakeCommand::DeadLetters { store } => {
            with_store(&store, |config| dead_letters(config).map(|()| true))
        }
        IntakeCommand::Replay { store, id } => {
            with_store(&store, |config| replay(config, id.as_deref()))
        }
        IntakeCommand::RefusedReadings { store } => {
            with_store(&store, |config| refused(config).map(|()| true))
        }
        IntakeCommand::DeviceSecret { store, device } => with_store(&store, |config| {
            device_secret(config, &device).map(|()| true)
        }),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("meridian intake: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn with_store(store: &StoreArgs, work: impl FnOnce(&StoreConfig) -> Result<bool>) -> Result<bool> {
    let config = StoreConfig::resolve(store, |key| std::env::var(key).ok())?;
    work(&config)
}

fn intake(config: &StoreConfig) -> Result<intake::Intake> {
    let repository = crate::stores::open_repository(config, &crate::operator("intake"))?;
    Ok(intake::Intake::new(
        std::sync::Arc::new(repository),
        intake::Senders::new(config.intake_senders.clone()),
    ))
}

fn dead_letters(config: &StoreConfig) -> Result<()> {
    for letter in intake(config)?.dead_letters()? {
        println!(
            "{}",
            json!({"id": letter.id, "sender": letter.sender, "controlId": letter.control_id,
                "event": letter.event, "error": letter.error, "attempts": letter.attempts,
                "at": fhir_model::clock::format_instant(letter.at), "bytes": letter.bytes.len()})
        );
    }
    Ok(())
}

/// Applies kept messages again, each as its sender's caller (the listener's, built the same
/// way; the network address is this command's, none).
fn replay(config: &StoreConfig, id: Option<&str>) -> Result<bool> {
    let intake = intake(config)?;
    let results = intake
        .replay(id, &|sender| {
            server::sender_caller(sender, None, format!("replay-{}", uuid::Uuid::new_v4()))
        })
        .context("replaying kept messages")?;
    // What the replay applied is on the audit trail, as its senders, before it says so.
    let applied: Vec<(caller::Caller, String, Vec<u8>)> = results
        .iter()
        .filter_map(
            |(_, received, caller)| match (&received.disposition, caller) {
                (intake::Disposition::Applied { event, response }, Some(caller)) => {
                    Some((caller.clone(), event.clone(), response.clone()))
                }
                _ => None,
            },
        )
        .collect();
    server::audit_replayed(intake.repository(), &applied)
        .context("recording the replayed messages on the audit trail")?;
    let mut all_applied = true;
    for (id, received, _) in &results {
        let outcome = match &received.disposition {
            intake::Disposition::Applied { event, .. } => {
                json!({"id": id, "outcome": "applied", "event": event})
            }
            intake::Disposition::Duplicate => json!({"id": id, "outcome": "applied before"}),
            intake::Disposition::Refused | intake::Disposition::DeadLettered { .. } => {
                all_applied = false;
                json!({"id": id, "outcome": "kept", "ack": received.code.code(),
                    "errors": received.errors.iter().map(|e| e.text.clone()).collect::<Vec<_>>()})
            }
        };
        println!("{outcome}");
    }
    eprintln!("replayed {} kept message(s)", results.len());
    Ok(all_applied)
}

fn refused(config: &StoreConfig) -> Result<()> {
    let repository = crate::stores::open_repository(config, &crate::operator("intake"))?;
    for kept in intake::device::Readings::refused(&repository)? {
        println!("{kept}");
    }
    Ok(())
}

fn device_secret(config: &StoreConfig, device: &str) -> Result<()> {
    let operator = crate::operator("device-secret");
    let repository = crate::stores::open_repository(config, &operator)?;
    repository
        .read(&operator, "Device", device)
        .with_context(|| format!("Device/{device} must be registered first"))?;
    let secret = intake::device::issue_secret(&repository, device)?;
    println!("{secret}");
    Ok(())
}
