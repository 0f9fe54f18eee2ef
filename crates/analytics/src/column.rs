//! A view's output columns and the stable types they map to: the FHIR type a column holds
//! (declared, or inferred from its path) becomes one of a few output types that a columnar
//! writer can map to its own (Arrow, Parquet) without knowing FHIR.

use fhir_model::TypeKind;
use serde_json::Value;

/// One output column of a view, in the order the view's rows hold their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub(crate) name: String,
    pub(crate) fhir_type: Option<String>,
    pub(crate) column_type: ColumnType,
    pub(crate) type_known: bool,
    pub(crate) collection: bool,
    pub(crate) description: Option<String>,
}

impl Column {
    /// The column's name, unique in its view (`^[A-Za-z][A-Za-z0-9_]*$`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The FHIR type the ViewDefinition declares (`type`), without the
    /// `http://hl7.org/fhir/StructureDefinition/` prefix: `string`, `dateTime`, `HumanName`,
    /// `Observation.referenceRange`.
    pub fn fhir_type(&self) -> Option<&str> {
        self.fhir_type.as_deref()
    }

    /// The output type of each value: the declared type's, else the one inferred from the
    /// path, else [`ColumnType::String`] (the specification's suggestion for columns whose type
    /// nobody knows; see [`Column::is_type_known`]).
    pub fn column_type(&self) -> ColumnType {
        self.column_type
    }

    /// Whether the type was declared or inferred, so that every value is checked against it;
    /// `false` when [`Column::column_type`] is only the default and values come as they are.
    pub fn is_type_known(&self) -> bool {
        self.type_known
    }

    /// Whether each value is a list (`collection: true`): a JSON array, empty when the path
    /// finds nothing.
    pub fn is_collection(&self) -> bool {
        self.collection
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

/// What a column's values are, independent of FHIR: the types a columnar writer maps to its
/// own. Values stay JSON for now; each type says which JSON a value of it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// A JSON boolean.
    Boolean,
    /// A JSON number without a fraction, within 32 bits (`integer`, `positiveInt`,
    /// `unsignedInt`, FHIRPath Integer).
    Integer,
    /// A JSON number without a fraction, within 64 bits (`integer64`).
    Integer64,
    /// A JSON number, with the precision it was written with (`decimal`; FHIRPath Decimal).
    Decimal,
    /// A JSON string (`string`, `code`, `id`, `uri`, `url`, `canonical`, `oid`, `uuid`,
    /// `markdown`).
    String,
    /// A JSON string of base64 (`base64Binary`).
    Binary,
    /// A JSON string, a date to year, month or day (`date`).
    Date,
    /// A JSON string, a date and time to any precision, with its zone when it has a time
    /// (`dateTime`).
    DateTime,
    /// A JSON string, a date and time to the second at least, with its zone (`instant`).
    Instant,
    /// A JSON string, a time of day (`time`).
    Time,
    /// A complex type or backbone element (`HumanName`, `Observation.referenceRange`), a
    /// quantity: a JSON object.
    Json,
}

impl ColumnType {
    /// The output type of a FHIR type or a FHIRPath System type (`System.Boolean`); `None`
    /// for a type the R4 model does not know.
    pub fn of_type_name(name: &str) -> Option<ColumnType> {
        Some(match name {
            "boolean" | "System.Boolean" => ColumnType::Boolean,
            "integer" | "positiveInt" | "unsignedInt" | "System.Integer" => ColumnType::Integer,
            "integer64" => ColumnType::Integer64,
            "decimal" | "System.Decimal" => ColumnType::Decimal,
            "string" | "code" | "id" | "uri" | "url" | "canonical" | "oid" | "uuid"
            | "markdown" | "xhtml" | "System.String" => ColumnType::String,
            "base64Binary" => ColumnType::Binary,
            "date" | "System.Date" => ColumnType::Date,
            "dateTime" | "System.DateTime" => ColumnType::DateTime,
            "instant" => ColumnType::Instant,
            "time" | "System.Time" => ColumnType::Time,
            "System.Quantity" => ColumnType::Json,
            other => match fhir_model::r4().type_def(other)?.kind {
                TypeKind::Primitive => return None,
                _ => ColumnType::Json,
            },
        })
    }

