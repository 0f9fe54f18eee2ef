//! HL7 v2 messages applied exactly once, and the dead-letter store.
//!
//! A message is applied as one store transaction: the FHIR Bundle it maps to and, in the same
//! transaction, its sender's control id marked as applied (`intake/v2/done/...` in the
//! store's key-value table, with the message's content). A message sent again with the same
//! control id (the sender did not get the acknowledgement, the connection dropped, the server
//! stopped before answering) is acknowledged and not applied again; the acknowledgement is sent only after the commit,
//! so a message is never acknowledged and lost.
//!
//! A message that cannot be applied (the mapping refuses it, or the store refuses what it
//! maps to) is kept in the dead-letter store (`intake/v2/dead/<id>`) with the error, its
//! bytes and its sender, and answered AE (AR when the platform, not the message, failed).
//! [`Intake::replay`] applies kept messages again after a mapping or configuration fix; one
//! that applies leaves the store in the same transaction.

use std::sync::Arc;

use base64::Engine;
use caller::Caller;
use hl7v2::{AckCode, AckError, Message};
use repository::{BundleOptions, InTransaction, Repository, RepositoryError};
use serde_json::{Value, json};

use crate::senders::{FACILITY_SYSTEM, Sender, Senders, UnknownSender};
use crate::v2::{self, Profile, Refusal};

const DONE: &str = "intake/v2/done/";
const DEAD: &str = "intake/v2/dead/";

/// What became of a message.
#[derive(Debug, Clone)]
pub enum Disposition {
    /// Applied now: the transaction-response Bundle (with the resources written).
    Applied { event: String, response: Vec<u8> },
    /// Applied before under this control id: nothing done.
    Duplicate,
    /// Not taken, by configuration (an unknown sender, a type it may not send): not kept.
    Refused,
    /// Not applied, kept for replay under this id.
    DeadLettered { id: String },
}

/// The answer to a message: the acknowledgement code and errors, and what became of it.
#[derive(Debug, Clone)]
pub struct Received {
    pub code: AckCode,
    pub errors: Vec<AckError>,
    pub disposition: Disposition,
}

impl Received {
    fn refused(refusal: Refusal, disposition: Disposition) -> Received {
        Received {
            code: refusal.code,
            errors: vec![refusal.error],
            disposition,
        }
    }
}

/// A kept message.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: String,
    pub sender: Option<String>,
    pub control_id: Option<String>,
    pub event: Option<String>,
    pub error: String,
    pub attempts: u64,
    /// When it was last tried (microseconds since the epoch).
    pub at: i64,
    pub bytes: Vec<u8>,
}

/// The intake of HL7 v2 messages.
pub struct Intake {
    repository: Arc<Repository>,
    senders: Senders,
}

impl Intake {
    pub fn new(repository: Arc<Repository>, senders: Senders) -> Intake {
        Intake {
            repository,
            senders,
        }
    }

    pub fn repository(&self) -> &Arc<Repository> {
        &self.repository
    }

    /// The sender of a message that came from `peer` (none: not over the network, a replay),
    /// or the refusal (AR) of an unknown one or one connecting from elsewhere than configured.
    pub fn sender(
        &self,
        message: &Message,
        peer: Option<std::net::IpAddr>,
    ) -> Result<Sender, Refusal> {
        let header = message.header();
        let sender = self
            .senders
            .match_sender(header.value(3, 1), (header.value(4, 1), header.value(4, 2)))
            .map_err(|unknown| Refusal {
                code: AckCode::ApplicationReject,
                error: match unknown {
                    UnknownSender::NoFacility => {
                        AckError::error(101, unknown.to_string()).at("MSH", 1, 4)
                    }
                    UnknownSender::NotConfigured(_) => {
                        AckError::error(204, unknown.to_string()).at("MSH", 1, 4)
                    }
                },
            })?;
        if let Some(peer) = peer
            && !sender.addresses.is_empty()
            && !sender.addresses.contains(&peer)
        {
            return Err(Refusal {
                code: AckCode::ApplicationReject,
                error: AckError::error(204, format!("{} does not send from {peer}", sender.key))
                    .at("MSH", 1, 4),
            });
        }
        Ok(sender)
    }

