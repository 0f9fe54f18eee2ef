//! The chronic-disease service against both stores: enrolment from the change log, alerts for
//! critical readings, due dates, worklists under the real access rules, and a generated region.

mod alerts;
mod common;
mod followups;
mod region;
mod registry;
mod worklist;
