//! Sign-in helpers shared by the tests of `access` (in process), `server` and `meridian` (over
//! HTTP): a client's RS384 or ES384 key pair made here, its `private_key_jwt` assertions, and
//! a PKCE verifier with its S256 challenge.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

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

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    use sha2::Digest;
    let verifier = format!("verifier-{}", "x".repeat(50));
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// `fields` as an `application/x-www-form-urlencoded` body (or a query string).
pub fn form_urlencoded(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `text` percent-encoded: every byte but RFC 3986's unreserved characters.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A CDS Hooks request's JWT (CDS Hooks 2.0: `iss` = `sub` = the client, `aud` the service's
/// URL, `jti`, `kid` in the header), naming `jku` when given.
pub fn cds_jwt(
    key: &ClientKey,
    client_id: &str,
    audience: &str,
    jti: &str,
    jku: Option<&str>,
) -> String {
    let mut header = Header::new(key.algorithm);
    header.kid = Some(key.kid.clone());
    header.jku = jku.map(str::to_owned);
    let now = now();
    jsonwebtoken::encode(
        &header,
        &json!({"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 240, "jti": jti}),
        &key.encoding,
    )
    .unwrap()
}
