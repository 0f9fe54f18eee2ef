//! Invariants of resources as wholes, checked once the resource has been walked: a Bundle's
//! full URLs (bdl-7) and the rules for contained resources (dom-3, dom-4, dom-5; dom-2 is
//! checked where the nested `contained` is met).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde_json::{Map, Value};

use super::Validator;
use crate::{Issue, IssueCode};

/// A contained resource met while walking its container, for dom-3.
pub(super) struct Contained<'a> {
    /// Its position in `contained`.
    pub index: usize,
    pub id: Option<&'a str>,
    /// Whether something inside it refers to the container (`#`).
    pub refers_to_container: bool,
}

/// bdl-7 for one Bundle object: each entry that repeats an earlier entry's `fullUrl` (and
/// `resource.meta.versionId`), as (its index, the earlier entry's index). History Bundles are
/// exempt: they hold many versions of one resource under one full URL.
fn repeated_full_urls(bundle: &Map<String, Value>) -> Vec<(usize, usize)> {
    if bundle.get("type").and_then(Value::as_str) == Some("history") {
        return Vec::new();
    }
    let Some(Value::Array(entries)) = bundle.get("entry") else {
        return Vec::new();
    };
    let mut seen: HashMap<(&str, Option<&str>), usize> = HashMap::with_capacity(entries.len());
    let mut repeated = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let Some(full_url) = entry.get("fullUrl").and_then(Value::as_str) else {
            continue;
        };
        // The invariant's expression joins fullUrl and versionId into one string; the pair says
        // what it means without letting "a" + "1" equal "a1" + nothing.
        let version = entry
            .get("resource")
            .and_then(|r| r.get("meta"))
            .and_then(|m| m.get("versionId"))
            .and_then(Value::as_str);
        match seen.entry((full_url, version)) {
            Entry::Occupied(first) => repeated.push((index, *first.get())),
            Entry::Vacant(slot) => {
                slot.insert(index);
            }
        }
    }
    repeated
}

fn repeated_full_url_message(bundle: &Map<String, Value>, index: usize, first: usize) -> String {
    let full_url = bundle
        .get("entry")
        .and_then(|entries| entries.get(index))
        .and_then(|entry| entry.get("fullUrl"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!(
        "Entry {index} has the fullUrl '{full_url}' of entry {first}: in a Bundle a fullUrl names one resource, so two entries may share it only as different versions (meta.versionId) of that resource (bdl-7)."
    )
}

/// The invariants of a Bundle as a whole that a server checks before it processes a batch or a
/// transaction, whose entries it validates one by one as it writes them: bdl-7 (full URLs are
/// unique). Expressions start at `Bundle`. Anything that is not a Bundle object has none.
pub fn bundle_invariants(bundle: &Value) -> Vec<Issue> {
    let Some(object) = bundle.as_object() else {
        return Vec::new();
    };
    repeated_full_urls(object)
        .into_iter()
        .map(|(index, first)| {
            Issue::error(
                IssueCode::Invariant,
                repeated_full_url_message(object, index, first),
            )
            .at(format!("Bundle.entry[{index}].fullUrl"))
        })
        .collect()
}

impl<'a> Validator<'a> {
    /// bdl-7, on a Bundle just walked.
    pub(super) fn check_bundle(&mut self, bundle: &'a Map<String, Value>) {
        for (index, first) in repeated_full_urls(bundle) {
            let message = repeated_full_url_message(bundle, index, first);
            self.report(
                IssueCode::Invariant,
                Some(&format!("entry[{index}].fullUrl")),
                message,
            );
        }
    }

    /// dom-4 and dom-5, on a contained resource just walked: its version, update time and
    /// security labels are its container's.
    pub(super) fn check_contained_meta(&mut self, resource: &'a Map<String, Value>) {
        let Some(Value::Object(meta)) = resource.get("meta") else {
            return;
        };
        for key in ["versionId", "lastUpdated"] {
            if meta.contains_key(key) {
                let message = format!(
                    "A contained resource has no version or update time of its own, so meta.{key} is not allowed here (dom-4)."
                );
                self.report(IssueCode::Invariant, Some(&format!("meta.{key}")), message);
            }
        }
        if meta.contains_key("security") {
            let message = "A contained resource must not carry security labels: label the resource that contains it (dom-5).".to_owned();
            self.report(IssueCode::Invariant, Some("meta.security"), message);
        }
    }

    /// dom-3, once a container has been walked: every contained resource has an id and is
    /// referred to (`#id`, from a reference, canonical, uri or url anywhere in the container,
    /// the contained resources included) or refers to the container (`#`). `references` are the
    /// local references met in the container, `contained` its contained resources.
    pub(super) fn check_contained_references(
        &mut self,
        references: &[&'a str],
        contained: &[Contained<'a>],
    ) {
        // A set, so that many contained resources and many references cost their sum, not
        // their product.
        let referred: std::collections::HashSet<&str> = references
            .iter()
            .filter_map(|r| r.strip_prefix('#'))
            .collect();
        let mut faults = Vec::new();
        for resource in contained {
            let message = match resource.id {
                None => "A contained resource must have an id, by which the resource that contains it refers to it (dom-3).".to_owned(),
                Some(id) => {
                    if referred.contains(id) || resource.refers_to_container {
                        continue;
                    }
                    format!(
                        "The contained resource '{id}' is not referred to (as '#{id}') from the resource that contains it, and does not refer to that resource ('#'): a contained resource exists only as part of what refers to it (dom-3)."
                    )
                }
            };
            faults.push((format!("contained[{}]", resource.index), message));
        }
        for (place, message) in faults {
            self.report(IssueCode::Invariant, Some(&place), message);
        }
    }
}
