//! Turns a syntax tree into an evaluable tree: functions resolved to [`Function`], arity
//! checked, literals parsed, type names resolved, and, where the context type is known, the
//! types of paths inferred against the R4 model, so that a misspelt element or a string
//! function applied to an `Identifier` is rejected before any resource is seen.

use std::cell::RefCell;
use std::sync::Arc;

use fhir_model::{TypeDef, TypeKind};

use crate::datetime::Temporal;
use crate::decimal::Decimal;
use crate::error::ParseError;
use crate::functions::{Arguments, Function, signature};
use crate::item::{Item, SystemType};
use crate::navigate::{MemberName, model};
use crate::parser::{BinaryOp, Syntax, SyntaxKind};
use crate::quantity::Quantity;

/// A compiled expression node.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Empty,
    Literal(Item<'static>),
    This,
    IndexVariable,
    Total,
    Variable(Variable),
    /// An identifier at the start of a path: `$this` itself when `$this` is of the named type
    /// (`Patient.name`), else the element of that name.
    PathStart {
        member: MemberName,
        type_filter: Option<&'static TypeDef>,
        /// A type known to pass the filter (the context type, for `Resource.id` compiled for
        /// an Observation), checked by pointer before walking the model's base types.
        known_match: Option<&'static TypeDef>,
    },
    Member(Box<Op>, MemberName),
    Call(Box<Call>),
    Index(Box<Op>, Box<Op>),
    Negate(Box<Op>),
    Binary(BinaryOp, Box<Op>, Box<Op>),
    /// `a | b | ...`: every operand's items, without duplicates.
    Union(Vec<Op>),
    Is(Box<Op>, TypeSpec),
    As(Box<Op>, TypeSpec),
    /// An expression that parses but can only fail when evaluated.
    Fail(Box<str>),
}

#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub target: Option<Op>,
    pub function: Function,
    pub args: Vec<Op>,
    pub type_arg: Option<TypeSpec>,
    /// A regular expression argument that is a literal, compiled once.
    pub regex: Option<Arc<regex::Regex>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Variable {
    Context,
    Resource,
    RootResource,
    Named(Box<str>),
}

