//! The access service on every backend.

mod audit_events;
mod audit_trail;
