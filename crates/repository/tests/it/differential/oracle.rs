//! The expected side: which resources a FHIR R4 search should return, decided by brute force
//! over the stored resources with the rules of the specification (search.html, cited by
//! section) written afresh. Nothing here calls `search::parse` or `search::extract`.
//!
//! Where R4 leaves the choice to the server, the rule here is this server's choice, on purpose:
//! - A date or time without a zone is UTC, the zone this server calls local (3.1.1.4.7).
//! - `ap` widens a date by a tenth of its distance from now and at least a day, a number by a
//!   tenth of its value and at least its own precision (R4 recommends 10%, 3.1.1.4.5).
//! - A stored number or quantity is the point it is written as; only the search value has an
//!   implicit range ("whole numbers also equal 100.00"). `1e2` is 100 ± 50, one significant
//!   figure (R4's table says [95, 105), which no reading of significance gives).
//! - Codes match case-sensitively, as the code systems of the sample are; a token on a
//!   `string` element ignores case (3.1.1.4.10). R4 asks servers to ignore case "when in doubt".
//! - `:not` with several values leaves out a resource that matches any of them.
//! - `:missing` asks for a value a search of the type could match: a CodeableConcept with only
//!   text, a Reference with only a display or to a contained resource, a composite with a part
//!   missing, have none.
//! - `:below` on a uri is a plain prefix; `:above` needs the stored uri to end where a path
//!   segment of the search uri does.
//! - `[number]||` names no unit. A UCUM unit of the conversion table also matches the same
//!   amount in any unit of its dimension, with UCUM's own factors, in composites too.
//! - A chain without a type modifier follows every target type that has the parameter (R4:
//!   servers SHOULD reject it when the id is ambiguous across types).
//! - `phonetic` is searched like any string: no phonetic algorithm.

use std::collections::BTreeSet;

use fhir_model::SearchParamType;
use serde_json::Value;

use super::corpus::{Corpus, Item, Stored, param};
use super::values::{
    Decimal, MICROS_PER_DAY, date_range, normalize, split_once_unescaped, split_unescaped, ucum,
    unescape,
};
use crate::support::BASE;

const UCUM: &str = "http://unitsofmeasure.org";

pub struct Oracle<'c> {
    corpus: &'c Corpus,
    /// "Now" for `ap` on dates, which is relative to it.
    now: i64,
}

/// A search prefix (search.html 3.1.1.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

fn prefix(value: &str) -> (Prefix, &str) {
    let table = [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
        ("ap", Prefix::Ap),
    ];
    for (text, prefix) in table {
        if let Some(rest) = value.strip_prefix(text) {
            return (prefix, rest);
        }
    }
    (Prefix::Eq, value)
}

/// A local reference `Type/id`, or an absolute one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Local(String, String),
    Url(String, Option<String>),
}

impl<'c> Oracle<'c> {
    pub fn new(corpus: &'c Corpus) -> Oracle<'c> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_micros() as i64;
        Oracle { corpus, now }
    }

    /// The ids of the resources of `resource_type` that satisfy every parameter.
    pub fn expected(&self, resource_type: &str, params: &[(String, String)]) -> BTreeSet<String> {
        self.corpus
            .of_type(resource_type)
            .iter()
            .filter(|stored| {
                params
                    .iter()
                    .all(|(name, value)| self.holds(stored, name, value))
            })
            .map(|stored| stored.id.clone())
            .collect()
    }

