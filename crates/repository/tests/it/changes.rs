//! The change log: a consumer sees every committed change exactly once, in an order consistent
//! with each resource's versions, across a restart, while writers run concurrently; rolled-back
//! writes never appear; two instances of one consumer share the work without repeats.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use repository::{BundleOptions, Change, Repository};
use serde_json::json;
use store::Method;
use test_support::backend_tests;

use crate::support::*;

const WRITERS: usize = 4;
const WRITES_EACH: usize = 30;

/// What a consumer recorded: (type, id, version, method) by position.
type Seen = Arc<Mutex<Vec<(i64, String, String, i64, Method)>>>;

fn record(seen: &Seen, changes: &[Change]) {
    let mut seen = seen.lock().unwrap();
    for change in changes {
        seen.push((
            change.position,
            change.resource_type.clone(),
            change.id.clone(),
            change.version,
            change.method,
        ));
    }
}

/// Writes creates, updates and deletes, and transactions that roll back after writing.
fn write(repository: &Repository, writer: usize) {
    for n in 0..WRITES_EACH {
        let id = format!("w{writer}-{}", n / 3);
        match n % 3 {
            0 => {
                let patient = json!({"resourceType": "Patient", "id": id, "active": true});
                repository
                    .update(&ctx(), "Patient", &id, patient, None)
                    .unwrap();
            }
            1 => {
                let patient = json!({"resourceType": "Patient", "id": id, "active": false});
                repository
                    .update(&ctx(), "Patient", &id, patient, None)
                    .unwrap();
                // A transaction that writes a new Patient, then fails on a version conflict.
                let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"resource": {"resourceType": "Patient", "id": format!("rolled-back-{id}")},
                     "request": {"method": "PUT", "url": format!("Patient/rolled-back-{id}")}},
                    {"resource": {"resourceType": "Patient", "id": id.clone(), "gender": "other"},
                     "request": {"method": "PUT", "url": format!("Patient/{id}"), "ifMatch": "W/\"99\""}}
                ]});
                let options = BundleOptions {
                    return_representation: false,
                };
                repository
                    .process_bundle(&ctx(), BASE, bundle, options)
                    .unwrap_err();
            }
            _ => {
                repository.delete(&ctx(), "Patient", &id, None).unwrap();
            }
        }
    }
}

/// Every committed version, from the histories: (type, id, version).
fn committed(repository: &Repository) -> BTreeSet<(String, String, i64)> {
    let request = repository::HistoryRequest {
        scope: store::HistoryScope::System,
        params: criteria(&[("_count", "1000")]),
    };
    let history = json(&repository.history(&ctx(), BASE, &request).unwrap());
    history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let url = entry["fullUrl"]
                .as_str()
                .or(entry["request"]["url"].as_str())
                .unwrap();
            let mut parts = url.rsplit('/');
            let id = parts.next().unwrap().to_owned();
            let resource_type = parts.next().unwrap().to_owned();
            let version = entry["response"]["etag"]
                .as_str()
                .map(|etag| {
                    etag.trim_start_matches("W/\"")
                        .trim_end_matches('"')
                        .parse()
                        .unwrap()
                })
                .unwrap();
            (resource_type, id, version)
        })
        .collect()
}

fn check_exactly_once_in_order(
    seen: &[(i64, String, String, i64, Method)],
    expected: &BTreeSet<(String, String, i64)>,
) {
    let positions: Vec<i64> = seen.iter().map(|s| s.0).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions only grow: {positions:?}"
    );
    let keys: Vec<(String, String, i64)> = seen
        .iter()
        .map(|s| (s.1.clone(), s.2.clone(), s.3))
        .collect();
    let distinct: BTreeSet<_> = keys.iter().cloned().collect();
    assert_eq!(distinct.len(), keys.len(), "no change is seen twice");
    assert!(
        keys.iter().all(|(_, id, _)| !id.starts_with("rolled-back")),
        "a rolled-back write never appears"
    );
    assert_eq!(&distinct, expected, "every committed version is seen");
    let mut last_version: HashMap<&str, i64> = HashMap::new();
    for (_, _, id, version, method) in seen {
        let last = last_version.insert(id, *version).unwrap_or(0);
        assert_eq!(*version, last + 1, "{id}'s versions arrive in order");
        if *version == 1 {
            assert_eq!(*method, Method::Create);
        }
    }
}

