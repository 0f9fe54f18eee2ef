//! Measurements: blood pressure and capillary glucose (from the kiosk or at a visit), and
//! laboratory reports (DiagnosticReport with its Observations).
//!
//! Values scatter around the resident's own means (`resident::Health`), so a resident's
//! readings tell a consistent story: an undiagnosed hypertensive's kiosk readings run high, a
//! controlled diabetic's HbA1c sits near 6.5%. Reference ranges are the Chinese adult ones
//! (WS/T 405-2012 for blood counts, WS/T 404 for chemistry; the 2016 Chinese lipid guideline).

use serde_json::{Value, json};

use super::{Chart, IdKind};
use crate::calendar::Moment;
use crate::directory::{Department, Institution};
use crate::json::{Code, decimal, meta, quantity, reference};
use crate::resident::Chronic;
use crate::systems;
use crate::terminology as t;

/// Who took a measurement.
#[derive(Debug, Clone, Copy)]
pub(super) enum Performer<'a> {
    /// The resident, at the kiosk.
    Patient,
    Practitioner(&'a str),
}

/// A laboratory panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Panel {
    BloodCount,
    Lipids,
    Renal,
    FastingGlucose,
    Hba1c,
}

/// A reference range; either end may be open.
#[derive(Debug, Clone, Copy)]
struct Range {
    low: Option<f64>,
    high: Option<f64>,
}

const fn range(low: f64, high: f64) -> Range {
    Range {
        low: Some(low),
        high: Some(high),
    }
}

