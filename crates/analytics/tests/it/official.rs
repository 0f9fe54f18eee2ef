//! The official SQL on FHIR v2 suite as data: its vendored files, the known failures, and how
//! a runner's output is judged. Shared by the analytics crate's own test (views evaluated in
//! memory) and the `meridian` binary's (`meridian view run`, the same tests through the command
//! line), which includes this file by path.
//!
//! A test with `expect` passes when the view's rows over all the file's resources equal the
//! expected rows as a multiset: the suite's README prescribes no order, the specification
//! guarantees none for `unionAll`, and some files list rows in an order no
//! resource-at-a-time runner makes (`row_index.json`, "%rowIndex in unionAll without
//! forEach", lists them branch by branch across resources). Numbers compare by value (`5` and
//! `5.0` are one decimal). `expectColumns` must equal the view's columns, in order;
//! `expectError` must be an error from compiling the view or from evaluating it on one of the
//! resources.
//!
//! `known-failures.txt` lists the tests that fail today, each with its reason. A listed test
//! that passes, an unlisted one that fails, or a listed one that does not exist fails the
//! suite: the list stays true and nothing is skipped silently.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The vendored suite (both test crates sit in `crates/`).
pub fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../analytics/tests/sql-on-fhir-v2")
}

/// The number of tests the vendored files hold (`SOURCE.md`): a file lost or cut short must not
/// pass as a smaller suite.
pub const SUITE_TESTS: usize = 134;

pub struct Outcome {
    /// `file / title`.
    pub name: String,
    /// `None` when the test passed.
    pub failure: Option<String>,
}

/// What a runner made of a view over a file's resources: its column names, and its rows as
/// objects keyed by column name.
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
}

/// A runner: a view over a file's resources makes a table, or the runner's error.
pub type Runner<'a> = &'a dyn Fn(&Value, &[Value]) -> Result<Table, String>;

/// Every test of every file, run by `run(view, resources)`.
pub fn run_suite(run: Runner<'_>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for (file_name, file) in suite_files() {
        let resources = file["resources"].as_array().expect("resources");
        for test in file["tests"].as_array().expect("tests") {
            let title = test["title"].as_str().expect("a test has a title");
            outcomes.push(Outcome {
                name: format!("{file_name} / {title}"),
                failure: check(test, run(&test["view"], resources)).err(),
            });
        }
    }
    outcomes
}

/// Fails unless every outcome is as `known-failures.txt` says (and the suite is whole);
/// answers the number of tests that passed.
pub fn assert_as_known(outcomes: &[Outcome], runner: &str) -> usize {
    assert_eq!(
        outcomes.len(),
        SUITE_TESTS,
        "the vendored suite should hold {SUITE_TESTS} tests"
    );
    let known = known_failures();
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    for outcome in outcomes {
        match (&outcome.failure, known.get(&outcome.name)) {
            (Some(failure), None) => unexpected.push(format!("{}: {failure}", outcome.name)),
            (None, Some(_)) => fixed.push(outcome.name.clone()),
            _ => {}
        }
    }
    let stale: Vec<&String> = known
        .keys()
        .filter(|name| !outcomes.iter().any(|o| &o.name == *name))
        .collect();
    let passed = outcomes.iter().filter(|o| o.failure.is_none()).count();
    println!(
        "SQL on FHIR v2 ({runner}): {passed} of {} tests pass, {} known failures",
        outcomes.len(),
        known.len()
    );
    assert!(
        unexpected.is_empty() && fixed.is_empty() && stale.is_empty(),
        "failing and not in known-failures.txt:\n{}\n\npassing but listed in known-failures.txt \
         (remove them):\n{}\n\nlisted but not in the suite:\n{}",
        unexpected.join("\n"),
        fixed.join("\n"),
        stale
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    passed
}

/// `known-failures.txt`: `file / title — reason` per line; `#` starts a comment.
fn known_failures() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(suite_dir().join("known-failures.txt"))
        .expect("known-failures.txt exists (it may list nothing)");
    let mut known = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, reason) = line
            .split_once(" — ")
            .unwrap_or_else(|| panic!("a known failure needs a reason after ' — ': {line}"));
        assert!(!reason.trim().is_empty(), "empty reason: {line}");
        let previous = known.insert(name.trim().to_string(), reason.trim().to_string());
        assert!(previous.is_none(), "listed twice: {name}");
    }
    known
}

/// The vendored files in name order: each file's name and its JSON.
pub(crate) fn suite_files() -> Vec<(String, Value)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(suite_dir().join("tests"))
        .expect("the vendored tests")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            let file = fhir_model::json::parse(&bytes)
                .unwrap_or_else(|e| panic!("{file_name} is not JSON: {e:?}"));
            (file_name, file)
        })
        .collect()
}

/// One test: `Ok` when it passes, else why not.
fn check(test: &Value, result: Result<Table, String>) -> Result<(), String> {
    if test.get("expectError").and_then(Value::as_bool) == Some(true) {
        return match result {
            Err(_) => Ok(()),
            Ok(table) => Err(format!("expected an error, got {} rows", table.rows.len())),
        };
    }
    let Table { columns, rows } = result.map_err(|e| format!("unexpected error: {e}"))?;
    if let Some(expected) = test.get("expectColumns") {
        let expected: Vec<&str> = expected
            .as_array()
            .expect("expectColumns is an array")
            .iter()
            .map(|name| name.as_str().expect("column names"))
            .collect();
        if columns != expected {
            return Err(format!("columns {columns:?}, expected {expected:?}"));
        }
    }
    if let Some(count) = test.get("expectCount").and_then(Value::as_u64) {
        return match rows.len() as u64 == count {
            true => Ok(()),
            false => Err(format!("{} rows, expected {count}", rows.len())),
        };
    }
    let expected = test
        .get("expect")
        .and_then(Value::as_array)
        .ok_or("the test has no expect, expectCount or expectError")?;
    same_rows(&rows, expected)
}

/// Equal as multisets: each expected row matches one actual row not matched before.
fn same_rows(actual: &[Map<String, Value>], expected: &[Value]) -> Result<(), String> {
    let mismatch = || {
        format!(
            "rows {}, expected {}",
            Value::Array(actual.iter().cloned().map(Value::Object).collect()),
            Value::Array(expected.to_vec())
        )
    };
    if actual.len() != expected.len() {
        return Err(mismatch());
    }
    let mut unmatched: Vec<&Map<String, Value>> = actual.iter().collect();
    for row in expected {
        let Value::Object(row) = row else {
            return Err(format!("an expected row is not an object: {row}"));
        };
        match unmatched
            .iter()
            .position(|candidate| same_row(candidate, row))
        {
            Some(i) => {
                unmatched.swap_remove(i);
            }
            None => return Err(mismatch()),
        }
    }
    Ok(())
}

fn same_row(actual: &Map<String, Value>, expected: &Map<String, Value>) -> bool {
    actual.len() == expected.len()
        && expected
            .iter()
            .all(|(name, value)| actual.get(name).is_some_and(|a| same_value(a, value)))
}

/// JSON equality with numbers compared by value.
fn same_value(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => {
            let (x, y) = (a.as_str().parse::<f64>(), b.as_str().parse::<f64>());
            a.as_str() == b.as_str() || matches!((x, y), (Ok(x), Ok(y)) if x == y)
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(a), Value::Object(b)) => same_row(a, b),
        _ => actual == expected,
    }
}
