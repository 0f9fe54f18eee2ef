//! The evaluator: walks a compiled tree over borrowed JSON. Paths, variables and operators live
//! here; functions live in `builtins.rs`, equality and ordering in `compare.rs`.

use std::cell::Cell;

use serde_json::Value;

use crate::compare::{compare_items, equal_collections, equivalent_collections, items_equal};
use crate::compile::{Op, TypeSpec, Variable};
use crate::datetime::{CalendarUnit, Temporal, TemporalKind};
use crate::decimal::Decimal;
use crate::env::Environment;
use crate::error::{EvalError, invalid};
use crate::item::{Collection, Item, Repr, Str};
use crate::navigate::{self, model};
use crate::parser::BinaryOp;
use crate::quantity::Quantity;

pub(crate) type Result<T> = std::result::Result<T, EvalError>;

/// What one evaluation may spend, in steps: one per operation evaluated, one per item of each
/// function's input and of each collection `combine()` or `$total` makes, one per comparison that de-duplicating or matching collections makes, one per byte of each
/// string it builds. FHIRPath can loop (`1.repeat($this + 1)`), double a collection or a string
/// at every step (`aggregate($total | $total)`), or compare two large collections item by item;
/// the budget turns each of these into an error instead of a hung thread or an exhausted memory.
/// Ten million steps take well under a second; search indexing of a large Bundle spends a few
/// hundred thousand.
pub(crate) const MAX_COST: u64 = 10_000_000;

/// What one evaluation sees: the environment and the context it started from, and what is left
/// of its budget.
pub(crate) struct Evaluator<'e, 'a> {
    pub env: &'e Environment<'a>,
    pub context: &'e Collection<'a>,
    /// `%resource`: the environment's, or the context's own JSON.
    pub resource: Option<&'a Value>,
    /// Steps left of [`MAX_COST`].
    pub budget: Cell<u64>,
}

/// `$this`, `$index` and `$total` at some point of the evaluation.
pub(crate) struct Scope<'s, 'a> {
    pub this: &'s Collection<'a>,
    pub index: Option<usize>,
    pub total: Option<&'s Collection<'a>>,
}

impl<'s, 'a> Scope<'s, 'a> {
    pub(crate) fn of(this: &'s Collection<'a>) -> Scope<'s, 'a> {
        Scope {
            this,
            index: None,
            total: None,
        }
    }
}

/// The only item of a collection; `None` when empty, an error when there are several.
pub(crate) fn singleton<'c, 'a>(
    items: &'c Collection<'a>,
    what: &str,
) -> Result<Option<&'c Item<'a>>> {
    match items.as_slice() {
        [] => Ok(None),
        [item] => Ok(Some(item)),
        _ => invalid(format!("{what} expects a single item, got {}", items.len())),
    }
}

/// Like [`singleton`], but a primitive that has only an extension (no value) counts as
/// empty: operators and functions on values see nothing there.
pub(crate) fn value_singleton<'c, 'a>(
    items: &'c Collection<'a>,
    what: &str,
) -> Result<Option<&'c Item<'a>>> {
    Ok(singleton(items, what)?
        .filter(|item| !matches!(&item.0, Repr::Node(node) if node.value.is_none())))
}

/// Singleton evaluation as a boolean: a single boolean is itself, any other single item is
/// true, an empty collection is unknown.
pub(crate) fn truth(items: &Collection<'_>, what: &str) -> Result<Option<bool>> {
    let Some(item) = singleton(items, what)? else {
        return Ok(None);
    };
    Ok(Some(match item.system() {
        Some(Repr::Boolean(b)) => b,
        _ => true,
    }))
}

fn boolean_result<'a>(value: Option<bool>) -> Collection<'a> {
    match value {
        Some(b) => Collection::boolean(b),
        None => Collection::new(),
    }
}

/// A value of a System type, for operators: numbers, strings, temporals, quantities.
pub(crate) fn system_value<'a>(item: &Item<'a>, what: &str) -> Result<Repr<'a>> {
    match item.system() {
        Some(value) => Ok(value),
        None => invalid(format!("{what} cannot apply to a {}", item.type_name())),
    }
}

