//! Structural validation of a resource against the R4 definitions: element names, JSON shapes,
//! cardinality, primitive formats, required bindings, reference targets and the extension rule.
//! It runs on every write, so it walks the JSON once, keeps its position as a stack of borrowed
//! path segments, and allocates only when it has something to report.
//!
//! What it deliberately leaves to other layers: FHIRPath invariants other than the handful that
//! are structural (ext-1, ele-1, the contained-resource rules dom-2 to dom-5, a Bundle's unique
//! full URLs bdl-7), profiles, non-required bindings, and whether references resolve. Whether
//! `resourceType` and `id` agree with the request URL is the server's check.
//!
//! One rule is this server's, not the specification's: how often an element may repeat in one
//! place. An element the definitions allow to repeat without bound may have at most 1,000 items
//! in one JSON array; extensions, contained resources, items (Questionnaire, Claim...) and a
//! few others up to 10,000; and elements that are lists by nature (Bundle.entry, Group.member,
//! List.entry, Provenance.target, code system concepts, value set expansions...) are bounded
//! only by the request size. `policy/repetition-limits.txt` holds the table and the reasons; a
//! resource over a limit gets a `business-rule` issue naming the element, its count and the
//! limit, never a silent truncation.
//!
//! Judgment calls, each where the specification leaves room:
//! - A required binding on a `CodeableConcept` is met when at least one coding is in the value
//!   set (others may be translations); a concept with only `text` does not meet it. A coding
//!   without a `system` is matched on its code alone. Value sets that cannot be expanded from the
//!   vendored files (MIME types, currencies, UCUM, one LOINC list) are not checked.
//! - `Resource.id` is checked as an `id` (the R4 snapshot types it as a plain string).
//! - References are checked only in their RESTful forms (`Type/id`, `Type/id/_history/v`,
//!   `Type?criteria`, or an absolute URL ending in `Type/id`): the type must exist and be an
//!   allowed target. `#local`, `urn:uuid:`/`urn:oid:` and other URLs are left alone.
//! - One fault gives one issue: a misnamed `value` in an extension is reported as a misnamed
//!   element, not also as an extension without a value.

mod path;
mod resources;
mod rules;

use serde_json::{Map, Value};

use crate::definitions::choice_property;
use crate::primitives::{self, PrimitiveError, PrimitiveType};
use crate::{ElementDef, Issue, IssueCode, Model, TypeDef, TypeKind};
use path::PathStack;
use resources::Contained;

pub use resources::bundle_invariants;

/// What to check beyond the structure, and how much to report.
#[derive(Debug, Clone)]
pub struct ValidationOptions {
    /// Stop after this many issues; an information issue then says the list is cut short.
    /// A resource this broken needs fixing wholesale, and the cap bounds the work done for it.
    pub max_issues: usize,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        ValidationOptions { max_issues: 100 }
    }
}

/// Validates `resource` against the vendored R4 definitions. Every issue has severity error
/// (except the note that the list was cut short) and an expression pointing at the element.
pub fn validate(model: &Model, resource: &Value) -> Vec<Issue> {
    validate_with(model, resource, &ValidationOptions::default())
}

/// [`validate`] with options.
pub fn validate_with(model: &Model, resource: &Value, options: &ValidationOptions) -> Vec<Issue> {
    let mut validator = Validator {
        model,
        max_issues: options.max_issues.max(1),
        path: PathStack::with_capacity(16),
        issues: Vec::new(),
        truncated: false,
        local_references: Vec::new(),
        contained: Vec::new(),
    };
    validator.resource(resource, ResourcePlace::Root);
    if validator.truncated {
        validator.issues.push(Issue::information(
            IssueCode::TooCostly,
            format!(
                "Validation stopped after {} issues; there may be more.",
                validator.max_issues
            ),
        ));
    }
    validator.issues
}

/// Where a resource sits: at the root, inside `contained` (which may not nest), or elsewhere
/// inside another resource (`Bundle.entry.resource`, `Parameters.parameter.resource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResourcePlace {
    Root,
    Contained,
    Nested,
}

/// What kind of JSON object is being walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectKind {
    /// A resource: `resourceType` is allowed, and may be its only property.
    Resource,
    /// A datatype or backbone element.
    Element,
    /// The `_name` sibling of a primitive (only `id` and `extension`); `has_value` says whether the
    /// primitive also has a value, without which the object must carry an extension.
    PrimitiveSibling { has_value: bool },
}

