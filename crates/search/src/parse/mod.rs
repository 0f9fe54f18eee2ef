//! From a FHIR query string to the intermediate form: parameter names with modifiers, chains
//! and reverse chains, values with their escapes and prefixes, and the result parameters
//! (`_count`, `_sort`, `_include`, `_summary`...), all checked against the parameters in force.

mod filters;
pub mod values;

use fhir_model::SearchParamType;

use crate::keys::{ParamKey, PatientKey};
use crate::query::{Cursor, Filter, Include, IndexTable, SearchQuery, SortBy, SortKey, TotalMode};
use crate::registry::Registry;

/// The largest page a client may ask for.
pub const MAX_COUNT: usize = 1000;
/// The page size when the client does not say.
pub const DEFAULT_COUNT: usize = 20;
/// How deep chains and reverse chains may nest.
const MAX_DEPTH: usize = 4;

/// A search the server could not understand. Always names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("search parameter '{param}': {message}")]
pub struct SearchError {
    pub param: String,
    pub message: String,
}

impl SearchError {
    pub(crate) fn new(param: &str, message: impl Into<String>) -> SearchError {
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

/// What a search is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchTarget<'a> {
    /// `GET [type]?...`
    Type(&'a str),
    /// `GET [base]?_type=...` (all types when `_type` is absent).
    System,
    /// `GET [compartment]/[id]/[type]?...`, e.g. `Patient/123/Observation`.
    Compartment {
        compartment: &'a str,
        id: &'a str,
        resource_type: &'a str,
    },
}

/// `_summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Summary {
    #[default]
    False,
    True,
    Text,
    Data,
    Count,
}

/// A parsed search: the query, how to shape the results, and what of the request was applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSearch {
    pub query: SearchQuery,
    pub summary: Summary,
    /// `_elements`: the top-level elements to return.
    pub elements: Option<Vec<String>>,
    /// The parameters applied, as they should appear in the self link.
    pub applied: Vec<(String, String)>,
    /// Parameters ignored because they are unknown or unsupported.
    pub ignored: Vec<String>,
}

/// Whether searches on parameters of this type are implemented (the CapabilityStatement lists
/// only those).
pub fn supports(kind: SearchParamType) -> bool {
    !matches!(kind, SearchParamType::Special)
}

/// What parsing a parameter needs besides the parameter: the parameters in force, and the
/// server's base URL, under which an absolute reference is the same as a relative one.
pub(crate) struct Scope<'a> {
    pub registry: &'a Registry,
    pub base: Option<&'a str>,
}

/// The outcome of one parameter.
pub(crate) enum Parsed {
    Filter(Filter),
    Ignored(String),
}

