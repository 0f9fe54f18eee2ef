//! Index extraction: what a resource contributes to the search indexes.
//!
//! PLACEHOLDER until the FHIRPath engine lands: only the patient-compartment key is computed.

use serde_json::Value;

use crate::IndexEntries;
use crate::keys::PatientKey;
use crate::registry::Registry;

/// Extracts index entries from resources for every search parameter in force.
pub struct Indexer {
    registry: std::sync::Arc<Registry>,
}

/// A search parameter's expression failed on a resource.
#[derive(Debug, thiserror::Error)]
#[error("indexing {param}: {message}")]
pub struct IndexError {
    pub param: String,
    pub message: String,
}

impl Indexer {
    pub fn new(registry: std::sync::Arc<Registry>) -> Indexer {
        Indexer { registry }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn extract(
        &self,
        resource_type: &str,
        id: &str,
        resource: &Value,
    ) -> Result<IndexEntries, IndexError> {
        let mut entries = IndexEntries::default();
        entries.patient_key = if resource_type == "Patient" {
            PatientKey::of_patient(id)
        } else {
            ["subject", "patient"]
                .iter()
                .filter_map(|k| {
                    resource
                        .get(*k)?
                        .get("reference")?
                        .as_str()?
                        .strip_prefix("Patient/")
                })
                .map(PatientKey::of_patient)
                .next()
                .unwrap_or(PatientKey::NONE)
        };
        Ok(entries)
    }
}