    /// Applies a message from `sender` as `caller` (the sender's identity, built by the edge
    /// that received it), exactly once per control id.
    pub fn receive(
        &self,
        caller: &Caller,
        sender: &Sender,
        message: &Message,
        bytes: &[u8],
    ) -> Received {
        let (kind, trigger, _) = message.message_type();
        let (kind, trigger) = (kind.unwrap_or(""), trigger.unwrap_or(""));
        if !sender.accepts(kind, trigger) {
            return Received::refused(
                Refusal {
                    code: AckCode::ApplicationReject,
                    error: AckError::error(
                        200,
                        format!(
                            "{} may not send {kind}^{trigger} messages here (it is configured for {})",
                            sender.key,
                            sender.accept.join(", ")
                        ),
                    )
                    .at("MSH", 1, 9),
                },
                Disposition::Refused,
            );
        }
        let control_id = message.control_id().unwrap_or("").trim().to_owned();
        if control_id.is_empty() {
            let refusal = Refusal {
                code: AckCode::ApplicationError,
                error: AckError::error(101, "the message has no control id (MSH-10)")
                    .at("MSH", 1, 10),
            };
            return self.keep(Some(sender), message, bytes, refusal);
        }
        let done = done_key(&sender.key, &control_id, message);
        match self.repository.store().checkpoint(&done) {
            Ok(Some(_)) => return duplicate(),
            Ok(None) => {}
            Err(error) => return unavailable(&error.to_string()),
        }
        let profile = Profile {
            organization: format!("Organization/{}", sender.organization),
            namespace: sender.organization.clone(),
            source: source(&sender.organization, &control_id),
            code_maps: sender.code_maps.clone(),
        };
        let mapped = match v2::map(message, &profile) {
            Ok(mapped) => mapped,
            Err(refusal) => return self.keep(Some(sender), message, bytes, refusal),
        };
        let dead = dead_key(Some(&sender.key), Some(&control_id), message, bytes);
        let mut duplicate_found = false;
        let record = json!({"sender": sender.key, "controlId": control_id, "event": mapped.event,
            "at": fhir_model::clock::now_micros()})
        .to_string();
        let result = self.repository.process_transaction_with(
            caller,
            "",
            mapped.bundle,
            BundleOptions {
                return_representation: true,
            },
            &mut |tx| {
                if !tx
                    .transaction()
                    .insert_checkpoint_if_absent(&done, &record)?
                {
                    duplicate_found = true;
                    return Err(RepositoryError::Conflict(
                        "the message was applied already".into(),
                    ));
                }
                tx.transaction().set_checkpoint(&dead, None)?;
                if let Some(name) = &sender.facility_name {
                    ensure_facility(tx, &sender.organization, name)?;
                }
                Ok(())
            },
        );
        match result {
            Ok(response) => Received {
                code: AckCode::ApplicationAccept,
                errors: Vec::new(),
                disposition: Disposition::Applied {
                    event: mapped.event,
                    response,
                },
            },
            Err(_) if duplicate_found => duplicate(),
            Err(error) => {
                let refusal = refusal_of(&error);
                self.keep(Some(sender), message, bytes, refusal)
            }
        }
    }

    /// Keeps a message that could not be read at all (no MSH, bad delimiters, bad bytes).
    pub fn keep_unreadable(&self, bytes: &[u8], error: &str) -> Option<String> {
        let id = format!("{DEAD}{:032x}", xxhash_rust::xxh3::xxh3_128(bytes));
        self.write_dead_letter(&id, None, None, None, error, bytes)
            .ok()?;
        Some(id.trim_start_matches(DEAD).to_owned())
    }

    fn keep(
        &self,
        sender: Option<&Sender>,
        message: &Message,
        bytes: &[u8],
        refusal: Refusal,
    ) -> Received {
        let control_id = message
            .control_id()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let key = dead_key(sender.map(|s| s.key.as_str()), control_id, message, bytes);
        let (kind, trigger, _) = message.message_type();
        let event = format!("{}^{}", kind.unwrap_or(""), trigger.unwrap_or(""));
        match self.write_dead_letter(
            &key,
            sender.map(|s| s.key.as_str()),
            control_id,
            Some(&event),
            &refusal.error.text,
            bytes,
        ) {
            Ok(()) => Received::refused(
                refusal,
                Disposition::DeadLettered {
                    id: key.trim_start_matches(DEAD).to_owned(),
                },
            ),
            Err(error) => unavailable(&error.to_string()),
        }
    }

