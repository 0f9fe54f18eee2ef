//! Buffered writes, sent in bulk. Every resource row, version row and index row a transaction
//! wrote since its last read is kept as column arrays, then sent one of two ways:
//! - a few resources: one statement, the arrays unpacked by `unnest` in data-modifying CTEs,
//!   so a single-resource write costs one round trip for all its rows;
//! - many resources: the same statement for what changes existing rows (resource updates,
//!   superseded versions, old index rows), then `COPY ... FROM STDIN BINARY` per table for the
//!   new rows. COPY costs two round trips per table but inserts far faster: measured in
//!   `docs/decisions/0003-postgres-driver-and-pool.md`.
//!
//! All CTEs of one statement run against the same snapshot, so deleting a resource's old index
//! rows and inserting its new ones in the same statement is safe: the delete cannot see the
//! inserted rows. (This is also why the index tables have no unique keys; see `schema.rs`.)

use std::collections::HashSet;
use std::sync::OnceLock;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use search::IndexEntries;
use store::{StoreError, VersionWrite};

use crate::map_error;
use crate::pool::Connection;

type Param<'a> = &'a (dyn ToSql + Sync);

/// From how many buffered resources the new rows go by COPY rather than in the one statement.
/// Below it the statement's single round trip wins; above it COPY's faster inserts do.
const COPY_FROM_RESOURCES: usize = 32;

/// The columns of each table the flush writes, with their array types, in parameter order.
const RESOURCE_COLUMNS: &[(&str, &str)] = &[
    ("rid", "bigint"),
    ("type", "text"),
    ("id", "text"),
    ("version", "bigint"),
    ("last_updated", "bigint"),
    ("method", "smallint"),
    ("patient_key", "bigint"),
    ("content_hash", "bigint"),
];
const UPDATE_COLUMNS: &[(&str, &str)] = &[
    ("rid", "bigint"),
    ("previous", "bigint"),
    ("version", "bigint"),
    ("last_updated", "bigint"),
    ("method", "smallint"),
    ("patient_key", "bigint"),
    ("content_hash", "bigint"),
];
const VERSION_COLUMNS: &[(&str, &str)] = &[
    ("rid", "bigint"),
    ("version", "bigint"),
    ("type", "text"),
    ("last_updated", "bigint"),
    ("method", "smallint"),
    ("patient_key", "bigint"),
    ("content_hash", "bigint"),
    ("content", "bytea"),
];
const INDEX_COLUMNS: [(&str, &[(&str, &str)]); 8] = [
    (
        "idx_token",
        &[
            ("rid", "bigint"),
            ("param", "bigint"),
            ("h_code", "bigint"),
            ("h_system_code", "bigint"),
            ("h_system", "bigint"),
            ("code", "text"),
            ("patient_key", "bigint"),
        ],
    ),
    (
        "idx_string",
        &[
            ("rid", "bigint"),
            ("param", "bigint"),
            ("normalized", "text"),
            ("exact", "text"),
            ("patient_key", "bigint"),
        ],
    ),
    (
        "idx_date",
        &[
            ("rid", "bigint"),
            ("param", "bigint"),
            ("low", "bigint"),
            ("high", "bigint"),
            ("patient_key", "bigint"),
        ],
    ),
    (
        "idx_number",
        &[
            ("rid", "bigint"),
            ("param", "bigint"),
            ("value", "float8"),
            ("low", "float8"),
            ("high", "float8"),
            ("patient_key", "bigint"),
        ],
    ),
    (
        "idx_quantity",
        &[
            ("rid", "bigint"),
            ("param", "bigint"),
            ("system", "text"),
            ("code", "text"),
            ("value", "float8"),
            ("low", "float8"),
            ("high", "float8"),
            ("canonical_code", "text"),
            ("canonical_value", "float8"),
            ("canonical_low", "float8"),
            ("canonical_high", "float8"),
            ("patient_key", "bigint"),
            ("seq", "bigint"),
        ],
    ),
    (
        "idx_reference",
        &[
            ("rid", "bigint"),
            ("param", "bigint"),
            ("target_type", "text"),
            ("target_id", "text"),
            ("url", "text"),
            ("version", "text"),
            ("patient_key", "bigint"),
            ("seq", "bigint"),
        ],
    ),
    (
        "idx_uri",
        &[
            ("rid", "bigint"),
            ("param", "bigint"),
            ("uri", "text"),
            ("patient_key", "bigint"),
        ],
    ),
    (
        "idx_composite",
        &[
            ("rid", "bigint"),
            ("param", "bigint"),
            ("first_h_code", "bigint"),
            ("first_h_system_code", "bigint"),
            ("second_h_code", "bigint"),
            ("second_h_system_code", "bigint"),
            ("second_value", "float8"),
            ("second_low", "float8"),
            ("second_high", "float8"),
            ("second_text", "text"),
            ("patient_key", "bigint"),
            ("seq", "bigint"),
        ],
    ),
];

