//! Tokens from an external OpenID Connect provider (a province's identity system): accepted
//! when their issuer is the configured one and a key of its JWKS (a file, read at start-up)
//! verifies them, and mapped to an account by the provider's `sub` (an account linked to it)
//! or by a `fhirUser` claim naming an account's practitioner or patient.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::tokens::AccessClaims;
use super::{AuthError, Authenticator};

/// A provider whose tokens are accepted.
#[derive(Clone)]
pub struct ExternalProvider {
    pub issuer: String,
    /// The `aud` its tokens must carry (this server's audience when `None`).
    pub audience: Option<String>,
    keys: Vec<super::clients::VerificationKey>,
}

impl std::fmt::Debug for ExternalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalProvider")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &self.keys.len())
            .finish()
    }
}

#[derive(Deserialize)]
struct Peek {
    iss: Option<String>,
}

#[derive(Deserialize)]
struct ExternalClaims {
    sub: String,
    exp: i64,
    iat: Option<i64>,
    jti: Option<String>,
    #[serde(rename = "fhirUser")]
    fhir_user: Option<String>,
    scope: Option<String>,
}

impl ExternalProvider {
    /// The provider `issuer` with the keys of a JWKS document (RSA keys verify RS256/RS384,
    /// P-256 keys ES256, P-384 keys ES384).
    pub fn new(
        issuer: String,
        audience: Option<String>,
        jwks: &str,
    ) -> Result<ExternalProvider, String> {
        let set: JwkSet =
            serde_json::from_str(jwks).map_err(|e| format!("the JWKS does not parse: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
            let algorithms: &[Algorithm] = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => &[Algorithm::RS256, Algorithm::RS384],
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    EllipticCurve::P256 => &[Algorithm::ES256],
                    EllipticCurve::P384 => &[Algorithm::ES384],
                    _ => continue,
                },
                _ => continue,
            };
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|e| format!("a key of the JWKS is not usable: {e}"))?;
            for algorithm in algorithms {
                keys.push((jwk.common.key_id.clone(), *algorithm, key.clone()));
            }
        }
        if keys.is_empty() {
            return Err("the JWKS holds no RSA, P-256 or P-384 key".into());
        }
        Ok(ExternalProvider {
            issuer,
            audience,
            keys,
        })
    }

    /// Whether `token` says it comes from this provider (unverified: only to choose how to
    /// verify it).
    pub(crate) fn issued(&self, token: &str) -> bool {
        jsonwebtoken::dangerous::insecure_decode::<Peek>(token)
            .ok()
            .and_then(|data| data.claims.iss)
            .is_some_and(|iss| iss == self.issuer)
    }
}

impl Authenticator {
    pub(crate) fn verify_external(
        &self,
        provider: &ExternalProvider,
        token: &str,
    ) -> Result<AccessClaims, AuthError> {
        let refused =
            |why: &str| AuthError::InvalidToken(format!("the external token is not valid: {why}"));
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| refused("its header does not parse"))?;
        let audience = provider
            .audience
            .clone()
            .unwrap_or_else(|| self.config.audience.clone());
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&audience]);
        validation.set_issuer(&[&provider.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        let mut claims = None;
        for (kid, algorithm, key) in &provider.keys {
            if *algorithm != header.alg
                || (header.kid.is_some() && kid.is_some() && header.kid != *kid)
            {
                continue;
            }
            if let Ok(data) = jsonwebtoken::decode::<ExternalClaims>(token, key, &validation) {
                claims = Some(data.claims);
                break;
            }
        }
        let claims = claims
            .ok_or_else(|| refused("no key of the provider verifies it, or it has expired"))?;
        let accounts = self.accounts()?;
        let account = accounts
            .iter()
            .find(|a| a.external_subject.as_deref() == Some(claims.sub.as_str()))
            .or_else(|| {
                claims.fhir_user.as_deref().and_then(|fhir_user| {
                    accounts
                        .iter()
                        .find(|a| a.fhir_user().as_deref() == Some(fhir_user))
                })
            })
            .ok_or_else(|| refused("no account is linked to its subject"))?;
        let context = account.context(None)?;
        let scope = match &claims.scope {
            Some(scope) => crate::scope::Scopes::parse(scope)
                .map_err(|_| refused("its scope is not SMART scopes"))?
                .to_v2_string(),
            None => account.default_scope().to_owned(),
        };
        let jti = claims
            .jti
            .unwrap_or_else(|| format!("external-{}", claims.sub));
        Ok(AccessClaims {
            iss: provider.issuer.clone(),
            aud: audience,
            sub: account.name.clone(),
            exp: claims.exp,
            iat: claims.iat.unwrap_or(0),
            fam: jti.clone(),
            jti,
            scope,
            client_id: None,
            fhir_user: context.fhir_user,
            patient: context.patient,
            organization: context.organization,
            kind: account.subject_kind(),
        })
    }
}
