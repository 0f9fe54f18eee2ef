//! The one reader of FHIR JSON that comes from outside (request bodies, imported files and lines,
//! documents inside Bundles): `serde_json`'s parser, with a visitor of our own that builds the
//! same `serde_json::Value` (key order and the written text of numbers kept) but refuses what
//! FHIR JSON forbids and `serde_json` lets through.
//!
//! - A property named twice in one object is refused, naming the key and where it is. JSON
//!   readers disagree on which of the two wins (`serde_json` keeps the last, others the first),
//!   so accepting one lets a resource mean one thing to us and another to the next system.
//! - A leading UTF-8 byte-order mark is skipped: the FHIR specification allows one, and common
//!   clients on some platforms write one.
//!
//! Nesting stays bounded by `serde_json`'s recursion limit (128), so hostile input cannot
//! overflow the stack. The cost over `Value::deserialize` is one hash lookup per key that it does
//! anyway (the insert) and nothing else on the happy path: the location of a fault is gathered
//! only as the error unwinds.

use std::fmt;
use std::str::FromStr;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use crate::{Issue, IssueCode};

/// The key under which `serde_json` (with `arbitrary_precision`) hands a number to a visitor:
/// as a one-entry map from this key to the number's text. A test checks that numbers still
/// come through as numbers, so a change of this private detail cannot pass unnoticed.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// Why a document is not acceptable FHIR JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub problem: JsonProblem,
    /// Where the reader stopped, 1-based (0 when the input ended before the first line did).
    pub line: usize,
    pub column: usize,
    /// The place in the document as a FHIRPath-like expression (`Patient.name[0]`), when the
    /// fault is inside an object or array; the root object is named by its `resourceType`.
    pub path: Option<String>,
}

/// What is wrong with a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonProblem {
    /// An object names this property twice.
    DuplicateKey(String),
    /// Not JSON, or not UTF-8: the parser's own description.
    Syntax(String),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            JsonProblem::DuplicateKey(key) => write!(
                f,
                "the property '{key}' appears twice in one object (line {}, column {}); FHIR JSON names each property once, because readers disagree about which of the two counts",
                self.line, self.column
            )?,
            JsonProblem::Syntax(message) if self.line > 0 => {
                write!(f, "{message} at line {} column {}", self.line, self.column)?
            }
            JsonProblem::Syntax(message) => f.write_str(message)?,
        }
        if let Some(path) = &self.path {
            write!(f, " (in {path})")?;
        }
        Ok(())
    }
}

impl std::error::Error for JsonError {}

impl JsonError {
    /// The error as an OperationOutcome issue: `structure`, pointing at the place when known.
    pub fn issue(&self) -> Issue {
        let issue = Issue::error(IssueCode::Structure, format!("not valid FHIR JSON: {self}"));
        match &self.path {
            Some(path) => issue.at(path.clone()),
            None => issue,
        }
    }
}

/// Parses FHIR JSON: one JSON value, optionally after a UTF-8 byte-order mark, with no property
/// named twice in any object.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let bytes = bytes.strip_prefix(BYTE_ORDER_MARK).unwrap_or(bytes);
    let mut context = Context::default();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let result = ValueSeed {
        context: &mut context,
        root: true,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    result.map_err(|error| context.into_error(&error))
}

/// What the visitors leave behind when they fail: the key that was repeated, and the path from
/// the failing value up to the root, innermost first (pushed as the error unwinds).
#[derive(Default)]
struct Context {
    duplicate: Option<String>,
    path: Vec<Segment>,
    root_type: Option<String>,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl Context {
    fn into_error(self, error: &serde_json::Error) -> JsonError {
        let problem = match self.duplicate {
            Some(key) => JsonProblem::DuplicateKey(key),
            None => JsonProblem::Syntax(without_position(error)),
        };
        let mut path = String::new();
        if let Some(root) = &self.root_type {
            path.push_str(root);
        }
        for segment in self.path.iter().rev() {
            match segment {
                Segment::Key(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Segment::Index(index) => {
                    use fmt::Write;
                    let _ = write!(path, "[{index}]");
                }
            }
        }
        JsonError {
            problem,
            line: error.line(),
            column: error.column(),
            path: (!path.is_empty()).then_some(path),
        }
    }
}

/// `serde_json`'s message without the " at line L column C" it appends (we say it our way).
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => text,
    }
}

struct ValueSeed<'c> {
    context: &'c mut Context,
    root: bool,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    // With `arbitrary_precision` numbers arrive as maps (see `visit_map`); these are for
    // completeness.
    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(access.size_hint().unwrap_or(0).min(4096));
        loop {
            let seed = ValueSeed {
                context: &mut *self.context,
                root: false,
            };
            match access.next_element_seed(seed) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(Value::Array(items)),
                Err(error) => {
                    self.context.path.push(Segment::Index(items.len()));
                    return Err(error);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        let mut first = true;
        while let Some(key) = access.next_key_seed(KeySeed)? {
            if first && key == NUMBER_TOKEN {
                let text: String = access.next_value()?;
                return Number::from_str(&text)
                    .map(Value::Number)
                    .map_err(serde::de::Error::custom);
            }
            first = false;
            match map.entry(key) {
                Entry::Vacant(slot) => {
                    let seed = ValueSeed {
                        context: &mut *self.context,
                        root: false,
                    };
                    match access.next_value_seed(seed) {
                        Ok(value) => {
                            slot.insert(value);
                        }
                        Err(error) => {
                            self.context.path.push(Segment::Key(slot.key().clone()));
                            if self.root {
                                self.context.root_type = resource_type(&map);
                            }
                            return Err(error);
                        }
                    }
                }
                Entry::Occupied(slot) => {
                    let key = slot.key().clone();
                    self.context.path.push(Segment::Key(key.clone()));
                    if self.root {
                        self.context.root_type = resource_type(&map);
                    }
                    self.context.duplicate = Some(key.clone());
                    return Err(serde::de::Error::custom(format!(
                        "duplicate property '{key}'"
                    )));
                }
            }
        }
        Ok(Value::Object(map))
    }
}

fn resource_type(map: &Map<String, Value>) -> Option<String> {
    map.get("resourceType")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// An object's key, as an owned string (the map keeps it).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a property name")
    }

    fn visit_str<E>(self, value: &str) -> Result<String, E> {
        Ok(value.to_owned())
    }

    fn visit_string<E>(self, value: String) -> Result<String, E> {
        Ok(value)
    }
}
