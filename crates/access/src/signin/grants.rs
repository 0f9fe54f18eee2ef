//! The token endpoint's grants (authorization code with PKCE, refresh token with rotation,
//! client credentials with a `private_key_jwt` assertion), introspection (RFC 7662) and
//! revocation (RFC 7009).
//!
//! Codes and refresh tokens are one-time: each is taken from the store atomically and leaves a
//! "used" mark naming its grant family. Presenting one again finds the mark and revokes the
//! whole family, so a stolen code or refresh token used after (or before) its owner stops every
//! token issued from that sign-in.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::clients::{ASSERTION_TYPE, Client};
use super::kv::{decode, digest, encode, names};
use super::tokens::{Grant, SubjectKind};
use super::{AuthError, Authenticator, OAuthError, now, random_id, random_token};
use crate::scope::{Scope, Scopes};

/// A code's grant, until it is exchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub grant: Grant,
    pub nonce: Option<String>,
    pub expires: i64,
}

/// A refresh token's grant, until it is used.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshRecord {
    client_id: String,
    grant: Grant,
    expires: i64,
}

/// What a used code or refresh token leaves behind.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UsedRecord {
    family: String,
    until: i64,
}

/// An OAuth form: every parameter at most once (RFC 6749 section 3.2).
pub struct Form<'a> {
    params: &'a [(String, String)],
}

