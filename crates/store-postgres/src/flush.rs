//! Buffered writes, sent in bulk. Every resource row, version row and index row a transaction
//! wrote since its last read is kept as column arrays, then sent one of three ways:
//! - a few resources: one statement, the arrays unpacked by `unnest` in data-modifying CTEs,
//!   so a single-resource write costs one round trip for all its rows;
//! - many resources: the same statement for what changes existing rows (resource updates,
//!   superseded versions, old index rows), then `COPY ... FROM STDIN BINARY` per table for the
//!   new rows. COPY costs two round trips per table but inserts far faster: measured in
//!   `docs/decisions/0003-postgres-driver-and-pool.md`;
//! - on a distributed store (`distribution`): the changes to existing rows in one statement
//!   per resident, which names the resident's key so that Citus routes it whole to one shard,
//!   then the new rows by one INSERT per table for a few resources (which Citus routes in half
//!   a COPY's time), by COPY for many; Citus routes both row by row. (The one statement of many
//!   CTEs reaches every shard there, and Citus runs it step by step through intermediate
//!   results.)
//!
//! All CTEs of one statement run against the same snapshot, so deleting a resource's old index
//! rows and inserting its new ones in the same statement is safe: the delete cannot see the
//! inserted rows. (This is also why the index tables have no unique keys; see `schema.rs`.)
//!
//! The index rows follow the schema's declaration (`store_sql::tables`): one buffer per
//! declared column, filled from `store_sql::index_rows`, sent as arrays or by COPY in
//! declaration order.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::OnceLock;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use search::IndexEntries;
use store::{StoreError, VersionWrite};
use store_sql::index_rows::{Value, for_each_index_row};
use store_sql::tables::{Column, ColumnType, INDEX_TABLES, Table};

use crate::map_error;
use crate::pool::Connection;

type Param<'a> = &'a (dyn ToSql + Sync);

/// From how many buffered resources the new rows go by COPY rather than in the one statement.
/// Below it the statement's single round trip wins; above it COPY's faster inserts do.
const COPY_FROM_RESOURCES: usize = 32;

/// The columns of each table the flush writes, with their array types, in parameter order.
pub(crate) const RESOURCE_COLUMNS: &[(&str, &str)] = &[
    ("rid", "bigint"),
    ("type", "text"),
    ("id", "text"),
    ("version", "bigint"),
    ("last_updated", "bigint"),
    ("method", "smallint"),
    ("patient_key", "bigint"),
    ("content_hash", "bigint"),
    ("custodian", "text"),
    ("sensitivity", "bigint"),
];
const UPDATE_COLUMNS: &[(&str, &str)] = &[
    ("rid", "bigint"),
    ("previous", "bigint"),
    ("version", "bigint"),
    ("last_updated", "bigint"),
    ("method", "smallint"),
    ("patient_key", "bigint"),
    ("content_hash", "bigint"),
    ("custodian", "text"),
    ("sensitivity", "bigint"),
];
pub(crate) const VERSION_COLUMNS: &[(&str, &str)] = &[
    ("rid", "bigint"),
    ("version", "bigint"),
    ("type", "text"),
    ("last_updated", "bigint"),
    ("method", "smallint"),
    ("patient_key", "bigint"),
    ("content_hash", "bigint"),
    ("custodian", "text"),
    ("sensitivity", "bigint"),
    ("content", "bytea"),
];
/// The locator's columns (`distribution`), copied for created resources on a distributed store.
const LOCATOR_COLUMNS: &[(&str, &str)] =
    &[("id", "text"), ("type", "text"), ("patient_key", "bigint")];
/// A declared table's columns as the flush sends them: each with its array's element type.
fn array_columns(columns: &[Column]) -> Vec<(&'static str, &'static str)> {
    columns
        .iter()
        .map(|column| {
            let element = match column.column_type {
                ColumnType::Integer => "bigint",
                ColumnType::SmallInteger => "smallint",
                ColumnType::Integer32 => "integer",
                ColumnType::Boolean => "boolean",
                ColumnType::Real => "float8",
                ColumnType::Text | ColumnType::UncomparedText => "text",
                ColumnType::Bytes => "bytea",
            };
            (column.name, element)
        })
        .collect()
}

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

