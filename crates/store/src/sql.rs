//! Search as SQL, for both backends. The two databases share one schema shape (see each
//! backend's migrations), so a search renders the same way on both; a [`Dialect`] covers the
//! differences (placeholders). Every value is bound, never spliced into the text: hostile input
//! cannot change a query's structure.

use search::query::{
    Bound, Comparison, CompositeTest, Cursor, CursorValue, Filter, Include, IndexTable,
    QuantityUnits, RangeColumn, RangePredicate, ReferenceTarget, SearchQuery, SortBy, SortKey,
    StringTest, TokenColumn, UriTest,
};

use crate::Method;

/// The SQL dialect of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Integer(i64),
    Float(f64),
    Text(String),
}

/// A statement and its bound values, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub params: Vec<SqlValue>,
}

/// Accumulates SQL text and bound values.
pub struct SqlBuilder {
    dialect: Dialect,
    text: String,
    params: Vec<SqlValue>,
    aliases: usize,
}

impl SqlBuilder {
    pub fn new(dialect: Dialect) -> SqlBuilder {
        SqlBuilder {
            dialect,
            text: String::new(),
            params: Vec::new(),
            aliases: 0,
        }
    }

    pub fn push(&mut self, sql: &str) -> &mut SqlBuilder {
        self.text.push_str(sql);
        self
    }

    /// Binds a value and writes its placeholder.
    pub fn bind(&mut self, value: SqlValue) -> &mut SqlBuilder {
        self.params.push(value);
        let n = self.params.len();
        match self.dialect {
            Dialect::Sqlite => self.text.push_str(&format!("?{n}")),
            Dialect::Postgres => self.text.push_str(&format!("${n}")),
        }
        self
    }

    pub fn bind_int(&mut self, value: i64) -> &mut SqlBuilder {
        self.bind(SqlValue::Integer(value))
    }

    pub fn bind_text(&mut self, value: &str) -> &mut SqlBuilder {
        self.bind(SqlValue::Text(value.to_owned()))
    }

    /// `(?, ?, ?)` for a list of texts.
    pub fn bind_text_list<S: AsRef<str>>(&mut self, values: &[S]) -> &mut SqlBuilder {
        self.push("(");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind_text(v.as_ref());
        }
        self.push(")")
    }

    /// `(?, ?, ?)` for a list of integers.
    pub fn bind_int_list(&mut self, values: &[i64]) -> &mut SqlBuilder {
        self.push("(");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind_int(*v);
        }
        self.push(")")
    }

    fn fresh_alias(&mut self, stem: &str) -> String {
        self.aliases += 1;
        format!("{stem}{}", self.aliases)
    }

    pub fn finish(self) -> Sql {
        Sql {
            text: self.text,
            params: self.params,
        }
    }
}

const DELETED: i64 = 2;

/// The statement that finds one page of matches: rows of `rid` and then one column per sort
/// key (the values a next-page cursor carries), in order, one more than the page size so the
/// caller knows whether there is a next page.
///
/// Without `_sort` the order is the resource row key, so a filter backed by an index is read in
/// index order and stops after the page: page 1,000 costs what page 1 costs. With `_sort`, rows
/// without a value for a sort key come last, whatever the direction.
pub fn search_page(query: &SearchQuery, dialect: Dialect) -> Sql {
    debug_assert_eq!(Method::Delete.code(), DELETED);
    let mut b = SqlBuilder::new(dialect);
    if query.sort.is_empty() {
        b.push("SELECT r.rid FROM resource r WHERE ");
        where_clause(&mut b, query, "r");
        if let Some(cursor) = &query.cursor {
            b.push(" AND r.rid > ").bind_int(cursor.after_row);
        }
        b.push(" ORDER BY r.rid LIMIT ")
            .bind_int(query.count as i64 + 1);
        return b.finish();
    }
    b.push("SELECT q.rid");
    for i in 0..query.sort.len() {
        b.push(&format!(", q.s{i}"));
    }
    b.push(" FROM (SELECT r.rid AS rid");
    for (i, key) in query.sort.iter().enumerate() {
        b.push(", ");
        sort_expression(&mut b, key);
        b.push(&format!(" AS s{i}"));
    }
    b.push(" FROM resource r WHERE ");
    where_clause(&mut b, query, "r");
    b.push(") q");
    if let Some(cursor) = &query.cursor {
        b.push(" WHERE ");
        cursor_condition(&mut b, &query.sort, cursor);
    }
    b.push(" ORDER BY ");
    for (i, key) in query.sort.iter().enumerate() {
        let direction = if key.descending { "DESC" } else { "ASC" };
        b.push(&format!(
            "(CASE WHEN q.s{i} IS NULL THEN 1 ELSE 0 END), q.s{i} {direction}, "
        ));
    }
    b.push("q.rid LIMIT ").bind_int(query.count as i64 + 1);
    b.finish()
}

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

