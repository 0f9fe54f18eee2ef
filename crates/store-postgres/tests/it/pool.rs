//! The connection pool: callers wait for a connection rather than fail, and a connection that
//! broke is replaced rather than lent again.

use search::IndexEntries;
use store::{Store, StoreError};
use store_postgres::{PostgresConfig, PostgresStore};
use test_support::TestDatabase;

use crate::support::*;

#[test]
fn a_caller_waits_for_a_connection_when_the_pool_is_exhausted() {
    let database = TestDatabase::create();
    let store = open(&database, 1);
    let mut tx = store.begin().unwrap();
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| store.read("Patient", "p1"));
        // The reader is now blocked on the pool (not failed, not on the database).
        while store.pool_status().waiting == 0 {
            assert!(
                !reader.is_finished(),
                "the reader gave up instead of waiting"
            );
            std::thread::yield_now();
        }
        put_in(&mut *tx, "Patient", "p1", "{}", &IndexEntries::default()).unwrap();
        tx.commit().unwrap();
        // The reader ran only once the transaction gave the connection back, so it sees the
        // committed resource.
        let read = reader.join().unwrap().unwrap();
        assert_eq!(read.map(|r| r.version), Some(1));
    });
    assert_eq!(store.pool_status().open, 1);
}

#[test]
fn with_no_time_to_wait_an_exhausted_pool_answers_unavailable() {
    let database = TestDatabase::create();
    let mut config = PostgresConfig::new(database.url.clone());
    config.max_connections = 1;
    config.acquire_timeout = std::time::Duration::ZERO;
    let store = PostgresStore::open(config).unwrap();
    let tx = store.begin().unwrap();
    let error = store.read("Patient", "p1").unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    drop(tx);
    assert!(store.read("Patient", "p1").unwrap().is_none());
}

fn end_every_session(database: &TestDatabase) -> i64 {
    let ended: i64 = database
        .connect()
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()) ended",
            &[],
        )
        .unwrap()
        .get(0);
    ended
}

#[test]
fn a_connection_ended_by_the_server_is_replaced() {
    let database = TestDatabase::create();
    let store = open(&database, 1);
    put_with_retry(&store, "Patient", "p1", "{}", &IndexEntries::default());
    // At least the pool's connection (a session closed just before may still be leaving).
    assert!(end_every_session(&database) >= 1);

    // Reads and transactions go on, on a new connection.
    assert!(store.read("Patient", "p1").unwrap().is_some());
    assert!(end_every_session(&database) >= 1);
    put_with_retry(&store, "Patient", "p1", "{}", &IndexEntries::default());
    assert_eq!(store.read("Patient", "p1").unwrap().unwrap().version, 2);
    assert_eq!(store.pool_status().open, 1);
}

#[test]
fn a_transaction_whose_connection_breaks_fails_and_the_next_one_works() {
    let database = TestDatabase::create();
    let store = open(&database, 1);
    let mut tx = store.begin().unwrap();
    put_in(&mut *tx, "Patient", "p1", "{}", &IndexEntries::default()).unwrap();
    assert!(end_every_session(&database) >= 1);
    let error = tx.commit().unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(store.read("Patient", "p1").unwrap().is_none());
    put_with_retry(&store, "Patient", "p1", "{}", &IndexEntries::default());
    assert_eq!(store.read("Patient", "p1").unwrap().unwrap().version, 1);
}
