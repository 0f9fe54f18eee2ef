//! Sorting with keyset cursors, includes and the patient compartment, on every backend.

use search::IndexEntries;
use search::keys::{ParamKey, PatientKey};
use search::query::{Cursor, Filter, Include, IndexTable, SearchQuery, SortBy, SortKey};
use store::SearchPage;
use test_support::backend_tests;

use crate::support::*;

fn search(store: &dyn store::Store, query: &SearchQuery) -> SearchPage {
    store.search(&ctx(), query).unwrap()
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

backend_tests! {
    fn sorting_pages_through_ties_and_missing_values(store) {
        // Several share a date; two have none and come last in both directions.
        let dates = [("a", Some(30)), ("b", Some(10)), ("c", None), ("d", Some(30)), ("e", Some(20)), ("f", None), ("g", Some(10))];
        for (i, (id, low)) in dates.iter().enumerate() {
            put(&***store, "Observation", id, &dated(id, *low), i as i64);
        }
        let date_key = ParamKey::new("Observation", "date");
        let mut query = SearchQuery::of_type("Observation");
        query.count = 2;
        query.sort = vec![SortKey { by: SortBy::Param { param: date_key, table: IndexTable::Date }, descending: false }];
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
