//! Helpers: a store on a fresh database with chosen settings, and small writes.

use search::IndexEntries;
use search::index::TokenEntry;
use search::keys::{ParamKey, PatientKey};
use store::{Method, Store, StoreError, Transaction, VersionRecord, VersionWrite};
use store_postgres::{PostgresConfig, PostgresStore};
use test_support::TestDatabase;

/// A store on `database` with `max_connections` connections.
pub fn open(database: &TestDatabase, max_connections: usize) -> PostgresStore {
    let mut config = PostgresConfig::new(database.url.clone());
    config.max_connections = max_connections;
    PostgresStore::open(config).expect("the store opens")
}

/// As [`open`], the store's statistics keeper off: the planner's statistics are whatever the
/// test leaves them.
pub fn open_without_keeper(database: &TestDatabase, max_connections: usize) -> PostgresStore {
    let mut config = PostgresConfig::new(database.url.clone());
    config.max_connections = max_connections;
    config.keep_statistics = false;
    PostgresStore::open(config).expect("the store opens")
}

/// An index with one token `Patient.identifier = urn:test|value`.
pub fn identifier(value: &str) -> IndexEntries {
    IndexEntries {
        patient_key: PatientKey::of_patient("p"),
        tokens: vec![TokenEntry {
            param: ParamKey::new("Patient", "identifier"),
            system: Some("urn:test".into()),
            code: value.into(),
        }],
        ..IndexEntries::default()
    }
}

/// Writes the next version of `Type/id` inside `tx`, based on what `tx` reads now.
pub fn put_in(
    tx: &mut dyn Transaction,
    resource_type: &str,
    id: &str,
    content: &str,
    index: &IndexEntries,
) -> Result<i64, StoreError> {
    let previous = tx.current(resource_type, id)?;
    let version = previous.as_ref().map_or(1, |p| p.version + 1);
    tx.put(VersionWrite {
        resource_type,
        id,
        previous: previous.as_ref(),
        version,
        last_updated: version * 1_000,
        method: if previous.is_some() {
            Method::Update
        } else {
            Method::Create
        },
        content: Some(content.as_bytes()),
        content_hash: version,
        custodian: None,
        sensitivity: 0,
        index,
    })?;
    Ok(version)
}

/// Writes the next version in a transaction of its own, running it again while it conflicts
/// (as the repository does). Answers the version written.
pub fn put_with_retry(
    store: &dyn Store,
    resource_type: &str,
    id: &str,
    content: &str,
    index: &IndexEntries,
) -> i64 {
    loop {
        let attempt = (|| {
            let mut tx = store.begin()?;
            let version = put_in(&mut *tx, resource_type, id, content, index)?;
            tx.commit()?;
            Ok::<_, StoreError>(version)
        })();
        match attempt {
            Ok(version) => return version,
            Err(error) if error.is_retryable() => continue,
            Err(error) => panic!("writing {resource_type}/{id}: {error}"),
        }
    }
}

/// Deletes `resource_type/id` as its next version in a transaction of its own; answers the
/// version (a deletion has no content, so no patient key of its own).
pub fn delete(store: &dyn Store, resource_type: &str, id: &str) -> i64 {
    let mut tx = store.begin().unwrap();
    let previous = tx.current(resource_type, id).unwrap().unwrap();
    let version = previous.version + 1;
    tx.put(VersionWrite {
        resource_type,
        id,
        previous: Some(&previous),
        version,
        last_updated: version * 1_000,
        method: Method::Delete,
        content: None,
        content_hash: 0,
        custodian: None,
        sensitivity: 0,
        index: &IndexEntries::default(),
    })
    .unwrap();
    tx.commit().unwrap();
    version
}

/// One integer from a query on the database itself.
pub fn count(database: &TestDatabase, sql: &str) -> i64 {
    database.connect().query_one(sql, &[]).unwrap().get(0)
}

pub fn content_of(record: &VersionRecord) -> String {
    String::from_utf8(record.content.clone().expect("content")).unwrap()
}
