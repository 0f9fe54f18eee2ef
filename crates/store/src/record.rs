//! What the store reads and writes: versions of resources, and pages of them.

use search::IndexEntries;
use search::query::Cursor;

/// How a version came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Create,
    Update,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Create => "create",
            Method::Update => "update",
            Method::Delete => "delete",
        }
    }

    pub fn code(self) -> i64 {
        match self {
            Method::Create => 0,
            Method::Update => 1,
            Method::Delete => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Method> {
        match code {
            0 => Some(Method::Create),
            1 => Some(Method::Update),
            2 => Some(Method::Delete),
            _ => None,
        }
    }
}

/// One stored version of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// The store's internal key of the resource (stable across versions).
    pub row: i64,
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    /// Microseconds since the Unix epoch.
    pub last_updated: i64,
    pub method: Method,
    /// The resource as JSON, with `meta.versionId` and `meta.lastUpdated` set. `None` for a
    /// deletion.
    pub content: Option<Vec<u8>>,
    /// A hash of the content without its server-managed meta, to detect updates that change
    /// nothing.
    pub content_hash: i64,
    /// The organisation that holds the version (see [`VersionWrite::custodian`]).
    pub custodian: Option<String>,
    /// Its restricted sensitivities (see [`VersionWrite::sensitivity`]).
    pub sensitivity: i64,
}

impl VersionRecord {
    pub fn is_deleted(&self) -> bool {
        self.method == Method::Delete
    }
}

/// A new version to write.
#[derive(Debug)]
pub struct VersionWrite<'a> {
    pub resource_type: &'a str,
    pub id: &'a str,
    /// The current version as [`crate::Transaction::current`] returned it, or `None` if the
    /// resource never existed.
    pub previous: Option<&'a VersionRecord>,
    /// `previous.version + 1`, or 1.
    pub version: i64,
    pub last_updated: i64,
    pub method: Method,
    /// The JSON, `None` for a deletion.
    pub content: Option<&'a [u8]>,
    pub content_hash: i64,
    /// The organisation that holds this version (`Organization/7`), as the access service
    /// decided from who wrote it; `None` for what belongs to no institution.
    pub custodian: Option<&'a str>,
    /// The restricted sensitivities the version carries, as the access service's bits (its
    /// confidentiality and sensitive categories); for a Consent, those it permits.
    pub sensitivity: i64,
    /// The index rows of the new version (empty for a deletion).
    pub index: &'a IndexEntries,
}

/// Which versions a history asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryScope {
    System,
    Type(String),
    Instance(String, String),
}

/// `_history` with `_since`, `_at`, `_count` and a cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub scope: HistoryScope,
    /// Only versions written at or after this instant.
    pub since: Option<i64>,
    /// Only versions current at some point during [at.0, at.1].
    pub at: Option<(i64, i64)>,
    pub count: usize,
    /// Continue after this position (from a next link).
    pub cursor: Option<i64>,
    /// Only versions of resources the caller may see.
    pub visibility: search::query::Visibility,
}

/// A page of history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub versions: Vec<VersionRecord>,
    /// Where the next page starts, if there is one.
    pub next: Option<i64>,
}

/// A page of search results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// The matches, in the query's order.
    pub matches: Vec<VersionRecord>,
    /// Resources brought in by `_include` and `_revinclude`.
    pub included: Vec<VersionRecord>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
    /// The number of matches, when the query asked for it.
    pub total: Option<u64>,
}

/// A way through the current resources in row order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScanQuery {
    /// Only these types; all when empty.
    pub types: Vec<String>,
    /// Only resources whose current version was written at or after this instant.
    pub since: Option<i64>,
    /// Continue after this row key (0 to start).
    pub after_row: i64,
    pub limit: usize,
    /// Only resources the caller may see.
    pub visibility: search::query::Visibility,
}

/// One committed change, as the change log gives it to its consumers: which version of which
/// resource was written. Consumers read the content through the repository, under their own
/// caller, like any other reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The change's place in the log: changes are read in ascending position, which is the
    /// order in which they became visible, and a consumer keeps the last position it handled.
    pub position: i64,
    pub row: i64,
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    pub method: Method,
    /// Microseconds since the Unix epoch.
    pub last_updated: i64,
}

impl Change {
    /// The version it wrote as a (type, id, version) key, as [`crate::Store::read_versions`]
    /// and [`crate::Store::ledger_leaves_of`] take them.
    pub fn version_key(&self) -> (&str, &str, i64) {
        (&self.resource_type, &self.id, self.version)
    }
}

/// A leaf of the verifiable log (the `ledger` crate): its place, the version it records, and
/// the exact bytes hashed as the leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerLeaf {
    pub index: u64,
    /// The store's row key of the resource (what the leaf is found by, with the version: an
    /// integer that grows with new resources, so the index takes appends at its end).
    pub row: i64,
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    pub input: Vec<u8>,
}
