//! End-to-end tests of the `meridian` binary.

mod fhirpath_command;
mod seed_command;
mod serve_command;
