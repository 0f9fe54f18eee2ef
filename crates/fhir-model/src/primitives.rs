//! The lexical rules of the FHIR R4 primitive types, as the specification's regular expressions
//! state them (datatypes.html), checked by hand-written scanners: no regex engine, no allocation.
//!
//! Two levels: `is_valid_*` functions judge the text of a value, and [`check`] judges a JSON value
//! for a primitive type (the right JSON kind first — a number for `decimal`, a boolean for
//! `boolean` — then the text). Dates, dateTimes and instants also parse into [`PartialDateTime`],
//! whose [`PartialDateTime::range`] is the span of time the value stands for (search indexes
//! dates as ranges).

mod datetime;
mod xhtml;

use serde_json::Value;

pub use datetime::{
    DatePrecision, DateRange, PartialDateTime, TimeOfDay, parse_date, parse_date_time,
    parse_instant, parse_time,
};
pub use xhtml::{XhtmlError, check_xhtml, is_valid_xhtml};

/// The longest string FHIR allows: "1MB (1024*1024 characters)".
pub const MAX_STRING_CHARS: usize = 1024 * 1024;

/// The twenty R4 primitive types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrimitiveType {
    Base64Binary,
    Boolean,
    Canonical,
    Code,
    Date,
    DateTime,
    Decimal,
    Id,
    Instant,
    Integer,
    Markdown,
    Oid,
    PositiveInt,
    String,
    Time,
    UnsignedInt,
    Uri,
    Url,
    Uuid,
    Xhtml,
}

impl PrimitiveType {
    /// The primitive type named `code` (`dateTime`, `positiveInt`...), or None for anything else.
    pub fn from_code(code: &str) -> Option<PrimitiveType> {
        Some(match code {
            "base64Binary" => PrimitiveType::Base64Binary,
            "boolean" => PrimitiveType::Boolean,
            "canonical" => PrimitiveType::Canonical,
            "code" => PrimitiveType::Code,
            "date" => PrimitiveType::Date,
            "dateTime" => PrimitiveType::DateTime,
            "decimal" => PrimitiveType::Decimal,
            "id" => PrimitiveType::Id,
            "instant" => PrimitiveType::Instant,
            "integer" => PrimitiveType::Integer,
            "markdown" => PrimitiveType::Markdown,
            "oid" => PrimitiveType::Oid,
            "positiveInt" => PrimitiveType::PositiveInt,
            "string" => PrimitiveType::String,
            "time" => PrimitiveType::Time,
            "unsignedInt" => PrimitiveType::UnsignedInt,
            "uri" => PrimitiveType::Uri,
            "url" => PrimitiveType::Url,
            "uuid" => PrimitiveType::Uuid,
            "xhtml" => PrimitiveType::Xhtml,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PrimitiveType::Base64Binary => "base64Binary",
            PrimitiveType::Boolean => "boolean",
            PrimitiveType::Canonical => "canonical",
            PrimitiveType::Code => "code",
            PrimitiveType::Date => "date",
            PrimitiveType::DateTime => "dateTime",
            PrimitiveType::Decimal => "decimal",
            PrimitiveType::Id => "id",
            PrimitiveType::Instant => "instant",
            PrimitiveType::Integer => "integer",
            PrimitiveType::Markdown => "markdown",
            PrimitiveType::Oid => "oid",
            PrimitiveType::PositiveInt => "positiveInt",
            PrimitiveType::String => "string",
            PrimitiveType::Time => "time",
            PrimitiveType::UnsignedInt => "unsignedInt",
            PrimitiveType::Uri => "uri",
            PrimitiveType::Url => "url",
            PrimitiveType::Uuid => "uuid",
            PrimitiveType::Xhtml => "xhtml",
        }
    }

    /// The JSON kind the value takes: JSON numbers for the four numeric types, a JSON boolean for
    /// `boolean`, a JSON string for everything else (json.html, "Primitive types").
    pub fn json_kind(self) -> JsonKind {
        match self {
            PrimitiveType::Boolean => JsonKind::Boolean,
            PrimitiveType::Decimal
            | PrimitiveType::Integer
            | PrimitiveType::PositiveInt
            | PrimitiveType::UnsignedInt => JsonKind::Number,
            _ => JsonKind::String,
        }
    }
}

/// The JSON kind a primitive is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    String,
    Number,
    Boolean,
}

impl JsonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JsonKind::String => "a JSON string",
            JsonKind::Number => "a JSON number",
            JsonKind::Boolean => "a JSON boolean (true or false)",
        }
    }
}

/// Why a JSON value is not a valid primitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimitiveError {
    /// The JSON kind is wrong: a string where a number belongs, an object where a string does.
    JsonKind { expected: JsonKind },
    /// The JSON kind is right but the text breaks the type's rule; the text says which.
    Format(&'static str),
}