struct Validator<'a> {
    model: &'a Model,
    max_issues: usize,
    path: PathStack<'a>,
    issues: Vec<Issue>,
    truncated: bool,
    /// The local references (`#id`, `#`) met in the resources being walked, for dom-3: a
    /// container's own and those of what it contains, dropped when the container is done.
    local_references: Vec<&'a str>,
    /// The contained resources of the containers being walked, for dom-3.
    contained: Vec<Contained<'a>>,
}

/// A type of a choice element to show in an example of its JSON name: a familiar one when the
/// choice offers it (`valueString` reads better than `valueBase64Binary`).
fn example_type(element: &ElementDef) -> &str {
    ["string", "Quantity", "CodeableConcept", "Reference"]
        .into_iter()
        .find(|preferred| element.types.iter().any(|t| &*t.code == *preferred))
        .unwrap_or_else(|| element.first_type())
}

/// Why a repeating element over this server's limit is refused, and what the rule is.
fn repetition_message(name: &str, count: usize, limit: u32) -> String {
    format!(
        "{name} has {count} items; this server accepts at most {limit} in one place. Repetitions that make no clinical sense are refused rather than cut short: an element may repeat up to 1,000 times, extensions, contained resources, items and components up to 10,000, and lists by nature (Bundle.entry, Group.member, List.entry, code systems and value sets...) without limit."
    )
}

/// A short rendering of a JSON value for a diagnostic.
fn quote(value: &Value) -> String {
    const LIMIT: usize = 60;
    let text = match value {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    };
    if text.chars().count() > LIMIT {
        let cut: String = text.chars().take(LIMIT).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn json_kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `_name` for `name`, built on the stack: looking up a primitive's sibling must not allocate.
fn sibling_key<'k>(name: &str, buffer: &'k mut [u8; 96]) -> Option<&'k str> {
    let len = name.len() + 1;
    if len > buffer.len() {
        return None;
    }
    buffer[0] = b'_';
    buffer[1..len].copy_from_slice(name.as_bytes());
    std::str::from_utf8(&buffer[..len]).ok()
}

impl<'a> Validator<'a> {
    /// Records an issue at the current path (plus `child`, when given).
    fn report(&mut self, code: IssueCode, child: Option<&str>, diagnostics: String) {
        if self.issues.len() >= self.max_issues {
            self.truncated = true;
            return;
        }
        let mut issue = Issue::error(code, diagnostics);
        if !self.path.is_empty() || child.is_some() {
            issue.expression = Some(self.path.render(child));
        }
        self.issues.push(issue);
    }

    fn stopped(&self) -> bool {
        self.truncated
    }

    /// A resource: at the root, contained, or nested in a Bundle or Parameters.
    fn resource(&mut self, value: &'a Value, place: ResourcePlace) {
        let Value::Object(object) = value else {
            let message = format!(
                "A resource must be a JSON object, not {}.",
                json_kind_name(value)
            );
            self.report(IssueCode::Structure, None, message);
            return;
        };
        let resource_type = match object.get("resourceType") {
            Some(Value::String(name)) => name.as_str(),
            Some(other) => {
                let message = format!(
                    "resourceType must be a string naming a resource type, not {}.",
                    quote(other)
                );
                self.report(IssueCode::Structure, None, message);
                return;
            }
            None => {
                self.report(
                    IssueCode::Required,
                    None,
                    "The resource has no resourceType.".to_owned(),
                );
                return;
            }
        };
        let Some(type_def) = self
            .model
            .type_def(resource_type)
            .filter(|t| t.kind == TypeKind::Resource)
        else {
            let message = format!("Unknown resource type '{resource_type}'.");
            self.report(IssueCode::Structure, None, message);
            return;
        };
        if type_def.is_abstract {
            let message = format!(
                "'{resource_type}' is an abstract type; a resource must have a concrete type."
            );
            self.report(IssueCode::Structure, None, message);
            return;
        }
        let is_root = place == ResourcePlace::Root;
        if is_root {
            self.path.push_name(resource_type);
        }
        // A container's references and contained resources are gathered while it is walked
        // (those of what it contains included) and checked against each other at its end.
        let scope = (self.local_references.len(), self.contained.len());
        self.object(type_def, object, ObjectKind::Resource);
        if place == ResourcePlace::Contained {
            if object.contains_key("contained") {
                // dom-2: contained resources are flat; a nested one could not be referenced.
                let message =
                    "A contained resource must not contain other resources (dom-2).".to_owned();
                self.report(IssueCode::Invariant, Some("contained"), message);
            }
            self.check_contained_meta(object);
            // What a contained resource wrongly contains is dom-2's fault, not dom-3's.
            self.contained.truncate(scope.1);
        } else if self.contained.len() > scope.1 {
            let references = self.local_references.split_off(scope.0);
            let contained = self.contained.split_off(scope.1);
            self.check_contained_references(&references, &contained);
        }
        if place != ResourcePlace::Contained {
            self.local_references.truncate(scope.0);
            self.contained.truncate(scope.1);
        }
        if resource_type == "Bundle" {
            self.check_bundle(object);
        }
        if is_root {
            self.path.pop();
        }
    }

