//! Access: who is calling, what they may do, and the record of what they did. A domain service
//! over the repository and the store trait; knows no HTTP (the server turns a request's bearer
//! token into a [`caller::Caller`] through it and asks it before acting).
//!
//! - [`scope`]: SMART on FHIR scopes (v2 spellings, v1 accepted), the permissions a token
//!   carries.
//! - [`audit`]: the audit trail: IHE BALP AuditEvents built from what a request did, and the
//!   sink that makes them durable in batches before the answer leaves.

pub mod audit;
pub mod scope;
