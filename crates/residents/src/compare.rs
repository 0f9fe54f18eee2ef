//! Comparing two records field by field. Each field's comparison gives a level: 0 when either
//! side lacks the field (no evidence either way), 1 for full agreement, and higher levels for
//! weaker agreement down to the last, disagreement. The model turns levels into weights.

use crate::record::{Date, IdentifierKind, Name, Record};
use crate::text::{edit_distance, jaro_winkler, jaro_winkler_where};

/// The compared fields, in the order of a comparison vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Family,
    Given,
    BirthDate,
    Sex,
    Phone,
    Street,
    Locality,
    Postcode,
    NationalId,
    OtherId,
}

pub const FIELD_COUNT: usize = 10;

impl Field {
    pub const ALL: [Field; FIELD_COUNT] = [
        Field::Family,
        Field::Given,
        Field::BirthDate,
        Field::Sex,
        Field::Phone,
        Field::Street,
        Field::Locality,
        Field::Postcode,
        Field::NationalId,
        Field::OtherId,
    ];

    /// How many non-null levels the field has (the last is disagreement).
    pub fn levels(self) -> usize {
        match self {
            Field::Family | Field::Given => 5,
            Field::BirthDate | Field::Street => 4,
            Field::Phone
            | Field::Locality
            | Field::Postcode
            | Field::NationalId
            | Field::OtherId => 3,
            Field::Sex => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Field::Family => "family",
            Field::Given => "given",
            Field::BirthDate => "birth-date",
            Field::Sex => "sex",
            Field::Phone => "phone",
            Field::Street => "street",
            Field::Locality => "locality",
            Field::Postcode => "postcode",
            Field::NationalId => "national-id",
            Field::OtherId => "other-id",
        }
    }

    /// What each level means, for explanations (index 0 is "missing").
    pub fn level_label(self, level: u8) -> &'static str {
        if level == 0 {
            return "missing";
        }
        if usize::from(level) == self.levels() {
            return "different";
        }
        match (self, level) {
            (_, 1) => "same",
            (Field::Family | Field::Given, 2) => "same pronunciation",
            (Field::Family | Field::Given, 3) => "very similar",
            (Field::Family | Field::Given, 4) => "similar",
            (Field::BirthDate, 2) => "one typo (digit, transposition or day/month swap)",
            (Field::BirthDate, 3) => "two of year, month, day",
            (Field::Street, 2) => "very similar",
            (Field::Street, 3) => "similar",
            _ => "one typo",
        }
    }
}

/// The outcome of comparing two records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    pub levels: [u8; FIELD_COUNT],
    /// The pair of names (index in the first record, in the second) the name levels come from.
    pub names: Option<(u8, u8)>,
    /// The names agree with family and given swapped ("Wei Zhang" against 张伟).
    pub swapped: bool,
}

impl Comparison {
    pub fn level(&self, field: Field) -> u8 {
        self.levels[field as usize]
    }

    /// The comparison vector as one integer (4 bits a field), for counting patterns.
    pub fn pattern(&self) -> u64 {
        self.levels
            .iter()
            .enumerate()
            .fold(0u64, |acc, (i, l)| acc | (u64::from(*l) << (4 * i)))
    }

    pub fn from_pattern(pattern: u64) -> [u8; FIELD_COUNT] {
        let mut levels = [0u8; FIELD_COUNT];
        for (i, level) in levels.iter_mut().enumerate() {
            *level = ((pattern >> (4 * i)) & 0xF) as u8;
        }
        levels
    }
}

