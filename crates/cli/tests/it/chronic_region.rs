//! The chronic-disease service against a generated region, checked by an independent
//! recomputation: `chronic_region_check.py` derives the registries, the alerts and every
//! episode's follow-up status from the region's NDJSON and the written definitions
//! (`crates/chronic/src/lib.rs`, "Definitions") alone, and compares them with what the real
//! `meridian serve` answers over HTTP.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{Serving, serve_in};

const PATIENTS: &str = "600";
const SEED: &str = "3";
/// Inside the generated window (its records end on 2026-07-01), so that the last fortnight's
/// visits and readings lie after the date asked about and must not count.
const AS_OF: &str = "2026-06-15";
/// The store checkpoint that holds the `chronic` consumer's position in the change log
/// (`chronic::CONSUMER`, kept as `changes:<consumer>` by `repository::ChangeFeed`).
const CHRONIC_POSITION: &str = "changes:chronic";

fn meridian(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .env_clear()
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "meridian {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn checker(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/chronic_region_check.py"
        ))
        .args(args)
        .env("NO_PROXY", "*")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .expect("python3 runs")
}

/// Waits until the `chronic` consumer has judged every change the store held when the server
/// came up (the whole loaded region). Its position moves in the same transaction as the
/// registrations and alerts of the batch it handled, so once it has passed the end of the log
/// as it was, everything the region calls for is committed. Counting Communications until they
/// stop changing would only guess at that, and would wait for ever or too little if the
/// service were wrong.
fn wait_for_the_chronic_consumer(serving: &Serving) -> Duration {
    let started = Instant::now();
    let store = serving.open_store();
    let mut end = 0;
    loop {
        let changes = store.changes(end, 10_000).unwrap();
        match changes.last() {
            Some(last) => end = last.position,
            None => break,
        }
    }
    assert!(end > 0, "the loaded region left no change in the log");
    let deadline = started + Duration::from_secs(180);
    loop {
        let position: i64 = store
            .checkpoint(CHRONIC_POSITION)
            .unwrap()
            .map(|value| value.parse().unwrap())
            .unwrap_or(0);
        if position >= end {
            return started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "the chronic consumer is at {position} of {end} after {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `meridian seed` once as NDJSON and once into an embedded store (the same region: the same
/// `--patients` and `--seed` make the same resources), the server on that store with its
/// chronic consumer caught up, and the independent checker's verdict: no difference. The
/// seed writes an EpisodeOfCare for each diagnosed resident itself, so the registry check is
/// also that the service enrols nobody twice.
#[test]
fn the_chronic_service_agrees_with_an_independent_recomputation_of_a_region() {
    let started = Instant::now();
    let temp = tempfile::tempdir().unwrap();
    let ndjson = temp.path().join("ndjson");
    let store = temp.path().join("store");
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let seed = ["seed", "--patients", PATIENTS, "--seed", SEED];
    meridian(&[&seed[..], &["--out", &path(&ndjson)]].concat());
    meridian(&[&seed[..], &["--data", &path(&store)]].concat());

    let expected = checker(&["--ndjson", &path(&ndjson), "--expected-alerts"]);
    assert!(
        expected.status.success(),
        "{}",
        String::from_utf8_lossy(&expected.stderr)
    );
    let expected_alerts: usize = String::from_utf8_lossy(&expected.stdout)
        .trim()
        .parse()
        .unwrap();
    // A region without a critical reading would leave the alert check empty.
    assert!(expected_alerts > 0);
    let loaded = started.elapsed();

    // Auth off: every request is an administrator's, whose worklist is the whole region; the
    // check is of the computation, not of the access rules.
    let serving = serve_in(&store, &["--auth", "off"]);
    let caught_up = wait_for_the_chronic_consumer(&serving);

    let base = format!("http://{}/fhir", serving.address);
    let output = checker(&["--ndjson", &path(&ndjson), "--base", &base, "--date", AS_OF]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let warnings: Vec<String> = serving
        .log
        .try_iter()
        .filter(|line| line.contains("WARN") || line.contains("ERROR"))
        .collect();
    assert!(
        output.status.success(),
        "chronic_region_check.py found differences:\n{stdout}\n{}\nserver warnings: {warnings:#?}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!(" alerts={expected_alerts} ")),
        "{stdout}"
    );
    println!(
        "{stdout}region loaded in {loaded:?}, consumer caught up in {caught_up:?}, all in {:?}",
        started.elapsed()
    );
}