    /// The properties of one JSON object of type `type_def`, then the cardinality of its elements.
    fn object(&mut self, type_def: &'a TypeDef, object: &'a Map<String, Value>, kind: ObjectKind) {
        if object.is_empty() {
            self.report(
                IssueCode::Structure,
                None,
                "Empty objects are not allowed: leave the element out.".to_owned(),
            );
            return;
        }
        let has_value = matches!(kind, ObjectKind::PrimitiveSibling { has_value: true });
        if !has_value
            && kind != ObjectKind::Resource
            && object.len() == 1
            && object.contains_key("id")
        {
            // ele-1: an element needs a value or children, and an id is neither.
            let message =
                "An element must have a value or children other than id (ele-1).".to_owned();
            self.report(IssueCode::Structure, None, message);
        }
        // One bit per element present (value or `_` sibling); the widest R4 type has 54 elements.
        let mut present: u64 = 0;
        // For choice elements: 1 + the index of the type first seen, to catch value[x] given twice.
        let mut choice_type = [0u8; 64];
        for (key, value) in object {
            if self.stopped() {
                return;
            }
            if kind == ObjectKind::Resource && key == "resourceType" {
                continue;
            }
            let (name, is_sibling) = match key.strip_prefix('_') {
                Some(name) => (name, true),
                None => (key.as_str(), false),
            };
            let Some((element_index, type_index)) = type_def.property_index(name) else {
                self.unknown_property(type_def, key);
                continue;
            };
            let element = &type_def.elements[element_index];
            let type_code = element
                .types
                .get(type_index)
                .map_or("Element", |t| &*t.code);
            if element_index < 64 {
                present |= 1 << element_index;
                if element.choice {
                    let seen = &mut choice_type[element_index];
                    if *seen == 0 {
                        *seen = type_index as u8 + 1;
                    } else if usize::from(*seen) != type_index + 1 {
                        let message = format!(
                            "{}[x] is given more than once, under two types; it may have only one.",
                            element.name
                        );
                        self.report(IssueCode::Structure, Some(key), message);
                        continue;
                    }
                }
            }
            // Resource.id is declared a string in the R4 snapshot, but the specification's
            // rule for it is the id type's: check it as one.
            let (primitive, type_code) = if kind == ObjectKind::Resource && name == "id" {
                (Some(PrimitiveType::Id), "id")
            } else {
                (PrimitiveType::from_code(type_code), type_code)
            };
            if is_sibling {
                if primitive.is_none() {
                    let message = format!(
                        "'{key}' is only for primitive elements, and {name} is a {type_code}: put its id and extensions inside it."
                    );
                    self.report(IssueCode::Structure, Some(key), message);
                } else if !object.contains_key(name) {
                    // A primitive given only by its id and extensions; with a value, the value's
                    // own turn handles the sibling.
                    self.primitive_element(element, primitive, type_code, name, None, Some(value));
                }
                continue;
            }
            if primitive.is_some() {
                let mut buffer = [0u8; 96];
                let sibling = sibling_key(name, &mut buffer).and_then(|k| object.get(k));
                self.primitive_element(element, primitive, type_code, name, Some(value), sibling);
            } else if type_code == "Resource" {
                self.resource_element(element, key, value);
            } else {
                self.complex_element(element, type_index, type_code, key, value);
            }
        }
        for (index, element) in type_def.elements.iter().enumerate() {
            if element.min > 0 && index < 64 && present & (1 << index) == 0 {
                let message = if element.choice {
                    format!(
                        "{}[x] is required (minimum cardinality {}) but missing.",
                        element.name, element.min
                    )
                } else {
                    format!(
                        "{} is required (minimum cardinality {}) but missing.",
                        element.name, element.min
                    )
                };
                self.report(IssueCode::Required, Some(&element.name), message);
            }
        }
    }

    fn unknown_property(&mut self, type_def: &TypeDef, key: &str) {
        let name = key.strip_prefix('_').unwrap_or(key);
        let message = match type_def.element(name) {
            Some(element) if element.choice => format!(
                "'{key}' is a choice element ({name}[x]): write it with its type in the name, as in {}.",
                choice_property(name, example_type(element))
            ),
            _ => format!("Unknown element '{key}' in {}.", type_def.name),
        };
        self.report(IssueCode::Structure, Some(key), message);
    }

