//! Readings: an Observation read as a blood pressure or a glucose value in the programme's
//! units, and classified against the programme's targets and the critical limits. The time
//! that counts is when it was measured (`effective[x]`), never when it reached the platform: a
//! kiosk that uploads a week late still reports last week's pressure.

use serde_json::Value;

use crate::dates::{Day, day_of};
use crate::rules::{GlucoseKind, Measure, Program, Rules, codings};

/// What a reading measured, in mm[Hg] and mmol/L.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measurement {
    /// Either component may be missing (a lone systolic Observation).
    BloodPressure {
        systolic: Option<f64>,
        diastolic: Option<f64>,
    },
    Glucose {
        mmol_per_l: f64,
        kind: GlucoseKind,
    },
}

impl Measurement {
    pub fn measure(&self) -> Measure {
        match self {
            Measurement::BloodPressure { .. } => Measure::BloodPressure,
            Measurement::Glucose { .. } => Measure::Glucose,
        }
    }

    /// The value as a clinician reads it (`185/112 mmHg`, `17.2 mmol/L`).
    pub fn describe(&self) -> String {
        let number = |v: Option<f64>| v.map_or("?".to_owned(), |v| format!("{v:.0}"));
        match self {
            Measurement::BloodPressure {
                systolic,
                diastolic,
            } => format!("{}/{} mmHg", number(*systolic), number(*diastolic)),
            Measurement::Glucose { mmol_per_l, .. } => format!("{mmol_per_l:.1} mmol/L"),
        }
    }
}

/// How a reading stands against the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Not judged against this programme's target (another measure, or a random glucose that
    /// is not critical): says nothing about control.
    NotAssessed,
    /// Meets the target.
    Controlled,
    /// Misses the target.
    Uncontrolled,
    /// At or beyond a critical limit: urgent action, and out of control.
    Critical,
}

impl Class {
    /// Out of control: uncontrolled or critical.
    pub fn out_of_control(self) -> bool {
        matches!(self, Class::Uncontrolled | Class::Critical)
    }

    pub fn code(self) -> &'static str {
        match self {
            Class::NotAssessed => "not-assessed",
            Class::Controlled => "controlled",
            Class::Uncontrolled => "uncontrolled",
            Class::Critical => "critical",
        }
    }
}

/// An Observation read as a programme reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub id: String,
    /// `Patient/<id>`.
    pub patient: String,
    /// `Encounter/<id>` when measured during a visit.
    pub encounter: Option<String>,
    /// When measured (the date as written), `None` when the Observation gives no full date.
    pub day: Option<Day>,
    /// The measured instant as written, for ordering readings of one day.
    pub effective: Option<String>,
    pub measurement: Measurement,
}

/// Observation statuses whose values stand (a registered or cancelled Observation has no value
/// to act on; an entered-in-error one never happened).
const STANDING: &[&str] = &["preliminary", "final", "amended", "corrected"];

/// The reading an Observation is, or `None` when it is not one (another code, no value in a
/// known unit, no patient, a status whose value does not stand).
pub fn reading(rules: &Rules, observation: &Value) -> Option<Reading> {
    if observation.get("resourceType").and_then(Value::as_str) != Some("Observation") {
        return None;
    }
    let status = observation.get("status").and_then(Value::as_str)?;
    if !STANDING.contains(&status) {
        return None;
    }
    let patient = observation
        .get("subject")
        .and_then(|s| s.get("reference"))
        .and_then(Value::as_str)
        .filter(|r| r.starts_with("Patient/") && r.len() > "Patient/".len())?
        .to_owned();
    let measurement = measurement(rules, observation)?;
    let effective = observation
        .get("effectiveDateTime")
        .or_else(|| observation.get("effectiveInstant"))
        .or_else(|| {
            observation
                .get("effectivePeriod")
                .and_then(|p| p.get("start"))
        })
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(Reading {
        id: observation.get("id").and_then(Value::as_str)?.to_owned(),
        patient,
        encounter: observation
            .get("encounter")
            .and_then(|e| e.get("reference"))
            .and_then(Value::as_str)
            .filter(|r| r.starts_with("Encounter/"))
            .map(str::to_owned),
        day: effective.as_deref().and_then(day_of),
        effective,
        measurement,
    })
}

fn has_code(rules_codes: &[crate::rules::Coded], concept: Option<&Value>) -> bool {
    let Some(concept) = concept else {
        return false;
    };
    codings(concept).iter().any(|(system, code)| {
        rules_codes
            .iter()
            .any(|c| c.system == *system && c.code == *code)
    })
}

