//! Writes as PostgreSQL stores them: content byte for byte, many resources in one transaction,
//! `current_many` in one statement, reindexing without a new version.

use search::IndexEntries;
use search::index::{
    CompositeEntry, CompositeSecond, DateEntry, NumberEntry, QuantityEntry, ReferenceEntry,
    StringEntry, TokenEntry, UriEntry,
};
use search::keys::{ParamKey, PatientKey};
use search::query::{Filter, SearchQuery, TokenColumn};
use store::{Method, Store, VersionWrite};
use test_support::TestDatabase;

use crate::support::*;

#[test]
fn content_reads_back_byte_for_byte() {
    let database = TestDatabase::create();
    let store = open(&database, 2);
    // Odd spacing, key order, escapes, non-ASCII text and a number with trailing zeros: none
    // of it may be normalised.
    let content =
        "{ \"resourceType\":\"Patient\",\n \"name\":[{\"text\":\"张三 \\u00e9\"}], \"x\":1.50 }";
    put_with_retry(&store, "Patient", "p1", content, &IndexEntries::default());
    let record = store.read("Patient", "p1").unwrap().unwrap();
    assert_eq!(record.content.as_deref(), Some(content.as_bytes()));
}

fn identifier_filter(value: &str) -> Filter {
    let key = ParamKey::new("Patient", "identifier");
    Filter::Token {
        param: key,
        column: TokenColumn::SystemCode,
        hash: key.system_code_hash("urn:test", value),
    }
}

#[test]
fn a_batch_of_writes_in_one_transaction_lands_whole_and_in_order() {
    let database = TestDatabase::create();
    let store = open(&database, 2);
    put_with_retry(&store, "Patient", "p3", "{}", &identifier("old"));
    let ids: Vec<String> = (0..600).map(|i| format!("p{i}")).collect();
    let keys: Vec<(&str, &str)> = ids.iter().map(|id| ("Patient", id.as_str())).collect();
    let indexes: Vec<IndexEntries> = ids.iter().map(|id| identifier(id)).collect();

    let mut tx = store.begin().unwrap();
    let current = tx.current_many(&keys).unwrap();
    assert_eq!(current.len(), 600);
    assert_eq!(current[3].as_ref().map(|r| r.version), Some(1));
    assert!(
        current
            .iter()
            .enumerate()
            .all(|(i, c)| c.is_some() == (i == 3))
    );
    let mut rows = Vec::new();
    for ((id, previous), index) in ids.iter().zip(&current).zip(&indexes) {
        let version = previous.as_ref().map_or(1, |p| p.version + 1);
        rows.push(
            tx.put(VersionWrite {
                resource_type: "Patient",
                id,
                previous: previous.as_ref(),
                version,
                last_updated: 5_000,
                method: if previous.is_some() {
                    Method::Update
                } else {
                    Method::Create
                },
                content: Some(id.as_bytes()),
                content_hash: 0,
                custodian: None,
                sensitivity: 0,
                index,
            })
            .unwrap(),
        );
    }
    // Nothing is visible outside the transaction before the commit.
    assert!(store.read("Patient", "p0").unwrap().is_none());
    tx.commit().unwrap();

    assert_eq!(count(&database, "SELECT count(*) FROM resource"), 600);
    assert_eq!(count(&database, "SELECT count(*) FROM idx_token"), 600);
    let p3 = store.read("Patient", "p3").unwrap().unwrap();
    assert_eq!((p3.version, p3.row), (2, rows[3]));
    let mut query = SearchQuery::of_type("Patient");
    query.filters = vec![identifier_filter("p599")];
    let found = store.search(&query).unwrap();
    assert_eq!(found.matches.len(), 1);
    assert_eq!(found.matches[0].row, rows[599]);
    query.filters = vec![identifier_filter("old")];
    assert!(store.search(&query).unwrap().matches.is_empty());
    // History lists the batch in the order it was written, newest first.
    let history = store
        .history(&store::HistoryQuery {
            scope: store::HistoryScope::Type("Patient".into()),
            since: Some(5_000),
            at: None,
            count: 2,
            cursor: None,
            visibility: Default::default(),
        })
        .unwrap();
    let newest: Vec<&str> = history.versions.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(newest, ["p599", "p598"]);
}

