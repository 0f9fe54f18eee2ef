//! Walking the input JSON with the R4 model: an element's children by name (choice elements
//! `value[x]` found by their typed JSON names, primitive `_name` siblings joined to their
//! values), all children, and the types of what is found.

use fhir_model::{Model, TypeDef, TypeKind};
use serde_json::{Map, Value};

use crate::item::{Collection, Item, Node, Repr};

pub(crate) fn model() -> &'static Model {
    fhir_model::r4()
}

/// The type of a resource from its `resourceType`.
pub(crate) fn resource_type_of(value: &Value) -> Option<&'static TypeDef> {
    let Value::Object(map) = value else {
        return None;
    };
    // `resourceType` comes first in almost every resource: look there before hashing.
    let name = match map.iter().next() {
        Some((key, name)) if key == "resourceType" => name,
        _ => map.get("resourceType")?,
    };
    model().type_def(name.as_str()?)
}

/// The node for a whole resource (or any JSON object with a `resourceType`).
pub(crate) fn resource_item(value: &Value) -> Item<'_> {
    Item::node(Some(value), None, resource_type_of(value))
}

/// A member name, with its `_name` spelling made once when the expression is compiled so that
/// looking up a primitive's extension sibling allocates nothing, and with the member already
/// resolved against the types the compiler expects it on (so that evaluation does not hash
/// the name into the model's tables on every step).
#[derive(Debug, Clone)]
pub(crate) struct MemberName {
    pub name: Box<str>,
    pub underscored: Box<str>,
    plans: Box<[(&'static TypeDef, MemberPlan)]>,
}

/// What a member name means on one parent type.
#[derive(Debug, Clone, Copy)]
enum MemberPlan {
    /// An ordinary element: its JSON type, and its model type when that does not depend on
    /// the JSON (it does for `Resource`-typed elements, typed by their `resourceType`).
    Element {
        element_type: &'static str,
        child: Option<&'static TypeDef>,
    },
    /// `value` for `value[x]`.
    Choice,
    /// A choice spelling such as `valueQuantity`: FHIRPath does not know it.
    ChoiceSpelling,
    /// Not in the model: reachable untyped.
    Unknown,
}

fn plan_for(parent: &'static TypeDef, name: &str) -> MemberPlan {
    if let Some(property) = parent.property(name) {
        if property.element.choice {
            return MemberPlan::ChoiceSpelling;
        }
        let element_type = property.type_code;
        let child = (element_type != "Resource")
            .then(|| child_type(parent, element_type, name, None))
            .flatten();
        return MemberPlan::Element {
            element_type,
            child,
        };
    }
    if parent.element(name).is_some_and(|e| e.choice) {
        return MemberPlan::Choice;
    }
    MemberPlan::Unknown
}

impl MemberName {
    /// `parents`: the types the member is expected on (may be empty).
    pub(crate) fn new(name: &str, parents: &[&'static TypeDef]) -> MemberName {
        let plans = parents
            .iter()
            .filter(|t| t.kind != TypeKind::Primitive)
            .map(|t| (*t, plan_for(t, name)))
            .collect();
        MemberName {
            name: name.into(),
            underscored: format!("_{name}").into(),
            plans,
        }
    }

    fn plan(&self, parent: &'static TypeDef) -> MemberPlan {
        match self.plans.iter().find(|(t, _)| std::ptr::eq(*t, parent)) {
            Some((_, plan)) => *plan,
            None => plan_for(parent, &self.name),
        }
    }
}

/// The values under `name` and `_name` in one pass over a small object (hashing the name
/// twice costs more than comparing a dozen keys by length first).
fn lookup<'a>(
    map: &'a Map<String, Value>,
    name: &MemberName,
) -> (Option<&'a Value>, Option<&'a Value>) {
    if map.len() > 16 {
        return (map.get(&*name.name), map.get(&*name.underscored));
    }
    let (mut value, mut extension) = (None, None);
    for (key, v) in map {
        if key.len() == name.name.len() && **key == *name.name {
            value = Some(v);
        } else if key.len() == name.underscored.len() && **key == *name.underscored {
            extension = Some(v);
        }
    }
    (value, extension)
}

/// The type of an element found under `parent` with JSON name `json_name`.
fn child_type(
    parent: &'static TypeDef,
    element_type: &str,
    json_name: &str,
    child: Option<&Value>,
) -> Option<&'static TypeDef> {
    // R4 declares `Resource.id` as a string in its StructureDefinitions, but documents it as
    // an `id`; FHIRPath engines (and the official tests) type it as `id`.
    if json_name == "id" && parent.kind == TypeKind::Resource {
        return model().type_def("id");
    }
    if element_type == "Resource" {
        return child
            .and_then(resource_type_of)
            .or_else(|| model().type_def("Resource"));
    }
    model().type_def(element_type)
}

/// Appends the items that `value` (the JSON under one name) and `extension` (the JSON under
/// `_name`) hold: one per array entry, joined by position.
fn push_values<'a>(
    value: Option<&'a Value>,
    extension: Option<&'a Value>,
    ty: impl Fn(Option<&'a Value>) -> Option<&'static TypeDef>,
    out: &mut Collection<'a>,
) {
    match value {
        Some(Value::Array(values)) => {
            let extensions = extension.and_then(Value::as_array);
            for (i, v) in values.iter().enumerate() {
                let ext = extensions.and_then(|e| e.get(i)).filter(|e| !e.is_null());
                let v = (!v.is_null()).then_some(v);
                if v.is_some() || ext.is_some() {
                    out.push(Item::node(v, ext, ty(v)));
                }
            }
            // `_name` may be longer than `name` when trailing values are extension-only.
            if let Some(extensions) = extensions {
                for ext in extensions
                    .iter()
                    .skip(values.len())
                    .filter(|e| !e.is_null())
                {
                    out.push(Item::node(None, Some(ext), ty(None)));
                }
            }
        }
        Some(Value::Null) | None => match extension {
            Some(Value::Array(extensions)) => {
                for ext in extensions.iter().filter(|e| !e.is_null()) {
                    out.push(Item::node(None, Some(ext), ty(None)));
                }
            }
            Some(ext) => out.push(Item::node(None, Some(ext), ty(None))),
            None => {}
        },
        Some(v) => out.push(Item::node(Some(v), extension, ty(Some(v)))),
    }
}

/// Appends the children called `name` of `item` to `out`.
pub(crate) fn member<'a>(item: &Item<'a>, name: &MemberName, out: &mut Collection<'a>) {
    let node = match &item.0 {
        Repr::Node(node) => *node,
        // `type()` results have a namespace and a name.
        Repr::Type {
            fhir,
            name: type_name,
        } => {
            match &*name.name {
                "namespace" => {
                    out.push(Item::borrowed_string(if *fhir { "FHIR" } else { "System" }))
                }
                "name" => out.push(Item::borrowed_string(type_name)),
                _ => {}
            }
            return;
        }
        // A System.Quantity has a value and a unit.
        Repr::Quantity(quantity) => {
            match &*name.name {
                "value" => out.push(Item::decimal(quantity.value)),
                "unit" => out.push(Item::string(&quantity.unit)),
                _ => {}
            }
            return;
        }
        _ => return,
    };
    let Some(ty) = node.ty else {
        if let Some(Value::Object(map)) = node.value {
            let (value, extension) = lookup(map, name);
            push_values(value, extension, |_| None, out);
        }
        return;
    };
    if ty.kind == TypeKind::Primitive {
        // A primitive's `id` and `extension` live in its `_name` sibling.
        if let Some(Value::Object(ext)) = node.extension
            && let Some(property) = ty.property(&name.name)
        {
            let element_type = property.type_code;
            push_values(
                ext.get(&*name.name),
                None,
                |_| model().type_def(element_type),
                out,
            );
        }
        return;
    }
    let Some(Value::Object(map)) = node.value else {
        return;
    };
    match name.plan(ty) {
        MemberPlan::Element {
            element_type,
            child,
        } => {
            let (value, extension) = lookup(map, name);
            push_values(
                value,
                extension,
                |found| child.or_else(|| child_type(ty, element_type, &name.name, found)),
                out,
            );
        }
        MemberPlan::Choice => choice_member(map, ty, &name.name, out),
        MemberPlan::ChoiceSpelling => {}
        MemberPlan::Unknown => {
            let (value, extension) = lookup(map, name);
            push_values(value, extension, |_| None, out);
        }
    }
}

