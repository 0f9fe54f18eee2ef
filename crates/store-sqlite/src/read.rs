//! Reads: current and past versions, history pages and searches. Each function takes a
//! connection, so a transaction can run the same reads on the writer and see its own writes.

use std::collections::HashMap;

use rusqlite::types::Value as SqliteValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use search::query::{CursorValue, SearchQuery};
use store::{HistoryPage, HistoryQuery, Method, ScanQuery, SearchPage, StoreError, VersionRecord};
use store_sql::{Dialect, RECORD_COLUMNS, SortValueKind, Sql, SqlRunner, SqlValue};

use crate::map_error;

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<VersionRecord> {
    let method: i64 = row.get(5)?;
    Ok(VersionRecord {
        row: row.get(0)?,
        resource_type: row.get(1)?,
        id: row.get(2)?,
        version: row.get(3)?,
        last_updated: row.get(4)?,
        method: Method::from_code(method).unwrap_or(Method::Update),
        content: row
            .get::<_, Option<Vec<u8>>>(6)?
            .map(store::content::decode)
            .transpose()
            .map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    6,
                    rusqlite::types::Type::Blob,
                    Box::new(e),
                )
            })?,
        content_hash: row.get(7)?,
        custodian: row.get(8)?,
        sensitivity: row.get(9)?,
    })
}

// The two lookups below keep their bound values inside scalar subqueries. SQLite (3.54) marks a
// join whose WHERE clause compares a column with a bound value as depending on that value and
// compiles the statement again on every execution with a new one; a statement cache then saves
// nothing. Measured on the Synthea import: recompiling `current` took 16% of the writer's time.
pub(crate) fn current(
    connection: &Connection,
    resource_type: &str,
    id: &str,
) -> Result<Option<VersionRecord>, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM resource r JOIN version v ON v.rid = r.rid AND v.version = r.version \
             WHERE r.rid = (SELECT rid FROM resource WHERE type = ?1 AND id = ?2)"
        ))
        .map_err(map_error)?;
    statement
        .query_row(params![resource_type, id], record_from_row)
        .optional()
        .map_err(map_error)
}

pub(crate) fn version(
    connection: &Connection,
    resource_type: &str,
    id: &str,
    version: i64,
) -> Result<Option<VersionRecord>, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM resource r JOIN version v ON v.rid = r.rid \
             WHERE r.rid = (SELECT rid FROM resource WHERE type = ?1 AND id = ?2) AND v.version = (SELECT ?3)"
        ))
        .map_err(map_error)?;
    statement
        .query_row(params![resource_type, id, version], record_from_row)
        .optional()
        .map_err(map_error)
}

pub(crate) fn history(
    connection: &Connection,
    query: &HistoryQuery,
) -> Result<HistoryPage, StoreError> {
    let sql = store_sql::history(query, Dialect::Sqlite);
    let mut statement = connection.prepare_cached(&sql.text).map_err(map_error)?;
    let mut rows = statement
        .query(params_from_iter(to_sqlite(&sql.params)))
        .map_err(map_error)?;
    let mut versions = Vec::new();
    let mut sequence_numbers = Vec::new();
    while let Some(row) = rows.next().map_err(map_error)? {
        versions.push(record_from_row(row).map_err(map_error)?);
        sequence_numbers.push(row.get::<_, i64>(10).map_err(map_error)?);
    }
    let next = if versions.len() > query.count {
        versions.truncate(query.count);
        sequence_numbers.get(query.count.saturating_sub(1)).copied()
    } else {
        None
    };
    Ok(HistoryPage { versions, next })
}