impl<'a> Form<'a> {
    pub fn new(params: &'a [(String, String)]) -> Result<Form<'a>, OAuthError> {
        for (i, (name, _)) in params.iter().enumerate() {
            if params[..i].iter().any(|(other, _)| other == name) {
                return Err(OAuthError::invalid_request(format!(
                    "the parameter {} is repeated",
                    printable(name)
                )));
            }
        }
        Ok(Form { params })
    }

    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<&'a str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    }
}

/// At most 64 characters of `text` for an error message.
pub(crate) fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// `BASE64URL(SHA-256(verifier))`, as PKCE's S256 compares it (RFC 7636 section 4.6).
pub(crate) fn s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A PKCE verifier: 43 to 128 unreserved characters.
fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl Authenticator {
    /// The token endpoint: `params` is the form posted, `endpoints` the URLs it is reached at
    /// (what a client assertion's `aud` may be). Answers the token response's JSON.
    pub fn token(
        &self,
        params: &[(String, String)],
        endpoints: &[String],
    ) -> Result<Value, OAuthError> {
        let form = Form::new(params)?;
        match form.required("grant_type")? {
            "client_credentials" => self.client_credentials(&form, endpoints),
            "authorization_code" => self.exchange_code(&form, endpoints),
            "refresh_token" => self.refresh(&form, endpoints),
            other => Err(OAuthError::new(
                "unsupported_grant_type",
                format!("grant_type {} is not supported", printable(other)),
            )),
        }
    }

    /// The client the form authenticates: by its assertion, or a public client by its id.
    fn token_client(&self, form: &Form<'_>, endpoints: &[String]) -> Result<Client, OAuthError> {
        if let Some(assertion) = form.get("client_assertion") {
            if form.get("client_assertion_type") != Some(ASSERTION_TYPE) {
                return Err(OAuthError::invalid_client(format!(
                    "client_assertion_type must be {ASSERTION_TYPE}"
                )));
            }
            return self.verify_assertion(assertion, form.get("client_id"), endpoints);
        }
        let client_id = form
            .get("client_id")
            .ok_or_else(|| OAuthError::invalid_client("the client is not identified"))?;
        let client = self
            .client(client_id)?
            .ok_or_else(|| OAuthError::invalid_client("the client is not registered"))?;
        if !client.is_public() {
            return Err(OAuthError::invalid_client(
                "this client authenticates with a private_key_jwt assertion",
            ));
        }
        Ok(client)
    }

    fn client_credentials(
        &self,
        form: &Form<'_>,
        endpoints: &[String],
    ) -> Result<Value, OAuthError> {
        let client = self.token_client(form, endpoints)?;
        if client.is_public() || !client.allows_grant("client_credentials") {
            return Err(OAuthError::new(
                "unauthorized_client",
                "this client is not registered for client_credentials",
            ));
        }
        let asked = Scopes::parse(
            form.required("scope")
                .map_err(|_| OAuthError::invalid_scope("scope is required"))?,
        )
        .map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
        let allowed = Scopes::parse(&client.scope).unwrap_or_default();
        let granted: Scopes = asked.within(&allowed);
        let granted = Scopes::parse_each(
            granted
                .iter()
                .filter(|s| matches!(s, Scope::Resource(r) if r.context == crate::scope::Context::System))
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        )
        .unwrap_or_default();
        if granted.is_empty() {
            return Err(OAuthError::invalid_scope(
                "none of the scopes asked for are system scopes this client is registered for",
            ));
        }
        let family = random_id()?;
        let grant = Grant {
            subject: client.client_id.clone(),
            kind: SubjectKind::Client,
            client_id: Some(client.client_id.clone()),
            fhir_user: None,
            patient: None,
            organization: client.organization.clone(),
            scope: granted.to_v2_string(),
            family,
        };
        self.token_response(&grant, &client, None, false)
    }

    fn exchange_code(&self, form: &Form<'_>, endpoints: &[String]) -> Result<Value, OAuthError> {
        let code = form.required("code")?;
        let redirect_uri = form.required("redirect_uri")?;
        let verifier = form.required("code_verifier")?;
        let client = self.token_client(form, endpoints)?;
        if code.len() > 256 {
            return Err(OAuthError::invalid_grant(
                "the code is unknown, expired or used",
            ));
        }
        let hashed = digest(code);
        let mut tx = self.kv.store().begin().map_err(OAuthError::from)?;
        let Some(text) = tx.take_checkpoint(&format!("{}{hashed}", names::CODE))? else {
            drop(tx);
            self.revoke_used(names::CODE_USED, &hashed, "authorization code")?;
            return Err(OAuthError::invalid_grant(
                "the code is unknown, expired or used",
            ));
        };
        let record: CodeRecord = decode("authorization code", &text).map_err(OAuthError::from)?;
        let used = UsedRecord {
            family: record.grant.family.clone(),
            until: now() + self.config.refresh_token_seconds,
        };
        tx.set_checkpoint(
            &format!("{}{hashed}", names::CODE_USED),
            Some(&encode(&used).map_err(OAuthError::from)?),
        )?;
        tx.commit()?;
        if record.expires < now() {
            return Err(OAuthError::invalid_grant("the code has expired"));
        }
        if record.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if record.redirect_uri != redirect_uri {
            return Err(OAuthError::invalid_grant(
                "redirect_uri is not the one the code was issued for",
            ));
        }
        if !is_verifier(verifier) || s256(verifier) != record.code_challenge {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        let refresh = has_refresh_scope(&record.grant.scope);
        self.token_response(&record.grant, &client, record.nonce, refresh)
    }

    fn refresh(&self, form: &Form<'_>, endpoints: &[String]) -> Result<Value, OAuthError> {
        let token = form.required("refresh_token")?;
        let client = self.token_client(form, endpoints)?;
        if token.len() > 256 {
            return Err(OAuthError::invalid_grant(
                "the refresh token is unknown, expired or used",
            ));
        }
        let hashed = digest(token);
        let mut tx = self.kv.store().begin().map_err(OAuthError::from)?;
        let Some(text) = tx.take_checkpoint(&format!("{}{hashed}", names::REFRESH))? else {
            drop(tx);
            self.revoke_used(names::REFRESH_USED, &hashed, "refresh token")?;
            return Err(OAuthError::invalid_grant(
                "the refresh token is unknown, expired or used",
            ));
        };
        let record: RefreshRecord = decode("refresh token", &text).map_err(OAuthError::from)?;
        let used = UsedRecord {
            family: record.grant.family.clone(),
            until: record.expires,
        };
        tx.set_checkpoint(
            &format!("{}{hashed}", names::REFRESH_USED),
            Some(&encode(&used).map_err(OAuthError::from)?),
        )?;
        tx.commit()?;
        if record.expires < now() {
            return Err(OAuthError::invalid_grant("the refresh token has expired"));
        }
        if record.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        if self.is_revoked(&record.grant.family)? {
            return Err(OAuthError::invalid_grant(
                "the refresh token has been revoked",
            ));
        }
        let mut grant = record.grant;
        if let Some(asked) = form.get("scope") {
            let asked =
                Scopes::parse(asked).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            let granted = Scopes::parse(&grant.scope).unwrap_or_default();
            let narrowed = asked.within(&granted);
            if narrowed.is_empty() {
                return Err(OAuthError::invalid_scope(
                    "the scopes asked for were not granted",
                ));
            }
            grant.scope = narrowed.to_v2_string();
        }
        self.token_response(&grant, &client, None, true)
    }

    /// A one-time credential presented again: its family is revoked.
    fn revoke_used(&self, prefix: &str, hashed: &str, what: &str) -> Result<(), OAuthError> {
        if let Some(used) = self.kv.get::<UsedRecord>(&format!("{prefix}{hashed}"))? {
            tracing::warn!(
                family = used.family,
                "a used {what} was presented again: its grant is revoked"
            );
            self.revoke_id(&used.family, used.until)?;
        }
        Ok(())
    }

    /// The token response for `grant`: an access token, a refresh token when asked for, an
    /// id_token when `openid` was granted, and the launch context.
    fn token_response(
        &self,
        grant: &Grant,
        client: &Client,
        nonce: Option<String>,
        refresh: bool,
    ) -> Result<Value, OAuthError> {
        let (access_token, _) = self.sign_access(grant, self.config.access_token_seconds)?;
        let mut response = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.config.access_token_seconds,
            "scope": grant.scope,
        });
        if let Some(patient) = &grant.patient {
            response["patient"] = json!(patient.trim_start_matches("Patient/"));
        }
        if let Some(organization) = &grant.organization {
            response["organization"] = json!(organization);
        }
        if refresh {
            let token = random_token(32)?;
            let record = RefreshRecord {
                client_id: client.client_id.clone(),
                grant: grant.clone(),
                expires: now() + self.config.refresh_token_seconds,
            };
            self.kv
                .put(&format!("{}{}", names::REFRESH, digest(&token)), &record)?;
            response["refresh_token"] = json!(token);
        }
        let scopes = Scopes::parse(&grant.scope).unwrap_or_default();
        if scopes.contains(&Scope::OpenId) && grant.kind != SubjectKind::Client {
            response["id_token"] = json!(self.sign_id_token(grant, &client.client_id, nonce)?);
        }
        Ok(response)
    }

