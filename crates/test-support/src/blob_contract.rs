//! The blob store contract: what every implementation does (blobs written whole or not at
//! all, replaced, listed and removed by prefix), run unchanged against the filesystem and the
//! S3 implementations. Each check panics when the store does not hold to it.

use std::io::{Read, Write};

use blob::{BlobKey, BlobStore};

fn key(text: &str) -> BlobKey {
    BlobKey::new(text).unwrap()
}

/// Every check, each under keys of its own below `root`.
pub fn check_all(store: &dyn BlobStore, root: &str) {
    a_blob_is_visible_only_once_finished_and_a_dropped_writer_leaves_nothing(
        store,
        &format!("{root}/visible"),
    );
    blobs_are_replaced_listed_and_removed_by_prefix(store, &format!("{root}/listing"));
    large_blobs_stream_in_and_out(store, &format!("{root}/large"));
}

pub fn a_blob_is_visible_only_once_finished_and_a_dropped_writer_leaves_nothing(
    store: &dyn BlobStore,
    root: &str,
) {
    let k = key(&format!("{root}/exports/job1/Patient.ndjson"));
    let mut writer = store.create(&k).unwrap();
    writer
        .write_all(b"{\"resourceType\":\"Patient\"}\n")
        .unwrap();
    assert_eq!(store.size(&k).unwrap(), None, "not visible before finish");
    assert_eq!(store.list(&key(&format!("{root}/exports"))).unwrap(), []);
    assert_eq!(writer.finish().unwrap(), 27);
    assert_eq!(store.size(&k).unwrap(), Some(27));
    let mut text = String::new();
    store
        .open(&k)
        .unwrap()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "{\"resourceType\":\"Patient\"}\n");

    let other = key(&format!("{root}/exports/job1/Observation.ndjson"));
    let mut abandoned = store.create(&other).unwrap();
    abandoned.write_all(b"half").unwrap();
    drop(abandoned);
    assert_eq!(store.size(&other).unwrap(), None);
    let listed: Vec<BlobKey> = store
        .list(&key(&format!("{root}/exports")))
        .unwrap()
        .into_iter()
        .map(|b| b.key)
        .collect();
    assert_eq!(listed, [k], "the abandoned blob left nothing listed");
}

pub fn blobs_are_replaced_listed_and_removed_by_prefix(store: &dyn BlobStore, root: &str) {
    let key = |text: &str| key(&format!("{root}/{text}"));
    store.put(&key("exports/a/1.ndjson"), b"one").unwrap();
    store.put(&key("exports/a/2.ndjson"), b"two").unwrap();
    store.put(&key("exports/b/1.ndjson"), b"three").unwrap();
    store.put(&key("exports/a/1.ndjson"), b"uno!").unwrap();
    assert_eq!(
        store.get(&key("exports/a/1.ndjson")).unwrap().unwrap(),
        b"uno!"
    );
    let listed: Vec<(String, u64)> = store
        .list(&key("exports"))
        .unwrap()
        .into_iter()
        .map(|b| (b.key.to_string(), b.size))
        .collect();
    assert_eq!(
        listed,
        [
            (format!("{root}/exports/a/1.ndjson"), 4),
            (format!("{root}/exports/a/2.ndjson"), 3),
            (format!("{root}/exports/b/1.ndjson"), 5)
        ]
    );
    assert_eq!(store.delete_prefix(&key("exports/a")).unwrap(), 2);
    assert_eq!(store.list(&key("exports")).unwrap().len(), 1);
    store.delete(&key("exports/b/1.ndjson")).unwrap();
    store.delete(&key("exports/b/1.ndjson")).unwrap();
    assert_eq!(store.get(&key("exports/b/1.ndjson")).unwrap(), None);
    assert_eq!(store.list(&key("nothing/here")).unwrap(), []);
}

pub fn large_blobs_stream_in_and_out(store: &dyn BlobStore, root: &str) {
    // Larger than a multipart upload's first part (S3 parts are at least 5 MiB), written in
    // uneven pieces, read back in small ones.
    let k = key(&format!("{root}/large/blob.bin"));
    let piece: Vec<u8> = (0..=250u8).cycle().take(1_000_003).collect();
    let mut writer = store.create(&k).unwrap();
    for _ in 0..7 {
        writer.write_all(&piece).unwrap();
    }
    assert_eq!(writer.finish().unwrap(), 7_000_021);
    assert_eq!(store.size(&k).unwrap(), Some(7_000_021));
    let mut reader = store.open(&k).unwrap().unwrap();
    let mut buffer = [0u8; 4093];
    let mut total = 0usize;
    loop {
        let n = reader.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        for (i, byte) in buffer[..n].iter().enumerate() {
            assert_eq!(
                *byte,
                piece[(total + i) % piece.len()],
                "byte {}",
                total + i
            );
        }
        total += n;
    }
    assert_eq!(total, 7_000_021);
    store.delete(&k).unwrap();
}
