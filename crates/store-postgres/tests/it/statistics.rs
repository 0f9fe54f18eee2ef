//! The planner's statistics are the store's to keep fresh: taken when the store was empty and
//! then outgrown by writes (autovacuum is off on these machines), they are refreshed by the
//! store itself, and a read by id is planned on the unique index again.

use std::time::{Duration, Instant};

use store::Store;
use test_support::TestDatabase;

use crate::support::*;

/// The planner's row estimate of `table`.
fn estimated_rows(database: &TestDatabase, table: &str) -> f64 {
    let rows = database
        .connect()
        .query_one(
            "SELECT reltuples::float8 FROM pg_class WHERE oid = $1::text::regclass",
            &[&table],
        )
        .unwrap();
    rows.get(0)
}

fn plan(database: &TestDatabase, sql: &str) -> String {
    database
        .connect()
        .query(&format!("EXPLAIN {sql}"), &[])
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn statistics_taken_on_an_empty_store_are_refreshed_by_the_store_after_writes() {
    let database = TestDatabase::create();
    let store = open(&database, 4);
    // Statistics of the empty store, as an ANALYZE just after it was made leaves them.
    database.connect().batch_execute("ANALYZE").unwrap();
    assert!(estimated_rows(&database, "resource") < 1.0);

    // Three thousand resources written as the API writes them: small transactions.
    for batch in 0..30 {
        let mut tx = store.begin().unwrap();
        for n in 0..100 {
            let id = format!("p{}", batch * 100 + n);
            put_in(
                &mut *tx,
                "Patient",
                &id,
                r#"{"resourceType":"Patient"}"#,
                &identifier(&id),
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    // The store's keeper looks every few seconds; nothing else analyses here. It may look
    // while the writes are still coming; what it leaves behind is less than its threshold
    // (500 rows and a tenth of the table), so at least 2,000 of the 3,000 rows are counted.
    let deadline = Instant::now() + Duration::from_secs(60);
    let refreshed = || {
        estimated_rows(&database, "resource") >= 2_000.0
            && estimated_rows(&database, "idx_token") >= 2_000.0
    };
    while !refreshed() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        refreshed(),
        "the statistics were not refreshed: {} resources, {} token rows estimated",
        estimated_rows(&database, "resource"),
        estimated_rows(&database, "idx_token")
    );
    // A read by id goes by the unique index on type and id, not a walk of the type.
    let read = plan(
        &database,
        "SELECT r.rid FROM resource r JOIN version v ON v.rid = r.rid AND v.version = r.version \
         WHERE r.type = 'Patient' AND r.id = 'p1500'",
    );
    assert!(read.contains("resource_type_id"), "{read}");
    assert!(store.read("Patient", "p1500").unwrap().is_some());
}
