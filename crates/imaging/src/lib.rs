//! Imaging inside the record (issue 19): a DICOMweb archive whose studies are part of the
//! patient's FHIR record.
//!
//! - [`part10`] reads an instance as STOW-RS receives it, after [`lengths`] has checked that
//!   every declared length fits; [`json`] writes its attributes in the DICOM JSON model.
//! - [`archive`] stores instances: files as content-addressed objects in blob storage, and
//!   each study's FHIR `ImagingStudy` ([`study`]) kept in step in one transaction, with the
//!   Patient of the DICOM Patient ID (matched to the resident by the master patient index).
//! - [`qido`] finds studies, series and instances by the DICOM matching rules through the
//!   caller's read path; [`wado`] locates what to retrieve the same way.

pub mod archive;
pub mod ecg;
pub mod frames;
pub mod jpeg12;
pub mod jpegls;
pub mod json;
pub mod lengths;
pub mod multipart;
pub mod native;
pub mod operations;
pub mod part10;
pub mod qido;
pub mod render;
pub mod rle;
pub mod study;
pub mod wado;

use repository::RepositoryError;

/// Why an imaging request cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The instance has no pixel data this archive can show.
    #[error("{0}")]
    Unrenderable(String),
    #[error("the archive's storage failed: {0}")]
    Storage(String),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// As a FHIR operation's answer: the client's errors as 4xx OperationOutcomes (a drawing or
/// measurement that cannot be made is 422), storage failures as an internal error.
impl fhir_model::Outcome for ImagingError {
    fn http_status(&self) -> u16 {
        match self {
            ImagingError::BadRequest(_) => 400,
            ImagingError::NotFound(_) => 404,
            ImagingError::Unrenderable(_) => 422,
            ImagingError::Storage(_) => 500,
            ImagingError::Repository(error) => error.http_status(),
        }
    }

    fn issues(&self, request_id: &str) -> Vec<fhir_model::Issue> {
        use fhir_model::{Issue, IssueCode};
        match self {
            ImagingError::BadRequest(message) => vec![Issue::error(IssueCode::Invalid, message)],
            ImagingError::NotFound(message) => vec![Issue::error(IssueCode::NotFound, message)],
            ImagingError::Unrenderable(message) => {
                vec![Issue::error(IssueCode::Processing, message)]
            }
            ImagingError::Storage(_) => vec![fhir_model::internal_issue(request_id)],
            ImagingError::Repository(error) => error.issues(request_id),
        }
    }
}
