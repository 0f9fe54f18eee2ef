use repository::RepositoryError;

/// What can go wrong with a hook call, feedback or the metrics.
#[derive(Debug, thiserror::Error)]
pub enum CdsError {
    /// The request is malformed (400, with the message for the client).
    #[error("{0}")]
    BadRequest(String),
    /// Reading the record or writing the service's records failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

impl From<store::StoreError> for CdsError {
    fn from(error: store::StoreError) -> CdsError {
        CdsError::Repository(RepositoryError::Store(error))
    }
}