    fn write_dead_letter(
        &self,
        key: &str,
        sender: Option<&str>,
        control_id: Option<&str>,
        event: Option<&str>,
        error: &str,
        bytes: &[u8],
    ) -> Result<(), RepositoryError> {
        let store = self.repository.store();
        let earlier = store
            .checkpoint(key)?
            .and_then(|text| serde_json::from_str::<Value>(&text).ok());
        let attempts = earlier
            .as_ref()
            .and_then(|kept| kept.get("attempts").and_then(Value::as_u64))
            .unwrap_or(0)
            + 1;
        let now = fhir_model::clock::now_micros();
        // When it first came: replays go in that order, so an older message never lands
        // after a newer one about the same patient.
        let first = earlier
            .as_ref()
            .and_then(|kept| kept.get("first").and_then(Value::as_i64))
            .unwrap_or(now);
        let value = json!({
            "first": first,
            "sender": sender,
            "controlId": control_id,
            "event": event,
            "error": error,
            "attempts": attempts,
            "at": now,
            "message": base64::engine::general_purpose::STANDARD.encode(bytes),
        })
        .to_string();
        let mut tx = store.begin()?;
        tx.set_checkpoint(key, Some(&value))?;
        tx.commit()?;
        tracing::warn!(key, error, "HL7 v2 message kept in the dead-letter store");
        Ok(())
    }

    /// The kept messages, in the order they first arrived.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, RepositoryError> {
        let kept = self.repository.store().checkpoints_with_prefix(DEAD)?;
        let mut letters: Vec<(i64, DeadLetter)> = kept
            .into_iter()
            .filter_map(|(key, text)| {
                let value: Value = serde_json::from_str(&text).ok()?;
                let text_of =
                    |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
                let first = value.get("first").and_then(Value::as_i64).unwrap_or(0);
                Some((
                    first,
                    DeadLetter {
                        id: key.trim_start_matches(DEAD).to_owned(),
                        sender: text_of("sender"),
                        control_id: text_of("controlId"),
                        event: text_of("event"),
                        error: text_of("error").unwrap_or_default(),
                        attempts: value.get("attempts").and_then(Value::as_u64).unwrap_or(0),
                        at: value.get("at").and_then(Value::as_i64).unwrap_or(0),
                        bytes: base64::engine::general_purpose::STANDARD
                            .decode(text_of("message")?)
                            .ok()?,
                    },
                ))
            })
            .collect();
        letters.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(letters.into_iter().map(|(_, letter)| letter).collect())
    }

    /// Applies kept messages again (all, or the one with `only`'s id), each as the caller
    /// `caller_for` makes for its sender (the edge's, as when it first arrived). Answers each
    /// message's id, what became of it and the caller it was applied as (for the edge's
    /// audit trail); applied ones leave the store.
    pub fn replay(
        &self,
        only: Option<&str>,
        caller_for: &dyn Fn(&Sender) -> Caller,
    ) -> Result<Vec<(String, Received, Option<Caller>)>, RepositoryError> {
        let mut results = Vec::new();
        for letter in self.dead_letters()? {
            if only.is_some_and(|id| id != letter.id) {
                continue;
            }
            let mut applied_as = None;
            let received = match hl7v2::parse(&letter.bytes) {
                Err(error) => {
                    let key = format!("{DEAD}{}", letter.id);
                    self.write_dead_letter(
                        &key,
                        None,
                        None,
                        None,
                        &error.to_string(),
                        &letter.bytes,
                    )?;
                    Received::refused(
                        Refusal {
                            code: AckCode::ApplicationError,
                            error: AckError::error(102, error.to_string()),
                        },
                        Disposition::DeadLettered {
                            id: letter.id.clone(),
                        },
                    )
                }
                Ok(message) => match self.sender(&message, None) {
                    Err(refusal) => Received::refused(refusal, Disposition::Refused),
                    Ok(sender) => {
                        let caller = caller_for(&sender);
                        let received = self.receive(&caller, &sender, &message, &letter.bytes);
                        applied_as = Some(caller);
                        if matches!(received.disposition, Disposition::Duplicate) {
                            // Applied by a resend meanwhile: nothing left to keep.
                            let mut tx = self.repository.store().begin()?;
                            tx.set_checkpoint(&format!("{DEAD}{}", letter.id), None)?;
                            tx.commit()?;
                        }
                        received
                    }
                },
            };
            results.push((letter.id, received, applied_as));
        }
        Ok(results)
    }
}

