//! The blob store contract against a real S3-compatible server (moto's, started by
//! test-support), with and without a key prefix.

use blob_s3::{S3BlobStore, S3Config};

fn store(prefix: Option<&str>) -> S3BlobStore {
    let bucket = test_support::s3::bucket();
    S3BlobStore::open(S3Config {
        endpoint: bucket.endpoint,
        bucket: bucket.bucket,
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        prefix: prefix.map(str::to_owned),
    })
    .unwrap()
}

#[test]
fn the_s3_store_keeps_the_contract() {
    test_support::blob_contract::check_all(&store(None), "contract");
}

#[test]
fn the_s3_store_keeps_the_contract_under_a_prefix() {
    test_support::blob_contract::check_all(&store(Some("meridian/blobs")), "contract");
}
