//! How much work a search costs, counted in SQLite virtual-machine steps (deterministic, unlike
//! time): no single resource may make a page cost more than a bounded multiple of its rows.

use rusqlite::{Connection, StatementStatus, params_from_iter};
use search::IndexEntries;
use search::index::{DateEntry, QuantityEntry, ReferenceEntry, StringEntry, TokenEntry};
use search::keys::ParamKey;
use search::parse::values::{Prefix, decimal_range, number_predicate};
use search::query::{
    CursorValue, Filter, IndexTable, QuantityUnits, ReferenceTarget, SearchQuery, SortBy, SortKey,
    StringTest, TokenColumn,
};
use store::{Method, Store, StoreError, VersionRecord, VersionWrite};
use store_sql::{Dialect, SortValueKind, Sql, SqlRunner};

use crate::{Durability, SqliteConfig, SqliteStore};

/// A store whose Patient `many` has `names` family names, all starting with "fam", before
/// (in name order) twenty Patients with one such name each: a walk along the names passes
/// every one of `many`'s names before it reaches the others.
fn store_with(names: usize, dir: &std::path::Path) -> SqliteStore {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let store = SqliteStore::open(SqliteConfig {
        path: dir.join("t.db"),
        durability: Durability::Normal,
        max_readers: 2,
    })
    .unwrap();
    let family = ParamKey::new("Patient", "family");
    let entry = |text: String| StringEntry {
        param: family,
        normalized: text.clone().into(),
        exact: text.into(),
    };
    // As the indexer writes them, each name is also a row of `name` and of `given`: a
    // resource's rows of other parameters sit beside its family names in the table.
    let others = |text: String| {
        ["name", "given"].map(|code| StringEntry {
            param: ParamKey::new("Patient", code),
            normalized: text.clone().into(),
            exact: text.clone().into(),
        })
    };
    let mut tx = store.begin().unwrap();
    let mut put = |id: &str, strings: Vec<StringEntry>, at: i64| {
        let index = IndexEntries {
            strings,
            ..IndexEntries::default()
        };
        tx.put(VersionWrite {
            resource_type: "Patient",
            id,
            previous: None,
            version: 1,
            last_updated: at,
            method: Method::Create,
            content: Some(b"{}"),
            content_hash: 1,
            custodian: None,
            sensitivity: 0,
            index: &index,
        })
        .unwrap();
    };
    put(
        "many",
        (0..names)
            .flat_map(|i| {
                let text = format!("fam{i:05}");
                std::iter::once(entry(text.clone())).chain(others(text))
            })
            .collect(),
        1,
    );
    for i in 0..20 {
        put(&format!("p{i}"), vec![entry(format!("famz{i:05}"))], 2 + i);
    }
    tx.commit().unwrap();
    store
}

/// Virtual-machine steps of the first page of `family=fam` (a walk along the name index).
fn steps_of_name_walk(names: usize, dir: &std::path::Path) -> u64 {
    let store = store_with(names, dir);
    let mut query = SearchQuery::of_type("Patient");
    query.filters.push(Filter::String {
        param: ParamKey::new("Patient", "family"),
        test: StringTest::Prefix("fam".into()),
    });
    query.count = 10;
    let page = page_of(&query, dir, 11);
    assert!(page.text.contains("NOT EXISTS"), "a walk: {}", page.text);
    drop(store);
    page.steps
}

/// The page statement a search ran and the virtual-machine steps it took.
struct Page {
    text: String,
    steps: u64,
}

