//! Blob keys: `/`-separated segments of letters, digits, `.`, `_` and `-`, never `.` or `..`,
//! so that a key maps to a path under the store's root and to an object name alike, and no key
//! can reach outside the root.

use crate::BlobError;

/// The longest key accepted, in bytes (S3 allows 1,024).
const MAX_KEY_LEN: usize = 1024;

/// A checked blob key (`exports/4f1c.../Patient.ndjson`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    /// Checks `key`.
    pub fn new(key: impl Into<String>) -> Result<BlobKey, BlobError> {
        let key = key.into();
        let valid = !key.is_empty()
            && key.len() <= MAX_KEY_LEN
            && key.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            });
        if valid {
            Ok(BlobKey(key))
        } else {
            Err(BlobError::InvalidKey(key.chars().take(100).collect()))
        }
    }

    /// This key with `segment` appended (itself checked).
    pub fn join(&self, segment: &str) -> Result<BlobKey, BlobError> {
        BlobKey::new(format!("{}/{segment}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last segment (a file name).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Whether `self` is `prefix` or lies under it (whole segments).
    pub fn starts_with(&self, prefix: &BlobKey) -> bool {
        self.0 == prefix.0
            || (self.0.starts_with(&prefix.0)
                && self.0.as_bytes().get(prefix.0.len()) == Some(&b'/'))
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
