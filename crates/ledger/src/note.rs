//! Signed notes (C2SP `signed-note`), checkpoints (`tlog-checkpoint`) and cosignatures
//! (`tlog-cosignature`, Ed25519 `cosignature/v1`).
//!
//! A note is UTF-8 text ending in a newline, then an empty line, then signature lines
//! `— <key name> base64(key id ‖ signature)`. A key id is the first four bytes of
//! SHA-256(name ‖ "\n" ‖ algorithm ‖ public key): 0x01 for a log's Ed25519 signature over the
//! text, 0x04 for a witness's cosignature, whose signature is a big-endian u64 timestamp then
//! Ed25519 over `cosignature/v1\ntime <timestamp>\n` and the text.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::hash::{Hash, from_base64, to_base64, to_hex};

/// A note signature by a log key (Ed25519 over the note's text).
pub const ALG_ED25519: u8 = 0x01;
/// A witness's timestamped cosignature (`cosignature/v1`).
pub const ALG_COSIGNATURE: u8 = 0x04;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NoteError(pub String);

fn bad(what: impl Into<String>) -> NoteError {
    NoteError(what.into())
}

pub fn key_id(name: &str, algorithm: u8, public: &[u8; 32]) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([algorithm]);
    hasher.update(public);
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['+', ' ', '\n']) && !name.chars().any(char::is_control)
}

/// A public key as a note verifier: `name+hexid+base64(algorithm ‖ key)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    pub name: String,
    pub algorithm: u8,
    pub id: [u8; 4],
    pub key: [u8; 32],
}

impl VerifierKey {
    pub fn new(name: &str, algorithm: u8, key: [u8; 32]) -> VerifierKey {
        VerifierKey {
            name: name.to_owned(),
            algorithm,
            id: key_id(name, algorithm, &key),
            key,
        }
    }

    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("a verifier key is name+hash+key"));
        };
        if !valid_name(name) {
            return Err(bad(format!("'{name}' is not a key name")));
        }
        let raw = STANDARD
            .decode(key)
            .map_err(|_| bad("the verifier key is not base64"))?;
        let (&algorithm, key) = raw
            .split_first()
            .ok_or_else(|| bad("the verifier key is empty"))?;
        if algorithm != ALG_ED25519 && algorithm != ALG_COSIGNATURE {
            return Err(bad(format!(
                "verifier key algorithm {algorithm:#04x} is not supported"
            )));
        }
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("an Ed25519 verifier key has 32 bytes"))?;
        VerifyingKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 public key"))?;
        let parsed = VerifierKey::new(name, algorithm, key);
        if to_hex(&parsed.id) != id {
            return Err(bad(format!(
                "the verifier key's hash {id} is not its key's"
            )));
        }
        Ok(parsed)
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(self.algorithm);
        raw.extend_from_slice(&self.key);
        write!(
            f,
            "{}+{}+{}",
            self.name,
            to_hex(&self.id),
            STANDARD.encode(raw)
        )
    }
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub id: [u8; 4],
    pub signature: Vec<u8>,
}

impl NoteSignature {
    pub fn line(&self) -> String {
        let mut raw = self.id.to_vec();
        raw.extend_from_slice(&self.signature);
        format!("— {} {}\n", self.name, STANDARD.encode(raw))
    }

    pub fn parse_line(line: &str) -> Result<NoteSignature, NoteError> {
        let rest = line
            .strip_prefix("— ")
            .ok_or_else(|| bad("a signature line starts with '— '"))?;
        let (name, signature) = rest
            .rsplit_once(' ')
            .ok_or_else(|| bad("a signature line is '— name signature'"))?;
        if !valid_name(name) {
            return Err(bad(format!("'{name}' is not a key name")));
        }
        let raw = STANDARD
            .decode(signature)
            .map_err(|_| bad("a signature is base64"))?;
        if raw.len() < 5 {
            return Err(bad("a signature is a key id and its bytes"));
        }
        Ok(NoteSignature {
            name: name.to_owned(),
            id: [raw[0], raw[1], raw[2], raw[3]],
            signature: raw[4..].to_vec(),
        })
    }

    /// Whether this is `key`'s signature over `text`.
    pub fn verifies(&self, key: &VerifierKey, text: &str) -> bool {
        if self.name != key.name || self.id != key.id {
            return false;
        }
        let Ok(public) = VerifyingKey::from_bytes(&key.key) else {
            return false;
        };
        match key.algorithm {
            ALG_ED25519 => Signature::from_slice(&self.signature)
                .is_ok_and(|s| public.verify(text.as_bytes(), &s).is_ok()),
            ALG_COSIGNATURE => {
                if self.signature.len() != 72 {
                    return false;
                }
                let time = u64::from_be_bytes(self.signature[..8].try_into().expect("8 bytes"));
                Signature::from_slice(&self.signature[8..]).is_ok_and(|s| {
                    public
                        .verify(cosigned_message(time, text).as_bytes(), &s)
                        .is_ok()
                })
            }
            _ => false,
        }
    }

