//! The online path on the embedded store: registering Patients through the repository with the
//! master patient index's write hook (blocking by `_tag` search, scoring, Person written in the
//! same transaction), and `$match` queries, with N residents already registered.

use std::sync::Arc;
use std::time::Instant;

use caller::Caller;
use repository::Repository;
use residents::mpi::{IdentityConfig, Mpi};
use residents::synthetic::Generator;
use store_sqlite::{Durability, SqliteConfig, SqliteStore};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn run(people: usize, writes: usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(SqliteConfig {
        path: dir.path().join("bench.db"),
        durability: Durability::Normal,
        max_readers: 4,
    })
    .expect("the store opens");
    let store: Arc<dyn store::Store> = Arc::new(store);
    let repository = Repository::new(Arc::clone(&store));
    // The same store without the index: what a Patient write costs without matching.
    let plain = Repository::new(store);
    let mpi = Mpi::new(IdentityConfig::default());
    repository.add_write_hook(mpi.hook());
    let ctx = Caller::operator("bench");
    let mut generator = Generator::new(3);
    let mut residents = Vec::with_capacity(people);
    let started = Instant::now();
    for number in 0..people as u32 {
        let resident = generator.resident(number);
        let patient = generator.registration(&resident, 0, false);
        repository
            .create(&ctx, patient, None)
            .expect("the write succeeds");
        residents.push(resident);
    }
    let load = started.elapsed().as_secs_f64();
    let mut write_times = Vec::with_capacity(writes);
    let mut plain_times = Vec::with_capacity(writes);
    let mut match_times = Vec::with_capacity(writes);
    for i in 0..writes {
        let resident = if i % 2 == 0 {
            residents[generator.rng().below(people as u64) as usize].clone()
        } else {
            generator.resident((people + i) as u32)
        };
        let patient = generator.registration(&resident, 1 + i as u32 % 3, false);
        let started = Instant::now();
        mpi.find_matches(&repository, &ctx, &patient, false, 10)
            .ok();
        match_times.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        repository
            .create(&ctx, patient.clone(), None)
            .expect("the write succeeds");
        write_times.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        plain
            .create(&ctx, patient, None)
            .expect("the write succeeds");
        plain_times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    write_times.sort_by(f64::total_cmp);
    plain_times.sort_by(f64::total_cmp);
    match_times.sort_by(f64::total_cmp);
    println!(
        "| residents registered | load (writes/s) | Patient write with matching p50 / p99 | same write without the index p50 / p99 | $match p50 / p99 |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {people} | {load:.0} s ({:.0}/s) | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
        people as f64 / load,
        percentile(&write_times, 0.5),
        percentile(&write_times, 0.99),
        percentile(&plain_times, 0.5),
        percentile(&plain_times, 0.99),
        percentile(&match_times, 0.5),
        percentile(&match_times, 0.99),
    );
}
