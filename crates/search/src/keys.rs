//! Stable 64-bit keys. Index rows carry hashes instead of repeated strings: a parameter is one
//! integer, and a token (`system|code`) lookup is one integer equality whose matches come back in
//! resource order, which keyset paging needs. The hash is xxh3, fixed forever: keys are stored.

use xxhash_rust::xxh3::xxh3_64;

fn hash_parts(parts: &[&[u8]]) -> i64 {
    let mut buffer = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts {
        buffer.extend_from_slice(part);
        buffer.push(0);
    }
    xxh3_64(&buffer) as i64
}

/// A search parameter of one resource type (`Observation` + `code`), as stored in index rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamKey(pub i64);

impl ParamKey {
    pub fn new(resource_type: &str, code: &str) -> ParamKey {
        ParamKey(hash_parts(&[
            b"param",
            resource_type.as_bytes(),
            code.as_bytes(),
        ]))
    }

    /// The key of a derived index of a parameter: `code:text` holds the display text of a
    /// token parameter as strings, `identifier:of-type` the typed identifiers.
    pub fn derived(resource_type: &str, code: &str, suffix: &str) -> ParamKey {
        ParamKey(hash_parts(&[
            b"param",
            resource_type.as_bytes(),
            code.as_bytes(),
            suffix.as_bytes(),
        ]))
    }

    /// Matches rows with this code, whatever their system.
    pub fn code_hash(self, code: &str) -> i64 {
        hash_parts(&[&self.0.to_le_bytes(), b"c", code.as_bytes()])
    }

    /// Matches rows with this system and code; an empty system means "no system" (`|code`).
    pub fn system_code_hash(self, system: &str, code: &str) -> i64 {
        hash_parts(&[
            &self.0.to_le_bytes(),
            b"s",
            system.as_bytes(),
            code.as_bytes(),
        ])
    }

    /// Matches rows with this system, whatever their code (`system|`).
    pub fn system_hash(self, system: &str) -> i64 {
        hash_parts(&[&self.0.to_le_bytes(), b"y", system.as_bytes()])
    }
}

/// The patient-compartment key of a row: the future shard key (DESIGN.md). Every row of a
/// patient's data carries the same key, computed from the patient's id alone, so it needs no
/// lookup and is the same on every node. Zero means "not patient data" (a store distributed by
/// this key keeps such rows under a negative key of its own, to spread them over its shards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PatientKey(pub i64);

impl PatientKey {
    pub const NONE: PatientKey = PatientKey(0);

    pub fn of_patient(id: &str) -> PatientKey {
        // Keep it positive and never zero: zero is "none".
        let key = (xxh3_64(id.as_bytes()) >> 1) as i64;
        PatientKey(key.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_across_releases() {
        // Stored keys must never change: a changed hash would orphan every index row.
        assert_eq!(
            ParamKey::new("Observation", "code").0,
            PINNED_OBSERVATION_CODE
        );
        assert_eq!(
            ParamKey::new("Observation", "code").code_hash("8480-6"),
            PINNED_CODE_HASH
        );
        assert_eq!(PatientKey::of_patient("123").0, PINNED_PATIENT_KEY);
        assert_ne!(
            ParamKey::new("Observation", "code"),
            ParamKey::new("Condition", "code")
        );
        assert_ne!(
            ParamKey::new("Observation", "code"),
            ParamKey::derived("Observation", "code", "text")
        );
        let p = ParamKey::new("Observation", "code");
        assert_ne!(p.code_hash("1234"), p.system_code_hash("", "1234"));
        assert_ne!(p.system_code_hash("a", "bc"), p.system_code_hash("ab", "c"));
        assert!(PatientKey::of_patient("123").0 > 0);
    }

    const PINNED_OBSERVATION_CODE: i64 = 3390214803041936589;
    const PINNED_CODE_HASH: i64 = -6386153366964937566;
    const PINNED_PATIENT_KEY: i64 = 2316322581770552909;
}
