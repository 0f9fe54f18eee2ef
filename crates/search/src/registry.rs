//! The search parameters in force: the official R4 ones, by resource type and code.

use std::collections::HashMap;
use std::sync::Arc;

use fhir_model::{Model, SearchParamDef, SearchParamType};

use crate::keys::ParamKey;

/// A search parameter as it applies to one resource type.
#[derive(Debug, Clone)]
pub struct Param {
    pub resource_type: Box<str>,
    pub code: Box<str>,
    pub kind: SearchParamType,
    pub key: ParamKey,
    pub definition: Arc<SearchParamDef>,
    /// A resource has at most one value of it: each term of its expression for this type is
    /// the same path of elements that never repeat (`Observation.effective`, or the casts of
    /// one choice element). The store may then bound a date walk by another filter of the same
    /// parameter, for both must hold of the one value (store-sql `walk`).
    pub single: bool,
}

/// The search parameters of every resource type.
#[derive(Debug, Default)]
pub struct Registry {
    by_type: HashMap<Box<str>, HashMap<Box<str>, Arc<Param>>>,
}

impl Registry {
    /// The official R4 parameters of every resource type in `model`.
    pub fn r4(model: &Model) -> Registry {
        let mut registry = Registry::default();
        for resource_type in model.resource_types() {
            for definition in model.search_parameters_for(resource_type) {
                registry.add(model, resource_type, Arc::new(definition.clone()));
            }
        }
        for (resource_type, definition) in platform_parameters() {
            registry.add(model, resource_type, Arc::new(definition));
        }
        registry
    }

    /// Adds (or replaces) a parameter for one resource type.
    pub fn add(&mut self, model: &Model, resource_type: &str, definition: Arc<SearchParamDef>) {
        let param = Param {
            resource_type: resource_type.into(),
            code: definition.code.clone(),
            kind: definition.kind,
            key: ParamKey::new(resource_type, &definition.code),
            single: single_valued(model, resource_type, &definition),
            definition,
        };
        self.by_type
            .entry(resource_type.into())
            .or_default()
            .insert(param.code.clone(), Arc::new(param));
    }

    pub fn get(&self, resource_type: &str, code: &str) -> Option<&Arc<Param>> {
        self.by_type.get(resource_type)?.get(code)
    }

    /// Every parameter of a resource type, in no particular order.
    pub fn params_of<'a>(
        &'a self,
        resource_type: &str,
    ) -> impl Iterator<Item = &'a Arc<Param>> + 'a {
        self.by_type
            .get(resource_type)
            .into_iter()
            .flat_map(|m| m.values())
    }

    /// The two parameters whose rows together are exactly `param`'s rows, when it is one of
    /// `UNIONS` and the definitions in force still say so (a stored SearchParameter may have
    /// replaced one of the three): it is then searched through them and has no rows of its own.
    pub fn union_parts(&self, param: &Param) -> Option<[&Arc<Param>; 2]> {
        let (_, _, [first, second]) = UNIONS
            .iter()
            .find(|(t, code, _)| *t == &*param.resource_type && *code == &*param.code)?;
        let parts = [
            self.get(&param.resource_type, first)?,
            self.get(&param.resource_type, second)?,
        ];
        let kind_of = |code: &str| self.get(&param.resource_type, code).map(|p| p.kind);
        let same_components = |part: &Param| {
            part.definition.components.len() == param.definition.components.len()
                && part
                    .definition
                    .components
                    .iter()
                    .zip(&param.definition.components)
                    .all(|(a, b)| {
                        a.expression == b.expression
                            && kind_of(&a.code).is_some()
                            && kind_of(&a.code) == kind_of(&b.code)
                    })
        };
        let mut whole = terms_of(&param.definition, &param.resource_type);
        let mut together: Vec<String> = parts
            .iter()
            .flat_map(|part| terms_of(&part.definition, &param.resource_type))
            .collect();
        whole.sort();
        together.sort();
        let holds = !whole.is_empty()
            && whole == together
            && parts
                .iter()
                .all(|part| part.kind == param.kind && same_components(part));
        holds.then_some(parts)
    }
}

