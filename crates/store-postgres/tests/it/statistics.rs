//! The planner's statistics are the store's to keep fresh: taken when the store was empty and
//! then outgrown by writes (autovacuum is off on these machines), they are refreshed by the
//! store itself, and a read by id is planned on the unique index again; the pages written are
//! vacuumed, so index-only scans of them read no heap page.

use std::collections::BTreeMap;
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

/// The share of `table`'s pages its visibility map marks all visible (which a vacuum does):
/// an index-only scan reads the heap page of every row on a page not so marked.
fn visible_share(database: &TestDatabase, table: &str) -> f64 {
    let row = database
        .connect()
        .query_one(
            "SELECT relallvisible::float8 / greatest(pg_relation_size(oid) / 8192, 1)::float8 \
             FROM pg_class WHERE oid = $1::text::regclass",
            &[&table],
        )
        .unwrap();
    row.get(0)
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
            && visible_share(&database, "idx_token") >= 0.5
    };
    while !refreshed() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        refreshed(),
        "the statistics were not refreshed: {} resources, {} token rows estimated, {} of the \
         token rows' pages marked all visible",
        estimated_rows(&database, "resource"),
        estimated_rows(&database, "idx_token"),
        visible_share(&database, "idx_token")
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

/// How many times each of the store's tables was read whole, once every other connection to
/// `database` has closed (a closing connection hands its counts on as it ends).
fn table_scans(database: &TestDatabase) -> BTreeMap<String, i64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let others = count(
            database,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
        if others == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{others} connections stay open");
        std::thread::sleep(Duration::from_millis(50));
    }
    per_table(
        database,
        "SELECT relname::text, seq_scan FROM pg_stat_user_tables",
    )
}

/// A figure for each table (`query` answers its name and the figure).
fn per_table(database: &TestDatabase, query: &str) -> BTreeMap<String, i64> {
    database
        .connect()
        .query(query, &[])
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Writes find the rows they change by key, and so do a read of the change log and a batched
/// read of versions and leaves: on a store never analysed, as every store is in its first
/// seconds, none of them reads a table whole.
/// Plans made while the tables were small did, and kept doing so at every write while the
/// tables grew, until their next analysis: on a new store under 64 clients, 67 million rows
/// read in 15 s.
#[test]
fn writes_and_reads_by_key_read_no_table_whole_on_a_store_never_analysed() {
    let database = TestDatabase::create();
    // Opened once for its schema, whose making may read tables whole.
    drop(open(&database, 2));
    let before = table_scans(&database);

    let store = open(&database, 2);
    // Each created, then each changed (its index rows replaced).
    for suffix in ["", "-changed"] {
        for n in 0..300 {
            let id = format!("p{n}");
            let value = format!("{id}{suffix}");
            let content = r#"{"resourceType":"Patient"}"#;
            put_with_retry(&store, "Patient", &id, content, &identifier(&value));
        }
    }
    for n in (0..300).step_by(3) {
        delete(&store, "Patient", &format!("p{n}"));
    }
    let mut after = 0;
    let mut read = 0;
    loop {
        let page = store.changes(after, 50).unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        read += page.len();
    }
    assert_eq!(read, 700, "every version is in the change log");
    // As the ledger keeper reads what the log names: versions and leaves a batch at a time.
    let ids: Vec<String> = (0..300).map(|n| format!("p{n}")).collect();
    let keys: Vec<(&str, &str, i64)> = ids.iter().map(|id| ("Patient", id.as_str(), 1)).collect();
    let versions = store.read_versions(&keys).unwrap();
    assert!(
        versions.iter().all(Option::is_some),
        "every first version is read"
    );
    let leaves = store.ledger_leaves_of(&keys).unwrap();
    assert!(leaves.iter().all(Option::is_none), "nothing was logged");
    drop(store);

    let scanned: Vec<String> = table_scans(&database)
        .into_iter()
        // Opening reads which migrations the schema has had, a row each.
        .filter(|(table, _)| table != "schema_version")
        .filter_map(|(table, scans)| {
            let more = scans - before.get(&table).copied().unwrap_or(0);
            (more > 0).then(|| format!("{table} ({more} times)"))
        })
        .collect();
    assert!(scanned.is_empty(), "read whole: {}", scanned.join(", "));
}

/// Index entries read, by table, from PostgreSQL's statistics of its indexes.
fn index_entries_read(database: &TestDatabase) -> BTreeMap<String, i64> {
    per_table(
        database,
        "SELECT relname::text, sum(idx_tup_read)::bigint FROM pg_stat_user_indexes GROUP BY relname",
    )
}

/// Writes read the rows of their keys by key on a store whose statistics were taken while it
/// was empty and not since (the store's keeper off, as when analysis lags a burst), however
/// long one connection lives. A write's locked read, joined, was planned at the first write to
/// walk the resource table's key index in row-key order, testing every key against every row;
/// looked up apart, its keys were found in the index on type and row key, every resource of
/// the type read for each, by a plan made while the table was small and kept: a bulk load of
/// the Synthea sample took 903 s (22 s with fresh statistics). A connection's plans are now
/// made again as the pool's writes double, so the reads of its early plans are bounded by the
/// size at which PostgreSQL tells the two indexes apart (about 500 rows here), not by the
/// store's.
#[test]
fn writes_read_their_keys_by_key_on_a_store_analysed_while_empty() {
    const WRITES: i64 = 2_000;
    let database = TestDatabase::create();
    drop(open(&database, 2));
    database.connect().batch_execute("ANALYZE").unwrap();
    let before = index_entries_read(&database);
    let store = open_without_keeper(&database, 1);
    let content = r#"{"resourceType":"Patient"}"#;
    for n in 0..WRITES {
        let id = format!("p{n}");
        put_with_retry(&store, "Patient", &id, content, &identifier(&id));
    }
    drop(store);
    // Reported by each session as it ends.
    table_scans(&database);
    let read =
        index_entries_read(&database)["resource"] - before.get("resource").copied().unwrap_or(0);
    // Every resource of the type read at every write is WRITES² / 2.
    assert!(
        read < WRITES * WRITES / 8,
        "{read} index entries of the resource table read by {WRITES} writes"
    );
}
