//! PV1 (with PV2) → Encounter, and the identifier an Encounter is found by.
//!
//! The visit number PV1-19 is the Encounter's identifier. A sender that leaves it empty still
//! names the visit by its patient and admit time (PV1-44): the identifier
//! `<medical-record number>@<PV1-44 as sent>` in the system
//! `https://meridian.example/sid/visit-derived/<namespace>` stands for it, so that the
//! messages of one stay (admit, transfer, discharge) find one Encounter. It is a system of
//! its own so that it never collides with a real visit number.

use serde_json::{Value, json};

use super::Refusal;
use super::context::{Bundle, Ctx, Seg, Write, put, put_list, reference};
use super::datatypes::{self, part, sub, table_concept};

/// The identifier an Encounter is found by: PV1-19, else the derived one; `None` when the
/// visit has neither.
pub(crate) fn key(
    ctx: &Ctx<'_>,
    pv1: &Seg<'_>,
    patient_key: &(String, String),
) -> Result<Option<Value>, Refusal> {
    if let Some(visit) = pv1.text(19, 1) {
        return Ok(Some(ctx.identifier("visit", &visit)));
    }
    let Some(admitted) = pv1.text(44, 1) else {
        return Ok(None);
    };
    datatypes::Ts::parse(&admitted).map_err(|why| pv1.wrong(44, &why.0))?;
    Ok(Some(ctx.identifier(
        "visit-derived",
        &format!("{}@{admitted}", patient_key.1),
    )))
}

/// What an event says about the visit's status; `None` reads it from PV1's dates.
pub(crate) type Status = Option<&'static str>;

/// Table 0004 (patient class) → the v3 ActCode of Encounter.class. `R` (recurring patient)
/// is ambulatory care seen again; `B` (obstetrics) is an inpatient stay; `N` (not
/// applicable) and `U` (unknown) have no ActCode and give the null flavour UNK.
fn class(pv1: &Seg<'_>) -> Result<Value, Refusal> {
    let act = |code: &str, display: &str| {
        json!({
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": code,
            "display": display,
        })
    };
    let Some(code) = pv1.code(2) else {
        return Ok(unknown_class());
    };
    Ok(match code.as_str() {
        "I" | "B" => act("IMP", "inpatient encounter"),
        "O" | "R" | "C" => act("AMB", "ambulatory"),
        "E" => act("EMER", "emergency"),
        "P" => act("PRENC", "pre-admission"),
        "N" | "U" => unknown_class(),
        _ => return Err(pv1.unknown(2, &code, "table 0004 (patient class)")),
    })
}

fn unknown_class() -> Value {
    json!({
        "system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
        "code": "UNK",
        "display": "unknown",
    })
}

/// A PL (point of care, room, bed, facility, ..., building 7, floor 8, description 9) as an
/// Encounter.location's `location`: a display, and an identifier in the sender's location
/// namespace when the point of care is given.
pub(crate) fn location(ctx: &Ctx<'_>, rep: &hl7v2::Repetition) -> Option<Value> {
    let facility = sub(rep, 4, 1);
    let parts: Vec<String> = [
        facility,
        part(rep, 7),
        part(rep, 8),
        part(rep, 1),
        part(rep, 2),
        part(rep, 3),
    ]
    .into_iter()
    .flatten()
    .collect();
    let display = part(rep, 9).or_else(|| (!parts.is_empty()).then(|| parts.join(" ")))?;
    let mut location = json!({ "type": "Location", "display": display });
    let unit: Vec<String> = [part(rep, 1), part(rep, 2), part(rep, 3)]
        .into_iter()
        .flatten()
        .collect();
    if !unit.is_empty() {
        location["identifier"] = json!({
            "system": ctx.system("location"),
            "value": unit.join("/"),
        });
    }
    Some(location)
}

