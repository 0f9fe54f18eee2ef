//! Equality (`=`), equivalence (`~`) and ordering of items, with FHIRPath's rules: numbers
//! compare across Integer and Decimal, dates of different precision may compare as unknown,
//! quantities convert their units, and complex elements compare by content.

use std::cmp::Ordering;

use serde_json::Value;

use crate::datetime::{Precision, TemporalKind};
use crate::decimal::Decimal;
use crate::error::invalid;
use crate::eval::Result;
use fhir_model::{TypeDef, TypeKind};

use crate::item::{Collection, Item, Repr, SystemType, is_quantity_type};
use crate::quantity::Quantity;

fn number(value: &Repr<'_>) -> Option<Decimal> {
    match value {
        Repr::Integer(i) => Some(Decimal::from_i64(*i)),
        Repr::Decimal(d) => Some(*d),
        _ => None,
    }
}

/// `a = b` for single items: `None` when unknown (dates of different precision, quantities
/// whose units cannot be compared).
pub(crate) fn item_equality(a: &Item<'_>, b: &Item<'_>) -> Option<bool> {
    // A primitive with only an extension has no value to compare.
    let valueless = |i: &Item<'_>| {
        i.as_node()
            .is_some_and(|n| n.value.is_none() && n.extension.is_some())
    };
    if valueless(a) || valueless(b) {
        // The same element is still itself (so `distinct()` and `|` keep it once).
        let same = matches!((a.as_node(), b.as_node()), (Some(x), Some(y))
            if x.value.is_none() && y.value.is_none()
                && matches!((x.extension, y.extension), (Some(p), Some(q)) if std::ptr::eq(p, q)));
        return if same { Some(true) } else { None };
    }
    if let (Some(x), Some(y)) = (a.as_node(), b.as_node())
        && let (Some(vx), Some(vy)) = (x.value, y.value)
        && std::ptr::eq(vx, vy)
    {
        return Some(true);
    }
    if let (Some(x), Some(y)) = (a.as_node(), b.as_node())
        && let (Some(tx), Some(ty)) = (x.ty, y.ty)
        && std::ptr::eq(tx, ty)
        && (tx.kind != TypeKind::Primitive && !is_quantity_type(tx) || is_string_type(tx))
    {
        // Two elements of one complex type, or of one string type: equal when their JSON is
        // (no decimal places or time zones to reconcile).
        return Some(
            option_json_equal(x.value, y.value) && option_json_equal(x.extension, y.extension),
        );
    }
    match (a.system(), b.system()) {
        (Some(x), Some(y)) => system_equality(&x, &y),
        // Complex elements: equal when their content is.
        (None, None) => match (a.as_node(), b.as_node()) {
            (Some(x), Some(y)) => Some(
                option_json_equal(x.value, y.value) && option_json_equal(x.extension, y.extension),
            ),
            _ => Some(false),
        },
        _ => Some(false),
    }
}

fn is_string_type(ty: &TypeDef) -> bool {
    ty.kind == TypeKind::Primitive
        && SystemType::of_fhir_primitive(&ty.name) == Some(SystemType::String)
}

fn option_json_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => json_equal(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Structural JSON equality that walks two objects in step when their keys come in the same
/// order (the usual case for elements of one resource), instead of looking every key up.
fn json_equal(a: &Value, b: &Value) -> bool {
    if std::ptr::eq(a, b) {
        return true;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return false;
            }
            let mut in_step = true;
            for ((k1, v1), (k2, v2)) in x.iter().zip(y.iter()) {
                if k1 != k2 {
                    in_step = false;
                    break;
                }
                if !json_equal(v1, v2) {
                    return false;
                }
            }
            in_step
                || x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        _ => a == b,
    }
}

/// A number where a quantity is expected is a quantity of unit `1`.
fn as_unit_quantity(value: &Repr<'_>) -> Option<Quantity> {
    number(value).map(|n| Quantity::new(n, "1"))
}

fn system_equality(x: &Repr<'_>, y: &Repr<'_>) -> Option<bool> {
    Some(match (x, y) {
        (Repr::Quantity(q), n @ (Repr::Integer(_) | Repr::Decimal(_)))
        | (n @ (Repr::Integer(_) | Repr::Decimal(_)), Repr::Quantity(q)) => {
            return q
                .compare(&as_unit_quantity(n)?)
                .map(|o| o == Ordering::Equal);
        }
        (Repr::String(s), Repr::String(t)) => s.as_str() == t.as_str(),
        (Repr::Boolean(p), Repr::Boolean(q)) => p == q,
        (Repr::Integer(i), Repr::Integer(j)) => i == j,
        (Repr::Integer(_) | Repr::Decimal(_), Repr::Integer(_) | Repr::Decimal(_)) => {
            number(x)? == number(y)?
        }
        (Repr::Temporal(s), Repr::Temporal(t)) => {
            if (s.kind == TemporalKind::Time) != (t.kind == TemporalKind::Time) {
                return Some(false);
            }
            return s.compare(*t).map(|o| o == Ordering::Equal);
        }
        (Repr::Quantity(p), Repr::Quantity(q)) => {
            return p.compare(q).map(|o| o == Ordering::Equal);
        }
        (Repr::Type { fhir: f, name: n }, Repr::Type { fhir: g, name: m }) => f == g && n == m,
        _ => false,
    })
}

