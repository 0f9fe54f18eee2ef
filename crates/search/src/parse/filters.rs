//! One parameter with its modifier and values, as filters: the meaning of each parameter type
//! and modifier lives here.

use fhir_model::SearchParamType;

use super::values::{
    self, Prefix, date_predicate, decimal_range, number_predicate, snap, split_prefix,
    split_unescaped, split_values, unescape,
};
use super::{Parsed, Scope, SearchError};
use crate::keys::ParamKey;
use crate::query::{
    CompositeTest, Filter, IndexTable, QuantityUnits, ReferenceTarget, StringTest, TokenColumn,
    UriTest,
};
use crate::registry::{Param, Registry};
use crate::text::normalize;

/// A parameter that is not a chain: special parameters first, then the registry's.
pub(super) fn leaf(
    scope: &Scope<'_>,
    resource_type: &str,
    name: &str,
    code: &str,
    modifier: Option<&str>,
    value: &str,
) -> Result<Parsed, SearchError> {
    let values = split_values(value);
    if values.iter().any(String::is_empty) {
        return Err(SearchError::new(name, "has an empty value"));
    }
    match code {
        "_id" => {
            let ids = Filter::Id(
                values
                    .iter()
                    .map(|v| unescape(v).into_boxed_str())
                    .collect(),
            );
            return match modifier {
                None => Ok(Parsed::Filter(ids)),
                Some("not") => Ok(Parsed::Filter(Filter::Not(Box::new(ids)))),
                Some("missing") => Ok(Parsed::Filter(never_missing(name, value)?)),
                Some(other) => Err(unsupported_modifier(name, other, "_id")),
            };
        }
        "_lastUpdated" => {
            match modifier {
                None => {}
                Some("missing") => return Ok(Parsed::Filter(never_missing(name, value)?)),
                Some(other) => return Err(unsupported_modifier(name, other, "_lastUpdated")),
            }
            let filters = values
                .iter()
                .map(|v| {
                    let (prefix, date) = prefix_of(name, v)?;
                    let (low, high) =
                        values::date_range(date).ok_or_else(|| not_a(name, date, "date"))?;
                    Ok(Filter::LastUpdated(date_predicate(
                        prefix,
                        low,
                        high,
                        now(),
                    )))
                })
                .collect::<Result<Vec<_>, SearchError>>()?;
            return Ok(Parsed::Filter(any_of(filters)));
        }
        "_list" => {
            if let Some(other) = modifier {
                return Err(unsupported_modifier(name, other, "_list"));
            }
            let list_item = ParamKey::new("List", "item");
            let filters = values
                .iter()
                .map(|v| Filter::Has {
                    source_type: "List".into(),
                    param: list_item,
                    filter: Box::new(Filter::Id(vec![unescape(v).into()])),
                })
                .collect();
            return Ok(Parsed::Filter(any_of(filters)));
        }
        "_text" | "_content" | "_query" | "_filter" => {
            return Ok(Parsed::Ignored(format!("{code} is not supported")));
        }
        _ => {}
    }
    let Some(param) = scope.registry.get(resource_type, code) else {
        return Ok(Parsed::Ignored(format!(
            "unknown search parameter for {resource_type}"
        )));
    };
    if let Some(parts) = scope.registry.union_parts(param) {
        return union(scope, resource_type, name, param, parts, modifier, value);
    }
    if modifier == Some("missing") {
        let missing = missing_value(name, value)?;
        let Some(table) = IndexTable::of(param.kind) else {
            return Ok(Parsed::Ignored(format!("{code} is not supported")));
        };
        let own = Filter::Missing {
            param: param.key,
            table,
            missing,
        };
        if param.kind != SearchParamType::Reference {
            return Ok(Parsed::Filter(own));
        }
        // A logical reference (an identifier without a literal reference) is a value too; its
        // identifier is indexed under the derived `:identifier` key, in the token table.
        let logical = Filter::Missing {
            param: ParamKey::derived(&param.resource_type, &param.code, "identifier"),
            table: IndexTable::Token,
            missing,
        };
        return Ok(Parsed::Filter(if missing {
            Filter::AllOf(vec![own, logical])
        } else {
            Filter::AnyOf(vec![own, logical])
        }));
    }
    let mut filters = Vec::with_capacity(values.len());
    for v in &values {
        filters.push(match param.kind {
            SearchParamType::Token => token(param, name, modifier, v)?,
            SearchParamType::String => string(param, name, modifier, v)?,
            SearchParamType::Reference => reference(param, name, modifier, v, scope.base)?,
            SearchParamType::Date => {
                no_modifier(name, modifier, "date")?;
                let (prefix, date) = prefix_of(name, v)?;
                let (low, high) =
                    values::date_range(date).ok_or_else(|| not_a(name, date, "date"))?;
                Filter::Date {
                    param: param.key,
                    predicate: date_predicate(prefix, low, high, now()),
                    single: param.single,
                }
            }
            SearchParamType::Number => {
                no_modifier(name, modifier, "number")?;
                let (prefix, number) = prefix_of(name, v)?;
                let (value, low, high) =
                    decimal_range(number).ok_or_else(|| not_a(name, number, "number"))?;
                Filter::Number {
                    param: param.key,
                    predicate: number_predicate(prefix, value, low, high),
                }
            }
            SearchParamType::Quantity => {
                no_modifier(name, modifier, "quantity")?;
                quantity(param.key, name, v)?
            }
            SearchParamType::Uri => uri(param, name, modifier, v)?,
            SearchParamType::Composite => {
                no_modifier(name, modifier, "composite")?;
                composite(scope.registry, param, name, v)?
            }
            SearchParamType::Special => {
                return Ok(Parsed::Ignored(format!("{code} is not supported")));
            }
        });
    }
    let filter = any_of(filters);
    Ok(Parsed::Filter(
        if param.kind == SearchParamType::Token && modifier == Some("not") {
            Filter::Not(Box::new(filter))
        } else {
            filter
        },
    ))
}

