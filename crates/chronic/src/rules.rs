//! The programme rules as data (`rules/chronic.json`): which conditions enter which registry,
//! which observations are readings, the control targets, the critical limits and the follow-up
//! intervals, each with the clause of the national specification it comes from. Kept as data so
//! a reviewer checks them against the specification without reading code, and so a new edition
//! of the specification changes one file.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use repository::RepositoryError;
use serde::Deserialize;
use serde_json::Value;

/// The rules compiled into the crate.
const RULES_JSON: &str = include_str!("../rules/chronic.json");

/// A code in a code system.
#[derive(Debug, Clone, Deserialize)]
pub struct Coded {
    pub system: String,
    pub code: String,
    #[serde(default)]
    pub display: Option<String>,
    #[serde(default)]
    pub kind: Option<GlucoseKind>,
}

/// How a glucose value was taken: the target is a fasting value, so only fasting and capillary
/// (the follow-up's fingertip test) readings are judged against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GlucoseKind {
    Fasting,
    Capillary,
    Random,
}

/// What a programme measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Measure {
    BloodPressure,
    Glucose,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowUpRules {
    pub visits_per_year: u32,
    pub interval_months: u32,
    pub encounter_types: Vec<Coded>,
    pub recall_days: i64,
    pub referral_after_uncontrolled: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionCodes {
    pub icd10_prefixes: Vec<String>,
    pub snomed: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OlderTarget {
    pub from_age: u32,
    pub systolic_below: f64,
    pub diastolic_below: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(default)]
    pub systolic_below: Option<f64>,
    #[serde(default)]
    pub diastolic_below: Option<f64>,
    #[serde(default)]
    pub older: Option<OlderTarget>,
    #[serde(default)]
    pub glucose_below: Option<f64>,
}

/// One management programme (one registry).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Program {
    /// The code in [`crate::PROGRAM_SYSTEM`].
    pub code: String,
    pub display: String,
    pub plan_title: String,
    pub plan_category: Coded,
    pub measure: Measure,
    pub conditions: ConditionCodes,
    pub target: Target,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadingCodes {
    pub blood_pressure_panel: Vec<Coded>,
    pub systolic: Vec<Coded>,
    pub diastolic: Vec<Coded>,
    pub glucose: Vec<Coded>,
    pub control_kinds: Vec<GlucoseKind>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Units {
    /// UCUM code → factor to mm[Hg].
    pub pressure: BTreeMap<String, f64>,
    /// UCUM code → factor to mmol/L.
    pub glucose: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Critical {
    pub systolic_at_least: f64,
    pub diastolic_at_least: f64,
    pub glucose_at_least: f64,
    pub glucose_at_most: f64,
}

/// Every rule of the service.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rules {
    /// Citation key → the document it names.
    pub sources: BTreeMap<String, String>,
    pub follow_up: FollowUpRules,
    pub programs: Vec<Program>,
    pub readings: ReadingCodes,
    pub units: Units,
    pub critical: Critical,
}

/// The rules, parsed once. An error (the file in the build is malformed) is the service's
/// internal error, never a panic: a unit test proves the shipped file parses.
pub fn rules() -> Result<&'static Rules, RepositoryError> {
    static RULES: OnceLock<Result<Rules, String>> = OnceLock::new();
    RULES
        .get_or_init(|| parse(RULES_JSON))
        .as_ref()
        .map_err(|error| RepositoryError::Internal(format!("rules/chronic.json: {error}")))
}

fn parse(text: &str) -> Result<Rules, String> {
    let rules: Rules = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if rules.follow_up.interval_months == 0 || rules.follow_up.referral_after_uncontrolled == 0 {
        return Err("the follow-up interval and the referral count must be positive".into());
    }
    Ok(rules)
}

impl Rules {
    /// The programme with this code.
    pub fn program(&self, code: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.code == code)
    }

    /// The programmes a CodeableConcept (a Condition's code) enters.
    pub fn programs_for_code(&self, concept: &Value) -> Vec<&Program> {
        let codings = codings(concept);
        self.programs
            .iter()
            .filter(|program| {
                codings
                    .iter()
                    .any(|(system, code)| program.conditions.matches(system, code))
            })
            .collect()
    }

    /// Whether an Encounter's type is the follow-up visit.
    pub fn is_follow_up_type(&self, types: Option<&Value>) -> bool {
        let Some(types) = types.and_then(Value::as_array) else {
            return false;
        };
        types.iter().any(|concept| {
            codings(concept).iter().any(|(system, code)| {
                self.follow_up
                    .encounter_types
                    .iter()
                    .any(|t| &t.system == system && &t.code == code)
            })
        })
    }

    /// Every code a reading may carry, as `system|code` search tokens.
    pub fn reading_tokens(&self) -> Vec<String> {
        let r = &self.readings;
        r.blood_pressure_panel
            .iter()
            .chain(&r.systolic)
            .chain(&r.diastolic)
            .chain(&r.glucose)
            .map(|c| format!("{}|{}", c.system, c.code))
            .collect()
    }
}

