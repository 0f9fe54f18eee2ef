//! One JSON value of a row as the Arrow value its column holds, or why it does not fit: every
//! conversion the Parquet writer makes is exact or refused, never rounded or truncated.

use std::borrow::Cow;

use base64::Engine as _;
use fhir_model::calendar::days_from_civil;
use fhirpath::{Precision, Temporal};
use serde_json::Value;

use crate::ColumnType;

/// The scale of decimal columns: digits kept after the point. With a precision of 38 (the
/// most a 128-bit decimal holds) it leaves 20 digits before the point, more than an
/// `integer64` has.
pub(super) const DECIMAL_SCALE: i8 = 18;
pub(super) const DECIMAL_PRECISION: u8 = 38;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// A value converted for its column's Arrow array, borrowing text from the row when it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cell<'r> {
    Null,
    Boolean(bool),
    Integer(i32),
    Integer64(i64),
    /// Unscaled: the value times 10^[`DECIMAL_SCALE`].
    Decimal(i128),
    Text(Cow<'r, str>),
    Bytes(Vec<u8>),
    /// Microseconds since 1970-01-01T00:00:00Z.
    Timestamp(i64),
    /// Microseconds since midnight.
    Time(i64),
}

/// `value` as a cell of a column of `column_type`. `type_known` is false when the column's type
/// is only the default (text): its values come as the path found them, so a number or a boolean
/// there is written as its JSON text rather than refused.
pub(super) fn cell(
    column_type: ColumnType,
    type_known: bool,
    value: &Value,
) -> Result<Cell<'_>, String> {
    if value.is_null() {
        return Ok(Cell::Null);
    }
    if value.is_array() {
        return Err("a list of values in a column that is not a collection".to_string());
    }
    let text = || {
        value
            .as_str()
            .ok_or_else(|| format!("{value} is not a {}", column_type.name()))
    };
    Ok(match column_type {
        ColumnType::Boolean => Cell::Boolean(
            value
                .as_bool()
                .ok_or_else(|| format!("{value} is not a boolean"))?,
        ),
        ColumnType::Integer => Cell::Integer(
            value
                .as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| format!("{value} is not an integer of 32 bits"))?,
        ),
        ColumnType::Integer64 => Cell::Integer64(
            value
                .as_i64()
                .ok_or_else(|| format!("{value} is not an integer of 64 bits"))?,
        ),
        ColumnType::Decimal => match value {
            Value::Number(number) => Cell::Decimal(unscaled_decimal(&number.to_string())?),
            _ => return Err(format!("{value} is not a decimal")),
        },
        ColumnType::String if !type_known => match value {
            Value::String(text) => Cell::Text(Cow::Borrowed(text)),
            other => Cell::Text(Cow::Owned(other.to_string())),
        },
        ColumnType::String => Cell::Text(Cow::Borrowed(text()?)),
        ColumnType::Binary => Cell::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(text()?)
                .map_err(|e| format!("{value} is not base64: {e}"))?,
        ),
        ColumnType::Date => {
            let text = text()?;
            Temporal::parse_date(text).ok_or_else(|| format!("{value} is not a date"))?;
            Cell::Text(Cow::Borrowed(text))
        }
        ColumnType::DateTime => {
            let text = text()?;
            Temporal::parse_date_time(text).ok_or_else(|| format!("{value} is not a dateTime"))?;
            Cell::Text(Cow::Borrowed(text))
        }
        ColumnType::Instant => Cell::Timestamp(instant_micros(text()?)?),
        ColumnType::Time => Cell::Time(time_micros(text()?)?),
        ColumnType::Json => match value {
            Value::Object(_) => Cell::Text(Cow::Owned(value.to_string())),
            _ => return Err(format!("{value} is not an object")),
        },
    })
}