/// `unnest($n::type[], ...)` for `columns`, numbering from `*next`.
fn unnest(columns: &[(&str, &str)], next: &mut usize) -> String {
    let arrays: Vec<String> = columns
        .iter()
        .map(|(_, sql_type)| {
            let placeholder = format!("${next}::{sql_type}[]");
            *next += 1;
            placeholder
        })
        .collect();
    format!("unnest({})", arrays.join(", "))
}

fn names(columns: &[(&str, &str)]) -> String {
    columns
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The flush statement; it answers how many resource rows it inserted and updated.
fn flush_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let mut next = 1;
        let mut ctes = Vec::new();
        ctes.push(format!(
            "created AS (INSERT INTO resource ({}) SELECT * FROM {} RETURNING 1)",
            names(RESOURCE_COLUMNS),
            unnest(RESOURCE_COLUMNS, &mut next)
        ));
        let update_start = next;
        ctes.push(format!(
            "updated AS (UPDATE resource r SET version = u.version, last_updated = u.last_updated, \
             method = u.method, patient_key = u.patient_key, content_hash = u.content_hash \
             FROM {} AS u({}) WHERE r.rid = u.rid AND r.version = u.previous RETURNING 1)",
            unnest(UPDATE_COLUMNS, &mut next),
            names(UPDATE_COLUMNS)
        ));
        // The version an update replaces stops being current when the update is written.
        ctes.push(format!(
            "superseded AS (UPDATE version v SET superseded = u.at \
             FROM unnest(${}::bigint[], ${}::bigint[], ${}::bigint[]) AS u(rid, previous, at) \
             WHERE v.rid = u.rid AND v.version = u.previous)",
            update_start,
            update_start + 1,
            update_start + 3
        ));
        ctes.push(format!(
            "versions AS (INSERT INTO version ({}) SELECT * FROM {})",
            names(VERSION_COLUMNS),
            unnest(VERSION_COLUMNS, &mut next)
        ));
        let cleared = next;
        next += 1;
        // Reindexing keeps the version but may move the resource to another compartment.
        let (reindexed, reindexed_patient_key) = (next, next + 1);
        next += 2;
        ctes.push(format!(
            "reindexed AS (UPDATE resource r SET patient_key = u.patient_key \
             FROM unnest(${reindexed}::bigint[], ${reindexed_patient_key}::bigint[]) AS u(rid, patient_key) \
             WHERE r.rid = u.rid)"
        ));
        ctes.push(format!(
            "reindexed_version AS (UPDATE version v SET patient_key = u.patient_key \
             FROM unnest(${reindexed}::bigint[], ${reindexed_patient_key}::bigint[]) AS u(rid, patient_key) \
             JOIN resource r ON r.rid = u.rid WHERE v.rid = u.rid AND v.version = r.version)"
        ));
        for (table, columns) in INDEX_COLUMNS {
            ctes.push(format!(
                "cleared_{table} AS (DELETE FROM {table} WHERE rid = ANY(${cleared}::bigint[]))"
            ));
            ctes.push(format!(
                "rows_{table} AS (INSERT INTO {table} ({}) SELECT * FROM {})",
                names(columns),
                unnest(columns, &mut next)
            ));
        }
        format!(
            "WITH {} SELECT (SELECT count(*) FROM created), (SELECT count(*) FROM updated)",
            ctes.join(",\n")
        )
    })
}

