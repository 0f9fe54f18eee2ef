//! Sign-in's state in the store, as JSON values of named checkpoints under `auth/` (the
//! store's small key-value surface): every process on the same store sees a change at its
//! next read, so an account added at the command line works at the next sign-in.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use store::{Store, StoreError};

use super::AuthError;

/// The names kept, each a prefix followed by an id (secrets only as their SHA-256).
pub(crate) mod names {
    pub const KEY: &str = "auth/key/";
    pub const FORM_KEY: &str = "auth/form-key";
    pub const ACCOUNT: &str = "auth/account/";
    pub const CLIENT: &str = "auth/client/";
    pub const CODE: &str = "auth/code/";
    pub const CODE_USED: &str = "auth/code-used/";
    pub const REFRESH: &str = "auth/refresh/";
    pub const REFRESH_USED: &str = "auth/refresh-used/";
    pub const REVOKED: &str = "auth/revoked/";
    pub const JTI: &str = "auth/jti/";
    pub const LAUNCH: &str = "auth/launch/";
    pub const AUDIENCE: &str = "auth/audience";
}

/// Lock keys for creating shared secrets once when two processes start together.
pub(crate) const KEY_LOCK: i64 = 0x6175_7468_6b65_7973; // "authkeys"

#[derive(Clone)]
pub(crate) struct Kv {
    store: Arc<dyn Store>,
}

fn corrupt(name: &str, error: serde_json::Error) -> AuthError {
    AuthError::Internal(format!("the stored {name} does not parse: {error}"))
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<String, AuthError> {
    serde_json::to_string(value).map_err(|e| AuthError::Internal(format!("encoding: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(name: &str, text: &str) -> Result<T, AuthError> {
    serde_json::from_str(text).map_err(|e| corrupt(name, e))
}

impl Kv {
    pub(crate) fn new(store: Arc<dyn Store>) -> Kv {
        Kv { store }
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn raw(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.store.checkpoint(name)
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, AuthError> {
        match self.store.checkpoint(name)? {
            Some(text) => decode(name, &text).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn list<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, AuthError> {
        self.store
            .checkpoints_with_prefix(prefix)?
            .into_iter()
            .map(|(name, text)| {
                let value = decode(&name, &text)?;
                Ok((name[prefix.len()..].to_owned(), value))
            })
            .collect()
    }

    pub(crate) fn put<T: Serialize>(&self, name: &str, value: &T) -> Result<(), AuthError> {
        let text = encode(value)?;
        let mut tx = self.store.begin()?;
        tx.set_checkpoint(name, Some(&text))?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn delete(&self, name: &str) -> Result<(), AuthError> {
        let mut tx = self.store.begin()?;
        tx.set_checkpoint(name, None)?;
        tx.commit()?;
        Ok(())
    }

    /// Inserts `value` under `name` unless something is there; whether it did.
    pub(crate) fn insert_if_absent<T: Serialize>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<bool, AuthError> {
        let text = encode(value)?;
        let mut tx = self.store.begin()?;
        let inserted = tx.insert_checkpoint_if_absent(name, &text)?;
        tx.commit()?;
        Ok(inserted)
    }
}

/// The SHA-256 of a secret, hex: how codes and refresh tokens are named in the store, so that
/// reading the store does not hand out live credentials.
pub(crate) fn digest(secret: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in hash {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}
