//! Access: who is calling, what they may do, and the record of what they did. A domain service
//! over the repository and the store trait; knows no HTTP (the server turns a request's bearer
//! token into a [`caller::Caller`] through it and asks it before acting).
//!
//! - [`scope`]: SMART on FHIR scopes (v2 spellings, v1 accepted), the permissions a token
//!   carries.
//! - [`policy`]: the access decision (custodians, the resident's consent, break-glass, scopes),
//!   as the repository's `AccessPolicy`.
//! - [`signin`]: the authorization server: accounts, clients, keys, tokens, and the check of
//!   every request's bearer token ([`signin::Authenticator::authenticate`]).
//! - [`audit`]: the audit trail: IHE BALP AuditEvents built from what a request did, and the
//!   sink that makes them durable in batches before the answer leaves.

pub mod audit;
pub mod policy;
pub mod scope;
pub mod signin;

pub use signin::{AuthConfig, AuthError, Authenticator, OAuthError};
