//! Malformed and hostile views: every view of the official suite, mutated at random (a node
//! replaced by something out of place, an element removed), is compiled or refused, then
//! evaluated or refused, on the suite's resources, and never panics.

use analytics::View;
use serde_json::{Value, json};

use crate::official::suite_files;

/// xorshift64: deterministic, so a failure is reproduced by running the test again.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Out-of-place things to put where a view had something else.
fn replacements() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(""),
        json!("@@"),
        json!("((((("),
        json!("%rowIndex"),
        json!("%nowhere"),
        json!("$this"),
        json!("name"),
        json!("Patient"),
        json!("1 / 0"),
        json!("%resource.descendants()"),
        json!("name.given.join(', ')"),
        json!("a".repeat(5_000)),
        json!([]),
        json!({}),
        json!([{}]),
        json!({"column": []}),
        json!({"forEach": "name"}),
        json!({"forEachOrNull": "contact", "column": [{"name": "x", "path": "%rowIndex"}]}),
        json!({"repeat": ["$this"], "column": [{"name": "r", "path": "%rowIndex"}]}),
        json!([{"name": "id", "path": "id"}]),
        json!({"unionAll": [{"column": [{"name": "u", "path": "id"}]}, {"select": []}]}),
        json!({"name": "c", "valueDecimal": 1e308}),
    ]
}

/// The JSON pointer of every node below the root.
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, child) in fields {
                let pointer = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(pointer.clone());
                pointers(child, &pointer, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let pointer = format!("{at}/{i}");
                out.push(pointer.clone());
                pointers(child, &pointer, out);
            }
        }
        _ => {}
    }
}

/// `view` with one node replaced or removed.
fn mutate(view: &Value, random: &mut Random, replacements: &[Value]) -> Value {
    let mut mutated = view.clone();
    let mut all = Vec::new();
    pointers(view, "", &mut all);
    if all.is_empty() {
        return replacements[random.below(replacements.len())].clone();
    }
    let pointer = &all[random.below(all.len())];
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let remove = random.below(4) == 0;
    match mutated.pointer_mut(parent) {
        Some(Value::Object(fields)) if remove => {
            fields.shift_remove(&last.replace("~1", "/").replace("~0", "~"));
        }
        Some(Value::Array(items)) if remove => {
            items.remove(last.parse::<usize>().unwrap());
        }
        _ => {
            *mutated.pointer_mut(pointer).unwrap() =
                replacements[random.below(replacements.len())].clone();
        }
    }
    mutated
}

#[test]
fn mutated_suite_views_are_refused_or_evaluated_never_a_panic() {
    let replacements = replacements();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let (mut compiled, mut refused) = (0, 0);
    for (_, file) in suite_files() {
        let resources = file["resources"].as_array().unwrap();
        for test in file["tests"].as_array().unwrap() {
            for _ in 0..30 {
                let view = mutate(&test["view"], &mut random, &replacements);
                match View::parse(&view) {
                    Ok(view) => {
                        compiled += 1;
                        let view = view.with_row_limit(10_000);
                        for resource in resources {
                            let _ = view.rows(resource);
                        }
                    }
                    Err(_) => refused += 1,
                }
            }
        }
    }
    // Both paths were exercised, not only the parser's first check.
    assert!(
        compiled > 500 && refused > 500,
        "{compiled} compiled, {refused} refused"
    );
}
