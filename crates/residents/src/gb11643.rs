//! GB 11643-1999 citizen identity numbers: 6-digit area code, 8-digit birth date, 3-digit
//! sequence (odd for men, even for women) and a check character computed ISO 7064 MOD 11-2.
//! Old 15-digit numbers (two-digit year, no check character) are widened to 18.

/// The check character of the first 17 digits, or `None` when they are not 17 digits.
pub fn check_character(first17: &str) -> Option<char> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECKS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(CHECKS[(sum % 11) as usize])
}

/// The number in its 18-character form with an upper-case X, if it looks like one (15 digits,
/// or 17 digits and a digit or X); whether its check character is right is [`is_valid`]'s
/// question.
pub fn normalise(value: &str) -> Option<String> {
    let compact: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match compact.len() {
        18 if compact[..17].bytes().all(|b| b.is_ascii_digit())
            && matches!(compact.as_bytes()[17], b'0'..=b'9' | b'X') =>
        {
            Some(compact)
        }
        15 if compact.bytes().all(|b| b.is_ascii_digit()) => {
            let first17 = format!("{}19{}", &compact[..6], &compact[6..]);
            let check = check_character(&first17)?;
            Some(format!("{first17}{check}"))
        }
        _ => None,
    }
}

/// Whether an 18-character number's check character is right and its birth date is a date.
pub fn is_valid(number: &str) -> bool {
    number.len() == 18
        && number.is_ascii()
        && check_character(&number[..17]) == number[17..].chars().next()
        && birth_date(number).is_some()
}

/// The birth date the number carries, as (year, month, day).
pub fn birth_date(number: &str) -> Option<(u16, u8, u8)> {
    let digits = number.get(6..14)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: u16 = digits[..4].parse().ok()?;
    let month: u8 = digits[4..6].parse().ok()?;
    let day: u8 = digits[6..8].parse().ok()?;
    let valid = (1..=12).contains(&month)
        && day >= 1
        && day <= crate::record::days_in_month(year, month)
        && (1850..=2200).contains(&year);
    valid.then_some((year, month, day))
}

/// The sex the number carries: the sequence's last digit is odd for men.
pub fn is_male(number: &str) -> Option<bool> {
    number
        .as_bytes()
        .get(16)
        .filter(|b| b.is_ascii_digit())
        .map(|b| (b - b'0') % 2 == 1)
}
