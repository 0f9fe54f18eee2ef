//! Shared helpers: generating a region into memory, and reading it back.

use serde_json::Value;

pub fn region(patients: u64, seed: u64) -> seed::Region {
    seed::Region::new(seed::Config::new(patients, seed)).expect("a valid configuration")
}

pub fn all(patients: u64, seed: u64) -> Vec<(&'static str, Value)> {
    region(patients, seed).resources().collect()
}

/// The whole stream as NDJSON text.
pub fn ndjson(patients: u64, seed: u64) -> String {
    let mut text = String::new();
    for (_, resource) in region(patients, seed).resources() {
        text.push_str(&serde_json::to_string(&resource).unwrap());
        text.push('\n');
    }
    text
}

pub fn of_type<'a>(
    resources: &'a [(&'static str, Value)],
    wanted: &'a str,
) -> impl Iterator<Item = &'a Value> + 'a {
    resources
        .iter()
        .filter(move |(t, _)| *t == wanted)
        .map(|(_, r)| r)
}

/// Every `reference` string inside `value`.
pub fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("reference", Value::String(text)) => out.push(text.clone()),
                    _ => references(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, out)),
        _ => {}
    }
}

/// The value of the first identifier of `system`.
pub fn identifier<'a>(resource: &'a Value, system: &str) -> Option<&'a str> {
    resource["identifier"]
        .as_array()?
        .iter()
        .find(|i| i["system"] == system)?["value"]
        .as_str()
}
