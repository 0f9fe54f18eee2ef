//! The function table: every FHIRPath function by name, its arity, and which of its arguments
//! are evaluated once per input item (with `$this` set) rather than once.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    // Existence
    Empty,
    Exists,
    All,
    AllTrue,
    AnyTrue,
    AllFalse,
    AnyFalse,
    SubsetOf,
    SupersetOf,
    Count,
    Distinct,
    IsDistinct,
    // Filtering and projection
    Where,
    Select,
    Repeat,
    OfType,
    // Subsetting
    Single,
    First,
    Last,
    Tail,
    Skip,
    Take,
    Intersect,
    Exclude,
    // Combining
    Union,
    Combine,
    // Conversion
    Iif,
    ToBoolean,
    ConvertsToBoolean,
    ToInteger,
    ConvertsToInteger,
    ToDecimal,
    ConvertsToDecimal,
    ToString,
    ConvertsToString,
    ToDate,
    ConvertsToDate,
    ToDateTime,
    ConvertsToDateTime,
    ToTime,
    ConvertsToTime,
    ToQuantity,
    ConvertsToQuantity,
    // Strings
    IndexOf,
    Substring,
    StartsWith,
    EndsWith,
    Contains,
    Upper,
    Lower,
    Replace,
    Matches,
    MatchesFull,
    ReplaceMatches,
    Length,
    ToChars,
    Trim,
    Split,
    Join,
    Encode,
    Decode,
    Escape,
    Unescape,
    // Math
    Abs,
    Ceiling,
    Exp,
    Floor,
    Ln,
    Log,
    Power,
    Round,
    Sqrt,
    Truncate,
    // Tree navigation
    Children,
    Descendants,
    // Utility
    Trace,
    Now,
    Today,
    TimeOfDay,
    Not,
    Type,
    Is,
    As,
    Aggregate,
    Sort,
    LowBoundary,
    HighBoundary,
    Precision,
    Comparable,
    Sum,
    Min,
    Max,
    Avg,
    // FHIR additions
    Extension,
    HasValue,
    GetValue,
    Resolve,
    MemberOf,
    ConformsTo,
    HtmlChecks,
    Subsumes,
    SubsumedBy,
    // SQL on FHIR additions (its view runners' required functions)
    GetResourceKey,
    GetReferenceKey,
}

/// How a function's arguments are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arguments {
    /// Once, against the current `$this` (not against the function's input).
    Plain,
    /// Once per input item, with `$this` (and `$index`) set to that item.
    PerItem,
    /// A type name, not an expression.
    TypeName,
}

pub(crate) struct Signature {
    pub name: &'static str,
    pub function: Function,
    pub min: usize,
    pub max: usize,
    pub arguments: Arguments,
    /// The input must be a string (checked when the input type is known).
    pub string_input: bool,
}

const fn sig(name: &'static str, function: Function, min: usize, max: usize) -> Signature {
    Signature {
        name,
        function,
        min,
        max,
        arguments: Arguments::Plain,
        string_input: false,
    }
}

const fn per_item(name: &'static str, function: Function, min: usize, max: usize) -> Signature {
    Signature {
        name,
        function,
        min,
        max,
        arguments: Arguments::PerItem,
        string_input: false,
    }
}

const fn typed(name: &'static str, function: Function) -> Signature {
    Signature {
        name,
        function,
        min: 1,
        max: 1,
        arguments: Arguments::TypeName,
        string_input: false,
    }
}

/// A function whose only argument, optional, is a type name (`getReferenceKey([type])`).
const fn optionally_typed(name: &'static str, function: Function) -> Signature {
    Signature {
        name,
        function,
        min: 0,
        max: 1,
        arguments: Arguments::TypeName,
        string_input: false,
    }
}

const fn text(name: &'static str, function: Function, min: usize, max: usize) -> Signature {
    Signature {
        name,
        function,
        min,
        max,
        arguments: Arguments::Plain,
        string_input: true,
    }
}

