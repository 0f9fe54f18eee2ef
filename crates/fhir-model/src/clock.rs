//! Server time: microseconds since the Unix epoch, strictly increasing within the process so
//! that two versions written one after the other never share an instant, and the FHIR and HTTP
//! text forms of it. Calendar arithmetic is [`crate::calendar`]'s and parsing is the `dateTime`
//! scanner's ([`crate::primitives::datetime`]): one of each in the platform.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::calendar::civil_from_days;
use crate::primitives::parse_date_time;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Now, in microseconds, never equal to or before the previous call's answer.
pub fn now_micros() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let mut previous = LAST.load(Ordering::Relaxed);
    loop {
        let next = wall.max(previous + 1);
        match LAST.compare_exchange_weak(previous, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => previous = actual,
        }
    }
}

/// The parts of an instant in UTC.
struct Utc {
    days: i64,
    year: i64,
    month: u8,
    day: u8,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
}

fn utc(micros: i64) -> Utc {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let of_day = micros.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds = of_day / MICROS_PER_SECOND;
    Utc {
        days,
        year,
        month,
        day,
        hour: seconds / 3600,
        minute: seconds / 60 % 60,
        second: seconds % 60,
        millis: of_day % MICROS_PER_SECOND / 1000,
    }
}

/// A FHIR `instant` with millisecond precision in UTC: `2024-05-01T08:30:00.123Z`.
pub fn format_instant(micros: i64) -> String {
    let t = utc(micros);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
    )
}

/// An HTTP date (`Last-Modified`): `Wed, 01 May 2024 08:30:00 GMT`.
pub fn format_http_date(micros: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = utc(micros);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        // 1970-01-01 was a Thursday.
        WEEKDAYS[t.days.rem_euclid(7) as usize],
        t.day,
        MONTHS[usize::from(t.month - 1)],
        t.year,
        t.hour,
        t.minute,
        t.second
    )
}

/// Parses a FHIR instant, or a date or dateTime, into the microseconds of its first instant. A
/// value without a time zone (a date) is read in UTC.
pub fn parse_instant(text: &str) -> Option<i64> {
    parse_date_time(text).map(|value| value.range().start)
}

/// The inclusive range of instants a FHIR date or dateTime covers, by its precision: `2024` is
/// the whole year, `2024-05-01` the whole day, `2024-05-01T08:30:00Z` that second.
pub fn parse_range(text: &str) -> Option<(i64, i64)> {
    parse_date_time(text).map(|value| {
        let range = value.range();
        (range.start, range.end - 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_format_and_parse_back() {
        let micros = 1_714_552_200_123_000;
        assert_eq!(format_instant(micros), "2024-05-01T08:30:00.123Z");
        assert_eq!(parse_instant("2024-05-01T08:30:00.123Z"), Some(micros));
        assert_eq!(parse_instant("2024-05-01T16:30:00.123+08:00"), Some(micros));
        assert_eq!(format_http_date(micros), "Wed, 01 May 2024 08:30:00 GMT");
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format_instant(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(parse_instant("2024-05-01"), Some(1_714_521_600_000_000));
        assert_eq!(parse_instant("2024"), parse_instant("2024-01-01"));
        assert_eq!(parse_instant("2024-13"), None);
        assert_eq!(parse_instant("2023-02-29"), None);
        assert_eq!(parse_instant("yesterday"), None);
    }

    #[test]
    fn date_ranges_cover_their_precision() {
        let day = 86_400_000_000;
        let (low, high) = parse_range("2024-05-01").unwrap();
        assert_eq!(high - low, day - 1);
        let (low, high) = parse_range("2024-12").unwrap();
        assert_eq!(high - low, 31 * day - 1);
        let (low, high) = parse_range("2024").unwrap();
        assert_eq!(high - low, 366 * day - 1);
        let (low, high) = parse_range("2024-05-01T08:30:00Z").unwrap();
        assert_eq!(high - low, 999_999);
        assert_eq!(
            parse_range("2024-05-01T08:30:00.5Z").map(|(l, h)| h - l),
            Some(99_999)
        );
    }

    #[test]
    fn the_clock_never_repeats() {
        let a = now_micros();
        let b = now_micros();
        assert!(b > a);
    }
}
