//! Materialised views (`analytics::parquet::dataset`): a full build, then refreshes with new,
//! changed and deleted resources, each time compared with the rows the view gives over the
//! resources as they then are; small parts merged; a refresh that stopped half-way undone; a
//! dataset made by another view not reused.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use analytics::View;
use analytics::parquet::dataset::{Changed, Dataset, datasets_in};
use arrow_array::Array;
use arrow_array::cast::AsArray;
use serde_json::{Value, json};

/// A view with a row per name: a resource has as many rows as names.
fn view_json() -> Value {
    json!({"resourceType": "ViewDefinition", "name": "patient_names", "resource": "Patient",
        "select": [{"column": [{"name": "id", "path": "getResourceKey()"}]},
                   {"forEach": "name", "column": [{"name": "family", "path": "family"}]}]})
}

fn view() -> View {
    View::parse(&view_json()).unwrap()
}

fn patient(id: &str, families: &[&str]) -> Value {
    let names: Vec<Value> = families.iter().map(|f| json!({"family": f})).collect();
    json!({"resourceType": "Patient", "id": id, "name": names})
}

/// The rows the view gives over `resources`, sorted.
fn expected(resources: &BTreeMap<String, Value>) -> Vec<(String, String)> {
    let view = view();
    let mut rows: Vec<(String, String)> = resources
        .values()
        .flat_map(|r| view.rows(r).unwrap())
        .map(|row| {
            (
                row[0].as_str().unwrap().to_owned(),
                row[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Every row of every Parquet file in `dir` (as a reader of the directory sees them), sorted.
fn read_rows(dir: &Path) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("parquet") {
            continue;
        }
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let ids = batch.column(0).as_string::<i32>();
            let families = batch.column(1).as_string::<i32>();
            for at in 0..batch.num_rows() {
                assert!(!ids.is_null(at) && !families.is_null(at));
                rows.push((ids.value(at).to_owned(), families.value(at).to_owned()));
            }
        }
    }
    rows.sort();
    rows
}

fn parquet_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .and_then(|e| e.to_str())
                == Some("parquet")
        })
        .count()
}

fn build(dir: &Path, resources: &BTreeMap<String, Value>, position: i64) -> Dataset {
    let mut build = Dataset::build(dir, view(), &view_json()).unwrap();
    for (id, resource) in resources {
        build.add(id, resource).unwrap();
    }
    let (dataset, summary) = build.finish(position, position).unwrap();
    assert_eq!(summary.resources, resources.len() as u64);
    assert_eq!(summary.rows, expected(resources).len() as u64);
    dataset
}

#[test]
fn a_refresh_gives_the_rows_of_the_resources_as_they_now_are() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("patient_names");
    let mut resources: BTreeMap<String, Value> = (0..50)
        .map(|n| {
            (
                format!("p{n}"),
                patient(&format!("p{n}"), &["Li", "Wang"][..1 + n % 2]),
            )
        })
        .collect();
    build(&dir, &resources, 10);
    assert_eq!(read_rows(&dir), expected(&resources));

    let mut dataset = Dataset::open(&dir, view(), &view_json()).unwrap().unwrap();
    assert_eq!(dataset.position(), 10);
    // New resources, one changed (two names become three), one deleted, one changed to none.
    let mut changed = Vec::new();
    for n in 50..55 {
        let id = format!("p{n}");
        let resource = patient(&id, &["Zhao"]);
        resources.insert(id.clone(), resource.clone());
        changed.push(Changed {
            id,
            resource: Some(resource),
            may_have_rows: false,
        });
    }
    let p1 = patient("p1", &["Chen", "Liu", "Yang"]);
    resources.insert("p1".into(), p1.clone());
    changed.push(Changed {
        id: "p1".into(),
        resource: Some(p1),
        may_have_rows: true,
    });
    resources.remove("p2");
    changed.push(Changed {
        id: "p2".into(),
        resource: None,
        may_have_rows: true,
    });
    let p3 = patient("p3", &[]);
    resources.insert("p3".into(), p3.clone());
    changed.push(Changed {
        id: "p3".into(),
        resource: Some(p3),
        may_have_rows: true,
    });
    let summary = dataset.refresh(20, &changed).unwrap();
    assert_eq!(read_rows(&dir), expected(&resources));
    assert_eq!(dataset.rows(), expected(&resources).len() as u64);
    // p1 had 2 rows, p2 1, p3 2.
    assert_eq!(summary.rows_removed, 5);
    assert_eq!(summary.rows_added, 5 + 3);
    assert_eq!(summary.parts_rewritten, 1);

    // Reopened, it knows its position and gives the same rows.
    let reopened = Dataset::open(&dir, view(), &view_json()).unwrap().unwrap();
    assert_eq!(reopened.position(), 20);
    assert_eq!(reopened.rows(), dataset.rows());
    assert_eq!(
        datasets_in(root.path()).unwrap(),
        vec![("patient_names".to_string(), dir.clone())]
    );
}

