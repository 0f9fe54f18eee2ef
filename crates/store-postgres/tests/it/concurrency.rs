//! Concurrent writers: a race to create one id has one winner and one retryable loser, and
//! writers updating one resource are serialised so that no update is lost.

use std::collections::BTreeSet;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use store::{HistoryQuery, HistoryScope, Store, StoreError};
use test_support::TestDatabase;

use crate::support::*;

#[test]
fn two_creates_of_one_id_at_once_give_one_version_and_one_conflict() {
    let database = TestDatabase::create();
    let store = open(&database, 4);
    // Both transactions see the id absent before either writes: a true race.
    let barrier = Barrier::new(2);
    let results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["one", "two"]
            .into_iter()
            .map(|writer| {
                let store = &store;
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut tx = store.begin()?;
                    let seen = tx.current("Patient", "p1");
                    barrier.wait();
                    assert!(seen?.is_none());
                    put_in(
                        &mut *tx,
                        "Patient",
                        "p1",
                        &format!(r#"{{"writer":"{writer}"}}"#),
                        &identifier(writer),
                    )?;
                    tx.commit()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict(_))))
        .count();
    let successes = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((successes, conflicts), (1, 1), "{results:?}");

    // Nothing of the loser was written: one resource, one version, the winner's index rows.
    let winner = store.read("Patient", "p1").unwrap().unwrap();
    assert_eq!(winner.version, 1);
    assert_eq!(count(&database, "SELECT count(*) FROM resource"), 1);
    assert_eq!(count(&database, "SELECT count(*) FROM version"), 1);
    assert_eq!(count(&database, "SELECT count(*) FROM idx_token"), 1);

    // The loser runs again and becomes version 2.
    let version = put_with_retry(
        &store,
        "Patient",
        "p1",
        r#"{"writer":"again"}"#,
        &identifier("again"),
    );
    assert_eq!(version, 2);
    assert_eq!(
        count(&database, "SELECT count(*) FROM idx_token"),
        1,
        "old index rows are gone"
    );
}

#[test]
fn a_second_writer_of_a_resource_waits_for_the_first_and_then_sees_its_version() {
    let database = TestDatabase::create();
    let store = open(&database, 4);
    put_with_retry(&store, "Patient", "p1", "{}", &identifier("v1"));
    let mut first = store.begin().unwrap();
    put_in(&mut *first, "Patient", "p1", "{}", &identifier("v2")).unwrap();
    std::thread::scope(|scope| {
        let second = scope.spawn(|| {
            let mut tx = store.begin()?;
            let seen = tx.current("Patient", "p1")?.map(|r| r.version);
            put_in(&mut *tx, "Patient", "p1", "{}", &identifier("v3"))?;
            tx.commit()?;
            Ok::<_, StoreError>(seen)
        });
        // The second writer is blocked on the first's row lock, not failed.
        let admin = &mut database.connect();
        while admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
            == 0
        {
            assert!(!second.is_finished(), "the second writer did not wait");
        }
        first.commit().unwrap();
        assert_eq!(second.join().unwrap().unwrap(), Some(2));
    });
    assert_eq!(store.read("Patient", "p1").unwrap().unwrap().version, 3);
}

