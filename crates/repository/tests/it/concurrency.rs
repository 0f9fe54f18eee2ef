//! Concurrent writers: every accepted update gets its own version, none is lost, and with
//! If-Match exactly one writer per version wins.

use std::sync::{Arc, Barrier};
use std::thread;

use repository::Repository;
use serde_json::json;
use test_support::backend_tests;

use crate::support::*;

const WRITERS: usize = 8;
const UPDATES_EACH: usize = 5;

fn seed(repository: &Repository) {
    let resource = json!({"resourceType": "Patient", "id": "shared", "active": true});
    repository
        .update(&ctx(), "Patient", "shared", resource, None)
        .unwrap();
}

backend_tests! {
    fn concurrent_updates_each_get_their_own_version(store) {
        let repository = Arc::new(repository(store));
        seed(&repository);
        let barrier = Arc::new(Barrier::new(WRITERS));
        let handles: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let repository = Arc::clone(&repository);
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    for update in 0..UPDATES_EACH {
                        // Each update is distinct, so none is skipped as unchanged.
                        let resource = json!({"resourceType": "Patient", "id": "shared",
                                              "name": [{"text": format!("writer {writer} update {update}")}]});
                        repository.update(&ctx(), "Patient", "shared", resource, None).unwrap();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let current = repository.read(&ctx(), "Patient", "shared").unwrap();
        assert_eq!(current.version, 1 + (WRITERS * UPDATES_EACH) as i64, "no update was lost");
        let request = repository::HistoryRequest {
            scope: store::HistoryScope::Instance("Patient".into(), "shared".into()),
            params: criteria(&[("_count", "1000")]),
        };
        let history = json(&repository.history(&ctx(), BASE, &request).unwrap());
        let mut versions: Vec<i64> = history["entry"].as_array().unwrap().iter()
            .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap().parse().unwrap())
            .collect();
        versions.sort();
        assert_eq!(versions, (1..=current.version).collect::<Vec<_>>(), "every version is in the history once");
    }

    fn with_if_match_exactly_one_writer_per_version_wins(store) {
        let repository = Arc::new(repository(store));
        seed(&repository);
        let barrier = Arc::new(Barrier::new(WRITERS));
        let handles: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let repository = Arc::clone(&repository);
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    let resource = json!({"resourceType": "Patient", "id": "shared", "name": [{"text": format!("writer {writer}")}]});
                    barrier.wait();
                    repository.update(&ctx(), "Patient", "shared", resource, Some(1)).map_err(|e| e.http_status())
                })
            })
            .collect();
        let results: Vec<Result<_, u16>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners = results.iter().filter(|r| r.is_ok()).count();
        let losers: Vec<u16> = results.iter().filter_map(|r| r.as_ref().err().copied()).collect();
        assert_eq!(winners, 1, "{results:?}");
        assert!(losers.iter().all(|&status| status == 412), "{losers:?}");
        assert_eq!(repository.read(&ctx(), "Patient", "shared").unwrap().version, 2);
    }

    fn concurrent_creates_of_one_new_id_make_one_resource(store) {
        let repository = Arc::new(repository(store));
        let barrier = Arc::new(Barrier::new(WRITERS));
        let handles: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let repository = Arc::clone(&repository);
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    let resource = json!({"resourceType": "Patient", "id": "new", "name": [{"text": format!("writer {writer}")}]});
                    barrier.wait();
                    repository.update(&ctx(), "Patient", "new", resource, None).unwrap().status
                })
            })
            .collect();
        let statuses: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let created = statuses.iter().filter(|s| **s == repository::WriteStatus::Created).count();
        assert_eq!(created, 1, "{statuses:?}");
        assert_eq!(repository.read(&ctx(), "Patient", "new").unwrap().version, WRITERS as i64);
    }
}
