//! Migrations run at start-up, once, however many stores open the database at once.

use std::sync::Barrier;

use search::IndexEntries;
use store::Store;
use test_support::TestDatabase;

use crate::support::*;

#[test]
fn opening_a_migrated_database_again_keeps_its_data_and_migrates_nothing() {
    let database = TestDatabase::create();
    let first = open(&database, 2);
    put_with_retry(&first, "Patient", "p1", "{}", &IndexEntries::default());
    let versions = count(&database, "SELECT count(*) FROM schema_version");
    drop(first);

    let second = open(&database, 2);
    assert_eq!(
        count(&database, "SELECT count(*) FROM schema_version"),
        versions
    );
    let record = second.read("Patient", "p1").unwrap().unwrap();
    assert_eq!(record.version, 1);
    // Row keys of the second store continue past the first's.
    let mut tx = second.begin().unwrap();
    put_in(&mut *tx, "Patient", "p2", "{}", &IndexEntries::default()).unwrap();
    tx.commit().unwrap();
    let p2 = second.read("Patient", "p2").unwrap().unwrap();
    assert!(p2.row > record.row, "{} then {}", record.row, p2.row);
}

#[test]
fn stores_opening_a_fresh_database_at_once_migrate_it_once() {
    let database = TestDatabase::create();
    let openers = 4;
    let barrier = Barrier::new(openers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..openers)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    open(&database, 1).ping()
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap().unwrap();
        }
    });
    let applied: Vec<i64> = database
        .connect()
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(applied, (1..=applied.len() as i64).collect::<Vec<_>>());
    assert!(!applied.is_empty());
}
