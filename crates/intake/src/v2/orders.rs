//! ORM^O01 and OML^O21: per order (an ORC and the OBR after it, or an OBR alone) a
//! ServiceRequest, a conditional update on its placer number (the filler's when the placer
//! gave none), its status from the order control ORC-1 or the order status ORC-5.
//!
//! ORM orders of diets (ODS), supplies (RQD) and drugs (RXO) are not service requests: such
//! a message is refused (AR 200) rather than half mapped.

use serde_json::{Value, json};

use super::context::{Bundle, Ctx, Seg, Write, notes, put, put_list, reference};
use super::datatypes;
use super::oru::order_numbers;
use super::{Mapped, Refusal, encounter, patient};

struct Order<'m> {
    orc: Option<Seg<'m>>,
    obr: Option<Seg<'m>>,
}

fn orders<'m>(ctx: &Ctx<'m>) -> Vec<Order<'m>> {
    let mut orders: Vec<Order<'m>> = Vec::new();
    for segment in &ctx.segments {
        match segment.name() {
            "ORC" => orders.push(Order {
                orc: Some(*segment),
                obr: None,
            }),
            "OBR" => match orders.last_mut() {
                Some(order) if order.obr.is_none() => order.obr = Some(*segment),
                _ => orders.push(Order {
                    orc: None,
                    obr: Some(*segment),
                }),
            },
            _ => {}
        }
    }
    orders
}

pub(crate) fn map(ctx: &Ctx<'_>, event: &str) -> Result<Mapped, Refusal> {
    if let Some(detail) = ["RXO", "ODS", "ODT", "RQD", "RQ1"]
        .into_iter()
        .find(|name| ctx.first(name).is_some())
    {
        return Err(Refusal::reject(
            200,
            format!(
                "{event} with {detail} orders (drugs, diets or supplies) is not taken; \
                 orders of services (OBR) are"
            ),
        ));
    }
    let pid = patient::required_pid(ctx)?;
    let mut bundle = Bundle::new(ctx.profile);
    let (patient, key) = patient::write(ctx, &mut bundle, &pid, Write::CreateIfAbsent)?;
    let encounter = encounter::write_if_absent(ctx, &mut bundle, &patient, &key)?;
    let orders = orders(ctx);
    if orders.is_empty() {
        return Err(Refusal::error(
            100,
            format!("{event} has no ORC or OBR segment: there is no order"),
        ));
    }
    for order in &orders {
        let request = service_request(ctx, order, &patient, encounter.as_deref())?;
        let (system, value) = request.1;
        bundle.add(request.0, (&system, &value), Write::Update)?;
    }
    Ok(Mapped {
        event: event.to_owned(),
        bundle: bundle.finish(),
    })
}

/// Table 0119 (order control) → ServiceRequest.status; `SC` (status changed) says nothing
/// by itself, ORC-5 does.
fn control_status(code: &str) -> Option<Option<&'static str>> {
    Some(Some(match code {
        "NW" | "OK" | "RL" | "RP" | "RO" | "XO" | "XR" | "SN" | "NA" | "PA" | "CH" | "RE" => {
            "active"
        }
        "CA" | "CR" | "DC" | "DR" | "OC" | "OD" | "UA" | "UC" | "UD" => "revoked",
        "HD" | "HR" | "OH" => "on-hold",
        "SC" | "SS" => return Some(None),
        _ => return None,
    }))
}

/// Table 0038 (order status) → ServiceRequest.status.
fn order_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "A" | "IP" | "SC" => "active",
        "CM" => "completed",
        "CA" | "DC" | "RP" => "revoked",
        "HD" => "on-hold",
        "ER" => "entered-in-error",
        _ => return None,
    })
}

/// Priority codes of TQ1-9 and TQ-6 (table 0485) → ServiceRequest.priority.
fn priority(code: &str) -> Option<&'static str> {
    Some(match code {
        "S" => "stat",
        "A" => "asap",
        "R" => "routine",
        "P" | "C" | "T" => "urgent",
        _ => return None,
    })
}

