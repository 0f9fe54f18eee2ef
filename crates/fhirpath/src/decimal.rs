//! FHIRPath decimals: an integer mantissa and a count of decimal places, so that `1.50` keeps
//! its two places (FHIR decimals carry their precision) and `0.1 + 0.2` is exactly `0.3`.

use std::cmp::Ordering;
use std::fmt;

/// The most decimal places kept; FHIRPath asks for at least 8.
pub(crate) const MAX_SCALE: u32 = 28;
/// Places kept by division, whose results rarely terminate.
const DIVISION_SCALE: u32 = 8;

/// A decimal number. Stored as two 64-bit halves rather than an `i128` so that it is 8-aligned
/// and keeps [`crate::Item`] small.
#[derive(Clone, Copy)]
pub struct Decimal {
    lo: u64,
    hi: i64,
    scale: u8,
}

/// 10^n, or `None` past what an i128 holds.
fn checked_pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// 10^n for the scales a decimal can have (at most 29 places), where it cannot overflow.
fn pow10(n: u32) -> i128 {
    10i128.checked_pow(n).unwrap_or(i128::MAX)
}

impl Decimal {
    pub(crate) fn new(mantissa: i128, scale: u32) -> Decimal {
        Decimal {
            lo: mantissa as u64,
            hi: (mantissa >> 64) as i64,
            scale: scale as u8,
        }
    }

    pub(crate) fn from_i64(value: i64) -> Decimal {
        Decimal::new(value as i128, 0)
    }

    /// The digits as an integer: the value is `mantissa / 10^scale`.
    pub fn mantissa(self) -> i128 {
        ((self.hi as i128) << 64) | self.lo as i128
    }

    /// Decimal places as written (`1.50` has 2).
    pub fn scale(self) -> u32 {
        self.scale as u32
    }

