//! The repository's one error type: what went wrong, in terms a FHIR client understands. Its
//! [`Outcome`] says each kind's status and OperationOutcome issues, exhaustively.

use fhir_model::{Issue, IssueCode, Outcome, internal_issue};
use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The request or resource is malformed or breaks the base specification's rules (400).
    #[error("invalid: {}", summary(.0))]
    Invalid(Vec<Issue>),
    /// The resource is well-formed but breaks a rule of this server or a profile (422).
    #[error("unprocessable: {}", summary(.0))]
    Unprocessable(Vec<Issue>),
    /// No such resource, version or type (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The resource was deleted (410). Carries the deletion's version for the ETag.
    #[error("{resource_type}/{id} was deleted")]
    Gone {
        resource_type: String,
        id: String,
        version: i64,
        last_updated: i64,
    },
    /// `If-Match` named another version, or a conditional operation matched several (412).
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// The change conflicts with the resource's current state (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The server does not do this (for example an interaction on an unknown type).
    #[error("not supported: {0}")]
    NotSupported(String),
    /// A search or history query the server cannot understand (400), naming the parameter.
    #[error("bad search: {0}")]
    BadSearch(#[from] search::SearchError),
    /// An entry of a transaction failed; the transaction was rolled back.
    #[error("transaction entry {index} failed: {error}")]
    TransactionEntry {
        index: usize,
        error: Box<RepositoryError>,
    },
    /// The caller lacks a permission (403), named in the message.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or a broken invariant outside the store (stored JSON that does not parse, no
    /// randomness, write hooks that never settle): 500, the detail for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

fn summary(issues: &[Issue]) -> String {
    issues
        .first()
        .map(|i| i.diagnostics.clone())
        .unwrap_or_default()
}

impl RepositoryError {
    pub fn invalid(code: IssueCode, diagnostics: impl Into<String>) -> RepositoryError {
        RepositoryError::Invalid(vec![Issue::error(code, diagnostics)])
    }

    pub fn invalid_at(
        code: IssueCode,
        diagnostics: impl Into<String>,
        expression: &str,
    ) -> RepositoryError {
        RepositoryError::Invalid(vec![Issue::error(code, diagnostics).at(expression)])
    }

    /// Whether running the whole operation again may succeed (a write raced another).
    pub fn is_retryable(&self) -> bool {
        match self {
            RepositoryError::Store(e) => e.is_retryable(),
            RepositoryError::TransactionEntry { error, .. } => error.is_retryable(),
            _ => false,
        }
    }
}

/// Batch and transaction responses carry each entry's status in `response.status`, so it is
/// decided here, once, for the server and the bundles alike.
impl Outcome for RepositoryError {
    fn http_status(&self) -> u16 {
        match self {
            RepositoryError::Invalid(_) => 400,
            RepositoryError::Unprocessable(_) => 422,
            RepositoryError::NotFound(_) => 404,
            RepositoryError::Forbidden(_) => 403,
            RepositoryError::Gone { .. } => 410,
            RepositoryError::PreconditionFailed(_) => 412,
            RepositoryError::Conflict(_) => 409,
            RepositoryError::NotSupported(_) => 400,
            RepositoryError::BadSearch(_) => 400,
            RepositoryError::TransactionEntry { error, .. } => error.http_status(),
            RepositoryError::Store(error) => match error {
                StoreError::Conflict(_) => 409,
                StoreError::Unavailable(_) => 503,
                StoreError::InvalidCursor => 400,
                StoreError::TooCostly(_) => 400,
                StoreError::Internal(_) => 500,
            },
            RepositoryError::Internal(_) => 500,
        }
    }

    fn issues(&self, request_id: &str) -> Vec<Issue> {
        match self {
            RepositoryError::Invalid(issues) | RepositoryError::Unprocessable(issues) => {
                issues.clone()
            }
            RepositoryError::NotFound(message) => {
                vec![Issue::error(IssueCode::NotFound, message.clone())]
            }
            RepositoryError::Forbidden(message) => {
                vec![Issue::error(IssueCode::Forbidden, message.clone())]
            }
            RepositoryError::Gone {
                resource_type,
                id,
                version,
                ..
            } => vec![Issue::error(
                IssueCode::Deleted,
                format!("{resource_type}/{id} was deleted (version {version})"),
            )],
            RepositoryError::PreconditionFailed(message) => {
                vec![Issue::error(IssueCode::Conflict, message.clone())]
            }
            RepositoryError::Conflict(message) => {
                vec![Issue::error(IssueCode::Conflict, message.clone())]
            }
            RepositoryError::NotSupported(message) => {
                vec![Issue::error(IssueCode::NotSupported, message.clone())]
            }
            RepositoryError::BadSearch(error) => {
                vec![Issue::error(IssueCode::Invalid, error.to_string()).at(error.param.clone())]
            }
            RepositoryError::TransactionEntry { index, error } => error
                .issues(request_id)
                .into_iter()
                .map(|mut issue| {
                    issue.diagnostics = format!("Bundle.entry[{index}]: {}", issue.diagnostics);
                    issue.expression = Some(match issue.expression.take() {
                        Some(inner) => {
                            format!("Bundle.entry[{index}].resource.{}", strip_type(&inner))
                        }
                        None => format!("Bundle.entry[{index}]"),
                    });
                    issue
                })
                .collect(),
            RepositoryError::Store(error) => vec![match error {
                StoreError::Conflict(_) => Issue::error(
                    IssueCode::Conflict,
                    "the resource was changed by another request at the same time; try again",
                ),
                StoreError::Unavailable(_) => Issue::error(
                    IssueCode::Transient,
                    "the database is unavailable; try again later",
                ),
                StoreError::InvalidCursor => {
                    Issue::error(IssueCode::Invalid, "the paging cursor is not valid").at("_cursor")
                }
                StoreError::TooCostly(message) => {
                    Issue::error(IssueCode::TooCostly, message.clone())
                }
                StoreError::Internal(_) => internal_issue(request_id),
            }],
            RepositoryError::Internal(_) => vec![internal_issue(request_id)],
        }
    }
}

/// `Patient.name[0]` inside an entry reads better as `resource.name[0]`.
fn strip_type(expression: &str) -> &str {
    match expression.split_once('.') {
        Some((head, rest)) if head.chars().next().is_some_and(char::is_uppercase) => rest,
        _ => expression,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_failure_is_a_500_that_tells_the_client_only_the_request_id() {
        let error = RepositoryError::Internal("stored JSON of Patient/p1 does not parse".into());
        assert_eq!(error.http_status(), 500);
        assert!(!error.is_retryable());
        let issues = error.issues("req-7");
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].code, IssueCode::Exception);
        assert!(issues[0].diagnostics.contains("req-7"), "{issues:?}");
        assert!(!issues[0].diagnostics.contains("Patient/p1"), "{issues:?}");
    }
}
