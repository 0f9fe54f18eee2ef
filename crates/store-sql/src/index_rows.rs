//! How a resource's index entries ([`IndexEntries`]) become rows of the index tables: one
//! function per table, yielding the row's values in the order the table declares its columns
//! (`tables`), and [`for_each_index_row`], which walks them all without the rows a table's key
//! would refuse as repeats. Both backends write exactly these rows.

use std::collections::HashSet;

use search::IndexEntries;
use search::index::{
    CompositeEntry, DateEntry, NumberEntry, QuantityEntry, ReferenceEntry, StringEntry, TokenEntry,
    UriEntry,
};

use crate::tables::{self, ColumnType, Table};

/// One value of a row, borrowed from the entry it comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
}

impl<'a> Value<'a> {
    fn of_integer(value: Option<i64>) -> Value<'a> {
        value.map_or(Value::Null, Integer)
    }

    fn of_real(value: Option<f64>) -> Value<'a> {
        value.map_or(Value::Null, Real)
    }

    fn of_text(value: Option<&'a str>) -> Value<'a> {
        value.map_or(Value::Null, Text)
    }

    /// Whether the value may be stored in a column of `column_type`.
    pub fn fits(&self, column_type: ColumnType, nullable: bool) -> bool {
        match self {
            Value::Null => nullable,
            Integer(_) => {
                matches!(
                    column_type,
                    ColumnType::Integer | ColumnType::SmallInteger | ColumnType::Integer32
                )
            }
            Real(_) => column_type == ColumnType::Real,
            Text(_) => {
                matches!(column_type, ColumnType::Text | ColumnType::UncomparedText)
            }
        }
    }
}

/// A value as a key compares it: reals by value, so 0.0 and -0.0 are one key, as in SQLite's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum KeyPart<'a> {
    Null,
    Integer(i64),
    Real(u64),
    Text(&'a str),
}

impl<'a> From<Value<'a>> for KeyPart<'a> {
    fn from(value: Value<'a>) -> KeyPart<'a> {
        match value {
            Value::Null => KeyPart::Null,
            Integer(i) => KeyPart::Integer(i),
            Real(f) => KeyPart::Real((f + 0.0).to_bits()),
            Text(t) => KeyPart::Text(t),
        }
    }
}

use Value::{Integer, Real, Text};

fn token_row(rid: i64, patient_key: i64, token: &TokenEntry) -> [Value<'_>; 7] {
    let (code, system_code, system) = token.hashes();
    [
        Integer(rid),
        Integer(token.param.0),
        Integer(code),
        Integer(system_code),
        Value::of_integer(system),
        Text(&token.code),
        Integer(patient_key),
    ]
}

fn string_row(rid: i64, patient_key: i64, string: &StringEntry) -> [Value<'_>; 5] {
    [
        Integer(rid),
        Integer(string.param.0),
        Text(&string.normalized),
        Text(&string.exact),
        Integer(patient_key),
    ]
}

fn date_row(rid: i64, patient_key: i64, date: &DateEntry) -> [Value<'static>; 5] {
    [
        Integer(rid),
        Integer(date.param.0),
        Integer(date.low),
        Integer(date.high),
        Integer(patient_key),
    ]
}

fn number_row(rid: i64, patient_key: i64, number: &NumberEntry) -> [Value<'static>; 6] {
    [
        Integer(rid),
        Integer(number.param.0),
        Real(number.value),
        Real(number.low),
        Real(number.high),
        Integer(patient_key),
    ]
}

fn quantity_row(rid: i64, patient_key: i64, seq: i64, q: &QuantityEntry) -> [Value<'_>; 13] {
    let canonical = q.canonical_columns();
    [
        Integer(rid),
        Integer(q.param.0),
        Value::of_text(q.system.as_deref()),
        Value::of_text(q.code.as_deref()),
        Real(q.value),
        Real(q.low),
        Real(q.high),
        Value::of_text(canonical.map(|c| c.code)),
        Value::of_real(canonical.map(|c| c.value)),
        Value::of_real(canonical.map(|c| c.low)),
        Value::of_real(canonical.map(|c| c.high)),
        Integer(patient_key),
        Integer(seq),
    ]
}

fn reference_row(rid: i64, patient_key: i64, seq: i64, r: &ReferenceEntry) -> [Value<'_>; 8] {
    [
        Integer(rid),
        Integer(r.param.0),
        Value::of_text(r.target_type.as_deref()),
        Value::of_text(r.target_id.as_deref()),
        Value::of_text(r.url.as_deref()),
        Value::of_text(r.version.as_deref()),
        Integer(patient_key),
        Integer(seq),
    ]
}