    /// Checks that a repeating element is a non-empty array and a single one is not an array;
    /// returns the items to check (one for a single element).
    fn shape<'v>(&mut self, element: &ElementDef, value: &'v Value) -> Option<&'v [Value]> {
        self.shape_limited(element, value, true)
    }

    /// [`Self::shape`], checking the repetition limit only when `limited` (a primitive's `_name`
    /// array is not counted again when its values were).
    fn shape_limited<'v>(
        &mut self,
        element: &ElementDef,
        value: &'v Value,
        limited: bool,
    ) -> Option<&'v [Value]> {
        match (element.is_array(), value) {
            (true, Value::Array(items)) if items.is_empty() => {
                let message = format!(
                    "{} must not be an empty array: leave the element out.",
                    element.name
                );
                self.report(IssueCode::Structure, None, message);
                None
            }
            (true, Value::Array(items)) => {
                if let Some(max) = element.max
                    && items.len() > max as usize
                {
                    let message = format!(
                        "{} has {} items; at most {max} are allowed.",
                        element.name,
                        items.len()
                    );
                    self.report(IssueCode::Structure, None, message);
                } else if limited
                    && let Some(limit) = element.repetition_limit
                    && items.len() > limit as usize
                {
                    self.report(
                        IssueCode::BusinessRule,
                        None,
                        repetition_message(&element.name, items.len(), limit),
                    );
                }
                Some(items)
            }
            (true, _) => {
                let message = format!(
                    "{} repeats (maximum cardinality *), so it must be a JSON array, not {}.",
                    element.name,
                    json_kind_name(value)
                );
                self.report(IssueCode::Structure, None, message);
                None
            }
            (false, Value::Array(_)) => {
                let message = format!(
                    "{} does not repeat (maximum cardinality 1), so it must not be an array.",
                    element.name
                );
                self.report(IssueCode::Structure, None, message);
                None
            }
            (false, _) if element.max == Some(0) => {
                let message = format!(
                    "{} is not allowed here (maximum cardinality 0).",
                    element.name
                );
                self.report(IssueCode::Structure, None, message);
                None
            }
            (false, _) => Some(std::slice::from_ref(value)),
        }
    }

    /// A primitive element: its values and its `_name` sibling, aligned item by item when it repeats.
    fn primitive_element(
        &mut self,
        element: &'a ElementDef,
        primitive: Option<PrimitiveType>,
        type_code: &'a str,
        name: &'a str,
        value: Option<&'a Value>,
        sibling: Option<&'a Value>,
    ) {
        let Some(primitive) = primitive else { return };
        self.path.push_name(name);
        let values = match value {
            Some(v) => match self.shape(element, v) {
                Some(items) => items,
                None => {
                    self.path.pop();
                    return;
                }
            },
            None => &[],
        };
        let siblings = match sibling {
            Some(s) => match self.shape_limited(element, s, value.is_none()) {
                Some(items) => items,
                None => {
                    self.path.pop();
                    return;
                }
            },
            None => &[],
        };
        let repeats = element.is_array();
        if repeats && value.is_some() && sibling.is_some() && values.len() != siblings.len() {
            let message = format!(
                "_{name} has {} items and {name} has {}: the two arrays must align item by item.",
                siblings.len(),
                values.len()
            );
            self.report(IssueCode::Structure, None, message);
        }
        let count = values.len().max(siblings.len());
        for index in 0..count {
            if self.stopped() {
                break;
            }
            if repeats {
                self.path.push_index(index);
            }
            let item = values.get(index).filter(|v| !v.is_null());
            let extra = siblings.get(index).filter(|v| !v.is_null());
            if item.is_none() && extra.is_none() {
                let message = if repeats {
                    format!(
                        "null is allowed in {name} only where _{name} has an id or extensions at the same position."
                    )
                } else {
                    format!("{name} must not be null: leave the element out.")
                };
                self.report(IssueCode::Structure, None, message);
            }
            if let Some(item) = item {
                self.primitive_value(element, primitive, type_code, item);
            }
            if let Some(extra) = extra {
                self.primitive_sibling(type_code, extra, item.is_some());
            }
            if repeats {
                self.path.pop();
            }
        }
        self.path.pop();
    }

    /// One primitive value, with the required binding of a `code`.
    fn primitive_value(
        &mut self,
        element: &'a ElementDef,
        primitive: PrimitiveType,
        type_code: &str,
        value: &'a Value,
    ) {
        if primitive == PrimitiveType::Xhtml
            && let Value::String(text) = value
        {
            self.narrative(text);
            return;
        }
        match primitives::check(primitive, value) {
            Ok(()) => {}
            Err(PrimitiveError::JsonKind { expected }) => {
                let message = format!(
                    "A {type_code} must be {}, not {} ({}).",
                    expected.as_str(),
                    json_kind_name(value),
                    quote(value)
                );
                self.report(IssueCode::Structure, None, message);
                return;
            }
            Err(PrimitiveError::Format(rule)) => {
                let message = format!("Invalid {type_code} {}: {rule}.", quote(value));
                self.report(IssueCode::Value, None, message);
                return;
            }
        }
        if primitive == PrimitiveType::Code
            && let (Some(url), Value::String(code)) = (element.binding.as_deref(), value)
        {
            self.check_code_binding(url, code);
        }
        // dom-3 counts a contained resource as referred to from a `reference`, or from any
        // canonical, uri or url, that says `#` and its id.
        if let Value::String(text) = value
            && text.starts_with('#')
            && (matches!(
                primitive,
                PrimitiveType::Canonical | PrimitiveType::Uri | PrimitiveType::Url
            ) || &*element.name == "reference")
        {
            self.local_references.push(text);
        }
    }

    /// A narrative `div`: its own check says which rule is broken and where in the markup.
    /// Kept out of line: most resources have no narrative, and the hot path stays small.
    #[inline(never)]
    fn narrative(&mut self, text: &str) {
        if let Err(error) = primitives::check_xhtml(text) {
            let code = match error.invariant() {
                Some(_) => IssueCode::Invariant,
                None => IssueCode::Value,
            };
            self.report(code, None, format!("Invalid narrative: {error}."));
        }
    }

    /// The `_name` object of one primitive value: only `id` and `extension`.
    fn primitive_sibling(&mut self, type_code: &str, value: &'a Value, has_value: bool) {
        let Value::Object(object) = value else {
            let message = format!(
                "The id and extensions of a primitive must be a JSON object, not {}.",
                json_kind_name(value)
            );
            self.report(IssueCode::Structure, None, message);
            return;
        };
        let Some(type_def) = self.model.type_def(type_code) else {
            return;
        };
        self.object(type_def, object, ObjectKind::PrimitiveSibling { has_value });
    }

    /// An element of a datatype or backbone type.
    fn complex_element(
        &mut self,
        element: &'a ElementDef,
        type_index: usize,
        type_code: &'a str,
        key: &'a str,
        value: &'a Value,
    ) {
        let Some(type_def) = self.model.type_def(type_code) else {
            return;
        };
        self.path.push_name(key);
        if let Some(items) = self.shape(element, value) {
            let repeats = element.is_array();
            for (index, item) in items.iter().enumerate() {
                if self.stopped() {
                    break;
                }
                if repeats {
                    self.path.push_index(index);
                }
                match item {
                    Value::Object(object) => {
                        self.object(type_def, object, ObjectKind::Element);
                        self.type_rules(element, type_index, type_code, object);
                    }
                    other => {
                        let message = format!(
                            "A {type_code} must be a JSON object, not {}.",
                            json_kind_name(other)
                        );
                        self.report(IssueCode::Structure, None, message);
                    }
                }
                if repeats {
                    self.path.pop();
                }
            }
        }
        self.path.pop();
    }

    /// An element whose type is `Resource`: `contained`, `Bundle.entry.resource`,
    /// `Bundle.entry.response.outcome`, `Parameters.parameter.resource`.
    fn resource_element(&mut self, element: &'a ElementDef, key: &'a str, value: &'a Value) {
        self.path.push_name(key);
        if let Some(items) = self.shape(element, value) {
            let repeats = element.is_array();
            let place = if key == "contained" {
                ResourcePlace::Contained
            } else {
                ResourcePlace::Nested
            };
            for (index, item) in items.iter().enumerate() {
                if self.stopped() {
                    break;
                }
                if repeats {
                    self.path.push_index(index);
                }
                let references_before = self.local_references.len();
                self.resource(item, place);
                // Only a resource that could be read as one (it has a resourceType) is held to
                // dom-3: one fault, one issue.
                if place == ResourcePlace::Contained
                    && item.get("resourceType").is_some_and(Value::is_string)
                {
                    self.contained.push(Contained {
                        index,
                        id: item.get("id").and_then(Value::as_str),
                        refers_to_container: self.local_references[references_before..]
                            .contains(&"#"),
                    });
                }
                if repeats {
                    self.path.pop();
                }
            }
        }
        self.path.pop();
    }
}
