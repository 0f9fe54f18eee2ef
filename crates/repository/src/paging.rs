//! Paging cursors as clients see them: sealed with authenticated encryption (XChaCha20-Poly1305),
//! so that a next link reveals nothing of the data it pages through (a name walk's cursor held
//! the last resident's family name, which proxies log) and a cursor changed by a client is
//! refused instead of reaching a store. The key is kept in the store, so every server on one
//! database opens every other's cursors; the cursor is bound to the search it belongs to.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use store::Store;

use crate::RepositoryError;

/// The store checkpoint holding the key, hex.
const KEY_CHECKPOINT: &str = "paging-cursor-key";
/// The lock two servers creating the key at once take (an arbitrary constant).
const KEY_LOCK: i64 = 0x6375_7273_6f72_6b79; // "cursorky"
const NONCE_BYTES: usize = 24;
/// A sealed cursor longer than this is refused before it is decoded.
const MAX_SEALED_LEN: usize = 4096;

/// Authenticated encryption under a key kept in a store checkpoint (XChaCha20-Poly1305, a
/// random nonce per value, the value bound to what it is for by associated data): what a
/// client carries for the server and must neither read nor change (paging cursors, the
/// sign-in pages' form state). Every server on one database opens every other's values.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    /// The sealer of `store` whose key is in the checkpoint `name` (hex), made on first use
    /// under the advisory lock `lock` so that two servers starting at once agree.
    pub fn of_store(store: &dyn Store, name: &str, lock: i64) -> Result<Sealer, RepositoryError> {
        let key = match store.checkpoint(name)? {
            Some(hex) => decode_hex(&hex),
            None => {
                let mut tx = store.begin()?;
                tx.lock_key(lock)?;
                // Another server may have made it while this one waited for the lock.
                match store.checkpoint(name)? {
                    Some(hex) => decode_hex(&hex),
                    None => {
                        let mut key = [0u8; 32];
                        getrandom::fill(&mut key).map_err(|e| {
                            RepositoryError::Internal(format!("no randomness for a key: {e}"))
                        })?;
                        tx.set_checkpoint(name, Some(&encode_hex(&key)))?;
                        tx.commit()?;
                        Some(key)
                    }
                }
            }
        };
        let key = key.ok_or_else(|| {
            RepositoryError::Internal(format!("the stored key {name} is not 32 bytes of hex"))
        })?;
        Ok(Sealer::with_key(&key))
    }

    pub fn with_key(key: &[u8; 32]) -> Sealer {
        Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// `plain` sealed for `purpose`, as base64url text.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        // Without randomness a fixed nonce would still seal correctly, but reuse it; the
        // operating system's generator does not fail once the process is running.
        let _ = getrandom::fill(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: purpose.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// What was sealed in `sealed` for `purpose` by this key, or `None` (changed, another
    /// purpose's, another key's, longer than `max_len`, not base64url).
    pub fn open(&self, purpose: &str, sealed: &str, max_len: usize) -> Option<Vec<u8>> {
        if sealed.len() > max_len {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(
                &XNonce::try_from(nonce).ok()?,
                Payload {
                    msg: ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .ok()
    }
}

/// Seals and opens cursors with the store's key. Public only for the fuzz targets (`fuzz/`),
/// which open hostile cursors with a fixed key; nothing outside this crate seals cursors.
#[doc(hidden)]
pub struct CursorSeal {
    sealer: Sealer,
}

impl CursorSeal {
    /// The seal of `store`, creating its key on first use.
    pub(crate) fn of_store(store: &dyn Store) -> Result<CursorSeal, RepositoryError> {
        Ok(CursorSeal {
            sealer: Sealer::of_store(store, KEY_CHECKPOINT, KEY_LOCK)?,
        })
    }

    pub fn with_key(key: &[u8; 32]) -> CursorSeal {
        CursorSeal {
            sealer: Sealer::with_key(key),
        }
    }

    /// The cursor text `plain`, sealed for the search `scope` (its path).
    pub fn seal(&self, scope: &str, plain: &str) -> String {
        self.sealer.seal(scope, plain.as_bytes())
    }

    /// The cursor text sealed in `sealed` for the search `scope`, or `None` when it was not
    /// sealed by this store's key for this search, or was changed.
    pub fn open(&self, scope: &str, sealed: &str) -> Option<String> {
        String::from_utf8(self.sealer.open(scope, sealed, MAX_SEALED_LEN)?).ok()
    }
}

/// `params` with the sealed `_cursor` opened for the search `scope`, a 400 naming `_cursor`
/// when it does not open.
pub(crate) fn open_cursor_param(
    seal: &CursorSeal,
    scope: &str,
    params: &[(String, String)],
) -> Result<Vec<(String, String)>, RepositoryError> {
    params
        .iter()
        .map(|(name, value)| {
            if name == "_cursor" {
                let plain = seal
                    .open(scope, value)
                    .ok_or(RepositoryError::Store(store::StoreError::InvalidCursor))?;
                Ok((name.clone(), plain))
            } else {
                Ok((name.clone(), value.clone()))
            }
        })
        .collect()
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_cursor_opens_for_its_search_only_and_not_when_changed() {
        let seal = CursorSeal::with_key(&[7; 32]);
        let sealed = seal.seal("Patient", "42~w0~ssmith");
        assert!(!sealed.contains("smith"));
        assert_eq!(
            seal.open("Patient", &sealed).as_deref(),
            Some("42~w0~ssmith")
        );
        assert_eq!(seal.open("Observation", &sealed), None, "another search");
        assert_ne!(
            seal.seal("Patient", "42~w0~ssmith"),
            sealed,
            "a fresh nonce each time"
        );
        let mut changed = sealed.clone().into_bytes();
        let last = changed.len() - 1;
        changed[last] = if changed[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            seal.open("Patient", std::str::from_utf8(&changed).unwrap()),
            None
        );
        assert_eq!(seal.open("Patient", "42~w0~ssmith"), None, "a plain cursor");
        assert_eq!(seal.open("Patient", ""), None);
        let other = CursorSeal::with_key(&[8; 32]);
        assert_eq!(other.open("Patient", &sealed), None, "another store's key");
    }

    #[test]
    fn the_key_round_trips_through_hex() {
        let key: [u8; 32] = std::array::from_fn(|i| (i * 9) as u8);
        assert_eq!(decode_hex(&encode_hex(&key)), Some(key));
        assert_eq!(decode_hex("zz"), None);
    }
}