/// Equality as union, `distinct` and `in` use it: unknown counts as different.
pub(crate) fn items_equal(a: &Item<'_>, b: &Item<'_>) -> bool {
    item_equality(a, b) == Some(true)
}

/// `=` on collections: same length and pairwise equal; unknown if either is empty.
pub(crate) fn equal_collections(l: &Collection<'_>, r: &Collection<'_>) -> Option<bool> {
    if l.is_empty() || r.is_empty() {
        return None;
    }
    if l.len() != r.len() {
        return Some(false);
    }
    let mut unknown = false;
    for (a, b) in l.iter().zip(r.iter()) {
        match item_equality(a, b) {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown { None } else { Some(true) }
}

/// Strings are equivalent ignoring case, with every whitespace character counted as a space
/// (runs of whitespace are not collapsed, nor ends trimmed).
fn normalize_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect::<String>()
        .to_lowercase()
}

fn json_equivalent(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(s), Value::String(t)) => normalize_text(s) == normalize_text(t),
        (Value::Number(m), Value::Number(n)) => {
            match (Decimal::parse(m.as_str()), Decimal::parse(n.as_str())) {
                (Some(x), Some(y)) => x.equivalent(y),
                _ => m == n,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equivalent(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            // `id` is not part of an element's meaning.
            let keys = |m: &serde_json::Map<String, Value>| m.keys().filter(|k| *k != "id").count();
            keys(x) == keys(y)
                && x.iter()
                    .filter(|(k, _)| *k != "id")
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equivalent(v, w)))
        }
        _ => a == b,
    }
}

/// `~` for single items.
pub(crate) fn item_equivalent(a: &Item<'_>, b: &Item<'_>) -> bool {
    match (a.system(), b.system()) {
        (Some(x), Some(y)) => match (&x, &y) {
            (Repr::String(s), Repr::String(t)) => {
                normalize_text(s.as_str()) == normalize_text(t.as_str())
            }
            (Repr::Integer(_) | Repr::Decimal(_), Repr::Integer(_) | Repr::Decimal(_)) => {
                matches!((number(&x), number(&y)), (Some(p), Some(q)) if p.equivalent(q))
            }
            (Repr::Temporal(s), Repr::Temporal(t)) => {
                // Seconds and milliseconds are one precision, as for comparison.
                let level = |p: Precision| {
                    if p == Precision::Millisecond {
                        Precision::Second
                    } else {
                        p
                    }
                };
                level(s.precision) == level(t.precision) && s.compare(*t) == Some(Ordering::Equal)
            }
            (Repr::Quantity(p), Repr::Quantity(q)) => p.equivalent(q),
            _ => system_equality(&x, &y) == Some(true),
        },
        (None, None) => match (a.as_node(), b.as_node()) {
            (Some(x), Some(y)) => match (x.value, y.value) {
                (Some(p), Some(q)) => json_equivalent(p, q),
                (None, None) => true,
                _ => false,
            },
            _ => false,
        },
        _ => false,
    }
}

/// `~` on collections: both empty, or the same items in any order.
pub(crate) fn equivalent_collections(l: &Collection<'_>, r: &Collection<'_>) -> bool {
    if l.len() != r.len() {
        return false;
    }
    let mut used = vec![false; r.len()];
    'outer: for a in l {
        for (i, b) in r.iter().enumerate() {
            if !used[i] && item_equivalent(a, b) {
                used[i] = true;
                continue 'outer;
            }
        }
        return false;
    }
    true
}

/// Ordering for `<`, `>`, `sort()`, `min()`: `Ok(None)` when unknown, an error when the types
/// cannot be ordered against each other.
pub(crate) fn compare_items(a: &Item<'_>, b: &Item<'_>) -> Result<Option<Ordering>> {
    let (Some(x), Some(y)) = (a.system(), b.system()) else {
        return invalid(format!(
            "cannot compare a {} with a {}",
            a.type_name(),
            b.type_name()
        ));
    };
    Ok(match (&x, &y) {
        (Repr::Integer(i), Repr::Integer(j)) => Some(i.cmp(j)),
        (Repr::Integer(_) | Repr::Decimal(_), Repr::Integer(_) | Repr::Decimal(_)) => {
            match (number(&x), number(&y)) {
                (Some(p), Some(q)) => Some(p.compare(q)),
                _ => None,
            }
        }
        (Repr::String(s), Repr::String(t)) => Some(s.as_str().cmp(t.as_str())),
        (Repr::Boolean(p), Repr::Boolean(q)) => Some(p.cmp(q)),
        (Repr::Temporal(s), Repr::Temporal(t)) => {
            if (s.kind == TemporalKind::Time) != (t.kind == TemporalKind::Time) {
                return invalid("cannot compare a time with a date");
            }
            s.compare(*t)
        }
        (Repr::Quantity(p), Repr::Quantity(q)) => p.compare(q),
        (Repr::Quantity(q), n @ (Repr::Integer(_) | Repr::Decimal(_))) => {
            as_unit_quantity(n).and_then(|n| q.compare(&n))
        }
        (n @ (Repr::Integer(_) | Repr::Decimal(_)), Repr::Quantity(q)) => {
            as_unit_quantity(n).and_then(|n| n.compare(q))
        }
        _ => {
            return invalid(format!(
                "cannot compare a {} with a {}",
                a.type_name(),
                b.type_name()
            ));
        }
    })
}
