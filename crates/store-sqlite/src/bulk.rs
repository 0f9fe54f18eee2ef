//! Bulk loads into an empty store: the search-only secondary indexes are dropped for the load
//! and built at its end by sorting, which is several times cheaper than inserting every entry
//! at a random place in a B-tree that no longer fits in the cache (docs/decisions/0008).
//!
//! The deferral is a row in `checkpoint`, committed with the drop and deleted with the last
//! build, so a load that dies half-way leaves a store that builds its indexes when next opened.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use store::StoreError;

use crate::map_error;
use crate::schema::deferrable_indexes;

/// The page cache while indexes are built, in SQLite's units (negative: KiB).
const BUILD_CACHE_SIZE: i64 = -32_768;

/// The checkpoint row that says the indexes are deferred.
const DEFERRED: &str = "bulk-load:deferred-indexes";

/// Drops the deferrable indexes if the store holds no resource; answers whether it did.
pub(crate) fn begin(connection: &mut Connection) -> Result<bool, StoreError> {
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_error)?;
    let empty: bool = tx
        .query_row("SELECT NOT EXISTS (SELECT 1 FROM resource)", [], |row| {
            row.get(0)
        })
        .map_err(map_error)?;
    if !empty {
        return Ok(false);
    }
    for (name, _) in deferrable_indexes() {
        tx.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))
            .map_err(map_error)?;
    }
    tx.execute(
        "INSERT INTO checkpoint (name, value) VALUES (?1, 'yes') \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [DEFERRED],
    )
    .map_err(map_error)?;
    tx.commit().map_err(map_error)?;
    tracing::info!("bulk load into an empty store: search indexes deferred to its end");
    Ok(true)
}

/// Builds the deferred indexes, if any are. Each index is built and committed on its own, so
/// an interrupted build resumes where it stopped.
pub(crate) fn end(connection: &mut Connection) -> Result<(), StoreError> {
    let deferred = connection
        .query_row(
            "SELECT 1 FROM checkpoint WHERE name = ?1",
            [DEFERRED],
            |_| Ok(()),
        )
        .optional()
        .map_err(map_error)?
        .is_some();
    if !deferred {
        return Ok(());
    }
    let started = std::time::Instant::now();
    // The sorter behind CREATE INDEX gets a helper thread (the build is the only work left),
    // buffers of up to the page cache's size each, and spills to temporary files: a smaller
    // cache, temporary files on disk and no memory map (the build reads every table once)
    // keep the import's memory where it was during the load: with SQLite's in-memory
    // temporary files, the sorted runs of a million-resource load took over a gigabyte.
    let pragma = |name: &str| -> Result<i64, StoreError> {
        connection
            .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
            .map_err(map_error)
    };
    let (cache_size, temp_store, mmap_size) = (
        pragma("cache_size")?,
        pragma("temp_store")?,
        pragma("mmap_size")?,
    );
    connection
        .execute_batch(&format!(
            "PRAGMA threads = 2; PRAGMA cache_size = {BUILD_CACHE_SIZE}; PRAGMA temp_store = FILE; \
             PRAGMA mmap_size = 0"
        ))
        .map_err(map_error)?;
    let built = build(connection);
    connection
        .execute_batch(&format!(
            "PRAGMA threads = 0; PRAGMA cache_size = {cache_size}; PRAGMA temp_store = {temp_store}; \
             PRAGMA mmap_size = {mmap_size}"
        ))
        .map_err(map_error)?;
    built?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "search indexes deferred by a bulk load built"
    );
    Ok(())
}

fn build(connection: &Connection) -> Result<(), StoreError> {
    for (_, definition) in deferrable_indexes() {
        let definition = definition.replacen("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1);
        connection.execute_batch(&definition).map_err(map_error)?;
    }
    connection
        .execute("DELETE FROM checkpoint WHERE name = ?1", [DEFERRED])
        .map_err(map_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use store::Store;

    use super::*;
    use crate::{Durability, SqliteConfig, SqliteStore};

    fn config(name: &str) -> (std::path::PathBuf, SqliteConfig) {
        let dir = std::env::temp_dir().join(format!("meridian-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = SqliteConfig {
            path: dir.join("t.db"),
            durability: Durability::Normal,
            max_readers: 2,
        };
        (dir, config)
    }

    /// The definitions of the deferrable indexes present in the database, by name.
    fn indexes(path: &std::path::Path) -> Vec<(String, String)> {
        let connection = Connection::open(path).unwrap();
        let mut statement = connection
            .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .filter(|(name, _): &(String, String)| {
                deferrable_indexes().iter().any(|(n, _)| n == name)
            })
            .collect()
    }

    fn expected() -> Vec<(String, String)> {
        let mut all: Vec<_> = deferrable_indexes()
            .iter()
            .map(|(name, sql)| (name.to_string(), sql.to_string()))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn the_deferrable_indexes_are_the_ones_the_migrations_made() {
        let (dir, config) = config("bulk-schema");
        let store = SqliteStore::open(config.clone()).unwrap();
        assert_eq!(indexes(&config.path), expected());
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_load_that_dies_before_its_end_has_its_indexes_built_at_the_next_open() {
        let (dir, config) = config("bulk-crash");
        let store = SqliteStore::open(config.clone()).unwrap();
        assert!(store.begin_bulk_load().unwrap());
        assert!(
            indexes(&config.path).is_empty(),
            "the load runs without them"
        );
        // The process dies: no end_bulk_load.
        drop(store);
        let store = SqliteStore::open(config.clone()).unwrap();
        assert_eq!(indexes(&config.path), expected());
        assert_eq!(store.checkpoint(DEFERRED).unwrap(), None);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