fn sort_expression(b: &mut SqlBuilder, key: &SortKey) {
    match &key.by {
        SortBy::Id => {
            b.push("r.id");
        }
        SortBy::LastUpdated => {
            b.push("r.last_updated");
        }
        SortBy::Param { param, table } => {
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
            let table_name = index_table_name(*table);
            b.push(&format!("(SELECT {aggregate}(x.{column}) FROM {table_name} x WHERE x.rid = r.rid AND x.param = "));
            b.bind_int(param.0);
            b.push(")");
        }
    }
}

fn bind_cursor_value(b: &mut SqlBuilder, value: &CursorValue) {
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
fn cursor_condition(b: &mut SqlBuilder, sort: &[SortKey], cursor: &Cursor) {
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

/// Resources that `rows` point at through the include's parameters.
pub fn include_targets(rows: &[i64], include: &Include, dialect: Dialect) -> Sql {
    let mut b = SqlBuilder::new(dialect);
    b.push(
        "SELECT DISTINCT t.rid FROM idx_reference ref \
         JOIN resource t ON t.type = ref.target_type AND t.id = ref.target_id \
         WHERE ref.rid IN ",
    );
    b.bind_int_list(rows);
    // No parameters means every reference of the rows (`$everything`).
    if !include.params.is_empty() {
        b.push(" AND ref.param IN ");
        b.bind_int_list(&include.params.iter().map(|p| p.0).collect::<Vec<_>>());
    }
    b.push(&format!(" AND t.method <> {DELETED}"));
    if let Some(target_type) = &include.target_type {
        b.push(" AND t.type = ").bind_text(target_type);
    }
    b.finish()
}

/// Resources that point at `targets` (`(type, id)`) through the include's parameters.
pub fn revinclude_sources(targets: &[(&str, &str)], include: &Include, dialect: Dialect) -> Sql {
    let mut b = SqlBuilder::new(dialect);
    b.push("SELECT DISTINCT ref.rid FROM idx_reference ref WHERE ref.param IN ");
    b.bind_int_list(&include.params.iter().map(|p| p.0).collect::<Vec<_>>());
    let mut by_type: Vec<(&str, Vec<&str>)> = Vec::new();
    for (resource_type, id) in targets {
        match by_type.iter_mut().find(|(t, _)| t == resource_type) {
            Some((_, ids)) => ids.push(id),
            None => by_type.push((resource_type, vec![id])),
        }
    }
    if let Some(target_type) = &include.target_type {
        by_type.retain(|(t, _)| *t == &**target_type);
    }
    b.push(" AND (");
    if by_type.is_empty() {
        b.push("1 = 0");
    }
    for (i, (resource_type, ids)) in by_type.iter().enumerate() {
        if i > 0 {
            b.push(" OR ");
        }
        b.push("(ref.target_type = ").bind_text(resource_type);
        b.push(" AND ref.target_id IN ").bind_text_list(ids);
        b.push(")");
    }
    b.push(")");
    b.finish()
}

/// The statement that counts every match of a query.
pub fn search_count(query: &SearchQuery, dialect: Dialect) -> Sql {
    let mut b = SqlBuilder::new(dialect);
    b.push("SELECT COUNT(*) FROM resource r WHERE ");
    where_clause(&mut b, query, "r");
    b.finish()
}

fn where_clause(b: &mut SqlBuilder, query: &SearchQuery, alias: &str) {
    b.push(&format!("{alias}.method <> {DELETED}"));
    if !query.types.is_empty() {
        b.push(&format!(" AND {alias}.type IN "));
        b.bind_text_list(&query.types);
    }
    for filter in &query.filters {
        b.push(" AND ");
        render_filter(b, filter, alias);
    }
}

/// Writes a boolean condition saying that the resource row `alias` satisfies `filter`.
fn render_filter(b: &mut SqlBuilder, filter: &Filter, alias: &str) {
    match filter {
        Filter::AnyOf(filters) | Filter::AllOf(filters) if filters.is_empty() => {
            // An empty OR is false, an empty AND true.
            b.push(if matches!(filter, Filter::AnyOf(_)) {
                "1 = 0"
            } else {
                "1 = 1"
            });
        }
        Filter::AnyOf(filters) | Filter::AllOf(filters) => {
            let joiner = if matches!(filter, Filter::AnyOf(_)) {
                " OR "
            } else {
                " AND "
            };
            b.push("(");
            for (i, f) in filters.iter().enumerate() {
                if i > 0 {
                    b.push(joiner);
                }
                render_filter(b, f, alias);
            }
            b.push(")");
        }
        Filter::Not(inner) => {
            b.push("NOT (");
            render_filter(b, inner, alias);
            b.push(")");
        }
        Filter::Id(ids) => {
            b.push(&format!("{alias}.id IN "));
            b.bind_text_list(ids);
        }
        Filter::LastUpdated(predicate) => {
            render_range(
                b,
                predicate,
                &RangeColumns::same(&format!("{alias}.last_updated")),
            );
        }
        Filter::Token {
            param: _,
            column,
            hash,
        } => {
            let column = token_column(*column);
            b.push(&format!(
                "{alias}.rid IN (SELECT rid FROM idx_token WHERE {column} = "
            ));
            b.bind_int(*hash).push(")");
        }
        Filter::String { param, test } => {
            b.push(&format!(
                "{alias}.rid IN (SELECT rid FROM idx_string WHERE param = "
            ));
            b.bind_int(param.0).push(" AND ");
            match test {
                StringTest::Prefix(prefix) => {
                    b.push("normalized >= ")
                        .bind_text(prefix)
                        .push(" AND normalized < ");
                    b.bind_text(&prefix_upper_bound(prefix));
                }
                StringTest::Exact(value) => {
                    b.push("exact = ").bind_text(value);
                }
                StringTest::Contains(part) => {
                    b.push("normalized LIKE ")
                        .bind_text(&format!("%{}%", escape_like(part)));
                    b.push(" ESCAPE '\\'");
                }
            }
            b.push(")");
        }
        Filter::Date { param, predicate } => {
            b.push(&format!(
                "{alias}.rid IN (SELECT rid FROM idx_date WHERE param = "
            ));
            b.bind_int(param.0).push(" AND ");
            render_range(b, predicate, &RangeColumns::new("low", "high", "value"));
            b.push(")");
        }
        Filter::Number { param, predicate } => {
            b.push(&format!(
                "{alias}.rid IN (SELECT rid FROM idx_number WHERE param = "
            ));
            b.bind_int(param.0).push(" AND ");
            render_range(b, predicate, &RangeColumns::new("low", "high", "value"));
            b.push(")");
        }
        Filter::Quantity {
            param,
            predicate,
            units,
        } => {
            b.push(&format!(
                "{alias}.rid IN (SELECT rid FROM idx_quantity WHERE param = "
            ));
            b.bind_int(param.0).push(" AND ");
            match units {
                QuantityUnits::Any => {
                    render_range(b, predicate, &RangeColumns::new("low", "high", "value"))
                }
                QuantityUnits::SystemCode(system, code) => {
                    if let Some(system) = system.as_deref().filter(|s| !s.is_empty()) {
                        b.push("system = ").bind_text(system).push(" AND ");
                    }
                    b.push("code = ").bind_text(code).push(" AND ");
                    render_range(b, predicate, &RangeColumns::new("low", "high", "value"));
                }
                QuantityUnits::Canonical(code) => {
                    b.push("canonical_code = ").bind_text(code).push(" AND ");
                    render_range(
                        b,
                        predicate,
                        &RangeColumns::new("canonical_low", "canonical_high", "canonical_value"),
                    );
                }
            }
            b.push(")");
        }
        Filter::Reference { param, target } => {
            b.push(&format!(
                "{alias}.rid IN (SELECT rid FROM idx_reference WHERE param = "
            ));
            b.bind_int(param.0);
            match target {
                ReferenceTarget::Local { types, id } => {
                    b.push(" AND target_id = ").bind_text(id);
                    if !types.is_empty() {
                        b.push(" AND target_type IN ").bind_text_list(types);
                    }
                }
                ReferenceTarget::Url { url, version } => {
                    b.push(" AND url = ").bind_text(url);
                    if let Some(version) = version {
                        b.push(" AND version = ").bind_text(version);
                    }
                }
            }
            b.push(")");
        }
        Filter::Uri { param, test } => {
            b.push(&format!(
                "{alias}.rid IN (SELECT rid FROM idx_uri WHERE param = "
            ));
            b.bind_int(param.0).push(" AND ");
            match test {
                UriTest::Equals(uri) => {
                    b.push("uri = ").bind_text(uri);
                }
                UriTest::Below(prefix) => {
                    b.push("uri >= ").bind_text(prefix).push(" AND uri < ");
                    b.bind_text(&prefix_upper_bound(prefix));
                }
                UriTest::Above(candidates) => {
                    b.push("uri IN ").bind_text_list(candidates);
                }
            }
            b.push(")");
        }
        Filter::Composite {
            param: _,
            first,
            second,
        } => {
            b.push(&format!(
                "{alias}.rid IN (SELECT rid FROM idx_composite WHERE "
            ));
            let (column, hash) = first;
            b.push(&format!("first_{} = ", token_column(*column)))
                .bind_int(*hash)
                .push(" AND ");
            match second {
                CompositeTest::Token(column, hash) => {
                    b.push(&format!("second_{} = ", token_column(*column)))
                        .bind_int(*hash);
                }
                CompositeTest::Range(predicate) => render_range(
                    b,
                    predicate,
                    &RangeColumns::new("second_low", "second_high", "second_value"),
                ),
                CompositeTest::String(value) => {
                    b.push("second_text = ").bind_text(value);
                }
            }
            b.push(")");
        }
        Filter::Missing {
            param,
            table,
            missing,
        } => {
            let keyword = if *missing { "NOT EXISTS" } else { "EXISTS" };
            let table = index_table_name(*table);
            b.push(&format!(
                "{keyword} (SELECT 1 FROM {table} m WHERE m.rid = {alias}.rid AND m.param = "
            ));
            b.bind_int(param.0).push(")");
        }
        Filter::Chain {
            param,
            target_types,
            filter,
        } => {
            let reference = b.fresh_alias("ref");
            let target = b.fresh_alias("t");
            b.push(&format!(
                "{alias}.rid IN (SELECT {reference}.rid FROM idx_reference {reference} \
                 JOIN resource {target} ON {target}.type = {reference}.target_type AND {target}.id = {reference}.target_id \
                 WHERE {reference}.param = "
            ));
            b.bind_int(param.0);
            b.push(&format!(" AND {target}.method <> {DELETED}"));
            if !target_types.is_empty() {
                b.push(&format!(" AND {target}.type IN "))
                    .bind_text_list(target_types);
            }
            b.push(" AND ");
            render_filter(b, filter, &target);
            b.push(")");
        }
        Filter::Has {
            source_type,
            param,
            filter,
        } => {
            let reference = b.fresh_alias("ref");
            let source = b.fresh_alias("s");
            b.push(&format!(
                "EXISTS (SELECT 1 FROM idx_reference {reference} JOIN resource {source} ON {source}.rid = {reference}.rid \
                 WHERE {reference}.param = "
            ));
            b.bind_int(param.0);
            b.push(&format!(
                " AND {reference}.target_type = {alias}.type AND {reference}.target_id = {alias}.id AND {source}.type = "
            ));
            b.bind_text(source_type);
            b.push(&format!(" AND {source}.method <> {DELETED} AND "));
            render_filter(b, filter, &source);
            b.push(")");
        }
        Filter::PatientCompartment { id, key, params } => {
            b.push(&format!("({alias}.patient_key = "));
            b.bind_int(key.0);
            b.push(&format!(" OR ({alias}.type = 'Patient' AND {alias}.id = "));
            b.bind_text(id);
            b.push(&format!(
                ") OR {alias}.rid IN (SELECT rid FROM idx_reference WHERE target_type = 'Patient' AND target_id = "
            ));
            b.bind_text(id);
            b.push(" AND param IN ");
            b.bind_int_list(&params.iter().map(|p| p.0).collect::<Vec<_>>());
            b.push("))");
        }
    }
}

fn token_column(column: TokenColumn) -> &'static str {
    match column {
        TokenColumn::Code => "h_code",
        TokenColumn::SystemCode => "h_system_code",
        TokenColumn::System => "h_system",
    }
}

/// The table holding rows of one parameter type.
pub fn index_table_name(table: IndexTable) -> &'static str {
    match table {
        IndexTable::Token => "idx_token",
        IndexTable::String => "idx_string",
        IndexTable::Date => "idx_date",
        IndexTable::Number => "idx_number",
        IndexTable::Quantity => "idx_quantity",
        IndexTable::Reference => "idx_reference",
        IndexTable::Uri => "idx_uri",
        IndexTable::Composite => "idx_composite",
    }
}

