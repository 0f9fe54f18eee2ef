//! Statements as text and bound values: the [`SqlBuilder`] every rendering writes into, and the
//! [`Dialect`] differences it covers (placeholders). Every value is bound, never spliced into
//! the text: hostile input cannot change a query's structure.

use search::query::Visibility;

/// The SQL dialect of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    /// PostgreSQL with the store's tables distributed by Citus on the patient key (decision
    /// 0025): PostgreSQL's SQL, with every join and correlation between two rows of one
    /// resource stated on the key as well as the row key, so that it runs shard by shard,
    /// and no recursive queries (Citus runs none over distributed tables).
    Citus,
}

impl Dialect {
    /// The database the text is written for: Citus is PostgreSQL.
    pub fn database(self) -> Dialect {
        match self {
            Dialect::Citus => Dialect::Postgres,
            other => other,
        }
    }
}

/// `x` and `y` are rows of one resource: their row keys equal, and on a distributed store
/// their patient keys too (what lets Citus run the join or probe shard by shard; a resource's
/// rows all carry its key, since a distributed store moves a resource's rows together).
pub fn same_resource(dialect: Dialect, x: &str, y: &str) -> String {
    match dialect {
        Dialect::Citus => format!("{x}.rid = {y}.rid AND {x}.patient_key = {y}.patient_key"),
        _ => format!("{x}.rid = {y}.rid"),
    }
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

/// The `method` of a deleted resource, written into statements as a literal (a constant, so
/// the planner sees it); `store::Method::Delete.code()`.
pub(crate) const DELETED: i64 = 2;

/// Accumulates SQL text and bound values.
pub(crate) struct SqlBuilder {
    pub(crate) dialect: Dialect,
    text: String,
    params: Vec<SqlValue>,
    aliases: usize,
    /// What the statement's caller may see; stated on every resource row the statement reads.
    visibility: Visibility,
    /// Statements computed before this one (`name AS MATERIALIZED (...)`), in the order they
    /// depend on each other: [`SqlBuilder::materialized`].
    ctes: Vec<String>,
}

impl SqlBuilder {
    pub(crate) fn new(dialect: Dialect) -> SqlBuilder {
        debug_assert_eq!(store::Method::Delete.code(), DELETED);
        SqlBuilder {
            dialect,
            text: String::new(),
            params: Vec::new(),
            aliases: 0,
            visibility: Visibility::All,
            ctes: Vec::new(),
        }
    }

    /// A builder for a statement that reads only what `visibility` lets its caller see.
    pub(crate) fn seeing(dialect: Dialect, visibility: &Visibility) -> SqlBuilder {
        let mut b = SqlBuilder::new(dialect);
        b.visibility = visibility.clone();
        b
    }

    /// Whether the statement sees every resource (no condition to state).
    pub(crate) fn sees_all(&self) -> bool {
        self.visibility == Visibility::All
    }

    /// ` AND` the condition that resource row `alias` is visible, when the statement does not
    /// see everything. The visibility's own filter is rendered without it (it is the rule, not
    /// something the rule applies to).
    pub(crate) fn visible(&mut self, alias: &str) -> &mut SqlBuilder {
        match std::mem::take(&mut self.visibility) {
            Visibility::All => {}
            Visibility::Nothing => {
                self.push(" AND 1 = 0");
                self.visibility = Visibility::Nothing;
            }
            Visibility::Where(filter) => {
                self.push(" AND ");
                crate::filters::render_probe(self, &filter, alias);
                self.visibility = Visibility::Where(filter);
            }
        }
        self
    }

    pub(crate) fn push(&mut self, sql: &str) -> &mut SqlBuilder {
        self.text.push_str(sql);
        self
    }

    /// Binds a value and writes its placeholder.
    pub(crate) fn bind(&mut self, value: SqlValue) -> &mut SqlBuilder {
        self.params.push(value);
        let n = self.params.len();
        match self.dialect {
            Dialect::Sqlite => self.text.push_str(&format!("?{n}")),
            Dialect::Postgres | Dialect::Citus => self.text.push_str(&format!("${n}")),
        }
        self
    }

    pub(crate) fn bind_int(&mut self, value: i64) -> &mut SqlBuilder {
        self.bind(SqlValue::Integer(value))
    }

    pub(crate) fn bind_text(&mut self, value: &str) -> &mut SqlBuilder {
        self.bind(SqlValue::Text(value.to_owned()))
    }

    /// `(?, ?, ?)` for a list of texts.
    pub(crate) fn bind_text_list<S: AsRef<str>>(&mut self, values: &[S]) -> &mut SqlBuilder {
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
    pub(crate) fn bind_int_list(&mut self, values: &[i64]) -> &mut SqlBuilder {
        self.push("(");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind_int(*v);
        }
        self.push(")")
    }

    pub(crate) fn fresh_alias(&mut self, stem: &str) -> String {
        self.aliases += 1;
        format!("{stem}{}", self.aliases)
    }

    /// What is written before `column` in a probe (a per-row test `x.rid = r.rid AND ...`) to
    /// keep the planner on the resource key instead of a value index: `+` makes a term no
    /// index can answer. On SQLite every column is marked. On PostgreSQL `+` exists for
    /// numbers only, and only `param` is marked: it leads every (param, value, rid) index, so
    /// marked, none of them can serve the probe, and the (rid, ...) index does. Unmarked, a
    /// planner working from statistics taken on an empty store scanned every lower date of the
    /// parameter for each row of a date walk (8 s for a page of ten).
    pub(crate) fn probe_mark(&self, column: &str) -> &'static str {
        match (self.dialect.database(), column) {
            (Dialect::Sqlite, _) | (Dialect::Postgres, "param") => "+",
            _ => "",
        }
    }

    /// The condition that resource row `alias` is in a patient's compartment. A resource
    /// outside any has key 0 on one database, and the test is `<> 0`, as the partial indexes
    /// state it (SQLite uses one only when the query states its condition as written); on
    /// Citus such a resource has a negative key of its own, which spreads them over the shards
    /// (decision 0025, item 2), and the test is `> 0`. A patient's key is always positive.
    pub(crate) fn in_compartment(&self, alias: &str) -> String {
        match self.dialect {
            Dialect::Citus => format!("{alias}.patient_key > 0"),
            Dialect::Sqlite | Dialect::Postgres => format!("{alias}.patient_key <> 0"),
        }
    }

    /// [`same_resource`] in this builder's dialect.
    pub(crate) fn same_resource(&self, x: &str, y: &str) -> String {
        same_resource(self.dialect, x, y)
    }

    /// Writes a statement `body` renders as one the whole statement computes first (a
    /// materialized `WITH`), and answers the name to read it by. Its placeholders are numbered
    /// with the statement's (both dialects' placeholders carry their number, so text order does
    /// not matter). Citus runs such a statement once, across its shards, and sends its rows to
    /// each shard as an intermediate result, which may then be joined on any column.
    pub(crate) fn materialized(
        &mut self,
        stem: &str,
        body: impl FnOnce(&mut SqlBuilder),
    ) -> String {
        let name = self.fresh_alias(stem);
        let outer = std::mem::take(&mut self.text);
        body(self);
        let inner = std::mem::replace(&mut self.text, outer);
        // A statement it reads was pushed while its body was written: it comes first.
        self.ctes.push(format!("{name} AS MATERIALIZED ({inner})"));
        name
    }

    pub(crate) fn finish(self) -> Sql {
        let text = if self.ctes.is_empty() {
            self.text
        } else {
            format!("WITH {} {}", self.ctes.join(", "), self.text)
        };
        Sql {
            text,
            params: self.params,
        }
    }
}
