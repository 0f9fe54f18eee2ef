//! `meridian view materialise` on a generated region: the catalogue's views built as Parquet
//! directories, then, after new and changed resources are imported, refreshed from the change
//! log (only the changed resources read again); each time every view's directory, read whole
//! by pyarrow, holds exactly the rows `meridian view run` computes from scratch over the store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support;
use crate::view_command::meridian;

const PATIENTS: &str = "150";
const SEED: &str = "11";

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn catalogue_views() -> Vec<(String, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../analytics/catalogue/views");
    let mut views: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_stem().unwrap().to_str().unwrap().to_owned(), p))
        .collect();
    views.sort();
    views
}

/// Every catalogue view read from its directory by pyarrow, against the view run from scratch
/// over the store: the report of `materialised_check.py`.
fn compare_with_fresh_rows(python: &Path, data: &Path, views_dir: &Path, temp: &Path) -> Value {
    let mut args = vec![path(views_dir)];
    for (name, file) in catalogue_views() {
        let rows = temp.join(format!("{name}.fresh.ndjson"));
        let (code, _, err) = meridian(&[
            "view",
            "run",
            &path(&file),
            "--data",
            &path(data),
            "--out",
            &path(&rows),
        ]);
        assert_eq!(code, 0, "{name}: {err}");
        args.push(format!("{name}={}", path(&rows)));
    }
    let report = support::python_check(python, "materialised_check.py", &args);
    serde_json::from_str(&report).unwrap()
}

fn assert_same_rows(report: &Value) {
    for (name, _) in catalogue_views() {
        let view = &report[&name];
        assert_eq!(view["rows"], view["fresh_rows"], "{name}: {view}");
        assert_eq!(view["only_materialised"], json!([]), "{name}: {view}");
        assert_eq!(view["only_fresh"], json!([]), "{name}: {view}");
    }
}

/// The view lines of the command's standard error, by view name.
fn lines_by_view(stderr: &str) -> BTreeMap<String, String> {
    stderr
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(": ")?;
            (rest.starts_with("built") || rest.starts_with("refreshed"))
                .then(|| (name.trim().to_owned(), rest.to_owned()))
        })
        .collect()
}

