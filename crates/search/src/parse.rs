//! From a FHIR query string to the intermediate form: parameter names with modifiers, values
//! with their escapes and prefixes, checked against the parameters in force.

use fhir_model::SearchParamType;

use crate::query::{Filter, ReferenceTarget, SearchQuery, StringTest, TokenColumn, TotalMode};
use crate::registry::{Param, Registry};
use crate::text::normalize;

/// The largest page a client may ask for.
pub const MAX_COUNT: usize = 1000;
/// The page size when the client does not say.
pub const DEFAULT_COUNT: usize = 20;

/// A search the server could not understand. Always names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("search parameter '{param}': {message}")]
pub struct SearchError {
    pub param: String,
    pub message: String,
}

impl SearchError {
    fn new(param: &str, message: impl Into<String>) -> SearchError {
        SearchError {
            param: param.to_owned(),
            message: message.into(),
        }
    }
}

/// How to treat parameters the server does not know (`Prefer: handling=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Handling {
    #[default]
    Lenient,
    Strict,
}

/// A parsed search: the query, and what of the request was applied and what was ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSearch {
    pub query: SearchQuery,
    /// The parameters applied, as they should appear in the self link.
    pub applied: Vec<(String, String)>,
    /// Parameters ignored because they are unknown or unsupported.
    pub ignored: Vec<String>,
}

/// Whether searches on parameters of this type are implemented (the CapabilityStatement lists
/// only those).
pub fn supports(kind: SearchParamType) -> bool {
    matches!(
        kind,
        SearchParamType::Token | SearchParamType::String | SearchParamType::Reference
    )
}

/// Parses the parameters of a search on `resource_type`.
pub fn parse_search(
    registry: &Registry,
    resource_type: &str,
    params: &[(String, String)],
    handling: Handling,
) -> Result<ParsedSearch, SearchError> {
    let mut query = SearchQuery::of_type(resource_type);
    query.count = DEFAULT_COUNT;
    let mut applied = Vec::new();
    let mut ignored = Vec::new();
    for (name, value) in params {
        let outcome = parse_one(registry, resource_type, name, value, &mut query)?;
        match outcome {
            Applied::Yes => applied.push((name.clone(), value.clone())),
            Applied::Ignored(reason) => {
                if handling == Handling::Strict {
                    return Err(SearchError::new(name, reason));
                }
                ignored.push(name.clone());
            }
        }
    }
    Ok(ParsedSearch {
        query,
        applied,
        ignored,
    })
}

enum Applied {
    Yes,
    Ignored(String),
}

fn parse_one(
    registry: &Registry,
    resource_type: &str,
    name: &str,
    value: &str,
    query: &mut SearchQuery,
) -> Result<Applied, SearchError> {
    match name {
        "_count" => {
            let count: usize = value.parse().map_err(|_| {
                SearchError::new(name, format!("'{value}' is not a non-negative integer"))
            })?;
            query.count = count.min(MAX_COUNT);
            return Ok(Applied::Yes);
        }
        "_total" => {
            query.total = match value {
                "none" => TotalMode::None,
                "estimate" => TotalMode::Estimate,
                "accurate" => TotalMode::Accurate,
                _ => return Err(SearchError::new(name, "must be none, estimate or accurate")),
            };
            return Ok(Applied::Yes);
        }
        "_cursor" => {
            let after_row: i64 = value
                .parse()
                .map_err(|_| SearchError::new(name, "not a cursor from a next link"))?;
            query.cursor = Some(crate::query::Cursor {
                after_row,
                sort_values: Vec::new(),
            });
            return Ok(Applied::Yes);
        }
        // Handled by the HTTP edge, not by the query.
        "_format" | "_pretty" => return Ok(Applied::Yes),
        _ => {}
    }
    let (code, modifier) = match name.split_once(':') {
        Some((code, modifier)) => (code, Some(modifier)),
        None => (name, None),
    };
    if code == "_id" {
        if let Some(modifier) = modifier {
            return Err(SearchError::new(
                name,
                format!("modifier ':{modifier}' is not supported on _id"),
            ));
        }
        let ids: Vec<Box<str>> = split_values(value)
            .into_iter()
            .map(String::into_boxed_str)
            .collect();
        query.filters.push(Filter::Id(ids));
        return Ok(Applied::Yes);
    }
    let Some(param) = registry.get(resource_type, code) else {
        return Ok(Applied::Ignored(format!(
            "unknown search parameter for {resource_type}"
        )));
    };
    let values = split_values(value);
    if values.iter().any(String::is_empty) {
        return Err(SearchError::new(name, "empty value"));
    }
    let mut any_of = Vec::with_capacity(values.len());
    for v in &values {
        let filter = match param.kind {
            SearchParamType::Token => token_filter(param, name, modifier, v)?,
            SearchParamType::String => string_filter(param, name, modifier, v)?,
            SearchParamType::Reference => reference_filter(param, name, modifier, v)?,
            other => {
                debug_assert!(!supports(other));
                return Ok(Applied::Ignored(format!(
                    "{} parameters are not supported yet",
                    other.as_str()
                )));
            }
        };
        any_of.push(filter);
    }
    query.filters.push(if any_of.len() == 1 {
        any_of.pop().expect("one")
    } else {
        Filter::AnyOf(any_of)
    });
    Ok(Applied::Yes)
}

