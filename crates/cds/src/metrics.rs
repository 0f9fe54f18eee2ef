//! Recognition records and the metrics computed from them. Every drafted exam the catalogue
//! knows is a check; a check whose prior result was shown is a retrieval; feedback on its card
//! makes it a recognition (accepted) or an override. The records live in the store's
//! key-value table, with no patient in them, one per (institution, patient, draft order),
//! so that `order-select` and `order-sign` of the same draft count once:
//!
//! - `cds/check/YYYY-MM/<key>`: a [`Check`];
//! - `cds/card/<uuid>`: which check or rule a card was about, and whom it was given to;
//! - `cds/feedback/<uuid>`: the feedback on a rule's card.
//!
//! The metrics are `$evaluate-measure` on the Measure `ResultRecognition`, counted from these
//! records at the time of the request.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use store::Store;

use crate::error::CdsError;

pub const CHECK_PREFIX: &str = "cds/check/";
pub const CARD_PREFIX: &str = "cds/card/";
pub const FEEDBACK_PREFIX: &str = "cds/feedback/";

/// The Measure the metrics answer for.
pub const MEASURE_ID: &str = "ResultRecognition";
pub const MEASURE_URL: &str = "https://meridian.example/fhir/Measure/ResultRecognition";
/// Meridian's population codes beyond the standard three.
pub const POPULATION_SYSTEM: &str = "https://meridian.example/CodeSystem/recognition-population";
const STANDARD_POPULATION: &str = "http://terminology.hl7.org/CodeSystem/measure-population";

/// One drafted exam checked for a prior result.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub month: String,
    /// When it was first checked (microseconds).
    pub at: i64,
    pub organization: String,
    pub department: String,
    /// The catalogue entry (ActivityDefinition id).
    pub exam: String,
    pub retrieved: bool,
    pub result: Option<String>,
    pub price: Option<(String, String)>,
    pub card: Option<String>,
    pub outcome: Option<String>,
    pub repeat_avoided: bool,
    /// No prior result was shown, but one the reader may not see exists (no consent).
    pub not_shareable: bool,
    pub reason: Option<Value>,
}

impl Check {
    pub fn to_json(&self) -> Value {
        json!({
            "month": self.month,
            "at": self.at,
            "organization": self.organization,
            "department": self.department,
            "exam": self.exam,
            "retrieved": self.retrieved,
            "result": self.result,
            "price": self.price.as_ref().map(|(v, _)| v),
            "currency": self.price.as_ref().map(|(_, c)| c),
            "card": self.card,
            "outcome": self.outcome,
            "repeatAvoided": self.repeat_avoided,
            "notShareable": self.not_shareable,
            "reason": self.reason,
        })
    }

    pub fn from_json(value: &Value) -> Option<Check> {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Check {
            month: text("month")?,
            at: value.get("at")?.as_i64()?,
            organization: text("organization")?,
            department: text("department")?,
            exam: text("exam")?,
            retrieved: value.get("retrieved")?.as_bool()?,
            result: text("result"),
            price: text("price").map(|p| (p, text("currency").unwrap_or_else(|| "CNY".into()))),
            card: text("card"),
            outcome: text("outcome"),
            repeat_avoided: value
                .get("repeatAvoided")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            not_shareable: value
                .get("notShareable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            reason: value.get("reason").filter(|r| !r.is_null()).cloned(),
        })
    }
}

/// A stable 128-bit digest as a UUID's text (FNV-1a, twice with different offsets): card ids
/// and record keys that are the same every time the same thing is checked.
pub fn stable_uuid(parts: &[&str]) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            b = (b ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3 ^ 0x2_0000);
        }
    }
    let bytes = [a.to_be_bytes(), b.to_be_bytes()].concat();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// `YYYY-MM` of an instant.
pub fn month_of(micros: i64) -> String {
    fhir_model::clock::format_instant(micros)[..7].to_owned()
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    checked: u64,
    retrieved: u64,
    recognised: u64,
    overridden: u64,
    repeats_avoided: u64,
    not_shareable: u64,
    /// Money saved in hundredths (fen).
    saved_cents: i128,
}

