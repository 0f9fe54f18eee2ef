//! Decision support at the point of ordering, as a CDS Hooks 2.0 service: the hook requests
//! and their checks ([`request`]), the rules as data evaluated with Meridian's FHIRPath engine
//! ([`rules`], [`terminology`]), the patient's record as the rules see it ([`record`]), the
//! mutual recognition of results ([`catalogue`]) and its metrics ([`metrics`]), and one call
//! start to end ([`service`]). The record is read through the repository's one read path under
//! the caller the edge built; the crate knows no HTTP, async runtime or database driver.

pub mod catalogue;
pub mod error;
pub mod hook;
pub mod metrics;
pub mod operations;
pub mod record;
pub mod request;
pub mod rules;
pub mod service;
pub mod terminology;

pub use error::CdsError;
pub use hook::Hook;
pub use request::HookRequest;
pub use rules::{Language, RuleSet};
