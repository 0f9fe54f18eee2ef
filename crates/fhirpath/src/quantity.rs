//! Quantities and the part of UCUM that clinical data uses: metric prefixes, mass, length,
//! volume, time, pressure (`mm[Hg]`), the common customary units, and the FHIRPath calendar
//! keywords (`days`, `year`), so that `4 'g' = 4000 'mg'` and `7 days = 1 'wk'`.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::decimal::Decimal;

/// A value with a unit: a UCUM code (`mg`, `mm[Hg]`, `1`) or a calendar keyword (`days`).
#[derive(Clone, PartialEq)]
pub struct Quantity {
    pub value: Decimal,
    pub unit: Arc<str>,
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Quantity {
    /// FHIRPath's form: `4.5 'mg'`, or `1 week` for a calendar keyword.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_calendar_keyword(&self.unit) {
            write!(f, "{} {}", self.value, self.unit)
        } else {
            write!(f, "{} '{}'", self.value, self.unit)
        }
    }
}

pub(crate) fn is_calendar_keyword(unit: &str) -> bool {
    crate::parser::CALENDAR_UNITS.contains(&unit)
}

/// UCUM's `a` and `mo` are averages (365.25 and 30.4375 days), which FHIRPath does not
/// compare with calendar durations (`1 'mo' = 30 days` is unknown, not false).
fn calendar_against_average(a: &str, b: &str) -> bool {
    let average = |u: &str| matches!(u, "a" | "mo");
    (is_calendar_keyword(a) && average(b)) || (is_calendar_keyword(b) && average(a))
}

/// For equivalence a calendar year is a UCUM year and a calendar month a UCUM month.
fn equivalence_unit(unit: &str) -> &str {
    match unit {
        "year" | "years" => "a",
        "month" | "months" => "mo",
        other => other,
    }
}

/// Exponents of the base dimensions: length, mass, time, temperature, amount of substance,
/// calendar months (years and months are not a fixed number of seconds), international units,
/// degrees Celsius and Fahrenheit (offset scales, comparable only with themselves).
type Dimensions = [i8; 9];

/// The largest exponent a unit may carry (`m3`, `10*23`, `(m/s)2`), in either sign.
const MAX_UNIT_EXPONENT: u32 = 127;

/// A unit as a rational factor of base units: value × num / den in base units.
#[derive(Debug, Clone, Copy)]
struct Canonical {
    num: Decimal,
    den: Decimal,
    dims: Dimensions,
}

impl Canonical {
    fn one() -> Canonical {
        Canonical {
            num: Decimal::from_i64(1),
            den: Decimal::from_i64(1),
            dims: [0; 9],
        }
    }

    /// `None` when a dimension's exponent leaves -127..=127 (so that `inverse` can negate it):
    /// no unit means that, and the quantity is then not comparable.
    fn times(self, other: Canonical) -> Option<Canonical> {
        let mut dims = self.dims;
        for (d, o) in dims.iter_mut().zip(other.dims) {
            *d = d.checked_add(o).filter(|sum| *sum != i8::MIN)?;
        }
        Some(Canonical {
            num: self.num.checked_mul(other.num)?,
            den: self.den.checked_mul(other.den)?,
            dims,
        })
    }

    fn inverse(self) -> Canonical {
        let mut dims = self.dims;
        for d in dims.iter_mut() {
            *d = -*d;
        }
        Canonical {
            num: self.den,
            den: self.num,
            dims,
        }
    }

    /// `None` past an exponent of ±127: beyond what any unit means, and multiplied out one
    /// factor at a time a huge exponent of a dimensionless unit would take billions of steps.
    fn power(self, exponent: i32) -> Option<Canonical> {
        if exponent.unsigned_abs() > MAX_UNIT_EXPONENT {
            return None;
        }
        let base = if exponent < 0 { self.inverse() } else { self };
        let mut out = Canonical::one();
        for _ in 0..exponent.unsigned_abs() {
            out = out.times(base)?;
        }
        Some(out)
    }
}

fn dec(text: &str) -> Decimal {
    Decimal::parse(text).unwrap_or(Decimal::from_i64(1))
}

/// One UCUM atom: its code, whether metric prefixes apply, its factor and dimensions.
struct Atom {
    code: &'static str,
    metric: bool,
    factor: &'static str,
    dims: Dimensions,
}

const fn dims(l: i8, m: i8, t: i8) -> Dimensions {
    [l, m, t, 0, 0, 0, 0, 0, 0]
}

