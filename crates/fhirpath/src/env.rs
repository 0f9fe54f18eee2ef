//! What an evaluation may see besides its input: `%resource` and friends, user variables, and
//! the hooks through which `resolve()`, `memberOf()`, `conformsTo()` and `trace()` reach the
//! outside world. The engine itself does no I/O.

use serde_json::Value;

use crate::datetime::Temporal;
use crate::item::{Collection, Item};
use crate::navigate;

/// What a [`Resolver`] found for a reference.
pub enum Resolved<'a> {
    /// The resource itself.
    Resource(&'a Value),
    /// A resource of this type exists but its content is not at hand: `resolve()` yields a
    /// placeholder of that type with no content, enough for `resolve() is Patient`.
    Type(&'static str),
}

/// Looks references up for `resolve()`. Called before the defaults (contained resources,
/// Bundle entries, and typed placeholders for relative references) are tried.
pub trait Resolver<'a> {
    fn resolve(&self, reference: &str) -> Option<Resolved<'a>>;
}

/// Answers `memberOf()`. `None` means "cannot tell", which makes the result empty.
pub trait Terminology {
    fn member_of(&self, system: Option<&str>, code: &str, value_set: &str) -> Option<bool>;

    /// Whether a concept known only by its words (a `CodeableConcept`'s `text`, a coding's
    /// `display`) is in the value set: asked for a `Coding` or `CodeableConcept` none of whose
    /// codes is a member. `None` (the default) leaves the answer to the codes alone.
    fn member_of_text(&self, _text: &str, _value_set: &str) -> Option<bool> {
        None
    }
}

/// Answers `conformsTo()`. `Err` for a profile it does not know, which FHIRPath treats as an
/// error.
pub trait Profiles {
    fn conforms_to(&self, resource: &Value, profile: &str) -> Result<bool, String>;
}

/// Receives what `trace()` logs.
pub trait Tracer {
    fn trace(&self, name: &str, items: &Collection<'_>);
}

/// The environment of one evaluation. Build it once and reuse it: it holds no per-evaluation
/// state.
#[derive(Default)]
pub struct Environment<'a> {
    pub(crate) resource: Option<&'a Value>,
    pub(crate) root_resource: Option<&'a Value>,
    pub(crate) variables: Vec<(Box<str>, Collection<'a>)>,
    pub(crate) resolver: Option<&'a dyn Resolver<'a>>,
    pub(crate) terminology: Option<&'a dyn Terminology>,
    pub(crate) profiles: Option<&'a dyn Profiles>,
    pub(crate) tracer: Option<&'a dyn Tracer>,
    pub(crate) now: Option<Temporal>,
}

impl<'a> Environment<'a> {
    pub fn new() -> Environment<'a> {
        Environment::default()
    }

    /// `%resource`: the resource that contains the evaluated element (by default, the
    /// evaluated resource itself). Set it to a Bundle to let `resolve()` find entries by
    /// `fullUrl`.
    pub fn with_resource(mut self, resource: &'a Value) -> Self {
        self.resource = Some(resource);
        self
    }

    /// `%rootResource`: the outermost resource (by default, `%resource`).
    pub fn with_root_resource(mut self, resource: &'a Value) -> Self {
        self.root_resource = Some(resource);
        self
    }

    /// `%name` as a string.
    pub fn with_string(self, name: &str, value: &str) -> Self {
        self.with_variable(name, Collection::one(Item::string(value)))
    }

    /// `%name` as a JSON value: typed by its `resourceType` when it is a resource, else by its
    /// JSON kind.
    pub fn with_json(self, name: &str, value: &'a Value) -> Self {
        let items = match value {
            Value::Array(values) => values.iter().map(navigate::resource_item).collect(),
            Value::Null => Collection::new(),
            value => Collection::one(navigate::resource_item(value)),
        };
        self.with_variable(name, items)
    }

    /// `%name` as any collection (for example, the result of another expression).
    pub fn with_variable(mut self, name: &str, items: Collection<'a>) -> Self {
        self.variables.retain(|(n, _)| &**n != name);
        self.variables.push((name.into(), items));
        self
    }

    pub fn with_resolver(mut self, resolver: &'a dyn Resolver<'a>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    pub fn with_terminology(mut self, terminology: &'a dyn Terminology) -> Self {
        self.terminology = Some(terminology);
        self
    }

    pub fn with_profiles(mut self, profiles: &'a dyn Profiles) -> Self {
        self.profiles = Some(profiles);
        self
    }

    pub fn with_tracer(mut self, tracer: &'a dyn Tracer) -> Self {
        self.tracer = Some(tracer);
        self
    }

    /// Fixes `now()` (and `today()`, `timeOfDay()`), for reproducible results. `None` if the
    /// text is not a date-time.
    pub fn with_now(mut self, date_time: &str) -> Option<Self> {
        self.now = Some(Temporal::parse_date_time(date_time)?);
        Some(self)
    }

    pub(crate) fn variable(&self, name: &str) -> Option<&Collection<'a>> {
        self.variables
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, items)| items)
    }
}

/// The default `memberOf()`: the required value sets that the R4 definitions expand.
pub(crate) fn vendored_member_of(
    system: Option<&str>,
    code: &str,
    value_set: &str,
) -> Option<bool> {
    let set = navigate::model().value_set(value_set)?;
    match system {
        Some(system) => set.contains(system, code),
        None => set.contains_code(code),
    }
}

/// The default `conformsTo()`: the core profile of a type (or of one of its ancestors).
pub(crate) fn core_conforms_to(resource: &Value, profile: &str) -> Result<bool, String> {
    let Some(type_name) = profile.strip_prefix("http://hl7.org/fhir/StructureDefinition/") else {
        return Err(format!("conformsTo: unknown profile {profile}"));
    };
    let model = navigate::model();
    if model.type_def(type_name).is_none() {
        return Err(format!("conformsTo: unknown profile {profile}"));
    }
    let actual = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("");
    Ok(model.is_subtype(actual, type_name))
}
