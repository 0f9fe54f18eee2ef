//! FHIRPath for FHIR R4 (to be written).