    /// A cosignature's timestamp (seconds since the Unix epoch).
    pub fn cosigned_at(&self) -> Option<u64> {
        (self.signature.len() == 72)
            .then(|| u64::from_be_bytes(self.signature[..8].try_into().expect("8 bytes")))
    }
}

fn cosigned_message(time: u64, text: &str) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

/// A signed note: its text (ending in a newline) and its signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

/// The longest note accepted from outside: a checkpoint with many witnesses is a few KiB.
pub const MAX_NOTE: usize = 64 * 1024;

impl Note {
    pub fn parse(note: &str) -> Result<Note, NoteError> {
        if note.len() > MAX_NOTE {
            return Err(bad("the note is too long"));
        }
        let split = note
            .find("\n\n")
            .ok_or_else(|| bad("a note's text is followed by an empty line and its signatures"))?;
        let text = &note[..=split];
        let mut signatures = Vec::new();
        let lines = &note[split + 2..];
        if !lines.ends_with('\n') {
            return Err(bad("a note ends with a newline"));
        }
        for line in lines[..lines.len() - 1].split('\n') {
            signatures.push(NoteSignature::parse_line(line)?);
        }
        if signatures.is_empty() {
            return Err(bad("the note has no signature"));
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Whether some signature by `key` verifies.
    pub fn signed_by(&self, key: &VerifierKey) -> bool {
        self.signatures.iter().any(|s| s.verifies(key, &self.text))
    }

    pub fn signature_by(&self, key: &VerifierKey) -> Option<&NoteSignature> {
        self.signatures.iter().find(|s| s.verifies(key, &self.text))
    }

    /// Adds `signature` unless one by the same key is there.
    pub fn add(&mut self, signature: NoteSignature) {
        if !self
            .signatures
            .iter()
            .any(|s| s.name == signature.name && s.id == signature.id)
        {
            self.signatures.push(signature);
        }
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for signature in &self.signatures {
            f.write_str(&signature.line())?;
        }
        Ok(())
    }
}

/// A checkpoint's text: the origin, the tree size and its root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            to_base64(&self.root)
        )
    }

    /// The checkpoint a signed note carries (its signatures unchecked).
    pub fn of_note(note: &str) -> Option<Checkpoint> {
        Checkpoint::parse(&Note::parse(note).ok()?.text).ok()
    }

    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = text.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty());
        let size = lines.next();
        let root = lines.next();
        let (Some(origin), Some(size), Some(root)) = (origin, size, root) else {
            return Err(bad("a checkpoint is an origin, a size and a root hash"));
        };
        let size = size
            .parse::<u64>()
            .ok()
            .filter(|_| size == "0" || !size.starts_with('0'))
            .ok_or_else(|| bad("a checkpoint's size is a decimal number"))?;
        let root = from_base64(root).ok_or_else(|| bad("a checkpoint's root is a base64 hash"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// An Ed25519 key that signs: a log's (notes) or a witness's (cosignatures).
#[derive(Clone)]
pub struct NoteSigner {
    pub name: String,
    pub algorithm: u8,
    secret: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .finish()
    }
}

impl NoteSigner {
    pub fn from_seed(name: &str, algorithm: u8, seed: [u8; 32]) -> Result<NoteSigner, NoteError> {
        if !valid_name(name) {
            return Err(bad(format!("'{name}' is not a key name")));
        }
        Ok(NoteSigner {
            name: name.to_owned(),
            algorithm,
            secret: SigningKey::from_bytes(&seed),
        })
    }

    pub fn generate(name: &str, algorithm: u8) -> Result<NoteSigner, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| bad(format!("the system random source failed: {e}")))?;
        NoteSigner::from_seed(name, algorithm, seed)
    }

    pub fn seed(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    pub fn verifier(&self) -> VerifierKey {
        VerifierKey::new(
            &self.name,
            self.algorithm,
            self.secret.verifying_key().to_bytes(),
        )
    }

    /// Signs `text`: a note signature, or a cosignature at `time` for a witness key.
    pub fn sign(&self, text: &str, time: u64) -> NoteSignature {
        let id = self.verifier().id;
        let signature = if self.algorithm == ALG_COSIGNATURE {
            let mut out = time.to_be_bytes().to_vec();
            out.extend_from_slice(
                &self
                    .secret
                    .sign(cosigned_message(time, text).as_bytes())
                    .to_bytes(),
            );
            out
        } else {
            self.secret.sign(text.as_bytes()).to_bytes().to_vec()
        };
        NoteSignature {
            name: self.name.clone(),
            id,
            signature,
        }
    }
}