#[test]
fn small_parts_are_merged_and_the_rows_stay() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("patient_names");
    let mut resources: BTreeMap<String, Value> = [("a".to_string(), patient("a", &["Li"]))].into();
    build(&dir, &resources, 1);
    let mut dataset = Dataset::open(&dir, view(), &view_json()).unwrap().unwrap();
    let mut most_files = 0;
    for round in 0..30 {
        let id = format!("r{round}");
        let resource = patient(&id, &["Sun", "Zhou"]);
        resources.insert(id.clone(), resource.clone());
        // Every third round also changes the first resource.
        let mut changed = vec![Changed {
            id,
            resource: Some(resource),
            may_have_rows: false,
        }];
        if round % 3 == 0 {
            let a = patient("a", &[&format!("Li{round}")]);
            resources.insert("a".into(), a.clone());
            changed.push(Changed {
                id: "a".into(),
                resource: Some(a),
                may_have_rows: true,
            });
        }
        dataset.refresh(2 + round, &changed).unwrap();
        assert_eq!(read_rows(&dir), expected(&resources), "after round {round}");
        most_files = most_files.max(parquet_files(&dir));
    }
    assert!(most_files <= 10, "{most_files} parts at most");
    assert_eq!(dataset.files().len(), parquet_files(&dir));
}

#[test]
fn files_a_stopped_refresh_left_are_removed_and_another_view_starts_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("patient_names");
    let resources: BTreeMap<String, Value> = [("a".to_string(), patient("a", &["Li"]))].into();
    build(&dir, &resources, 1);
    // What a refresh writes before its manifest: a part and its keys.
    std::fs::copy(
        dir.join("part-000001.parquet"),
        dir.join("part-000009.parquet"),
    )
    .unwrap();
    std::fs::write(dir.join("_meridian/part-000009.keys"), "a\t1\n").unwrap();
    let dataset = Dataset::open(&dir, view(), &view_json()).unwrap().unwrap();
    assert_eq!(read_rows(&dir), expected(&resources));
    assert!(!dir.join("_meridian/part-000009.keys").exists());
    assert_eq!(dataset.files(), vec![dir.join("part-000001.parquet")]);

    let mut other = view_json();
    other["select"][1]["column"][0]["name"] = json!("surname");
    assert!(
        Dataset::open(&dir, View::parse(&other).unwrap(), &other)
            .unwrap()
            .is_none()
    );
    // A rebuild replaces the directory whole.
    let mut rebuild = Dataset::build(&dir, View::parse(&other).unwrap(), &other).unwrap();
    rebuild.add("b", &patient("b", &["Wu"])).unwrap();
    let (rebuilt, _) = rebuild.finish(5, 5).unwrap();
    assert_eq!(read_rows(&dir), vec![("b".to_string(), "Wu".to_string())]);
    assert_eq!(rebuilt.position(), 5);
    assert!(Dataset::open(&dir, view(), &view_json()).unwrap().is_none());
}

#[test]
fn a_manifest_that_is_not_one_is_an_error_not_a_start_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("v");
    std::fs::create_dir_all(dir.join("_meridian")).unwrap();
    std::fs::write(dir.join("_meridian/manifest.json"), "{\"parts\": 3}").unwrap();
    let error = Dataset::open(&dir, view(), &view_json()).err().unwrap();
    assert!(
        error.to_string().contains("is not a dataset manifest"),
        "{error}"
    );
}
