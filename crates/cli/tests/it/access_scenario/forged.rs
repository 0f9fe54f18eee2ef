//! Forged tokens of every kind against the real server.

use super::*;

impl Region {
    /// Forged tokens of every kind: 401 with `WWW-Authenticate` and an OperationOutcome.
    pub(super) fn forged_tokens_are_refused(&self, genuine: &str) {
        let (status, _, body) = self.get(genuine, "/fhir/Patient");
        assert_eq!(status, 200, "the genuine token works: {body}");
        let parts: Vec<&str> = genuine.split('.').collect();
        assert_eq!(parts.len(), 3, "{genuine}");
        let jose_header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        // alg none, the signature dropped.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
            parts[1]
        );
        // HS256 with the server's published key as the secret.
        let (_, _, jwks) = send_as(
            self.serving.address,
            None,
            "GET",
            &self.endpoint("jwks_uri"),
            &[],
            "",
        );
        let mut hs256 = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        hs256.kid = jose_header["kid"].as_str().map(str::to_owned);
        let hs256 = jsonwebtoken::encode(
            &hs256,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(jwks.as_bytes()),
        )
        .unwrap();
        // B's token claiming to be A's.
        let mut claims_a = claims.clone();
        if claims_a.get("organization").is_some() {
            claims_a["organization"] = json!("Organization/A");
        } else {
            claims_a["sub"] = json!("someone-else");
        }
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims_a.to_string()),
            parts[2]
        );
        let audience = format!("{}/fhir", self.origin);
        // Signed by another server's key, for this audience.
        let elsewhere = test_support::sqlite();
        let other =
            Authenticator::open(elsewhere.store.clone(), AuthConfig::new(&audience)).unwrap();
        other
            .add_account("admin", access::signin::AccountKind::Administrator, None)
            .unwrap();
        let other_key = other.issue_for_account("admin", None, 600).unwrap();
        // Signed with this server's own key: expired, and for another audience.
        let store = self.serving.open_store();
        let own = Authenticator::open(store.clone(), AuthConfig::new(&audience)).unwrap();
        let expired = own.issue_for_account("admin", None, -600).unwrap();
        let wrong_audience =
            Authenticator::open(store, AuthConfig::new("https://elsewhere.example.org/fhir"))
                .unwrap()
                .issue_for_account("admin", None, 600)
                .unwrap();
        let oversized = format!("{}.{}.{}", parts[0], "A".repeat(9000), parts[2]);
        for (kind, forged) in [
            ("alg none", none),
            ("HS256 with the public key", hs256),
            ("tampered claims", tampered),
            ("another server's key", other_key),
            ("expired", expired),
            ("another audience", wrong_audience),
            ("oversized", oversized),
            ("garbage", "garbage".to_owned()),
            ("three empty parts", "..".to_owned()),
            ("not base64", "a.b.c".to_owned()),
        ] {
            for path in ["/fhir/Patient", "/fhir/Observation?_total=accurate"] {
                let (status, headers, body) =
                    send_as(self.serving.address, Some(&forged), "GET", path, &[], "");
                assert_eq!(status, 401, "{kind} at {path}: {body}");
                let challenge = header(&headers, "www-authenticate")
                    .unwrap_or_else(|| panic!("{kind}: no WWW-Authenticate"));
                assert!(
                    challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
                    "{kind}: {challenge}"
                );
                assert_eq!(json_of(&body)["resourceType"], "OperationOutcome", "{kind}");
            }
        }
        // No token at all.
        let (status, headers, _) =
            send_as(self.serving.address, None, "GET", "/fhir/Patient", &[], "");
        assert_eq!(status, 401);
        assert!(header(&headers, "www-authenticate").is_some());
    }
}