    /// Parses JSON or FHIRPath number text: `-12`, `1.50`, `1e-3`.
    pub(crate) fn parse(text: &str) -> Option<Decimal> {
        let (body, exponent) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (negative, digits) = match body.as_bytes().first()? {
            b'-' => (true, &body[1..]),
            b'+' => (false, &body[1..]),
            _ => (false, body),
        };
        let (int_part, frac_part) = match digits.find('.') {
            Some(i) => (&digits[..i], &digits[i + 1..]),
            None => (digits, ""),
        };
        if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !frac_part.bytes().all(|b| b.is_ascii_digit())
            || (digits.contains('.') && frac_part.is_empty())
        {
            return None;
        }
        let mut mantissa: i128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            mantissa = mantissa.checked_mul(10)?.checked_add((b - b'0') as i128)?;
        }
        let mut scale = frac_part.len() as i32 - exponent;
        while scale < 0 {
            mantissa = mantissa.checked_mul(10)?;
            scale += 1;
        }
        while scale > MAX_SCALE as i32 + 1 {
            mantissa /= 10;
            scale -= 1;
        }
        let value = Decimal::new(if negative { -mantissa } else { mantissa }, scale as u32);
        if scale as u32 > MAX_SCALE {
            Some(value.round(MAX_SCALE))
        } else {
            Some(value)
        }
    }

    pub(crate) fn is_zero(self) -> bool {
        self.mantissa() == 0
    }

    pub(crate) fn is_negative(self) -> bool {
        self.mantissa() < 0
    }

    /// The same value with `scale` places (more places are exact; fewer round half away from
    /// zero). `None` on overflow.
    pub(crate) fn with_scale(self, scale: u32) -> Option<Decimal> {
        let current = self.scale();
        if scale >= current {
            Some(Decimal::new(
                self.mantissa()
                    .checked_mul(checked_pow10(scale - current)?)?,
                scale,
            ))
        } else {
            Some(self.round(scale))
        }
    }

    /// Both operands at the same scale, for adding and comparing.
    fn aligned(self, other: Decimal) -> Option<(i128, i128, u32)> {
        let scale = self.scale().max(other.scale());
        Some((
            self.with_scale(scale)?.mantissa(),
            other.with_scale(scale)?.mantissa(),
            scale,
        ))
    }

    pub(crate) fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let (a, b, scale) = self.aligned(other)?;
        Some(Decimal::new(a.checked_add(b)?, scale))
    }

    pub(crate) fn checked_sub(self, other: Decimal) -> Option<Decimal> {
        let (a, b, scale) = self.aligned(other)?;
        Some(Decimal::new(a.checked_sub(b)?, scale))
    }

    pub(crate) fn checked_mul(self, other: Decimal) -> Option<Decimal> {
        let mut mantissa = self.mantissa().checked_mul(other.mantissa())?;
        let mut scale = self.scale() + other.scale();
        while scale > MAX_SCALE {
            mantissa /= 10;
            scale -= 1;
        }
        Some(Decimal::new(mantissa, scale))
    }

    /// `self / other` to at least 8 places, trailing zeros removed; `None` for division by zero.
    pub(crate) fn checked_div(self, other: Decimal) -> Option<Decimal> {
        if other.is_zero() {
            return None;
        }
        let scale = DIVISION_SCALE.max(self.scale()).max(other.scale());
        // a/b at `scale` places: a * 10^(scale + b.scale - a.scale + 1) / b, then round the extra place.
        let shift = scale + other.scale() + 1;
        let numerator = if shift >= self.scale() {
            self.mantissa()
                .checked_mul(checked_pow10(shift - self.scale())?)?
        } else {
            self.mantissa() / checked_pow10(self.scale() - shift)?
        };
        let quotient = numerator.checked_div(other.mantissa())?;
        let rounded = round_last_digit(quotient);
        Some(Decimal::new(rounded, scale).normalized())
    }

    /// Truncated division (`div`).
    pub(crate) fn checked_div_trunc(self, other: Decimal) -> Option<Decimal> {
        let (a, b, _) = self.aligned(other)?;
        if b == 0 {
            return None;
        }
        Some(Decimal::new(a.checked_div(b)?, 0))
    }

    /// Remainder of truncated division (`mod`).
    pub(crate) fn checked_rem(self, other: Decimal) -> Option<Decimal> {
        let (a, b, scale) = self.aligned(other)?;
        if b == 0 {
            return None;
        }
        Some(Decimal::new(a.checked_rem(b)?, scale))
    }

    pub(crate) fn neg(self) -> Decimal {
        Decimal::new(-self.mantissa(), self.scale())
    }

    pub(crate) fn abs(self) -> Decimal {
        Decimal::new(self.mantissa().abs(), self.scale())
    }

    /// Without trailing zeros after the point.
    pub(crate) fn normalized(self) -> Decimal {
        let mut mantissa = self.mantissa();
        let mut scale = self.scale();
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        Decimal::new(mantissa, scale)
    }

    /// Rounded half away from zero to `places`.
    pub(crate) fn round(self, places: u32) -> Decimal {
        if places >= self.scale() {
            return self;
        }
        let drop = self.scale() - places;
        let divisor = pow10(drop);
        let m = self.mantissa();
        let mut q = m / divisor;
        let r = (m % divisor).abs();
        if r * 2 >= divisor {
            q += m.signum();
        }
        Decimal::new(q, places)
    }

    pub(crate) fn floor(self) -> Decimal {
        let divisor = pow10(self.scale());
        Decimal::new(self.mantissa().div_euclid(divisor), 0)
    }

    pub(crate) fn ceiling(self) -> Decimal {
        let divisor = pow10(self.scale());
        let m = self.mantissa();
        let q = m.div_euclid(divisor);
        Decimal::new(if m.rem_euclid(divisor) == 0 { q } else { q + 1 }, 0)
    }

    pub(crate) fn truncate(self) -> Decimal {
        Decimal::new(self.mantissa() / pow10(self.scale()), 0)
    }

    /// The integer value, when there is no fraction and it fits.
    pub(crate) fn to_i64_exact(self) -> Option<i64> {
        let divisor = pow10(self.scale());
        let m = self.mantissa();
        if m % divisor != 0 {
            return None;
        }
        i64::try_from(m / divisor).ok()
    }

    /// The nearest binary float (for indexing ranges; FHIRPath arithmetic stays decimal).
    pub fn to_f64(self) -> f64 {
        self.mantissa() as f64 / 10f64.powi(self.scale() as i32)
    }

    /// The shortest decimal that reads back as `value`; `None` for infinities and NaN.
    pub(crate) fn from_f64(value: f64) -> Option<Decimal> {
        if !value.is_finite() {
            return None;
        }
        let text = format!("{value}");
        let parsed = Decimal::parse(&text)?;
        Some(if parsed.scale() > MAX_SCALE {
            parsed.round(MAX_SCALE)
        } else {
            parsed
        })
    }

    /// Numeric comparison, whatever the scales.
    pub(crate) fn compare(self, other: Decimal) -> Ordering {
        match self.aligned(other) {
            Some((a, b, _)) => a.cmp(&b),
            None => self
                .to_f64()
                .partial_cmp(&other.to_f64())
                .unwrap_or(Ordering::Equal),
        }
    }

    /// FHIRPath equivalence: equal when rounded to the places of the less precise operand.
    pub(crate) fn equivalent(self, other: Decimal) -> bool {
        let places = self.scale().min(other.scale());
        self.round(places).compare(other.round(places)) == Ordering::Equal
    }

    /// Digits after the point plus before, as `precision()` counts them for a decimal.
    pub(crate) fn precision(self) -> u32 {
        self.scale()
    }
}

