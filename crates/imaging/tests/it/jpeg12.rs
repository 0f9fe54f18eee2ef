//! The 12-bit lossy JPEG decoder against a reference decoder: `JPGExtended.dcm`'s codestream
//! (pydicom's test files) and the same picture re-encoded with restart intervals by the
//! decoder's own test tool, each with what libjpeg-turbo 3.1.3 decodes it to (gzip'd u16 little
//! endian, `tests/jpeg12`). A lossy decoder's IDCT may round differently: every sample within
//! 1 of the reference, and nearly all equal.

use std::io::Read;

fn folder() -> String {
    format!("{}/tests/jpeg12", env!("CARGO_MANIFEST_DIR"))
}

fn reference(name: &str) -> Vec<u16> {
    let gz = std::fs::read(format!("{}/{name}.turbo.raw.gz", folder())).unwrap();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut raw)
        .unwrap();
    raw.chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn twelve_bit_streams_decode_within_one_of_the_reference() {
    for name in ["JPGExtended", "t12_jpeglossy_rst10"] {
        let stream = std::fs::read(format!("{}/{name}.jpg", folder())).unwrap();
        let image = imaging::jpeg12::decode(&stream).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (image.width, image.height, image.components, image.precision),
            (256, 1024, 1, 12)
        );
        let expected = reference(name);
        assert_eq!(image.samples.len(), expected.len(), "{name}");
        let mut equal = 0;
        for (ours, theirs) in image.samples.iter().zip(&expected) {
            assert!(
                ours.abs_diff(*theirs) <= 1,
                "{name}: {ours} against {theirs}"
            );
            equal += usize::from(ours == theirs);
        }
        assert!(
            equal * 100 >= expected.len() * 98,
            "{name}: {equal} of {} equal",
            expected.len()
        );
    }
}

#[test]
fn damaged_streams_never_panic() {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let original = std::fs::read(format!("{}/JPGExtended.jpg", folder())).unwrap();
    let mut refused = 0;
    for _ in 0..600 {
        let mut damaged = original.clone();
        match next() % 3 {
            0 => damaged.truncate((next() as usize) % damaged.len()),
            1 => {
                let at = (next() as usize) % damaged.len();
                damaged[at] ^= 1 << (next() % 8);
            }
            _ => {
                let at = (next() as usize) % damaged.len();
                damaged[at] = next() as u8;
            }
        }
        match imaging::jpeg12::decode(&damaged) {
            Ok(image) => assert!(image.samples.iter().all(|s| *s < 4096)),
            Err(_) => refused += 1,
        }
    }
    assert!(refused >= 150, "{refused} of 600 refused");
}
