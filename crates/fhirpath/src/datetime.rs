//! Partial dates, date-times and times: parsing with their written precision, the spec's
//! comparison rules (different precisions can give "unknown"), and calendar arithmetic.

use std::cmp::Ordering;
use std::fmt;

/// How much of a date or time was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

/// Which of the three temporal types a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemporalKind {
    Date,
    DateTime,
    Time,
}

/// A date, date-time or time as far as it was written. Fields below `precision` are zero (or
/// one for month and day); a time uses only the hour fields.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Temporal {
    pub kind: TemporalKind,
    pub precision: Precision,
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millisecond: u16,
    /// Offset from UTC in minutes, when a zone was written (`Z` is 0).
    pub offset_minutes: Option<i16>,
}

pub(crate) use fhir_model::calendar::days_in_month;
use fhir_model::calendar::{civil_from_days, days_from_civil};

struct Reader<'t> {
    bytes: &'t [u8],
    at: usize,
}

impl Reader<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let slice = self.bytes.get(self.at..self.at + n)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.at += n;
        Some(slice.iter().fold(0, |acc, b| acc * 10 + (b - b'0') as u32))
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
}

impl Temporal {
    fn empty(kind: TemporalKind) -> Temporal {
        Temporal {
            kind,
            precision: Precision::Year,
            year: 0,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            millisecond: 0,
            offset_minutes: None,
        }
    }

    /// `2015`, `2015-02`, `2015-02-04`.
    pub fn parse_date(text: &str) -> Option<Temporal> {
        let mut r = Reader {
            bytes: text.as_bytes(),
            at: 0,
        };
        let mut value = Temporal::empty(TemporalKind::Date);
        value.read_date(&mut r)?;
        r.done().then_some(value)
    }

    /// A date-time as FHIR writes it (`2015-02-07T13:28:17-05:00`, or a bare `2015`), or as
    /// a FHIRPath literal writes it (`2015T`, `2015-02-04T14`).
    pub fn parse_date_time(text: &str) -> Option<Temporal> {
        let mut r = Reader {
            bytes: text.as_bytes(),
            at: 0,
        };
        let mut value = Temporal::empty(TemporalKind::DateTime);
        value.read_date(&mut r)?;
        if r.eat(b'T') {
            if r.done() {
                return Some(value);
            }
            if value.precision != Precision::Day {
                return None;
            }
            value.read_time(&mut r)?;
            value.read_zone(&mut r)?;
        }
        r.done().then_some(value)
    }

    /// `14`, `14:34`, `14:34:28.123` (no zone: FHIRPath times have none).
    pub fn parse_time(text: &str) -> Option<Temporal> {
        let mut r = Reader {
            bytes: text.as_bytes(),
            at: 0,
        };
        let mut value = Temporal::empty(TemporalKind::Time);
        value.read_time(&mut r)?;
        r.done().then_some(value)
    }

    fn read_date(&mut self, r: &mut Reader<'_>) -> Option<()> {
        self.year = r.digits(4)? as u16;
        self.precision = Precision::Year;
        if r.eat(b'-') {
            let month = r.digits(2)? as u8;
            if !(1..=12).contains(&month) {
                return None;
            }
            self.month = month;
            self.precision = Precision::Month;
            if r.eat(b'-') {
                let day = r.digits(2)? as u8;
                if day == 0 || day > days_in_month(self.year as i64, month) {
                    return None;
                }
                self.day = day;
                self.precision = Precision::Day;
            }
        }
        Some(())
    }