/// Parameters whose rows are the union of two others' rows, by their R4 definitions: an
/// Observation's `combo-` parameters search its own value and its components' together.
/// Searched through the two (`Registry::union_parts`), they cost no rows of their own, which
/// were a third of a blood-pressure reading's index entries (BENCHMARKS.md, "Combined
/// parameters searched through their parts").
const UNIONS: &[(&str, &str, [&str; 2])] = &[
    ("Observation", "combo-code", ["code", "component-code"]),
    (
        "Observation",
        "combo-data-absent-reason",
        ["data-absent-reason", "component-data-absent-reason"],
    ),
    (
        "Observation",
        "combo-value-concept",
        ["value-concept", "component-value-concept"],
    ),
    (
        "Observation",
        "combo-value-quantity",
        ["value-quantity", "component-value-quantity"],
    ),
    (
        "Observation",
        "combo-code-value-concept",
        ["code-value-concept", "component-code-value-concept"],
    ),
    (
        "Observation",
        "combo-code-value-quantity",
        ["code-value-quantity", "component-code-value-quantity"],
    ),
];

/// Whether a resource of `resource_type` has at most one value of `definition`: every term of
/// its expression for the type is one path (casts aside) whose elements never repeat. Anything
/// else (a function, a repeating element, two different paths) answers false.
fn single_valued(model: &Model, resource_type: &str, definition: &SearchParamDef) -> bool {
    let paths: Vec<Option<String>> = terms_of(definition, resource_type)
        .iter()
        .map(|term| path_of(term))
        .collect();
    let Some(Some(path)) = paths.first() else {
        return false;
    };
    if paths.iter().any(|p| p.as_ref() != Some(path)) {
        return false;
    }
    let mut steps = path.split('.');
    let Some(mut current) = steps.next().map(str::to_owned) else {
        return false;
    };
    let mut steps = steps.peekable();
    while let Some(step) = steps.next() {
        let Some(element) = model.type_def(&current).and_then(|t| t.element(step)) else {
            return false;
        };
        if element.is_array() {
            return false;
        }
        if steps.peek().is_some() {
            let backbone = format!("{current}.{step}");
            current = if model.type_def(&backbone).is_some() {
                backbone
            } else if element.types.len() == 1 {
                element.first_type().to_owned()
            } else {
                return false;
            };
        }
    }
    true
}

/// The element path a term names, a type cast aside: `Observation.effective` for
/// `Observation.effective`, `(Observation.value as Period)` and `Condition.onset.as(Period)`.
/// None for anything else.
fn path_of(term: &str) -> Option<String> {
    let mut term = term.trim();
    while let Some(inner) = term.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        term = inner.trim();
    }
    let path = match term.split_once(" as ") {
        Some((path, cast)) if is_name(cast.trim()) => path.trim(),
        Some(_) => return None,
        None => match term.rsplit_once(".as(") {
            Some((path, cast)) if cast.strip_suffix(')').is_some_and(is_name) => path,
            Some(_) => return None,
            None => term,
        },
    };
    path.split('.').all(is_name).then(|| path.to_owned())
}

