//! Sealed form state: what a sign-in page carries from one step to the next (the checked
//! authorization request, who signed in, the organisation chosen) travels in a hidden field,
//! encrypted and authenticated with a key kept in the store (XChaCha20-Poly1305). A page
//! cannot be forged or altered, and a form posted from another site without a sealed field
//! made by this server for that step gets nowhere (the CSRF defence).

use repository::Sealer;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::kv::{KEY_LOCK, Kv, names};
use super::{AuthError, now};

/// A sealed field longer than this is refused before it is decoded.
const MAX_SEALED: usize = 16 * 1024;

pub(crate) struct Seal {
    sealer: Sealer,
}

#[derive(Serialize, serde::Deserialize)]
struct Envelope<T> {
    sealed_at: i64,
    value: T,
}

impl Seal {
    pub(crate) fn load_or_create(kv: &Kv) -> Result<Seal, AuthError> {
        let sealer = Sealer::of_store(&**kv.store(), names::FORM_KEY, KEY_LOCK)
            .map_err(|e| AuthError::Internal(format!("the form key: {e}")))?;
        Ok(Seal { sealer })
    }

    /// `value` sealed for the form step `purpose`.
    pub(crate) fn seal<T: Serialize>(&self, purpose: &str, value: &T) -> Result<String, AuthError> {
        let plain = serde_json::to_vec(&Envelope {
            sealed_at: now(),
            value,
        })
        .map_err(|e| AuthError::Internal(format!("sealing: {e}")))?;
        Ok(self.sealer.seal(purpose, &plain))
    }

    /// The value sealed for `purpose` no more than `max_age` seconds ago; `None` for anything
    /// else (altered, another step's, another server's, too old, garbage).
    pub(crate) fn open<T: DeserializeOwned>(
        &self,
        purpose: &str,
        sealed: &str,
        max_age: i64,
    ) -> Option<T> {
        let plain = self.sealer.open(purpose, sealed, MAX_SEALED)?;
        let envelope: Envelope<T> = serde_json::from_slice(&plain).ok()?;
        let age = now() - envelope.sealed_at;
        (0..=max_age).contains(&age).then_some(envelope.value)
    }
}
