//! Search: type, system and compartment searches and `Patient/$everything`, rendered as
//! `searchset` Bundles with self and next links, shaped by `_summary` and `_elements`.

use fhir_model::Model;
use search::query::{
    Bound, Comparison, Filter, Include, RangeColumn, RangePredicate, SearchQuery, TotalMode,
};
use search::{Handling, ParsedSearch, SearchTarget, Summary, parse_search, patient_compartment};
use serde_json::{Map, Value, json};
use store::SearchPage;

use crate::read::link;
use crate::render::BundleWriter;
use crate::{Reader, Repository, RepositoryError};
use fhir_model::clock;

/// What a search is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchScope {
    /// `[type]?...`
    Type(String),
    /// `?_type=...` at the base.
    System,
    /// `[compartment]/[id]/[type]?...`
    Compartment {
        compartment: String,
        id: String,
        resource_type: String,
    },
}

/// A search request.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub scope: SearchScope,
    pub params: Vec<(String, String)>,
    pub handling: Handling,
}

impl SearchRequest {
    /// A lenient search on one type.
    pub fn of_type(resource_type: &str, params: Vec<(String, String)>) -> SearchRequest {
        SearchRequest {
            scope: SearchScope::Type(resource_type.to_owned()),
            params,
            handling: Handling::Lenient,
        }
    }
}

/// The page size of `$everything` when the client does not say.
const EVERYTHING_COUNT: usize = 1000;

impl Reader<'_> {
    /// A search: one page as a `searchset` Bundle.
    pub fn search(&self, base: &str, request: &SearchRequest) -> Result<Vec<u8>, RepositoryError> {
        let (target, path) = match &request.scope {
            SearchScope::Type(t) => {
                self.repository.check_type(t)?;
                (SearchTarget::Type(t), format!("{base}/{t}"))
            }
            SearchScope::System => (SearchTarget::System, base.to_owned()),
            SearchScope::Compartment {
                compartment,
                id,
                resource_type,
            } => {
                self.repository.check_resource(compartment, id)?;
                self.repository.check_type(resource_type)?;
                (
                    SearchTarget::Compartment {
                        compartment,
                        id,
                        resource_type,
                    },
                    format!("{base}/{compartment}/{id}/{resource_type}"),
                )
            }
        };
        // The cursor is sealed for this search: the path below the base.
        let scope = path[base.len()..].to_owned();
        let seal = self.repository.cursors()?;
        let params = crate::paging::open_cursor_param(seal, &scope, &request.params)?;
        let parsed = parse_search(
            self.repository.indexer().registry(),
            Some(base),
            target,
            &params,
            request.handling,
        )?;
        if !parsed.ignored.is_empty() {
            tracing::debug!(ignored = ?parsed.ignored, "search parameters ignored");
        }
        // A search of every type (no `_type`) needs permission for every type: `*`.
        if parsed.query.types.is_empty() {
            self.repository
                .permit(self.caller, crate::Interaction::Search, "*")?;
        }
        for resource_type in &parsed.query.types {
            self.repository
                .permit(self.caller, crate::Interaction::Search, resource_type)?;
        }
        let page = self.page(&parsed.query)?;
        let next = page.next.as_ref().map(|c| seal.seal(&scope, &c.encode()));
        Ok(render(
            self.repository.model,
            base,
            &path,
            &parsed,
            &page,
            next,
        ))
    }

    /// `Patient/[id]/$everything`: the patient, everything in its compartment, and what those
    /// resources point at, paged. `start`/`end` keep resources with a clinical date in that
    /// range (and those without one), `_since` those changed since, `_type` those of the types.
    pub fn everything(
        &self,
        base: &str,
        id: &str,
        params: &[(String, String)],
    ) -> Result<Vec<u8>, RepositoryError> {
        let patient = self.read("Patient", id)?;
        let scope = format!("/Patient/{id}/$everything");
        let seal = self.repository.cursors()?;
        let params = &crate::paging::open_cursor_param(seal, &scope, params)?;
        let mut query = SearchQuery::of_type("");
        query.types.clear();
        query.count = EVERYTHING_COUNT;
        query.filters.push(patient_compartment(&patient.id));
        // The patient's record, not who looked at it: the audit trail is in the compartment
        // (its `patient` parameter) but is listed with `AuditEvent?patient=`, and would
        // otherwise outgrow the record itself (every read of the patient adds to it).
        query.filters.push(Filter::Not(Box::new(Filter::OfType(vec![
            "AuditEvent".into(),
        ]))));
        // Whatever the page's resources point at (practitioners, organisations, medications).
        query.include.push(Include {
            params: Vec::new(),
            target_type: None,
            iterate: false,
        });
        let mut applied = Vec::new();
        let mut start = None;
        let mut end = None;
        for (name, value) in params {
            let bad = |what: &str| {
                RepositoryError::BadSearch(search::SearchError {
                    param: name.clone(),
                    message: format!("'{value}' is not {what}"),
                })
            };
            match name.as_str() {
                "start" => {
                    start = Some(
                        search::parse::values::date_range(value)
                            .ok_or_else(|| bad("a date"))?
                            .0,
                    )
                }
                "end" => {
                    end = Some(
                        search::parse::values::date_range(value)
                            .ok_or_else(|| bad("a date"))?
                            .1,
                    )
                }
                "_since" => {
                    let since = clock::parse_instant(value).ok_or_else(|| bad("an instant"))?;
                    query.filters.push(Filter::LastUpdated(RangePredicate {
                        any_of: vec![vec![(
                            RangeColumn::Low,
                            Comparison::Ge,
                            Bound::Integer(since),
                        )]],
                    }));
                }
                "_type" => {
                    for t in value.split(',').filter(|t| !t.is_empty()) {
                        self.repository
                            .check_type(t)
                            .map_err(|_| bad("a list of resource types"))?;
                        query.types.push(t.into());
                    }
                }
                "_count" => {
                    let count: usize = value.parse().map_err(|_| bad("a non-negative integer"))?;
                    query.count = count.min(search::parse::MAX_COUNT);
                }
                "_cursor" => {
                    query.cursor = Some(
                        search::query::Cursor::decode(value)
                            .ok_or_else(|| bad("a cursor from a next link"))?,
                    );
                    continue;
                }
                "_total" if value == "accurate" => query.total = TotalMode::Accurate,
                _ => continue,
            }
            applied.push((name.clone(), value.clone()));
        }
        if start.is_some() || end.is_some() {
            query.filters.push(clinical_date_filter(
                self.repository,
                start.unwrap_or(i64::MIN),
                end.unwrap_or(i64::MAX),
            ));
        }
        let page = self.page(&query)?;
        let parsed = ParsedSearch {
            query,
            summary: Summary::False,
            elements: None,
            applied,
            ignored: Vec::new(),
        };
        let next = page.next.as_ref().map(|c| seal.seal(&scope, &c.encode()));
        Ok(render(
            self.repository.model,
            base,
            &format!("{base}/Patient/{id}/$everything"),
            &parsed,
            &page,
            next,
        ))
    }
}

