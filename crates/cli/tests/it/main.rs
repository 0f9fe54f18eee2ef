//! End-to-end tests of the `meridian` binary.

mod fhirpath_command;
