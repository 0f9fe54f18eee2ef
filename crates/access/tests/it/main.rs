//! The access service on every backend.

mod audit_trail;
