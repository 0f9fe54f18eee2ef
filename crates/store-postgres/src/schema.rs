//! The PostgreSQL schema, as numbered migrations applied at start-up under an advisory lock, so
//! that several servers starting at once on one database migrate it once.
//!
//! Tables and columns carry the SQLite store's names, so the search SQL rendered by
//! `store-sql` runs unchanged on both. What differs, and why:
//! - Text columns are `COLLATE "C"`: string and uri searches use byte-order prefix ranges
//!   (`>= prefix AND < prefix || U+10FFFF`), which only hold under byte order, and byte order
//!   also makes every text index cheaper to search and maintain than a linguistic collation.
//! - `content` is `bytea` (the JSON exactly as written, read back byte for byte), compressed
//!   with lz4, which costs far less CPU on ingest than the default pglz.
//! - Index tables have no primary key. SQLite's primary keys there exist to cluster rows by
//!   resource; PostgreSQL tables are heaps, so a plain `(rid, param)` index serves deletes and
//!   `:missing`, and the write path removes duplicate rows before writing (as SQLite's
//!   `ON CONFLICT DO NOTHING` does). Without unique keys, one statement can delete a resource's
//!   old rows and insert its new ones, whatever order PostgreSQL runs the two in.
//! - Lookup and value indexes end with `rid`, so a lookup returns rows in resource order, and a
//!   walk along values rows in (value, resource) order, from the index alone, which keyset
//!   paging needs (SQLite appends the key to every index implicitly).
//! - `rid` comes from the sequence `resource_rid` in blocks (its increment), so a bulk load
//!   assigns row keys without a round trip per resource; `version.seq` is an identity column,
//!   assigned in write order.

use store::StoreError;

use crate::map_error;
use crate::pool::Connection;

/// Migrations in order; the position (from 1) is the schema version. Never edit one that has
/// shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE SEQUENCE resource_rid AS bigint INCREMENT BY 1024;

CREATE TABLE resource (
    rid bigint PRIMARY KEY,
    type text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    last_updated bigint NOT NULL,
    method smallint NOT NULL,
    patient_key bigint NOT NULL,
    content_hash bigint NOT NULL
);
CREATE UNIQUE INDEX resource_type_id ON resource (type, id);
CREATE INDEX resource_type_rid ON resource (type, rid);
CREATE INDEX resource_patient_key ON resource (patient_key, rid) WHERE patient_key <> 0;

CREATE TABLE version (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rid bigint NOT NULL,
    version bigint NOT NULL,
    type text COLLATE "C" NOT NULL,
    last_updated bigint NOT NULL,
    superseded bigint,
    method smallint NOT NULL,
    patient_key bigint NOT NULL,
    content_hash bigint NOT NULL,
    content bytea COMPRESSION lz4
);
CREATE UNIQUE INDEX version_rid_version ON version (rid, version);
CREATE INDEX version_type_seq ON version (type, seq);

CREATE TABLE idx_token (
    rid bigint NOT NULL,
    param bigint NOT NULL,
    h_code bigint NOT NULL,
    h_system_code bigint NOT NULL,
    h_system bigint,
    code text COLLATE "C" NOT NULL,
    patient_key bigint NOT NULL
);
CREATE INDEX idx_token_rid ON idx_token (rid, param);
CREATE INDEX idx_token_code ON idx_token (h_code, rid);
CREATE INDEX idx_token_system_code ON idx_token (h_system_code, rid);
CREATE INDEX idx_token_system ON idx_token (h_system, rid) WHERE h_system IS NOT NULL;

CREATE TABLE idx_string (
    rid bigint NOT NULL,
    param bigint NOT NULL,
    normalized text COLLATE "C" NOT NULL,
    exact text COLLATE "C" NOT NULL,
    patient_key bigint NOT NULL
);
CREATE INDEX idx_string_rid ON idx_string (rid, param);
CREATE INDEX idx_string_normalized ON idx_string (param, normalized);

CREATE TABLE idx_date (
    rid bigint NOT NULL,
    param bigint NOT NULL,
    low bigint NOT NULL,
    high bigint NOT NULL,
    patient_key bigint NOT NULL
);
CREATE INDEX idx_date_rid ON idx_date (rid, param);
CREATE INDEX idx_date_low ON idx_date (param, low);
CREATE INDEX idx_date_high ON idx_date (param, high);

