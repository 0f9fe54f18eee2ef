//! The write transaction: new versions, their history rows and their index rows, on the single
//! writer connection, between `BEGIN IMMEDIATE` and `COMMIT`.

use std::sync::MutexGuard;

use rusqlite::{Connection, params};
use search::IndexEntries;
use search::query::SearchQuery;
use store::{SearchPage, StoreError, Transaction, VersionRecord, VersionWrite};

use crate::{map_error, read};

pub(crate) struct SqliteTransaction<'a> {
    connection: MutexGuard<'a, Connection>,
    finished: bool,
}

impl<'a> SqliteTransaction<'a> {
    pub(crate) fn new(connection: MutexGuard<'a, Connection>) -> SqliteTransaction<'a> {
        SqliteTransaction {
            connection,
            finished: false,
        }
    }
}

impl Drop for SqliteTransaction<'_> {
    fn drop(&mut self) {
        if !self.finished
            && let Err(error) = self.connection.execute_batch("ROLLBACK")
        {
            tracing::error!(%error, "rolling back a SQLite transaction failed");
        }
    }
}

impl Transaction for SqliteTransaction<'_> {
    fn current(
        &mut self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        read::current(&self.connection, resource_type, id)
    }

    fn put(&mut self, write: VersionWrite<'_>) -> Result<i64, StoreError> {
        let connection = &*self.connection;
        let patient_key = write.index.patient_key.0;
        let row = match write.previous {
            None => {
                let mut insert = connection
                    .prepare_cached(
                        "INSERT INTO resource (type, id, version, last_updated, method, patient_key, content_hash) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
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
                        write.content_hash
                    ])
                    .map_err(map_error)?;
                connection.last_insert_rowid()
            }
            Some(previous) => {
                let mut update = connection
                    .prepare_cached(
                        "UPDATE resource SET version = ?1, last_updated = ?2, method = ?3, patient_key = ?4, \
                         content_hash = ?5 WHERE rid = ?6 AND version = ?7",
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
                        previous.version
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
                "INSERT INTO version (rid, version, type, last_updated, method, patient_key, content_hash, content) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
                stored
            ])
            .map_err(map_error)?;
        insert_index_rows(connection, row, write.index).map_err(map_error)?;
        Ok(row)
    }

    fn search(&mut self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        read::search(&self.connection, query)
    }

    fn replace_index(&mut self, row: i64, index: &IndexEntries) -> Result<(), StoreError> {
        let connection = &*self.connection;
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
        let connection = &*self.connection;
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

    fn lock_key(&mut self, _key: i64) -> Result<(), StoreError> {
        // BEGIN IMMEDIATE took the database's one write lock: every write transaction already
        // runs alone, so a finer lock would add nothing.
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.connection.execute_batch("COMMIT").map_err(map_error)?;
        self.finished = true;
        Ok(())
    }
}

fn delete_index_rows(connection: &Connection, row: i64) -> Result<(), StoreError> {
    for table in store_sql::tables::INDEX_TABLES {
        connection
            .prepare_cached(&format!("DELETE FROM {} WHERE rid = ?1", table.name))
            .map_err(map_error)?
            .execute([row])
            .map_err(map_error)?;
    }
    Ok(())
}

fn insert_index_rows(
    connection: &Connection,
    row: i64,
    index: &IndexEntries,
) -> rusqlite::Result<()> {
    let patient_key = index.patient_key.0;
    if !index.tokens.is_empty() {
        let mut statement = connection.prepare_cached(
            "INSERT INTO idx_token (rid, param, h_code, h_system_code, h_system, code, patient_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        )?;
        for token in &index.tokens {
            let (code, system_code, system) = token.hashes();
            statement.execute(params![
                row,
                token.param.0,
                code,
                system_code,
                system,
                &*token.code,
                patient_key
            ])?;
        }
    }
    if !index.strings.is_empty() {
        let mut statement = connection.prepare_cached(
            "INSERT INTO idx_string (rid, param, normalized, exact, patient_key) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )?;
        for string in &index.strings {
            statement.execute(params![
                row,
                string.param.0,
                &*string.normalized,
                &*string.exact,
                patient_key
            ])?;
        }
    }
    if !index.dates.is_empty() {
        let mut statement = connection.prepare_cached(
            "INSERT INTO idx_date (rid, param, low, high, patient_key) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )?;
        for date in &index.dates {
            statement.execute(params![row, date.param.0, date.low, date.high, patient_key])?;
        }
    }
    if !index.numbers.is_empty() {
        let mut statement = connection.prepare_cached(
            "INSERT INTO idx_number (rid, param, value, low, high, patient_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )?;
        for number in &index.numbers {
            statement.execute(params![
                row,
                number.param.0,
                number.value,
                number.low,
                number.high,
                patient_key
            ])?;
        }
    }
    if !index.quantities.is_empty() {
        let mut statement = connection.prepare_cached(
            "INSERT INTO idx_quantity (rid, param, system, code, value, low, high, canonical_code, canonical_value, \
             canonical_low, canonical_high, patient_key, seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        for (seq, quantity) in index.quantities.iter().enumerate() {
            let canonical = quantity.canonical_columns();
            statement.execute(params![
                row,
                quantity.param.0,
                quantity.system.as_deref(),
                quantity.code.as_deref(),
                quantity.value,
                quantity.low,
                quantity.high,
                canonical.map(|c| c.code),
                canonical.map(|c| c.value),
                canonical.map(|c| c.low),
                canonical.map(|c| c.high),
                patient_key,
                seq as i64
            ])?;
        }
    }
    if !index.references.is_empty() {
        let mut statement = connection.prepare_cached(
            "INSERT INTO idx_reference (rid, param, target_type, target_id, url, version, patient_key, seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (seq, reference) in index.references.iter().enumerate() {
            statement.execute(params![
                row,
                reference.param.0,
                reference.target_type.as_deref(),
                reference.target_id.as_deref(),
                reference.url.as_deref(),
                reference.version.as_deref(),
                patient_key,
                seq as i64
            ])?;
        }
    }
    if !index.uris.is_empty() {
        let mut statement = connection.prepare_cached(
            "INSERT INTO idx_uri (rid, param, uri, patient_key) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )?;
        for uri in &index.uris {
            statement.execute(params![row, uri.param.0, &*uri.uri, patient_key])?;
        }
    }
    if !index.composites.is_empty() {
        let mut statement = connection.prepare_cached(
            "INSERT INTO idx_composite (rid, param, first_h_code, first_h_system_code, second_h_code, \
             second_h_system_code, second_value, second_low, second_high, second_text, patient_key, seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for (seq, composite) in index.composites.iter().enumerate() {
            let (first_code, first_system_code, _) = composite.first.hashes();
            let second = composite.second.columns();
            statement.execute(params![
                row,
                composite.param.0,
                first_code,
                first_system_code,
                second.h_code,
                second.h_system_code,
                second.value,
                second.low,
                second.high,
                second.text,
                patient_key,
                seq as i64
            ])?;
        }
    }
    Ok(())
}