const ATOMS: &[Atom] = &[
    Atom {
        code: "m",
        metric: true,
        factor: "1",
        dims: dims(1, 0, 0),
    },
    Atom {
        code: "g",
        metric: true,
        factor: "1",
        dims: dims(0, 1, 0),
    },
    Atom {
        code: "s",
        metric: true,
        factor: "1",
        dims: dims(0, 0, 1),
    },
    Atom {
        code: "K",
        metric: true,
        factor: "1",
        dims: [0, 0, 0, 1, 0, 0, 0, 0, 0],
    },
    Atom {
        code: "mol",
        metric: true,
        factor: "1",
        dims: [0, 0, 0, 0, 1, 0, 0, 0, 0],
    },
    Atom {
        code: "eq",
        metric: true,
        factor: "1",
        dims: [0, 0, 0, 0, 1, 0, 0, 0, 0],
    },
    Atom {
        code: "L",
        metric: true,
        factor: "0.001",
        dims: dims(3, 0, 0),
    },
    Atom {
        code: "l",
        metric: true,
        factor: "0.001",
        dims: dims(3, 0, 0),
    },
    Atom {
        code: "t",
        metric: true,
        factor: "1000000",
        dims: dims(0, 1, 0),
    },
    Atom {
        code: "min",
        metric: false,
        factor: "60",
        dims: dims(0, 0, 1),
    },
    Atom {
        code: "h",
        metric: false,
        factor: "3600",
        dims: dims(0, 0, 1),
    },
    Atom {
        code: "d",
        metric: false,
        factor: "86400",
        dims: dims(0, 0, 1),
    },
    Atom {
        code: "wk",
        metric: false,
        factor: "604800",
        dims: dims(0, 0, 1),
    },
    Atom {
        code: "mo",
        metric: false,
        factor: "2629800",
        dims: dims(0, 0, 1),
    },
    Atom {
        code: "a",
        metric: false,
        factor: "31557600",
        dims: dims(0, 0, 1),
    },
    Atom {
        code: "Hz",
        metric: true,
        factor: "1",
        dims: dims(0, 0, -1),
    },
    Atom {
        code: "N",
        metric: true,
        factor: "1000",
        dims: dims(1, 1, -2),
    },
    Atom {
        code: "Pa",
        metric: true,
        factor: "1000",
        dims: dims(-1, 1, -2),
    },
    Atom {
        code: "bar",
        metric: true,
        factor: "100000000",
        dims: dims(-1, 1, -2),
    },
    Atom {
        code: "J",
        metric: true,
        factor: "1000",
        dims: dims(2, 1, -2),
    },
    Atom {
        code: "W",
        metric: true,
        factor: "1000",
        dims: dims(2, 1, -3),
    },
    Atom {
        code: "cal",
        metric: true,
        factor: "4184",
        dims: dims(2, 1, -2),
    },
    Atom {
        code: "m[Hg]",
        metric: true,
        factor: "133322387.415",
        dims: dims(-1, 1, -2),
    },
    Atom {
        code: "[in_i]",
        metric: false,
        factor: "0.0254",
        dims: dims(1, 0, 0),
    },
    Atom {
        code: "[ft_i]",
        metric: false,
        factor: "0.3048",
        dims: dims(1, 0, 0),
    },
    Atom {
        code: "[yd_i]",
        metric: false,
        factor: "0.9144",
        dims: dims(1, 0, 0),
    },
    Atom {
        code: "[mi_i]",
        metric: false,
        factor: "1609.344",
        dims: dims(1, 0, 0),
    },
    Atom {
        code: "[lb_av]",
        metric: false,
        factor: "453.59237",
        dims: dims(0, 1, 0),
    },
    Atom {
        code: "[oz_av]",
        metric: false,
        factor: "28.349523125",
        dims: dims(0, 1, 0),
    },
    Atom {
        code: "%",
        metric: false,
        factor: "0.01",
        dims: dims(0, 0, 0),
    },
    Atom {
        code: "[ppm]",
        metric: false,
        factor: "0.000001",
        dims: dims(0, 0, 0),
    },
    Atom {
        code: "[iU]",
        metric: true,
        factor: "1",
        dims: [0, 0, 0, 0, 0, 0, 1, 0, 0],
    },
    Atom {
        code: "[IU]",
        metric: true,
        factor: "1",
        dims: [0, 0, 0, 0, 0, 0, 1, 0, 0],
    },
    Atom {
        code: "Cel",
        metric: true,
        factor: "1",
        dims: [0, 0, 0, 0, 0, 0, 0, 1, 0],
    },
    Atom {
        code: "[degF]",
        metric: false,
        factor: "1",
        dims: [0, 0, 0, 0, 0, 0, 0, 0, 1],
    },
];