/// Runs the search on its own connection to the store in `dir`, as the store runs it (plan,
/// render, run), checks its page statement answers `rows` rows, and answers that statement and
/// its steps.
fn page_of(query: &SearchQuery, dir: &std::path::Path, rows: usize) -> Page {
    /// Runs the page statement on its own (not the cache's) statement, to read its steps.
    struct Measured {
        connection: Connection,
        page: Option<(Page, usize)>,
    }
    impl SqlRunner for Measured {
        fn integers(&mut self, sql: &Sql) -> Result<Vec<i64>, StoreError> {
            let mut statement = self.connection.prepare(&sql.text).unwrap();
            let integers = statement
                .query_map(
                    params_from_iter(crate::read::to_sqlite(&sql.params)),
                    |row| row.get::<_, i64>(0),
                )
                .unwrap()
                .map(Result::unwrap)
                .collect();
            Ok(integers)
        }

        fn page_rows(
            &mut self,
            sql: &Sql,
            kinds: &[SortValueKind],
        ) -> Result<Vec<(i64, Vec<CursorValue>)>, StoreError> {
            let mut statement = self.connection.prepare(&sql.text).unwrap();
            let answered: Vec<i64> = statement
                .query_map(
                    params_from_iter(crate::read::to_sqlite(&sql.params)),
                    |row| row.get::<_, i64>(0),
                )
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let steps = statement.get_status(StatementStatus::VmStep) as u64;
            let text = sql.text.clone();
            self.page = Some((Page { text, steps }, answered.len()));
            let no_values = vec![CursorValue::Null; kinds.len()];
            Ok(answered
                .into_iter()
                .map(|row| (row, no_values.clone()))
                .collect())
        }

        fn records(&mut self, _rows: &[i64]) -> Result<Vec<VersionRecord>, StoreError> {
            Ok(Vec::new())
        }
    }
    let mut runner = Measured {
        connection: Connection::open(dir.join("t.db")).unwrap(),
        page: None,
    };
    store_sql::search(&mut runner, query, Dialect::Sqlite).unwrap();
    let (page, answered) = runner.page.expect("a page statement ran");
    assert_eq!(answered, rows, "{}", page.text);
    page
}

/// Regression: a Patient with 10,000 names made `family=` with one match take 30 s on SQLite,
/// the walk reading every one of the resource's names for each of them. Twenty times the names
/// must cost at most about twenty times the work (it cost 400 times).
#[test]
fn a_resource_with_many_names_costs_a_name_walk_linear_work() {
    let dir = std::env::temp_dir().join(format!("meridian-walk-cost-{}", std::process::id()));
    let few = steps_of_name_walk(100, &dir);
    let many = steps_of_name_walk(2_000, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        many < few * 30,
        "100 names: {few} steps, 2,000 names: {many} steps"
    );
}

/// A fresh store in `dir` holding Observations `o0`, `o1`, ... (`count` of them), each with
/// the index entries `index` gives for its number.
fn store_of_observations(
    dir: &std::path::Path,
    count: usize,
    index: impl Fn(usize) -> IndexEntries,
) -> SqliteStore {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let store = SqliteStore::open(SqliteConfig {
        path: dir.join("t.db"),
        durability: Durability::Normal,
        max_readers: 2,
    })
    .unwrap();
    let mut tx = store.begin().unwrap();
    for i in 0..count {
        tx.put(VersionWrite {
            resource_type: "Observation",
            id: &format!("o{i}"),
            previous: None,
            version: 1,
            last_updated: i as i64,
            method: Method::Create,
            content: Some(b"{}"),
            content_hash: 1,
            custodian: None,
            sensitivity: 0,
            index: &index(i),
        })
        .unwrap();
    }
    tx.commit().unwrap();
    store
}