/// A type named in `is`, `as`, `ofType`.
#[derive(Debug, Clone)]
pub(crate) enum TypeSpec {
    System(SystemType),
    Fhir(&'static TypeDef),
    /// `Quantity` unqualified: the FHIR type or the System type.
    AnyQuantity(&'static TypeDef),
    /// A System type that does not exist: matches nothing.
    Nothing,
    /// Not a known type: an error when evaluated.
    Unknown(Box<str>),
}

/// What a compiled expression is known to produce.
#[derive(Debug, Clone)]
pub(crate) enum StaticType {
    Any,
    /// One of these types (an empty list: always empty).
    Of(Vec<TypeRef>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum TypeRef {
    Fhir(&'static TypeDef),
    System(SystemType),
}

impl PartialEq for TypeRef {
    fn eq(&self, other: &TypeRef) -> bool {
        match (self, other) {
            (TypeRef::Fhir(a), TypeRef::Fhir(b)) => std::ptr::eq(*a, *b),
            (TypeRef::System(a), TypeRef::System(b)) => a == b,
            _ => false,
        }
    }
}

impl StaticType {
    fn system(ty: SystemType) -> StaticType {
        StaticType::Of(vec![TypeRef::System(ty)])
    }

    fn fhir(name: &str) -> StaticType {
        match model().type_def(name) {
            Some(t) => StaticType::Of(vec![TypeRef::Fhir(t)]),
            None => StaticType::Any,
        }
    }

    fn union(self, other: StaticType) -> StaticType {
        match (self, other) {
            (StaticType::Of(mut a), StaticType::Of(b)) => {
                for t in b {
                    if !a.contains(&t) {
                        a.push(t);
                    }
                }
                StaticType::Of(a)
            }
            _ => StaticType::Any,
        }
    }

    /// Known, non-empty, and no member satisfies `test`.
    fn never(&self, test: impl Fn(&TypeRef) -> bool) -> bool {
        matches!(self, StaticType::Of(types) if !types.is_empty() && !types.iter().any(test))
    }
}

fn is_string_like(t: &TypeRef) -> bool {
    match t {
        TypeRef::System(s) => *s == SystemType::String,
        TypeRef::Fhir(f) => SystemType::of_fhir_primitive(&f.name) == Some(SystemType::String),
    }
}

fn system_of(t: &TypeRef) -> Option<SystemType> {
    match t {
        TypeRef::System(s) => Some(*s),
        TypeRef::Fhir(f) => SystemType::of_fhir_primitive(&f.name),
    }
}

/// Options for [`crate::compile_with`].
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// The type of the resource (or element) the expression will be evaluated on, such as
    /// `Observation`. With it, paths are checked against the model and branches for other
    /// resource types (`Patient.name | Practitioner.name`) are dropped.
    pub context_type: Option<String>,
    /// Also reject a path that starts with a type other than the context type
    /// (`Encounter.status` on a Patient) instead of letting it yield nothing.
    pub strict: bool,
}

pub(crate) struct Compiler<'s> {
    source: &'s str,
    options: &'s CompileOptions,
    context: Option<&'static TypeDef>,
    /// The user variables (`%name`) the expression refers to, in order of first mention.
    variables: RefCell<Vec<Box<str>>>,
}

/// What compiling an expression found: the evaluable tree, what it is known to produce, and
/// the user variables it needs.
pub(crate) struct Compiled {
    pub op: Op,
    pub result: StaticType,
    pub variables: Vec<Box<str>>,
}

/// The compile-time picture of `$this`.
#[derive(Clone)]
struct Scope {
    this: StaticType,
    /// `$this` is the evaluation context (not an item inside a function argument).
    at_root: bool,
}

pub(crate) fn compile(
    source: &str,
    syntax: &Syntax,
    options: &CompileOptions,
) -> Result<Compiled, ParseError> {
    let context = match &options.context_type {
        Some(name) => Some(model().type_def(name).ok_or_else(|| {
            ParseError::semantic(source, 0, format!("unknown context type {name}"))
        })?),
        None => None,
    };
    let compiler = Compiler {
        source,
        options,
        context,
        variables: RefCell::new(Vec::new()),
    };
    let this = match context {
        Some(t) => StaticType::Of(vec![TypeRef::Fhir(t)]),
        None => StaticType::Any,
    };
    let (op, result) = compiler.compile(
        syntax,
        &Scope {
            this,
            at_root: true,
        },
    )?;
    Ok(Compiled {
        op,
        result,
        variables: compiler.variables.into_inner(),
    })
}

impl Compiler<'_> {
    fn error(&self, syntax: &Syntax, message: String) -> ParseError {
        ParseError::semantic(self.source, syntax.offset, message)
    }

    fn compile(&self, syntax: &Syntax, scope: &Scope) -> Result<(Op, StaticType), ParseError> {
        Ok(match &syntax.kind {
            SyntaxKind::Empty => (Op::Empty, StaticType::Of(vec![])),
            SyntaxKind::Boolean(b) => (
                Op::Literal(Item::boolean(*b)),
                StaticType::system(SystemType::Boolean),
            ),
            SyntaxKind::String(s) => (
                Op::Literal(Item::string(s)),
                StaticType::system(SystemType::String),
            ),
            SyntaxKind::Number(text) => {
                if !text.contains('.')
                    && let Ok(i) = text.parse::<i64>()
                {
                    (
                        Op::Literal(Item::integer(i)),
                        StaticType::system(SystemType::Integer),
                    )
                } else {
                    let d = Decimal::parse(text)
                        .ok_or_else(|| self.error(syntax, format!("bad number {text}")))?;
                    (
                        Op::Literal(Item::decimal(d)),
                        StaticType::system(SystemType::Decimal),
                    )
                }
            }
            SyntaxKind::Quantity { number, unit } => {
                let d = Decimal::parse(number)
                    .ok_or_else(|| self.error(syntax, format!("bad number {number}")))?;
                (
                    Op::Literal(Item::quantity(Quantity::new(d, unit))),
                    StaticType::system(SystemType::Quantity),
                )
            }
            SyntaxKind::DateTime(text) => self.date_time_literal(syntax, text)?,
            SyntaxKind::Constant(name) => self.constant(name),
            SyntaxKind::This => (Op::This, scope.this.clone()),
            SyntaxKind::IndexVariable => {
                (Op::IndexVariable, StaticType::system(SystemType::Integer))
            }
            SyntaxKind::Total => (Op::Total, StaticType::Any),
            SyntaxKind::Identifier(name) => self.path_start(syntax, name, scope)?,
            SyntaxKind::Member(target, name) => {
                let (target_op, target_type) = self.compile(target, scope)?;
                let result = self.member_type(syntax, &target_type, name)?;
                (
                    Op::Member(
                        Box::new(target_op),
                        MemberName::new(name, &fhir_types(&target_type)),
                    ),
                    result,
                )
            }
            SyntaxKind::Call { target, name, args } => {
                self.call(syntax, target.as_deref(), name, args, scope)?
            }
            SyntaxKind::Index(target, index) => {
                let (target_op, target_type) = self.compile(target, scope)?;
                let (index_op, _) = self.compile(index, scope)?;
                (
                    Op::Index(Box::new(target_op), Box::new(index_op)),
                    target_type,
                )
            }
            SyntaxKind::Negate(operand) => {
                let (op, ty) = self.compile(operand, scope)?;
                // Folding keeps `-1` a literal (it appears in `lowBoundary(-1)`).
                match op {
                    Op::Literal(item) if item.as_integer().is_some() => (
                        Op::Literal(Item::integer(-item.as_integer().unwrap_or(0))),
                        ty,
                    ),
                    Op::Literal(Item(crate::item::Repr::Decimal(d))) => {
                        (Op::Literal(Item::decimal(d.neg())), ty)
                    }
                    op => (Op::Negate(Box::new(op)), ty),
                }
            }
            SyntaxKind::Binary(op, left, right) => {
                let (left_op, left_type) = self.compile(left, scope)?;
                let (right_op, right_type) = self.compile(right, scope)?;
                let result = self.binary_type(syntax, *op, &left_type, &right_type)?;
                if *op == BinaryOp::Union {
                    // `a | b | c` as one n-ary union without the branches that were dropped
                    // for other resource types: one de-duplication instead of one per `|`.
                    let mut operands = Vec::new();
                    for operand in [left_op, right_op] {
                        match operand {
                            Op::Union(inner) => operands.extend(inner),
                            Op::Empty => {}
                            other => operands.push(other),
                        }
                    }
                    return Ok((Op::Union(operands), result));
                }
                (
                    Op::Binary(*op, Box::new(left_op), Box::new(right_op)),
                    result,
                )
            }
            SyntaxKind::Is(target, type_name) => {
                let (op, _) = self.compile(target, scope)?;
                (
                    Op::Is(Box::new(op), self.type_spec(type_name)),
                    StaticType::system(SystemType::Boolean),
                )
            }
            SyntaxKind::As(target, type_name) => {
                let (op, _) = self.compile(target, scope)?;
                let spec = self.type_spec(type_name);
                let ty = spec_type(&spec);
                (Op::As(Box::new(op), spec), ty)
            }
        })
    }

    fn date_time_literal(
        &self,
        syntax: &Syntax,
        text: &str,
    ) -> Result<(Op, StaticType), ParseError> {
        if let Some(time) = text.strip_prefix('T') {
            if let Some(value) = Temporal::parse_time(time) {
                return Ok((
                    Op::Literal(Item::temporal(value)),
                    StaticType::system(SystemType::Time),
                ));
            }
            if time.contains(['Z', '+', '-']) {
                // The official tests treat a zoned time literal as an evaluation error.
                return Ok((
                    Op::Fail("a time literal cannot have a time zone".into()),
                    StaticType::Any,
                ));
            }
        } else if text.contains('T') {
            if let Some(value) = Temporal::parse_date_time(text) {
                return Ok((
                    Op::Literal(Item::temporal(value)),
                    StaticType::system(SystemType::DateTime),
                ));
            }
        } else if let Some(value) = Temporal::parse_date(text) {
            return Ok((
                Op::Literal(Item::temporal(value)),
                StaticType::system(SystemType::Date),
            ));
        }
        Err(ParseError::syntax(
            self.source,
            syntax.offset,
            format!("@{text} is not a valid date or time"),
        ))
    }

    fn constant(&self, name: &str) -> (Op, StaticType) {
        let string = |s: String| {
            (
                Op::Literal(Item::string(&s)),
                StaticType::system(SystemType::String),
            )
        };
        let context_type = || match self.context {
            Some(t) => StaticType::Of(vec![TypeRef::Fhir(t)]),
            None => StaticType::Any,
        };
        match name {
            "context" => (Op::Variable(Variable::Context), context_type()),
            "resource" => (Op::Variable(Variable::Resource), StaticType::Any),
            "rootResource" => (Op::Variable(Variable::RootResource), StaticType::Any),
            "ucum" => string("http://unitsofmeasure.org".into()),
            "sct" => string("http://snomed.info/sct".into()),
            "loinc" => string("http://loinc.org".into()),
            _ => {
                if let Some(rest) = name.strip_prefix("vs-") {
                    string(format!("http://hl7.org/fhir/ValueSet/{rest}"))
                } else if let Some(rest) = name.strip_prefix("ext-") {
                    string(format!("http://hl7.org/fhir/StructureDefinition/{rest}"))
                } else {
                    let mut variables = self.variables.borrow_mut();
                    if !variables.iter().any(|known| &**known == name) {
                        variables.push(name.into());
                    }
                    (Op::Variable(Variable::Named(name.into())), StaticType::Any)
                }
            }
        }
    }

    fn path_start(
        &self,
        syntax: &Syntax,
        name: &str,
        scope: &Scope,
    ) -> Result<(Op, StaticType), ParseError> {
        let named_type = name
            .starts_with(|c: char| c.is_ascii_uppercase())
            .then(|| model().type_def(name))
            .flatten();
        if let Some(filter) = named_type {
            let matches = match &scope.this {
                StaticType::Any => true,
                StaticType::Of(types) => types.iter().any(|t| match t {
                    TypeRef::Fhir(t) => {
                        model().is_subtype(&t.name, &filter.name)
                            || model().is_subtype(&filter.name, &t.name)
                    }
                    TypeRef::System(_) => false,
                }),
            };
            if !matches && scope.at_root {
                if self.options.strict {
                    let context = self.context.map(|c| &*c.name).unwrap_or("?");
                    return Err(self.error(
                        syntax,
                        format!("the expression is about {name}, but the context is {context}"),
                    ));
                }
                // A branch for another resource type, as in the multi-type search parameters.
                return Ok((Op::Empty, StaticType::Of(vec![])));
            }
            let ty = StaticType::Of(vec![TypeRef::Fhir(filter)]);
            return Ok((
                Op::PathStart {
                    member: MemberName::new(name, &[]),
                    type_filter: Some(filter),
                    known_match: self
                        .context
                        .filter(|c| scope.at_root && model().is_subtype(&c.name, &filter.name)),
                },
                ty,
            ));
        }
        let ty = self.member_type(syntax, &scope.this, name)?;
        Ok((
            Op::PathStart {
                member: MemberName::new(name, &fhir_types(&scope.this)),
                type_filter: None,
                known_match: None,
            },
            ty,
        ))
    }

    /// The type of `name` on values of type `target`; an error when every possible type is a
    /// FHIR type and none has that element.
    fn member_type(
        &self,
        syntax: &Syntax,
        target: &StaticType,
        name: &str,
    ) -> Result<StaticType, ParseError> {
        let StaticType::Of(types) = target else {
            return Ok(StaticType::Any);
        };
        if types.is_empty() {
            return Ok(StaticType::Of(vec![]));
        }
        let mut result = StaticType::Of(vec![]);
        let mut found = false;
        // A System.Quantity was asked for a member it does not have.
        let mut quantity_without = false;
        for t in types {
            let t = match t {
                TypeRef::Fhir(t) => t,
                // A System.Quantity has a value and a unit (as `navigate::member` reads
                // them): `value.ofType(Quantity).value` is a decimal whichever Quantity it is.
                TypeRef::System(SystemType::Quantity) => {
                    match name {
                        "value" => result = result.union(StaticType::system(SystemType::Decimal)),
                        "unit" => result = result.union(StaticType::system(SystemType::String)),
                        // Nothing else: it adds no values.
                        _ => {
                            quantity_without = true;
                            continue;
                        }
                    }
                    found = true;
                    continue;
                }
                // `type().name` and the like: not described by the model.
                TypeRef::System(_) => return Ok(StaticType::Any),
            };
            if t.kind == TypeKind::Resource && t.is_abstract && t.element(name).is_none() {
                // `Resource` or `DomainResource`: the concrete type is only known at run time.
                return Ok(StaticType::Any);
            }
            if let Some(property) = t.property(name) {
                if property.element.choice {
                    // `valueQuantity` is JSON's spelling; FHIRPath only knows `value`.
                    continue;
                }
                found = true;
                if property.type_code == "Resource" {
                    return Ok(StaticType::Any);
                }
                let child = if name == "id" && t.kind == TypeKind::Resource {
                    "id"
                } else {
                    property.type_code
                };
                result = result.union(StaticType::fhir(child));
            } else if let Some(element) = t.element(name).filter(|e| e.choice) {
                found = true;
                for ty in &element.types {
                    result = result.union(StaticType::fhir(&ty.code));
                }
            }
        }
        if !found && quantity_without {
            return Ok(StaticType::Any);
        }
        if !found {
            let owner = match types.as_slice() {
                [TypeRef::Fhir(t)] => t.name.to_string(),
                _ => "any of the possible types".to_string(),
            };
            return Err(self.error(syntax, format!("{owner} has no element {name}")));
        }
        Ok(result)
    }

    fn type_spec(&self, name: &str) -> TypeSpec {
        let (namespace, bare) = match name.split_once('.') {
            Some((ns @ ("FHIR" | "System"), rest)) => (Some(ns), rest),
            _ => (None, name),
        };
        let fhir = || model().type_def(bare);
        match namespace {
            // A System type that does not exist is a type nothing has (`is(System.Patient)`).
            Some("System") => Some(
                SystemType::by_name(bare)
                    .map(TypeSpec::System)
                    .unwrap_or(TypeSpec::Nothing),
            ),
            Some(_) => fhir().map(TypeSpec::Fhir),
            None => match (fhir(), SystemType::by_name(bare)) {
                (Some(t), Some(SystemType::Quantity)) => Some(TypeSpec::AnyQuantity(t)),
                (Some(t), _) => Some(TypeSpec::Fhir(t)),
                (None, Some(s)) => Some(TypeSpec::System(s)),
                (None, None) => None,
            },
        }
        .unwrap_or_else(|| TypeSpec::Unknown(name.into()))
    }

    fn binary_type(
        &self,
        syntax: &Syntax,
        op: BinaryOp,
        left: &StaticType,
        right: &StaticType,
    ) -> Result<StaticType, ParseError> {
        use BinaryOp::*;
        Ok(match op {
            Union => left.clone().union(right.clone()),
            Concatenate => StaticType::system(SystemType::String),
            Plus | Minus => {
                let temporal = |t: &TypeRef| {
                    matches!(
                        system_of(t),
                        Some(SystemType::Date | SystemType::DateTime | SystemType::Time)
                    )
                };
                let number = |t: &TypeRef| {
                    matches!(
                        system_of(t),
                        Some(SystemType::Integer | SystemType::Decimal)
                    )
                };
                if left.never(|t| !temporal(t)) && right.never(|t| !number(t)) {
                    return Err(self.error(
                        syntax,
                        "a date or time can only be added to a quantity of time".into(),
                    ));
                }
                if left.never(|t| !temporal(t)) {
                    left.clone()
                } else {
                    StaticType::Any
                }
            }
            Multiply | Divide | Div | Mod => StaticType::Any,
            _ => StaticType::system(SystemType::Boolean),
        })
    }

    fn call(
        &self,
        syntax: &Syntax,
        target: Option<&Syntax>,
        name: &str,
        args: &[Syntax],
        scope: &Scope,
    ) -> Result<(Op, StaticType), ParseError> {
        let signature = signature(name)
            .ok_or_else(|| self.error(syntax, format!("unknown function {name}()")))?;
        if args.len() < signature.min || args.len() > signature.max {
            let expected = if signature.min == signature.max {
                format!("{}", signature.min)
            } else {
                format!("{} to {}", signature.min, signature.max)
            };
            return Err(self.error(
                syntax,
                format!("{name}() takes {expected} arguments, not {}", args.len()),
            ));
        }
        let (target_op, input_type) = match target {
            Some(t) => {
                let (op, ty) = self.compile(t, scope)?;
                (Some(op), ty)
            }
            None => (None, scope.this.clone()),
        };
        if signature.string_input && input_type.never(is_string_like) {
            return Err(self.error(syntax, format!("{name}() applies to strings")));
        }
        let function = signature.function;
        if self.options.strict
            && matches!(function, Function::Skip | Function::Take | Function::First | Function::Last | Function::Tail)
            && target.is_some_and(|t| matches!(&t.kind, SyntaxKind::Call { name, .. } if name == "children" || name == "descendants"))
        {
            return Err(self.error(syntax, format!("{name}() needs an ordered input, and {name}'s input has no order")));
        }
        let item_scope = Scope {
            this: input_type.clone(),
            at_root: false,
        };
        let mut type_arg = None;
        let mut arg_ops = Vec::with_capacity(args.len());
        let mut arg_types = Vec::with_capacity(args.len());
        for (i, arg) in args.iter().enumerate() {
            let per_item = match signature.arguments {
                Arguments::TypeName => {
                    type_arg =
                        Some(self.type_spec(&type_name_of(arg).ok_or_else(|| {
                            self.error(arg, format!("{name}() takes a type name"))
                        })?));
                    continue;
                }
                Arguments::PerItem => match function {
                    // iif's branches see the same `$this` as its criterion.
                    Function::Iif => target.is_some(),
                    // aggregate(aggregator, init) and trace(name, projection).
                    Function::Aggregate => i == 0,
                    Function::Trace => i == 1,
                    _ => true,
                },
                Arguments::Plain => false,
            };
            let (op, ty) = if per_item {
                self.compile(arg, &item_scope)?
            } else {
                self.compile(arg, scope)?
            };
            arg_ops.push(op);
            arg_types.push(ty);
        }
        if function == Function::Iif
            && arg_types[0].never(|t| system_of(t) == Some(SystemType::Boolean))
        {
            return Err(self.error(&args[0], "the criterion of iif() must be a boolean".into()));
        }
        let regex = match function {
            Function::Matches | Function::MatchesFull | Function::ReplaceMatches => {
                match &args[0].kind {
                    SyntaxKind::String(pattern) => Some(Arc::new(
                        build_regex(pattern, function == Function::MatchesFull).map_err(|e| {
                            self.error(&args[0], format!("bad regular expression: {e}"))
                        })?,
                    )),
                    _ => None,
                }
            }
            _ => None,
        };
        let result = result_type(function, &input_type, &arg_types, type_arg.as_ref());
        let call = Call {
            target: target_op,
            function,
            args: arg_ops,
            type_arg,
            regex,
        };
        Ok((Op::Call(Box::new(call)), result))
    }
}

impl StaticType {
    /// The names of the possible types (`HumanName`, `code`, `Patient.contact`,
    /// `System.Boolean`); `None` when they are not known.
    pub(crate) fn names(&self) -> Option<Vec<&'static str>> {
        match self {
            StaticType::Any => None,
            StaticType::Of(types) => Some(
                types
                    .iter()
                    .map(|t| match t {
                        TypeRef::Fhir(t) => &*t.name,
                        TypeRef::System(s) => s.qualified_name(),
                    })
                    .collect(),
            ),
        }
    }
}

/// The FHIR types among a static type's possibilities.
fn fhir_types(ty: &StaticType) -> Vec<&'static TypeDef> {
    match ty {
        StaticType::Any => Vec::new(),
        StaticType::Of(types) => types
            .iter()
            .filter_map(|t| match t {
                TypeRef::Fhir(t) => Some(*t),
                TypeRef::System(_) => None,
            })
            .collect(),
    }
}

