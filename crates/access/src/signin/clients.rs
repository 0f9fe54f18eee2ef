//! Registered clients: RFC 7591 metadata (with Meridian's `organization`), kept in the store,
//! and the check of a confidential client's `private_key_jwt` assertion (RFC 7523 as SMART
//! Backend Services profiles it: RS384 or ES384, signed by a key of the client's registered
//! JWKS, `iss` = `sub` = the client id, `aud` = the token endpoint, `exp` at most five minutes
//! ahead, a `jti` never seen before).

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::kv::{digest, names};
use super::{Authenticator, OAuthError, now};
use crate::scope::Scopes;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An assertion longer than this is refused before it is decoded.
const MAX_ASSERTION_BYTES: usize = 16 * 1024;
/// How far ahead an assertion's `exp` may be (SMART: five minutes).
const MAX_ASSERTION_LIFETIME: i64 = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// `private_key_jwt` or `none` (a public client, with PKCE).
    pub token_endpoint_auth_method: String,
    /// The client's public keys (a JWKS), for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// Where the client publishes its keys: the only `jku` a CDS Hooks request of this client
    /// may name (CDS Hooks 2.0, "Trusting CDS Clients").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The scopes the client may be granted, space-separated.
    pub scope: String,
    pub grant_types: Vec<String>,
    /// The organisation the client acts for (`Organization/ID`); `None` for a platform client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    pub client_id_issued_at: i64,
}

/// Client ids: letters, digits, `.`, `_`, `-`, `:`, at most 128.
pub(crate) fn is_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
}

impl Client {
    /// A client from RFC 7591 registration metadata, checked. `client_id` is the one to give
    /// it (a fresh one when registering through the API).
    pub fn from_metadata(metadata: &Value, client_id: &str) -> Result<Client, OAuthError> {
        let bad = |m: String| OAuthError::new("invalid_client_metadata", m);
        let object = metadata
            .as_object()
            .ok_or_else(|| bad("the metadata is not a JSON object".into()))?;
        if !is_client_id(client_id) {
            return Err(bad(format!("'{client_id}' is not a client id")));
        }
        let text = |name: &str| -> Result<Option<String>, OAuthError> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.len() <= 2048 => Ok(Some(s.clone())),
                Some(_) => Err(bad(format!("{name} is not a string"))),
            }
        };
        let list = |name: &str| -> Result<Option<Vec<String>>, OAuthError> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) if items.len() <= 32 => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .filter(|s| s.len() <= 2048)
                            .map(str::to_owned)
                            .ok_or_else(|| bad(format!("{name} holds something not a string")))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(bad(format!("{name} is not a list of strings"))),
            }
        };
        let method =
            text("token_endpoint_auth_method")?.unwrap_or_else(|| "private_key_jwt".to_owned());
        if method != "private_key_jwt" && method != "none" {
            return Err(bad(format!(
                "token_endpoint_auth_method '{method}' is not supported: use private_key_jwt or none"
            )));
        }
        let jwks_uri = text("jwks_uri")?;
        if let Some(uri) = &jwks_uri
            && !is_redirect_uri(uri)
        {
            return Err(bad(format!(
                "jwks_uri '{uri}' is not an absolute http(s) URI without a fragment"
            )));
        }
        let grant_types = list("grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
        for grant in &grant_types {
            if !["authorization_code", "refresh_token", "client_credentials"]
                .contains(&grant.as_str())
            {
                return Err(bad(format!("grant type '{grant}' is not supported")));
            }
        }
        let redirect_uris = list("redirect_uris")?.unwrap_or_default();
        for uri in &redirect_uris {
            if !is_redirect_uri(uri) {
                return Err(OAuthError::new(
                    "invalid_redirect_uri",
                    format!("'{uri}' is not an absolute http(s) URI without a fragment"),
                ));
            }
        }
        if grant_types.iter().any(|g| g == "authorization_code") && redirect_uris.is_empty() {
            return Err(OAuthError::new(
                "invalid_redirect_uri",
                "the authorization code grant needs redirect_uris",
            ));
        }
        let jwks = object.get("jwks").filter(|v| !v.is_null()).cloned();
        if method == "private_key_jwt" {
            match (&jwks, &jwks_uri) {
                (Some(keys), _) => {
                    let usable = verification_keys(keys).map_err(bad)?;
                    if usable.is_empty() {
                        return Err(bad("jwks holds no RSA or P-384 key".into()));
                    }
                }
                (None, Some(_)) if !grant_types.iter().any(|g| g == "client_credentials") => {}
                _ => {
                    return Err(bad(
                        "private_key_jwt needs the client's public keys as jwks (a client that \
                         only calls CDS Hooks may name them by jwks_uri instead)"
                            .into(),
                    ));
                }
            }
        } else if grant_types.iter().any(|g| g == "client_credentials") {
            return Err(bad("client_credentials needs private_key_jwt".into()));
        }
        let scope = text("scope")?.unwrap_or_default();
        let scope = Scopes::parse(&scope)
            .map_err(|e| bad(e.to_string()))?
            .to_v2_string();
        let organization = text("organization")?;
        if let Some(organization) = &organization
            && !organization
                .strip_prefix("Organization/")
                .is_some_and(|id| {
                    !id.is_empty()
                        && id.len() <= 64
                        && id
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                })
        {
            return Err(bad(format!(
                "organization '{organization}' is not Organization/ID"
            )));
        }
        Ok(Client {
            client_id: client_id.to_owned(),
            client_name: text("client_name")?,
            redirect_uris,
            token_endpoint_auth_method: method,
            jwks,
            jwks_uri,
            scope,
            grant_types,
            organization,
            client_id_issued_at: now(),
        })
    }

    /// The client as RFC 7591 metadata.
    pub fn to_metadata(&self) -> Value {
        let mut metadata = json!({
            "client_id": self.client_id,
            "client_id_issued_at": self.client_id_issued_at,
            "redirect_uris": self.redirect_uris,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "grant_types": self.grant_types,
            "scope": self.scope,
        });
        if let Some(name) = &self.client_name {
            metadata["client_name"] = json!(name);
        }
        if let Some(jwks) = &self.jwks {
            metadata["jwks"] = jwks.clone();
        }
        if let Some(uri) = &self.jwks_uri {
            metadata["jwks_uri"] = json!(uri);
        }
        if let Some(organization) = &self.organization {
            metadata["organization"] = json!(organization);
        }
        metadata
    }

    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == "none"
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

