//! Loads the compact definitions (written by `cargo run -p xtask -- vendor-definitions`) into
//! tables: types with their elements, required value sets, search parameters and compartments.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

const TYPES: &str = include_str!("../definitions/types.json");
const VALUE_SETS: &str = include_str!("../definitions/value-sets.json");
const SEARCH_PARAMETERS: &str = include_str!("../definitions/search-parameters.json");
const COMPARTMENTS: &str = include_str!("../definitions/compartments.json");
/// Meridian's policy, not the specification's: how often an element may repeat in one place.
const REPETITION_LIMITS: &str = include_str!("../policy/repetition-limits.txt");

/// What sort of type a [`TypeDef`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeKind {
    /// `string`, `dateTime`, `decimal`...: a JSON scalar plus an optional `_name` sibling.
    Primitive,
    /// A datatype such as `HumanName` or `Quantity`.
    Complex,
    /// A resource type (including the abstract `Resource` and `DomainResource`).
    Resource,
    /// An element defined inline, named by its path (`Observation.component`).
    Backbone,
}

/// One allowed type of an element. For `Reference` and `canonical`, `targets` lists the
/// resource types it may point at (empty means any).
#[derive(Debug, Clone, Deserialize)]
pub struct ElementType {
    pub code: Box<str>,
    #[serde(default)]
    pub targets: Vec<Box<str>>,
}

/// One element of a type, as its StructureDefinition snapshot declares it.
#[derive(Debug, Clone, Deserialize)]
pub struct ElementDef {
    /// The name without `[x]`: `value` for `value[x]`.
    pub name: Box<str>,
    /// True for `value[x]`-style elements, written in JSON as `valueQuantity`, `valueString`...
    #[serde(default)]
    pub choice: bool,
    #[serde(default)]
    pub min: u32,
    /// `None` for `*`.
    #[serde(default = "one", deserialize_with = "max_or_unbounded")]
    pub max: Option<u32>,
    pub types: Vec<ElementType>,
    /// The canonical URL of a required binding's value set.
    #[serde(default)]
    pub binding: Option<Box<str>>,
    #[serde(default)]
    pub summary: bool,
    #[serde(default)]
    pub modifier: bool,
    /// How many items a repeating element may have in one place by this server's policy
    /// (`policy/repetition-limits.txt`), on top of `max`; `None` for no limit.
    #[serde(skip)]
    pub repetition_limit: Option<u32>,
}

fn one() -> Option<u32> {
    Some(1)
}

fn max_or_unbounded<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Option::<u32>::deserialize(d)
}

impl ElementDef {
    /// Whether the element repeats (and so is a JSON array).
    pub fn is_array(&self) -> bool {
        self.max != Some(1)
    }

    /// The type of a single-typed element, or the first of a choice.
    pub fn first_type(&self) -> &str {
        self.types.first().map(|t| &*t.code).unwrap_or("Element")
    }
}

/// An invariant (`obs-6`, `ele-1`...) with its FHIRPath expression, checked at `path`.
#[derive(Debug, Clone, Deserialize)]
pub struct Constraint {
    pub key: Box<str>,
    pub severity: Box<str>,
    pub path: Box<str>,
    #[serde(default)]
    pub human: Box<str>,
    #[serde(default)]
    pub expression: Option<Box<str>>,
}

/// How a JSON property of a type maps to its element: `valueQuantity` on `Observation` is
/// element `value` with type `Quantity`.
#[derive(Debug, Clone, Copy)]
pub struct PropertyRef<'m> {
    pub element: &'m ElementDef,
    pub type_code: &'m str,
}

#[derive(Deserialize)]
struct RawType {
    name: Box<str>,
    kind: TypeKind,
    #[serde(default, rename = "abstract")]
    is_abstract: bool,
    #[serde(default)]
    base: Option<Box<str>>,
    elements: Vec<ElementDef>,
    #[serde(default)]
    constraints: Vec<Constraint>,
}

