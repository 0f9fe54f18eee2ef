//! Search values: escapes, prefixes, and the ranges that dates, numbers and quantities mean.

use fhir_model::primitives::parse_date_time;

use crate::query::{Bound, Comparison, RangeColumn, RangePredicate};

/// Splits a value on unescaped commas. Only `\,` is resolved here; other escapes (`\|`, `\$`,
/// `\\`) are kept for the parsers that split on those characters.
pub fn split_values(value: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(',') => current.push(','),
                Some(other) => {
                    current.push('\\');
                    current.push(other);
                }
                None => current.push('\\'),
            },
            ',' => values.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    values.push(current);
    values
}

/// Splits on the first unescaped `separator`, unescaping both halves.
pub fn split_unescaped(value: &str, separator: char) -> (String, Option<String>) {
    let mut before = String::new();
    let mut chars = value.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            if let Some((_, next)) = chars.next() {
                if next != separator && next != '\\' && next != '|' && next != '$' && next != ',' {
                    before.push('\\');
                }
                before.push(next);
            }
        } else if c == separator {
            return (before, Some(value[i + c.len_utf8()..].to_owned()));
        } else {
            before.push(c);
        }
    }
    (before, None)
}

/// Removes search escapes (`\,` `\|` `\$` `\\`); other backslashes stay.
pub fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some(',' | '|' | '$' | '\\')) {
            out.push(chars.next().expect("peeked"));
        } else {
            out.push(c);
        }
    }
    out
}

/// A comparison prefix of a number, date or quantity value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

/// Splits the prefix off a value (`ge2020` -> `Ge`, `2020`). A value that starts with two
/// letters that are not a prefix is an error.
pub fn split_prefix(value: &str) -> Result<(Prefix, &str), String> {
    let Some(head) = value.get(..2) else {
        return Ok((Prefix::Eq, value));
    };
    if !head.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Ok((Prefix::Eq, value));
    }
    let prefix = match head {
        "eq" => Prefix::Eq,
        "ne" => Prefix::Ne,
        "gt" => Prefix::Gt,
        "lt" => Prefix::Lt,
        "ge" => Prefix::Ge,
        "le" => Prefix::Le,
        "sa" => Prefix::Sa,
        "eb" => Prefix::Eb,
        "ap" => Prefix::Ap,
        other => {
            return Err(format!(
                "'{other}' is not a search prefix (eq, ne, gt, lt, ge, le, sa, eb, ap)"
            ));
        }
    };
    Ok((prefix, &value[2..]))
}

fn group(conditions: &[(RangeColumn, Comparison, Bound)]) -> Vec<(RangeColumn, Comparison, Bound)> {
    conditions.to_vec()
}

/// The predicate a date prefix means, for a search range `[low, high]` against stored ranges,
/// as FHIR R4 defines it (search.html, "prefixes"): `eq` the stored range lies within the
/// search range; `gt` the stored range reaches past it; `sa` it starts after it; and so on.
pub fn date_predicate(prefix: Prefix, low: i64, high: i64, now: i64) -> RangePredicate {
    use Comparison::*;
    use RangeColumn::{High as H, Low as L};
    let b = Bound::Integer;
    let within = group(&[(L, Ge, b(low)), (H, Le, b(high))]);
    let any_of = match prefix {
        Prefix::Eq => vec![within],
        Prefix::Ne => vec![group(&[(L, Lt, b(low))]), group(&[(H, Gt, b(high))])],
        Prefix::Gt => vec![group(&[(H, Gt, b(high))])],
        Prefix::Lt => vec![group(&[(L, Lt, b(low))])],
        Prefix::Ge => vec![group(&[(H, Gt, b(high))]), within],
        Prefix::Le => vec![group(&[(L, Lt, b(low))]), within],
        Prefix::Sa => vec![group(&[(L, Gt, b(high))])],
        Prefix::Eb => vec![group(&[(H, Lt, b(low))])],
        Prefix::Ap => {
            // Approximately: within a tenth of the distance from now, and at least a day.
            let slack = ((now - low).abs() / 10).clamp(86_400_000_000, i64::MAX / 4);
            vec![group(&[
                (L, Le, b(high.saturating_add(slack))),
                (H, Ge, b(low.saturating_sub(slack))),
            ])]
        }
    };
    RangePredicate { any_of }
}

