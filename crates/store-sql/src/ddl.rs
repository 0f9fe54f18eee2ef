//! The schema's text, rendered from its declaration (`tables`) for either database: tables,
//! indexes and PostgreSQL's row-key sequence, and the statement that inserts one row of a table.

use crate::Dialect;
use crate::tables::{Column, ColumnType, Index, ROW_KEY_SEQUENCE, TABLES, Table};

impl ColumnType {
    /// The column's type as the schema writes it.
    pub fn sql_type(self, dialect: Dialect) -> &'static str {
        if dialect == Dialect::Sqlite {
            return match self {
                ColumnType::Integer
                | ColumnType::SmallInteger
                | ColumnType::Integer32
                | ColumnType::Boolean => "INTEGER",
                ColumnType::Real => "REAL",
                ColumnType::Text | ColumnType::UncomparedText => "TEXT",
                ColumnType::Bytes => "BLOB",
            };
        }
        match self {
            ColumnType::Integer => "bigint",
            ColumnType::SmallInteger => "smallint",
            ColumnType::Integer32 => "integer",
            ColumnType::Boolean => "boolean",
            ColumnType::Real => "double precision",
            ColumnType::Text => "text COLLATE \"C\"",
            ColumnType::UncomparedText => "text",
            ColumnType::Bytes => "bytea COMPRESSION lz4",
        }
    }
}

fn column_definition(table: &Table, column: &Column, dialect: Dialect) -> String {
    let dialect = dialect.database();
    let mut text = format!("{} {}", column.name, column.column_type.sql_type(dialect));
    if column.numbered_by_database && dialect == Dialect::Postgres {
        text.push_str(" GENERATED ALWAYS AS IDENTITY");
    }
    // SQLite's rowid tables take their key columns as declared, without NOT NULL (its row id
    // cannot be null anyway), as the first migration wrote them.
    let bare_key = dialect == Dialect::Sqlite
        && !table.sqlite_clustered
        && table.sqlite_key.contains(&column.name);
    if !column.nullable && !bare_key {
        text.push_str(" NOT NULL");
    }
    if let Some(default) = column.default {
        text.push_str(" DEFAULT ");
        text.push_str(default);
    }
    text
}

/// `CREATE TABLE` for `table`.
pub fn create_table(table: &Table, dialect: Dialect) -> String {
    let dialect = dialect.database();
    let mut lines: Vec<String> = table
        .columns
        .iter()
        .map(|column| format!("    {}", column_definition(table, column, dialect)))
        .collect();
    let key = match dialect {
        Dialect::Sqlite => Some(table.sqlite_key),
        Dialect::Postgres | Dialect::Citus => table.postgres_key,
    };
    if let Some(key) = key {
        lines.push(format!("    PRIMARY KEY ({})", key.join(", ")));
    }
    let clustered = if dialect == Dialect::Sqlite && table.sqlite_clustered {
        " WITHOUT ROWID"
    } else {
        ""
    };
    format!(
        "CREATE TABLE {} (\n{}\n){clustered}",
        table.name,
        lines.join(",\n")
    )
}

/// `CREATE INDEX` for `index` of `table`, as the migrations wrote it.
pub fn create_index(table: &Table, index: &Index, dialect: Dialect) -> String {
    let dialect = dialect.database();
    let mut columns = index.columns.join(", ");
    if dialect == Dialect::Postgres && index.postgres_ends_with_rid {
        columns.push_str(", rid");
    }
    let unique = if index.unique { "UNIQUE " } else { "" };
    let mut text = format!(
        "CREATE {unique}INDEX {} ON {} ({columns})",
        index.name, table.name
    );
    if let Some(condition) = index.only_where {
        text.push_str(" WHERE ");
        text.push_str(condition);
    }
    text
}

/// Every statement that creates the declared schema in an empty database.
pub fn create_schema(dialect: Dialect) -> Vec<String> {
    let dialect = dialect.database();
    let mut statements = Vec::new();
    if dialect == Dialect::Postgres {
        let (name, increment) = ROW_KEY_SEQUENCE;
        statements.push(format!(
            "CREATE SEQUENCE {name} AS bigint INCREMENT BY {increment}"
        ));
    }
    for table in TABLES.iter().filter(|t| t.exists_on(dialect)) {
        statements.push(create_table(table, dialect));
        for index in table.indexes.iter().filter(|i| i.exists_on(dialect)) {
            statements.push(create_index(table, index, dialect));
        }
        if dialect == Dialect::Postgres {
            statements.extend(table.postgres_extra.iter().map(|s| s.to_string()));
        }
    }
    statements
}

/// The indexes a bulk load into an empty SQLite store defers, by name, with the statements
/// that build them again.
pub fn deferrable_indexes() -> Vec<(&'static str, String)> {
    TABLES
        .iter()
        .filter(|table| table.exists_on(Dialect::Sqlite))
        .flat_map(|table| {
            table
                .indexes
                .iter()
                .filter(|index| index.deferrable && index.exists_on(Dialect::Sqlite))
                .map(|index| (index.name, create_index(table, index, Dialect::Sqlite)))
        })
        .collect()
}

/// `col, col, ...` of every column of `table` but those the database numbers.
pub fn written_columns(table: &Table) -> Vec<&'static str> {
    table
        .columns
        .iter()
        .filter(|column| !column.numbered_by_database)
        .map(|column| column.name)
        .collect()
}

/// `INSERT INTO table (columns) VALUES (placeholders)` for one row of every column, in
/// declaration order. A row that repeats one of its resource's rows (by SQLite's key) is
/// dropped, as the index rows of one resource may repeat.
pub fn insert_row(table: &Table, dialect: Dialect) -> String {
    let dialect = dialect.database();
    let columns = written_columns(table);
    let placeholders: Vec<String> = (1..=columns.len())
        .map(|n| match dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres | Dialect::Citus => format!("${n}"),
        })
        .collect();
    let on_conflict = if table.duplicate_key().is_some() && dialect == Dialect::Sqlite {
        " ON CONFLICT DO NOTHING"
    } else {
        ""
    };
    format!(
        "INSERT INTO {} ({}) VALUES ({}){on_conflict}",
        table.name,
        columns.join(", "),
        placeholders.join(", ")
    )
}