/// Compares two records. Symmetric: `compare(a, b)` has the levels of `compare(b, a)`.
pub fn compare(a: &Record, b: &Record) -> Comparison {
    let mut levels = [0u8; FIELD_COUNT];
    let (names, swapped) = best_names(a, b, &mut levels);
    levels[Field::BirthDate as usize] = best(&a.birth_dates, &b.birth_dates, date_level);
    levels[Field::Sex as usize] = match (a.sex, b.sex) {
        (Some(x), Some(y)) => 1 + u8::from(x != y),
        _ => 0,
    };
    levels[Field::Phone as usize] = best(&a.phones, &b.phones, |x, y| {
        if x == y {
            1
        } else if x.len() == y.len() && edit_distance(x, y) <= 1 {
            2
        } else {
            3
        }
    });
    levels[Field::Street as usize] = best(&a.addresses, &b.addresses, |x, y| {
        street_level(&x.street, &y.street)
    });
    levels[Field::Locality as usize] = best(&a.addresses, &b.addresses, |x, y| {
        if x.locality.is_empty() || y.locality.is_empty() {
            0
        } else if x.locality == y.locality {
            1
        } else if jaro_winkler(&x.locality, &y.locality) >= 0.88 {
            2
        } else {
            3
        }
    });
    // Counted even beside the locality: on FEBRL the two err independently and together
    // they link better; in a Chinese district, where the postcode follows the district, a move
    // is counted twice (docs/decisions/0006 records the trade).
    levels[Field::Postcode as usize] = best(&a.addresses, &b.addresses, |x, y| {
        typo_level(&x.postcode, &y.postcode)
    });
    levels[Field::NationalId as usize] = best_identifiers(a, b, IdentifierKind::National);
    levels[Field::OtherId as usize] = best_identifiers(a, b, IdentifierKind::Other);
    Comparison {
        levels,
        names,
        swapped,
    }
}

/// Streets: equal 1, very similar 2, similar 3, else 4; 0 when either is empty. Compared
/// without spaces, which typists drop and add ("trainercourt", "sanf ord place"); when only
/// one side has a house number, by the street's name alone; and one address written in full,
/// the other with a line or a part left out ("28 ponderossa" against "28 john cleland crescent
/// ponderossa") are very similar, because a registration that leaves something out says
/// nothing about it.
fn street_level(x: &str, y: &str) -> u8 {
    if x.is_empty() || y.is_empty() {
        return 0;
    }
    if x == y {
        return 1;
    }
    let jw = if numbered(x) == numbered(y) {
        jaro_winkler_where(x, y, |c| !c.is_whitespace())
    } else {
        jaro_winkler_where(x, y, |c| !c.is_whitespace() && !c.is_ascii_digit())
    };
    if jw >= 0.9 || words_within(x, y) || words_within(y, x) {
        2
    } else if jw >= 0.75 {
        3
    } else {
        4
    }
}

/// Every word of `part` is in `whole` (each allowing a typo), at least one of them a real word
/// of four letters or more, and the house numbers agree when both have one.
fn words_within(part: &str, whole: &str) -> bool {
    if numbered(part)
        && numbered(whole)
        && !part
            .chars()
            .filter(char::is_ascii_digit)
            .eq(whole.chars().filter(char::is_ascii_digit))
    {
        return false;
    }
    let word = |t: &str| t.chars().all(char::is_alphabetic);
    let mut long_words = 0;
    for token in part.split_whitespace() {
        if !word(token) {
            // A house number (or a word with one in it): compared above.
            continue;
        }
        let found = whole
            .split_whitespace()
            .any(|t| t == token || (word(t) && jaro_winkler(t, token) >= 0.9));
        if !found {
            return false;
        }
        if token.chars().count() >= 4 {
            long_words += 1;
        }
    }
    long_words > 0
}

fn numbered(street: &str) -> bool {
    street.chars().any(|c| c.is_ascii_digit())
}

/// Equal 1, one edit 2, else 3; 0 when either is empty.
fn typo_level(x: &str, y: &str) -> u8 {
    if x.is_empty() || y.is_empty() {
        0
    } else if x == y {
        1
    } else if edit_distance(x, y) <= 1 {
        2
    } else {
        3
    }
}

/// The best (lowest non-zero) level over every pair of values; 0 when either side has none or
/// no pair could be compared.
fn best<T>(xs: &[T], ys: &[T], level: impl Fn(&T, &T) -> u8) -> u8 {
    let mut best = 0u8;
    for x in xs {
        for y in ys {
            let l = level(x, y);
            if l != 0 && (best == 0 || l < best) {
                best = l;
                if best == 1 {
                    return 1;
                }
            }
        }
    }
    best
}

fn best_identifiers(a: &Record, b: &Record, kind: IdentifierKind) -> u8 {
    let mut best = 0u8;
    for x in a.identifiers.iter().filter(|i| i.kind == kind) {
        for y in b.identifiers.iter().filter(|i| i.kind == kind) {
            // Resident ID numbers mean the same whatever system an institution filed them
            // under; other identifiers only within one system.
            if kind == IdentifierKind::Other && x.system != y.system {
                continue;
            }
            let l = typo_level(&x.value, &y.value);
            if l != 0 && (best == 0 || l < best) {
                best = l;
            }
        }
    }
    best
}

