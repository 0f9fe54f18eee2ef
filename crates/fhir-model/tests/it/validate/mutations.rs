//! Mutations of the valid vendored examples: every leaf value replaced by `null`, and every object
//! given an unknown property, must each be reported at exactly that place. This exercises the
//! path rendering across every shape the examples hold (arrays, choice names, primitive siblings,
//! contained and Bundle resources) and shows that broken input is reported, not panicked on.

use std::fs;
use std::path::{Path, PathBuf};

use fhir_model::{r4, validate};
use serde_json::Value;

/// The examples that validate cleanly (the known failures already have issues of their own).
fn valid_examples() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/examples");
    let known = fs::read_to_string(dir.join("KNOWN-FAILURES.txt")).unwrap();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if known.lines().any(|l| l.starts_with(&format!("{name} "))) {
                return None;
            }
            let value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            Some((name, value))
        })
        .collect()
}

/// A place in a resource: its JSON pointer (to mutate it) and its FHIRPath expression (where
/// the issue must point).
#[derive(Clone)]
struct Place {
    pointer: String,
    expression: String,
}

/// Every leaf and every object of `value`, with its JSON pointer and FHIRPath expression.
/// `_name` siblings map to `name` in FHIRPath; nested resources add no type segment.
fn walk(value: &Value, place: &Place, leaves: &mut Vec<Place>, objects: &mut Vec<Place>) {
    match value {
        Value::Object(map) => {
            objects.push(place.clone());
            for (key, child) in map {
                if key == "resourceType" {
                    continue;
                }
                let name = key.strip_prefix('_').unwrap_or(key);
                let has_sibling = !key.starts_with('_') && map.contains_key(&format!("_{key}"));
                let child_place = Place {
                    pointer: format!(
                        "{}/{}",
                        place.pointer,
                        key.replace('~', "~0").replace('/', "~1")
                    ),
                    expression: format!("{}.{name}", place.expression),
                };
                // A value with a primitive sibling may legitimately be null at some positions.
                if has_sibling {
                    continue;
                }
                walk(child, &child_place, leaves, objects);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let child_place = Place {
                    pointer: format!("{}/{i}", place.pointer),
                    expression: format!("{}[{i}]", place.expression),
                };
                walk(item, &child_place, leaves, objects);
            }
        }
        _ => leaves.push(place.clone()),
    }
}

#[test]
fn every_leaf_set_to_null_is_reported_where_it_is() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, example) in valid_examples() {
        let root = Place {
            pointer: String::new(),
            expression: example["resourceType"].as_str().unwrap().to_owned(),
        };
        let (mut leaves, mut objects) = (Vec::new(), Vec::new());
        walk(&example, &root, &mut leaves, &mut objects);
        for leaf in leaves {
            let mut mutated = example.clone();
            *mutated.pointer_mut(&leaf.pointer).unwrap() = Value::Null;
            let issues = validate(r4(), &mutated);
            checked += 1;
            if !issues
                .iter()
                .any(|i| i.expression.as_deref() == Some(leaf.expression.as_str()))
            {
                let found: Vec<_> = issues.iter().map(|i| i.expression.clone()).collect();
                failures.push(format!(
                    "{name} {}: expected an issue at {}, found {found:?}",
                    leaf.pointer, leaf.expression
                ));
            }
        }
    }
    assert!(checked > 2_000, "only {checked} leaves");
    assert!(
        failures.is_empty(),
        "{} of {checked}:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

#[test]
fn every_object_given_an_unknown_property_is_reported_where_it_is() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, example) in valid_examples() {
        let root = Place {
            pointer: String::new(),
            expression: example["resourceType"].as_str().unwrap().to_owned(),
        };
        let (mut leaves, mut objects) = (Vec::new(), Vec::new());
        walk(&example, &root, &mut leaves, &mut objects);
        for object in objects {
            let mut mutated = example.clone();
            mutated.pointer_mut(&object.pointer).unwrap()["zzUnknown"] = Value::Bool(true);
            let expected = format!("{}.zzUnknown", object.expression);
            let issues = validate(r4(), &mutated);
            checked += 1;
            if !issues
                .iter()
                .any(|i| i.expression.as_deref() == Some(expected.as_str()))
            {
                let found: Vec<_> = issues.iter().map(|i| i.expression.clone()).collect();
                failures.push(format!(
                    "{name} {}: expected an issue at {expected}, found {found:?}",
                    object.pointer
                ));
            }
        }
    }
    assert!(checked > 1_000, "only {checked} objects");
    assert!(
        failures.is_empty(),
        "{} of {checked}:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}