/// An absolute `http`/`https` URI without a fragment, without spaces or control characters.
pub(crate) fn is_redirect_uri(uri: &str) -> bool {
    (uri.starts_with("https://") || uri.starts_with("http://"))
        && uri.len() > "http://".len() + 1
        && !uri.contains('#')
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A key that verifies signatures: its `kid`, the one algorithm it verifies, the key.
pub(crate) type VerificationKey = (Option<String>, Algorithm, DecodingKey);

/// The keys of a JWKS this server can verify assertions with, each with its `kid` and the
/// algorithm it verifies (RSA: RS384; P-384: ES384). Other keys are skipped.
fn verification_keys(
    jwks: &Value,
) -> Result<Vec<(Option<String>, Algorithm, DecodingKey)>, String> {
    let set: JwkSet = serde_json::from_value(jwks.clone())
        .map_err(|e| format!("jwks is not a JSON Web Key Set: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                use base64::Engine;
                let bits = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(rsa.n.trim_end_matches('='))
                    .map(|n| n.len() * 8)
                    .unwrap_or(0);
                if bits < 2048 {
                    return Err("an RSA key has fewer than 2048 bits".into());
                }
                Algorithm::RS384
            }
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                jsonwebtoken::jwk::EllipticCurve::P384 => Algorithm::ES384,
                _ => continue,
            },
            _ => continue,
        };
        let key = decoding_key(jwk).map_err(|e| format!("a key of jwks is not usable: {e}"))?;
        keys.push((jwk.common.key_id.clone(), algorithm, key));
    }
    Ok(keys)
}

fn decoding_key(jwk: &Jwk) -> Result<DecodingKey, jsonwebtoken::errors::Error> {
    DecodingKey::from_jwk(jwk)
}

/// What a client's JWT is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JwtUse {
    /// `private_key_jwt` at the token endpoint.
    ClientAssertion,
    /// A CDS Hooks request's `Authorization: Bearer` JWT.
    CdsHooks,
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    jti: String,
}

impl Authenticator {
    /// Registers a client (RFC 7591), with a fresh client id.
    pub fn register_client(&self, metadata: &Value) -> Result<Client, OAuthError> {
        let client_id = super::random_id()?;
        let client = Client::from_metadata(metadata, &client_id)?;
        self.kv
            .put(&format!("{}{}", names::CLIENT, client.client_id), &client)?;
        Ok(client)
    }

    /// Adds or replaces a client under its own id (the command line's `client add`).
    pub fn put_client(&self, client: &Client) -> Result<(), OAuthError> {
        if !is_client_id(&client.client_id) {
            return Err(OAuthError::new(
                "invalid_client_metadata",
                "not a client id",
            ));
        }
        self.kv
            .put(&format!("{}{}", names::CLIENT, client.client_id), client)?;
        Ok(())
    }

    /// The client a `private_key_jwt` assertion authenticates. `audiences` are the URLs the
    /// token endpoint is reached at (the assertion's `aud` must be one of them).
    pub(crate) fn verify_assertion(
        &self,
        assertion: &str,
        client_id: Option<&str>,
        audiences: &[String],
    ) -> Result<Client, OAuthError> {
        self.verify_client_jwt(
            assertion,
            client_id,
            audiences,
            JwtUse::ClientAssertion,
            None,
        )
    }