/// A type: a primitive, a datatype, a resource or a backbone element.
#[derive(Debug)]
pub struct TypeDef {
    pub name: Box<str>,
    pub kind: TypeKind,
    pub is_abstract: bool,
    /// The type this one specialises (`DomainResource` for `Observation`, `Quantity` for `Age`,
    /// `string` for `code`).
    pub base: Option<Box<str>>,
    /// All elements, inherited ones included, in definition order.
    pub elements: Vec<ElementDef>,
    /// Invariants defined by this type (inherited ones live on the base types).
    pub constraints: Vec<Constraint>,
    by_name: HashMap<Box<str>, usize>,
    /// JSON property name -> (element index, type index).
    by_property: HashMap<Box<str>, (usize, usize)>,
}

impl TypeDef {
    fn new(raw: RawType) -> TypeDef {
        let mut by_name = HashMap::new();
        let mut by_property = HashMap::new();
        for (i, element) in raw.elements.iter().enumerate() {
            by_name.insert(element.name.clone(), i);
            if element.choice {
                for (t, ty) in element.types.iter().enumerate() {
                    by_property.insert(
                        choice_property(&element.name, &ty.code).into_boxed_str(),
                        (i, t),
                    );
                }
            } else {
                by_property.insert(element.name.clone(), (i, 0));
            }
        }
        TypeDef {
            name: raw.name,
            kind: raw.kind,
            is_abstract: raw.is_abstract,
            base: raw.base,
            elements: raw.elements,
            constraints: raw.constraints,
            by_name,
            by_property,
        }
    }

    /// The element called `name` (without `[x]`).
    pub fn element(&self, name: &str) -> Option<&ElementDef> {
        self.by_name.get(name).map(|&i| &self.elements[i])
    }

    /// Where a JSON property of this type points: (index in `elements`, index in that element's
    /// `types`). The validator keeps per-element state in arrays indexed this way.
    pub fn property_index(&self, json_name: &str) -> Option<(usize, usize)> {
        self.by_property.get(json_name).copied()
    }

    /// What a JSON property (`valueQuantity`, `status`; not `_status`) of this type means.
    pub fn property(&self, json_name: &str) -> Option<PropertyRef<'_>> {
        let &(e, t) = self.by_property.get(json_name)?;
        let element = &self.elements[e];
        Some(PropertyRef {
            element,
            type_code: element.types.get(t).map(|t| &*t.code).unwrap_or("Element"),
        })
    }
}

/// Sets every repeating element's `repetition_limit` from the policy's lines (`PATH | LIMIT`,
/// the most specific path winning), and refuses a line whose path names no repeating element.
fn apply_repetition_limits(
    types: &mut HashMap<Box<str>, TypeDef>,
    policy: &str,
) -> Result<(), LoadError> {
    let fail = |message: String| LoadError::RepetitionLimits(message);
    let mut general = None;
    let mut by_name: HashMap<&str, Option<u32>> = HashMap::new();
    let mut by_path: HashMap<(&str, &str), Option<u32>> = HashMap::new();
    for (number, line) in policy.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let Some((path, limit)) = line.split_once('|') else {
            return Err(fail(format!("line {}: not PATH | LIMIT", number + 1)));
        };
        let limit = match limit.trim() {
            "none" => None,
            number_text => Some(number_text.parse::<u32>().map_err(|_| {
                fail(format!(
                    "line {}: '{number_text}' is not a number or none",
                    number + 1
                ))
            })?),
        };
        match path.trim().rsplit_once('.') {
            None if path.trim() == "*" => general = limit,
            Some(("*", element)) => {
                by_name.insert(element, limit);
            }
            Some((owner, element)) => {
                let repeats = types
                    .get(owner)
                    .and_then(|t| t.element(element))
                    .is_some_and(ElementDef::is_array);
                if !repeats {
                    return Err(fail(format!(
                        "line {}: {} is not a repeating element",
                        number + 1,
                        path.trim()
                    )));
                }
                by_path.insert((owner, element), limit);
            }
            None => {
                return Err(fail(format!(
                    "line {}: '{}' is not a path",
                    number + 1,
                    path.trim()
                )));
            }
        }
    }
    let mut named: HashSet<&str> = HashSet::new();
    for (owner, type_def) in types.iter_mut() {
        for element in type_def.elements.iter_mut().filter(|e| e.is_array()) {
            let name = &*element.name;
            if by_name.contains_key(name) {
                named.insert(name);
            }
            element.repetition_limit = by_path
                .get(&(&**owner, name))
                .or_else(|| by_name.get(name))
                .copied()
                .unwrap_or(general);
        }
    }
    if let Some(unused) = by_name.keys().find(|name| !named.contains(*name)) {
        return Err(fail(format!("*.{unused} names no repeating element")));
    }
    Ok(())
}