/// A JSON number's text (`1.50`, `-3`, `6.02e23`) as a 128-bit integer at [`DECIMAL_SCALE`]:
/// refused when it has more digits after the point than the scale, or more before it than the
/// precision leaves, rather than rounded.
fn unscaled_decimal(text: &str) -> Result<i128, String> {
    let too_large = || {
        format!(
            "{text} does not fit a decimal of {} digits before the point and {DECIMAL_SCALE} after",
            DECIMAL_PRECISION as i8 - DECIMAL_SCALE
        )
    };
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, "0"),
    };
    let exponent: i64 = exponent
        .strip_prefix('+')
        .unwrap_or(exponent)
        .parse()
        .map_err(|_| too_large())?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = [whole, fraction].concat();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text} is not a decimal"));
    }
    // The value is `digits` × 10^-places; trailing zeros change neither the value nor whether
    // it fits, leading ones neither.
    let mut places = (fraction.len() as i64).saturating_sub(exponent);
    let mut digits = digits.trim_start_matches('0');
    while places > 0 && digits.ends_with('0') {
        digits = &digits[..digits.len() - 1];
        places -= 1;
    }
    if digits.is_empty() {
        return Ok(0);
    }
    let shift = i64::from(DECIMAL_SCALE).saturating_sub(places);
    if shift < 0 || (digits.len() as i64).saturating_add(shift) > i64::from(DECIMAL_PRECISION) {
        return Err(too_large());
    }
    let mut unscaled: i128 = digits.parse().map_err(|_| too_large())?;
    unscaled *= 10_i128.pow(shift as u32);
    Ok(if negative { -unscaled } else { unscaled })
}

/// An `instant` (`2020-03-15T10:30:00.123+01:00`) as microseconds since the epoch in UTC. It
/// must have seconds and a zone, as FHIR's instants do; digits past the microsecond must be
/// zeros.
fn instant_micros(text: &str) -> Result<i64, String> {
    let instant = Temporal::parse_date_time(text)
        .filter(|t| t.precision >= Precision::Second)
        .ok_or_else(|| format!("\"{text}\" is not an instant (a date and time to the second)"))?;
    let offset = instant
        .offset_minutes
        .ok_or_else(|| format!("\"{text}\" is not an instant: it has no time zone"))?;
    // FHIR's zones run from -14:00 to +14:00; the date-time reader takes any two digits.
    if offset.abs() > 14 * 60 {
        return Err(format!(
            "\"{text}\" is not an instant: its zone is out of range"
        ));
    }
    let days = days_from_civil(i64::from(instant.year), instant.month, instant.day);
    let seconds = days * 86_400
        + i64::from(instant.hour) * 3_600
        + i64::from(instant.minute) * 60
        + i64::from(instant.second)
        - i64::from(offset) * 60;
    Ok(seconds * MICROS_PER_SECOND + fraction_micros(text)?)
}

/// A `time` (`14:30:00`, `14:30:00.250`) as microseconds since midnight: to the second at
/// least, as FHIR's times are.
fn time_micros(text: &str) -> Result<i64, String> {
    let time = Temporal::parse_time(text)
        .filter(|t| t.precision >= Precision::Second)
        .ok_or_else(|| format!("\"{text}\" is not a time (hours, minutes and seconds)"))?;
    let seconds =
        i64::from(time.hour) * 3_600 + i64::from(time.minute) * 60 + i64::from(time.second);
    Ok(seconds * MICROS_PER_SECOND + fraction_micros(text)?)
}