/// Splits a value on unescaped commas and removes the escapes (`\,` `\|` `\$` `\\`) that only
/// protect separators. `|` and `$` escapes are kept for the token and composite parsers.
pub fn split_values(value: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(',') => current.push(','),
                Some(other) => {
                    current.push('\\');
                    current.push(other);
                }
                None => current.push('\\'),
            },
            ',' => values.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    values.push(current);
    values
}

/// Splits `system|code` on the first unescaped `|`, unescaping both halves.
fn split_pipe(value: &str) -> (Option<String>, String) {
    let mut before = String::new();
    let mut chars = value.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, next)) = chars.next() {
                    before.push(next);
                }
            }
            '|' => return (Some(before), unescape(&value[i + 1..])),
            other => before.push(other),
        }
    }
    (None, before)
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn token_filter(
    param: &Param,
    name: &str,
    modifier: Option<&str>,
    value: &str,
) -> Result<Filter, SearchError> {
    let negate = match modifier {
        None => false,
        Some("not") => true,
        Some(other) => {
            return Err(SearchError::new(
                name,
                format!("modifier ':{other}' is not supported on tokens"),
            ));
        }
    };
    let key = param.key;
    let filter = match split_pipe(value) {
        (None, code) => Filter::Token {
            param: key,
            column: TokenColumn::Code,
            hash: key.code_hash(&code),
        },
        (Some(system), code) if code.is_empty() => {
            if system.is_empty() {
                return Err(SearchError::new(name, "'|' needs a system or a code"));
            }
            Filter::Token {
                param: key,
                column: TokenColumn::System,
                hash: key.system_hash(&system),
            }
        }
        (Some(system), code) => Filter::Token {
            param: key,
            column: TokenColumn::SystemCode,
            hash: key.system_code_hash(&system, &code),
        },
    };
    Ok(if negate {
        Filter::Not(Box::new(filter))
    } else {
        filter
    })
}

fn string_filter(
    param: &Param,
    name: &str,
    modifier: Option<&str>,
    value: &str,
) -> Result<Filter, SearchError> {
    let value = unescape(value);
    let test = match modifier {
        None => StringTest::Prefix(normalize(&value).into()),
        Some("exact") => StringTest::Exact(value.into()),
        Some("contains") => StringTest::Contains(normalize(&value).into()),
        Some(other) => {
            return Err(SearchError::new(
                name,
                format!("modifier ':{other}' is not supported on strings"),
            ));
        }
    };
    Ok(Filter::String {
        param: param.key,
        test,
    })
}

fn reference_filter(
    param: &Param,
    name: &str,
    modifier: Option<&str>,
    value: &str,
) -> Result<Filter, SearchError> {
    let value = unescape(value);
    let targets = &param.definition.targets;
    let type_modifier = match modifier {
        None => None,
        Some(m) if targets.iter().any(|t| &**t == m) => Some(m),
        Some(other) => {
            return Err(SearchError::new(
                name,
                format!("modifier ':{other}' is not a target type of this reference"),
            ));
        }
    };
    if value.starts_with("http://") || value.starts_with("https://") || value.starts_with("urn:") {
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
    let target = match value.split_once('/') {
        Some((resource_type, id)) if !id.is_empty() && !id.contains('/') => {
            if type_modifier.is_some_and(|m| m != resource_type) {
                return Err(SearchError::new(
                    name,
                    "the type modifier and the reference's type disagree",
                ));
            }
            ReferenceTarget::Local {
                types: vec![resource_type.into()],
                id: id.into(),
            }
        }
        Some(_) => {
            return Err(SearchError::new(
                name,
                format!("'{value}' is not a reference"),
            ));
        }
        None => {
            let types = match type_modifier {
                Some(m) => vec![m.into()],
                None => targets.clone(),
            };
            ReferenceTarget::Local {
                types,
                id: value.into(),
            }
        }
    };
    Ok(Filter::Reference {
        param: param.key,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_on_unescaped_commas_only() {
        assert_eq!(split_values("a,b\\,c"), ["a", "b,c"]);
        assert_eq!(split_values("a\\|b"), ["a\\|b"]);
        assert_eq!(
            split_pipe("http://x\\|y|123"),
            (Some("http://x|y".to_owned()), "123".to_owned())
        );
        assert_eq!(split_pipe("123"), (None, "123".to_owned()));
        assert_eq!(split_pipe("|123"), (Some(String::new()), "123".to_owned()));
    }
}