/// The predicate a number prefix means. FHIR compares the stored value with the search value;
/// `eq` and `ne` use the range the search value's precision implies (`100` is [99.5, 100.5)),
/// `ap` a tenth either side.
pub fn number_predicate(prefix: Prefix, value: f64, low: f64, high: f64) -> RangePredicate {
    use Comparison::*;
    use RangeColumn::Value as V;
    let b = Bound::Float;
    let any_of = match prefix {
        Prefix::Eq => vec![group(&[(V, Ge, b(low)), (V, Lt, b(high))])],
        Prefix::Ne => vec![group(&[(V, Lt, b(low))]), group(&[(V, Ge, b(high))])],
        Prefix::Gt | Prefix::Sa => vec![group(&[(V, Gt, b(value))])],
        Prefix::Lt | Prefix::Eb => vec![group(&[(V, Lt, b(value))])],
        Prefix::Ge => vec![group(&[(V, Ge, b(value))])],
        Prefix::Le => vec![group(&[(V, Le, b(value))])],
        Prefix::Ap => {
            let slack = snap((value.abs() * 0.1).max(high - low));
            vec![group(&[
                (V, Ge, b(snap(value - slack))),
                (V, Le, b(snap(value + slack))),
            ])]
        }
    };
    RangePredicate { any_of }
}

/// The f64 nearest to the decimal `x` stands for, read at 15 significant digits. Arithmetic on
/// decimals lands an ulp away from the decimal it means (`0.2 - 0.05` is 0.15000000000000002,
/// `146.42 * 0.01` is 1.4641999999999999): computed bounds and converted values are snapped
/// back, so that they compare equal to the same decimal written directly, on the index side
/// and the search side alike.
pub fn snap(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.14e}").parse().unwrap_or(x)
}

