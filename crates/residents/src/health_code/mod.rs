//! The electronic health code: a compact signed token naming a resident's master record (the
//! Person), shown as a QR code on the resident's phone for a few minutes, or printed with a PIN
//! for residents without a phone. Any institution resolves it to the Person and its Patients.
//! Every issue and resolution is audited; a refused code says why and nothing else.
//!
//! The token: `MHC1:` and base64url of version (1 byte), kind (1), key id (4), issued and
//! expires (4 each, Unix seconds), a random nonce (8), the Person id (UTF-8), then the Ed25519
//! signature (64) over all of that. 168 characters for a UUID Person id: a version-9 QR symbol.

mod keys;
pub mod qr;

use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caller::Caller;
use repository::{InTransaction, Repository, RepositoryError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use store::VersionRecord;

pub use keys::{Key, KeyRing};

use crate::IdentityError;
use crate::mpi::Mpi;

const PREFIX: &str = "MHC1:";
const VERSION: u8 = 1;
/// Signatures are over this and the payload, so no other use of the key can forge a code.
const DOMAIN: &[u8] = b"meridian health code v1\0";
const HEADER: usize = 22;
const HEALTH_CODE_SYSTEM: &str = "urn:meridian:health-code";
const NONCE_SYSTEM: &str = "urn:meridian:health-code:nonce";
const PIN_EXTENSION: &str = "urn:meridian:health-code:pin";

/// Why a health code is refused. Each says what is wrong with the code and nothing about the
/// person it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeRefusal {
    #[error("the health code is malformed: it is not a Meridian health code")]
    Malformed,
    #[error("the health code's signature is not valid: it was altered or not issued here")]
    Tampered,
    #[error("the health code has expired; ask the resident to refresh it")]
    Expired,
    #[error("the health code has been revoked")]
    Revoked,
    #[error("this printed health code needs its PIN")]
    PinRequired,
    #[error("the PIN does not match this printed health code")]
    WrongPin,
}

/// Dynamic (phone) or printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    Dynamic,
    Printed,
}

/// A decoded, verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: CodeKind,
    pub key_id: u32,
    pub issued: i64,
    pub expires: i64,
    pub nonce: [u8; 8],
    pub person: String,
}

impl Token {
    fn nonce_hex(&self) -> String {
        self.nonce.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// How long codes live.
#[derive(Debug, Clone, Copy)]
pub struct HealthCodeConfig {
    /// Seconds a phone code is valid (default 300).
    pub validity: i64,
    /// Seconds a printed code is valid (default ten years).
    pub printed_validity: i64,
    /// Wrong PINs after which a printed code is revoked.
    pub max_pin_attempts: u32,
}

impl Default for HealthCodeConfig {
    fn default() -> HealthCodeConfig {
        HealthCodeConfig {
            validity: 300,
            printed_validity: 10 * 365 * 24 * 3600,
            max_pin_attempts: 5,
        }
    }
}

/// An issued code, ready to show.
#[derive(Debug, Clone)]
pub struct Issued {
    pub code: String,
    pub kind: CodeKind,
    /// Microseconds since the Unix epoch.
    pub expires: i64,
    pub qr_svg: String,
    pub qr_png: Vec<u8>,
    /// The PIN of a printed code, shown once.
    pub pin: Option<String>,
}

/// What a resolved code reveals.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub person: VersionRecord,
    pub patients: Vec<VersionRecord>,
}

/// Issues and resolves health codes.
pub struct HealthCodes {
    ring: RwLock<KeyRing>,
    config: HealthCodeConfig,
}

fn now_seconds() -> i64 {
    fhir_model::clock::now_micros() / 1_000_000
}

fn random<const N: usize>() -> Result<[u8; N], IdentityError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| IdentityError::Internal(format!("random source: {e}")))?;
    Ok(bytes)
}

impl HealthCodes {
    pub fn new(ring: KeyRing, config: HealthCodeConfig) -> HealthCodes {
        HealthCodes {
            ring: RwLock::new(ring),
            config,
        }
    }

    pub fn config(&self) -> &HealthCodeConfig {
        &self.config
    }

    /// The published public keys.
    pub fn jwks(&self) -> Value {
        self.ring.read().unwrap_or_else(|p| p.into_inner()).jwks()
    }

    /// Starts signing with a new key (old ones keep verifying).
    pub fn rotate(&self) -> Result<u32, IdentityError> {
        self.ring
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .rotate(now_seconds())
    }

    fn pepper(&self, key_id: u32) -> Option<[u8; 32]> {
        self.ring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .pepper(key_id)
    }

