//! `validate-corpus DIR...`: runs the structural validator over every JSON file under the
//! directories and reports how many resources pass, which fail, and the most frequent issues.
//! The corpora are not in the repository, so this is a tool, not a test; a Bundle counts as itself
//! plus one resource per entry, each judged by the issues that point into it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fhir_model::{Issue, r4};
use serde_json::Value;

/// How many failing resources to list (without `--all`), and how many issue patterns to show.
const LISTED_FAILURES: usize = 60;
const TOP_PATTERNS: usize = 25;

#[derive(Default)]
struct Tally {
    files: usize,
    unreadable: Vec<String>,
    resources: usize,
    valid: usize,
    invalid: Vec<(String, Vec<Issue>)>,
    patterns: BTreeMap<(String, String), usize>,
    bytes: u64,
    validating: Duration,
}

/// `list_all`: list every failing resource, not only the first [`LISTED_FAILURES`].
pub fn run(dirs: &[PathBuf], list_all: bool) -> Result<()> {
    let model = r4();
    let mut files = Vec::new();
    for dir in dirs {
        collect_json_files(dir, &mut files)
            .with_context(|| format!("listing {}", dir.display()))?;
    }
    files.sort();
    let mut tally = Tally::default();
    for path in &files {
        tally.files += 1;
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        tally.bytes += bytes.len() as u64;
        let value: Value = match fhir_model::json::parse(&bytes) {
            Ok(v) => v,
            Err(e) => {
                tally.unreadable.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let started = Instant::now();
        let issues = fhir_model::validate_with(
            model,
            &value,
            &fhir_model::ValidationOptions { max_issues: 10_000 },
        );
        tally.validating += started.elapsed();
        record(&mut tally, path, &value, issues);
    }
    report(
        &tally,
        if list_all {
            usize::MAX
        } else {
            LISTED_FAILURES
        },
    );
    Ok(())
}

fn collect_json_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_json_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Splits a file's issues among the Bundle and its entries, by the `Bundle.entry[N].resource`
/// prefix of their expressions.
fn record(tally: &mut Tally, path: &Path, value: &Value, issues: Vec<Issue>) {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let entries = if value.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
        value.get("entry").and_then(Value::as_array).map_or(0, |e| {
            e.iter().filter(|e| e.get("resource").is_some()).count()
        })
    } else {
        0
    };
    let mut by_unit: BTreeMap<Option<usize>, Vec<Issue>> = BTreeMap::new();
    for issue in issues.into_iter().filter(Issue::is_error) {
        let entry = issue.expression.as_deref().and_then(entry_index);
        let pattern = issue
            .expression
            .as_deref()
            .map(strip_indexes)
            .unwrap_or_default();
        *tally
            .patterns
            .entry((issue.code.as_str().to_owned(), pattern))
            .or_default() += 1;
        by_unit.entry(entry).or_default().push(issue);
    }
    tally.resources += 1 + entries;
    tally.valid += 1 + entries - by_unit.len();
    for (unit, issues) in by_unit {
        let label = match unit {
            Some(index) => format!("{name} entry[{index}]"),
            None => name.clone(),
        };
        tally.invalid.push((label, issues));
    }
}

fn entry_index(expression: &str) -> Option<usize> {
    let rest = expression.strip_prefix("Bundle.entry[")?;
    let (index, rest) = rest.split_once(']')?;
    rest.starts_with(".resource").then(|| index.parse().ok())?
}

/// `Patient.name[0].given[1]` -> `Patient.name.given`, to count issues by place.
fn strip_indexes(expression: &str) -> String {
    let mut out = String::with_capacity(expression.len());
    let mut depth = 0;
    for c in expression.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn report(tally: &Tally, listed: usize) {
    println!(
        "files: {}  ({:.1} MB)",
        tally.files,
        tally.bytes as f64 / 1e6
    );
    println!("unreadable files: {}", tally.unreadable.len());
    for line in &tally.unreadable {
        println!("  {line}");
    }
    println!(
        "resources: {}  valid: {}  invalid: {}",
        tally.resources,
        tally.valid,
        tally.resources - tally.valid
    );
    println!(
        "validation time: {:.3} s ({:.0} MB/s of JSON, parse not included)",
        tally.validating.as_secs_f64(),
        tally.bytes as f64 / 1e6 / tally.validating.as_secs_f64().max(1e-9)
    );
    let mut patterns: Vec<_> = tally.patterns.iter().collect();
    patterns.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!("most frequent issues (code, place):");
    for ((code, place), count) in patterns.into_iter().take(TOP_PATTERNS) {
        println!("  {count:>6}  {code:<13} {place}");
    }
    if !tally.invalid.is_empty() {
        println!(
            "invalid resources{}:",
            if listed < tally.invalid.len() {
                format!(" (first {listed})")
            } else {
                String::new()
            }
        );
    }
    for (label, issues) in tally.invalid.iter().take(listed) {
        println!("  {label}");
        for issue in issues.iter().take(5) {
            println!(
                "      {} at {}: {}",
                issue.code.as_str(),
                issue.expression.as_deref().unwrap_or("-"),
                issue.diagnostics
            );
        }
        if issues.len() > 5 {
            println!("      ... and {} more", issues.len() - 5);
        }
    }
}
