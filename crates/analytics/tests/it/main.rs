//! The analytics crate's integration tests: the official SQL on FHIR v2 suite, the behaviour
//! it does not cover (views refused, errors, hostile views, column types), and views mutated
//! at random.

mod official;
mod robustness;
mod suite;
mod views;