    fn read_time(&mut self, r: &mut Reader<'_>) -> Option<()> {
        let hour = r.digits(2)?;
        if hour > 23 {
            return None;
        }
        self.hour = hour as u8;
        self.precision = Precision::Hour;
        if r.eat(b':') {
            let minute = r.digits(2)?;
            if minute > 59 {
                return None;
            }
            self.minute = minute as u8;
            self.precision = Precision::Minute;
            if r.eat(b':') {
                let second = r.digits(2)?;
                if second > 59 {
                    return None;
                }
                self.second = second as u8;
                self.precision = Precision::Second;
                if r.eat(b'.') {
                    let start = r.at;
                    while r.bytes.get(r.at).is_some_and(u8::is_ascii_digit) {
                        r.at += 1;
                    }
                    let fraction = &r.bytes[start..r.at];
                    if fraction.is_empty() {
                        return None;
                    }
                    // Precision past milliseconds is kept as milliseconds.
                    let mut millis = 0u16;
                    for i in 0..3 {
                        millis =
                            millis * 10 + fraction.get(i).map(|b| (b - b'0') as u16).unwrap_or(0);
                    }
                    self.millisecond = millis;
                    self.precision = Precision::Millisecond;
                }
            }
        }
        Some(())
    }

    fn read_zone(&mut self, r: &mut Reader<'_>) -> Option<()> {
        if r.eat(b'Z') {
            self.offset_minutes = Some(0);
        } else if let Some(&sign) = r.bytes.get(r.at).filter(|b| **b == b'+' || **b == b'-') {
            r.at += 1;
            let hours = r.digits(2)? as i16;
            let minutes = if r.eat(b':') { r.digits(2)? as i16 } else { 0 };
            let total = hours * 60 + minutes;
            self.offset_minutes = Some(if sign == b'-' { -total } else { total });
        }
        Some(())
    }

    /// The same instant in UTC (only meaningful with a zone and a time).
    fn to_utc(self) -> Temporal {
        let Some(offset) = self.offset_minutes else {
            return self;
        };
        if offset == 0 || self.precision < Precision::Hour {
            return self;
        }
        let minutes = days_from_civil(self.year as i64, self.month, self.day) * 1440
            + self.hour as i64 * 60
            + self.minute as i64
            - offset as i64;
        let mut out = self.with_day_minutes(minutes);
        out.offset_minutes = Some(0);
        out
    }

    fn with_day_minutes(self, minutes: i64) -> Temporal {
        let days = minutes.div_euclid(1440);
        let in_day = minutes.rem_euclid(1440);
        let (year, month, day) = civil_from_days(days);
        Temporal {
            year: year.clamp(0, 9999) as u16,
            month,
            day,
            hour: (in_day / 60) as u8,
            minute: (in_day % 60) as u8,
            ..self
        }
    }

    /// As a date-time (a date becomes a date-time of day precision).
    pub(crate) fn as_date_time(self) -> Temporal {
        match self.kind {
            TemporalKind::Date => Temporal {
                kind: TemporalKind::DateTime,
                ..self
            },
            _ => self,
        }
    }

    /// Compares two values of the same kind (a date and a date-time compare as date-times).
    /// `None` when the answer depends on parts that only one side has.
    pub fn compare(self, other: Temporal) -> Option<Ordering> {
        let (a, b) = match (self.kind, other.kind) {
            (TemporalKind::Time, TemporalKind::Time) => (self, other),
            (TemporalKind::Time, _) | (_, TemporalKind::Time) => return None,
            _ => (self.as_date_time(), other.as_date_time()),
        };
        let both_timed = a.precision >= Precision::Hour && b.precision >= Precision::Hour;
        let (a, b) = match (a.offset_minutes, b.offset_minutes) {
            (Some(_), Some(_)) => (a.to_utc(), b.to_utc()),
            (None, None) => (a, b),
            // One side is in a known zone and the other is not: their order is unknown.
            _ if both_timed => return None,
            _ => (a, b),
        };
        let levels: [(Precision, u32, u32); 6] = [
            (Precision::Year, a.year as u32, b.year as u32),
            (Precision::Month, a.month as u32, b.month as u32),
            (Precision::Day, a.day as u32, b.day as u32),
            (Precision::Hour, a.hour as u32, b.hour as u32),
            (Precision::Minute, a.minute as u32, b.minute as u32),
            (
                Precision::Second,
                a.second as u32 * 1000 + a.millisecond as u32,
                b.second as u32 * 1000 + b.millisecond as u32,
            ),
        ];
        let start = if a.kind == TemporalKind::Time { 3 } else { 0 };
        // Seconds and milliseconds count as one precision when comparing.
        let level_of = |p: Precision| {
            if p == Precision::Millisecond {
                Precision::Second
            } else {
                p
            }
        };
        let (pa, pb) = (level_of(a.precision), level_of(b.precision));
        for &(level, x, y) in &levels[start..] {
            if level > pa || level > pb {
                return if pa == pb {
                    Some(Ordering::Equal)
                } else {
                    None
                };
            }
            if x != y {
                return Some(x.cmp(&y));
            }
        }
        Some(Ordering::Equal)
    }

