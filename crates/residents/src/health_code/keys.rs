//! The keys health codes are signed with: Ed25519, each with a short id carried in the code. The
//! newest signs; older ones only verify, so that rotating keys does not void codes already
//! issued (printed codes live for years). Public keys are published as a JSON Web Key Set.
//! Where the key ring is kept is the edge's business (the `meridian` binary keeps it in a file in
//! its data directory); this module only turns it into and out of JSON.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::{Value, json};

use crate::IdentityError;

/// One key: its id, when it was made, and the secret (absent for a key kept only to verify).
#[derive(Clone)]
pub struct Key {
    pub id: u32,
    /// Seconds since the Unix epoch.
    pub created: i64,
    secret: Option<SigningKey>,
    public: VerifyingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("created", &self.created)
            .finish()
    }
}

/// Every key the platform signs or has signed with; the last is the one that signs.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<Key>,
}

fn random_seed() -> Result<[u8; 32], IdentityError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| IdentityError::Internal(format!("the system random source failed: {e}")))?;
    Ok(seed)
}

impl KeyRing {
    /// A ring with one new key.
    pub fn generate(now: i64) -> Result<KeyRing, IdentityError> {
        let mut ring = KeyRing { keys: Vec::new() };
        ring.rotate(now)?;
        Ok(ring)
    }

    /// Adds a new signing key; the old ones stay to verify what they signed.
    pub fn rotate(&mut self, now: i64) -> Result<u32, IdentityError> {
        let secret = SigningKey::from_bytes(&random_seed()?);
        let id = self.keys.iter().map(|k| k.id).max().map_or(1, |m| m + 1);
        self.keys.push(Key {
            id,
            created: now,
            public: secret.verifying_key(),
            secret: Some(secret),
        });
        Ok(id)
    }

    /// Rotates when the signing key is older than `max_age` seconds. Answers whether it did.
    pub fn rotate_if_older(&mut self, now: i64, max_age: i64) -> Result<bool, IdentityError> {
        match self.keys.last() {
            Some(key) if now - key.created < max_age => Ok(false),
            _ => self.rotate(now).map(|_| true),
        }
    }

    pub fn signing(&self) -> Option<&Key> {
        self.keys.last().filter(|k| k.secret.is_some())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Option<(u32, [u8; 64])> {
        let key = self.signing()?;
        let secret = key.secret.as_ref()?;
        Some((key.id, secret.sign(message).to_bytes()))
    }

    pub(crate) fn verify(&self, key_id: u32, message: &[u8], signature: &[u8; 64]) -> bool {
        self.keys.iter().find(|k| k.id == key_id).is_some_and(|k| {
            k.public
                .verify(message, &Signature::from_bytes(signature))
                .is_ok()
        })
    }

    /// A secret for keyed hashes, derived from key `key_id`'s secret.
    pub(crate) fn pepper(&self, key_id: u32) -> Option<[u8; 32]> {
        use sha2::Digest;
        let secret = self.keys.iter().find(|k| k.id == key_id)?.secret.as_ref()?;
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"meridian health code pin pepper\0");
        hasher.update(secret.to_bytes());
        Some(hasher.finalize().into())
    }

    /// The public keys as a JSON Web Key Set (RFC 8037 OKP keys).
    pub fn jwks(&self) -> Value {
        json!({"keys": self.keys.iter().map(|k| json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "use": "sig",
            "alg": "EdDSA",
            "kid": k.id.to_string(),
            "x": URL_SAFE_NO_PAD.encode(k.public.as_bytes()),
        })).collect::<Vec<_>>()})
    }

    /// The ring with its secrets, for the edge to keep somewhere safe.
    pub fn to_json(&self) -> Value {
        json!({"keys": self.keys.iter().map(|k| {
            let mut key = json!({"id": k.id, "created": k.created, "public": URL_SAFE_NO_PAD.encode(k.public.as_bytes())});
            if let Some(secret) = &k.secret {
                key["secret"] = json!(URL_SAFE_NO_PAD.encode(secret.to_bytes()));
            }
            key
        }).collect::<Vec<_>>()})
    }

    pub fn from_json(value: &Value) -> Result<KeyRing, IdentityError> {
        let bad = |what: &str| {
            IdentityError::Internal(format!("the health-code key ring is damaged: {what}"))
        };
        let mut keys = Vec::new();
        for key in value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no keys"))?
        {
            let id = key
                .get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad("a key without an id"))? as u32;
            let created = key.get("created").and_then(Value::as_i64).unwrap_or(0);
            let bytes = |name: &str| -> Result<Option<[u8; 32]>, IdentityError> {
                match key.get(name).and_then(Value::as_str) {
                    None => Ok(None),
                    Some(text) => {
                        let raw = URL_SAFE_NO_PAD
                            .decode(text)
                            .map_err(|_| bad("bad base64"))?;
                        Ok(Some(
                            raw.try_into().map_err(|_| bad("a key is not 32 bytes"))?,
                        ))
                    }
                }
            };
            let secret = bytes("secret")?.map(|s| SigningKey::from_bytes(&s));
            let public = match (&secret, bytes("public")?) {
                (Some(secret), _) => secret.verifying_key(),
                (None, Some(public)) => {
                    VerifyingKey::from_bytes(&public).map_err(|_| bad("a public key is invalid"))?
                }
                (None, None) => return Err(bad("a key with neither secret nor public part")),
            };
            keys.push(Key {
                id,
                created,
                secret,
                public,
            });
        }
        keys.sort_by_key(|k| k.id);
        if keys.is_empty() {
            return Err(bad("no keys"));
        }
        Ok(KeyRing { keys })
    }
}
