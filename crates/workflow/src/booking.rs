//! Appointments and the capacity they take. A `Slot` is taken in the transaction of the
//! `Appointment` version that books it: the hook reads the slot inside that transaction,
//! refuses one that is not free (409), and writes it `busy`; two bookings of one slot are two
//! writes of that slot, and the store commits one of them first, so the other is checked
//! again against `busy`. Cancelling (or `noshow`, `entered-in-error`, a delete, moving to
//! another slot) frees it.
//!
//! A slot carrying the `reserved-for` extension (`referral`) is capacity a hospital keeps for
//! patients its family doctors refer: until `release_before` its start, only a clinician of
//! the referring institution books it, with the appointment `basedOn` an active referral
//! (`ServiceRequest`) that institution holds and that names the slot's hospital as performer.
//! After that it is open to everyone.

use caller::{Actor, Caller};
use fhir_model::{IssueCode, clock};
use repository::{InTransaction, Reader, Repository, RepositoryError, Written};
use serde_json::{Value, json};
use store::VersionRecord;

use crate::WorkflowConfig;
use crate::vocabulary::RESERVED_FOR;

/// Appointment states that hold their slots.
const HOLDING: &[&str] = &["pending", "booked", "arrived", "fulfilled", "checked-in"];

fn unprocessable(message: impl Into<String>, expression: &str) -> RepositoryError {
    RepositoryError::Unprocessable(vec![
        fhir_model::Issue::error(IssueCode::BusinessRule, message).at(expression),
    ])
}

/// The slots (`Slot/ID`) an appointment holds in its state.
fn held_slots(appointment: Option<&Value>) -> Vec<String> {
    let Some(appointment) = appointment else {
        return Vec::new();
    };
    let status = appointment.get("status").and_then(Value::as_str);
    if !status.is_some_and(|s| HOLDING.contains(&s)) {
        return Vec::new();
    }
    appointment
        .get("slot")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("reference").and_then(Value::as_str))
        .filter(|r| r.starts_with("Slot/"))
        .map(str::to_owned)
        .collect()
}

/// Whether a slot is reserved for referrals at `now`, and until when.
pub fn reserved_until(slot: &Value, config: &WorkflowConfig) -> Option<i64> {
    let reserved = slot
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|e| {
            e.get("url").and_then(Value::as_str) == Some(RESERVED_FOR)
                && e.get("valueCode").and_then(Value::as_str) == Some("referral")
        });
    if !reserved {
        return None;
    }
    let start = slot_start(slot)?;
    Some(start - config.release_before)
}

fn slot_start(slot: &Value) -> Option<i64> {
    slot.get("start")
        .and_then(Value::as_str)
        .and_then(clock::parse_instant)
}

/// Whether `referral` (a stored ServiceRequest held by `custodian`) lets `caller` book
/// reserved capacity of `hospital`.
fn referral_admits(
    caller: &Caller,
    referral: &Value,
    custodian: Option<&str>,
    hospital: Option<&str>,
) -> bool {
    let clinician = matches!(&caller.actor, Actor::User(user) if !user.starts_with("Patient/"))
        || matches!(caller.actor, Actor::Client(_));
    let Some(organization) = caller.organization.as_deref() else {
        return false;
    };
    clinician
        && custodian == Some(organization)
        && referral.get("status").and_then(Value::as_str) == Some("active")
        && hospital.is_some_and(|hospital| {
            search::registry::parties_of("ServiceRequest", referral)
                .iter()
                .any(|p| p == hospital)
        })
}

fn based_on(appointment: &Value) -> impl Iterator<Item = &str> {
    appointment
        .get("basedOn")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("reference").and_then(Value::as_str))
        .filter_map(|r| r.strip_prefix("ServiceRequest/"))
}

/// Takes and frees the slots an Appointment version changes, inside its transaction.
pub(crate) fn appointment_written(
    tx: &mut InTransaction<'_, '_>,
    config: &WorkflowConfig,
    record: &VersionRecord,
    previous: Option<&Value>,
    next: Option<&Value>,
) -> Result<(), RepositoryError> {
    let before = held_slots(previous);
    let after = held_slots(next);
    for slot in after.iter().filter(|s| !before.contains(s)) {
        let appointment = next.expect("held slots come from a written appointment");
        take(tx, config, record, appointment, slot)?;
    }
    for slot in before.iter().filter(|s| !after.contains(s)) {
        release(tx, slot)?;
    }
    Ok(())
}