pub(crate) fn names(columns: &[(&str, &str)]) -> String {
    columns
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The position (from 1) of `name` among `columns`.
fn position(columns: &[(&str, &str)], name: &str) -> usize {
    1 + columns
        .iter()
        .position(|(column, _)| *column == name)
        .expect("a declared column")
}

/// Which parts of the write statement a flush needs. Each part costs its executor set-up, its
/// relations' locks and its indexes' opening at every execution, whether or not its arrays
/// hold anything, so a flush sends only the parts it has rows for: a created AuditEvent's
/// statement is six parts, not twenty-two. The few shapes that occur (creations, updates,
/// deletions, each with the index tables its resources fill) are each prepared once per
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    created: bool,
    updated: bool,
    versions: bool,
    cleared: bool,
    reindexed: bool,
    /// Bit `i` set: the index table `INDEX_TABLES[i]` gets new rows.
    tables: u32,
}

impl Shape {
    fn has_table(self, index: usize) -> bool {
        self.tables & (1 << index) != 0
    }

    fn is_empty(self) -> bool {
        !(self.created || self.updated || self.versions || self.cleared || self.reindexed)
            && self.tables == 0
    }
}

/// The flush statement of a store on one node for `shape`, rendered once per shape; it
/// answers how many resource rows it inserted and updated.
fn flush_sql(shape: Shape) -> std::sync::Arc<str> {
    static SQL: OnceLock<std::sync::Mutex<std::collections::HashMap<Shape, std::sync::Arc<str>>>> =
        OnceLock::new();
    let mut rendered = SQL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    rendered
        .entry(shape)
        .or_insert_with(|| render_flush_sql(shape).into())
        .clone()
}

/// The part `cte` inserting rows of `columns` into `table` from arrays numbered from `*next`;
/// `counted`, it answers a row for each row inserted.
fn insert_part(
    cte: &str,
    table: &str,
    columns: &[(&str, &str)],
    next: &mut usize,
    counted: bool,
) -> String {
    format!(
        "{cte} AS (INSERT INTO {table} ({}) SELECT * FROM {}{})",
        names(columns),
        unnest(columns, next),
        if counted { " RETURNING 1" } else { "" }
    )
}

fn render_flush_sql(shape: Shape) -> String {
    let mut next = 1;
    let mut ctes = Vec::new();
    if shape.created {
        ctes.push(insert_part(
            "created",
            "resource",
            RESOURCE_COLUMNS,
            &mut next,
            true,
        ));
    }
    if shape.updated {
        let update_start = next;
        let update_at = |name| update_start - 1 + position(UPDATE_COLUMNS, name);
        let updates = unnest(UPDATE_COLUMNS, &mut next);
        ctes.push(format!(
            "updated AS (UPDATE resource r SET version = u.version, last_updated = u.last_updated, \
             method = u.method, patient_key = u.patient_key, content_hash = u.content_hash, \
             custodian = u.custodian, sensitivity = u.sensitivity \
             FROM {updates} AS u({}) WHERE r.rid = u.rid AND r.version = u.previous RETURNING 1)",
            names(UPDATE_COLUMNS)
        ));
        // The version an update replaces stops being current when the update is written.
        ctes.push(format!(
            "superseded AS (UPDATE version v SET superseded = u.at \
             FROM unnest(${}::bigint[], ${}::bigint[], ${}::bigint[]) AS u(rid, previous, at) \
             WHERE v.rid = u.rid AND v.version = u.previous)",
            update_at("rid"),
            update_at("previous"),
            update_at("last_updated")
        ));
    }
    if shape.versions {
        ctes.push(insert_part(
            "versions",
            "version",
            VERSION_COLUMNS,
            &mut next,
            false,
        ));
    }
    if shape.cleared {
        let cleared = next;
        next += 1;
        for table in INDEX_TABLES {
            let name = table.name;
            ctes.push(format!(
                "cleared_{name} AS (DELETE FROM {name} WHERE rid = ANY(${cleared}::bigint[]))"
            ));
        }
    }
    if shape.reindexed {
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
    }
    for (index, table) in INDEX_TABLES.iter().enumerate() {
        if !shape.has_table(index) {
            continue;
        }
        let name = table.name;
        let columns = array_columns(table.columns);
        ctes.push(insert_part(
            &format!("rows_{name}"),
            name,
            &columns,
            &mut next,
            false,
        ));
    }
    let count = |cte: &str, present: bool| {
        if present {
            format!("(SELECT count(*) FROM {cte})")
        } else {
            "0::bigint".to_owned()
        }
    };
    format!(
        "WITH {} SELECT {}, {}",
        ctes.join(",\n"),
        count("created", shape.created),
        count("updated", shape.updated)
    )
}