backend_tests! {
    fn a_consumer_sees_every_commit_once_in_order_across_a_restart(store) {
        let repository = Arc::new(repository(store));
        let seen: Seen = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        // The consumer runs while the writers write, in small batches.
        let consumer = {
            let (repository, seen, done) = (Arc::clone(&repository), Arc::clone(&seen), Arc::clone(&done));
            thread::spawn(move || {
                let feed = repository.change_feed("test");
                while !done.load(Ordering::SeqCst) {
                    let handled = feed.consume(&ctx(), 7, |_, changes| {
                        record(&seen, changes);
                        Ok(())
                    }).unwrap();
                    if handled.is_none() {
                        thread::yield_now();
                    }
                }
            })
        };
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let repository = Arc::clone(&repository);
                thread::spawn(move || write(&repository, writer))
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        consumer.join().unwrap();
        let before_restart = seen.lock().unwrap().len();

        // A restart: a new store on the same database; the consumer resumes at its position.
        let restarted = Repository::new(store.reopen());
        let feed = restarted.change_feed("test");
        assert_eq!(feed.position().unwrap(), seen.lock().unwrap().last().map_or(0, |s| s.0));
        while feed.consume(&ctx(), 50, |_, changes| { record(&seen, changes); Ok(()) }).unwrap().is_some() {}

        let seen = seen.lock().unwrap();
        let expected = committed(&restarted);
        assert_eq!(expected.len(), WRITERS * WRITES_EACH, "one version per write: the writers' commits are all there");
        check_exactly_once_in_order(&seen, &expected);
        assert!(before_restart > 0, "the consumer ran alongside the writers");
    }

    fn a_failed_consumer_keeps_its_position_and_its_writes_roll_back(store) {
        let repository = repository(store);
        for n in 0..3 {
            let patient = json!({"resourceType": "Patient", "id": format!("p{n}")});
            repository.update(&ctx(), "Patient", &format!("p{n}"), patient, None).unwrap();
        }
        let feed = repository.change_feed("audit");
        let failed = feed.consume(&ctx(), 10, |tx, _| {
            tx.create(json!({"resourceType": "Basic", "code": {"text": "consumer output"}}))?;
            Err::<(), _>(repository::RepositoryError::Conflict("the consumer failed".into()))
        });
        assert!(failed.is_err());
        assert_eq!(feed.position().unwrap(), 0, "the position did not move");
        let changes = feed.next(10).unwrap();
        assert_eq!(changes.len(), 3, "the failed consumer's own write is not in the log");
        // Consumers are independent: another one starts from the beginning.
        assert_eq!(repository.change_feed("other").next(10).unwrap(), changes);
        // Done properly, the consumer's write and its position commit together.
        feed.consume(&ctx(), 10, |tx, batch| {
            assert_eq!(batch, &changes[..]);
            tx.create(json!({"resourceType": "Basic", "code": {"text": "consumer output"}}))?;
            Ok(())
        }).unwrap();
        let after = feed.next(10).unwrap();
        assert_eq!(after.len(), 1, "only the consumer's own write is new");
        assert_eq!(after[0].resource_type, "Basic");
        assert!(after[0].position > changes[2].position);
    }

    fn a_consumer_passes_what_asks_nothing_of_it_and_handles_the_rest_once(store) {
        let repository = repository(store);
        let write = |id: &str, kind: &str| {
            let basic = json!({"resourceType": "Basic", "id": id, "code": {"text": kind}});
            repository.update(&ctx(), "Basic", id, basic, None).unwrap();
        };
        for n in 0..5 {
            write(&format!("quiet{n}"), "quiet");
        }
        let feed = repository.change_feed("relevant");
        let is_loud = |changes: &[Change]| -> Result<bool, repository::RepositoryError> {
            Ok(changes.iter().any(|c| c.id.starts_with("loud")))
        };
        let handled: Mutex<Vec<String>> = Mutex::default();
        let mut cursor = repository::Cursor::default();
        let run = |cursor: &mut repository::Cursor| {
            feed.consume_relevant(&ctx(), cursor, 3, is_loud, |_, batch| {
                handled.lock().unwrap().extend(batch.iter().map(|c| c.id.clone()));
                Ok(batch.len())
            })
            .unwrap()
        };
        // Five quiet changes in batches of three: passed, without a transaction, and the
        // position not yet stored (fewer than STORE_EVERY, just now).
        assert_eq!(run(&mut cursor), None);
        assert_eq!(cursor.take_passed(), 5);
        assert!(handled.lock().unwrap().is_empty());
        assert_eq!(feed.position().unwrap(), 0, "passed changes are stored later");
        // A loud one among quiet ones: its batch is handled, from where the cursor stands.
        write("quiet5", "quiet");
        write("loud0", "loud");
        assert_eq!(run(&mut cursor), Some(2));
        assert_eq!(*handled.lock().unwrap(), ["quiet5", "loud0"]);
        assert!(feed.next(10).unwrap().is_empty(), "the handled batch's position is stored");
        assert_eq!(run(&mut cursor), None);
        // A new instance (a restart) starts at the stored position, not before it.
        let mut restarted = repository::Cursor::default();
        assert_eq!(run(&mut restarted), None);
        assert_eq!(*handled.lock().unwrap(), ["quiet5", "loud0"], "nothing handled twice");
        // Passed changes are stored once there are STORE_EVERY of them.
        let every = repository::Cursor::STORE_EVERY as usize;
        for n in 0..every {
            write(&format!("more{n}"), "quiet");
        }
        while run(&mut cursor).is_some() {}
        assert_eq!(cursor.take_passed(), every);
        assert_eq!(feed.position().unwrap(), repository.change_log_end().unwrap());
    }

    fn a_new_consumer_may_start_at_the_end_and_an_outside_one_advances_after_acting(store) {
        let repository = repository(store);
        let write = |n: usize| {
            let patient = json!({"resourceType": "Patient", "id": format!("p{n}")});
            repository.update(&ctx(), "Patient", &format!("p{n}"), patient, None).unwrap();
        };
        for n in 0..3 {
            write(n);
        }
        let feed = repository.change_feed("publisher");
        assert!(feed.start_at_end(&ctx()).unwrap(), "a consumer that never ran moves");
        assert!(feed.next(10).unwrap().is_empty(), "the history is not replayed");
        write(3);
        let next = feed.next(10).unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].id, "p3");
        // Once it has a position, starting again moves nothing.
        assert!(!feed.start_at_end(&ctx()).unwrap());
        assert_eq!(feed.next(10).unwrap(), next);
        // An outside consumer records what it did afterwards, and never moves back.
        feed.advance_to(&ctx(), next[0].position).unwrap();
        assert!(feed.next(10).unwrap().is_empty());
        feed.advance_to(&ctx(), 0).unwrap();
        assert_eq!(feed.position().unwrap(), next[0].position);
        // On an empty log, the position is still taken.
        let other = repository.change_feed("elsewhere");
        assert!(other.start_at_end(&ctx()).unwrap());
        assert!(!other.start_at_end(&ctx()).unwrap());
    }

    fn two_instances_of_one_consumer_never_take_the_same_change(store) {
        let repository = Arc::new(repository(store));
        for n in 0..60 {
            let patient = json!({"resourceType": "Patient", "id": format!("p{n}")});
            repository.update(&ctx(), "Patient", &format!("p{n}"), patient, None).unwrap();
        }
        let seen: Seen = Arc::default();
        let instances: Vec<_> = (0..2)
            .map(|_| {
                let (repository, seen) = (Arc::clone(&repository), Arc::clone(&seen));
                thread::spawn(move || {
                    let feed = repository.change_feed("shared");
                    while feed.consume(&ctx(), 4, |_, changes| { record(&seen, changes); Ok(()) }).unwrap().is_some() {}
                })
            })
            .collect();
        for instance in instances {
            instance.join().unwrap();
        }
        let mut seen = seen.lock().unwrap();
        seen.sort_by_key(|s| s.0);
        let expected = committed(&repository);
        check_exactly_once_in_order(&seen, &expected);
    }
}
