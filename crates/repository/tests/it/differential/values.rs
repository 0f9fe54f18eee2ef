//! The brute-force side's own primitives, written from the specification and sharing no code
//! with `search`: exact decimals, FHIR dates as ranges of microseconds, search escapes, string
//! normalisation and a small UCUM table. A bug here and the same bug in the server would cancel
//! out, so each is kept as plain as it can be.

use std::cmp::Ordering;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// An exact decimal, `mantissa / 10^scale`. FHIR decimals carry their written precision and
/// searches compare at the edges of ranges, so the expected side never rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

impl Decimal {
    pub fn integer(value: i128) -> Decimal {
        Decimal {
            mantissa: value,
            scale: 0,
        }
    }

    /// `12`, `-1.50`, `5.40e-3`, `1e2`.
    pub fn parse(text: &str) -> Option<Decimal> {
        let (number, exponent) = match text.split_once(['e', 'E']) {
            Some((number, exponent)) => (number, exponent.parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (negative, digits) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number.strip_prefix('+').unwrap_or(number)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty()
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
        if negative {
            mantissa = -mantissa;
        }
        let scale = fraction.len() as i32 - exponent;
        Some(if scale >= 0 {
            Decimal {
                mantissa,
                scale: scale as u32,
            }
        } else {
            Decimal {
                mantissa: mantissa.checked_mul(10i128.checked_pow((-scale) as u32)?)?,
                scale: 0,
            }
        })
    }

    /// Half a unit of the last digit written: the implicit precision of a search value
    /// (`100` is ±0.5, `1.50` ±0.005, `1e2` ±50, `5.40e-3` ±0.000005).
    pub fn half_step(text: &str) -> Option<Decimal> {
        let (number, exponent) = match text.split_once(['e', 'E']) {
            Some((number, exponent)) => (number, exponent.parse::<i32>().ok()?),
            None => (text, 0),
        };
        let decimals = number.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
        let scale = decimals - exponent + 1;
        Some(if scale >= 0 {
            Decimal {
                mantissa: 5,
                scale: scale as u32,
            }
        } else {
            Decimal::integer(5 * 10i128.pow((-scale) as u32))
        })
    }

    fn aligned(self, other: Decimal) -> (i128, i128) {
        let scale = self.scale.max(other.scale);
        let lift = |d: Decimal| {
            d.mantissa
                .checked_mul(10i128.pow(scale - d.scale))
                .expect("decimals in the sample stay far from i128's range")
        };
        (lift(self), lift(other))
    }

    pub fn add(self, other: Decimal) -> Decimal {
        let (a, b) = self.aligned(other);
        Decimal {
            mantissa: a + b,
            scale: self.scale.max(other.scale),
        }
    }

    pub fn sub(self, other: Decimal) -> Decimal {
        self.add(Decimal {
            mantissa: -other.mantissa,
            scale: other.scale,
        })
    }

    pub fn mul(self, other: Decimal) -> Decimal {
        Decimal {
            mantissa: self
                .mantissa
                .checked_mul(other.mantissa)
                .expect("products in the sample stay far from i128's range"),
            scale: self.scale + other.scale,
        }
    }

    /// `self / other` when the quotient has a finite decimal form (within 18 more digits).
    pub fn divide_exactly(self, other: Decimal) -> Option<Decimal> {
        if other.mantissa == 0 {
            return None;
        }
        for extra in 0..=18u32 {
            let numerator = self.mantissa.checked_mul(10i128.pow(extra))?;
            if numerator % other.mantissa == 0 {
                let mantissa = numerator / other.mantissa;
                let scale = i64::from(self.scale) + i64::from(extra) - i64::from(other.scale);
                return Some(if scale >= 0 {
                    Decimal {
                        mantissa,
                        scale: scale as u32,
                    }
                } else {
                    Decimal::integer(mantissa * 10i128.pow((-scale) as u32))
                });
            }
        }
        None
    }

    pub fn abs(self) -> Decimal {
        Decimal {
            mantissa: self.mantissa.abs(),
            scale: self.scale,
        }
    }

    /// A tenth of the value (for `ap`).
    pub fn tenth(self) -> Decimal {
        Decimal {
            mantissa: self.mantissa,
            scale: self.scale + 1,
        }
    }

    pub fn max(self, other: Decimal) -> Decimal {
        if self >= other { self } else { other }
    }

    /// The plain text of the value, without exponent (`0.0054`, `70500`).
    pub fn text(self) -> String {
        let negative = self.mantissa < 0;
        let digits = self.mantissa.abs().to_string();
        let scale = self.scale as usize;
        let body = if scale == 0 {
            digits
        } else if digits.len() > scale {
            format!(
                "{}.{}",
                &digits[..digits.len() - scale],
                &digits[digits.len() - scale..]
            )
        } else {
            format!("0.{}{digits}", "0".repeat(scale - digits.len()))
        };
        if negative { format!("-{body}") } else { body }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        let (a, b) = self.aligned(*other);
        a.cmp(&b)
    }
}

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// A FHIR date, dateTime or instant (or a search date: minutes without seconds allowed) as the
/// inclusive range of microseconds its precision covers. A value without a zone is read as
/// UTC, the time zone this server calls local.
pub fn date_range(text: &str) -> Option<(i64, i64)> {
    let number = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year = number(parts.next()?, 4)?;
    let month = match parts.next() {
        Some(m) => Some(number(m, 2)?),
        None => None,
    };
    let day = match parts.next() {
        Some(d) => Some(number(d, 2)?),
        None => None,
    };
    if parts.next().is_some() || month.is_some_and(|m| !(1..=12).contains(&m)) {
        return None;
    }
    let first_day = days_from_civil(year, month.unwrap_or(1), day.unwrap_or(1));
    let Some(time) = time else {
        let next_day = match (month, day) {
            (None, _) => days_from_civil(year + 1, 1, 1),
            (Some(12), None) => days_from_civil(year + 1, 1, 1),
            (Some(m), None) => days_from_civil(year, m + 1, 1),
            (Some(_), Some(_)) => first_day + 1,
        };
        let start = first_day * MICROS_PER_DAY;
        return Some((start, next_day * MICROS_PER_DAY - 1));
    };
    day?;
    let zone_at = time.find(['Z', '+', '-']);
    let (clock, zone) = time.split_at(zone_at.unwrap_or(time.len()));
    let offset_minutes = match zone {
        "" | "Z" => 0,
        zone => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':')?;
            sign * (number(h, 2)? * 60 + number(m, 2)?)
        }
    };
    let mut fields = clock.split(':');
    let hour = number(fields.next()?, 2)?;
    let minute = number(fields.next()?, 2)?;
    let (second, fraction) = match fields.next() {
        None => (None, ""),
        Some(s) => match s.split_once('.') {
            Some((whole, fraction)) => (Some(number(whole, 2)?), fraction),
            None => (Some(number(s, 2)?), ""),
        },
    };
    if fields.next().is_some() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut start = first_day * MICROS_PER_DAY
        + (hour * 3600 + minute * 60 + second.unwrap_or(0) - offset_minutes * 60) * 1_000_000;
    let width = match (second, fraction.len()) {
        (None, _) => 60_000_000,
        (Some(_), 0) => 1_000_000,
        (Some(_), digits) => {
            let digits = digits.min(6);
            start += fraction[..digits].parse::<i64>().ok()? * 10i64.pow(6 - digits as u32);
            10i64.pow(6 - digits as u32)
        }
    };
    Some((start, start + width - 1))
}

