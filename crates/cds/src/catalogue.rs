//! The recognition catalogue: which exams are mutually recognised, as data. Each entry is an
//! `ActivityDefinition` (status active, kind ServiceRequest) written through the API by an
//! administrator: `code` holds every equivalent coding (LOINC, local codes), `timingDuration`
//! the validity window, and two documented extensions the qualification a performing
//! institution needs and the price a repeat costs. Local codes may also be mapped to a
//! catalogue code by a `ConceptMap` (equivalence `equal` or `equivalent`). See
//! `docs/recognition.md`.

use std::collections::HashMap;

use serde_json::Value;

/// Institution levels, lowest first (the synthetic region's codes).
pub const LEVEL_SYSTEM: &str = "https://meridian.example/CodeSystem/institution-level";
const LEVELS: [&str; 5] = [
    "village-clinic",
    "township-health-center",
    "county-hospital",
    "city-hospital",
    "provincial-hospital",
];
/// `valueCoding` (institution-level): the lowest level whose results are recognised.
pub const EXT_MINIMUM_LEVEL: &str =
    "https://meridian.example/fhir/StructureDefinition/recognition-minimum-level";
/// `valueCoding`, repeatable: a qualification the performing institution must hold (among its
/// `Organization.type` codings or its `institution-qualification` extensions).
pub const EXT_QUALIFICATION: &str =
    "https://meridian.example/fhir/StructureDefinition/recognition-qualification";
/// `valueMoney`: what a repeat of the exam costs (money saved when it is not repeated).
pub const EXT_PRICE: &str = "https://meridian.example/fhir/StructureDefinition/recognition-price";
/// On an Organization, `valueCoding`, repeatable: a qualification it holds.
pub const EXT_ORGANIZATION_QUALIFICATION: &str =
    "https://meridian.example/fhir/StructureDefinition/institution-qualification";

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// One recognised exam.
#[derive(Debug, Clone)]
pub struct Exam {
    /// The ActivityDefinition's id.
    pub id: String,
    pub title: String,
    pub codes: Vec<(String, String)>,
    /// The validity window, in microseconds.
    pub window: i64,
    /// The window as written (`30 d`), for messages.
    pub window_text: String,
    pub minimum_level: Option<usize>,
    pub qualifications: Vec<(String, String)>,
    /// The price as decimal text, and its currency.
    pub price: Option<(String, String)>,
}

impl Exam {
    /// Whether the entry asks anything of the performing institution.
    pub fn has_requirements(&self) -> bool {
        self.minimum_level.is_some() || !self.qualifications.is_empty()
    }
}

/// The catalogue as loaded for one request.
#[derive(Debug, Default)]
pub struct Catalogue {
    exams: Vec<Exam>,
    by_code: HashMap<(String, String), usize>,
    /// (system, code) -> equivalent (system, code)s, from ConceptMaps.
    mappings: HashMap<(String, String), Vec<(String, String)>>,
}

fn codings(concept: &Value) -> impl Iterator<Item = (&str, &str)> {
    concept
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c.get("system").and_then(Value::as_str).unwrap_or(""),
                c.get("code").and_then(Value::as_str)?,
            ))
        })
}

fn extensions<'v>(resource: &'v Value, url: &'v str) -> impl Iterator<Item = &'v Value> + 'v {
    resource
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |e| e.get("url").and_then(Value::as_str) == Some(url))
}

fn coding_of(value: &Value) -> Option<(String, String)> {
    Some((
        value.get("system")?.as_str()?.to_owned(),
        value.get("code")?.as_str()?.to_owned(),
    ))
}

/// A level code's rank (0 = village clinic).
pub fn level_rank(code: &str) -> Option<usize> {
    LEVELS.iter().position(|l| *l == code)
}

/// The window of a `Duration`, in microseconds.
fn window_of(duration: &Value) -> Option<(i64, String)> {
    let value = duration.get("value")?;
    let number: f64 = value.to_string().parse().ok()?;
    let unit = duration
        .get("code")
        .or_else(|| duration.get("unit"))?
        .as_str()?;
    let days = match unit {
        "d" | "day" | "days" => number,
        "wk" | "week" | "weeks" => number * 7.0,
        "mo" | "month" | "months" => number * 30.0,
        "a" | "year" | "years" => number * 365.0,
        "h" | "hour" | "hours" => number / 24.0,
        _ => return None,
    };
    (days > 0.0 && days < 36_500.0).then(|| {
        (
            (days * MICROS_PER_DAY as f64) as i64,
            format!("{value} {unit}"),
        )
    })
}

