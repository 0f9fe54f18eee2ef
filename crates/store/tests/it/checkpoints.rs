//! Checkpoints as a small key-value surface: prefix listing in byte order, a one-time take, and
//! an insert that succeeds only once (the access service's codes and assertion ids), on every
//! backend, across transactions and across a reopened store.

use test_support::contract_tests;

contract_tests! {
    fn checkpoints_are_listed_by_prefix_in_byte_order(store) {
        let mut tx = store.begin().unwrap();
        for (name, value) in [
            ("auth/client/b", "2"),
            ("auth/client/a", "1"),
            ("auth/client/B", "0"),
            ("auth/clients", "not a client"),
            ("auth/account/admin", "x"),
            ("reindex", "42"),
        ] {
            tx.set_checkpoint(name, Some(value)).unwrap();
        }
        tx.commit().unwrap();
        let listed = store.checkpoints_with_prefix("auth/client/").unwrap();
        let names: Vec<&str> = listed.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["auth/client/B", "auth/client/a", "auth/client/b"]);
        assert_eq!(listed[1].1, "1");
        assert_eq!(store.checkpoints_with_prefix("auth/").unwrap().len(), 5);
        assert!(store.checkpoints_with_prefix("nothing/").unwrap().is_empty());
        // A prefix is literal text: `%` and `_` match only themselves.
        assert!(store.checkpoints_with_prefix("auth/client_").unwrap().is_empty());
        assert!(store.checkpoints_with_prefix("%").unwrap().is_empty());
        assert_eq!(store.checkpoints_with_prefix("").unwrap().len(), 6);
    }

    fn a_checkpoint_is_taken_once(store) {
        let mut tx = store.begin().unwrap();
        tx.set_checkpoint("auth/code/abc", Some("grant")).unwrap();
        tx.commit().unwrap();

        // Taken in a transaction that rolls back, it is still there.
        let mut tx = store.begin().unwrap();
        assert_eq!(tx.take_checkpoint("auth/code/abc").unwrap().as_deref(), Some("grant"));
        drop(tx);
        assert_eq!(store.checkpoint("auth/code/abc").unwrap().as_deref(), Some("grant"));

        let mut tx = store.begin().unwrap();
        assert_eq!(tx.take_checkpoint("auth/code/abc").unwrap().as_deref(), Some("grant"));
        assert_eq!(tx.take_checkpoint("auth/code/abc").unwrap(), None, "taken in this transaction");
        tx.commit().unwrap();
        let mut tx = store.begin().unwrap();
        assert_eq!(tx.take_checkpoint("auth/code/abc").unwrap(), None);
        assert_eq!(tx.take_checkpoint("auth/code/never").unwrap(), None);
        tx.commit().unwrap();
        assert_eq!(store.reopen().checkpoint("auth/code/abc").unwrap(), None);
    }

    fn a_checkpoint_inserted_if_absent_is_inserted_once(store) {
        let mut tx = store.begin().unwrap();
        assert!(tx.insert_checkpoint_if_absent("auth/jti/c/1", "100").unwrap());
        assert!(!tx.insert_checkpoint_if_absent("auth/jti/c/1", "200").unwrap());
        tx.commit().unwrap();
        let mut tx = store.begin().unwrap();
        assert!(!tx.insert_checkpoint_if_absent("auth/jti/c/1", "300").unwrap());
        // The transaction is still usable after a refused insert.
        assert!(tx.insert_checkpoint_if_absent("auth/jti/c/2", "300").unwrap());
        tx.commit().unwrap();
        assert_eq!(store.checkpoint("auth/jti/c/1").unwrap().as_deref(), Some("100"));
        assert_eq!(store.reopen().checkpoint("auth/jti/c/2").unwrap().as_deref(), Some("300"));
    }

    fn of_two_stores_racing_for_one_code_only_one_gets_it(store) {
        let other = store.reopen();
        let mut tx = store.begin().unwrap();
        tx.set_checkpoint("auth/code/race", Some("grant")).unwrap();
        tx.commit().unwrap();
        let takers: Vec<_> = [store.store.clone(), other.clone(), store.store.clone(), other]
            .into_iter()
            .map(|store| {
                std::thread::spawn(move || {
                    let mut tx = store.begin().unwrap();
                    let taken = tx.take_checkpoint("auth/code/race").unwrap();
                    let inserted = tx.insert_checkpoint_if_absent("auth/jti/race", "1").unwrap();
                    tx.commit().unwrap();
                    (taken.is_some(), inserted)
                })
            })
            .collect();
        let results: Vec<(bool, bool)> = takers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|(taken, _)| *taken).count(), 1, "{results:?}");
        assert_eq!(results.iter().filter(|(_, inserted)| *inserted).count(), 1, "{results:?}");
    }
}
