//! Small builders for the FHIR data types the generator writes again and again.

use serde_json::{Number, Value, json};

use crate::systems;

/// A code in a code system, with its display.
#[derive(Debug, Clone, Copy)]
pub struct Code {
    pub system: &'static str,
    pub code: &'static str,
    pub display: &'static str,
}

impl Code {
    pub const fn new(system: &'static str, code: &'static str, display: &'static str) -> Code {
        Code {
            system,
            code,
            display,
        }
    }

    pub fn coding(&self) -> Value {
        json!({"system": self.system, "code": self.code, "display": self.display})
    }

    /// A CodeableConcept of this one coding.
    pub fn concept(&self) -> Value {
        json!({"coding": [self.coding()]})
    }

    /// A CodeableConcept of this one coding, with a text (in Chinese: what a clinician reads).
    pub fn concept_with_text(&self, text: &str) -> Value {
        json!({"coding": [self.coding()], "text": text})
    }
}

/// A clinical concept coded in two systems (SNOMED CT and ICD-10), with its Chinese name.
#[derive(Debug, Clone, Copy)]
pub struct Concept {
    pub snomed: Code,
    pub icd10: Code,
    pub text: &'static str,
}

impl Concept {
    pub fn codeable(&self) -> Value {
        json!({"coding": [self.snomed.coding(), self.icd10.coding()], "text": self.text})
    }
}

/// A reference to `Type/id`.
pub fn reference(resource_type: &str, id: &str) -> Value {
    json!({"reference": format!("{resource_type}/{id}")})
}

/// `meta` of every generated resource: the HL7 security label for test data (`HTEST`), so that
/// synthetic records are told apart from real ones wherever they end up.
pub fn meta() -> Value {
    json!({"security": [{"system": systems::ACT_REASON, "code": "HTEST", "display": "test health data"}]})
}

/// A decimal with exactly `places` digits after the point (FHIR decimals keep their
/// precision: 5.60 mmol/L is not 5.6).
pub fn decimal(value: f64, places: usize) -> Value {
    let text = format!("{value:.places$}");
    Value::Number(
        text.parse::<Number>()
            .expect("a formatted finite float is a JSON number"),
    )
}

/// A UCUM Quantity: `unit` is what a person reads, `code` the UCUM code (`mmHg`, `mm[Hg]`).
pub fn quantity(value: Value, unit: &str, code: &str) -> Value {
    json!({"value": value, "unit": unit, "system": systems::UCUM, "code": code})
}

/// An identifier.
pub fn identifier(system: &str, value: &str) -> Value {
    json!({"system": system, "value": value})
}
