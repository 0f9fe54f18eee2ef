//! What one resource contributes to the search indexes: typed rows, one table per parameter
//! type, each row keyed by the parameter. Extracted at write time, inside the write's transaction.

use crate::keys::{ParamKey, PatientKey};

/// A token: a `code`, a `Coding`, an `Identifier`, a `ContactPoint`, a `boolean`...
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEntry {
    pub param: ParamKey,
    pub system: Option<Box<str>>,
    pub code: Box<str>,
}

impl TokenEntry {
    /// The three lookup hashes a store keeps for the row: by code, by system and code, by system.
    pub fn hashes(&self) -> (i64, i64, Option<i64>) {
        let system = self.system.as_deref();
        (
            self.param.code_hash(&self.code),
            self.param
                .system_code_hash(system.unwrap_or(""), &self.code),
            system.map(|s| self.param.system_hash(s)),
        )
    }
}

/// A string, kept twice: normalised (lower case, accents removed) for the default prefix
/// search, and exactly as written for `:exact`.
#[derive(Debug, Clone, PartialEq)]
pub struct StringEntry {
    pub param: ParamKey,
    pub normalized: Box<str>,
    pub exact: Box<str>,
}

/// A date, dateTime, instant, Period or Timing, as the range of instants it covers, in
/// microseconds since the Unix epoch (inclusive both ends). Open ends are `i64::MIN`/`MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateEntry {
    pub param: ParamKey,
    pub low: i64,
    pub high: i64,
}

/// A number, as the range its written precision implies (`1.5` is [1.45, 1.55)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberEntry {
    pub param: ParamKey,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// A quantity: the number as written with its unit, and the same in canonical UCUM units when
/// the unit is one we can convert.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantityEntry {
    pub param: ParamKey,
    pub system: Option<Box<str>>,
    pub code: Option<Box<str>>,
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub canonical: Option<(Box<str>, f64)>,
}

/// A quantity's canonical form as stored: the canonical code, value, and range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CanonicalColumns<'a> {
    pub code: &'a str,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl QuantityEntry {
    /// The canonical columns, when the unit has a canonical form. The canonical range scales
    /// with the value: it keeps the written range's relative width.
    pub fn canonical_columns(&self) -> Option<CanonicalColumns<'_>> {
        let (code, value) = self.canonical.as_ref()?;
        let scale = if self.value != 0.0 {
            value / self.value
        } else {
            1.0
        };
        Some(CanonicalColumns {
            code,
            value: *value,
            low: self.low * scale,
            high: self.high * scale,
        })
    }
}

/// A reference. A local one has a type and id (`Patient/123`); an absolute or canonical one has
/// a url (and a version for `url|1.0`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceEntry {
    pub param: ParamKey,
    pub target_type: Option<Box<str>>,
    pub target_id: Option<Box<str>>,
    pub url: Option<Box<str>>,
    pub version: Option<Box<str>>,
}

/// A uri, url, canonical or oid value.
#[derive(Debug, Clone, PartialEq)]
pub struct UriEntry {
    pub param: ParamKey,
    pub uri: Box<str>,
}

/// One tuple of a composite parameter (`code-value-quantity`): the first component is a
/// token; the second a token, or a number, date or quantity range.
#[derive(Debug, Clone, PartialEq)]
pub struct CompositeEntry {
    pub param: ParamKey,
    pub first: TokenEntry,
    pub second: CompositeSecond,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CompositeSecond {
    Token(TokenEntry),
    /// A number, date (microseconds) or quantity: its value and the range its precision implies.
    Range {
        value: f64,
        low: f64,
        high: f64,
        unit: Option<TokenEntry>,
    },
    String(Box<str>),
}

/// The columns the second part of a composite is stored in; those of the other kinds are empty.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CompositeSecondColumns<'a> {
    pub h_code: Option<i64>,
    pub h_system_code: Option<i64>,
    pub value: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub text: Option<&'a str>,
}

impl CompositeSecond {
    pub fn columns(&self) -> CompositeSecondColumns<'_> {
        match self {
            CompositeSecond::Token(token) => {
                let (code, system_code, _) = token.hashes();
                CompositeSecondColumns {
                    h_code: Some(code),
                    h_system_code: Some(system_code),
                    ..Default::default()
                }
            }
            CompositeSecond::Range {
                value,
                low,
                high,
                unit,
            } => {
                let hashes = unit.as_ref().map(TokenEntry::hashes);
                CompositeSecondColumns {
                    h_code: hashes.map(|h| h.0),
                    h_system_code: hashes.map(|h| h.1),
                    value: Some(*value),
                    low: Some(*low),
                    high: Some(*high),
                    text: None,
                }
            }
            CompositeSecond::String(text) => CompositeSecondColumns {
                text: Some(text),
                ..Default::default()
            },
        }
    }
}

/// Everything one resource contributes to the indexes, plus its patient-compartment key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexEntries {
    pub patient_key: PatientKey,
    pub tokens: Vec<TokenEntry>,
    pub strings: Vec<StringEntry>,
    pub dates: Vec<DateEntry>,
    pub numbers: Vec<NumberEntry>,
    pub quantities: Vec<QuantityEntry>,
    pub references: Vec<ReferenceEntry>,
    pub uris: Vec<UriEntry>,
    pub composites: Vec<CompositeEntry>,
}

impl IndexEntries {
    pub fn len(&self) -> usize {
        self.tokens.len()
            + self.strings.len()
            + self.dates.len()
            + self.numbers.len()
            + self.quantities.len()
            + self.references.len()
            + self.uris.len()
            + self.composites.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