    /// Whether `stored` satisfies one parameter (`name=value`): a reverse chain, a chain, or a
    /// parameter with its modifier.
    pub fn holds(&self, stored: &Stored, name: &str, value: &str) -> bool {
        // "Empty parameters are not an error - they are just ignored" (3.1.1.3).
        if value.is_empty() {
            return true;
        }
        if let Some(rest) = name.strip_prefix("_has:") {
            let mut parts = rest.splitn(3, ':');
            let (source_type, reference, inner) = (
                parts.next().expect("a type"),
                parts.next().expect("a parameter"),
                parts.next().expect("a search"),
            );
            let this = Target::Local(stored.resource_type.clone(), stored.id.clone());
            return self.corpus.of_type(source_type).iter().any(|source| {
                self.targets(source, reference).contains(&this) && self.holds(source, inner, value)
            });
        }
        if let Some((head, rest)) = name.split_once('.') {
            let (code, type_modifier) = match head.split_once(':') {
                Some((code, t)) => (code, Some(t)),
                None => (head, None),
            };
            // Each chain is evaluated on its own: any one target that satisfies it will do.
            return self
                .targets(stored, code)
                .into_iter()
                .any(|target| match target {
                    Target::Local(t, id) => {
                        type_modifier.is_none_or(|m| m == t)
                            && self
                                .corpus
                                .get(&t, &id)
                                .is_some_and(|target| self.holds(target, rest, value))
                    }
                    Target::Url(..) => false,
                });
        }
        let (code, modifier) = match name.split_once(':') {
            Some((code, modifier)) => (code, Some(modifier)),
            None => (name, None),
        };
        self.leaf(stored, code, modifier, value)
    }

    fn leaf(&self, stored: &Stored, code: &str, modifier: Option<&str>, value: &str) -> bool {
        let alternatives = split_unescaped(value, ',');
        match (code, modifier) {
            // Every resource has an id and a lastUpdated.
            ("_id" | "_lastUpdated", Some("missing")) => return value == "false",
            // Always exact and case-sensitive (3.1.1.4.1).
            ("_id", None) => return alternatives.iter().any(|v| unescape(v) == stored.id),
            ("_id", Some("not")) => return !alternatives.iter().any(|v| unescape(v) == stored.id),
            ("_lastUpdated", None) => {
                let at = stored.json["meta"]["lastUpdated"]
                    .as_str()
                    .and_then(date_range)
                    .expect("every stored resource has meta.lastUpdated")
                    .0;
                // An instant is "a fixed point in time": its range has no width.
                return alternatives.iter().any(|v| self.date(at, at, v));
            }
            ("_id" | "_lastUpdated", Some(other)) => panic!("{code}:{other} generated"),
            _ => {}
        }
        let definition = param(&stored.resource_type, code)
            .unwrap_or_else(|| panic!("{}.{code} is a parameter", stored.resource_type));
        let items = self.corpus.values(stored, code);
        if modifier == Some("missing") {
            let present = match definition.kind {
                // A composite has a value when every component does.
                SearchParamType::Composite => items.iter().any(|item| {
                    definition
                        .components
                        .iter()
                        .zip(&item.components)
                        .all(|(c, parts)| {
                            let kind = param(&stored.resource_type, &c.code)
                                .expect("a component")
                                .kind;
                            parts.iter().any(|part| has_value(kind, part))
                        })
                }),
                kind => items.iter().any(|item| has_value(kind, item)),
            };
            return present == (value == "false");
        }
        let any = |test: &dyn Fn(&Item, &str) -> bool| {
            alternatives
                .iter()
                .any(|v| items.iter().any(|item| test(item, v)))
        };
        match (definition.kind, modifier) {
            (SearchParamType::Token, None) => any(&|item, v| token_matches(item, v)),
            // "return all resources that do not have a matching item", including those with
            // no value at all. With several values, a resource matching any of them is left out.
            (SearchParamType::Token, Some("not")) => !any(&|item, v| token_matches(item, v)),
            (SearchParamType::Token, Some("text")) => any(&|item, v| {
                token_texts(item)
                    .iter()
                    .any(|text| string_matches(text, None, v))
            }),
            (SearchParamType::Token, Some("of-type")) => any(&|item, v| of_type(item, v)),
            (SearchParamType::String, modifier) => any(&|item, v| {
                strings(item)
                    .iter()
                    .any(|text| string_matches(text, modifier, v))
            }),
            (SearchParamType::Reference, Some("identifier")) => any(&|item, v| {
                item.type_name == "Reference"
                    && token_pairs_match(&identifier_pair(&item.json["identifier"]), v)
            }),
            (SearchParamType::Reference, modifier) => alternatives.iter().any(|v| {
                let v = unescape(v);
                items
                    .iter()
                    .filter_map(target)
                    .any(|t| reference_matches(&t, modifier, &v))
            }),
            (SearchParamType::Date, None) => {
                any(&|item, v| item_range(item).is_some_and(|(low, high)| self.date(low, high, v)))
            }
            (SearchParamType::Number, None) => {
                any(&|item, v| number_of(item).is_some_and(|n| number_matches(n, v)))
            }
            (SearchParamType::Quantity, None) => any(&|item, v| quantity_matches(item, v)),
            (SearchParamType::Uri, modifier) => any(&|item, v| {
                item.json
                    .as_str()
                    .is_some_and(|uri| uri_matches(uri, modifier, &unescape(v)))
            }),
            (SearchParamType::Composite, None) => {
                let kinds: Vec<SearchParamType> = definition
                    .components
                    .iter()
                    .map(|c| {
                        param(&stored.resource_type, &c.code)
                            .expect("a component")
                            .kind
                    })
                    .collect();
                any(&|item, v| self.composite(item, &kinds, v))
            }
            (kind, modifier) => panic!("the generator asked for {kind:?} with {modifier:?}"),
        }
    }