/// A decimal as written, with the range its precision implies: `1.5` is [1.45, 1.55).
pub fn decimal_range(text: &str) -> Option<(f64, f64, f64)> {
    let text = text.trim();
    let valid = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if !valid {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let decimals = mantissa
        .split_once('.')
        .map_or(0, |(_, fraction)| fraction.len()) as i32;
    let exponent: i32 = text
        .split_once(['e', 'E'])
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let half_step = 0.5 * 10f64.powi(exponent - decimals);
    Some((value, snap(value - half_step), snap(value + half_step)))
}

/// A search date (`2024`, `2024-05`, `2024-05-01`, `2024-05-01T08:30`, with seconds, fraction
/// and zone optional) as the range of microseconds it covers, inclusive. Without a zone the
/// time is UTC.
pub fn date_range(text: &str) -> Option<(i64, i64)> {
    // `+08:00` arrives as ` 08:00` when a client forgets to encode the `+`.
    let mut text = text.trim_end().replace(' ', "+");
    let mut minutes_only = false;
    if let Some(t) = text.find('T') {
        let time = &text[t + 1..];
        let zone_at = time.find(['Z', '+', '-']);
        let clock_length = zone_at.unwrap_or(time.len());
        // A search time may stop at minutes (`T10:00`), which a dateTime may not: it is read
        // with zero seconds, and then stands for the whole minute.
        if clock_length == 5 {
            text.insert_str(t + 1 + clock_length, ":00");
            minutes_only = true;
        }
        // A search time without a zone is read as UTC (FHIR lets the server choose).
        if zone_at.is_none() {
            text.push('Z');
        }
    }
    let parsed = parse_date_time(&text)?;
    let range = parsed.range();
    if minutes_only {
        return Some((range.start, range.start + MICROS_PER_MINUTE - 1));
    }
    Some((range.start, range.end - 1))
}

const MICROS_PER_MINUTE: i64 = 60_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_on_unescaped_commas_only() {
        assert_eq!(split_values("a,b\\,c"), ["a", "b,c"]);
        assert_eq!(split_values("a\\|b"), ["a\\|b"]);
        assert_eq!(
            split_unescaped("http://x\\|y|123", '|'),
            ("http://x|y".to_owned(), Some("123".to_owned()))
        );
        assert_eq!(split_unescaped("123", '|'), ("123".to_owned(), None));
        assert_eq!(
            split_unescaped("|123", '|'),
            (String::new(), Some("123".to_owned()))
        );
        assert_eq!(unescape("a\\$b\\\\c\\d"), "a$b\\c\\d");
    }

    #[test]
    fn prefixes_are_two_letters_or_none() {
        assert_eq!(split_prefix("ge2020"), Ok((Prefix::Ge, "2020")));
        assert_eq!(split_prefix("2020"), Ok((Prefix::Eq, "2020")));
        assert_eq!(split_prefix("-5"), Ok((Prefix::Eq, "-5")));
        assert!(split_prefix("xx2020").is_err());
    }

    #[test]
    fn decimals_carry_their_precision() {
        assert_eq!(decimal_range("100"), Some((100.0, 99.5, 100.5)));
        let (v, l, h) = decimal_range("1.50").unwrap();
        assert!((v - 1.5).abs() < 1e-12 && (l - 1.495).abs() < 1e-12 && (h - 1.505).abs() < 1e-12);
        let (_, l, h) = decimal_range("1e2").unwrap();
        assert!((l - 50.0).abs() < 1e-9 && (h - 150.0).abs() < 1e-9);
        assert_eq!(decimal_range("abc"), None);
        assert_eq!(decimal_range("1e999"), None);
        assert_eq!(decimal_range(""), None);
    }

    #[test]
    fn implicit_ranges_end_at_the_decimals_they_mean() {
        // [0.15, 0.25) for 0.2 and [0.05, 0.15) for 0.1: a stored 0.15 is in the first and
        // not in the second. Computed in f64, 0.2 - 0.05 is 0.15000000000000002 and
        // 0.1 + 0.05 is 0.15000000000000002, which got both wrong.
        let stored: f64 = "0.15".parse().unwrap();
        let (_, low, _) = decimal_range("0.2").unwrap();
        let (_, _, high) = decimal_range("0.1").unwrap();
        assert!(stored >= low, "eq0.2 finds 0.15");
        assert!(stored >= high, "eq0.1 does not find 0.15");
        assert_eq!(snap(146.42 * 0.01), snap(1464.2 * 0.001));
        assert_eq!(snap(146.42 * 0.01), 1.4642);
    }

    #[test]
    fn search_dates_cover_their_precision() {
        let day = 86_400_000_000;
        let (low, high) = date_range("2024-05-01").unwrap();
        assert_eq!((low, high - low), (1_714_521_600_000_000, day - 1));
        let (low2, high2) = date_range("2024-05-01T08:30").unwrap();
        assert_eq!(low2, low + 8 * 3_600_000_000 + 30 * 60_000_000);
        assert_eq!(
            high2 - low2,
            60_000_000 - 1,
            "a time without seconds is a minute"
        );
        assert_eq!(
            date_range("2024-05-01T16:30:00 08:00").map(|r| r.0),
            Some(low2),
            "a lost + is restored"
        );
        assert_eq!(date_range("2024-13"), None);
        assert_eq!(date_range("soon"), None);
    }

    #[test]
    fn a_search_time_without_seconds_covers_the_whole_minute() {
        // search.html: `lt2013-01-14T10:00` and `gt2013-01-14T10:00` both include
        // 2013-01-14, which needs 10:00 to be the minute from 10:00:00 to 10:00:59.999999.
        let (low, high) = date_range("2013-01-14T10:00Z").unwrap();
        let (second_low, _) = date_range("2013-01-14T10:00:59Z").unwrap();
        let (_, second_high) = date_range("2013-01-14T10:00:59.999999Z").unwrap();
        assert_eq!(low, date_range("2013-01-14T10:00:00Z").unwrap().0);
        assert!(low < second_low && second_high == high);
        assert_eq!(
            date_range("2013-01-14T12:00+02:00"),
            Some((low, high)),
            "with a zone too"
        );
    }
}
