//! The values an expression produces: items that point into the input JSON (with their FHIR
//! type), and values computed by the expression (with their System type).

use std::fmt;
use std::sync::Arc;

use fhir_model::{TypeDef, TypeKind};
use serde_json::Value;

use crate::datetime::{Temporal, TemporalKind};
use crate::decimal::Decimal;
use crate::quantity::Quantity;

/// One item of a result collection.
#[derive(Clone)]
pub struct Item<'a>(pub(crate) Repr<'a>);

#[derive(Clone)]
pub(crate) enum Repr<'a> {
    /// An element of the input: a JSON value (or only its `_name` extension sibling), typed.
    Node(Node<'a>),
    Boolean(bool),
    Integer(i64),
    Decimal(Decimal),
    String(Str<'a>),
    Temporal(Temporal),
    Quantity(Arc<Quantity>),
    /// The result of `type()`: a namespace and a name.
    Type {
        fhir: bool,
        name: &'static str,
    },
}

/// A string, borrowed from the input or the expression when possible.
#[derive(Clone)]
pub(crate) enum Str<'a> {
    Borrowed(&'a str),
    Shared(Arc<str>),
}

impl Str<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Str::Borrowed(s) => s,
            Str::Shared(s) => s,
        }
    }
}

/// An element of the input. `value` is the JSON of the element (for a primitive, the scalar);
/// `extension` is the `_name` sibling object of a primitive (its `id` and `extension`). A
/// primitive with only an extension has no `value`; a placeholder made by `resolve()` has
/// neither.
#[derive(Clone, Copy)]
pub(crate) struct Node<'a> {
    pub value: Option<&'a Value>,
    pub extension: Option<&'a Value>,
    pub ty: Option<&'static TypeDef>,
}

/// The System types of computed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SystemType {
    Boolean,
    Integer,
    Decimal,
    String,
    Date,
    DateTime,
    Time,
    Quantity,
}

impl SystemType {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SystemType::Boolean => "Boolean",
            SystemType::Integer => "Integer",
            SystemType::Decimal => "Decimal",
            SystemType::String => "String",
            SystemType::Date => "Date",
            SystemType::DateTime => "DateTime",
            SystemType::Time => "Time",
            SystemType::Quantity => "Quantity",
        }
    }

    /// The name with its namespace, as [`Item::type_name`] spells computed values' types.
    pub(crate) fn qualified_name(self) -> &'static str {
        match self {
            SystemType::Boolean => "System.Boolean",
            SystemType::Integer => "System.Integer",
            SystemType::Decimal => "System.Decimal",
            SystemType::String => "System.String",
            SystemType::Date => "System.Date",
            SystemType::DateTime => "System.DateTime",
            SystemType::Time => "System.Time",
            SystemType::Quantity => "System.Quantity",
        }
    }

    pub(crate) fn by_name(name: &str) -> Option<SystemType> {
        Some(match name {
            "Boolean" => SystemType::Boolean,
            "Integer" => SystemType::Integer,
            "Decimal" => SystemType::Decimal,
            "String" => SystemType::String,
            "Date" => SystemType::Date,
            "DateTime" => SystemType::DateTime,
            "Time" => SystemType::Time,
            "Quantity" => SystemType::Quantity,
            _ => return None,
        })
    }

    /// The System type a FHIR primitive maps to (`code` -> String, `instant` -> DateTime).
    pub(crate) fn of_fhir_primitive(name: &str) -> Option<SystemType> {
        Some(match name {
            "boolean" => SystemType::Boolean,
            "integer" | "positiveInt" | "unsignedInt" | "integer64" => SystemType::Integer,
            "decimal" => SystemType::Decimal,
            "date" => SystemType::Date,
            "dateTime" | "instant" => SystemType::DateTime,
            "time" => SystemType::Time,
            "string" | "code" | "id" | "uri" | "url" | "canonical" | "oid" | "uuid"
            | "markdown" | "base64Binary" | "xhtml" => SystemType::String,
            _ => return None,
        })
    }
}