/// A Quantity's value converted by the factor its unit has in `units` (the UCUM code when it
/// is given, else the unit as written); `assume` names the unit taken when the Quantity gives
/// none.
fn value_in(
    quantity: Option<&Value>,
    units: &std::collections::BTreeMap<String, f64>,
    assume: Option<&str>,
) -> Option<f64> {
    let quantity = quantity?;
    let value = quantity.get("value")?.as_f64()?;
    if !value.is_finite() {
        return None;
    }
    let unit = quantity
        .get("code")
        .and_then(Value::as_str)
        .or_else(|| quantity.get("unit").and_then(Value::as_str))
        .or(assume)?;
    let factor = units.get(unit.trim())?;
    Some(value * factor)
}

fn measurement(rules: &Rules, observation: &Value) -> Option<Measurement> {
    let r = &rules.readings;
    let code = observation.get("code");
    let pressure = |q: Option<&Value>| value_in(q, &rules.units.pressure, Some("mm[Hg]"));
    if has_code(&r.blood_pressure_panel, code) {
        let mut systolic = None;
        let mut diastolic = None;
        for component in observation
            .get("component")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let value = pressure(component.get("valueQuantity"));
            if has_code(&r.systolic, component.get("code")) {
                systolic = systolic.or(value);
            } else if has_code(&r.diastolic, component.get("code")) {
                diastolic = diastolic.or(value);
            }
        }
        return (systolic.is_some() || diastolic.is_some()).then_some(Measurement::BloodPressure {
            systolic,
            diastolic,
        });
    }
    if has_code(&r.systolic, code) {
        let systolic = pressure(observation.get("valueQuantity"))?;
        return Some(Measurement::BloodPressure {
            systolic: Some(systolic),
            diastolic: None,
        });
    }
    if has_code(&r.diastolic, code) {
        let diastolic = pressure(observation.get("valueQuantity"))?;
        return Some(Measurement::BloodPressure {
            systolic: None,
            diastolic: Some(diastolic),
        });
    }
    let glucose = code.and_then(|concept| {
        codings(concept).iter().find_map(|(system, code)| {
            r.glucose
                .iter()
                .find(|c| c.system == *system && c.code == *code)
        })
    })?;
    // A glucose value without a unit could be mmol/L or mg/dL: not guessed.
    let mmol_per_l = value_in(observation.get("valueQuantity"), &rules.units.glucose, None)?;
    Some(Measurement::Glucose {
        mmol_per_l,
        kind: glucose.kind.unwrap_or(GlucoseKind::Random),
    })
}

/// Whether a reading is at or beyond a critical limit (whoever it belongs to: a critical kiosk
/// reading of a resident nobody manages yet needs action all the more).
pub fn is_critical(rules: &Rules, measurement: &Measurement) -> bool {
    let c = &rules.critical;
    match *measurement {
        Measurement::BloodPressure {
            systolic,
            diastolic,
        } => {
            systolic.is_some_and(|s| s >= c.systolic_at_least)
                || diastolic.is_some_and(|d| d >= c.diastolic_at_least)
        }
        Measurement::Glucose { mmol_per_l, .. } => {
            mmol_per_l >= c.glucose_at_least || mmol_per_l <= c.glucose_at_most
        }
    }
}