/// The precisions a generated search date is written at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePrecision {
    Year,
    Month,
    Day,
    Minute,
    Second,
    Millisecond,
}

/// An instant written at a precision, in the zone `offset_minutes` east of UTC (`None` writes a
/// date without zone, or a time in UTC with `Z`).
pub fn format_date(micros: i64, precision: DatePrecision, offset_minutes: Option<i64>) -> String {
    let local = micros + offset_minutes.unwrap_or(0) * 60_000_000;
    let days = local.div_euclid(MICROS_PER_DAY);
    let of_day = local.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (of_day / 3_600_000_000, of_day / 60_000_000 % 60);
    let (second, milli) = (of_day / 1_000_000 % 60, of_day / 1000 % 1000);
    let zone = match offset_minutes {
        None | Some(0) => "Z".to_owned(),
        Some(offset) => format!(
            "{}{:02}:{:02}",
            if offset < 0 { '-' } else { '+' },
            offset.abs() / 60,
            offset.abs() % 60
        ),
    };
    match precision {
        DatePrecision::Year => format!("{year:04}"),
        DatePrecision::Month => format!("{year:04}-{month:02}"),
        DatePrecision::Day => format!("{year:04}-{month:02}-{day:02}"),
        DatePrecision::Minute => {
            format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}{zone}")
        }
        DatePrecision::Second => {
            format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{zone}")
        }
        DatePrecision::Millisecond => format!(
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}{zone}"
        ),
    }
}

