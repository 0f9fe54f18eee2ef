//! SMART Backend Services: clients registered with RS384 and ES384 keys get tokens for their
//! scopes with `private_key_jwt` assertions; replayed, expired, misaddressed and foreign
//! assertions are refused.

use access::signin::Client;
use caller::Actor;
use serde_json::json;
use test_support::backend_tests;

use crate::support::*;

fn register(auth: &access::Authenticator, key: &ClientKey, organization: Option<&str>) -> Client {
    let mut metadata = json!({
        "client_name": "hospital system",
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"],
        "jwks": {"keys": [key.jwk]},
        "scope": "system/*.rs system/Patient.cruds",
    });
    if let Some(organization) = organization {
        metadata["organization"] = json!(organization);
    }
    auth.register_client(&metadata).unwrap()
}

fn grant(
    auth: &access::Authenticator,
    assertion: &str,
    scope: &str,
) -> Result<serde_json::Value, access::OAuthError> {
    auth.token(
        &form(&[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
            ("scope", scope),
        ]),
        &[TOKEN_ENDPOINT.to_owned()],
    )
}

backend_tests! {
    fn rs384_and_es384_assertions_get_tokens_and_a_jti_is_used_once(store) {
        let auth = authenticator(store);
        for key in [rsa_key("rsa-1"), ec_key("ec-1")] {
            let client = register(&auth, &key, Some("Organization/hospital-a"));
            let signed = assertion(&key, &client.client_id, TOKEN_ENDPOINT, "jti-1", 240);
            let answer = grant(&auth, &signed, "system/Observation.rs system/Patient.rs system/*.cud user/*.rs").unwrap();
            assert_eq!(answer["token_type"], "Bearer");
            assert_eq!(answer["scope"], "system/Observation.rs system/Patient.rs", "narrowed to what is registered");
            assert!(answer.get("refresh_token").is_none());
            let caller = auth.authenticate(answer["access_token"].as_str().unwrap(), None, None, None, "r").unwrap();
            assert_eq!(caller.actor, Actor::Client(client.client_id.clone()));
            assert_eq!(caller.organization.as_deref(), Some("Organization/hospital-a"));
            assert_eq!(caller.client_id.as_deref(), Some(client.client_id.as_str()));

            // The same assertion again: refused, as invalid_client.
            let replay = grant(&auth, &signed, "system/Observation.rs").unwrap_err();
            assert_eq!(replay.code, "invalid_client");
            assert!(replay.description.contains("jti"), "{replay:?}");
            assert_eq!(replay.http_status(), 401);
            // A new jti is fine; a scope not registered is invalid_scope.
            let fresh = assertion(&key, &client.client_id, TOKEN_ENDPOINT, "jti-2", 240);
            assert_eq!(grant(&auth, &fresh, "system/Observation.c").unwrap_err().code, "invalid_scope");
        }
    }

    fn bad_assertions_are_refused(store) {
        let auth = authenticator(store);
        let key = rsa_key("k");
        let client = register(&auth, &key, None);
        let id = client.client_id.as_str();
        let refused = |signed: &str| {
            let error = grant(&auth, signed, "system/*.rs").unwrap_err();
            assert_eq!(error.code, "invalid_client", "{error:?}");
            error.description
        };
        assert!(refused(&assertion(&key, id, TOKEN_ENDPOINT, "a", -120)).contains("expired"));
        assert!(refused(&assertion(&key, id, "https://elsewhere/auth/token", "b", 120)).contains("aud"));
        assert!(refused(&assertion(&key, id, TOKEN_ENDPOINT, "c", 3600)).contains("five minutes"));
        // Signed by a key the client never registered, or naming another client.
        refused(&assertion(&rsa_key("k"), id, TOKEN_ENDPOINT, "d", 120));
        refused(&assertion(&ec_key("k"), id, TOKEN_ENDPOINT, "e", 120));
        refused(&assertion(&key, "not-registered", TOKEN_ENDPOINT, "f", 120));
        // RS256 is not an algorithm clients may use.
        let mut rs256 = rsa_key("k");
        rs256.encoding = key.encoding.clone();
        rs256.algorithm = jsonwebtoken::Algorithm::RS256;
        assert!(refused(&assertion(&rs256, id, TOKEN_ENDPOINT, "g", 120)).contains("RS384"));
        refused("garbage");
        refused(&"x".repeat(20_000));
        // No assertion type, no client at all, an unknown grant type.
        let error = auth.token(&form(&[("grant_type", "client_credentials"), ("client_assertion", "x")]), &[]).unwrap_err();
        assert_eq!(error.code, "invalid_client");
        assert_eq!(auth.token(&form(&[("grant_type", "client_credentials")]), &[]).unwrap_err().code, "invalid_client");
        assert_eq!(auth.token(&form(&[("grant_type", "password")]), &[]).unwrap_err().code, "unsupported_grant_type");
        assert_eq!(auth.token(&form(&[]), &[]).unwrap_err().code, "invalid_request");
        let twice = form(&[("grant_type", "client_credentials"), ("grant_type", "client_credentials")]);
        assert_eq!(auth.token(&twice, &[]).unwrap_err().code, "invalid_request");
    }

    fn registration_metadata_is_checked(store) {
        let auth = authenticator(store);
        for (metadata, code) in [
            (json!("not an object"), "invalid_client_metadata"),
            (json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}), "invalid_client_metadata"),
            (json!({"grant_types": ["password"]}), "invalid_client_metadata"),
            (json!({"token_endpoint_auth_method": "client_secret_basic"}), "invalid_client_metadata"),
            (json!({"grant_types": ["authorization_code"], "token_endpoint_auth_method": "none"}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ["https://app/cb#frag"], "token_endpoint_auth_method": "none"}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ["javascript:alert(1)"], "token_endpoint_auth_method": "none"}), "invalid_redirect_uri"),
            (json!({"grant_types": ["client_credentials"], "jwks": {"keys": []}}), "invalid_client_metadata"),
            (json!({"grant_types": ["client_credentials"], "jwks": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}}), "invalid_client_metadata"),
            (json!({"redirect_uris": ["https://app/cb"], "token_endpoint_auth_method": "none", "scope": "nonsense"}), "invalid_client_metadata"),
            (json!({"redirect_uris": ["https://app/cb"], "token_endpoint_auth_method": "none", "organization": "Patient/1"}), "invalid_client_metadata"),
            (json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "not a url", "grant_types": []}), "invalid_client_metadata"),
            // Keys at a URL serve CDS Hooks' jku only: the token endpoint needs registered keys.
            (json!({"grant_types": ["client_credentials"], "jwks_uri": "https://app/jwks"}), "invalid_client_metadata"),
        ] {
            assert_eq!(auth.register_client(&metadata).unwrap_err().code, code, "{metadata}");
        }
        let public = auth.register_client(&json!({
            "redirect_uris": ["https://app.example.org/cb"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid fhirUser launch/patient patient/*.rs offline_access",
        })).unwrap();
        let metadata = public.to_metadata();
        assert_eq!(metadata["token_endpoint_auth_method"], "none");
        assert!(metadata["client_id"].as_str().unwrap().len() >= 16);
        assert_eq!(auth.clients().unwrap().len(), 1);
    }

    fn cds_hooks_jwts_authenticate_the_client_once_for_the_service(store) {
        let auth = authenticator(store);
        let service = "https://meridian.example/cds-services/order-sign";
        let audiences = [service.to_owned()];
        let key = ec_key("cds-1");
        let client = register(&auth, &key, Some("Organization/hospital-a"));
        let jwt = cds_jwt(&key, &client.client_id, service, "cds-jti-1", None);
        assert_eq!(auth.cds_jwt_key_url(&jwt).unwrap(), None);
        let verified = auth.verify_cds_jwt(&jwt, &audiences, None).unwrap();
        assert_eq!(verified.client_id, client.client_id);
        let caller = auth.client_caller(&verified, None, "r");
        assert_eq!(caller.actor, Actor::Client(client.client_id.clone()));
        assert_eq!(caller.organization.as_deref(), Some("Organization/hospital-a"));
        assert!(caller.scopes.iter().any(|s| s == "system/*.rs"), "{:?}", caller.scopes);
        // Replayed, for another service, or by a key the client did not register: refused.
        let replay = auth.verify_cds_jwt(&jwt, &audiences, None).unwrap_err();
        assert!(replay.description.contains("used before"), "{}", replay.description);
        let elsewhere = cds_jwt(&key, &client.client_id, "https://other.example/cds-services/x", "cds-jti-2", None);
        let error = auth.verify_cds_jwt(&elsewhere, &audiences, None).unwrap_err();
        assert!(error.description.contains("service's URL"), "{}", error.description);
        let stranger = ec_key("cds-1");
        let forged = cds_jwt(&stranger, &client.client_id, service, "cds-jti-3", None);
        assert!(auth.verify_cds_jwt(&forged, &audiences, None).is_err());
        // Without a kid in the header: refused.
        let mut header = jsonwebtoken::Header::new(key.algorithm);
        header.kid = None;
        let claims = json!({"iss": client.client_id, "sub": client.client_id, "aud": service, "exp": now() + 200, "jti": "cds-jti-4"});
        let no_kid = jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap();
        let error = auth.verify_cds_jwt(&no_kid, &audiences, None).unwrap_err();
        assert!(error.description.contains("kid"), "{}", error.description);
        // jku: only the client's registered jwks_uri, and then the keys found there verify.
        let other = ec_key("cds-2");
        let by_url = auth.register_client(&json!({
            "token_endpoint_auth_method": "private_key_jwt",
            "grant_types": [],
            "jwks_uri": "https://his.example/jwks.json",
            "scope": "system/*.rs",
        })).unwrap();
        let named = cds_jwt(&other, &by_url.client_id, service, "cds-jti-5", Some("https://his.example/jwks.json"));
        assert_eq!(auth.cds_jwt_key_url(&named).unwrap().as_deref(), Some("https://his.example/jwks.json"));
        let keys = json!({"keys": [other.jwk]});
        assert_eq!(auth.verify_cds_jwt(&named, &audiences, Some(&keys)).unwrap().client_id, by_url.client_id);
        let wrong_url = cds_jwt(&other, &by_url.client_id, service, "cds-jti-6", Some("https://attacker.example/jwks.json"));
        let error = auth.cds_jwt_key_url(&wrong_url).unwrap_err();
        assert!(error.description.contains("jku"), "{}", error.description);
    }
}
