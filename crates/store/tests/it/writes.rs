//! Writes: versions, conflicts, deletes, rollback.

use search::IndexEntries;
use store::{StoreError, VersionWrite};
use test_support::contract_tests;

use crate::support::*;

contract_tests! {
    fn versions_count_up_and_each_stays_readable(store) {
        let empty = IndexEntries::default();
        put(&***store, "Patient", "p1", &empty, 1_000);
        let second = put(&***store, "Patient", "p1", &empty, 2_000);
        assert_eq!(second.version, 2);
        let current = store.read("Patient", "p1").unwrap().unwrap();
        assert_eq!((current.version, current.last_updated), (2, 2_000));
        assert_eq!(current.content.as_deref(), second.content.as_deref());
        let first = store.read_version("Patient", "p1", 1).unwrap().unwrap();
        assert_eq!(first.version, 1);
        assert!(String::from_utf8(first.content.unwrap()).unwrap().contains(r#""versionId":"1""#));
        assert!(store.read_version("Patient", "p1", 3).unwrap().is_none());
        assert!(store.read("Patient", "p2").unwrap().is_none());
        assert!(store.read("Observation", "p1").unwrap().is_none(), "ids are per type");
    }

    fn several_versions_are_read_together_in_the_order_asked(store) {
        let empty = IndexEntries::default();
        put(&***store, "Patient", "p1", &empty, 1_000);
        put(&***store, "Patient", "p1", &empty, 2_000);
        put(&***store, "Patient", "p2", &empty, 3_000);
        let keys = [
            ("Patient", "p1", 2),
            ("Patient", "p9", 1),
            ("Patient", "p1", 1),
            ("Observation", "p1", 1),
            ("Patient", "p2", 1),
            ("Patient", "p1", 3),
            ("Patient", "p1", 1),
        ];
        let found: Vec<_> = store
            .read_versions(&keys)
            .unwrap()
            .into_iter()
            .map(|record| record.map(|r| (r.id, r.version, r.last_updated)))
            .collect();
        let p = |id: &str, version, at| Some((id.to_owned(), version, at));
        assert_eq!(
            found,
            [p("p1", 2, 2_000), None, p("p1", 1, 1_000), None, p("p2", 1, 3_000), None, p("p1", 1, 1_000)]
        );
        assert!(store.read_versions(&[]).unwrap().is_empty());
    }

    fn resources_assumed_new_are_written_unread_and_a_taken_id_is_a_conflict(store) {
        let empty = IndexEntries::default();
        put(&***store, "Patient", "taken", &empty, 1_000);
        let create = |tx: &mut dyn store::Transaction, id: &str| {
            tx.put(VersionWrite {
                resource_type: "Patient",
                id,
                previous: None,
                version: 1,
                last_updated: 2_000,
                method: store::Method::Create,
                content: Some(b"{}"),
                content_hash: 0,
                custodian: None,
                sensitivity: 0,
                index: &empty,
            })
        };
        let mut tx = store.begin().unwrap();
        tx.assume_new(&[("Patient", "n1"), ("Patient", "n2")]);
        create(&mut *tx, "n1").unwrap();
        create(&mut *tx, "n2").unwrap();
        tx.commit().unwrap();
        assert_eq!(store.read("Patient", "n2").unwrap().unwrap().version, 1);

        // Assumed new wrongly: the write or its commit fails, and nothing of it stays.
        let mut tx = store.begin().unwrap();
        tx.assume_new(&[("Patient", "n3"), ("Patient", "taken")]);
        let written = create(&mut *tx, "n3").and_then(|_| create(&mut *tx, "taken"));
        let error = written.and_then(|_| tx.commit()).unwrap_err();
        assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
        assert!(store.read("Patient", "n3").unwrap().is_none());
        assert_eq!(store.read("Patient", "taken").unwrap().unwrap().last_updated, 1_000);
    }

    fn a_write_based_on_a_stale_version_is_a_conflict(store) {
        let empty = IndexEntries::default();
        put(&***store, "Patient", "p1", &empty, 1_000);
        let mut tx = store.begin().unwrap();
        let stale = tx.current("Patient", "p1").unwrap().unwrap();
        // Another writer moves the resource on (simulated inside the same transaction).
        put_in(&mut *tx, "Patient", "p1", &empty, 2_000).unwrap();
        let error = tx
            .put(VersionWrite {
                resource_type: "Patient",
                id: "p1",
                previous: Some(&stale),
                version: 2,
                last_updated: 3_000,
                method: store::Method::Update,
                content: Some(b"{}"),
                content_hash: 0,
custodian: None,
sensitivity: 0,
                index: &empty,
            })
            .unwrap_err();
        assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
        assert!(error.is_retryable());
    }

    fn creating_an_existing_resource_again_is_a_conflict(store) {
        let empty = IndexEntries::default();
        put(&***store, "Patient", "p1", &empty, 1_000);
        let mut tx = store.begin().unwrap();
        let error = tx
            .put(VersionWrite {
                resource_type: "Patient",
                id: "p1",
                previous: None,
                version: 1,
                last_updated: 2_000,
                method: store::Method::Create,
                content: Some(b"{}"),
                content_hash: 0,
custodian: None,
sensitivity: 0,
                index: &empty,
            })
            .unwrap_err();
        assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
    }

    fn a_transaction_dropped_without_commit_leaves_nothing(store) {
        let empty = IndexEntries::default();
        {
            let mut tx = store.begin().unwrap();
            put_in(&mut *tx, "Patient", "p1", &empty, 1_000).unwrap();
            put_in(&mut *tx, "Patient", "p2", &empty, 1_000).unwrap();
        }
        assert!(store.read("Patient", "p1").unwrap().is_none());
        assert!(store.read("Patient", "p2").unwrap().is_none());
        // The store is still usable afterwards.
        put(&***store, "Patient", "p3", &empty, 2_000);
        assert!(store.read("Patient", "p3").unwrap().is_some());
    }

    fn a_deletion_is_a_version_without_content(store) {
        let empty = IndexEntries::default();
        put(&***store, "Patient", "p1", &empty, 1_000);
        delete(&***store, "Patient", "p1", 2_000);
        let current = store.read("Patient", "p1").unwrap().unwrap();
        assert!(current.is_deleted());
        assert_eq!(current.version, 2);
        assert_eq!(current.content, None);
        // Writing again revives it as the next version.
        let revived = put(&***store, "Patient", "p1", &empty, 3_000);
        assert_eq!(revived.version, 3);
        assert!(!store.read("Patient", "p1").unwrap().unwrap().is_deleted());
    }

    fn the_store_answers_a_ping(store) {
        store.ping().unwrap();
        assert!(["sqlite", "postgres"].contains(&store.backend()));
    }
}