fn uri_row(rid: i64, patient_key: i64, uri: &UriEntry) -> [Value<'_>; 4] {
    [
        Integer(rid),
        Integer(uri.param.0),
        Text(&uri.uri),
        Integer(patient_key),
    ]
}

fn composite_row(rid: i64, patient_key: i64, seq: i64, c: &CompositeEntry) -> [Value<'_>; 12] {
    let (first_code, first_system_code, _) = c.first.hashes();
    let second = c.second.columns();
    [
        Integer(rid),
        Integer(c.param.0),
        Integer(first_code),
        Integer(first_system_code),
        Value::of_integer(second.h_code),
        Value::of_integer(second.h_system_code),
        Value::of_real(second.value),
        Value::of_real(second.low),
        Value::of_real(second.high),
        Value::of_text(second.text),
        Integer(patient_key),
        Integer(seq),
    ]
}

/// Drops the rows of one table that repeat an earlier row of the same resource by the table's
/// key, as SQLite's primary key would (`ON CONFLICT DO NOTHING`), so both stores hold the same
/// rows.
struct Distinct<'e> {
    key: Option<Vec<usize>>,
    seen: HashSet<Vec<KeyPart<'e>>>,
}

impl<'e> Distinct<'e> {
    fn new(table: &Table) -> Distinct<'e> {
        Distinct {
            key: table.duplicate_key(),
            seen: HashSet::new(),
        }
    }

    fn is_new(&mut self, values: &[Value<'e>]) -> bool {
        match &self.key {
            None => true,
            Some(positions) => self
                .seen
                .insert(positions.iter().map(|p| values[*p].into()).collect()),
        }
    }
}

/// Calls `visit` with each index table and each of its rows for the resource with row key
/// `rid`, tables in [`tables::INDEX_TABLES`] order, rows in entry order, values in column order;
/// a row that repeats an earlier one of the resource by the table's key is left out. Stops at
/// the first error `visit` answers.
pub fn for_each_index_row<'e, E>(
    rid: i64,
    entries: &'e IndexEntries,
    mut visit: impl FnMut(&'static Table, &[Value<'e>]) -> Result<(), E>,
) -> Result<(), E> {
    let patient_key = entries.patient_key.0;
    fn each<'e, T: 'e, E, const N: usize>(
        table: &'static Table,
        items: &'e [T],
        row: impl Fn(i64, &'e T) -> [Value<'e>; N],
        visit: &mut impl FnMut(&'static Table, &[Value<'e>]) -> Result<(), E>,
    ) -> Result<(), E> {
        if items.is_empty() {
            return Ok(());
        }
        debug_assert_eq!(table.columns.len(), N, "{}", table.name);
        let mut distinct = Distinct::new(table);
        for (seq, item) in items.iter().enumerate() {
            let values = row(seq as i64, item);
            if distinct.is_new(&values) {
                visit(table, &values)?;
            }
        }
        Ok(())
    }
    let v = &mut visit;
    let key = patient_key;
    each(
        &tables::TOKEN,
        &entries.tokens,
        |_, e| token_row(rid, key, e),
        v,
    )?;
    each(
        &tables::STRING,
        &entries.strings,
        |_, e| string_row(rid, key, e),
        v,
    )?;
    each(
        &tables::DATE,
        &entries.dates,
        |_, e| date_row(rid, key, e),
        v,
    )?;
    each(
        &tables::NUMBER,
        &entries.numbers,
        |_, e| number_row(rid, key, e),
        v,
    )?;
    let quantities = &entries.quantities;
    each(
        &tables::QUANTITY,
        quantities,
        |seq, e| quantity_row(rid, key, seq, e),
        v,
    )?;
    let references = &entries.references;
    each(
        &tables::REFERENCE,
        references,
        |seq, e| reference_row(rid, key, seq, e),
        v,
    )?;
    each(&tables::URI, &entries.uris, |_, e| uri_row(rid, key, e), v)?;
    let composites = &entries.composites;
    each(
        &tables::COMPOSITE,
        composites,
        |seq, e| composite_row(rid, key, seq, e),
        v,
    )
}

#[cfg(test)]
mod tests {
    use search::index::{CompositeEntry, CompositeSecond};
    use search::keys::{ParamKey, PatientKey};

    use super::*;

