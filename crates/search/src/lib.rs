//! FHIR search, without storage: what a search means (the query intermediate form in [`query`]),
//! and what a resource contributes to the search indexes ([`index`]). Stores turn both into SQL.

pub mod extract;
pub mod index;
pub mod keys;
pub mod parse;
pub mod query;
pub mod registry;
pub mod text;
mod ucum;

pub use extract::{IndexError, Indexer};
pub use index::IndexEntries;
pub use keys::{ParamKey, PatientKey};
pub use parse::{
    Handling, ParsedSearch, SearchError, SearchTarget, Summary, parse_search, patient_compartment,
    supports,
};
pub use registry::{Param, Registry};