    /// The date rules of 3.1.1.4.5 on the target range `[low, high]` (inclusive).
    fn date(&self, low: i64, high: i64, value: &str) -> bool {
        let (prefix, date) = prefix(value);
        let (search_low, search_high) =
            date_range(date).unwrap_or_else(|| panic!("'{date}' is a search date"));
        let within = search_low <= low && high <= search_high;
        match prefix {
            Prefix::Eq => within,
            Prefix::Ne => !within,
            Prefix::Gt => high > search_high,
            Prefix::Lt => low < search_low,
            Prefix::Ge => high > search_high || within,
            Prefix::Le => low < search_low || within,
            Prefix::Sa => low > search_high,
            Prefix::Eb => high < search_low,
            // R4 recommends 10% of the gap between now and the date; this server also widens
            // by at least a day. The target must overlap the widened range.
            Prefix::Ap => {
                let slack = ((self.now - search_low).abs() / 10).max(MICROS_PER_DAY);
                low <= search_high.saturating_add(slack) && high >= search_low.saturating_sub(slack)
            }
        }
    }

    fn composite(&self, item: &Item, kinds: &[SearchParamType], value: &str) -> bool {
        let parts = split_unescaped(value, '$');
        parts.len() == kinds.len()
            && item.components.len() == kinds.len()
            && parts.iter().zip(kinds).zip(&item.components).all(
                |((part, kind), component_items)| {
                    component_items.iter().any(|component| match kind {
                        SearchParamType::Token => token_matches(component, part),
                        SearchParamType::Quantity => quantity_matches(component, part),
                        SearchParamType::Number => {
                            number_of(component).is_some_and(|n| number_matches(n, part))
                        }
                        SearchParamType::Date => item_range(component)
                            .is_some_and(|(low, high)| self.date(low, high, part)),
                        SearchParamType::String => strings(component)
                            .iter()
                            .any(|text| string_matches(text, None, part)),
                        other => panic!("a composite component of type {other:?}"),
                    })
                },
            )
    }

    /// The references a reference parameter of `stored` holds.
    fn targets(&self, stored: &Stored, code: &str) -> Vec<Target> {
        self.corpus
            .values(stored, code)
            .iter()
            .filter_map(target)
            .collect()
    }
}

/// Whether an item gives the parameter "a value" for `:missing`: something a search of the
/// parameter's type could match. A CodeableConcept with only text, a Reference with only a
/// display, and a reference to a contained resource have none (the server does not search
/// contained resources).
fn has_value(kind: SearchParamType, item: &Item) -> bool {
    match kind {
        SearchParamType::Token => !token_pairs(item).is_empty(),
        SearchParamType::String => strings(item).iter().any(|s| !s.is_empty()),
        SearchParamType::Reference => {
            target(item).is_some() || item.json.get("identifier").is_some()
        }
        SearchParamType::Date => item_range(item).is_some(),
        SearchParamType::Number => number_of(item).is_some(),
        SearchParamType::Quantity => quantity_of(item).is_some(),
        SearchParamType::Uri => item.json.as_str().is_some_and(|s| !s.is_empty()),
        SearchParamType::Composite | SearchParamType::Special => {
            unreachable!("composites are decided component by component")
        }
    }
}

fn text(value: &Value) -> Option<&str> {
    value.as_str().filter(|s| !s.is_empty())
}