/// Splits on every `separator` not escaped by `\`, keeping the escapes in the parts.
pub fn split_unescaped(value: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        let current = parts.last_mut().expect("one part at least");
        if c == '\\' {
            current.push(c);
            if let Some(next) = chars.next() {
                current.push(next);
            }
        } else if c == separator {
            parts.push(String::new());
        } else {
            current.push(c);
        }
    }
    parts
}

/// Splits on the first unescaped `separator`.
pub fn split_once_unescaped(value: &str, separator: char) -> (String, Option<String>) {
    let mut parts = split_unescaped(value, separator).into_iter();
    let first = parts.next().unwrap_or_default();
    let rest: Vec<String> = parts.collect();
    if rest.is_empty() {
        (first, None)
    } else {
        (first, Some(rest.join(&separator.to_string())))
    }
}

/// Resolves the search escapes `\,` `\|` `\$` `\\`.
pub fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(',' | '|' | '$' | '\\')) => out.push(chars.next().expect("peeked")),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes the characters that separate search values.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, ',' | '|' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// R4 string matching: "insensitive to casing and included combining characters", with
/// "punctuation and non-significant whitespace (e.g. repeated space characters, tab vs space)
/// also ignored" (search.html, 3.1.1.4.8).
pub fn normalize(text: &str) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in text.nfd() {
        if is_combining_mark(c) || is_punctuation(c) {
            continue;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// ASCII punctuation and the common Unicode punctuation blocks (general punctuation, CJK
/// punctuation such as `、` `。` `·`, full-width forms).
pub fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c, '\u{00A1}'..='\u{00BF}' if !c.is_alphanumeric())
        || matches!(c, '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{205E}')
        || matches!(c, '\u{3001}'..='\u{3003}' | '\u{3008}'..='\u{3011}' | '\u{30FB}')
        || matches!(c, '\u{FF01}'..='\u{FF0F}' | '\u{FF1A}'..='\u{FF20}' | '\u{FF3B}'..='\u{FF40}' | '\u{FF5B}'..='\u{FF65}')
}

/// UCUM units of one dimension convert through a factor to a base unit: the definitions from
/// the UCUM tables (`mm[Hg]` is 133.3220 Pa: UCUM defines `m[Hg]` as 133.3220 kPa; a Julian year
/// is 365.25 days, a Julian month a twelfth of it).
pub fn ucum(code: &str) -> Option<(&'static str, Decimal)> {
    let (base, factor) = match code {
        "g" => ("g", "1"),
        "kg" => ("g", "1000"),
        "mg" => ("g", "0.001"),
        "ug" => ("g", "0.000001"),
        "ng" => ("g", "0.000000001"),
        "[lb_av]" => ("g", "453.59237"),
        "m" => ("m", "1"),
        "km" => ("m", "1000"),
        "cm" => ("m", "0.01"),
        "mm" => ("m", "0.001"),
        "[in_i]" => ("m", "0.0254"),
        "L" => ("L", "1"),
        "dL" => ("L", "0.1"),
        "mL" => ("L", "0.001"),
        "uL" => ("L", "0.000001"),
        "s" => ("s", "1"),
        "min" => ("s", "60"),
        "h" => ("s", "3600"),
        "d" => ("s", "86400"),
        "wk" => ("s", "604800"),
        "mo" => ("s", "2629800"),
        "a" => ("s", "31557600"),
        "Pa" => ("Pa", "1"),
        "kPa" => ("Pa", "1000"),
        "mm[Hg]" => ("Pa", "133.3220"),
        "g/L" => ("g/L", "1"),
        "g/dL" => ("g/L", "10"),
        "mg/dL" => ("g/L", "0.01"),
        "mg/L" => ("g/L", "0.001"),
        "mol/L" => ("mol/L", "1"),
        "mmol/L" => ("mol/L", "0.001"),
        "umol/L" => ("mol/L", "0.000001"),
        _ => return None,
    };
    Some((base, Decimal::parse(factor).expect("a decimal factor")))
}

/// The units of the table that share a dimension with `code`, for generating conversions.
pub fn same_dimension(code: &str) -> Vec<&'static str> {
    const ALL: [&str; 32] = [
        "g", "kg", "mg", "ug", "ng", "[lb_av]", "m", "km", "cm", "mm", "[in_i]", "L", "dL", "mL",
        "uL", "s", "min", "h", "d", "wk", "mo", "a", "Pa", "kPa", "mm[Hg]", "g/L", "g/dL", "mg/dL",
        "mg/L", "mol/L", "mmol/L", "umol/L",
    ];
    let Some((base, _)) = ucum(code) else {
        return Vec::new();
    };
    ALL.into_iter()
        .filter(|other| *other != code && ucum(other).is_some_and(|(b, _)| b == base))
        .collect()
}
