//! ORU^R01 (and OUL^R22, laid out alike for this purpose): per OBR a DiagnosticReport, per
//! OBX under it an Observation, each a conditional update on the order's filler number (the
//! placer's when the filler gave none), so that a corrected result replaces the first.
//!
//! An OBX belongs to the OBR before it, until the next OBR or a specimen (SPM: the OBX after
//! it describe the specimen). OBX before any OBR (patient- or specimen-level observations)
//! are not mapped. ED and RP values become the report's `presentedForm` (R4's Observation has
//! no attachment value).

use serde_json::{Value, json};

use super::context::{Bundle, Ctx, Seg, Write, notes, put, put_list, reference};
use super::datatypes::{self, Invalid, part};
use super::{Mapped, Refusal, encounter, patient};

/// One order's results.
struct Group<'m> {
    obr: Seg<'m>,
    orc: Option<Seg<'m>>,
    obx: Vec<Seg<'m>>,
}

fn groups<'m>(ctx: &Ctx<'m>) -> Vec<Group<'m>> {
    let mut groups: Vec<Group<'m>> = Vec::new();
    let mut pending_orc = None;
    let mut open = false;
    for segment in &ctx.segments {
        match segment.name() {
            "ORC" => match groups.last_mut() {
                // OUL^R22 writes the ORC after its OBR.
                Some(group) if open && group.orc.is_none() && group.obx.is_empty() => {
                    group.orc = Some(*segment);
                }
                _ => pending_orc = Some(*segment),
            },
            "OBR" => {
                groups.push(Group {
                    obr: *segment,
                    orc: pending_orc.take(),
                    obx: Vec::new(),
                });
                open = true;
            }
            "OBX" if open => {
                if let Some(group) = groups.last_mut() {
                    group.obx.push(*segment);
                }
            }
            "SPM" => open = false,
            _ => {}
        }
    }
    groups
}

pub(crate) fn map(ctx: &Ctx<'_>, event: &str) -> Result<Mapped, Refusal> {
    let pid = patient::required_pid(ctx)?;
    let mut bundle = Bundle::new(ctx.profile);
    let (patient, key) = patient::write(ctx, &mut bundle, &pid, Write::CreateIfAbsent)?;
    let encounter = encounter::write_if_absent(ctx, &mut bundle, &patient, &key)?;
    let groups = groups(ctx);
    if groups.is_empty() {
        return Err(Refusal::error(
            100,
            format!("{event} has no OBR segment: there is no result to file"),
        ));
    }
    for group in &groups {
        report(ctx, &mut bundle, group, &patient, encounter.as_deref())?;
    }
    Ok(Mapped {
        event: event.to_owned(),
        bundle: bundle.finish(),
    })
}

/// The order numbers of an OBR, from OBR-2/3 or its ORC's ORC-2/3: (placer, filler).
pub(crate) fn order_numbers(
    obr: Option<&Seg<'_>>,
    orc: Option<&Seg<'_>>,
) -> (Option<String>, Option<String>) {
    let number = |field: usize| {
        obr.and_then(|s| s.text(field, 1))
            .or_else(|| orc.and_then(|s| s.text(field, 1)))
    };
    (number(2), number(3))
}

/// Table 0123 (result status of an order) → DiagnosticReport.status.
fn report_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "O" | "I" | "S" => "registered",
        "A" => "partial",
        "P" | "R" => "preliminary",
        "C" => "corrected",
        "F" => "final",
        "X" => "cancelled",
        "Y" | "Z" => "unknown",
        _ => return None,
    })
}

/// Table 0085 (observation result status) → Observation.status.
fn observation_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "C" => "corrected",
        "A" | "B" => "amended",
        "D" | "W" => "entered-in-error",
        "F" | "U" => "final",
        "I" | "O" => "registered",
        "P" | "R" | "S" => "preliminary",
        "N" | "X" => "cancelled",
        _ => return None,
    })
}

