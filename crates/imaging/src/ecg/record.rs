//! The measurements of a recording as a FHIR `Observation`: code LOINC 11524-6 (EKG study),
//! one component per measurement (LOINC codes; RR, which LOINC does not code on its own, by a
//! Meridian code), each a UCUM quantity, the method naming the algorithm (`docs/ecg.md`).

use serde_json::{Value, json};

use super::Measurements;

pub const LOINC: &str = "http://loinc.org";
pub const MEASUREMENT_SYSTEM: &str = "https://meridian.example/fhir/CodeSystem/ecg-measurement";
/// The algorithm's name and version, in each Observation's `method`.
pub const METHOD: &str = "Meridian ECG measurement 1 (median beat, global intervals)";

/// The components of `measurements`: heart rate, RR, PR (when a P wave was found), QRS,
/// QT, QTc by Bazett and by Fridericia.
pub fn components(m: &Measurements) -> Vec<Value> {
    let quantity = |system: &str, code: &str, display: &str, value: f64, unit: &str| {
        json!({
            "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
            "valueQuantity": {
                "value": (value * 10.0).round() / 10.0,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
        })
    };
    let mut out = vec![
        quantity(LOINC, "8867-4", "Heart rate", m.heart_rate_bpm, "/min"),
        quantity(MEASUREMENT_SYSTEM, "rr", "R-R interval", m.rr_ms, "ms"),
    ];
    if let Some(pr) = m.pr_ms {
        out.push(quantity(LOINC, "8625-6", "P-R interval", pr, "ms"));
    }
    out.extend([
        quantity(LOINC, "8633-0", "QRS duration", m.qrs_ms, "ms"),
        quantity(LOINC, "8634-8", "Q-T interval", m.qt_ms, "ms"),
        quantity(
            LOINC,
            "76635-2",
            "Q-T interval corrected based on Bazett formula",
            m.qtc_bazett_ms,
            "ms",
        ),
        quantity(
            LOINC,
            "76634-5",
            "Q-T interval corrected based on Fridericia formula",
            m.qtc_fridericia_ms,
            "ms",
        ),
    ]);
    out
}

/// The measurement Observation `id` of a recording of `subject` (a reference), taken at
/// `effective` when known, derived from `derived_from` (the ImagingStudy or the tracing's
/// Observation), identified by `identifier` (the waveform's SOP Instance UID, or the tracing).
pub fn observation(
    id: &str,
    subject: &str,
    effective: Option<&str>,
    derived_from: &str,
    identifier: (&str, &str),
    measurements: &Measurements,
) -> Value {
    let mut observation = json!({
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "procedure",
        }]}],
        "code": {"coding": [{"system": LOINC, "code": "11524-6", "display": "EKG study"}],
            "text": "ECG measurements"},
        "subject": {"reference": subject},
        "identifier": [{"system": identifier.0, "value": identifier.1}],
        "method": {"text": METHOD},
        "derivedFrom": [{"reference": derived_from}],
        "component": components(measurements),
    });
    if let Some(effective) = effective {
        observation["effectiveDateTime"] = json!(effective);
    }
    observation
}

/// The Observation id of the measurements of a tracing known by `key` (a SOP Instance UID, or
/// `Observation/<id>`).
pub fn measurement_id(key: &str) -> String {
    format!("ecg-{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
}
