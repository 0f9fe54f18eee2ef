//! The server's tokens: access tokens (JWTs, RFC 9068's `at+jwt`) and OpenID Connect
//! id_tokens, signed with the newest key, and the check of a bearer token: only ES256 from one
//! of this server's keys (so `alg: none`, HS256 keyed with the public key and foreign keys are
//! refused), for this audience, from this issuer, not expired, not revoked.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::KeySet;
use super::kv::names;
use super::{AuthError, Authenticator, MAX_TOKEN_BYTES, now, random_id};

/// Who a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    Practitioner,
    Resident,
    Administrator,
    /// A client acting for itself (SMART Backend Services).
    Client,
}

/// Access tokens this server verified (signature, algorithm, key, audience, issuer), by their
/// whole text, so that a client's next requests with the same token skip the signature check
/// (an ES256 verification costs more CPU than a read by id). Expiry is checked on every use,
/// and revocation is read from the store on every request as before. Keyed by the exact text,
/// so no other token can be taken for one of them; bounded, emptied when full.
#[derive(Default)]
pub(crate) struct VerifiedTokens {
    tokens: std::sync::Mutex<std::collections::HashMap<String, AccessClaims>>,
}

/// How many verified tokens are kept.
const MAX_VERIFIED_TOKENS: usize = 10_000;

impl VerifiedTokens {
    /// The claims of `token` if it was verified and has not expired since.
    fn get(&self, token: &str) -> Option<AccessClaims> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let claims = tokens.get(token)?;
        (claims.exp > now()).then(|| claims.clone())
    }

    fn insert(&self, token: &str, claims: &AccessClaims) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.len() >= MAX_VERIFIED_TOKENS {
            tokens.clear();
        }
        tokens.insert(token.to_owned(), claims.clone());
    }
}

/// An access token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The account name, or the client id for a client acting for itself.
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// The scopes granted, space-separated, v2 spelling.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(rename = "fhirUser", default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// The patient in context (`Patient/123`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The organisation acted for (`Organization/7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The grant family: every token issued from one sign-in (its code, its refresh tokens)
    /// shares it, and revoking the family revokes them all.
    pub fam: String,
    /// Who the subject is.
    pub kind: SubjectKind,
}

/// An OpenID Connect id_token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What a token is issued for (the outcome of a sign-in or a client's authentication).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Grant {
    pub subject: String,
    pub kind: SubjectKind,
    pub client_id: Option<String>,
    pub fhir_user: Option<String>,
    pub patient: Option<String>,
    pub organization: Option<String>,
    pub scope: String,
    pub family: String,
}

impl Authenticator {
    /// Signs an access token for `grant`, living `seconds` (negative: already expired, for
    /// tests of refusal).
    pub(crate) fn sign_access(
        &self,
        grant: &Grant,
        seconds: i64,
    ) -> Result<(String, AccessClaims), AuthError> {
        let issued = now();
        let claims = AccessClaims {
            iss: self.config.audience.clone(),
            aud: self.config.audience.clone(),
            sub: grant.subject.clone(),
            exp: issued + seconds,
            iat: issued,
            jti: random_id()?,
            scope: grant.scope.clone(),
            client_id: grant.client_id.clone(),
            fhir_user: grant.fhir_user.clone(),
            patient: grant.patient.clone(),
            organization: grant.organization.clone(),
            fam: grant.family.clone(),
            kind: grant.kind,
        };
        let token = self.sign(&claims, "at+jwt")?;
        Ok((token, claims))
    }

    pub(crate) fn sign_id_token(
        &self,
        grant: &Grant,
        client_id: &str,
        nonce: Option<String>,
    ) -> Result<String, AuthError> {
        let issued = now();
        self.sign(
            &IdClaims {
                iss: self.config.audience.clone(),
                sub: grant.subject.clone(),
                aud: client_id.to_owned(),
                exp: issued + self.config.access_token_seconds,
                iat: issued,
                fhir_user: grant.fhir_user.clone(),
                nonce,
                name: Some(grant.subject.clone()),
            },
            "JWT",
        )
    }

    fn sign<T: Serialize>(&self, claims: &T, typ: &str) -> Result<String, AuthError> {
        let keys = self.keys();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(keys.signing.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &keys.signing.encoding)
            .map_err(|e| AuthError::Internal(format!("signing a token: {e}")))
    }