#[test]
fn concurrent_updates_of_one_resource_each_get_their_own_version() {
    let database = TestDatabase::create();
    let store = open(&database, 8);
    put_with_retry(
        &store,
        "Patient",
        "p1",
        r#"{"n":"start"}"#,
        &identifier("start"),
    );
    let (threads, updates) = (8, 10);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let store = &store;
            scope.spawn(move || {
                for update in 0..updates {
                    let marker = format!("{thread}-{update}");
                    put_with_retry(
                        store,
                        "Patient",
                        "p1",
                        &format!(r#"{{"n":"{marker}"}}"#),
                        &identifier(&marker),
                    );
                }
            });
        }
    });
    let total = threads * updates + 1;
    let current = store.read("Patient", "p1").unwrap().unwrap();
    assert_eq!(current.version, total as i64, "no update was lost");

    let history = store
        .history(&HistoryQuery {
            scope: HistoryScope::Instance("Patient".into(), "p1".into()),
            since: None,
            at: None,
            count: 1_000,
            cursor: None,
            visibility: Default::default(),
        })
        .unwrap();
    let versions: Vec<i64> = history.versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, (1..=total as i64).rev().collect::<Vec<_>>());
    // Every update's content is in exactly one version.
    let contents: BTreeSet<String> = history.versions.iter().map(content_of).collect();
    assert_eq!(contents.len(), total);
    for thread in 0..threads {
        for update in 0..updates {
            assert!(contents.contains(&format!(r#"{{"n":"{thread}-{update}"}}"#)));
        }
    }
    // Only the current version is indexed, and every older version was superseded.
    assert_eq!(count(&database, "SELECT count(*) FROM idx_token"), 1);
    assert_eq!(
        count(
            &database,
            "SELECT count(*) FROM version WHERE superseded IS NULL"
        ),
        1
    );
}

#[test]
fn a_transaction_that_failed_cannot_commit_part_of_its_work() {
    let database = TestDatabase::create();
    let store = open(&database, 2);
    put_with_retry(&store, "Patient", "taken", "{}", &identifier("taken"));
    let mut tx = store.begin().unwrap();
    put_in(&mut *tx, "Patient", "fresh", "{}", &identifier("fresh")).unwrap();
    // A create of an id this transaction never looked at is sent at once, and fails.
    let error = tx
        .put(store::VersionWrite {
            resource_type: "Patient",
            id: "taken",
            previous: None,
            version: 1,
            last_updated: 1,
            method: store::Method::Create,
            content: Some(b"{}"),
            content_hash: 0,
            custodian: None,
            sensitivity: 0,
            index: &identifier("x"),
        })
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    // The server's own words reach the log, not only the driver's "db error".
    assert!(error.to_string().contains("duplicate key value"), "{error}");
    // PostgreSQL would answer COMMIT in the aborted transaction with a silent rollback; the
    // store must say it failed.
    let commit = tx.commit().unwrap_err();
    assert!(commit.is_retryable(), "{commit:?}");
    assert!(store.read("Patient", "fresh").unwrap().is_none());
    assert_eq!(count(&database, "SELECT count(*) FROM version"), 1);
}

#[test]
fn a_bulk_create_that_lost_a_race_for_one_id_writes_nothing() {
    let database = TestDatabase::create();
    let store = open(&database, 4);
    let ids: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
    let keys: Vec<(&str, &str)> = ids.iter().map(|id| ("Patient", id.as_str())).collect();
    let mut bulk = store.begin().unwrap();
    assert!(
        bulk.current_many(&keys)
            .unwrap()
            .iter()
            .all(Option::is_none)
    );
    // Another writer creates one of the ids meanwhile.
    put_with_retry(&store, "Patient", "p57", "{}", &identifier("other"));
    for id in &ids {
        bulk.put(store::VersionWrite {
            resource_type: "Patient",
            id,
            previous: None,
            version: 1,
            last_updated: 1,
            method: store::Method::Create,
            content: Some(b"{}"),
            content_hash: 0,
            custodian: None,
            sensitivity: 0,
            index: &identifier(id),
        })
        .unwrap();
    }
    let error = bulk.commit().unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    assert_eq!(count(&database, "SELECT count(*) FROM resource"), 1);
    assert_eq!(count(&database, "SELECT count(*) FROM idx_token"), 1);
}

/// A reader of the change log that meets another reader numbering the changes it found
/// waiting (it waits for that reader's lock) still answers them: the ledger's catching up for
/// a checkpoint asked for just after a write once came back without the write, which the
/// keeper was numbering at that moment, and the checkpoint did not cover it.
#[test]
fn a_change_numbered_by_another_reader_while_this_one_waited_is_read() {
    let database = TestDatabase::create();
    let store = open(&database, 2);
    put_with_retry(
        &store,
        "Patient",
        "p1",
        r#"{"resourceType":"Patient"}"#,
        &identifier("p1"),
    );
    // Another reader, numbering under the sequencer's lock ("change l" in ASCII).
    let mut other = database.connect();
    let mut numbering = other.transaction().unwrap();
    numbering
        .batch_execute(
            "SELECT pg_advisory_xact_lock(7163082334141751404); \
             UPDATE change SET position = 1 WHERE position IS NULL",
        )
        .unwrap();
    std::thread::scope(|scope| {
        let reading = scope.spawn(|| store.changes(0, 100));
        // Until the store's reader waits for the lock.
        let deadline = Instant::now() + Duration::from_secs(30);
        while count(
            &database,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        ) == 0
        {
            assert!(Instant::now() < deadline, "the reader never waited");
            std::thread::sleep(Duration::from_millis(20));
        }
        numbering.commit().unwrap();
        let changes = reading.join().unwrap().unwrap();
        let read: Vec<(&str, i64)> = changes
            .iter()
            .map(|change| (change.id.as_str(), change.position))
            .collect();
        assert_eq!(read, vec![("p1", 1)]);
    });
}
