//! Passwords: argon2id hashes in PHC string form (the parameters travel in the hash, so a hash
//! made at one cost verifies after the configured cost changes).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::AuthError;

/// Passwords longer than this are refused (hashing a megabyte is a denial of service).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The memory and time a new hash costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl PasswordCost {
    /// OWASP's argon2id recommendation: 19 MiB, two passes, one lane.
    pub const PRODUCTION: PasswordCost = PasswordCost {
        memory_kib: 19 * 1024,
        iterations: 2,
    };
    /// For tests only: as cheap as argon2 allows.
    pub const TESTS: PasswordCost = PasswordCost {
        memory_kib: 64,
        iterations: 1,
    };
}

pub(crate) fn hash(password: &str, cost: PasswordCost) -> Result<String, AuthError> {
    let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
        .map_err(|e| AuthError::Internal(format!("argon2 parameters: {e}")))?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|e| AuthError::Internal(format!("no randomness for a salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| AuthError::Internal(format!("encoding a salt: {e}")))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` is the one `hash` was made from. A hash that does not parse matches
/// nothing.
pub(crate) fn verify(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hashed = hash("correct horse", PasswordCost::TESTS).unwrap();
        assert!(
            hashed.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{hashed}"
        );
        assert!(verify("correct horse", &hashed));
        assert!(!verify("correct horse ", &hashed));
        assert!(!verify("", &hashed));
        assert!(!verify("correct horse", "not a hash"));
        assert_ne!(
            hashed,
            hash("correct horse", PasswordCost::TESTS).unwrap(),
            "salted"
        );
    }
}