/// A parameter whose rows are the union of two others' (`Registry::union_parts`): either
/// part matches. A token's `:not` holds where neither part has the value, `:missing=true`
/// where neither part has a value at all.
fn union(
    scope: &Scope<'_>,
    resource_type: &str,
    name: &str,
    param: &Param,
    parts: [&std::sync::Arc<Param>; 2],
    modifier: Option<&str>,
    value: &str,
) -> Result<Parsed, SearchError> {
    let negated = modifier == Some("not") && param.kind == SearchParamType::Token;
    let part_modifier = if negated { None } else { modifier };
    let mut filters = Vec::with_capacity(2);
    for part in parts {
        match leaf(scope, resource_type, name, &part.code, part_modifier, value)? {
            Parsed::Filter(filter) => filters.push(filter),
            ignored @ Parsed::Ignored(_) => return Ok(ignored),
        }
    }
    let filter = if modifier == Some("missing") && missing_value(name, value)? {
        Filter::AllOf(filters)
    } else {
        Filter::AnyOf(filters)
    };
    Ok(Parsed::Filter(if negated {
        Filter::Not(Box::new(filter))
    } else {
        filter
    }))
}

fn missing_value(name: &str, value: &str) -> Result<bool, SearchError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(SearchError::new(name, "':missing' takes true or false")),
    }
}

