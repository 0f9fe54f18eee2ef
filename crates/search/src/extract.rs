//! Index extraction: what a resource contributes to the search indexes, found by evaluating
//! every search parameter's FHIRPath expression and turning each result by its FHIR type into
//! typed rows. Expressions are compiled once per resource type, with that type as context, so a
//! union such as `Condition.code | Observation.code` is reduced to its one relevant branch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fhir_model::SearchParamType;
use fhir_model::primitives::{parse_date, parse_date_time, parse_instant};
use fhirpath::{Collection, CompileOptions, Environment, Expression, Item};
use serde_json::Value;

use crate::index::{
    CompositeEntry, CompositeSecond, DateEntry, NumberEntry, QuantityEntry, ReferenceEntry,
    StringEntry, TokenEntry, UriEntry,
};
use crate::keys::{ParamKey, PatientKey};
use crate::parse::values::{decimal_range, snap};
use crate::registry::{Param, Registry};
use crate::text::normalize;
use crate::{IndexEntries, ucum};

/// One search parameter, ready to extract.
struct Plan {
    param: Arc<Param>,
    expression: Expression,
    /// For composites: each component's parameter type and expression.
    components: Vec<(SearchParamType, Expression)>,
    /// Token parameters also index display text, for `:text`.
    text_key: ParamKey,
    /// Identifier tokens also index `type|value`, for `:of-type`; references index their
    /// logical identifier, for `:identifier`.
    identifier_key: ParamKey,
}

/// Extracts index entries from resources for every search parameter in force.
pub struct Indexer {
    registry: Arc<Registry>,
    plans: HashMap<Box<str>, Vec<Plan>>,
    /// Per resource type, the parameters that put it in a patient's compartment.
    patient_compartment: HashMap<Box<str>, HashSet<ParamKey>>,
}

/// Why a resource could not be indexed.
#[derive(Debug, thiserror::Error)]
#[error("indexing {param}: {message}")]
pub struct IndexError {
    pub param: String,
    pub message: String,
}

