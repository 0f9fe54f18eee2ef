//! The access service against real stores (SQLite and PostgreSQL, a fresh database each): the
//! access decision, sign-in's tokens, clients, the authorization code flow and its refusals,
//! and the audit trail. One binary, a module per concern.

mod support;

mod assertions;
mod audit_events;
mod audit_trail;
mod code_flow;
mod policy;
mod tokens;
