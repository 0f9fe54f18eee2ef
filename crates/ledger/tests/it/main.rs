//! The ledger crate's tests: the tiled tree against RFC 9162's definitions computed the plain
//! way, the notes and cosignatures, and the witness's decisions.

mod notes;
mod tree;
mod witness;
