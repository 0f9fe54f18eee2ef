use ledger::hash::leaf_hash;
use ledger::leaf::{LeafFields, leaf_input, parse_leaf};
use ledger::note::{ALG_COSIGNATURE, ALG_ED25519, Checkpoint, Note, NoteSigner, VerifierKey};

fn checkpoint(size: u64) -> Checkpoint {
    Checkpoint {
        origin: "meridian.example/ledger".into(),
        size,
        root: leaf_hash(b"root"),
    }
}

#[test]
fn a_checkpoint_signed_and_cosigned_verifies_by_its_published_keys() {
    let log = NoteSigner::from_seed("meridian.example/ledger", ALG_ED25519, [7; 32]).unwrap();
    let witness = NoteSigner::from_seed("witness.example/w1", ALG_COSIGNATURE, [9; 32]).unwrap();
    let text = checkpoint(42).text();
    let mut note = Note {
        text: text.clone(),
        signatures: vec![log.sign(&text, 0)],
    };
    note.add(witness.sign(&text, 1_700_000_000));
    let published = note.to_string();
    let parsed = Note::parse(&published).unwrap();
    assert_eq!(parsed, note);
    assert_eq!(Checkpoint::parse(&parsed.text).unwrap(), checkpoint(42));

    // Keys travel as name+hash+key and come back the same.
    let log_key = VerifierKey::parse(&log.verifier().to_string()).unwrap();
    let witness_key = VerifierKey::parse(&witness.verifier().to_string()).unwrap();
    assert!(parsed.signed_by(&log_key));
    assert!(parsed.signed_by(&witness_key));
    assert_eq!(
        parsed.signature_by(&witness_key).unwrap().cosigned_at(),
        Some(1_700_000_000)
    );

    // One changed byte of the text and neither verifies.
    let forged = Note {
        text: checkpoint(43).text(),
        signatures: parsed.signatures.clone(),
    };
    assert!(!forged.signed_by(&log_key));
    assert!(!forged.signed_by(&witness_key));
    // A key of another name is not asked.
    let other = NoteSigner::from_seed("other", ALG_ED25519, [7; 32]).unwrap();
    assert!(!parsed.signed_by(&other.verifier()));
}

#[test]
fn malformed_notes_and_keys_are_errors() {
    for bad in [
        "",
        "no blank line\n",
        "origin\n1\nAAAA\n\n",
        "origin\n1\nAAAA\n\n— name !!!\n",
        "origin\n1\nAAAA\n\nnot a signature\n",
    ] {
        assert!(Note::parse(bad).is_err(), "{bad:?}");
    }
    for bad in [
        "x",
        "a+b",
        "a+00000000+AQ==",
        "a+zz+AAAA",
        "a b+00000000+AQ==",
    ] {
        assert!(VerifierKey::parse(bad).is_err(), "{bad:?}");
    }
    let key = NoteSigner::from_seed("log", ALG_ED25519, [1; 32])
        .unwrap()
        .verifier()
        .to_string();
    let (head, tail) = key.split_at(5);
    let wrong_hash = format!("{head}{}", tail.replacen(&tail[..1], "0", 1));
    if wrong_hash != key {
        assert!(VerifierKey::parse(&wrong_hash).is_err());
    }
    for bad in ["o\n01\nAAAA\n", "o\n-1\n", "o\n1\nnot base64\n", "\n1\n"] {
        assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_leaf_input_is_canonical_json_and_reads_back() {
    let input = leaf_input(&LeafFields {
        resource_type: "Observation",
        id: "lab-1",
        version: 3,
        content: Some(br#"{"resourceType":"Observation"}"#),
        org: Some("Organization/7"),
        time: "2026-12-02T10:00:00.000000Z",
    });
    let text = String::from_utf8(input.clone()).unwrap();
    let sha = ledger::hash::sha256_hex(br#"{"resourceType":"Observation"}"#);
    assert_eq!(
        text,
        format!(
            r#"{{"id":"lab-1","org":"Organization/7","sha256":"{sha}","time":"2026-12-02T10:00:00.000000Z","type":"Observation","version":3}}"#
        )
    );
    let parsed = parse_leaf(&input).unwrap();
    assert_eq!(
        parsed.sha256,
        ledger::hash::sha256_hex(br#"{"resourceType":"Observation"}"#)
    );
    assert_eq!(parsed.org.as_deref(), Some("Organization/7"));
    let deleted = leaf_input(&LeafFields {
        resource_type: "Consent",
        id: "c",
        version: 2,
        content: None,
        org: None,
        time: "t",
    });
    let parsed = parse_leaf(&deleted).unwrap();
    assert_eq!(
        parsed.sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(parsed.org, None);
}
