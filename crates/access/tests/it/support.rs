//! Helpers: an authenticator over a test store with cheap password hashes, accounts of every
//! kind, clients with RS384 and ES384 keys made here, and signing with the server's own key.

use std::sync::Arc;

use access::signin::{AccountKind, PasswordCost, RoleLink};
use access::{AuthConfig, Authenticator};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use store::Store;

pub const AUDIENCE: &str = "https://hie.example.org/fhir";
pub const TOKEN_ENDPOINT: &str = "https://hie.example.org/auth/token";

pub fn config() -> AuthConfig {
    let mut config = AuthConfig::new(AUDIENCE);
    config.password = PasswordCost::TESTS;
    config
}

pub fn authenticator(store: &Arc<dyn Store>) -> Authenticator {
    Authenticator::open(Arc::clone(store), config()).unwrap()
}

/// Accounts: `admin`, `dr-li` (roles at two hospitals), `dr-wang` (one), `resident-zhao`.
pub fn accounts(auth: &Authenticator) {
    auth.add_account("admin", AccountKind::Administrator, Some("admin-secret"))
        .unwrap();
    let role = |id: &str, organization: &str, practitioner: &str| RoleLink {
        role: format!("PractitionerRole/{id}"),
        organization: Some(format!("Organization/{organization}")),
        practitioner: Some(format!("Practitioner/{practitioner}")),
    };
    auth.add_account(
        "dr-li",
        AccountKind::Practitioner {
            roles: vec![
                role("li-a", "hospital-a", "li"),
                role("li-b", "hospital-b", "li"),
            ],
        },
        Some("li-secret"),
    )
    .unwrap();
    auth.add_account(
        "dr-wang",
        AccountKind::Practitioner {
            roles: vec![role("wang-a", "hospital-a", "wang")],
        },
        Some("wang-secret"),
    )
    .unwrap();
    auth.add_account(
        "resident-zhao",
        AccountKind::Resident {
            patient: "Patient/zhao".into(),
        },
        Some("zhao-secret"),
    )
    .unwrap();
}

/// A client's key pair: its private key for signing assertions and its public JWK.
pub struct ClientKey {
    pub algorithm: Algorithm,
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

pub fn rsa_key(kid: &str) -> ClientKey {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    let der = private.to_pkcs1_der().unwrap();
    let public = private.to_public_key();
    ClientKey {
        algorithm: Algorithm::RS384,
        kid: kid.into(),
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk: json!({
            "kty": "RSA", "kid": kid, "alg": "RS384", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        }),
    }
}

pub fn ec_key(kid: &str) -> ClientKey {
    use p384::elliptic_curve::sec1::ToEncodedPoint;
    use p384::pkcs8::EncodePrivateKey;
    let secret = p384::SecretKey::random(&mut rand_core::OsRng);
    let der = secret.to_pkcs8_der().unwrap();
    let point = secret.public_key().to_encoded_point(false);
    ClientKey {
        algorithm: Algorithm::ES384,
        kid: kid.into(),
        encoding: EncodingKey::from_ec_der(der.as_bytes()),
        jwk: json!({
            "kty": "EC", "crv": "P-384", "kid": kid, "alg": "ES384", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        }),
    }
}

/// A `private_key_jwt` assertion by `client_id` with `key`, expiring in `seconds`.
pub fn assertion(
    key: &ClientKey,
    client_id: &str,
    audience: &str,
    jti: &str,
    seconds: i64,
) -> String {
    let mut header = Header::new(key.algorithm);
    header.kid = Some(key.kid.clone());
    let now = now();
    jsonwebtoken::encode(
        &header,
        &json!({"iss": client_id, "sub": client_id, "aud": audience, "exp": now + seconds, "jti": jti}),
        &key.encoding,
    )
    .unwrap()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Signs any claims with the server's own key, as the server would (for tokens that are
/// properly signed but wrong in another way).
pub fn sign_with_server_key(store: &dyn Store, claims: &Value) -> String {
    let (_, stored) = store
        .checkpoints_with_prefix("auth/key/")
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let stored: Value = serde_json::from_str(&stored).unwrap();
    let der = URL_SAFE_NO_PAD
        .decode(stored["pkcs8"].as_str().unwrap())
        .unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(stored["kid"].as_str().unwrap().to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&der)).unwrap()
}

/// The form of a request, as pairs.
pub fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    use sha2::Digest;
    let verifier = format!("verifier-{}", "x".repeat(50));
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}