#[derive(Default)]
struct ResourceRows {
    rid: Vec<i64>,
    resource_type: Vec<String>,
    id: Vec<String>,
    version: Vec<i64>,
    last_updated: Vec<i64>,
    method: Vec<i16>,
    patient_key: Vec<i64>,
    content_hash: Vec<i64>,
}

#[derive(Default)]
struct UpdateRows {
    rid: Vec<i64>,
    previous: Vec<i64>,
    version: Vec<i64>,
    last_updated: Vec<i64>,
    method: Vec<i16>,
    patient_key: Vec<i64>,
    content_hash: Vec<i64>,
}

#[derive(Default)]
struct VersionRows {
    rid: Vec<i64>,
    version: Vec<i64>,
    resource_type: Vec<String>,
    last_updated: Vec<i64>,
    method: Vec<i16>,
    patient_key: Vec<i64>,
    content_hash: Vec<i64>,
    content: Vec<Option<Vec<u8>>>,
}

#[derive(Default)]
struct TokenRows {
    rid: Vec<i64>,
    param: Vec<i64>,
    h_code: Vec<i64>,
    h_system_code: Vec<i64>,
    h_system: Vec<Option<i64>>,
    code: Vec<String>,
    patient_key: Vec<i64>,
}

#[derive(Default)]
struct StringRows {
    rid: Vec<i64>,
    param: Vec<i64>,
    normalized: Vec<String>,
    exact: Vec<String>,
    patient_key: Vec<i64>,
}

#[derive(Default)]
struct DateRows {
    rid: Vec<i64>,
    param: Vec<i64>,
    low: Vec<i64>,
    high: Vec<i64>,
    patient_key: Vec<i64>,
}

#[derive(Default)]
struct NumberRows {
    rid: Vec<i64>,
    param: Vec<i64>,
    value: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
    patient_key: Vec<i64>,
}

#[derive(Default)]
struct QuantityRows {
    rid: Vec<i64>,
    param: Vec<i64>,
    system: Vec<Option<String>>,
    code: Vec<Option<String>>,
    value: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
    canonical_code: Vec<Option<String>>,
    canonical_value: Vec<Option<f64>>,
    canonical_low: Vec<Option<f64>>,
    canonical_high: Vec<Option<f64>>,
    patient_key: Vec<i64>,
    seq: Vec<i64>,
}

#[derive(Default)]
struct ReferenceRows {
    rid: Vec<i64>,
    param: Vec<i64>,
    target_type: Vec<Option<String>>,
    target_id: Vec<Option<String>>,
    url: Vec<Option<String>>,
    version: Vec<Option<String>>,
    patient_key: Vec<i64>,
    seq: Vec<i64>,
}

#[derive(Default)]
struct UriRows {
    rid: Vec<i64>,
    param: Vec<i64>,
    uri: Vec<String>,
    patient_key: Vec<i64>,
}

#[derive(Default)]
struct CompositeRows {
    rid: Vec<i64>,
    param: Vec<i64>,
    first_h_code: Vec<i64>,
    first_h_system_code: Vec<i64>,
    second_h_code: Vec<Option<i64>>,
    second_h_system_code: Vec<Option<i64>>,
    second_value: Vec<Option<f64>>,
    second_low: Vec<Option<f64>>,
    second_high: Vec<Option<f64>>,
    second_text: Vec<Option<String>>,
    patient_key: Vec<i64>,
    seq: Vec<i64>,
}

/// The writes of a transaction not yet sent, as column arrays.
#[derive(Default)]
pub(crate) struct Pending {
    created: ResourceRows,
    updated: UpdateRows,
    versions: VersionRows,
    /// Resources whose index rows the flush deletes before inserting the new ones.
    cleared: Vec<i64>,
    /// Resources reindexed without a new version, and their new patient-compartment keys.
    reindexed: Vec<i64>,
    reindexed_patient_key: Vec<i64>,
    tokens: TokenRows,
    strings: StringRows,
    dates: DateRows,
    numbers: NumberRows,
    quantities: QuantityRows,
    references: ReferenceRows,
    uris: UriRows,
    composites: CompositeRows,
}

