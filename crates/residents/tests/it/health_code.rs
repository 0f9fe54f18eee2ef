//! The health code: issue, resolve, and every way a code is refused.

use residents::IdentityError;
use residents::health_code::{CodeKind, CodeRefusal, HealthCodeConfig, HealthCodes, KeyRing, qr};
use test_support::backend_tests;

use crate::support::*;

fn codes() -> HealthCodes {
    HealthCodes::new(
        KeyRing::generate(1_700_000_000).unwrap(),
        HealthCodeConfig::default(),
    )
}

fn refusal(result: Result<residents::health_code::Resolved, IdentityError>) -> CodeRefusal {
    match result {
        Err(IdentityError::HealthCode(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn decoding_tells_malformed_tampered_and_expired_apart() {
    let codes = codes();
    let code = codes
        .encode(CodeKind::Dynamic, "person-1", 1_000, 1_300, [7; 8])
        .unwrap();
    assert!(code.len() < 160, "compact: {} characters", code.len());
    let uuid = codes
        .encode(
            CodeKind::Dynamic,
            "6311b7c1-2cdc-491d-ba6e-e5c213ca4dd8",
            1,
            2,
            [0; 8],
        )
        .unwrap();
    assert_eq!(uuid.len(), 168, "what docs/decisions/0007 says");
    let token = codes.decode(&code, 1_100).unwrap();
    assert_eq!(token.person, "person-1");
    assert_eq!(token.expires, 1_300);
    assert_eq!(codes.decode(&code, 1_301), Err(CodeRefusal::Expired));
    // Change one character of the payload: the signature no longer holds.
    let mut tampered: Vec<char> = code.chars().collect();
    let i = 12;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    assert_eq!(codes.decode(&tampered, 1_100), Err(CodeRefusal::Tampered));
    for malformed in ["", "hello", "MHC1:", "MHC1:!!!!", "MHC1:AAAA"] {
        assert_eq!(
            codes.decode(malformed, 1_100),
            Err(CodeRefusal::Malformed),
            "{malformed:?}"
        );
    }
    // Another platform's key does not verify here.
    let other = HealthCodes::new(KeyRing::generate(0).unwrap(), HealthCodeConfig::default());
    assert_eq!(other.decode(&code, 1_100), Err(CodeRefusal::Tampered));
}

#[test]
fn rotated_keys_keep_verifying_and_are_published() {
    let codes = codes();
    let before = codes
        .encode(CodeKind::Dynamic, "p", 10, 20, [1; 8])
        .unwrap();
    codes.rotate().unwrap();
    let after = codes
        .encode(CodeKind::Dynamic, "p", 10, 20, [1; 8])
        .unwrap();
    assert_ne!(before, after, "a new key signs");
    assert!(codes.decode(&before, 15).is_ok());
    let jwks = codes.jwks();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    assert!(jwks["keys"][0].get("d").is_none(), "no secrets published");
    let ring = KeyRing::generate(5).unwrap();
    let again = KeyRing::from_json(&ring.to_json()).unwrap();
    assert_eq!(ring.jwks(), again.jwks());
    assert!(KeyRing::from_json(&serde_json::json!({"keys": []})).is_err());
}

#[test]
fn qr_images_are_well_formed() {
    let svg = qr::svg("MHC1:abc").unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<path"));
    let png = qr::png("MHC1:abc").unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let (_, width) = qr::matrix("MHC1:abc").unwrap();
    let pixels = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    assert_eq!(pixels as usize, (width + 8) * 6);
    assert!(
        png.ends_with(&[0xAE, 0x42, 0x60, 0x82]),
        "IEND's CRC closes the file"
    );
}

backend_tests! {
    fn an_issued_code_resolves_to_the_resident_and_both_are_audited(store) {
        let indexed = indexed(store);
        let codes = codes();
        let a = create(&indexed, patient("张", "伟", "1949-12-31", Some("11010519491231002X"), ("urn:x:mrn", "1")));
        let b = create(&indexed, patient("张", "伟", "1949-12-31", Some("11010519491231002X"), ("urn:y:mrn", "2")));
        let issued = codes.issue(&indexed.mpi, &indexed.repository, &ctx(), &b, CodeKind::Dynamic).unwrap();
        assert!(issued.pin.is_none());
        let resolved = codes.resolve(&indexed.mpi, &indexed.repository, &ctx(), &issued.code, None).unwrap();
        assert_eq!(resolved.person.resource_type, "Person");
        let mut ids: Vec<String> = resolved.patients.iter().map(|p| p.id.clone()).collect();
        ids.sort();
        let mut expected = vec![a, b.clone()];
        expected.sort();
        assert_eq!(ids, expected);
        let events: Vec<String> = find(&indexed, "AuditEvent", &[])
            .iter()
            .map(|e| e["subtype"][0]["code"].as_str().unwrap().to_owned())
            .filter(|c| c.starts_with("health-code"))
            .collect();
        assert_eq!(events.len(), 2, "{events:?}");
        let audit = find(&indexed, "AuditEvent", &[]).into_iter().find(|e| e["subtype"][0]["code"] == "health-code-resolve").unwrap();
        assert_eq!(audit["agent"][0]["who"]["reference"], "Practitioner/clerk-1");
        assert_eq!(audit["agent"][0]["location"]["display"], "Organization/county-hospital");

        // Revoked: refused, and the refusal names no one.
        codes.revoke(&indexed.mpi, &indexed.repository, &ctx(), &issued.code).unwrap();
        assert_eq!(refusal(codes.resolve(&indexed.mpi, &indexed.repository, &ctx(), &issued.code, None)), CodeRefusal::Revoked);
        assert!(codes.issue(&indexed.mpi, &indexed.repository, &ctx(), "no-such-patient", CodeKind::Dynamic).is_err());
    }

    fn a_printed_code_needs_its_pin_and_a_new_one_voids_the_old(store) {
        let indexed = indexed(store);
        let codes = codes();
        let a = create(&indexed, patient("张", "伟", "1949-12-31", Some("11010519491231002X"), ("urn:x:mrn", "1")));
        let printed = codes.issue(&indexed.mpi, &indexed.repository, &ctx(), &a, CodeKind::Printed).unwrap();
        let pin = printed.pin.clone().unwrap();
        assert_eq!(pin.len(), 6);
        let resolve = |pin: Option<&str>| codes.resolve(&indexed.mpi, &indexed.repository, &ctx(), &printed.code, pin);
        assert_eq!(refusal(resolve(None)), CodeRefusal::PinRequired);
        let wrong = if pin == "000000" { "111111" } else { "000000" };
        assert_eq!(refusal(resolve(Some(wrong))), CodeRefusal::WrongPin);
        assert!(resolve(Some(&pin)).is_ok());
        // Enough wrong PINs revoke the code, even for the right PIN afterwards.
        for _ in 0..HealthCodeConfig::default().max_pin_attempts {
            let _ = resolve(Some(wrong));
        }
        assert_eq!(refusal(resolve(Some(&pin))), CodeRefusal::Revoked);
        // A reprint works, and voids the one before.
        let reprint = codes.issue(&indexed.mpi, &indexed.repository, &ctx(), &a, CodeKind::Printed).unwrap();
        let first = codes.issue(&indexed.mpi, &indexed.repository, &ctx(), &a, CodeKind::Printed).unwrap();
        assert_eq!(refusal(codes.resolve(&indexed.mpi, &indexed.repository, &ctx(), &reprint.code, reprint.pin.as_deref())), CodeRefusal::Revoked);
        assert!(codes.resolve(&indexed.mpi, &indexed.repository, &ctx(), &first.code, first.pin.as_deref()).is_ok());
    }

    fn an_expired_code_is_refused_as_expired(store) {
        let indexed = indexed(store);
        let codes = HealthCodes::new(KeyRing::generate(0).unwrap(), HealthCodeConfig { validity: -1, ..HealthCodeConfig::default() });
        let a = create(&indexed, patient("张", "伟", "1949-12-31", None, ("urn:x:mrn", "1")));
        let issued = codes.issue(&indexed.mpi, &indexed.repository, &ctx(), &a, CodeKind::Dynamic).unwrap();
        assert_eq!(refusal(codes.resolve(&indexed.mpi, &indexed.repository, &ctx(), &issued.code, None)), CodeRefusal::Expired);
    }
}
