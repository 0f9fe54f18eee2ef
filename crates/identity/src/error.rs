//! The identity crate's one error type: what a client did wrong (a bad match request, an
//! expired or tampered health code) apart from what failed inside (the repository, the store).

use repository::RepositoryError;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The request is malformed: the message says which part (400).
    #[error("invalid request: {message}")]
    Invalid {
        message: String,
        /// The offending element, as a FHIRPath-like expression.
        expression: Option<String>,
    },
    /// No such resource or identifier (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request contradicts the current state (409): linking what is already linked.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A health code that cannot be honoured (4xx): says why, and nothing about the person.
    #[error("health code refused: {0}")]
    HealthCode(#[from] crate::health_code::CodeRefusal),
    /// The repository or the store failed, or refused.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// A bug or a broken invariant; the detail is for the log.
    #[error("internal identity error: {0}")]
    Internal(String),
}

impl IdentityError {
    pub fn invalid(message: impl Into<String>, expression: Option<&str>) -> IdentityError {
        IdentityError::Invalid {
            message: message.into(),
            expression: expression.map(str::to_owned),
        }
    }
}

impl From<store::StoreError> for IdentityError {
    fn from(error: store::StoreError) -> IdentityError {
        IdentityError::Repository(RepositoryError::Store(error))
    }
}
