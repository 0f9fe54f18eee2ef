//! Sorting with keyset cursors, includes and the patient compartment, on every backend.

use search::IndexEntries;
use search::keys::{ParamKey, PatientKey};
use search::query::{
    Bound, Comparison, Cursor, CursorValue, Filter, Include, IndexTable, RangeColumn,
    RangePredicate, SearchQuery, SortBy, SortKey, StringTest, WalkPosition,
};
use store::SearchPage;
use store::StoreError;
use test_support::contract_tests;

use crate::support::*;

fn search(store: &dyn store::Store, query: &SearchQuery) -> SearchPage {
    store.search(query).unwrap()
}

/// Follows next links to the end, returning ids in order.
fn all_pages(store: &dyn store::Store, mut query: SearchQuery) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let page = search(store, &query);
        seen.extend(page.matches.iter().map(|r| r.id.clone()));
        match page.next {
            Some(cursor) => {
                // The cursor survives its text form, as next links carry it.
                query.cursor = Some(Cursor::decode(&cursor.encode()).unwrap());
            }
            None => return seen,
        }
    }
}

fn dated(id: &str, low: Option<i64>) -> IndexEntries {
    entries(|e| {
        if let Some(low) = low {
            e.dates.push(date("Observation", "date", low, low + 9));
        }
        e.strings.push(string("Observation", "code-text", id));
    })
}

fn name_prefix(prefix: &str) -> Filter {
    Filter::String {
        param: ParamKey::new("Patient", "name"),
        test: StringTest::Prefix(prefix.into()),
    }
}

/// Patients whose names start with "sm", in an order unlike their row order: `a` has two such
/// names, `c` the same normalised name twice, `x` none.
fn named_patients(store: &dyn store::Store) {
    let names: [(&str, &[&str]); 6] = [
        ("a", &["Smythe", "Smith"]),
        ("b", &["Smart"]),
        ("c", &["Smith", "SMITH"]),
        ("x", &["Jones"]),
        ("d", &["Small"]),
        ("e", &["Smith"]),
    ];
    for (i, (id, names)) in names.iter().enumerate() {
        let index = entries(|e| {
            for name in *names {
                e.strings.push(string("Patient", "name", name));
            }
        });
        put(store, "Patient", id, &index, i as i64);
    }
}

