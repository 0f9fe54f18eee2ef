//! Access tokens: the callers they make, and every kind of forged or stale token refused.

use access::signin::{AccountKind, MAX_TOKEN_BYTES};
use access::{AuthError, Authenticator};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caller::Actor;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use test_support::backend_tests;

use crate::support::*;

fn refused(auth: &Authenticator, token: &str) -> String {
    match auth.authenticate(token, None, None, None, "req") {
        Err(AuthError::InvalidToken(message)) => message,
        other => panic!("{token:.60} was not refused as invalid: {other:?}"),
    }
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

backend_tests! {
    fn each_kind_of_account_becomes_its_caller(store) {
        let auth = authenticator(store);
        accounts(&auth);

        let admin = auth.issue_for_account("admin", None, 600).unwrap();
        let caller = auth.authenticate(&admin, None, None, None, "r1").unwrap();
        assert_eq!(caller.actor, Actor::Administrator("admin".into()));
        assert_eq!(caller.scopes, ["system/*.cruds"]);
        assert_eq!((caller.purpose.as_str(), caller.request_id.as_str()), ("TREAT", "r1"));

        let li = auth.issue_for_account("dr-li", Some("user/*.rs openid"), 600).unwrap();
        let caller = auth.authenticate(&li, Some("ETREAT"), Some("unconscious, 无法联系家属"), Some("10.0.0.9".parse().unwrap()), "r2").unwrap();
        assert_eq!(caller.actor, Actor::User("Practitioner/li".into()));
        assert_eq!(caller.organization.as_deref(), Some("Organization/hospital-a"));
        assert_eq!(caller.scopes, ["user/*.rs", "openid"]);
        assert_eq!(caller.purpose, "ETREAT");
        assert_eq!(caller.break_glass.as_deref(), Some("unconscious, 无法联系家属"));
        assert_eq!(caller.address, Some("10.0.0.9".parse().unwrap()));
        // A reason without ETREAT is no break-glass.
        let caller = auth.authenticate(&li, Some("TREAT"), Some("curious"), None, "r3").unwrap();
        assert_eq!(caller.break_glass, None);
        assert!(matches!(auth.authenticate(&li, Some("TREAT; DROP"), None, None, "r"), Err(AuthError::InvalidRequest(_))));

        let zhao = auth.issue_for_account("resident-zhao", None, 600).unwrap();
        let caller = auth.authenticate(&zhao, None, None, None, "r4").unwrap();
        assert_eq!(caller.actor, Actor::User("Patient/zhao".into()));
        assert_eq!(caller.patient.as_deref(), Some("Patient/zhao"));
        assert_eq!(caller.scopes, ["patient/*.cruds"]);

        // v1 spellings come back in v2.
        let v1 = auth.issue_for_account("dr-wang", Some("user/Observation.read"), 600).unwrap();
        assert_eq!(auth.authenticate(&v1, None, None, None, "r").unwrap().scopes, ["user/Observation.rs"]);
        let claims = claims_of(&v1);
        assert_eq!(claims["aud"], AUDIENCE);
        assert_eq!(claims["iss"], AUDIENCE);
        assert_eq!(claims["fhirUser"], "Practitioner/wang");
        assert_eq!(claims["kind"], "practitioner");
        assert!(claims["jti"].is_string() && claims["fam"].is_string());
    }

    fn an_account_added_by_another_process_signs_in_at_once(store) {
        let server = authenticator(store);
        // `meridian user add` while the server runs: another authenticator on the store.
        let command_line = Authenticator::open(store.reopen(), config()).unwrap();
        command_line.add_account("nurse-sun", AccountKind::Resident { patient: "Patient/sun".into() }, Some("pw")).unwrap();
        let token = command_line.issue_for_account("nurse-sun", None, 60).unwrap();
        // One key for both: the server verifies what the command line signed.
        assert_eq!(server.authenticate(&token, None, None, None, "r").unwrap().patient.as_deref(), Some("Patient/sun"));
        assert_eq!(server.account("nurse-sun").unwrap().unwrap().name, "nurse-sun");
        assert_eq!(server.jwks(), command_line.jwks());
    }

    fn forged_and_stale_tokens_are_refused(store) {
        let auth = authenticator(store);
        accounts(&auth);
        let good = auth.issue_for_account("dr-wang", None, 600).unwrap();
        assert!(auth.authenticate(&good, None, None, None, "r").is_ok());
        let claims = claims_of(&good);
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(good.split('.').next().unwrap()).unwrap()).unwrap();
        let kid = header["kid"].as_str().unwrap().to_owned();

        // alg: none, with and without a signature part.
        let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
        let payload = good.split('.').nth(1).unwrap();
        refused(&auth, &format!("{none_header}.{payload}."));
        refused(&auth, &format!("{none_header}.{payload}"));

        // HS256 keyed with the public key (the JWKS text, and the raw point).
        let jwks = auth.jwks().to_string();
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some(kid.clone());
        refused(&auth, &jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(jwks.as_bytes())).unwrap());
        let x = auth.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        refused(&auth, &jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(x.as_bytes())).unwrap());

        // Tampered claims, the signature kept.
        let mut tampered = claims.clone();
        tampered["kind"] = json!("administrator");
        tampered["sub"] = json!("admin");
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(tampered.to_string()), parts[2]);
        assert!(refused(&auth, &forged).contains("signature"));
        // The signature of another token.
        let other = auth.issue_for_account("admin", None, 600).unwrap();
        refused(&auth, &format!("{}.{}.{}", parts[0], parts[1], other.split('.').nth(2).unwrap()));

        // Another P-256 key, naming ours; and another server's token altogether.
        let foreign = test_support::sqlite();
        let stranger = authenticator(&foreign);
        stranger.add_account("dr-wang", AccountKind::Administrator, Some("x")).unwrap();
        refused(&auth, &stranger.issue_for_account("dr-wang", None, 600).unwrap());
        let foreign_key = sign_with_server_key(foreign.store.as_ref(), &claims);
        let mut renamed: Vec<String> = foreign_key.split('.').map(str::to_owned).collect();
        renamed[0] = parts[0].to_owned();
        refused(&auth, &renamed.join("."));

        // Expired, wrong audience, wrong issuer: properly signed all the same.
        assert!(refused(&auth, &auth.issue_for_account("dr-wang", None, -3600).unwrap()).contains("expired"));
        let mut wrong = claims.clone();
        wrong["aud"] = json!("https://elsewhere.example.org/fhir");
        assert!(refused(&auth, &sign_with_server_key(store.store.as_ref(), &wrong)).contains("audience"));
        let mut wrong = claims.clone();
        wrong["iss"] = json!("https://elsewhere.example.org/fhir");
        assert!(refused(&auth, &sign_with_server_key(store.store.as_ref(), &wrong)).contains("issuer"));
        let mut missing = claims.clone();
        missing.as_object_mut().unwrap().remove("exp");
        refused(&auth, &sign_with_server_key(store.store.as_ref(), &missing));
        let mut unknown_scope = claims.clone();
        unknown_scope["scope"] = json!("admin/everything");
        refused(&auth, &sign_with_server_key(store.store.as_ref(), &unknown_scope));

        // Oversized and garbage.
        assert!(refused(&auth, &"a".repeat(MAX_TOKEN_BYTES + 1)).contains("too long"));
        for garbage in ["", ".", "..", "a.b.c", "Bearer x", "eyJhbGciOiJFUzI1NiJ9.e30.", "\u{0}\u{1}", "ü.ü.ü", &"e".repeat(5000)] {
            refused(&auth, garbage);
        }
        // A store written by no-one else still holds one key.
        assert_eq!(store.checkpoints_with_prefix("auth/key/").unwrap().len(), 1);
    }

    fn a_revoked_token_is_refused_and_introspection_says_so(store) {
        let auth = authenticator(store);
        accounts(&auth);
        let token = auth.issue_for_account("dr-wang", None, 600).unwrap();
        let answer = auth.introspect(&token).unwrap();
        assert_eq!(answer["active"], true);
        assert_eq!(answer["fhirUser"], "Practitioner/wang");
        assert_eq!(answer["organization"], "Organization/hospital-a");
        auth.revoke(&token).unwrap();
        assert!(refused(&auth, &token).contains("revoked"));
        // Another process on the store refuses it too.
        let other = Authenticator::open(store.reopen(), config()).unwrap();
        refused(&other, &token);
        assert_eq!(auth.introspect(&token).unwrap(), json!({"active": false}));
        assert_eq!(auth.introspect("garbage").unwrap(), json!({"active": false}));
        // Revoking nonsense is no error.
        auth.revoke("garbage").unwrap();
    }

    fn the_first_administrator_is_made_once(store) {
        let auth = authenticator(store);
        let password = auth.bootstrap_administrator("admin").unwrap().expect("a password");
        assert!(password.len() >= 20);
        assert_eq!(auth.bootstrap_administrator("admin").unwrap(), None);
        let account = auth.account("admin").unwrap().unwrap();
        assert_eq!(account.kind, AccountKind::Administrator);
        assert!(account.password_hash.unwrap().starts_with("$argon2id$"));
        assert_eq!(auth.accounts().unwrap().len(), 1);
    }
}