/// Where a version came from: the message (`meta.source`).
fn source(organization: &str, control_id: &str) -> String {
    let encoded: String = control_id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("urn:meridian:hl7v2:{organization}:{encoded}")
}

/// The mark of a message applied: its sender, control id and content (all but MSH-7, the
/// time of sending, which a sender may renew when it sends again). The same control id with
/// other content is another message (senders that reuse control ids exist) and is applied.
fn done_key(sender: &str, control_id: &str, message: &Message) -> String {
    format!("{DONE}{:032x}", content_key(sender, control_id, message))
}

fn content_key(sender: &str, control_id: &str, message: &Message) -> u128 {
    let mut content = message.clone();
    if let Some(header) = content.segments.first_mut() {
        header.set(7, hl7v2::Field::default());
    }
    let digest = xxhash_rust::xxh3::xxh3_128(content.encode().as_bytes());
    xxhash_rust::xxh3::xxh3_128(format!("{sender}\0{control_id}\0{digest:032x}").as_bytes())
}

/// A kept message's key: one per sender, control id and content, like the mark of an
/// applied message (a resend that fails again replaces it); by the bytes without a sender or
/// control id.
fn dead_key(
    sender: Option<&str>,
    control_id: Option<&str>,
    message: &Message,
    bytes: &[u8],
) -> String {
    match (sender, control_id) {
        (Some(sender), Some(control_id)) => {
            let hash = content_key(sender, control_id, message);
            format!("{DEAD}{hash:032x}")
        }
        _ => format!("{DEAD}{:032x}", xxhash_rust::xxh3::xxh3_128(bytes)),
    }
}

fn duplicate() -> Received {
    Received {
        code: AckCode::ApplicationAccept,
        errors: vec![AckError {
            code: 0,
            severity: 'I',
            location: Some(("MSH".into(), 1, 10)),
            text: "this control id was applied before; the message was not applied again".into(),
        }],
        disposition: Disposition::Duplicate,
    }
}

/// The platform could not take the message now (its store is down): AR, for the sender to
/// send it again later. Nothing is kept, since nothing can be written.
fn unavailable(error: &str) -> Received {
    Received {
        code: AckCode::ApplicationReject,
        errors: vec![AckError::error(
            207,
            format!("the platform cannot take messages now, send it again later: {error}"),
        )],
        disposition: Disposition::Refused,
    }
}

/// What a store's refusal of the mapped resources means to the sender.
fn refusal_of(error: &RepositoryError) -> Refusal {
    let (code, number) = match error {
        RepositoryError::Store(_) | RepositoryError::Internal(_) => {
            (AckCode::ApplicationReject, 207)
        }
        RepositoryError::Forbidden(_) => (AckCode::ApplicationReject, 207),
        RepositoryError::PreconditionFailed(_) => (AckCode::ApplicationError, 205),
        _ => (AckCode::ApplicationError, 207),
    };
    let text = match error {
        RepositoryError::TransactionEntry { index, error } => {
            format!("the resource mapped as entry {index} was refused: {error}")
        }
        other => other.to_string(),
    };
    Refusal {
        code,
        error: AckError::error(number, text),
    }
}

/// The Organization of a facility first known by its MSH-4, made the first time it sends.
fn ensure_facility(
    tx: &mut InTransaction<'_, '_>,
    id: &str,
    name: &str,
) -> Result<(), RepositoryError> {
    if tx.read("Organization", id)?.is_some() {
        return Ok(());
    }
    tx.update(
        json!({
            "resourceType": "Organization",
            "id": id,
            "active": true,
            "identifier": [{"system": FACILITY_SYSTEM, "value": name}],
            "name": name,
        }),
        None,
    )?;
    Ok(())
}
