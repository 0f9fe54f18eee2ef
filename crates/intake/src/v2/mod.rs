//! HL7 v2 messages mapped to FHIR R4, following HL7's v2-to-FHIR implementation guide
//! (segment and datatype maps), as one transaction Bundle per message. Pure: no store, no
//! network. The service (`crate::messages`) applies the Bundle exactly once.
//!
//! What the Bundle does, so that messages can arrive again, out of order, and update each
//! other:
//! - every resource is found by an identifier in the sender's namespace (`Profile::namespace`):
//!   ADT writes the Patient and Encounter with conditional updates (`PUT Patient?identifier=`),
//!   other messages create them only if absent (`POST` with `ifNoneExist`), so a lab result
//!   never overwrites the registration an ADT message made;
//! - results, orders, appointments, immunizations and documents are conditional updates on
//!   their own identifiers (filler/placer numbers), so a corrected result replaces the first;
//! - references between entries are `urn:uuid:` full URLs.

mod adt;
mod context;
mod datatypes;

pub(crate) use datatypes::is_resident_id;
mod encounter;
mod mdm;
mod orders;
mod oru;
mod patient;
mod siu;
mod vxu;

use std::collections::HashMap;

use hl7v2::{AckCode, AckError, Message};
use serde_json::Value;

/// What the mapping needs to know about the sender.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// The institution the sender speaks for, as a reference (`Organization/county-hosp-520621`):
    /// Encounter.serviceProvider, DiagnosticReport.performer, identifiers' assigner.
    pub organization: String,
    /// The sender's namespace for its local identifiers (medical-record numbers, visit, order,
    /// appointment and document numbers): the Organization's id (`county-hosp-520621`), so a
    /// medical-record number is `https://meridian.example/sid/mrn/county-hosp-520621`.
    pub namespace: String,
    /// `meta.source` of every resource written: which message it came from.
    pub source: String,
    /// The sender's local codes translated to standard ones.
    pub code_maps: CodeMaps,
}

/// Local code → standard coding, per sender. Keys are (the v2 coding system as sent, e.g.
/// `L`, `99LAB` or empty; the code).
#[derive(Debug, Clone, Default)]
pub struct CodeMaps {
    pub codes: HashMap<(String, String), Coding>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coding {
    pub system: String,
    pub code: String,
    pub display: Option<String>,
}

/// A message mapped.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// `MSH-9` as `ADT^A01`.
    pub event: String,
    /// A transaction Bundle.
    pub bundle: Value,
}

/// Why a message is not applied: the acknowledgement code (AE: the message is wrong, AR: the
/// receiver does not take it) and the ERR segment's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: AckCode,
    pub error: AckError,
}

/// The message types mapped, for the refusal of the others.
const SUPPORTED: &str = "ADT, ORU^R01, OUL^R22, ORM^O01, OML^O21, VXU^V04, SIU, MDM";

/// Maps one message: ADT (`adt`), ORU^R01 and OUL^R22 (`oru`), ORM^O01 and OML^O21
/// (`orders`), VXU^V04 (`vxu`), SIU (`siu`) and MDM (`mdm`). Other types are refused with
/// AR 200, other events of these types with AR 201; a message whose content is wrong gets
/// AE with the table 0357 code and the segment, sequence and field at fault.
pub fn map(message: &Message, profile: &Profile) -> Result<Mapped, Refusal> {
    if message.segments.first().is_none_or(|s| s.name != "MSH") {
        return Err(Refusal::error(100, "the message does not start with MSH"));
    }
    if profile.namespace.is_empty()
        || !profile
            .namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(Refusal::reject(
            207,
            "the sender's profile has no usable namespace: its identifiers cannot be named",
        ));
    }
    let mut ctx = context::Ctx::new(message, profile);
    let (kind, trigger, _) = message.message_type();
    let kind = kind
        .and_then(datatypes::clean)
        .map(|k| k.to_ascii_uppercase())
        .ok_or_else(|| {
            Refusal::error(101, "MSH-9 (message type) is required and empty")
                .with_location("MSH", 1, 9)
        })?;
    // Before v2.3 the trigger was in EVN-1 only.
    let trigger = trigger
        .and_then(datatypes::clean)
        .or_else(|| ctx.first("EVN").and_then(|evn| evn.text(1, 1)))
        .map(|t| t.to_ascii_uppercase())
        .unwrap_or_default();
    ctx.trigger = trigger.clone();
    let event = format!("{kind}^{trigger}");
    match (kind.as_str(), trigger.as_str()) {
        ("ADT", _) => adt::map(&ctx),
        ("ORU", "R01") | ("OUL", "R22") => oru::map(&ctx, &event),
        ("ORM", "O01") | ("OML", "O21") => orders::map(&ctx, &event),
        ("VXU", "V04") => vxu::map(&ctx, &event),
        ("SIU", _) => siu::map(&ctx, &event),
        ("MDM", _) => mdm::map(&ctx, &event),
        ("ORU" | "OUL" | "ORM" | "OML" | "VXU", _) => Err(Refusal::reject(
            201,
            format!("{event} is not taken; the message types mapped are {SUPPORTED}"),
        )),
        _ => Err(Refusal::reject(
            200,
            format!("{kind} messages are not taken; the message types mapped are {SUPPORTED}"),
        )),
    }
}