/// Virtual-machine steps of one patient's laboratory results sorted by date
/// (`Observation?patient=p&category=laboratory&_sort=date`), with `others` laboratory results
/// of other patients in the store.
fn steps_of_sorted_patient_search(others: usize, dir: &std::path::Path) -> u64 {
    let patient = ParamKey::new("Observation", "patient");
    let category = ParamKey::new("Observation", "category");
    let date = ParamKey::new("Observation", "date");
    let store = store_of_observations(dir, 50 + others, |i| {
        let subject = if i < 50 { "p" } else { "q" };
        IndexEntries {
            tokens: vec![TokenEntry {
                param: category,
                system: None,
                code: "laboratory".into(),
            }],
            references: vec![ReferenceEntry {
                param: patient,
                target_type: Some("Patient".into()),
                target_id: Some(format!("{subject}{}", i % 7).into()),
                url: None,
                version: None,
            }],
            dates: vec![DateEntry {
                param: date,
                low: i as i64 * 1_000,
                high: i as i64 * 1_000 + 999,
            }],
            ..IndexEntries::default()
        }
    });
    let mut query = SearchQuery::of_type("Observation");
    query.filters.push(Filter::Reference {
        param: patient,
        target: ReferenceTarget::Local {
            types: vec!["Patient".into(), "Group".into()],
            id: "p0".into(),
        },
    });
    query.filters.push(Filter::Token {
        param: category,
        column: TokenColumn::Code,
        hash: category.code_hash("laboratory"),
    });
    query.sort.push(SortKey {
        by: SortBy::Param {
            params: vec![date],
            table: IndexTable::Date,
        },
        descending: false,
    });
    query.count = 5;
    // Patient p0 has observations 0, 7, ..., 49: eight of them.
    let page = page_of(&query, dir, 6);
    drop(store);
    page.steps
}

/// Regression: a patient's 1,277 laboratory results sorted by date took 0.45-0.69 s on SQLite
/// (14 s for 2,122 of them on the Synthea sample): SQLite looked up every pair of the patient's
/// observations and the region's laboratory results. One patient's sorted page must not cost
/// more with more of other patients' results in the store.
#[test]
fn a_sorted_patient_search_costs_the_same_whatever_other_patients_hold() {
    let dir = std::env::temp_dir().join(format!("meridian-sort-cost-{}", std::process::id()));
    let few = steps_of_sorted_patient_search(100, &dir);
    let many = steps_of_sorted_patient_search(2_000, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        many < few * 2,
        "100 other results: {few} steps, 2,000: {many} steps"
    );
}

/// Virtual-machine steps of `Observation?value-quantity=70` with five Observations of 70 among
/// `others` of other values.
fn steps_of_quantity_search(others: usize, dir: &std::path::Path) -> u64 {
    let value_quantity = ParamKey::new("Observation", "value-quantity");
    let store = store_of_observations(dir, 5 + others, |i| {
        // Stored as the indexer stores `72.0`: the value, and the range its precision implies.
        let value = if i < 5 { 70.0 } else { 100.0 + i as f64 };
        IndexEntries {
            quantities: vec![QuantityEntry {
                param: value_quantity,
                system: None,
                code: Some("kg".into()),
                value,
                low: value - 0.05,
                high: value + 0.05,
                canonical: None,
            }],
            ..IndexEntries::default()
        }
    });
    let (value, low, high) = decimal_range("70").unwrap();
    let mut query = SearchQuery::of_type("Observation");
    query.filters.push(Filter::Quantity {
        param: value_quantity,
        predicate: number_predicate(Prefix::Eq, value, low, high),
        units: QuantityUnits::Any,
    });
    query.count = 10;
    let page = page_of(&query, dir, 5);
    drop(store);
    page.steps
}

/// Regression: `value-quantity=70` took 641 ms for a page at ten times the Synthea sample: the
/// quantity index was keyed by the low end of each value's precision, and every comparison is
/// on the value, so every quantity of the parameter was read. The same five matches must cost
/// about the same however many other values the store holds.
#[test]
fn a_quantity_comparison_costs_the_same_whatever_other_values_the_store_holds() {
    let dir = std::env::temp_dir().join(format!("meridian-quantity-cost-{}", std::process::id()));
    let few = steps_of_quantity_search(100, &dir);
    let many = steps_of_quantity_search(2_000, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        many < few * 2,
        "100 other values: {few} steps, 2,000: {many} steps"
    );
}
