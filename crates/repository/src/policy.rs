//! The access policy: what a caller may see, which interactions they may use, and who holds
//! what they write. The repository asks it once per read and hands the answer
//! ([`Visibility`]) to the store inside the query, so that it holds in every read path at once
//! (totals, includes, chains and `_has` included); it asks it before every interaction a
//! client starts ([`AccessPolicy::permits`]) and for every version written
//! ([`AccessPolicy::admit_write`]), whose answer (the custodian and sensitivity) the store
//! keeps with the version. The access service provides the real rules; without them every
//! caller may do everything.

use caller::Caller;
use search::query::Visibility;
use serde_json::Value;
use store::VersionRecord;

/// A RESTful interaction, as access rules (SMART scopes) name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

/// A permission the caller lacks: 403, with what is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden(pub String);

/// A version about to be written.
pub struct WriteFacts<'a> {
    pub resource_type: &'a str,
    pub id: &'a str,
    /// The current version, if there is one.
    pub previous: Option<&'a VersionRecord>,
    /// What the policy read from the new content ([`AccessPolicy::facts`]); `None` for a
    /// deletion.
    pub resource: Option<&'a ResourceFacts>,
    /// Written by a domain service inside the transaction (a write hook, a service's own
    /// operation), which answers for its own authorisation: never refused here.
    pub by_service: bool,
}

/// What an access policy reads from a resource when it is prepared for writing (the content
/// itself is not kept: the import prepares millions).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceFacts {
    /// The restricted sensitivities it carries (for a Consent, those it permits).
    pub sensitivity: i64,
    /// The patient it is about (`Patient/12`), when it names one directly.
    pub patient: Option<String>,
    /// The organisation it says it comes from (`meta.source`), for writes by the operator.
    pub source: Option<String>,
    /// Anything else the policy needs of a resource of this type (a Consent's terms).
    pub terms: Option<Value>,
}

/// Who holds a version, and its restricted sensitivities (see [`store::VersionWrite`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stewardship {
    pub custodian: Option<String>,
    pub sensitivity: i64,
}

/// Decides what a caller may read, do and write.
pub trait AccessPolicy: Send + Sync {
    /// The resources `caller` may see.
    fn visibility(&self, caller: &Caller) -> Visibility;

    /// Whether `caller` may use `interaction` on resources of `resource_type` at all.
    fn permits(
        &self,
        _caller: &Caller,
        _interaction: Interaction,
        _resource_type: &str,
    ) -> Result<(), Forbidden> {
        Ok(())
    }

    /// What the policy needs to know of `resource` to decide about writing it.
    fn facts(&self, _resource_type: &str, _resource: &Value) -> ResourceFacts {
        ResourceFacts::default()
    }

    /// Whether `caller` may write this version, and its stewardship if so.
    fn admit_write(
        &self,
        caller: &Caller,
        write: &WriteFacts<'_>,
    ) -> Result<Stewardship, Forbidden> {
        Ok(Stewardship {
            custodian: caller
                .organization
                .clone()
                .or_else(|| write.previous.and_then(|p| p.custodian.clone())),
            sensitivity: 0,
        })
    }
}

/// Every caller sees and may do everything.
pub struct SeeEverything;

impl AccessPolicy for SeeEverything {
    fn visibility(&self, _caller: &Caller) -> Visibility {
        Visibility::All
    }
}