    /// Signs a token.
    pub fn encode(
        &self,
        kind: CodeKind,
        person: &str,
        issued: i64,
        expires: i64,
        nonce: [u8; 8],
    ) -> Result<String, IdentityError> {
        if person.is_empty() || person.len() > 64 {
            return Err(IdentityError::Internal(
                "a Person id is 1 to 64 characters".into(),
            ));
        }
        let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
        let key_id = ring
            .signing()
            .map(|k| k.id)
            .ok_or_else(|| IdentityError::Internal("no signing key".into()))?;
        let mut payload = Vec::with_capacity(HEADER + person.len() + 64);
        payload.push(VERSION);
        payload.push(match kind {
            CodeKind::Dynamic => 0,
            CodeKind::Printed => 1,
        });
        payload.extend_from_slice(&key_id.to_be_bytes());
        payload.extend_from_slice(&(issued as u32).to_be_bytes());
        payload.extend_from_slice(&(expires as u32).to_be_bytes());
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(person.as_bytes());
        let (_, signature) = ring
            .sign(&[DOMAIN, &payload].concat())
            .ok_or_else(|| IdentityError::Internal("no signing key".into()))?;
        payload.extend_from_slice(&signature);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(payload)))
    }

    /// Decodes and verifies a token's form and signature, and its expiry at `now` (seconds).
    /// The signature is checked before the expiry, so an altered expired code is "tampered".
    pub fn decode(&self, code: &str, now: i64) -> Result<Token, CodeRefusal> {
        let body = code
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(CodeRefusal::Malformed)?;
        if body.len() > 400 {
            return Err(CodeRefusal::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CodeRefusal::Malformed)?;
        if bytes.len() < HEADER + 1 + 64 || bytes[0] != VERSION || bytes[1] > 1 {
            return Err(CodeRefusal::Malformed);
        }
        let (payload, signature) = bytes.split_at(bytes.len() - 64);
        let person = std::str::from_utf8(&payload[HEADER..]).map_err(|_| CodeRefusal::Malformed)?;
        let word = |at: usize| {
            u32::from_be_bytes([
                payload[at],
                payload[at + 1],
                payload[at + 2],
                payload[at + 3],
            ])
        };
        let key_id = word(2);
        let signature: [u8; 64] = signature.try_into().map_err(|_| CodeRefusal::Malformed)?;
        let verified = self.ring.read().unwrap_or_else(|p| p.into_inner()).verify(
            key_id,
            &[DOMAIN, payload].concat(),
            &signature,
        );
        if !verified {
            return Err(CodeRefusal::Tampered);
        }
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&payload[14..22]);
        let token = Token {
            kind: if payload[1] == 0 {
                CodeKind::Dynamic
            } else {
                CodeKind::Printed
            },
            key_id,
            issued: i64::from(word(6)),
            expires: i64::from(word(10)),
            nonce,
            person: person.to_owned(),
        };
        if now > token.expires {
            return Err(CodeRefusal::Expired);
        }
        Ok(token)
    }

    /// Issues a code for the resident whose record Patient `patient` is.
    pub fn issue(
        &self,
        mpi: &Mpi,
        repository: &Repository,
        ctx: &Caller,
        patient: &str,
        kind: CodeKind,
    ) -> Result<Issued, IdentityError> {
        let issued = now_seconds();
        let validity = match kind {
            CodeKind::Dynamic => self.config.validity,
            CodeKind::Printed => self.config.printed_validity,
        };
        let expires = issued + validity;
        let nonce: [u8; 8] = random()?;
        let pin = match kind {
            CodeKind::Dynamic => None,
            CodeKind::Printed => {
                let n = u32::from_be_bytes(random::<4>()?) % 1_000_000;
                Some(format!("{n:06}"))
            }
        };
        let key_id = self
            .ring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .signing()
            .map(|k| k.id)
            .ok_or_else(|| IdentityError::Internal("no signing key".into()))?;
        let person = repository.run_in_transaction(ctx, |tx| {
            if tx.read("Patient", patient)?.is_none() {
                return Err(RepositoryError::NotFound(format!("Patient/{patient} does not exist")));
            }
            let person = mpi.master_of(tx, patient)?.ok_or_else(|| {
                RepositoryError::NotFound(format!("Patient/{patient} has no master record"))
            })?;
            let nonce_hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
            if let Some(pin) = &pin {
                let pepper = self.pepper(key_id).ok_or_else(|| RepositoryError::Internal("no signing key".into()))?;
                // One printed code per resident: printing a new one voids the old.
                let old = tx.search(
                    "Basic",
                    &[
                        ("code".into(), format!("{HEALTH_CODE_SYSTEM}|printed-code")),
                        ("subject".into(), format!("Person/{person}")),
                    ],
                    50,
                )?;
                for record in old {
                    tx.delete("Basic", &record.id)?;
                }
                let salt: [u8; 16] = random().map_err(|e| RepositoryError::Internal(e.to_string()))?;
                tx.create(json!({
                    "resourceType": "Basic",
                    "identifier": [{"system": NONCE_SYSTEM, "value": nonce_hex}],
                    "code": {"coding": [{"system": HEALTH_CODE_SYSTEM, "code": "printed-code"}]},
                    "subject": {"reference": format!("Person/{person}")},
                    "created": fhir_model::clock::format_instant(fhir_model::clock::now_micros())[..10].to_owned(),
                    "extension": [{"url": PIN_EXTENSION, "extension": [
                        {"url": "salt", "valueString": URL_SAFE_NO_PAD.encode(salt)},
                        {"url": "hash", "valueString": pin_hash(&pepper, &salt, pin)},
                        {"url": "failures", "valueInteger": 0}
                    ]}]
                }))?;
            }
            mpi.audit_in(tx, "health-code-issue", &[&format!("Person/{person}"), &format!("Patient/{patient}")], Some(&format!("code {nonce_hex}, {}", match kind { CodeKind::Dynamic => "dynamic", CodeKind::Printed => "printed" })))?;
            Ok(person)
        })?;
        let code = self.encode(kind, &person, issued, expires, nonce)?;
        let qr_svg = qr::svg(&code)
            .ok_or_else(|| IdentityError::Internal("the code does not fit a QR symbol".into()))?;
        let qr_png = qr::png(&code)
            .ok_or_else(|| IdentityError::Internal("the code does not fit a QR symbol".into()))?;
        Ok(Issued {
            code,
            kind,
            expires: expires * 1_000_000,
            qr_svg,
            qr_png,
            pin,
        })
    }

    /// Resolves a code to the resident. A refusal is audited too (without naming anyone).
    pub fn resolve(
        &self,
        mpi: &Mpi,
        repository: &Repository,
        ctx: &Caller,
        code: &str,
        pin: Option<&str>,
    ) -> Result<Resolved, IdentityError> {
        let token = self.accept(mpi, repository, ctx, code, pin)?;
        let (person, patients) = mpi
            .person_with_patients(repository, ctx, &token.person)?
            .ok_or_else(|| self.refused(repository, mpi, ctx, CodeRefusal::Revoked))?;
        Ok(Resolved { person, patients })
    }

    /// Resolves a code to the resident's registrations (`Patient/ID`) whatever the caller may
    /// read of them, for an operation that then acts under its own rules and shows only what
    /// they allow (check-in finds the resident's appointment at the caller's institution).
    /// Audited like [`Self::resolve`].
    pub fn identify(
        &self,
        mpi: &Mpi,
        repository: &Repository,
        ctx: &Caller,
        code: &str,
        pin: Option<&str>,
    ) -> Result<Vec<String>, IdentityError> {
        let token = self.accept(mpi, repository, ctx, code, pin)?;
        let patients = repository.run_in_transaction(ctx, |tx| {
            let Some((record, person)) = tx.read("Person", &token.person)? else {
                return Ok(Vec::new());
            };
            let state = crate::mpi::PersonState::from_resource(&record.id, record.version, &person);
            Ok(state
                .links
                .iter()
                .map(|link| format!("Patient/{}", link.patient))
                .collect())
        })?;
        Ok(patients)
    }

    /// A refusal, audited without naming anyone.
    fn refused(
        &self,
        repository: &Repository,
        mpi: &Mpi,
        ctx: &Caller,
        refusal: CodeRefusal,
    ) -> IdentityError {
        let audited = repository.run_in_transaction(ctx, |tx| {
            mpi.audit_in(tx, "health-code-refused", &[], Some(&refusal.to_string()))
        });
        if let Err(error) = audited {
            tracing::error!(%error, "auditing a refused health code failed");
        }
        IdentityError::HealthCode(refusal)
    }

    /// Decodes a code and checks it is neither revoked, nor printed without its PIN, nor of a
    /// resident no longer active; the resolution is audited.
    fn accept(
        &self,
        mpi: &Mpi,
        repository: &Repository,
        ctx: &Caller,
        code: &str,
        pin: Option<&str>,
    ) -> Result<Token, IdentityError> {
        let token = self
            .decode(code, now_seconds())
            .map_err(|refusal| self.refused(repository, mpi, ctx, refusal))?;
        let max_attempts = self.config.max_pin_attempts;
        let outcome = repository.run_in_transaction(ctx, |tx| {
            match self.check_revocation(tx, &token, pin, max_attempts)? {
                Some(refusal) => Ok(Err(refusal)),
                None => match mpi.active_person(tx, &token.person)? {
                    false => Ok(Err(CodeRefusal::Revoked)),
                    true => {
                        mpi.audit_in(
                            tx,
                            "health-code-resolve",
                            &[&format!("Person/{}", token.person)],
                            Some(&format!("code {}", token.nonce_hex())),
                        )?;
                        Ok(Ok(()))
                    }
                },
            }
        })?;
        if let Err(refusal) = outcome {
            return Err(self.refused(repository, mpi, ctx, refusal));
        }
        Ok(token)
    }

    /// `Some(refusal)` when the code was revoked, or is printed and the PIN is missing or
    /// wrong (a wrong PIN is counted, and enough of them revoke the code).
    fn check_revocation(
        &self,
        tx: &mut InTransaction<'_, '_>,
        token: &Token,
        pin: Option<&str>,
        max_attempts: u32,
    ) -> Result<Option<CodeRefusal>, RepositoryError> {
        let nonce = [(
            "identifier".to_owned(),
            format!("{NONCE_SYSTEM}|{}", token.nonce_hex()),
        )];
        let records = tx.search("Basic", &nonce, 5)?;
        let mut revoked = false;
        let mut printed = None;
        for record in records {
            if let Some((record, basic)) = tx.read("Basic", &record.id)? {
                match basic.pointer("/code/coding/0/code").and_then(Value::as_str) {
                    Some("revocation") => revoked = true,
                    Some("printed-code") => printed = Some((record, basic)),
                    _ => {}
                }
            }
        }
        if revoked {
            return Ok(Some(CodeRefusal::Revoked));
        }
        if token.kind == CodeKind::Dynamic {
            return Ok(None);
        }
        let Some((record, mut basic)) = printed else {
            // Printing a newer code deleted this one's record.
            return Ok(Some(CodeRefusal::Revoked));
        };
        let Some(pin) = pin else {
            return Ok(Some(CodeRefusal::PinRequired));
        };
        let parts = basic
            .pointer("/extension/0/extension")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let part = |name: &str| {
            parts
                .iter()
                .find(|p| p["url"] == name)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let salt = part("salt")
            .get("valueString")
            .and_then(Value::as_str)
            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
            .unwrap_or_default();
        let hash = part("hash")
            .get("valueString")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let failures = part("failures")
            .get("valueInteger")
            .and_then(Value::as_u64)
            .unwrap_or(0) as u32;
        if failures >= max_attempts {
            return Ok(Some(CodeRefusal::Revoked));
        }
        let Some(pepper) = self.pepper(token.key_id) else {
            return Ok(Some(CodeRefusal::Revoked));
        };
        if pin_hash(&pepper, &salt, pin) == hash {
            return Ok(None);
        }
        basic["extension"][0]["extension"] = json!([
            {"url": "salt", "valueString": URL_SAFE_NO_PAD.encode(&salt)},
            {"url": "hash", "valueString": hash},
            {"url": "failures", "valueInteger": failures + 1}
        ]);
        tx.update(basic, Some(record.version))?;
        Ok(Some(CodeRefusal::WrongPin))
    }

    /// Revokes a code (a lost phone, a lost card). The code must be one of ours.
    pub fn revoke(
        &self,
        mpi: &Mpi,
        repository: &Repository,
        ctx: &Caller,
        code: &str,
    ) -> Result<(), IdentityError> {
        // An expired code needs no revoking, but revoking it is harmless: decode far in the past.
        let token = self.decode(code, 0).map_err(IdentityError::HealthCode)?;
        repository.run_in_transaction(ctx, |tx| {
            tx.create(json!({
                "resourceType": "Basic",
                "identifier": [{"system": NONCE_SYSTEM, "value": token.nonce_hex()}],
                "code": {"coding": [{"system": HEALTH_CODE_SYSTEM, "code": "revocation"}]},
                "subject": {"reference": format!("Person/{}", token.person)},
                "created": fhir_model::clock::format_instant(fhir_model::clock::now_micros())[..10].to_owned(),
            }))?;
            mpi.audit_in(tx, "health-code-revoke", &[&format!("Person/{}", token.person)], Some(&format!("code {}", token.nonce_hex())))
        })?;
        Ok(())
    }
}

/// The PIN's hash, keyed by a secret derived from the signing key: the stored hash alone (in a
/// Basic resource) does not let anyone try the million PINs offline.
fn pin_hash(pepper: &[u8; 32], salt: &[u8], pin: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(pepper);
    hasher.update(salt);
    hasher.update(pin.trim().as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}