mod external {
    use super::*;
    use access::signin::ExternalProvider;

    const ISSUER: &str = "https://id.province.example.org";

    fn p256() -> (EncodingKey, String) {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let point = secret.public_key().to_encoded_point(false);
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "province-1",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        }]});
        (
            EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
            jwks.to_string(),
        )
    }

    fn external_token(key: &EncodingKey, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("province-1".into());
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    backend_tests! {
        fn an_external_providers_tokens_map_to_accounts(store) {
            let (key, jwks) = p256();
            let mut config = config();
            config.external = Some(ExternalProvider::new(ISSUER.into(), None, &jwks).unwrap());
            let auth = Authenticator::open(store.store.clone(), config).unwrap();
            accounts(&auth);
            auth.link_external_subject("dr-wang", "province-user-42").unwrap();
            let now = now();
            let by_subject = external_token(&key, json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "province-user-42", "exp": now + 300, "scope": "user/*.rs"}));
            let caller = auth.authenticate(&by_subject, None, None, None, "r").unwrap();
            assert_eq!(caller.actor, Actor::User("Practitioner/wang".into()));
            assert_eq!(caller.organization.as_deref(), Some("Organization/hospital-a"));
            assert_eq!(caller.scopes, ["user/*.rs"]);
            let by_fhir_user = external_token(&key, json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "someone", "fhirUser": "Patient/zhao", "exp": now + 300}));
            let caller = auth.authenticate(&by_fhir_user, None, None, None, "r").unwrap();
            assert_eq!(caller.patient.as_deref(), Some("Patient/zhao"));

            // Unknown people, other keys, other audiences, expired: refused.
            refused(&auth, &external_token(&key, json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "stranger", "exp": now + 300})));
            let (other, _) = p256();
            refused(&auth, &external_token(&other, json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "province-user-42", "exp": now + 300})));
            refused(&auth, &external_token(&key, json!({"iss": ISSUER, "aud": "https://other/fhir", "sub": "province-user-42", "exp": now + 300})));
            refused(&auth, &external_token(&key, json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "province-user-42", "exp": now - 300})));
            // Our own tokens still work beside them.
            let own = auth.issue_for_account("admin", None, 60).unwrap();
            assert!(auth.authenticate(&own, None, None, None, "r").is_ok());
            assert!(ExternalProvider::new(ISSUER.into(), None, "{\"keys\": []}").is_err());
            assert!(ExternalProvider::new(ISSUER.into(), None, "not json").is_err());
        }
    }
}

