//! Alerts: a critical reading (blood pressure from 180/110 mmHg, glucose from 16.7 or at most
//! 3.9 mmol/L) becomes a `Communication` to the resident's family doctor and their institution
//! (or, without a family doctor, the institution keeping the record), so that someone acts
//! today on what a kiosk measured last night. `in-progress` means nobody has acknowledged it;
//! the doctor acknowledges it by updating it to `completed`. One Observation raises at most one
//! alert, whatever happens to it later and however often it is processed: the alert carries
//! the Observation's id as its identifier and is looked up by it first.

use repository::{InTransaction, RepositoryError};
use serde_json::{Value, json};

use crate::dates::format_day;
use crate::parties::{care_parties, derived_meta};
use crate::reading::{Measurement, is_critical, reading};
use crate::rules::Rules;

/// Meridian's code system for the alerts of the chronic-disease service.
pub const ALERT_SYSTEM: &str = "https://meridian.example/CodeSystem/chronic-alert";
/// The alert for a reading at or beyond a critical limit.
pub const CRITICAL_READING: &str = "critical-reading";
/// The identifier system of alerts: the value is the id of the Observation that raised it.
pub const ALERT_IDENTIFIER: &str = "https://meridian.example/sid/chronic-alert";

/// What raising did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raised {
    /// A new alert (`Communication/<id>`).
    New(String),
    /// The Observation had raised one already.
    Already(String),
    /// Not a critical reading.
    Nothing,
}

/// Raises the alert for `observation` if it is a critical reading and has none yet, inside the
/// consumer's transaction.
pub fn raise(
    tx: &mut InTransaction<'_, '_>,
    rules: &Rules,
    observation: &Value,
) -> Result<Raised, RepositoryError> {
    let Some(reading) = reading(rules, observation) else {
        return Ok(Raised::Nothing);
    };
    if !is_critical(rules, &reading.measurement) {
        return Ok(Raised::Nothing);
    }
    let existing = tx.search(
        "Communication",
        &[(
            "identifier".into(),
            format!("{ALERT_IDENTIFIER}|{}", reading.id),
        )],
        1,
    )?;
    if let Some(record) = existing.first() {
        return Ok(Raised::Already(record.id.clone()));
    }
    let patient_id = &reading.patient["Patient/".len()..];
    let parties = match tx.read("Patient", patient_id)? {
        Some((_, patient)) => care_parties(tx, &patient)?,
        None => Default::default(),
    };
    let mut recipients = Vec::new();
    if let Some(doctor) = &parties.family_doctor {
        recipients.push(json!({"reference": doctor}));
    }
    let institution = match &parties.family_doctor {
        Some(_) => parties.responsible_organization(),
        None => parties.managing_organization.as_deref(),
    };
    if let Some(institution) = institution {
        recipients.push(json!({"reference": institution}));
    }
    let when = reading.day.map(format_day).unwrap_or_default();
    let (what_zh, what_en) = match reading.measurement {
        Measurement::BloodPressure { .. } => ("血压", "blood pressure"),
        Measurement::Glucose { .. } => ("血糖", "blood glucose"),
    };
    let value = reading.measurement.describe();
    let text = format!(
        "危急值提醒：{what_zh} {value}（测量日期 {when}），请立即处理并随访。\
         Critical reading: {what_en} {value} measured on {when}; act now and follow up."
    );
    let mut alert = json!({
        "resourceType": "Communication",
        "meta": derived_meta(observation, institution),
        "identifier": [{"system": ALERT_IDENTIFIER, "value": reading.id}],
        "status": "in-progress",
        "category": [{"coding": [{"system": ALERT_SYSTEM, "code": CRITICAL_READING,
            "display": "Critical reading"}], "text": "危急值提醒"}],
        "priority": "urgent",
        "subject": {"reference": reading.patient},
        "about": [{"reference": format!("Observation/{}", reading.id)}],
        "sent": fhir_model::clock::format_instant(fhir_model::clock::now_micros()),
    });
    if !recipients.is_empty() {
        alert["recipient"] = Value::Array(recipients);
    }
    alert["payload"] = json!([{"contentString": text}]);
    let id = tx.create(alert)?.id;
    tracing::info!(alert = %id, observation = %reading.id, patient = %reading.patient,
        "chronic: critical reading alert raised");
    Ok(Raised::New(id))
}