/// Parses a search. `base` is the server's base URL (`http://host/fhir`), if known: a reference
/// search by an absolute URL under it also finds the relative reference.
pub fn parse_search(
    registry: &Registry,
    base: Option<&str>,
    target: SearchTarget<'_>,
    params: &[(String, String)],
    handling: Handling,
) -> Result<ParsedSearch, SearchError> {
    // Every value may reach a store, and none may carry a control character: no FHIR string
    // holds one, and PostgreSQL's text cannot hold a NUL (it failed the whole request).
    for (name, value) in params {
        if let Some(c) = value
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err(SearchError::new(
                name,
                format!(
                    "the value contains the control character U+{:04X}",
                    u32::from(c)
                ),
            ));
        }
    }
    let mut types: Vec<Box<str>> = match target {
        SearchTarget::Type(t)
        | SearchTarget::Compartment {
            resource_type: t, ..
        } => vec![t.into()],
        SearchTarget::System => Vec::new(),
    };
    if target == SearchTarget::System
        && let Some((_, value)) = params.iter().find(|(name, _)| name == "_type")
    {
        for t in value.split(',').filter(|t| !t.is_empty()) {
            if !fhir_model::r4().is_resource_type(t) {
                return Err(SearchError::new(
                    "_type",
                    format!("'{t}' is not a resource type"),
                ));
            }
            types.push(t.into());
        }
    }
    let scope = Scope {
        registry,
        base: base.map(|b| b.trim_end_matches('/')),
    };
    let mut query = SearchQuery {
        types: types.clone(),
        count: DEFAULT_COUNT,
        ..SearchQuery::of_type("")
    };
    let mut parsed = ParsedSearch {
        query: query.clone(),
        summary: Summary::False,
        elements: None,
        applied: Vec::new(),
        ignored: Vec::new(),
    };
    let type_names: Vec<&str> = if types.is_empty() {
        fhir_model::r4()
            .resource_types()
            .iter()
            .map(|t| &**t)
            .collect()
    } else {
        types.iter().map(|t| &**t).collect()
    };

    if let SearchTarget::Compartment {
        compartment,
        id,
        resource_type,
    } = target
    {
        query
            .filters
            .push(compartment_filter(compartment, id, resource_type)?);
    }

    for (name, value) in params {
        // "Empty parameters are not an error - they are just ignored by the server"
        // (search.html, 3.1.1.3), in strict handling too: they are not unknown parameters.
        if value.is_empty() {
            parsed.ignored.push(name.clone());
            continue;
        }
        let applied = match name.as_str() {
            "_type" if target == SearchTarget::System => true,
            "_count" => {
                let count: usize = value.parse().map_err(|_| {
                    SearchError::new(name, format!("'{value}' is not a non-negative integer"))
                })?;
                query.count = count.min(MAX_COUNT);
                true
            }
            "_total" => {
                query.total = match value.as_str() {
                    "none" => TotalMode::None,
                    "estimate" => TotalMode::Estimate,
                    "accurate" => TotalMode::Accurate,
                    _ => return Err(SearchError::new(name, "must be none, estimate or accurate")),
                };
                true
            }
            "_cursor" => {
                query.cursor = Some(
                    Cursor::decode(value)
                        .ok_or_else(|| SearchError::new(name, "not a cursor from a next link"))?,
                );
                continue;
            }
            "_sort" => {
                query.sort = parse_sort(registry, &type_names, value)?;
                true
            }
            "_include" | "_include:iterate" | "_include:recurse" => {
                let iterate = name != "_include";
                query.include.push(parse_include(
                    registry,
                    &type_names,
                    name,
                    value,
                    iterate,
                    false,
                )?);
                true
            }
            "_revinclude" | "_revinclude:iterate" | "_revinclude:recurse" => {
                let iterate = name != "_revinclude";
                query.revinclude.push(parse_include(
                    registry,
                    &type_names,
                    name,
                    value,
                    iterate,
                    true,
                )?);
                true
            }
            "_summary" => {
                parsed.summary = match value.as_str() {
                    "true" => Summary::True,
                    "false" => Summary::False,
                    "text" => Summary::Text,
                    "data" => Summary::Data,
                    "count" => Summary::Count,
                    _ => {
                        return Err(SearchError::new(
                            name,
                            "must be true, false, text, data or count",
                        ));
                    }
                };
                if parsed.summary == Summary::Count && query.total == TotalMode::None {
                    query.total = TotalMode::Accurate;
                }
                true
            }
            "_elements" => {
                let elements: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect();
                if elements.iter().any(|e| {
                    !e.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
                }) {
                    return Err(SearchError::new(
                        name,
                        "elements are names separated by commas",
                    ));
                }
                parsed.elements = Some(elements);
                true
            }
            // Shaping handled elsewhere or deliberately without effect.
            "_format" | "_pretty" | "_contained" | "_containedType" => continue,
            _ => match parse_across_types(&scope, &type_names, name, value, 0)? {
                Parsed::Filter(filter) => {
                    query.filters.push(filter);
                    true
                }
                Parsed::Ignored(reason) => {
                    if handling == Handling::Strict {
                        return Err(SearchError::new(name, reason));
                    }
                    parsed.ignored.push(name.clone());
                    false
                }
            },
        };
        if applied {
            parsed.applied.push((name.clone(), value.clone()));
        }
    }
    if parsed.summary == Summary::Count {
        query.count = 0;
    }
    parsed.query = query;
    Ok(parsed)
}

/// A parameter on a search over one or several types: one filter per type that has the
/// parameter, any of which may match (a resource has only one type).
fn parse_across_types(
    scope: &Scope<'_>,
    types: &[&str],
    name: &str,
    value: &str,
    depth: usize,
) -> Result<Parsed, SearchError> {
    if let [only] = types {
        return parse_param(scope, only, name, value, depth);
    }
    let mut filters = Vec::new();
    let mut last_reason = None;
    for t in types {
        match parse_param(scope, t, name, value, depth)? {
            Parsed::Filter(filter) => filters.push(filter),
            Parsed::Ignored(reason) => last_reason = Some(reason),
        }
    }
    if filters.is_empty() {
        return Ok(Parsed::Ignored(
            last_reason.unwrap_or_else(|| "unknown search parameter".into()),
        ));
    }
    Ok(Parsed::Filter(if filters.len() == 1 {
        filters.pop().expect("one")
    } else {
        Filter::AnyOf(filters)
    }))
}

