//! Building FHIR responses: resources with their version headers, Bundles, OperationOutcomes.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use fhir_model::clock;
use fhir_model::{Issue, IssueCode};
use store::VersionRecord;

use crate::request::{FhirRequest, Return};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// A JSON response with the FHIR content type, pretty-printed on `_pretty=true`.
pub fn json_response(status: StatusCode, body: Vec<u8>, pretty: bool) -> Response {
    let body = if pretty {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| serde_json::to_vec_pretty(&value).ok())
            .unwrap_or(body)
    } else {
        body
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// An OperationOutcome with `issues`.
pub fn outcome_response(status: StatusCode, issues: &[Issue]) -> Response {
    let body = serde_json::to_vec(&Issue::operation_outcome(issues))
        .expect("a JSON value always serialises");
    json_response(status, body, false)
}

/// A stored version with `ETag` and `Last-Modified`, in the `shape` asked for (writes follow
/// `Prefer: return=`; reads always return the resource). `location` is set for creates.
pub fn version_response(
    request: &FhirRequest,
    status: StatusCode,
    record: &VersionRecord,
    location: bool,
    shape: Return,
) -> Response {
    let mut response = match shape {
        Return::Representation => json_response(
            status,
            record.content.clone().unwrap_or_default(),
            request.pretty,
        ),
        Return::Minimal => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = status;
            response
        }
        Return::OperationOutcome => {
            let verb = if status == StatusCode::CREATED {
                "created"
            } else {
                "written"
            };
            let issue = Issue::information(
                IssueCode::Informational,
                format!(
                    "{}/{} {verb} as version {}",
                    record.resource_type, record.id, record.version
                ),
            );
            outcome_response(status, &[issue])
        }
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{}\"", record.version)) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(date) = HeaderValue::from_str(&clock::format_http_date(record.last_updated)) {
        headers.insert(header::LAST_MODIFIED, date);
    }
    if location
        && let Ok(url) = HeaderValue::from_str(&format!(
            "{}/{}/{}/_history/{}",
            request.base, record.resource_type, record.id, record.version
        ))
    {
        headers.insert(header::LOCATION, url.clone());
        headers.insert(header::CONTENT_LOCATION, url);
    }
    response
}

/// 204 No Content, with the deletion's version when there was one.
pub fn deleted_response(record: Option<&VersionRecord>) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    if let Some(record) = record
        && let Ok(etag) = HeaderValue::from_str(&format!("W/\"{}\"", record.version))
    {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}
