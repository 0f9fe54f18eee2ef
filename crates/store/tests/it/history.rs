//! History at instance, type and system level, with `_since`, `_at` and paging.

use search::IndexEntries;
use store::{HistoryQuery, HistoryScope, Method};
use test_support::contract_tests;

use crate::support::*;

fn query(scope: HistoryScope) -> HistoryQuery {
    HistoryQuery {
        scope,
        since: None,
        at: None,
        count: 100,
        cursor: None,
        visibility: Default::default(),
    }
}

fn load(store: &dyn store::Store) {
    let empty = IndexEntries::default();
    put(store, "Patient", "a", &empty, 1_000);
    put(store, "Observation", "o", &empty, 2_000);
    put(store, "Patient", "a", &empty, 3_000);
    put(store, "Patient", "b", &empty, 4_000);
    delete(store, "Patient", "a", 5_000);
}

fn versions(page: &store::HistoryPage) -> Vec<(String, i64)> {
    page.versions
        .iter()
        .map(|v| (format!("{}/{}", v.resource_type, v.id), v.version))
        .collect()
}

fn pairs(expected: &[(&str, i64)]) -> Vec<(String, i64)> {
    expected.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

contract_tests! {
    fn history_is_newest_first_at_every_level(store) {
        load(&***store);
        let instance = store.history(&query(HistoryScope::Instance("Patient".into(), "a".into()))).unwrap();
        assert_eq!(versions(&instance), pairs(&[("Patient/a", 3), ("Patient/a", 2), ("Patient/a", 1)]));
        assert_eq!(instance.versions[0].method, Method::Delete);
        assert_eq!(instance.versions[0].content, None);
        let by_type = store.history(&query(HistoryScope::Type("Patient".into()))).unwrap();
        assert_eq!(by_type.versions.len(), 4);
        let system = store.history(&query(HistoryScope::System)).unwrap();
        assert_eq!(
            versions(&system),
            pairs(&[("Patient/a", 3), ("Patient/b", 1), ("Patient/a", 2), ("Observation/o", 1), ("Patient/a", 1)])
        );
    }

    fn since_keeps_versions_written_at_or_after_the_instant(store) {
        load(&***store);
        let mut q = query(HistoryScope::System);
        q.since = Some(3_000);
        let page = store.history(&q).unwrap();
        assert_eq!(versions(&page), pairs(&[("Patient/a", 3), ("Patient/b", 1), ("Patient/a", 2)]));
    }

    fn at_keeps_versions_current_during_the_period(store) {
        load(&***store);
        let mut q = query(HistoryScope::Instance("Patient".into(), "a".into()));
        q.at = Some((2_500, 2_600));
        assert_eq!(versions(&store.history(&q).unwrap()), pairs(&[("Patient/a", 1)]));
        q.at = Some((2_500, 3_500));
        assert_eq!(versions(&store.history(&q).unwrap()), pairs(&[("Patient/a", 2), ("Patient/a", 1)]));
        q.at = Some((6_000, 7_000));
        assert_eq!(versions(&store.history(&q).unwrap()), pairs(&[("Patient/a", 3)]), "the deletion is current");
    }

    fn history_pages_neither_repeat_nor_skip(store) {
        load(&***store);
        let mut q = query(HistoryScope::System);
        q.count = 2;
        let mut seen = Vec::new();
        loop {
            let page = store.history(&q).unwrap();
            seen.extend(versions(&page));
            match page.next {
                Some(cursor) => q.cursor = Some(cursor),
                None => break,
            }
            // A write after the first page does not disturb the pages that follow.
            put(&***store, "Patient", "late", &IndexEntries::default(), 9_000);
        }
        assert_eq!(
            seen,
            pairs(&[("Patient/a", 3), ("Patient/b", 1), ("Patient/a", 2), ("Observation/o", 1), ("Patient/a", 1)])
        );
    }
}