/// Table 0078 (interpretation codes) as v3 ObservationInterpretation, which took them over.
const INTERPRETATIONS: &[&str] = &[
    "<", ">", "A", "AA", "AC", "B", "CAR", "D", "DET", "E", "EX", "EXP", "H", "HH", "HM", "HU",
    "HX", "I", "IE", "IND", "L", "LL", "LU", "LX", "MS", "N", "NCL", "ND", "NEG", "NR", "NS",
    "OBX", "POS", "QCF", "R", "RR", "S", "SDD", "SYN-R", "SYN-S", "TOX", "U", "UNE", "VS", "W",
    "WR",
];

fn report(
    ctx: &Ctx<'_>,
    bundle: &mut Bundle,
    group: &Group<'_>,
    patient: &str,
    encounter: Option<&str>,
) -> Result<(), Refusal> {
    let profile = ctx.profile;
    let obr = &group.obr;
    let (placer, filler) = order_numbers(Some(obr), group.orc.as_ref());
    let (kind, number) = match (&filler, &placer) {
        (Some(filler), _) => ("filler-order", filler.clone()),
        (None, Some(placer)) => ("placer-order", placer.clone()),
        (None, None) => return Err(obr.missing(3, "the filler order number (or placer, OBR-2)")),
    };
    let code = obr
        .rep(4)
        .and_then(|r| datatypes::codeable(profile, r, None))
        .ok_or_else(|| obr.missing(4, "the universal service identifier"))?;
    let status = match obr.code(25) {
        Some(c) => report_status(&c).ok_or_else(|| obr.unknown(25, &c, "table 0123"))?,
        None => "unknown",
    };
    let effective = obr.ts(7)?;
    let mut results = Vec::new();
    let mut presented = Vec::new();
    for (position, obx) in group.obx.iter().enumerate() {
        match obx.code(2).as_deref() {
            Some("ED") => {
                for rep in obx.reps(5) {
                    presented.push(datatypes::attachment(rep).map_err(|e| obx.wrong(5, &e.0))?);
                }
            }
            Some("RP") => {
                if let Some(url) = obx
                    .text(5, 1)
                    .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                {
                    presented.push(json!({ "url": url }));
                }
            }
            _ => {
                let observation = observation(
                    ctx,
                    obx,
                    patient,
                    encounter,
                    effective.as_ref().map(|t| ctx.date_time(t)),
                )?;
                let sub_id = obx
                    .text(4, 1)
                    .or_else(|| obx.text(1, 1))
                    .unwrap_or_else(|| (position + 1).to_string());
                let obx_code = obx.text(3, 1).unwrap_or_default();
                let value = format!("{number}-{obx_code}-{sub_id}");
                let mut observation = observation;
                observation["identifier"] = json!([ctx.identifier(kind, &value)]);
                let system = ctx.system(kind);
                let url = bundle.add(observation, (&system, &value), Write::Update)?;
                results.push(reference(&url));
            }
        }
    }
    let mut identifiers = Vec::new();
    if let Some(filler) = &filler {
        identifiers.push(ctx.identifier("filler-order", filler));
    }
    if let Some(placer) = &placer {
        identifiers.push(ctx.identifier("placer-order", placer));
    }
    let category = match obr.code(24) {
        Some(section) => datatypes::table_concept("0074", &section, None),
        None => datatypes::table_concept("0074", "LAB", Some("Laboratory")),
    };
    let mut report = json!({
        "resourceType": "DiagnosticReport",
        "identifier": identifiers,
        "status": status,
        "category": [category],
        "code": code,
        "subject": reference(patient),
    });
    put(&mut report, "encounter", encounter.map(reference));
    put(
        &mut report,
        "effectiveDateTime",
        effective.map(|t| json!(ctx.date_time(&t))),
    );
    put(
        &mut report,
        "issued",
        obr.ts(22)?.and_then(|t| ctx.instant(&t)).map(Value::String),
    );
    put_list(
        &mut report,
        "performer",
        ctx.organization().into_iter().collect(),
    );
    put_list(&mut report, "result", results);
    put_list(&mut report, "presentedForm", presented);
    let system = ctx.system(kind);
    bundle.add(report, (&system, &number), Write::Update)?;
    Ok(())
}

