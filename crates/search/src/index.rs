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