impl<'e, 'a> Evaluator<'e, 'a> {
    /// Spends `steps` of the budget; an error once it is spent.
    #[inline]
    pub(crate) fn charge(&self, steps: usize) -> Result<()> {
        let steps = u64::try_from(steps).unwrap_or(u64::MAX);
        match self.budget.get().checked_sub(steps) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => {
                self.budget.set(0);
                Err(EvalError::TooCostly { limit: MAX_COST })
            }
        }
    }

    /// Spends one step per byte of the strings the evaluation built in `items`.
    pub(crate) fn charge_strings(&self, items: &Collection<'a>) -> Result<()> {
        for item in items {
            if let Repr::String(Str::Shared(text)) = &item.0 {
                self.charge(text.len())?;
            }
        }
        Ok(())
    }

    /// `a | b`: both, without duplicates.
    pub(crate) fn union(&self, a: Collection<'a>, b: Collection<'a>) -> Result<Collection<'a>> {
        let mut out = Collection::with_capacity(a.len() + b.len());
        for item in a.into_iter().chain(b) {
            self.charge(out.len())?;
            if !out.iter().any(|seen| items_equal(seen, &item)) {
                out.push(item);
            }
        }
        Ok(out)
    }

    pub(crate) fn eval(&self, op: &Op, scope: &Scope<'_, 'a>) -> Result<Collection<'a>> {
        self.charge(1)?;
        self.eval_op(op, scope)
    }

    // Charging every operation's output here as well (one step an item) made search-parameter
    // evaluation 25% slower (`bench/fhirpath`, 117,000 → 88,000 resources/s): the collection is
    // moved once more per operation. Items are charged where collections grow instead.
    #[inline(always)]
    fn eval_op(&self, op: &Op, scope: &Scope<'_, 'a>) -> Result<Collection<'a>> {
        match op {
            Op::Empty => Ok(Collection::new()),
            Op::Literal(item) => Ok(Collection::one(item.clone())),
            Op::This => Ok(scope.this.clone()),
            Op::IndexVariable => Ok(scope
                .index
                .map(|i| Collection::one(Item::integer(i as i64)))
                .unwrap_or_default()),
            Op::Total => {
                let total = scope.total.cloned().unwrap_or_default();
                self.charge(total.len())?;
                Ok(total)
            }
            Op::Variable(variable) => self.variable(variable),
            Op::PathStart {
                member,
                type_filter,
                known_match,
            } => {
                let mut out = Collection::new();
                for item in scope.this {
                    match type_filter {
                        Some(filter) => {
                            if item.as_node().is_some_and(|node| {
                                matches!((node.ty, known_match), (Some(t), Some(k)) if std::ptr::eq(t, *k))
                                    || navigate::node_is_a(node, filter)
                            })
                            {
                                out.push(item.clone());
                            }
                        }
                        None => {
                            if navigate::untyped_resource_named(item, &member.name) {
                                out.push(item.clone());
                            } else {
                                navigate::member(item, member, &mut out)
                            }
                        }
                    }
                }
                Ok(out)
            }
            Op::Member(target, member) => {
                let input = self.eval(target, scope)?;
                let mut out = Collection::with_capacity(input.len());
                for item in &input {
                    navigate::member(item, member, &mut out);
                }
                Ok(out)
            }
            Op::Call(call) => self.call(call, scope),
            Op::Index(target, index) => {
                let input = self.eval(target, scope)?;
                let index = self.eval(index, scope)?;
                let Some(index) = singleton(&index, "an indexer")? else {
                    return Ok(Collection::new());
                };
                let Some(i) = index.as_integer() else {
                    return invalid("an index must be an integer");
                };
                Ok(usize::try_from(i)
                    .ok()
                    .and_then(|i| input.as_slice().get(i))
                    .cloned()
                    .into_iter()
                    .collect())
            }
            Op::Negate(operand) => {
                let value = self.eval(operand, scope)?;
                let Some(item) = value_singleton(&value, "unary minus")? else {
                    return Ok(Collection::new());
                };
                Ok(Collection::one(match system_value(item, "unary minus")? {
                    Repr::Integer(i) => match i.checked_neg() {
                        Some(negated) => Item::integer(negated),
                        None => return Ok(Collection::new()),
                    },
                    Repr::Decimal(d) => Item::decimal(d.neg()),
                    Repr::Quantity(q) => Item::quantity(Quantity {
                        value: q.value.neg(),
                        unit: q.unit.clone(),
                    }),
                    _ => {
                        return invalid(format!(
                            "unary minus cannot apply to a {}",
                            item.type_name()
                        ));
                    }
                }))
            }
            Op::Binary(op, left, right) => self.binary(*op, left, right, scope),
            Op::Union(operands) => {
                let mut out = Collection::new();
                for operand in operands {
                    for item in self.eval(operand, scope)? {
                        self.charge(out.len())?;
                        if !out.iter().any(|seen| items_equal(seen, &item)) {
                            out.push(item);
                        }
                    }
                }
                Ok(out)
            }
            Op::Is(target, spec) => {
                let input = self.eval(target, scope)?;
                let Some(item) = singleton(&input, "is")? else {
                    return Ok(Collection::new());
                };
                Ok(Collection::boolean(item_is(item, spec, false)?))
            }
            Op::As(target, spec) => {
                // The operator form filters, so that `Observation.component.value as Quantity`
                // (an R4 search parameter) works on several components.
                let input = self.eval(target, scope)?;
                let mut out = Collection::new();
                for item in input {
                    if item_is(&item, spec, true)? {
                        out.push(item);
                    }
                }
                Ok(out)
            }
            Op::Fail(message) => invalid(message.to_string()),
        }
    }

    fn variable(&self, variable: &Variable) -> Result<Collection<'a>> {
        Ok(match variable {
            Variable::Context => self.context.clone(),
            Variable::Resource => match self.resource {
                Some(json) => Collection::one(navigate::resource_item(json)),
                None => self.context.clone(),
            },
            Variable::RootResource => match self.env.root_resource.or(self.resource) {
                Some(json) => Collection::one(navigate::resource_item(json)),
                None => self.context.clone(),
            },
            Variable::Named(name) => match self.env.variable(name) {
                Some(items) => items.clone(),
                None => return invalid(format!("unknown variable %{name}")),
            },
        })
    }

    fn binary(
        &self,
        op: BinaryOp,
        left: &Op,
        right: &Op,
        scope: &Scope<'_, 'a>,
    ) -> Result<Collection<'a>> {
        use BinaryOp::*;
        if matches!(op, And | Or | Xor | Implies) {
            return self.logic(op, left, right, scope);
        }
        let l = self.eval(left, scope)?;
        let r = self.eval(right, scope)?;
        Ok(match op {
            Equal => boolean_result(equal_collections(&l, &r)),
            NotEqual => boolean_result(equal_collections(&l, &r).map(|b| !b)),
            Equivalent | NotEquivalent => {
                // Items are matched in any order: each against all of the other side.
                self.charge(l.len().saturating_mul(r.len()))?;
                Collection::boolean(equivalent_collections(&l, &r) == (op == Equivalent))
            }
            Less | LessOrEqual | Greater | GreaterOrEqual => {
                let (Some(a), Some(b)) = (
                    value_singleton(&l, "a comparison")?,
                    value_singleton(&r, "a comparison")?,
                ) else {
                    return Ok(Collection::new());
                };
                match compare_items(a, b)? {
                    None => Collection::new(),
                    Some(ordering) => Collection::boolean(match op {
                        Less => ordering.is_lt(),
                        LessOrEqual => ordering.is_le(),
                        Greater => ordering.is_gt(),
                        _ => ordering.is_ge(),
                    }),
                }
            }
            Union => self.union(l, r)?,
            In => membership(&l, &r, "in")?,
            Contains => membership(&r, &l, "contains")?,
            Concatenate => {
                let a = value_singleton(&l, "&")?
                    .map(|i| string_of(i, "&"))
                    .transpose()?;
                let b = value_singleton(&r, "&")?
                    .map(|i| string_of(i, "&"))
                    .transpose()?;
                let a = a.as_ref().map(Str::as_str).unwrap_or("");
                let b = b.as_ref().map(Str::as_str).unwrap_or("");
                self.charge(a.len() + b.len())?;
                Collection::one(Item::string(&format!("{a}{b}")))
            }
            Plus | Minus | Multiply | Divide | Div | Mod => {
                let (Some(a), Some(b)) = (
                    value_singleton(&l, "arithmetic")?,
                    value_singleton(&r, "arithmetic")?,
                ) else {
                    return Ok(Collection::new());
                };
                let result = arithmetic(op, a, b)?
                    .map(Collection::one)
                    .unwrap_or_default();
                self.charge_strings(&result)?;
                result
            }
            And | Or | Xor | Implies => unreachable!("handled above"),
        })
    }

    fn logic(
        &self,
        op: BinaryOp,
        left: &Op,
        right: &Op,
        scope: &Scope<'_, 'a>,
    ) -> Result<Collection<'a>> {
        let a = truth(&self.eval(left, scope)?, "a boolean operator")?;
        // Short cuts that do not need the right side.
        match (op, a) {
            (BinaryOp::And, Some(false)) => return Ok(Collection::boolean(false)),
            (BinaryOp::Or, Some(true)) => return Ok(Collection::boolean(true)),
            (BinaryOp::Implies, Some(false)) => return Ok(Collection::boolean(true)),
            _ => {}
        }
        let b = truth(&self.eval(right, scope)?, "a boolean operator")?;
        Ok(boolean_result(match op {
            BinaryOp::And => match (a, b) {
                (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            BinaryOp::Or => match (a, b) {
                (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            BinaryOp::Xor => match (a, b) {
                (Some(x), Some(y)) => Some(x != y),
                _ => None,
            },
            _ => match (a, b) {
                (_, Some(true)) => Some(true),
                (Some(true), b) => b,
                _ => None,
            },
        }))
    }
}

fn membership<'a>(
    needle: &Collection<'a>,
    haystack: &Collection<'a>,
    what: &str,
) -> Result<Collection<'a>> {
    let Some(item) = singleton(needle, what)? else {
        return Ok(Collection::new());
    };
    Ok(Collection::boolean(
        haystack.iter().any(|other| items_equal(item, other)),
    ))
}