/// One OBX as an Observation (without its identifier, which the caller knows).
pub(crate) fn observation(
    ctx: &Ctx<'_>,
    obx: &Seg<'_>,
    patient: &str,
    encounter: Option<&str>,
    order_effective: Option<String>,
) -> Result<Value, Refusal> {
    let profile = ctx.profile;
    let code = obx
        .rep(3)
        .and_then(|r| datatypes::codeable(profile, r, None))
        .ok_or_else(|| obx.missing(3, "the observation identifier"))?;
    let status = match obx.code(11) {
        Some(c) => observation_status(&c).ok_or_else(|| obx.unknown(11, &c, "table 0085"))?,
        None => return Err(obx.missing(11, "the observation result status")),
    };
    let mut observation = json!({
        "resourceType": "Observation",
        "status": status,
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory",
            "display": "Laboratory",
        }]}],
        "code": code,
        "subject": reference(patient),
    });
    put(&mut observation, "encounter", encounter.map(reference));
    let effective = obx.ts(14)?.map(|t| ctx.date_time(&t)).or(order_effective);
    put(
        &mut observation,
        "effectiveDateTime",
        effective.map(Value::String),
    );
    if let Some((key, value)) = value(ctx, obx)? {
        observation[key] = value;
    }
    let mut interpretation = Vec::new();
    for rep in obx.reps(8) {
        let Some(flag) = part(rep, 1).map(|f| f.to_ascii_uppercase()) else {
            continue;
        };
        let Some(known) = INTERPRETATIONS.iter().find(|c| **c == flag) else {
            return Err(obx.unknown(8, &flag, "table 0078"));
        };
        interpretation.push(json!({ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
            "code": known,
        }]}));
    }
    put_list(&mut observation, "interpretation", interpretation);
    if let Some(range) = obx.text(7, 1) {
        observation["referenceRange"] = json!([reference_range(&range, obx.rep(6))]);
    }
    put_list(
        &mut observation,
        "performer",
        obx.reps(16)
            .filter_map(|r| datatypes::practitioner(profile, r))
            .collect(),
    );
    put_list(&mut observation, "note", notes(ctx, obx.index));
    Ok(observation)
}

/// OBX-5 by its type OBX-2: the `value[x]` element and its value; `None` when OBX-5 is
/// empty. A value that does not read as its type is AE 102 at OBX-5; a type this mapping
/// does not take, AE 103 at OBX-2.
fn value(ctx: &Ctx<'_>, obx: &Seg<'_>) -> Result<Option<(&'static str, Value)>, Refusal> {
    let reps: Vec<&hl7v2::Repetition> = obx.reps(5).collect();
    let Some(first) = reps.first() else {
        return Ok(None);
    };
    let Some(kind) = obx.code(2) else {
        return Err(obx.missing(2, "the value type of a filled OBX-5"));
    };
    let wrong = |why: Invalid| obx.wrong(5, &why.0);
    let single = || {
        if reps.len() > 1 {
            Err(obx.wrong(5, &format!("a {kind} value does not repeat")))
        } else {
            Ok(())
        }
    };
    let texts = || -> Vec<String> {
        reps.iter()
            .filter_map(|r| {
                let parts: Vec<&str> = r
                    .components
                    .iter()
                    .filter_map(|c| c.subcomponents.first().map(String::as_str))
                    .collect();
                datatypes::clean(&parts.join("^"))
            })
            .collect()
    };
    Ok(Some(match kind.as_str() {
        "NM" => {
            single()?;
            let Some(text) = part(first, 1) else {
                return Ok(None);
            };
            let number = datatypes::decimal(&text).map_err(wrong)?;
            ("valueQuantity", datatypes::quantity(number, obx.rep(6)))
        }
        "SN" => {
            single()?;
            structured_numeric(first, obx.rep(6)).map_err(wrong)?
        }
        "ST" | "TX" | "FT" | "ID" | "IS" | "HD" => {
            let texts = texts();
            if texts.is_empty() {
                return Ok(None);
            }
            ("valueString", json!(texts.join("\n")))
        }
        "CE" | "CWE" | "CNE" | "CF" => {
            let Some(concept) = datatypes::codeable(ctx.profile, first, None) else {
                return Ok(None);
            };
            ("valueCodeableConcept", concept)
        }
        "DT" | "TS" | "DTM" => {
            single()?;
            let Some(text) = part(first, 1) else {
                return Ok(None);
            };
            let ts = datatypes::Ts::parse(&text).map_err(wrong)?;
            ("valueDateTime", json!(ctx.date_time(&ts)))
        }
        "TM" => {
            single()?;
            let Some(text) = part(first, 1) else {
                return Ok(None);
            };
            ("valueTime", json!(datatypes::time(&text).map_err(wrong)?))
        }
        other => return Err(obx.unknown(2, other, "the value types mapped (table 0125)")),
    }))
}

