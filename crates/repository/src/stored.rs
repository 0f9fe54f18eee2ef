//! What a stored version means to the repository's code: its JSON, and the error a read of a
//! deleted one answers. Leaves: every other module may use them, they use none.

use serde_json::Value;
use store::VersionRecord;

use crate::RepositoryError;

/// Parses a stored resource back into JSON (for the few places that must read or change it;
/// a deletion reads as `null`). A stored resource that does not parse is an internal error.
pub fn parse_stored(record: &VersionRecord) -> Result<Value, RepositoryError> {
    serde_json::from_slice(record.content.as_deref().unwrap_or(b"null")).map_err(|e| {
        RepositoryError::Internal(format!(
            "stored JSON of {}/{} does not parse: {e}",
            record.resource_type, record.id
        ))
    })
}

/// The error for a resource whose current version is a deletion (410).
pub(crate) fn gone(record: &VersionRecord) -> RepositoryError {
    RepositoryError::Gone {
        resource_type: record.resource_type.clone(),
        id: record.id.clone(),
        version: record.version,
        last_updated: record.last_updated,
    }
}
