//! Reads: current and past versions, history pages and searches. Each function takes a
//! connection, so a transaction runs the same reads on its own connection and sees its writes.

use std::collections::HashMap;

use postgres::types::{ToSql, Type};
use postgres::{Row, Statement};
use search::query::{CursorValue, SearchQuery};
use store::{HistoryPage, HistoryQuery, Method, ScanQuery, SearchPage, StoreError, VersionRecord};
use store_sql::{RECORD_COLUMNS, SortValueKind, Sql, SqlRunner, SqlValue};

use crate::map_error;
use crate::pool::Connection;

pub(crate) fn record_from_row(row: &Row) -> Result<VersionRecord, StoreError> {
    record_at(row, 0)
}

/// The version whose [`RECORD_COLUMNS`] start at column `at`.
pub(crate) fn record_at(row: &Row, at: usize) -> Result<VersionRecord, StoreError> {
    let get_error = |e: postgres::Error| StoreError::Internal(format!("reading a version: {e}"));
    let method: i16 = row.try_get(at + 5).map_err(get_error)?;
    Ok(VersionRecord {
        row: row.try_get(at).map_err(get_error)?,
        resource_type: row.try_get(at + 1).map_err(get_error)?,
        id: row.try_get(at + 2).map_err(get_error)?,
        version: row.try_get(at + 3).map_err(get_error)?,
        last_updated: row.try_get(at + 4).map_err(get_error)?,
        method: Method::from_code(i64::from(method)).unwrap_or(Method::Update),
        content: row
            .try_get::<_, Option<Vec<u8>>>(at + 6)
            .map_err(get_error)?
            .map(store::content::decode)
            .transpose()?,
        content_hash: row.try_get(at + 7).map_err(get_error)?,
        custodian: row.try_get(at + 8).map_err(get_error)?,
        sensitivity: row.try_get(at + 9).map_err(get_error)?,
    })
}

pub(crate) fn current(
    connection: &mut Connection,
    resource_type: &str,
    id: &str,
) -> Result<Option<VersionRecord>, StoreError> {
    let join = store_sql::current_version_join(connection.dialect());
    let row = if connection.distributed {
        // The locator (on the id's shard) names the resident's shard: two reads of one shard
        // each instead of one of every shard.
        let Some(key) = located(connection, resource_type, id)? else {
            return Ok(None);
        };
        let statement = connection.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM resource r {join} \
             WHERE r.patient_key = $3 AND r.type = $1 AND r.id = $2"
        ))?;
        connection
            .client
            .query_opt(&statement, &[&resource_type, &id, &key])
    } else {
        let statement = connection.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM resource r {join} WHERE r.type = $1 AND r.id = $2"
        ))?;
        connection
            .client
            .query_opt(&statement, &[&resource_type, &id])
    }
    .map_err(map_error)?;
    row.as_ref().map(record_from_row).transpose()
}

/// The patient key `resource_type/id` is stored under on a distributed store, from its
/// locator row (`distribution`).
pub(crate) fn located(
    connection: &mut Connection,
    resource_type: &str,
    id: &str,
) -> Result<Option<i64>, StoreError> {
    let statement = connection
        .prepare_cached("SELECT patient_key FROM resource_locator WHERE id = $1 AND type = $2")?;
    let row = connection
        .client
        .query_opt(&statement, &[&id, &resource_type])
        .map_err(map_error)?;
    Ok(row.map(|row| row.get(0)))
}

pub(crate) fn version(
    connection: &mut Connection,
    resource_type: &str,
    id: &str,
    version: i64,
) -> Result<Option<VersionRecord>, StoreError> {
    let statement = connection.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM resource r JOIN version v ON {} \
         WHERE r.type = $1 AND r.id = $2 AND v.version = $3",
        store_sql::same_resource(connection.dialect(), "v", "r")
    ))?;
    let row = connection
        .client
        .query_opt(&statement, &[&resource_type, &id, &version])
        .map_err(map_error)?;
    row.as_ref().map(record_from_row).transpose()
}

