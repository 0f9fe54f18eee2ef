//! Sign-in's errors: [`AuthError`] for a FHIR request's bearer token (401 with
//! `WWW-Authenticate`, or 400 for a malformed purpose header), and [`OAuthError`] for the OAuth
//! endpoints, in RFC 6749's vocabulary.

use fhir_model::{Issue, IssueCode, Outcome, internal_issue};
use store::StoreError;

/// Why a request's credentials do not make a caller.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token, or one that is not valid here (forged, expired, revoked, for another
    /// audience or issuer): 401 with `WWW-Authenticate: Bearer ... error="invalid_token"`.
    #[error("{0}")]
    InvalidToken(String),
    /// A header the request carries is malformed (the purpose of use, the break-glass reason).
    #[error("{0}")]
    InvalidRequest(String),
    /// The store could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or a broken invariant; the detail is for the log.
    #[error("internal: {0}")]
    Internal(String),
}

impl Outcome for AuthError {
    fn http_status(&self) -> u16 {
        match self {
            AuthError::InvalidToken(_) => 401,
            AuthError::InvalidRequest(_) => 400,
            AuthError::Store(StoreError::Unavailable(_) | StoreError::Conflict(_)) => 503,
            AuthError::Store(_) | AuthError::Internal(_) => 500,
        }
    }

    fn issues(&self, request_id: &str) -> Vec<Issue> {
        match self {
            AuthError::InvalidToken(message) => vec![Issue::error(IssueCode::Login, message)],
            AuthError::InvalidRequest(message) => vec![Issue::error(IssueCode::Invalid, message)],
            AuthError::Store(StoreError::Unavailable(_) | StoreError::Conflict(_)) => {
                vec![Issue::error(
                    IssueCode::Transient,
                    "the store is not available; try again",
                )]
            }
            AuthError::Store(_) | AuthError::Internal(_) => vec![internal_issue(request_id)],
        }
    }
}

/// An OAuth 2.0 error (RFC 6749 section 5.2, RFC 7591 section 3.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `access_denied`, `invalid_client_metadata`,
    /// `invalid_redirect_uri`, `server_error`, `temporarily_unavailable`.
    pub code: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_request", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_client", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_grant", description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_scope", description)
    }

    /// The HTTP status RFC 6749 gives the error: 401 for a client that failed to
    /// authenticate, 503 when the store is away, 500 for a bug, 400 otherwise.
    pub fn http_status(&self) -> u16 {
        match self.code {
            "invalid_client" => 401,
            "temporarily_unavailable" => 503,
            "server_error" => 500,
            "access_denied" => 403,
            _ => 400,
        }
    }

    /// The error as its JSON body.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"error": self.code, "error_description": self.description})
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> OAuthError {
        match error {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => {
                tracing::warn!(%error, "sign-in: the store did not answer");
                OAuthError::new(
                    "temporarily_unavailable",
                    "the store is not available; try again",
                )
            }
            other => {
                tracing::error!(error = %other, "sign-in: store failure");
                OAuthError::new("server_error", "the server failed; try again later")
            }
        }
    }
}

impl From<AuthError> for OAuthError {
    fn from(error: AuthError) -> OAuthError {
        match error {
            AuthError::InvalidToken(message) => OAuthError::invalid_grant(message),
            AuthError::InvalidRequest(message) => OAuthError::invalid_request(message),
            AuthError::Store(error) => error.into(),
            AuthError::Internal(detail) => {
                tracing::error!(detail, "sign-in: internal failure");
                OAuthError::new("server_error", "the server failed; try again later")
            }
        }
    }
}
