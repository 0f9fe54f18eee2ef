//! Sealed form state: what a sign-in page carries from one step to the next (the checked
//! authorization request, who signed in, the organisation chosen) travels in a hidden field,
//! encrypted and authenticated with a key kept in the store (XChaCha20-Poly1305). A page
//! cannot be forged or altered, and a form posted from another site without a sealed field
//! made by this server for that step gets nowhere (the CSRF defence).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::kv::{KEY_LOCK, Kv, names};
use super::{AuthError, now};

const NONCE_BYTES: usize = 24;
/// A sealed field longer than this is refused before it is decoded.
const MAX_SEALED: usize = 16 * 1024;

pub(crate) struct Seal {
    cipher: XChaCha20Poly1305,
}

#[derive(Serialize, serde::Deserialize)]
struct Envelope<T> {
    sealed_at: i64,
    value: T,
}

impl Seal {
    pub(crate) fn load_or_create(kv: &Kv) -> Result<Seal, AuthError> {
        let decode = |text: String| -> Result<Seal, AuthError> {
            let key = URL_SAFE_NO_PAD
                .decode(text)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| AuthError::Internal("the stored form key is not 32 bytes".into()))?;
            Ok(Seal {
                cipher: XChaCha20Poly1305::new(&key.into()),
            })
        };
        if let Some(text) = kv.raw(names::FORM_KEY)? {
            return decode(text);
        }
        let mut tx = kv.store().begin()?;
        tx.lock_key(KEY_LOCK)?;
        if let Some(text) = kv.raw(names::FORM_KEY)? {
            return decode(text);
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| AuthError::Internal(format!("no randomness for the form key: {e}")))?;
        let text = URL_SAFE_NO_PAD.encode(key);
        tx.set_checkpoint(names::FORM_KEY, Some(&text))?;
        tx.commit()?;
        decode(text)
    }

    /// `value` sealed for the form step `purpose`.
    pub(crate) fn seal<T: Serialize>(&self, purpose: &str, value: &T) -> Result<String, AuthError> {
        let plain = serde_json::to_vec(&Envelope {
            sealed_at: now(),
            value,
        })
        .map_err(|e| AuthError::Internal(format!("sealing: {e}")))?;
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce)
            .map_err(|e| AuthError::Internal(format!("no randomness for a nonce: {e}")))?;
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| AuthError::Internal("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The value sealed for `purpose` no more than `max_age` seconds ago; `None` for anything
    /// else (altered, another step's, another server's, too old, garbage).
    pub(crate) fn open<T: DeserializeOwned>(
        &self,
        purpose: &str,
        sealed: &str,
        max_age: i64,
    ) -> Option<T> {
        if sealed.len() > MAX_SEALED {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let plain = self
            .cipher
            .decrypt(
                &XNonce::try_from(nonce).ok()?,
                Payload {
                    msg: ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .ok()?;
        let envelope: Envelope<T> = serde_json::from_slice(&plain).ok()?;
        let age = now() - envelope.sealed_at;
        (0..=max_age).contains(&age).then_some(envelope.value)
    }
}
