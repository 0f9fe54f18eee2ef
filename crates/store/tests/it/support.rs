//! Small builders for the contract tests.

use search::IndexEntries;
use search::index::{DateEntry, ReferenceEntry, StringEntry, TokenEntry};
use search::keys::ParamKey;
use store::{Method, Store, StoreError, Transaction, VersionRecord, VersionWrite};

/// Writes the next version of `Type/id` with `index`, in its own transaction.
pub fn put(
    store: &dyn Store,
    resource_type: &str,
    id: &str,
    index: &IndexEntries,
    last_updated: i64,
) -> VersionRecord {
    let mut tx = store.begin().unwrap();
    let record = put_in(&mut *tx, resource_type, id, index, last_updated).unwrap();
    tx.commit().unwrap();
    record
}

pub fn put_in(
    tx: &mut dyn Transaction,
    resource_type: &str,
    id: &str,
    index: &IndexEntries,
    last_updated: i64,
) -> Result<VersionRecord, StoreError> {
    let previous = tx.current(resource_type, id)?;
    let version = previous.as_ref().map_or(1, |p| p.version + 1);
    let content = format!(
        r#"{{"resourceType":"{resource_type}","id":"{id}","meta":{{"versionId":"{version}"}}}}"#
    );
    let row = tx.put(VersionWrite {
        resource_type,
        id,
        previous: previous.as_ref(),
        version,
        last_updated,
        method: if previous.is_some() {
            Method::Update
        } else {
            Method::Create
        },
        content: Some(content.as_bytes()),
        content_hash: version,
        // Kept with the version and read back with it.
        custodian: Some("Organization/store-test"),
        sensitivity: 5,
        index,
    })?;
    Ok(VersionRecord {
        row,
        resource_type: resource_type.into(),
        id: id.into(),
        version,
        last_updated,
        method: Method::Create,
        content: Some(content.into_bytes()),
        content_hash: version,
        custodian: Some("Organization/store-test".into()),
        sensitivity: 5,
    })
}

pub fn delete(store: &dyn Store, resource_type: &str, id: &str, last_updated: i64) {
    let mut tx = store.begin().unwrap();
    let previous = tx.current(resource_type, id).unwrap().expect("exists");
    let empty = IndexEntries::default();
    tx.put(VersionWrite {
        resource_type,
        id,
        previous: Some(&previous),
        version: previous.version + 1,
        last_updated,
        method: Method::Delete,
        content: None,
        content_hash: 0,
        custodian: None,
        sensitivity: 0,
        index: &empty,
    })
    .unwrap();
    tx.commit().unwrap();
}

pub fn token(resource_type: &str, code: &str, system: Option<&str>, value: &str) -> TokenEntry {
    TokenEntry {
        param: ParamKey::new(resource_type, code),
        system: system.map(Into::into),
        code: value.into(),
    }
}

pub fn string(resource_type: &str, code: &str, value: &str) -> StringEntry {
    StringEntry {
        param: ParamKey::new(resource_type, code),
        normalized: search::text::normalize(value).into(),
        exact: value.into(),
    }
}

pub fn reference(
    resource_type: &str,
    code: &str,
    target_type: &str,
    target_id: &str,
) -> ReferenceEntry {
    ReferenceEntry {
        param: ParamKey::new(resource_type, code),
        target_type: Some(target_type.into()),
        target_id: Some(target_id.into()),
        url: None,
        version: None,
    }
}

pub fn date(resource_type: &str, code: &str, low: i64, high: i64) -> DateEntry {
    DateEntry {
        param: ParamKey::new(resource_type, code),
        low,
        high,
    }
}

pub fn entries(build: impl FnOnce(&mut IndexEntries)) -> IndexEntries {
    let mut entries = IndexEntries::default();
    build(&mut entries);
    entries
}

pub fn ids(records: &[VersionRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}
