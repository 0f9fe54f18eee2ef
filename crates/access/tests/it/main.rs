//! The access service against real stores (SQLite and PostgreSQL, a fresh database each):
//! sign-in's tokens, clients, the authorization code flow and its refusals.

mod support;

mod assertions;
mod code_flow;
mod tokens;
