//! SQL on FHIR v2 over HTTP: `POST [base]/$viewdefinition-run` (declared by the analytics
//! service). The view comes inline in the Parameters (`viewResource`), or from the store
//! (`viewReference` to the `Library` holding it, read through the caller's read path); it
//! runs over the resources sent with it (`resource`), or over the server's current resources
//! of its type that the caller may read, through the caller's read path, each resident whose
//! record was read on the caller's trail. The rows come back as NDJSON, CSV, a JSON array or one Parquet
//! file.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fhir_model::IssueCode;
use serde_json::Value;

use analytics::View;
use analytics::output::{Format, TableFormat, TableWriter};

use crate::ApiError;
use crate::lanes::blocking;
use crate::operations::{Handled, Invocation, Registered};
use crate::request::{BodyKind, Produces, read_json};

pub(crate) const OPERATIONS: &[Registered] = &[
    Registered {
        decl: analytics::operations::VIEWDEFINITION_RUN,
        handler: run,
        produces: Produces::Table,
    },
    Registered {
        decl: analytics::operations::SQLQUERY_RUN,
        handler: sql_query_run,
        produces: Produces::Table,
    },
];

/// The most rows a `$sqlquery-run` answer has, and how long its query may run.
const SQL_LIMITS: analytics_sql::Limits = analytics_sql::Limits {
    rows: 100_000,
    seconds: 60,
};

/// Resources read from the store a page at a time.
const PAGE: usize = 1_000;

/// Where the view comes from.
enum ViewSource {
    Inline(Box<View>),
    /// The id of the Library that holds it.
    Stored(String),
}

/// What a `$viewdefinition-run` asks for.
struct Asked {
    view: ViewSource,
    format: TableFormat,
    limit: Option<usize>,
    /// The resources sent with the view; `None`: the server's.
    resources: Option<Vec<Value>>,
}

fn run(call: Invocation) -> Handled {
    Box::pin(async move {
        let fhir = call.fhir;
        let limit = call.state.config().max_body_bytes;
        let body = read_json(&fhir.headers, call.body, limit, BodyKind::Resource).await?;
        let query_format = fhir
            .query
            .iter()
            .find(|(name, _)| name == "_format")
            .map(|(_, value)| value.clone());
        let asked = asked(&body, query_format.as_deref())?;
        let media_type = asked.format.media_type();
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let (patients, rows) = blocking(move || -> Result<_, ApiError> {
            let view = match asked.view {
                ViewSource::Inline(view) => *view,
                ViewSource::Stored(id) => stored_view(&repository, &caller, &id)?,
            };
            // The residents whose records were read, in the order first read.
            let mut patients: Vec<String> = Vec::new();
            let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
            let mut writer = TableWriter::new(&view, asked.format, Vec::new())?;
            let mut room = asked.limit.unwrap_or(usize::MAX);
            let mut write = |resource: &Value| -> Result<bool, ApiError> {
                for row in view.rows(resource)?.iter().take(room) {
                    writer.write(row)?;
                    room -= 1;
                }
                Ok(room > 0)
            };
            match &asked.resources {
                Some(resources) => {
                    for resource in resources {
                        if !write(resource)? {
                            break;
                        }
                    }
                }
                None => {
                    let reader = repository.reader(&caller);
                    let mut query = store::ScanQuery {
                        types: vec![view.resource().to_owned()],
                        limit: PAGE,
                        ..store::ScanQuery::default()
                    };
                    'pages: loop {
                        let page = reader.scan(&query)?;
                        let Some(last) = page.last() else { break };
                        query.after_row = last.row;
                        for record in &page {
                            let resource = repository::parse_stored(record)?;
                            for patient in
                                crate::audit::patients_of_parsed(&repository, record, &resource)
                            {
                                if seen.insert(patient.clone()) {
                                    patients.push(patient);
                                }
                            }
                            if !write(&resource)? {
                                break 'pages;
                            }
                        }
                    }
                }
            }
            let (_, bytes) = writer.finish()?;
            Ok((patients, bytes))
        })
        .await?;
        fhir.audit.patients(patients);
        Ok::<Response, ApiError>(
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, media_type),
                    (header::CACHE_CONTROL, "private, no-store"),
                ],
                Body::from(rows),
            )
                .into_response(),
        )
    })
}

