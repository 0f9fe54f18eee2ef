//! Reading a FHIR request: its id, query, format, preferences, version headers and body.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use fhir_model::IssueCode;
use repository::{parse_etag, parse_query};
use serde_json::Value;

use crate::{ApiError, ServerConfig};

/// What the client prefers back (`Prefer: return=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Minimal,
    Representation,
    OperationOutcome,
}

/// What an endpoint answers with, for content negotiation (`_format` and `Accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Produces {
    /// FHIR JSON: every endpoint but the Bulk Data output files.
    FhirJson,
    /// NDJSON: the Bulk Data output files (`$export-file`).
    Ndjson,
    /// A drawing, SVG or PNG (an ECG's tracing, `$ecg-tracing`).
    Drawing,
    /// A table: a view's rows as NDJSON, CSV or JSON (`$viewdefinition-run`).
    Table,
}

/// The parts of a request every FHIR handler looks at.
#[derive(Debug)]
pub struct FhirRequest {
    pub request_id: String,
    /// Who asks: the one place the HTTP edge makes a caller.
    pub caller: caller::Caller,
    pub base: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub pretty: bool,
    /// What the request did, noted by its handler for the audit trail.
    pub(crate) audit: crate::audit::AuditNote,
}

impl FhirRequest {
    pub fn new(
        headers: HeaderMap,
        raw_query: Option<&str>,
        config: &ServerConfig,
        produces: Produces,
    ) -> Result<FhirRequest, (String, ApiError)> {
        let request_id = request_id(&headers);
        let base = match crate::host::link_base(&headers, config) {
            Ok(base) => base,
            Err(error) => return Err((request_id, error)),
        };
        let query = raw_query.map(parse_query).unwrap_or_default();
        let format = query
            .iter()
            .find(|(name, _)| name == "_format")
            .map(|(_, v)| v.as_str());
        if let Err(error) = check_format(
            format,
            headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
            produces,
        ) {
            return Err((request_id, error));
        }
        let pretty = query
            .iter()
            .any(|(name, value)| name == "_pretty" && value == "true");
        Ok(FhirRequest {
            caller: caller::Caller::anonymous(request_id.clone()),
            request_id,
            base,
            query,
            headers,
            pretty,
            audit: crate::audit::AuditNote::default(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Prefer: return=...`; representation when absent.
    pub fn prefer_return(&self) -> Return {
        match self.prefer("return") {
            Some("minimal") => Return::Minimal,
            Some("OperationOutcome") => Return::OperationOutcome,
            _ => Return::Representation,
        }
    }

    /// `Prefer: handling=strict|lenient`.
    pub fn strict_handling(&self) -> bool {
        self.prefer("handling") == Some("strict")
    }

    fn prefer(&self, key: &str) -> Option<&str> {
        self.headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|value| {
                value.split([',', ';']).find_map(|part| {
                    let (k, v) = part.trim().split_once('=')?;
                    (k.trim() == key).then(|| v.trim().trim_matches('"'))
                })
            })
    }

    /// `If-Match: W/"3"` as a version number.
    pub fn if_match(&self) -> Result<Option<i64>, ApiError> {
        match self.header("if-match") {
            None => Ok(None),
            Some(tag) => parse_etag(tag).map(Some).ok_or_else(|| {
                ApiError::bad_request(
                    IssueCode::Invalid,
                    format!("If-Match '{tag}' is not a version ETag"),
                )
            }),
        }
    }

    /// `If-None-Exist: identifier=...` as search criteria.
    pub fn if_none_exist(&self) -> Option<Vec<(String, String)>> {
        self.header("if-none-exist")
            .map(|q| parse_query(q.trim_start_matches('?')))
    }

    /// The query without the parameters that only shape the response.
    pub fn criteria(&self) -> Vec<(String, String)> {
        self.query
            .iter()
            .filter(|(name, _)| name != "_format" && name != "_pretty")
            .cloned()
            .collect()
    }
}

/// Whether the client accepts what the endpoint produces: FHIR JSON everywhere (XML and other
/// formats get 406), NDJSON for the Bulk Data output files. A media range with `q=0` is one the
/// client refuses.
fn check_format(
    format: Option<&str>,
    accept: Option<&str>,
    produces: Produces,
) -> Result<(), ApiError> {
    let (formats, media_types, speaks): (&[&str], &[&str], &str) = match produces {
        Produces::FhirJson => (
            &[
                "json",
                "application/json",
                "application/fhir+json",
                "application/json+fhir",
            ],
            &[
                "application/json",
                "application/fhir+json",
                "application/json+fhir",
                "text/*",
                "text/html",
            ],
            "this server speaks FHIR JSON",
        ),
        Produces::Ndjson => (
            &["ndjson", "application/ndjson", "application/fhir+ndjson"],
            &[
                "application/fhir+ndjson",
                "application/ndjson",
                "application/x-ndjson",
            ],
            "Bulk Data files are application/fhir+ndjson",
        ),
        Produces::Drawing => (
            &["svg", "png", "image/svg+xml", "image/png"],
            &["image/svg+xml", "image/png", "image/*"],
            "a drawing is image/svg+xml or image/png",
        ),
        Produces::Table => (
            &[
                "ndjson",
                "csv",
                "json",
                "parquet",
                "application/x-ndjson",
                "application/ndjson",
                "text/csv",
                "application/json",
            ],
            &[
                "application/x-ndjson",
                "application/ndjson",
                "text/csv",
                "text/*",
                "application/json",
                "application/fhir+json",
            ],
            "a view's rows are NDJSON, CSV or JSON",
        ),
    };
    if let Some(format) = format {
        return if formats.contains(&format) {
            Ok(())
        } else {
            Err(ApiError::NotAcceptable(format!(
                "_format '{format}' is not supported here: {speaks}"
            )))
        };
    }
    let Some(accept) = accept else { return Ok(()) };
    let acceptable = accept.split(',').any(|range| {
        let mut pieces = range.split(';');
        let media = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = pieces.any(|parameter| {
            parameter.split_once('=').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("q")
                    && value.trim().parse::<f32>().is_ok_and(|q| q == 0.0)
            })
        });
        !refused
            && (matches!(media.as_str(), "" | "*/*" | "application/*")
                || media_types.contains(&media.as_str()))
    });
    if acceptable {
        Ok(())
    } else {
        Err(ApiError::NotAcceptable(format!(
            "Accept '{accept}' is not supported here: {speaks}"
        )))
    }
}

/// Which body formats a handler reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A FHIR resource in JSON.
    Resource,
    /// A JSON Patch document.
    JsonPatch,
}

/// Reads the body up to the limit and parses it as JSON of the expected kind.
pub async fn read_json(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    kind: BodyKind,
) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let accepted = match kind {
        BodyKind::Resource => matches!(
            media.as_str(),
            "" | "application/fhir+json" | "application/json" | "application/json+fhir"
        ),
        BodyKind::JsonPatch => matches!(
            media.as_str(),
            "application/json-patch+json" | "application/json"
        ),
    };
    if !accepted {
        let expected = match kind {
            BodyKind::Resource => "application/fhir+json",
            BodyKind::JsonPatch => "application/json-patch+json",
        };
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type '{content_type}' is not supported here; send {expected}"
        )));
    }
    let bytes = read_limited(body, limit).await?;
    let content = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if content.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            IssueCode::Required,
            "the request has no body",
        ));
    }
    // One reader for every FHIR JSON body: duplicate keys refused, a byte-order mark skipped.
    fhir_model::json::parse(&bytes).map_err(|error| ApiError::BadRequest(error.issue()))
}

/// Reads a form body (`POST [type]/_search`).
pub async fn read_form(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<(String, String)>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type '{content_type}' is not supported here; send application/x-www-form-urlencoded"
        )));
    }
    let bytes = read_limited(body, limit).await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request(IssueCode::Structure, "the form body is not UTF-8"))?;
    Ok(parse_query(text))
}

async fn read_limited(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let inner = error.into_inner();
        if inner
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            ApiError::PayloadTooLarge(limit)
        } else if let Some(timed_out) = crate::connection::body_timed_out(&*inner) {
            ApiError::RequestTimeout(timed_out.to_string())
        } else {
            // A broken connection: nobody will read the answer.
            ApiError::bad_request(
                IssueCode::Incomplete,
                format!("the request body could not be read: {inner}"),
            )
        }
    })
}

/// The request's id: the client's `X-Request-Id` when it is a short printable token, a new one
/// otherwise.
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The first value of parameter `name` among an operation's parameters.
pub(crate) fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// An operation's parameters: the query's, and for a POST those of its body, a form or a
/// `Parameters` resource (its primitive values and references; a resource-valued parameter is
/// for the operation itself to read).
pub(crate) async fn operation_params(
    fhir: &FhirRequest,
    method: &axum::http::Method,
    body: Body,
    limit: usize,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut params = fhir.criteria();
    if *method != axum::http::Method::POST {
        return Ok(params);
    }
    let json = fhir
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("json"));
    if !json {
        params.extend(read_form(&fhir.headers, body, limit).await?);
        return Ok(params);
    }
    let body = read_json(&fhir.headers, body, limit, BodyKind::Resource).await?;
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(ApiError::bad_request(
            IssueCode::Invalid,
            "the body of this operation must be a Parameters resource",
        ));
    }
    for parameter in body["parameter"].as_array().into_iter().flatten() {
        let name = parameter["name"].as_str().unwrap_or_default();
        let value = [
            "valueDate",
            "valueDateTime",
            "valueInstant",
            "valueString",
            "valueCode",
            "valueUri",
            "valueId",
        ]
        .iter()
        .find_map(|k| parameter[*k].as_str())
        .or_else(|| parameter["valueReference"]["reference"].as_str());
        if let Some(value) = value {
            params.push((name.to_owned(), value.to_owned()));
        }
    }
    Ok(params)
}

/// The body as a Parameters resource's `parameter` array (none: an empty list).
pub(crate) fn parameters(body: &Value) -> Result<&[Value], ApiError> {
    optional_parameters(body)?
        .ok_or_else(|| invalid_parameters("the body must be a Parameters resource", "resourceType"))
}

/// As [`parameters`], and `None` for an empty JSON object (an operation called with no body).
pub(crate) fn optional_parameters(body: &Value) -> Result<Option<&[Value]>, ApiError> {
    match body.get("resourceType").and_then(Value::as_str) {
        Some("Parameters") => match body.get("parameter") {
            None => Ok(Some(&[])),
            Some(Value::Array(items)) => Ok(Some(items.as_slice())),
            Some(_) => Err(invalid_parameters(
                "Parameters.parameter must be an array",
                "Parameters.parameter",
            )),
        },
        None if body.as_object().is_some_and(|o| o.is_empty()) => Ok(None),
        _ => Err(invalid_parameters(
            "the body must be a Parameters resource",
            "resourceType",
        )),
    }
}

fn invalid_parameters(message: &str, expression: &str) -> ApiError {
    ApiError::BadRequest(fhir_model::Issue::error(IssueCode::Invalid, message).at(expression))
}
