//! SQL over materialised views: every directory of Parquet files that `analytics` wrote under
//! a root (`analytics::parquet::dataset`) is a table named as its view, and queries run in
//! SQLite, which Meridian already embeds for its store, through a virtual table that reads the
//! Parquet files (decision 0024 says why not DataFusion). pandas, DuckDB and Spark read the same
//! files directly.
//!
//! ```ignore
//! let engine = analytics_sql::Engine::over(Path::new("meridian-data/views"), Limits::default())?;
//! let answer = engine.query("SELECT sex, count(*) AS residents FROM patient GROUP BY sex")?;
//! for row in answer.rows { /* one JSON value per column of answer.columns */ }
//! ```
//!
//! How columns read in SQL: booleans as 0 and 1, integers as integers, decimals as REAL (a
//! double: sums and averages, not exact digits), text as text, instants as RFC 3339 text in
//! UTC (`2026-06-01T01:00:00.000000Z`, which SQLite's date functions read), times as text,
//! collections as JSON arrays (`json_each` opens them).
//!
//! Only queries: one statement, and the authorizer lets it read the tables and call functions
//! and nothing else (no `ATTACH` of a file, no `PRAGMA`, no write, no new table), so what a
//! client sends can neither touch files nor see anything but the views. Each query is stopped
//! past [`Limits::seconds`], and refused past [`Limits::rows`] rows of answer.
//!
//! A virtual table reads only the columns a query uses, a file at a time, a batch of rows at a
//! time: memory stays bounded by the query's own sorts and groups.

mod functions;
mod measure;
mod parquet_table;

pub use measure::{EvaluateError, evaluate};

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

/// Why a query gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The query is not SQL this engine runs, names what is not there, or is not a query: the
    /// caller's to fix (400 over HTTP, exit status 2 on the command line).
    #[error("{0}")]
    Query(String),
    /// The query ran past a limit: more rows than allowed, or more time.
    #[error("{0}")]
    Limit(String),
    /// Reading the files failed.
    #[error("{0}")]
    Engine(String),
}

/// What a query may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The rows an answer may have; a query with more is refused (add a `LIMIT`).
    pub rows: usize,
    /// How long a query may run before it is stopped.
    pub seconds: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            rows: 100_000,
            seconds: 300,
        }
    }
}

/// A query's answer: its columns and rows, each row a JSON value per column.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// The tables under a root, ready for queries.
pub struct Engine {
    connection: Connection,
    tables: Vec<String>,
    limits: Limits,
}

impl Engine {
    /// Every dataset under `root` as a table named as its directory (the view's name).
    pub fn over(root: &Path, limits: Limits) -> Result<Engine, SqlError> {
        let engine_error = |e: rusqlite::Error| SqlError::Engine(e.to_string());
        let mut connection = Connection::open_in_memory_with_flags(
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(engine_error)?;
        parquet_table::register(&connection).map_err(engine_error)?;
        functions::register(&connection).map_err(engine_error)?;
        let mut tables = Vec::new();
        let datasets = analytics::parquet::dataset::datasets_in(root)
            .map_err(|e| SqlError::Engine(e.to_string()))?;
        for (name, dir) in datasets {
            let location = dir.to_str().ok_or_else(|| {
                SqlError::Engine(format!("{} is not a UTF-8 path", dir.display()))
            })?;
            // Both are checked: the name is a SQL name, the location has no quote doubled.
            connection
                .execute_batch(&format!(
                    "CREATE VIRTUAL TABLE temp.\"{name}\" USING parquet('{}')",
                    location.replace('\'', "''")
                ))
                .map_err(engine_error)?;
            tables.push(name);
        }
        // From here on, a statement may read the views and call functions, nothing else (the
        // schema tables, which name the files, are not views).
        connection
            .authorizer(Some(|context: AuthContext<'_>| match context.action {
                AuthAction::Read { table_name, .. } if table_name.starts_with("sqlite_") => {
                    Authorization::Deny
                }
                AuthAction::Select
                | AuthAction::Read { .. }
                | AuthAction::Function { .. }
                | AuthAction::Recursive => Authorization::Allow,
                _ => Authorization::Deny,
            }))
            .map_err(engine_error)?;
        Ok(Engine {
            connection,
            tables,
            limits,
        })
    }

    /// The tables, by name.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// Runs one query, answering its rows as JSON values (integers and reals as numbers, text
    /// as strings, a blob as an array of its bytes).
    pub fn query(&mut self, sql: &str) -> Result<Answer, SqlError> {
        let (columns, rows) = self.query_each_limited(
            sql,
            &[],
            |columns| Ok((columns.to_vec(), Vec::new())),
            |(_, rows): &mut (Vec<String>, Vec<Vec<Value>>), row| {
                rows.push(row);
                Ok(())
            },
        )?;
        Ok(Answer { columns, rows })
    }

