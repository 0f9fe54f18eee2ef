//! Search: every filter kind of the intermediate form means the same on every backend.

use search::IndexEntries;
use search::index::{CompositeEntry, CompositeSecond, TokenEntry};
use search::keys::ParamKey;
use search::query::{
    Bound, Comparison, CompositeTest, Filter, IndexTable, RangeColumn, RangePredicate,
    ReferenceTarget, SearchQuery, StringTest, TokenColumn, TotalMode,
};
use test_support::contract_tests;

use crate::support::*;

fn observation(code: &str, system: &str, subject: &str, low: i64, high: i64) -> IndexEntries {
    entries(|e| {
        e.tokens
            .push(token("Observation", "code", Some(system), code));
        e.references
            .push(reference("Observation", "subject", "Patient", subject));
        e.dates.push(date("Observation", "date", low, high));
    })
}

fn load(store: &dyn store::Store) {
    put(
        store,
        "Patient",
        "p1",
        &entries(|e| {
            e.strings.push(string("Patient", "name", "Émile Zola"));
            e.tokens.push(token(
                "Patient",
                "gender",
                Some("http://hl7.org/fhir/administrative-gender"),
                "male",
            ));
        }),
        1,
    );
    put(
        store,
        "Patient",
        "p2",
        &entries(|e| {
            e.strings.push(string("Patient", "name", "Marie Curie"));
            e.tokens.push(token(
                "Patient",
                "gender",
                Some("http://hl7.org/fhir/administrative-gender"),
                "female",
            ));
        }),
        2,
    );
    put(
        store,
        "Observation",
        "o1",
        &observation("8480-6", "http://loinc.org", "p1", 100, 199),
        3,
    );
    put(
        store,
        "Observation",
        "o2",
        &observation("8462-4", "http://loinc.org", "p1", 200, 299),
        4,
    );
    put(
        store,
        "Observation",
        "o3",
        &observation("8480-6", "http://example.org", "p2", 300, 399),
        5,
    );
}

fn run(store: &dyn store::Store, resource_type: &str, filters: Vec<Filter>) -> Vec<String> {
    let mut query = SearchQuery::of_type(resource_type);
    query.filters = filters;
    query.count = 100;
    let page = store.search(&query).unwrap();
    ids(&page.matches).into_iter().map(str::to_owned).collect()
}

fn code(column: TokenColumn, system: &str, value: &str) -> Filter {
    let key = ParamKey::new("Observation", "code");
    let hash = match column {
        TokenColumn::Code => key.code_hash(value),
        TokenColumn::SystemCode => key.system_code_hash(system, value),
        TokenColumn::System => key.system_hash(system),
    };
    Filter::Token {
        param: key,
        column,
        hash,
    }
}

fn date_predicate(column: RangeColumn, comparison: Comparison, value: i64) -> Filter {
    Filter::Date {
        param: ParamKey::new("Observation", "date"),
        predicate: RangePredicate {
            any_of: vec![vec![(column, comparison, Bound::Integer(value))]],
        },
        single: false,
    }
}

