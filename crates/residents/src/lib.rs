//! Resident identity: one person, any card. Record matching in the Fellegi–Sunter tradition
//! (comparators for Chinese and romanised names, dates, phones, addresses and identifiers;
//! m/u weights estimated by EM; term-frequency adjustment; blocking on several keys), the master
//! patient index that keeps one `Person` per resident linked to every institution's Patient
//! records, and the electronic health code. Works on the repository and the store trait; knows
//! nothing of HTTP.

pub mod blocking;
pub mod chinese;
pub mod compare;
pub mod em;
mod error;
pub mod gb11643;
pub mod health_code;
pub mod index;
pub mod model;
pub mod mpi;
pub mod operations;
pub mod random;
pub mod record;
#[cfg(feature = "fixtures")]
pub mod synthetic;
pub mod text;

pub use error::IdentityError;
