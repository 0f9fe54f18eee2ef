//! Bytes as a witness's `add-checkpoint` request body (an old size, proof lines, a signed
//! checkpoint): parsed, then decided by a witness that trusts one log key. Nothing may panic;
//! a note that parses must print back to itself; a proof that verifies is only ever one for the
//! sizes it claims. The verifier key and checkpoint parsers get the same bytes.
#![no_main]

use ledger::note::{ALG_COSIGNATURE, ALG_ED25519, Checkpoint, Note, NoteSigner, VerifierKey};
use ledger::witness::{AddCheckpoint, Witnessed, cosign};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = VerifierKey::parse(text);
    let _ = Checkpoint::parse(text);
    if let Ok(note) = Note::parse(text) {
        assert_eq!(Note::parse(&note.to_string()), Ok(note));
    }
    let log = NoteSigner::from_seed("fuzz.example/log", ALG_ED25519, [1; 32]).unwrap();
    let witness = NoteSigner::from_seed("fuzz.example/w", ALG_COSIGNATURE, [2; 32]).unwrap();
    let Ok(request) = AddCheckpoint::parse(text) else {
        return;
    };
    let last = Witnessed {
        size: 7,
        root: ledger::leaf_hash(b"seven"),
    };
    let _ = cosign(&witness, &[log.verifier()], None, &request, 0);
    let _ = cosign(&witness, &[log.verifier()], Some(&last), &request, 0);
    // The proof lines as a consistency proof between arbitrary sizes: never a panic.
    let sizes = [request.old, request.old.wrapping_mul(3) ^ 5];
    let _ = ledger::tree::verify_consistency(sizes[0], sizes[1], &last.root, &last.root, &request.proof);
    let _ = ledger::tree::verify_inclusion(sizes[0], sizes[1], &last.root, &request.proof, &last.root);
});
