//! The write transaction: new versions, their history rows and their index rows, on the single
//! writer connection, in a savepoint of a group's transaction (`group`).

use std::sync::OnceLock;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection, OptionalExtension, ToSql, params, params_from_iter};
use search::IndexEntries;
use search::query::SearchQuery;
use store::{SearchPage, StoreError, Transaction, VersionRecord, VersionWrite};
use store_sql::Dialect;
use store_sql::ddl;
use store_sql::index_rows::{Value, for_each_index_row};
use store_sql::tables::{INDEX_TABLES, Table};

use crate::group::Member;
use crate::{map_error, read};

pub(crate) struct SqliteTransaction<'a> {
    member: Member<'a>,
}

impl<'a> SqliteTransaction<'a> {
    pub(crate) fn new(member: Member<'a>) -> SqliteTransaction<'a> {
        SqliteTransaction { member }
    }
}

impl Transaction for SqliteTransaction<'_> {
    fn current(
        &mut self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        read::current(self.member.connection(), resource_type, id)
    }

    fn put(&mut self, write: VersionWrite<'_>) -> Result<i64, StoreError> {
        let connection = self.member.connection();
        let patient_key = write.index.patient_key.0;
        let row = match write.previous {
            None => {
                let mut insert = connection
                    .prepare_cached(
                        "INSERT INTO resource (type, id, version, last_updated, method, patient_key, content_hash, \
                         custodian, sensitivity) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
                    .map_err(map_error)?;
                insert
                    .execute(params![
                        write.resource_type,
                        write.id,
                        write.version,
                        write.last_updated,
                        write.method.code(),
                        patient_key,
                        write.content_hash,
                        write.custodian,
                        write.sensitivity
                    ])
                    .map_err(map_error)?;
                connection.last_insert_rowid()
            }
            Some(previous) => {
                let mut update = connection
                    .prepare_cached(
                        "UPDATE resource SET version = ?1, last_updated = ?2, method = ?3, patient_key = ?4, \
                         content_hash = ?5, custodian = ?8, sensitivity = ?9 WHERE rid = ?6 AND version = ?7",
                    )
                    .map_err(map_error)?;
                let changed = update
                    .execute(params![
                        write.version,
                        write.last_updated,
                        write.method.code(),
                        patient_key,
                        write.content_hash,
                        previous.row,
                        previous.version,
                        write.custodian,
                        write.sensitivity
                    ])
                    .map_err(map_error)?;
                if changed != 1 {
                    return Err(StoreError::Conflict(format!(
                        "{}/{} changed since version {}",
                        write.resource_type, write.id, previous.version
                    )));
                }
                connection
                    .prepare_cached(
                        "UPDATE version SET superseded = ?1 WHERE rid = ?2 AND version = ?3",
                    )
                    .map_err(map_error)?
                    .execute(params![write.last_updated, previous.row, previous.version])
                    .map_err(map_error)?;
                if !previous.is_deleted() {
                    delete_index_rows(connection, previous.row)?;
                }
                previous.row
            }
        };
        let stored = write.content.map(store::content::encode).transpose()?;
        connection
            .prepare_cached(
                "INSERT INTO version (rid, version, type, last_updated, method, patient_key, content_hash, \
                 custodian, sensitivity, content) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(map_error)?
            .execute(params![
                row,
                write.version,
                write.resource_type,
                write.last_updated,
                write.method.code(),
                patient_key,
                write.content_hash,
                write.custodian,
                write.sensitivity,
                stored
            ])
            .map_err(map_error)?;
        insert_index_rows(connection, row, write.index).map_err(map_error)?;
        Ok(row)
    }

    fn search(&mut self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        read::search(self.member.connection(), query)
    }

    fn replace_index(&mut self, row: i64, index: &IndexEntries) -> Result<(), StoreError> {
        let connection = self.member.connection();
        delete_index_rows(connection, row)?;
        let patient_key = index.patient_key.0;
        connection
            .prepare_cached("UPDATE resource SET patient_key = ?1 WHERE rid = ?2")
            .map_err(map_error)?
            .execute(params![patient_key, row])
            .map_err(map_error)?;
        connection
            .prepare_cached(
                "UPDATE version SET patient_key = ?1 WHERE rid = ?2 AND version = (SELECT version FROM resource WHERE rid = ?2)",
            )
            .map_err(map_error)?
            .execute(params![patient_key, row])
            .map_err(map_error)?;
        insert_index_rows(connection, row, index).map_err(map_error)
    }

    fn set_checkpoint(&mut self, name: &str, value: Option<&str>) -> Result<(), StoreError> {
        let connection = self.member.connection();
        match value {
            Some(value) => connection
                .prepare_cached(
                    "INSERT INTO checkpoint (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .map_err(map_error)?
                .execute(params![name, value]),
            None => connection
                .prepare_cached("DELETE FROM checkpoint WHERE name = ?1")
                .map_err(map_error)?
                .execute(params![name]),
        }
        .map_err(map_error)?;
        Ok(())
    }

    fn take_checkpoint(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        self.member
            .connection()
            .prepare_cached("DELETE FROM checkpoint WHERE name = ?1 RETURNING value")
            .map_err(map_error)?
            .query_row([name], |row| row.get(0))
            .optional()
            .map_err(map_error)
    }

    fn insert_checkpoint_if_absent(&mut self, name: &str, value: &str) -> Result<bool, StoreError> {
        let inserted = self
            .member
            .connection()
            .prepare_cached(
                "INSERT INTO checkpoint (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            )
            .map_err(map_error)?
            .execute(params![name, value])
            .map_err(map_error)?;
        Ok(inserted == 1)
    }

    fn lock_key(&mut self, _key: i64) -> Result<(), StoreError> {
        // The one writer connection already orders every write transaction, so a finer lock
        // would add nothing; but what was committed before must be visible to all connections,
        // as after a lock on PostgreSQL: a transaction in a group starts a group of its own.
        self.member.fresh_group()
    }

    fn lock_keys(&mut self, keys: &[i64]) -> Result<(), StoreError> {
        match keys {
            [] => Ok(()),
            _ => self.member.fresh_group(),
        }
    }

    fn ledger_size(&mut self) -> Result<u64, StoreError> {
        crate::ledger::size(self.member.connection())
    }

    fn ledger_tile(&mut self, level: u32, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        crate::ledger::tile(self.member.connection(), level, index)
    }

    fn put_ledger(
        &mut self,
        leaves: &[store::LedgerLeaf],
        tiles: &[(u32, u64, &[u8])],
    ) -> Result<(), StoreError> {
        crate::ledger::put(self.member.connection(), leaves, tiles)
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let SqliteTransaction { member } = *self;
        member.commit()
    }
}

/// Deletes the index rows of the resource with row key `row`, from every index table.
fn delete_index_rows(connection: &Connection, row: i64) -> Result<(), StoreError> {
    for table in INDEX_TABLES {
        connection
            .prepare_cached(&format!("DELETE FROM {} WHERE rid = ?1", table.name))
            .map_err(map_error)?
            .execute([row])
            .map_err(map_error)?;
    }
    Ok(())
}

/// Inserts the index rows of the resource with row key `row`, as the declaration of each
/// index table says (`store_sql::index_rows`): one prepared insert per table, a row at a time.
fn insert_index_rows(
    connection: &Connection,
    row: i64,
    index: &IndexEntries,
) -> rusqlite::Result<()> {
    let mut insert: Option<(&'static str, CachedStatement<'_>)> = None;
    for_each_index_row(row, index, |table, values| {
        let statement = match &mut insert {
            Some((name, statement)) if *name == table.name => statement,
            _ => {
                let statement = connection.prepare_cached(insert_statement(table))?;
                &mut insert.insert((table.name, statement)).1
            }
        };
        statement.execute(params_from_iter(values.iter().map(|value| Bound(*value))))?;
        Ok(())
    })
}

/// The statement that inserts one row of index table `table`.
fn insert_statement(table: &Table) -> &'static str {
    static STATEMENTS: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    STATEMENTS
        .get_or_init(|| {
            INDEX_TABLES
                .iter()
                .map(|table| (table.name, ddl::insert_row(table, Dialect::Sqlite)))
                .collect()
        })
        .iter()
        .find(|(name, _)| *name == table.name)
        .map(|(_, statement)| statement.as_str())
        .expect("rows are inserted into index tables")
}

/// A value of an index row, bound as it is, without a copy.
struct Bound<'a>(Value<'a>);

impl ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(i),
            Value::Real(f) => ValueRef::Real(f),
            Value::Text(text) => ValueRef::Text(text.as_bytes()),
        }))
    }
}