/// Several versions by (type, id, version), in the order asked: one statement, the keys as
/// arrays (each as [`version`] reads it on a distributed store).
pub(crate) fn versions(
    connection: &mut Connection,
    keys: &[(&str, &str, i64)],
) -> Result<Vec<Option<VersionRecord>>, StoreError> {
    let sql = format!(
        "SELECT x.*, k.n FROM unnest($1::text[], $2::text[], $3::bigint[]) \
         WITH ORDINALITY AS k(type, id, version, n) \
         CROSS JOIN LATERAL (SELECT {RECORD_COLUMNS} FROM resource r \
               JOIN version v ON {} AND v.version = k.version \
               WHERE r.type = k.type AND r.id = k.id OFFSET 0) x",
        store_sql::same_resource(connection.dialect(), "v", "r")
    );
    by_version_keys(connection, keys, &sql, record_from_row, version)
}

/// Answers for (type, id, version) keys, in the order asked. On a distributed store each key
/// is read by `each` (joined by type and id, the keys would ask every shard); else `sql` runs
/// once, the keys bound as arrays (`$1` types, `$2` ids, `$3` versions), each row read by
/// `from_row` and answering the key whose position (from 1, `WITH ORDINALITY`) is its last
/// column. Each key is looked up in a subquery kept apart (`LATERAL ... OFFSET 0`): joined,
/// a batch of a few hundred keys was planned as a hash of the whole resource table, read
/// whole at every batch (25 ms for 252 keys on a young store).
pub(crate) fn by_version_keys<T: Clone>(
    connection: &mut Connection,
    keys: &[(&str, &str, i64)],
    sql: &str,
    from_row: impl Fn(&Row) -> Result<T, StoreError>,
    mut each: impl FnMut(&mut Connection, &str, &str, i64) -> Result<Option<T>, StoreError>,
) -> Result<Vec<Option<T>>, StoreError> {
    if connection.distributed {
        return keys
            .iter()
            .map(|&(resource_type, id, version)| each(connection, resource_type, id, version))
            .collect();
    }
    let mut found = vec![None; keys.len()];
    if keys.is_empty() {
        return Ok(found);
    }
    let types: Vec<&str> = keys.iter().map(|key| key.0).collect();
    let ids: Vec<&str> = keys.iter().map(|key| key.1).collect();
    let versions: Vec<i64> = keys.iter().map(|key| key.2).collect();
    let statement = connection.prepare_cached(sql)?;
    for row in connection
        .client
        .query(&statement, &[&types, &ids, &versions])
        .map_err(map_error)?
    {
        let n: i64 = row.get(row.len() - 1);
        found[(n - 1) as usize] = Some(from_row(&row)?);
    }
    Ok(found)
}

