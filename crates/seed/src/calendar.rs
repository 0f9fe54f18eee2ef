//! Dates and times as plain integers (days and minutes since 1970-01-01, China Standard Time),
//! and their FHIR spellings. Every clinical time the region records is local time, +08:00.

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    pub const fn new(year: i32, month: u32, day: u32) -> Date {
        Date { year, month, day }
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar.
    pub fn days(self) -> i64 {
        fhir_model::calendar::days_from_civil(
            i64::from(self.year),
            self.month as u8,
            self.day as u8,
        )
    }

    /// The date `days` after 1970-01-01 (the inverse of [`Date::days`]).
    pub fn from_days(days: i64) -> Date {
        let (year, month, day) = fhir_model::calendar::civil_from_days(days);
        Date {
            year: year as i32,
            month: u32::from(month),
            day: u32::from(day),
        }
    }

    /// The `index`-th day (0..365) of a common year, used for birthdays: a generated birthday
    /// is never 29 February, so it exists in every year.
    pub fn common_year_day(year: i32, index: u32) -> Date {
        const MONTH_LENGTHS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let mut rest = index % 365;
        for (month, length) in MONTH_LENGTHS.iter().enumerate() {
            if rest < *length {
                return Date::new(year, month as u32 + 1, rest + 1);
            }
            rest -= length;
        }
        unreachable!("365 days fill the twelve months")
    }

    /// Whole years from `self` to `on` (an age).
    pub fn years_until(self, on: Date) -> i32 {
        on.year - self.year - i32::from((on.month, on.day) < (self.month, self.day))
    }

    /// `YYYY-MM-DD`.
    pub fn fhir(self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `YYYYMMDD`, as in resident ID numbers.
    pub fn compact(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }
}

/// A moment, in minutes since 1970-01-01T00:00 China Standard Time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Moment(pub i64);

pub const MINUTES_PER_DAY: i64 = 24 * 60;

impl Moment {
    /// `day` (days since the epoch) at `hour:minute`.
    pub fn at(day: i64, hour: i64, minute: i64) -> Moment {
        Moment(day * MINUTES_PER_DAY + hour * 60 + minute)
    }

    pub fn day(self) -> i64 {
        self.0.div_euclid(MINUTES_PER_DAY)
    }

    pub fn plus_minutes(self, minutes: i64) -> Moment {
        Moment(self.0 + minutes)
    }

    pub fn plus_days(self, days: i64) -> Moment {
        Moment(self.0 + days * MINUTES_PER_DAY)
    }

    /// A FHIR `dateTime` (and `instant`): `YYYY-MM-DDThh:mm:00+08:00`.
    pub fn fhir(self) -> String {
        let date = Date::from_days(self.day());
        let minute_of_day = self.0.rem_euclid(MINUTES_PER_DAY);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:00+08:00",
            date.year,
            date.month,
            date.day,
            minute_of_day / 60,
            minute_of_day % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates_round_trip_across_leap_years_and_centuries() {
        assert_eq!(Date::new(1970, 1, 1).days(), 0);
        assert_eq!(
            Date::new(2000, 3, 1).days() - Date::new(2000, 2, 28).days(),
            2
        );
        assert_eq!(
            Date::new(1900, 3, 1).days() - Date::new(1900, 2, 28).days(),
            1
        );
        for days in (-60_000..60_000).step_by(7) {
            assert_eq!(Date::from_days(days).days(), days);
        }
        assert_eq!(Date::common_year_day(2024, 59), Date::new(2024, 3, 1));
        assert_eq!(Date::common_year_day(2023, 364), Date::new(2023, 12, 31));
    }

    #[test]
    fn moments_are_written_in_china_standard_time() {
        let moment = Moment::at(Date::new(2025, 3, 4).days(), 8, 5);
        assert_eq!(moment.fhir(), "2025-03-04T08:05:00+08:00");
        assert_eq!(
            Date::new(1949, 12, 31).years_until(Date::new(2026, 12, 30)),
            76
        );
        assert_eq!(
            Date::new(1949, 12, 31).years_until(Date::new(2026, 12, 31)),
            77
        );
    }
}