/// The JSON name of one type of a choice element: `value` + `dateTime` = `valueDateTime`.
pub fn choice_property(stem: &str, type_code: &str) -> String {
    let mut out = String::with_capacity(stem.len() + type_code.len());
    out.push_str(stem);
    let mut chars = type_code.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
    out
}

/// The codes of a required value set, by system; or not expandable from the vendored files
/// (MIME types, currencies, UCUM units), in which case codes cannot be checked against it.
#[derive(Debug)]
pub struct ValueSet {
    pub url: Box<str>,
    codes: Option<HashMap<Box<str>, HashSet<Box<str>>>>,
}

impl ValueSet {
    pub fn is_expandable(&self) -> bool {
        self.codes.is_some()
    }

    /// Whether `code` is in the set in any system. `None` when the set cannot be checked.
    pub fn contains_code(&self, code: &str) -> Option<bool> {
        Some(
            self.codes
                .as_ref()?
                .values()
                .any(|codes| codes.contains(code)),
        )
    }

    /// Whether `system|code` is in the set. `None` when the set cannot be checked.
    pub fn contains(&self, system: &str, code: &str) -> Option<bool> {
        Some(
            self.codes
                .as_ref()?
                .get(system)
                .is_some_and(|codes| codes.contains(code)),
        )
    }
}

#[derive(Deserialize)]
struct RawValueSet {
    url: Box<str>,
    #[serde(default)]
    codes: Option<HashMap<Box<str>, HashSet<Box<str>>>>,
}

/// The type of a search parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl SearchParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchParamType::Number => "number",
            SearchParamType::Date => "date",
            SearchParamType::String => "string",
            SearchParamType::Token => "token",
            SearchParamType::Reference => "reference",
            SearchParamType::Composite => "composite",
            SearchParamType::Quantity => "quantity",
            SearchParamType::Uri => "uri",
            SearchParamType::Special => "special",
        }
    }
}

/// One component of a composite search parameter.
#[derive(Debug, Clone, Deserialize)]
pub struct CompositeComponent {
    /// The code of the component's own search parameter on the same base.
    pub code: Box<str>,
    pub expression: Box<str>,
}

/// A search parameter, from the official `search-parameters.json` or created on the server.
#[derive(Debug, Clone, Deserialize)]
pub struct SearchParamDef {
    pub url: Box<str>,
    pub code: Box<str>,
    pub base: Vec<Box<str>>,
    #[serde(rename = "type")]
    pub kind: SearchParamType,
    #[serde(default)]
    pub expression: Option<Box<str>>,
    #[serde(default, rename = "target")]
    pub targets: Vec<Box<str>>,
    #[serde(default, rename = "component")]
    pub components: Vec<CompositeComponent>,
    #[serde(default)]
    pub modifier: Vec<Box<str>>,
    #[serde(default)]
    pub comparator: Vec<Box<str>>,
    /// `normal` unless `phonetic`, `nearby`, `distance` or `other`.
    #[serde(default)]
    pub usage: Option<Box<str>>,
}

/// compartment type -> resource type -> parameter codes
type Compartments = HashMap<Box<str>, HashMap<Box<str>, Vec<Box<str>>>>;

/// The whole R4 model. Get it with [`crate::r4`].
#[derive(Debug)]
pub struct Model {
    types: HashMap<Box<str>, TypeDef>,
    value_sets: HashMap<Box<str>, ValueSet>,
    search_parameters: Vec<SearchParamDef>,
    compartments: Compartments,
    resource_types: Vec<Box<str>>,
}

/// The vendored definitions did not parse, or the policy does not fit them.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("vendored definitions {file}: {source}")]
    Json {
        file: &'static str,
        source: serde_json::Error,
    },
    #[error("policy/repetition-limits.txt: {0}")]
    RepetitionLimits(String),
}

