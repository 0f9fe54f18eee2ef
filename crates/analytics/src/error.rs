//! The crate's one error type: a ViewDefinition refused when it is compiled, or a resource it
//! cannot be evaluated on. Both are the user's errors (the view, or the view with this data);
//! nothing here fails for reasons of its own.

/// Why a view could not be compiled or evaluated, and where: `at` is the offending element of
/// the ViewDefinition as a FHIRPath-like location (`ViewDefinition.select[0].column[1].path`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The ViewDefinition is not valid; found by [`crate::View::parse`] before any resource
    /// is read.
    #[error("invalid ViewDefinition at {at}: {message}")]
    Invalid { at: String, message: String },
    /// A resource could not be turned into rows: a FHIRPath evaluation error, several values
    /// in a column that is not a collection, a `where` that is not a boolean, a value that is
    /// not of its column's type.
    #[error("{at} on {resource}: {message}")]
    Evaluation {
        at: String,
        /// `Patient/pt1`, or the type alone when the resource has no id.
        resource: String,
        message: String,
    },
    /// One resource would make more rows than the limit (sibling `forEach`es multiply, and a
    /// `repeat` may walk without end).
    #[error("{resource} makes more than {limit} rows")]
    TooManyRows { resource: String, limit: usize },
}

impl ViewError {
    pub(crate) fn invalid(at: impl Into<String>, message: impl Into<String>) -> ViewError {
        ViewError::Invalid {
            at: at.into(),
            message: message.into(),
        }
    }

    /// The element of the ViewDefinition the error is about, when there is one.
    pub fn at(&self) -> Option<&str> {
        match self {
            ViewError::Invalid { at, .. } | ViewError::Evaluation { at, .. } => Some(at),
            ViewError::TooManyRows { .. } => None,
        }
    }
}

/// As FHIR answers it: an invalid view is the request's fault (400, `invalid`, at the element);
/// a view that cannot be evaluated on the data it reads is unprocessable (422, `processing`);
/// one that makes too many rows of a resource is too costly (422, `too-costly`).
impl fhir_model::Outcome for ViewError {
    fn http_status(&self) -> u16 {
        match self {
            ViewError::Invalid { .. } => 400,
            ViewError::Evaluation { .. } | ViewError::TooManyRows { .. } => 422,
        }
    }

    fn issues(&self, _request_id: &str) -> Vec<fhir_model::Issue> {
        use fhir_model::{Issue, IssueCode};
        let code = match self {
            ViewError::Invalid { .. } => IssueCode::Invalid,
            ViewError::Evaluation { .. } => IssueCode::Processing,
            ViewError::TooManyRows { .. } => IssueCode::TooCostly,
        };
        let mut issue = Issue::error(code, self.to_string());
        issue.expression = self.at().map(str::to_owned);
        vec![issue]
    }
}
