//! SQL over materialised views: answers compared with the same figures computed from the
//! resources in Rust, the columns' SQL values by type, a join of two views, a refreshed view
//! read again, and every kind of statement that is not a query refused.

use std::path::Path;

use analytics::View;
use analytics::parquet::dataset::{Changed, Dataset};
use analytics_sql::{Engine, Limits, SqlError};
use serde_json::{Value, json};

fn patient_view() -> Value {
    json!({"resourceType": "ViewDefinition", "name": "patient", "resource": "Patient",
        "select": [{"column": [
            {"name": "id", "path": "getResourceKey()"},
            {"name": "sex", "path": "gender"},
            {"name": "active", "path": "active"},
            {"name": "births", "path": "multipleBirth.ofType(integer)"},
            {"name": "updated", "path": "meta.lastUpdated"},
            {"name": "given", "path": "name.given", "collection": true}]}]})
}

fn visit_view() -> Value {
    json!({"resourceType": "ViewDefinition", "name": "visit", "resource": "Observation",
        "select": [{"column": [
            {"name": "id", "path": "getResourceKey()"},
            {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
            {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"}]}]})
}

fn build(root: &Path, view: &Value, resources: &[Value]) {
    let dir = root.join(view["name"].as_str().unwrap());
    let mut build = Dataset::build(&dir, View::parse(view).unwrap(), view).unwrap();
    for resource in resources {
        build
            .add(resource["id"].as_str().unwrap(), resource)
            .unwrap();
    }
    build.finish(1, 1).unwrap();
}

fn patients() -> Vec<Value> {
    (0..300)
        .map(|n| {
            let sex = ["female", "male", "other"][n % 3];
            json!({"resourceType": "Patient", "id": format!("p{n}"),
                "gender": sex, "active": n % 4 != 0,
                "multipleBirthInteger": n % 5,
                "meta": {"lastUpdated": "2026-06-01T09:30:00.5+08:00"},
                "name": [{"given": ["A", format!("B{n}")]}]})
        })
        .collect()
}

fn observations() -> Vec<Value> {
    (0..900)
        .map(|n| {
            json!({"resourceType": "Observation", "id": format!("o{n}"), "status": "final",
                "code": {"text": "x"}, "subject": {"reference": format!("Patient/p{}", n % 300)},
                "valueQuantity": {"value": (n % 7) as f64 + 0.25}})
        })
        .collect()
}

fn region() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    build(root.path(), &patient_view(), &patients());
    build(root.path(), &visit_view(), &observations());
    root
}

fn engine(root: &Path) -> Engine {
    Engine::over(root, Limits::default()).unwrap()
}

#[test]
fn answers_equal_the_figures_computed_from_the_resources() {
    let root = region();
    let mut engine = engine(root.path());
    assert_eq!(engine.tables(), ["patient", "visit"]);

    let answer = engine
        .query("SELECT sex, count(*) AS n, sum(active) AS active FROM patient GROUP BY sex ORDER BY sex")
        .unwrap();
    assert_eq!(answer.columns, ["sex", "n", "active"]);
    let patients = patients();
    let mut expected = Vec::new();
    for sex in ["female", "male", "other"] {
        let of_sex = patients.iter().filter(|p| p["gender"] == sex);
        let count = of_sex.clone().count();
        let active = of_sex.filter(|p| p["active"] == true).count();
        expected.push(vec![json!(sex), json!(count), json!(active)]);
    }
    assert_eq!(answer.rows, expected);

    // A join of two views: the mean value by sex.
    let answer = engine
        .query(
            "SELECT p.sex, round(avg(v.value), 6) AS mean FROM visit v JOIN patient p ON p.id = v.patient \
             GROUP BY p.sex ORDER BY p.sex",
        )
        .unwrap();
    let observations = observations();
    for (row, sex) in answer.rows.iter().zip(["female", "male", "other"]) {
        let values: Vec<f64> = observations
            .iter()
            .filter(|o| {
                let n: usize = o["subject"]["reference"].as_str().unwrap()[9..]
                    .parse()
                    .unwrap();
                ["female", "male", "other"][n % 3] == sex
            })
            .map(|o| o["valueQuantity"]["value"].as_f64().unwrap())
            .collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert_eq!(row[0], sex);
        assert!(
            (row[1].as_f64().unwrap() - mean).abs() < 1e-6,
            "{row:?} {mean}"
        );
    }
}

#[test]
fn columns_read_as_their_types_say() {
    let root = region();
    let mut engine = engine(root.path());
    let answer = engine
        .query(
            "SELECT active, births, updated, given, typeof(active), typeof(births), \
             (SELECT count(*) FROM json_each(given)) FROM patient WHERE id = 'p7'",
        )
        .unwrap();
    assert_eq!(
        answer.rows,
        [vec![
            json!(1),
            json!(2),
            json!("2026-06-01T01:30:00.500000Z"),
            json!("[\"A\",\"B7\"]"),
            json!("integer"),
            json!("integer"),
            json!(2)
        ]]
    );
    let answer = engine
        .query("SELECT value, typeof(value) FROM visit WHERE id = 'o3'")
        .unwrap();
    assert_eq!(answer.rows, [vec![json!(3.25), json!("real")]]);
}

#[test]
fn a_refreshed_view_is_read_as_it_now_is() {
    let root = region();
    let dir = root.path().join("patient");
    let view = patient_view();
    let mut dataset = Dataset::open(&dir, View::parse(&view).unwrap(), &view)
        .unwrap()
        .unwrap();
    dataset
        .refresh(
            2,
            &[
                Changed {
                    id: "p0".into(),
                    resource: None,
                    may_have_rows: true,
                },
                Changed {
                    id: "new".into(),
                    resource: Some(
                        json!({"resourceType": "Patient", "id": "new", "gender": "male"}),
                    ),
                    may_have_rows: false,
                },
            ],
        )
        .unwrap();
    let mut engine = engine(root.path());
    let answer = engine
        .query("SELECT count(*), sum(id = 'p0'), sum(id = 'new') FROM patient")
        .unwrap();
    assert_eq!(answer.rows, [vec![json!(300), json!(0), json!(1)]]);
}

#[test]
fn only_queries_run() {
    let root = region();
    std::fs::create_dir_all(root.path().join("patient.building/_meridian")).unwrap();
    let mut engine = engine(root.path());
    assert_eq!(engine.tables(), ["patient", "visit"]);
    let attached = root.path().join("attached.db");
    for statement in [
        "INSERT INTO patient (id) VALUES ('x')".to_owned(),
        "DELETE FROM patient".to_owned(),
        "CREATE TABLE t (a)".to_owned(),
        "DROP TABLE patient".to_owned(),
        format!("ATTACH '{}' AS other", attached.display()),
        "PRAGMA table_info(patient)".to_owned(),
        "SELECT * FROM sqlite_master".to_owned(),
        "SELECT sql FROM sqlite_temp_master".to_owned(),
        "SELECT 1; DROP TABLE patient".to_owned(),
        "SELECT * FROM nowhere".to_owned(),
        "SELEC 1".to_owned(),
    ] {
        match engine.query(&statement) {
            Err(SqlError::Query(message)) => assert!(!message.is_empty()),
            other => panic!("{statement}: {other:?}"),
        }
    }
    assert!(!attached.exists(), "no file was made");
    // The tables are still there, whole.
    let answer = engine.query("SELECT count(*) FROM patient").unwrap();
    assert_eq!(answer.rows, [vec![json!(300)]]);
}

#[test]
fn answers_past_their_limits_are_refused() {
    let root = region();
    let mut engine = Engine::over(
        root.path(),
        Limits {
            rows: 100,
            seconds: 1,
        },
    )
    .unwrap();
    match engine.query("SELECT id FROM visit") {
        Err(SqlError::Limit(message)) => assert!(message.contains("100 rows"), "{message}"),
        other => panic!("{other:?}"),
    }
    // A query that would never end is stopped.
    match engine.query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n",
    ) {
        Err(SqlError::Limit(message)) => assert!(message.contains("longer than 1 s"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        engine.query("SELECT count(*) FROM visit").unwrap().rows,
        [vec![json!(900)]]
    );
}