/// `value` on a type with `value[x]`: the one JSON property `valueQuantity`, `valueString`...
fn choice_member<'a>(
    map: &'a Map<String, Value>,
    ty: &'static TypeDef,
    stem: &str,
    out: &mut Collection<'a>,
) {
    for (key, value) in map {
        let Some(rest) = key.strip_prefix(stem) else {
            continue;
        };
        if !rest.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        let Some(property) = ty.property(key) else {
            continue;
        };
        let element_type = property.type_code;
        let extension = map
            .iter()
            .find(|(k, _)| k.starts_with('_') && &k[1..] == key)
            .map(|(_, v)| v);
        push_values(
            Some(value),
            extension,
            |child| child_type(ty, element_type, key, child),
            out,
        );
        return;
    }
    // Only an extension: `_valueString` with no `valueString`.
    for (key, extension) in map {
        let Some(rest) = key.strip_prefix('_').and_then(|k| k.strip_prefix(stem)) else {
            continue;
        };
        if rest.starts_with(|c: char| c.is_ascii_uppercase())
            && let Some(property) = ty.property(&key[1..])
        {
            let element_type = property.type_code;
            push_values(
                None,
                Some(extension),
                |_| model().type_def(element_type),
                out,
            );
            return;
        }
    }
}

/// Appends every child element of `item` (`children()`), in JSON order.
pub(crate) fn children<'a>(item: &Item<'a>, out: &mut Collection<'a>) {
    let Repr::Node(node) = &item.0 else { return };
    if node.ty.is_some_and(|t| t.kind == TypeKind::Primitive) {
        if let Some(Value::Object(ext)) = node.extension {
            for key in ["id", "extension"] {
                if let Some(v) = ext.get(key) {
                    let ty = node
                        .ty
                        .and_then(|t| t.property(key))
                        .and_then(|p| model().type_def(p.type_code));
                    push_values(Some(v), None, |_| ty, out);
                }
            }
        }
        return;
    }
    let Some(Value::Object(map)) = node.value else {
        return;
    };
    for (key, value) in map {
        if key == "resourceType" {
            continue;
        }
        if let Some(plain) = key.strip_prefix('_') {
            // Extension-only primitives; the others were joined to their value already.
            if map.get(plain).is_none_or(Value::is_null) {
                let ty = node
                    .ty
                    .and_then(|t| t.property(plain))
                    .and_then(|p| model().type_def(p.type_code));
                push_values(None, Some(value), |_| ty, out);
            }
            continue;
        }
        let extension = if value.is_object() || value.is_array() && !has_primitive_entries(value) {
            None
        } else {
            map_get_underscored(map, key)
        };
        match node.ty.and_then(|t| t.property(key).map(|p| (t, p))) {
            Some((parent, property)) => {
                let element_type = property.type_code;
                push_values(
                    Some(value),
                    extension,
                    |child| child_type(parent, element_type, key, child),
                    out,
                )
            }
            None => push_values(Some(value), extension, |_| None, out),
        }
    }
}

