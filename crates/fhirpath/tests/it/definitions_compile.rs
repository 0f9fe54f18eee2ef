//! Every FHIRPath expression in the R4 definitions compiles: the search parameters (without a
//! context type, and with each of their base types as context, as the search indexer compiles
//! them) and the invariants of every type (with the type they constrain as context).

use fhir_model::TypeDef;
use fhirpath::CompileOptions;

fn with_context(context: &str) -> CompileOptions {
    CompileOptions {
        context_type: Some(context.to_string()),
        strict: false,
    }
}

#[test]
fn every_search_parameter_expression_compiles_for_each_base() {
    let model = fhir_model::r4();
    let mut failures = Vec::new();
    let mut compiled = 0;
    for parameter in model.search_parameters() {
        let expressions = parameter
            .expression
            .iter()
            .map(|e| (e.as_ref(), true))
            .chain(
                parameter
                    .components
                    .iter()
                    .map(|c| (c.expression.as_ref(), false)),
            );
        for (expression, on_resource) in expressions {
            if let Err(e) = fhirpath::compile(expression) {
                failures.push(format!("{} {}: {e}", parameter.url, expression));
            }
            compiled += 1;
            // Composite components are evaluated on what the parameter's expression found, not
            // on the resource, so only the main expression gets the resource as context.
            if !on_resource {
                continue;
            }
            for base in &parameter.base {
                match fhirpath::compile_with(expression, &with_context(base)) {
                    Ok(_) => compiled += 1,
                    Err(e) => failures.push(format!("{} on {base}: {e}", parameter.url)),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} search parameter expressions do not compile:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compiled > 1_375, "compiled {compiled} expressions");
}

/// The type an invariant's path names: `Observation`, `Observation.component`, or an
/// element's type (`Element.extension` is an `Extension`).
fn type_at(path: &str) -> Option<&'static TypeDef> {
    let model = fhir_model::r4();
    if let Some(t) = model.type_def(path) {
        return Some(t);
    }
    let (parent, element) = path.rsplit_once('.')?;
    let parent = type_at(parent)?;
    let element = parent.element(element)?;
    if element.choice {
        return None;
    }
    model.type_def(element.first_type())
}

/// Invariants that name an element their type does not have: defects of R4 itself (cid-0
/// checks `name`, which ChargeItemDefinition lacks). They compile without a context type,
/// and are rejected with one, as they should be.
const R4_INVARIANT_DEFECTS: [&str; 1] = ["cid-0"];

#[test]
fn every_invariant_expression_compiles_in_its_context() {
    let model = fhir_model::r4();
    let mut failures = Vec::new();
    let mut defects = Vec::new();
    let mut compiled = 0;
    for ty in model.types() {
        for constraint in &ty.constraints {
            let Some(expression) = constraint.expression.as_deref() else {
                continue;
            };
            let context = type_at(&constraint.path);
            let options = match context {
                Some(t) => with_context(&t.name),
                None => CompileOptions::default(),
            };
            match fhirpath::compile_with(expression, &options) {
                Ok(_) => compiled += 1,
                Err(e) if R4_INVARIANT_DEFECTS.contains(&&*constraint.key) => {
                    assert!(
                        e.message.contains("has no element"),
                        "{}: {e}",
                        constraint.key
                    );
                    fhirpath::compile(expression)
                        .expect("an R4 defect still compiles without a context type");
                    defects.push(constraint.key.to_string());
                }
                Err(e) => failures.push(format!(
                    "{} ({}) {expression}: {e}",
                    constraint.key, constraint.path
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} invariants do not compile:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        defects, R4_INVARIANT_DEFECTS,
        "the known R4 defects are still defects"
    );
    assert!(compiled > 200, "compiled {compiled} invariants");
}