    /// RFC 7662: what a token is, or `{"active": false}` for anything not valid now.
    pub fn introspect(&self, token: &str) -> Result<Value, OAuthError> {
        if token.len() <= 256
            && let Some(record) =
                self.kv
                    .get::<RefreshRecord>(&format!("{}{}", names::REFRESH, digest(token)))?
            && record.expires >= now()
            && !self.is_revoked(&record.grant.family)?
        {
            return Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": record.grant.scope,
                "client_id": record.client_id,
                "sub": record.grant.subject,
                "exp": record.expires,
            }));
        }
        match self.verify_token(token) {
            Ok(claims) => {
                let mut answer = json!({
                    "active": true,
                    "token_type": "Bearer",
                    "scope": claims.scope,
                    "sub": claims.sub,
                    "exp": claims.exp,
                    "iat": claims.iat,
                    "iss": claims.iss,
                    "aud": claims.aud,
                    "jti": claims.jti,
                });
                for (name, value) in [
                    ("client_id", claims.client_id),
                    ("fhirUser", claims.fhir_user),
                    ("patient", claims.patient),
                    ("organization", claims.organization),
                ] {
                    if let Some(value) = value {
                        answer[name] = json!(value);
                    }
                }
                Ok(answer)
            }
            Err(AuthError::InvalidToken(_) | AuthError::InvalidRequest(_)) => {
                Ok(json!({"active": false}))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// RFC 7009: revokes a refresh token or an access token, and with it every token of its
    /// grant. Unknown tokens are no error.
    pub fn revoke(&self, token: &str) -> Result<(), OAuthError> {
        if token.len() <= 256 {
            let hashed = digest(token);
            let mut tx = self.kv.store().begin().map_err(OAuthError::from)?;
            if let Some(text) = tx.take_checkpoint(&format!("{}{hashed}", names::REFRESH))? {
                let record: RefreshRecord =
                    decode("refresh token", &text).map_err(OAuthError::from)?;
                tx.set_checkpoint(
                    &format!("{}{}", names::REVOKED, record.grant.family),
                    Some(&record.expires.to_string()),
                )?;
                tx.commit()?;
                return Ok(());
            }
        }
        if let Ok(claims) = self.verify_signed(token, false) {
            // Kept until nothing of the family can still be valid: its refresh tokens, and this
            // token itself (a long-lived one from `meridian token`).
            let until = claims.exp.max(now() + self.config.refresh_token_seconds);
            self.revoke_id(&claims.fam, until)?;
        }
        Ok(())
    }

    /// Removes what has expired from the store: codes, refresh tokens, their used marks,
    /// revocations of families that can no longer hold a valid token, assertion ids past their
    /// `exp`, launch contexts. Answers how many entries went. Run now and then (`serve` does
    /// every hour); nothing depends on it but the store's size.
    pub fn prune_expired(&self) -> Result<usize, AuthError> {
        // A minute of slack: nothing is removed that a check with leeway could still want.
        let cutoff = now() - 60;
        let mut removed = 0;
        for prefix in [
            names::CODE,
            names::CODE_USED,
            names::REFRESH,
            names::REFRESH_USED,
            names::REVOKED,
            names::JTI,
            names::LAUNCH,
        ] {
            let expired: Vec<String> = self
                .kv
                .store()
                .checkpoints_with_prefix(prefix)?
                .into_iter()
                .filter(|(_, value)| expiry(value).is_some_and(|at| at < cutoff))
                .map(|(name, _)| name)
                .collect();
            for batch in expired.chunks(500) {
                let mut tx = self.kv.store().begin()?;
                for name in batch {
                    tx.set_checkpoint(name, None)?;
                }
                tx.commit()?;
                removed += batch.len();
            }
        }
        Ok(removed)
    }
}

/// When a stored entry stops mattering: a number (revocations, assertion ids), or an object's
/// `expires` or `until`. `None` for anything else, which is kept.
fn expiry(value: &str) -> Option<i64> {
    let value: Value = serde_json::from_str(value).ok()?;
    match &value {
        Value::Number(n) => n.as_i64(),
        Value::Object(fields) => fields
            .get("expires")
            .or_else(|| fields.get("until"))
            .and_then(Value::as_i64),
        _ => None,
    }
}

fn has_refresh_scope(scope: &str) -> bool {
    scope
        .split_ascii_whitespace()
        .any(|s| s == "offline_access" || s == "online_access")
}
