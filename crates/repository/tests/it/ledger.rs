//! The verifiable log as writes fill it: which versions get a leaf, appended from the change
//! log by the `ledger` consumer (`Repository::catch_up_ledger`); proofs that verify; concurrent
//! writers and keepers that never make two trees of one size; and the whole-store
//! verification, clean on an untouched store.

use std::sync::Arc;
use std::thread;

use ledger::hash::leaf_hash;
use ledger::log::{Log, verify};
use ledger::tree::{verify_consistency, verify_inclusion};
use serde_json::{Value, json};
use test_support::backend_tests;

use crate::support::*;

fn lab(code: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
           "code": {"text": code}})
}

fn vital() -> Value {
    json!({"resourceType": "Observation", "status": "final",
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
           "code": {"text": "pulse"}})
}

backend_tests! {
    fn results_consents_and_their_every_version_are_logged(store) {
        let repository = repository(store);
        let lab = repository.create(&ctx(), lab("glucose"), None).unwrap();
        let lab = lab.record.unwrap();
        let pulse = repository.create(&ctx(), vital(), None).unwrap().record.unwrap();
        let consent = json!({"resourceType": "Consent", "status": "active",
            "scope": {"text": "treatment"}, "category": [{"text": "x"}]});
        repository.create(&ctx(), consent, None).unwrap();
        repository.create(&ctx(), json!({"resourceType": "Patient"}), None).unwrap();
        repository.catch_up_ledger(&ctx()).unwrap();
        assert_eq!(store.store.ledger_size().unwrap(), 2, "the lab result and the consent");
        assert!(store.store.ledger_leaf_of("Observation", &pulse.id, 1).unwrap().is_none());

        // A result re-filed under another category stays logged, and so does its deletion.
        let mut refiled = vital();
        refiled["id"] = json!(lab.id);
        repository.update(&ctx(), "Observation", &lab.id, refiled, None).unwrap();
        repository.delete(&ctx(), "Observation", &lab.id, None).unwrap();
        repository.catch_up_ledger(&ctx()).unwrap();
        let leaf = store.store.ledger_leaf_of("Observation", &lab.id, 3).unwrap().unwrap();
        let fields = ledger::leaf::parse_leaf(&leaf.input).unwrap();
        assert_eq!(fields.sha256, ledger::hash::sha256_hex(b""), "a deletion has no body");
        assert_eq!(store.store.ledger_size().unwrap(), 4);
        // A reading never logged stays unlogged through its update and deletion.
        let mut pulse_again = vital();
        pulse_again["id"] = json!(pulse.id);
        repository.update(&ctx(), "Observation", &pulse.id, pulse_again, None).unwrap();
        repository.delete(&ctx(), "Observation", &pulse.id, None).unwrap();
        repository.catch_up_ledger(&ctx()).unwrap();
        assert_eq!(store.store.ledger_size().unwrap(), 4);
        // The leaves of several versions read together are those read one by one.
        let keys = [
            ("Observation", lab.id.as_str(), 3),
            ("Observation", pulse.id.as_str(), 2),
            ("Observation", lab.id.as_str(), 1),
            ("Consent", lab.id.as_str(), 1),
            ("Observation", lab.id.as_str(), 2),
        ];
        let together = store.store.ledger_leaves_of(&keys).unwrap();
        let one_by_one: Vec<_> = keys
            .iter()
            .map(|&(t, id, v)| store.store.ledger_leaf_of(t, id, v).unwrap())
            .collect();
        let indexes = |leaves: &[Option<store::LedgerLeaf>]| {
            leaves.iter().map(|l| l.as_ref().map(|l| (l.index, l.version))).collect::<Vec<_>>()
        };
        assert_eq!(indexes(&together), indexes(&one_by_one));
        assert_eq!(together.iter().filter(|l| l.is_some()).count(), 3);
        assert!(store.store.ledger_leaves_of(&[]).unwrap().is_empty());

        // The leaf's hash is that of the body a read of the version returns.
        let first = store.store.ledger_leaf_of("Observation", &lab.id, 1).unwrap().unwrap();
        let body = lab.content.as_deref().unwrap();
        let fields = ledger::leaf::parse_leaf(&first.input).unwrap();
        assert_eq!(fields.sha256, ledger::hash::sha256_hex(body));
        assert_eq!((fields.version, fields.resource_type.as_str()), (1, "Observation"));

        // Proofs from the stored tiles verify against a published checkpoint.
        let log = Log::open(Arc::clone(&store.store), "test.example/ledger", 0).unwrap();
        let (note, new) = log.publish().unwrap();
        assert!(new);
        assert!(ledger::Note::parse(&note).unwrap().signed_by(&log.verifiers()[0]));
        let root = log.root(4).unwrap();
        for index in 0..4 {
            let leaf = &store.store.ledger_leaves(index, index + 1).unwrap()[0];
            let path = log.inclusion(index, 4).unwrap();
            assert!(verify_inclusion(index, 4, &leaf_hash(&leaf.input), &path, &root));
        }
        let old = log.root(2).unwrap();
        assert!(verify_consistency(2, 4, &old, &root, &log.consistency(2, 4).unwrap()));
        assert!(log.inclusion(4, 4).is_err());
        assert!(log.consistency(1, 5).is_err());
        let caller = ctx();
        let reader = repository.reader(&caller);
        let report = verify(&*store.store, &reader, |_, _| {}).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!((report.leaves, report.checkpoint_size), (4, Some(4)));
    }

    fn a_store_logged_before_the_keeper_is_not_logged_twice(store) {
        // Before the change log fed the ledger, each write appended its own leaf: such a store
        // has leaves and no `ledger` position. The keeper starts after what was there.
        let repository = repository(store);
        let before = repository.create(&ctx(), lab("before"), None).unwrap().record.unwrap();
        let mut tx = store.store.begin().unwrap();
        let input = ledger::leaf::leaf_input(&ledger::leaf::LeafFields {
            resource_type: "Observation",
            id: &before.id,
            version: 1,
            content: before.content.as_deref(),
            org: before.custodian.as_deref(),
            time: &fhir_model::clock::format_instant(before.last_updated),
        });
        let pending = vec![ledger::log::PendingLeaf {
            row: before.row,
            resource_type: "Observation".into(),
            id: before.id.clone(),
            version: 1,
            input,
        }];
        ledger::log::append(&mut *tx, pending).unwrap();
        tx.commit().unwrap();
        repository.catch_up_ledger(&ctx()).unwrap();
        assert_eq!(store.store.ledger_size().unwrap(), 1, "not logged a second time");
        repository.create(&ctx(), lab("after"), None).unwrap();
        repository.catch_up_ledger(&ctx()).unwrap();
        assert_eq!(store.store.ledger_size().unwrap(), 2, "what comes after is logged");
        Log::open(Arc::clone(&store.store), "test.example/ledger", 0).unwrap().publish().unwrap();
        let caller = ctx();
        let report = verify(&*store.store, &repository.reader(&caller), |_, _| {}).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    fn a_write_that_rolls_back_leaves_no_leaf(store) {
        let repository = repository(store);
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": lab("k"), "request": {"method": "POST", "url": "Observation"}},
            {"resource": {"resourceType": "Patient", "id": "p"},
             "request": {"method": "PUT", "url": "Patient/p", "ifMatch": "W/\"9\""}}
        ]});
        let options = repository::BundleOptions { return_representation: false };
        assert!(repository.process_bundle(&ctx(), BASE, bundle, options).is_err());
        repository.catch_up_ledger(&ctx()).unwrap();
        assert_eq!(store.store.ledger_size().unwrap(), 0);
    }

    fn concurrent_writers_make_one_tree(store) {
        let repository = Arc::new(repository(store));
        let writers: Vec<_> = (0..6)
            .map(|w| {
                let repository = Arc::clone(&repository);
                thread::spawn(move || {
                    // Each writer also keeps the log, as each server's keeper does: the
                    // instances take the change log's batches in turn.
                    for n in 0..15 {
                        repository.create(&ctx(), lab(&format!("w{w}-{n}")), None).unwrap();
                        if n % 4 == w % 4 {
                            repository.catch_up_ledger(&ctx()).unwrap();
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        repository.catch_up_ledger(&ctx()).unwrap();
        assert_eq!(store.store.ledger_size().unwrap(), 90);
        let leaves = store.store.ledger_leaves(0, 90).unwrap();
        assert_eq!(leaves.iter().map(|l| l.index).collect::<Vec<_>>(), (0..90).collect::<Vec<_>>());
        Log::open(Arc::clone(&store.store), "test.example/ledger", 0).unwrap().publish().unwrap();
        let caller = ctx();
        let reader = repository.reader(&caller);
        let report = verify(&*store.store, &reader, |_, _| {}).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.versions, 90);
    }
}

backend_tests! {
    fn a_rotated_key_signs_and_the_old_ones_still_verify(store) {
        let repository = repository(store);
        repository.create(&ctx(), lab("k"), None).unwrap();
        repository.catch_up_ledger(&ctx()).unwrap();
        let log = Log::open(Arc::clone(&store.store), "test.example/ledger", 0).unwrap();
        let (old_note, _) = log.publish().unwrap();
        let new_key = Log::rotate_key(&*store.store, 10).unwrap();
        repository.create(&ctx(), lab("l"), None).unwrap();
        repository.catch_up_ledger(&ctx()).unwrap();
        let log = Log::open(Arc::clone(&store.store), "ignored.example/other", 0).unwrap();
        assert_eq!(log.origin(), "test.example/ledger", "the stored ring keeps its origin");
        let keys = log.verifiers();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1], new_key);
        let (new_note, _) = log.publish().unwrap();
        let old_note = ledger::Note::parse(&old_note).unwrap();
        let new_note = ledger::Note::parse(&new_note).unwrap();
        assert!(old_note.signed_by(&keys[0]) && !old_note.signed_by(&keys[1]));
        assert!(new_note.signed_by(&keys[1]) && !new_note.signed_by(&keys[0]));
        let caller = ctx();
        let reader = repository.reader(&caller);
        let report = verify(&*store.store, &reader, |_, _| {}).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}
