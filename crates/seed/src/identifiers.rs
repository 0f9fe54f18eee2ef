//! The numbers people and institutions carry: resident ID numbers (GB 11643), unified social
//! credit codes (GB 32100, with the organization code of GB 11714 inside), mobile numbers and
//! card numbers. The check-character rules are public so that tests and other crates can
//! verify what the generator writes.

use crate::random::Rng;

/// The weights of the GB 11643 check: 2^(17-i) mod 11 for the i-th of the 17 digits.
const RESIDENT_ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check character (ISO 7064 MOD 11-2) of the first 17 digits of a resident ID number,
/// `'X'` standing for 10; `None` unless `body` is 17 ASCII digits.
pub fn resident_id_check(body: &str) -> Option<char> {
    if body.len() != 17 || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = body
        .bytes()
        .zip(RESIDENT_ID_WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    Some(b"10X98765432"[(sum % 11) as usize] as char)
}

/// Whether `id` is a well-formed 18-character resident ID number with the right check
/// character (the address code and the date are not checked here).
pub fn is_valid_resident_id(id: &str) -> bool {
    id.len() == 18
        && id.is_ascii()
        && resident_id_check(&id[..17]) == Some(id.as_bytes()[17] as char)
}

/// A resident ID number: address code (6 digits), birth date (8), sequence (3: odd for men,
/// even for women), check character.
pub fn resident_id(address_code: &str, birth_date_compact: &str, sequence: u32) -> String {
    debug_assert!(address_code.len() == 6 && birth_date_compact.len() == 8 && sequence < 1000);
    let mut id = format!("{address_code}{birth_date_compact}{sequence:03}");
    let check = resident_id_check(&id).expect("17 digits");
    id.push(check);
    id
}

/// The 31 characters of GB 32100 codes (no I, O, S, V, Z), in value order.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

fn uscc_value(c: u8) -> Option<u32> {
    USCC_ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The check character of the first 17 characters of a unified social credit code: weights
/// 3^i mod 31, check = 31 - (sum mod 31), with 31 written as `0`.
pub fn uscc_check(body: &str) -> Option<char> {
    if body.len() != 17 {
        return None;
    }
    let mut sum = 0;
    let mut weight = 1;
    for c in body.bytes() {
        sum += uscc_value(c)? * weight;
        weight = weight * 3 % 31;
    }
    Some(USCC_ALPHABET[((31 - sum % 31) % 31) as usize] as char)
}

/// The check character of the first 8 characters of an organization code (GB 11714):
/// weights 3 7 9 10 5 8 4 2 over digits and letters (A = 10 ... Z = 35); 10 is written `X`.
pub fn organization_code_check(body: &str) -> Option<char> {
    const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    if body.len() != 8 {
        return None;
    }
    let mut sum = 0;
    for (c, weight) in body.bytes().zip(WEIGHTS) {
        let value = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return None,
        };
        sum += value * weight;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        check => char::from_digit(check, 10).expect("below 10"),
    })
}

/// Whether `code` is an 18-character unified social credit code whose organization code and
/// final character both check.
pub fn is_valid_uscc(code: &str) -> bool {
    code.len() == 18
        && code.is_ascii()
        && organization_code_check(&code[8..16]) == Some(code.as_bytes()[16] as char)
        && uscc_check(&code[..17]) == Some(code.as_bytes()[17] as char)
}

/// A unified social credit code of a public institution (`1` the establishment office, `2` a
/// public institution, which public hospitals and health centres are) registered in
/// `address_code`, with an 8-digit organization code drawn from `rng`.
pub fn public_institution_uscc(address_code: &str, rng: &mut Rng) -> String {
    let organization = format!("{:08}", rng.below(100_000_000));
    let organization_check = organization_code_check(&organization).expect("8 digits");
    let mut code = format!("12{address_code}{organization}{organization_check}");
    let check = uscc_check(&code).expect("17 characters of the alphabet");
    code.push(check);
    code
}

/// The first three digits of mainland mobile numbers, weighted roughly by how many numbers
/// each carrier's blocks hold (China Mobile's 13x/15x/18x blocks dominate).
#[rustfmt::skip]
const MOBILE_PREFIXES: &[(&str, u64)] = &[
    ("134", 3), ("135", 5), ("136", 5), ("137", 5), ("138", 6), ("139", 6), ("147", 1),
    ("150", 3), ("151", 3), ("152", 3), ("157", 2), ("158", 3), ("159", 3), ("178", 2),
    ("182", 3), ("183", 3), ("184", 1), ("187", 3), ("188", 3), ("198", 2), ("130", 3),
    ("131", 3), ("132", 3), ("155", 2), ("156", 2), ("166", 1), ("175", 1), ("176", 2),
    ("185", 3), ("186", 3), ("133", 3), ("153", 2), ("173", 1), ("177", 2), ("180", 3),
    ("181", 2), ("189", 3), ("199", 2),
];

pub fn mobile_number(rng: &mut Rng) -> String {
    static TABLE: std::sync::OnceLock<crate::random::Weighted> = std::sync::OnceLock::new();
    let table =
        TABLE.get_or_init(|| crate::random::Weighted::new(MOBILE_PREFIXES.iter().map(|p| p.1)));
    let prefix = MOBILE_PREFIXES[table.draw(rng)].0;
    format!("{prefix}{:08}", rng.below(100_000_000))
}

/// A social-security card number: a letter and eight digits, one per resident. `ordinal` is
/// a unique number below 26 * 10^8 (a permuted resident index), so numbers never repeat.
pub fn social_security_card_number(ordinal: u64) -> String {
    debug_assert!(ordinal < 26 * 100_000_000);
    let letter = (b'A' + (ordinal / 100_000_000) as u8) as char;
    format!("{letter}{:08}", ordinal % 100_000_000)
}

/// An e-health card ID: 64 upper-case hexadecimal characters.
pub fn e_health_card_id(rng: &mut Rng) -> String {
    let words = [
        rng.next_u64(),
        rng.next_u64(),
        rng.next_u64(),
        rng.next_u64(),
    ];
    format!(
        "{:016X}{:016X}{:016X}{:016X}",
        words[0], words[1], words[2], words[3]
    )
}
