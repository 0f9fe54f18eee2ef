//! Runs the official FHIRPath R4 suite (`tests/conformance/tests-fhir-r4.xml`) against the
//! engine. `tests/conformance/known-failures.txt` lists the tests that fail today: a listed
//! test that passes, or an unlisted test that fails, fails this test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fhirpath::{CompileOptions, Environment, Item, ParseErrorKind};
use serde_json::Value;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

struct Case {
    name: String,
    input_file: Option<String>,
    expression: String,
    invalid: Option<String>,
    strict: bool,
    predicate: bool,
    ordered: bool,
    outputs: Vec<(Option<String>, String)>,
}

fn read_cases() -> Vec<Case> {
    let xml = std::fs::read_to_string(suite_dir().join("tests-fhir-r4.xml"))
        .expect("the suite is vendored");
    let document = roxmltree::Document::parse(&xml).expect("the suite is well-formed XML");
    let mut cases = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for test in document.descendants().filter(|n| n.has_tag_name("test")) {
        let expression = test
            .children()
            .find(|n| n.has_tag_name("expression"))
            .expect("a test has an expression");
        let base = test.attribute("name").unwrap_or("unnamed").to_string();
        // A few names repeat; the second gets a suffix so each case has its own line.
        let count = seen.entry(base.clone()).or_default();
        *count += 1;
        let name = if *count == 1 {
            base
        } else {
            format!("{base}#{count}")
        };
        cases.push(Case {
            name,
            input_file: test.attribute("inputfile").map(str::to_string),
            expression: expression.text().unwrap_or("").to_string(),
            invalid: expression.attribute("invalid").map(str::to_string),
            strict: test.attribute("mode") == Some("strict"),
            predicate: test.attribute("predicate") == Some("true"),
            ordered: test.attribute("ordered") != Some("false"),
            outputs: test
                .children()
                .filter(|n| n.has_tag_name("output"))
                .map(|o| {
                    (
                        o.attribute("type").map(str::to_string),
                        o.text().unwrap_or("").to_string(),
                    )
                })
                .collect(),
        });
    }
    cases
}

fn load_input(file: &str) -> Value {
    let json_name = file
        .trim_end_matches(".xml")
        .trim_end_matches(".json")
        .to_string()
        + ".json";
    let text = std::fs::read_to_string(suite_dir().join("input").join(&json_name))
        .unwrap_or_else(|e| panic!("input {json_name}: {e}"));
    serde_json::from_str(&text).expect("inputs are JSON")
}

/// An item as the suite writes outputs: dates with `@`, quantities as `1 'mg'`.
fn render(item: &Item<'_>) -> String {
    if let Some(t) = item.as_temporal() {
        return match t.kind {
            fhirpath::TemporalKind::Time => format!("@T{t}"),
            _ => format!("@{t}"),
        };
    }
    if let Some(q) = item.as_quantity()
        && !item.is_fhir_type()
    {
        return q.to_string();
    }
    if let Some(b) = item.as_bool() {
        return b.to_string();
    }
    if let Some(text) = item.decimal_text() {
        return text;
    }
    if let Some(s) = item.as_str() {
        return s.to_string();
    }
    item.to_json().to_string()
}

/// The suite's type names for System types are FHIR-style (`integer`, `dateTime`).
fn type_matches(item: &Item<'_>, expected: &str) -> bool {
    match item.type_name().strip_prefix("System.") {
        Some(system) => match system {
            "Boolean" => expected == "boolean",
            "Integer" => expected == "integer",
            "Decimal" => expected == "decimal",
            "String" => expected == "string",
            "Date" => expected == "date",
            "DateTime" => expected == "dateTime",
            "Time" => expected == "time",
            "Quantity" => expected == "Quantity",
            _ => false,
        },
        None => item.type_name() == expected,
    }
}