pub(crate) fn history(
    connection: &mut Connection,
    query: &HistoryQuery,
) -> Result<HistoryPage, StoreError> {
    let rows = run(connection, &store_sql::history(query, connection.dialect()))?;
    let mut versions = Vec::with_capacity(rows.len());
    let mut sequence_numbers = Vec::with_capacity(rows.len());
    for row in &rows {
        versions.push(record_from_row(row)?);
        sequence_numbers.push(
            row.try_get::<_, i64>(10)
                .map_err(|e| StoreError::Internal(e.to_string()))?,
        );
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
    connection: &mut Connection,
    query: &ScanQuery,
) -> Result<Vec<VersionRecord>, StoreError> {
    let rows = run(connection, &store_sql::scan(query, connection.dialect()))?;
    rows.iter().map(record_from_row).collect()
}

pub(crate) fn checkpoint(
    connection: &mut Connection,
    name: &str,
) -> Result<Option<String>, StoreError> {
    let statement = connection.prepare_cached("SELECT value FROM checkpoint WHERE name = $1")?;
    let row = connection
        .client
        .query_opt(&statement, &[&name])
        .map_err(map_error)?;
    Ok(row.map(|row| row.get(0)))
}

pub(crate) fn checkpoints_with_prefix(
    connection: &mut Connection,
    prefix: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    // `COLLATE "C"`: byte order, as on SQLite, whatever the database's collation.
    let statement = connection.prepare_cached(
        "SELECT name, value FROM checkpoint WHERE starts_with(name, $1) ORDER BY name COLLATE \"C\"",
    )?;
    let rows = connection
        .client
        .query(&statement, &[&prefix])
        .map_err(map_error)?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

pub(crate) fn search(
    connection: &mut Connection,
    query: &SearchQuery,
) -> Result<SearchPage, StoreError> {
    let dialect = connection.dialect();
    store_sql::search(&mut Runner(connection), query, dialect)
}

/// The first column of `rows`, integers.
fn integers_of(rows: &[Row]) -> Result<Vec<i64>, StoreError> {
    rows.iter()
        .map(|row| {
            row.try_get::<_, i64>(0)
                .map_err(|e| StoreError::Internal(e.to_string()))
        })
        .collect()
}

/// Runs the shared search SQL on a PostgreSQL connection.
struct Runner<'c>(&'c mut Connection);

impl SqlRunner for Runner<'_> {
    fn integers(&mut self, sql: &Sql) -> Result<Vec<i64>, StoreError> {
        integers_of(&run(self.0, sql)?)
    }

    /// Prepared afresh, so planned for its values: the plan cache's generic plan of a dense
    /// set's count (`category=laboratory&_summary=count`, 29,206 of 42,929 Observations)
    /// probed the resources row by row, 140-170 ms, where the plan for the values hashes
    /// them, 60-80 ms.
    fn total(&mut self, sql: &Sql) -> Result<i64, StoreError> {
        self.0.plan_for_values()?;
        let statement = self.0.client.prepare(&sql.text).map_err(map_error)?;
        let counted = integers_of(&execute(self.0, &statement, sql)?)?;
        Ok(counted.first().copied().unwrap_or(0))
    }

    fn page_rows(
        &mut self,
        sql: &Sql,
        kinds: &[SortValueKind],
    ) -> Result<Vec<(i64, Vec<CursorValue>)>, StoreError> {
        let rows = run(self.0, sql)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let key: i64 = row
                .try_get(0)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let mut sort_values = Vec::with_capacity(kinds.len());
            for (i, kind) in kinds.iter().enumerate() {
                sort_values.push(cursor_value(row, i + 1, *kind)?);
            }
            out.push((key, sort_values));
        }
        Ok(out)
    }

    fn records(&mut self, rows: &[i64]) -> Result<Vec<VersionRecord>, StoreError> {
        records_by_row(self.0, rows)
    }
}

/// A sort value as the cursor carries it, read by the column's actual type.
fn cursor_value(row: &Row, index: usize, kind: SortValueKind) -> Result<CursorValue, StoreError> {
    let get_error = |e: postgres::Error| StoreError::Internal(format!("reading a sort value: {e}"));
    let column_type = row.columns()[index].type_().clone();
    let value = if column_type == Type::INT8 {
        row.try_get::<_, Option<i64>>(index)
            .map_err(get_error)?
            .map(|i| match kind {
                SortValueKind::Float => CursorValue::Float(i as f64),
                _ => CursorValue::Integer(i),
            })
    } else if column_type == Type::INT4 {
        row.try_get::<_, Option<i32>>(index)
            .map_err(get_error)?
            .map(|i| CursorValue::Integer(i64::from(i)))
    } else if column_type == Type::INT2 {
        row.try_get::<_, Option<i16>>(index)
            .map_err(get_error)?
            .map(|i| CursorValue::Integer(i64::from(i)))
    } else if column_type == Type::FLOAT8 {
        row.try_get::<_, Option<f64>>(index)
            .map_err(get_error)?
            .map(CursorValue::Float)
    } else if column_type == Type::TEXT || column_type == Type::VARCHAR {
        row.try_get::<_, Option<String>>(index)
            .map_err(get_error)?
            .map(|t| CursorValue::Text(t.into()))
    } else {
        None
    };
    Ok(value.unwrap_or(CursorValue::Null))
}

