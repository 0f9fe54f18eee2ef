//! Rules tied to particular types, run after an object's elements are walked: the extension rule
//! (ext-1), reference targets, and required bindings on `code`, `Coding` and `CodeableConcept`.

use serde_json::{Map, Value};

use super::{Validator, quote};
use crate::primitives::is_valid_id;
use crate::{ElementDef, IssueCode, ValueSet};

impl<'a> Validator<'a> {
    /// The rules of `type_code` for one object of that type, used as `element` (whose type
    /// `type_index` it is).
    pub(super) fn type_rules(
        &mut self,
        element: &'a ElementDef,
        type_index: usize,
        type_code: &str,
        object: &'a Map<String, Value>,
    ) {
        match type_code {
            "Extension" => self.check_extension(object),
            "Reference" => {
                let targets = element
                    .types
                    .get(type_index)
                    .map_or(&[][..], |t| &t.targets[..]);
                self.check_reference(object, targets);
            }
            "CodeableConcept" => {
                if let Some(url) = element.binding.as_deref() {
                    self.check_concept_binding(url, object);
                }
            }
            "Coding" => {
                if let Some(url) = element.binding.as_deref() {
                    self.check_coding_binding(url, object);
                }
            }
            _ => {}
        }
    }

    /// ext-1: an extension has either a value or nested extensions, never both, never neither.
    fn check_extension(&mut self, object: &Map<String, Value>) {
        let has_value = object
            .keys()
            .any(|k| k.starts_with("value") || k.starts_with("_value"));
        let has_children = object.contains_key("extension");
        let message = match (has_value, has_children) {
            (true, true) => {
                "An extension must have either a value or nested extensions, not both (ext-1)."
            }
            (false, false) => "An extension must have either a value or nested extensions (ext-1).",
            _ => return,
        };
        self.report(IssueCode::Invariant, None, message.to_owned());
    }

    /// A RESTful reference (`Type/id`, `Type/id/_history/v`, `Type?criteria`, or an absolute URL
    /// ending in `Type/id`) must name a known resource type, and one the element allows. Local
    /// (`#id`) and `urn:` references, and URLs that do not end in `Type/id`, are not checked here.
    fn check_reference(&mut self, object: &'a Map<String, Value>, targets: &[Box<str>]) {
        let Some(Value::String(reference)) = object.get("reference") else {
            return;
        };
        if reference.starts_with('#') || reference.starts_with("urn:") {
            return;
        }
        let (resource_type, id) = if let Some(scheme_end) = reference.find("://") {
            // Absolute: only a URL whose tail is a RESTful path names a type.
            match restful_tail(&reference[scheme_end + 3..]) {
                Some((resource_type, id)) if self.model.is_resource_type(resource_type) => {
                    (resource_type, Some(id))
                }
                _ => return,
            }
        } else {
            let end = reference.find(['/', '?']).unwrap_or(reference.len());
            let resource_type = &reference[..end];
            if end == reference.len()
                || !resource_type.starts_with(|c: char| c.is_ascii_uppercase())
            {
                // Not of the form Type/... : nothing RESTful to check.
                return;
            }
            if !self.model.is_resource_type(resource_type) {
                let message = format!(
                    "The reference {} names '{resource_type}', which is not a resource type.",
                    quote(&object["reference"])
                );
                self.report(IssueCode::Value, Some("reference"), message);
                return;
            }
            let id = (reference.as_bytes()[end] == b'/').then(|| {
                let rest = &reference[end + 1..];
                rest.split('/').next().unwrap_or(rest)
            });
            (resource_type, id)
        };
        if let Some(id) = id
            && !is_valid_id(id)
        {
            let message = format!(
                "The reference {} has an invalid id: an id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'.",
                quote(&object["reference"])
            );
            self.report(IssueCode::Value, Some("reference"), message);
            return;
        }
        let allowed = targets.is_empty()
            || targets.iter().any(|target| {
                &**target == "Resource" || self.model.is_subtype(resource_type, target)
            });
        if !allowed {
            let names: Vec<&str> = targets.iter().map(|t| &**t).collect();
            let message = format!(
                "The reference {} points at a resource of type {resource_type}, but this element may only refer to {}.",
                quote(&object["reference"]),
                names.join(", ")
            );
            self.report(IssueCode::Structure, Some("reference"), message);
        }
    }

    /// A required binding on a `code`: the code must be in the value set. Sets that cannot be
    /// expanded from the vendored files (MIME types, currencies, UCUM) are not checked.
    pub(super) fn check_code_binding(&mut self, url: &str, code: &str) {
        let Some(value_set) = self.model.value_set(url) else {
            return;
        };
        if value_set.contains_code(code) == Some(false) {
            let message = format!(
                "The code '{code}' is not in the value set {url}, which this element requires."
            );
            self.report(IssueCode::CodeInvalid, None, message);
        }
    }

    /// A required binding on a `CodeableConcept`. The specification asks that the concept be from
    /// the value set; we read that as "at least one coding is from it" (other codings may add
    /// translations), and a concept with text but no coding does not satisfy it. A coding without a
    /// system matches on its code alone, since the set's codes are unique within it in practice.
    fn check_concept_binding(&mut self, url: &str, object: &Map<String, Value>) {
        let Some(value_set) = self.model.value_set(url).filter(|vs| vs.is_expandable()) else {
            return;
        };
        let codings = object
            .get("coding")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        if codings
            .iter()
            .filter_map(Value::as_object)
            .any(|coding| coding_in(value_set, coding))
        {
            return;
        }
        let message = if codings.is_empty() {
            format!(
                "This concept has no coding, and the element requires one from the value set {url}."
            )
        } else {
            format!(
                "None of the codings of this concept is in the value set {url}, which this element requires."
            )
        };
        self.report(IssueCode::CodeInvalid, None, message);
    }

    /// A required binding on a `Coding` (none in R4 core, but profiles and future types may bind one).
    fn check_coding_binding(&mut self, url: &str, object: &Map<String, Value>) {
        let Some(value_set) = self.model.value_set(url).filter(|vs| vs.is_expandable()) else {
            return;
        };
        if !coding_in(value_set, object) {
            let message =
                format!("This coding is not in the value set {url}, which this element requires.");
            self.report(IssueCode::CodeInvalid, None, message);
        }
    }
}

fn coding_in(value_set: &ValueSet, coding: &Map<String, Value>) -> bool {
    let Some(code) = coding.get("code").and_then(Value::as_str) else {
        return false;
    };
    match coding.get("system").and_then(Value::as_str) {
        Some(system) => value_set.contains(system, code) == Some(true),
        None => value_set.contains_code(code) == Some(true),
    }
}

/// The `Type` and `id` of a URL path ending in `Type/id` or `Type/id/_history/version`.
fn restful_tail(path: &str) -> Option<(&str, &str)> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let mut segments = path.rsplit('/');
    let last = segments.next()?;
    let before = segments.next()?;
    if before == "_history" {
        let id = segments.next()?;
        let resource_type = segments.next()?;
        return Some((resource_type, id));
    }
    Some((before, last))
}