/// Whether a FHIR complex type is a Quantity (Age, Duration... specialise it).
pub(crate) fn is_quantity_type(ty: &TypeDef) -> bool {
    matches!(
        &*ty.name,
        "Quantity" | "Age" | "Count" | "Distance" | "Duration" | "SimpleQuantity" | "MoneyQuantity"
    )
}

const UCUM: &str = "http://unitsofmeasure.org";

impl<'a> Node<'a> {
    /// The system value of a primitive node, or of a Quantity node; `None` for other nodes
    /// and for primitives with only an extension.
    pub(crate) fn system_value(&self) -> Option<Repr<'a>> {
        let value = self.value?;
        if let Some(ty) = self.ty
            && ty.kind != TypeKind::Primitive
        {
            return if is_quantity_type(ty) {
                quantity_of_json(value).map(|q| Repr::Quantity(Arc::new(q)))
            } else {
                None
            };
        }
        let ty_name = self.ty.map(|t| &*t.name);
        let system = match ty_name {
            Some(name) => match SystemType::of_fhir_primitive(name) {
                Some(s) => s,
                None => {
                    if self.ty.is_some_and(is_quantity_type) {
                        return quantity_of_json(value).map(|q| Repr::Quantity(Arc::new(q)));
                    }
                    return None;
                }
            },
            None => match value {
                Value::Bool(_) => SystemType::Boolean,
                Value::Number(n)
                    if n.as_i64().is_some() && !n.as_str().contains(['.', 'e', 'E']) =>
                {
                    SystemType::Integer
                }
                Value::Number(_) => SystemType::Decimal,
                Value::String(_) => SystemType::String,
                _ => return None,
            },
        };
        Some(match (system, value) {
            (SystemType::Boolean, Value::Bool(b)) => Repr::Boolean(*b),
            (SystemType::Integer, Value::Number(n)) => Repr::Integer(n.as_i64()?),
            (SystemType::Decimal, Value::Number(n)) => Repr::Decimal(Decimal::parse(n.as_str())?),
            (SystemType::String, Value::String(s)) => Repr::String(Str::Borrowed(s)),
            (SystemType::Date, Value::String(s)) => Repr::Temporal(Temporal::parse_date(s)?),
            (SystemType::DateTime, Value::String(s)) => {
                Repr::Temporal(Temporal::parse_date_time(s)?)
            }
            (SystemType::Time, Value::String(s)) => Repr::Temporal(Temporal::parse_time(s)?),
            _ => return None,
        })
    }
}

/// A FHIR Quantity's JSON as a System quantity: its UCUM code when the system is UCUM, else
/// its unit text.
pub(crate) fn quantity_of_json(value: &Value) -> Option<Quantity> {
    let number = value.get("value")?;
    let Value::Number(number) = number else {
        return None;
    };
    let value_decimal = Decimal::parse(number.as_str())?;
    let code = value.get("code").and_then(Value::as_str);
    let system = value.get("system").and_then(Value::as_str);
    let unit = match (system, code) {
        (Some(UCUM), Some(code)) => code,
        _ => value
            .get("unit")
            .and_then(Value::as_str)
            .or(code)
            .unwrap_or("1"),
    };
    Some(Quantity::new(value_decimal, unit))
}

impl<'a> Item<'a> {
    /// A resource (or any JSON object with a `resourceType`) as an item of its type.
    pub fn resource(value: &'a Value) -> Item<'a> {
        crate::navigate::resource_item(value)
    }

    /// JSON as an element of the named FHIR type (`dateTime`, `code`, `HumanName`...), as if
    /// it had been found in a resource: for typed variables, such as constants that must
    /// compare as dates rather than strings. `None` when the R4 model has no such type.
    pub fn of_fhir_type(value: &'a Value, type_name: &str) -> Option<Item<'a>> {
        let ty = crate::navigate::model().type_def(type_name)?;
        Some(Item::node(Some(value), None, Some(ty)))
    }

    pub(crate) fn node(
        value: Option<&'a Value>,
        extension: Option<&'a Value>,
        ty: Option<&'static TypeDef>,
    ) -> Item<'a> {
        Item(Repr::Node(Node {
            value,
            extension,
            ty,
        }))
    }

    /// A System.Boolean (for building variables).
    pub fn boolean(b: bool) -> Item<'a> {
        Item(Repr::Boolean(b))
    }