/// Resources without a clinical date, or with one that overlaps `[start, end]`. The clinical
/// date is each type's `date` parameter where it has one.
fn clinical_date_filter(repository: &Repository, start: i64, end: i64) -> Filter {
    let indexer = repository.indexer();
    let keys: Vec<_> = repository
        .model()
        .resource_types()
        .iter()
        .filter_map(|t| indexer.registry().get(t, "date"))
        .filter(|p| p.kind == fhir_model::SearchParamType::Date)
        .map(|p| p.key)
        .collect();
    let overlaps = RangePredicate {
        any_of: vec![vec![
            (RangeColumn::High, Comparison::Ge, Bound::Integer(start)),
            (RangeColumn::Low, Comparison::Le, Bound::Integer(end)),
        ]],
    };
    let has_date = keys
        .iter()
        .map(|&param| Filter::Missing {
            param,
            table: search::query::IndexTable::Date,
            missing: false,
        })
        .collect();
    let in_range = keys
        .iter()
        .map(|&param| Filter::Date {
            param,
            predicate: overlaps.clone(),
            single: false,
        })
        .collect();
    Filter::AnyOf(vec![
        Filter::Not(Box::new(Filter::AnyOf(has_date))),
        Filter::AnyOf(in_range),
    ])
}

/// A search page as a `searchset` Bundle; `next` is the sealed cursor of the next page.
fn render(
    model: &Model,
    base: &str,
    path: &str,
    parsed: &ParsedSearch,
    page: &SearchPage,
    next: Option<String>,
) -> Vec<u8> {
    let mut links = vec![("self", link(path, &parsed.applied))];
    if let Some(next) = next {
        let mut params = parsed.applied.clone();
        params.push(("_cursor".into(), next));
        links.push(("next", link(path, &params)));
    }
    let mut writer = BundleWriter::new("searchset", page.total, &links);
    let shaped = parsed.summary != Summary::False || parsed.elements.is_some();
    for (records, mode) in [(&page.matches, "match"), (&page.included, "include")] {
        for record in records {
            let full_url = format!("{base}/{}/{}", record.resource_type, record.id);
            let content = record.content.as_deref().unwrap_or(b"{}");
            let shaped_content;
            let resource = if shaped {
                shaped_content = shape(model, content, parsed.summary, parsed.elements.as_deref());
                &shaped_content[..]
            } else {
                content
            };
            writer.entry(
                Some(&full_url),
                Some(resource),
                &[("search", json!({"mode": mode}))],
            );
        }
    }
    writer.finish()
}

/// `_summary` and `_elements`: the parts of a resource the client asked for, marked SUBSETTED.
fn shape(model: &Model, content: &[u8], summary: Summary, elements: Option<&[String]>) -> Vec<u8> {
    let Ok(Value::Object(resource)) = serde_json::from_slice::<Value>(content) else {
        return content.to_vec();
    };
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let definition = model.type_def(&resource_type);
    let element_of = |key: &str| {
        let name = key.strip_prefix('_').unwrap_or(key);
        definition.and_then(|d| d.property(name)).map(|p| p.element)
    };
    let always = |key: &str| matches!(key, "resourceType" | "id" | "meta");
    let mut kept = Map::new();
    for (key, value) in resource {
        let keep = always(&key)
            || match (elements, summary) {
                (Some(list), _) => {
                    let name = key.strip_prefix('_').unwrap_or(&key);
                    list.iter().any(|e| {
                        e == name || element_of(name).is_some_and(|el| el.choice && *el.name == **e)
                    }) || element_of(&key).is_some_and(|e| e.min > 0)
                }
                (None, Summary::True) => element_of(&key).is_some_and(|e| e.summary || e.min > 0),
                (None, Summary::Text) => {
                    key == "text" || element_of(&key).is_some_and(|e| e.min > 0)
                }
                (None, Summary::Data) => key != "text",
                (None, Summary::False | Summary::Count) => true,
            };
        if keep {
            kept.insert(key, value);
        }
    }
    let meta = kept.entry("meta").or_insert_with(|| json!({}));
    if let Value::Object(meta) = meta {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Value::Array(tags) = tags {
            tags.push(json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}));
        }
    }
    serde_json::to_vec(&Value::Object(kept)).expect("a JSON value always serialises")
}
