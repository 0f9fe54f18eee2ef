//! Every failure the HTTP edge can answer with, and the one place that turns each into a status
//! and an OperationOutcome. Internal detail goes to the log, never to the client.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use fhir_model::{Issue, IssueCode, Outcome, internal_issue};

use crate::response::outcome_response;

#[derive(Debug)]
pub enum ApiError {
    /// From a service (the repository, identity): its [`Outcome`] says the status and the
    /// issues.
    Service(Box<dyn Outcome + Send + Sync>),
    /// The request itself is malformed (bad JSON, bad header value).
    BadRequest(Issue),
    /// No such endpoint.
    NotFound(String),
    /// The endpoint exists but not for this method: the methods it takes (the `Allow` header).
    MethodNotAllowed {
        method: String,
        allowed: Vec<&'static str>,
    },
    /// The client asked for a format we do not produce (XML, say).
    NotAcceptable(String),
    /// The body is in a format we do not read.
    UnsupportedMediaType(String),
    /// The request names a host this server does not answer for (421): with no public base
    /// configured, links would point there.
    MisdirectedRequest(String),
    /// The request (its head or its body) did not arrive within the configured time; the
    /// connection is closed after the answer.
    RequestTimeout(String),
    /// The server is at its connection limit; the client should retry after the given
    /// seconds.
    Overloaded {
        message: String,
        retry_after_seconds: u64,
    },
    /// The body is over the configured limit.
    PayloadTooLarge(usize),
    /// No bearer token, or one that is not valid (forged, expired, revoked, for another
    /// audience): 401 with `WWW-Authenticate`.
    Unauthorized(String),
    /// A handler panicked, a worker was lost, a stored answer cannot be read: a bug.
    Internal(String),
}

/// Any service's error, with `?`.
impl<E: Outcome + Send + Sync + 'static> From<E> for ApiError {
    fn from(error: E) -> ApiError {
        ApiError::Service(Box::new(error))
    }
}

impl ApiError {
    pub fn bad_request(code: IssueCode, diagnostics: impl Into<String>) -> ApiError {
        ApiError::BadRequest(Issue::error(code, diagnostics))
    }

    pub fn method_not_allowed(method: &Method, allowed: &[&'static str]) -> ApiError {
        ApiError::MethodNotAllowed {
            method: method.to_string(),
            allowed: allowed.to_vec(),
        }
    }

    /// The response for this error, for the request `request_id`.
    pub fn into_response(self, request_id: &str) -> Response {
        let mut headers = HeaderMap::new();
        let (status, issues) = match self {
            ApiError::Service(error) => {
                let status = StatusCode::from_u16(error.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                if status.is_server_error() {
                    tracing::error!(request_id, %error, "request failed");
                } else {
                    tracing::debug!(request_id, %error, "request refused");
                }
                (status, error.issues(request_id))
            }
            ApiError::BadRequest(issue) => (StatusCode::BAD_REQUEST, vec![issue]),
            ApiError::NotFound(message) => (
                StatusCode::NOT_FOUND,
                vec![Issue::error(IssueCode::NotFound, message)],
            ),
            ApiError::MethodNotAllowed { method, allowed } => {
                if let Ok(allow) = HeaderValue::from_str(&allowed.join(", ")) {
                    headers.insert(header::ALLOW, allow);
                }
                let message = match allowed.split_last() {
                    Some((last, [])) => format!("{method} is not allowed here; use {last}"),
                    Some((last, others)) => format!(
                        "{method} is not allowed here; use {} or {last}",
                        others.join(", ")
                    ),
                    None => format!("{method} is not allowed here"),
                };
                (
                    StatusCode::METHOD_NOT_ALLOWED,
                    vec![Issue::error(IssueCode::NotSupported, message)],
                )
            }
            ApiError::NotAcceptable(message) => (
                StatusCode::NOT_ACCEPTABLE,
                vec![Issue::error(IssueCode::NotSupported, message)],
            ),
            ApiError::UnsupportedMediaType(message) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                vec![Issue::error(IssueCode::NotSupported, message)],
            ),
            ApiError::MisdirectedRequest(message) => (
                StatusCode::MISDIRECTED_REQUEST,
                vec![Issue::error(IssueCode::Invalid, message)],
            ),
            ApiError::RequestTimeout(message) => {
                // What is left of the request is unread: the connection cannot carry another.
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
                (
                    StatusCode::REQUEST_TIMEOUT,
                    vec![Issue::error(IssueCode::Timeout, message)],
                )
            }
            ApiError::Overloaded {
                message,
                retry_after_seconds,
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    vec![Issue::error(IssueCode::Throttled, message)],
                )
            }
            ApiError::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                vec![Issue::error(
                    IssueCode::TooLong,
                    format!("the request body is over the limit of {limit} bytes"),
                )],
            ),
            ApiError::Unauthorized(message) => {
                // The description goes into a quoted header parameter: plain ASCII only.
                let description: String = message
                    .chars()
                    .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\')
                    .collect();
                if let Ok(value) = HeaderValue::from_str(&format!(
                    "Bearer realm=\"meridian\", error=\"invalid_token\", error_description=\"{description}\""
                )) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
                (
                    StatusCode::UNAUTHORIZED,
                    vec![Issue::error(IssueCode::Login, message)],
                )
            }
            ApiError::Internal(detail) => {
                tracing::error!(request_id, detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    vec![internal_issue(request_id)],
                )
            }
        };
        let mut response = outcome_response(status, &issues);
        response.headers_mut().extend(headers);
        response
    }
}