fn is_name(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The terms of a definition's expression that apply to `resource_type`: its top-level `|`
/// alternatives that start at the type (`Observation.code`, `(Observation.value as
/// Quantity)`, `Observation`), with runs of white space made one space.
fn terms_of(definition: &SearchParamDef, resource_type: &str) -> Vec<String> {
    let Some(expression) = definition.expression.as_deref() else {
        return Vec::new();
    };
    let mut terms = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, None, 0);
    let bytes = expression.as_bytes();
    for (at, byte) in bytes.iter().enumerate() {
        match (quoted, byte) {
            (Some(quote), b) if *b == quote => quoted = None,
            (Some(_), _) => {}
            (None, b'\'' | b'`' | b'"') => quoted = Some(*byte),
            (None, b'(' | b'[' | b'{') => depth += 1,
            (None, b')' | b']' | b'}') => depth -= 1,
            (None, b'|') if depth == 0 => {
                terms.push(&expression[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    terms.push(&expression[start..]);
    terms
        .into_iter()
        .map(|term| term.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|term| {
            let bare = term.trim_start_matches('(');
            bare.strip_prefix(resource_type)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', ' ', ')']))
        })
        .collect()
}

/// The institutions a workflow resource is shared between, beside the one that holds it: for
/// each workflow type, the elements whose `Organization` references name them (a consultation
/// `Task`'s addressee and owner, a referral's performer, a message's sender and recipients, a
/// care plan's authors and performers). The access rules read the same paths from a stored
/// resource (who may move a Task) and search the `party` parameter made from them (who sees
/// it), so the two cannot disagree.
pub const WORKFLOW_PARTIES: &[(&str, &[&str])] = &[
    ("Task", &["restriction.recipient", "owner"]),
    ("ServiceRequest", &["performer"]),
    ("Communication", &["recipient", "sender"]),
    (
        "CarePlan",
        &["author", "contributor", "activity.detail.performer"],
    ),
];

/// The institutions (`Organization/ID`) a workflow resource names as its parties (see
/// `WORKFLOW_PARTIES`); none for other types.
pub fn parties_of(resource_type: &str, resource: &serde_json::Value) -> Vec<String> {
    fn walk<'v>(value: &'v serde_json::Value, path: &[&str], out: &mut Vec<&'v serde_json::Value>) {
        match value {
            serde_json::Value::Array(items) => items.iter().for_each(|item| walk(item, path, out)),
            _ => match path.split_first() {
                None => out.push(value),
                Some((step, rest)) => {
                    if let Some(next) = value.get(step) {
                        walk(next, rest, out);
                    }
                }
            },
        }
    }
    let mut parties = Vec::new();
    let Some((_, paths)) = WORKFLOW_PARTIES.iter().find(|(t, _)| *t == resource_type) else {
        return parties;
    };
    for path in *paths {
        let steps: Vec<&str> = path.split('.').collect();
        let mut found = Vec::new();
        walk(resource, &steps, &mut found);
        for reference in found
            .into_iter()
            .filter_map(|r| r.get("reference").and_then(serde_json::Value::as_str))
        {
            if reference.starts_with("Organization/") && !parties.iter().any(|p| p == reference) {
                parties.push(reference.to_owned());
            }
        }
    }
    parties
}

/// What a Task's answer (`Task.output`, the `answer` parameter) may be.
pub const TASK_ANSWER_TYPES: &[&str] = &[
    "DiagnosticReport",
    "ClinicalImpression",
    "CarePlan",
    "DocumentReference",
    "Observation",
    "ImagingStudy",
    "Communication",
];

/// A Task is open (its request is live: the addressee is still to act on it) in these states.
pub const OPEN_TASK_STATES: &[&str] = &[
    "requested",
    "received",
    "accepted",
    "ready",
    "in-progress",
    "on-hold",
];

/// The platform's own search parameters, beside the official ones: what its access rules ask
/// of a resource and R4 gives no parameter for (a Consent's provision type and data classes; a
/// workflow resource's parties, what a Task shares with its addressee and what it answers
/// with, and when it is due).
fn platform_parameters() -> Vec<(&'static str, SearchParamDef)> {
    let param = |base: &str, code: &str, kind: SearchParamType, expression: String| {
        // What a reference parameter may point at (what a chain on it follows).
        let targets: &[&str] = match code {
            "party" => &["Organization", "Practitioner", "PractitionerRole"],
            "answer" => TASK_ANSWER_TYPES,
            _ => &[],
        };
        let targets = targets.iter().map(|t| (*t).into()).collect();
        SearchParamDef {
            url: format!("https://meridian.example/fhir/SearchParameter/{base}-{code}").into(),
            code: code.into(),
            base: vec![base.into()],
            kind,
            expression: Some(expression.into()),
            targets,
            components: Vec::new(),
            modifier: Vec::new(),
            comparator: Vec::new(),
            usage: None,
        }
    };
    let mut parameters = vec![
        (
            "Consent",
            param(
                "Consent",
                "provision-type",
                SearchParamType::Token,
                "Consent.provision.type".into(),
            ),
        ),
        (
            "Consent",
            param(
                "Consent",
                "provision-class",
                SearchParamType::Token,
                "Consent.provision.class".into(),
            ),
        ),
        (
            "Task",
            param(
                "Task",
                "shares",
                SearchParamType::Reference,
                "Task.for | Task.focus | Task.encounter | Task.input.value.ofType(Reference)"
                    .into(),
            ),
        ),
        (
            "Task",
            param(
                "Task",
                "answer",
                SearchParamType::Reference,
                "Task.output.value.ofType(Reference)".into(),
            ),
        ),
        (
            "Task",
            param(
                "Task",
                "due",
                SearchParamType::Date,
                "Task.restriction.period".into(),
            ),
        ),
    ];
    for (resource_type, paths) in WORKFLOW_PARTIES {
        let expression = paths
            .iter()
            .map(|path| format!("{resource_type}.{path}"))
            .collect::<Vec<_>>()
            .join(" | ");
        parameters.push((
            resource_type,
            param(
                resource_type,
                "party",
                SearchParamType::Reference,
                expression,
            ),
        ));
    }
    parameters
}