CREATE TABLE idx_number (
    rid bigint NOT NULL,
    param bigint NOT NULL,
    value double precision NOT NULL,
    low double precision NOT NULL,
    high double precision NOT NULL,
    patient_key bigint NOT NULL
);
CREATE INDEX idx_number_rid ON idx_number (rid, param);
CREATE INDEX idx_number_low ON idx_number (param, low);

CREATE TABLE idx_quantity (
    rid bigint NOT NULL,
    param bigint NOT NULL,
    system text COLLATE "C",
    code text COLLATE "C",
    value double precision NOT NULL,
    low double precision NOT NULL,
    high double precision NOT NULL,
    canonical_code text COLLATE "C",
    canonical_value double precision,
    canonical_low double precision,
    canonical_high double precision,
    patient_key bigint NOT NULL,
    seq bigint NOT NULL
);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid, param);
CREATE INDEX idx_quantity_value ON idx_quantity (param, low);
CREATE INDEX idx_quantity_canonical ON idx_quantity (param, canonical_code, canonical_low) WHERE canonical_code IS NOT NULL;

CREATE TABLE idx_reference (
    rid bigint NOT NULL,
    param bigint NOT NULL,
    target_type text COLLATE "C",
    target_id text COLLATE "C",
    url text COLLATE "C",
    version text COLLATE "C",
    patient_key bigint NOT NULL,
    seq bigint NOT NULL
);
CREATE INDEX idx_reference_rid ON idx_reference (rid, param);
CREATE INDEX idx_reference_target ON idx_reference (param, target_id, target_type) WHERE target_id IS NOT NULL;
CREATE INDEX idx_reference_url ON idx_reference (param, url) WHERE url IS NOT NULL;

CREATE TABLE idx_uri (
    rid bigint NOT NULL,
    param bigint NOT NULL,
    uri text COLLATE "C" NOT NULL,
    patient_key bigint NOT NULL
);
CREATE INDEX idx_uri_rid ON idx_uri (rid, param);
CREATE INDEX idx_uri_value ON idx_uri (param, uri);

CREATE TABLE idx_composite (
    rid bigint NOT NULL,
    param bigint NOT NULL,
    first_h_code bigint NOT NULL,
    first_h_system_code bigint NOT NULL,
    second_h_code bigint,
    second_h_system_code bigint,
    second_value double precision,
    second_low double precision,
    second_high double precision,
    second_text text COLLATE "C",
    patient_key bigint NOT NULL,
    seq bigint NOT NULL
);
CREATE INDEX idx_composite_rid ON idx_composite (rid, param);
CREATE INDEX idx_composite_first_code ON idx_composite (first_h_code, rid);
CREATE INDEX idx_composite_first_system_code ON idx_composite (first_h_system_code, rid);
"#,
    r#"
CREATE TABLE checkpoint (
    name text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);
"#,
    // Value indexes end with `rid` too: a page walked along names, dates or a chain's targets
    // reads them in (value, rid) order, and one reference's referrers come in row order.
    r#"
DROP INDEX idx_string_normalized;
CREATE INDEX idx_string_normalized ON idx_string (param, normalized, rid);
DROP INDEX idx_date_low;
CREATE INDEX idx_date_low ON idx_date (param, low, rid);
DROP INDEX idx_date_high;
CREATE INDEX idx_date_high ON idx_date (param, high, rid);
DROP INDEX idx_reference_target;
CREATE INDEX idx_reference_target ON idx_reference (param, target_id, target_type, rid) WHERE target_id IS NOT NULL;
"#,
    // A resource's string rows in value order: a walk along names keeps each resource once,
    // at its smallest matching value, by looking at the resource's first match (store-sql
    // `walk_page`), not at every one of its rows.
    r#"
DROP INDEX idx_string_rid;
CREATE INDEX idx_string_rid ON idx_string (rid, param, normalized);
"#,
    // Durable jobs (exports, reindexing): claimed with a lease, found by state and due time.
    r#"
