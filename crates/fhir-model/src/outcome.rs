//! How a service's error becomes a FHIR answer: a status and the issues of an
//! OperationOutcome. Every service's error implements [`Outcome`], so the HTTP edge turns any of
//! them into a response the same way, and batch responses (which carry a status per entry) use
//! the same table. The status is a number: the crates that implement this know no HTTP.

use crate::{Issue, IssueCode};

pub trait Outcome: std::error::Error {
    /// The HTTP status FHIR prescribes for this error (4xx for the client's, 5xx for the
    /// server's).
    fn http_status(&self) -> u16;

    /// The issues to tell the client. An internal failure says only that something failed and
    /// the request id to quote ([`internal_issue`]); its detail (the error's `Display`) is for
    /// the log.
    fn issues(&self, request_id: &str) -> Vec<Issue>;
}

/// What the client learns of an internal failure.
pub fn internal_issue(request_id: &str) -> Issue {
    Issue::error(
        IssueCode::Exception,
        format!("internal error; quote request id {request_id} to the operators"),
    )
}