/// A string operand: a String, or a FHIR string-like primitive.
pub(crate) fn string_of<'a>(item: &Item<'a>, what: &str) -> Result<Str<'a>> {
    match item.system() {
        Some(Repr::String(s)) => Ok(s),
        _ => invalid(format!(
            "{what} expects a string, got a {}",
            item.type_name()
        )),
    }
}

/// Whether `item` is of the type `spec`. `exact` (for `as` and `ofType`) does not let a FHIR
/// primitive pass as its base type (`code` is not returned by `as(string)`), as the official
/// tests expect; complex types and resources still match their ancestors.
pub(crate) fn item_is(item: &Item<'_>, spec: &TypeSpec, exact: bool) -> Result<bool> {
    Ok(match spec {
        TypeSpec::Unknown(name) => return invalid(format!("unknown type {name}")),
        TypeSpec::Nothing => false,
        TypeSpec::System(system) => match &item.0 {
            // JSON the model does not describe has the System type of its JSON kind.
            Repr::Node(node) if node.ty.is_none() => {
                item.type_name().strip_prefix("System.") == Some(system.name())
            }
            Repr::Node(_) => false,
            _ => item.type_name().strip_prefix("System.") == Some(system.name()),
        },
        TypeSpec::Fhir(ty) => match item.as_node() {
            Some(node) => match node.ty {
                Some(t) if exact && ty.kind == fhir_model::TypeKind::Primitive => {
                    std::ptr::eq(t, *ty)
                }
                _ => navigate::node_is_a(node, ty),
            },
            None => false,
        },
        TypeSpec::AnyQuantity(ty) => match item.as_node() {
            Some(node) => navigate::node_is_a(node, ty),
            None => matches!(item.0, Repr::Quantity(_)),
        },
    })
}

