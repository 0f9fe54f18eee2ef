//! The read policy: which resources a caller may see. The repository asks it once per read and
//! hands the answer ([`Visibility`]) to the store inside the query, so that it holds in every
//! read path at once — totals, includes, chains and `_has` included. Until the access service
//! provides its rules, every caller sees everything.

use caller::Caller;
use search::query::Visibility;

/// Decides what a caller may read.
pub trait ReadPolicy: Send + Sync {
    /// The resources `caller` may see.
    fn visibility(&self, caller: &Caller) -> Visibility;
}

/// Every caller sees every resource.
pub struct SeeEverything;

impl ReadPolicy for SeeEverything {
    fn visibility(&self, _caller: &Caller) -> Visibility {
        Visibility::All
    }
}
