//! The fhirpath crate's integration tests: the official R4 suite, every R4 expression
//! compiling, and the public API.

mod api;
mod behaviour;
mod conformance;
mod definitions_compile;
mod robustness;