#[test]
fn current_many_answers_in_the_order_asked_with_repeats_and_gaps() {
    let database = TestDatabase::create();
    let store = open(&database, 2);
    put_with_retry(&store, "Patient", "a", "a", &IndexEntries::default());
    put_with_retry(&store, "Observation", "b", "b", &IndexEntries::default());
    let mut tx = store.begin().unwrap();
    let found = tx
        .current_many(&[
            ("Observation", "b"),
            ("Patient", "missing"),
            ("Patient", "a"),
            ("Observation", "a"),
            ("Observation", "b"),
        ])
        .unwrap();
    let described: Vec<Option<String>> = found
        .iter()
        .map(|r| r.as_ref().map(|r| format!("{}/{}", r.resource_type, r.id)))
        .collect();
    assert_eq!(
        described,
        [
            Some("Observation/b".to_owned()),
            None,
            Some("Patient/a".to_owned()),
            None,
            Some("Observation/b".to_owned())
        ]
    );
}

#[test]
fn reindexing_replaces_index_rows_and_compartment_without_a_new_version() {
    reindex_on(TestDatabase::create());
}

/// The same on Citus, where the new compartment is another shard: the resource moves there.
#[test]
fn reindexing_into_another_compartment_moves_the_resource_on_citus() {
    reindex_on(TestDatabase::create_on(&test_support::citus_url()));
}

fn reindex_on(database: TestDatabase) {
    let store = open(&database, 2);
    put_with_retry(&store, "Patient", "p1", "{}", &identifier("before"));
    let row = store.read("Patient", "p1").unwrap().unwrap().row;
    let mut index = identifier("after");
    index.patient_key = PatientKey::of_patient("other");
    let mut tx = store.begin().unwrap();
    tx.replace_index(row, &index).unwrap();
    tx.set_checkpoint("reindex", Some("42")).unwrap();
    tx.commit().unwrap();

    let mut query = SearchQuery::of_type("Patient");
    query.filters = vec![identifier_filter("after")];
    assert_eq!(store.search(&query).unwrap().matches.len(), 1);
    query.filters = vec![identifier_filter("before")];
    assert!(store.search(&query).unwrap().matches.is_empty());
    assert_eq!(store.read("Patient", "p1").unwrap().unwrap().version, 1);
    let key = PatientKey::of_patient("other").0;
    assert_eq!(
        count(
            &database,
            &format!("SELECT count(*) FROM version WHERE patient_key = {key}")
        ),
        1
    );
    assert_eq!(
        count(
            &database,
            &format!("SELECT count(*) FROM resource WHERE patient_key = {key}")
        ),
        1
    );
    // One resource row and one version in all, none left behind in the old compartment.
    for table in ["resource", "version"] {
        assert_eq!(
            count(&database, &format!("SELECT count(*) FROM {table}")),
            1
        );
    }
    assert_eq!(store.checkpoint("reindex").unwrap().as_deref(), Some("42"));
    let mut tx = store.begin().unwrap();
    tx.set_checkpoint("reindex", None).unwrap();
    tx.commit().unwrap();
    assert_eq!(store.checkpoint("reindex").unwrap(), None);
}

