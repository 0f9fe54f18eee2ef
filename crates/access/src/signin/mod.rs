//! Sign-in: Meridian's own SMART on FHIR authorization server, without HTTP. The server's
//! handlers hand it form fields and tokens and get back tokens, redirects and callers.
//!
//! - [`Authenticator`]: the entry point, over the store. `authenticate` turns a bearer token
//!   into a [`caller::Caller`]; the OAuth endpoints' work (`token`, `introspect`, `revoke`,
//!   `register_client`, the authorization code flow in `authorize`) is its other methods.
//! - `keys`: the server's ES256 signing keys, kept in the store, published as a JWKS.
//! - `tokens`: the access token's and id_token's claims, signing and verification.
//! - `accounts`, `password`, `throttle`: who may sign in, argon2id hashes, failed-attempt limits.
//! - `clients`: registered clients (RFC 7591 metadata) and their `private_key_jwt` assertions.
//! - `grants`: the token endpoint (authorization code with PKCE, refresh with rotation, client
//!   credentials), introspection and revocation.
//! - `authorize`: the authorization request, checked, sealed into the sign-in pages' forms,
//!   and turned into a one-time code.
//! - `external`: tokens of an external OpenID Connect provider, mapped to accounts.
//!
//! Everything lives in the store under `auth/` (see `kv`), so every process on one database
//! sees an account, a client or a revocation at its next request.

mod accounts;
mod authorize;
mod clients;
mod error;
mod external;
mod grants;
mod keys;
mod kv;
mod password;
mod seal;
mod throttle;
mod tokens;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use caller::{Actor, Caller};
use serde_json::Value;
use store::Store;

pub use accounts::{Account, AccountKind, RoleLink};
pub use authorize::{AuthorizeRefusal, AuthorizeRequest, SignInRefusal, SignedIn};
pub use clients::Client;
pub use error::{AuthError, OAuthError};
pub use external::ExternalProvider;
pub use password::PasswordCost;
pub use throttle::ThrottleLimits;
pub use tokens::{AccessClaims, SubjectKind};

use keys::KeySet;
use kv::{Kv, names};

/// A bearer token longer than this is refused before it is decoded.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The audience and issuer of tokens when no public base URL is configured.
pub const DEFAULT_AUDIENCE: &str = "urn:meridian:fhir";

/// How sign-in behaves.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The FHIR base URL tokens are for: their `aud`, and their `iss` (this server issues
    /// them). [`DEFAULT_AUDIENCE`] when the server has no public base URL.
    pub audience: String,
    /// Seconds an access token lives.
    pub access_token_seconds: i64,
    /// Seconds a refresh token lives (each use replaces it).
    pub refresh_token_seconds: i64,
    /// Seconds an authorization code lives.
    pub code_seconds: i64,
    /// Seconds a sign-in form stays usable.
    pub form_seconds: i64,
    /// The cost of new password hashes.
    pub password: PasswordCost,
    pub throttle: ThrottleLimits,
    /// An external OpenID Connect provider whose tokens are accepted too.
    pub external: Option<ExternalProvider>,
}

impl AuthConfig {
    pub fn new(audience: impl Into<String>) -> AuthConfig {
        AuthConfig {
            audience: audience.into(),
            access_token_seconds: 3600,
            refresh_token_seconds: 30 * 86_400,
            code_seconds: 60,
            form_seconds: 600,
            password: PasswordCost::PRODUCTION,
            throttle: ThrottleLimits::default(),
            external: None,
        }
    }
}

/// Meridian's authorization server and the check of every request's token.
pub struct Authenticator {
    kv: Kv,
    config: AuthConfig,
    keys: RwLock<Arc<KeySet>>,
    /// When the keys were last read again for a token signed by an unknown key.
    keys_reloaded: Mutex<i64>,
    /// Access tokens whose signature and claims were checked, by their whole text (see
    /// `tokens::VerifiedTokens`).
    verified: tokens::VerifiedTokens,
    seal: seal::Seal,
    throttle: throttle::Throttle,
    dummy_hash: std::sync::OnceLock<String>,
}

