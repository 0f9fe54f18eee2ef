//! How resources are kept on disk: compressed with zstd and a dictionary trained on FHIR
//! resources (`dictionaries/`, made by `cargo run -p xtask -- train-dictionary`), which shrinks
//! a typical resource about six-fold where plain zstd manages two (docs/decisions/0005).
//!
//! The first byte says how the rest is encoded: `{` is plain JSON (how the first rows were
//! written, and still readable), `1` is zstd with dictionary 1. A new dictionary gets a new
//! number; a shipped one never changes, since stored rows name it.

use std::cell::RefCell;
use std::sync::OnceLock;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

use crate::StoreError;

const DICTIONARY_1: &[u8] = include_bytes!("../dictionaries/fhir-r4-1.zdict");
const TAG_ZSTD_DICTIONARY_1: u8 = 1;
/// Fast and, with a dictionary, within a few percent of the higher levels' ratio.
const LEVEL: i32 = 3;
/// No resource is larger than the server's largest body; a bound for decompression.
const MAX_DECODED: usize = 256 * 1024 * 1024;

fn encoder_dictionary() -> &'static EncoderDictionary<'static> {
    static DICTIONARY: OnceLock<EncoderDictionary<'static>> = OnceLock::new();
    DICTIONARY.get_or_init(|| EncoderDictionary::copy(DICTIONARY_1, LEVEL))
}

fn decoder_dictionary() -> &'static DecoderDictionary<'static> {
    static DICTIONARY: OnceLock<DecoderDictionary<'static>> = OnceLock::new();
    DICTIONARY.get_or_init(|| DecoderDictionary::copy(DICTIONARY_1))
}

thread_local! {
    // One context per thread: creating one costs more than compressing a resource.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// The stored form of a resource's JSON.
pub fn encode(json: &[u8]) -> Result<Vec<u8>, StoreError> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(
                Compressor::with_prepared_dictionary(encoder_dictionary())
                    .map_err(|e| StoreError::Internal(format!("zstd compressor: {e}")))?,
            );
        }
        let compressor = slot.as_mut().expect("set above");
        let mut out = Vec::with_capacity(json.len() / 4 + 16);
        out.push(TAG_ZSTD_DICTIONARY_1);
        let compressed = compressor
            .compress(json)
            .map_err(|e| StoreError::Internal(format!("compressing a resource: {e}")))?;
        out.extend_from_slice(&compressed);
        Ok(out)
    })
}

/// A resource's JSON from its stored form.
pub fn decode(stored: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    match stored.first() {
        None | Some(b'{') => Ok(stored),
        Some(&TAG_ZSTD_DICTIONARY_1) => DECOMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(
                    Decompressor::with_prepared_dictionary(decoder_dictionary())
                        .map_err(|e| StoreError::Internal(format!("zstd decompressor: {e}")))?,
                );
            }
            let decompressor = slot.as_mut().expect("set above");
            let capacity = Decompressor::upper_bound(&stored[1..])
                .unwrap_or(MAX_DECODED)
                .min(MAX_DECODED);
            decompressor
                .decompress(&stored[1..], capacity)
                .map_err(|e| StoreError::Internal(format!("decompressing a stored resource: {e}")))
        }),
        Some(other) => Err(StoreError::Internal(format!(
            "stored resource in unknown encoding {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_round_trip_and_shrink() {
        let json = br#"{"resourceType":"Observation","id":"o1","meta":{"versionId":"1","lastUpdated":"2024-05-01T08:30:00.000Z"},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs","display":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8302-2","display":"Body Height"}],"text":"Body Height"},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2024-05-01T08:30:00+08:00","valueQuantity":{"value":172.5,"unit":"cm","system":"http://unitsofmeasure.org","code":"cm"}}"#;
        let stored = encode(json).unwrap();
        assert_eq!(stored[0], TAG_ZSTD_DICTIONARY_1);
        assert!(
            stored.len() * 3 < json.len(),
            "{} -> {}",
            json.len(),
            stored.len()
        );
        assert_eq!(decode(stored).unwrap(), json);
    }

    #[test]
    fn plain_json_rows_still_read() {
        assert_eq!(decode(b"{\"a\":1}".to_vec()).unwrap(), b"{\"a\":1}");
        assert!(decode(vec![7, 1, 2]).is_err());
        assert!(
            decode(vec![TAG_ZSTD_DICTIONARY_1, 0xFF, 0xFF]).is_err(),
            "garbage is an error, not a panic"
        );
    }
}