pub(crate) fn scan(
    connection: &Connection,
    query: &ScanQuery,
) -> Result<Vec<VersionRecord>, StoreError> {
    let sql = store_sql::scan(query, Dialect::Sqlite);
    let mut statement = connection.prepare_cached(&sql.text).map_err(map_error)?;
    let rows = statement
        .query_map(params_from_iter(to_sqlite(&sql.params)), record_from_row)
        .map_err(map_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(map_error)
}

pub(crate) fn checkpoint(
    connection: &Connection,
    name: &str,
) -> Result<Option<String>, StoreError> {
    connection
        .prepare_cached("SELECT value FROM checkpoint WHERE name = ?1")
        .map_err(map_error)?
        .query_row([name], |row| row.get(0))
        .optional()
        .map_err(map_error)
}

pub(crate) fn checkpoints_with_prefix(
    connection: &Connection,
    prefix: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    // SQLite compares text bytewise (BINARY), so the name order is byte order.
    let mut statement = connection
        .prepare_cached(
            "SELECT name, value FROM checkpoint WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
        )
        .map_err(map_error)?;
    let rows = statement
        .query_map([prefix], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(map_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(map_error)
}

pub(crate) fn search(
    connection: &Connection,
    query: &SearchQuery,
) -> Result<SearchPage, StoreError> {
    store_sql::search(&mut Runner(connection), query, Dialect::Sqlite)
}

/// Runs the shared search SQL on a SQLite connection.
struct Runner<'c>(&'c Connection);

impl SqlRunner for Runner<'_> {
    fn integers(&mut self, sql: &Sql) -> Result<Vec<i64>, StoreError> {
        query_integers(self.0, sql)
    }

    fn page_rows(
        &mut self,
        sql: &Sql,
        kinds: &[SortValueKind],
    ) -> Result<Vec<(i64, Vec<CursorValue>)>, StoreError> {
        let mut statement = self.0.prepare_cached(&sql.text).map_err(map_error)?;
        let values = to_sqlite(&sql.params);
        let mut rows = statement
            .query(params_from_iter(values.iter()))
            .map_err(map_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(map_error)? {
            let key: i64 = row.get(0).map_err(map_error)?;
            let mut sort_values = Vec::with_capacity(kinds.len());
            for (i, kind) in kinds.iter().enumerate() {
                let value: SqliteValue = row.get(i + 1).map_err(map_error)?;
                sort_values.push(match (value, kind) {
                    (SqliteValue::Null, _) => CursorValue::Null,
                    (SqliteValue::Integer(i), SortValueKind::Float) => CursorValue::Float(i as f64),
                    (SqliteValue::Integer(i), _) => CursorValue::Integer(i),
                    (SqliteValue::Real(f), _) => CursorValue::Float(f),
                    (SqliteValue::Text(t), _) => CursorValue::Text(t.into()),
                    (SqliteValue::Blob(_), _) => CursorValue::Null,
                });
            }
            out.push((key, sort_values));
        }
        Ok(out)
    }

    fn records(&mut self, rows: &[i64]) -> Result<Vec<VersionRecord>, StoreError> {
        records_by_row(self.0, rows)
    }
}

pub(crate) fn to_sqlite(values: &[SqlValue]) -> Vec<SqliteValue> {
    values
        .iter()
        .map(|v| match v {
            SqlValue::Integer(i) => SqliteValue::Integer(*i),
            SqlValue::Float(f) => SqliteValue::Real(*f),
            SqlValue::Text(t) => SqliteValue::Text(t.clone()),
        })
        .collect()
}

fn query_integers(connection: &Connection, sql: &Sql) -> Result<Vec<i64>, StoreError> {
    let mut statement = connection.prepare_cached(&sql.text).map_err(map_error)?;
    let values = to_sqlite(&sql.params);
    let rows = statement
        .query_map(params_from_iter(values.iter()), |row| row.get::<_, i64>(0))
        .map_err(map_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(map_error)
}

/// The current versions of resources by row key, in the order given.
pub(crate) fn records_by_row(
    connection: &Connection,
    rows: &[i64],
) -> Result<Vec<VersionRecord>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut found: HashMap<i64, VersionRecord> = HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
        let text = format!(
            "SELECT {RECORD_COLUMNS} FROM resource r JOIN version v ON v.rid = r.rid AND v.version = r.version \
             WHERE r.rid IN ({})",
            placeholders.join(", ")
        );
        let mut statement = connection.prepare_cached(&text).map_err(map_error)?;
        let records = statement
            .query_map(params_from_iter(chunk.iter()), record_from_row)
            .map_err(map_error)?;
        for record in records {
            let record = record.map_err(map_error)?;
            found.insert(record.row, record);
        }
    }
    Ok(rows.iter().filter_map(|row| found.remove(row)).collect())
}

/// The change log. SQLite has one writer, whose transactions commit one after another, and a
/// version's `seq` is assigned inside its transaction, so `seq` order is commit order and the log
/// is the version table read by `seq`. A rolled-back transaction leaves no version.
pub(crate) fn changes(
    connection: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<store::Change>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT v.seq, v.rid, v.type, r.id, v.version, v.method, v.last_updated \
             FROM version v JOIN resource r ON r.rid = v.rid \
             WHERE v.seq > ?1 ORDER BY v.seq LIMIT ?2",
        )
        .map_err(map_error)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = statement
        .query_map(params![after, limit], |row| {
            Ok(store::Change {
                position: row.get(0)?,
                row: row.get(1)?,
                resource_type: row.get(2)?,
                id: row.get(3)?,
                version: row.get(4)?,
                method: Method::from_code(row.get(5)?).unwrap_or(Method::Update),
                last_updated: row.get(6)?,
            })
        })
        .map_err(map_error)?;
    rows.collect::<Result<_, _>>().map_err(map_error)
}