/// One parameter (`name=value`) on resources of `resource_type`: a plain parameter with its
/// modifier, a chain (`subject:Patient.name`), or a reverse chain (`_has:Observation:patient:code`).
pub(crate) fn parse_param(
    scope: &Scope<'_>,
    resource_type: &str,
    name: &str,
    value: &str,
    depth: usize,
) -> Result<Parsed, SearchError> {
    if depth > MAX_DEPTH {
        return Err(SearchError::new(
            name,
            format!("chains nest at most {MAX_DEPTH} deep"),
        ));
    }
    if let Some(rest) = name.strip_prefix("_has:") {
        return parse_has(scope, resource_type, name, rest, value, depth);
    }
    // A chain: the part before the first '.' is a reference parameter (with an optional type).
    if let Some((head, rest)) = name.split_once('.') {
        return parse_chain(scope, resource_type, name, head, rest, value, depth);
    }
    let (code, modifier) = match name.split_once(':') {
        Some((code, modifier)) => (code, Some(modifier)),
        None => (name, None),
    };
    filters::leaf(scope, resource_type, name, code, modifier, value)
}

fn parse_chain(
    scope: &Scope<'_>,
    resource_type: &str,
    name: &str,
    head: &str,
    rest: &str,
    value: &str,
    depth: usize,
) -> Result<Parsed, SearchError> {
    let (code, type_modifier) = match head.split_once(':') {
        Some((code, t)) => (code, Some(t)),
        None => (head, None),
    };
    let Some(param) = scope.registry.get(resource_type, code) else {
        return Ok(Parsed::Ignored(format!(
            "unknown search parameter '{code}' for {resource_type}"
        )));
    };
    if param.kind != SearchParamType::Reference {
        return Err(SearchError::new(
            name,
            format!("'{code}' is not a reference parameter, so it cannot be chained"),
        ));
    }
    let targets: Vec<&str> = match type_modifier {
        Some(t) if param.definition.targets.iter().any(|target| &**target == t) => vec![t],
        Some(t) => {
            return Err(SearchError::new(
                name,
                format!("'{t}' is not a target type of '{code}'"),
            ));
        }
        None => param.definition.targets.iter().map(|t| &**t).collect(),
    };
    let mut chains = Vec::new();
    for target in targets {
        if let Parsed::Filter(inner) = parse_param(scope, target, rest, value, depth + 1)? {
            chains.push(Filter::Chain {
                param: param.key,
                target_types: vec![target.into()],
                filter: Box::new(inner),
            });
        }
    }
    match chains.len() {
        0 => Err(SearchError::new(
            name,
            format!("no target type of '{code}' has the parameter '{rest}'"),
        )),
        1 => Ok(Parsed::Filter(chains.pop().expect("one"))),
        _ => Ok(Parsed::Filter(Filter::AnyOf(chains))),
    }
}

fn parse_has(
    scope: &Scope<'_>,
    resource_type: &str,
    name: &str,
    rest: &str,
    value: &str,
    depth: usize,
) -> Result<Parsed, SearchError> {
    let mut parts = rest.splitn(3, ':');
    let (Some(source_type), Some(reference), Some(inner_name)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(SearchError::new(
            name,
            "_has takes _has:[type]:[reference parameter]:[parameter]",
        ));
    };
    if !fhir_model::r4().is_resource_type(source_type) {
        return Err(SearchError::new(
            name,
            format!("'{source_type}' is not a resource type"),
        ));
    }
    let Some(param) = scope.registry.get(source_type, reference) else {
        return Err(SearchError::new(
            name,
            format!("'{reference}' is not a search parameter of {source_type}"),
        ));
    };
    if param.kind != SearchParamType::Reference {
        return Err(SearchError::new(
            name,
            format!("'{reference}' is not a reference parameter"),
        ));
    }
    if !param.definition.targets.is_empty()
        && !param
            .definition
            .targets
            .iter()
            .any(|t| &**t == resource_type)
    {
        return Err(SearchError::new(
            name,
            format!("{source_type}.{reference} never points at a {resource_type}"),
        ));
    }
    match parse_param(scope, source_type, inner_name, value, depth + 1)? {
        Parsed::Filter(inner) => Ok(Parsed::Filter(Filter::Has {
            source_type: source_type.into(),
            param: param.key,
            filter: Box::new(inner),
        })),
        Parsed::Ignored(reason) => Err(SearchError::new(name, reason)),
    }
}

/// `[compartment]/[id]/[type]`: resources of `resource_type` that point at the compartment's
/// resource through one of the compartment definition's parameters.
fn compartment_filter(
    compartment: &str,
    id: &str,
    resource_type: &str,
) -> Result<Filter, SearchError> {
    let model = fhir_model::r4();
    let params = model.compartment_params(compartment, resource_type);
    if params.is_empty() {
        return Err(SearchError::new(
            compartment,
            format!("{resource_type} is never in a {compartment} compartment"),
        ));
    }
    let mut filters = Vec::new();
    for code in params {
        if &**code == "{def}" {
            filters.push(Filter::Id(vec![id.into()]));
            continue;
        }
        filters.push(Filter::Reference {
            param: ParamKey::new(resource_type, code),
            target: crate::query::ReferenceTarget::Local {
                types: vec![compartment.into()],
                id: id.into(),
            },
        });
    }
    Ok(if filters.len() == 1 {
        filters.pop().expect("one")
    } else {
        Filter::AnyOf(filters)
    })
}

