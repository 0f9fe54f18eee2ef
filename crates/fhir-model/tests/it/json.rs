//! The FHIR JSON reader: the same values as `serde_json` for every valid document, and refusals,
//! with places, for what `serde_json` would let through.

use std::path::Path;

use fhir_model::json::parse;
use fhir_model::{IssueCode, JsonError, JsonProblem};
use serde_json::Value;

fn refused(text: &str) -> JsonError {
    match parse(text.as_bytes()) {
        Ok(value) => panic!("{text:?} was accepted as {value}"),
        Err(error) => error,
    }
}

fn duplicate(text: &str) -> (String, usize, usize, Option<String>) {
    let error = refused(text);
    let JsonProblem::DuplicateKey(key) = &error.problem else {
        panic!("{text:?}: not a duplicate: {error}");
    };
    (key.clone(), error.line, error.column, error.path.clone())
}

#[test]
fn values_are_the_same_as_serde_json_reads_them_order_and_number_text_kept() {
    let text = r#"{"resourceType":"Observation","b":1,"a":1.50,"c":1e3,"d":-0.0,"e":12345678901234567890123.000,"f":[true,false,null,"x\u00e9\n"],"g":{}}"#;
    let ours = parse(text.as_bytes()).unwrap();
    let theirs: Value = serde_json::from_str(text).unwrap();
    assert_eq!(ours, theirs);
    // serde_json writes an exponent with its sign (1e3 as 1e+3); otherwise the text is kept.
    assert_eq!(
        ours.to_string(),
        text.replace("\\u00e9", "é").replace("1e3", "1e+3")
    );
    let keys: Vec<&str> = ours
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["resourceType", "b", "a", "c", "d", "e", "f", "g"]);
    assert_eq!(ours["a"].as_number().unwrap().as_str(), "1.50");
}

#[test]
fn every_vendored_document_reads_as_serde_json_reads_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("benches/data/synthea-patient-bundle.json")];
    for dir in ["tests/data/examples", "tests/data/validator-cases"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 90);
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let theirs: Result<Value, _> = serde_json::from_slice(&bytes);
        match (parse(&bytes), theirs) {
            (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs, "{}", path.display()),
            // The validator suite has a file with JSON comments: neither reads it.
            (Err(_), Err(_)) => {}
            // And one that names a property twice, which only serde_json takes.
            (Err(error), Ok(_)) if path.ends_with("patient-duplicate.json") => {
                assert_eq!(error.problem, JsonProblem::DuplicateKey("active".into()));
                assert_eq!(error.path.as_deref(), Some("Patient.active"));
            }
            (ours, theirs) => panic!("{}: {ours:?} but serde_json {theirs:?}", path.display()),
        }
    }
}

#[test]
fn a_property_named_twice_is_refused_with_its_name_and_place() {
    assert_eq!(
        duplicate(r#"{"resourceType":"Patient","gender":"male","gender":"female"}"#),
        ("gender".into(), 1, 50, Some("Patient.gender".into()))
    );
    assert_eq!(
        duplicate(
            "{\n  \"resourceType\": \"Patient\",\n  \"name\": [\n    {\"family\": \"a\"},\n    {\"family\": \"b\", \"family\": \"c\"}\n  ]\n}"
        ),
        (
            "family".into(),
            5,
            28,
            Some("Patient.name[1].family".into())
        )
    );
    let in_bundle = r#"{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"}},{"resource":{"resourceType":"Patient","id":"a","id":"b"}}]}"#;
    assert_eq!(
        duplicate(in_bundle).3.as_deref(),
        Some("Bundle.entry[1].resource.id")
    );
    // The key as decoded counts: an escape does not make it another key.
    assert_eq!(duplicate(r#"{"a":1,"\u0061":2}"#).0, "a");
    // The same key in two objects, or two keys that differ in case, are fine.
    assert!(parse(br#"{"a":{"x":1},"b":{"x":1},"A":1}"#).is_ok());
    // Without a resourceType the path starts at the first key.
    assert_eq!(
        duplicate(r#"{"x":[{"y":1,"y":1}]}"#).3.as_deref(),
        Some("x[0].y")
    );
}

#[test]
fn a_refusal_reads_as_a_structure_issue_at_the_place() {
    let error = refused(r#"{"resourceType":"Patient","active":true,"active":false}"#);
    let issue = error.issue();
    assert_eq!(issue.code, IssueCode::Structure);
    assert_eq!(issue.expression.as_deref(), Some("Patient.active"));
    assert!(
        issue.diagnostics.contains("'active' appears twice"),
        "{}",
        issue.diagnostics
    );
    assert!(
        issue.diagnostics.contains("line 1"),
        "{}",
        issue.diagnostics
    );
}

#[test]
fn a_leading_byte_order_mark_is_skipped() {
    let with_mark = b"\xEF\xBB\xBF{\"resourceType\":\"Patient\"}";
    assert_eq!(
        parse(with_mark).unwrap(),
        serde_json::json!({"resourceType": "Patient"})
    );
    assert!(parse(b"\xEF\xBB\xBF\n  [1]\n").is_ok());
    // One mark, at the start: not two, and not anywhere else.
    assert!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBF{}").is_err());
    assert!(parse(b" \xEF\xBB\xBF{}").is_err());
    assert!(parse(b"\xEF\xBB\xBF").is_err());
}

#[test]
fn what_is_not_json_is_refused_with_a_line() {
    for (text, line) in [
        ("{\"resourceType\": \"Patient\",", 1),
        ("", 1),
        ("{\"a\": 1}\n{\"b\": 2}", 2),
        ("{\"a\": 01}", 1),
        ("{\"a\": NaN}", 1),
        ("{'a': 1}", 1),
        ("{\"a\": \"\u{1}\"}", 1),
    ] {
        let error = refused(text);
        assert!(
            matches!(error.problem, JsonProblem::Syntax(_)),
            "{text:?}: {error}"
        );
        assert_eq!(error.line, line, "{text:?}: {error}");
        assert!(
            error.to_string().contains(&format!("line {line}")),
            "{error}"
        );
    }
    assert!(matches!(
        parse(b"{\"a\": \"\xff\"}").unwrap_err().problem,
        JsonProblem::Syntax(_)
    ));
    let nested = refused(r#"{"resourceType":"Patient","name":[{"given":["a",]}]}"#);
    assert_eq!(nested.path.as_deref(), Some("Patient.name[0].given[1]"));
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse(text.as_bytes()).is_err());
    let objects = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    assert!(parse(objects.as_bytes()).is_err());
}