    /// The name used in messages and schemas: the FHIR type's, or `json`.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Boolean => "boolean",
            ColumnType::Integer => "integer",
            ColumnType::Integer64 => "integer64",
            ColumnType::Decimal => "decimal",
            ColumnType::String => "string",
            ColumnType::Binary => "base64Binary",
            ColumnType::Date => "date",
            ColumnType::DateTime => "dateTime",
            ColumnType::Instant => "instant",
            ColumnType::Time => "time",
            ColumnType::Json => "json",
        }
    }

    /// Whether a JSON value is one of this type's: its JSON kind, and for the integers, no
    /// fraction.
    pub(crate) fn admits(self, value: &Value) -> bool {
        match self {
            ColumnType::Boolean => value.is_boolean(),
            ColumnType::Integer => value.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            ColumnType::Integer64 => value.as_i64().is_some(),
            ColumnType::Decimal => value.is_number(),
            ColumnType::String
            | ColumnType::Binary
            | ColumnType::Date
            | ColumnType::DateTime
            | ColumnType::Instant
            | ColumnType::Time => value.is_string(),
            ColumnType::Json => value.is_object(),
        }
    }
}

/// The prefix of the core StructureDefinitions, which a column's `type` may leave out.
const CORE_PREFIX: &str = "http://hl7.org/fhir/StructureDefinition/";

/// A column's declared `type` without the core prefix, and its output type; `None` when the
/// R4 model knows no such type.
pub(crate) fn declared_type(uri: &str) -> Option<(String, ColumnType)> {
    let name = uri.strip_prefix(CORE_PREFIX).unwrap_or(uri);
    Some((name.to_string(), ColumnType::of_type_name(name)?))
}

/// The output type the compiler's inferred types agree on; `None` when they are unknown,
/// empty, or disagree (the choice `value` of an Observation without `ofType`).
pub(crate) fn inferred_type(types: Option<&[&str]>) -> Option<ColumnType> {
    let mut found = None;
    for name in types? {
        let ty = ColumnType::of_type_name(name)?;
        match found {
            None => found = Some(ty),
            Some(seen) if seen == ty => {}
            Some(_) => return None,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fhir_and_system_types_map_to_one_output_type() {
        assert_eq!(
            ColumnType::of_type_name("positiveInt"),
            Some(ColumnType::Integer)
        );
        assert_eq!(
            ColumnType::of_type_name("System.DateTime"),
            Some(ColumnType::DateTime)
        );
        assert_eq!(
            ColumnType::of_type_name("HumanName"),
            Some(ColumnType::Json)
        );
        assert_eq!(
            ColumnType::of_type_name("Observation.referenceRange"),
            Some(ColumnType::Json)
        );
        assert_eq!(ColumnType::of_type_name("NoSuchType"), None);
        assert_eq!(
            declared_type("http://hl7.org/fhir/StructureDefinition/instant"),
            Some(("instant".to_string(), ColumnType::Instant))
        );
    }

    #[test]
    fn inferred_types_must_agree() {
        assert_eq!(
            inferred_type(Some(&["code", "string"])),
            Some(ColumnType::String)
        );
        assert_eq!(inferred_type(Some(&["Quantity", "string"])), None);
        assert_eq!(inferred_type(Some(&[])), None);
        assert_eq!(inferred_type(None), None);
    }

    #[test]
    fn values_are_admitted_by_their_json_kind() {
        use serde_json::json;
        assert!(ColumnType::Integer.admits(&json!(42)));
        assert!(!ColumnType::Integer.admits(&json!(1.5)));
        assert!(!ColumnType::Integer.admits(&json!(5_000_000_000_i64)));
        assert!(ColumnType::Integer64.admits(&json!(5_000_000_000_i64)));
        assert!(ColumnType::Decimal.admits(&json!(1.50)));
        assert!(ColumnType::Date.admits(&json!("2020-01")));
        assert!(!ColumnType::Boolean.admits(&json!("true")));
        assert!(ColumnType::Json.admits(&json!({"family": "F"})));
    }
}