/// One entry of every kind, with a duplicate of each deduplicated kind and a null in each
/// nullable column somewhere.
fn every_kind() -> IndexEntries {
    let key = |code: &str| ParamKey::new("Observation", code);
    let token = TokenEntry {
        param: key("code"),
        system: Some("http://loinc.org".into()),
        code: "8480-6".into(),
    };
    let no_system = TokenEntry {
        param: key("status"),
        system: None,
        code: "final".into(),
    };
    let string = StringEntry {
        param: key("text"),
        normalized: "zhang san".into(),
        exact: "张三".into(),
    };
    let date = DateEntry {
        param: key("date"),
        low: i64::MIN,
        high: 1_000,
    };
    let number = NumberEntry {
        param: key("n"),
        value: 1.5,
        low: 1.45,
        high: 1.55,
    };
    let uri = UriEntry {
        param: key("_profile"),
        uri: "http://example.org/p".into(),
    };
    IndexEntries {
        patient_key: PatientKey::of_patient("p1"),
        tokens: vec![token.clone(), no_system, token.clone()],
        strings: vec![string.clone(), string],
        dates: vec![date, date],
        numbers: vec![number, number],
        quantities: vec![
            QuantityEntry {
                param: key("value-quantity"),
                system: Some("http://unitsofmeasure.org".into()),
                code: Some("mm[Hg]".into()),
                value: 120.0,
                low: 119.5,
                high: 120.5,
                canonical: Some(("g.m-1.s-2".into(), 15998.64)),
            },
            QuantityEntry {
                param: key("value-quantity"),
                system: None,
                code: None,
                value: 0.0,
                low: -0.5,
                high: 0.5,
                canonical: None,
            },
        ],
        references: vec![
            ReferenceEntry {
                param: key("subject"),
                target_type: Some("Patient".into()),
                target_id: Some("p1".into()),
                url: None,
                version: None,
            },
            ReferenceEntry {
                param: key("instantiates"),
                target_type: None,
                target_id: None,
                url: Some("http://example.org/q".into()),
                version: Some("1.0".into()),
            },
        ],
        uris: vec![uri.clone(), uri],
        composites: vec![
            CompositeEntry {
                param: key("code-value-quantity"),
                first: token.clone(),
                second: CompositeSecond::Range {
                    value: 120.0,
                    low: 119.5,
                    high: 120.5,
                    unit: None,
                },
            },
            CompositeEntry {
                param: key("code-value-concept"),
                first: token.clone(),
                second: CompositeSecond::Token(token.clone()),
            },
            CompositeEntry {
                param: key("code-value-string"),
                first: token,
                second: CompositeSecond::String("high".into()),
            },
        ],
    }
}

/// The index rows of one resource, without their row key, in a stable order.
fn index_rows(database: &TestDatabase, table: &str, row: i64) -> Vec<String> {
    database
        .connect()
        .query(
            &format!(
                "SELECT (to_jsonb(t) - 'rid')::text AS j FROM {table} t WHERE rid = $1 ORDER BY j"
            ),
            &[&row],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn a_large_flush_by_copy_writes_the_same_rows_as_a_small_one() {
    let database = TestDatabase::create();
    let store = open(&database, 2);
    let index = every_kind();
    // One resource alone goes in the single statement; forty at once go by COPY.
    put_with_retry(&store, "Observation", "alone", "{}", &index);
    let ids: Vec<String> = (0..40).map(|i| format!("bulk{i}")).collect();
    let keys: Vec<(&str, &str)> = ids.iter().map(|id| ("Observation", id.as_str())).collect();
    let mut tx = store.begin().unwrap();
    tx.current_many(&keys).unwrap();
    for id in &ids {
        tx.put(VersionWrite {
            resource_type: "Observation",
            id,
            previous: None,
            version: 1,
            last_updated: 1_000,
            method: Method::Create,
            content: Some(b"{}"),
            content_hash: 1,
            custodian: None,
            sensitivity: 0,
            index: &index,
        })
        .unwrap();
    }
    tx.commit().unwrap();

    let alone = store.read("Observation", "alone").unwrap().unwrap().row;
    let bulk = store.read("Observation", "bulk0").unwrap().unwrap().row;
    for table in store_sql::tables::INDEX_TABLES.map(|table| table.name) {
        let expected = index_rows(&database, table, alone);
        assert!(!expected.is_empty(), "{table}");
        assert_eq!(index_rows(&database, table, bulk), expected, "{table}");
    }
    // Duplicates were written once: 2 tokens, 1 string, 1 date, 1 number, 1 uri.
    let rows = |table: &str| index_rows(&database, table, alone).len();
    assert_eq!(
        [
            rows("idx_token"),
            rows("idx_string"),
            rows("idx_date"),
            rows("idx_number"),
            rows("idx_uri")
        ],
        [2, 1, 1, 1, 1]
    );
    assert_eq!(
        [
            rows("idx_quantity"),
            rows("idx_reference"),
            rows("idx_composite")
        ],
        [2, 2, 3]
    );
}
