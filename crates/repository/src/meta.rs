//! Server-managed parts of a resource: its id, `meta.versionId` and `meta.lastUpdated`, the
//! order of its first keys, and the hash that tells whether an update changed anything.

use serde_json::{Map, Value};
use xxhash_rust::xxh3::xxh3_64;

/// A new server-assigned id: a random UUID, lower case.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `id` is a valid FHIR logical id: 1 to 64 of `A-Z a-z 0-9 - .`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A resource body ready to be stored: its keys in FHIR order (`resourceType`, `id`, `meta`,
/// then the rest as sent), without the server-managed meta fields.
#[derive(Debug, Clone)]
pub struct Body {
    resource_type: Value,
    id: String,
    /// `meta` without `versionId` and `lastUpdated`; empty when the client sent none.
    meta: Map<String, Value>,
    rest: Map<String, Value>,
    hash: i64,
}

impl Body {
    /// Takes a resource apart. `id` replaces whatever id the resource carried.
    pub fn new(resource: Map<String, Value>, id: &str) -> Body {
        let mut resource_type = Value::Null;
        let mut meta = Map::new();
        let mut rest = Map::with_capacity(resource.len());
        for (key, value) in resource {
            match key.as_str() {
                "resourceType" => resource_type = value,
                "id" => {}
                "meta" => {
                    if let Value::Object(m) = value {
                        meta = m;
                    }
                }
                _ => {
                    rest.insert(key, value);
                }
            }
        }
        meta.remove("versionId");
        meta.remove("lastUpdated");
        let mut body = Body {
            resource_type,
            id: id.to_owned(),
            meta,
            rest,
            hash: 0,
        };
        body.hash = xxh3_64(&body.render(None)) as i64;
        body
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The hash of the content without server-managed meta: equal hashes mean an update would
    /// change nothing.
    pub fn content_hash(&self) -> i64 {
        self.hash
    }

    /// The JSON to store for a version.
    pub fn to_bytes(&self, version: i64, last_updated: &str) -> Vec<u8> {
        self.render(Some((version, last_updated)))
    }

    fn render(&self, server_meta: Option<(i64, &str)>) -> Vec<u8> {
        let mut meta = Map::with_capacity(self.meta.len() + 2);
        if let Some((version, last_updated)) = server_meta {
            meta.insert("versionId".into(), Value::String(version.to_string()));
            meta.insert("lastUpdated".into(), Value::String(last_updated.to_owned()));
        }
        for (k, v) in &self.meta {
            meta.insert(k.clone(), v.clone());
        }
        let mut out = Map::with_capacity(self.rest.len() + 3);
        out.insert("resourceType".into(), self.resource_type.clone());
        out.insert("id".into(), Value::String(self.id.clone()));
        if !meta.is_empty() {
            out.insert("meta".into(), Value::Object(meta));
        }
        for (k, v) in &self.rest {
            out.insert(k.clone(), v.clone());
        }
        serde_json::to_vec(&Value::Object(out)).expect("a JSON value always serialises")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(m) => m,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn server_meta_replaces_the_clients_and_keys_come_in_fhir_order() {
        let body = Body::new(
            object(
                json!({"gender": "male", "meta": {"versionId": "9", "tag": [{"code": "x"}]},
                          "id": "old", "resourceType": "Patient"}),
            ),
            "p1",
        );
        let text = String::from_utf8(body.to_bytes(3, "2024-01-01T00:00:00.000Z")).unwrap();
        assert_eq!(
            text,
            r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"2024-01-01T00:00:00.000Z","tag":[{"code":"x"}]},"gender":"male"}"#
        );
    }

    #[test]
    fn the_hash_ignores_server_meta_but_not_content() {
        let a = Body::new(
            object(json!({"resourceType": "Patient", "gender": "male"})),
            "p1",
        );
        let b = Body::new(
            object(
                json!({"resourceType": "Patient", "meta": {"versionId": "2", "lastUpdated": "2020-01-01T00:00:00Z"},
                          "gender": "male"}),
            ),
            "p1",
        );
        let c = Body::new(
            object(json!({"resourceType": "Patient", "gender": "female"})),
            "p1",
        );
        assert_eq!(a.content_hash(), b.content_hash());
        assert_ne!(a.content_hash(), c.content_hash());
    }

    #[test]
    fn ids_follow_the_fhir_rules() {
        assert!(is_valid_id("a-B.9"));
        assert!(is_valid_id(&"x".repeat(64)));
        assert!(!is_valid_id(&"x".repeat(65)));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a_b"));
        assert!(!is_valid_id("a/b"));
        assert!(is_valid_id(&new_id()));
    }
}