/// `Ok(())` when the engine does what the case says, else why not.
fn run_case(case: &Case) -> Result<(), String> {
    let input = case
        .input_file
        .as_deref()
        .map(load_input)
        .unwrap_or(Value::Null);
    let options = CompileOptions {
        context_type: input
            .get("resourceType")
            .and_then(Value::as_str)
            .map(str::to_string),
        strict: case.strict,
    };
    let compiled = fhirpath::compile_with(&case.expression, &options);
    let environment = Environment::new();
    if let Some(kind) = &case.invalid {
        return match (kind.as_str(), compiled) {
            ("syntax", Err(e)) if e.kind == ParseErrorKind::Syntax => Ok(()),
            ("semantic", Err(e)) if e.kind == ParseErrorKind::Semantic => Ok(()),
            ("execution", Ok(expression)) => match expression.evaluate(&input, &environment) {
                Err(_) => Ok(()),
                Ok(result) => Err(format!("expected an evaluation error, got {result:?}")),
            },
            ("true", Err(_)) => Ok(()),
            ("true", Ok(expression)) if expression.evaluate(&input, &environment).is_err() => {
                Ok(())
            }
            (_, Err(e)) => Err(format!("expected a {kind} error, got {e}")),
            (_, Ok(expression)) => Err(format!(
                "expected a {kind} error, got {:?}",
                expression.evaluate(&input, &environment)
            )),
        };
    }
    let expression = compiled.map_err(|e| format!("compile: {e}"))?;
    let result = expression
        .evaluate(&input, &environment)
        .map_err(|e| format!("evaluate: {e}"))?;
    let actual: Vec<(String, String)> = if case.predicate {
        vec![("System.Boolean".into(), (!result.is_empty()).to_string())]
    } else {
        result
            .iter()
            .map(|i| (i.type_name().to_string(), render(i)))
            .collect()
    };
    let expected: Vec<String> = case.outputs.iter().map(|(_, v)| v.clone()).collect();
    let mut got: Vec<String> = actual.iter().map(|(_, v)| v.clone()).collect();
    let mut want = expected.clone();
    if !case.ordered {
        got.sort();
        want.sort();
    }
    if got != want {
        return Err(format!("expected {want:?}, got {got:?}"));
    }
    if !case.predicate {
        for ((expected_type, _), item) in case.outputs.iter().zip(result.iter()) {
            if let Some(expected_type) = expected_type
                && !type_matches(item, expected_type)
            {
                return Err(format!(
                    "expected type {expected_type}, got {}",
                    item.type_name()
                ));
            }
        }
    }
    Ok(())
}

fn known_failures() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(suite_dir().join("known-failures.txt"))
        .expect("known-failures.txt exists");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((name, reason)) => (name.to_string(), reason.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

#[test]
fn official_r4_suite_matches_the_known_failures_list() {
    let cases = read_cases();
    assert_eq!(cases.len(), 935, "the vendored suite has 935 tests");
    let known = known_failures();
    let mut passed = 0;
    let mut unexpected_failures = Vec::new();
    let mut unexpected_passes = Vec::new();
    let mut names = BTreeSet::new();
    for case in &cases {
        names.insert(case.name.clone());
        let outcome = std::panic::catch_unwind(|| run_case(case))
            .unwrap_or_else(|_| Err("the engine panicked".to_string()));
        match (outcome, known.contains_key(&case.name)) {
            (Ok(()), false) => passed += 1,
            (Ok(()), true) => unexpected_passes.push(case.name.clone()),
            (Err(_), true) => {}
            (Err(why), false) => unexpected_failures.push(format!(
                "{} `{}`: {why}",
                case.name,
                case.expression.replace('\n', " ")
            )),
        }
    }
    let stale: Vec<&String> = known.keys().filter(|k| !names.contains(*k)).collect();
    println!(
        "fhirpath conformance: {passed} of {} official R4 tests pass ({} known failures)",
        cases.len(),
        known.len()
    );
    assert!(
        stale.is_empty(),
        "known-failures.txt names tests that do not exist: {stale:?}"
    );
    assert!(
        unexpected_passes.is_empty(),
        "these tests now pass: remove them from known-failures.txt: {unexpected_passes:#?}"
    );
    assert!(
        unexpected_failures.is_empty(),
        "{} tests fail unexpectedly:\n{}",
        unexpected_failures.len(),
        unexpected_failures.join("\n")
    );
}