backend_tests! {
    fn expired_one_time_state_is_pruned_and_live_state_kept(store) {
        let auth = authenticator(store);
        accounts(&auth);
        let past = now() - 3600;
        let future = now() + 3600;
        let mut tx = store.begin().unwrap();
        for (name, value) in [
            ("auth/code/old", format!(r#"{{"expires":{past}}}"#)),
            ("auth/code/new", format!(r#"{{"expires":{future}}}"#)),
            ("auth/refresh-used/old", format!(r#"{{"family":"f","until":{past}}}"#)),
            ("auth/revoked/old", past.to_string()),
            ("auth/revoked/new", future.to_string()),
            ("auth/jti/c/old", past.to_string()),
            ("auth/jti/c/new", future.to_string()),
        ] {
            tx.set_checkpoint(name, Some(&value)).unwrap();
        }
        tx.commit().unwrap();
        assert_eq!(auth.prune_expired().unwrap(), 4);
        let left: Vec<String> = store.checkpoints_with_prefix("auth/").unwrap().into_iter().map(|(n, _)| n).collect();
        for kept in ["auth/code/new", "auth/revoked/new", "auth/jti/c/new", "auth/account/admin"] {
            assert!(left.iter().any(|n| n == kept), "{kept} went: {left:?}");
        }
        assert!(!left.iter().any(|n| n.ends_with("/old")), "{left:?}");
        // Keys and accounts are never pruned.
        assert_eq!(auth.prune_expired().unwrap(), 0);
        assert!(!store.checkpoints_with_prefix("auth/key/").unwrap().is_empty());
    }
}