    /// `precision()`: the number of digits written.
    pub(crate) fn digit_count(self) -> u32 {
        match (self.kind, self.precision) {
            (TemporalKind::Time, Precision::Hour) => 2,
            (TemporalKind::Time, Precision::Minute) => 4,
            (TemporalKind::Time, Precision::Second) => 6,
            (TemporalKind::Time, _) => 9,
            (_, Precision::Year) => 4,
            (_, Precision::Month) => 6,
            (_, Precision::Day) => 8,
            (_, Precision::Hour) => 10,
            (_, Precision::Minute) => 12,
            (_, Precision::Second) => 14,
            (_, Precision::Millisecond) => 17,
        }
    }

    /// `lowBoundary`/`highBoundary`: the earliest or latest value this partial value could be,
    /// written to `digits` digits of precision. `None` for a digit count that names no precision.
    pub(crate) fn boundary(self, digits: Option<i64>, high: bool) -> Option<Temporal> {
        let precision = match (self.kind, digits) {
            // Without a precision, the type's greatest: a date's is the day.
            (TemporalKind::Date, None) => Precision::Day,
            (_, None) => Precision::Millisecond,
            (TemporalKind::Time, Some(2)) => Precision::Hour,
            (TemporalKind::Time, Some(4)) => Precision::Minute,
            (TemporalKind::Time, Some(6)) => Precision::Second,
            (TemporalKind::Time, Some(9)) => Precision::Millisecond,
            (TemporalKind::Time, _) => return None,
            (_, Some(4)) => Precision::Year,
            (_, Some(6)) => Precision::Month,
            (_, Some(8)) => Precision::Day,
            (TemporalKind::DateTime, Some(10)) => Precision::Hour,
            (TemporalKind::DateTime, Some(12)) => Precision::Minute,
            (TemporalKind::DateTime, Some(14)) => Precision::Second,
            (TemporalKind::DateTime, Some(17)) => Precision::Millisecond,
            _ => return None,
        };
        let mut out = self;
        if self.kind == TemporalKind::Date && precision > Precision::Day {
            return None;
        }
        if self.precision < Precision::Month {
            out.month = if high { 12 } else { 1 };
        }
        if self.precision < Precision::Day {
            out.day = if high {
                days_in_month(out.year as i64, out.month)
            } else {
                1
            };
        }
        if self.precision < Precision::Hour {
            out.hour = if high { 23 } else { 0 };
        }
        if self.precision < Precision::Minute {
            out.minute = if high { 59 } else { 0 };
        }
        if self.precision < Precision::Second {
            out.second = if high { 59 } else { 0 };
        }
        if self.precision < Precision::Millisecond {
            out.millisecond = if high { 999 } else { 0 };
        }
        out.precision = precision;
        if self.kind == TemporalKind::DateTime
            && precision >= Precision::Hour
            && out.offset_minutes.is_none()
        {
            // Without a zone the value could be in any zone: the earliest is UTC+14, the latest UTC-12.
            out.offset_minutes = Some(if high { -12 * 60 } else { 14 * 60 });
        }
        if precision < Precision::Hour {
            out.offset_minutes = None;
        }
        Some(out)
    }