fn as_decimal(value: &Repr<'_>) -> Option<Decimal> {
    match value {
        Repr::Integer(i) => Some(Decimal::from_i64(*i)),
        Repr::Decimal(d) => Some(*d),
        _ => None,
    }
}

/// `+ - * / div mod` on two single items. `Ok(None)` is an empty result (division by zero,
/// overflow); an error is a type mismatch.
pub(crate) fn arithmetic<'a>(op: BinaryOp, a: &Item<'a>, b: &Item<'a>) -> Result<Option<Item<'a>>> {
    use BinaryOp::*;
    let x = system_value(a, "arithmetic")?;
    let y = system_value(b, "arithmetic")?;
    let mismatch = || {
        invalid(format!(
            "cannot apply {op:?} to {} and {}",
            a.type_name(),
            b.type_name()
        ))
    };
    Ok(match (&x, &y) {
        (Repr::Integer(i), Repr::Integer(j)) => match op {
            Plus => i.checked_add(*j).map(Item::integer),
            Minus => i.checked_sub(*j).map(Item::integer),
            Multiply => i.checked_mul(*j).map(Item::integer),
            Divide => Decimal::from_i64(*i)
                .checked_div(Decimal::from_i64(*j))
                .map(Item::decimal),
            Div => (*j != 0).then(|| Item::integer(i.wrapping_div(*j))),
            Mod => (*j != 0).then(|| Item::integer(i.wrapping_rem(*j))),
            _ => return mismatch(),
        },
        (Repr::Integer(_) | Repr::Decimal(_), Repr::Integer(_) | Repr::Decimal(_)) => {
            let (Some(p), Some(q)) = (as_decimal(&x), as_decimal(&y)) else {
                return mismatch();
            };
            match op {
                Plus => p.checked_add(q).map(Item::decimal),
                Minus => p.checked_sub(q).map(Item::decimal),
                Multiply => p.checked_mul(q).map(Item::decimal),
                Divide => p.checked_div(q).map(Item::decimal),
                Div => p
                    .checked_div_trunc(q)
                    .and_then(|d| d.to_i64_exact())
                    .map(Item::integer),
                Mod => p.checked_rem(q).map(Item::decimal),
                _ => return mismatch(),
            }
        }
        (Repr::String(s), Repr::String(t)) if op == Plus => {
            let mut text = String::with_capacity(s.as_str().len() + t.as_str().len());
            text.push_str(s.as_str());
            text.push_str(t.as_str());
            Some(Item::string(&text))
        }
        (Repr::Temporal(t), Repr::Quantity(q)) if matches!(op, Plus | Minus) => {
            Some(Item::temporal(add_duration(*t, q, op == Minus)?))
        }
        (Repr::Quantity(_), Repr::Quantity(_))
        | (Repr::Quantity(_), Repr::Integer(_) | Repr::Decimal(_))
        | (Repr::Integer(_) | Repr::Decimal(_), Repr::Quantity(_)) => {
            // A number next to a quantity is a quantity of unit `1`.
            let as_quantity = |value: &Repr<'_>| match value {
                Repr::Quantity(q) => Some((**q).clone()),
                other => as_decimal(other).map(|d| Quantity::new(d, "1")),
            };
            let (Some(p), Some(q)) = (as_quantity(&x), as_quantity(&y)) else {
                return mismatch();
            };
            match op {
                // Units that cannot be converted into each other add up to nothing known.
                Plus | Minus => p.add(&q, op == Minus).map(Item::quantity),
                Multiply | Divide => p.multiply(&q, op == Divide).map(Item::quantity),
                _ => return mismatch(),
            }
        }
        _ => return mismatch(),
    })
}