/// The view kept in Library `id` (`stored_library`).
fn stored_view(
    repository: &repository::Repository,
    caller: &caller::Caller,
    id: &str,
) -> Result<View, ApiError> {
    let library = stored_library(repository, caller, id)?;
    Ok(analytics::stored::view_of_library(&library)?)
}

/// Library `id` as the caller may read it: one it may not see is not found.
fn stored_library(
    repository: &repository::Repository,
    caller: &caller::Caller,
    id: &str,
) -> Result<Value, ApiError> {
    let record = repository
        .reader(caller)
        .current("Library", id)?
        .filter(|record| record.content.is_some())
        .ok_or_else(|| ApiError::NotFound(format!("Library/{id} is not known")))?;
    Ok(repository::parse_stored(&record)?)
}

/// The values of the parameters named `name`.
fn named<'a>(parameters: &'a [Value], name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    parameters
        .iter()
        .filter(move |p| p.get("name").and_then(Value::as_str) == Some(name))
}

fn format_of(parameters: &[Value], query_format: Option<&str>) -> Result<TableFormat, ApiError> {
    let header = named(parameters, "header")
        .find_map(|p| p.get("valueBoolean").and_then(Value::as_bool))
        .unwrap_or(true);
    let asked = named(parameters, "_format")
        .find_map(|p| {
            p.get("valueCode")
                .or(p.get("valueString"))
                .and_then(Value::as_str)
        })
        .or(query_format);
    match asked.unwrap_or("ndjson") {
        "ndjson" | "application/x-ndjson" | "application/ndjson" => {
            Ok(TableFormat::Text(Format::Ndjson))
        }
        "csv" | "text/csv" => Ok(TableFormat::Text(Format::Csv { header })),
        "json" | "application/json" => Ok(TableFormat::Text(Format::Json)),
        "parquet" | "application/vnd.apache.parquet" => Ok(TableFormat::Parquet),
        other => Err(ApiError::bad_request(
            IssueCode::NotSupported,
            format!(
                "_format '{other}' is not one this operation writes: ndjson, csv, json or parquet"
            ),
        )),
    }
}