/// (system, code) pairs of a token item (the table in 3.1.1.4.10), and whether the code is a
/// `string`, which matches without regard to case.
pub(super) fn token_pairs(item: &Item) -> Vec<(Option<String>, String, bool)> {
    let json = &item.json;
    let coding = |c: &Value| {
        text(&c["code"]).map(|code| {
            (
                text(&c["system"]).map(str::to_owned),
                code.to_owned(),
                false,
            )
        })
    };
    match item.type_name.as_str() {
        "Coding" => coding(json).into_iter().collect(),
        "CodeableConcept" => json["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(coding)
            .collect(),
        "Identifier" => identifier_pair(json),
        // ContactPoint has no system column in R4: only `[parameter]=[code]` is allowed.
        "ContactPoint" => text(&json["value"])
            .map(|v| (None, v.to_owned(), false))
            .into_iter()
            .collect(),
        "boolean" | "System.Boolean" => json
            .as_bool()
            .map(|b| (None, b.to_string(), false))
            .into_iter()
            .collect(),
        _ => match json {
            Value::String(s) if !s.is_empty() => {
                vec![(None, s.clone(), item.type_name == "string")]
            }
            Value::Number(n) => vec![(None, n.to_string(), false)],
            _ => Vec::new(),
        },
    }
}

fn identifier_pair(json: &Value) -> Vec<(Option<String>, String, bool)> {
    text(&json["value"])
        .map(|v| {
            (
                text(&json["system"]).map(str::to_owned),
                v.to_owned(),
                false,
            )
        })
        .into_iter()
        .collect()
}

fn token_matches(item: &Item, value: &str) -> bool {
    token_pairs_match(&token_pairs(item), value)
}

/// `code`, `system|code`, `|code` (no system) and `system|` (3.1.1.4.10). Codes match
/// case-sensitively, as the code systems in the sample are; string values ignore case.
pub(super) fn token_pairs_match(pairs: &[(Option<String>, String, bool)], value: &str) -> bool {
    let (first, rest) = split_once_unescaped(value, '|');
    let same = |a: &str, b: &str, fold: bool| {
        if fold {
            a.to_lowercase() == b.to_lowercase()
        } else {
            a == b
        }
    };
    pairs.iter().any(|(system, code, fold)| match &rest {
        None => same(code, &unescape(&first), *fold),
        Some(rest) if rest.is_empty() => system.as_deref() == Some(&*unescape(&first)),
        Some(rest) if first.is_empty() => system.is_none() && same(code, &unescape(rest), *fold),
        Some(rest) => {
            system.as_deref() == Some(&*unescape(&first)) && same(code, &unescape(rest), *fold)
        }
    })
}

/// The text a token's `:text` searches: CodeableConcept.text, Coding.display and
/// Identifier.type.text.
pub(super) fn token_texts(item: &Item) -> Vec<String> {
    let json = &item.json;
    let mut texts = Vec::new();
    match item.type_name.as_str() {
        "Coding" => texts.extend(text(&json["display"]).map(str::to_owned)),
        "CodeableConcept" => {
            texts.extend(text(&json["text"]).map(str::to_owned));
            for coding in json["coding"].as_array().into_iter().flatten() {
                texts.extend(text(&coding["display"]).map(str::to_owned));
            }
        }
        "Identifier" => texts.extend(text(&json["type"]["text"]).map(str::to_owned)),
        _ => {}
    }
    texts
}

/// `:of-type=[type system]|[type code]|[value]`.
fn of_type(item: &Item, value: &str) -> bool {
    let parts = split_unescaped(value, '|');
    let [system, code, identifier] = parts.as_slice() else {
        panic!("'{value}' has three parts");
    };
    item.type_name == "Identifier"
        && text(&item.json["value"]) == Some(&*unescape(identifier))
        && item.json["type"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                text(&c["system"]) == Some(&*unescape(system))
                    && text(&c["code"]) == Some(&*unescape(code))
            })
}

/// The strings of a string item: a HumanName or Address searches every string part of it
/// (3.1.1.4.8), not `use` or `period`.
pub(super) fn strings(item: &Item) -> Vec<String> {
    let parts: &[&str] = match item.type_name.as_str() {
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
        _ => return text(&item.json).map(str::to_owned).into_iter().collect(),
    };
    let mut out = Vec::new();
    for part in parts {
        match &item.json[*part] {
            Value::String(s) => out.push(s.clone()),
            Value::Array(values) => {
                out.extend(values.iter().filter_map(Value::as_str).map(str::to_owned))
            }
            _ => {}
        }
    }
    out
}