impl std::fmt::Display for PrimitiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrimitiveError::JsonKind { expected } => write!(f, "must be {}", expected.as_str()),
            PrimitiveError::Format(rule) => f.write_str(rule),
        }
    }
}

/// Checks a JSON value (never null: a missing value is the caller's business) against the rules
/// of primitive type `ty`.
pub fn check(ty: PrimitiveType, value: &Value) -> Result<(), PrimitiveError> {
    let kind = ty.json_kind();
    match (kind, value) {
        (JsonKind::Boolean, Value::Bool(_)) => Ok(()),
        (JsonKind::Number, Value::Number(n)) => check_number(ty, n.as_str()),
        (JsonKind::String, Value::String(s)) => check_text(ty, s),
        _ => Err(PrimitiveError::JsonKind { expected: kind }),
    }
}

/// Checks the text of a string-valued primitive (every type but boolean and the numbers, whose
/// text is checked by [`check_number`]).
pub fn check_text(ty: PrimitiveType, text: &str) -> Result<(), PrimitiveError> {
    use PrimitiveError::Format;
    match ty {
        PrimitiveType::String | PrimitiveType::Markdown => string_rules(text),
        PrimitiveType::Code => {
            string_rules(text)?;
            is_valid_code(text)
                .then_some(())
                .ok_or(Format("a code must not have leading, trailing or repeated whitespace"))
        }
        PrimitiveType::Id => is_valid_id(text)
            .then_some(())
            .ok_or(Format("an id is 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'")),
        PrimitiveType::Uri | PrimitiveType::Url | PrimitiveType::Canonical => is_valid_uri(text)
            .then_some(())
            .ok_or(Format("a URI must not be empty and must not contain whitespace")),
        PrimitiveType::Oid => is_valid_oid(text)
            .then_some(())
            .ok_or(Format("an oid is urn:oid: followed by dotted numbers starting with 0, 1 or 2")),
        PrimitiveType::Uuid => is_valid_uuid(text)
            .then_some(())
            .ok_or(Format("a uuid is urn:uuid: followed by a lower-case UUID")),
        PrimitiveType::Date => is_valid_date(text)
            .then_some(())
            .ok_or(Format("a date is YYYY, YYYY-MM or YYYY-MM-DD, and a real calendar date")),
        PrimitiveType::DateTime => is_valid_date_time(text).then_some(()).ok_or(Format(
            "a dateTime is YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss(.sss) with a time zone (Z or +hh:mm)",
        )),
        PrimitiveType::Instant => is_valid_instant(text)
            .then_some(())
            .ok_or(Format("an instant is YYYY-MM-DDThh:mm:ss(.sss) with a time zone (Z or +hh:mm)")),
        PrimitiveType::Time => is_valid_time(text)
            .then_some(())
            .ok_or(Format("a time is hh:mm:ss(.sss), without a time zone")),
        PrimitiveType::Base64Binary => is_valid_base64(text)
            .then_some(())
            .ok_or(Format("base64Binary must be base64 (A-Z a-z 0-9 + /, padded with = to a multiple of 4)")),
        PrimitiveType::Xhtml => is_valid_xhtml(text).then_some(()).ok_or(Format(
            "the narrative must be a well-formed XHTML <div> in the namespace http://www.w3.org/1999/xhtml, with some text, holding only basic HTML formatting, links and images (txt-1, txt-2)",
        )),
        PrimitiveType::Boolean => Err(PrimitiveError::JsonKind { expected: JsonKind::Boolean }),
        PrimitiveType::Decimal | PrimitiveType::Integer | PrimitiveType::PositiveInt | PrimitiveType::UnsignedInt => {
            Err(PrimitiveError::JsonKind { expected: JsonKind::Number })
        }
    }
}

/// Checks the text of a JSON number (as written: the workspace keeps numbers' text) for one of
/// the four numeric types.
pub fn check_number(ty: PrimitiveType, text: &str) -> Result<(), PrimitiveError> {
    use PrimitiveError::Format;
    match ty {
        PrimitiveType::Decimal => is_valid_decimal(text)
            .then_some(())
            .ok_or(Format("a decimal is a number such as 1, -0.5 or 1.50e3")),
        PrimitiveType::Integer => match parse_integer(text) {
            Some(_) => Ok(()),
            None => Err(Format(
                "an integer is a whole number from -2147483648 to 2147483647, without fraction or exponent",
            )),
        },
        PrimitiveType::UnsignedInt => match parse_integer(text) {
            Some(n) if n >= 0 => Ok(()),
            _ => Err(Format(
                "an unsignedInt is a whole number from 0 to 2147483647",
            )),
        },
        PrimitiveType::PositiveInt => match parse_integer(text) {
            Some(n) if n >= 1 => Ok(()),
            _ => Err(Format(
                "a positiveInt is a whole number from 1 to 2147483647",
            )),
        },
        _ => Err(PrimitiveError::JsonKind {
            expected: ty.json_kind(),
        }),
    }
}

