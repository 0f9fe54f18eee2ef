//! Sorted pages: the value each sort key sorts on, and the keyset condition that starts a next
//! page after its cursor.

use search::query::{Cursor, CursorValue, IndexTable, SortBy, SortKey};

use crate::builder::{SqlBuilder, SqlValue};
use crate::tables::index_table;

/// What kind of value a sort key yields, so a backend can read it back for the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortValueKind {
    Integer,
    Float,
    Text,
}

pub fn sort_value_kind(key: &SortKey) -> SortValueKind {
    match &key.by {
        SortBy::Id => SortValueKind::Text,
        SortBy::LastUpdated => SortValueKind::Integer,
        SortBy::Param { table, .. } => match table {
            IndexTable::Date => SortValueKind::Integer,
            IndexTable::Number | IndexTable::Quantity => SortValueKind::Float,
            _ => SortValueKind::Text,
        },
    }
}

pub(crate) fn sort_expression(b: &mut SqlBuilder, key: &SortKey) {
    match &key.by {
        SortBy::Id => {
            b.push("r.id");
        }
        SortBy::LastUpdated => {
            b.push("r.last_updated");
        }
        SortBy::Param { params, table } => {
            let (column, aggregate) = match (table, key.descending) {
                (IndexTable::Token, d) => ("code", if d { "MAX" } else { "MIN" }),
                (IndexTable::String, d) => ("normalized", if d { "MAX" } else { "MIN" }),
                // Ascending sorts on when things start, descending on when they end.
                (IndexTable::Date, false) => ("low", "MIN"),
                (IndexTable::Date, true) => ("high", "MAX"),
                (IndexTable::Number | IndexTable::Quantity, d) => {
                    ("value", if d { "MAX" } else { "MIN" })
                }
                (IndexTable::Reference, d) => ("target_id", if d { "MAX" } else { "MIN" }),
                (IndexTable::Uri, d) => ("uri", if d { "MAX" } else { "MIN" }),
                // The parser refuses to sort on composites; sort them as having no value.
                (IndexTable::Composite, _) => {
                    b.push("NULL");
                    return;
                }
            };
            let table_name = index_table(*table).name;
            // `+x.param` (both stores): else it answers MAX(high) from the (param, high) index,
            // reading it backwards until the row's own value comes (5.3 s for one patient's
            // observations by `-date` on Synthea), instead of the row's few index rows.
            let plus = b.probe_mark("param");
            let same = b.same_resource("x", "r");
            b.push(&format!("(SELECT {aggregate}(x.{column}) FROM {table_name} x WHERE {same} AND {plus}x.param "));
            match params.as_slice() {
                [param] => {
                    b.push("= ");
                    b.bind_int(param.0);
                }
                // The parts of a union parameter.
                params => {
                    let keys: Vec<i64> = params.iter().map(|param| param.0).collect();
                    b.push("IN ").bind_int_list(&keys);
                }
            }
            b.push(")");
        }
    }
}

pub(crate) fn bind_cursor_value(b: &mut SqlBuilder, value: &CursorValue) {
    match value {
        CursorValue::Null => b.push("NULL"),
        CursorValue::Integer(i) => b.bind_int(*i),
        CursorValue::Float(f) => b.bind(SqlValue::Float(*f)),
        CursorValue::Text(t) => b.bind_text(t),
    };
}

/// Rows strictly after the cursor in the sort order: for each position, all earlier sort terms
/// equal and this one after. Each sort key is two terms, "has no value" (values first) and the
/// value; the row key breaks ties.
pub(crate) fn cursor_condition(b: &mut SqlBuilder, sort: &[SortKey], cursor: &Cursor) {
    let values: Vec<&CursorValue> = (0..sort.len())
        .map(|i| cursor.sort_values.get(i).unwrap_or(&CursorValue::Null))
        .collect();
    // Terms as (equal condition writer, after condition writer) in order.
    enum Term<'c> {
        NullFlag {
            index: usize,
            cursor_null: bool,
        },
        Value {
            index: usize,
            descending: bool,
            value: &'c CursorValue,
        },
        Row,
    }
    let mut terms = Vec::new();
    for (index, key) in sort.iter().enumerate() {
        let cursor_null = matches!(values[index], CursorValue::Null);
        terms.push(Term::NullFlag { index, cursor_null });
        if !cursor_null {
            terms.push(Term::Value {
                index,
                descending: key.descending,
                value: values[index],
            });
        }
    }
    terms.push(Term::Row);
    b.push("(");
    for position in 0..terms.len() {
        if position > 0 {
            b.push(" OR ");
        }
        b.push("(");
        for term in &terms[..position] {
            match term {
                Term::NullFlag { index, cursor_null } => {
                    b.push(&format!(
                        "q.s{index} IS {}NULL AND ",
                        if *cursor_null { "" } else { "NOT " }
                    ));
                }
                Term::Value { index, value, .. } => {
                    b.push(&format!("q.s{index} = "));
                    bind_cursor_value(b, value);
                    b.push(" AND ");
                }
                Term::Row => unreachable!("the row term is last"),
            }
        }
        match &terms[position] {
            // Only a row with no value comes after a cursor with one.
            Term::NullFlag { index, cursor_null } => {
                if *cursor_null {
                    b.push("1 = 0");
                } else {
                    b.push(&format!("q.s{index} IS NULL"));
                }
            }
            Term::Value {
                index,
                descending,
                value,
            } => {
                b.push(&format!(
                    "q.s{index} {} ",
                    if *descending { "<" } else { ">" }
                ));
                bind_cursor_value(b, value);
            }
            Term::Row => {
                b.push("q.rid > ").bind_int(cursor.after_row);
            }
        }
        b.push(")");
    }
    b.push(")");
}
