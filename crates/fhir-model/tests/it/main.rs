//! Integration tests of the FHIR model crate: one test binary, one module per concern.

mod definitions;
mod json;
mod primitives;
mod validate;