/// `:missing` on `_id` or `_lastUpdated`, which every resource has: `true` finds nothing,
/// `false` everything. R4 defines `:missing` on all parameters.
fn never_missing(name: &str, value: &str) -> Result<Filter, SearchError> {
    Ok(if missing_value(name, value)? {
        Filter::AnyOf(Vec::new())
    } else {
        Filter::AllOf(Vec::new())
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn any_of(mut filters: Vec<Filter>) -> Filter {
    if filters.len() == 1 {
        filters.pop().expect("one")
    } else {
        Filter::AnyOf(filters)
    }
}

fn unsupported_modifier(name: &str, modifier: &str, kind: &str) -> SearchError {
    SearchError::new(
        name,
        format!("the modifier ':{modifier}' is not supported on {kind} parameters"),
    )
}

fn no_modifier(name: &str, modifier: Option<&str>, kind: &str) -> Result<(), SearchError> {
    match modifier {
        None => Ok(()),
        Some(other) => Err(unsupported_modifier(name, other, kind)),
    }
}

fn not_a(name: &str, value: &str, what: &str) -> SearchError {
    SearchError::new(name, format!("'{value}' is not a valid {what}"))
}

fn prefix_of<'v>(name: &str, value: &'v str) -> Result<(Prefix, &'v str), SearchError> {
    split_prefix(value).map_err(|message| SearchError::new(name, message))
}

/// A token value as a filter on one of the three token hashes.
fn token_hash(key: ParamKey, name: &str, value: &str) -> Result<(TokenColumn, i64), SearchError> {
    Ok(match split_unescaped(value, '|') {
        (code, None) => (TokenColumn::Code, key.code_hash(&code)),
        (system, Some(code)) if code.is_empty() => {
            if system.is_empty() {
                return Err(SearchError::new(name, "'|' needs a system or a code"));
            }
            (TokenColumn::System, key.system_hash(&system))
        }
        (system, Some(code)) => (
            TokenColumn::SystemCode,
            key.system_code_hash(&system, &unescape(&code)),
        ),
    })
}

fn token(
    param: &Param,
    name: &str,
    modifier: Option<&str>,
    value: &str,
) -> Result<Filter, SearchError> {
    let key = param.key;
    match modifier {
        None | Some("not") => {
            let (column, hash) = token_hash(key, name, value)?;
            Ok(Filter::Token {
                param: key,
                column,
                hash,
            })
        }
        Some("text") => Ok(Filter::String {
            param: ParamKey::derived(&param.resource_type, &param.code, "text"),
            test: StringTest::Prefix(searchable(name, &unescape(value))?),
        }),
        Some("of-type") => {
            // type-system|type-code|value
            let (type_system, rest) = split_unescaped(value, '|');
            let (type_code, identifier) = match rest {
                Some(rest) => split_unescaped(&rest, '|'),
                None => (String::new(), None),
            };
            let Some(identifier) = identifier.filter(|i| !i.is_empty() && !type_code.is_empty())
            else {
                return Err(SearchError::new(
                    name,
                    "':of-type' takes [type system]|[type code]|[value]",
                ));
            };
            let derived = ParamKey::derived(&param.resource_type, &param.code, "identifier");
            Ok(Filter::Token {
                param: derived,
                column: TokenColumn::SystemCode,
                hash: derived.system_code_hash(
                    &format!("{type_system}|{type_code}"),
                    &unescape(&identifier),
                ),
            })
        }
        Some(other) => Err(unsupported_modifier(name, other, "token")),
    }
}

fn string(
    param: &Param,
    name: &str,
    modifier: Option<&str>,
    value: &str,
) -> Result<Filter, SearchError> {
    let value = unescape(value);
    let test = match modifier {
        None => StringTest::Prefix(searchable(name, &value)?),
        Some("exact") => StringTest::Exact(value.into()),
        Some("contains") => StringTest::Contains(searchable(name, &value)?),
        Some(other) => return Err(unsupported_modifier(name, other, "string")),
    };
    Ok(Filter::String {
        param: param.key,
        test,
    })
}

/// A string search value normalised (case, accents and punctuation folded away), refused
/// when nothing is left: `family=%` would otherwise be a prefix of every name and match
/// every resource.
fn searchable(name: &str, value: &str) -> Result<Box<str>, SearchError> {
    let normalized = normalize(value);
    if normalized.is_empty() {
        return Err(SearchError::new(
            name,
            format!(
                "'{value}' has no letters or digits to search for (string search ignores case, accents and punctuation)"
            ),
        ));
    }
    Ok(normalized.into())
}

fn reference(
    param: &Param,
    name: &str,
    modifier: Option<&str>,
    value: &str,
    base: Option<&str>,
) -> Result<Filter, SearchError> {
    if modifier == Some("identifier") {
        let key = ParamKey::derived(&param.resource_type, &param.code, "identifier");
        let (column, hash) = token_hash(key, name, value)?;
        return Ok(Filter::Token {
            param: key,
            column,
            hash,
        });
    }
    let value = unescape(value);
    let targets = &param.definition.targets;
    let type_modifier = match modifier {
        None => None,
        Some(m) if fhir_model::r4().is_resource_type(m) => {
            if !targets.is_empty() && !targets.iter().any(|t| &**t == m) {
                return Err(SearchError::new(
                    name,
                    format!("'{m}' is not a target type of '{}'", param.code),
                ));
            }
            Some(m)
        }
        Some(other) => return Err(unsupported_modifier(name, other, "reference")),
    };
    // "A relative reference resolving to the same value as a specified absolute URL, or vice
    // versa, qualifies as a match" (search.html 3.1.1.4.12): under this server's base, the
    // URL is searched both as written and as the local reference it names.
    let local = base
        .and_then(|base| value.strip_prefix(base))
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| {
            rest.split_once('/')
                .is_some_and(|(t, _)| fhir_model::r4().is_resource_type(t))
        });
    if let Some(local) = local {
        let as_local = reference(param, name, modifier, local, None)?;
        let as_url = Filter::Reference {
            param: param.key,
            target: ReferenceTarget::Url {
                url: value.into(),
                version: None,
            },
        };
        return Ok(Filter::AnyOf(vec![as_local, as_url]));
    }
    if value.contains("://") || value.starts_with("urn:") {
        let (url, version) = match value.split_once('|') {
            Some((url, version)) => (url.to_owned(), Some(version.into())),
            None => (value.clone(), None),
        };
        return Ok(Filter::Reference {
            param: param.key,
            target: ReferenceTarget::Url {
                url: url.into(),
                version,
            },
        });
    }
    let target = match value.split('/').collect::<Vec<_>>().as_slice() {
        [id] => {
            let types = match type_modifier {
                Some(m) => vec![m.into()],
                None => targets.clone(),
            };
            ReferenceTarget::Local {
                types,
                id: (*id).into(),
            }
        }
        [resource_type, id] | [resource_type, id, "_history", _] if !id.is_empty() => {
            if !fhir_model::r4().is_resource_type(resource_type) {
                return Err(SearchError::new(
                    name,
                    format!("'{resource_type}' is not a resource type"),
                ));
            }
            if type_modifier.is_some_and(|m| m != *resource_type) {
                return Err(SearchError::new(
                    name,
                    "the type modifier and the reference's type disagree",
                ));
            }
            ReferenceTarget::Local {
                types: vec![(*resource_type).into()],
                id: (*id).into(),
            }
        }
        _ => {
            return Err(SearchError::new(
                name,
                format!("'{value}' is not a reference"),
            ));
        }
    };
    Ok(Filter::Reference {
        param: param.key,
        target,
    })
}

fn quantity(key: ParamKey, name: &str, value: &str) -> Result<Filter, SearchError> {
    let (prefix, rest) = prefix_of(name, value)?;
    let (number, units) = split_unescaped(rest, '|');
    let (value, low, high) =
        decimal_range(&number).ok_or_else(|| not_a(name, &number, "number"))?;
    let (system, code) = match units {
        None => (String::new(), String::new()),
        Some(units) => match split_unescaped(&units, '|') {
            (system, Some(code)) => (system, code),
            (_, None) => {
                return Err(SearchError::new(
                    name,
                    "a quantity is [number], or [number]|[system]|[code]",
                ));
            }
        },
    };
    if code.is_empty() {
        if !system.is_empty() {
            return Err(SearchError::new(name, "a quantity's system needs a code"));
        }
        return Ok(Filter::Quantity {
            param: key,
            predicate: number_predicate(prefix, value, low, high),
            units: QuantityUnits::Any,
        });
    }
    let as_written = Filter::Quantity {
        param: key,
        predicate: number_predicate(prefix, value, low, high),
        units: QuantityUnits::SystemCode(
            (!system.is_empty()).then(|| system.clone().into_boxed_str()),
            code.clone().into(),
        ),
    };
    let ucum = system.is_empty() || system == "http://unitsofmeasure.org";
    if ucum && let Some((unit, factor)) = crate::ucum::canonical(&code) {
        let canonical = Filter::Quantity {
            param: key,
            predicate: number_predicate(
                prefix,
                snap(value * factor),
                snap(low * factor),
                snap(high * factor),
            ),
            units: QuantityUnits::Canonical(unit.into()),
        };
        // Without a system the code may also be a quantity's own unit, UCUM or not
        // (`{"value": 250, "unit": "mg"}`), which has no canonical value.
        return Ok(if system.is_empty() {
            Filter::AnyOf(vec![canonical, as_written])
        } else {
            canonical
        });
    }
    Ok(as_written)
}

fn uri(
    param: &Param,
    name: &str,
    modifier: Option<&str>,
    value: &str,
) -> Result<Filter, SearchError> {
    let value = unescape(value);
    let test = match modifier {
        None => UriTest::Equals(value.into()),
        Some("below") => UriTest::Below(value.into()),
        Some("above") => {
            // Every ancestor of the value by path segment, the value itself included.
            let mut candidates: Vec<Box<str>> = Vec::new();
            let mut current = value.as_str();
            loop {
                candidates.push(current.into());
                match current.rfind('/') {
                    Some(i)
                        if i > 0
                            && !current[..i].ends_with('/')
                            && !current[..i].ends_with(':') =>
                    {
                        current = &current[..i]
                    }
                    _ => break,
                }
            }
            UriTest::Above(candidates)
        }
        Some(other) => return Err(unsupported_modifier(name, other, "uri")),
    };
    Ok(Filter::Uri {
        param: param.key,
        test,
    })
}

/// The quantity part of a composite (`...$gt100|http://unitsofmeasure.org|mm[Hg]`), as the
/// tests any of which may hold. A composite row keeps the quantity as written with its unit's
/// token hashes, not a canonical value: a UCUM unit the table converts is searched as the
/// same amount in every unit of its dimension, the way plain quantity search compares
/// canonical values.
fn composite_quantity(
    key: ParamKey,
    name: &str,
    value: &str,
) -> Result<Vec<CompositeTest>, SearchError> {
    let (prefix, rest) = prefix_of(name, value)?;
    let (number, units) = split_unescaped(rest, '|');
    let (value, low, high) =
        decimal_range(&number).ok_or_else(|| not_a(name, &number, "number"))?;
    let Some(units) = units else {
        return Ok(vec![CompositeTest::Range(number_predicate(
            prefix, value, low, high,
        ))]);
    };
    let (system, code) = match split_unescaped(&units, '|') {
        (system, Some(code)) if !code.is_empty() => (system, code),
        _ => {
            return Err(SearchError::new(
                name,
                "a quantity is [number], or [number]|[system]|[code]",
            ));
        }
    };
    let literal_unit = if system.is_empty() {
        (TokenColumn::Code, key.code_hash(&code))
    } else {
        (
            TokenColumn::SystemCode,
            key.system_code_hash(&system, &code),
        )
    };
    let literal = CompositeTest::Quantity {
        unit: literal_unit,
        predicate: number_predicate(prefix, value, low, high),
    };
    let ucum = system.is_empty() || system == "http://unitsofmeasure.org";
    let Some((canonical_unit, factor)) = crate::ucum::canonical(&code).filter(|_| ucum) else {
        return Ok(vec![literal]);
    };
    // With the UCUM system, the unit itself is among the units of its dimension.
    let mut tests = if system.is_empty() {
        vec![literal]
    } else {
        Vec::new()
    };
    for (unit, unit_factor) in crate::ucum::units_of(canonical_unit) {
        let convert = |x: f64| snap(x * factor / unit_factor);
        tests.push(CompositeTest::Quantity {
            unit: (
                TokenColumn::SystemCode,
                key.system_code_hash("http://unitsofmeasure.org", unit),
            ),
            predicate: number_predicate(prefix, convert(value), convert(low), convert(high)),
        });
    }
    Ok(tests)
}

fn composite(
    registry: &Registry,
    param: &Param,
    name: &str,
    value: &str,
) -> Result<Filter, SearchError> {
    let (first, second) = split_unescaped(value, '$');
    let Some(second) = second else {
        return Err(SearchError::new(
            name,
            "a composite value is [first]$[second]",
        ));
    };
    let [first_component, second_component] = param.definition.components.as_slice() else {
        return Err(SearchError::new(
            name,
            "only two-part composites are supported",
        ));
    };
    let kind_of = |code: &str| registry.get(&param.resource_type, code).map(|p| p.kind);
    if kind_of(&first_component.code) != Some(SearchParamType::Token) {
        return Err(SearchError::new(
            name,
            "only composites whose first part is a token are supported",
        ));
    }
    let first = token_hash(param.key, name, &first)?;
    let second = match kind_of(&second_component.code) {
        Some(SearchParamType::Token) => {
            let (column, hash) = token_hash(param.key, name, &second)?;
            CompositeTest::Token(column, hash)
        }
        Some(SearchParamType::Quantity) => {
            let seconds = composite_quantity(param.key, name, &second)?;
            let mut filters: Vec<Filter> = seconds
                .into_iter()
                .map(|second| Filter::Composite {
                    param: param.key,
                    first,
                    second,
                })
                .collect();
            return Ok(if filters.len() == 1 {
                filters.pop().expect("one")
            } else {
                Filter::AnyOf(filters)
            });
        }
        Some(SearchParamType::Number) => {
            let (prefix, rest) = prefix_of(name, &second)?;
            let (number, _units) = split_unescaped(rest, '|');
            let (value, low, high) =
                decimal_range(&number).ok_or_else(|| not_a(name, &number, "number"))?;
            CompositeTest::Range(number_predicate(prefix, value, low, high))
        }
        Some(SearchParamType::Date) => {
            let (prefix, date) = prefix_of(name, &second)?;
            let (low, high) = values::date_range(date).ok_or_else(|| not_a(name, date, "date"))?;
            CompositeTest::Range(date_predicate(prefix, low, high, now()))
        }
        Some(SearchParamType::String) => {
            CompositeTest::String(searchable(name, &unescape(&second))?)
        }
        _ => {
            return Err(SearchError::new(
                name,
                "this composite's second part is not supported",
            ));
        }
    };
    Ok(Filter::Composite {
        param: param.key,
        first,
        second,
    })
}