fn string_matches(text: &str, modifier: Option<&str>, value: &str) -> bool {
    let value = unescape(value);
    match modifier {
        None => normalize(text).starts_with(&normalize(&value)),
        Some("exact") => text == value,
        Some("contains") => normalize(text).contains(&normalize(&value)),
        Some(other) => panic!("string modifier :{other}"),
    }
}

/// The reference an item holds. `#id` points into the resource itself and is not searchable.
pub(super) fn target(item: &Item) -> Option<Target> {
    let reference = match item.type_name.as_str() {
        "Reference" => text(&item.json["reference"])?,
        "canonical" | "uri" | "url" => {
            let url = text(&item.json)?;
            return Some(match url.split_once('|') {
                Some((url, version)) => Target::Url(url.to_owned(), Some(version.to_owned())),
                None => Target::Url(url.to_owned(), None),
            });
        }
        _ => return None,
    };
    if reference.starts_with('#') {
        return None;
    }
    if reference.contains("://") || reference.starts_with("urn:") {
        return Some(Target::Url(reference.to_owned(), None));
    }
    let mut parts = reference.split('/');
    let (resource_type, id) = (parts.next()?, parts.next()?);
    Some(Target::Local(resource_type.to_owned(), id.to_owned()))
}

/// `[id]`, `[type]/[id]`, `:[type]=[id]` and `[url]` (3.1.1.4.12). A URL under this server's
/// base is the same reference as its relative form.
fn reference_matches(target: &Target, type_modifier: Option<&str>, value: &str) -> bool {
    let local = value
        .strip_prefix(BASE)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(value);
    match target {
        Target::Local(t, id) => {
            if local.contains("://") || local.starts_with("urn:") {
                return false;
            }
            match local.split_once('/') {
                Some((vt, vid)) => t == vt && id == vid && type_modifier.is_none_or(|m| m == t),
                None => id == local && type_modifier.is_none_or(|m| m == t),
            }
        }
        Target::Url(url, version) => match value.split_once('|') {
            Some((u, v)) => url == u && version.as_deref() == Some(v),
            None => url == value,
        },
    }
}

/// The inclusive range of instants a date-like item covers (3.1.1.4.7): a date, dateTime or
/// instant by its precision, a Period by its ends (an open end is unbounded), a Timing by the
/// outer limits of its events and bounds.
pub(super) fn item_range(item: &Item) -> Option<(i64, i64)> {
    let json = &item.json;
    match item.type_name.as_str() {
        "date" | "dateTime" | "instant" => date_range(json.as_str()?),
        "Period" => {
            let start = text(&json["start"]).map(|s| date_range(s).expect("a start").0);
            let end = text(&json["end"]).map(|e| date_range(e).expect("an end").1);
            if start.is_none() && end.is_none() {
                return None;
            }
            Some((start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX)))
        }
        "Timing" => {
            let mut ranges: Vec<(i64, i64)> = json["event"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| date_range(e.as_str()?))
                .collect();
            let bounds = &json["repeat"]["boundsPeriod"];
            if bounds.is_object() {
                ranges.extend(item_range(&Item {
                    type_name: "Period".into(),
                    json: bounds.clone(),
                    components: Vec::new(),
                }));
            }
            let low = ranges.iter().map(|r| r.0).min()?;
            let high = ranges.iter().map(|r| r.1).max()?;
            Some((low, high))
        }
        _ => None,
    }
}

fn number_of(item: &Item) -> Option<Decimal> {
    match &item.json {
        Value::Number(n) => Decimal::parse(&n.to_string()),
        _ => None,
    }
}

/// Number rules (3.1.1.4.6): `eq` and `ne` use the range the search value's precision implies;
/// the other prefixes compare with the value exactly ("the implicit precision of the number is
/// ignored"). The stored value is taken as written, as a point. `ap` is this server's choice:
/// within 10% of the value, and at least the value's own precision.
fn number_matches(target: Decimal, value: &str) -> bool {
    let (prefix, number) = prefix(value);
    compare_number(
        prefix,
        target,
        Decimal::parse(number).expect("a search number"),
        Decimal::half_step(number).expect("a search number"),
    )
}

