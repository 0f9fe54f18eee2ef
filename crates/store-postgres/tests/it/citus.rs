//! The store on a Citus cluster (decision 0025), against a real coordinator and two workers
//! (`test_support::citus_url` starts them): its tables distributed on the patient key and
//! co-located, a resident's rows on one shard and a resident's read planned on one shard, ids
//! unique across shards, a transaction over two residents' shards atomic, history and the
//! change log whole, a resident's writes and reads by id run on that resident's shards only,
//! and a resource whose subject becomes another resident moved there whole, or not at all.

use search::IndexEntries;
use search::index::ReferenceEntry;
use search::keys::{ParamKey, PatientKey};
use store::{Store, StoreError};
use test_support::TestDatabase;

use crate::support::*;

/// A fresh database on the cluster.
fn database() -> TestDatabase {
    TestDatabase::create_on(&test_support::citus_url())
}

/// The index of an Observation of `patient`: its key and its subject reference.
fn of_patient(patient: &str) -> IndexEntries {
    IndexEntries {
        patient_key: PatientKey::of_patient(patient),
        references: vec![ReferenceEntry {
            param: ParamKey::new("Observation", "subject"),
            target_type: Some("Patient".into()),
            target_id: Some(patient.into()),
            url: None,
            version: None,
        }],
        ..IndexEntries::default()
    }
}