    /// The claims of one of this server's access tokens, checked in every way but revocation.
    /// With `check_expiry` false an expired token's claims are answered too (revocation of an
    /// expired token is harmless).
    pub(crate) fn verify_signed(
        &self,
        token: &str,
        check_expiry: bool,
    ) -> Result<AccessClaims, AuthError> {
        let refused =
            |why: &str| AuthError::InvalidToken(format!("the access token is not valid: {why}"));
        if token.len() > MAX_TOKEN_BYTES {
            return Err(refused("it is too long"));
        }
        if token.is_empty()
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(refused("it is not a JSON Web Token"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            refused("its header does not parse (or names an algorithm this server never uses)")
        })?;
        if header.alg != Algorithm::ES256 {
            return Err(refused("it is not signed with this server's algorithm"));
        }
        let kid = header.kid.ok_or_else(|| refused("it names no key"))?;
        let keys = self.keys_with(&kid)?;
        let key = keys
            .verifying
            .get(&kid)
            .ok_or_else(|| refused("it is signed by a key this server does not have"))?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[&self.config.audience]);
        validation.set_issuer(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        validation.validate_exp = check_expiry;
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, key, &validation).map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                refused(match error.kind() {
                    ErrorKind::ExpiredSignature => "it has expired",
                    ErrorKind::InvalidAudience => "it is for another audience",
                    ErrorKind::InvalidIssuer => "it is from another issuer",
                    ErrorKind::InvalidSignature => "its signature does not verify",
                    _ => "its claims are not this server's",
                })
            })?;
        Ok(data.claims)
    }

    /// The claims of a valid access token: this server's and not revoked, or an external
    /// provider's mapped to an account.
    pub(crate) fn verify_token(&self, token: &str) -> Result<AccessClaims, AuthError> {
        if let Some(external) = &self.config.external
            && token.len() <= MAX_TOKEN_BYTES
            && external.issued(token)
        {
            return self.verify_external(external, token);
        }
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let claims = self.verify_signed(token, true)?;
                self.verified.insert(token, &claims);
                claims
            }
        };
        // One read per request: revocation is always of a whole family (a token from
        // `meridian token` or client credentials is a family of its own).
        if self.is_revoked(&claims.fam)? {
            return Err(AuthError::InvalidToken(
                "the access token has been revoked".into(),
            ));
        }
        Ok(claims)
    }

    pub(crate) fn is_revoked(&self, id: &str) -> Result<bool, AuthError> {
        Ok(self.kv.raw(&format!("{}{id}", names::REVOKED))?.is_some())
    }

    /// Revokes a grant family until `until`.
    pub(crate) fn revoke_id(&self, id: &str, until: i64) -> Result<(), AuthError> {
        let mut tx = self.kv.store().begin()?;
        tx.set_checkpoint(&format!("{}{id}", names::REVOKED), Some(&until.to_string()))?;
        tx.commit()?;
        Ok(())
    }

    /// The key set, read again from the store when it lacks `kid` (another server made a new
    /// key), at most every ten seconds so that tokens naming made-up keys cost no reads.
    fn keys_with(&self, kid: &str) -> Result<Arc<KeySet>, AuthError> {
        let keys = self.keys();
        if keys.verifying.contains_key(kid) {
            return Ok(keys);
        }
        {
            let mut last = self.keys_reloaded.lock().unwrap_or_else(|p| p.into_inner());
            let now = now();
            if now - *last < 10 {
                return Ok(keys);
            }
            *last = now;
        }
        match KeySet::load(&self.kv)? {
            Some(fresh) => {
                let fresh = Arc::new(fresh);
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&fresh);
                Ok(fresh)
            }
            None => Ok(keys),
        }
    }

    /// An access token for the account `name` (the administrator's full access when `scope`
    /// is `None` and the account is an administrator), as `meridian token` prints it.
    pub fn issue_for_account(
        &self,
        name: &str,
        scope: Option<&str>,
        seconds: i64,
    ) -> Result<String, AuthError> {
        let account = self
            .account(name)?
            .ok_or_else(|| AuthError::InvalidRequest(format!("there is no account {name}")))?;
        let scope = match scope {
            Some(scope) => crate::scope::Scopes::parse(scope)
                .map_err(|e| AuthError::InvalidRequest(e.to_string()))?
                .to_v2_string(),
            None => account.default_scope().to_owned(),
        };
        let family = random_id()?;
        let context = account.context(None)?;
        let grant = Grant {
            subject: account.name.clone(),
            kind: account.subject_kind(),
            client_id: None,
            fhir_user: context.fhir_user,
            patient: context.patient,
            organization: context.organization,
            scope,
            family,
        };
        Ok(self.sign_access(&grant, seconds)?.0)
    }
}