    /// A System.Integer.
    pub fn integer(i: i64) -> Item<'a> {
        Item(Repr::Integer(i))
    }

    pub(crate) fn decimal(d: Decimal) -> Item<'a> {
        Item(Repr::Decimal(d))
    }

    /// A System.String (copied).
    pub fn string(s: &str) -> Item<'a> {
        Item(Repr::String(Str::Shared(Arc::from(s))))
    }

    pub(crate) fn borrowed_string(s: &'a str) -> Item<'a> {
        Item(Repr::String(Str::Borrowed(s)))
    }

    pub(crate) fn temporal(t: Temporal) -> Item<'a> {
        Item(Repr::Temporal(t))
    }

    pub(crate) fn quantity(q: Quantity) -> Item<'a> {
        Item(Repr::Quantity(Arc::new(q)))
    }

    /// The value as a System value: a primitive node becomes its Boolean, String, Date...; a
    /// Quantity node becomes a Quantity; computed values are returned as they are.
    pub(crate) fn system(&self) -> Option<Repr<'a>> {
        match &self.0 {
            Repr::Node(node) => node.system_value(),
            other => Some(other.clone()),
        }
    }

    pub(crate) fn as_node(&self) -> Option<&Node<'a>> {
        match &self.0 {
            Repr::Node(node) => Some(node),
            _ => None,
        }
    }

    /// The item's type name: the FHIR type of an input element (`string`, `code`,
    /// `dateTime`, `HumanName`, `Observation.component`...), or the System type of a computed
    /// value (`System.Integer`, `System.String`...). An element of JSON the model does not
    /// describe is named after its JSON kind, as a System type.
    pub fn type_name(&self) -> &'static str {
        match &self.0 {
            Repr::Node(node) => match node.ty {
                Some(ty) => &ty.name,
                None => match node.value {
                    Some(Value::Bool(_)) => "System.Boolean",
                    Some(Value::Number(n)) if !n.as_str().contains(['.', 'e', 'E']) => {
                        "System.Integer"
                    }
                    Some(Value::Number(_)) => "System.Decimal",
                    Some(Value::String(_)) => "System.String",
                    _ => "Element",
                },
            },
            Repr::Boolean(_) => "System.Boolean",
            Repr::Integer(_) => "System.Integer",
            Repr::Decimal(_) => "System.Decimal",
            Repr::String(_) => "System.String",
            Repr::Temporal(t) => match t.kind {
                TemporalKind::Date => "System.Date",
                TemporalKind::DateTime => "System.DateTime",
                TemporalKind::Time => "System.Time",
            },
            Repr::Quantity(_) => "System.Quantity",
            Repr::Type { .. } => "System.Object",
        }
    }

    /// Whether the type is a FHIR type (as opposed to a System type).
    pub fn is_fhir_type(&self) -> bool {
        matches!(&self.0, Repr::Node(Node { ty: Some(_), .. }))
    }

    /// The kind of FHIR type (primitive, complex, resource, backbone), for input elements.
    pub fn type_kind(&self) -> Option<TypeKind> {
        match &self.0 {
            Repr::Node(Node { ty: Some(ty), .. }) => Some(ty.kind),
            _ => None,
        }
    }

    /// The JSON of an input element: the scalar of a primitive, the object of a complex
    /// element or resource. `None` for computed values, for a primitive that has only an
    /// extension, and for the typed placeholder `resolve()` returns for a relative reference.
    pub fn json(&self) -> Option<&'a Value> {
        match &self.0 {
            Repr::Node(node) => node.value,
            _ => None,
        }
    }

    /// The `_name` sibling of a primitive element (its `id` and `extension`), if present.
    pub fn primitive_extension(&self) -> Option<&'a Value> {
        match &self.0 {
            Repr::Node(node) => node.extension,
            _ => None,
        }
    }

    /// A string value: a System.String, or a FHIR string-like primitive (`string`, `code`,
    /// `uri`, `id`...).
    pub fn as_str(&self) -> Option<&str> {
        match &self.0 {
            Repr::String(s) => Some(s.as_str()),
            Repr::Node(Node {
                value: Some(Value::String(s)),
                ty,
                ..
            }) if ty.is_none_or(|t| {
                SystemType::of_fhir_primitive(&t.name) == Some(SystemType::String)
            }) =>
            {
                Some(s)
            }
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.system()? {
            Repr::Boolean(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_integer(&self) -> Option<i64> {
        match self.system()? {
            Repr::Integer(i) => Some(i),
            _ => None,
        }
    }

    /// A decimal (or integer) as text with its written precision: `1.50` stays `1.50`.
    pub fn decimal_text(&self) -> Option<String> {
        match self.system()? {
            Repr::Decimal(d) => Some(d.to_string()),
            Repr::Integer(i) => Some(i.to_string()),
            _ => None,
        }
    }

    /// A date, date-time or time with its precision; FHIR `date`, `dateTime`, `instant` and
    /// `time` elements included.
    pub fn as_temporal(&self) -> Option<Temporal> {
        match self.system()? {
            Repr::Temporal(t) => Some(t),
            _ => None,
        }
    }

    /// A quantity: a System.Quantity, or a FHIR Quantity (or Age, Duration...) element with a
    /// value, its unit being the UCUM code when the system is UCUM, else the unit text.
    pub fn as_quantity(&self) -> Option<Quantity> {
        match self.system()? {
            Repr::Quantity(q) => Some((*q).clone()),
            _ => None,
        }
    }

    /// The item as JSON: an input element's own JSON; for computed values, booleans and
    /// numbers as JSON scalars, strings and dates as strings (with their written precision),
    /// quantities as `{"value": 4.5, "unit": "mg"}`.
    pub fn to_json(&self) -> Value {
        match &self.0 {
            Repr::Node(node) => match (node.value, node.extension) {
                (Some(v), _) => v.clone(),
                (None, Some(ext)) => ext.clone(),
                (None, None) => Value::Null,
            },
            Repr::Boolean(b) => Value::Bool(*b),
            Repr::Integer(i) => Value::from(*i),
            Repr::Decimal(d) => number_value(&d.to_string()),
            Repr::String(s) => Value::String(s.as_str().to_string()),
            Repr::Temporal(t) => Value::String(t.to_string()),
            Repr::Quantity(q) => {
                let mut map = serde_json::Map::new();
                map.insert("value".into(), number_value(&q.value.to_string()));
                map.insert("unit".into(), Value::String(q.unit.to_string()));
                Value::Object(map)
            }
            Repr::Type { fhir, name } => {
                let mut map = serde_json::Map::new();
                map.insert(
                    "namespace".into(),
                    Value::String(if *fhir { "FHIR" } else { "System" }.into()),
                );
                map.insert("name".into(), Value::String((*name).into()));
                Value::Object(map)
            }
        }
    }

    /// `{"type": ..., "value": ...}`, as `meridian fhirpath --typed` prints items.
    pub fn to_typed_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("type".into(), Value::String(self.type_name().into()));
        map.insert("value".into(), self.to_json());
        Value::Object(map)
    }
}

/// A JSON number with exactly this text (the workspace keeps numbers' written precision).
fn number_value(text: &str) -> Value {
    serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

impl fmt::Debug for Item<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.type_name(), self.to_json())
    }
}