/// The Encounter of `pv1` for `patient`, its status `status` (or from PV1's dates when the
/// event does not say), ended at `end` when the event gives the end.
pub(crate) fn encounter(
    ctx: &Ctx<'_>,
    pv1: &Seg<'_>,
    identifier: Value,
    patient: &str,
    status: Status,
    end: Option<String>,
) -> Result<Value, Refusal> {
    let profile = ctx.profile;
    let start = pv1.ts(44)?.map(|t| ctx.date_time(&t));
    let discharged = pv1.ts(45)?.map(|t| ctx.date_time(&t));
    let end = discharged.or(end);
    let status = status.unwrap_or(match (&start, &end) {
        (_, Some(_)) => "finished",
        (Some(_), None) => "in-progress",
        (None, None) => "unknown",
    });
    let mut encounter = json!({
        "resourceType": "Encounter",
        "identifier": [identifier],
        "status": status,
        "class": class(pv1)?,
        "subject": reference(patient),
    });
    if let Some(service) = pv1
        .rep(10)
        .and_then(|r| datatypes::codeable(profile, r, Some("HL70069")))
    {
        encounter["serviceType"] = service;
    }
    let mut participants = Vec::new();
    for (field, role, display) in [
        (7, "ATND", "attender"),
        (8, "REF", "referrer"),
        (9, "CON", "consultant"),
        (17, "ADM", "admitter"),
    ] {
        for rep in pv1.reps(field) {
            if let Some(individual) = datatypes::practitioner(profile, rep) {
                participants.push(json!({
                    "type": [{ "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "code": role,
                        "display": display,
                    }]}],
                    "individual": individual,
                }));
            }
        }
    }
    put_list(&mut encounter, "participant", participants);
    let mut period = json!({});
    put(&mut period, "start", start.map(Value::String));
    if status == "finished" {
        put(&mut period, "end", end.map(Value::String));
    }
    if period.as_object().is_some_and(|p| !p.is_empty()) {
        encounter["period"] = period;
    }
    let pv2 = ctx
        .following(pv1.index, &["PV1", "PID", "ORC", "OBR", "TXA", "SCH"])
        .into_iter()
        .find(|s| s.name() == "PV2");
    if let Some(pv2) = pv2 {
        put_list(
            &mut encounter,
            "reasonCode",
            pv2.reps(3)
                .filter_map(|r| datatypes::codeable(profile, r, None))
                .collect(),
        );
    }
    let mut hospitalization = json!({});
    put(
        &mut hospitalization,
        "admitSource",
        pv1.code(14).map(|c| table_concept("0023", &c, None)),
    );
    put(
        &mut hospitalization,
        "dischargeDisposition",
        pv1.code(36).map(|c| table_concept("0112", &c, None)),
    );
    if hospitalization.as_object().is_some_and(|h| !h.is_empty()) {
        encounter["hospitalization"] = hospitalization;
    }
    let mut locations = Vec::new();
    if let Some(current) = pv1.rep(3).and_then(|r| location(ctx, r)) {
        locations.push(json!({ "location": current, "status": "active" }));
    }
    if ctx.trigger == "A02"
        && let Some(prior) = pv1.rep(6).and_then(|r| location(ctx, r))
    {
        locations.push(json!({ "location": prior, "status": "completed" }));
    }
    put_list(&mut encounter, "location", locations);
    put(&mut encounter, "serviceProvider", ctx.organization());
    Ok(encounter)
}

/// Writes the Encounter of the message's first PV1 only if absent (the non-ADT messages:
/// results, orders, documents name the visit but never change it). `None` when there is no
/// PV1 or it names no visit.
pub(crate) fn write_if_absent(
    ctx: &Ctx<'_>,
    bundle: &mut Bundle,
    patient: &str,
    patient_key: &(String, String),
) -> Result<Option<String>, Refusal> {
    let Some(pv1) = ctx.first("PV1") else {
        return Ok(None);
    };
    let Some(identifier) = key(ctx, &pv1, patient_key)? else {
        return Ok(None);
    };
    let (system, value) = identifier_key(&identifier);
    let encounter = encounter(ctx, &pv1, identifier, patient, None, None)?;
    bundle
        .add(encounter, (&system, &value), Write::CreateIfAbsent)
        .map(Some)
}

/// An Identifier's system and value.
pub(crate) fn identifier_key(identifier: &Value) -> (String, String) {
    let text = |k: &str| {
        identifier
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (text("system"), text("value"))
}
