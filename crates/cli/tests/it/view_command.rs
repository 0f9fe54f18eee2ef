//! `meridian view run`: the official SQL on FHIR v2 suite through the command line (each
//! test's view and resources written to files, the binary run on them, its standard output
//! read back), a view over the store, and what the command refuses.

use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value, json};

use crate::official::{Table, assert_as_known, run_suite};
use crate::support;

/// `meridian ARGS`: the exit code, standard output and standard error.
pub(crate) fn meridian(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .env_clear()
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).expect("standard output is UTF-8"),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn write_ndjson(path: &Path, resources: &[Value]) {
    let text: String = resources.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Runs a view over resources with the binary: the columns from the CSV header, the rows from
/// the NDJSON output (every line an object, nothing else on standard output).
fn run_with_binary(dir: &Path, view: &Value, resources: &[Value]) -> Result<Table, String> {
    let view_file = dir.join("view.json");
    let resources_file = dir.join("resources.ndjson");
    std::fs::write(&view_file, view.to_string()).unwrap();
    write_ndjson(&resources_file, resources);
    let (view_arg, resources_arg) = (
        view_file.to_str().unwrap(),
        resources_file.to_str().unwrap(),
    );
    let (code, out, err) = meridian(&["view", "run", view_arg, "--resources", resources_arg]);
    if code != 0 {
        assert!(
            out.is_empty() || code == 1,
            "an invalid view writes no rows: {out}"
        );
        assert!(!err.trim().is_empty(), "a failure says why");
        return Err(format!("exit {code}: {}", err.trim()));
    }
    let rows = out
        .lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(row)) => Ok(row),
            _ => Err(format!(
                "standard output holds a line that is not a row: {line}"
            )),
        })
        .collect::<Result<Vec<Map<String, Value>>, String>>()?;
    let (code, csv, err) = meridian(&[
        "view",
        "run",
        view_arg,
        "--resources",
        resources_arg,
        "--format",
        "csv",
    ]);
    assert_eq!(code, 0, "the CSV run of a view the NDJSON run took: {err}");
    let header = csv.lines().next().unwrap_or("");
    let columns: Vec<String> = if header.is_empty() {
        Vec::new()
    } else {
        header.split(',').map(str::to_owned).collect()
    };
    assert_eq!(
        csv.lines().count(),
        rows.len() + 1,
        "a CSV line per row, after the header"
    );
    for row in &rows {
        let names: Vec<&String> = row.keys().collect();
        assert_eq!(
            names,
            columns.iter().collect::<Vec<_>>(),
            "every row names every column, in order"
        );
    }
    Ok(Table { columns, rows })
}

#[test]
fn the_official_suite_passes_through_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let outcomes = run_suite(&|view, resources| run_with_binary(dir.path(), view, resources));
    assert_as_known(&outcomes, "meridian view run");
}

const VIEW: &str = r#"{
  "resourceType": "ViewDefinition", "name": "patient_demographics", "resource": "Patient",
  "status": "active",
  "select": [
    {"column": [{"name": "id", "path": "getResourceKey()"},
                {"name": "gender", "path": "gender"},
                {"name": "birth_date", "path": "birthDate", "type": "date"}]},
    {"forEachOrNull": "name.where(use = 'official')",
     "column": [{"name": "family", "path": "family"},
                {"name": "given", "path": "given", "collection": true}]}
  ]
}"#;

