//! SIU (S12 new, S13 rescheduled, S14 modified, S15 cancelled, S16 discontinued, S17
//! deleted, S26 no-show): an Appointment, a conditional update on the filler's appointment
//! number SCH-2 (the placer's SCH-1 when the filler gave none).
//!
//! R4's invariants shape the times: app-2 (start and end together or neither) and app-3
//! (only proposed, cancelled and waitlisted appointments may lack them). A booked appointment
//! whose times cannot be read is AE 101; a cancelled one keeps its times when both are known.
//! The times come from SCH-11 (TQ-4 start, TQ-5 end), else TQ1-7/8, else a resource's start
//! (AIS-4, AIL-6, AIP-6) plus its duration, else SCH-9/10's duration after that start.

use serde_json::{Value, json};

use super::context::{Bundle, Ctx, Seg, Write, notes, put, put_list, reference};
use super::datatypes::{self, Ts, part};
use super::{Mapped, Refusal, encounter, patient};

pub(crate) const EVENTS: &[&str] = &["S12", "S13", "S14", "S15", "S16", "S17", "S26"];

fn status(trigger: &str) -> Option<&'static str> {
    Some(match trigger {
        "S12" | "S13" | "S14" => "booked",
        "S15" | "S16" => "cancelled",
        "S17" => "entered-in-error",
        "S26" => "noshow",
        _ => return None,
    })
}

pub(crate) fn map(ctx: &Ctx<'_>, event: &str) -> Result<Mapped, Refusal> {
    let status = status(&ctx.trigger).ok_or_else(|| {
        Refusal::reject(
            201,
            format!(
                "{event} is not taken; the SIU events mapped are {}",
                EVENTS.join(", ")
            ),
        )
    })?;
    let sch = ctx
        .first("SCH")
        .ok_or_else(|| Refusal::error(100, format!("{event} has no SCH segment")))?;
    let pid = patient::required_pid(ctx)?;
    let mut bundle = Bundle::new(ctx.profile);
    let (patient, _) = patient::write(ctx, &mut bundle, &pid, Write::CreateIfAbsent)?;
    let (kind, number) = match (sch.text(2, 1), sch.text(1, 1)) {
        (Some(filler), _) => ("appointment", filler),
        (None, Some(placer)) => ("appointment-placer", placer),
        (None, None) => return Err(sch.missing(2, "the filler appointment id (or SCH-1)")),
    };
    let appointment = appointment(ctx, &sch, status, &patient, kind, &number)?;
    let system = ctx.system(kind);
    bundle.add(appointment, (&system, &number), Write::Update)?;
    Ok(Mapped {
        event: event.to_owned(),
        bundle: bundle.finish(),
    })
}

/// A duration in a CE unit (`min`, `s`, `h`, `d`; minutes when none) as minutes.
fn minutes(amount: &str, unit: Option<String>) -> Option<i64> {
    let amount: i64 = amount.trim().parse().ok()?;
    let unit = unit.unwrap_or_else(|| "min".into()).to_ascii_lowercase();
    Some(match unit.as_str() {
        "s" | "sec" | "second" | "seconds" => (amount + 59) / 60,
        "min" | "m" | "minute" | "minutes" => amount,
        "h" | "hr" | "hour" | "hours" => amount.checked_mul(60)?,
        "d" | "day" | "days" => amount.checked_mul(1440)?,
        _ => return None,
    })
}

/// Start and end from what the message gives (see the module).
fn times(ctx: &Ctx<'_>, sch: &Seg<'_>) -> Result<(Option<Ts>, Option<Ts>), Refusal> {
    let start = sch.ts_component(11, 4)?;
    let end = sch.ts_component(11, 5)?;
    if start.is_some() && end.is_some() {
        return Ok((start, end));
    }
    if let Some(tq1) = ctx.first("TQ1") {
        let (s, e) = (tq1.ts(7)?, tq1.ts(8)?);
        if s.is_some() && e.is_some() {
            return Ok((s, e));
        }
    }
    for (name, start_field, duration_field) in [("AIS", 4, 7), ("AIL", 6, 9), ("AIP", 6, 9)] {
        for resource in ctx.all(name) {
            let Some(start) = resource.ts(start_field)? else {
                continue;
            };
            let duration = resource
                .text(duration_field, 1)
                .and_then(|amount| minutes(&amount, resource.text(duration_field + 1, 1)));
            if let Some(end) = duration.and_then(|m| start.plus_minutes(m, ctx.offset)) {
                return Ok((Some(start), Some(end)));
            }
        }
    }
    let start = start.or(ctx.first("TQ1").map(|t| t.ts(7)).transpose()?.flatten());
    if let Some(start) = start {
        let duration = sch
            .text(9, 1)
            .and_then(|amount| minutes(&amount, sch.text(10, 1)));
        if let Some(end) = duration.and_then(|m| start.plus_minutes(m, ctx.offset)) {
            return Ok((Some(start), Some(end)));
        }
    }
    Ok((None, None))
}