fn owned(text: Option<&str>) -> Option<String> {
    text.map(str::to_owned)
}

impl Pending {
    pub(crate) fn is_empty(&self) -> bool {
        self.versions.rid.is_empty() && self.reindexed.is_empty()
    }

    /// Buffers new index rows for the current version of the resource with row key `row`.
    pub(crate) fn push_reindex(&mut self, row: i64, index: &IndexEntries) {
        self.reindexed.push(row);
        self.reindexed_patient_key.push(index.patient_key.0);
        self.cleared.push(row);
        self.push_index(row, index);
    }

    /// Buffers `write` of the resource with row key `row`.
    pub(crate) fn push(&mut self, row: i64, write: &VersionWrite<'_>) -> Result<(), StoreError> {
        let stored = write.content.map(store::content::encode).transpose()?;
        let patient_key = write.index.patient_key.0;
        let method = write.method.code() as i16;
        match write.previous {
            None => {
                let r = &mut self.created;
                r.rid.push(row);
                r.resource_type.push(write.resource_type.to_owned());
                r.id.push(write.id.to_owned());
                r.version.push(write.version);
                r.last_updated.push(write.last_updated);
                r.method.push(method);
                r.patient_key.push(patient_key);
                r.content_hash.push(write.content_hash);
            }
            Some(previous) => {
                let u = &mut self.updated;
                u.rid.push(row);
                u.previous.push(previous.version);
                u.version.push(write.version);
                u.last_updated.push(write.last_updated);
                u.method.push(method);
                u.patient_key.push(patient_key);
                u.content_hash.push(write.content_hash);
                if !previous.is_deleted() {
                    self.cleared.push(row);
                }
            }
        }
        let v = &mut self.versions;
        v.rid.push(row);
        v.version.push(write.version);
        v.resource_type.push(write.resource_type.to_owned());
        v.last_updated.push(write.last_updated);
        v.method.push(method);
        v.patient_key.push(patient_key);
        v.content_hash.push(write.content_hash);
        v.content.push(stored);
        self.push_index(row, write.index);
        Ok(())
    }

