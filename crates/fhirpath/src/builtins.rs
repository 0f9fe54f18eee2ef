//! The functions: existence, filtering, subsetting, combining, conversion, strings, math,
//! tree navigation, utilities, and the FHIR additions (`resolve`, `extension`, `memberOf`...).

use std::cmp::Ordering;

use serde_json::Value;

use crate::compare::{compare_items, items_equal};
use crate::compile::{Call, Op, TypeSpec, build_regex};
use crate::convert::{boundary, convert};
use crate::datetime::Temporal;
use crate::decimal::Decimal;
use crate::env::{self, Resolved};
use crate::error::{EvalError, invalid};
use crate::eval::{
    Evaluator, Result, Scope, arithmetic, item_is, singleton, string_of, truth, value_singleton,
};
use crate::functions::Function;
use crate::item::{Collection, Item, Repr, Str};
use crate::navigate::{self, model};
use crate::parser::BinaryOp;
use crate::quantity::Quantity;
use crate::text;

impl<'e, 'a> Evaluator<'e, 'a> {
    pub(crate) fn call(&self, call: &Call, scope: &Scope<'_, 'a>) -> Result<Collection<'a>> {
        let owned;
        let input: &Collection<'a> = match &call.target {
            Some(target) => {
                owned = self.eval(target, scope)?;
                &owned
            }
            None => scope.this,
        };
        // A function walks its input: one step an item.
        self.charge(input.len())?;
        use Function::*;
        let args = &call.args;
        match call.function {
            Empty => Ok(Collection::boolean(input.is_empty())),
            Exists => match args.first() {
                None => Ok(Collection::boolean(!input.is_empty())),
                Some(criteria) => Ok(Collection::boolean(
                    !self.filter(input, criteria)?.is_empty(),
                )),
            },
            All => {
                for (i, item) in input.iter().enumerate() {
                    let this = Collection::one(item.clone());
                    let result = self.eval(
                        &args[0],
                        &Scope {
                            this: &this,
                            index: Some(i),
                            total: None,
                        },
                    )?;
                    if truth(&result, "all()")? != Some(true) {
                        return Ok(Collection::boolean(false));
                    }
                }
                Ok(Collection::boolean(true))
            }
            AllTrue | AnyTrue | AllFalse | AnyFalse => {
                let mut all = true;
                let mut any = false;
                let wanted = matches!(call.function, AllTrue | AnyTrue);
                for item in input {
                    let Some(Repr::Boolean(b)) = item.system() else {
                        return invalid(format!(
                            "{:?}() expects booleans, got a {}",
                            call.function,
                            item.type_name()
                        ));
                    };
                    all &= b == wanted;
                    any |= b == wanted;
                }
                Ok(Collection::boolean(
                    if matches!(call.function, AllTrue | AllFalse) {
                        all
                    } else {
                        any
                    },
                ))
            }
            SubsetOf | SupersetOf => {
                let other = self.eval(&args[0], scope)?;
                let (small, big) = if call.function == SubsetOf {
                    (input, &other)
                } else {
                    (&other, input)
                };
                self.charge(small.len().saturating_mul(big.len()))?;
                Ok(Collection::boolean(
                    small.iter().all(|a| big.iter().any(|b| items_equal(a, b))),
                ))
            }
            Count => Ok(Collection::one(Item::integer(input.len() as i64))),
            Distinct => self.union(input.clone(), Collection::new()),
            IsDistinct => Ok(Collection::boolean(
                self.union(input.clone(), Collection::new())?.len() == input.len(),
            )),
            Where => self.filter(input, &args[0]),
            Select => {
                let mut out = Collection::new();
                for (i, item) in input.iter().enumerate() {
                    let this = Collection::one(item.clone());
                    out.extend_from(self.eval(
                        &args[0],
                        &Scope {
                            this: &this,
                            index: Some(i),
                            total: None,
                        },
                    )?);
                }
                Ok(out)
            }
            Repeat => {
                let mut out = Collection::new();
                let mut pending = input.clone();
                while !pending.is_empty() {
                    let mut next = Collection::new();
                    for item in &pending {
                        let this = Collection::one(item.clone());
                        for found in self.eval(&args[0], &Scope::of(&this))? {
                            self.charge(out.len())?;
                            if !out.iter().any(|seen| items_equal(seen, &found)) {
                                out.push(found.clone());
                                next.push(found);
                            }
                        }
                    }
                    pending = next;
                }
                Ok(out)
            }
            OfType => self.of_type(input, call),
            Is => {
                let Some(item) = singleton(input, "is()")? else {
                    return Ok(Collection::new());
                };
                Ok(Collection::boolean(item_is(item, type_arg(call)?, false)?))
            }
            // R4's own dom-3 invariant, checked on every DomainResource, applies as() to whole
            // collections (`%resource.descendants().as(canonical)`), so as() filters like
            // ofType() instead of requiring a single item.
            As => self.of_type(input, call),
            Single => match singleton(input, "single()")? {
                Some(item) => Ok(Collection::one(item.clone())),
                None => Ok(Collection::new()),
            },
            First => Ok(input.first().cloned().into_iter().collect()),
            Last => Ok(input.as_slice().last().cloned().into_iter().collect()),
            Tail => Ok(input.iter().skip(1).cloned().collect()),
            Skip | Take => {
                let n = self
                    .integer_arg(&args[0], scope, "skip/take")?
                    .unwrap_or(0)
                    .max(0) as usize;
                Ok(if call.function == Skip {
                    input.iter().skip(n).cloned().collect()
                } else {
                    input.iter().take(n).cloned().collect()
                })
            }
            Intersect => {
                let other = self.eval(&args[0], scope)?;
                let mut out = Collection::new();
                for item in input {
                    self.charge(other.len() + out.len())?;
                    if other.iter().any(|o| items_equal(item, o))
                        && !out.iter().any(|s| items_equal(s, item))
                    {
                        out.push(item.clone());
                    }
                }
                Ok(out)
            }
            Exclude => {
                let other = self.eval(&args[0], scope)?;
                self.charge(input.len().saturating_mul(other.len()))?;
                Ok(input
                    .iter()
                    .filter(|item| !other.iter().any(|o| items_equal(item, o)))
                    .cloned()
                    .collect())
            }
            Union => self.union(input.clone(), self.eval(&args[0], scope)?),
            Combine => {
                let other = self.eval(&args[0], scope)?;
                self.charge(input.len() + other.len())?;
                let mut out = input.clone();
                out.extend_from(other);
                Ok(out)
            }
            Iif => self.iif(call, input, scope),
            ToBoolean | ToInteger | ToDecimal | ToString | ToDate | ToDateTime | ToTime
            | ToQuantity => {
                let Some(item) = singleton(input, "a conversion")? else {
                    return Ok(Collection::new());
                };
                let unit = match args.first() {
                    Some(arg) => self.string_arg(arg, scope, "toQuantity()")?,
                    None => None,
                };
                Ok(convert(item, call.function, unit.as_ref().map(Str::as_str))
                    .into_iter()
                    .collect())
            }
            ConvertsToBoolean | ConvertsToInteger | ConvertsToDecimal | ConvertsToString
            | ConvertsToDate | ConvertsToDateTime | ConvertsToTime | ConvertsToQuantity => {
                let Some(item) = singleton(input, "a conversion")? else {
                    return Ok(Collection::new());
                };
                let target = match call.function {
                    ConvertsToBoolean => ToBoolean,
                    ConvertsToInteger => ToInteger,
                    ConvertsToDecimal => ToDecimal,
                    ConvertsToString => ToString,
                    ConvertsToDate => ToDate,
                    ConvertsToDateTime => ToDateTime,
                    ConvertsToTime => ToTime,
                    _ => ToQuantity,
                };
                let unit = match args.first() {
                    Some(arg) => self.string_arg(arg, scope, "convertsToQuantity()")?,
                    None => None,
                };
                Ok(Collection::boolean(
                    convert(item, target, unit.as_ref().map(Str::as_str)).is_some(),
                ))
            }
            IndexOf | Substring | StartsWith | EndsWith | Contains | Upper | Lower | Replace
            | Matches | MatchesFull | ReplaceMatches | Length | ToChars | Trim | Split | Encode
            | Decode | Escape | Unescape => self.string_function(call, input, scope),
            Join => {
                let separator = match args.first() {
                    Some(arg) => self.string_arg(arg, scope, "join()")?,
                    None => None,
                };
                if input.is_empty() {
                    return Ok(Collection::new());
                }
                let mut out = String::new();
                // A primitive with only an extension has no text to join.
                let values = input
                    .iter()
                    .filter(|item| item.as_node().is_none_or(|n| n.value.is_some()));
                for (i, item) in values.enumerate() {
                    if i > 0 {
                        out.push_str(separator.as_ref().map(Str::as_str).unwrap_or(""));
                    }
                    out.push_str(string_of(item, "join()")?.as_str());
                    self.charge(out.len())?;
                }
                Ok(Collection::one(Item::string(&out)))
            }
            Abs | Ceiling | Exp | Floor | Ln | Log | Power | Round | Sqrt | Truncate => {
                self.math(call, input, scope)
            }
            Children => {
                let mut out = Collection::new();
                for item in input {
                    navigate::children(item, &mut out);
                }
                Ok(out)
            }
            // `children().repeat(children())`: level by level over the whole input.
            Descendants => {
                let mut out = Collection::new();
                let mut level = Collection::new();
                for item in input {
                    navigate::children(item, &mut level);
                }
                while !level.is_empty() {
                    let mut next = Collection::new();
                    for item in &level {
                        navigate::children(item, &mut next);
                    }
                    out.extend_from(level);
                    level = next;
                }
                Ok(out)
            }
            Trace => {
                if let Some(tracer) = self.env.tracer {
                    let name = self.string_arg(&args[0], scope, "trace()")?;
                    let name = name.as_ref().map(Str::as_str).unwrap_or("");
                    match args.get(1) {
                        Some(projection) => {
                            let mut projected = Collection::new();
                            for item in input {
                                let this = Collection::one(item.clone());
                                projected.extend_from(self.eval(projection, &Scope::of(&this))?);
                            }
                            tracer.trace(name, &projected);
                        }
                        None => tracer.trace(name, input),
                    }
                }
                Ok(input.clone())
            }
            Now => Ok(Collection::one(Item::temporal(self.now()))),
            Today => Ok(Collection::one(Item::temporal(self.now().date_part()))),
            TimeOfDay => Ok(Collection::one(Item::temporal(self.now().time_part()))),
            Not => Ok(match truth(input, "not()")? {
                Some(b) => Collection::boolean(!b),
                None => Collection::new(),
            }),
            Type => Ok(input
                .iter()
                .map(|item| match &item.0 {
                    Repr::Node(node) if node.ty.is_some() => Item(Repr::Type {
                        fhir: true,
                        name: node.ty.map(|t| &*t.name).unwrap_or("Element"),
                    }),
                    _ => Item(Repr::Type {
                        fhir: false,
                        name: item.type_name().trim_start_matches("System."),
                    }),
                })
                .collect()),
            Aggregate => {
                let mut total = match args.get(1) {
                    Some(init) => self.eval(init, scope)?,
                    None => Collection::new(),
                };
                for (i, item) in input.iter().enumerate() {
                    let this = Collection::one(item.clone());
                    total = self.eval(
                        &args[0],
                        &Scope {
                            this: &this,
                            index: Some(i),
                            total: Some(&total),
                        },
                    )?;
                }
                Ok(total)
            }
            Sort => self.sort(input, args),
            LowBoundary | HighBoundary => {
                let Some(item) = singleton(input, "a boundary function")? else {
                    return Ok(Collection::new());
                };
                let digits = match args.first() {
                    Some(arg) => self.integer_arg(arg, scope, "a boundary function")?,
                    None => None,
                };
                Ok(boundary(item, digits, call.function == HighBoundary)
                    .into_iter()
                    .collect())
            }
            Precision => {
                let Some(item) = singleton(input, "precision()")? else {
                    return Ok(Collection::new());
                };
                Ok(match item.system() {
                    Some(Repr::Decimal(d)) => Collection::one(Item::integer(d.precision() as i64)),
                    Some(Repr::Integer(_)) => Collection::one(Item::integer(0)),
                    Some(Repr::Temporal(t)) => {
                        Collection::one(Item::integer(t.digit_count() as i64))
                    }
                    _ => Collection::new(),
                })
            }
            Comparable => {
                let other = self.eval(&args[0], scope)?;
                let (Some(a), Some(b)) = (
                    singleton(input, "comparable()")?,
                    singleton(&other, "comparable()")?,
                ) else {
                    return Ok(Collection::new());
                };
                let unit_quantity = |value: Option<Repr<'a>>| match value {
                    Some(Repr::Integer(i)) => Some(Repr::Quantity(std::sync::Arc::new(
                        Quantity::new(Decimal::from_i64(i), "1"),
                    ))),
                    Some(Repr::Decimal(d)) => {
                        Some(Repr::Quantity(std::sync::Arc::new(Quantity::new(d, "1"))))
                    }
                    other => other,
                };
                match (unit_quantity(a.system()), unit_quantity(b.system())) {
                    (Some(Repr::Quantity(p)), Some(Repr::Quantity(q))) => {
                        Ok(Collection::boolean(p.comparable(&q)))
                    }
                    _ => invalid("comparable() applies to quantities"),
                }
            }
            Sum | Min | Max | Avg => self.aggregate_numbers(call.function, input),
            Extension => {
                let Some(url) = self.string_arg(&args[0], scope, "extension()")? else {
                    return Ok(Collection::new());
                };
                let mut out = Collection::new();
                for item in input {
                    navigate::extensions_with_url(item, url.as_str(), &mut out);
                }
                Ok(out)
            }
            HasValue => Ok(Collection::boolean(match input.as_slice() {
                [item] => item.as_node().is_some_and(|n| {
                    n.value.is_some()
                        && n.ty
                            .is_some_and(|t| t.kind == fhir_model::TypeKind::Primitive)
                }),
                _ => false,
            })),
            GetValue => Ok(match input.as_slice() {
                [item] => match item.as_node().and_then(|n| n.system_value()) {
                    Some(value) if !matches!(value, Repr::Quantity(_)) => {
                        Collection::one(Item(value))
                    }
                    _ => Collection::new(),
                },
                _ => Collection::new(),
            }),
            Resolve => {
                let mut out = Collection::new();
                for item in input {
                    self.resolve(item, &mut out);
                }
                Ok(out)
            }
            MemberOf => self.member_of(input, &args[0], scope),
            ConformsTo => {
                let Some(item) = singleton(input, "conformsTo()")? else {
                    return Ok(Collection::new());
                };
                let Some(profile) = self.string_arg(&args[0], scope, "conformsTo()")? else {
                    return Ok(Collection::new());
                };
                let Some(json) = item.json() else {
                    return Ok(Collection::boolean(false));
                };
                let answer = match self.env.profiles {
                    Some(profiles) => profiles.conforms_to(json, profile.as_str()),
                    None => env::core_conforms_to(json, profile.as_str()),
                };
                match answer {
                    Ok(b) => Ok(Collection::boolean(b)),
                    Err(message) => Err(EvalError::Hook(message)),
                }
            }
            // The narrative checks need an XHTML parser; the engine accepts what it is given.
            HtmlChecks => Ok(Collection::boolean(true)),
            // Subsumption needs a terminology server; unknown without one.
            Subsumes | SubsumedBy => Ok(Collection::new()),
            // SQL on FHIR's row keys: a resource's key is its id and a reference's key the id
            // it names, so that the two compare equal and join without a look-up. Keys of
            // different types may be equal; a view's table holds one type.
            GetResourceKey => Ok(input
                .iter()
                .filter(|item| item.type_kind() == Some(fhir_model::TypeKind::Resource))
                .filter_map(|item| item.json()?.get("id")?.as_str())
                .map(Item::borrowed_string)
                .collect()),
            GetReferenceKey => self.reference_keys(input, call),
        }
    }

    /// `getReferenceKey([type])`: the key of each literal reference (`Patient/1`, absolute,
    /// versioned) of that type, if a type is given; nothing for the references it cannot
    /// follow (contained, conditional, logical), as SQL on FHIR requires.
    fn reference_keys(&self, input: &Collection<'a>, call: &Call) -> Result<Collection<'a>> {
        let wanted = match &call.type_arg {
            None => None,
            Some(TypeSpec::Fhir(ty)) => Some(&*ty.name),
            Some(TypeSpec::Unknown(name)) => return invalid(format!("unknown type {name}")),
            // A System type (or one that does not exist) is never a resource's.
            Some(_) => return Ok(Collection::new()),
        };
        let mut out = Collection::new();
        for item in input {
            let reference = item
                .json()
                .and_then(|json| json.get("reference"))
                .and_then(Value::as_str);
            let Some((type_name, id)) = reference.and_then(crate::eval::reference_parts) else {
                continue;
            };
            if wanted.is_none_or(|wanted| model().is_subtype(type_name, wanted)) {
                out.push(Item::borrowed_string(id));
            }
        }
        Ok(out)
    }

    fn now(&self) -> Temporal {
        self.env.now.unwrap_or_else(Temporal::now_utc)
    }

    fn filter(&self, input: &Collection<'a>, criteria: &Op) -> Result<Collection<'a>> {
        let mut out = Collection::new();
        for (i, item) in input.iter().enumerate() {
            let this = Collection::one(item.clone());
            let result = self.eval(
                criteria,
                &Scope {
                    this: &this,
                    index: Some(i),
                    total: None,
                },
            )?;
            if truth(&result, "where()")? == Some(true) {
                out.push(item.clone());
            }
        }
        Ok(out)
    }

    fn of_type(&self, input: &Collection<'a>, call: &Call) -> Result<Collection<'a>> {
        let spec = type_arg(call)?;
        let mut out = Collection::new();
        for item in input {
            if item_is(item, spec, true)? {
                out.push(item.clone());
            }
        }
        Ok(out)
    }

    fn iif(
        &self,
        call: &Call,
        input: &Collection<'a>,
        scope: &Scope<'_, 'a>,
    ) -> Result<Collection<'a>> {
        // With an explicit input, the arguments see it as `$this`.
        let this;
        let inner = match &call.target {
            Some(_) => {
                this = match singleton(input, "iif()")? {
                    Some(item) => Collection::one(item.clone()),
                    None => Collection::new(),
                };
                Scope::of(&this)
            }
            None => Scope {
                this: scope.this,
                index: scope.index,
                total: scope.total,
            },
        };
        let criterion = self.eval(&call.args[0], &inner)?;
        let chosen = match singleton(&criterion, "iif()")? {
            None => false,
            Some(item) => match item.system() {
                Some(Repr::Boolean(b)) => b,
                _ => return invalid("the criterion of iif() must be a boolean"),
            },
        };
        if chosen {
            self.eval(&call.args[1], &inner)
        } else {
            match call.args.get(2) {
                Some(otherwise) => self.eval(otherwise, &inner),
                None => Ok(Collection::new()),
            }
        }
    }

    fn string_arg(&self, arg: &Op, scope: &Scope<'_, 'a>, what: &str) -> Result<Option<Str<'a>>> {
        let value = self.eval(arg, scope)?;
        singleton(&value, what)?
            .map(|item| string_of(item, what))
            .transpose()
    }

    fn integer_arg(&self, arg: &Op, scope: &Scope<'_, 'a>, what: &str) -> Result<Option<i64>> {
        let value = self.eval(arg, scope)?;
        match singleton(&value, what)? {
            None => Ok(None),
            Some(item) => match item.as_integer() {
                Some(i) => Ok(Some(i)),
                None => invalid(format!("{what} expects an integer")),
            },
        }
    }

    fn string_function(
        &self,
        call: &Call,
        input: &Collection<'a>,
        scope: &Scope<'_, 'a>,
    ) -> Result<Collection<'a>> {
        use Function::*;
        let what = "a string function";
        let Some(item) = value_singleton(input, what)? else {
            return Ok(Collection::new());
        };
        let subject = string_of(item, what)?;
        let s = subject.as_str();
        let args = &call.args;
        let mut strings = Vec::with_capacity(args.len());
        for arg in args {
            match (call.function, arg) {
                // The substring positions are integers, not strings.
                (Substring, _) => {}
                _ => match self.string_arg(arg, scope, what)? {
                    Some(value) => strings.push(value),
                    None => return Ok(Collection::new()),
                },
            }
        }
        let arg = |i: usize| strings.get(i).map(Str::as_str).unwrap_or("");
        let string = |value: &str| Collection::one(Item::string(value));
        let result = match call.function {
            IndexOf => Collection::one(Item::integer(text::char_index_of(s, arg(0)))),
            Substring => {
                let Some(start) = self.integer_arg(&args[0], scope, "substring()")? else {
                    return Ok(Collection::new());
                };
                let length = match args.get(1) {
                    Some(a) => match self.integer_arg(a, scope, "substring()")? {
                        Some(l) => Some(l.max(0) as usize),
                        None => return Ok(Collection::new()),
                    },
                    None => None,
                };
                if start < 0 || start as usize >= text::char_len(s) {
                    return Ok(Collection::new());
                }
                let part = text::char_substring(s, start as usize, length);
                match &subject {
                    Str::Borrowed(whole) => Collection::one(Item::borrowed_string(
                        &whole[part.as_ptr() as usize - whole.as_ptr() as usize..][..part.len()],
                    )),
                    Str::Shared(_) => string(part),
                }
            }
            StartsWith => Collection::boolean(s.starts_with(arg(0))),
            EndsWith => Collection::boolean(s.ends_with(arg(0))),
            Contains => Collection::boolean(s.contains(arg(0))),
            Upper => string(&s.to_uppercase()),
            Lower => string(&s.to_lowercase()),
            Replace => string(&s.replace(arg(0), arg(1))),
            Matches | MatchesFull => {
                let regex = self.regex(call, arg(0))?;
                Collection::boolean(regex.is_match(s))
            }
            ReplaceMatches => {
                if arg(0).is_empty() {
                    return Ok(Collection::one(item.clone()));
                }
                let regex = self.regex(call, arg(0))?;
                string(&regex.replace_all(s, arg(1)))
            }
            Length => Collection::one(Item::integer(text::char_len(s) as i64)),
            ToChars => s
                .chars()
                .map(|c| Item::string(c.encode_utf8(&mut [0; 4])))
                .collect(),
            Trim => string(s.trim()),
            Split => s.split(arg(0)).map(Item::string).collect(),
            Encode => text::encode(s, arg(0))
                .map(|v| string(&v))
                .unwrap_or_default(),
            Decode => text::decode(s, arg(0))
                .map(|v| string(&v))
                .unwrap_or_default(),
            Escape => text::escape(s, arg(0))
                .map(|v| string(&v))
                .unwrap_or_default(),
            Unescape => text::unescape(s, arg(0))
                .map(|v| string(&v))
                .unwrap_or_default(),
            _ => unreachable!("not a string function"),
        };
        // `replace()`, `upper()`, `encode()`... build a new string, which may be much longer
        // than the input (`'a'.replace('', 'bb')`).
        self.charge_strings(&result)?;
        Ok(result)
    }

    fn regex(&self, call: &Call, pattern: &str) -> Result<std::sync::Arc<regex::Regex>> {
        if let Some(regex) = &call.regex {
            return Ok(regex.clone());
        }
        match build_regex(pattern, call.function == Function::MatchesFull) {
            Ok(regex) => Ok(std::sync::Arc::new(regex)),
            Err(e) => invalid(format!("bad regular expression: {e}")),
        }
    }

    fn math(
        &self,
        call: &Call,
        input: &Collection<'a>,
        scope: &Scope<'_, 'a>,
    ) -> Result<Collection<'a>> {
        use Function::*;
        let Some(item) = value_singleton(input, "a math function")? else {
            return Ok(Collection::new());
        };
        let value = item.system();
        if let Some(Repr::Quantity(q)) = &value {
            // Rounding functions apply to a quantity's value and keep its unit.
            let rounded = match call.function {
                Abs => q.value.abs(),
                Ceiling => q.value.ceiling(),
                Floor => q.value.floor(),
                Truncate => q.value.truncate(),
                Round => {
                    let places = match call.args.first() {
                        Some(arg) => self.integer_arg(arg, scope, "round()")?.unwrap_or(0),
                        None => 0,
                    };
                    if places < 0 {
                        return invalid("round() takes a non-negative precision");
                    }
                    q.value.round(places as u32)
                }
                _ => {
                    return invalid(format!(
                        "{:?}() applies to numbers, not quantities",
                        call.function
                    ));
                }
            };
            return Ok(Collection::one(Item::quantity(Quantity {
                value: rounded,
                unit: q.unit.clone(),
            })));
        }
        let (integer, decimal) = match value {
            Some(Repr::Integer(i)) => (Some(i), Decimal::from_i64(i)),
            Some(Repr::Decimal(d)) => (None, d),
            _ => {
                return invalid(format!(
                    "{:?}() applies to numbers, not a {}",
                    call.function,
                    item.type_name()
                ));
            }
        };
        let from_f64 = |f: f64| {
            Decimal::from_f64(f)
                .map(Item::decimal)
                .into_iter()
                .collect::<Collection<'a>>()
        };
        Ok(match call.function {
            Abs => match integer {
                Some(i) => i.checked_abs().map(Item::integer).into_iter().collect(),
                None => Collection::one(Item::decimal(decimal.abs())),
            },
            Ceiling => decimal
                .ceiling()
                .to_i64_exact()
                .map(Item::integer)
                .into_iter()
                .collect(),
            Floor => decimal
                .floor()
                .to_i64_exact()
                .map(Item::integer)
                .into_iter()
                .collect(),
            Truncate => decimal
                .truncate()
                .to_i64_exact()
                .map(Item::integer)
                .into_iter()
                .collect(),
            Round => {
                let places = match call.args.first() {
                    Some(arg) => self.integer_arg(arg, scope, "round()")?.unwrap_or(0),
                    None => 0,
                };
                if places < 0 {
                    return invalid("round() takes a non-negative precision");
                }
                Collection::one(Item::decimal(decimal.round(places as u32)))
            }
            Exp => from_f64(decimal.to_f64().exp()),
            Ln => from_f64(decimal.to_f64().ln()),
            Sqrt => from_f64(decimal.to_f64().sqrt()),
            Log | Power => {
                let other = self.eval(&call.args[0], scope)?;
                let Some(other) = singleton(&other, "log/power")? else {
                    return Ok(Collection::new());
                };
                let (other_integer, other_decimal) = match other.system() {
                    Some(Repr::Integer(i)) => (Some(i), Decimal::from_i64(i)),
                    Some(Repr::Decimal(d)) => (None, d),
                    _ => return invalid("log() and power() take a number"),
                };
                if call.function == Log {
                    from_f64(decimal.to_f64().ln() / other_decimal.to_f64().ln())
                } else {
                    match (integer, other_integer) {
                        (Some(b), Some(e)) if e >= 0 => b
                            .checked_pow(e as u32)
                            .map(Item::integer)
                            .into_iter()
                            .collect(),
                        _ => from_f64(decimal.to_f64().powf(other_decimal.to_f64())),
                    }
                }
            }
            _ => unreachable!("not a math function"),
        })
    }

    fn sort(&self, input: &Collection<'a>, keys: &[Op]) -> Result<Collection<'a>> {
        let mut rows: Vec<(Vec<Option<Item<'a>>>, Item<'a>)> = Vec::with_capacity(input.len());
        let mut descending = Vec::with_capacity(keys.len());
        for key in keys {
            descending.push(matches!(key, Op::Negate(_)));
        }
        for (i, item) in input.iter().enumerate() {
            let this = Collection::one(item.clone());
            let scope = Scope {
                this: &this,
                index: Some(i),
                total: None,
            };
            let mut values = Vec::with_capacity(keys.len().max(1));
            if keys.is_empty() {
                values.push(Some(item.clone()));
            }
            for key in keys {
                let key = match key {
                    Op::Negate(inner) => inner,
                    other => other,
                };
                values.push(singleton(&self.eval(key, &scope)?, "a sort key")?.cloned());
            }
            rows.push((values, item.clone()));
        }
        let mut error = None;
        rows.sort_by(|(a, _), (b, _)| {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let ordering = match (x, y) {
                    (None, None) => Ordering::Equal,
                    // An empty key sorts after every value (so first when descending).
                    (None, Some(_)) => Ordering::Greater,
                    (Some(_), None) => Ordering::Less,
                    (Some(x), Some(y)) => match compare_items(x, y) {
                        Ok(o) => o.unwrap_or(Ordering::Equal),
                        Err(e) => {
                            error.get_or_insert(e);
                            Ordering::Equal
                        }
                    },
                };
                let ordering = if descending.get(i) == Some(&true) {
                    ordering.reverse()
                } else {
                    ordering
                };
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            Ordering::Equal
        });
        if let Some(e) = error {
            return Err(e);
        }
        Ok(rows.into_iter().map(|(_, item)| item).collect())
    }

    fn aggregate_numbers(
        &self,
        function: Function,
        input: &Collection<'a>,
    ) -> Result<Collection<'a>> {
        let mut items = input.iter();
        let Some(first) = items.next() else {
            return Ok(if function == Function::Sum {
                Collection::one(Item::integer(0))
            } else {
                Collection::new()
            });
        };
        let mut acc = first.clone();
        for item in items {
            acc = match function {
                Function::Sum | Function::Avg => match arithmetic(BinaryOp::Plus, &acc, item)? {
                    Some(sum) => {
                        // Strings sum by concatenation: each partial sum is a new string.
                        if let Some(Repr::String(text)) = sum.system() {
                            self.charge(text.as_str().len())?;
                        }
                        sum
                    }
                    None => return Ok(Collection::new()),
                },
                _ => {
                    let ordering = compare_items(item, &acc)?;
                    let better = match function {
                        Function::Min => ordering == Some(Ordering::Less),
                        _ => ordering == Some(Ordering::Greater),
                    };
                    if better { item.clone() } else { acc }
                }
            };
        }
        if function == Function::Avg {
            let count = Item::integer(input.len() as i64);
            return Ok(arithmetic(BinaryOp::Divide, &acc, &count)?
                .into_iter()
                .collect());
        }
        Ok(Collection::one(acc))
    }

    /// `resolve()` for one reference: the hook first, then contained resources, then Bundle
    /// entries, then a typed placeholder for a `Type/id` reference.
    fn resolve(&self, item: &Item<'a>, out: &mut Collection<'a>) {
        let reference = match item.json() {
            Some(Value::String(s)) => s.as_str(),
            Some(Value::Object(map)) => match map.get("reference").and_then(Value::as_str) {
                Some(r) => r,
                None => return,
            },
            _ => return,
        };
        if let Some(resolver) = self.env.resolver {
            match resolver.resolve(reference) {
                Some(Resolved::Resource(json)) => {
                    out.push(navigate::resource_item(json));
                    return;
                }
                Some(Resolved::Type(name)) => {
                    out.push(Item::node(None, None, model().type_def(name)));
                    return;
                }
                None => {}
            }
        }
        let container = self
            .resource
            .or_else(|| self.context.first().and_then(Item::json));
        if let Some(id) = reference.strip_prefix('#') {
            let contained = container
                .and_then(|r| r.get("contained"))
                .and_then(Value::as_array);
            if let Some(found) = contained
                .into_iter()
                .flatten()
                .find(|c| c.get("id").and_then(Value::as_str) == Some(id))
            {
                out.push(navigate::resource_item(found));
            }
            return;
        }
        for bundle in [self.env.root_resource, self.env.resource]
            .into_iter()
            .flatten()
        {
            if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
                continue;
            }
            let entries = bundle
                .get("entry")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for entry in entries {
                let full_url = entry.get("fullUrl").and_then(Value::as_str);
                let resource = entry.get("resource");
                let matches = full_url == Some(reference)
                    || full_url.is_some_and(|u| u.ends_with(reference) && u[..u.len() - reference.len()].ends_with('/'))
                    || resource.is_some_and(|r| {
                        let type_and_id = (r.get("resourceType").and_then(Value::as_str), r.get("id").and_then(Value::as_str));
                        matches!(type_and_id, (Some(t), Some(i)) if reference.len() == t.len() + 1 + i.len()
                            && reference.starts_with(t) && reference.ends_with(i) && reference.as_bytes()[t.len()] == b'/')
                    });
                if matches && let Some(resource) = resource {
                    out.push(navigate::resource_item(resource));
                    return;
                }
            }
        }
        if let Some(type_name) = crate::eval::reference_type(reference) {
            out.push(Item::node(None, None, model().type_def(type_name)));
        }
    }

    fn member_of(
        &self,
        input: &Collection<'a>,
        arg: &Op,
        scope: &Scope<'_, 'a>,
    ) -> Result<Collection<'a>> {
        let Some(item) = singleton(input, "memberOf()")? else {
            return Ok(Collection::new());
        };
        let Some(value_set) = self.string_arg(arg, scope, "memberOf()")? else {
            return Ok(Collection::new());
        };
        let ask = |system: Option<&str>, code: &str| match self.env.terminology {
            Some(terminology) => terminology.member_of(system, code, value_set.as_str()),
            None => env::vendored_member_of(system, code, value_set.as_str()),
        };
        let coding = |c: &Value| {
            let code = c.get("code").and_then(Value::as_str)?;
            ask(c.get("system").and_then(Value::as_str), code)
        };
        // A concept none of whose codes is a member may still be one by its words.
        let by_text = |concept: &Value, by_code: Option<bool>| {
            if by_code == Some(true) {
                return by_code;
            }
            let Some(terminology) = self.env.terminology else {
                return by_code;
            };
            let mut words = concept
                .get("text")
                .and_then(Value::as_str)
                .into_iter()
                .chain(
                    concept
                        .get("coding")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .chain(std::iter::once(concept))
                        .filter_map(|c| c.get("display").and_then(Value::as_str)),
                );
            match words.any(|w| terminology.member_of_text(w, value_set.as_str()) == Some(true)) {
                true => Some(true),
                false => by_code,
            }
        };
        let answer = match (item.json(), item.type_name()) {
            (Some(Value::String(code)), _) => ask(None, code),
            (Some(c), "Coding") => by_text(c, coding(c)),
            (Some(c), "CodeableConcept") => {
                let answers: Vec<Option<bool>> = c
                    .get("coding")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(coding)
                    .collect();
                let by_code = if answers.contains(&Some(true)) {
                    Some(true)
                } else if answers.contains(&None) || answers.is_empty() {
                    None
                } else {
                    Some(false)
                };
                by_text(c, by_code)
            }
            _ => None,
        };
        Ok(answer.map(Collection::boolean).unwrap_or_default())
    }
}

fn type_arg(call: &Call) -> Result<&TypeSpec> {
    match &call.type_arg {
        Some(spec) => Ok(spec),
        None => invalid("a type name is required"),
    }
}