    /// Adds `amount` of a calendar unit. Years and months keep the day in range; smaller units
    /// carry into larger ones.
    pub(crate) fn add(self, amount: i64, unit: CalendarUnit) -> Option<Temporal> {
        // Ten thousand years is about 9e7 hours; far past that the result is out of range
        // whatever the unit, and stopping here keeps hours-to-milliseconds within an i64.
        if amount.unsigned_abs() > 2_000_000_000_000 {
            return None;
        }
        let mut out = self;
        match unit {
            CalendarUnit::Year => {
                if self.kind == TemporalKind::Time {
                    return None;
                }
                let year = self.year as i64 + amount;
                if !(1..=9999).contains(&year) {
                    return None;
                }
                out.year = year as u16;
                out.day = out.day.min(days_in_month(year, out.month));
            }
            CalendarUnit::Month => {
                if self.kind == TemporalKind::Time {
                    return None;
                }
                let months = self.year as i64 * 12 + (self.month as i64 - 1) + amount;
                let year = months.div_euclid(12);
                if !(1..=9999).contains(&year) {
                    return None;
                }
                out.year = year as u16;
                out.month = (months.rem_euclid(12) + 1) as u8;
                out.day = out.day.min(days_in_month(year, out.month));
            }
            CalendarUnit::Week | CalendarUnit::Day => {
                if self.kind == TemporalKind::Time {
                    return None;
                }
                let days = if unit == CalendarUnit::Week {
                    amount * 7
                } else {
                    amount
                };
                let (year, month, day) =
                    civil_from_days(days_from_civil(self.year as i64, self.month, self.day) + days);
                if !(1..=9999).contains(&year) {
                    return None;
                }
                out.year = year as u16;
                out.month = month;
                out.day = day;
            }
            CalendarUnit::Hour
            | CalendarUnit::Minute
            | CalendarUnit::Second
            | CalendarUnit::Millisecond => {
                let millis = match unit {
                    CalendarUnit::Hour => amount * 3_600_000,
                    CalendarUnit::Minute => amount * 60_000,
                    CalendarUnit::Second => amount * 1000,
                    _ => amount,
                };
                let day_millis = self.hour as i64 * 3_600_000
                    + self.minute as i64 * 60_000
                    + self.second as i64 * 1000
                    + self.millisecond as i64
                    + millis;
                let carry_days = day_millis.div_euclid(86_400_000);
                let in_day = day_millis.rem_euclid(86_400_000);
                out.hour = (in_day / 3_600_000) as u8;
                out.minute = (in_day / 60_000 % 60) as u8;
                out.second = (in_day / 1000 % 60) as u8;
                out.millisecond = (in_day % 1000) as u16;
                if self.kind != TemporalKind::Time && carry_days != 0 {
                    let (year, month, day) = civil_from_days(
                        days_from_civil(self.year as i64, self.month, self.day) + carry_days,
                    );
                    out.year = year as u16;
                    out.month = month;
                    out.day = day;
                }
            }
        }
        Some(out)
    }

    /// The current moment in UTC, from the system clock.
    pub(crate) fn now_utc() -> Temporal {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let millis = since.as_millis() as i64;
        let days = millis.div_euclid(86_400_000);
        let in_day = millis.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        Temporal {
            kind: TemporalKind::DateTime,
            precision: Precision::Millisecond,
            year: year as u16,
            month,
            day,
            hour: (in_day / 3_600_000) as u8,
            minute: (in_day / 60_000 % 60) as u8,
            second: (in_day / 1000 % 60) as u8,
            millisecond: (in_day % 1000) as u16,
            offset_minutes: Some(0),
        }
    }

    /// The date part of a date-time.
    pub(crate) fn date_part(self) -> Temporal {
        Temporal {
            kind: TemporalKind::Date,
            precision: self.precision.min(Precision::Day),
            hour: 0,
            minute: 0,
            second: 0,
            millisecond: 0,
            offset_minutes: None,
            ..self
        }
    }

    /// The time part of a date-time.
    pub(crate) fn time_part(self) -> Temporal {
        Temporal {
            kind: TemporalKind::Time,
            year: 0,
            month: 1,
            day: 1,
            offset_minutes: None,
            ..self
        }
    }
}

