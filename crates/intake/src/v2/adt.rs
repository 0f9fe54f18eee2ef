//! ADT: the registration system's word on the patient and the visit. The Patient and the
//! Encounter are conditional updates (the latest message replaces them), each event setting
//! the Encounter's status; A28/A31 write the Patient alone; A40 merges two Patients.
//!
//! Events refused (AR 201): those that delete (A23, A29), move or merge accounts and visits
//! (A41 to A47 other than A40, whose targets are not Patients), the allergy and problem
//! updates (A60 and similar) and anything else not listed in `plan`.

use serde_json::{Value, json};

use super::context::{Bundle, Ctx, Seg, Write};
use super::datatypes;
use super::patient::{self, IdKind};
use super::{Mapped, Refusal, encounter};

/// What an event writes.
enum Plan {
    /// The Patient alone.
    Patient,
    /// The Patient and the visit with this status (`None`: read from PV1's dates); the
    /// visit must be named when `required`.
    Visit {
        status: encounter::Status,
        required: bool,
    },
    /// A40: PID is the surviving patient, MRG-1 the prior one.
    Merge,
}

/// The ADT events this mapping takes.
pub(crate) const EVENTS: &[&str] = &[
    "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09", "A10", "A11", "A12", "A13",
    "A14", "A15", "A16", "A21", "A22", "A25", "A26", "A27", "A28", "A31", "A38", "A40",
];

fn plan(trigger: &str) -> Option<Plan> {
    let visit = |status: &'static str| Plan::Visit {
        status: Some(status),
        required: true,
    };
    Some(match trigger {
        // Admit, transfer (and its cancellation), class changes, tracking, pending transfer
        // or discharge and their cancellations, return from leave, cancel discharge: the
        // patient is in.
        "A01" | "A02" | "A06" | "A07" | "A09" | "A10" | "A12" | "A13" | "A15" | "A16" | "A22"
        | "A25" | "A26" => visit("in-progress"),
        "A03" => visit("finished"),
        // Registration of an outpatient or emergency visit: the patient has arrived. Many
        // senders also register a person with A04 and no visit: then the Patient alone.
        "A04" => Plan::Visit {
            status: Some("arrived"),
            required: false,
        },
        "A05" | "A14" => visit("planned"),
        "A21" => visit("onleave"),
        "A11" | "A27" | "A38" => visit("cancelled"),
        "A08" => Plan::Visit {
            status: None,
            required: false,
        },
        "A28" | "A31" => Plan::Patient,
        "A40" => Plan::Merge,
        _ => return None,
    })
}

pub(crate) fn map(ctx: &Ctx<'_>) -> Result<Mapped, Refusal> {
    let plan = plan(&ctx.trigger).ok_or_else(|| {
        Refusal::reject(
            201,
            format!(
                "ADT^{} is not taken; the ADT events mapped are {}",
                ctx.trigger,
                EVENTS.join(", ")
            ),
        )
    })?;
    let mut bundle = Bundle::new(ctx.profile);
    let pid = patient::required_pid(ctx)?;
    match plan {
        Plan::Patient => {
            patient::write(ctx, &mut bundle, &pid, Write::Update)?;
        }
        Plan::Visit { status, required } => {
            let (patient, key) = patient::write(ctx, &mut bundle, &pid, Write::Update)?;
            visit(ctx, &mut bundle, &patient, &key, status, required)?;
        }
        Plan::Merge => {
            for pid in ctx.all("PID") {
                merge(ctx, &mut bundle, &pid)?;
            }
        }
    }
    Ok(Mapped {
        event: format!("ADT^{}", ctx.trigger),
        bundle: bundle.finish(),
    })
}

/// The visit of the message's PV1, replaced.
fn visit(
    ctx: &Ctx<'_>,
    bundle: &mut Bundle,
    patient: &str,
    patient_key: &(String, String),
    status: encounter::Status,
    required: bool,
) -> Result<(), Refusal> {
    let Some(pv1) = ctx.first("PV1") else {
        if required {
            return Err(Refusal::error(
                100,
                format!(
                    "ADT^{} has no PV1 segment: the visit is required",
                    ctx.trigger
                ),
            ));
        }
        return Ok(());
    };
    let Some(identifier) = encounter::key(ctx, &pv1, patient_key)? else {
        if required {
            return Err(pv1.missing(19, "the visit number, or the admit time PV1-44"));
        }
        return Ok(());
    };
    let end = if status == Some("finished") {
        match ctx.first("EVN") {
            Some(evn) => evn.ts(6)?.or(evn.ts(2)?).map(|t| ctx.date_time(&t)),
            None => None,
        }
    } else {
        None
    };
    let (system, value) = encounter::identifier_key(&identifier);
    let resource = encounter::encounter(ctx, &pv1, identifier, patient, status, end)?;
    bundle.add(resource, (&system, &value), Write::Update)?;
    Ok(())
}

/// A40 for one PID/MRG pair: the survivor replaced as PID says and linked to the prior
/// record; the prior record (found by its own medical-record number, MRG-1) made inactive
/// and linked to the survivor. The prior record keeps only its identifiers and MRG-7's
/// name: a conditional update replaces the whole resource, and what it said before stays in
/// its history.
fn merge(ctx: &Ctx<'_>, bundle: &mut Bundle, pid: &Seg<'_>) -> Result<(), Refusal> {
    let mrg = ctx
        .following(pid.index, &["PID"])
        .into_iter()
        .find(|s| s.name() == "MRG")
        .ok_or_else(|| {
            Refusal::error(
                100,
                format!(
                    "PID {} of the merge has no MRG segment after it",
                    pid.sequence
                ),
            )
        })?;
    let (survivor, _) = patient::write(ctx, bundle, pid, Write::Update)?;
    let mut prior_ids = Vec::new();
    for rep in mrg.reps(1) {
        if let Some(id) = patient::identifier(ctx, rep).map_err(|why| mrg.wrong(1, &why))? {
            prior_ids.push(id);
        }
    }
    let key = prior_ids
        .iter()
        .find(|id| id.kind == IdKind::Mrn)
        .or_else(|| prior_ids.iter().find(|id| id.kind == IdKind::Resident))
        .map(|id| (id.system.clone(), id.value.clone()))
        .ok_or_else(|| mrg.missing(1, "the prior patient's medical-record number"))?;
    let mut prior = json!({
        "resourceType": "Patient",
        "identifier": prior_ids.into_iter().map(|id| id.identifier).collect::<Vec<Value>>(),
        "active": false,
        "link": [{ "other": { "reference": survivor }, "type": "replaced-by" }],
    });
    if let Some(name) = mrg.rep(7).and_then(datatypes::human_name) {
        prior["name"] = json!([name]);
    }
    if let Some(organization) = ctx.organization() {
        prior["managingOrganization"] = organization;
    }
    let prior_url = bundle.add(prior, (&key.0, &key.1), Write::Update)?;
    if let Some(resource) = bundle.resource_mut(&survivor) {
        resource["link"] = json!([{ "other": { "reference": prior_url }, "type": "replaces" }]);
    }
    Ok(())
}
