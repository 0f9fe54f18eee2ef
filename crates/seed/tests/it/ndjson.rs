//! Writing NDJSON files: one per type, the same bytes whatever the number of threads, and
//! the same as the stream.

use std::collections::BTreeMap;

use crate::support;

fn read_dir(dir: &std::path::Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_files_hold_the_stream_split_by_type_whatever_the_threads() {
    // More residents than one batch, and a count that does not fill the last one.
    let region = support::region(700, 11);
    let one = tempfile::tempdir().unwrap();
    let three = tempfile::tempdir().unwrap();
    let summary = seed::ndjson::write_region(&region, one.path(), 1, |_| {}).unwrap();
    let summary_three = seed::ndjson::write_region(&region, three.path(), 3, |_| {}).unwrap();
    assert_eq!(summary.counts, summary_three.counts);
    let files = read_dir(one.path());
    assert_eq!(files, read_dir(three.path()));

    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for (resource_type, resource) in region.resources() {
        let text = expected
            .entry(format!("{resource_type}.ndjson"))
            .or_default();
        text.push_str(&serde_json::to_string(&resource).unwrap());
        text.push('\n');
    }
    assert_eq!(files, expected);
    let lines: usize = files.values().map(|text| text.lines().count()).sum();
    assert_eq!(lines as u64, summary.resources());
    assert_eq!(
        files.values().map(|text| text.len() as u64).sum::<u64>(),
        summary.bytes
    );
}

#[test]
fn progress_is_reported_up_to_every_resident() {
    let region = support::region(300, 11);
    let dir = tempfile::tempdir().unwrap();
    let mut last = None;
    seed::ndjson::write_region(&region, dir.path(), 2, |progress| {
        last = Some((progress.residents_done, progress.residents))
    })
    .unwrap();
    assert_eq!(last, Some((300, 300)));
}

#[test]
fn a_second_run_replaces_the_files_of_the_first() {
    let dir = tempfile::tempdir().unwrap();
    // A stale file of a type the smaller region may not have.
    std::fs::write(dir.path().join("ImagingStudy.ndjson"), "stale\n").unwrap();
    seed::ndjson::write_region(&support::region(2, 1), dir.path(), 1, |_| {}).unwrap();
    let files = read_dir(dir.path());
    assert!(
        files
            .get("ImagingStudy.ndjson")
            .is_none_or(|text| !text.contains("stale")),
        "a file of an earlier run survived"
    );
    assert_eq!(files["Patient.ndjson"].lines().count(), 2);
}