fn take(
    tx: &mut InTransaction<'_, '_>,
    config: &WorkflowConfig,
    record: &VersionRecord,
    appointment: &Value,
    slot_reference: &str,
) -> Result<(), RepositoryError> {
    let id = slot_reference.trim_start_matches("Slot/");
    let Some((slot_record, mut slot)) = tx.read("Slot", id)? else {
        return Err(unprocessable(
            format!("{slot_reference} does not exist"),
            "Appointment.slot",
        ));
    };
    let status = slot.get("status").and_then(Value::as_str).unwrap_or("");
    if status != "free" {
        return Err(RepositoryError::Conflict(format!(
            "{slot_reference} is not free (it is {status}): choose another slot"
        )));
    }
    if slot_start(&slot).is_some_and(|start| start < record.last_updated) {
        return Err(unprocessable(
            format!("{slot_reference} has already started"),
            "Appointment.slot",
        ));
    }
    if let Some(until) = reserved_until(&slot, config)
        && record.last_updated < until
    {
        let caller = tx.ctx().clone();
        let mut admitted = false;
        for referral in based_on(appointment).map(str::to_owned).collect::<Vec<_>>() {
            if let Some((referral_record, referral)) = tx.read("ServiceRequest", &referral)?
                && referral_admits(
                    &caller,
                    &referral,
                    referral_record.custodian.as_deref(),
                    slot_record.custodian.as_deref(),
                )
            {
                admitted = true;
                break;
            }
        }
        if !admitted {
            return Err(RepositoryError::Forbidden(format!(
                "{slot_reference} is reserved for referred patients until {}: a clinician of the referring institution books it, with the appointment basedOn the active referral (ServiceRequest) that names this hospital as performer",
                clock::format_instant(until)
            )));
        }
    }
    slot["status"] = json!("busy");
    tx.update(slot, Some(slot_record.version))?;
    Ok(())
}

fn release(tx: &mut InTransaction<'_, '_>, slot_reference: &str) -> Result<(), RepositoryError> {
    let id = slot_reference.trim_start_matches("Slot/");
    if let Some((record, mut slot)) = tx.read("Slot", id)?
        && slot.get("status").and_then(Value::as_str) == Some("busy")
    {
        slot["status"] = json!("free");
        tx.update(slot, Some(record.version))?;
    }
    Ok(())
}

/// The free slots matching `params` (any Slot search parameters) that `caller` may book now:
/// reserved capacity only with a `referral` (`ServiceRequest/ID`) that admits the caller, or
/// once it is released.
pub fn find(
    reader: &Reader<'_>,
    config: &WorkflowConfig,
    params: &[(String, String)],
    now: i64,
) -> Result<Vec<(VersionRecord, Value)>, RepositoryError> {
    let mut query: Vec<(String, String)> = Vec::new();
    let mut referral = None;
    let mut count = 50usize;
    for (name, value) in params {
        match name.as_str() {
            "referral" => referral = Some(value.trim_start_matches("ServiceRequest/").to_owned()),
            "_count" => {
                count = value.parse().map_err(|_| {
                    RepositoryError::invalid(IssueCode::Value, "_count is a number")
                })?;
                count = count.clamp(1, 500);
            }
            "status" => {}
            _ => query.push((name.clone(), value.clone())),
        }
    }
    query.push(("status".into(), "free".into()));
    query.push(("start".into(), format!("ge{}", clock::format_instant(now))));
    query.push(("_sort".into(), "start".into()));
    let referral = match referral {
        Some(id) => Some(visible(reader, "ServiceRequest", &id)?),
        None => None,
    };
    let mut found = Vec::new();
    // Reserved slots the caller may not book are read and passed over; a page of them
    // cannot hide the bookable ones behind it for long.
    for record in reader.find("Slot", &query, count * 4)? {
        let slot = repository::parse_stored(&record)?;
        let bookable = match reserved_until(&slot, config) {
            None => true,
            Some(until) if now >= until => true,
            Some(_) => referral.as_ref().is_some_and(|(r, value)| {
                referral_admits(
                    reader.caller(),
                    value,
                    r.custodian.as_deref(),
                    record.custodian.as_deref(),
                )
            }),
        };
        if bookable {
            found.push((record, slot));
            if found.len() == count {
                break;
            }
        }
    }
    Ok(found)
}

