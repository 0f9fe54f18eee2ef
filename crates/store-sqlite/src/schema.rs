//! The SQLite schema, as numbered migrations applied at start-up.
//!
//! Index tables are `WITHOUT ROWID`, clustered on the resource key: their rows are small, the
//! primary key doubles as the per-resource index that updates and deletes need, and each
//! secondary index carries the resource key, so a lookup comes back in resource order.

use rusqlite::Connection;
use store::StoreError;

use crate::map_error;

/// Migrations in order; the position (from 1) is the schema version. Never edit one that has
/// shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE resource (
    rid INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    method INTEGER NOT NULL,
    patient_key INTEGER NOT NULL,
    content_hash INTEGER NOT NULL
);
CREATE UNIQUE INDEX resource_type_id ON resource (type, id);
CREATE INDEX resource_type_rid ON resource (type, rid);
CREATE INDEX resource_patient_key ON resource (patient_key) WHERE patient_key <> 0;

CREATE TABLE version (
    seq INTEGER PRIMARY KEY,
    rid INTEGER NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    last_updated INTEGER NOT NULL,
    superseded INTEGER,
    method INTEGER NOT NULL,
    patient_key INTEGER NOT NULL,
    content_hash INTEGER NOT NULL,
    content BLOB
);
CREATE UNIQUE INDEX version_rid_version ON version (rid, version);
CREATE INDEX version_type_seq ON version (type, seq);

CREATE TABLE idx_token (
    rid INTEGER NOT NULL,
    param INTEGER NOT NULL,
    h_code INTEGER NOT NULL,
    h_system_code INTEGER NOT NULL,
    h_system INTEGER,
    code TEXT NOT NULL,
    patient_key INTEGER NOT NULL,
    PRIMARY KEY (rid, h_system_code)
) WITHOUT ROWID;
CREATE INDEX idx_token_code ON idx_token (h_code);
CREATE INDEX idx_token_system_code ON idx_token (h_system_code);
CREATE INDEX idx_token_system ON idx_token (h_system) WHERE h_system IS NOT NULL;

CREATE TABLE idx_string (
    rid INTEGER NOT NULL,
    param INTEGER NOT NULL,
    normalized TEXT NOT NULL,
    exact TEXT NOT NULL,
    patient_key INTEGER NOT NULL,
    PRIMARY KEY (rid, param, exact)
) WITHOUT ROWID;
CREATE INDEX idx_string_normalized ON idx_string (param, normalized);

CREATE TABLE idx_date (
    rid INTEGER NOT NULL,
    param INTEGER NOT NULL,
    low INTEGER NOT NULL,
    high INTEGER NOT NULL,
    patient_key INTEGER NOT NULL,
    PRIMARY KEY (rid, param, low, high)
) WITHOUT ROWID;
CREATE INDEX idx_date_low ON idx_date (param, low);
CREATE INDEX idx_date_high ON idx_date (param, high);

CREATE TABLE idx_number (
    rid INTEGER NOT NULL,
    param INTEGER NOT NULL,
    value REAL NOT NULL,
    low REAL NOT NULL,
    high REAL NOT NULL,
    patient_key INTEGER NOT NULL,
    PRIMARY KEY (rid, param, low, high)
) WITHOUT ROWID;
CREATE INDEX idx_number_low ON idx_number (param, low);

CREATE TABLE idx_quantity (
    rid INTEGER NOT NULL,
    param INTEGER NOT NULL,
    system TEXT,
    code TEXT,
    value REAL NOT NULL,
    low REAL NOT NULL,
    high REAL NOT NULL,
    canonical_code TEXT,
    canonical_value REAL,
    canonical_low REAL,
    canonical_high REAL,
    patient_key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (rid, param, seq)
) WITHOUT ROWID;
CREATE INDEX idx_quantity_value ON idx_quantity (param, low);
CREATE INDEX idx_quantity_canonical ON idx_quantity (param, canonical_code, canonical_low) WHERE canonical_code IS NOT NULL;

CREATE TABLE idx_reference (
    rid INTEGER NOT NULL,
    param INTEGER NOT NULL,
    target_type TEXT,
    target_id TEXT,
    url TEXT,
    version TEXT,
    patient_key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (rid, param, seq)
) WITHOUT ROWID;
CREATE INDEX idx_reference_target ON idx_reference (param, target_id, target_type) WHERE target_id IS NOT NULL;
CREATE INDEX idx_reference_url ON idx_reference (param, url) WHERE url IS NOT NULL;

CREATE TABLE idx_uri (
    rid INTEGER NOT NULL,
    param INTEGER NOT NULL,
    uri TEXT NOT NULL,
    patient_key INTEGER NOT NULL,
    PRIMARY KEY (rid, param, uri)
) WITHOUT ROWID;
CREATE INDEX idx_uri_value ON idx_uri (param, uri);

