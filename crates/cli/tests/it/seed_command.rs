//! `meridian seed`, run as a real process: NDJSON files, loading into the embedded store, and
//! refusals.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

fn meridian(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

#[test]
fn writes_one_ndjson_file_per_type_the_same_on_every_run() {
    let temp = tempfile::tempdir().unwrap();
    let (first, second) = (temp.path().join("first"), temp.path().join("new/second"));
    for (dir, threads) in [(&first, "2"), (&second, "1")] {
        let output = meridian(&[
            "seed",
            "--patients",
            "40",
            "--seed",
            "3",
            "--threads",
            threads,
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(stderr(&output).contains("wrote "), "{}", stderr(&output));
    }
    let written = files(&first);
    assert_eq!(written, files(&second));
    assert!(written.contains_key("Organization.ndjson"));
    let patients = String::from_utf8(written["Patient.ndjson"].clone()).unwrap();
    assert_eq!(patients.lines().count(), 40);
    for line in patients.lines() {
        let patient: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(patient["resourceType"], "Patient");
    }
}

/// The numbers of the summary line `loaded N resources ...: C created, U updated, S unchanged;
/// F failed`.
fn loaded(stderr: &str) -> (u64, u64, u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("loaded "))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    let number = |before: &str| -> u64 {
        let end = line.find(before).unwrap();
        line[..end]
            .trim_end()
            .rsplit([' ', '('])
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let total = line["loaded ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (
        total,
        number(" created"),
        number(" unchanged"),
        number(" failed"),
    )
}

#[test]
fn loads_straight_into_the_embedded_store_and_again_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let args = [
        "seed",
        "--patients",
        "25",
        "--seed",
        "4",
        "--data",
        data.path().to_str().unwrap(),
    ];
    let output = meridian(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let (total, created, unchanged, failed) = loaded(&stderr(&output));
    assert!(total > 300, "{}", stderr(&output));
    assert_eq!((created, unchanged, failed), (total, 0, 0));

    let again = meridian(&args);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(loaded(&stderr(&again)), (total, 0, total, 0));
}

#[test]
fn refuses_out_together_with_a_store() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().to_str().unwrap();
    let output = meridian(&["seed", "--patients", "1", "--out", path, "--data", path]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

#[test]
fn refuses_more_residents_than_id_numbers_can_tell_apart() {
    let temp = tempfile::tempdir().unwrap();
    let output = meridian(&[
        "seed",
        "--patients",
        "50000000",
        "--out",
        temp.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unique ID numbers"),
        "{}",
        stderr(&output)
    );
    assert!(files(temp.path()).is_empty());
}