/// Table 0278 (filler status of a resource) → the participant's status.
fn participation(code: Option<String>) -> &'static str {
    match code.map(|c| c.to_ascii_lowercase()).as_deref() {
        Some("booked" | "complete" | "started" | "overbook") => "accepted",
        Some("pending" | "waitlist" | "blocked") => "tentative",
        Some("cancelled" | "deleted" | "dc" | "noshow") => "declined",
        _ => "needs-action",
    }
}

fn appointment(
    ctx: &Ctx<'_>,
    sch: &Seg<'_>,
    status: &str,
    patient: &str,
    kind: &str,
    number: &str,
) -> Result<Value, Refusal> {
    let profile = ctx.profile;
    let (start, end) = times(ctx, sch)?;
    let instant = |ts: &Ts, seg: &Seg<'_>, field: usize| {
        ctx.instant(ts)
            .ok_or_else(|| seg.wrong(field, "an appointment's time needs hours and minutes"))
    };
    let mut identifiers = vec![ctx.identifier(kind, number)];
    if kind == "appointment"
        && let Some(placer) = sch.text(1, 1)
    {
        identifiers.push(ctx.identifier("appointment-placer", &placer));
    }
    let mut appointment = json!({
        "resourceType": "Appointment",
        "identifier": identifiers,
        "status": status,
    });
    match (start, end) {
        (Some(start), Some(end)) => {
            appointment["start"] = json!(instant(&start, sch, 11)?);
            appointment["end"] = json!(instant(&end, sch, 11)?);
        }
        _ if status == "cancelled" => {}
        _ => {
            return Err(sch.missing(
                11,
                "the appointment's start and end (TQ-4/5, TQ1-7/8, or a resource's start \
                 and duration)",
            ));
        }
    }
    let ais = ctx.first("AIS");
    put(
        &mut appointment,
        "appointmentType",
        sch.rep(7)
            .and_then(|r| datatypes::codeable(profile, r, Some("HL70276"))),
    );
    let description = ais
        .as_ref()
        .and_then(|a| a.text(3, 2))
        .or_else(|| sch.text(7, 2))
        .or_else(|| sch.text(7, 1));
    put(
        &mut appointment,
        "description",
        description.map(Value::String),
    );
    if let Some(ais) = &ais {
        put_list(
            &mut appointment,
            "serviceType",
            ais.reps(3)
                .filter_map(|r| datatypes::codeable(profile, r, None))
                .collect(),
        );
    }
    let comments: Vec<String> = notes(ctx, sch.index)
        .iter()
        .chain(
            ctx.first("TQ1")
                .map(|t| notes(ctx, t.index))
                .unwrap_or_default()
                .iter(),
        )
        .filter_map(|n| n.get("text").and_then(Value::as_str).map(str::to_owned))
        .collect();
    if !comments.is_empty() {
        appointment["comment"] = json!(comments.join("\n"));
    }
    let mut participants = vec![json!({
        "actor": reference(patient),
        "required": "required",
        "status": "accepted",
    })];
    for aip in ctx.all("AIP") {
        for rep in aip.reps(3) {
            if let Some(actor) = datatypes::practitioner(profile, rep) {
                let mut participant = json!({
                    "actor": actor,
                    "status": participation(aip.text(12, 1)),
                });
                if let Some(role) = aip
                    .rep(4)
                    .and_then(|r| datatypes::codeable(profile, r, None))
                {
                    participant["type"] = json!([role]);
                }
                participants.push(participant);
            }
        }
    }
    for ail in ctx.all("AIL") {
        if let Some(location) = ail.rep(3).and_then(|r| encounter::location(ctx, r)) {
            participants.push(json!({
                "actor": location,
                "status": participation(ail.text(12, 1)),
            }));
        }
    }
    appointment["participant"] = Value::Array(participants);
    if let Some(reason) = sch.rep(6).and_then(|r| part(r, 2).or_else(|| part(r, 1))) {
        // SCH-6 (event reason) says why this message was sent, e.g. why it was cancelled.
        if status == "cancelled" {
            appointment["cancelationReason"] = json!({ "text": reason });
        }
    }
    Ok(appointment)
}
