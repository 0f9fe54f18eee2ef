//! Blocking: the keys under which a record is filed, so that candidates are found by looking up
//! a handful of keys instead of comparing everyone with everyone. Several keys, each robust to a
//! different kind of error: an identifier finds a person whose name was mistyped, the name finds
//! one whose birth date was, the birth date with day and month in either order finds one whose
//! name was romanised differently.

use xxhash_rust::xxh3::xxh3_64;

use crate::record::Record;
use crate::text::soundex;

/// The kinds of key, each hashed with its own tag so that keys of different kinds never meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    NationalId,
    OtherId,
    Phone,
    /// Birth date with day and month in ascending order (swaps land together).
    BirthDate,
    /// Family and given name keys, in sorted order (swapped names land together).
    FullName,
    /// Family name, birth year and month.
    FamilyBirthMonth,
    /// Soundex of both names (sorted) and the birth year: typos in both names.
    SoundexBirthYear,
    /// Postcode and the Soundex of the family name.
    PostcodeFamily,
    /// The street (with its number), spaces removed: a household, for records whose name and
    /// birth date both erred.
    Street,
    /// Parts of an identifier, so that one mistyped character leaves a part intact.
    IdentifierPart,
    /// Soundex of the given name and the postcode.
    GivenPostcode,
    /// Given name and locality.
    GivenLocality,
    /// The house number and the Soundex of the street's letters: a household whose street
    /// was mistyped ("warramboolfclose", "stireet").
    StreetSound,
}

fn key(kind: KeyKind, parts: &[&str]) -> u64 {
    let mut bytes = Vec::with_capacity(32);
    bytes.push(kind as u8);
    for part in parts {
        bytes.push(0x1F);
        bytes.extend_from_slice(part.as_bytes());
    }
    // The kind rides in the top byte, so a key says what kind it is (for measuring blocks).
    (xxh3_64(&bytes) & 0x00FF_FFFF_FFFF_FFFF) | ((kind as u64) << 56)
}

/// The kind of a key made by [`blocking_keys`], as a number (the `KeyKind` discriminant).
pub fn kind_of(key: u64) -> u8 {
    (key >> 56) as u8
}

/// Every blocking key of a record, without repeats.
pub fn blocking_keys(record: &Record) -> Vec<u64> {
    let mut keys = Vec::with_capacity(12);
    for identifier in &record.identifiers {
        let value = identifier.value.as_str();
        match identifier.kind {
            crate::record::IdentifierKind::National => {
                keys.push(key(KeyKind::NationalId, &[value]));
                // Area and birth date; birth date and sequence; area and sequence: a typo in
                // any one of the three leaves a part whole, and each part is shared by few.
                if value.len() == 18 {
                    keys.push(key(KeyKind::IdentifierPart, &["n1", &value[..14]]));
                    keys.push(key(KeyKind::IdentifierPart, &["n2", &value[6..]]));
                    keys.push(key(
                        KeyKind::IdentifierPart,
                        &["n3", &value[..6], &value[14..]],
                    ));
                }
            }
            crate::record::IdentifierKind::Other => {
                keys.push(key(KeyKind::OtherId, &[&identifier.system, value]));
                // Halves of a person-wide number (a typo leaves one whole); an institution's
                // own record numbers are sequential, and their halves would be huge blocks.
                if identifier.wide && value.is_ascii() && value.len() >= 6 {
                    let half = value.len() / 2;
                    let system = identifier.system.as_str();
                    keys.push(key(KeyKind::IdentifierPart, &[system, "1", &value[..half]]));
                    keys.push(key(KeyKind::IdentifierPart, &[system, "2", &value[half..]]));
                }
            }
        }
    }
    for phone in &record.phones {
        keys.push(key(KeyKind::Phone, &[phone]));
    }
    for date in &record.birth_dates {
        let (low, high) = if date.month <= date.day {
            (date.month, date.day)
        } else {
            (date.day, date.month)
        };
        keys.push(key(
            KeyKind::BirthDate,
            &[&format!("{}:{low}:{high}", date.year)],
        ));
    }
    for name in &record.names {
        // Soundex suits Latin names; on pinyin it lumps zhang, zheng, zeng and zhong together
        // and makes blocks of thousands in a Chinese county. Han names use their exact pinyin.
        let han = crate::chinese::has_han(&name.family) || crate::chinese::has_han(&name.given);
        let phonetic = |key: &str| if han { key.to_owned() } else { soundex(key) };
        if !name.family_key.is_empty() && !name.given_key.is_empty() {
            let (first, second) = if name.family_key <= name.given_key {
                (&name.family_key, &name.given_key)
            } else {
                (&name.given_key, &name.family_key)
            };
            keys.push(key(KeyKind::FullName, &[first, second]));
        }
        for date in &record.birth_dates {
            if !name.family_key.is_empty() {
                keys.push(key(
                    KeyKind::FamilyBirthMonth,
                    &[&name.family_key, &format!("{}:{}", date.year, date.month)],
                ));
            }
            if !han && !name.family_key.is_empty() && !name.given_key.is_empty() {
                let (a, b) = (soundex(&name.family_key), soundex(&name.given_key));
                let (first, second) = if a <= b { (a, b) } else { (b, a) };
                keys.push(key(
                    KeyKind::SoundexBirthYear,
                    &[&first, &second, &date.year.to_string()],
                ));
            }
        }
        for address in &record.addresses {
            if han {
                // A Chinese given name within a district is shared by hundreds: the full name,
                // the birth date and the household keys find these records instead.
                continue;
            }
            if !name.given_key.is_empty() && !address.locality.is_empty() {
                keys.push(key(
                    KeyKind::GivenLocality,
                    &[&name.given_key, &address.locality],
                ));
            }
            if !name.given_key.is_empty() && !address.postcode.is_empty() {
                keys.push(key(
                    KeyKind::GivenPostcode,
                    &[&phonetic(&name.given_key), &address.postcode],
                ));
            }
            if !address.postcode.is_empty() && !name.family_key.is_empty() {
                keys.push(key(
                    KeyKind::PostcodeFamily,
                    &[&address.postcode, &phonetic(&name.family_key)],
                ));
            }
        }
    }
    let family = record
        .names
        .first()
        .map(|n| n.family_key.as_str())
        .unwrap_or("");
    for address in &record.addresses {
        let street: String = address
            .street
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        // A street name alone ("studley street") is shared by too many; with a number it is a
        // household. A Chinese village group ("桃园村3组") holds a few hundred people: with the
        // family name it is a household again.
        if street.chars().count() >= 6 && street.chars().any(|c| c.is_ascii_digit()) {
            if crate::chinese::has_han(&street) {
                if !family.is_empty() {
                    keys.push(key(KeyKind::Street, &[&street, family]));
                }
            } else {
                keys.push(key(KeyKind::Street, &[&street]));
                let number: String = street.chars().filter(char::is_ascii_digit).collect();
                let letters = street.chars().filter(char::is_ascii_alphabetic).count();
                // Soundex keeps the first letter and three consonant classes: a typo after
                // them, a dropped space or a misspelt "street" leaves the key whole.
                if letters >= 4 {
                    keys.push(key(KeyKind::StreetSound, &[&number, &soundex(&street)]));
                }
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The keys as text for a FHIR tag code: 16 hex digits, no personal data in clear.
pub fn key_code(key: u64) -> String {
    format!("{key:016x}")
}
