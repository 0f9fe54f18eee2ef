//! Dates as the programme counts them: whole calendar days, taken as written. A dateTime's date
//! is its first ten characters (the local date of the offset it was written with), because a
//! village doctor's "follow-up on 3 March" is the day on the clinic's calendar, not in UTC.
//! Days are numbered from 1970-01-01 by `fhir_model::calendar`, the platform's one calendar.

use fhir_model::calendar::{civil_from_days, days_from_civil, days_in_month};

/// A calendar date as a day number (days since 1970-01-01).
pub type Day = i64;

/// The date of a FHIR `date` or `dateTime` (`YYYY-MM-DD...`); `None` for a partial date (a
/// year or a month alone says too little to schedule by) or anything that is not a date.
pub fn day_of(text: &str) -> Option<Day> {
    let bytes = text.as_bytes();
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year: i64 = text.get(0..4)?.parse().ok()?;
    let month: u8 = text.get(5..7)?.parse().ok()?;
    let day: u8 = text.get(8..10)?.parse().ok()?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// `day` plus `months` calendar months: the same day of the month, or the month's last day
/// when it has no such day (31 January + 1 month = 28 or 29 February).
pub fn add_months(day: Day, months: u32) -> Day {
    let (year, month, dom) = civil_from_days(day);
    let index = year * 12 + i64::from(month) - 1 + i64::from(months);
    let (year, month) = (index.div_euclid(12), (index.rem_euclid(12) + 1) as u8);
    days_from_civil(year, month, dom.min(days_in_month(year, month)))
}

/// `YYYY-MM-DD`.
pub fn format_day(day: Day) -> String {
    let (year, month, dom) = civil_from_days(day);
    format!("{year:04}-{month:02}-{dom:02}")
}

/// Today's date in China Standard Time (UTC+8, no daylight saving): the region's calendar.
pub fn today() -> Day {
    let micros = fhir_model::clock::now_micros();
    (micros / 1_000_000 + 8 * 3600).div_euclid(86_400)
}

/// Whole years of age on `day` for someone born on `birth` (the birthday counts from its day;
/// someone born on 29 February has their birthday on 1 March in other years).
pub fn age_on(birth: Day, day: Day) -> i64 {
    let (by, bm, bd) = civil_from_days(birth);
    let (y, m, d) = civil_from_days(day);
    let mut age = y - by;
    if (m, d) < (bm, bd) {
        age -= 1;
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Day {
        day_of(text).unwrap()
    }

    #[test]
    fn months_are_calendar_months_clamped_to_the_end_of_the_month() {
        assert_eq!(format_day(add_months(d("2025-01-15"), 3)), "2025-04-15");
        assert_eq!(format_day(add_months(d("2025-11-30"), 3)), "2026-02-28");
        assert_eq!(format_day(add_months(d("2023-11-30"), 3)), "2024-02-29");
        assert_eq!(format_day(add_months(d("2025-10-31"), 3)), "2026-01-31");
    }

    #[test]
    fn a_date_time_counts_on_the_date_it_was_written_with() {
        assert_eq!(d("2025-03-03T23:30:00+08:00"), d("2025-03-03"));
        assert_eq!(day_of("2025-03"), None);
        assert_eq!(day_of("2025-02-30"), None);
        assert_eq!(day_of("garbage!!!"), None);
        assert_eq!(day_of("二〇二五年"), None);
    }

    #[test]
    fn age_counts_whole_years() {
        assert_eq!(age_on(d("1960-05-10"), d("2025-05-09")), 64);
        assert_eq!(age_on(d("1960-05-10"), d("2025-05-10")), 65);
    }
}