CREATE TABLE idx_composite (
    rid INTEGER NOT NULL,
    param INTEGER NOT NULL,
    first_h_code INTEGER NOT NULL,
    first_h_system_code INTEGER NOT NULL,
    second_h_code INTEGER,
    second_h_system_code INTEGER,
    second_value REAL,
    second_low REAL,
    second_high REAL,
    second_text TEXT,
    patient_key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (rid, param, seq)
) WITHOUT ROWID;
CREATE INDEX idx_composite_first_code ON idx_composite (first_h_code);
CREATE INDEX idx_composite_first_system_code ON idx_composite (first_h_system_code);
"#,
    r#"
CREATE TABLE checkpoint (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    // A resource's string rows in value order: a walk along names keeps each resource once,
    // at its smallest matching value, by looking at the resource's first match (sql.rs
    // `walk_page`); keyed by the exact text, it read every one of its rows for each.
    r#"
CREATE TABLE idx_string_by_value (
    rid INTEGER NOT NULL,
    param INTEGER NOT NULL,
    normalized TEXT NOT NULL,
    exact TEXT NOT NULL,
    patient_key INTEGER NOT NULL,
    PRIMARY KEY (rid, param, normalized, exact)
) WITHOUT ROWID;
INSERT INTO idx_string_by_value (rid, param, normalized, exact, patient_key)
    SELECT rid, param, normalized, exact, patient_key FROM idx_string;
DROP TABLE idx_string;
ALTER TABLE idx_string_by_value RENAME TO idx_string;
CREATE INDEX idx_string_normalized ON idx_string (param, normalized);
"#,
];

/// Brings the database up to the current schema version, in one transaction per migration.
pub fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    connection
        .execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(map_error)?;
    let current: i64 = connection
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |row| row.get(0),
        )
        .map_err(map_error)?;
    if current > MIGRATIONS.len() as i64 {
        return Err(StoreError::Internal(format!(
            "the database has schema version {current}, newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        let tx = connection.transaction().map_err(map_error)?;
        tx.execute_batch(migration).map_err(map_error)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )
        .map_err(map_error)?;
        tx.commit().map_err(map_error)?;
        tracing::info!(version, "applied SQLite schema migration");
    }
    Ok(())
}

/// The secondary indexes that only searches, history and export read, as the migrations
/// created them: what a bulk load into an empty store drops and builds again at its end
/// (`bulk.rs`). The write path's own lookups stay: `resource_type_id` (the current version by
/// id), `version_rid_version`, and `idx_token_system_code`, which the conditional references
/// of transaction Bundles (`Practitioner?identifier=system|value`) search while the load runs.
pub(crate) const DEFERRABLE_INDEXES: &[(&str, &str)] = &[
    (
        "resource_type_rid",
        "CREATE INDEX resource_type_rid ON resource (type, rid)",
    ),
    (
        "resource_patient_key",
        "CREATE INDEX resource_patient_key ON resource (patient_key) WHERE patient_key <> 0",
    ),
    (
        "version_type_seq",
        "CREATE INDEX version_type_seq ON version (type, seq)",
    ),
    (
        "idx_token_code",
        "CREATE INDEX idx_token_code ON idx_token (h_code)",
    ),
    (
        "idx_token_system",
        "CREATE INDEX idx_token_system ON idx_token (h_system) WHERE h_system IS NOT NULL",
    ),
    (
        "idx_string_normalized",
        "CREATE INDEX idx_string_normalized ON idx_string (param, normalized)",
    ),
    (
        "idx_date_low",
        "CREATE INDEX idx_date_low ON idx_date (param, low)",
    ),
    (
        "idx_date_high",
        "CREATE INDEX idx_date_high ON idx_date (param, high)",
    ),
    (
        "idx_number_low",
        "CREATE INDEX idx_number_low ON idx_number (param, low)",
    ),
    (
        "idx_quantity_value",
        "CREATE INDEX idx_quantity_value ON idx_quantity (param, low)",
    ),
    (
        "idx_quantity_canonical",
        "CREATE INDEX idx_quantity_canonical ON idx_quantity (param, canonical_code, canonical_low) WHERE canonical_code IS NOT NULL",
    ),
    (
        "idx_reference_target",
        "CREATE INDEX idx_reference_target ON idx_reference (param, target_id, target_type) WHERE target_id IS NOT NULL",
    ),
    (
        "idx_reference_url",
        "CREATE INDEX idx_reference_url ON idx_reference (param, url) WHERE url IS NOT NULL",
    ),
    (
        "idx_uri_value",
        "CREATE INDEX idx_uri_value ON idx_uri (param, uri)",
    ),
    (
        "idx_composite_first_code",
        "CREATE INDEX idx_composite_first_code ON idx_composite (first_h_code)",
    ),
    (
        "idx_composite_first_system_code",
        "CREATE INDEX idx_composite_first_system_code ON idx_composite (first_h_system_code)",
    ),
];