/// On a distributed store, the statement that changes one resident's existing rows: its
/// resource updates, the versions they supersede and the old index rows of what is rewritten
/// or reindexed. Every part names the resident's key (`$1`), so Citus routes the whole
/// statement to that resident's shard and runs it there as it is (its router planner takes
/// UPDATE and DELETE CTEs, not INSERT ones: the new rows go separately). It answers how many
/// resources it updated and how many of the reindexed resources are on that shard: one that
/// is not is on another resident's, and moves here (`send_resident_changes`).
fn resident_changes_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let mut next = 2;
        let update_start = next;
        let update_at = |name| update_start - 1 + position(UPDATE_COLUMNS, name);
        let updates = unnest(UPDATE_COLUMNS, &mut next);
        let (cleared, reindexed) = (next, next + 1);
        let mut ctes = vec![
            // A row's distribution key cannot change in place: an update of a resource now on
            // another resident's shard finds no row here, and the resource moves first.
            format!(
                "updated AS (UPDATE resource r SET version = u.version, \
                 last_updated = u.last_updated, method = u.method, \
                 content_hash = u.content_hash, custodian = u.custodian, \
                 sensitivity = u.sensitivity FROM {updates} AS u({}) \
                 WHERE r.patient_key = $1 AND r.rid = u.rid AND r.version = u.previous RETURNING 1)",
                names(UPDATE_COLUMNS)
            ),
            format!(
                "superseded AS (UPDATE version v SET superseded = u.at \
                 FROM unnest(${}::bigint[], ${}::bigint[], ${}::bigint[]) AS u(rid, previous, at) \
                 WHERE v.patient_key = $1 AND v.rid = u.rid AND v.version = u.previous)",
                update_at("rid"),
                update_at("previous"),
                update_at("last_updated")
            ),
        ];
        for table in INDEX_TABLES {
            let name = table.name;
            ctes.push(format!(
                "cleared_{name} AS (DELETE FROM {name} \
                 WHERE patient_key = $1 AND rid = ANY(${cleared}::bigint[]))"
            ));
        }
        format!(
            "WITH {} SELECT (SELECT count(*) FROM updated), \
             (SELECT count(*) FROM resource WHERE patient_key = $1 AND rid = ANY(${reindexed}::bigint[]))",
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
    custodian: Vec<Option<String>>,
    sensitivity: Vec<i64>,
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
    custodian: Vec<Option<String>>,
    sensitivity: Vec<i64>,
}

impl UpdateRows {
    /// The columns as array parameters, in `UPDATE_COLUMNS` order.
    fn params(&self) -> [Param<'_>; 9] {
        [
            &self.rid,
            &self.previous,
            &self.version,
            &self.last_updated,
            &self.method,
            &self.patient_key,
            &self.content_hash,
            &self.custodian,
            &self.sensitivity,
        ]
    }

    /// The updates at the positions `keep` keeps.
    fn select(&self, keep: impl Fn(usize) -> bool) -> UpdateRows {
        let mut rows = UpdateRows::default();
        for i in (0..self.rid.len()).filter(|&i| keep(i)) {
            rows.rid.push(self.rid[i]);
            rows.previous.push(self.previous[i]);
            rows.version.push(self.version[i]);
            rows.last_updated.push(self.last_updated[i]);
            rows.method.push(self.method[i]);
            rows.patient_key.push(self.patient_key[i]);
            rows.content_hash.push(self.content_hash[i]);
            rows.custodian.push(self.custodian[i].clone());
            rows.sensitivity.push(self.sensitivity[i]);
        }
        rows
    }
}

#[derive(Default)]
struct VersionRows {
    rid: Vec<i64>,
    version: Vec<i64>,
    resource_type: Vec<String>,
    /// The resources' ids: not a column of `version`, but of the change log's rows on a
    /// distributed store.
    id: Vec<String>,
    last_updated: Vec<i64>,
    method: Vec<i16>,
    patient_key: Vec<i64>,
    content_hash: Vec<i64>,
    custodian: Vec<Option<String>>,
    sensitivity: Vec<i64>,
    content: Vec<Option<Vec<u8>>>,
}

