//! The store on a Citus cluster (decision 0025): on a database where the `citus` extension is
//! installed, the schema's patient-data tables are distributed on the patient-compartment key,
//! all in one co-location group, so a resident's resource rows, versions and index rows live
//! on one shard; the rest (the change log, checkpoints, jobs, the ledger) stay on the
//! coordinator.
//!
//! What distribution changes, besides where rows live:
//! - every unique index includes the key (Citus refuses others), so the uniqueness of a
//!   resource's `(type, id)` across shards moves to `resource_locator`, distributed on `id`;
//!   a create inserts its locator row in the same transaction, and a duplicate fails there;
//! - rows of one shard can be locked only by a query of that shard, so writers serialise on a
//!   resource by a transaction-scoped advisory lock on the coordinator (every writer comes
//!   through it) instead of `FOR UPDATE`;
//! - the change log's rows are written by the flush, not by a trigger (Citus keeps no
//!   triggers with transition tables on distributed tables);
//! - the flush sends each resident's changes as one statement Citus routes to that resident's
//!   shard, and the new rows by INSERT (a few) or COPY (many); a read by id, in or out of a
//!   write, goes through the locator to the resident's shard;
//! - a join between two distributed tables must carry the key (`v.patient_key =
//!   r.patient_key`) to run shard by shard; the joins that cannot (a version of another
//!   compartment than its resource's current one) are repartitioned by Citus.
//!
//! A resource whose key changes (its subject is now another resident: a Person whose last
//! link to a Patient went, an Observation filed under the wrong resident) moves: its resource
//! row and every version are copied to the new resident's shard and deleted from the old one
//! with its index rows, and its locator row follows, in the writing transaction (two-phase
//! commit when the shards are on two nodes).

use std::io::{Read, Write};

use postgres::Client;
use store::StoreError;
use store_sql::tables::INDEX_TABLES;

use crate::flush::{RESOURCE_COLUMNS, VERSION_COLUMNS, names};
use crate::map_error;

/// Whether the database has the Citus extension, so that the store distributes its tables.
fn is_citus(client: &mut Client) -> Result<bool, StoreError> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')",
            &[],
        )
        .map_err(map_error)?;
    Ok(row.get(0))
}

/// Whether Citus already distributes the store's tables.
fn is_distributed(client: &mut Client) -> Result<bool, StoreError> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'resource'::regclass)",
            &[],
        )
        .map_err(map_error)?;
    Ok(row.get(0))
}

/// What a change carries on a distributed store besides its version's sequence number (the
/// version's row key, type, id, version, method and time), written by the flush: the log's
/// reader then reads the coordinator's `change` alone, where a read of the versions by sequence
/// number asked every shard (a quarter of the coordinator's time under a CRUD load). Added to a
/// store distributed before them too; their older changes have none, and are read as before.
const CHANGE_COLUMNS: &str = "ALTER TABLE change ADD COLUMN IF NOT EXISTS rid bigint, \
     ADD COLUMN IF NOT EXISTS type text COLLATE \"C\", ADD COLUMN IF NOT EXISTS id text COLLATE \"C\", \
     ADD COLUMN IF NOT EXISTS version bigint, ADD COLUMN IF NOT EXISTS method smallint, \
     ADD COLUMN IF NOT EXISTS last_updated bigint";

/// The tables of patient data, distributed on `patient_key` with `resource`.
const DISTRIBUTED: &[&str] = &[
    "version",
    "idx_token",
    "idx_string",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_reference",
    "idx_uri",
    "idx_composite",
];

