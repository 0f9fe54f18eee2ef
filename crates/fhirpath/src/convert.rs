//! Conversions (`toInteger()`, `toQuantity()`...) and the boundary functions
//! (`lowBoundary()`, `highBoundary()`): pure functions of one value.

use crate::datetime::{Temporal, TemporalKind};
use crate::decimal::{Decimal, MAX_SCALE};
use crate::functions::Function;
use crate::item::{Item, Repr};
use crate::quantity::{Quantity, is_calendar_keyword};

fn parse_integer(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_decimal(s: &str) -> Option<Decimal> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Decimal::parse(s)
}

/// A quantity written as text: `1 day`, `4.5 'mg'`, `1.0` (unit `1`).
fn parse_quantity(s: &str) -> Option<Quantity> {
    let s = s.trim();
    let (number, unit) = match s.find(' ') {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, ""),
    };
    let value = parse_decimal(number)?;
    let unit = if unit.is_empty() {
        "1"
    } else if let Some(quoted) = unit.strip_prefix('\'').and_then(|u| u.strip_suffix('\'')) {
        quoted
    } else if is_calendar_keyword(unit) {
        unit
    } else {
        return None;
    };
    Some(Quantity::new(value, unit))
}

/// `toX()`: the converted value, or `None` when the item does not convert.
pub(crate) fn convert<'a>(
    item: &Item<'a>,
    target: Function,
    unit: Option<&str>,
) -> Option<Item<'a>> {
    let value = item.system()?;
    Some(match target {
        Function::ToBoolean => Item::boolean(match &value {
            Repr::Boolean(b) => *b,
            Repr::Integer(1) => true,
            Repr::Integer(0) => false,
            Repr::Decimal(d) if *d == Decimal::from_i64(1) => true,
            Repr::Decimal(d) if d.is_zero() => false,
            Repr::String(s) => match s.as_str().to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "1" | "1.0" => true,
                "false" | "f" | "no" | "n" | "0" | "0.0" => false,
                _ => return None,
            },
            _ => return None,
        }),
        Function::ToInteger => Item::integer(match &value {
            Repr::Integer(i) => *i,
            Repr::Boolean(b) => *b as i64,
            Repr::String(s) => parse_integer(s.as_str())?,
            _ => return None,
        }),
        Function::ToDecimal => Item::decimal(match &value {
            Repr::Integer(i) => Decimal::from_i64(*i),
            Repr::Decimal(d) => *d,
            Repr::Boolean(b) => Decimal::new(if *b { 10 } else { 0 }, 1),
            Repr::String(s) => parse_decimal(s.as_str())?,
            _ => return None,
        }),
        Function::ToString => match value {
            Repr::String(s) => Item(Repr::String(s)),
            Repr::Integer(i) => Item::string(&i.to_string()),
            Repr::Decimal(d) => Item::string(&d.to_string()),
            Repr::Boolean(b) => Item::borrowed_string(if b { "true" } else { "false" }),
            Repr::Temporal(t) => Item::string(&t.to_string()),
            Repr::Quantity(q) => Item::string(&q.to_string()),
            _ => return None,
        },
        Function::ToDate => Item::temporal(match &value {
            Repr::Temporal(t) if t.kind == TemporalKind::Date => *t,
            Repr::Temporal(t) if t.kind == TemporalKind::DateTime => t.date_part(),
            Repr::String(s) => Temporal::parse_date(s.as_str())
                .or_else(|| Temporal::parse_date_time(s.as_str()).map(Temporal::date_part))?,
            _ => return None,
        }),
        Function::ToDateTime => Item::temporal(match &value {
            Repr::Temporal(t) if t.kind != TemporalKind::Time => t.as_date_time(),
            Repr::String(s) => Temporal::parse_date_time(s.as_str())?,
            _ => return None,
        }),
        Function::ToTime => Item::temporal(match &value {
            Repr::Temporal(t) if t.kind == TemporalKind::Time => *t,
            // `T14:34:28`, as a time literal is written, converts too.
            Repr::String(s) => {
                Temporal::parse_time(s.as_str().strip_prefix('T').unwrap_or(s.as_str()))?
            }
            _ => return None,
        }),
        Function::ToQuantity => {
            let quantity = match &value {
                Repr::Integer(i) => Quantity::new(Decimal::from_i64(*i), "1"),
                Repr::Decimal(d) => Quantity::new(*d, "1"),
                Repr::Boolean(b) => Quantity::new(Decimal::new(if *b { 10 } else { 0 }, 1), "1"),
                Repr::Quantity(q) => (**q).clone(),
                Repr::String(s) => parse_quantity(s.as_str())?,
                _ => return None,
            };
            match unit {
                Some(unit) => Item::quantity(Quantity::new(quantity.value_in(unit)?, unit)),
                None => Item::quantity(quantity),
            }
        }
        _ => return None,
    })
}

/// `lowBoundary`/`highBoundary` of a decimal, quantity or temporal value.
pub(crate) fn boundary<'a>(item: &Item<'a>, digits: Option<i64>, high: bool) -> Option<Item<'a>> {
    let decimal_boundary = |d: Decimal| -> Option<Decimal> {
        let places = digits.unwrap_or(8);
        if !(0..=MAX_SCALE as i64).contains(&places) {
            return None;
        }
        let places = places as u32;
        // Half a unit of the last written place either side.
        let half = Decimal::new(5, d.scale() + 1);
        let edge = if high {
            d.checked_add(half)?
        } else {
            d.checked_sub(half)?
        };
        if places >= edge.scale() {
            return edge.with_scale(places);
        }
        let step = Decimal::new(1, places);
        let scaled = edge.checked_div_trunc(step)?;
        let exact = scaled.checked_mul(step)? == edge;
        let mut whole = scaled.mantissa();
        if !exact {
            if high && !edge.is_negative() {
                whole += 1;
            } else if !high && edge.is_negative() {
                whole -= 1;
            }
        }
        Some(Decimal::new(whole, places))
    };
    Some(match item.system()? {
        Repr::Decimal(d) => Item::decimal(decimal_boundary(d)?),
        Repr::Integer(i) => Item::decimal(decimal_boundary(Decimal::from_i64(i))?),
        Repr::Quantity(q) => Item::quantity(Quantity {
            value: decimal_boundary(q.value)?,
            unit: q.unit.clone(),
        }),
        Repr::Temporal(t) => Item::temporal(t.boundary(digits, high)?),
        _ => return None,
    })
}
