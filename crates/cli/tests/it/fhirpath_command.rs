//! `meridian fhirpath`, run as a real process: output, typed output, and exit statuses.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn meridian(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("stdin takes the input");
    child.wait_with_output().expect("the binary finishes")
}

const PATIENT: &str = r#"{"resourceType": "Patient", "id": "p1", "birthDate": "2012-04",
  "name": [{"family": "Chalmers", "given": ["Peter", "James"]}]}"#;

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn prints_the_result_collection_as_a_json_array() {
    let output = meridian(&["fhirpath", "name.given"], PATIENT);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout(&output), r#"["Peter","James"]"#);
}

#[test]
fn typed_output_names_fhir_and_system_types_and_keeps_date_precision() {
    let output = meridian(
        &[
            "fhirpath",
            "--typed",
            "birthDate | name.given.count() | (1.5 'mg') | (@2012-04 + 1 month)",
            "-",
        ],
        PATIENT,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value =
        serde_json::from_str(&stdout(&output)).expect("the output is JSON");
    assert_eq!(
        value,
        serde_json::json!([
            {"type": "date", "value": "2012-04"},
            {"type": "System.Integer", "value": 2},
            {"type": "System.Quantity", "value": {"value": 1.5, "unit": "mg"}},
            {"type": "System.Date", "value": "2012-05"}
        ])
    );
}

#[test]
fn reads_the_resource_from_a_file() {
    let dir = std::env::temp_dir().join(format!("meridian-fhirpath-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("patient.json");
    std::fs::write(&file, PATIENT).unwrap();
    let output = meridian(&["fhirpath", "Patient.id", file.to_str().unwrap()], "");
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout(&output), r#"["p1"]"#);
}

#[test]
fn a_syntax_error_prints_the_column_and_exits_2() {
    let output = meridian(&["fhirpath", "name.given +"], PATIENT);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("column 13"), "{stderr}");
}

#[test]
fn an_unknown_element_is_reported_before_evaluation() {
    let output = meridian(&["fhirpath", "Patient.nmae"], PATIENT);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Patient has no element nmae"));
}

#[test]
fn an_evaluation_error_exits_1_with_a_message() {
    let output = meridian(&["fhirpath", "name.given.single()"], PATIENT);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("expects a single item"));
    assert!(output.stdout.is_empty());
}

#[test]
fn input_that_is_not_json_exits_1() {
    let output = meridian(&["fhirpath", "name"], "not json");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not FHIR JSON"));
}

#[test]
fn input_is_read_as_the_server_reads_it() {
    // A byte-order mark is skipped; a property named twice is refused, not silently resolved.
    let marked = format!("\u{feff}{PATIENT}");
    let output = meridian(&["fhirpath", "name.family"], &marked);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout(&output), r#"["Chalmers"]"#);
    let twice = r#"{"resourceType": "Patient", "id": "a", "id": "b"}"#;
    let output = meridian(&["fhirpath", "id"], twice);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("'id' appears twice"));
}