    /// Buffers the index rows of one resource, without the duplicates that the SQLite store's
    /// primary keys would drop, so both stores hold the same rows.
    fn push_index(&mut self, row: i64, index: &IndexEntries) {
        let patient_key = index.patient_key.0;

        let mut seen_tokens = HashSet::new();
        for token in &index.tokens {
            let (code, system_code, system) = token.hashes();
            if !seen_tokens.insert(system_code) {
                continue;
            }
            let t = &mut self.tokens;
            t.rid.push(row);
            t.param.push(token.param.0);
            t.h_code.push(code);
            t.h_system_code.push(system_code);
            t.h_system.push(system);
            t.code.push(token.code.to_string());
            t.patient_key.push(patient_key);
        }

        let mut seen_strings = HashSet::new();
        for string in &index.strings {
            if !seen_strings.insert((string.param, &*string.exact)) {
                continue;
            }
            let s = &mut self.strings;
            s.rid.push(row);
            s.param.push(string.param.0);
            s.normalized.push(string.normalized.to_string());
            s.exact.push(string.exact.to_string());
            s.patient_key.push(patient_key);
        }

        let mut seen_dates = HashSet::new();
        for date in &index.dates {
            if !seen_dates.insert((date.param, date.low, date.high)) {
                continue;
            }
            let d = &mut self.dates;
            d.rid.push(row);
            d.param.push(date.param.0);
            d.low.push(date.low);
            d.high.push(date.high);
            d.patient_key.push(patient_key);
        }

        let mut seen_numbers = HashSet::new();
        for number in &index.numbers {
            // Compare as SQLite's key does: by value, so 0.0 and -0.0 are one row.
            let key = (
                number.param,
                (number.low + 0.0).to_bits(),
                (number.high + 0.0).to_bits(),
            );
            if !seen_numbers.insert(key) {
                continue;
            }
            let n = &mut self.numbers;
            n.rid.push(row);
            n.param.push(number.param.0);
            n.value.push(number.value);
            n.low.push(number.low);
            n.high.push(number.high);
            n.patient_key.push(patient_key);
        }

        for (seq, quantity) in index.quantities.iter().enumerate() {
            let canonical = quantity.canonical_columns();
            let q = &mut self.quantities;
            q.rid.push(row);
            q.param.push(quantity.param.0);
            q.system.push(owned(quantity.system.as_deref()));
            q.code.push(owned(quantity.code.as_deref()));
            q.value.push(quantity.value);
            q.low.push(quantity.low);
            q.high.push(quantity.high);
            q.canonical_code.push(canonical.map(|c| c.code.to_owned()));
            q.canonical_value.push(canonical.map(|c| c.value));
            q.canonical_low.push(canonical.map(|c| c.low));
            q.canonical_high.push(canonical.map(|c| c.high));
            q.patient_key.push(patient_key);
            q.seq.push(seq as i64);
        }

        for (seq, reference) in index.references.iter().enumerate() {
            let r = &mut self.references;
            r.rid.push(row);
            r.param.push(reference.param.0);
            r.target_type.push(owned(reference.target_type.as_deref()));
            r.target_id.push(owned(reference.target_id.as_deref()));
            r.url.push(owned(reference.url.as_deref()));
            r.version.push(owned(reference.version.as_deref()));
            r.patient_key.push(patient_key);
            r.seq.push(seq as i64);
        }

        let mut seen_uris = HashSet::new();
        for uri in &index.uris {
            if !seen_uris.insert((uri.param, &*uri.uri)) {
                continue;
            }
            let u = &mut self.uris;
            u.rid.push(row);
            u.param.push(uri.param.0);
            u.uri.push(uri.uri.to_string());
            u.patient_key.push(patient_key);
        }

        for (seq, composite) in index.composites.iter().enumerate() {
            let (first_code, first_system_code, _) = composite.first.hashes();
            let second = composite.second.columns();
            let c = &mut self.composites;
            c.rid.push(row);
            c.param.push(composite.param.0);
            c.first_h_code.push(first_code);
            c.first_h_system_code.push(first_system_code);
            c.second_h_code.push(second.h_code);
            c.second_h_system_code.push(second.h_system_code);
            c.second_value.push(second.value);
            c.second_low.push(second.low);
            c.second_high.push(second.high);
            c.second_text.push(second.text.map(str::to_owned));
            c.patient_key.push(patient_key);
            c.seq.push(seq as i64);
        }
    }