/// One column's buffered values, typed as the column is declared.
enum ColumnValues {
    Integers(Vec<i64>),
    OptionalIntegers(Vec<Option<i64>>),
    Reals(Vec<f64>),
    OptionalReals(Vec<Option<f64>>),
    Texts(Vec<String>),
    OptionalTexts(Vec<Option<String>>),
}

impl ColumnValues {
    fn for_column(column: &Column) -> ColumnValues {
        match (column.column_type, column.nullable) {
            (ColumnType::Integer, false) => ColumnValues::Integers(Vec::new()),
            (ColumnType::Integer, true) => ColumnValues::OptionalIntegers(Vec::new()),
            (ColumnType::Real, false) => ColumnValues::Reals(Vec::new()),
            (ColumnType::Real, true) => ColumnValues::OptionalReals(Vec::new()),
            (ColumnType::Text | ColumnType::UncomparedText, false) => {
                ColumnValues::Texts(Vec::new())
            }
            (ColumnType::Text | ColumnType::UncomparedText, true) => {
                ColumnValues::OptionalTexts(Vec::new())
            }
            (
                ColumnType::SmallInteger
                | ColumnType::Integer32
                | ColumnType::Boolean
                | ColumnType::Bytes,
                _,
            ) => {
                unreachable!(
                    "index tables hold only integers, reals and text ({})",
                    column.name
                )
            }
        }
    }

    fn push(&mut self, value: Value<'_>) {
        match (self, value) {
            (ColumnValues::Integers(v), Value::Integer(i)) => v.push(i),
            (ColumnValues::OptionalIntegers(v), Value::Integer(i)) => v.push(Some(i)),
            (ColumnValues::OptionalIntegers(v), Value::Null) => v.push(None),
            (ColumnValues::Reals(v), Value::Real(f)) => v.push(f),
            (ColumnValues::OptionalReals(v), Value::Real(f)) => v.push(Some(f)),
            (ColumnValues::OptionalReals(v), Value::Null) => v.push(None),
            (ColumnValues::Texts(v), Value::Text(t)) => v.push(t.to_owned()),
            (ColumnValues::OptionalTexts(v), Value::Text(t)) => v.push(Some(t.to_owned())),
            (ColumnValues::OptionalTexts(v), Value::Null) => v.push(None),
            (_, value) => unreachable!("{value:?} does not fit its declared column"),
        }
    }

    /// The whole column, as one array parameter.
    fn array(&self) -> Param<'_> {
        match self {
            ColumnValues::Integers(v) => v,
            ColumnValues::OptionalIntegers(v) => v,
            ColumnValues::Reals(v) => v,
            ColumnValues::OptionalReals(v) => v,
            ColumnValues::Texts(v) => v,
            ColumnValues::OptionalTexts(v) => v,
        }
    }

    /// The value of row `row`.
    fn at(&self, row: usize) -> Param<'_> {
        match self {
            ColumnValues::Integers(v) => &v[row],
            ColumnValues::OptionalIntegers(v) => &v[row],
            ColumnValues::Reals(v) => &v[row],
            ColumnValues::OptionalReals(v) => &v[row],
            ColumnValues::Texts(v) => &v[row],
            ColumnValues::OptionalTexts(v) => &v[row],
        }
    }
}

/// The new rows of one index table, one buffer per declared column.
struct TableRows {
    table: &'static Table,
    columns: Vec<ColumnValues>,
    len: usize,
}

impl TableRows {
    fn new(table: &'static Table) -> TableRows {
        TableRows {
            table,
            columns: table.columns.iter().map(ColumnValues::for_column).collect(),
            len: 0,
        }
    }