contract_tests! {
    fn tokens_match_by_code_by_system_and_code_and_by_system(store) {
        load(&***store);
        assert_eq!(run(&***store, "Observation", vec![code(TokenColumn::Code, "", "8480-6")]), ["o1", "o3"]);
        assert_eq!(run(&***store, "Observation", vec![code(TokenColumn::SystemCode, "http://loinc.org", "8480-6")]), ["o1"]);
        assert_eq!(run(&***store, "Observation", vec![code(TokenColumn::System, "http://loinc.org", "")]), ["o1", "o2"]);
        assert!(run(&***store, "Observation", vec![code(TokenColumn::Code, "", "nope")]).is_empty());
    }

    fn any_of_all_of_and_not_combine(store) {
        load(&***store);
        let either = Filter::AnyOf(vec![code(TokenColumn::Code, "", "8462-4"), code(TokenColumn::SystemCode, "http://example.org", "8480-6")]);
        assert_eq!(run(&***store, "Observation", vec![either]), ["o2", "o3"]);
        let not = Filter::Not(Box::new(code(TokenColumn::Code, "", "8480-6")));
        assert_eq!(run(&***store, "Observation", vec![not]), ["o2"]);
        let both = vec![code(TokenColumn::Code, "", "8480-6"), code(TokenColumn::System, "http://loinc.org", "")];
        assert_eq!(run(&***store, "Observation", both), ["o1"]);
        assert!(run(&***store, "Observation", vec![Filter::AnyOf(vec![])]).is_empty());
    }

    fn ids_and_types_scope_the_search(store) {
        load(&***store);
        assert_eq!(run(&***store, "Observation", vec![Filter::Id(vec!["o2".into(), "p1".into()])]), ["o2"]);
        assert_eq!(run(&***store, "Patient", vec![]), ["p1", "p2"]);
    }

    fn strings_match_by_prefix_exactly_and_by_containment(store) {
        load(&***store);
        let name = ParamKey::new("Patient", "name");
        let by = |test: StringTest| run(&***store, "Patient", vec![Filter::String { param: name, test }]);
        assert_eq!(by(StringTest::Prefix("emi".into())), ["p1"]);
        assert_eq!(by(StringTest::Prefix("m".into())), ["p2"]);
        assert!(by(StringTest::Exact("emile zola".into())).is_empty(), ":exact is exact");
        assert_eq!(by(StringTest::Exact("Émile Zola".into())), ["p1"]);
        assert_eq!(by(StringTest::Contains("curi".into())), ["p2"]);
        assert!(by(StringTest::Contains("%".into())).is_empty(), "LIKE wildcards in the value are literal");
    }

    fn references_match_by_type_and_id(store) {
        load(&***store);
        let subject = ParamKey::new("Observation", "subject");
        let local = |types: Vec<&str>, id: &str| Filter::Reference {
            param: subject,
            target: ReferenceTarget::Local { types: types.into_iter().map(Into::into).collect(), id: id.into() },
        };
        assert_eq!(run(&***store, "Observation", vec![local(vec!["Patient"], "p1")]), ["o1", "o2"]);
        assert_eq!(run(&***store, "Observation", vec![local(vec![], "p2")]), ["o3"]);
        assert!(run(&***store, "Observation", vec![local(vec!["Group"], "p1")]).is_empty());
    }

    fn date_ranges_compare_on_both_ends(store) {
        load(&***store);
        assert_eq!(run(&***store, "Observation", vec![date_predicate(RangeColumn::High, Comparison::Ge, 250)]), ["o2", "o3"]);
        assert_eq!(run(&***store, "Observation", vec![date_predicate(RangeColumn::Low, Comparison::Lt, 200)]), ["o1"]);
        let within = Filter::Date {
            param: ParamKey::new("Observation", "date"),
            predicate: RangePredicate {
                any_of: vec![vec![
                    (RangeColumn::Low, Comparison::Ge, Bound::Integer(200)),
                    (RangeColumn::High, Comparison::Le, Bound::Integer(299)),
                ]],
            },
            single: false,
        };
        assert_eq!(run(&***store, "Observation", vec![within]), ["o2"]);
    }

    fn missing_finds_resources_with_and_without_a_parameter(store) {
        load(&***store);
        put(&***store, "Observation", "o4", &IndexEntries::default(), 6);
        let missing = |missing| Filter::Missing { param: ParamKey::new("Observation", "code"), table: IndexTable::Token, missing };
        assert_eq!(run(&***store, "Observation", vec![missing(true)]), ["o4"]);
        assert_eq!(run(&***store, "Observation", vec![missing(false)]), ["o1", "o2", "o3"]);
    }

    fn chains_and_reverse_chains_follow_references(store) {
        load(&***store);
        let chain = Filter::Chain {
            param: ParamKey::new("Observation", "subject"),
            target_types: vec!["Patient".into()],
            filter: Box::new(Filter::String { param: ParamKey::new("Patient", "name"), test: StringTest::Prefix("marie".into()) }),
        };
        assert_eq!(run(&***store, "Observation", vec![chain]), ["o3"]);
        let has = Filter::Has {
            source_type: "Observation".into(),
            param: ParamKey::new("Observation", "subject"),
            filter: Box::new(code(TokenColumn::Code, "", "8462-4")),
        };
        assert_eq!(run(&***store, "Patient", vec![has]), ["p1"]);
    }

    fn deleted_and_superseded_versions_are_not_found(store) {
        load(&***store);
        delete(&***store, "Observation", "o1", 10);
        put(&***store, "Observation", "o2", &observation("1111-1", "http://loinc.org", "p2", 0, 1), 11);
        assert_eq!(run(&***store, "Observation", vec![code(TokenColumn::Code, "", "8480-6")]), ["o3"]);
        assert!(run(&***store, "Observation", vec![code(TokenColumn::Code, "", "8462-4")]).is_empty());
        assert_eq!(run(&***store, "Observation", vec![]), ["o2", "o3"]);
    }

    fn totals_count_current_matches_once(store) {
        load(&***store);
        // o4 has two codings of one code: two index rows, one match.
        put(&***store, "Observation", "o4", &entries(|e| {
            e.tokens.push(token("Observation", "code", Some("http://loinc.org"), "8480-6"));
            e.tokens.push(token("Observation", "code", Some("urn:local"), "8480-6"));
        }), 6);
        let total = |filters: Vec<Filter>| {
            let mut query = SearchQuery::of_type("Observation");
            query.filters = filters;
            query.total = TotalMode::Accurate;
            store.search(&query).unwrap().total
        };
        let systolic = || code(TokenColumn::Code, "", "8480-6");
        assert_eq!(total(vec![systolic()]), Some(3));
        assert_eq!(total(vec![Filter::AnyOf(vec![systolic(), code(TokenColumn::Code, "", "8462-4")])]), Some(4));
        delete(&***store, "Observation", "o1", 10);
        put(&***store, "Observation", "o2", &observation("8480-6", "http://loinc.org", "p2", 0, 1), 11);
        put(&***store, "Observation", "o4", &observation("1111-1", "http://loinc.org", "p2", 0, 1), 12);
        assert_eq!(total(vec![systolic()]), Some(2));
        assert_eq!(total(vec![code(TokenColumn::Code, "", "8462-4")]), Some(0));
        assert_eq!(total(vec![code(TokenColumn::Code, "", "1111-1")]), Some(1));
        // The same count with the resources read (two filters).
        assert_eq!(total(vec![systolic(), systolic()]), Some(2));
        // A single-valued date's rows, one a resource, counted as they are: o2 and o4 (0-1)
        // end before 350, o3 (300-399) does not, o1 (100-199) is deleted.
        let ended_before = |single| match date_predicate(RangeColumn::High, Comparison::Lt, 350) {
            Filter::Date { param, predicate, .. } => Filter::Date { param, predicate, single },
            _ => unreachable!(),
        };
        assert_eq!(total(vec![ended_before(true)]), Some(2));
        assert_eq!(total(vec![ended_before(false)]), Some(2));
    }

    fn pages_follow_cursors_without_repeats_or_gaps(store) {
        for i in 0..25 {
            put(&***store, "Patient", &format!("p{i:02}"), &IndexEntries::default(), i);
        }
        let mut query = SearchQuery::of_type("Patient");
        query.count = 10;
        query.total = TotalMode::Accurate;
        let mut seen = Vec::new();
        loop {
            let page = store.search(&query).unwrap();
            assert_eq!(page.total, Some(25 + seen.len() as u64 / 10));
            seen.extend(page.matches.iter().map(|r| r.id.clone()));
            match page.next {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
            // Later writes land after the cursor and are found on a later page.
            put(&***store, "Patient", &format!("q{}", seen.len()), &IndexEntries::default(), 100);
        }
        let mut expected: Vec<String> = (0..25).map(|i| format!("p{i:02}")).collect();
        expected.extend(["q10".to_owned(), "q20".to_owned()]);
        assert_eq!(seen, expected);
    }

    fn a_transaction_searches_its_own_writes(store) {
        let mut tx = store.begin().unwrap();
        put_in(&mut *tx, "Patient", "p1", &entries(|e| {
            e.tokens.push(token("Patient", "identifier", Some("urn:sys"), "42"));
        }), 1).unwrap();
        let key = ParamKey::new("Patient", "identifier");
        let mut query = SearchQuery::of_type("Patient");
        query.filters = vec![Filter::Token { param: key, column: TokenColumn::SystemCode, hash: key.system_code_hash("urn:sys", "42") }];
        assert_eq!(ids(&tx.search(&query).unwrap().matches), ["p1"]);
        drop(tx);
        assert!(store.search(&query).unwrap().matches.is_empty());
    }

    fn composite_strings_match_by_prefix(store) {
        // code-value-string=...|94500-6$detected finds "Detected, by PCR": the string part
        // is searched as a string parameter is, by its normalised start.
        let key = ParamKey::new("Observation", "code-value-string");
        let code = TokenEntry { param: key, system: Some("http://loinc.org".into()), code: "94500-6".into() };
        let row = |text: &str| entries(|e| e.composites.push(CompositeEntry {
            param: key,
            first: code.clone(),
            second: CompositeSecond::String(search::text::normalize(text).into()),
        }));
        put(&***store, "Observation", "detected", &row("Detected, by PCR"), 1);
        put(&***store, "Observation", "not", &row("Not detected"), 2);
        let first = (TokenColumn::SystemCode, key.system_code_hash("http://loinc.org", "94500-6"));
        let starting = |text: &str| Filter::Composite {
            param: key,
            first,
            second: CompositeTest::String(search::text::normalize(text).into()),
        };
        assert_eq!(run(&***store, "Observation", vec![starting("detected")]), ["detected"]);
        assert_eq!(run(&***store, "Observation", vec![starting("Detected, by PCR")]), ["detected"]);
        assert_eq!(run(&***store, "Observation", vec![starting("not det")]), ["not"]);
        assert!(run(&***store, "Observation", vec![starting("pcr")]).is_empty());
    }

    fn composite_quantities_match_their_units(store) {
        // A systolic pressure of 120 mm[Hg] and one of 120 kPa (absurd, but a different
        // unit): `$ge100|...|mm[Hg]` finds only the first; `$ge100` without a unit both.
        let key = ParamKey::new("Observation", "component-code-value-quantity");
        let row = |unit: &str| {
            let token = |system: &str, code: &str| TokenEntry {
                param: key,
                system: Some(system.into()),
                code: code.into(),
            };
            entries(|e| {
                e.composites.push(CompositeEntry {
                    param: key,
                    first: token("http://loinc.org", "8480-6"),
                    second: CompositeSecond::Range {
                        value: 120.0,
                        low: 119.5,
                        high: 120.5,
                        unit: Some(token("http://unitsofmeasure.org", unit)),
                    },
                })
            })
        };
        put(&***store, "Observation", "mmhg", &row("mm[Hg]"), 1);
        put(&***store, "Observation", "kpa", &row("kPa"), 2);
        let at_least_100 = RangePredicate {
            any_of: vec![vec![(RangeColumn::Value, Comparison::Ge, Bound::Float(100.0))]],
        };
        let systolic = (TokenColumn::SystemCode, key.system_code_hash("http://loinc.org", "8480-6"));
        let in_unit = |unit: &str| Filter::Composite {
            param: key,
            first: systolic,
            second: CompositeTest::Quantity {
                unit: (TokenColumn::SystemCode, key.system_code_hash("http://unitsofmeasure.org", unit)),
                predicate: at_least_100.clone(),
            },
        };
        assert_eq!(run(&***store, "Observation", vec![in_unit("mm[Hg]")]), ["mmhg"]);
        assert_eq!(run(&***store, "Observation", vec![in_unit("kPa")]), ["kpa"]);
        let by_code = Filter::Composite {
            param: key,
            first: systolic,
            second: CompositeTest::Quantity {
                unit: (TokenColumn::Code, key.code_hash("mm[Hg]")),
                predicate: at_least_100.clone(),
            },
        };
        assert_eq!(run(&***store, "Observation", vec![by_code]), ["mmhg"]);
        let any_unit = Filter::Composite {
            param: key,
            first: systolic,
            second: CompositeTest::Range(at_least_100),
        };
        assert_eq!(run(&***store, "Observation", vec![any_unit]), ["mmhg", "kpa"]);
    }
}

/// A handful of searches of every index kind, answered the same with and without the
/// secondary indexes.
fn answers(store: &dyn store::Store) -> Vec<Vec<String>> {
    let name = ParamKey::new("Patient", "name");
    let subject = ParamKey::new("Observation", "subject");
    vec![
        run(
            store,
            "Observation",
            vec![code(TokenColumn::Code, "", "8480-6")],
        ),
        run(
            store,
            "Observation",
            vec![code(TokenColumn::SystemCode, "http://loinc.org", "8480-6")],
        ),
        run(
            store,
            "Observation",
            vec![code(TokenColumn::System, "http://loinc.org", "")],
        ),
        run(
            store,
            "Patient",
            vec![Filter::String {
                param: name,
                test: StringTest::Prefix("m".into()),
            }],
        ),
        run(
            store,
            "Observation",
            vec![date_predicate(RangeColumn::High, Comparison::Ge, 250)],
        ),
        run(
            store,
            "Observation",
            vec![Filter::Reference {
                param: subject,
                target: ReferenceTarget::Local {
                    types: vec!["Patient".into()],
                    id: "p1".into(),
                },
            }],
        ),
        run(store, "Patient", vec![]),
    ]
}

contract_tests! {
    fn a_bulk_load_defers_indexes_only_into_an_empty_store_and_searches_stay_right(store) {
        // SQLite defers its search indexes; PostgreSQL keeps them (deferring measured no gain:
        // its load is bound by the COPY and the write-ahead log, not by index pages).
        let deferred = store.begin_bulk_load().unwrap();
        assert_eq!(deferred, store.backend() == "sqlite");
        load(&***store);
        let during = answers(&***store);
        assert_eq!(during[0], ["o1", "o3"]);
        assert_eq!(during[3], ["p2"]);
        assert_eq!(during[5], ["o1", "o2"]);
        store.end_bulk_load().unwrap();
        assert_eq!(answers(&***store), during);
        // Nothing left to build: a second end does nothing.
        store.end_bulk_load().unwrap();
        assert!(!store.begin_bulk_load().unwrap(), "a store with data keeps its indexes");
        put(&***store, "Observation", "o9", &observation("8480-6", "http://loinc.org", "p2", 1, 2), 9);
        store.end_bulk_load().unwrap();
        assert_eq!(run(&***store, "Observation", vec![code(TokenColumn::Code, "", "8480-6")]), ["o1", "o3", "o9"]);
    }
}