/// Runs shared SQL, converting each bound value to the type PostgreSQL inferred for its
/// placeholder: the shared text carries no casts (it is the same text as SQLite's apart from
/// the placeholders), so an integer may meet a `double precision` column.
fn run(connection: &mut Connection, sql: &Sql) -> Result<Vec<Row>, StoreError> {
    connection.plan_for_values()?;
    let statement = connection.prepare_cached(&sql.text)?;
    execute(connection, &statement, sql)
}

/// Runs `statement`, prepared from `sql`'s text, with `sql`'s values.
fn execute(
    connection: &mut Connection,
    statement: &Statement,
    sql: &Sql,
) -> Result<Vec<Row>, StoreError> {
    let values = sql
        .params
        .iter()
        .zip(statement.params())
        .map(|(value, inferred)| convert(value, inferred))
        .collect::<Result<Vec<_>, _>>()?;
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| &**v).collect();
    connection
        .client
        .query(statement, &params)
        .map_err(map_error)
}

fn convert(value: &SqlValue, inferred: &Type) -> Result<Box<dyn ToSql + Sync>, StoreError> {
    let mismatch = || {
        StoreError::Internal(format!(
            "a {value:?} bound where PostgreSQL expects {inferred}"
        ))
    };
    Ok(match (value, inferred) {
        (SqlValue::Integer(i), t) if *t == Type::INT8 => Box::new(*i),
        (SqlValue::Integer(i), t) if *t == Type::INT4 => {
            Box::new(i32::try_from(*i).map_err(|_| mismatch())?)
        }
        (SqlValue::Integer(i), t) if *t == Type::INT2 => {
            Box::new(i16::try_from(*i).map_err(|_| mismatch())?)
        }
        (SqlValue::Integer(i), t) if *t == Type::FLOAT8 => Box::new(*i as f64),
        (SqlValue::Float(f), t) if *t == Type::FLOAT8 => Box::new(*f),
        // A whole float against an integer column compares the same as the integer.
        (SqlValue::Float(f), t) if *t == Type::INT8 && f.fract() == 0.0 && f.abs() < 9.0e18 => {
            Box::new(*f as i64)
        }
        (SqlValue::Text(s), t) if *t == Type::TEXT || *t == Type::VARCHAR => Box::new(s.clone()),
        _ => return Err(mismatch()),
    })
}

/// The current versions of resources by row key, in the order given.
pub(crate) fn records_by_row(
    connection: &mut Connection,
    rows: &[i64],
) -> Result<Vec<VersionRecord>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let join = store_sql::current_version_join(connection.dialect());
    let statement = connection.prepare_cached(&if connection.distributed {
        format!("SELECT {RECORD_COLUMNS} FROM resource r {join} WHERE r.rid = ANY($1)")
    } else {
        // Each row key looked up apart (as `by_version_keys` does), the keys bound through a
        // subquery no plan can see: planned for the keys, the fetch of every search page was
        // planned afresh (0.13 ms a fetch, a fifth of a master-index search inside a Patient
        // write); now its generic plan is taken after five, and it stays a lookup by key on
        // a store whose tables were small when it was made.
        format!(
            "SELECT x.* FROM unnest((SELECT $1::bigint[])) AS k(rid) \
             CROSS JOIN LATERAL (SELECT {RECORD_COLUMNS} FROM resource r {join} \
                   WHERE r.rid = k.rid OFFSET 0) x"
        )
    })?;
    let found_rows = connection
        .client
        .query(&statement, &[&rows])
        .map_err(map_error)?;
    let mut found: HashMap<i64, VersionRecord> = HashMap::with_capacity(found_rows.len());
    for row in &found_rows {
        let record = record_from_row(row)?;
        found.insert(record.row, record);
    }
    Ok(rows.iter().filter_map(|row| found.remove(row)).collect())
}