    fn push(&mut self, values: &[Value<'_>]) {
        debug_assert_eq!(values.len(), self.columns.len(), "{}", self.table.name);
        for (column, value) in self.columns.iter_mut().zip(values) {
            column.push(*value);
        }
        self.len += 1;
    }
}

/// Empty buffers for every index table, in [`INDEX_TABLES`] order.
fn index_buffers() -> Vec<TableRows> {
    INDEX_TABLES
        .iter()
        .map(|table| TableRows::new(table))
        .collect()
}

/// The writes of a transaction not yet sent, as column arrays.
pub(crate) struct Pending {
    created: ResourceRows,
    updated: UpdateRows,
    versions: VersionRows,
    /// Resources whose index rows the flush deletes before inserting the new ones, and their
    /// patient-compartment keys (which route the deletes on a distributed store).
    cleared: Vec<i64>,
    cleared_patient_key: Vec<i64>,
    /// Resources reindexed without a new version, and their new patient-compartment keys.
    reindexed: Vec<i64>,
    reindexed_patient_key: Vec<i64>,
    /// New index rows, per index table in [`INDEX_TABLES`] order.
    index_rows: Vec<TableRows>,
}

impl Default for Pending {
    fn default() -> Pending {
        Pending {
            created: ResourceRows::default(),
            updated: UpdateRows::default(),
            versions: VersionRows::default(),
            cleared: Vec::new(),
            cleared_patient_key: Vec::new(),
            reindexed: Vec::new(),
            reindexed_patient_key: Vec::new(),
            index_rows: index_buffers(),
        }
    }
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
        self.cleared_patient_key.push(index.patient_key.0);
        self.push_index(row, index);
    }