impl Catalogue {
    /// The catalogue of the active `ActivityDefinition`s (kind ServiceRequest) and the
    /// mappings of the `ConceptMap`s. Entries that cannot be used (no code, no window) are
    /// skipped with a warning.
    pub fn load(definitions: &[Value], concept_maps: &[Value]) -> Catalogue {
        let mut catalogue = Catalogue::default();
        for definition in definitions {
            let id = definition.get("id").and_then(Value::as_str).unwrap_or("?");
            if definition.get("status").and_then(Value::as_str) != Some("active")
                || definition.get("kind").and_then(Value::as_str) != Some("ServiceRequest")
            {
                continue;
            }
            let codes: Vec<(String, String)> =
                codings(definition.get("code").unwrap_or(&Value::Null))
                    .filter(|(s, _)| !s.is_empty())
                    .map(|(s, c)| (s.to_owned(), c.to_owned()))
                    .collect();
            let Some((window, window_text)) = definition.get("timingDuration").and_then(window_of)
            else {
                tracing::warn!(
                    id,
                    "a recognition entry without a usable timingDuration is skipped"
                );
                continue;
            };
            if codes.is_empty() {
                tracing::warn!(id, "a recognition entry without codes is skipped");
                continue;
            }
            let minimum_level = extensions(definition, EXT_MINIMUM_LEVEL)
                .find_map(|e| e.get("valueCoding").and_then(coding_of))
                .and_then(|(_, code)| level_rank(&code));
            let qualifications = extensions(definition, EXT_QUALIFICATION)
                .filter_map(|e| e.get("valueCoding").and_then(coding_of))
                .collect();
            let price = extensions(definition, EXT_PRICE).find_map(|e| {
                let money = e.get("valueMoney")?;
                Some((
                    money.get("value")?.to_string(),
                    money
                        .get("currency")
                        .and_then(Value::as_str)
                        .unwrap_or("CNY")
                        .to_owned(),
                ))
            });
            let title = definition
                .get("title")
                .or_else(|| definition.get("name"))
                .or_else(|| definition.get("code").and_then(|c| c.get("text")))
                .and_then(Value::as_str)
                .unwrap_or(id)
                .to_owned();
            let index = catalogue.exams.len();
            for code in &codes {
                catalogue.by_code.entry(code.clone()).or_insert(index);
            }
            catalogue.exams.push(Exam {
                id: id.to_owned(),
                title,
                codes,
                window,
                window_text,
                minimum_level,
                qualifications,
                price,
            });
        }
        for map in concept_maps {
            for group in map
                .get("group")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(source), Some(target)) = (
                    group.get("source").and_then(Value::as_str),
                    group.get("target").and_then(Value::as_str),
                ) else {
                    continue;
                };
                for element in group
                    .get("element")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(code) = element.get("code").and_then(Value::as_str) else {
                        continue;
                    };
                    for to in element
                        .get("target")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let equivalent = matches!(
                            to.get("equivalence").and_then(Value::as_str),
                            Some("equal" | "equivalent")
                        );
                        if let (true, Some(to_code)) =
                            (equivalent, to.get("code").and_then(Value::as_str))
                        {
                            let a = (source.to_owned(), code.to_owned());
                            let b = (target.to_owned(), to_code.to_owned());
                            catalogue
                                .mappings
                                .entry(a.clone())
                                .or_default()
                                .push(b.clone());
                            catalogue.mappings.entry(b).or_default().push(a);
                        }
                    }
                }
            }
        }
        catalogue
    }

    /// Every coding that is this exam: its own, and those a ConceptMap makes equivalent.
    pub fn equivalent_codes(&self, exam: &Exam) -> Vec<(String, String)> {
        let mut codes = exam.codes.clone();
        for code in &exam.codes {
            for mapped in self.mappings.get(code).into_iter().flatten() {
                if !codes.contains(mapped) {
                    codes.push(mapped.clone());
                }
            }
        }
        codes
    }

    /// The catalogue entry a concept (an order's or a result's code) is, by any of its codings
    /// or what a ConceptMap makes them equivalent to.
    pub fn exam_for(&self, concept: &Value) -> Option<&Exam> {
        for (system, code) in codings(concept) {
            let key = (system.to_owned(), code.to_owned());
            if let Some(index) = self.by_code.get(&key) {
                return Some(&self.exams[*index]);
            }
            for mapped in self.mappings.get(&key).into_iter().flatten() {
                if let Some(index) = self.by_code.get(mapped) {
                    return Some(&self.exams[*index]);
                }
            }
        }
        None
    }

    /// Whether an institution (its Organization) may perform the exam for recognition: its
    /// level is at least the entry's minimum and it holds every qualification named.
    pub fn qualifies(exam: &Exam, organization: &Value) -> bool {
        let types: Vec<(String, String)> = organization
            .get("type")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|t| {
                codings(t)
                    .map(|(s, c)| (s.to_owned(), c.to_owned()))
                    .collect::<Vec<_>>()
            })
            .chain(
                extensions(organization, EXT_ORGANIZATION_QUALIFICATION)
                    .filter_map(|e| e.get("valueCoding").and_then(coding_of)),
            )
            .collect();
        if let Some(minimum) = exam.minimum_level {
            let level = types
                .iter()
                .filter(|(s, _)| s == LEVEL_SYSTEM)
                .filter_map(|(_, c)| level_rank(c))
                .max();
            if level.is_none_or(|level| level < minimum) {
                return false;
            }
        }
        if organization.get("active").and_then(Value::as_bool) == Some(false) {
            return false;
        }
        exam.qualifications.iter().all(|q| types.contains(q))
    }
}
