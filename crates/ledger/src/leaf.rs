//! What the log records, and the exact bytes of a leaf.
//!
//! Logged: every version of a result (`DiagnosticReport`, `ImagingStudy`, `DocumentReference`,
//! an `Observation` of the laboratory or imaging category), of a `Consent` and of an
//! `AuditEvent`. An Observation stays logged once one of its versions was a result: otherwise
//! re-filing a result under another category would take its later versions out of the record.

use serde_json::Value;

use crate::hash::sha256_hex;

const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// Whether every version of resources of this type is logged, whatever it holds.
pub fn always_logged(resource_type: &str) -> bool {
    matches!(
        resource_type,
        "DiagnosticReport" | "ImagingStudy" | "DocumentReference" | "Consent" | "AuditEvent"
    )
}

/// Whether a type may have logged versions (for Observations: when they are results).
pub fn may_be_logged(resource_type: &str) -> bool {
    always_logged(resource_type) || resource_type == "Observation"
}

/// Whether this Observation is a laboratory or imaging result.
pub fn is_result_observation(resource: &Value) -> bool {
    resource
        .get("category")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("coding").and_then(Value::as_array))
        .flatten()
        .any(|coding| {
            let system = coding.get("system").and_then(Value::as_str);
            matches!(system, None | Some(OBSERVATION_CATEGORY))
                && matches!(
                    coding.get("code").and_then(Value::as_str),
                    Some("laboratory" | "imaging")
                )
        })
}

/// Whether stored JSON bytes are an Observation that is a result. A quick look for the two
/// codes first: most Observations (vital signs, surveys) are never parsed.
pub fn stored_is_result_observation(content: &[u8]) -> bool {
    let mentions = |needle: &[u8]| content.windows(needle.len()).any(|w| w == needle);
    if !mentions(b"\"laboratory\"") && !mentions(b"\"imaging\"") {
        return false;
    }
    serde_json::from_slice::<Value>(content).is_ok_and(|r| is_result_observation(&r))
}

/// The fields a leaf commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafFields<'a> {
    pub resource_type: &'a str,
    pub id: &'a str,
    pub version: i64,
    /// The version's body as a read of `TYPE/ID/_history/VERSION` returns it; `None` for a
    /// deletion (whose leaf carries the SHA-256 of no bytes).
    pub content: Option<&'a [u8]>,
    /// The custodian organisation (`Organization/7`), if any.
    pub org: Option<&'a str>,
    /// The version's `meta.lastUpdated`.
    pub time: &'a str,
}

/// The leaf input: the canonical JSON (keys sorted, no spaces) of
/// `{"id", "org", "sha256", "time", "type", "version"}`.
pub fn leaf_input(fields: &LeafFields<'_>) -> Vec<u8> {
    let string = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let sha256 = sha256_hex(fields.content.unwrap_or_default());
    format!(
        "{{\"id\":{},\"org\":{},\"sha256\":\"{sha256}\",\"time\":{},\"type\":{},\"version\":{}}}",
        string(fields.id),
        fields.org.map_or_else(|| "null".to_owned(), string),
        string(fields.time),
        string(fields.resource_type),
        fields.version,
    )
    .into_bytes()
}

/// A leaf input read back: what a verifier compares with the stored version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLeaf {
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    pub sha256: String,
    pub org: Option<String>,
    pub time: String,
}

pub fn parse_leaf(input: &[u8]) -> Option<ParsedLeaf> {
    let value: Value = serde_json::from_slice(input).ok()?;
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    Some(ParsedLeaf {
        resource_type: text("type")?,
        id: text("id")?,
        version: value.get("version")?.as_i64()?,
        sha256: text("sha256")?,
        org: text("org"),
        time: text("time")?,
    })
}