    /// Buffers `write` of the resource with row key `row`.
    /// Buffers `write` of resource `row`; `kept_key`, when given, is the patient key its rows
    /// keep instead of the write's own (a deletion on a distributed store, which has none).
    pub(crate) fn push(
        &mut self,
        row: i64,
        write: &VersionWrite<'_>,
        kept_key: Option<i64>,
    ) -> Result<(), StoreError> {
        let stored = write.content.map(store::content::encode).transpose()?;
        let patient_key = kept_key.unwrap_or(write.index.patient_key.0);
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
                r.custodian.push(write.custodian.map(str::to_owned));
                r.sensitivity.push(write.sensitivity);
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
                u.custodian.push(write.custodian.map(str::to_owned));
                u.sensitivity.push(write.sensitivity);
                if !previous.is_deleted() {
                    self.cleared.push(row);
                    self.cleared_patient_key.push(patient_key);
                }
            }
        }
        let v = &mut self.versions;
        v.rid.push(row);
        v.version.push(write.version);
        v.resource_type.push(write.resource_type.to_owned());
        v.id.push(write.id.to_owned());
        v.last_updated.push(write.last_updated);
        v.method.push(method);
        v.patient_key.push(patient_key);
        v.content_hash.push(write.content_hash);
        v.custodian.push(write.custodian.map(str::to_owned));
        v.sensitivity.push(write.sensitivity);
        v.content.push(stored);
        self.push_index(row, write.index);
        Ok(())
    }

    /// Buffers the index rows of one resource, without the duplicates that the SQLite store's
    /// primary keys would drop, so both stores hold the same rows.
    fn push_index(&mut self, row: i64, index: &IndexEntries) {
        let buffers = &mut self.index_rows;
        let pushed = for_each_index_row(row, index, |table, values| {
            let rows = buffers
                .iter_mut()
                .find(|rows| rows.table.name == table.name)
                .expect("a buffer per index table");
            rows.push(values);
            Ok::<(), Infallible>(())
        });
        match pushed {
            Ok(()) => {}
            Err(never) => match never {},
        }
    }

    /// The parts of the write statement these writes need.
    fn shape(&self) -> Shape {
        let mut tables = 0;
        for (index, rows) in self.index_rows.iter().enumerate() {
            if rows.len > 0 {
                tables |= 1 << index;
            }
        }
        Shape {
            created: !self.created.rid.is_empty(),
            updated: !self.updated.rid.is_empty(),
            versions: !self.versions.rid.is_empty(),
            cleared: !self.cleared.is_empty(),
            reindexed: !self.reindexed.is_empty(),
            tables,
        }
    }

    /// The statement's parameters for `shape`, in the order `render_flush_sql` numbers them.
    fn params(&self, shape: Shape) -> Vec<Param<'_>> {
        let c = &self.created;
        let v = &self.versions;
        let mut params: Vec<Param<'_>> = Vec::new();
        if shape.created {
            params.extend::<[Param<'_>; 10]>([
                &c.rid,
                &c.resource_type,
                &c.id,
                &c.version,
                &c.last_updated,
                &c.method,
                &c.patient_key,
                &c.content_hash,
                &c.custodian,
                &c.sensitivity,
            ]);
        }
        if shape.updated {
            params.extend(self.updated.params());
        }
        if shape.versions {
            params.extend::<[Param<'_>; 10]>([
                &v.rid,
                &v.version,
                &v.resource_type,
                &v.last_updated,
                &v.method,
                &v.patient_key,
                &v.content_hash,
                &v.custodian,
                &v.sensitivity,
                &v.content,
            ]);
        }
        if shape.cleared {
            params.push(&self.cleared);
        }
        if shape.reindexed {
            params.extend::<[Param<'_>; 2]>([&self.reindexed, &self.reindexed_patient_key]);
        }
        for (index, rows) in self.index_rows.iter().enumerate() {
            if shape.has_table(index) {
                params.extend(rows.columns.iter().map(ColumnValues::array));
            }
        }
        params
    }

    /// Sends the buffered writes: in one statement, or for many resources the changes in one
    /// statement and the new rows by COPY; on a distributed store, the changes in one routed
    /// statement per resident and the new rows by COPY. A resource row that was not where its
    /// writer expected it (another writer moved it on) is a conflict.
    pub(crate) fn send(mut self, connection: &mut Connection) -> Result<(), StoreError> {
        if connection.distributed {
            self.send_resident_changes(connection)?;
            return self.write_new_rows(connection);
        }
        if self.versions.rid.len() + self.reindexed.len() < COPY_FROM_RESOURCES {
            return self.send_statement(connection);
        }
        let inserts = self.take_inserts();
        if !(self.updated.rid.is_empty() && self.reindexed.is_empty()) {
            self.send_statement(connection)?;
        }
        inserts.write_new_rows(connection)
    }

    /// Moves the new rows (created resources, versions, index rows) out, leaving the changes
    /// to existing rows.
    fn take_inserts(&mut self) -> Pending {
        Pending {
            created: std::mem::take(&mut self.created),
            versions: std::mem::take(&mut self.versions),
            cleared: Vec::new(),
            cleared_patient_key: Vec::new(),
            reindexed: Vec::new(),
            reindexed_patient_key: Vec::new(),
            updated: UpdateRows::default(),
            index_rows: std::mem::replace(&mut self.index_rows, index_buffers()),
        }
    }

    fn send_statement(&self, connection: &mut Connection) -> Result<(), StoreError> {
        let shape = self.shape();
        if shape.is_empty() {
            return Ok(());
        }
        let statement = connection.prepare_cached(&flush_sql(shape))?;
        let params = self.params(shape);
        debug_assert_eq!(params.len(), statement.params().len());
        let rows = connection.query_generic(&statement, &params)?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::Internal("the write statement answered no row".into()))?;
        let created: i64 = row.get(0);
        let updated: i64 = row.get(1);
        if created as usize != self.created.rid.len() || updated as usize != self.updated.rid.len()
        {
            return Err(changed(self.updated.rid.len(), updated as usize));
        }
        Ok(())
    }

    /// The changes to existing rows on a distributed store, resident by resident
    /// (`resident_changes_sql`). A resource that is not on its resident's shard any more (its
    /// subject is now another resident) moves there first (`distribution::move_resource`).
    fn send_resident_changes(&self, connection: &mut Connection) -> Result<(), StoreError> {
        let keys: BTreeSet<i64> = self
            .updated
            .patient_key
            .iter()
            .chain(&self.cleared_patient_key)
            .chain(&self.reindexed_patient_key)
            .copied()
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let statement = connection.prepare_cached(resident_changes_sql())?;
        for key in keys {
            let updated = self.updated.select(|i| self.updated.patient_key[i] == key);
            let cleared = of_key(&self.cleared, &self.cleared_patient_key, key);
            let reindexed = of_key(&self.reindexed, &self.reindexed_patient_key, key);
            let (written, kept) =
                resident_changes(connection, &statement, key, &updated, &cleared, &reindexed)?;
            if written == updated.rid.len() && kept == reindexed.len() {
                continue;
            }
            // Rows not found on the resident's shard: those on another resident's move here
            // and are written again; any others changed since they were read.
            let rows: Vec<i64> = updated.rid.iter().chain(&reindexed).copied().collect();
            let elsewhere: Vec<(i64, i64)> = connection
                .client
                .query(
                    "SELECT rid, patient_key FROM resource \
                     WHERE rid = ANY($1::bigint[]) AND patient_key <> $2",
                    &[&rows, &key],
                )
                .map_err(map_error)?
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
            for &(rid, from) in &elsewhere {
                crate::distribution::move_resource(&mut connection.client, rid, from, key)?;
            }
            let moved: BTreeSet<i64> = elsewhere.iter().map(|(rid, _)| *rid).collect();
            let (again_written, again_kept) = resident_changes(
                connection,
                &statement,
                key,
                &updated.select(|i| moved.contains(&updated.rid[i])),
                &[],
                &reindexed
                    .iter()
                    .copied()
                    .filter(|rid| moved.contains(rid))
                    .collect::<Vec<_>>(),
            )?;
            if written + again_written != updated.rid.len() || kept + again_kept != reindexed.len()
            {
                return Err(changed(
                    updated.rid.len() + reindexed.len(),
                    written + again_written + kept + again_kept,
                ));
            }
        }
        Ok(())
    }

    /// Inserts the new rows, one COPY (or on a distributed store, for a few resources, one
    /// INSERT) per table that has any: resources, then versions (whose sequence numbers follow
    /// the order written), then index rows. On a distributed store also the locator rows of
    /// created resources and the change log's rows: the versions' sequence numbers are then
    /// taken first, in order, so that the log needs no read of the versions back from their
    /// shards.
    fn write_new_rows(&self, connection: &mut Connection) -> Result<(), StoreError> {
        let distributed = connection.distributed;
        // On a distributed store a few rows go by INSERT: Citus routes one statement in half
        // the time of a COPY (0.31 against 0.64 ms a statement of one row, in psql on the
        // local cluster), where one PostgreSQL is as fast either way for a few rows.
        let by_insert =
            distributed && self.versions.rid.len() + self.reindexed.len() < COPY_FROM_RESOURCES;
        let c = &self.created;
        write_rows(
            connection,
            by_insert,
            "resource",
            RESOURCE_COLUMNS,
            c.rid.len(),
            &|i| {
                vec![
                    &c.rid[i],
                    &c.resource_type[i],
                    &c.id[i],
                    &c.version[i],
                    &c.last_updated[i],
                    &c.method[i],
                    &c.patient_key[i],
                    &c.content_hash[i],
                    &c.custodian[i],
                    &c.sensitivity[i],
                ]
            },
        )?;
        let v = &self.versions;
        let version_row = |i: usize| -> Vec<Param<'_>> {
            vec![
                &v.rid[i],
                &v.version[i],
                &v.resource_type[i],
                &v.last_updated[i],
                &v.method[i],
                &v.patient_key[i],
                &v.content_hash[i],
                &v.custodian[i],
                &v.sensitivity[i],
                &v.content[i],
            ]
        };
        let seqs: Vec<i64> = if distributed && !v.rid.is_empty() {
            connection
                .client
                .query(
                    "SELECT nextval(pg_get_serial_sequence('version', 'seq')) \
                     FROM generate_series(1, $1::bigint)",
                    &[&(v.rid.len() as i64)],
                )
                .map_err(map_error)?
                .iter()
                .map(|row| row.get(0))
                .collect()
        } else {
            Vec::new()
        };
        // On a distributed store the sequence numbers taken above lead each row.
        let columns: Vec<(&str, &str)> = distributed
            .then_some(("seq", "bigint"))
            .into_iter()
            .chain(VERSION_COLUMNS.iter().copied())
            .collect();
        write_rows(
            connection,
            by_insert,
            "version",
            &columns,
            v.rid.len(),
            &|i| {
                let mut row: Vec<Param<'_>> = seqs
                    .get(i)
                    .map(|seq| seq as Param<'_>)
                    .into_iter()
                    .collect();
                row.extend(version_row(i));
                row
            },
        )?;
        for rows in &self.index_rows {
            let columns = array_columns(rows.table.columns);
            write_rows(
                connection,
                by_insert,
                rows.table.name,
                &columns,
                rows.len,
                &|i| rows.columns.iter().map(|column| column.at(i)).collect(),
            )?;
        }
        if distributed {
            write_rows(
                connection,
                by_insert,
                "resource_locator",
                LOCATOR_COLUMNS,
                c.rid.len(),
                &|i| vec![&c.id[i], &c.resource_type[i], &c.patient_key[i]],
            )?;
            // Each change carries what a reader of the log needs (`changes::read_distributed`),
            // so the log is read on the coordinator alone, without its versions from every
            // shard.
            if !seqs.is_empty() {
                connection
                    .client
                    .execute(
                        "INSERT INTO change (seq, rid, type, id, version, method, last_updated) \
                         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
                         $5::bigint[], $6::smallint[], $7::bigint[])",
                        &[
                            &seqs,
                            &v.rid,
                            &v.resource_type,
                            &v.id,
                            &v.version,
                            &v.method,
                            &v.last_updated,
                        ],
                    )
                    .map_err(map_error)?;
            }
        }
        Ok(())
    }
}

