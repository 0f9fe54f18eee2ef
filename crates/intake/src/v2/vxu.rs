//! VXU^V04: per RXA an Immunization, a conditional update on the filler order number of its
//! ORC, or, when the sender gave none, on a key derived from what identifies a dose: the
//! patient's number, the vaccine code and the administration time
//! (`<mrn>-<RXA-5.1>-<RXA-3>`, in `https://meridian.example/sid/immunization-derived/<ns>`).
//!
//! The OBX after an RXA (funding source, eligibility, VIS documents) are not mapped.

use serde_json::{Value, json};

use super::context::{Bundle, Ctx, Seg, Write, put, put_list, reference};
use super::datatypes::{self, part};
use super::{Mapped, Refusal, patient};

pub(crate) fn map(ctx: &Ctx<'_>, event: &str) -> Result<Mapped, Refusal> {
    let pid = patient::required_pid(ctx)?;
    let mut bundle = Bundle::new(ctx.profile);
    let (patient, key) = patient::write(ctx, &mut bundle, &pid, Write::CreateIfAbsent)?;
    let mut orc = None;
    let mut any = false;
    for segment in &ctx.segments {
        match segment.name() {
            "ORC" => orc = Some(*segment),
            "RXA" => {
                any = true;
                let (resource, system, value) =
                    immunization(ctx, segment, orc.take().as_ref(), &patient, &key)?;
                bundle.add(resource, (&system, &value), Write::Update)?;
            }
            _ => {}
        }
    }
    if !any {
        return Err(Refusal::error(
            100,
            format!("{event} has no RXA segment: there is no immunization"),
        ));
    }
    Ok(Mapped {
        event: event.to_owned(),
        bundle: bundle.finish(),
    })
}

fn immunization(
    ctx: &Ctx<'_>,
    rxa: &Seg<'_>,
    orc: Option<&Seg<'_>>,
    patient: &str,
    patient_key: &(String, String),
) -> Result<(Value, String, String), Refusal> {
    let profile = ctx.profile;
    let vaccine = rxa
        .rep(5)
        .and_then(|r| datatypes::codeable(profile, r, Some("CVX")))
        .ok_or_else(|| rxa.missing(5, "the administered code"))?;
    let occurred = rxa
        .ts(3)?
        .ok_or_else(|| rxa.missing(3, "the date/time of administration"))?;
    let (kind, value) = match orc.and_then(|o| o.text(3, 1)) {
        Some(filler) => ("immunization", filler),
        None => (
            "immunization-derived",
            format!(
                "{}-{}-{}",
                patient_key.1,
                rxa.text(5, 1).unwrap_or_default(),
                rxa.text(3, 1).unwrap_or_default()
            ),
        ),
    };
    // Table 0322 (completion status); empty means complete. RXA-21 D (delete) withdraws it.
    let completion = rxa.code(20);
    let mut status = match completion.as_deref() {
        None | Some("CP") | Some("PA") => "completed",
        Some("RE") | Some("NA") => "not-done",
        Some(other) => return Err(rxa.unknown(20, other, "table 0322")),
    };
    if rxa.code(21).as_deref() == Some("D") {
        status = "entered-in-error";
    }
    let mut immunization = json!({
        "resourceType": "Immunization",
        "identifier": [ctx.identifier(kind, &value)],
        "status": status,
        "vaccineCode": vaccine,
        "patient": reference(patient),
        "occurrenceDateTime": ctx.date_time(&occurred),
    });
    if status == "not-done" {
        let reason = rxa
            .rep(18)
            .and_then(|r| datatypes::codeable(profile, r, None))
            .unwrap_or_else(|| {
                let code = if completion.as_deref() == Some("RE") {
                    ("PATOBJ", "patient objection")
                } else {
                    ("OSTOCK", "product out of stock")
                };
                json!({ "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                    "code": code.0,
                    "display": code.1,
                }], "text": if completion.as_deref() == Some("RE") { "refused" } else { "not administered" } })
            });
        immunization["statusReason"] = reason;
    }
    if completion.as_deref() == Some("PA") {
        immunization["isSubpotent"] = json!(true);
    }
    // RXA-9 `00` is a new record of an administration this sender made; `01` and the other
    // codes of NIP001 are historical records from elsewhere.
    if let Some(source) = rxa.text(9, 1) {
        immunization["primarySource"] = json!(source == "00");
    }
    put(
        &mut immunization,
        "lotNumber",
        rxa.text(15, 1).map(Value::String),
    );
    put(
        &mut immunization,
        "expirationDate",
        rxa.ts(16)?.map(|t| json!(t.date())),
    );
    if let Some(manufacturer) = rxa.rep(17) {
        let mut reference = json!({ "type": "Organization" });
        if let Some(code) = part(manufacturer, 1) {
            let system = part(manufacturer, 3)
                .and_then(|s| datatypes::coding_system(&s))
                .unwrap_or_else(|| "http://hl7.org/fhir/sid/mvx".into());
            reference["identifier"] = json!({ "system": system, "value": code });
        }
        if let Some(name) = part(manufacturer, 2) {
            reference["display"] = json!(name);
        }
        if reference.as_object().is_some_and(|o| o.len() > 1) {
            immunization["manufacturer"] = reference;
        }
    }
    // RXA-6 999 is "amount unknown".
    if let Some(amount) = rxa.text(6, 1).filter(|a| a != "999") {
        let number = datatypes::decimal(&amount).map_err(|e| rxa.wrong(6, &e.0))?;
        immunization["doseQuantity"] = datatypes::quantity(number, rxa.rep(7));
    }
    let rxr = ctx
        .following(rxa.index, &["RXA", "ORC"])
        .into_iter()
        .find(|s| s.name() == "RXR");
    if let Some(rxr) = rxr {
        put(
            &mut immunization,
            "route",
            rxr.rep(1)
                .and_then(|r| datatypes::codeable(profile, r, Some("HL70162"))),
        );
        put(
            &mut immunization,
            "site",
            rxr.rep(2)
                .and_then(|r| datatypes::codeable(profile, r, Some("HL70163"))),
        );
    }
    let mut performers = Vec::new();
    let roles = [
        (rxa.rep(10), "AP", "Administering Provider"),
        (orc.and_then(|o| o.rep(12)), "OP", "Ordering Provider"),
    ];
    for (rep, code, display) in roles {
        if let Some(actor) = rep.and_then(|r| datatypes::practitioner(profile, r)) {
            performers.push(json!({
                "function": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0443",
                    "code": code,
                    "display": display,
                }]},
                "actor": actor,
            }));
        }
    }
    put_list(&mut immunization, "performer", performers);
    let system = ctx.system(kind);
    Ok((immunization, system, value))
}