/// The current version of a resource the reader may see; 404 otherwise.
fn visible(
    reader: &Reader<'_>,
    resource_type: &str,
    id: &str,
) -> Result<(VersionRecord, Value), RepositoryError> {
    match reader.current(resource_type, id)? {
        Some(record) if !record.is_deleted() => {
            let value = repository::parse_stored(&record)?;
            Ok((record, value))
        }
        _ => Err(RepositoryError::NotFound(format!(
            "{resource_type}/{id} is not known here"
        ))),
    }
}

/// `$book`: completes an appointment from its slot (start and end when absent, `booked` when
/// no status is given) and creates it: the slot is taken in the same transaction.
pub fn book(
    repository: &Repository,
    caller: &Caller,
    mut appointment: Value,
) -> Result<Written, RepositoryError> {
    if appointment.get("resourceType").and_then(Value::as_str) != Some("Appointment") {
        return Err(RepositoryError::invalid(
            IssueCode::Invalid,
            "$book takes an Appointment (or Parameters with an 'appointment' resource)",
        ));
    }
    let slots = appointment
        .get("slot")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(first) = slots
        .first()
        .and_then(|s| s.get("reference"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("Slot/"))
    else {
        return Err(unprocessable(
            "$book needs the slot to book (Appointment.slot)",
            "Appointment.slot",
        ));
    };
    let reader = repository.reader(caller);
    let (_, slot) = visible(&reader, "Slot", first)?;
    if appointment.get("status").is_none() {
        appointment["status"] = json!("booked");
    }
    for key in ["start", "end"] {
        if appointment.get(key).is_none()
            && let Some(value) = slot.get(key)
        {
            appointment[key] = value.clone();
        }
    }
    repository.create(caller, appointment, None)
}

/// Check-in: the appointment today (the day of `now` in the region's time, UTC+8) of any of
/// `patients` (one resident's registrations, as the electronic health code resolved them),
/// in a slot of the caller's institution, becomes `checked-in`. Returns it.
pub fn check_in(
    repository: &Repository,
    caller: &Caller,
    patients: &[String],
    now: i64,
) -> Result<Value, RepositoryError> {
    const REGION_OFFSET: i64 = 8 * 3_600_000_000;
    const DAY: i64 = 24 * 3_600_000_000;
    let local_midnight = (now + REGION_OFFSET).div_euclid(DAY) * DAY - REGION_OFFSET;
    let day = [
        (
            "date".to_owned(),
            format!("ge{}", clock::format_instant(local_midnight)),
        ),
        (
            "date".to_owned(),
            format!("lt{}", clock::format_instant(local_midnight + DAY)),
        ),
        ("status".to_owned(), "booked,arrived".to_owned()),
    ];
    repository.run_in_transaction(caller, |tx| {
        for patient in patients {
            let mut params = day.to_vec();
            params.push(("patient".into(), patient.clone()));
            for record in tx.search("Appointment", &params, 20)? {
                let mut appointment = repository::parse_stored(&record)?;
                // Only at the institution whose slot it is.
                let mut here = caller.organization.is_none();
                for slot in held_slots(Some(&appointment)) {
                    if let Some((slot_record, _)) =
                        tx.read("Slot", slot.trim_start_matches("Slot/"))?
                        && slot_record.custodian.is_some()
                        && slot_record.custodian == caller.organization
                    {
                        here = true;
                    }
                }
                if !here {
                    continue;
                }
                appointment["status"] = json!("checked-in");
                for participant in appointment
                    .get_mut("participant")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if participant["actor"]["reference"].as_str() == Some(patient.as_str()) {
                        participant["status"] = json!("accepted");
                    }
                }
                tx.update(appointment.clone(), Some(record.version))?;
                let (_, stored) = tx.read("Appointment", &record.id)?.ok_or_else(|| {
                    RepositoryError::Internal("a checked-in appointment vanished".into())
                })?;
                return Ok(stored);
            }
        }
        Err(RepositoryError::NotFound(
            "this resident has no booked appointment today at this institution".into(),
        ))
    })
}