/// The units date arithmetic accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CalendarUnit {
    Year,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

impl CalendarUnit {
    /// A calendar keyword (`days`) or a UCUM code with a definite duration (`d`, `wk`, `h`...).
    /// UCUM `a` and `mo` are averages, not calendar years and months, so they are refused.
    pub(crate) fn of(unit: &str) -> Option<CalendarUnit> {
        Some(match unit {
            "year" | "years" => CalendarUnit::Year,
            "month" | "months" => CalendarUnit::Month,
            "week" | "weeks" | "wk" => CalendarUnit::Week,
            "day" | "days" | "d" => CalendarUnit::Day,
            "hour" | "hours" | "h" => CalendarUnit::Hour,
            "minute" | "minutes" | "min" => CalendarUnit::Minute,
            "second" | "seconds" | "s" => CalendarUnit::Second,
            "millisecond" | "milliseconds" | "ms" => CalendarUnit::Millisecond,
            _ => return None,
        })
    }
}

impl fmt::Display for Temporal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != TemporalKind::Time {
            write!(f, "{:04}", self.year)?;
            if self.precision >= Precision::Month {
                write!(f, "-{:02}", self.month)?;
            }
            if self.precision >= Precision::Day {
                write!(f, "-{:02}", self.day)?;
            }
            if self.kind == TemporalKind::Date || self.precision < Precision::Hour {
                return Ok(());
            }
            f.write_str("T")?;
        }
        write!(f, "{:02}", self.hour)?;
        if self.precision >= Precision::Minute {
            write!(f, ":{:02}", self.minute)?;
        }
        if self.precision >= Precision::Second {
            write!(f, ":{:02}", self.second)?;
        }
        if self.precision >= Precision::Millisecond {
            write!(f, ".{:03}", self.millisecond)?;
        }
        if let Some(offset) = self.offset_minutes
            && self.kind == TemporalKind::DateTime
        {
            if offset == 0 {
                f.write_str("Z")?;
            } else {
                let sign = if offset < 0 { '-' } else { '+' };
                write!(f, "{sign}{:02}:{:02}", offset.abs() / 60, offset.abs() % 60)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Temporal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}({self})", self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(text: &str) -> Temporal {
        Temporal::parse_date_time(text).unwrap()
    }

    #[test]
    fn different_precisions_compare_as_unknown_unless_decided_earlier() {
        assert_eq!(dt("2018-03").compare(dt("2018-03-01")), None);
        assert_eq!(
            dt("2018-02").compare(dt("2018-03-01")),
            Some(Ordering::Less)
        );
        assert_eq!(
            dt("2018-03-01T10:30:00").compare(dt("2018-03-01T10:30:00.0")),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn zones_are_normalised_before_comparing() {
        assert_eq!(
            dt("2017-11-05T01:30:00.0-04:00").compare(dt("2017-11-05T00:30:00.0-05:00")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            dt("2012-04-15T15:00:00Z").compare(dt("2012-04-15T10:00:00")),
            None
        );
    }

    #[test]
    fn calendar_arithmetic_keeps_days_in_range() {
        let date = Temporal::parse_date("2020-01-31").unwrap();
        assert_eq!(
            date.add(1, CalendarUnit::Month).unwrap().to_string(),
            "2020-02-29"
        );
        assert_eq!(
            date.add(-31, CalendarUnit::Day).unwrap().to_string(),
            "2019-12-31"
        );
        let time = dt("1973-12-25T23:59:59.999+10:00");
        assert_eq!(
            time.add(1, CalendarUnit::Millisecond).unwrap().to_string(),
            "1973-12-26T00:00:00.000+10:00"
        );
    }

    #[test]
    fn rejects_impossible_dates() {
        assert!(Temporal::parse_date("2019-02-29").is_none());
        assert!(Temporal::parse_date_time("2019-13").is_none());
        assert!(Temporal::parse_time("24:00").is_none());
    }
}