CREATE TABLE job (
    id text COLLATE "C" PRIMARY KEY,
    kind text NOT NULL,
    state smallint NOT NULL,
    params text NOT NULL,
    progress text,
    result text,
    error text,
    attempts integer NOT NULL,
    max_attempts integer NOT NULL,
    run_after bigint NOT NULL,
    lease_owner text,
    lease_until bigint,
    cancel_requested boolean NOT NULL,
    created bigint NOT NULL,
    updated bigint NOT NULL
);
CREATE INDEX job_due ON job (state, run_after);
"#,
    // The log of committed changes (store-sql's `tables::CHANGE`): a row per version, written
    // by a trigger in the writing transaction, numbered once committed. The versions already
    // written are in it from the start, to be numbered in their order.
    r#"
CREATE TABLE change (
    seq bigint PRIMARY KEY,
    position bigint
);
CREATE UNIQUE INDEX change_position ON change (position) WHERE position IS NOT NULL;
CREATE INDEX change_unsequenced ON change (seq) WHERE position IS NULL;
CREATE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO change (seq) SELECT seq FROM written; RETURN NULL; END $$;
CREATE TRIGGER version_change AFTER INSERT ON version REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION record_change();
INSERT INTO change (seq) SELECT seq FROM version;
"#,
    // Access: the organisation that holds each version and its restricted sensitivities, and
    // a patient's resources of one type (their consents, beside each of their records).
    r#"
ALTER TABLE resource ADD COLUMN custodian text COLLATE "C";
ALTER TABLE resource ADD COLUMN sensitivity bigint NOT NULL DEFAULT 0;
ALTER TABLE version ADD COLUMN custodian text COLLATE "C";
ALTER TABLE version ADD COLUMN sensitivity bigint NOT NULL DEFAULT 0;
CREATE INDEX resource_patient_type ON resource (patient_key, type) WHERE patient_key <> 0;
"#,
    // The verifiable log: leaves, found by the version they record, and the tree in tiles.
    r#"
CREATE TABLE ledger_leaf (
    idx bigint PRIMARY KEY,
    rid bigint NOT NULL,
    type text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    input bytea COMPRESSION lz4 NOT NULL
);
CREATE UNIQUE INDEX ledger_leaf_version ON ledger_leaf (rid, version);
CREATE TABLE ledger_tile (
    level bigint NOT NULL,
    idx bigint NOT NULL,
    hashes bytea COMPRESSION lz4 NOT NULL,
    PRIMARY KEY (level, idx)
);
"#,
    // References keyed by target first: a resident's references from one batch of writes
    // share a leaf (store_sql::tables).
    r#"
DROP INDEX idx_reference_target;
CREATE INDEX idx_reference_target ON idx_reference (target_id, param, target_type, rid) WHERE target_id IS NOT NULL;
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
CREATE INDEX idx_date_wide ON idx_date (param, high, rid) WHERE low < high - 86400000000;
"#,
];

/// An arbitrary constant naming the migration lock among the database's advisory locks.
const MIGRATION_LOCK: i64 = 0x6d65_7269_6469_616e; // "meridian"

/// Brings the database up to the current schema version, one transaction per migration, and
/// answers whether its tables are distributed (Citus). Runs on a connection of its own that
/// the caller then closes, which also frees the session lock should anything here fail
/// half-way.
pub(crate) fn migrate(connection: &mut Connection) -> Result<bool, StoreError> {
    let client = &mut connection.client;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(map_error)?;
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version bigint NOT NULL)")
        .map_err(map_error)?;
    let current: i64 = client
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .map_err(map_error)?
        .get(0);
    if current > MIGRATIONS.len() as i64 {
        return Err(StoreError::Internal(format!(
            "the database has schema version {current}, newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        let mut tx = client.transaction().map_err(map_error)?;
        tx.batch_execute(migration).map_err(map_error)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .map_err(map_error)?;
        tx.commit().map_err(map_error)?;
        tracing::info!(version, "applied PostgreSQL schema migration");
    }
    // On a Citus coordinator the tables are then distributed, once (decision 0025).
    let distributed = crate::distribution::distribute_on_citus(client)?;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .map_err(map_error)?;
    Ok(distributed)
}

/// How many row keys one `nextval('resource_rid')` hands out.
pub(crate) fn row_key_block(connection: &mut Connection) -> Result<i64, StoreError> {
    let row = connection
        .client
        .query_one(
            "SELECT increment_by FROM pg_sequences WHERE schemaname = current_schema() AND sequencename = 'resource_rid'",
            &[],
        )
        .map_err(map_error)?;
    Ok(row.get(0))
}
