//! Store errors in portable kinds: each backend maps its driver's errors into these once.

/// What went wrong in a store, independent of the backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another transaction wrote the same resource at the same time (a unique key raced, a
    /// serialization failure, a deadlock). Running the whole transaction again may succeed.
    #[error("concurrent write conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or refused the connection.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A cursor from a next link does not belong to this query or is malformed.
    #[error("invalid paging cursor")]
    InvalidCursor,
    /// The query would be too expensive to run.
    #[error("query too costly: {0}")]
    TooCostly(String),
    /// A bug or an unexpected database state. The detail is for the log, never for the client.
    #[error("internal store error: {0}")]
    Internal(String),
}

impl StoreError {
    /// Whether running the transaction again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }
}
