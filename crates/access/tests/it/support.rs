//! Helpers: an authenticator over a test store with cheap password hashes, accounts of every
//! kind, clients with RS384 and ES384 keys (`test_support::signin`), and signing with the
//! server's own key.

use std::sync::Arc;

use access::signin::{AccountKind, PasswordCost, RoleLink};
use access::{AuthConfig, Authenticator};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;
use store::Store;
pub use test_support::signin::{ClientKey, assertion, cds_jwt, ec_key, now, pkce, rsa_key};

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
