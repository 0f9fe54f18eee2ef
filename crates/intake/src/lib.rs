//! Intake (`docs/intake.md`): data from systems that were never built for FHIR, a domain
//! service over the repository and the store trait. No network, no async runtime, no driver:
//! the MLLP listener, the MQTT subscriber and the HTTPS endpoint are the server's.
//!
//! - [`v2`]: HL7 v2 messages mapped to FHIR (the v2-to-FHIR implementation guide).
//! - [`senders`]: who sends messages, for which institution, which types, which code maps.
//! - [`messages`]: a message applied exactly once per sender and control id; the dead-letter
//!   store and replay.
//! - [`operations`]: the device secret operation (`$issue-secret` on a Device).
//! - [`device`]: signed uploads of readings from village kiosks as vital-signs Observations.

pub mod device;
pub mod messages;
pub mod operations;
pub mod senders;
pub mod v2;

pub use messages::{DeadLetter, Disposition, Intake, Received};
pub use senders::{Sender, SenderConfig, Senders};