fn observation(patient: &str) -> String {
    format!(r#"{{"resourceType":"Observation","subject":{{"reference":"Patient/{patient}"}}}}"#)
}

/// Creates Observation `id` of `patient` without reading it first, as a writer that did not
/// see another's create of the same id.
fn create_unread(
    tx: &mut dyn store::Transaction,
    id: &str,
    patient: &str,
) -> Result<i64, StoreError> {
    tx.put(store::VersionWrite {
        resource_type: "Observation",
        id,
        previous: None,
        version: 1,
        last_updated: 1,
        method: store::Method::Create,
        content: Some(observation(patient).as_bytes()),
        content_hash: 1,
        custodian: None,
        sensitivity: 0,
        index: &of_patient(patient),
    })
}

fn shard_of(database: &TestDatabase, table: &str, key: i64) -> i64 {
    database
        .connect()
        .query_one(
            "SELECT get_shard_id_for_distribution_column($1::text::regclass, $2::bigint)",
            &[&table, &key],
        )
        .unwrap()
        .get(0)
}

#[test]
fn the_tables_are_distributed_on_the_patient_key_and_a_residents_read_goes_to_one_shard() {
    let database = database();
    let store = open(&database, 4);
    let mut client = database.connect();
    let distributed: Vec<(String, String, i32)> = client
        .query(
            "SELECT logicalrelid::text, column_to_column_name(logicalrelid, partkey), colocationid \
             FROM pg_dist_partition ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let colocation = distributed
        .iter()
        .find(|(table, ..)| table == "resource")
        .expect("resource is distributed")
        .2;
    for table in [
        "resource",
        "version",
        "idx_token",
        "idx_string",
        "idx_date",
        "idx_number",
        "idx_quantity",
        "idx_reference",
        "idx_uri",
        "idx_composite",
    ] {
        assert!(
            distributed
                .iter()
                .any(|(t, column, c)| t == table && column == "patient_key" && *c == colocation),
            "{table} is not distributed on patient_key with resource: {distributed:?}"
        );
    }
    assert!(
        distributed
            .iter()
            .any(|(t, column, _)| t == "resource_locator" && column == "id")
    );

    // Two residents' records, written as the API writes them.
    for (patient, n) in [("alice", 5), ("bob", 3)] {
        let mut tx = store.begin().unwrap();
        put_in(
            &mut *tx,
            "Patient",
            patient,
            r#"{"resourceType":"Patient"}"#,
            &IndexEntries {
                patient_key: PatientKey::of_patient(patient),
                ..IndexEntries::default()
            },
        )
        .unwrap();
        for i in 0..n {
            put_in(
                &mut *tx,
                "Observation",
                &format!("{patient}-{i}"),
                &observation(patient),
                &of_patient(patient),
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    assert_eq!(
        content_of(&store.read("Observation", "alice-3").unwrap().unwrap()),
        observation("alice")
    );
    assert_eq!(store.read("Observation", "bob-3").unwrap(), None);

    // Every row of Alice's record, in every table, is on the shard of her key.
    let alice = PatientKey::of_patient("alice").0;
    let shard = shard_of(&database, "resource", alice);
    let placements: Vec<i64> = client
        .query(
            "SELECT DISTINCT get_shard_id_for_distribution_column('resource', patient_key) \
             FROM resource WHERE id LIKE 'alice%'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(placements, vec![shard]);
    assert_eq!(
        count(
            &database,
            &format!("SELECT count(*) FROM idx_reference WHERE patient_key = {alice}")
        ),
        5
    );

    // A resident's current resource, read by key, is planned on one shard.
    let plan: String = client
        .query(
            &format!(
                "EXPLAIN SELECT r.rid FROM resource r JOIN version v ON v.rid = r.rid \
                 AND v.patient_key = r.patient_key AND v.version = r.version \
                 WHERE r.patient_key = {alice} AND r.type = 'Observation'"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(plan.contains("Task Count: 1"), "{plan}");
}

#[test]
fn an_id_is_unique_across_shards() {
    let database = database();
    let store = open(&database, 4);
    let mut tx = store.begin().unwrap();
    put_in(
        &mut *tx,
        "Observation",
        "shared",
        &observation("alice"),
        &of_patient("alice"),
    )
    .unwrap();
    tx.commit().unwrap();
    // Another writer that did not see it creates the same id for another resident (its key,
    // so its shard, differs): the locator refuses it.
    let second = (|| {
        let mut tx = store.begin()?;
        create_unread(&mut *tx, "shared", "bob")?;
        tx.commit()
    })();
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    assert_eq!(count(&database, "SELECT count(*) FROM resource"), 1);
    assert_eq!(
        content_of(&store.read("Observation", "shared").unwrap().unwrap()),
        observation("alice")
    );
}

#[test]
fn a_transaction_over_two_residents_shards_commits_or_rolls_back_whole() {
    let database = database();
    let store = open(&database, 4);
    let (alice, bob) = (
        PatientKey::of_patient("alice").0,
        PatientKey::of_patient("bob").0,
    );
    assert_ne!(
        shard_of(&database, "resource", alice),
        shard_of(&database, "resource", bob),
        "the test needs the two residents on two shards"
    );
    put_with_retry(
        &store,
        "Observation",
        "b-0",
        &observation("bob"),
        &of_patient("bob"),
    );

    // Written on both shards, then refused: nothing of it stays.
    let failed = (|| {
        let mut tx = store.begin()?;
        put_in(
            &mut *tx,
            "Observation",
            "a-1",
            &observation("alice"),
            &of_patient("alice"),
        )?;
        put_in(
            &mut *tx,
            "Observation",
            "b-1",
            &observation("bob"),
            &of_patient("bob"),
        )?;
        tx.current("Observation", "a-1")?; // flushes both writes to their shards
        create_unread(&mut *tx, "b-0", "bob")?;
        tx.commit()
    })();
    assert!(failed.is_err(), "creating b-0 twice must fail");
    assert_eq!(store.read("Observation", "a-1").unwrap(), None);
    assert_eq!(store.read("Observation", "b-1").unwrap(), None);
    assert_eq!(count(&database, "SELECT count(*) FROM version"), 1);

    let mut tx = store.begin().unwrap();
    put_in(
        &mut *tx,
        "Observation",
        "a-1",
        &observation("alice"),
        &of_patient("alice"),
    )
    .unwrap();
    put_in(
        &mut *tx,
        "Observation",
        "b-1",
        &observation("bob"),
        &of_patient("bob"),
    )
    .unwrap();
    tx.commit().unwrap();
    assert!(store.read("Observation", "a-1").unwrap().is_some());
    assert!(store.read("Observation", "b-1").unwrap().is_some());
}

#[test]
fn history_and_the_change_log_are_whole_and_a_resource_moves_to_another_resident_whole() {
    let database = database();
    let store = open(&database, 4);
    for _ in 0..3 {
        put_with_retry(
            &store,
            "Observation",
            "o",
            &observation("alice"),
            &of_patient("alice"),
        );
    }
    let history = history_of(&store, "o");
    let versions: Vec<i64> = history.versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, vec![3, 2, 1]);
    let changes = store.changes(0, 100).unwrap();
    let logged: Vec<(String, i64)> = changes.iter().map(|c| (c.id.clone(), c.version)).collect();
    assert_eq!(
        logged,
        vec![("o".into(), 1), ("o".into(), 2), ("o".into(), 3)]
    );

    let alice = PatientKey::of_patient("alice").0;
    let bob = PatientKey::of_patient("bob").0;
    let rows_at = |table: &str, key: i64| {
        count(
            &database,
            &format!("SELECT count(*) FROM {table} WHERE patient_key = {key}"),
        )
    };

    // The subject changes to another resident in a transaction that does not commit: nothing
    // moves.
    {
        let mut tx = store.begin().unwrap();
        put_in(
            &mut *tx,
            "Observation",
            "o",
            &observation("bob"),
            &of_patient("bob"),
        )
        .unwrap();
        tx.current("Observation", "o").unwrap();
    }
    assert_eq!((rows_at("version", alice), rows_at("version", bob)), (3, 0));

    // It commits: the resource with its whole history moves to Bob's shard, its old index
    // rows go, its locator follows, and the change log still names every version.
    assert_eq!(
        put_with_retry(
            &store,
            "Observation",
            "o",
            &observation("bob"),
            &of_patient("bob")
        ),
        4
    );
    let current = store.read("Observation", "o").unwrap().unwrap();
    assert_eq!(
        (current.version, content_of(&current)),
        (4, observation("bob"))
    );
    for (table, at_alice, at_bob) in [
        ("resource", 0, 1),
        ("version", 0, 4),
        ("idx_reference", 0, 1),
        ("resource_locator", 0, 1),
    ] {
        assert_eq!(
            (rows_at(table, alice), rows_at(table, bob)),
            (at_alice, at_bob),
            "{table}"
        );
    }
    let history = history_of(&store, "o");
    let versions: Vec<(i64, String)> = history
        .versions
        .iter()
        .map(|v| (v.version, content_of(v)))
        .collect();
    assert_eq!(
        versions,
        vec![
            (4, observation("bob")),
            (3, observation("alice")),
            (2, observation("alice")),
            (1, observation("alice")),
        ]
    );
    let logged: Vec<i64> = store
        .changes(0, 100)
        .unwrap()
        .iter()
        .map(|c| c.version)
        .collect();
    assert_eq!(logged, vec![1, 2, 3, 4]);

    // A deletion (no content, so no key of its own) stays in the resident's shard.
    assert_eq!(delete(&store, "Observation", "o"), 5);
    let deleted = store.read("Observation", "o").unwrap().unwrap();
    assert_eq!(
        (deleted.version, deleted.method),
        (5, store::Method::Delete)
    );
    assert_eq!((rows_at("version", alice), rows_at("version", bob)), (0, 5));
}

/// Observation `id`'s versions, newest first.
fn history_of(store: &dyn Store, id: &str) -> store::HistoryPage {
    store
        .history(&store::HistoryQuery {
            scope: store::HistoryScope::Instance("Observation".into(), id.into()),
            since: None,
            at: None,
            count: 100,
            cursor: None,
            visibility: Default::default(),
        })
        .unwrap()
}

/// How many queries Citus ran on more than one shard in `database` since it started (its stat
/// counters on: `citus.enable_stat_counters`).
fn multi_shard_queries(database: &TestDatabase) -> i64 {
    count(
        database,
        "SELECT query_execution_multi_shard FROM citus_stat_counters WHERE name = current_database()",
    )
}

/// A store on a fresh database whose Citus statement counters are on ([`multi_shard_queries`]).
fn counted_store() -> (TestDatabase, store_postgres::PostgresStore) {
    let database = database();
    database
        .connect()
        .batch_execute(&format!(
            "ALTER DATABASE {} SET citus.enable_stat_counters = on",
            database.name()
        ))
        .unwrap();
    // The statistics keeper reads every shard, by design; it is not what is measured here.
    let store = open_without_keeper(&database, 2);
    (database, store)
}

#[test]
fn a_residents_writes_and_reads_by_id_run_on_that_residents_shards_only() {
    let (database, store) = counted_store();
    // Two residents, so that a statement that is not routed has more than one shard to reach.
    for patient in ["alice", "bob"] {
        put_with_retry(
            &store,
            "Observation",
            &format!("{patient}-1"),
            &observation(patient),
            &of_patient(patient),
        );
    }

    let before = multi_shard_queries(&database);
    // Alice's update, create, read by id and deletion: each statement goes to her shard (or
    // to the shard of an id's locator row), none to every shard.
    assert_eq!(
        put_with_retry(
            &store,
            "Observation",
            "alice-1",
            &observation("alice"),
            &of_patient("alice")
        ),
        2
    );
    put_with_retry(
        &store,
        "Observation",
        "alice-2",
        &observation("alice"),
        &of_patient("alice"),
    );
    assert_eq!(
        store
            .read("Observation", "alice-1")
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(delete(&store, "Observation", "alice-2"), 2);
    assert_eq!(multi_shard_queries(&database), before);
    // The counter counts: a read of every shard moves it.
    assert_eq!(count(&database, "SELECT count(*) FROM resource"), 3);
    assert!(multi_shard_queries(&database) > before);

    // What the routed statements wrote: Alice's old index rows replaced, her deleted
    // resource's removed, Bob's untouched; every version in the change log, in order.
    let alice = PatientKey::of_patient("alice").0;
    let bob = PatientKey::of_patient("bob").0;
    for (key, rows) in [(alice, 1), (bob, 1)] {
        assert_eq!(
            count(
                &database,
                &format!("SELECT count(*) FROM idx_reference WHERE patient_key = {key}")
            ),
            rows
        );
    }
    let logged: Vec<(String, i64)> = store
        .changes(0, 100)
        .unwrap()
        .iter()
        .map(|c| (c.id.clone(), c.version))
        .collect();
    assert_eq!(
        logged,
        vec![
            ("alice-1".into(), 1),
            ("bob-1".into(), 1),
            ("alice-1".into(), 2),
            ("alice-2".into(), 1),
            ("alice-2".into(), 2),
        ]
    );
}

/// The index of a Practitioner (in no patient's compartment): one identifier.
fn practitioner(value: &str) -> IndexEntries {
    IndexEntries {
        tokens: vec![search::index::TokenEntry {
            param: ParamKey::new("Practitioner", "identifier"),
            system: Some("urn:test".into()),
            code: value.into(),
        }],
        ..IndexEntries::default()
    }
}

#[test]
fn resources_outside_any_compartment_spread_over_the_shards_and_move_into_one() {
    let database = database();
    let store = open(&database, 4);
    let mut tx = store.begin().unwrap();
    for i in 0..40 {
        let id = format!("pr{i}");
        put_in(&mut *tx, "Practitioner", &id, "{}", &practitioner(&id)).unwrap();
    }
    tx.commit().unwrap();
    // Each its own negative key (a patient's is positive), its rows together under it, and
    // the keys on every shard, not all on key 0's.
    assert_eq!(
        count(
            &database,
            "SELECT count(DISTINCT patient_key) FROM resource WHERE patient_key < 0"
        ),
        40
    );
    assert_eq!(
        count(
            &database,
            "SELECT count(*) FROM idx_token t JOIN resource r \
             ON r.rid = t.rid AND r.patient_key = t.patient_key"
        ),
        40
    );
    assert_eq!(
        count(
            &database,
            "SELECT count(*) FROM resource r WHERE (r.id, r.type, r.patient_key) \
             IN (SELECT id, type, patient_key FROM resource_locator)"
        ),
        40
    );
    assert_eq!(
        count(
            &database,
            "SELECT count(DISTINCT get_shard_id_for_distribution_column('resource', patient_key)) \
             FROM resource"
        ),
        count(
            &database,
            "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'resource'::regclass"
        )
    );

    // Read, found, updated in place (the key is the resource's own, so it stays), deleted.
    let key = ParamKey::new("Practitioner", "identifier");
    let mut query = search::query::SearchQuery::of_type("Practitioner");
    query.filters = vec![search::query::Filter::Token {
        param: key,
        column: search::query::TokenColumn::SystemCode,
        hash: key.system_code_hash("urn:test", "pr7"),
    }];
    let found = store.search(&query).unwrap();
    assert_eq!(found.matches.len(), 1);
    assert_eq!(found.matches[0].id, "pr7");
    put_with_retry(
        &store,
        "Practitioner",
        "pr7",
        r#"{"active":true}"#,
        &practitioner("pr7"),
    );
    assert_eq!(
        content_of(&store.read("Practitioner", "pr7").unwrap().unwrap()),
        r#"{"active":true}"#
    );
    assert_eq!(
        count(
            &database,
            "SELECT count(*) FROM version WHERE patient_key IN \
             (SELECT patient_key FROM resource_locator WHERE id = 'pr7')"
        ),
        2
    );
    assert_eq!(count(&database, "SELECT count(*) FROM version"), 41);
    assert_eq!(delete(&store, "Practitioner", "pr8"), 2);
    assert!(
        store
            .read("Practitioner", "pr8")
            .unwrap()
            .unwrap()
            .is_deleted()
    );

    // A resource that enters a patient's compartment (a Person linked to its first Patient)
    // moves from its own key to the patient's, history whole.
    put_with_retry(
        &store,
        "Practitioner",
        "pr9",
        r#"{"v":2}"#,
        &of_patient("alice"),
    );
    assert_eq!(
        count(
            &database,
            &format!(
                "SELECT count(*) FROM version v JOIN resource r \
                 ON v.rid = r.rid AND v.patient_key = r.patient_key \
                 WHERE r.id = 'pr9' AND r.patient_key = {}",
                PatientKey::of_patient("alice").0
            )
        ),
        2
    );
}

#[test]
fn the_change_log_is_read_on_the_coordinator_and_older_changes_from_their_versions() {
    let (database, store) = counted_store();
    for (i, patient) in ["alice", "bob", "carol"].iter().enumerate() {
        let id = format!("o{i}");
        put_with_retry(
            &store,
            "Observation",
            &id,
            &observation(patient),
            &of_patient(patient),
        );
    }
    put_with_retry(
        &store,
        "Observation",
        "o0",
        &observation("alice"),
        &of_patient("alice"),
    );
    // Numbered on the first read, then read again: the second read asks no shard.
    let changes = store.changes(0, 100).unwrap();
    let before = multi_shard_queries(&database);
    assert_eq!(store.changes(0, 100).unwrap(), changes);
    assert_eq!(multi_shard_queries(&database), before);
    assert_eq!(
        changes
            .iter()
            .map(|c| (
                c.position,
                c.id.as_str(),
                c.version,
                c.resource_type.as_str()
            ))
            .collect::<Vec<_>>(),
        [
            (1, "o0", 1, "Observation"),
            (2, "o1", 1, "Observation"),
            (3, "o2", 1, "Observation"),
            (4, "o0", 2, "Observation")
        ]
    );
    // Changes as a store distributed by an earlier release wrote them (their sequence number
    // only) read the same, from their versions.
    database
        .connect()
        .execute(
            "UPDATE change SET rid = NULL, type = NULL, id = NULL, version = NULL, \
             method = NULL, last_updated = NULL WHERE position IN (2, 4)",
            &[],
        )
        .unwrap();
    assert_eq!(store.changes(0, 100).unwrap(), changes);
}
