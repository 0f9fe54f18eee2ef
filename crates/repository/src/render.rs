//! Bundles written straight to JSON text. Stored resources are already JSON bytes with their
//! meta in place, so a search page or a history is assembled without parsing a single resource.

use serde_json::{Value, json};

use crate::meta::new_id;
use fhir_model::clock;

/// Writes a Bundle entry by entry.
pub struct BundleWriter {
    out: Vec<u8>,
    entries: usize,
}

impl BundleWriter {
    /// Starts a Bundle of `bundle_type` with an optional total and links (`self`, `next`...).
    pub fn new(bundle_type: &str, total: Option<u64>, links: &[(&str, String)]) -> BundleWriter {
        let mut head = json!({
            "resourceType": "Bundle",
            "id": new_id(),
            "meta": {"lastUpdated": clock::format_instant(clock::now_micros())},
            "type": bundle_type,
        });
        if let Some(total) = total {
            head["total"] = json!(total);
        }
        if !links.is_empty() {
            head["link"] = Value::Array(
                links
                    .iter()
                    .map(|(relation, url)| json!({"relation": relation, "url": url}))
                    .collect(),
            );
        }
        let mut out = serde_json::to_vec(&head).expect("a JSON value always serialises");
        out.pop(); // the closing brace: entries follow
        out.extend_from_slice(b",\"entry\":[");
        BundleWriter { out, entries: 0 }
    }

    /// Adds an entry. `resource` is stored JSON, copied as it is; `fields` are the entry's other
    /// members (`search`, `request`, `response`), written after it.
    pub fn entry(
        &mut self,
        full_url: Option<&str>,
        resource: Option<&[u8]>,
        fields: &[(&str, Value)],
    ) {
        if self.entries > 0 {
            self.out.push(b',');
        }
        self.entries += 1;
        self.out.push(b'{');
        let mut first = true;
        let mut separator = |out: &mut Vec<u8>| {
            if !first {
                out.push(b',');
            }
            first = false;
        };
        if let Some(url) = full_url {
            separator(&mut self.out);
            self.out.extend_from_slice(b"\"fullUrl\":");
            serde_json::to_writer(&mut self.out, url).expect("writing to a Vec cannot fail");
        }
        if let Some(resource) = resource {
            separator(&mut self.out);
            self.out.extend_from_slice(b"\"resource\":");
            self.out.extend_from_slice(resource);
        }
        for (key, value) in fields {
            separator(&mut self.out);
            serde_json::to_writer(&mut self.out, key).expect("writing to a Vec cannot fail");
            self.out.push(b':');
            serde_json::to_writer(&mut self.out, value).expect("writing to a Vec cannot fail");
        }
        self.out.push(b'}');
    }

    /// The finished Bundle. An empty one carries no `entry` member, as FHIR requires.
    pub fn finish(mut self) -> Vec<u8> {
        if self.entries == 0 {
            let cut = self.out.len() - b",\"entry\":[".len();
            self.out.truncate(cut);
            self.out.push(b'}');
        } else {
            self.out.extend_from_slice(b"]}");
        }
        self.out
    }
}

/// Encodes query parameters for a link: `name=value&...`, percent-encoding what must be.
pub fn encode_query(params: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(&mut out, name);
        out.push('=');
        encode_component(&mut out, value);
    }
    out
}

/// What a link's query keeps as it is: the unreserved characters and the few FHIR search
/// syntax uses (`:` modifiers, `|` system and code, `,` alternatives, `/` references), so that
/// links stay readable; everything else is percent-encoded.
const QUERY_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'|')
    .remove(b',')
    .remove(b'/');

fn encode_component(out: &mut String, text: &str) {
    out.extend(percent_encoding::utf8_percent_encode(text, QUERY_COMPONENT));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_are_valid_json_with_and_without_entries() {
        let empty: Value =
            serde_json::from_slice(&BundleWriter::new("searchset", Some(0), &[]).finish()).unwrap();
        assert_eq!(empty["total"], json!(0));
        assert!(empty.get("entry").is_none());

        let mut writer = BundleWriter::new(
            "searchset",
            None,
            &[("self", "http://x/fhir/Patient".into())],
        );
        writer.entry(
            Some("http://x/fhir/Patient/1"),
            Some(br#"{"resourceType":"Patient","id":"1"}"#),
            &[("search", json!({"mode": "match"}))],
        );
        writer.entry(
            None,
            None,
            &[("response", json!({"status": "204 No Content"}))],
        );
        let bundle: Value = serde_json::from_slice(&writer.finish()).unwrap();
        assert_eq!(bundle["entry"][0]["resource"]["id"], json!("1"));
        assert_eq!(bundle["entry"][0]["search"]["mode"], json!("match"));
        assert_eq!(
            bundle["entry"][1]["response"]["status"],
            json!("204 No Content")
        );
        assert_eq!(bundle["link"][0]["relation"], json!("self"));
    }

    #[test]
    fn query_links_encode_what_must_be_encoded() {
        let params = vec![
            ("name".to_owned(), "张 & co".to_owned()),
            ("code".to_owned(), "http://loinc.org|8480-6".to_owned()),
        ];
        assert_eq!(
            encode_query(&params),
            "name=%E5%BC%A0%20%26%20co&code=http://loinc.org|8480-6"
        );
    }
}
