//! `date`, `dateTime`, `instant` and `time`: scanners that follow the R4 regular expressions,
//! also checking that the date exists in the calendar, and the span of time a partial date stands
//! for (`2020` is all of 2020), which is how search compares dates.

/// How much of a date or dateTime was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DatePrecision {
    Year,
    Month,
    Day,
    /// `hh:mm:ss` without a fraction.
    Second,
    /// Seconds with this many fraction digits (1 or more; values past 9 digits count as 9).
    Fraction(u8),
}

/// A parsed `date`, `dateTime` or `instant`. Fields past the precision are zero (month and day:
/// one), and `offset_minutes` is None when no time zone was given (dates, and only dates, lack it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartialDateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub nanos: u32,
    pub precision: DatePrecision,
    pub offset_minutes: Option<i16>,
}

/// A half-open span of time `[start, end)`, in microseconds since 1970-01-01T00:00:00Z.
/// Microseconds reach every year FHIR can write (0001 to 9999) within an `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateRange {
    pub start: i64,
    pub end: i64,
}

/// A parsed `time` (a time of day, no zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub nanos: u32,
    /// Fraction digits given (0 when none).
    pub fraction_digits: u8,
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

impl PartialDateTime {
    /// The span this value stands for, reading a value without a time zone (a date, or a year or
    /// month) as UTC. See [`PartialDateTime::range_in`] to read it in another zone.
    pub fn range(&self) -> DateRange {
        self.range_in(0)
    }

    /// The span this value stands for, reading a value without a time zone as local time at
    /// `default_offset_minutes` east of UTC (the specification leaves such dates to the server's
    /// zone).
    pub fn range_in(&self, default_offset_minutes: i32) -> DateRange {
        let offset = self
            .offset_minutes
            .map_or(default_offset_minutes, i32::from);
        let offset_micros = i64::from(offset) * 60 * MICROS_PER_SECOND;
        let day_start =
            days_from_civil(i64::from(self.year), self.month, self.day) * MICROS_PER_DAY;
        let time =
            (i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second))
                * MICROS_PER_SECOND
                + i64::from(self.nanos / 1000);
        let start = day_start + time - offset_micros;
        let end = match self.precision {
            DatePrecision::Year => {
                days_from_civil(i64::from(self.year) + 1, 1, 1) * MICROS_PER_DAY - offset_micros
            }
            DatePrecision::Month => {
                let (y, m) = if self.month == 12 {
                    (i64::from(self.year) + 1, 1)
                } else {
                    (i64::from(self.year), self.month + 1)
                };
                days_from_civil(y, m, 1) * MICROS_PER_DAY - offset_micros
            }
            DatePrecision::Day => start + MICROS_PER_DAY,
            DatePrecision::Second => start + MICROS_PER_SECOND,
            // Past microseconds the span is one microsecond: the start was truncated to it.
            DatePrecision::Fraction(digits) => {
                start + 10i64.pow(u32::from(6u8.saturating_sub(digits)))
            }
        };
        DateRange { start, end }
    }
}

use crate::calendar::days_from_civil;

fn days_in_month(year: u16, month: u8) -> u8 {
    crate::calendar::days_in_month(i64::from(year), month)
}

/// A cursor over ASCII bytes.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let slice = self.bytes.get(self.at..self.at + n)?;
        let mut value = 0u32;
        for &b in slice {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.at += n;
        Some(value)
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// `hh:mm:ss(.f+)?`: hours 00-23, minutes 00-59, seconds 00-60 (a leap second).
    fn time(&mut self) -> Option<TimeOfDay> {
        let hour = self.digits(2).filter(|&h| h <= 23)?;
        self.eat(b':').then_some(())?;
        let minute = self.digits(2).filter(|&m| m <= 59)?;
        self.eat(b':').then_some(())?;
        let second = self.digits(2).filter(|&s| s <= 60)?;
        let mut nanos = 0u32;
        let mut fraction_digits = 0u8;
        if self.eat(b'.') {
            let start = self.at;
            while let Some(&b) = self.bytes.get(self.at) {
                if !b.is_ascii_digit() {
                    break;
                }
                if self.at - start < 9 {
                    nanos = nanos * 10 + u32::from(b - b'0');
                }
                self.at += 1;
            }
            let count = self.at - start;
            if count == 0 {
                return None;
            }
            nanos *= 10u32.pow(9u32.saturating_sub(count as u32));
            fraction_digits = count.min(9) as u8;
        }
        Some(TimeOfDay {
            hour: hour as u8,
            minute: minute as u8,
            second: second as u8,
            nanos,
            fraction_digits,
        })
    }

    /// `Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)`, as minutes east of UTC.
    fn zone(&mut self) -> Option<i16> {
        if self.eat(b'Z') {
            return Some(0);
        }
        let sign = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return None;
        };
        let hours = self.digits(2)?;
        self.eat(b':').then_some(())?;
        let minutes = self.digits(2)?;
        let valid = (hours <= 13 && minutes <= 59) || (hours == 14 && minutes == 0);
        valid.then(|| sign * (hours * 60 + minutes) as i16)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Date,
    DateTime,
    Instant,
}

fn parse(text: &str, form: Form) -> Option<PartialDateTime> {
    let mut s = Scanner {
        bytes: text.as_bytes(),
        at: 0,
    };
    let year = s.digits(4).filter(|&y| y >= 1)? as u16;
    let mut value = PartialDateTime {
        year,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        precision: DatePrecision::Year,
        offset_minutes: None,
    };
    if s.done() {
        return (form != Form::Instant).then_some(value);
    }
    s.eat(b'-').then_some(())?;
    value.month = s.digits(2).filter(|m| (1..=12).contains(m))? as u8;
    value.precision = DatePrecision::Month;
    if s.done() {
        return (form != Form::Instant).then_some(value);
    }
    s.eat(b'-').then_some(())?;
    value.day =
        s.digits(2)
            .filter(|&d| d >= 1 && d <= u32::from(days_in_month(year, value.month)))? as u8;
    value.precision = DatePrecision::Day;
    if s.done() {
        return (form != Form::Instant).then_some(value);
    }
    if form == Form::Date || !s.eat(b'T') {
        return None;
    }
    let time = s.time()?;
    value.hour = time.hour;
    value.minute = time.minute;
    value.second = time.second;
    value.nanos = time.nanos;
    value.precision = match time.fraction_digits {
        0 => DatePrecision::Second,
        n => DatePrecision::Fraction(n),
    };
    // A time without a zone is ambiguous: R4 requires the zone whenever a time is given.
    value.offset_minutes = Some(s.zone()?);
    s.done().then_some(value)
}

/// Parses a `date` (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`).
pub fn parse_date(text: &str) -> Option<PartialDateTime> {
    parse(text, Form::Date)
}

/// Parses a `dateTime`: a date, or `YYYY-MM-DDThh:mm:ss(.f+)?` followed by a time zone.
pub fn parse_date_time(text: &str) -> Option<PartialDateTime> {
    parse(text, Form::DateTime)
}

/// Parses an `instant`: `YYYY-MM-DDThh:mm:ss(.f+)?` followed by a time zone.
pub fn parse_instant(text: &str) -> Option<PartialDateTime> {
    parse(text, Form::Instant)
}

/// Parses a `time`: `hh:mm:ss(.f+)?`.
pub fn parse_time(text: &str) -> Option<TimeOfDay> {
    let mut s = Scanner {
        bytes: text.as_bytes(),
        at: 0,
    };
    let time = s.time()?;
    s.done().then_some(time)
}
