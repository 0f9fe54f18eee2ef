//! The electronic health code.

/// Why a health code is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeRefusal {
    #[error("the health code is malformed")]
    Malformed,
}
