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
//!   shard, and the new rows by COPY; a read by id, in or out of a write, goes through the
//!   locator to the resident's shard;
//! - a join between two distributed tables must carry the key (`v.patient_key =
//!   r.patient_key`) to run shard by shard; the joins that cannot (a version of another
//!   compartment than its resource's current one) are repartitioned by Citus.
//!
//! Not yet: a resource whose key changes (its subject moves to another resident) is refused
//! with a conflict rather than moved between shards.

use postgres::Client;
use store::StoreError;

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