/// The rules every string-based type shares: not empty, no control characters other than tab,
/// carriage return and line feed, at most [`MAX_STRING_CHARS`] characters.
fn string_rules(text: &str) -> Result<(), PrimitiveError> {
    if text.is_empty() {
        return Err(PrimitiveError::Format(
            "a string must not be empty (leave the element out instead)",
        ));
    }
    if !has_no_control_characters(text) {
        return Err(PrimitiveError::Format(
            "a string must not contain control characters other than tab, carriage return and line feed",
        ));
    }
    // Bytes bound characters from above, so the character count is needed only for long text.
    if text.len() > MAX_STRING_CHARS && text.chars().count() > MAX_STRING_CHARS {
        return Err(PrimitiveError::Format(
            "a string must not be longer than 1,048,576 characters",
        ));
    }
    Ok(())
}

fn has_no_control_characters(text: &str) -> bool {
    // UTF-8 continuation and lead bytes are all >= 0x80, so a byte scan sees only real characters.
    text.bytes()
        .all(|b| b >= 0x20 || b == b'\t' || b == b'\r' || b == b'\n')
}

/// `string` and `markdown`: `[ \r\n\t\S]+`, plus the rules on control characters and length.
pub fn is_valid_string(text: &str) -> bool {
    string_rules(text).is_ok()
}

/// The whitespace of the specification's regular expressions (`\s` in Java: space, tab, line
/// feed, vertical tab, form feed, carriage return).
fn is_regex_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `code`: `[^\s]+(\s[^\s]+)*` — no leading, trailing or doubled whitespace.
pub fn is_valid_code(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.is_empty() || is_regex_space(bytes[0]) || is_regex_space(bytes[bytes.len() - 1]) {
        return false;
    }
    !bytes
        .windows(2)
        .any(|w| is_regex_space(w[0]) && is_regex_space(w[1]))
}

/// `id`: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_valid_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `uri`, `url`, `canonical`: `\S*`, and not empty (FHIR has no empty strings).
pub fn is_valid_uri(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| !is_regex_space(b) && (b >= 0x20))
}

/// `oid`: `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`.
pub fn is_valid_oid(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("urn:oid:") else {
        return false;
    };
    let mut arcs = rest.split('.');
    if !matches!(arcs.next(), Some("0" | "1" | "2")) {
        return false;
    }
    let mut count = 0;
    for arc in arcs {
        count += 1;
        let digits = arc.as_bytes();
        if digits.is_empty()
            || !digits.iter().all(u8::is_ascii_digit)
            || (digits.len() > 1 && digits[0] == b'0')
        {
            return false;
        }
    }
    count > 0
}

/// `uuid`: `urn:uuid:` and a lower-case UUID (8-4-4-4-12 hexadecimal digits).
pub fn is_valid_uuid(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("urn:uuid:") else {
        return false;
    };
    let bytes = rest.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// `decimal`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub fn is_valid_decimal(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let int_len = i - int_start;
    if int_len == 0 || (int_len > 1 && bytes[int_start] == b'0') {
        return false;
    }
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == bytes.len()
}

/// `integer`: `-?([0]|([1-9][0-9]*))` within 32 bits; the value, or None.
pub fn parse_integer(text: &str) -> Option<i32> {
    let bytes = text.as_bytes();
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if digits.is_empty() || digits.len() > 11 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    text.parse::<i32>().ok()
}

/// `date`: `YYYY(-MM(-DD)?)?`, a real calendar date, year 0001 to 9999.
pub fn is_valid_date(text: &str) -> bool {
    parse_date(text).is_some()
}

/// `dateTime`: a date, or a full date with a time `Thh:mm:ss(.f+)?` and a time zone.
pub fn is_valid_date_time(text: &str) -> bool {
    parse_date_time(text).is_some()
}

/// `instant`: `YYYY-MM-DDThh:mm:ss(.f+)?` with a time zone.
pub fn is_valid_instant(text: &str) -> bool {
    parse_instant(text).is_some()
}

/// `time`: `hh:mm:ss(.f+)?`, no time zone.
pub fn is_valid_time(text: &str) -> bool {
    parse_time(text).is_some()
}

/// `base64Binary`: base64 in the standard alphabet with padding to a multiple of four; whitespace
/// between the characters is allowed, as the R4 expression `(\s*([0-9a-zA-Z\+/=]){4}\s*)+` allows.
pub fn is_valid_base64(text: &str) -> bool {
    let mut count = 0usize;
    let mut padding = 0usize;
    for b in text.bytes() {
        if is_regex_space(b) {
            continue;
        }
        if b == b'=' {
            padding += 1;
        } else if padding > 0 || !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/') {
            // Nothing but padding may follow padding.
            return false;
        }
        count += 1;
    }
    count > 0 && count.is_multiple_of(4) && padding <= 2
}