/// A result collection: ordered items, which may repeat. Holds zero or one item without
/// allocating, since most path steps yield at most one.
#[derive(Clone, Default)]
pub struct Collection<'a>(Inner<'a>);

#[derive(Clone, Default)]
enum Inner<'a> {
    #[default]
    Empty,
    One(Item<'a>),
    Many(Vec<Item<'a>>),
}

impl<'a> Collection<'a> {
    pub fn new() -> Collection<'a> {
        Collection(Inner::Empty)
    }

    /// A collection holding one resource (typed by its `resourceType`), to evaluate several
    /// expressions on with [`crate::Expression::evaluate_on`] without typing it each time.
    pub fn of_resource(resource: &'a Value) -> Collection<'a> {
        Collection::one(crate::navigate::resource_item(resource))
    }

    /// A collection of one item.
    pub fn one(item: Item<'a>) -> Collection<'a> {
        Collection(Inner::One(item))
    }

    pub(crate) fn with_capacity(n: usize) -> Collection<'a> {
        if n > 1 {
            Collection(Inner::Many(Vec::with_capacity(n)))
        } else {
            Collection(Inner::Empty)
        }
    }

    pub(crate) fn boolean(b: bool) -> Collection<'a> {
        Collection::one(Item::boolean(b))
    }

    pub(crate) fn push(&mut self, item: Item<'a>) {
        match &mut self.0 {
            Inner::Empty => self.0 = Inner::One(item),
            Inner::One(_) => {
                let Inner::One(first) = std::mem::take(&mut self.0) else {
                    unreachable!()
                };
                self.0 = Inner::Many(vec![first, item]);
            }
            Inner::Many(items) => items.push(item),
        }
    }

    pub(crate) fn extend_from(&mut self, other: Collection<'a>) {
        if self.is_empty() {
            *self = other;
            return;
        }
        for item in other {
            self.push(item);
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    pub fn as_slice(&self) -> &[Item<'a>] {
        match &self.0 {
            Inner::Empty => &[],
            Inner::One(item) => std::slice::from_ref(item),
            Inner::Many(items) => items,
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Item<'a>> {
        self.as_slice().iter()
    }

    pub fn first(&self) -> Option<&Item<'a>> {
        self.as_slice().first()
    }

    /// The items as a JSON array, as `meridian fhirpath` prints them.
    pub fn to_json(&self) -> Value {
        Value::Array(self.iter().map(Item::to_json).collect())
    }

    /// The items as a JSON array of `{"type": ..., "value": ...}`.
    pub fn to_typed_json(&self) -> Value {
        Value::Array(self.iter().map(Item::to_typed_json).collect())
    }
}

impl<'a> FromIterator<Item<'a>> for Collection<'a> {
    fn from_iter<I: IntoIterator<Item = Item<'a>>>(iter: I) -> Collection<'a> {
        let mut out = Collection::new();
        for item in iter {
            out.push(item);
        }
        out
    }
}

impl<'a> IntoIterator for Collection<'a> {
    type Item = Item<'a>;
    type IntoIter = IntoIter<'a>;

    fn into_iter(self) -> IntoIter<'a> {
        match self.0 {
            Inner::Empty => IntoIter::Small(None),
            Inner::One(item) => IntoIter::Small(Some(item)),
            Inner::Many(items) => IntoIter::Many(items.into_iter()),
        }
    }
}

/// The owning iterator over a [`Collection`].
pub enum IntoIter<'a> {
    Small(Option<Item<'a>>),
    Many(std::vec::IntoIter<Item<'a>>),
}

impl<'a> Iterator for IntoIter<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        match self {
            IntoIter::Small(item) => item.take(),
            IntoIter::Many(items) => items.next(),
        }
    }
}

impl<'c, 'a> IntoIterator for &'c Collection<'a> {
    type Item = &'c Item<'a>;
    type IntoIter = std::slice::Iter<'c, Item<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for Collection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
