//! The numbers residents and institutions carry are well formed, checked here by rules written
//! out again independently of the generator's own.

use std::collections::{BTreeSet, HashSet};

use seed::systems;

use crate::support;

/// GB 11643's check character, computed from its definition: weights 2^(17-i) mod 11, then
/// ISO 7064 MOD 11-2.
fn gb11643_check(body: &str) -> char {
    let sum: u32 = body
        .chars()
        .enumerate()
        .map(|(i, c)| c.to_digit(10).unwrap() * ((1u32 << (17 - i)) % 11))
        .sum();
    let check = (12 - sum % 11) % 11;
    if check == 10 {
        'X'
    } else {
        char::from_digit(check, 10).unwrap()
    }
}

/// GB 32100's check character, from its definition (weights 3^i mod 31 over the 31-character
/// alphabet), and GB 11714's for the organization code inside.
fn uscc_is_valid(code: &str) -> bool {
    const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    let value = |c: char| ALPHABET.find(c).map(|v| v as u32);
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 18 {
        return false;
    }
    let mut sum = 0;
    for (i, c) in chars[..17].iter().enumerate() {
        let Some(v) = value(*c) else { return false };
        sum += v * 3u32.pow(i as u32) % 31;
    }
    let check = (31 - sum % 31) % 31;
    let organization: u32 = chars[8..16]
        .iter()
        .zip([3, 7, 9, 10, 5, 8, 4, 2])
        .map(|(c, w)| c.to_digit(36).unwrap() * w)
        .sum();
    let organization_check = match 11 - organization % 11 {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10).unwrap(),
    };
    ALPHABET.chars().nth(check as usize) == Some(chars[17]) && chars[16] == organization_check
}

#[test]
fn the_check_rules_agree_with_published_examples() {
    // The example number of the GB 11643 standard, and its check character.
    assert_eq!(gb11643_check("11010519491231002"), 'X');
    assert_eq!(
        seed::identifiers::resident_id_check("11010519491231002"),
        Some('X')
    );
    assert!(seed::identifiers::is_valid_resident_id(
        "11010519491231002X"
    ));
    assert!(!seed::identifiers::is_valid_resident_id(
        "110105194912310021"
    ));
    // The example code printed with GB 32100.
    assert!(uscc_is_valid("91350100M000100Y43"));
    assert!(seed::identifiers::is_valid_uscc("91350100M000100Y43"));
    assert!(!seed::identifiers::is_valid_uscc("91350100M000100Y44"));
}

#[test]
fn resident_id_numbers_encode_the_birth_date_and_sex_and_check() {
    let resources = support::all(3_000, 21);
    let mut seen = HashSet::new();
    let mut before_2011 = 0;
    let mut since_2011 = 0;
    for patient in support::of_type(&resources, "Patient") {
        let id = support::identifier(patient, systems::RESIDENT_ID).unwrap();
        assert_eq!(id.len(), 18, "{id}");
        assert!(id[..17].bytes().all(|b| b.is_ascii_digit()), "{id}");
        assert_eq!(id.chars().last(), Some(gb11643_check(&id[..17])), "{id}");
        let birth_date = patient["birthDate"].as_str().unwrap().replace('-', "");
        assert_eq!(&id[6..14], birth_date, "{id}");
        let sequence_digit = id.as_bytes()[16] - b'0';
        let male = patient["gender"] == "male";
        assert_eq!(
            sequence_digit % 2 == 1,
            male,
            "{id}: parity and sex disagree"
        );
        // Residents keep the address code of their first registration: Tongren prefecture
        // (5222xx) before 2011, Tongren city (5206xx) after.
        let birth_year: i32 = birth_date[..4].parse().unwrap();
        if birth_year < 2011 {
            assert!(id.starts_with("5222"), "{id}");
            before_2011 += 1;
        } else {
            assert!(id.starts_with("5206"), "{id}");
            since_2011 += 1;
        }
        assert!(seen.insert(id.to_owned()), "{id} given twice");
    }
    assert!(before_2011 > 0 && since_2011 > 0);
}

#[test]
fn cards_and_record_numbers_are_well_formed_and_unique() {
    let resources = support::all(3_000, 22);
    let mut cards = HashSet::new();
    let mut e_health = HashSet::new();
    let mut records = HashSet::new();
    let mut phones = 0;
    let hospitals: BTreeSet<String> = support::of_type(&resources, "Organization")
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    for patient in support::of_type(&resources, "Patient") {
        let card = support::identifier(patient, systems::SOCIAL_SECURITY_CARD).unwrap();
        assert!(
            card.len() == 9
                && card.as_bytes()[0].is_ascii_uppercase()
                && card[1..].bytes().all(|b| b.is_ascii_digit()),
            "{card}"
        );
        assert!(cards.insert(card.to_owned()), "card {card} given twice");
        // Not every resident has taken the electronic health card.
        if let Some(ehc) = support::identifier(patient, systems::E_HEALTH_CARD) {
            assert!(
                ehc.len() == 64
                    && ehc
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
                "{ehc}"
            );
            assert!(e_health.insert(ehc.to_owned()));
        }
        let record = support::identifier(patient, systems::HEALTH_RECORD_NUMBER).unwrap();
        assert!(
            record.len() == 17 && record.bytes().all(|b| b.is_ascii_digit()),
            "{record}"
        );
        assert!(record.starts_with("5206"), "{record}");
        assert!(records.insert(record.to_owned()));
        if let Some(phone) = patient["telecom"][0]["value"].as_str() {
            assert!(
                phone.len() == 11
                    && phone.starts_with('1')
                    && phone.bytes().all(|b| b.is_ascii_digit()),
                "{phone}"
            );
            phones += 1;
        }
        for identifier in patient["identifier"].as_array().unwrap() {
            let system = identifier["system"].as_str().unwrap();
            if let Some(hospital) = system.strip_prefix(systems::MEDICAL_RECORD_NUMBER_PREFIX) {
                assert!(
                    hospitals.contains(hospital),
                    "MRN of unknown hospital {hospital}"
                );
                assert!(
                    hospital.contains("hosp"),
                    "MRN of {hospital}, not a hospital"
                );
            }
        }
    }
    assert!(phones > 2_000, "only {phones} residents have a phone");
    // About 85% hold the card (70% of small children, 90% of working-age adults, 72% of the old).
    let holders = e_health.len();
    assert!(
        (2_400..2_700).contains(&holders),
        "{holders} of 3,000 hold an e-health card"
    );
}

#[test]
fn every_institution_has_a_valid_unified_social_credit_code() {
    let mut directory = Vec::new();
    support::region(40_000, 23).directory(&mut directory);
    let mut seen = HashSet::new();
    for organization in support::of_type(&directory, "Organization") {
        let code = support::identifier(organization, systems::UNIFIED_SOCIAL_CREDIT_CODE).unwrap();
        assert!(uscc_is_valid(code), "{code}");
        assert!(
            code.starts_with("12"),
            "{code} is not a public institution's"
        );
        assert!(seen.insert(code.to_owned()));
    }
    assert!(seen.len() > 20);
}
