//! End-to-end tests of the `meridian` binary.

mod access_scenario;
mod cds_scenario;
mod chronic_region;
mod dicomweb_scenario;
mod fhirpath_command;
mod intake_scenario;
mod ledger_scenario;
mod seed_command;
mod serve_command;
mod support;
mod viewer_scenario;
mod workflow_scenario;
