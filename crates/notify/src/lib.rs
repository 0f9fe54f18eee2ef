//! Notifications (`docs/notify.md`): FHIR Subscriptions as the R4 Subscriptions Backport IG
//! defines them, a domain service over the repository and the store trait. No HTTP, runtime or
//! driver: the server posts rest-hook notifications, serves the websocket channel and
//! publishes to NATS; this crate decides what there is to send.
//!
//! - [`topic`]: the topics as data (FHIRPath criteria over `%previous` and `%current`, the
//!   filters each offers) and their R4 `Basic` form.
//! - [`subscription`]: a Subscription read and checked (the topic, its filters, the channel,
//!   the endpoint policy), kept with the caller that wrote it.
//! - [`hook`]: the write hook that checks and keeps subscriptions in the write's transaction.
//! - [`events`]: events from the change log, numbered per subscription without a gap and kept
//!   in the store; the deliverer's state and back-off.
//! - [`bundle`]: the status `Parameters` and notification Bundles.
//! - [`binding`]: websocket binding tokens.

pub mod binding;
pub mod bundle;
pub mod events;
pub mod hook;
pub mod operations;
pub mod subscription;
pub mod topic;

pub use hook::SubscriptionHook;
pub use subscription::{Channel, Content, EndpointPolicy, Subscriber};

/// The change-log consumer that numbers events.
pub const CONSUMER: &str = "notify";
