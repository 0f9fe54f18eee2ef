//! The JPEG-LS decoder against a reference decoder's output: codestreams cut from pydicom's
//! test files (lossless and near-lossless, 7 to 16 bits, grey and RGB in line and sample
//! interleave), each with the SHA-256 of what libjpeg (pylibjpeg-libjpeg 2.5) decodes it to
//! (`tests/jpegls/expected.txt`). Near-lossless decoding is deterministic too, so every sample
//! must be the same.

use sha2::{Digest, Sha256};

fn folder() -> String {
    format!("{}/tests/jpegls", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_codestream_decodes_to_the_reference_samples() {
    let expected = std::fs::read_to_string(format!("{}/expected.txt", folder())).unwrap();
    let mut checked = 0;
    for line in expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, width, height, components, bits, sha256] = fields[..] else {
            panic!("bad line {line}");
        };
        let codestream = std::fs::read(format!("{}/{name}", folder())).unwrap();
        let image = imaging::jpegls::decode(&codestream).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(image.width.to_string(), width, "{name}");
        assert_eq!(image.height.to_string(), height, "{name}");
        assert_eq!(image.components.to_string(), components, "{name}");
        assert_eq!(image.bits_per_sample.to_string(), bits, "{name}");
        let bytes: Vec<u8> = image.samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            digest, sha256,
            "{name}: samples differ from the reference decoder's"
        );
        checked += 1;
    }
    assert_eq!(checked, 8);
}

/// Damaged codestreams (cut short, bits flipped, bytes overwritten) are refused or decoded to
/// some image, never a panic or a hang: a deterministic pseudo-random walk over the vendored
/// streams.
#[test]
fn damaged_codestreams_never_panic() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut refused = 0;
    let mut variants = 0;
    for entry in std::fs::read_dir(folder()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jls") {
            continue;
        }
        let original = std::fs::read(&path).unwrap();
        for _ in 0..150 {
            let mut damaged = original.clone();
            match next() % 3 {
                0 => damaged.truncate((next() as usize) % damaged.len()),
                1 => {
                    for _ in 0..1 + next() % 4 {
                        let at = (next() as usize) % damaged.len();
                        damaged[at] ^= 1 << (next() % 8);
                    }
                }
                _ => {
                    let at = (next() as usize) % damaged.len();
                    damaged[at] = if next() % 2 == 0 { 0xFF } else { next() as u8 };
                }
            }
            variants += 1;
            if imaging::jpegls::decode(&damaged).is_err() {
                refused += 1;
            }
        }
    }
    assert_eq!(variants, 8 * 150);
    assert!(
        refused >= variants / 4,
        "only {refused} of {variants} refused"
    );
}