fn has_primitive_entries(value: &Value) -> bool {
    value
        .as_array()
        .is_some_and(|a| a.iter().any(|v| !v.is_object()))
}

fn map_get_underscored<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    // Rare enough (primitive children under `children()`) that scanning beats allocating.
    map.iter()
        .find(|(k, _)| k.len() == key.len() + 1 && k.starts_with('_') && &k[1..] == key)
        .map(|(_, v)| v)
}

/// `extension(url)`: the extensions of `item` with that URL (for a primitive, those in its
/// `_name` sibling).
pub(crate) fn extensions_with_url<'a>(item: &Item<'a>, url: &str, out: &mut Collection<'a>) {
    let Repr::Node(node) = &item.0 else { return };
    let holder = if node.ty.is_some_and(|t| t.kind == TypeKind::Primitive) {
        node.extension
    } else {
        node.value
    };
    let Some(Value::Array(extensions)) = holder.and_then(|h| h.get("extension")) else {
        return;
    };
    let ty = model().type_def("Extension");
    for extension in extensions {
        if extension.get("url").and_then(Value::as_str) == Some(url) {
            out.push(Item::node(Some(extension), None, ty));
        }
    }
}

/// Whether a node's type is `ancestor` or specialises it.
pub(crate) fn node_is_a(node: &Node<'_>, ancestor: &TypeDef) -> bool {
    node.ty
        .is_some_and(|t| std::ptr::eq(t, ancestor) || model().is_subtype(&t.name, &ancestor.name))
}

/// Whether `item` is JSON the model does not know whose `resourceType` is `name`: a path may
/// start with the type of such an object as it does with a FHIR resource's.
pub(crate) fn untyped_resource_named(item: &Item<'_>, name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && matches!(&item.0, Repr::Node(Node { ty: None, value: Some(value), .. })
            if value.get("resourceType").and_then(Value::as_str) == Some(name))
}