/// The class of a reading for `program`, for a resident `age` years old on the day it was
/// measured (`None` when unknown: the general target applies).
pub fn classify(
    rules: &Rules,
    program: &Program,
    measurement: &Measurement,
    age: Option<i64>,
) -> Class {
    if measurement.measure() != program.measure {
        return Class::NotAssessed;
    }
    if is_critical(rules, measurement) {
        return Class::Critical;
    }
    let target = &program.target;
    match *measurement {
        Measurement::BloodPressure {
            systolic,
            diastolic,
        } => {
            let older = target
                .older
                .as_ref()
                .filter(|older| age.is_some_and(|age| age >= i64::from(older.from_age)));
            let (systolic_below, diastolic_below) = match older {
                Some(older) => (Some(older.systolic_below), Some(older.diastolic_below)),
                None => (target.systolic_below, target.diastolic_below),
            };
            let misses = |value: Option<f64>, below: Option<f64>| match (value, below) {
                (Some(value), Some(below)) => value >= below,
                _ => false,
            };
            if misses(systolic, systolic_below) || misses(diastolic, diastolic_below) {
                Class::Uncontrolled
            } else {
                Class::Controlled
            }
        }
        Measurement::Glucose { mmol_per_l, kind } => {
            if !rules.readings.control_kinds.contains(&kind) {
                return Class::NotAssessed;
            }
            match target.glucose_below {
                Some(below) if mmol_per_l >= below => Class::Uncontrolled,
                Some(_) => Class::Controlled,
                None => Class::NotAssessed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::rules;

    fn bp(systolic: u32, diastolic: u32) -> Value {
        json!({"resourceType": "Observation", "id": "o", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "subject": {"reference": "Patient/p"},
            "effectiveDateTime": "2025-03-03T09:00:00+08:00",
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                 "valueQuantity": {"value": systolic, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                 "valueQuantity": {"value": diastolic, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]})
    }

    fn glucose(code: &str, value: f64, unit: &str) -> Value {
        json!({"resourceType": "Observation", "id": "g", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/p"},
            "effectiveDateTime": "2025-03-03",
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
    }

    fn class(observation: &Value, program: &str, age: Option<i64>) -> Class {
        let rules = rules().unwrap();
        let reading = reading(rules, observation).expect("a reading");
        classify(
            rules,
            rules.program(program).unwrap(),
            &reading.measurement,
            age,
        )
    }

    #[test]
    fn blood_pressure_is_judged_by_age_and_critical_from_180_or_110() {
        assert_eq!(
            class(&bp(139, 89), "hypertension", Some(50)),
            Class::Controlled
        );
        assert_eq!(
            class(&bp(140, 80), "hypertension", Some(50)),
            Class::Uncontrolled
        );
        assert_eq!(
            class(&bp(130, 90), "hypertension", Some(50)),
            Class::Uncontrolled
        );
        assert_eq!(
            class(&bp(145, 85), "hypertension", Some(65)),
            Class::Controlled
        );
        assert_eq!(
            class(&bp(150, 85), "hypertension", Some(70)),
            Class::Uncontrolled
        );
        assert_eq!(class(&bp(180, 85), "hypertension", None), Class::Critical);
        assert_eq!(class(&bp(150, 110), "hypertension", None), Class::Critical);
        assert_eq!(
            class(&bp(190, 120), "type-2-diabetes", None),
            Class::NotAssessed
        );
    }

    #[test]
    fn glucose_in_mg_per_dl_is_converted_and_random_values_are_judged_only_as_critical() {
        assert_eq!(
            class(&glucose("14771-0", 6.9, "mmol/L"), "type-2-diabetes", None),
            Class::Controlled
        );
        assert_eq!(
            class(&glucose("14743-9", 7.0, "mmol/L"), "type-2-diabetes", None),
            Class::Uncontrolled
        );
        assert_eq!(
            class(&glucose("1558-6", 126.0, "mg/dL"), "type-2-diabetes", None),
            Class::Uncontrolled
        );
        assert_eq!(
            class(&glucose("2345-7", 11.0, "mmol/L"), "type-2-diabetes", None),
            Class::NotAssessed
        );
        assert_eq!(
            class(&glucose("2345-7", 16.7, "mmol/L"), "type-2-diabetes", None),
            Class::Critical
        );
        assert_eq!(
            class(&glucose("41653-7", 70.0, "mg/dL"), "type-2-diabetes", None),
            Class::Critical
        );
        assert_eq!(
            class(&glucose("14743-9", 3.9, "mmol/L"), "type-2-diabetes", None),
            Class::Critical
        );
    }

    #[test]
    fn what_is_not_a_reading_is_none() {
        let rules = rules().unwrap();
        let mut unitless = glucose("14771-0", 7.0, "mmol/L");
        unitless["valueQuantity"] = json!({"value": 7.0});
        assert_eq!(reading(rules, &unitless), None);
        let mut wrong = bp(120, 80);
        wrong["status"] = json!("entered-in-error");
        assert_eq!(reading(rules, &wrong), None);
        assert_eq!(
            reading(rules, &json!({"resourceType": "Observation"})),
            None
        );
        assert_eq!(reading(rules, &json!([1, 2])), None);
        let mut text_value = bp(120, 80);
        text_value["component"][0]["valueQuantity"]["value"] = json!("high");
        let r = reading(rules, &text_value).expect("the diastolic stands alone");
        assert_eq!(
            r.measurement,
            Measurement::BloodPressure {
                systolic: None,
                diastolic: Some(80.0)
            }
        );
    }
}