const PREFIXES: &[(&str, &str)] = &[
    ("da", "10"),
    ("Y", "1000000000000000000000000"),
    ("Z", "1000000000000000000000"),
    ("E", "1000000000000000000"),
    ("P", "1000000000000000"),
    ("T", "1000000000000"),
    ("G", "1000000000"),
    ("M", "1000000"),
    ("k", "1000"),
    ("h", "100"),
    ("d", "0.1"),
    ("c", "0.01"),
    ("m", "0.001"),
    ("u", "0.000001"),
    ("n", "0.000000001"),
    ("p", "0.000000000001"),
    ("f", "0.000000000000001"),
    ("a", "0.000000000000000001"),
];

fn atom(code: &str) -> Option<Canonical> {
    if let Some(a) = ATOMS.iter().find(|a| a.code == code) {
        return Some(Canonical {
            num: dec(a.factor),
            den: Decimal::from_i64(1),
            dims: a.dims,
        });
    }
    for (prefix, factor) in PREFIXES {
        if let Some(rest) = code.strip_prefix(prefix)
            && let Some(a) = ATOMS.iter().find(|a| a.code == rest && a.metric)
        {
            return Some(Canonical {
                num: dec(factor).checked_mul(dec(a.factor))?,
                den: Decimal::from_i64(1),
                dims: a.dims,
            });
        }
    }
    None
}

/// A calendar keyword as a unit: weeks and smaller are definite durations (the same as UCUM
/// `wk`, `d`...); years and months are counted in calendar months.
fn calendar(unit: &str) -> Option<Canonical> {
    let month = |n: i64| Canonical {
        num: Decimal::from_i64(n),
        den: Decimal::from_i64(1),
        dims: [0, 0, 0, 0, 0, 1, 0, 0, 0],
    };
    Some(match unit {
        "year" | "years" => month(12),
        "month" | "months" => month(1),
        "week" | "weeks" => atom("wk")?,
        "day" | "days" => atom("d")?,
        "hour" | "hours" => atom("h")?,
        "minute" | "minutes" => atom("min")?,
        "second" | "seconds" => atom("s")?,
        "millisecond" | "milliseconds" => atom("ms")?,
        _ => return None,
    })
}

/// Parses a UCUM unit expression such as `mg/dL`, `kg.m-2`, `/min`, `10*3/uL`, `{score}`.
fn canonical(unit: &str) -> Option<Canonical> {
    if let Some(c) = calendar(unit) {
        return Some(c);
    }
    let mut parser = UnitParser {
        text: unit.as_bytes(),
        at: 0,
    };
    let result = parser.term()?;
    (parser.at == unit.len()).then_some(result)
}

struct UnitParser<'u> {
    text: &'u [u8],
    at: usize,
}

impl UnitParser<'_> {
    fn term(&mut self) -> Option<Canonical> {
        let mut value = if self.text.get(self.at) == Some(&b'/') {
            self.at += 1;
            self.component()?.inverse()
        } else {
            self.component()?
        };
        while let Some(&op) = self.text.get(self.at) {
            match op {
                b'.' => {
                    self.at += 1;
                    value = value.times(self.component()?)?;
                }
                b'/' => {
                    self.at += 1;
                    value = value.times(self.component()?.inverse())?;
                }
                _ => break,
            }
        }
        Some(value)
    }

    fn component(&mut self) -> Option<Canonical> {
        match self.text.get(self.at)? {
            b'(' => {
                self.at += 1;
                let inner = self.term()?;
                if self.text.get(self.at) != Some(&b')') {
                    return None;
                }
                self.at += 1;
                let exponent = self.exponent();
                inner.power(exponent.unwrap_or(1))
            }
            b'{' => {
                self.skip_annotation()?;
                Some(Canonical::one())
            }
            _ => {
                let start = self.at;
                let mut depth = 0;
                while let Some(&c) = self.text.get(self.at) {
                    match c {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b'.' | b'/' | b'(' | b')' | b'{' if depth == 0 => break,
                        _ => {}
                    }
                    self.at += 1;
                }
                let symbol = std::str::from_utf8(&self.text[start..self.at]).ok()?;
                let value = simple_unit(symbol)?;
                if self.text.get(self.at) == Some(&b'{') {
                    self.skip_annotation()?;
                }
                Some(value)
            }
        }
    }

    fn exponent(&mut self) -> Option<i32> {
        let start = self.at;
        if matches!(self.text.get(self.at), Some(b'+' | b'-')) {
            self.at += 1;
        }
        while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.text[start..self.at]).ok()?;
        text.parse().ok()
    }

    fn skip_annotation(&mut self) -> Option<()> {
        while self.text.get(self.at)? != &b'}' {
            self.at += 1;
        }
        self.at += 1;
        Some(())
    }
}