pub(crate) const SIGNATURES: &[Signature] = &[
    sig("empty", Function::Empty, 0, 0),
    per_item("exists", Function::Exists, 0, 1),
    per_item("all", Function::All, 1, 1),
    sig("allTrue", Function::AllTrue, 0, 0),
    sig("anyTrue", Function::AnyTrue, 0, 0),
    sig("allFalse", Function::AllFalse, 0, 0),
    sig("anyFalse", Function::AnyFalse, 0, 0),
    sig("subsetOf", Function::SubsetOf, 1, 1),
    sig("supersetOf", Function::SupersetOf, 1, 1),
    sig("count", Function::Count, 0, 0),
    sig("distinct", Function::Distinct, 0, 0),
    sig("isDistinct", Function::IsDistinct, 0, 0),
    per_item("where", Function::Where, 1, 1),
    per_item("select", Function::Select, 1, 1),
    per_item("repeat", Function::Repeat, 1, 1),
    typed("ofType", Function::OfType),
    sig("single", Function::Single, 0, 0),
    sig("first", Function::First, 0, 0),
    sig("last", Function::Last, 0, 0),
    sig("tail", Function::Tail, 0, 0),
    sig("skip", Function::Skip, 1, 1),
    sig("take", Function::Take, 1, 1),
    sig("intersect", Function::Intersect, 1, 1),
    sig("exclude", Function::Exclude, 1, 1),
    sig("union", Function::Union, 1, 1),
    sig("combine", Function::Combine, 1, 1),
    per_item("iif", Function::Iif, 2, 3),
    sig("toBoolean", Function::ToBoolean, 0, 0),
    sig("convertsToBoolean", Function::ConvertsToBoolean, 0, 0),
    sig("toInteger", Function::ToInteger, 0, 0),
    sig("convertsToInteger", Function::ConvertsToInteger, 0, 0),
    sig("toDecimal", Function::ToDecimal, 0, 0),
    sig("convertsToDecimal", Function::ConvertsToDecimal, 0, 0),
    sig("toString", Function::ToString, 0, 0),
    sig("convertsToString", Function::ConvertsToString, 0, 0),
    sig("toDate", Function::ToDate, 0, 0),
    sig("convertsToDate", Function::ConvertsToDate, 0, 0),
    sig("toDateTime", Function::ToDateTime, 0, 0),
    sig("convertsToDateTime", Function::ConvertsToDateTime, 0, 0),
    sig("toTime", Function::ToTime, 0, 0),
    sig("convertsToTime", Function::ConvertsToTime, 0, 0),
    sig("toQuantity", Function::ToQuantity, 0, 1),
    sig("convertsToQuantity", Function::ConvertsToQuantity, 0, 1),
    text("indexOf", Function::IndexOf, 1, 1),
    text("substring", Function::Substring, 1, 2),
    text("startsWith", Function::StartsWith, 1, 1),
    text("endsWith", Function::EndsWith, 1, 1),
    text("contains", Function::Contains, 1, 1),
    text("upper", Function::Upper, 0, 0),
    text("lower", Function::Lower, 0, 0),
    text("replace", Function::Replace, 2, 2),
    text("matches", Function::Matches, 1, 1),
    text("matchesFull", Function::MatchesFull, 1, 1),
    text("replaceMatches", Function::ReplaceMatches, 2, 2),
    text("length", Function::Length, 0, 0),
    text("toChars", Function::ToChars, 0, 0),
    text("trim", Function::Trim, 0, 0),
    text("split", Function::Split, 1, 1),
    sig("join", Function::Join, 0, 1),
    text("encode", Function::Encode, 1, 1),
    text("decode", Function::Decode, 1, 1),
    text("escape", Function::Escape, 1, 1),
    text("unescape", Function::Unescape, 1, 1),
    sig("abs", Function::Abs, 0, 0),
    sig("ceiling", Function::Ceiling, 0, 0),
    sig("exp", Function::Exp, 0, 0),
    sig("floor", Function::Floor, 0, 0),
    sig("ln", Function::Ln, 0, 0),
    sig("log", Function::Log, 1, 1),
    sig("power", Function::Power, 1, 1),
    sig("round", Function::Round, 0, 1),
    sig("sqrt", Function::Sqrt, 0, 0),
    sig("truncate", Function::Truncate, 0, 0),
    sig("children", Function::Children, 0, 0),
    sig("descendants", Function::Descendants, 0, 0),
    per_item("trace", Function::Trace, 1, 2),
    sig("now", Function::Now, 0, 0),
    sig("today", Function::Today, 0, 0),
    sig("timeOfDay", Function::TimeOfDay, 0, 0),
    sig("not", Function::Not, 0, 0),
    sig("type", Function::Type, 0, 0),
    typed("is", Function::Is),
    typed("as", Function::As),
    per_item("aggregate", Function::Aggregate, 1, 2),
    per_item("sort", Function::Sort, 0, 8),
    sig("lowBoundary", Function::LowBoundary, 0, 1),
    sig("highBoundary", Function::HighBoundary, 0, 1),
    sig("precision", Function::Precision, 0, 0),
    sig("comparable", Function::Comparable, 1, 1),
    sig("sum", Function::Sum, 0, 0),
    sig("min", Function::Min, 0, 0),
    sig("max", Function::Max, 0, 0),
    sig("avg", Function::Avg, 0, 0),
    sig("extension", Function::Extension, 1, 1),
    sig("hasValue", Function::HasValue, 0, 0),
    sig("getValue", Function::GetValue, 0, 0),
    sig("resolve", Function::Resolve, 0, 0),
    sig("memberOf", Function::MemberOf, 1, 1),
    sig("conformsTo", Function::ConformsTo, 1, 1),
    sig("htmlChecks", Function::HtmlChecks, 0, 0),
    sig("htmlChecks2", Function::HtmlChecks, 0, 0),
    sig("subsumes", Function::Subsumes, 1, 1),
    sig("subsumedBy", Function::SubsumedBy, 1, 1),
    sig("getResourceKey", Function::GetResourceKey, 0, 0),
    optionally_typed("getReferenceKey", Function::GetReferenceKey),
];

pub(crate) fn signature(name: &str) -> Option<&'static Signature> {
    SIGNATURES.iter().find(|s| s.name == name)
}