impl Indexer {
    /// Compiles the expression of every parameter in `registry`.
    pub fn new(registry: Arc<Registry>) -> Indexer {
        let model = fhir_model::r4();
        let mut plans: HashMap<Box<str>, Vec<Plan>> = HashMap::new();
        let mut patient_compartment: HashMap<Box<str>, HashSet<ParamKey>> = HashMap::new();
        for resource_type in model.resource_types() {
            let options = CompileOptions {
                context_type: Some(resource_type.to_string()),
                strict: false,
            };
            let mut type_plans = Vec::new();
            for param in registry.params_of(resource_type) {
                // Searched through the two parameters its rows are the union of.
                if registry.union_parts(param).is_some() {
                    continue;
                }
                let Some(plan) = compile_plan(param, &options) else {
                    continue;
                };
                type_plans.push(plan);
            }
            // A stable order keeps extraction deterministic (tests compare entries).
            type_plans.sort_by(|a, b| a.param.code.cmp(&b.param.code));
            plans.insert(resource_type.clone(), type_plans);
            let keys = model
                .compartment_params("Patient", resource_type)
                .iter()
                .filter(|code| &***code != "{def}")
                .map(|code| ParamKey::new(resource_type, code))
                .collect();
            patient_compartment.insert(resource_type.clone(), keys);
        }
        Indexer {
            registry,
            plans,
            patient_compartment,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The index entries of `resource` (of type `resource_type`, stored as `id`).
    pub fn extract(
        &self,
        resource_type: &str,
        id: &str,
        resource: &Value,
    ) -> Result<IndexEntries, IndexError> {
        let mut out = IndexEntries::default();
        let environment = Environment::new().with_resource(resource);
        for plan in self
            .plans
            .get(resource_type)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            // An expression that fails on unusual but valid data must not block the write: the
            // resource is stored without that parameter's rows, and the log says so.
            let items = match plan.expression.evaluate(resource, &environment) {
                Ok(items) => items,
                Err(error) => {
                    tracing::warn!(resource_type, id, param = %plan.param.code, %error, "search parameter not indexed");
                    continue;
                }
            };
            if plan.param.kind == SearchParamType::Composite {
                composite_entries(plan, &items, &environment, &mut out);
                continue;
            }
            for item in items.iter() {
                add_item(plan, plan.param.kind, plan.param.key, item, &mut out);
            }
        }
        dedupe(&mut out);
        out.patient_key = if resource_type == "Patient" {
            PatientKey::of_patient(id)
        } else {
            let compartment = self.patient_compartment.get(resource_type);
            out.references
                .iter()
                .filter(|r| compartment.is_some_and(|c| c.contains(&r.param)))
                .find(|r| r.target_type.as_deref() == Some("Patient"))
                .and_then(|r| r.target_id.as_deref())
                .map(PatientKey::of_patient)
                .unwrap_or(PatientKey::NONE)
        };
        Ok(out)
    }

    /// The patients whose compartment `resource` is in, as `Patient/{id}` references, in the
    /// order found: a Patient is its own; another resource names them through the Patient
    /// compartment's parameters (`subject`, `patient`, `performer`, ...). Only those
    /// parameters are evaluated, so this is much cheaper than [`Indexer::extract`]: the audit
    /// trail asks it for every resource a response shows.
    pub fn compartment_patients(&self, resource_type: &str, resource: &Value) -> Vec<String> {
        if resource_type == "Patient" {
            return resource
                .get("id")
                .and_then(Value::as_str)
                .map(|id| vec![format!("Patient/{id}")])
                .unwrap_or_default();
        }
        let Some(compartment) = self.patient_compartment.get(resource_type) else {
            return Vec::new();
        };
        if compartment.is_empty() {
            return Vec::new();
        }
        let mut out = IndexEntries::default();
        let environment = Environment::new().with_resource(resource);
        let plans = self.plans.get(resource_type).map(Vec::as_slice);
        for plan in plans
            .unwrap_or_default()
            .iter()
            .filter(|plan| compartment.contains(&plan.param.key))
        {
            if let Ok(items) = plan.expression.evaluate(resource, &environment) {
                for item in items.iter() {
                    add_reference(plan, plan.param.key, item, &mut out);
                }
            }
        }
        let mut patients: Vec<String> = Vec::new();
        for reference in &out.references {
            if reference.target_type.as_deref() == Some("Patient")
                && let Some(id) = reference.target_id.as_deref()
            {
                let patient = format!("Patient/{id}");
                if !patients.contains(&patient) {
                    patients.push(patient);
                }
            }
        }
        patients
    }
}

fn compile_plan(param: &Arc<Param>, options: &CompileOptions) -> Option<Plan> {
    // `_id` and `_lastUpdated` live on the resource row itself; `_text` and `_content` have no
    // expression; `near` (special) is not indexed.
    if matches!(&*param.code, "_id" | "_lastUpdated") || param.kind == SearchParamType::Special {
        return None;
    }
    let source = param.definition.expression.as_deref()?;
    let expression = match fhirpath::compile_with(source, options) {
        Ok(expression) => expression,
        Err(error) => {
            tracing::warn!(param = %param.code, %error, "search parameter expression does not compile; not indexed");
            return None;
        }
    };
    let mut components = Vec::new();
    for component in &param.definition.components {
        let kind = fhir_model::r4()
            .search_parameters_for(&param.resource_type)
            .find(|p| p.code == component.code)
            .map(|p| p.kind)?;
        let compiled = fhirpath::compile(&component.expression).ok()?;
        components.push((kind, compiled));
    }
    Some(Plan {
        text_key: ParamKey::derived(&param.resource_type, &param.code, "text"),
        identifier_key: ParamKey::derived(&param.resource_type, &param.code, "identifier"),
        param: param.clone(),
        expression,
        components,
    })
}

fn text(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn add_item(
    plan: &Plan,
    kind: SearchParamType,
    key: ParamKey,
    item: &Item<'_>,
    out: &mut IndexEntries,
) {
    match kind {
        SearchParamType::Token => add_token(plan, key, item, out),
        SearchParamType::String => add_strings(key, item, out),
        SearchParamType::Date => {
            if let Some((low, high)) = date_range(item) {
                out.dates.push(DateEntry {
                    param: key,
                    low,
                    high,
                });
            }
        }
        SearchParamType::Number => {
            if let Some((value, low, high)) = number_range(item) {
                out.numbers.push(NumberEntry {
                    param: key,
                    value,
                    low,
                    high,
                });
            }
        }
        SearchParamType::Quantity => {
            if let Some(entry) = quantity(key, item) {
                // `[number]||[code]` matches "either the code or the stated human unit"
                // (search.html 3.1.1.4.11): a unit that differs from the code gets a row of its
                // own, without a system, so that only a search naming no system finds it.
                if let Some(unit) = human_unit(item) {
                    out.quantities.push(QuantityEntry {
                        system: None,
                        code: Some(unit.into()),
                        canonical: None,
                        ..entry.clone()
                    });
                }
                out.quantities.push(entry);
            }
        }
        SearchParamType::Reference => add_reference(plan, key, item, out),
        SearchParamType::Uri => {
            if let Some(uri) = item.as_str().filter(|s| !s.is_empty()) {
                out.uris.push(UriEntry {
                    param: key,
                    uri: uri.into(),
                });
            }
        }
        SearchParamType::Composite | SearchParamType::Special => {}
    }
}

fn token(key: ParamKey, system: Option<&str>, code: &str) -> TokenEntry {
    TokenEntry {
        param: key,
        system: system.map(Into::into),
        code: code.into(),
    }
}

fn add_token(plan: &Plan, key: ParamKey, item: &Item<'_>, out: &mut IndexEntries) {
    let json = item.json();
    let display = |text: &str, out: &mut IndexEntries| {
        out.strings.push(StringEntry {
            param: plan.text_key,
            normalized: normalize(text).into(),
            exact: text.into(),
        });
    };
    match item.type_name() {
        "Coding" => {
            let json = json.unwrap_or(&Value::Null);
            if let Some(code) = text(json.get("code")) {
                out.tokens.push(token(key, text(json.get("system")), code));
            }
            if let Some(d) = text(json.get("display")) {
                display(d, out);
            }
        }
        "CodeableConcept" => {
            let json = json.unwrap_or(&Value::Null);
            for coding in json
                .get("coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(code) = text(coding.get("code")) {
                    out.tokens
                        .push(token(key, text(coding.get("system")), code));
                }
                if let Some(d) = text(coding.get("display")) {
                    display(d, out);
                }
            }
            if let Some(t) = text(json.get("text")) {
                display(t, out);
            }
        }
        "Identifier" => {
            let json = json.unwrap_or(&Value::Null);
            if let Some(value) = text(json.get("value")) {
                out.tokens.push(token(key, text(json.get("system")), value));
                // `identifier:of-type=type-system|type-code|value`
                for coding in json
                    .pointer("/type/coding")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(type_code) = text(coding.get("code")) {
                        let type_system = text(coding.get("system")).unwrap_or("");
                        out.tokens.push(token(
                            plan.identifier_key,
                            Some(&format!("{type_system}|{type_code}")),
                            value,
                        ));
                    }
                }
            }
            if let Some(t) = json.pointer("/type/text").and_then(Value::as_str) {
                display(t, out);
            }
        }
        "ContactPoint" => {
            let json = json.unwrap_or(&Value::Null);
            if let Some(value) = text(json.get("value")) {
                out.tokens.push(token(key, text(json.get("system")), value));
            }
        }
        "boolean" | "System.Boolean" => {
            if let Some(b) = item.as_bool() {
                out.tokens
                    .push(token(key, None, if b { "true" } else { "false" }));
            }
        }
        _ => {
            if let Some(value) = item.as_str().filter(|s| !s.is_empty()) {
                out.tokens.push(token(key, None, value));
            } else if let Some(n) = item.as_integer() {
                out.tokens.push(token(key, None, &n.to_string()));
            }
        }
    }
}

