//! The repository's behaviour on every backend: FHIR interactions, their version rules,
//! conditional forms, transactions and batches, and concurrent writers.

mod support;

mod bundles;
mod changes;
mod concurrency;
mod crud;
mod custom_parameters;
mod differential;
mod export;
mod hooks;
mod import;
mod ledger;
mod read_policy;
mod searching;
mod synthea;
mod validation;
