//! End-to-end tests of the `meridian` binary.

mod access_scenario;
mod cds_scenario;
mod chronic_region;
mod citus_scenario;
mod dicomweb_scenario;
mod fhirpath_command;
mod indicators_scenario;
mod intake_scenario;
mod ledger_scenario;
mod materialise_scenario;
// The official SQL on FHIR v2 suite's files and judging, shared with the analytics crate.
#[path = "../../../analytics/tests/it/official.rs"]
mod official;
// A Python virtual environment for the checks run with real Python clients.
#[path = "../../../test-support/shared/python_venv.rs"]
mod python_venv;
mod seed_command;
mod serve_command;
mod support;
mod view_command;
mod viewer_scenario;
mod workflow_scenario;
