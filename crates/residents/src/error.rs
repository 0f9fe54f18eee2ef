//! The identity crate's one error type: what a client did wrong (a bad match request, an
//! expired or tampered health code) apart from what failed inside (the repository, the store).

use fhir_model::{Issue, IssueCode, Outcome, internal_issue};
use repository::RepositoryError;

use crate::health_code::CodeRefusal;

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
    HealthCode(#[from] CodeRefusal),
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

/// A refused health code says which way it is wrong and nothing else.
impl Outcome for IdentityError {
    fn http_status(&self) -> u16 {
        match self {
            IdentityError::Invalid { .. } => 400,
            IdentityError::NotFound(_) => 404,
            IdentityError::Conflict(_) => 409,
            IdentityError::HealthCode(refusal) => refusal_outcome(*refusal).0,
            IdentityError::Repository(error) => error.http_status(),
            IdentityError::Internal(_) => 500,
        }
    }

    fn issues(&self, request_id: &str) -> Vec<Issue> {
        match self {
            IdentityError::Invalid {
                message,
                expression,
            } => {
                let issue = Issue::error(IssueCode::Invalid, message.clone());
                vec![match expression {
                    Some(expression) => issue.at(expression.clone()),
                    None => issue,
                }]
            }
            IdentityError::NotFound(message) => {
                vec![Issue::error(IssueCode::NotFound, message.clone())]
            }
            IdentityError::Conflict(message) => {
                vec![Issue::error(IssueCode::Conflict, message.clone())]
            }
            IdentityError::HealthCode(refusal) => {
                vec![Issue::error(
                    refusal_outcome(*refusal).1,
                    refusal.to_string(),
                )]
            }
            IdentityError::Repository(error) => error.issues(request_id),
            IdentityError::Internal(_) => vec![internal_issue(request_id)],
        }
    }
}

/// The status and issue code of each way a health code is refused.
fn refusal_outcome(refusal: CodeRefusal) -> (u16, IssueCode) {
    match refusal {
        CodeRefusal::Malformed => (400, IssueCode::Invalid),
        CodeRefusal::Tampered => (400, IssueCode::Security),
        CodeRefusal::Expired => (410, IssueCode::Expired),
        CodeRefusal::Revoked => (410, IssueCode::Security),
        CodeRefusal::PinRequired => (400, IssueCode::Required),
        CodeRefusal::WrongPin => (403, IssueCode::Security),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_code_refusals_keep_their_statuses_and_internal_detail_stays_in_the_log() {
        let status = |refusal| IdentityError::HealthCode(refusal).http_status();
        assert_eq!(status(CodeRefusal::Malformed), 400);
        assert_eq!(status(CodeRefusal::Expired), 410);
        assert_eq!(status(CodeRefusal::WrongPin), 403);
        let internal = IdentityError::Internal("no signing key k3".into());
        assert_eq!(internal.http_status(), 500);
        let issues = internal.issues("req-9");
        assert!(issues[0].diagnostics.contains("req-9"));
        assert!(!issues[0].diagnostics.contains("k3"));
        let wrapped = IdentityError::Repository(RepositoryError::NotFound("Person/x".into()));
        assert_eq!(wrapped.http_status(), 404);
    }
}
