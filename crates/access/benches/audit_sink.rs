//! What durable audit costs, measured in one run on both stores: AuditEvents written per
//! second by 16 request threads, each waiting until its event is committed, three ways:
//!
//! - `group commit`: the sink as the server uses it (each writer takes everything queued into
//!   one transaction), with 1, 2 and 4 writer threads;
//! - `one per commit`: the same sink limited to one event per transaction;
//! - `own transaction`: no sink, each request thread writes its event in a transaction of its
//!   own (what auditing inside each request's work would do).
//!
//! `cargo bench -p access --bench audit_sink -- [--threads N] [--events N]` (events per
//! thread). PostgreSQL is the server `MERIDIAN_TEST_DATABASE_URL` names (a fresh database is
//! created and dropped); SQLite is a file in a temporary directory with the server's
//! durability (synchronous=NORMAL in WAL mode).

use std::sync::Arc;
use std::time::Instant;

use access::audit::{self, AuditSink, Interaction, Observer, RestAccess, SinkConfig};
use caller::{Actor, Caller};
use repository::Repository;
use serde_json::Value;

fn event(thread: usize, n: usize) -> Vec<Value> {
    let mut caller = Caller::anonymous(format!("t{thread}-{n}"));
    caller.actor = Actor::User("Practitioner/7".into());
    caller.organization = Some("Organization/county-hospital".into());
    caller.client_id = Some("his".into());
    caller.address = Some("10.1.2.3".parse().unwrap());
    let mut access = RestAccess::new(Interaction::Read, Some("Observation"));
    access.add_patient(format!("Patient/p{thread}-{}", n % 7));
    access.add_resource(format!("Observation/o{n}/_history/1"));
    audit::rest_events(&caller, &Observer::default(), &access)
}

#[derive(Clone, Copy)]
enum Way {
    GroupCommit,
    OnePerCommit,
    OwnTransaction,
}

/// Events per second, and the transactions the sink used (none counted for own transactions).
fn run(
    repository: Arc<Repository>,
    way: Way,
    threads: usize,
    per_thread: usize,
    writers: usize,
) -> (f64, u64) {
    let sink = match way {
        Way::GroupCommit => Some(AuditSink::start(
            Arc::clone(&repository),
            Caller::operator("audit-trail"),
            SinkConfig {
                writers,
                ..SinkConfig::default()
            },
        )),
        Way::OnePerCommit => Some(AuditSink::start(
            Arc::clone(&repository),
            Caller::operator("audit-trail"),
            SinkConfig {
                max_batch_events: 1,
                writers: 1,
                ..SinkConfig::default()
            },
        )),
        Way::OwnTransaction => None,
    };
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (sink, repository) = (sink.as_ref(), &repository);
            scope.spawn(move || {
                let caller = Caller::operator("bench");
                for n in 0..per_thread {
                    let events = event(thread, n);
                    match sink {
                        Some(sink) => sink.record(events).expect("recorded"),
                        None => {
                            let prepared: Vec<_> = events
                                .into_iter()
                                .map(|e| repository.prepare_new(e).expect("valid"))
                                .collect();
                            repository
                                .create_prepared(&caller, &prepared)
                                .expect("written");
                        }
                    }
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let transactions = sink.as_ref().map_or(0, |s| s.stats().transactions);
    ((threads * per_thread) as f64 / seconds, transactions)
}

fn argument(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let threads = argument("--threads", 16);
    let per_thread = argument("--events", 100);
    println!("{threads} threads x {per_thread} events, each waiting for its commit");
    println!(
        "{:<10} {:<16} {:>10} {:>14}",
        "store", "way", "events/s", "transactions"
    );
    for backend in ["sqlite", "postgres"] {
        for (name, way, writers) in [
            ("group commit, 1 writer", Way::GroupCommit, 1),
            ("group commit, 2 writers", Way::GroupCommit, 2),
            ("group commit, 4 writers", Way::GroupCommit, 4),
            ("one per commit", Way::OnePerCommit, 1),
            ("own transaction", Way::OwnTransaction, 0),
        ] {
            // A fresh store for each way: the trail's size does not favour one.
            let store = match backend {
                "sqlite" => test_support::sqlite(),
                _ => test_support::postgres(),
            };
            let repository = Arc::new(Repository::new(Arc::clone(&store.store)));
            let (rate, transactions) = run(repository, way, threads, per_thread, writers);
            let transactions = match way {
                Way::OwnTransaction => (threads * per_thread).to_string(),
                _ => transactions.to_string(),
            };
            println!("{backend:<10} {name:<24} {rate:>10.0} {transactions:>14}");
        }
    }
}
