//! The access service against real stores (SQLite and PostgreSQL, a fresh database each): the
//! access decision, and sign-in's tokens, clients, the authorization code flow and its
//! refusals. One binary, a module per concern.

mod support;

mod assertions;
mod code_flow;
mod policy;
mod tokens;