fn add_strings(key: ParamKey, item: &Item<'_>, out: &mut IndexEntries) {
    let mut push = |value: &str| {
        if !value.is_empty() {
            out.strings.push(StringEntry {
                param: key,
                normalized: normalize(value).into(),
                exact: value.into(),
            });
        }
    };
    let parts: &[&str] = match item.type_name() {
        "HumanName" => &["family", "given", "prefix", "suffix", "text"],
        "Address" => &[
            "line",
            "city",
            "district",
            "state",
            "postalCode",
            "country",
            "text",
        ],
        _ => {
            if let Some(value) = item.as_str() {
                push(value);
            }
            return;
        }
    };
    let Some(json) = item.json() else { return };
    for part in parts {
        match json.get(*part) {
            Some(Value::String(value)) => push(value),
            Some(Value::Array(values)) => {
                values.iter().filter_map(Value::as_str).for_each(&mut push)
            }
            _ => {}
        }
    }
}

/// The instants a date-like value covers, inclusive, in microseconds.
fn date_range(item: &Item<'_>) -> Option<(i64, i64)> {
    let json = item.json()?;
    let of_text =
        |text: &str, parse: fn(&str) -> Option<fhir_model::primitives::PartialDateTime>| {
            parse(text).map(|d| {
                let range = d.range();
                (range.start, range.end - 1)
            })
        };
    match item.type_name() {
        "date" => of_text(json.as_str()?, parse_date),
        "dateTime" => of_text(json.as_str()?, parse_date_time),
        "instant" => of_text(json.as_str()?, parse_instant),
        "Period" => period_range(json),
        "Timing" => {
            let mut low = i64::MAX;
            let mut high = i64::MIN;
            for event in json
                .get("event")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some((l, h)) = event.as_str().and_then(|t| of_text(t, parse_date_time)) {
                    low = low.min(l);
                    high = high.max(h);
                }
            }
            if let Some((l, h)) = json.pointer("/repeat/boundsPeriod").and_then(period_range) {
                low = low.min(l);
                high = high.max(h);
            }
            (low <= high).then_some((low, high))
        }
        _ => None,
    }
}

