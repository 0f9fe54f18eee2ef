//! Every failure the HTTP edge can answer with, and the one place that turns each into a status
//! and an OperationOutcome. Internal detail goes to the log, never to the client.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use fhir_model::{Issue, IssueCode};
use repository::RepositoryError;

use crate::response::outcome_response;

#[derive(Debug)]
pub enum ApiError {
    /// From the repository: it knows the FHIR status of each of its errors.
    Repository(RepositoryError),
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
    /// From the identity services (matching, master records, health codes).
    Identity(identity::IdentityError),
    /// A handler panicked or a worker was lost: a bug.
    Internal(String),
}

impl From<RepositoryError> for ApiError {
    fn from(error: RepositoryError) -> ApiError {
        ApiError::Repository(error)
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
            ApiError::Repository(error) => {
                let status = StatusCode::from_u16(error.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                if status.is_server_error() {
                    tracing::error!(request_id, %error, "request failed");
                } else {
                    tracing::debug!(request_id, %error, "request refused");
                }
                (status, error.issues(request_id))
            }
            ApiError::Identity(error) => return identity_response(error, request_id),
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
            ApiError::Internal(detail) => {
                tracing::error!(request_id, detail, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    vec![Issue::error(
                        IssueCode::Exception,
                        format!("internal error; quote request id {request_id} to the operators"),
                    )],
                )
            }
        };
        let mut response = outcome_response(status, &issues);
        response.headers_mut().extend(headers);
        response
    }
}

/// Identity errors: a refused health code says which way it is wrong and nothing else.
fn identity_response(error: identity::IdentityError, request_id: &str) -> Response {
    use identity::IdentityError;
    use identity::health_code::CodeRefusal;
    let (status, issues) = match error {
        IdentityError::Invalid {
            message,
            expression,
        } => {
            let issue = Issue::error(IssueCode::Invalid, message);
            (
                StatusCode::BAD_REQUEST,
                vec![match expression {
                    Some(expression) => issue.at(expression),
                    None => issue,
                }],
            )
        }
        IdentityError::NotFound(message) => (
            StatusCode::NOT_FOUND,
            vec![Issue::error(IssueCode::NotFound, message)],
        ),
        IdentityError::Conflict(message) => (
            StatusCode::CONFLICT,
            vec![Issue::error(IssueCode::Conflict, message)],
        ),
        IdentityError::HealthCode(refusal) => {
            let (status, code) = match refusal {
                CodeRefusal::Malformed => (StatusCode::BAD_REQUEST, IssueCode::Invalid),
                CodeRefusal::Tampered => (StatusCode::BAD_REQUEST, IssueCode::Security),
                CodeRefusal::Expired => (StatusCode::GONE, IssueCode::Expired),
                CodeRefusal::Revoked => (StatusCode::GONE, IssueCode::Security),
                CodeRefusal::PinRequired => (StatusCode::BAD_REQUEST, IssueCode::Required),
                CodeRefusal::WrongPin => (StatusCode::FORBIDDEN, IssueCode::Security),
            };
            (status, vec![Issue::error(code, refusal.to_string())])
        }
        IdentityError::Repository(error) => {
            return ApiError::Repository(error).into_response(request_id);
        }
        IdentityError::Internal(detail) => {
            return ApiError::Internal(detail).into_response(request_id);
        }
    };
    tracing::debug!(
        request_id,
        status = status.as_u16(),
        "identity request refused"
    );
    outcome_response(status, &issues)
}
