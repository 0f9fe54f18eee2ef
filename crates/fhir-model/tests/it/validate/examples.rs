//! Vendored suites: the R4 examples of fhir-test-cases (each valid, or listed as a known failure
//! with the place of its first error), and structural cases from the FHIR validator's own tests.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use fhir_model::{Issue, r4, validate};
use serde_json::Value;

fn data_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn load(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lines of a `|`-separated list, without comments (whole lines starting with `#`, or ` # ...`
/// after the fields).
fn table_rows(path: &Path) -> Vec<Vec<String>> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| line.split(" # ").next().unwrap_or(line).trim())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            line.split('|')
                .map(|field| field.trim().to_owned())
                .collect()
        })
        .collect()
}

fn describe(issues: &[Issue]) -> String {
    issues
        .iter()
        .take(5)
        .map(|i| {
            format!(
                "    {} at {}: {}",
                i.code.as_str(),
                i.expression.as_deref().unwrap_or("-"),
                i.diagnostics
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_r4_example_is_valid_or_a_known_failure() {
    let dir = data_dir("examples");
    let known: BTreeMap<String, String> = table_rows(&dir.join("KNOWN-FAILURES.txt"))
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 72, "the vendored examples are all here");

    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let errors: Vec<Issue> = validate(r4(), &load(path))
            .into_iter()
            .filter(Issue::is_error)
            .collect();
        match (known.get(&name), errors.first()) {
            (None, None) => {}
            (None, Some(_)) => failures.push(format!("{name} has errors:\n{}", describe(&errors))),
            (Some(_), None) => failures.push(format!(
                "{name} is listed as a known failure but now validates: remove it"
            )),
            (Some(expected), Some(first))
                if first.expression.as_deref() != Some(expected.as_str()) =>
            {
                failures.push(format!(
                    "{name} fails, but first at {:?}, not at {expected}:\n{}",
                    first.expression,
                    describe(&errors)
                ))
            }
            (Some(_), Some(_)) => {}
        }
    }
    for name in known.keys() {
        if !files
            .iter()
            .any(|p| p.file_name().is_some_and(|f| f.to_string_lossy() == *name))
        {
            failures.push(format!(
                "{name} is listed as a known failure but is not vendored"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn structural_cases_of_the_fhir_validator_suite_give_the_same_verdict() {
    let dir = data_dir("validator-cases");
    let rows = table_rows(&dir.join("cases.txt"));
    assert!(rows.len() >= 25, "the case list is read");
    let mut failures = Vec::new();
    for row in rows {
        let [file, case, expected] = &row[..] else {
            panic!("bad row {row:?}")
        };
        let issues = validate(r4(), &load(&dir.join(file)));
        let actual: Vec<String> = issues
            .iter()
            .map(|i| {
                format!(
                    "{} {}",
                    i.code.as_str(),
                    i.expression.as_deref().unwrap_or("-")
                )
            })
            .collect();
        let expected: Vec<String> = if expected == "valid" {
            Vec::new()
        } else {
            expected.split(';').map(|s| s.trim().to_owned()).collect()
        };
        if actual != expected {
            failures.push(format!(
                "{case} ({file}): expected {expected:?}, found:\n{}",
                describe(&issues)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
