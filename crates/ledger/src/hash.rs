//! RFC 9162 §2.1.1 hashing: a leaf is SHA-256 over 0x00 and its input, a node SHA-256 over
//! 0x01 and its two children, so that no leaf can pass for a node.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: of a leaf, a node, or a tree's root.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

pub fn leaf_hash(input: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(input);
    hasher.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Standard base64 (RFC 4648 §4, padded), the form proofs and checkpoints carry hashes in.
pub fn to_base64(hash: &Hash) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hash)
}

/// A hash from its base64 form; `None` unless it is exactly 32 bytes.
pub fn from_base64(text: &str) -> Option<Hash> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?
        .try_into()
        .ok()
}

pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}