/// An atom with an optional prefix and exponent (`cm2`, `s-1`), or a number (`10*3`, `1`).
fn simple_unit(symbol: &str) -> Option<Canonical> {
    if symbol.is_empty() {
        return None;
    }
    if symbol.as_bytes()[0].is_ascii_digit() {
        for separator in ["*", "^"] {
            if let Some((base, exponent)) = symbol.split_once(separator) {
                let base: i64 = base.parse().ok()?;
                let exponent: i32 = exponent.parse().ok()?;
                let one = Canonical {
                    num: Decimal::from_i64(base),
                    den: Decimal::from_i64(1),
                    dims: [0; 9],
                };
                return one.power(exponent);
            }
        }
        let n: i64 = symbol.parse().ok()?;
        return Some(Canonical {
            num: Decimal::from_i64(n),
            den: Decimal::from_i64(1),
            dims: [0; 9],
        });
    }
    if let Some(c) = atom(symbol) {
        return Some(c);
    }
    // A trailing exponent: the longest run of digits, with an optional sign before it.
    let bytes = symbol.as_bytes();
    let mut split = bytes.len();
    while split > 0 && bytes[split - 1].is_ascii_digit() {
        split -= 1;
    }
    if split == bytes.len() || split == 0 {
        return None;
    }
    if split > 1 && matches!(bytes[split - 1], b'-' | b'+') {
        split -= 1;
    }
    let exponent: i32 = symbol[split..].parse().ok()?;
    atom(&symbol[..split])?.power(exponent)
}

impl Quantity {
    pub(crate) fn new(value: Decimal, unit: &str) -> Quantity {
        Quantity {
            value,
            unit: Arc::from(unit),
        }
    }

    /// Compares two quantities; `None` when their units cannot be compared.
    pub(crate) fn compare(&self, other: &Quantity) -> Option<Ordering> {
        if self.unit == other.unit {
            return Some(self.value.compare(other.value));
        }
        if calendar_against_average(&self.unit, &other.unit) {
            return None;
        }
        let a = canonical(&self.unit)?;
        let b = canonical(&other.unit)?;
        if a.dims != b.dims {
            return None;
        }
        // a.value × a.num / a.den against b.value × b.num / b.den, without dividing.
        let left = self.value.checked_mul(a.num)?.checked_mul(b.den)?;
        let right = other.value.checked_mul(b.num)?.checked_mul(a.den)?;
        Some(left.compare(right))
    }

    /// Equivalence: equal after conversion to base units, at the precision of the less precise.
    pub(crate) fn equivalent(&self, other: &Quantity) -> bool {
        if self.unit == other.unit || equivalence_unit(&self.unit) == equivalence_unit(&other.unit)
        {
            return self.value.equivalent(other.value);
        }
        if calendar_against_average(&self.unit, &other.unit) {
            return false;
        }
        let (Some(a), Some(b)) = (self.in_base_units(), other.in_base_units()) else {
            return false;
        };
        a.0 == b.0 && a.1.equivalent(b.1)
    }

    fn in_base_units(&self) -> Option<(Dimensions, Decimal)> {
        let c = canonical(&self.unit)?;
        let value = self.value.checked_mul(c.num)?;
        let value = if c.den == Decimal::from_i64(1) {
            value
        } else {
            value.checked_div(c.den)?
        };
        Some((c.dims, value))
    }

    /// Whether the two units measure the same thing (`comparable()`).
    pub(crate) fn comparable(&self, other: &Quantity) -> bool {
        self.unit == other.unit
            || !calendar_against_average(&self.unit, &other.unit)
                && matches!((canonical(&self.unit), canonical(&other.unit)), (Some(a), Some(b)) if a.dims == b.dims)
    }

    /// This quantity's value expressed in `unit`, when the units are comparable.
    pub(crate) fn value_in(&self, unit: &str) -> Option<Decimal> {
        if &*self.unit == unit {
            return Some(self.value);
        }
        if calendar_against_average(&self.unit, unit) {
            return None;
        }
        let from = canonical(&self.unit)?;
        let to = canonical(unit)?;
        if from.dims != to.dims {
            return None;
        }
        let numerator = self.value.checked_mul(from.num)?.checked_mul(to.den)?;
        let denominator = from.den.checked_mul(to.num)?;
        numerator.checked_div(denominator)
    }