impl Counts {
    fn add(&mut self, check: &Check) {
        self.checked += 1;
        if check.retrieved {
            self.retrieved += 1;
        } else if check.not_shareable {
            self.not_shareable += 1;
        }
        match check.outcome.as_deref() {
            Some("accepted") => {
                self.recognised += 1;
                if check.repeat_avoided {
                    self.repeats_avoided += 1;
                    if let Some((price, _)) = &check.price {
                        self.saved_cents += cents(price);
                    }
                }
            }
            Some("overridden") => self.overridden += 1,
            _ => {}
        }
    }
}

/// A decimal's text in hundredths (`320`, `320.5`, `320.55`).
fn cents(text: &str) -> i128 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let fraction: String = fraction.chars().chain("00".chars()).take(2).collect();
    let negative = whole.starts_with('-');
    let value = whole.trim_start_matches('-').parse::<i128>().unwrap_or(0) * 100
        + fraction.parse::<i128>().unwrap_or(0);
    if negative { -value } else { value }
}

fn money(cents: i128) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

fn code(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

fn populations(counts: &Counts) -> Value {
    let standard =
        |name: &str, count: u64| json!({"code": code(STANDARD_POPULATION, name), "count": count});
    let ours =
        |name: &str, count: u64| json!({"code": code(POPULATION_SYSTEM, name), "count": count});
    json!([
        standard("initial-population", counts.checked),
        standard("denominator", counts.retrieved),
        standard("numerator", counts.recognised),
        ours("overridden", counts.overridden),
        ours("repeats-avoided", counts.repeats_avoided),
        ours("not-shareable", counts.not_shareable),
    ])
}

fn rate(counts: &Counts) -> Value {
    if counts.retrieved == 0 {
        return Value::Null;
    }
    let score = counts.recognised as f64 / counts.retrieved as f64;
    json!({"value": serde_json::Number::from_string_unchecked(format!("{score:.4}"))})
}

fn saved(counts: &Counts, currency: &str) -> Value {
    json!({
        "value": serde_json::Number::from_string_unchecked(money(counts.saved_cents)),
        "unit": currency,
        "system": "urn:iso:std:iso:4217",
        "code": currency,
    })
}

/// The period and the institution a report is for.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// Inclusive microsecond bounds.
    pub start: i64,
    pub end: i64,
    pub period_text: (String, String),
    /// Only this institution's checks (`Organization/ID`), or all.
    pub organization: Option<String>,
}

/// The checks of the months the period touches, then those inside it.
pub fn checks_in(store: &dyn Store, request: &ReportRequest) -> Result<Vec<Check>, CdsError> {
    let mut checks = Vec::new();
    let mut month = month_of(request.start);
    let last = month_of(request.end);
    loop {
        for (_, value) in store.checkpoints_with_prefix(&format!("{CHECK_PREFIX}{month}/"))? {
            let Some(check) = serde_json::from_str::<Value>(&value)
                .ok()
                .as_ref()
                .and_then(Check::from_json)
            else {
                tracing::warn!("a recognition record does not parse; it is not counted");
                continue;
            };
            if check.at < request.start || check.at > request.end {
                continue;
            }
            if request
                .organization
                .as_ref()
                .is_some_and(|o| *o != check.organization)
            {
                continue;
            }
            checks.push(check);
        }
        if month >= last {
            break;
        }
        month = next_month(&month);
    }
    Ok(checks)
}

fn next_month(month: &str) -> String {
    let year: i64 = month[..4].parse().unwrap_or(1970);
    let m: i64 = month[5..7].parse().unwrap_or(1);
    if m == 12 {
        format!("{:04}-01", year + 1)
    } else {
        format!("{year:04}-{:02}", m + 1)
    }
}