impl ConditionCodes {
    /// Whether `system|code` names this programme's condition: an ICD-10 code (any edition)
    /// under one of the prefixes, or one of the SNOMED CT concepts.
    pub fn matches(&self, system: &str, code: &str) -> bool {
        if system == SNOMED {
            return self.snomed.iter().any(|c| c == code.trim());
        }
        if is_icd10(system) {
            let normal = normal_icd10(code);
            return self
                .icd10_prefixes
                .iter()
                .any(|prefix| normal.starts_with(&normal_icd10(prefix)));
        }
        false
    }
}

pub const SNOMED: &str = "http://snomed.info/sct";

/// GB/T 14396, the Chinese national edition of ICD-10, by the OID national standards give it.
const CHINESE_ICD10_OID: &str = "urn:oid:2.16.156.10011.2.3.3.11";

/// The editions of ICD-10 share the hierarchy the prefixes name (WHO's, clinical modifications,
/// the national edition under the URI or OID a hospital sends), so all of them are read alike.
fn is_icd10(system: &str) -> bool {
    let lower = system.to_ascii_lowercase();
    lower.contains("icd-10") || lower.contains("icd10") || system == CHINESE_ICD10_OID
}

/// A code compared with prefixes: upper case, dots and spaces removed (`i10.x00` is `I10X00`).
fn normal_icd10(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '.' && !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// The (system, code) pairs of a CodeableConcept.
pub fn codings(concept: &Value) -> Vec<(&str, &str)> {
    concept
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|coding| {
            Some((
                coding.get("system")?.as_str()?,
                coding.get("code")?.as_str()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_shipped_rules_parse_and_every_rule_cites_a_known_source() {
        let rules = rules().expect("rules parse");
        assert_eq!(rules.programs.len(), 2);
        let raw: Value = serde_json::from_str(RULES_JSON).expect("json");
        let mut cited = 0;
        fn walk(value: &Value, keys: &BTreeMap<String, String>, cited: &mut usize) {
            match value {
                Value::Object(map) => {
                    for (key, value) in map {
                        if key.ends_with("ource") && key != "sources" {
                            let text = value.as_str().expect("a source is text");
                            assert!(
                                keys.keys().any(|k| text.contains(k.as_str()))
                                    || text.starts_with("ICD-10"),
                                "{text} cites no listed source"
                            );
                            *cited += 1;
                        }
                        walk(value, keys, cited);
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, keys, cited)),
                _ => {}
            }
        }
        walk(&raw, &rules.sources, &mut cited);
        assert!(cited > 20);
    }

    #[test]
    fn icd10_codes_of_every_edition_and_snomed_concepts_enter_their_programmes() {
        let rules = rules().unwrap();
        let of = |system: &str, code: &str| -> Vec<String> {
            rules
                .programs_for_code(&json!({"coding": [{"system": system, "code": code}]}))
                .iter()
                .map(|p| p.code.clone())
                .collect()
        };
        assert_eq!(
            of("http://hl7.org/fhir/sid/icd-10", "I10"),
            ["hypertension"]
        );
        assert_eq!(of(CHINESE_ICD10_OID, "I10.x00x002"), ["hypertension"]);
        assert_eq!(
            of("http://hl7.org/fhir/sid/icd-10-cn", "i15.0"),
            ["hypertension"]
        );
        assert_eq!(
            of("http://hl7.org/fhir/sid/icd-10", "E11.900"),
            ["type-2-diabetes"]
        );
        assert!(of("http://hl7.org/fhir/sid/icd-10", "E10.9").is_empty());
        assert!(of("http://hl7.org/fhir/sid/icd-10", "I20").is_empty());
        assert_eq!(of(SNOMED, "38341003"), ["hypertension"]);
        assert_eq!(of(SNOMED, "44054006"), ["type-2-diabetes"]);
        assert!(of("http://example.org/local", "I10").is_empty());
    }
}
