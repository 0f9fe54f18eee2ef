//! The analytics crate's integration tests: the official SQL on FHIR v2 suite, and the
//! behaviour it does not cover (views refused, errors, hostile views, column types).

mod suite;
mod views;