/// The patient compartment for `Patient/[id]/$everything`.
pub fn patient_compartment(id: &str) -> Filter {
    let model = fhir_model::r4();
    let mut params = Vec::new();
    for resource_type in model.resource_types() {
        for code in model.compartment_params("Patient", resource_type) {
            if &**code != "{def}" {
                params.push(ParamKey::new(resource_type, code));
            }
        }
    }
    Filter::PatientCompartment {
        id: id.into(),
        key: PatientKey::of_patient(id),
        params,
    }
}

fn parse_sort(
    registry: &Registry,
    types: &[&str],
    value: &str,
) -> Result<Vec<SortKey>, SearchError> {
    let mut keys = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (descending, code) = match item.strip_prefix('-') {
            Some(code) => (true, code),
            None => (false, item),
        };
        let by = match code {
            "_id" => SortBy::Id,
            "_lastUpdated" => SortBy::LastUpdated,
            _ => {
                let [resource_type] = types else {
                    return Err(SearchError::new(
                        "_sort",
                        "sorting on a parameter needs a search on one type",
                    ));
                };
                let Some(param) = registry.get(resource_type, code) else {
                    return Err(SearchError::new(
                        "_sort",
                        format!("'{code}' is not a search parameter of {resource_type}"),
                    ));
                };
                let table = IndexTable::of(param.kind)
                    .filter(|table| *table != IndexTable::Composite)
                    .ok_or_else(|| {
                        SearchError::new(
                            "_sort",
                            format!(
                                "cannot sort on the {} parameter '{code}'",
                                param.kind.as_str()
                            ),
                        )
                    })?;
                let params = match registry.union_parts(param) {
                    Some(parts) => parts.iter().map(|part| part.key).collect(),
                    None => vec![param.key],
                };
                SortBy::Param { params, table }
            }
        };
        keys.push(SortKey { by, descending });
    }
    if keys.is_empty() {
        return Err(SearchError::new("_sort", "names no parameter"));
    }
    Ok(keys)
}

fn parse_include(
    registry: &Registry,
    types: &[&str],
    name: &str,
    value: &str,
    iterate: bool,
    reverse: bool,
) -> Result<Include, SearchError> {
    let mut parts = value.split(':');
    let source = parts.next().unwrap_or_default();
    let code = parts.next();
    let target = parts.next();
    if parts.next().is_some() {
        return Err(SearchError::new(
            name,
            "takes [type]:[parameter] or [type]:[parameter]:[target type]",
        ));
    }
    let model = fhir_model::r4();
    if source == "*" {
        // Every reference parameter of every type searched (or, for _revinclude, of every type).
        let sources: Vec<&str> = if reverse {
            model.resource_types().iter().map(|t| &**t).collect()
        } else {
            types.to_vec()
        };
        let params = sources
            .iter()
            .flat_map(|t| registry.params_of(t))
            .filter(|p| p.kind == SearchParamType::Reference)
            .map(|p| p.key)
            .collect();
        return Ok(Include {
            params,
            target_type: None,
            iterate,
        });
    }
    if !model.is_resource_type(source) {
        return Err(SearchError::new(
            name,
            format!("'{source}' is not a resource type"),
        ));
    }
    if !reverse && !iterate && !types.contains(&source) {
        return Err(SearchError::new(
            name,
            format!(
                "{source} is not the type searched; use :iterate to include from included resources"
            ),
        ));
    }
    let params = match code {
        Some("*") | None => registry
            .params_of(source)
            .filter(|p| p.kind == SearchParamType::Reference)
            .map(|p| p.key)
            .collect(),
        Some(code) => {
            let Some(param) = registry.get(source, code) else {
                return Err(SearchError::new(
                    name,
                    format!("'{code}' is not a search parameter of {source}"),
                ));
            };
            if param.kind != SearchParamType::Reference {
                return Err(SearchError::new(
                    name,
                    format!("'{code}' is not a reference parameter"),
                ));
            }
            vec![param.key]
        }
    };
    let target_type = match target {
        Some(t) if model.is_resource_type(t) => Some(t.into()),
        Some(t) => {
            return Err(SearchError::new(
                name,
                format!("'{t}' is not a resource type"),
            ));
        }
        None => None,
    };
    Ok(Include {
        params,
        target_type,
        iterate,
    })
}