/// SN (comparator, number, separator/suffix, number) → a Quantity with its comparator, a
/// Range (`1-5`), a Ratio (`1:128`, `1/2`), or text for what has no FHIR number (`2+`, `<>`).
fn structured_numeric(
    rep: &hl7v2::Repetition,
    unit: Option<&hl7v2::Repetition>,
) -> Result<(&'static str, Value), Invalid> {
    let comparator = part(rep, 1).unwrap_or_default();
    let first = part(rep, 2);
    let separator = part(rep, 3).unwrap_or_default();
    let second = part(rep, 4);
    let number = |text: &Option<String>| -> Result<serde_json::Number, Invalid> {
        datatypes::decimal(text.as_deref().unwrap_or_default())
    };
    match (separator.as_str(), &second) {
        ("", None) => {
            let mut quantity = datatypes::quantity(number(&first)?, unit);
            match comparator.as_str() {
                "" | "=" => {}
                "<" | ">" | "<=" | ">=" => quantity["comparator"] = json!(comparator),
                _ => {
                    let text = format!("{comparator}{}", first.unwrap_or_default());
                    return Ok(("valueString", json!(text)));
                }
            }
            Ok(("valueQuantity", quantity))
        }
        ("-", Some(_)) if comparator.is_empty() || comparator == "=" => Ok((
            "valueRange",
            json!({
                "low": datatypes::quantity(number(&first)?, unit),
                "high": datatypes::quantity(number(&second)?, unit),
            }),
        )),
        (":" | "/", Some(_)) => Ok((
            "valueRatio",
            json!({
                "numerator": { "value": Value::Number(number(&first)?) },
                "denominator": { "value": Value::Number(number(&second)?) },
            }),
        )),
        _ => {
            let text = format!(
                "{comparator}{}{separator}{}",
                first.unwrap_or_default(),
                second.unwrap_or_default()
            );
            datatypes::clean(&text)
                .map(|t| ("valueString", json!(t)))
                .ok_or_else(|| Invalid("the structured numeric value is empty".into()))
        }
    }
}

/// OBX-7 → referenceRange: `3.5-5.5` (low and high), `>10` / `>=10` (low), `<5` / `<=5`
/// (high), in OBX-6's unit; the text is kept, since a strict bound is not an inclusive one;
/// anything else is text alone.
fn reference_range(text: &str, unit: Option<&hl7v2::Repetition>) -> Value {
    let bound = |t: &str| datatypes::decimal(t.trim()).ok();
    let mut range = json!({ "text": text });
    if let Some(rest) = text.strip_prefix("<=").or_else(|| text.strip_prefix('<')) {
        if let Some(high) = bound(rest) {
            range["high"] = datatypes::quantity(high, unit);
        }
    } else if let Some(rest) = text.strip_prefix(">=").or_else(|| text.strip_prefix('>')) {
        if let Some(low) = bound(rest) {
            range["low"] = datatypes::quantity(low, unit);
        }
    } else if let Some(at) = text
        .char_indices()
        .skip(1)
        .find(|(i, c)| {
            *c == '-'
                && text[..*i]
                    .trim_end()
                    .ends_with(|d: char| d.is_ascii_digit())
        })
        .map(|(i, _)| i)
        && let (Some(low), Some(high)) = (bound(&text[..at]), bound(&text[at + 1..]))
    {
        range["low"] = datatypes::quantity(low, unit);
        range["high"] = datatypes::quantity(high, unit);
    }
    range
}