impl Authenticator {
    /// Sign-in over `store`, making the signing key and the form key on first use.
    pub fn open(store: Arc<dyn Store>, config: AuthConfig) -> Result<Authenticator, AuthError> {
        let kv = Kv::new(store);
        let keys = KeySet::load_or_create(&kv)?;
        let seal = seal::Seal::load_or_create(&kv)?;
        Ok(Authenticator {
            throttle: throttle::Throttle::new(config.throttle),
            kv,
            config,
            keys: RwLock::new(Arc::new(keys)),
            keys_reloaded: Mutex::new(0),
            verified: tokens::VerifiedTokens::default(),
            seal,
            dummy_hash: std::sync::OnceLock::new(),
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The audience a server on `store` announced (`remember_audience`), for tools that sign
    /// tokens for it without its configuration (`meridian token`).
    pub fn stored_audience(store: &dyn Store) -> Result<Option<String>, AuthError> {
        Ok(store.checkpoint(names::AUDIENCE)?)
    }

    /// Records this server's audience in the store, for `stored_audience`.
    pub fn remember_audience(&self) -> Result<(), AuthError> {
        if self.kv.raw(names::AUDIENCE)?.as_deref() != Some(self.config.audience.as_str()) {
            let mut tx = self.kv.store().begin()?;
            tx.set_checkpoint(names::AUDIENCE, Some(&self.config.audience))?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The public keys tokens are signed with, as a JSON Web Key Set.
    pub fn jwks(&self) -> Value {
        self.keys().jwks.clone()
    }

    fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The caller a FHIR request's bearer token stands for. `purpose` is the
    /// `X-Purpose-Of-Use` header (treatment when absent) and `break_glass` the
    /// `X-Break-Glass-Reason` header, which counts only with the purpose `ETREAT`.
    pub fn authenticate(
        &self,
        bearer: &str,
        purpose: Option<&str>,
        break_glass: Option<&str>,
        address: Option<IpAddr>,
        request_id: &str,
    ) -> Result<Caller, AuthError> {
        let claims = self.verify_token(bearer)?;
        let purpose = match purpose.map(str::trim) {
            None | Some("") => caller::DEFAULT_PURPOSE.to_owned(),
            Some(code) if is_code(code) => code.to_owned(),
            Some(_) => {
                return Err(AuthError::InvalidRequest(
                    "X-Purpose-Of-Use is not a purpose-of-use code (such as TREAT or ETREAT)"
                        .into(),
                ));
            }
        };
        let break_glass = match break_glass.map(str::trim) {
            Some(reason) if purpose == "ETREAT" && !reason.is_empty() => {
                if reason.chars().count() > 1000 || reason.chars().any(char::is_control) {
                    return Err(AuthError::InvalidRequest(
                        "X-Break-Glass-Reason is longer than 1,000 characters or holds control \
                         characters"
                            .into(),
                    ));
                }
                Some(reason.to_owned())
            }
            _ => None,
        };
        let actor = match claims.kind {
            SubjectKind::Practitioner | SubjectKind::Resident => Actor::User(
                claims
                    .fhir_user
                    .clone()
                    .ok_or_else(|| AuthError::InvalidToken("the token names no fhirUser".into()))?,
            ),
            SubjectKind::Administrator => Actor::Administrator(claims.sub.clone()),
            SubjectKind::Client => Actor::Client(
                claims
                    .client_id
                    .clone()
                    .unwrap_or_else(|| claims.sub.clone()),
            ),
        };
        let scopes = match crate::scope::Scopes::parse(&claims.scope) {
            Ok(scopes) => scopes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<String>>(),
            Err(_) => {
                return Err(AuthError::InvalidToken(
                    "the token's scope is not SMART scopes".into(),
                ));
            }
        };
        Ok(Caller {
            request_id: request_id.to_owned(),
            actor,
            organization: claims.organization,
            client_id: claims.client_id,
            scopes,
            patient: claims.patient,
            purpose,
            break_glass,
            address,
        })
    }

    /// The caller of a CDS Hooks request its JWT authenticated as `client`: the client acting
    /// for its organisation, with the scopes it is registered for, for treatment.
    pub fn client_caller(
        &self,
        client: &Client,
        address: Option<IpAddr>,
        request_id: &str,
    ) -> Caller {
        let scopes = crate::scope::Scopes::parse(&client.scope)
            .map(|scopes| scopes.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        Caller {
            request_id: request_id.to_owned(),
            actor: Actor::Client(client.client_id.clone()),
            organization: client.organization.clone(),
            client_id: Some(client.client_id.clone()),
            scopes,
            patient: None,
            purpose: caller::DEFAULT_PURPOSE.to_owned(),
            break_glass: None,
            address,
        }
    }

    /// The account `name`, if there is one.
    pub fn account(&self, name: &str) -> Result<Option<Account>, AuthError> {
        self.kv.get(&format!("{}{name}", names::ACCOUNT))
    }

    /// Every account, by name.
    pub fn accounts(&self) -> Result<Vec<Account>, AuthError> {
        Ok(self
            .kv
            .list::<Account>(names::ACCOUNT)?
            .into_iter()
            .map(|(_, account)| account)
            .collect())
    }

    /// The client `client_id`, if registered.
    pub fn client(&self, client_id: &str) -> Result<Option<Client>, AuthError> {
        if !clients::is_client_id(client_id) {
            return Ok(None);
        }
        self.kv.get(&format!("{}{client_id}", names::CLIENT))
    }

    /// Every registered client.
    pub fn clients(&self) -> Result<Vec<Client>, AuthError> {
        Ok(self
            .kv
            .list::<Client>(names::CLIENT)?
            .into_iter()
            .map(|(_, client)| client)
            .collect())
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// 128 random bits, base64url: ids and one-time secrets.
pub(crate) fn random_id() -> Result<String, AuthError> {
    random_token(16)
}

pub(crate) fn random_token(bytes: usize) -> Result<String, AuthError> {
    use base64::Engine;
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| AuthError::Internal(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer))
}

/// A purpose-of-use code: letters, digits, `-` and `_`, at most 32.
fn is_code(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