fn service_request(
    ctx: &Ctx<'_>,
    order: &Order<'_>,
    patient: &str,
    encounter: Option<&str>,
) -> Result<(Value, (String, String)), Refusal> {
    let profile = ctx.profile;
    let (placer, filler) = order_numbers(order.obr.as_ref(), order.orc.as_ref());
    let (key_kind, key_value) = match (&placer, &filler) {
        (Some(placer), _) => ("placer-order", placer.clone()),
        (None, Some(filler)) => ("filler-order", filler.clone()),
        (None, None) => {
            return Err(match (&order.orc, &order.obr) {
                (Some(orc), _) => orc.missing(2, "the placer order number (or filler, ORC-3)"),
                (None, Some(obr)) => obr.missing(2, "the placer order number (or filler, OBR-3)"),
                (None, None) => Refusal::error(100, "an order without ORC or OBR"),
            });
        }
    };
    let Some(obr) = &order.obr else {
        let orc = order.orc.as_ref();
        return Err(match orc {
            Some(orc) => Refusal::error(
                100,
                format!(
                    "order {key_value} (ORC {}) has no OBR: what is ordered is required",
                    orc.sequence
                ),
            ),
            None => Refusal::error(100, "an order without OBR"),
        });
    };
    let code = obr
        .rep(4)
        .and_then(|r| datatypes::codeable(profile, r, None))
        .ok_or_else(|| obr.missing(4, "the universal service identifier"))?;
    let status = match &order.orc {
        Some(orc) => {
            let from_control = match orc.code(1) {
                Some(c) => control_status(&c).ok_or_else(|| orc.unknown(1, &c, "table 0119"))?,
                None => None,
            };
            let from_status = match orc.code(5) {
                Some(c) => Some(order_status(&c).ok_or_else(|| orc.unknown(5, &c, "table 0038"))?),
                None => None,
            };
            // A cancellation or hold in ORC-1 is the act itself; ORC-5 says where the order
            // stands otherwise.
            match (from_control, from_status) {
                (Some(control), _) if control != "active" => control,
                (_, Some(status)) => status,
                (Some(control), None) => control,
                (None, None) => "active",
            }
        }
        None => "active",
    };
    let mut identifiers = Vec::new();
    if let Some(placer) = &placer {
        identifiers.push(ctx.identifier("placer-order", placer));
    }
    if let Some(filler) = &filler {
        identifiers.push(ctx.identifier("filler-order", filler));
    }
    let mut request = json!({
        "resourceType": "ServiceRequest",
        "identifier": identifiers,
        "status": status,
        "intent": "order",
        "code": code,
        "subject": reference(patient),
    });
    put(&mut request, "encounter", encounter.map(reference));
    let tq1 = ctx
        .following(
            order.orc.as_ref().map_or(obr.index, |o| o.index),
            &["ORC", "OBR"],
        )
        .into_iter()
        .find(|s| s.name() == "TQ1");
    let priority_code = tq1
        .as_ref()
        .and_then(|t| t.code(9))
        .or_else(|| obr.text(27, 6).map(|p| p.to_ascii_uppercase()))
        .or_else(|| {
            order
                .orc
                .as_ref()
                .and_then(|o| o.text(7, 6))
                .map(|p| p.to_ascii_uppercase())
        });
    put(
        &mut request,
        "priority",
        priority_code.and_then(|p| priority(&p)).map(|p| json!(p)),
    );
    if let Some(orc) = &order.orc {
        put(
            &mut request,
            "authoredOn",
            orc.ts(9)?.map(|t| json!(ctx.date_time(&t))),
        );
    }
    let requester = order
        .orc
        .as_ref()
        .and_then(|o| o.rep(12))
        .or_else(|| obr.rep(16))
        .and_then(|r| datatypes::practitioner(profile, r));
    put(&mut request, "requester", requester);
    if let Some(tq1) = &tq1
        && let Some(start) = tq1.ts(7)?
    {
        request["occurrenceDateTime"] = json!(ctx.date_time(&start));
    }
    put_list(&mut request, "note", notes(ctx, obr.index));
    let system = ctx.system(key_kind);
    Ok((request, (system, key_value)))
}