/// All index tables, for deletes.
pub const INDEX_TABLES: [&str; 8] = [
    "idx_token",
    "idx_string",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_reference",
    "idx_uri",
    "idx_composite",
];

/// The columns a range predicate compares.
struct RangeColumns {
    low: String,
    high: String,
    value: String,
}

impl RangeColumns {
    fn new(low: &str, high: &str, value: &str) -> RangeColumns {
        RangeColumns {
            low: low.into(),
            high: high.into(),
            value: value.into(),
        }
    }

    /// A point in time (`_lastUpdated`): one column is low, high and value at once.
    fn same(column: &str) -> RangeColumns {
        RangeColumns::new(column, column, column)
    }
}

fn render_range(b: &mut SqlBuilder, predicate: &RangePredicate, columns: &RangeColumns) {
    if predicate.any_of.is_empty() {
        b.push("1 = 0");
        return;
    }
    b.push("(");
    for (i, group) in predicate.any_of.iter().enumerate() {
        if i > 0 {
            b.push(" OR ");
        }
        b.push("(");
        if group.is_empty() {
            b.push("1 = 1");
        }
        for (j, (column, comparison, bound)) in group.iter().enumerate() {
            if j > 0 {
                b.push(" AND ");
            }
            let column = match column {
                RangeColumn::Low => &columns.low,
                RangeColumn::High => &columns.high,
                RangeColumn::Value => &columns.value,
            };
            let op = match comparison {
                Comparison::Lt => "<",
                Comparison::Le => "<=",
                Comparison::Gt => ">",
                Comparison::Ge => ">=",
            };
            b.push(&format!("{column} {op} "));
            match bound {
                Bound::Integer(v) => b.bind_int(*v),
                Bound::Float(v) => b.bind(SqlValue::Float(*v)),
            };
        }
        b.push(")");
    }
    b.push(")");
}

/// The smallest string greater than every string that starts with `prefix`, in byte order.
fn prefix_upper_bound(prefix: &str) -> String {
    let mut bound = String::with_capacity(prefix.len() + 4);
    bound.push_str(prefix);
    bound.push(char::MAX);
    bound
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