fn compare_number(prefix: Prefix, target: Decimal, value: Decimal, half: Decimal) -> bool {
    let (low, high) = (value.sub(half), value.add(half));
    let in_range = low <= target && target < high;
    match prefix {
        Prefix::Eq => in_range,
        Prefix::Ne => !in_range,
        Prefix::Gt | Prefix::Sa => target > value,
        Prefix::Lt | Prefix::Eb => target < value,
        Prefix::Ge => target >= value,
        Prefix::Le => target <= value,
        Prefix::Ap => {
            let slack = value.abs().tenth().max(half.add(half));
            value.sub(slack) <= target && target <= value.add(slack)
        }
    }
}

/// A quantity item: value as written, system, code, unit.
pub(super) struct Quantity {
    pub value: Decimal,
    pub system: Option<String>,
    pub code: Option<String>,
    pub unit: Option<String>,
}

pub(super) fn quantity_of(item: &Item) -> Option<Quantity> {
    let json = &item.json;
    let field = |name: &str| text(&json[name]).map(str::to_owned);
    match item.type_name.as_str() {
        "Quantity" | "Age" | "Count" | "Distance" | "Duration" | "SimpleQuantity"
        | "MoneyQuantity" => Some(Quantity {
            value: Decimal::parse(&json.get("value")?.to_string())?,
            system: field("system"),
            code: field("code"),
            unit: field("unit"),
        }),
        "Money" => Some(Quantity {
            value: Decimal::parse(&json.get("value")?.to_string())?,
            system: Some("urn:iso:std:iso:4217".into()),
            code: field("currency"),
            unit: None,
        }),
        _ => None,
    }
}

/// Quantity rules (3.1.1.4.11): `[prefix][number]` on any unit; `|[system]|[code]` on that
/// system and code; `||[code]` on the code or the human unit. UCUM units the server can
/// convert also match through canonical units ("any value where the units can be converted").
fn quantity_matches(item: &Item, value: &str) -> bool {
    let Some(quantity) = quantity_of(item) else {
        return false;
    };
    let (prefix, rest) = prefix(value);
    let parts = split_unescaped(rest, '|');
    let number = &parts[0];
    let search = Decimal::parse(number).expect("a search number");
    let half = Decimal::half_step(number).expect("a search number");
    let (system, code) = match parts.as_slice() {
        [_] => return compare_number(prefix, quantity.value, search, half),
        // `[number]||` names no unit: read as `[number]` (R4 does not say; this server's choice).
        [_, system, code] if system.is_empty() && code.is_empty() => {
            return compare_number(prefix, quantity.value, search, half);
        }
        [_, system, code] => (unescape(system), unescape(code)),
        _ => panic!("'{value}' is a quantity"),
    };
    let literal = (system.is_empty() || quantity.system.as_deref() == Some(&*system))
        && (quantity.code.as_deref() == Some(&*code)
            || system.is_empty() && quantity.unit.as_deref() == Some(&*code))
        && compare_number(prefix, quantity.value, search, half);
    let canonical = (system.is_empty() || system == UCUM)
        && quantity.system.as_deref() == Some(UCUM)
        && match (ucum(&code), quantity.code.as_deref().and_then(ucum)) {
            (Some((base, factor)), Some((target_base, target_factor))) => {
                base == target_base
                    && compare_number(
                        prefix,
                        quantity.value.mul(target_factor),
                        search.mul(factor),
                        half.mul(factor),
                    )
            }
            _ => false,
        };
    literal || canonical
}

/// Uri rules (3.1.1.4.9): exact by default; `:below` when the value starts with the search
/// uri; `:above` when the search uri starts with the value at a path boundary.
fn uri_matches(uri: &str, modifier: Option<&str>, value: &str) -> bool {
    match modifier {
        None => uri == value,
        Some("below") => uri.starts_with(value),
        Some("above") => {
            value == uri
                || value.starts_with(uri)
                    && (uri.ends_with('/') || value[uri.len()..].starts_with('/'))
        }
        Some(other) => panic!("uri modifier :{other}"),
    }
}