fn read_ndjson(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn materialised_views_hold_the_rows_of_the_store_after_a_refresh() {
    let python = support::python_with(
        "cli-materialised",
        &["pyarrow==25.0.1"],
        "import pyarrow.parquet",
    );
    let temp = tempfile::tempdir().unwrap();
    let ndjson = temp.path().join("ndjson");
    let data = temp.path().join("store");
    let views_dir = temp.path().join("views");
    let seed = ["seed", "--patients", PATIENTS, "--seed", SEED];
    let (code, _, err) = meridian(&[&seed[..], &["--out", &path(&ndjson)]].concat());
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = meridian(&[&seed[..], &["--data", &path(&data)]].concat());
    assert_eq!(code, 0, "{err}");

    let materialise = [
        "view",
        "materialise",
        "--data",
        &path(&data),
        "--dir",
        &path(&views_dir),
    ];
    let (code, _, err) = meridian(&materialise);
    assert_eq!(code, 0, "{err}");
    let built = lines_by_view(&err);
    assert_eq!(built.len(), catalogue_views().len(), "{err}");
    assert!(
        built.values().all(|line| line.starts_with("built")),
        "{err}"
    );
    let report = compare_with_fresh_rows(&python, &data, &views_dir, temp.path());
    assert_same_rows(&report);
    // Types from the columns': decimals stay exact, booleans are booleans.
    assert_eq!(
        report["blood_pressure"]["schema"]["systolic"],
        "decimal128(38, 18)"
    );
    assert_eq!(report["patient"]["schema"]["has_health_record"], "bool");
    assert_eq!(
        report["diagnostic_report"]["schema"]["issued"],
        "timestamp[us, tz=UTC]"
    );
    // The region has rows in the views its indicators read.
    for name in [
        "patient",
        "encounter",
        "blood_pressure",
        "referral",
        "institution",
    ] {
        assert!(
            report[name]["rows"].as_u64().unwrap() > 0,
            "{name}: {report}"
        );
    }

    // New residents with a visit each at a new clinic; two residents move county; a visit's
    // end changes.
    let mut patients = read_ndjson(&ndjson.join("Patient.ndjson"));
    let mut encounters = read_ndjson(&ndjson.join("Encounter.ndjson"));
    let mut changes = vec![json!({"resourceType": "Organization", "id": "new-clinic",
        "name": "新村卫生室", "type": [{"coding": [{"system":
            "https://meridian.example/CodeSystem/institution-level", "code": "village-clinic"}]}],
        "address": [{"district": "新县"}]})];
    for n in 0..5 {
        changes.push(json!({"resourceType": "Patient", "id": format!("new-{n}"),
            "gender": "female", "birthDate": format!("1990-01-0{}", n + 1)}));
        changes.push(
            json!({"resourceType": "Encounter", "id": format!("new-visit-{n}"),
            "status": "finished", "class": {"system":
                "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": format!("Patient/new-{n}")},
            "serviceProvider": {"reference": "Organization/new-clinic"},
            "period": {"start": "2026-06-01T09:00:00+08:00"}}),
        );
    }
    for patient in patients.iter_mut().take(2) {
        patient["address"] = json!([{"use": "home", "district": "新县"}]);
        changes.push(patient.clone());
    }
    let visit = &mut encounters[0];
    visit["period"]["end"] = json!("2026-06-30T10:00:00+08:00");
    changes.push(visit.clone());
    let input = temp.path().join("changes.ndjson");
    std::fs::write(
        &input,
        changes.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    let (code, _, err) = meridian(&["import", "--data", &path(&data), &path(&input)]);
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = meridian(&materialise);
    assert_eq!(code, 0, "{err}");
    let refreshed = lines_by_view(&err);
    assert!(
        refreshed.values().all(|line| line.starts_with("refreshed")),
        "{err}"
    );
    // Only the changed resources were read again.
    for (view, read) in [
        ("patient", 7),
        ("encounter", 6),
        ("institution", 1),
        ("condition", 0),
    ] {
        assert!(
            refreshed[view].contains(&format!(" {read} resource(s) read")),
            "{view}: {err}"
        );
    }
    let report = compare_with_fresh_rows(&python, &data, &views_dir, temp.path());
    assert_same_rows(&report);

    // SQL over the refreshed views: visits by the level of the institution that gave them,
    // against the same count made straight from the NDJSON files and the changes.
    let level_system = "https://meridian.example/CodeSystem/institution-level";
    let mut levels: BTreeMap<String, String> = BTreeMap::new();
    for organization in read_ndjson(&ndjson.join("Organization.ndjson"))
        .iter()
        .chain(
            changes
                .iter()
                .filter(|r| r["resourceType"] == "Organization"),
        )
    {
        let level = organization["type"][0]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["system"] == level_system)
            .map(|c| c["code"].as_str().unwrap().to_owned());
        if let Some(level) = level {
            levels.insert(organization["id"].as_str().unwrap().to_owned(), level);
        }
    }
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for encounter in encounters
        .iter()
        .chain(changes.iter().filter(|r| r["resourceType"] == "Encounter"))
        .map(|e| (e["id"].as_str().unwrap(), e))
        .collect::<BTreeMap<_, _>>()
        .values()
    {
        let provider = encounter["serviceProvider"]["reference"]
            .as_str()
            .unwrap_or("");
        let level = provider
            .strip_prefix("Organization/")
            .and_then(|id| levels.get(id))
            .cloned()
            .unwrap_or_default();
        *expected.entry(level).or_default() += 1;
    }
    let query = "SELECT coalesce(i.level, '') AS level, count(*) AS visits FROM encounter e \
                 LEFT JOIN institution i ON i.id = e.institution GROUP BY 1 ORDER BY 1";
    let (code, stdout, err) = meridian(&[
        "sql",
        query,
        "--dir",
        &path(&views_dir),
        "--format",
        "ndjson",
    ]);
    assert_eq!(code, 0, "{err}");
    let answered: BTreeMap<String, u64> = stdout
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).unwrap();
            (
                row["level"].as_str().unwrap().to_owned(),
                row["visits"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(answered, expected);
    assert!(
        expected.contains_key("village-clinic") && expected.len() > 3,
        "{expected:?}"
    );
    let (code, stdout, err) = meridian(&[
        "sql",
        "SELECT sex, count(*) AS residents FROM patient GROUP BY sex ORDER BY sex",
        "--dir",
        &path(&views_dir),
        "--format",
        "csv",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.starts_with("sex,residents\r\n"), "{stdout}");
    let (code, stdout, err) = meridian(&["sql", "DROP TABLE patient", "--dir", &path(&views_dir)]);
    assert_eq!(code, 2, "{stdout}{err}");
    assert!(stdout.is_empty() && !err.is_empty());

    // `--full` builds again from every resource, to the same rows.
    let (code, _, err) = meridian(&[&materialise[..], &["--full", "patient"]].concat());
    assert_eq!(code, 2, "a view is a file, not a name: {err}");
    let (code, _, err) = meridian(&[&materialise[..], &["--full"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(lines_by_view(&err).values().all(|l| l.starts_with("built")));
    assert_same_rows(&compare_with_fresh_rows(
        &python,
        &data,
        &views_dir,
        temp.path(),
    ));
}
