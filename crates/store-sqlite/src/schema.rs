//! The SQLite schema, as numbered migrations applied at start-up. The schema they arrive at
//! is the one `store_sql::tables` declares (a test below checks it).
//!
//! Index tables are `WITHOUT ROWID`, clustered on the resource key: their rows are small, the
//! primary key doubles as the per-resource index that updates and deletes need, and each
//! secondary index carries the resource key, so a lookup comes back in resource order.

use std::sync::OnceLock;

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
    // at its smallest matching value, by looking at the resource's first match (store-sql
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
    // Durable jobs (exports, reindexing): claimed with a lease, found by state and due time.
    r#"
CREATE TABLE job (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state INTEGER NOT NULL,
    params TEXT NOT NULL,
    progress TEXT,
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    run_after INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    cancel_requested INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX job_due ON job (state, run_after);
"#,
    // Access: the organisation that holds each version and its restricted sensitivities, and
    // a patient's resources of one type (their consents, beside each of their records).
    r#"
ALTER TABLE resource ADD COLUMN custodian TEXT;
ALTER TABLE resource ADD COLUMN sensitivity INTEGER NOT NULL DEFAULT 0;
ALTER TABLE version ADD COLUMN custodian TEXT;
ALTER TABLE version ADD COLUMN sensitivity INTEGER NOT NULL DEFAULT 0;
CREATE INDEX resource_patient_type ON resource (patient_key, type) WHERE patient_key <> 0;
"#,
    // The verifiable log: leaves, found by the version they record, and the tree in tiles.
    r#"
CREATE TABLE ledger_leaf (
    idx INTEGER PRIMARY KEY,
    rid INTEGER NOT NULL,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    input BLOB NOT NULL
);
CREATE UNIQUE INDEX ledger_leaf_version ON ledger_leaf (rid, version);
CREATE TABLE ledger_tile (
    level INTEGER,
    idx INTEGER,
    hashes BLOB NOT NULL,
    PRIMARY KEY (level, idx)
);
"#,
    // A patient's resources are found through `(patient_key, type)`: a second index keyed by
    // patient cost a page per resident that a batch of writes touches.
    r#"
DROP INDEX resource_patient_key;
"#,
    // References keyed by target first: a resident's references from one batch of writes
    // share a leaf (store_sql::tables).
    r#"
DROP INDEX idx_reference_target;
CREATE INDEX idx_reference_target ON idx_reference (target_id, param, target_type) WHERE target_id IS NOT NULL;
"#,
    // Number and quantity indexes keyed by the value every comparison reads, not the low end
    // of its precision, which bounded nothing (store_sql::tables).
    r#"
DROP INDEX IF EXISTS idx_number_low;
CREATE INDEX idx_number_value ON idx_number (param, value);
DROP INDEX IF EXISTS idx_quantity_value;
CREATE INDEX idx_quantity_value ON idx_quantity (param, value);
DROP INDEX IF EXISTS idx_quantity_canonical;
CREATE INDEX idx_quantity_canonical ON idx_quantity (param, canonical_code, canonical_value) WHERE canonical_code IS NOT NULL;
"#,
    // The date rows that span more than a day, apart, so a walk bounded by a single-valued
    // parameter's other filter reads the rest only up to its bound (store_sql::tables).
    r#"
CREATE INDEX idx_date_wide ON idx_date (param, high) WHERE low < high - 86400000000;
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

/// The secondary indexes that only searches, history and export read, by name, with the
/// statements that build them: what a bulk load into an empty store drops and builds again at
/// its end (`bulk.rs`), as the schema's declaration marks them (`store_sql::tables`).
pub(crate) fn deferrable_indexes() -> &'static [(&'static str, String)] {
    static INDEXES: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    INDEXES.get_or_init(store_sql::ddl::deferrable_indexes)
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, OptionalExtension};
    use store_sql::Dialect;
    use store_sql::ddl::create_schema;

    use super::{MIGRATIONS, migrate};

    /// What SQLite says of a database's schema, one line per fact: each table (whether it has
    /// a row id) with its columns in order (type, not null, default, place in the primary key),
    /// and each index with its table, uniqueness, origin, columns (with order and collation)
    /// and partial condition. The migrations' own bookkeeping (`schema_version`) is left out.
    fn catalog(connection: &Connection) -> Vec<String> {
        let strings = |sql: &str, param: &str| -> Vec<Vec<String>> {
            let mut statement = connection.prepare(sql).unwrap();
            let columns = statement.column_count();
            statement
                .query_map([param], |row| {
                    (0..columns)
                        .map(|i| {
                            let value: rusqlite::types::Value = row.get(i)?;
                            Ok(format!("{value:?}"))
                        })
                        .collect::<rusqlite::Result<Vec<String>>>()
                })
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let mut facts = Vec::new();
        let tables = strings(
            "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> ?1 ORDER BY name",
            "schema_version",
        );
        for table in tables {
            let name = unquote(&table[0]);
            facts.push(format!("table {name} without_rowid={}", table[1]));
            for column in strings(
                "SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid",
                &name,
            ) {
                facts.push(format!("  column {}", column.join(" ")));
            }
            for index in strings(
                "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1) ORDER BY name",
                &name,
            ) {
                let index_name = unquote(&index[0]);
                facts.push(format!("  index {}", index.join(" ")));
                for column in strings(
                    "SELECT name, \"desc\", coll FROM pragma_index_xinfo(?1) WHERE key ORDER BY seqno",
                    &index_name,
                ) {
                    facts.push(format!("    on {}", column.join(" ")));
                }
                // Partial indexes keep their condition only in their statement's text.
                let sql: Option<String> = connection
                    .query_row(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                        [&index_name],
                        |row| row.get(0),
                    )
                    .optional()
                    .unwrap()
                    .flatten();
                if let Some((_, condition)) = sql.as_deref().and_then(|s| s.split_once(" WHERE ")) {
                    facts.push(format!("    where {condition}"));
                }
            }
        }
        facts
    }

    /// A text value as `{:?}` of SQLite's value wrote it, without the wrapping.
    fn unquote(debug: &str) -> String {
        debug
            .strip_prefix("Text(\"")
            .and_then(|rest| rest.strip_suffix("\")"))
            .unwrap_or(debug)
            .to_owned()
    }

    fn declared() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        for statement in create_schema(Dialect::Sqlite) {
            connection.execute_batch(&statement).unwrap();
        }
        connection
    }

    #[test]
    fn a_database_migrated_from_nothing_has_the_declared_schema() {
        let mut migrated = Connection::open_in_memory().unwrap();
        migrate(&mut migrated).unwrap();
        let described = catalog(&migrated);
        assert_eq!(described, catalog(&declared()));
        // The description reaches what the declaration says: keys, clustering, partial indexes.
        for fact in [
            "table idx_string without_rowid=Integer(1)",
            "  column Text(\"exact\") Text(\"TEXT\") Integer(1) Null Integer(4) Integer(0)",
            "    where patient_key <> 0",
        ] {
            assert!(
                described.iter().any(|f| f == fact),
                "{fact}: {described:#?}"
            );
        }
    }

    /// The comparison sees a primary key: a database stopped before migration 3 re-keyed
    /// `idx_string` by value is not the declared schema.
    #[test]
    fn a_database_short_of_the_last_migrations_is_not_the_declared_schema() {
        let migrated = Connection::open_in_memory().unwrap();
        for migration in &MIGRATIONS[..2] {
            migrated.execute_batch(migration).unwrap();
        }
        assert_ne!(catalog(&migrated), catalog(&declared()));
    }
}