    /// The `jku` a CDS Hooks JWT names, checked against the client's registered `jwks_uri`:
    /// the edge fetches the keys from there and hands them to [`Authenticator::verify_cds_jwt`].
    /// `None` when the JWT names none (the registered `jwks` verify it).
    pub fn cds_jwt_key_url(&self, jwt: &str) -> Result<Option<String>, OAuthError> {
        let refused = |why: &str| {
            OAuthError::invalid_client(format!("the CDS Hooks JWT is not valid: {why}"))
        };
        if jwt.len() > MAX_ASSERTION_BYTES {
            return Err(refused("it is too long"));
        }
        let header =
            jsonwebtoken::decode_header(jwt).map_err(|_| refused("its header does not parse"))?;
        let Some(jku) = header.jku else {
            return Ok(None);
        };
        let unverified = jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(jwt)
            .map_err(|_| refused("its claims do not parse (iss, sub, exp and jti are required)"))?;
        let client = self
            .client(&unverified.claims.iss)?
            .ok_or_else(|| refused("its iss is not a registered client"))?;
        if client.jwks_uri.as_deref() != Some(jku.as_str()) {
            return Err(refused("its jku is not the jwks_uri the client registered"));
        }
        Ok(Some(jku))
    }

    /// The registered client a CDS Hooks request's JWT authenticates (CDS Hooks 2.0: `iss` and
    /// `sub` the client id, `aud` the service's URL, `exp`, a `jti` never seen before, `kid` in
    /// the header, RS384 or ES384), verified with the keys fetched from its `jku` when it
    /// named one, else with the registered `jwks`.
    pub fn verify_cds_jwt(
        &self,
        jwt: &str,
        audiences: &[String],
        fetched_keys: Option<&Value>,
    ) -> Result<Client, OAuthError> {
        self.verify_client_jwt(jwt, None, audiences, JwtUse::CdsHooks, fetched_keys)
    }

    fn verify_client_jwt(
        &self,
        assertion: &str,
        client_id: Option<&str>,
        audiences: &[String],
        purpose: JwtUse,
        fetched_keys: Option<&Value>,
    ) -> Result<Client, OAuthError> {
        let what = match purpose {
            JwtUse::ClientAssertion => "the client assertion",
            JwtUse::CdsHooks => "the CDS Hooks JWT",
        };
        let refused = |why: &str| OAuthError::invalid_client(format!("{what} is not valid: {why}"));
        if assertion.len() > MAX_ASSERTION_BYTES {
            return Err(refused("it is too long"));
        }
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|_| refused("its header does not parse"))?;
        if header.alg != Algorithm::RS384 && header.alg != Algorithm::ES384 {
            return Err(refused("it must be signed with RS384 or ES384"));
        }
        if purpose == JwtUse::CdsHooks && header.kid.as_deref().is_none_or(str::is_empty) {
            return Err(refused("its header names no kid"));
        }
        // The client is named inside; read it unverified only to find the keys to verify with.
        let unverified = jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(assertion)
            .map_err(|_| refused("its claims do not parse (iss, sub, exp and jti are required)"))?;
        let issuer = unverified.claims.iss;
        if let Some(client_id) = client_id
            && client_id != issuer
        {
            return Err(refused("its iss is not the client_id sent"));
        }
        let client = self
            .client(&issuer)?
            .ok_or_else(|| refused("its iss is not a registered client"))?;
        if client.is_public() {
            return Err(refused("the client is registered without keys"));
        }
        let keys = fetched_keys
            .or(client.jwks.as_ref())
            .map(verification_keys)
            .transpose()
            .map_err(|_| refused("the client's keys are not usable"))?
            .unwrap_or_default();
        let mut validation = Validation::new(header.alg);
        validation.set_audience(audiences);
        validation.set_issuer(&[&client.client_id]);
        validation.sub = Some(client.client_id.clone());
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        validation.leeway = 30;
        let mut last_error = refused("no registered key verifies it");
        let mut verified = None;
        for (kid, algorithm, key) in &keys {
            if *algorithm != header.alg
                || (header.kid.is_some() && kid.is_some() && header.kid != *kid)
            {
                continue;
            }
            match jsonwebtoken::decode::<AssertionClaims>(assertion, key, &validation) {
                Ok(data) => {
                    verified = Some(data.claims);
                    break;
                }
                Err(error) => {
                    use jsonwebtoken::errors::ErrorKind;
                    last_error = refused(match error.kind() {
                        ErrorKind::ExpiredSignature => "it has expired",
                        ErrorKind::InvalidAudience => match purpose {
                            JwtUse::ClientAssertion => "its aud is not this token endpoint",
                            JwtUse::CdsHooks => "its aud is not this service's URL",
                        },
                        ErrorKind::InvalidSubject => "its sub is not the client",
                        ErrorKind::InvalidSignature => "no registered key verifies it",
                        _ => "its claims are not valid",
                    });
                }
            }
        }
        let claims = verified.ok_or(last_error)?;
        let now = now();
        if claims.exp > now + MAX_ASSERTION_LIFETIME + 30 {
            return Err(refused("its exp is more than five minutes ahead"));
        }
        if claims.jti.is_empty() || claims.jti.len() > 256 || claims.sub != client.client_id {
            return Err(refused("its jti is missing or too long"));
        }
        let name = format!("{}{}/{}", names::JTI, client.client_id, digest(&claims.jti));
        if !self.kv.insert_if_absent(&name, &claims.exp)? {
            return Err(refused("its jti was used before"));
        }
        Ok(client)
    }
}