fn period_range(json: &Value) -> Option<(i64, i64)> {
    let bound = |key: &str| {
        json.get(key)
            .and_then(Value::as_str)
            .and_then(parse_date_time)
            .map(|d| d.range())
    };
    let start = bound("start");
    let end = bound("end");
    if start.is_none() && end.is_none() {
        return None;
    }
    let low = start.map_or(i64::MIN, |r| r.start);
    let high = end.map_or(i64::MAX, |r| r.end - 1);
    // A period that ends before it starts breaks per-1; index it as the span between the two,
    // so every date row keeps low <= high, which the search SQL relies on (`store-sql`).
    Some((low.min(high), low.max(high)))
}

fn number_range(item: &Item<'_>) -> Option<(f64, f64, f64)> {
    match item.json()? {
        Value::Number(n) => decimal_range(&n.to_string()),
        _ => None,
    }
}

fn quantity(key: ParamKey, item: &Item<'_>) -> Option<QuantityEntry> {
    let json = item.json()?;
    match item.type_name() {
        "Money" => {
            let (value, low, high) = decimal_range(&json.get("value")?.to_string())?;
            Some(QuantityEntry {
                param: key,
                system: Some("urn:iso:std:iso:4217".into()),
                code: text(json.get("currency")).map(Into::into),
                value,
                low,
                high,
                canonical: None,
            })
        }
        "Range" => {
            let low = json.get("low");
            let high = json.get("high");
            let bound = |q: Option<&Value>| {
                q.and_then(|q| q.get("value"))
                    .and_then(|v| v.to_string().parse::<f64>().ok())
            };
            let unit_source = low.or(high)?;
            let (l, h) = (
                bound(low).unwrap_or(f64::NEG_INFINITY),
                bound(high).unwrap_or(f64::INFINITY),
            );
            if l.is_infinite() && h.is_infinite() {
                return None;
            }
            Some(QuantityEntry {
                param: key,
                system: text(unit_source.get("system")).map(Into::into),
                code: text(unit_source.get("code"))
                    .or(text(unit_source.get("unit")))
                    .map(Into::into),
                value: if l.is_finite() { l } else { h },
                low: l,
                high: h,
                canonical: None,
            })
        }
        _ => {
            let (value, low, high) = decimal_range(&json.get("value")?.to_string())?;
            let system = text(json.get("system"));
            let code = text(json.get("code")).or(text(json.get("unit")));
            let canonical = match (system, text(json.get("code"))) {
                (Some("http://unitsofmeasure.org"), Some(code)) => {
                    ucum::canonical(code).map(|(unit, factor)| (unit.into(), snap(value * factor)))
                }
                _ => None,
            };
            Some(QuantityEntry {
                param: key,
                system: system.map(Into::into),
                code: code.map(Into::into),
                value,
                low,
                high,
                canonical,
            })
        }
    }
}