impl Model {
    pub(crate) fn load_vendored() -> Result<Model, LoadError> {
        let raw_types: Vec<RawType> =
            serde_json::from_str(TYPES).map_err(|source| LoadError::Json {
                file: "types.json",
                source,
            })?;
        let raw_value_sets: Vec<RawValueSet> =
            serde_json::from_str(VALUE_SETS).map_err(|source| LoadError::Json {
                file: "value-sets.json",
                source,
            })?;
        let search_parameters: Vec<SearchParamDef> = serde_json::from_str(SEARCH_PARAMETERS)
            .map_err(|source| LoadError::Json {
                file: "search-parameters.json",
                source,
            })?;
        let compartments: Compartments =
            serde_json::from_str(COMPARTMENTS).map_err(|source| LoadError::Json {
                file: "compartments.json",
                source,
            })?;

        let mut resource_types: Vec<Box<str>> = raw_types
            .iter()
            .filter(|t| t.kind == TypeKind::Resource && !t.is_abstract)
            .map(|t| t.name.clone())
            .collect();
        resource_types.sort();
        let mut types = raw_types
            .into_iter()
            .map(|raw| (raw.name.clone(), TypeDef::new(raw)))
            .collect();
        apply_repetition_limits(&mut types, REPETITION_LIMITS)?;
        let value_sets = raw_value_sets
            .into_iter()
            .map(|raw| {
                let vs = ValueSet {
                    url: raw.url.clone(),
                    codes: raw.codes,
                };
                (raw.url, vs)
            })
            .collect();
        Ok(Model {
            types,
            value_sets,
            search_parameters,
            compartments,
            resource_types,
        })
    }

    /// A type by name: `Patient`, `HumanName`, `dateTime`, or a backbone path such as
    /// `Observation.component`.
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// Every type, in no particular order.
    pub fn types(&self) -> impl Iterator<Item = &TypeDef> {
        self.types.values()
    }

    /// The concrete resource types, sorted.
    pub fn resource_types(&self) -> &[Box<str>] {
        &self.resource_types
    }

    /// Whether `name` is a concrete (non-abstract) resource type.
    pub fn is_resource_type(&self, name: &str) -> bool {
        self.types
            .get(name)
            .is_some_and(|t| t.kind == TypeKind::Resource && !t.is_abstract)
    }

    /// Whether `name` is a primitive type (`string`, `code`, `dateTime`...).
    pub fn is_primitive(&self, name: &str) -> bool {
        self.types
            .get(name)
            .is_some_and(|t| t.kind == TypeKind::Primitive)
    }

    /// Whether `ty` is `ancestor` or specialises it (`Age` is a `Quantity`, `Patient` is a
    /// `DomainResource` and a `Resource`, `code` is a `string`).
    pub fn is_subtype(&self, ty: &str, ancestor: &str) -> bool {
        let mut current = Some(ty);
        let mut steps = 0;
        while let Some(name) = current {
            if name == ancestor {
                return true;
            }
            steps += 1;
            if steps > 16 {
                return false;
            }
            current = self.types.get(name).and_then(|t| t.base.as_deref());
        }
        false
    }

    /// A required value set by canonical URL (without version).
    pub fn value_set(&self, url: &str) -> Option<&ValueSet> {
        self.value_sets.get(url.split('|').next().unwrap_or(url))
    }

    /// The official R4 search parameters.
    pub fn search_parameters(&self) -> &[SearchParamDef] {
        &self.search_parameters
    }

    /// The search parameters that apply to a resource type, the ones on `Resource` and
    /// `DomainResource` included.
    pub fn search_parameters_for<'a>(
        &'a self,
        resource_type: &'a str,
    ) -> impl Iterator<Item = &'a SearchParamDef> + 'a {
        let domain = self
            .types
            .get(resource_type)
            .is_some_and(|t| t.base.as_deref() == Some("DomainResource"));
        self.search_parameters.iter().filter(move |p| {
            p.base.iter().any(|b| {
                &**b == resource_type || &**b == "Resource" || (domain && &**b == "DomainResource")
            })
        })
    }

    /// The parameters that put a resource of `resource_type` into a compartment of type
    /// `compartment` (`Patient`, `Encounter`, `RelatedPerson`, `Practitioner`, `Device`). Empty when
    /// the type is never in that compartment. `{def}` means the compartment resource itself.
    pub fn compartment_params(&self, compartment: &str, resource_type: &str) -> &[Box<str>] {
        self.compartments
            .get(compartment)
            .and_then(|members| members.get(resource_type))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}
