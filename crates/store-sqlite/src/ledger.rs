//! The verifiable log's leaves and tiles (`store_sql::tables::LEDGER_LEAF`, `LEDGER_TILE`).
//! SQLite's one writer appends alone, so the log's lock has nothing to add here.

use rusqlite::{Connection, OptionalExtension, params};
use store::{LedgerLeaf, StoreError};

use crate::map_error;

pub(crate) fn size(connection: &Connection) -> Result<u64, StoreError> {
    connection
        .prepare_cached("SELECT coalesce(max(idx) + 1, 0) FROM ledger_leaf")
        .map_err(map_error)?
        .query_row([], |row| row.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(map_error)
}

pub(crate) fn tile(
    connection: &Connection,
    level: u32,
    index: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    connection
        .prepare_cached("SELECT hashes FROM ledger_tile WHERE level = ?1 AND idx = ?2")
        .map_err(map_error)?
        .query_row(params![level, index as i64], |row| row.get(0))
        .optional()
        .map_err(map_error)
}

fn leaf(row: &rusqlite::Row<'_>) -> rusqlite::Result<LedgerLeaf> {
    Ok(LedgerLeaf {
        index: row.get::<_, i64>(0)? as u64,
        row: row.get(1)?,
        resource_type: row.get(2)?,
        id: row.get(3)?,
        version: row.get(4)?,
        input: row.get(5)?,
    })
}

pub(crate) fn leaves(
    connection: &Connection,
    start: u64,
    end: u64,
) -> Result<Vec<LedgerLeaf>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT idx, rid, type, id, version, input FROM ledger_leaf \
             WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
        )
        .map_err(map_error)?;
    let rows = statement
        .query_map(params![start as i64, end as i64], leaf)
        .map_err(map_error)?;
    rows.collect::<rusqlite::Result<_>>().map_err(map_error)
}

pub(crate) fn leaf_of(
    connection: &Connection,
    resource_type: &str,
    id: &str,
    version: i64,
) -> Result<Option<LedgerLeaf>, StoreError> {
    connection
        .prepare_cached(
            "SELECT l.idx, l.rid, l.type, l.id, l.version, l.input \
             FROM resource r JOIN ledger_leaf l ON l.rid = r.rid \
             WHERE r.type = ?1 AND r.id = ?2 AND l.version = ?3",
        )
        .map_err(map_error)?
        .query_row(params![resource_type, id, version], leaf)
        .optional()
        .map_err(map_error)
}

pub(crate) fn put(
    connection: &Connection,
    leaves: &[LedgerLeaf],
    tiles: &[(u32, u64, &[u8])],
) -> Result<(), StoreError> {
    let mut insert = connection
        .prepare_cached(
            "INSERT INTO ledger_leaf (idx, rid, type, id, version, input) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(map_error)?;
    for leaf in leaves {
        insert
            .execute(params![
                leaf.index as i64,
                leaf.row,
                leaf.resource_type,
                leaf.id,
                leaf.version,
                leaf.input
            ])
            .map_err(map_error)?;
    }
    let mut upsert = connection
        .prepare_cached(
            "INSERT INTO ledger_tile (level, idx, hashes) VALUES (?1, ?2, ?3) \
             ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes",
        )
        .map_err(map_error)?;
    for (level, index, hashes) in tiles {
        upsert
            .execute(params![level, *index as i64, hashes])
            .map_err(map_error)?;
    }
    Ok(())
}
