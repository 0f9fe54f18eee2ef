//! Functions the catalogue's indicator SQL calls, registered on every engine's connection:
//! `age_years(birth_date, date)`, whole years of age on a date, and `age_band(birth_date,
//! date)`, the band of the indicators' age stratifier. Both read dates as written (`YYYY`,
//! `YYYY-MM` or `YYYY-MM-DD`, a dateTime's date part), and give NULL for what is not a date or
//! a date before the birth.

use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};

/// The bands of the age stratifier: (lowest age, label), ascending.
const BANDS: &[(i64, &str)] = &[(0, "0-14"), (15, "15-44"), (45, "45-64"), (65, "65+")];

pub(crate) fn register(connection: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    connection.create_scalar_function("age_years", 2, flags, |ctx| Ok(age_of(ctx)))?;
    connection.create_scalar_function("age_band", 2, flags, |ctx| {
        Ok(age_of(ctx).map(|age| band(age).to_owned()))
    })
}

fn age_of(ctx: &Context<'_>) -> Option<i64> {
    let birth: Option<String> = ctx.get(0).ok()?;
    let on: Option<String> = ctx.get(1).ok()?;
    age(&birth?, &on?)
}

/// (year, month, day) of a date as written; a missing month or day is `None`.
fn parts(text: &str) -> Option<(i64, Option<i64>, Option<i64>)> {
    let date = text.get(..10.min(text.len()))?;
    let mut fields = date.split('-');
    let year = fields.next().filter(|y| y.len() == 4)?.parse().ok()?;
    let month = match fields.next() {
        Some(m) => Some(m.parse().ok()?),
        None => None,
    };
    let day = match fields.next() {
        Some(d) => Some(d.parse().ok()?),
        None => None,
    };
    Some((year, month, day))
}

pub(crate) fn age(birth: &str, on: &str) -> Option<i64> {
    let (birth_year, birth_month, birth_day) = parts(birth)?;
    let (year, month, day) = parts(on)?;
    let mut age = year - birth_year;
    // The birthday not reached yet this year, as far as both dates tell.
    let before = match (birth_month, month) {
        (Some(bm), Some(m)) if m != bm => m < bm,
        (Some(_), Some(_)) => matches!((birth_day, day), (Some(bd), Some(d)) if d < bd),
        _ => false,
    };
    if before {
        age -= 1;
    }
    (age >= 0).then_some(age)
}

pub(crate) fn band(age: i64) -> &'static str {
    BANDS
        .iter()
        .rev()
        .find(|(lowest, _)| age >= *lowest)
        .map_or(BANDS[0].1, |(_, label)| label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_count_the_birthday() {
        assert_eq!(age("1961-07-01", "2026-06-30"), Some(64));
        assert_eq!(age("1961-07-01", "2026-07-01"), Some(65));
        assert_eq!(age("1961-07", "2026-06-30"), Some(64));
        assert_eq!(age("1961", "2026-01-01"), Some(65));
        assert_eq!(age("2027-01-01", "2026-01-01"), None);
        assert_eq!(age("x", "2026-01-01"), None);
        assert_eq!(
            [0, 14, 15, 44, 45, 64, 65, 100].map(band),
            [
                "0-14", "0-14", "15-44", "15-44", "45-64", "45-64", "65+", "65+"
            ]
        );
    }
}