/// A regular expression as FHIRPath means it: `.` matches newlines too, and `matchesFull`
/// must match the whole string.
pub(crate) fn build_regex(pattern: &str, full: bool) -> Result<regex::Regex, regex::Error> {
    if full {
        regex::Regex::new(&format!("(?s)^(?:{pattern})$"))
    } else {
        regex::Regex::new(&format!("(?s){pattern}"))
    }
}

/// The written type name of a type argument (`Quantity`, `FHIR.Patient`, `` FHIR.`Patient` ``).
fn type_name_of(syntax: &Syntax) -> Option<String> {
    match &syntax.kind {
        SyntaxKind::Identifier(name) => Some(name.clone()),
        SyntaxKind::Member(target, name) => Some(format!("{}.{name}", type_name_of(target)?)),
        _ => None,
    }
}

fn spec_type(spec: &TypeSpec) -> StaticType {
    match spec {
        TypeSpec::System(s) => StaticType::system(*s),
        TypeSpec::Fhir(t) => StaticType::Of(vec![TypeRef::Fhir(t)]),
        TypeSpec::AnyQuantity(t) => StaticType::Of(vec![
            TypeRef::Fhir(t),
            TypeRef::System(SystemType::Quantity),
        ]),
        TypeSpec::Nothing => StaticType::Of(vec![]),
        TypeSpec::Unknown(_) => StaticType::Any,
    }
}

