//! The analytics crate's integration tests: the official SQL on FHIR v2 suite.

mod suite;
