//! Server-managed parts of a resource: its id, `meta.versionId` and `meta.lastUpdated`, the
//! order of its first keys, and the hash that tells whether an update changed anything.

use serde_json::{Map, Value};
use xxhash_rust::xxh3::Xxh3;

/// A new server-assigned id: a UUID of version 7, lower case: its first 48 bits are the time
/// in milliseconds (which `meta.lastUpdated` shows anyway), the rest random. In time order,
/// new ids take their rows at the end of the `(type, id)` index and of every index of
/// references to them, rather than a page each at random places (BENCHMARKS.md, "Fewer
/// pages per reading").
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Whether `id` is a valid FHIR logical id: 1 to 64 of `A-Z a-z 0-9 - .`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A resource body ready to be stored, serialised once: its keys in FHIR order
/// (`resourceType`, `id`, `meta`, then the rest as sent), with the server-managed meta fields
/// spliced in per version. Nothing of the resource is copied to do so.
#[derive(Debug, Clone)]
pub struct Body {
    id: String,
    /// `{"resourceType":"...","id":"..."` — the opening of every version.
    head: Vec<u8>,
    /// The client's `meta` members without `versionId` and `lastUpdated`, as `"k":v,"k":v`.
    meta_members: Vec<u8>,
    /// The remaining members as `,"k":v,...` (empty when there are none).
    rest: Vec<u8>,
    hash: i64,
}

fn write_member(out: &mut Vec<u8>, key: &str, value: &Value) {
    serde_json::to_writer(&mut *out, key).expect("writing to a Vec cannot fail");
    out.push(b':');
    serde_json::to_writer(&mut *out, value).expect("writing to a Vec cannot fail");
}

impl Body {
    /// Takes a resource apart. `id` replaces whatever id the resource carried.
    pub fn new(resource: Map<String, Value>, id: &str) -> Body {
        let mut head = Vec::with_capacity(64 + id.len());
        head.push(b'{');
        write_member(
            &mut head,
            "resourceType",
            resource.get("resourceType").unwrap_or(&Value::Null),
        );
        head.push(b',');
        write_member(&mut head, "id", &Value::String(id.to_owned()));
        let mut meta_members = Vec::new();
        let mut rest = Vec::with_capacity(1024);
        for (key, value) in &resource {
            match key.as_str() {
                "resourceType" | "id" => {}
                "meta" => {
                    if let Value::Object(meta) = value {
                        for (k, v) in meta {
                            if k == "versionId" || k == "lastUpdated" {
                                continue;
                            }
                            if !meta_members.is_empty() {
                                meta_members.push(b',');
                            }
                            write_member(&mut meta_members, k, v);
                        }
                    }
                }
                _ => {
                    rest.push(b',');
                    write_member(&mut rest, key, value);
                }
            }
        }
        let mut hasher = Xxh3::new();
        hasher.update(&head);
        hasher.update(b"|");
        hasher.update(&meta_members);
        hasher.update(b"|");
        hasher.update(&rest);
        let hash = hasher.digest() as i64;
        Body {
            id: id.to_owned(),
            head,
            meta_members,
            rest,
            hash,
        }
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
        let mut out =
            Vec::with_capacity(self.head.len() + self.meta_members.len() + self.rest.len() + 96);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b",\"meta\":{\"versionId\":");
        serde_json::to_writer(&mut out, &version.to_string())
            .expect("writing to a Vec cannot fail");
        out.extend_from_slice(b",\"lastUpdated\":");
        serde_json::to_writer(&mut out, last_updated).expect("writing to a Vec cannot fail");
        if !self.meta_members.is_empty() {
            out.push(b',');
            out.extend_from_slice(&self.meta_members);
        }
        out.push(b'}');
        out.extend_from_slice(&self.rest);
        out.push(b'}');
        out
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
        let bare = Body::new(object(json!({"resourceType": "Basic"})), "b");
        assert_eq!(
            String::from_utf8(bare.to_bytes(1, "t")).unwrap(),
            r#"{"resourceType":"Basic","id":"b","meta":{"versionId":"1","lastUpdated":"t"}}"#
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
        let tagged = Body::new(
            object(
                json!({"resourceType": "Patient", "meta": {"tag": [{"code": "x"}]}, "gender": "male"}),
            ),
            "p1",
        );
        assert_eq!(a.content_hash(), b.content_hash());
        assert_ne!(a.content_hash(), c.content_hash());
        assert_ne!(
            a.content_hash(),
            tagged.content_hash(),
            "client meta is content"
        );
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
