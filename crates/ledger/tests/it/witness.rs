use ledger::MemoryTiles;
use ledger::hash::leaf_hash;
use ledger::note::{ALG_COSIGNATURE, ALG_ED25519, Checkpoint, Note, NoteSigner};
use ledger::witness::{AddCheckpoint, Witnessed, cosign};

const ORIGIN: &str = "meridian.example/ledger";

fn signed(log: &NoteSigner, tiles: &mut MemoryTiles, size: u64) -> String {
    let root = ledger::Tree::new(tiles, size).root().unwrap();
    let text = Checkpoint {
        origin: ORIGIN.into(),
        size,
        root,
    }
    .text();
    Note {
        signatures: vec![log.sign(&text, 0)],
        text,
    }
    .to_string()
}

fn request(tiles: &mut MemoryTiles, log: &NoteSigner, old: u64, size: u64) -> AddCheckpoint {
    let proof = ledger::Tree::new(tiles, size)
        .consistency_proof(old)
        .unwrap();
    AddCheckpoint {
        old,
        proof,
        checkpoint: signed(log, tiles, size),
    }
}

#[test]
fn the_witness_cosigns_a_growing_log_and_refuses_a_fork() {
    let log = NoteSigner::from_seed(ORIGIN, ALG_ED25519, [3; 32]).unwrap();
    let witness = NoteSigner::from_seed("witness.example/w", ALG_COSIGNATURE, [4; 32]).unwrap();
    let keys = [log.verifier()];
    let mut tiles = MemoryTiles::default();
    tiles.push(&(0..10).map(|i| leaf_hash(&[i])).collect::<Vec<_>>());

    // The request travels as text and parses back the same.
    let first = request(&mut tiles, &log, 0, 10);
    assert_eq!(AddCheckpoint::parse(&first.body()).unwrap(), first);
    let (state, line) = cosign(&witness, &keys, None, &first, 100).unwrap();
    assert_eq!(state.size, 10);
    let mut note = Note::parse(&first.checkpoint).unwrap();
    note.add(ledger::note::NoteSignature::parse_line(line.trim_end()).unwrap());
    assert!(note.signed_by(&witness.verifier()));

    tiles.push(&(10..30).map(|i| leaf_hash(&[i])).collect::<Vec<_>>());
    let second = request(&mut tiles, &log, 10, 30);
    let (state, _) = cosign(&witness, &keys, Some(&state), &second, 101).unwrap();
    assert_eq!(state.size, 30);

    // A stale old size: 409 with the size the witness holds.
    let stale = request(&mut tiles, &log, 10, 30);
    let refusal = cosign(&witness, &keys, Some(&state), &stale, 102).unwrap_err();
    assert_eq!((refusal.status, refusal.size), (409, Some(30)));

    // A fork: another history of 40 leaves whose first 30 differ.
    let mut forked = MemoryTiles::default();
    forked.push(&(0..40).map(|i| leaf_hash(&[i, 1])).collect::<Vec<_>>());
    let fork = request(&mut forked, &log, 30, 40);
    assert_eq!(
        cosign(&witness, &keys, Some(&state), &fork, 103)
            .unwrap_err()
            .status,
        422
    );
    // The same size with another root is a fork too.
    let same_size = AddCheckpoint {
        old: 30,
        proof: vec![],
        checkpoint: signed(&log, &mut forked, 30),
    };
    assert_eq!(
        cosign(&witness, &keys, Some(&state), &same_size, 104)
            .unwrap_err()
            .status,
        409
    );

    // Signed by a key the witness does not trust, or for a log it does not know.
    let stranger = NoteSigner::from_seed(ORIGIN, ALG_ED25519, [5; 32]).unwrap();
    let unsigned = request(&mut tiles, &stranger, 30, 30);
    assert_eq!(
        cosign(&witness, &keys, Some(&state), &unsigned, 105)
            .unwrap_err()
            .status,
        403
    );
    let other = NoteSigner::from_seed("other.example/log", ALG_ED25519, [3; 32]).unwrap();
    assert_eq!(
        cosign(&witness, &[other.verifier()], Some(&state), &first, 106)
            .unwrap_err()
            .status,
        404
    );
    let state_before = Witnessed {
        size: 30,
        root: state.root,
    };
    assert_eq!(state_before, state);
}

#[test]
fn malformed_requests_are_400() {
    for bad in [
        "",
        "old 1\n",
        "old x\n\nc",
        "old 01\n\nc",
        "old 1\nnot base64\n\nc",
        "new 1\n\nc",
    ] {
        assert_eq!(
            AddCheckpoint::parse(bad).unwrap_err().status,
            400,
            "{bad:?}"
        );
    }
    let witness = NoteSigner::from_seed("w", ALG_COSIGNATURE, [4; 32]).unwrap();
    let request = AddCheckpoint {
        old: 0,
        proof: vec![],
        checkpoint: "garbage".into(),
    };
    assert_eq!(
        cosign(&witness, &[], None, &request, 0).unwrap_err().status,
        400
    );
}