fn round_last_digit(value: i128) -> i128 {
    let q = value / 10;
    let r = (value % 10).abs();
    if r >= 5 { q + value.signum() } else { q }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Decimal) -> bool {
        self.compare(*other) == Ordering::Equal
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.mantissa();
        let scale = self.scale() as usize;
        let digits = m.unsigned_abs().to_string();
        if m < 0 {
            f.write_str("-")?;
        }
        if scale == 0 {
            return f.write_str(&digits);
        }
        if digits.len() <= scale {
            f.write_str("0.")?;
            for _ in 0..scale - digits.len() {
                f.write_str("0")?;
            }
            f.write_str(&digits)
        } else {
            let (int, frac) = digits.split_at(digits.len() - scale);
            write!(f, "{int}.{frac}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text).unwrap()
    }

    #[test]
    fn keeps_written_precision() {
        assert_eq!(d("1.50").to_string(), "1.50");
        assert_eq!(d("1.50").scale(), 2);
        assert_eq!(d("-0.0034").to_string(), "-0.0034");
        assert_eq!(d("1e-3").to_string(), "0.001");
        assert_eq!(
            d("1234567890987654321.0").to_string(),
            "1234567890987654321.0"
        );
    }

    #[test]
    fn division_rounds_to_eight_places() {
        assert_eq!(
            d("1.2").checked_div(d("1.8")).unwrap().to_string(),
            "0.66666667"
        );
        assert_eq!(d("1").checked_div(d("2")).unwrap().to_string(), "0.5");
        assert!(d("1").checked_div(d("0")).is_none());
    }

    #[test]
    fn equivalence_uses_the_less_precise_operand() {
        assert!(d("0.66666667").equivalent(d("0.67")));
        assert!(!d("0.66666667").equivalent(d("0.6")));
        assert_eq!(d("1.10"), d("1.1"));
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(d("3.14159").round(3).to_string(), "3.142");
        assert_eq!(d("-1.5").round(0).to_string(), "-2");
        assert_eq!(d("-1.1").ceiling().to_string(), "-1");
        assert_eq!(d("-1.1").floor().to_string(), "-2");
        assert_eq!(d("-1.56").truncate().to_string(), "-1");
    }

    #[test]
    fn modulo_and_integer_division() {
        assert_eq!(d("2.2").checked_rem(d("1.8")).unwrap(), d("0.4"));
        assert_eq!(d("2.2").checked_div_trunc(d("1.8")).unwrap(), d("1"));
    }
}