/// A measured value: what, how much, its reference range, its critical limits.
type Measured = (&'static Analyte, f64, Range, Option<(f64, f64)>);

/// One analyte of a panel and how to write its value.
struct Analyte {
    code: Code,
    text: &'static str,
    unit: &'static str,
    ucum: &'static str,
    places: usize,
}

const fn analyte(
    code: Code,
    text: &'static str,
    unit: &'static str,
    ucum: &'static str,
    places: usize,
) -> Analyte {
    Analyte {
        code,
        text,
        unit,
        ucum,
        places,
    }
}

const LEUKOCYTES: Analyte = analyte(t::LEUKOCYTES, "白细胞计数", "10^9/L", "10*9/L", 2);
const ERYTHROCYTES: Analyte = analyte(t::ERYTHROCYTES, "红细胞计数", "10^12/L", "10*12/L", 2);
const HEMOGLOBIN: Analyte = analyte(t::HEMOGLOBIN, "血红蛋白", "g/L", "g/L", 0);
const PLATELETS: Analyte = analyte(t::PLATELETS, "血小板计数", "10^9/L", "10*9/L", 0);
const CHOLESTEROL: Analyte = analyte(t::CHOLESTEROL, "总胆固醇", "mmol/L", "mmol/L", 2);
const TRIGLYCERIDE: Analyte = analyte(t::TRIGLYCERIDE, "甘油三酯", "mmol/L", "mmol/L", 2);
const HDL: Analyte = analyte(t::HDL, "高密度脂蛋白胆固醇", "mmol/L", "mmol/L", 2);
const LDL: Analyte = analyte(t::LDL, "低密度脂蛋白胆固醇", "mmol/L", "mmol/L", 2);
const CREATININE: Analyte = analyte(t::CREATININE, "肌酐", "μmol/L", "umol/L", 0);
const POTASSIUM: Analyte = analyte(t::POTASSIUM, "钾", "mmol/L", "mmol/L", 2);
const FASTING_GLUCOSE: Analyte = analyte(t::FASTING_GLUCOSE, "空腹血糖", "mmol/L", "mmol/L", 1);
const HBA1C: Analyte = analyte(t::HBA1C, "糖化血红蛋白", "%", "%", 1);
const CAPILLARY_GLUCOSE: Analyte = analyte(t::CAPILLARY_GLUCOSE, "指尖血糖", "mmol/L", "mmol/L", 1);

fn interpretation(code: &'static str, display: &'static str) -> Value {
    json!([Code::new(systems::INTERPRETATION, code, display).concept()])
}

/// High, low or normal against a range, with the critical glucose limits.
fn interpret(value: f64, range: Range, critical: Option<(f64, f64)>) -> Value {
    if let Some((critical_low, critical_high)) = critical {
        if value >= critical_high {
            return interpretation("HH", "Critical high");
        }
        if value < critical_low {
            return interpretation("LL", "Critical low");
        }
    }
    if range.high.is_some_and(|high| value > high) {
        interpretation("H", "High")
    } else if range.low.is_some_and(|low| value < low) {
        interpretation("L", "Low")
    } else {
        interpretation("N", "Normal")
    }
}

fn reference_range(analyte: &Analyte, range: Range) -> Value {
    let bound = |v: f64| quantity(decimal(v, analyte.places), analyte.unit, analyte.ucum);
    let mut value = json!({});
    if let Some(low) = range.low {
        value["low"] = bound(low);
    }
    if let Some(high) = range.high {
        value["high"] = bound(high);
    }
    json!([value])
}

fn category(code: &'static str, display: &'static str) -> Value {
    json!([Code::new(systems::OBSERVATION_CATEGORY, code, display).concept()])
}

/// Blood glucose is critical under 2.8 mmol/L and from 16.7 mmol/L (hyperglycaemic crisis).
const GLUCOSE_CRITICAL: Option<(f64, f64)> = Some((2.8, 16.7));
const GLUCOSE_RANGE: Range = range(3.9, 6.1);

impl Chart<'_> {
    /// A blood-pressure panel (the FHIR vital-signs shape: systolic and diastolic components).
    pub(super) fn blood_pressure(
        &mut self,
        at: Moment,
        encounter: Option<&str>,
        performer: Performer,
        device: Option<&str>,
    ) -> String {
        let health = &self.resident.health;
        let systolic = self
            .rng
            .normal(health.systolic, 7.0)
            .round()
            .clamp(70.0, 240.0);
        let diastolic = self
            .rng
            .normal(health.diastolic, 5.0)
            .round()
            .clamp(40.0, 140.0);
        // Grade 3 hypertension (from 180/110) is flagged critical.
        let grade = |value: f64, low: f64, high: f64, critical: f64| -> u8 {
            if value >= critical {
                3
            } else if value >= high {
                2
            } else if value < low {
                1
            } else {
                0
            }
        };
        let systolic_grade = grade(systolic, 90.0, 140.0, 180.0);
        let diastolic_grade = grade(diastolic, 60.0, 90.0, 110.0);
        let flag = |grade: u8| match grade {
            3 => interpretation("HH", "Critical high"),
            2 => interpretation("H", "High"),
            1 => interpretation("L", "Low"),
            _ => interpretation("N", "Normal"),
        };
        let component = |code: Code, value: f64, grade: u8| {
            json!({
                "code": code.concept(),
                "valueQuantity": quantity(json!(value as u32), "mmHg", "mm[Hg]"),
                "interpretation": flag(grade),
            })
        };
        let id = self.next_id(IdKind::Observation);
        let mut observation = json!({
            "resourceType": "Observation",
            "id": id,
            "meta": meta(),
            "status": "final",
            "category": category("vital-signs", "Vital Signs"),
            "code": t::BLOOD_PRESSURE_PANEL.concept_with_text("血压"),
            "subject": self.patient,
        });
        if let Some(encounter) = encounter {
            observation["encounter"] = reference("Encounter", encounter);
        }
        observation["effectiveDateTime"] = json!(at.fhir());
        observation["performer"] = json!([performer_reference(performer, &self.resident.id)]);
        observation["interpretation"] = flag(systolic_grade.max(diastolic_grade));
        if let Some(device) = device {
            observation["device"] = reference("Device", device);
        }
        observation["component"] = json!([
            component(t::SYSTOLIC, systolic, systolic_grade),
            component(t::DIASTOLIC, diastolic, diastolic_grade),
        ]);
        self.push("Observation", observation);
        id
    }

    /// A fingertip glucose reading by glucometer.
    pub(super) fn capillary_glucose(
        &mut self,
        at: Moment,
        encounter: Option<&str>,
        performer: Performer,
        device: Option<&str>,
    ) -> String {
        let health = &self.resident.health;
        let treated = matches!(health.diabetes, Chronic::Diagnosed { .. });
        // Treatment brings the occasional hypoglycaemia.
        let value = if treated && self.rng.chance(0.02) {
            self.rng.normal_within(3.4, 0.3, 2.6, 3.8)
        } else {
            self.rng.normal(health.glucose, 0.6).clamp(3.0, 30.0)
        };
        let id = self.next_id(IdKind::Observation);
        let mut observation = json!({
            "resourceType": "Observation",
            "id": id,
            "meta": meta(),
            "status": "final",
            "category": category("laboratory", "Laboratory"),
            "code": CAPILLARY_GLUCOSE.code.concept_with_text(CAPILLARY_GLUCOSE.text),
            "subject": self.patient,
        });
        if let Some(encounter) = encounter {
            observation["encounter"] = reference("Encounter", encounter);
        }
        observation["effectiveDateTime"] = json!(at.fhir());
        observation["performer"] = json!([performer_reference(performer, &self.resident.id)]);
        observation["valueQuantity"] = quantity(
            decimal(value, 1),
            CAPILLARY_GLUCOSE.unit,
            CAPILLARY_GLUCOSE.ucum,
        );
        observation["interpretation"] = interpret(value, GLUCOSE_RANGE, GLUCOSE_CRITICAL);
        if let Some(device) = device {
            observation["device"] = reference("Device", device);
        }
        observation["referenceRange"] = reference_range(&CAPILLARY_GLUCOSE, GLUCOSE_RANGE);
        self.push("Observation", observation);
        id
    }

    /// A laboratory report of `panel`, drawn at `at` during `encounter` and run by the lab of
    /// `lab`; `infection` raises the white count. Returns the report's id.
    pub(super) fn lab_report(
        &mut self,
        panel: Panel,
        at: Moment,
        encounter: &str,
        lab: Institution,
        infection: bool,
    ) -> String {
        let values = self.panel_values(panel, infection);
        let issued = at.plus_minutes(self.rng.between(90, 300));
        let lab_id = lab.id();
        let mut results = Vec::with_capacity(values.len());
        for (analyte, value, range, critical) in values {
            let id = self.next_id(IdKind::Observation);
            results.push(reference("Observation", &id));
            let observation = json!({
                "resourceType": "Observation",
                "id": id,
                "meta": meta(),
                "status": "final",
                "category": category("laboratory", "Laboratory"),
                "code": analyte.code.concept_with_text(analyte.text),
                "subject": self.patient,
                "encounter": reference("Encounter", encounter),
                "effectiveDateTime": at.fhir(),
                "issued": issued.fhir(),
                "performer": [reference("Organization", &lab_id)],
                "valueQuantity": quantity(decimal(value, analyte.places), analyte.unit, analyte.ucum),
                "interpretation": interpret(value, range, critical),
                "referenceRange": reference_range(analyte, range),
            });
            self.push("Observation", observation);
        }
        let (code, text) = match panel {
            Panel::BloodCount => (t::CBC_PANEL, "血常规"),
            Panel::Lipids => (t::LIPID_PANEL, "血脂四项"),
            Panel::Renal => (t::RENAL_PANEL, "肾功能"),
            Panel::FastingGlucose => (t::FASTING_GLUCOSE, "空腹血糖"),
            Panel::Hba1c => (t::HBA1C, "糖化血红蛋白"),
        };
        let interpreter = lab.any_practitioner(Department::Laboratory, &mut self.rng);
        let id = self.next_id(IdKind::DiagnosticReport);
        let report = json!({
            "resourceType": "DiagnosticReport",
            "id": id,
            "meta": meta(),
            "status": "final",
            "category": [Code::new(systems::DIAGNOSTIC_SERVICE, "LAB", "Laboratory").concept()],
            "code": code.concept_with_text(text),
            "subject": self.patient,
            "encounter": reference("Encounter", encounter),
            "effectiveDateTime": at.fhir(),
            "issued": issued.fhir(),
            "performer": [reference("Organization", &lab_id)],
            "resultsInterpreter": [reference("Practitioner", &interpreter)],
            "result": results,
        });
        self.push("DiagnosticReport", report);
        id
    }

    /// The values of a panel for this resident: (analyte, value, reference range, critical
    /// limits).
    fn panel_values(&mut self, panel: Panel, infection: bool) -> Vec<Measured> {
        let resident = self.resident;
        let male = resident.male;
        let old = resident.age >= 60;
        let rng = &mut self.rng;
        let diabetic = resident.health.diabetes.is_present();
        match panel {
            Panel::BloodCount => {
                let leukocytes = if infection {
                    rng.normal_within(13.5, 3.0, 9.0, 25.0)
                } else {
                    rng.normal_within(6.2, 1.4, 3.0, 11.0)
                };
                let age_drop = if old { 0.2 } else { 0.0 };
                let (erythrocytes, erythrocyte_range) = if male {
                    (
                        rng.normal_within(4.9 - age_drop, 0.35, 3.6, 6.1),
                        range(4.3, 5.8),
                    )
                } else {
                    (
                        rng.normal_within(4.35 - age_drop, 0.3, 3.3, 5.5),
                        range(3.8, 5.1),
                    )
                };
                // Haemoglobin follows the red count.
                let hemoglobin =
                    (erythrocytes * if male { 30.0 } else { 29.5 } + rng.normal(0.0, 5.0)).round();
                let hemoglobin_range = if male {
                    range(130.0, 175.0)
                } else {
                    range(115.0, 150.0)
                };
                vec![
                    (&LEUKOCYTES, leukocytes, range(3.5, 9.5), None),
                    (&ERYTHROCYTES, erythrocytes, erythrocyte_range, None),
                    (&HEMOGLOBIN, hemoglobin, hemoglobin_range, None),
                    (
                        &PLATELETS,
                        rng.normal_within(225.0, 50.0, 80.0, 480.0).round(),
                        range(125.0, 350.0),
                        None,
                    ),
                ]
            }
            Panel::Lipids => {
                let age = f64::from(resident.age);
                let cholesterol = rng.normal_within(4.5 + 0.01 * age, 0.85, 2.6, 9.0);
                let triglyceride = (rng.normal(1.3, 0.35)
                    + 0.5 * rng.standard_normal().abs()
                    + if diabetic { 0.4 } else { 0.0 })
                .clamp(0.4, 8.0);
                let hdl = if male {
                    rng.normal_within(1.15, 0.25, 0.6, 2.4)
                } else {
                    rng.normal_within(1.35, 0.28, 0.6, 2.6)
                };
                // Friedewald, in mmol/L: LDL = TC − HDL − TG / 2.2.
                let ldl = (cholesterol - hdl - triglyceride / 2.2).max(0.5);
                let below = |high| Range {
                    low: None,
                    high: Some(high),
                };
                vec![
                    (&CHOLESTEROL, cholesterol, below(5.2), None),
                    (&TRIGLYCERIDE, triglyceride, below(1.7), None),
                    (
                        &HDL,
                        hdl,
                        Range {
                            low: Some(1.0),
                            high: None,
                        },
                        None,
                    ),
                    (&LDL, ldl, below(3.4), None),
                ]
            }
            Panel::Renal => {
                let uncontrolled = resident.health.diabetes.is_uncontrolled();
                let raise = if old { 6.0 } else { 0.0 } + if uncontrolled { 10.0 } else { 0.0 };
                let (creatinine, creatinine_range) = match (male, old) {
                    (true, false) => (rng.normal(82.0, 14.0), range(57.0, 97.0)),
                    (true, true) => (rng.normal(82.0, 14.0), range(57.0, 111.0)),
                    (false, false) => (rng.normal(62.0, 11.0), range(41.0, 73.0)),
                    (false, true) => (rng.normal(62.0, 11.0), range(41.0, 81.0)),
                };
                vec![
                    (
                        &CREATININE,
                        (creatinine + raise).clamp(30.0, 400.0).round(),
                        creatinine_range,
                        None,
                    ),
                    (
                        &POTASSIUM,
                        rng.normal_within(4.1, 0.35, 3.0, 5.9),
                        range(3.5, 5.3),
                        None,
                    ),
                ]
            }
            Panel::FastingGlucose => {
                let value = rng.normal(resident.health.glucose, 0.3).clamp(3.0, 30.0);
                vec![(&FASTING_GLUCOSE, value, GLUCOSE_RANGE, GLUCOSE_CRITICAL)]
            }
            Panel::Hba1c => {
                // The ADAG relation between mean glucose and HbA1c (Nathan et al., 2008):
                // glucose (mmol/L) = 1.59 × HbA1c − 2.59.
                let value = ((resident.health.glucose + 2.59) / 1.59 + rng.normal(0.0, 0.2))
                    .clamp(4.2, 15.0);
                vec![(&HBA1C, value, range(4.0, 6.0), None)]
            }
        }
    }
}

fn performer_reference(performer: Performer, patient_id: &str) -> Value {
    match performer {
        Performer::Patient => reference("Patient", patient_id),
        Performer::Practitioner(id) => reference("Practitioner", id),
    }
}
