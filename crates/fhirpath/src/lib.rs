//! FHIRPath for FHIR R4, evaluated directly over JSON resources (`serde_json::Value`).
//!
//! Compile once, evaluate many times:
//!
//! ```ignore
//! let expression = fhirpath::compile_with(
//!     "Observation.subject.where(resolve() is Patient)",
//!     &fhirpath::CompileOptions { context_type: Some("Observation".into()), ..Default::default() },
//! )?;
//! let environment = fhirpath::Environment::new();
//! for item in expression.evaluate(&observation, &environment)?.iter() {
//!     println!("{} {:?}", item.type_name(), item.json());
//! }
//! ```
//!
//! - [`compile`] / [`compile_with`] parse and check an expression; errors carry a line and a
//!   column. With a context type, paths are checked against the R4 model (`Observation.value`
//!   is a choice, `Observation.valu` is an error) and branches about other resource types are
//!   dropped.
//! - An [`Expression`] is cheap to clone (an `Arc`), `Send + Sync`, and holds no per-evaluation
//!   state.
//! - [`Expression::evaluate`] borrows the resource: each [`Item`] of the result points into the
//!   input JSON ([`Item::json`]) and knows its FHIR type ([`Item::type_name`]: `string`,
//!   `code`, `dateTime`, `Period`, `Reference`, `CodeableConcept`...), or is a computed value
//!   of a System type (`System.Integer`, `System.String`...), with typed accessors.
//! - To evaluate many expressions on one resource (as search indexing does), type it once
//!   with [`Collection::of_resource`] and call [`Expression::evaluate_on`].
//! - An [`Environment`] supplies `%resource`, `%rootResource`, user variables, and the hooks
//!   through which `resolve()` ([`Resolver`]), `memberOf()` ([`Terminology`]), `conformsTo()`
//!   ([`Profiles`]) and `trace()` ([`Tracer`]) reach the outside. Without hooks: `resolve()`
//!   finds contained resources and Bundle entries and turns `Type/id` into a typed placeholder
//!   (so `subject.where(resolve() is Patient)` works without I/O); `memberOf()` uses the value
//!   sets vendored in `fhir-model`; `conformsTo()` knows the core profiles.
//! - SQL on FHIR's `getResourceKey()` and `getReferenceKey([type])` are built in, for its
//!   views: a resource's key is its `id`, a literal reference's key the id it names.
//! - [`Expression::result_types`] and [`Expression::variables`] say what a compiled
//!   expression produces and which user variables it needs, before it is evaluated.
//!
//! Readings worth knowing: `x as T` and `x.as(T)` filter a collection like `ofType(T)`, as
//! R4's own definitions need (the search parameter `Observation.component.value as Quantity`
//! on several components, the invariant dom-3's `descendants().as(canonical)`), where the
//! official tests expect an error for several items; a primitive with only an
//! extension exists but has no value; expressions are limited to 1,000 tokens and 128 levels
//! of nesting so that compiling and evaluating stay within a thread's stack.
//!
//! The crate does no I/O and knows nothing of storage, async or HTTP.

mod builtins;
mod compare;
mod compile;
mod convert;
mod datetime;
mod decimal;
mod env;
mod error;
mod eval;
mod functions;
mod item;
mod lexer;
mod navigate;
mod parser;
mod quantity;
mod text;

use std::sync::Arc;

use serde_json::Value;

pub use compile::CompileOptions;
pub use datetime::{Precision, Temporal, TemporalKind};
pub use decimal::Decimal;
pub use env::{Environment, Profiles, Resolved, Resolver, Terminology, Tracer};
pub use error::{EvalError, ParseError, ParseErrorKind, Position};
pub use item::{Collection, IntoIter, Item};
pub use quantity::Quantity;

/// A compiled expression, reusable across resources and threads.
#[derive(Clone)]
pub struct Expression(Arc<Compiled>);

struct Compiled {
    source: Box<str>,
    op: compile::Op,
    result: compile::StaticType,
    variables: Box<[Box<str>]>,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expression({:?})", self.0.source)
    }
}

/// Compiles an expression whose context type is not known in advance.
pub fn compile(source: &str) -> Result<Expression, ParseError> {
    compile_with(source, &CompileOptions::default())
}

/// Compiles an expression with options (notably the context type, which enables checking
/// paths against the model).
pub fn compile_with(source: &str, options: &CompileOptions) -> Result<Expression, ParseError> {
    let syntax = parser::parse(source)?;
    let compiled = compile::compile(source, &syntax, options)?;
    Ok(Expression(Arc::new(Compiled {
        source: source.into(),
        op: compiled.op,
        result: compiled.result,
        variables: compiled.variables.into(),
    })))
}

impl Expression {
    /// The text the expression was compiled from.
    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// The types the expression can produce, as far as compiling could tell: FHIR type names
    /// (`HumanName`, `code`, `Patient.contact`) and System types (`System.Boolean`). `None`
    /// when they are not known (without a context type, most paths); an empty list when the
    /// expression always yields nothing.
    pub fn result_types(&self) -> Option<Vec<&'static str>> {
        self.0.result.names()
    }

    /// The user variables (`%name`, not `%resource`, `%ucum` and the other names FHIRPath and
    /// FHIR define) the expression refers to, each once: a caller that supplies the variables
    /// can reject an unknown one before evaluating anything.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.0.variables.iter().map(|name| &**name)
    }

    /// Evaluates against a resource (its type is read from `resourceType`), or against no
    /// input when `resource` is `null`.
    pub fn evaluate<'a>(
        &self,
        resource: &'a Value,
        env: &Environment<'a>,
    ) -> Result<Collection<'a>, EvalError> {
        let context = match resource {
            Value::Null => Collection::new(),
            value => Collection::one(navigate::resource_item(value)),
        };
        self.evaluate_on(&context, env)
    }

    /// Evaluates against any collection (for example an element found by another
    /// expression, as invariants are checked at their element's path).
    pub fn evaluate_on<'a>(
        &self,
        context: &Collection<'a>,
        env: &Environment<'a>,
    ) -> Result<Collection<'a>, EvalError> {
        let resource = env.resource.or_else(|| {
            context
                .first()
                .filter(|item| item.type_kind() == Some(fhir_model::TypeKind::Resource))
                .and_then(Item::json)
        });
        let evaluator = eval::Evaluator {
            env,
            context,
            resource,
            budget: std::cell::Cell::new(eval::MAX_COST),
        };
        evaluator.eval(&self.0.op, &eval::Scope::of(context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_are_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Expression>();
    }
}