    /// The statement's parameters, in the order `flush_sql` numbers them.
    fn params(&self) -> Vec<Param<'_>> {
        let c = &self.created;
        let u = &self.updated;
        let v = &self.versions;
        let t = &self.tokens;
        let s = &self.strings;
        let d = &self.dates;
        let n = &self.numbers;
        let q = &self.quantities;
        let r = &self.references;
        let ur = &self.uris;
        let co = &self.composites;
        vec![
            &c.rid,
            &c.resource_type,
            &c.id,
            &c.version,
            &c.last_updated,
            &c.method,
            &c.patient_key,
            &c.content_hash,
            &u.rid,
            &u.previous,
            &u.version,
            &u.last_updated,
            &u.method,
            &u.patient_key,
            &u.content_hash,
            &v.rid,
            &v.version,
            &v.resource_type,
            &v.last_updated,
            &v.method,
            &v.patient_key,
            &v.content_hash,
            &v.content,
            &self.cleared,
            &self.reindexed,
            &self.reindexed_patient_key,
            &t.rid,
            &t.param,
            &t.h_code,
            &t.h_system_code,
            &t.h_system,
            &t.code,
            &t.patient_key,
            &s.rid,
            &s.param,
            &s.normalized,
            &s.exact,
            &s.patient_key,
            &d.rid,
            &d.param,
            &d.low,
            &d.high,
            &d.patient_key,
            &n.rid,
            &n.param,
            &n.value,
            &n.low,
            &n.high,
            &n.patient_key,
            &q.rid,
            &q.param,
            &q.system,
            &q.code,
            &q.value,
            &q.low,
            &q.high,
            &q.canonical_code,
            &q.canonical_value,
            &q.canonical_low,
            &q.canonical_high,
            &q.patient_key,
            &q.seq,
            &r.rid,
            &r.param,
            &r.target_type,
            &r.target_id,
            &r.url,
            &r.version,
            &r.patient_key,
            &r.seq,
            &ur.rid,
            &ur.param,
            &ur.uri,
            &ur.patient_key,
            &co.rid,
            &co.param,
            &co.first_h_code,
            &co.first_h_system_code,
            &co.second_h_code,
            &co.second_h_system_code,
            &co.second_value,
            &co.second_low,
            &co.second_high,
            &co.second_text,
            &co.patient_key,
            &co.seq,
        ]
    }

    /// Sends the buffered writes: in one statement, or for many resources the changes in one
    /// statement and the new rows by COPY. A resource row that was not where its writer
    /// expected it (another writer moved it on) is a conflict.
    pub(crate) fn send(mut self, connection: &mut Connection) -> Result<(), StoreError> {
        if self.versions.rid.len() + self.reindexed.len() < COPY_FROM_RESOURCES {
            return self.send_statement(connection);
        }
        let inserts = self.take_inserts();
        if !(self.updated.rid.is_empty() && self.reindexed.is_empty()) {
            self.send_statement(connection)?;
        }
        inserts.copy(connection)
    }

    /// Moves the new rows (created resources, versions, index rows) out, leaving the changes
    /// to existing rows.
    fn take_inserts(&mut self) -> Pending {
        Pending {
            created: std::mem::take(&mut self.created),
            versions: std::mem::take(&mut self.versions),
            tokens: std::mem::take(&mut self.tokens),
            strings: std::mem::take(&mut self.strings),
            dates: std::mem::take(&mut self.dates),
            numbers: std::mem::take(&mut self.numbers),
            quantities: std::mem::take(&mut self.quantities),
            references: std::mem::take(&mut self.references),
            uris: std::mem::take(&mut self.uris),
            composites: std::mem::take(&mut self.composites),
            ..Pending::default()
        }
    }

    fn send_statement(&self, connection: &mut Connection) -> Result<(), StoreError> {
        let statement = connection.prepare_cached(flush_sql())?;
        let params = self.params();
        debug_assert_eq!(params.len(), statement.params().len());
        let row = connection
            .client
            .query_one(&statement, &params)
            .map_err(map_error)?;
        let created: i64 = row.get(0);
        let updated: i64 = row.get(1);
        if created as usize != self.created.rid.len() || updated as usize != self.updated.rid.len()
        {
            return Err(StoreError::Conflict(format!(
                "{} of {} resources changed since they were read",
                self.updated.rid.len().saturating_sub(updated as usize),
                self.updated.rid.len()
            )));
        }
        Ok(())
    }

    /// Inserts the new rows with one COPY per table that has any: resources, then versions
    /// (whose sequence numbers follow the order written), then index rows.
    fn copy(&self, connection: &mut Connection) -> Result<(), StoreError> {
        let client = &mut connection.client;
        let c = &self.created;
        copy_rows(client, "resource", RESOURCE_COLUMNS, c.rid.len(), |i| {
            vec![
                &c.rid[i],
                &c.resource_type[i],
                &c.id[i],
                &c.version[i],
                &c.last_updated[i],
                &c.method[i],
                &c.patient_key[i],
                &c.content_hash[i],
            ]
        })?;
        let v = &self.versions;
        copy_rows(client, "version", VERSION_COLUMNS, v.rid.len(), |i| {
            vec![
                &v.rid[i],
                &v.version[i],
                &v.resource_type[i],
                &v.last_updated[i],
                &v.method[i],
                &v.patient_key[i],
                &v.content_hash[i],
                &v.content[i],
            ]
        })?;
        let [
            token,
            string,
            date,
            number,
            quantity,
            reference,
            uri,
            composite,
        ] = INDEX_COLUMNS;
        let t = &self.tokens;
        copy_rows(client, token.0, token.1, t.rid.len(), |i| {
            vec![
                &t.rid[i],
                &t.param[i],
                &t.h_code[i],
                &t.h_system_code[i],
                &t.h_system[i],
                &t.code[i],
                &t.patient_key[i],
            ]
        })?;
        let s = &self.strings;
        copy_rows(client, string.0, string.1, s.rid.len(), |i| {
            vec![
                &s.rid[i],
                &s.param[i],
                &s.normalized[i],
                &s.exact[i],
                &s.patient_key[i],
            ]
        })?;
        let d = &self.dates;
        copy_rows(client, date.0, date.1, d.rid.len(), |i| {
            vec![
                &d.rid[i],
                &d.param[i],
                &d.low[i],
                &d.high[i],
                &d.patient_key[i],
            ]
        })?;
        let n = &self.numbers;
        copy_rows(client, number.0, number.1, n.rid.len(), |i| {
            vec![
                &n.rid[i],
                &n.param[i],
                &n.value[i],
                &n.low[i],
                &n.high[i],
                &n.patient_key[i],
            ]
        })?;
        let q = &self.quantities;
        copy_rows(client, quantity.0, quantity.1, q.rid.len(), |i| {
            vec![
                &q.rid[i],
                &q.param[i],
                &q.system[i],
                &q.code[i],
                &q.value[i],
                &q.low[i],
                &q.high[i],
                &q.canonical_code[i],
                &q.canonical_value[i],
                &q.canonical_low[i],
                &q.canonical_high[i],
                &q.patient_key[i],
                &q.seq[i],
            ]
        })?;
        let r = &self.references;
        copy_rows(client, reference.0, reference.1, r.rid.len(), |i| {
            vec![
                &r.rid[i],
                &r.param[i],
                &r.target_type[i],
                &r.target_id[i],
                &r.url[i],
                &r.version[i],
                &r.patient_key[i],
                &r.seq[i],
            ]
        })?;
        let u = &self.uris;
        copy_rows(client, uri.0, uri.1, u.rid.len(), |i| {
            vec![&u.rid[i], &u.param[i], &u.uri[i], &u.patient_key[i]]
        })?;
        let co = &self.composites;
        copy_rows(client, composite.0, composite.1, co.rid.len(), |i| {
            vec![
                &co.rid[i],
                &co.param[i],
                &co.first_h_code[i],
                &co.first_h_system_code[i],
                &co.second_h_code[i],
                &co.second_h_system_code[i],
                &co.second_value[i],
                &co.second_low[i],
                &co.second_high[i],
                &co.second_text[i],
                &co.patient_key[i],
                &co.seq[i],
            ]
        })
    }
}

/// `COPY table (columns) FROM STDIN BINARY` of `rows` rows, each given by `row`.
fn copy_rows<'a>(
    client: &mut postgres::Client,
    table: &str,
    columns: &[(&str, &str)],
    rows: usize,
    row: impl Fn(usize) -> Vec<Param<'a>>,
) -> Result<(), StoreError> {
    if rows == 0 {
        return Ok(());
    }
    let types: Vec<Type> = columns
        .iter()
        .map(|(_, sql_type)| match *sql_type {
            "bigint" => Type::INT8,
            "smallint" => Type::INT2,
            "float8" => Type::FLOAT8,
            "bytea" => Type::BYTEA,
            _ => Type::TEXT,
        })
        .collect();
    let sink = client
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN BINARY",
            names(columns)
        ))
        .map_err(map_error)?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    for i in 0..rows {
        writer.write(&row(i)).map_err(map_error)?;
    }
    writer.finish().map_err(map_error)?;
    Ok(())
}
