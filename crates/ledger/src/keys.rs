//! The log's signing keys: Ed25519, named by the log's origin. The newest signs; the older ones
//! are kept so that checkpoints they signed still verify, and all are published. Where the ring
//! is kept is the caller's business (the repository keeps it in the store, beside the tree); this
//! module only turns it into and out of JSON.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::note::{ALG_ED25519, NoteError, NoteSigner, VerifierKey};

#[derive(Debug, Clone)]
struct LogKey {
    /// Seconds since the Unix epoch.
    created: i64,
    signer: NoteSigner,
}

/// Every key the log signs or has signed with; the last one signs.
#[derive(Debug, Clone)]
pub struct LogKeys {
    origin: String,
    keys: Vec<LogKey>,
}

impl LogKeys {
    pub fn generate(origin: &str, now: i64) -> Result<LogKeys, NoteError> {
        let mut keys = LogKeys {
            origin: origin.to_owned(),
            keys: Vec::new(),
        };
        keys.rotate(now)?;
        Ok(keys)
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Adds a new signing key.
    pub fn rotate(&mut self, now: i64) -> Result<(), NoteError> {
        self.keys.push(LogKey {
            created: now,
            signer: NoteSigner::generate(&self.origin, ALG_ED25519)?,
        });
        Ok(())
    }

    pub fn signer(&self) -> &NoteSigner {
        &self.keys.last().expect("a key ring has a key").signer
    }

    pub fn verifiers(&self) -> Vec<VerifierKey> {
        self.keys.iter().map(|k| k.signer.verifier()).collect()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "origin": self.origin,
            "keys": self.keys.iter().map(|k| json!({
                "created": k.created,
                "secret": STANDARD.encode(k.signer.seed()),
            })).collect::<Vec<_>>(),
        })
    }

    pub fn from_json(value: &Value) -> Result<LogKeys, NoteError> {
        let bad = |what: &str| NoteError(format!("the ledger's key ring is damaged: {what}"));
        let origin = value
            .get("origin")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no origin"))?;
        let mut keys = Vec::new();
        for key in value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no keys"))?
        {
            let created = key
                .get("created")
                .and_then(Value::as_i64)
                .ok_or_else(|| bad("a key without its time"))?;
            let seed: [u8; 32] = key
                .get("secret")
                .and_then(Value::as_str)
                .and_then(|s| STANDARD.decode(s).ok())
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| bad("a key without its secret"))?;
            keys.push(LogKey {
                created,
                signer: NoteSigner::from_seed(origin, ALG_ED25519, seed)?,
            });
        }
        if keys.is_empty() {
            return Err(bad("no keys"));
        }
        Ok(LogKeys {
            origin: origin.to_owned(),
            keys,
        })
    }
}