contract_tests! {
    fn a_walk_along_names_returns_each_resource_once_in_name_order(store) {
        named_patients(&***store);
        let mut query = SearchQuery::of_type("Patient");
        query.filters = vec![name_prefix("sm")];
        query.count = 2;
        // small, smart, smith (a, c, e by row), smythe (a again: already returned).
        assert_eq!(all_pages(&***store, query.clone()), ["d", "b", "a", "c", "e"]);
        // A write after the first page lands after the cursor and is found; one that sorts
        // before it is not (it did not exist when the walk passed its place).
        let first = search(&***store, &query);
        assert_eq!(ids(&first.matches), ["d", "b"]);
        put(&***store, "Patient", "f", &entries(|e| e.strings.push(string("Patient", "name", "Smyth"))), 10);
        put(&***store, "Patient", "g", &entries(|e| e.strings.push(string("Patient", "name", "Smaa"))), 11);
        query.cursor = first.next;
        let mut rest = Vec::new();
        loop {
            let page = search(&***store, &query);
            rest.extend(page.matches.iter().map(|r| r.id.clone()));
            match page.next {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
        }
        assert_eq!(rest, ["a", "c", "e", "f"]);
    }

    fn a_walk_along_dates_returns_each_resource_once(store) {
        // Ranges that end in another order than they start; `b` has two matching rows.
        let rows: [(&str, &[(i64, i64)]); 5] = [
            ("a", &[(50, 90)]),
            ("b", &[(10, 70), (60, 65)]),
            ("c", &[(5, 8)]),
            ("d", &[(40, 60)]),
            ("e", &[(20, 60)]),
        ];
        for (i, (id, ranges)) in rows.iter().enumerate() {
            let index = entries(|e| {
                for (low, high) in *ranges {
                    e.dates.push(date("Observation", "date", *low, *high));
                }
            });
            put(&***store, "Observation", id, &index, i as i64);
        }
        let mut query = SearchQuery::of_type("Observation");
        query.count = 1;
        // ge 30: ends at or after 30 (every range here that ends then also starts before it).
        query.filters = vec![Filter::Date {
            param: ParamKey::new("Observation", "date"),
            predicate: RangePredicate { any_of: vec![vec![(RangeColumn::High, Comparison::Ge, Bound::Integer(30))]] },
            single: false,
        }];
        // By the end of their range, then row: d and e end at 60, b's first matching end is 65.
        assert_eq!(all_pages(&***store, query.clone()), ["d", "e", "b", "a"]);
        // lt 15: starts before 15, walked along the starts.
        query.filters = vec![Filter::Date {
            param: ParamKey::new("Observation", "date"),
            predicate: RangePredicate { any_of: vec![vec![(RangeColumn::Low, Comparison::Lt, Bound::Integer(15))]] },
            single: false,
        }];
        assert_eq!(all_pages(&***store, query), ["c", "b"]);
    }

    fn a_date_walk_bounded_by_a_single_valued_parameter_finds_every_match(store) {
        // `ge` day 100 and `lt` day 200 of a parameter with one value a resource: the store
        // walks rows of at most a day only up to day 201, and the wider rows apart.
        const DAY: i64 = 86_400_000_000;
        let rows: [(&str, i64, i64); 9] = [
            ("before", 10 * DAY, 20 * DAY),
            ("open-start", i64::MIN, 120 * DAY),
            ("n1", 150 * DAY, 150 * DAY + 5),
            ("n2", 199 * DAY + 1, 199 * DAY + 10),
            // Starts just before the bound and spans a day less a microsecond: narrow.
            ("edge", 200 * DAY - 1, 201 * DAY - 2),
            ("late", 250 * DAY, 250 * DAY + 1),
            ("wide", 50 * DAY, 300 * DAY),
            ("open-end", 150 * DAY, i64::MAX),
            ("wide-late", 210 * DAY, 400 * DAY),
        ];
        for (i, (id, low, high)) in rows.iter().enumerate() {
            let index = entries(|e| e.dates.push(date("Observation", "date", *low, *high)));
            put(&***store, "Observation", id, &index, i as i64);
        }
        let filter = |column, comparison, bound, single| Filter::Date {
            param: ParamKey::new("Observation", "date"),
            predicate: RangePredicate { any_of: vec![vec![(column, comparison, Bound::Integer(bound))]] },
            single,
        };
        for single in [true, false] {
            for count in [1, 2, 10] {
                let mut query = SearchQuery::of_type("Observation");
                query.count = count;
                query.filters = vec![
                    filter(RangeColumn::High, Comparison::Ge, 100 * DAY, single),
                    filter(RangeColumn::Low, Comparison::Lt, 200 * DAY, single),
                ];
                assert_eq!(
                    all_pages(&***store, query),
                    ["open-start", "n1", "n2", "edge", "wide", "open-end"],
                    "single {single}, pages of {count}"
                );
            }
        }
    }

    fn a_walk_along_a_chain_returns_each_referrer_once(store) {
        named_patients(&***store);
        let subject = |target: &str| reference("Observation", "subject", "Patient", target);
        // o1 points at two matching patients, o2 twice at one, o3 at the one that does not match.
        let observations: [(&str, &[&str]); 6] = [
            ("o1", &["e", "a"]),
            ("o2", &["b", "b"]),
            ("o3", &["x"]),
            ("o4", &["a"]),
            ("o5", &["d"]),
            ("o6", &["e"]),
        ];
        for (i, (id, targets)) in observations.iter().enumerate() {
            let index = entries(|e| {
                for target in *targets {
                    e.references.push(subject(target));
                }
            });
            put(&***store, "Observation", id, &index, 10 + i as i64);
        }
        let mut query = SearchQuery::of_type("Observation");
        query.count = 2;
        query.filters = vec![Filter::Chain {
            param: ParamKey::new("Observation", "subject"),
            target_types: vec!["Patient".into()],
            filter: Box::new(name_prefix("sm")),
        }];
        // By target in row order (a, b, d, e), then referrer: o1 with a, its first target.
        assert_eq!(all_pages(&***store, query), ["o1", "o4", "o2", "o5", "o6"]);
    }

    fn a_chain_with_thousands_of_targets_walks_them_in_order(store) {
        // More targets than the planner reads as a set (5,000): they are found in order.
        let gender = |value: &str| entries(|e| e.tokens.push(token("Patient", "gender", None, value)));
        let mut tx = store.begin().unwrap();
        for i in 0..5_200 {
            let value = if i % 50 == 7 { "male" } else { "female" };
            put_in(&mut *tx, "Patient", &format!("p{i:04}"), &gender(value), 1).unwrap();
        }
        tx.commit().unwrap();
        let subject = |target: &str| entries(|e| e.references.push(reference("Observation", "subject", "Patient", target)));
        // p0007 is male; the others' row order is their number's.
        for (id, target) in [("o1", "p5000"), ("o2", "p0007"), ("o3", "p0003"), ("o4", "p5000"), ("o5", "p2000"), ("o6", "p0003")] {
            put(&***store, "Observation", id, &subject(target), 2);
        }
        let key = ParamKey::new("Patient", "gender");
        let mut query = SearchQuery::of_type("Observation");
        query.count = 2;
        query.filters = vec![Filter::Chain {
            param: ParamKey::new("Observation", "subject"),
            target_types: vec!["Patient".into()],
            filter: Box::new(Filter::Token { param: key, column: search::query::TokenColumn::Code, hash: key.code_hash("female") }),
        }];
        assert_eq!(all_pages(&***store, query), ["o3", "o6", "o5", "o1", "o4"]);
    }

    fn a_cursor_naming_another_walk_is_refused(store) {
        named_patients(&***store);
        let mut query = SearchQuery::of_type("Patient");
        query.filters = vec![name_prefix("sm")];
        query.count = 2;
        let forged = |filter, value| Cursor { after_row: 1, sort_values: Vec::new(), walk: Some(WalkPosition { filter, value }) };
        query.cursor = Some(forged(3, CursorValue::Text("sm".into())));
        assert!(matches!(store.search(&query), Err(StoreError::InvalidCursor)));
        query.cursor = Some(forged(0, CursorValue::Integer(7)));
        assert!(matches!(store.search(&query), Err(StoreError::InvalidCursor)));
        query.cursor = Some(forged(0, CursorValue::Text("smart".into())));
        assert!(store.search(&query).is_ok());
    }

    fn sorting_pages_through_ties_and_missing_values(store) {
        // Several share a date; two have none and come last in both directions.
        let dates = [("a", Some(30)), ("b", Some(10)), ("c", None), ("d", Some(30)), ("e", Some(20)), ("f", None), ("g", Some(10))];
        for (i, (id, low)) in dates.iter().enumerate() {
            put(&***store, "Observation", id, &dated(id, *low), i as i64);
        }
        let date_key = ParamKey::new("Observation", "date");
        let mut query = SearchQuery::of_type("Observation");
        query.count = 2;
        query.sort = vec![SortKey { by: SortBy::Param { params: vec![date_key], table: IndexTable::Date }, descending: false }];
        assert_eq!(all_pages(&***store, query.clone()), ["b", "g", "e", "a", "d", "c", "f"]);
        query.sort[0].descending = true;
        assert_eq!(all_pages(&***store, query.clone()), ["a", "d", "e", "b", "g", "c", "f"]);
        query.sort.push(SortKey { by: SortBy::Id, descending: true });
        assert_eq!(all_pages(&***store, query.clone()), ["d", "a", "e", "g", "b", "f", "c"]);
        query.sort = vec![SortKey { by: SortBy::LastUpdated, descending: true }];
        assert_eq!(all_pages(&***store, query), ["g", "f", "e", "d", "c", "b", "a"]);
    }

    fn includes_and_revincludes_follow_references(store) {
        put(&***store, "Patient", "p1", &IndexEntries::default(), 1);
        put(&***store, "Practitioner", "dr", &IndexEntries::default(), 2);
        let observation = entries(|e| {
            e.references.push(reference("Observation", "subject", "Patient", "p1"));
            e.references.push(reference("Observation", "performer", "Practitioner", "dr"));
        });
        put(&***store, "Observation", "o1", &observation, 3);
        let mut query = SearchQuery::of_type("Observation");
        query.include = vec![Include { params: vec![ParamKey::new("Observation", "subject")], target_type: None, iterate: false }];
        let page = search(&***store, &query);
        assert_eq!(ids(&page.matches), ["o1"]);
        assert_eq!(ids(&page.included), ["p1"]);
        query.include = vec![Include { params: Vec::new(), target_type: None, iterate: false }];
        let page = search(&***store, &query);
        let mut everything: Vec<&str> = ids(&page.included);
        everything.sort();
        assert_eq!(everything, ["dr", "p1"], "no parameters means every reference");
        query.include[0].target_type = Some("Practitioner".into());
        assert_eq!(ids(&search(&***store, &query).included), ["dr"]);

        let mut patients = SearchQuery::of_type("Patient");
        patients.revinclude = vec![Include { params: vec![ParamKey::new("Observation", "subject")], target_type: None, iterate: false }];
        let page = search(&***store, &patients);
        assert_eq!(ids(&page.included), ["o1"]);
        // Iterating: from the patient to its observation, then to the observation's performer.
        patients.include = vec![Include { params: vec![ParamKey::new("Observation", "performer")], target_type: None, iterate: true }];
        let page = search(&***store, &patients);
        let mut found: Vec<&str> = ids(&page.included);
        found.sort();
        assert_eq!(found, ["dr", "o1"]);
    }

    fn the_patient_compartment_holds_what_points_at_the_patient(store) {
        let key = PatientKey::of_patient("p1");
        put(&***store, "Patient", "p1", &IndexEntries { patient_key: key, ..IndexEntries::default() }, 1);
        put(&***store, "Patient", "p2", &IndexEntries { patient_key: PatientKey::of_patient("p2"), ..IndexEntries::default() }, 2);
        let mut keyed = entries(|e| e.references.push(reference("Observation", "subject", "Patient", "p1")));
        keyed.patient_key = key;
        put(&***store, "Observation", "o1", &keyed, 3);
        // A performer reference puts it in the compartment even though its key is another's.
        let mut performed = entries(|e| e.references.push(reference("Observation", "performer", "Patient", "p1")));
        performed.patient_key = PatientKey::of_patient("p2");
        put(&***store, "Observation", "o2", &performed, 4);
        put(&***store, "Practitioner", "dr", &IndexEntries::default(), 5);
        let mut query = SearchQuery::of_type("");
        query.types.clear();
        query.filters = vec![Filter::PatientCompartment {
            id: "p1".into(),
            key,
            params: vec![ParamKey::new("Observation", "subject"), ParamKey::new("Observation", "performer")],
        }];
        assert_eq!(ids(&search(&***store, &query).matches), ["p1", "o1", "o2"]);
    }
}