/// The MeasureReport of the checks: the populations for the whole, then by institution,
/// department, exam and month; a second group counts the money saved.
pub fn measure_report(checks: &[Check], request: &ReportRequest, now: i64) -> Value {
    let mut total = Counts::default();
    let mut strata: [BTreeMap<String, Counts>; 4] = Default::default();
    let currency = checks
        .iter()
        .find_map(|c| c.price.as_ref().map(|(_, c)| c.clone()))
        .unwrap_or_else(|| "CNY".into());
    for check in checks {
        total.add(check);
        for (n, key) in [
            &check.organization,
            &check.department,
            &check.exam,
            &check.month,
        ]
        .into_iter()
        .enumerate()
        {
            strata[n].entry(key.clone()).or_default().add(check);
        }
    }
    let names = ["institution", "department", "exam", "month"];
    let stratifier = |with: &dyn Fn(&Counts) -> Value| -> Vec<Value> {
        names
            .iter()
            .zip(&strata)
            .map(|(name, values)| {
                let mut stratifier = json!({"code": [{"text": name}]});
                // FHIR has no empty arrays: a stratifier with no checks has no stratum.
                if !values.is_empty() {
                    stratifier["stratum"] = values
                        .iter()
                        .map(|(value, counts)| {
                            let mut stratum = with(counts);
                            stratum["value"] = json!({"text": value});
                            stratum
                        })
                        .collect();
                }
                stratifier
            })
            .collect()
    };
    let mut recognition = json!({
        "code": code(POPULATION_SYSTEM, "recognition"),
        "population": populations(&total),
        "stratifier": stratifier(&|c| {
            let mut s = json!({"population": populations(c)});
            if let Value::Object(score) = rate(c) {
                s["measureScore"] = Value::Object(score);
            }
            s
        }),
    });
    if let Value::Object(score) = rate(&total) {
        recognition["measureScore"] = Value::Object(score);
    }
    let money_saved = json!({
        "code": code(POPULATION_SYSTEM, "money-saved"),
        "measureScore": saved(&total, &currency),
        "stratifier": stratifier(&|c| json!({"measureScore": saved(c, &currency)})),
    });
    let mut report = json!({
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": MEASURE_URL,
        "date": fhir_model::clock::format_instant(now),
        "period": {"start": request.period_text.0, "end": request.period_text.1},
        "group": [recognition, money_saved],
    });
    if let Some(organization) = &request.organization {
        report["reporter"] = json!({"reference": organization});
    }
    report
}

/// The Measure itself, as the server keeps it (written at start-up when absent).
pub fn measure() -> Value {
    json!({
        "resourceType": "Measure",
        "id": MEASURE_ID,
        "url": MEASURE_URL,
        "name": MEASURE_ID,
        "title": "Mutual recognition of results",
        "status": "active",
        "description": "Per institution, department, exam and month: drafted exams checked for \
            a prior result (initial-population), prior results shown (denominator), prior \
            results accepted instead of a repeat (numerator); overridden cards and repeats \
            avoided as further populations; money saved (the catalogue price of each repeat \
            avoided) as the measure score of a second group. Counted from the feedback records \
            of the CDS Hooks service.",
        "scoring": code("http://terminology.hl7.org/CodeSystem/measure-scoring", "proportion"),
        "group": [{
            "code": code(POPULATION_SYSTEM, "recognition"),
            "population": [
                {"code": code(STANDARD_POPULATION, "initial-population"), "criteria": {"language": "text/plain", "expression": "drafted exams the recognition catalogue knows, checked at order-select or order-sign"}},
                {"code": code(STANDARD_POPULATION, "denominator"), "criteria": {"language": "text/plain", "expression": "checks that showed a prior equivalent result"}},
                {"code": code(STANDARD_POPULATION, "numerator"), "criteria": {"language": "text/plain", "expression": "shown prior results whose card was accepted"}}
            ],
            "stratifier": [
                {"code": {"text": "institution"}}, {"code": {"text": "department"}},
                {"code": {"text": "exam"}}, {"code": {"text": "month"}}
            ]
        }, {
            "code": code(POPULATION_SYSTEM, "money-saved"),
            "description": "The catalogue price of every repeat avoided (the measure score, a Money-like Quantity)"
        }]
    })
}