#[test]
fn a_view_runs_over_the_store_as_csv_and_ndjson() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let patients = [
        json!({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1961-03-02",
            "name": [{"use": "official", "family": "王", "given": ["秀英"]}]}),
        json!({"resourceType": "Patient", "id": "p2", "gender": "male",
            "name": [{"use": "usual", "family": "Li, Jr.", "given": ["Wei", "\"Big\""]},
                     {"use": "official", "family": "Li, Jr.", "given": ["Wei", "\"Big\""]}]}),
        json!({"resourceType": "Patient", "id": "p3"}),
        json!({"resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"text": "not a patient"}}),
    ];
    let input = files.path().join("region.ndjson");
    write_ndjson(&input, &patients);
    let data_arg = data.path().to_str().unwrap();
    let (code, _, err) = meridian(&["import", "--data", data_arg, input.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let view = files.path().join("view.json");
    std::fs::write(&view, VIEW).unwrap();
    let view_arg = view.to_str().unwrap();

    let out = files.path().join("patients.csv");
    let (code, stdout, err) = meridian(&[
        "view",
        "run",
        view_arg,
        "--data",
        data_arg,
        "--format",
        "csv",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.is_empty(),
        "with --out, nothing on standard output: {stdout}"
    );
    assert!(err.contains("3 row(s) from 3 resource(s)"), "{err}");
    let csv = std::fs::read_to_string(&out).unwrap();
    let mut lines: Vec<&str> = csv.lines().collect();
    lines[1..].sort();
    assert_eq!(
        lines,
        [
            "id,gender,birth_date,family,given",
            "p1,female,1961-03-02,王,\"[\"\"秀英\"\"]\"",
            "p2,male,,\"Li, Jr.\",\"[\"\"Wei\"\",\"\"\\\"\"Big\\\"\"\"\"]\"",
            "p3,,,,",
        ]
    );

    let (code, stdout, err) = meridian(&["view", "run", view_arg, "--data", data_arg]);
    assert_eq!(code, 0, "{err}");
    let mut rows: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    rows.sort_by_key(|row| row["id"].as_str().unwrap().to_owned());
    assert_eq!(
        rows,
        [
            json!({"id": "p1", "gender": "female", "birth_date": "1961-03-02", "family": "王", "given": ["秀英"]}),
            json!({"id": "p2", "gender": "male", "birth_date": null, "family": "Li, Jr.", "given": ["Wei", "\"Big\""]}),
            json!({"id": "p3", "gender": null, "birth_date": null, "family": null, "given": null}),
        ]
    );
}

#[test]
fn what_the_command_refuses_it_says_and_the_exit_status_tells_apart() {
    let files = tempfile::tempdir().unwrap();
    let path = |name: &str| files.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(path("view.json"), VIEW).unwrap();
    std::fs::write(
        path("bad-view.json"),
        r#"{"resourceType": "ViewDefinition", "resource": "Patient", "select": [{"column": [{"name": "x", "path": "nosuchelement"}]}]}"#,
    )
    .unwrap();
    std::fs::write(path("not-json.json"), "{ViewDefinition").unwrap();
    std::fs::write(
        path("broken.ndjson"),
        "{\"resourceType\": \"Patient\", \"id\": \"a\"}\n{\"resourceType\": \"Pat\n",
    )
    .unwrap();
    std::fs::write(
        path("ok.ndjson"),
        "{\"resourceType\": \"Patient\", \"id\": \"a\"}\n",
    )
    .unwrap();

    // The view is at fault: exit 2, nothing on standard output.
    for (view, says) in [
        ("bad-view.json", "nosuchelement"),
        ("not-json.json", "not JSON"),
        ("missing.json", "reading"),
    ] {
        let (code, out, err) = meridian(&[
            "view",
            "run",
            &path(view),
            "--resources",
            &path("ok.ndjson"),
        ]);
        assert_eq!((code, out.as_str()), (2, ""), "{view}: {err}");
        assert!(err.contains(says), "{view}: {err}");
    }

    // Parquet: one file, its magic at both ends (its content is read back by pyarrow, pandas
    // and DuckDB in the analytics crate's tests).
    let (code, out, err) = meridian(&[
        "view",
        "run",
        &path("view.json"),
        "--resources",
        &path("ok.ndjson"),
        "--format",
        "parquet",
        "--out",
        &path("rows.parquet"),
    ]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("1 row(s) from 1 resource(s)"), "{err}");
    let file = std::fs::read(path("rows.parquet")).unwrap();
    assert!(
        file.starts_with(b"PAR1") && file.ends_with(b"PAR1"),
        "{} bytes",
        file.len()
    );

    // The input is at fault: exit 1, the rows before it written, the line named.
    let (code, out, err) = meridian(&[
        "view",
        "run",
        &path("view.json"),
        "--resources",
        &path("broken.ndjson"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.lines().count(), 1, "the first resource's row: {out}");
    assert!(err.contains("line 2"), "{err}");
}

/// `POST /fhir/$viewdefinition-run` as its callers make it.
fn run_view(
    serving: &support::Serving,
    token: Option<&str>,
    parameters: &[Value],
) -> support::Answer {
    support::send_as(
        serving.address,
        token,
        "POST",
        "/fhir/$viewdefinition-run",
        &[("Content-Type", "application/fhir+json")],
        &json!({"resourceType": "Parameters", "parameter": parameters}).to_string(),
    )
}

fn audit_events_about(serving: &support::Serving, patient: &str) -> u64 {
    let (status, _, body) = support::send(
        serving,
        "GET",
        &format!("/fhir/AuditEvent?patient={patient}&_summary=count"),
        &[],
        "",
    );
    assert_eq!(status, 200, "{body}");
    support::json_of(&body)["total"].as_u64().unwrap()
}

/// `$viewdefinition-run` with `_format=parquet` sent by Python's HTTP client, the answer read
/// by pyarrow (`parquet_check.py`): its content type, Arrow schema and rows (sorted by id).
fn parquet_over_http(serving: &support::Serving, view: &Value) -> Value {
    let python = support::python_with("cli-parquet", &["pyarrow==25.0.1"], "import pyarrow");
    let out = support::python_check(
        &python,
        "parquet_check.py",
        &[
            serving.address.to_string(),
            serving.token.clone(),
            view.to_string(),
        ],
    );
    support::json_of(&out)
}

#[test]
fn viewdefinition_run_over_http_runs_under_the_callers_identity_and_rules() {
    for backend in [support::Backend::Sqlite, support::Backend::Postgres] {
        let serving = support::serve_on(backend, &[]);
        support::put(
            &serving,
            json!({"resourceType": "Patient", "id": "p1", "gender": "female",
                "birthDate": "1961-03-02", "name": [{"use": "official", "family": "王", "given": ["秀英"]}]}),
        );
        support::put(
            &serving,
            json!({"resourceType": "Patient", "id": "p2", "gender": "male"}),
        );
        let clinician = support::clinician(&serving, "doctor", "township-clinic");
        let view: Value = serde_json::from_str(VIEW).unwrap();
        let view_parameter = json!({"name": "viewResource", "resource": view});
        let admin = Some(serving.token.as_str());

        // Over the server's Patients, as NDJSON by default; the residents read are on the trail.
        let before = audit_events_about(&serving, "Patient/p1");
        let (status, headers, body) =
            run_view(&serving, admin, std::slice::from_ref(&view_parameter));
        assert_eq!(status, 200, "{backend:?}: {body}");
        assert_eq!(
            support::header(&headers, "content-type"),
            Some("application/x-ndjson")
        );
        let mut rows: Vec<Value> = body.lines().map(support::json_of).collect();
        rows.sort_by_key(|row| row["id"].as_str().unwrap_or("").to_owned());
        assert_eq!(
            rows,
            [
                json!({"id": "p1", "gender": "female", "birth_date": "1961-03-02", "family": "王", "given": ["秀英"]}),
                json!({"id": "p2", "gender": "male", "birth_date": null, "family": null, "given": null}),
            ],
            "{backend:?}"
        );
        assert!(
            audit_events_about(&serving, "Patient/p1") > before,
            "{backend:?}: the run is on p1's trail"
        );

        // CSV with its header, a limit, and resources sent with the view instead of the store's.
        let (status, headers, body) = run_view(
            &serving,
            admin,
            &[
                view_parameter.clone(),
                json!({"name": "_format", "valueCode": "csv"}),
                json!({"name": "_limit", "valueInteger": 1}),
                json!({"name": "resource", "resource": {"resourceType": "Patient", "id": "sent", "gender": "other"}}),
                json!({"name": "resource", "resource": {"resourceType": "Patient", "id": "second"}}),
            ],
        );
        assert_eq!(status, 200, "{backend:?}: {body}");
        assert_eq!(
            support::header(&headers, "content-type"),
            Some("text/csv; charset=utf-8")
        );
        assert_eq!(
            body,
            "id,gender,birth_date,family,given\r\nsent,other,,,\r\n"
        );

        // What is refused, in FHIR's own form.
        let outcome = |answer: support::Answer, status: u16, says: &str| {
            assert_eq!(answer.0, status, "{backend:?}: {}", answer.2);
            let outcome = support::json_of(&answer.2);
            assert_eq!(outcome["resourceType"], "OperationOutcome", "{}", answer.2);
            assert!(answer.2.contains(says), "{backend:?}: {}", answer.2);
        };
        outcome(
            run_view(
                &serving,
                Some(&clinician),
                std::slice::from_ref(&view_parameter),
            ),
            403,
            "",
        );
        outcome(
            run_view(&serving, None, std::slice::from_ref(&view_parameter)),
            401,
            "",
        );
        let invalid = json!({"name": "viewResource", "resource": {"resourceType": "ViewDefinition",
            "resource": "Patient", "select": [{"column": [{"name": "x", "path": "nosuchelement"}]}]}});
        outcome(run_view(&serving, admin, &[invalid]), 400, "nosuchelement");
        outcome(
            run_view(
                &serving,
                admin,
                &[
                    view_parameter.clone(),
                    json!({"name": "_format", "valueCode": "xml"}),
                ],
            ),
            400,
            "not one this operation writes",
        );

        // A view kept in the store: the Library that holds it, named by `viewReference`, runs
        // as the same view sent inline does.
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(view.to_string());
        support::put(
            &serving,
            json!({"resourceType": "Library", "id": "patient-demographics", "status": "active",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/library-type", "code": "logic-library"}]},
                "content": [{"contentType": "application/json", "data": data}]}),
        );
        support::put(
            &serving,
            json!({"resourceType": "Library", "id": "no-view", "status": "active",
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/library-type", "code": "logic-library"}]},
                "content": [{"contentType": "text/plain", "data": "aGVsbG8="}]}),
        );
        let reference =
            |to: &str| json!({"name": "viewReference", "valueReference": {"reference": to}});
        let (status, _, body) = run_view(
            &serving,
            admin,
            &[reference("Library/patient-demographics")],
        );
        assert_eq!(status, 200, "{backend:?}: {body}");
        let mut stored_rows: Vec<Value> = body.lines().map(support::json_of).collect();
        stored_rows.sort_by_key(|row| row["id"].as_str().unwrap_or("").to_owned());
        assert_eq!(stored_rows, rows, "{backend:?}");
        outcome(
            run_view(&serving, admin, &[reference("Library/nosuch")]),
            404,
            "Library/nosuch",
        );
        outcome(
            run_view(&serving, admin, &[reference("Library/no-view")]),
            400,
            "holds no ViewDefinition",
        );
        outcome(
            run_view(&serving, admin, &[reference("Patient/p1")]),
            400,
            "Library/ID",
        );
        outcome(
            run_view(
                &serving,
                admin,
                &[
                    reference("Library/patient-demographics"),
                    view_parameter.clone(),
                ],
            ),
            400,
            "exactly one view",
        );
        outcome(
            run_view(
                &serving,
                Some(&clinician),
                &[reference("Library/patient-demographics")],
            ),
            403,
            "",
        );

        // Parquet, as pyarrow reads it from the answer: the rows, and types from the columns.
        let parquet = parquet_over_http(&serving, &view);
        assert_eq!(
            parquet["content_type"], "application/vnd.apache.parquet",
            "{backend:?}"
        );
        assert_eq!(
            parquet["schema"],
            json!({"id": "string", "gender": "string", "birth_date": "string",
                "family": "string", "given": "list<item: string>"}),
            "{backend:?}"
        );
        assert_eq!(
            parquet["rows"],
            json!([
                {"id": "p1", "gender": "female", "birth_date": "1961-03-02", "family": "王", "given": ["秀英"]},
                {"id": "p2", "gender": "male", "birth_date": null, "family": null, "given": null},
            ]),
            "{backend:?}"
        );
        outcome(
            run_view(&serving, admin, &[]),
            400,
            "exactly one view: a viewResource",
        );
        outcome(
            run_view(
                &serving,
                admin,
                &[
                    view_parameter.clone(),
                    json!({"name": "_limit", "valueInteger": 0}),
                ],
            ),
            400,
            "_limit",
        );
        let (status, _, body) = support::send(
            &serving,
            "POST",
            "/fhir/$viewdefinition-run",
            &[("Content-Type", "application/fhir+json")],
            "{\"resourceType\": \"Parameters\", \"parameter\": [",
        );
        assert_eq!(status, 400, "{backend:?}: {body}");
        assert!(serving.errors_logged().is_empty(), "{backend:?}");
    }
}
