//! The verifiable record: an append-only Merkle log (RFC 9162) of results, consents and the
//! audit trail, so that anyone can check that a result is the one registered and that the
//! history was never rewritten, not even by the platform's operators.
//!
//! - `hash`: RFC 9162 leaf and node hashing.
//! - `tree`: the tree kept in tiles, appends, roots, inclusion and consistency proofs and their
//!   verification.
//! - `leaf`: what is logged and the exact bytes of a leaf.
//! - `note`: signed notes, checkpoints and witness cosignatures (C2SP).
//! - `keys`: the log's signing key ring.
//! - `witness`: the witness's decision on an `add-checkpoint` request.
//! - `log`: the log kept in a store (appends inside a write's transaction, proofs, checkpoints,
//!   cosignatures, and the verification of a whole store).
//!
//! No database driver and no HTTP: the leaves and tiles live in the store (through the `store`
//! trait), appended in the write's own transaction by the repository; the server publishes
//! them.

pub mod hash;
pub mod keys;
pub mod leaf;
pub mod log;
pub mod note;
pub mod tree;
pub mod witness;

pub use hash::{Hash, empty_root, leaf_hash, node_hash};
pub use note::{Checkpoint, Note, NoteSigner, VerifierKey};
pub use tree::{MemoryTiles, RootBuilder, TileSource, TileWrite, Tree, TreeError};