    /// [`Engine::query_each`] under the row limit: an answer of more than [`Limits::rows`]
    /// rows is refused when the row past it comes.
    pub fn query_each_limited<S>(
        &mut self,
        sql: &str,
        params: &[(&str, Value)],
        start: impl FnOnce(&[String]) -> Result<S, SqlError>,
        mut each: impl FnMut(&mut S, Vec<Value>) -> Result<(), SqlError>,
    ) -> Result<S, SqlError> {
        let limit = self.limits.rows;
        let mut rows = 0usize;
        self.query_each(sql, params, start, |state, row| {
            if rows == limit {
                return Err(SqlError::Limit(format!(
                    "the answer has more than {limit} rows: add a LIMIT, or aggregate"
                )));
            }
            rows += 1;
            each(state, row)
        })
    }

    /// Runs one query with its named parameters bound (`(":name", value)`; a parameter the
    /// query does not name is ignored, one it names and is not given reads NULL), handing
    /// each row to `each` as it comes, after `start` has seen the columns: an answer of any
    /// size in bounded memory. The time limit holds, not the row limit
    /// ([`Engine::query_each_limited`]).
    pub fn query_each<S>(
        &mut self,
        sql: &str,
        params: &[(&str, Value)],
        start: impl FnOnce(&[String]) -> Result<S, SqlError>,
        each: impl FnMut(&mut S, Vec<Value>) -> Result<(), SqlError>,
    ) -> Result<S, SqlError> {
        let deadline = Instant::now() + Duration::from_secs(self.limits.seconds);
        let engine_error = |e: rusqlite::Error| SqlError::Engine(e.to_string());
        self.connection
            .progress_handler(10_000, Some(move || Instant::now() > deadline))
            .map_err(engine_error)?;
        let answer = self.run(sql, params, start, each);
        self.connection
            .progress_handler(0, None::<fn() -> bool>)
            .map_err(engine_error)?;
        answer
    }

    fn run<S>(
        &self,
        sql: &str,
        params: &[(&str, Value)],
        start: impl FnOnce(&[String]) -> Result<S, SqlError>,
        mut each: impl FnMut(&mut S, Vec<Value>) -> Result<(), SqlError>,
    ) -> Result<S, SqlError> {
        // The progress handler's stop reaches here as an interruption.
        let query_error = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::OperationInterrupted) => SqlError::Limit(format!(
                "the query ran longer than {} s",
                self.limits.seconds
            )),
            _ => SqlError::Query(e.to_string()),
        };
        let mut statement = self.connection.prepare(sql).map_err(query_error)?;
        if !statement.readonly() {
            return Err(SqlError::Query("only queries are run here".into()));
        }
        for (name, value) in params {
            if let Some(at) = statement.parameter_index(name).map_err(query_error)? {
                let bound = match value {
                    Value::Null => statement.raw_bind_parameter(at, rusqlite::types::Null),
                    Value::Bool(b) => statement.raw_bind_parameter(at, *b),
                    Value::Number(n) => match n.as_i64() {
                        Some(i) => statement.raw_bind_parameter(at, i),
                        None => statement.raw_bind_parameter(at, n.as_f64().unwrap_or(0.0)),
                    },
                    Value::String(text) => statement.raw_bind_parameter(at, text.as_str()),
                    other => statement.raw_bind_parameter(at, other.to_string()),
                };
                bound.map_err(query_error)?;
            }
        }
        let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
        let width = columns.len();
        let mut state = start(&columns)?;
        let mut cursor = statement.raw_query();
        while let Some(row) = cursor.next().map_err(query_error)? {
            let mut values = Vec::with_capacity(width);
            for at in 0..width {
                values.push(match row.get_ref(at).map_err(query_error)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::from(n),
                    ValueRef::Real(x) => serde_json::Number::from_f64(x)
                        .map(Value::Number)
                        .unwrap_or(Value::Null),
                    ValueRef::Text(text) => Value::String(String::from_utf8_lossy(text).into()),
                    ValueRef::Blob(bytes) => {
                        Value::Array(bytes.iter().map(|b| Value::from(*b)).collect())
                    }
                });
            }
            each(&mut state, values)?;
        }
        Ok(state)
    }
}

/// Over FHIR: a query the caller got wrong is 400, one past a limit 422 (too costly), a
/// failure to read the files an internal error.
impl fhir_model::Outcome for SqlError {
    fn http_status(&self) -> u16 {
        match self {
            SqlError::Query(_) => 400,
            SqlError::Limit(_) => 422,
            SqlError::Engine(_) => 500,
        }
    }

    fn issues(&self, request_id: &str) -> Vec<fhir_model::Issue> {
        use fhir_model::{Issue, IssueCode};
        match self {
            SqlError::Query(message) => vec![Issue::error(IssueCode::Invalid, message.clone())],
            SqlError::Limit(message) => vec![Issue::error(IssueCode::TooCostly, message.clone())],
            SqlError::Engine(_) => vec![fhir_model::internal_issue(request_id)],
        }
    }
}