/// The conflict of a write whose resources changed since it read them.
fn changed(expected: usize, written: usize) -> StoreError {
    StoreError::Conflict(format!(
        "{} of {expected} resources changed since they were read",
        expected.saturating_sub(written)
    ))
}

/// Runs `resident_changes_sql` for resident `key`; answers how many resources it updated and
/// how many of `reindexed` it found on the resident's shard.
fn resident_changes(
    connection: &mut Connection,
    statement: &postgres::Statement,
    key: i64,
    updated: &UpdateRows,
    cleared: &[i64],
    reindexed: &[i64],
) -> Result<(usize, usize), StoreError> {
    let mut params: Vec<Param<'_>> = vec![&key];
    params.extend(updated.params());
    params.extend::<[Param<'_>; 2]>([&cleared, &reindexed]);
    let row = connection
        .client
        .query_one(statement, &params)
        .map_err(map_error)?;
    Ok((row.get::<_, i64>(0) as usize, row.get::<_, i64>(1) as usize))
}

/// The values of `rows` whose patient-compartment key (in `keys`, beside them) is `key`.
fn of_key(rows: &[i64], keys: &[i64], key: i64) -> Vec<i64> {
    rows.iter()
        .zip(keys)
        .filter(|(_, k)| **k == key)
        .map(|(row, _)| *row)
        .collect()
}

/// New rows into `table`: by INSERT when `by_insert` and they fit one, else by COPY.
fn write_rows<'a>(
    connection: &mut Connection,
    by_insert: bool,
    table: &str,
    columns: &[(&str, &str)],
    rows: usize,
    row: &dyn Fn(usize) -> Vec<Param<'a>>,
) -> Result<(), StoreError> {
    if rows == 0 {
        return Ok(());
    }
    if by_insert && rows * columns.len() <= MAX_INSERT_PARAMETERS {
        insert_rows(connection, table, columns, rows, row)
    } else {
        copy_rows(&mut connection.client, table, columns, rows, row)
    }
}

