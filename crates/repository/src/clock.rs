//! Server time: microseconds since the Unix epoch, strictly increasing within the process so
//! that two versions written one after the other never share an instant, and the FHIR and HTTP
//! text forms of it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

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

fn to_datetime(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A FHIR `instant` with millisecond precision in UTC: `2024-05-01T08:30:00.123Z`.
pub fn format_instant(micros: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    to_datetime(micros).format(&format).unwrap_or_default()
}

/// An HTTP date (`Last-Modified`): `Wed, 01 May 2024 08:30:00 GMT`.
pub fn format_http_date(micros: i64) -> String {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    to_datetime(micros).format(&format).unwrap_or_default()
}

/// Parses a FHIR instant or dateTime with a time zone into microseconds. A date without time
/// (`2024-05-01`, `2024-05`, `2024`) means its first instant, in UTC.
pub fn parse_instant(text: &str) -> Option<i64> {
    if let Ok(datetime) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some((datetime.unix_timestamp_nanos() / 1000) as i64);
    }
    let (year, rest) = (text.get(0..4)?, text.get(4..)?);
    let year: i32 = year.parse().ok()?;
    let (month, day) = match rest {
        "" => (1, 1),
        _ => {
            let rest = rest.strip_prefix('-')?;
            let (month, day) = match rest.split_once('-') {
                Some((m, d)) => (m, Some(d)),
                None => (rest, None),
            };
            let month: u8 = if month.len() == 2 {
                month.parse().ok()?
            } else {
                return None;
            };
            let day: u8 = match day {
                Some(d) if d.len() == 2 => d.parse().ok()?,
                Some(_) => return None,
                None => 1,
            };
            (month, day)
        }
    };
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some((date.midnight().assume_utc().unix_timestamp_nanos() / 1000) as i64)
}

/// The range of instants a FHIR date or dateTime covers, by its precision: `2024` is the whole
/// year, `2024-05-01` the whole day, `2024-05-01T08:30:00Z` that second.
pub fn parse_range(text: &str) -> Option<(i64, i64)> {
    let low = parse_instant(text)?;
    let low_date = to_datetime(low);
    let high = match text.len() {
        4 => low_date.replace_year(low_date.year() + 1).ok()?,
        7 => {
            let (year, month) = match low_date.month() {
                time::Month::December => (low_date.year() + 1, time::Month::January),
                m => (low_date.year(), m.next()),
            };
            low_date
                .replace_day(1)
                .ok()?
                .replace_year(year)
                .ok()?
                .replace_month(month)
                .ok()?
        }
        10 => low_date + time::Duration::days(1),
        _ => {
            // A dateTime: precise to its written fraction of a second, or to the second.
            let fraction_digits = text
                .split_once('.')
                .map(|(_, rest)| rest.bytes().take_while(u8::is_ascii_digit).count())
                .unwrap_or(0);
            let step = 10i64.pow(6u32.saturating_sub(fraction_digits.min(6) as u32));
            return Some((low, low + step - 1));
        }
    };
    Some((low, (high.unix_timestamp_nanos() / 1000) as i64 - 1))
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
        assert_eq!(parse_instant("2024-05-01"), Some(1_714_521_600_000_000));
        assert_eq!(parse_instant("2024"), parse_instant("2024-01-01"));
        assert_eq!(parse_instant("2024-13"), None);
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