/// The human unit of a quantity when it is written beside a different code.
fn human_unit<'a>(item: &Item<'a>) -> Option<&'a str> {
    let json = item.json()?;
    let unit = text(json.get("unit"))?;
    let code = text(json.get("code"))?;
    (unit != code).then_some(unit)
}

fn add_reference(plan: &Plan, key: ParamKey, item: &Item<'_>, out: &mut IndexEntries) {
    match item.type_name() {
        "Reference" => {
            let Some(json) = item.json() else { return };
            if let Some(reference) = text(json.get("reference"))
                && let Some(entry) = parse_reference(key, reference)
            {
                out.references.push(entry);
            }
            if let Some(identifier) = json.get("identifier")
                && let Some(value) = text(identifier.get("value"))
            {
                out.tokens.push(token(
                    plan.identifier_key,
                    text(identifier.get("system")),
                    value,
                ));
            }
        }
        "canonical" | "uri" | "url" | "uuid" | "oid" => {
            if let Some(url) = item.as_str().filter(|s| !s.is_empty()) {
                let (url, version) = match url.split_once('|') {
                    Some((url, version)) => (url, Some(version.into())),
                    None => (url, None),
                };
                let mut entry = parse_reference(key, url).unwrap_or(ReferenceEntry {
                    param: key,
                    target_type: None,
                    target_id: None,
                    url: Some(url.into()),
                    version: None,
                });
                entry.version = version;
                out.references.push(entry);
            }
        }
        _ => {}
    }
}

/// A reference string as index columns: `Type/id` (and `/_history/n`) is local; an absolute
/// URL or URN is kept whole; a contained `#id` is not indexed.
fn parse_reference(key: ParamKey, reference: &str) -> Option<ReferenceEntry> {
    if reference.starts_with('#') {
        return None;
    }
    let absolute = reference.contains("://") || reference.starts_with("urn:");
    if absolute {
        return Some(ReferenceEntry {
            param: key,
            target_type: None,
            target_id: None,
            url: Some(reference.into()),
            version: None,
        });
    }
    let mut segments = reference.split('/');
    let (Some(resource_type), Some(id)) = (segments.next(), segments.next()) else {
        return None;
    };
    let version = match (segments.next(), segments.next()) {
        (Some("_history"), Some(version)) => Some(version.into()),
        _ => None,
    };
    if !fhir_model::r4().is_resource_type(resource_type) || id.is_empty() {
        return None;
    }
    Some(ReferenceEntry {
        param: key,
        target_type: Some(resource_type.into()),
        target_id: Some(id.into()),
        url: None,
        version,
    })
}