fn result_type(
    function: Function,
    input: &StaticType,
    args: &[StaticType],
    type_arg: Option<&TypeSpec>,
) -> StaticType {
    use Function::*;
    let boolean = StaticType::system(SystemType::Boolean);
    match function {
        Empty | Exists | All | AllTrue | AnyTrue | AllFalse | AnyFalse | SubsetOf | SupersetOf
        | IsDistinct | Is | ConvertsToBoolean | ConvertsToInteger | ConvertsToDecimal
        | ConvertsToString | ConvertsToDate | ConvertsToDateTime | ConvertsToTime
        | ConvertsToQuantity | StartsWith | EndsWith | Contains | Matches | MatchesFull | Not
        | HasValue | MemberOf | ConformsTo | HtmlChecks | Comparable | Subsumes | SubsumedBy => {
            boolean
        }
        Count | IndexOf | Length | Precision => StaticType::system(SystemType::Integer),
        ToString | Substring | Upper | Lower | Replace | ReplaceMatches | ToChars | Trim
        | Split | Join | Encode | Decode | Escape | Unescape | GetResourceKey | GetReferenceKey => {
            StaticType::system(SystemType::String)
        }
        Where | Distinct | Single | First | Last | Tail | Skip | Take | Intersect | Exclude
        | Trace | Sort => input.clone(),
        OfType | As => type_arg.map(spec_type).unwrap_or(StaticType::Any),
        Union | Combine => input
            .clone()
            .union(args.first().cloned().unwrap_or(StaticType::Any)),
        Select => args.first().cloned().unwrap_or(StaticType::Any),
        Iif => {
            let second = args.get(1).cloned().unwrap_or(StaticType::Any);
            match args.get(2) {
                Some(third) => second.union(third.clone()),
                None => second,
            }
        }
        Today => StaticType::system(SystemType::Date),
        Now => StaticType::system(SystemType::DateTime),
        TimeOfDay => StaticType::system(SystemType::Time),
        ToBoolean => boolean,
        ToInteger => StaticType::system(SystemType::Integer),
        ToDecimal => StaticType::system(SystemType::Decimal),
        ToDate => StaticType::system(SystemType::Date),
        ToDateTime => StaticType::system(SystemType::DateTime),
        ToTime => StaticType::system(SystemType::Time),
        ToQuantity => StaticType::system(SystemType::Quantity),
        Extension => StaticType::fhir("Extension"),
        _ => StaticType::Any,
    }
}