/// A date or time plus (or minus) a duration. Only calendar keywords and UCUM units of a
/// definite length (`wk`, `d`, `h`, `min`, `s`, `ms`) may be added; the amount is truncated
/// to a whole number of units.
fn add_duration(value: Temporal, duration: &Quantity, subtract: bool) -> Result<Temporal> {
    let Some(unit) = CalendarUnit::of(&duration.unit) else {
        return invalid(format!(
            "cannot add a quantity in '{}' to a date or time",
            duration.unit
        ));
    };
    let Some(amount) = duration.value.truncate().to_i64_exact() else {
        return invalid("duration too large");
    };
    let amount = if subtract { -amount } else { amount };
    let (amount, unit) = match (value.kind, unit) {
        // A date has no time of day: smaller units count in whole days.
        (TemporalKind::Date, CalendarUnit::Hour) => (amount / 24, CalendarUnit::Day),
        (TemporalKind::Date, CalendarUnit::Minute) => (amount / 1440, CalendarUnit::Day),
        (TemporalKind::Date, CalendarUnit::Second) => (amount / 86_400, CalendarUnit::Day),
        (TemporalKind::Date, CalendarUnit::Millisecond) => (amount / 86_400_000, CalendarUnit::Day),
        (_, unit) => (amount, unit),
    };
    match value.add(amount, unit) {
        Some(result) => Ok(result),
        None => invalid("date arithmetic out of range"),
    }
}

/// The resource type named by a reference (`Patient/123`, `http://x/fhir/Patient/123`,
/// `Patient/123/_history/2`), if any.
pub(crate) fn reference_type(reference: &str) -> Option<&'static str> {
    reference_parts(reference).map(|(type_name, _)| type_name)
}

/// The resource type and id a literal reference names, in the same forms as
/// [`reference_type`]; `None` for a contained (`#id`), conditional or logical reference.
pub(crate) fn reference_parts(reference: &str) -> Option<(&'static str, &str)> {
    let path = reference.split(['?', '#']).next().unwrap_or(reference);
    let mut parts = path.rsplit('/');
    let mut id = parts.next()?;
    let mut type_name = parts.next()?;
    if type_name == "_history" {
        id = parts.next()?;
        type_name = parts.next()?;
    }
    if id.is_empty() || !model().is_resource_type(type_name) {
        return None;
    }
    model().type_def(type_name).map(|t| (&*t.name, id))
}