fn composite_entries<'a>(
    plan: &Plan,
    items: &Collection<'a>,
    environment: &Environment<'a>,
    out: &mut IndexEntries,
) {
    let [(first_kind, first), (second_kind, second)] = plan.components.as_slice() else {
        return;
    };
    if *first_kind != SearchParamType::Token {
        return;
    }
    for item in items.iter() {
        let context: Collection<'a> = std::iter::once(item.clone()).collect();
        let (Ok(firsts), Ok(seconds)) = (
            first.evaluate_on(&context, environment),
            second.evaluate_on(&context, environment),
        ) else {
            continue;
        };
        let mut scratch = IndexEntries::default();
        for item in firsts.iter() {
            add_token(plan, plan.param.key, item, &mut scratch);
        }
        let first_tokens = std::mem::take(&mut scratch.tokens);
        let mut seconds_out = Vec::new();
        for item in seconds.iter() {
            match second_kind {
                SearchParamType::Token => {
                    add_token(plan, plan.param.key, item, &mut scratch);
                    seconds_out.extend(scratch.tokens.drain(..).map(CompositeSecond::Token));
                }
                SearchParamType::Quantity => {
                    if let Some(q) = quantity(plan.param.key, item) {
                        let unit = q
                            .code
                            .as_deref()
                            .map(|code| token(plan.param.key, q.system.as_deref(), code));
                        // As for a plain quantity: the human unit, without a system, too.
                        if let Some(human) = human_unit(item) {
                            seconds_out.push(CompositeSecond::Range {
                                value: q.value,
                                low: q.low,
                                high: q.high,
                                unit: Some(token(plan.param.key, None, human)),
                            });
                        }
                        seconds_out.push(CompositeSecond::Range {
                            value: q.value,
                            low: q.low,
                            high: q.high,
                            unit,
                        });
                    }
                }
                SearchParamType::Date => {
                    if let Some((low, high)) = date_range(item) {
                        seconds_out.push(CompositeSecond::Range {
                            value: low as f64,
                            low: low as f64,
                            high: high as f64,
                            unit: None,
                        });
                    }
                }
                SearchParamType::Number => {
                    if let Some((value, low, high)) = number_range(item) {
                        seconds_out.push(CompositeSecond::Range {
                            value,
                            low,
                            high,
                            unit: None,
                        });
                    }
                }
                SearchParamType::String => {
                    if let Some(s) = item.as_str() {
                        seconds_out.push(CompositeSecond::String(normalize(s).into()));
                    }
                }
                _ => {}
            }
        }
        for first in &first_tokens {
            for second in &seconds_out {
                out.composites.push(CompositeEntry {
                    param: plan.param.key,
                    first: first.clone(),
                    second: second.clone(),
                });
            }
        }
    }
}

fn dedupe(out: &mut IndexEntries) {
    let mut seen = HashSet::new();
    out.tokens
        .retain(|t| seen.insert((t.param, t.system.clone(), t.code.clone())));
    let mut seen = HashSet::new();
    out.strings
        .retain(|s| seen.insert((s.param, s.exact.clone())));
    let mut seen = HashSet::new();
    out.dates.retain(|d| seen.insert((d.param, d.low, d.high)));
    let mut seen = HashSet::new();
    out.uris.retain(|u| seen.insert((u.param, u.uri.clone())));
    let mut seen = HashSet::new();
    out.references.retain(|r| {
        seen.insert((
            r.param,
            r.target_type.clone(),
            r.target_id.clone(),
            r.url.clone(),
            r.version.clone(),
        ))
    });
}
