//! A view's constants (`constant[].value[x]`): read and checked once, then given to every
//! evaluation as `%name`, typed as the FHIR primitive they declare so that a `valueDate`
//! compares with a `birthDate` as a date and a `valueCode` with a `gender` as a code.

use fhir_model::primitives::{self, PrimitiveType};
use fhirpath::{Collection, Item};
use serde_json::{Map, Value};

use crate::error::ViewError;
use crate::view::{check_keys, is_sql_name};

/// The names FHIRPath and FHIR give a meaning of their own (`%resource`, `%ucum`...) or that
/// the view runner sets (`%rowIndex`): a constant by one of these names could never be read.
const RESERVED: [&str; 7] = [
    "context",
    "resource",
    "rootResource",
    "ucum",
    "sct",
    "loinc",
    "rowIndex",
];

/// One constant: its name and its value, typed.
#[derive(Debug, Clone)]
pub(crate) struct Constant {
    pub name: String,
    value: Value,
    /// The FHIR primitive type its `value[x]` names (`dateTime` for `valueDateTime`).
    fhir_type: &'static str,
}

impl Constant {
    /// `%name` as FHIRPath sees it.
    pub fn item(&self) -> Item<'_> {
        // integer64 is R5's: the R4 model does not have it, so it is a System Integer.
        match Item::of_fhir_type(&self.value, self.fhir_type) {
            Some(item) => item,
            None => Item::integer(integer64(&self.value).unwrap_or_default()),
        }
    }
}

/// Reads `constant` (absent or an array), refusing a nameless, untyped, badly typed or
/// repeated constant.
pub(crate) fn parse_constants(json: Option<&Value>) -> Result<Vec<Constant>, ViewError> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let Value::Array(entries) = json else {
        return Err(ViewError::invalid(
            "ViewDefinition.constant",
            "must be an array",
        ));
    };
    let mut constants: Vec<Constant> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("ViewDefinition.constant[{i}]");
        let Value::Object(fields) = entry else {
            return Err(ViewError::invalid(at, "must be an object"));
        };
        let constant = parse_constant(fields, &at)?;
        if constants.iter().any(|c| c.name == constant.name) {
            return Err(ViewError::invalid(
                format!("{at}.name"),
                format!("the constant {} is defined twice", constant.name),
            ));
        }
        constants.push(constant);
    }
    Ok(constants)
}

fn parse_constant(fields: &Map<String, Value>, at: &str) -> Result<Constant, ViewError> {
    check_keys(fields, at, &["id", "extension", "name"], Some("value"))?;
    let name = match fields.get("name") {
        Some(Value::String(name)) if is_sql_name(name) => name,
        Some(Value::String(name)) => {
            return Err(ViewError::invalid(
                format!("{at}.name"),
                format!("{name:?} is not a name: letters, digits and _, starting with a letter"),
            ));
        }
        Some(_) => return Err(ViewError::invalid(format!("{at}.name"), "must be a string")),
        None => return Err(ViewError::invalid(at, "a constant needs a name")),
    };
    if RESERVED.contains(&name.as_str()) {
        return Err(ViewError::invalid(
            format!("{at}.name"),
            format!("%{name} already has a meaning in FHIRPath or SQL on FHIR"),
        ));
    }
    let mut values = fields.iter().filter(|(key, _)| key.starts_with("value"));
    let (key, value) = match (values.next(), values.next()) {
        (Some(found), None) => found,
        (None, _) => {
            return Err(ViewError::invalid(
                at,
                format!("the constant {name} has no value[x]"),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ViewError::invalid(
                at,
                format!("the constant {name} has more than one value[x]"),
            ));
        }
    };
    let value_at = format!("{at}.{key}");
    let fhir_type = value_type(key).ok_or_else(|| {
        ViewError::invalid(
            &value_at,
            format!("{key} is not one of the primitive types a constant may have"),
        )
    })?;
    let checked = match PrimitiveType::from_code(fhir_type) {
        Some(primitive) => primitives::check(primitive, value).map_err(|e| e.to_string()),
        None => integer64(value)
            .map(|_| ())
            .ok_or_else(|| "must be a 64-bit integer".to_string()),
    };
    if let Err(message) = checked {
        return Err(ViewError::invalid(value_at, message));
    }
    Ok(Constant {
        name: name.clone(),
        value: value.clone(),
        fhir_type,
    })
}

/// The FHIR type a `value[x]` key names, among those a constant may have.
fn value_type(key: &str) -> Option<&'static str> {
    Some(match key.strip_prefix("value")? {
        "Base64Binary" => "base64Binary",
        "Boolean" => "boolean",
        "Canonical" => "canonical",
        "Code" => "code",
        "Date" => "date",
        "DateTime" => "dateTime",
        "Decimal" => "decimal",
        "Id" => "id",
        "Instant" => "instant",
        "Integer" => "integer",
        "Integer64" => "integer64",
        "Oid" => "oid",
        "String" => "string",
        "PositiveInt" => "positiveInt",
        "Time" => "time",
        "UnsignedInt" => "unsignedInt",
        "Uri" => "uri",
        "Url" => "url",
        "Uuid" => "uuid",
        _ => return None,
    })
}

/// An integer64, written as R5 JSON writes it (a string) or as a number.
fn integer64(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

/// The constants as FHIRPath variables.
pub(crate) fn variables(constants: &[Constant]) -> Vec<(&str, Collection<'_>)> {
    constants
        .iter()
        .map(|c| (c.name.as_str(), Collection::one(c.item())))
        .collect()
}
