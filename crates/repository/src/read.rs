//! Reads: read, vread, history and search, with their Bundles.

use serde_json::json;
use store::{HistoryQuery, HistoryScope, Method, VersionRecord};

use crate::render::{BundleWriter, encode_query};
use crate::stored::gone;
use crate::{Reader, RepositoryError};
use fhir_model::clock;

/// The largest history page a client may ask for.
const MAX_HISTORY_COUNT: usize = 1000;
const DEFAULT_HISTORY_COUNT: usize = 50;

/// A `_history` request.
#[derive(Debug, Clone)]
pub struct HistoryRequest {
    pub scope: HistoryScope,
    /// `_since`, `_at`, `_count`, `_cursor` (from a next link).
    pub params: Vec<(String, String)>,
}

impl Reader<'_> {
    /// `GET [type]/[id]`: the current version; 404 if it never existed, 410 if deleted.
    pub fn read(&self, resource_type: &str, id: &str) -> Result<VersionRecord, RepositoryError> {
        self.repository.check_resource(resource_type, id)?;
        match self.current(resource_type, id)? {
            None => Err(RepositoryError::NotFound(format!(
                "{resource_type}/{id} does not exist"
            ))),
            Some(record) if record.is_deleted() => Err(gone(&record)),
            Some(record) => Ok(record),
        }
    }

    /// `GET [type]/[id]/_history/[vid]`.
    pub fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: &str,
    ) -> Result<VersionRecord, RepositoryError> {
        self.repository.check_resource(resource_type, id)?;
        let not_found = || {
            RepositoryError::NotFound(format!("{resource_type}/{id} has no version '{version}'"))
        };
        let number: i64 = version.parse().map_err(|_| not_found())?;
        match self.version_of(resource_type, id, number)? {
            None => Err(not_found()),
            Some(record) if record.is_deleted() => Err(gone(&record)),
            Some(record) => Ok(record),
        }
    }

    /// `_history` at instance, type or system level: a `history` Bundle, newest first.
    pub fn history(
        &self,
        base: &str,
        request: &HistoryRequest,
    ) -> Result<Vec<u8>, RepositoryError> {
        let mut query = HistoryQuery {
            scope: request.scope.clone(),
            since: None,
            at: None,
            count: DEFAULT_HISTORY_COUNT,
            cursor: None,
            // The reader states what its caller may see.
            visibility: Default::default(),
        };
        match &request.scope {
            HistoryScope::Type(t) => self.repository.check_type(t)?,
            HistoryScope::Instance(t, id) => self.repository.check_resource(t, id)?,
            HistoryScope::System => {}
        }
        let scope = match &request.scope {
            HistoryScope::System => "/_history".to_owned(),
            HistoryScope::Type(t) => format!("/{t}/_history"),
            HistoryScope::Instance(t, id) => format!("/{t}/{id}/_history"),
        };
        let seal = self.repository.cursors()?;
        let params = crate::paging::open_cursor_param(seal, &scope, &request.params)?;
        let mut applied = Vec::new();
        for (name, value) in &params {
            let bad = |what: &str| {
                RepositoryError::BadSearch(search::SearchError {
                    param: name.clone(),
                    message: format!("'{value}' is not {what}"),
                })
            };
            match name.as_str() {
                "_since" => {
                    query.since =
                        Some(clock::parse_instant(value).ok_or_else(|| bad("an instant"))?)
                }
                "_at" => {
                    query.at =
                        Some(clock::parse_range(value).ok_or_else(|| bad("a date or dateTime"))?)
                }
                "_count" => {
                    let count: usize = value.parse().map_err(|_| bad("a non-negative integer"))?;
                    query.count = count.min(MAX_HISTORY_COUNT);
                }
                "_cursor" => {
                    query.cursor = Some(
                        value
                            .parse()
                            .map_err(|_| bad("a cursor from a next link"))?,
                    );
                    continue;
                }
                _ => continue,
            }
            applied.push((name.clone(), value.clone()));
        }
        if let HistoryScope::Instance(t, id) = &request.scope
            && self.current(t, id)?.is_none()
        {
            return Err(RepositoryError::NotFound(format!(
                "{t}/{id} does not exist"
            )));
        }
        let page = self.history_page(&query)?;
        let path = match &request.scope {
            HistoryScope::System => format!("{base}/_history"),
            HistoryScope::Type(t) => format!("{base}/{t}/_history"),
            HistoryScope::Instance(t, id) => format!("{base}/{t}/{id}/_history"),
        };
        let mut links = vec![("self", link(&path, &applied))];
        if let Some(next) = page.next {
            let mut params = applied.clone();
            params.push(("_cursor".into(), seal.seal(&scope, &next.to_string())));
            links.push(("next", link(&path, &params)));
        }
        let mut writer = BundleWriter::new("history", None, &links);
        for version in &page.versions {
            let full_url = format!("{base}/{}/{}", version.resource_type, version.id);
            let (method, url, status) = match version.method {
                Method::Create => ("POST", version.resource_type.clone(), "201 Created"),
                Method::Update => (
                    "PUT",
                    format!("{}/{}", version.resource_type, version.id),
                    "200 OK",
                ),
                Method::Delete => (
                    "DELETE",
                    format!("{}/{}", version.resource_type, version.id),
                    "204 No Content",
                ),
            };
            writer.entry(
                Some(&full_url),
                version.content.as_deref(),
                &[
                    ("request", json!({"method": method, "url": url})),
                    (
                        "response",
                        json!({
                            "status": status,
                            "etag": format!("W/\"{}\"", version.version),
                            "lastModified": clock::format_instant(version.last_updated),
                        }),
                    ),
                ],
            );
        }
        Ok(writer.finish())
    }
}

pub(crate) fn link(path: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", encode_query(params))
    }
}
