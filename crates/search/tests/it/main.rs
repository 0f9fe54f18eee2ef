//! Integration tests of the search crate: one binary, a module per concern.

mod extract;
mod parse;
