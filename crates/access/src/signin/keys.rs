//! The server's signing keys: ES256 (P-256) keys made on first use and kept in the store, so
//! every server on one database and `meridian token` sign and verify with the same ones. The
//! newest signs; every kept key verifies, and all are published as a JSON Web Key Set.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::kv::{KEY_LOCK, Kv, encode, names};
use super::{AuthError, now, random_id};

/// The algorithm of the server's own tokens.
pub const SIGNING_ALGORITHM: &str = "ES256";

#[derive(Debug, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    alg: String,
    /// The private key, PKCS#8 DER, base64url.
    pkcs8: String,
    created: i64,
}

pub(crate) struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
}

/// The keys in force.
pub(crate) struct KeySet {
    pub signing: SigningKey,
    pub verifying: HashMap<String, DecodingKey>,
    pub jwks: Value,
}

impl KeySet {
    /// The keys kept in the store, making the first one when there is none.
    pub(crate) fn load_or_create(kv: &Kv) -> Result<KeySet, AuthError> {
        if let Some(keys) = KeySet::load(kv)? {
            return Ok(keys);
        }
        let store = kv.store();
        let mut tx = store.begin()?;
        tx.lock_key(KEY_LOCK)?;
        // Another process may have made it while this one waited for the lock.
        if let Some(keys) = KeySet::load(kv)? {
            return Ok(keys);
        }
        let stored = new_key()?;
        tx.set_checkpoint(
            &format!("{}{}", names::KEY, stored.kid),
            Some(&encode(&stored)?),
        )?;
        tx.commit()?;
        tracing::info!(kid = stored.kid, "made the server's token signing key");
        KeySet::load(kv)?.ok_or_else(|| AuthError::Internal("the new signing key is gone".into()))
    }

    /// The keys kept in the store, `None` when there is none.
    pub(crate) fn load(kv: &Kv) -> Result<Option<KeySet>, AuthError> {
        let mut stored: Vec<(String, StoredKey)> = kv.list(names::KEY)?;
        if stored.is_empty() {
            return Ok(None);
        }
        stored.sort_by_key(|(_, key)| key.created);
        let mut verifying = HashMap::new();
        let mut jwks = Vec::new();
        let mut signing = None;
        for (_, key) in &stored {
            let der = URL_SAFE_NO_PAD
                .decode(&key.pkcs8)
                .map_err(|e| AuthError::Internal(format!("signing key {}: {e}", key.kid)))?;
            let secret = p256::SecretKey::from_pkcs8_der(&der)
                .map_err(|e| AuthError::Internal(format!("signing key {}: {e}", key.kid)))?;
            let point = secret.public_key().to_encoded_point(false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else {
                return Err(AuthError::Internal(format!(
                    "signing key {} has no affine point",
                    key.kid
                )));
            };
            let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
            let decoding = DecodingKey::from_ec_components(&x, &y)
                .map_err(|e| AuthError::Internal(format!("signing key {}: {e}", key.kid)))?;
            verifying.insert(key.kid.clone(), decoding);
            jwks.push(json!({
                "kty": "EC", "crv": "P-256", "x": x, "y": y,
                "kid": key.kid, "alg": SIGNING_ALGORITHM, "use": "sig",
            }));
            signing = Some(SigningKey {
                kid: key.kid.clone(),
                encoding: EncodingKey::from_ec_der(&der),
            });
        }
        let signing = signing.ok_or_else(|| AuthError::Internal("no signing key".into()))?;
        Ok(Some(KeySet {
            signing,
            verifying,
            jwks: json!({ "keys": jwks }),
        }))
    }
}

fn new_key() -> Result<StoredKey, AuthError> {
    // A random scalar is out of range with probability about 2^-32: draw again.
    let secret = loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| AuthError::Internal(format!("no randomness for a key: {e}")))?;
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            break secret;
        }
    };
    let der = secret
        .to_pkcs8_der()
        .map_err(|e| AuthError::Internal(format!("encoding a new key: {e}")))?;
    Ok(StoredKey {
        kid: random_id()?,
        alg: SIGNING_ALGORITHM.into(),
        pkcs8: URL_SAFE_NO_PAD.encode(der.as_bytes()),
        created: now(),
    })
}