    /// Entries with one of everything, and the optional parts both present and absent.
    fn entries() -> IndexEntries {
        let param = ParamKey::new("Observation", "code");
        let token = TokenEntry {
            param,
            system: Some("http://loinc.org".into()),
            code: "8480-6".into(),
        };
        IndexEntries {
            patient_key: PatientKey(7),
            tokens: vec![
                token.clone(),
                TokenEntry {
                    system: None,
                    ..token.clone()
                },
            ],
            strings: vec![StringEntry {
                param,
                normalized: "a".into(),
                exact: "A".into(),
            }],
            dates: vec![DateEntry {
                param,
                low: 1,
                high: 2,
            }],
            numbers: vec![NumberEntry {
                param,
                value: 1.0,
                low: 0.5,
                high: 1.5,
            }],
            quantities: vec![
                QuantityEntry {
                    param,
                    system: Some("http://unitsofmeasure.org".into()),
                    code: Some("mm[Hg]".into()),
                    value: 120.0,
                    low: 119.5,
                    high: 120.5,
                    canonical: Some(("Pa".into(), 15998.64)),
                },
                QuantityEntry {
                    param,
                    system: None,
                    code: None,
                    value: 1.0,
                    low: 1.0,
                    high: 1.0,
                    canonical: None,
                },
            ],
            references: vec![
                ReferenceEntry {
                    param,
                    target_type: Some("Patient".into()),
                    target_id: Some("p".into()),
                    url: None,
                    version: None,
                },
                ReferenceEntry {
                    param,
                    target_type: None,
                    target_id: None,
                    url: Some("http://x".into()),
                    version: Some("1".into()),
                },
            ],
            uris: vec![UriEntry {
                param,
                uri: "urn:x".into(),
            }],
            composites: vec![
                CompositeEntry {
                    param,
                    first: token.clone(),
                    second: CompositeSecond::Token(token.clone()),
                },
                CompositeEntry {
                    param,
                    first: token,
                    second: CompositeSecond::Range {
                        value: 1.0,
                        low: 0.0,
                        high: 2.0,
                        unit: None,
                    },
                },
            ],
        }
    }

    #[test]
    fn every_row_has_a_value_of_its_column_s_type_for_every_column_in_order() {
        let entries = entries();
        let mut tables_seen = Vec::new();
        for_each_index_row(42, &entries, |table, values| -> Result<(), ()> {
            assert_eq!(values.len(), table.columns.len(), "{}", table.name);
            for (value, column) in values.iter().zip(table.columns) {
                assert!(
                    value.fits(column.column_type, column.nullable),
                    "{}.{}: {value:?}",
                    table.name,
                    column.name
                );
            }
            assert_eq!(values[0], Integer(42), "{}: rid first", table.name);
            let patient_key = table.columns.iter().position(|c| c.name == "patient_key");
            assert_eq!(values[patient_key.unwrap()], Integer(7));
            if !tables_seen.contains(&table.name) {
                tables_seen.push(table.name);
            }
            Ok(())
        })
        .unwrap();
        let all: Vec<&str> = tables::INDEX_TABLES.iter().map(|t| t.name).collect();
        assert_eq!(tables_seen, all);
    }

    #[test]
    fn rows_repeating_a_key_are_written_once_and_numbered_rows_always() {
        let mut entries = entries();
        let number = entries.numbers[0];
        entries.numbers.push(NumberEntry {
            value: number.value,
            ..number
        });
        entries.numbers.push(NumberEntry {
            low: 0.5 + 0.0,
            ..number
        });
        entries.numbers.push(NumberEntry {
            low: 0.0,
            high: -0.0,
            ..number
        });
        entries.numbers.push(NumberEntry {
            low: -0.0,
            high: 0.0,
            ..number
        });
        entries.dates.push(entries.dates[0]);
        entries.uris.push(entries.uris[0].clone());
        entries.strings.push(entries.strings[0].clone());
        entries.tokens.push(entries.tokens[0].clone());
        entries.references.push(entries.references[0].clone());
        let mut rows: Vec<&str> = Vec::new();
        for_each_index_row(1, &entries, |table, _| -> Result<(), ()> {
            rows.push(table.name);
            Ok(())
        })
        .unwrap();
        let count = |name: &str| rows.iter().filter(|n| **n == name).count();
        assert_eq!(
            [
                count("idx_token"),
                count("idx_string"),
                count("idx_date"),
                count("idx_number"),
                count("idx_uri"),
                count("idx_reference"),
            ],
            [2, 1, 1, 2, 1, 3]
        );
    }
}
