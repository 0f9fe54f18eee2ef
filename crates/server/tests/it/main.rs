//! The HTTP surface, through the router without a socket (and through a real socket where
//! concurrent clients are the point).

mod support;

mod audit;
mod bad_input;
mod concurrency;
mod connections;
mod export;
mod host;
mod identity;
mod operations;
mod rest;
mod sign_in;
mod viewer;
