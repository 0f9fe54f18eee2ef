//! The FHIR R4 model: the official definitions, vendored in compact form under `definitions/`,
//! compiled once into lookup tables, and the structural validation built on them.
//!
//! Resources are never turned into generated structs: they stay `serde_json::Value`, and these
//! tables say what each JSON property means (its element, its type, its cardinality).

pub mod calendar;
pub mod clock;
mod definitions;
mod issue;
pub mod json;
pub mod operation;
mod outcome;
pub mod primitives;
mod validate;

pub use definitions::{
    CompositeComponent, Constraint, ElementDef, ElementType, Model, PropertyRef, SearchParamDef,
    SearchParamType, TypeDef, TypeKind, ValueSet,
};
pub use issue::{Issue, IssueCode, Severity};
pub use json::{JsonError, JsonProblem};
pub use outcome::{Outcome, internal_issue};
pub use validate::{ValidationOptions, bundle_invariants, validate, validate_with};

/// The R4 (4.0.1) model, loaded on first use.
pub fn r4() -> &'static Model {
    static MODEL: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        Model::load_vendored().expect("the vendored R4 definitions parse (checked by tests)")
    })
}
