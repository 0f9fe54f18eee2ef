//! Integration tests of the synthetic region: one binary, a module per property.

mod determinism;
mod identifiers;
mod ndjson;
mod plausibility;
mod references;
mod scaling;
mod support;
mod validation;
