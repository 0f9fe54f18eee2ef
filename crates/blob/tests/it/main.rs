//! The blob store contract on the filesystem implementation, and its keys.

use blob::{BlobError, BlobKey, FileBlobStore};

#[test]
fn the_filesystem_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlobStore::open(dir.path().join("blobs")).unwrap();
    test_support::blob_contract::check_all(&store, "contract");
    // An abandoned writer's temporary file is removed, not only hidden.
    let leftovers = std::fs::read_dir(dir.path().join("blobs/contract/visible/exports/job1"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 1);
}

#[test]
fn keys_cannot_leave_the_root() {
    for bad in [
        "",
        "/a",
        "a/",
        "a//b",
        "../etc/passwd",
        "a/../b",
        "./a",
        "a b",
        "a\0b",
        "a/%2e%2e",
    ] {
        assert!(
            matches!(BlobKey::new(bad), Err(BlobError::InvalidKey(_))),
            "{bad:?}"
        );
    }
    for good in [
        "a",
        "exports/4f1c-9/Patient.ndjson",
        "dicom/1.2.840.10008/x_y",
    ] {
        BlobKey::new(good).unwrap();
    }
    assert!(
        BlobKey::new("a/b/c")
            .unwrap()
            .starts_with(&BlobKey::new("a/b").unwrap())
    );
    assert!(
        !BlobKey::new("a/bc")
            .unwrap()
            .starts_with(&BlobKey::new("a/b").unwrap())
    );
}