/// The request's view, format, limit and resources, or why it cannot be run.
fn asked(body: &Value, query_format: Option<&str>) -> Result<Asked, ApiError> {
    let parameters = crate::request::parameters(body)?;
    let inline: Vec<&Value> = named(parameters, "viewResource")
        .filter_map(|p| p.get("resource"))
        .collect();
    let references: Vec<&Value> = named(parameters, "viewReference").collect();
    let view = match (inline.as_slice(), references.as_slice()) {
        ([view], []) => ViewSource::Inline(Box::new(View::parse(view)?)),
        ([], [reference]) => ViewSource::Stored(library_id(reference)?),
        _ => {
            return Err(ApiError::bad_request(
                IssueCode::Required,
                "$viewdefinition-run needs exactly one view: a viewResource (the ViewDefinition) \
                 or a viewReference (the Library that holds it)",
            ));
        }
    };
    let limit = match named(parameters, "_limit").next() {
        None => None,
        Some(p) => match p.get("valueInteger").and_then(Value::as_u64) {
            Some(limit) if limit > 0 => Some(limit as usize),
            _ => {
                return Err(ApiError::bad_request(
                    IssueCode::Value,
                    "_limit must be a valueInteger of at least 1",
                ));
            }
        },
    };
    let sent: Vec<Value> = named(parameters, "resource")
        .map(|p| {
            p.get("resource").cloned().ok_or_else(|| {
                ApiError::bad_request(IssueCode::Required, "a resource parameter has no resource")
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Asked {
        view,
        format: format_of(parameters, query_format)?,
        limit,
        resources: (!sent.is_empty()).then_some(sent),
    })
}

/// The Library id a `viewReference` names (`Library/ID`, relative or under any base).
fn library_id(parameter: &Value) -> Result<String, ApiError> {
    let reference = parameter
        .get("valueReference")
        .and_then(|r| r.get("reference"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let id = reference
        .rsplit_once("Library/")
        .map(|(_, id)| id)
        .filter(|id| fhir_model::primitives::is_valid_id(id));
    match id {
        Some(id) if reference.starts_with("Library/") || reference.contains("/Library/") => {
            Ok(id.to_owned())
        }
        _ => Err(ApiError::bad_request(
            IssueCode::Value,
            format!(
                "viewReference must be a valueReference to the Library that holds the view \
                 (Library/ID), not '{reference}'"
            ),
        )),
    }
}

/// `Measure/ID/$evaluate-measure` for an indicator of the catalogue (`analytics::indicators`):
/// for platform-wide clients (public health) and administrators only, for the period
/// `periodStart`..`periodEnd` (dates, months or years; both required), as a summary
/// (`reportType` `population` or `summary`, the default) or a `subject-list`. The views it
/// reads are brought up to date with the store first. The request's one AuditEvent records
/// the call.
pub(crate) async fn evaluate_indicator(
    state: &crate::AppState,
    fhir: &crate::request::FhirRequest,
    params: &[(String, String)],
    indicator: analytics::indicators::Indicator,
) -> Result<Response, ApiError> {
    let decl = fhir_model::operation::OperationDecl {
        audience: fhir_model::operation::Audience::Platform,
        ..cds::operations::EVALUATE_MEASURE
    };
    access::policy::may_invoke(&fhir.caller, &decl, None).map_err(|forbidden| {
        ApiError::from(repository::RepositoryError::Forbidden(format!(
            "{} (the region's indicators)",
            forbidden.0
        )))
    })?;
    let get = |name: &str| crate::request::param(params, name);
    let subject_list = match get("reportType") {
        None | Some("population" | "summary") => false,
        Some("subject-list") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                IssueCode::NotSupported,
                format!("reportType '{other}' is not supported: population or subject-list"),
            ));
        }
    };
    if get("subject").is_some() {
        return Err(ApiError::bad_request(
            IssueCode::NotSupported,
            "an indicator is computed for the region; its stratifiers give each institution and county",
        ));
    }
    let (Some(start), Some(end)) = (get("periodStart"), get("periodEnd")) else {
        return Err(ApiError::bad_request(
            IssueCode::Required,
            "periodStart and periodEnd are required (YYYY-MM-DD, YYYY-MM or YYYY)",
        ));
    };
    let period = analytics::indicators::Period::parse(start, end).ok_or_else(|| {
        ApiError::bad_request(
            IssueCode::Value,
            format!(
                "the period {start}..{end} is not two dates (YYYY-MM-DD, YYYY-MM or YYYY) with the end not before the start"
            ),
        )
    })?;
    let repository = state.repository().clone();
    let root = state.config().views_dir.clone();
    let report = blocking(move || {
        // The views are the platform's derived data, kept by its operator; the caller's
        // access was checked above, and the answer holds counts (and, in a subject list,
        // references) only.
        let operator = caller::Caller::operator("indicator-views");
        crate::views::evaluate_indicator(
            &repository,
            &operator,
            &root,
            &indicator,
            &period,
            subject_list,
        )
        .map_err(|error| ApiError::Internal(format!("{error:#}")))
    })
    .await?;
    Ok(crate::response::json_response(
        StatusCode::OK,
        report.to_string().into_bytes(),
        fhir.pretty,
    ))
}

/// `$sqlquery-run`: the query of a Library (the instance called on, or `queryResource` /
/// `queryReference` at the system level) over the materialised catalogue views, brought up to
/// date with the store first, with `parameter`s bound by name; the rows as a JSON array,
/// NDJSON or CSV (`_format`).
fn sql_query_run(call: Invocation) -> Handled {
    Box::pin(async move {
        let fhir = call.fhir;
        // A query over the views reads the residents' records, whatever Library holds it.
        fhir.audit.about_patient_data();
        let limit = call.state.config().max_body_bytes;
        let body = read_json(&fhir.headers, call.body, limit, BodyKind::Resource).await?;
        let parameters = crate::request::parameters(&body)?.to_vec();
        let query_format = fhir
            .query
            .iter()
            .find(|(name, _)| name == "_format")
            .map(|(_, value)| value.clone());
        let format = match format_of(&parameters, query_format.as_deref().or(Some("json")))? {
            TableFormat::Text(format) => format,
            TableFormat::Parquet => {
                return Err(ApiError::bad_request(
                    IssueCode::NotSupported,
                    "$sqlquery-run writes json, ndjson or csv",
                ));
            }
        };
        let bound = bound_parameters(&parameters)?;
        let inline: Vec<Value> = named(&parameters, "queryResource")
            .filter_map(|p| p.get("resource").cloned())
            .collect();
        let references: Vec<&Value> = named(&parameters, "queryReference").collect();
        let stored = match (call.id.clone(), inline.as_slice(), references.as_slice()) {
            (Some(id), [], []) => Some(id),
            (None, [_], []) => None,
            (None, [], [reference]) => Some(library_id(reference)?),
            _ => {
                return Err(ApiError::bad_request(
                    IssueCode::Required,
                    "$sqlquery-run needs exactly one query: the Library it is called on, a \
                     queryResource (a Library holding the SQL) or a queryReference to one",
                ));
            }
        };
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let root = call.state.config().views_dir.clone();
        let bytes = blocking(move || -> Result<Vec<u8>, ApiError> {
            let library = match stored {
                Some(id) => stored_library(&repository, &caller, &id)?,
                None => inline.into_iter().next().unwrap_or_default(),
            };
            let sql = analytics::indicators::sql_of_library(&library)?;
            // The catalogue's views, up to date: kept by the platform's operator, read here by
            // a caller the operation's audience admits (platform-wide clients, administrators).
            let operator = caller::Caller::operator("sql-views");
            crate::views::refresh_catalogue(&repository, &operator, &root)
                .map_err(|error| ApiError::Internal(format!("{error:#}")))?;
            let mut engine = analytics_sql::Engine::over(&root, SQL_LIMITS)?;
            let params: Vec<(&str, Value)> =
                bound.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
            let writer = engine.query_each_limited(
                &sql,
                &params,
                |columns| {
                    analytics::output::RowWriter::with_columns(columns.to_vec(), format, Vec::new())
                        .map_err(|e| analytics_sql::SqlError::Engine(e.to_string()))
                },
                |writer, row| {
                    writer
                        .write(&row)
                        .map_err(|e| analytics_sql::SqlError::Engine(e.to_string()))
                },
            )?;
            let (_, bytes) = writer
                .finish()
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(bytes)
        })
        .await?;
        Ok::<Response, ApiError>(
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, format.media_type()),
                    (header::CACHE_CONTROL, "private, no-store"),
                ],
                Body::from(bytes),
            )
                .into_response(),
        )
    })
}

/// The `parameter`s of a `$sqlquery-run`: each a part per SQL parameter, named as it (with or
/// without its `:`), its value any primitive `value[x]`.
fn bound_parameters(parameters: &[Value]) -> Result<Vec<(String, Value)>, ApiError> {
    let mut bound = Vec::new();
    for parameter in named(parameters, "parameter") {
        for part in parameter
            .get("part")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = part.get("name").and_then(Value::as_str).unwrap_or_default();
            let plain = name.trim_start_matches([':', '@', '$']);
            if plain.is_empty()
                || !plain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(ApiError::bad_request(
                    IssueCode::Value,
                    format!("a parameter's part is named '{name}': not a SQL parameter name"),
                ));
            }
            let value = part
                .as_object()
                .into_iter()
                .flatten()
                .find(|(key, _)| key.starts_with("value"))
                .map(|(_, value)| value.clone())
                .filter(|value| !value.is_object() && !value.is_array())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        IssueCode::Value,
                        format!("parameter '{plain}' has no primitive value[x]"),
                    )
                })?;
            bound.push((format!(":{plain}"), value));
        }
    }
    Ok(bound)
}