/// The fraction of a second written in an instant or a time already parsed (the only `.` it
/// has), in microseconds; digits past the sixth must be zeros.
fn fraction_micros(text: &str) -> Result<i64, String> {
    let Some((_, fraction)) = text.split_once('.') else {
        return Ok(0);
    };
    let digits = fraction.bytes().take_while(u8::is_ascii_digit);
    let mut micros = 0;
    for (place, digit) in digits.enumerate() {
        let digit = i64::from(digit - b'0');
        if place < 6 {
            micros = micros * 10 + digit;
        } else if digit != 0 {
            return Err(format!(
                "\"{text}\" is more precise than the microsecond a timestamp keeps"
            ));
        }
    }
    let written = fraction
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count()
        .min(6);
    Ok(micros * 10_i64.pow(6 - written as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_are_exact_at_scale_18_or_refused() {
        let scale = 10_i128.pow(18);
        assert_eq!(unscaled_decimal("1.50"), Ok(15 * scale / 10));
        assert_eq!(unscaled_decimal("-0.001"), Ok(-scale / 1000));
        assert_eq!(unscaled_decimal("0"), Ok(0));
        assert_eq!(unscaled_decimal("-0.000"), Ok(0));
        assert_eq!(unscaled_decimal("6.02e2"), Ok(602 * scale));
        assert_eq!(unscaled_decimal("25E-1"), Ok(25 * scale / 10));
        assert_eq!(unscaled_decimal("1e+3"), Ok(1000 * scale));
        assert_eq!(unscaled_decimal("0.000000000000000001"), Ok(1));
        // Zeros past the scale are the same value; other digits would be lost.
        assert_eq!(
            unscaled_decimal("2.5000000000000000000000"),
            Ok(25 * scale / 10)
        );
        assert!(unscaled_decimal("0.0000000000000000001").is_err());
        assert_eq!(
            unscaled_decimal("99999999999999999999.999999999999999999"),
            Ok(10_i128.pow(38) - 1)
        );
        assert!(unscaled_decimal("100000000000000000000").is_err());
        assert!(unscaled_decimal("1e9999999999999999999999").is_err());
        assert!(unscaled_decimal("1e-9999999999").is_err());
        assert!(unscaled_decimal("1e9223372036854775807").is_err());
        assert!(unscaled_decimal("1.5e-9223372036854775808").is_err());
        assert!(unscaled_decimal("0e9223372036854775807").is_ok());
    }

    #[test]
    fn instants_and_times_become_microseconds() {
        assert_eq!(instant_micros("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(instant_micros("1970-01-01T01:00:00.5+01:00"), Ok(500_000));
        assert_eq!(
            instant_micros("2020-03-15T10:30:00.123456-05:00"),
            Ok(1_584_286_200_123_456)
        );
        assert_eq!(instant_micros("1969-12-31T23:59:59.999999Z"), Ok(-1));
        assert_eq!(
            instant_micros("2020-03-15T10:30:00.1234560Z").map(|m| m % 1_000_000),
            Ok(123_456)
        );
        assert!(instant_micros("2020-03-15T10:30:00.1234567Z").is_err());
        assert!(instant_micros("2020-03-15T10:30:00").is_err(), "no zone");
        assert!(instant_micros("2020-03-15T10:30Z").is_err(), "no seconds");
        assert!(instant_micros("2020-03-15").is_err());
        assert_eq!(
            instant_micros("2020-03-15T00:00:00+14:00"),
            Ok(1_584_180_000_000_000)
        );
        assert!(instant_micros("2020-03-15T00:00:00+15:00").is_err());
        assert_eq!(time_micros("00:00:01"), Ok(1_000_000));
        assert_eq!(time_micros("23:59:59.25"), Ok(86_399_250_000));
        assert!(time_micros("14:30").is_err());
        assert!(time_micros("25:00:00").is_err());
    }

    #[test]
    fn values_that_do_not_fit_their_column_are_refused_with_the_value() {
        let refused = |ty, value: Value| cell(ty, true, &value).unwrap_err();
        assert_eq!(
            refused(ColumnType::Boolean, json!("true")),
            "\"true\" is not a boolean"
        );
        assert_eq!(
            refused(ColumnType::Integer, json!(3_000_000_000_u64)),
            "3000000000 is not an integer of 32 bits"
        );
        assert_eq!(
            refused(ColumnType::Binary, json!("not base64!"))
                .split(':')
                .next(),
            Some("\"not base64!\" is not base64")
        );
        assert_eq!(
            refused(ColumnType::Date, json!("2020-13")),
            "\"2020-13\" is not a date"
        );
        assert_eq!(
            refused(ColumnType::DateTime, json!("yesterday")),
            "\"yesterday\" is not a dateTime"
        );
        assert_eq!(
            refused(ColumnType::Json, json!("text")),
            "\"text\" is not an object"
        );
        assert_eq!(
            refused(ColumnType::String, json!(["a"])),
            "a list of values in a column that is not a collection"
        );
        assert_eq!(refused(ColumnType::String, json!(1)), "1 is not a string");
        // A column of unknown type takes what its path found, as text.
        assert_eq!(
            cell(
                ColumnType::String,
                false,
                &serde_json::from_str("1.50").unwrap()
            ),
            Ok(Cell::Text(Cow::Owned("1.50".to_string())))
        );
        assert_eq!(
            cell(ColumnType::Date, true, &json!("1970")),
            Ok(Cell::Text(Cow::Borrowed("1970")))
        );
    }
}