/// Up to how many parameters an INSERT of new rows takes (PostgreSQL's limit is 65,535).
const MAX_INSERT_PARAMETERS: usize = 8_192;

/// `INSERT INTO table (columns) VALUES (...), ...` of `rows` rows, each given by `row`, as one
/// prepared statement (one per table and number of rows, kept in the connection's cache).
/// The values of identity columns are given (a version's sequence number, taken first).
fn insert_rows<'a>(
    connection: &mut Connection,
    table: &str,
    columns: &[(&str, &str)],
    rows: usize,
    row: &dyn Fn(usize) -> Vec<Param<'a>>,
) -> Result<(), StoreError> {
    let width = columns.len();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let placeholders: Vec<String> =
                (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", placeholders.join(", "))
        })
        .collect();
    let statement = connection.prepare_cached(&format!(
        "INSERT INTO {table} ({}) OVERRIDING SYSTEM VALUE VALUES {}",
        names(columns),
        values.join(", ")
    ))?;
    let params: Vec<Param<'a>> = (0..rows).flat_map(row).collect();
    connection
        .client
        .execute(&statement, &params)
        .map_err(map_error)?;
    Ok(())
}

/// `COPY table (columns) FROM STDIN BINARY` of `rows` rows, each given by `row`.
fn copy_rows<'a>(
    client: &mut postgres::Client,
    table: &str,
    columns: &[(&str, &str)],
    rows: usize,
    row: &dyn Fn(usize) -> Vec<Param<'a>>,
) -> Result<(), StoreError> {
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