pub(crate) fn date_level(x: &Date, y: &Date) -> u8 {
    if x == y {
        return 1;
    }
    if x.year == y.year && x.month == y.day && x.day == y.month {
        return 2;
    }
    let (dx, dy) = (x.digits(), y.digits());
    let differing: Vec<usize> = (0..8).filter(|&i| dx[i] != dy[i]).collect();
    let one_typo = match differing.as_slice() {
        [_] => true,
        [i, j] => *j == i + 1 && dx[*i] == dy[*j] && dx[*j] == dy[*i],
        _ => false,
    };
    if one_typo {
        return 2;
    }
    let same = u8::from(x.year == y.year) + u8::from(x.month == y.month) + u8::from(x.day == y.day);
    if same >= 2 { 3 } else { 4 }
}

fn name_level(x: &str, x_key: &str, y: &str, y_key: &str) -> u8 {
    if x_key.is_empty() || y_key.is_empty() {
        return 0;
    }
    if x == y {
        return 1;
    }
    if x_key == y_key {
        return 2;
    }
    // Jaro–Winkler's matching window is empty for three-letter words, so "wei" / "wie" would
    // look unrelated: one edit is a typo however short the name.
    let jw = jaro_winkler(x_key, y_key);
    let edits = edit_distance(x_key, y_key);
    if jw >= 0.92 || (edits <= 1 && x_key.len().min(y_key.len()) >= 3) {
        3
    } else if jw >= 0.8 || (edits <= 2 && x_key.len().min(y_key.len()) >= 5) {
        4
    } else {
        5
    }
}

/// Sets the family and given levels from the best pair of names, trying each pair as written
/// and with family and given swapped. Answers the pair and whether it was swapped.
fn best_names(a: &Record, b: &Record, levels: &mut [u8; FIELD_COUNT]) -> (Option<(u8, u8)>, bool) {
    let mut best: Option<(u8, u8, (u8, u8), bool)> = None;
    let cost = |f: u8, g: u8| {
        // Missing parts count as middling so that a full agreement wins.
        let c = |l: u8| if l == 0 { 3 } else { l };
        c(f) + c(g)
    };
    for (i, x) in a.names.iter().enumerate().take(16) {
        for (j, y) in b.names.iter().enumerate().take(16) {
            let (f, g) = direct(x, y);
            let mut candidate = (f, g, (i as u8, j as u8), false);
            let (sf, sg) = swapped(x, y);
            // A swap counts only when both parts agree at least as well as written.
            if sf != 0 && sg != 0 && cost(sf, sg) < cost(f, g) {
                candidate = (sf, sg, (i as u8, j as u8), true);
            }
            // Ties go to the lower levels in order, so that the choice does not depend on which
            // record is first: comparisons stay symmetric.
            if best.is_none_or(|(bf, bg, _, _)| {
                (cost(candidate.0, candidate.1), candidate.0, candidate.1) < (cost(bf, bg), bf, bg)
            }) {
                best = Some(candidate);
            }
        }
    }
    match best {
        Some((f, g, pair, swapped)) => {
            levels[Field::Family as usize] = f;
            levels[Field::Given as usize] = g;
            (Some(pair), swapped)
        }
        None => (None, false),
    }
}

fn direct(x: &Name, y: &Name) -> (u8, u8) {
    (
        name_level(&x.family, &x.family_key, &y.family, &y.family_key),
        name_level(&x.given, &x.given_key, &y.given, &y.given_key),
    )
}

/// Levels with one side's family and given swapped; never better than "same pronunciation",
/// because a swap is itself a small doubt.
fn swapped(x: &Name, y: &Name) -> (u8, u8) {
    let f = name_level(&x.family, &x.family_key, &y.given, &y.given_key);
    let g = name_level(&x.given, &x.given_key, &y.family, &y.family_key);
    let clamp = |level: u8| if level == 0 { 0 } else { level.max(2) };
    // Comparing b with a swaps which cross pair is "family": order the two levels so that
    // the answer is the same both ways.
    let (f, g) = (clamp(f), clamp(g));
    (f.max(g), f.min(g))
}