/// On a database with Citus, distributes the store's tables, once (the caller holds the
/// migration lock; rows already in the tables are moved to their shards by Citus). Answers
/// whether the tables are distributed.
pub(crate) fn distribute_on_citus(client: &mut Client) -> Result<bool, StoreError> {
    if !is_citus(client)? {
        return Ok(false);
    }
    if is_distributed(client)? {
        client.batch_execute(CHANGE_COLUMNS).map_err(map_error)?;
        return Ok(true);
    }
    let mut tx = client.transaction().map_err(map_error)?;
    tx.batch_execute(
        r#"
ALTER TABLE resource DROP CONSTRAINT resource_pkey;
CREATE UNIQUE INDEX resource_rid_key ON resource (rid, patient_key);
DROP INDEX resource_type_id;
CREATE INDEX resource_type_id ON resource (type, id);
ALTER TABLE version DROP CONSTRAINT version_pkey;
CREATE UNIQUE INDEX version_seq_key ON version (seq, patient_key);
DROP INDEX version_rid_version;
CREATE UNIQUE INDEX version_rid_version ON version (rid, version, patient_key);
DROP TRIGGER version_change ON version;
CREATE TABLE resource_locator (
    id text COLLATE "C" NOT NULL,
    type text COLLATE "C" NOT NULL,
    patient_key bigint NOT NULL
);
CREATE UNIQUE INDEX resource_locator_id_type ON resource_locator (id, type);
INSERT INTO resource_locator (id, type, patient_key) SELECT id, type, patient_key FROM resource;
SELECT create_distributed_table('resource', 'patient_key');
SELECT create_distributed_table('resource_locator', 'id', colocate_with => 'none');
"#,
    )
    .map_err(map_error)?;
    tx.batch_execute(CHANGE_COLUMNS).map_err(map_error)?;
    for table in DISTRIBUTED {
        tx.execute(
            "SELECT create_distributed_table($1::text::regclass, 'patient_key', colocate_with => 'resource')",
            &[table],
        )
        .map_err(map_error)?;
    }
    tx.commit().map_err(map_error)?;
    tracing::info!("distributed the store's tables on the patient-compartment key (Citus)");
    Ok(true)
}

/// The session settings of a connection to a distributed store: joins that cannot run shard by
/// shard (a version read with a resource of another compartment) are repartitioned rather than
/// refused.
pub(crate) const SESSION: &str = "SET citus.enable_repartition_joins = on";

/// Moves resource `rid` from resident `from`'s shard to resident `to`'s: its resource row and
/// all its versions are copied over (binary COPY out and in, the key replaced; sequence
/// numbers kept, so the change log still names them) and deleted from the old shard with
/// their index rows (the writer inserts the new ones), and the locator names the new key.
/// Runs in the caller's transaction.
pub(crate) fn move_resource(
    client: &mut Client,
    rid: i64,
    from: i64,
    to: i64,
) -> Result<(), StoreError> {
    let row = client
        .query_one(
            "SELECT id, type FROM resource WHERE patient_key = $1 AND rid = $2",
            &[&from, &rid],
        )
        .map_err(map_error)?;
    let (id, resource_type): (String, String) = (row.get(0), row.get(1));
    // Every column of the rows a move copies, `patient_key` among them: the flush's, and the
    // version's sequence number and supersession, which the flush leaves to the database.
    let resource_row = names(RESOURCE_COLUMNS);
    let version_row = format!("seq, {}, superseded", names(VERSION_COLUMNS));
    for (table, columns) in [("resource", resource_row), ("version", version_row)] {
        let selected = columns.replace("patient_key", &format!("{to}::bigint AS patient_key"));
        let mut rows = Vec::new();
        client
            .copy_out(&format!(
                "COPY (SELECT {selected} FROM {table} WHERE patient_key = {from} AND rid = {rid}) \
                 TO STDOUT (FORMAT binary)"
            ))
            .map_err(map_error)?
            .read_to_end(&mut rows)
            .map_err(|e| StoreError::Internal(format!("moving {table} rows: {e}")))?;
        let mut sink = client
            .copy_in(&format!(
                "COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
            ))
            .map_err(map_error)?;
        sink.write_all(&rows)
            .map_err(|e| StoreError::Internal(format!("moving {table} rows: {e}")))?;
        sink.finish().map_err(map_error)?;
    }
    // One statement, routed to the old shard: the resource's rows there, and its index rows.
    let deletes: Vec<String> = ["resource", "version"]
        .iter()
        .copied()
        .chain(INDEX_TABLES.iter().map(|table| table.name))
        .map(|table| {
            format!("d_{table} AS (DELETE FROM {table} WHERE patient_key = $1 AND rid = $2)")
        })
        .collect();
    client
        .execute(
            &format!("WITH {} SELECT 1", deletes.join(", ")),
            &[&from, &rid],
        )
        .map_err(map_error)?;
    client
        .execute(
            "UPDATE resource_locator SET patient_key = $3 WHERE id = $1 AND type = $2",
            &[&id, &resource_type, &to],
        )
        .map_err(map_error)?;
    tracing::debug!(
        rid,
        from,
        to,
        "moved a resource to another resident's shard"
    );
    Ok(())
}