    pub(crate) fn add(&self, other: &Quantity, negate: bool) -> Option<Quantity> {
        let other_value = other.value_in(&self.unit)?;
        let other_value = if negate {
            other_value.neg()
        } else {
            other_value
        };
        Some(Quantity {
            value: self.value.checked_add(other_value)?,
            unit: self.unit.clone(),
        })
    }

    /// Product or quotient, with a unit written as the product or quotient of the two.
    pub(crate) fn multiply(&self, other: &Quantity, divide: bool) -> Option<Quantity> {
        // Scaling by a plain number keeps the unit as written (`2 years * 3` is `6 years`).
        if &*other.unit == "1" {
            let value = if divide {
                self.value.checked_div(other.value)?
            } else {
                self.value.checked_mul(other.value)?
            };
            return Some(Quantity {
                value,
                unit: self.unit.clone(),
            });
        }
        if &*self.unit == "1" && !divide {
            return Some(Quantity {
                value: self.value.checked_mul(other.value)?,
                unit: other.unit.clone(),
            });
        }
        let (a, b) = (ucum_form(&self.unit), ucum_form(&other.unit));
        let (value, unit) = if divide {
            let value = self.value.checked_div(other.value)?;
            let unit = match (a, b) {
                (a, "1") => a.to_string(),
                (a, b) if a == b => "1".to_string(),
                (a, b) => format!("({a})/({b})"),
            };
            (value, unit)
        } else {
            let unit = match (a, b) {
                ("1", b) => b.to_string(),
                (a, "1") => a.to_string(),
                (a, b) => format!("({a}).({b})"),
            };
            (self.value.checked_mul(other.value)?, unit)
        };
        Some(Quantity {
            value,
            unit: Arc::from(unit.as_str()),
        })
    }
}

/// The UCUM code for a calendar keyword, for building product units.
fn ucum_form(unit: &str) -> &str {
    match unit {
        "year" | "years" => "a",
        "month" | "months" => "mo",
        "week" | "weeks" => "wk",
        "day" | "days" => "d",
        "hour" | "hours" => "h",
        "minute" | "minutes" => "min",
        "second" | "seconds" => "s",
        "millisecond" | "milliseconds" => "ms",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(value: &str, unit: &str) -> Quantity {
        Quantity::new(Decimal::parse(value).unwrap(), unit)
    }

    #[test]
    fn metric_prefixes_convert() {
        assert_eq!(
            q("4.0000", "g").compare(&q("4000.0", "mg")),
            Some(Ordering::Equal)
        );
        assert!(q("4", "g").equivalent(&q("4040", "mg")));
        assert_eq!(q("1", "dL").compare(&q("100", "mL")), Some(Ordering::Equal));
    }

    #[test]
    fn calendar_weeks_match_ucum_weeks_but_years_do_not_match_ucum_years() {
        assert_eq!(q("7", "days").compare(&q("1", "wk")), Some(Ordering::Equal));
        assert_eq!(q("1", "a").compare(&q("1", "year")), None);
        assert_eq!(
            q("12", "months").compare(&q("1", "year")),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn products_and_quotients_of_units() {
        let area = q("2.0", "cm").multiply(&q("2.0", "m"), false).unwrap();
        assert_eq!(area.compare(&q("0.040", "m2")), Some(Ordering::Equal));
        let ratio = q("1.0", "m").multiply(&q("1.0", "m"), true).unwrap();
        assert_eq!(ratio.compare(&q("1", "1")), Some(Ordering::Equal));
        // 120 mm[Hg] is 15.9986 kPa.
        assert_eq!(
            q("120", "mm[Hg]").compare(&q("15.99", "kPa")),
            Some(Ordering::Greater)
        );
        assert_eq!(
            q("120", "mm[Hg]").compare(&q("16", "kPa")),
            Some(Ordering::Less)
        );
        assert_eq!(
            q("60", "/min").compare(&q("1", "s-1")),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn customary_units() {
        assert_eq!(
            q("185", "[lb_av]").compare(&q("200", "[lb_av]")),
            Some(Ordering::Less)
        );
        assert_eq!(
            q("1", "[lb_av]").compare(&q("453.59237", "g")),
            Some(Ordering::Equal)
        );
        assert!(q("1", "cm").comparable(&q("1", "[in_i]")));
        assert!(!q("1", "cm").comparable(&q("1", "s")));
    }
}
