//! MDM (T01 to T11): a DocumentReference, a conditional update on the unique document number
//! TXA-12. Its content is the OBX text joined (plain UTF-8 text), each ED value as its own
//! attachment, or, for the notifications that carry no content (T01, T03, T05, T07, T09),
//! an attachment naming the document without data (R4 requires one content).
//!
//! The document's date is TXA-4 (activity), else TXA-6 (transcription), as an instant: a
//! time without an offset is in the sender's zone (MSH-7's, else the region's); a date
//! without a time gives no date rather than an invented midnight.

use serde_json::{Value, json};

use super::context::{Bundle, Ctx, Write, put, put_list, reference};
use super::datatypes::{self, part};
use super::{Mapped, Refusal, encounter, patient};

pub(crate) const EVENTS: &[&str] = &[
    "T01", "T02", "T03", "T04", "T05", "T06", "T07", "T08", "T09", "T10", "T11",
];

/// Table 0271 (document completion status) → docStatus.
fn doc_status(code: &str) -> Option<&'static str> {
    Some(match code {
        "AU" | "LA" => "final",
        "DI" | "DO" | "IN" | "IP" | "PA" => "preliminary",
        "CA" => "entered-in-error",
        _ => return None,
    })
}

/// Table 0270 (document type).
const DOCUMENT_TYPES: &[(&str, &str)] = &[
    ("AR", "Autopsy report"),
    ("CD", "Cardiodiagnostics"),
    ("CN", "Consultation"),
    ("DI", "Diagnostic imaging"),
    ("DS", "Discharge summary"),
    ("ED", "Emergency department report"),
    ("HP", "History and physical examination"),
    ("OP", "Operative report"),
    ("PC", "Psychiatric consultation"),
    ("PH", "Psychiatric history and physical examination"),
    ("PN", "Procedure note"),
    ("PR", "Progress note"),
    ("SP", "Surgical pathology"),
    ("TS", "Transfer summary"),
];

pub(crate) fn map(ctx: &Ctx<'_>, event: &str) -> Result<Mapped, Refusal> {
    if !EVENTS.contains(&ctx.trigger.as_str()) {
        return Err(Refusal::reject(
            201,
            format!(
                "{event} is not taken; the MDM events mapped are {}",
                EVENTS.join(", ")
            ),
        ));
    }
    let profile = ctx.profile;
    let txa = ctx
        .first("TXA")
        .ok_or_else(|| Refusal::error(100, format!("{event} has no TXA segment")))?;
    let pid = patient::required_pid(ctx)?;
    let number = txa
        .text(12, 1)
        .ok_or_else(|| txa.missing(12, "the unique document number"))?;
    let mut bundle = Bundle::new(profile);
    let (patient, key) = patient::write(ctx, &mut bundle, &pid, Write::CreateIfAbsent)?;
    let encounter = encounter::write_if_absent(ctx, &mut bundle, &patient, &key)?;
    let status = if ctx.trigger == "T11" {
        "entered-in-error"
    } else {
        "current"
    };
    let mut document = json!({
        "resourceType": "DocumentReference",
        "identifier": [ctx.identifier("document", &number)],
        "status": status,
    });
    if let Some(code) = txa.code(17) {
        document["docStatus"] =
            json!(doc_status(&code).ok_or_else(|| txa.unknown(17, &code, "table 0271"))?);
    }
    let type_code = txa.code(2);
    let type_display = type_code
        .as_deref()
        .and_then(|c| DOCUMENT_TYPES.iter().find(|(k, _)| *k == c))
        .map(|(_, d)| *d);
    if let Some(code) = &type_code {
        document["type"] = match type_display {
            Some(display) => datatypes::table_concept("0270", code, Some(display)),
            None => txa
                .rep(2)
                .and_then(|r| datatypes::codeable(profile, r, None))
                .unwrap_or_else(|| json!({ "text": code })),
        };
    }
    document["subject"] = reference(&patient);
    let date = match txa.ts(4)? {
        Some(activity) => Some(activity),
        None => txa.ts(6)?,
    };
    put(
        &mut document,
        "date",
        date.and_then(|d| ctx.instant(&d)).map(Value::String),
    );
    let mut authors: Vec<Value> = Vec::new();
    for field in [5, 9] {
        for rep in txa.reps(field) {
            if let Some(author) = datatypes::practitioner(profile, rep)
                && !authors.contains(&author)
            {
                authors.push(author);
            }
        }
    }
    put_list(&mut document, "author", authors);
    put(
        &mut document,
        "authenticator",
        txa.rep(22)
            .and_then(|r| datatypes::practitioner(profile, r)),
    );
    put(&mut document, "custodian", ctx.organization());
    if let Some(parent) = txa.text(13, 1)
        && matches!(ctx.trigger.as_str(), "T09" | "T10")
    {
        document["relatesTo"] = json!([{
            "code": "replaces",
            "target": { "type": "DocumentReference", "identifier": ctx.identifier("document", &parent) },
        }]);
    }
    let title = type_display
        .map(str::to_owned)
        .or_else(|| txa.text(16, 1))
        .or_else(|| txa.text(2, 1));
    document["content"] = json!(content(ctx, title.as_deref())?);
    if let Some(encounter) = encounter {
        document["context"] = json!({ "encounter": [reference(&encounter)] });
    }
    let system = ctx.system("document");
    bundle.add(document, (&system, &number), Write::Update)?;
    Ok(Mapped {
        event: event.to_owned(),
        bundle: bundle.finish(),
    })
}

/// The document's content: OBX text joined into one plain-text attachment, each ED as its
/// own, or an attachment with its type and title only when no OBX carries content.
fn content(ctx: &Ctx<'_>, title: Option<&str>) -> Result<Vec<Value>, Refusal> {
    let mut lines = Vec::new();
    let mut attachments = Vec::new();
    for obx in ctx.all("OBX") {
        match obx.code(2).as_deref() {
            Some("ED") => {
                for rep in obx.reps(5) {
                    let mut attachment =
                        datatypes::attachment(rep).map_err(|e| obx.wrong(5, &e.0))?;
                    if let Some(title) = title {
                        attachment["title"] = json!(title);
                    }
                    attachments.push(json!({ "attachment": attachment }));
                }
            }
            Some("TX" | "ST" | "FT" | "CE" | "CWE") | None => {
                for rep in obx.reps(5) {
                    if let Some(text) = part(rep, 1).or_else(|| part(rep, 2)) {
                        lines.push(text);
                    }
                }
            }
            _ => {}
        }
    }
    if !lines.is_empty() {
        attachments.insert(
            0,
            json!({ "attachment": datatypes::text_attachment(&lines.join("\n"), title) }),
        );
    }
    if attachments.is_empty() {
        let mut attachment = json!({ "contentType": "text/plain; charset=utf-8" });
        attachment["title"] = json!(title.unwrap_or("document (content not sent)"));
        attachments.push(json!({ "attachment": attachment }));
    }
    Ok(attachments)
}
