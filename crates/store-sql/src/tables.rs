//! The schema, declared once: every table's columns (with their type on each database), keys
//! and indexes. The index tables' row inserts (`index_rows`), SQLite's row inserts and
//! deferrable indexes, PostgreSQL's row buffers and `COPY`, and the schema text (`ddl`) follow
//! from here. Existing databases reach this schema through each backend's numbered migrations;
//! each backend's tests check that a database migrated from nothing has exactly this schema.
//!
//! The tables carry the same names and columns on both databases, so a search renders the same
//! way on both. What differs: PostgreSQL's index tables have no primary key (its tables are
//! heaps, so a key would not cluster rows by resource; a `(rid, ...)` index serves deletes),
//! and its lookup and value indexes mostly end with `rid`, which SQLite appends to every index
//! by itself, so a lookup returns rows in resource order.

use search::query::IndexTable;

/// What a column holds, and so its type on each database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// A 64-bit integer: `INTEGER`, `bigint`.
    Integer,
    /// A small code (`method`, a job's state): `INTEGER`, `smallint`.
    SmallInteger,
    /// A 32-bit count (a job's attempts): `INTEGER`, `integer`.
    Integer32,
    /// A flag: `INTEGER` (0 or 1), `boolean`.
    Boolean,
    /// A double: `REAL`, `double precision`.
    Real,
    /// Text compared in byte order: `TEXT`, `text COLLATE "C"`. String and uri searches use
    /// byte-order prefix ranges, which only hold under byte order.
    Text,
    /// Text never compared, only read back: `TEXT`, `text` in the database's collation.
    UncomparedText,
    /// Bytes (a resource's stored content): `BLOB`, `bytea` compressed with lz4, which costs
    /// far less CPU on ingest than PostgreSQL's default pglz.
    Bytes,
}

/// One column of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub column_type: ColumnType,
    pub nullable: bool,
    /// Numbered by the database on insert, in insert order (`version.seq`): SQLite's row id,
    /// a PostgreSQL identity column.
    pub numbered_by_database: bool,
    /// The entry's place among its resource's rows of the table (`seq`): rows that are
    /// otherwise equal stay apart.
    pub place_among_rows: bool,
    /// The value of rows written before the column was added (SQL text).
    pub default: Option<&'static str>,
}

impl Column {
    const fn new(name: &'static str, column_type: ColumnType) -> Column {
        Column {
            name,
            column_type,
            nullable: false,
            numbered_by_database: false,
            place_among_rows: false,
            default: None,
        }
    }

    /// Rows written before the column was added have `value`.
    const fn defaulting(self, value: &'static str) -> Column {
        Column {
            default: Some(value),
            ..self
        }
    }

    const fn integer(name: &'static str) -> Column {
        Column::new(name, ColumnType::Integer)
    }

    const fn real(name: &'static str) -> Column {
        Column::new(name, ColumnType::Real)
    }

    const fn text(name: &'static str) -> Column {
        Column::new(name, ColumnType::Text)
    }

    const fn nullable(self) -> Column {
        Column {
            nullable: true,
            ..self
        }
    }

    /// The `seq` column of an index table whose entries may repeat.
    const fn place() -> Column {
        Column {
            place_among_rows: true,
            ..Column::integer("seq")
        }
    }
}

/// Which databases have an index or a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDatabases {
    Both,
    /// An index: PostgreSQL's stand-in for an index table's SQLite primary key, which there
    /// clusters a resource's rows together and serves deletes and `:missing`. A table: what
    /// only PostgreSQL needs (the change log, which SQLite's single writer makes unnecessary).
    PostgresOnly,
}

/// A secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub unique: bool,
    /// The condition of a partial index.
    pub only_where: Option<&'static str>,
    pub on: OnDatabases,
    /// PostgreSQL's copy ends with `rid`, so its rows come in resource order.
    pub postgres_ends_with_rid: bool,
    /// Only searches, history and export read it: a bulk load into an empty SQLite store drops
    /// it and builds it at the end. The write path's own lookups are not deferrable.
    pub deferrable: bool,
}

impl Index {
    const fn new(name: &'static str, columns: &'static [&'static str]) -> Index {
        Index {
            name,
            columns,
            unique: false,
            only_where: None,
            on: OnDatabases::Both,
            postgres_ends_with_rid: false,
            deferrable: false,
        }
    }

    const fn unique(self) -> Index {
        Index {
            unique: true,
            ..self
        }
    }

    const fn only_where(self, condition: &'static str) -> Index {
        Index {
            only_where: Some(condition),
            ..self
        }
    }

    const fn postgres_only(self) -> Index {
        Index {
            on: OnDatabases::PostgresOnly,
            ..self
        }
    }

    const fn ends_with_rid_on_postgres(self) -> Index {
        Index {
            postgres_ends_with_rid: true,
            ..self
        }
    }

    const fn deferrable(self) -> Index {
        Index {
            deferrable: true,
            ..self
        }
    }

    /// Whether `dialect`'s schema has this index.
    pub fn exists_on(&self, dialect: crate::Dialect) -> bool {
        self.on == OnDatabases::Both || dialect.database() == crate::Dialect::Postgres
    }
}

/// A table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// The primary key on SQLite.
    pub sqlite_key: &'static [&'static str],
    /// The primary key on PostgreSQL, when it has one.
    pub postgres_key: Option<&'static [&'static str]>,
    /// SQLite keeps the rows in key order (`WITHOUT ROWID`): an index table's rows are small,
    /// and its key doubles as the per-resource index that updates and deletes need.
    pub sqlite_clustered: bool,
    pub indexes: &'static [Index],
    /// Which databases have the table.
    pub on: OnDatabases,
    /// Statements PostgreSQL's schema adds after the table and its indexes (a trigger).
    pub postgres_extra: &'static [&'static str],
}

impl Table {
    /// Whether `dialect`'s schema has this table.
    pub fn exists_on(&self, dialect: crate::Dialect) -> bool {
        self.on == OnDatabases::Both || dialect.database() == crate::Dialect::Postgres
    }

    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|column| column.name == name)
    }

    /// The positions of the SQLite key's columns other than `rid`: what makes two of one
    /// resource's rows the same row. None when the key numbers the rows (`seq`), so they never are.
    pub(crate) fn duplicate_key(&self) -> Option<Vec<usize>> {
        let mut positions = Vec::new();
        for name in self.sqlite_key.iter().filter(|name| **name != "rid") {
            let position = self
                .columns
                .iter()
                .position(|column| column.name == *name)
                .expect("a key names the table's columns");
            if self.columns[position].place_among_rows {
                return None;
            }
            positions.push(position);
        }
        Some(positions)
    }
}

/// The sequence PostgreSQL takes resource row keys from, in blocks of its increment, so a bulk
/// load assigns row keys without a round trip per resource (SQLite's come from its row id).
pub const ROW_KEY_SEQUENCE: (&str, i64) = ("resource_rid", 1024);

use Column as C;

/// The current version of every resource.
pub const RESOURCE: Table = Table {
    name: "resource",
    columns: &[
        C::integer("rid"),
        C::text("type"),
        C::text("id"),
        C::integer("version"),
        C::integer("last_updated"),
        C::new("method", ColumnType::SmallInteger),
        C::integer("patient_key"),
        C::integer("content_hash"),
        C::text("custodian").nullable(),
        C::integer("sensitivity").defaulting("0"),
    ],
    sqlite_key: &["rid"],
    postgres_key: Some(&["rid"]),
    sqlite_clustered: false,
    on: OnDatabases::Both,
    postgres_extra: &[],
    indexes: &[
        Index::new("resource_type_id", &["type", "id"]).unique(),
        Index::new("resource_type_rid", &["type", "rid"]).deferrable(),
        // A patient's resources in resource order, on PostgreSQL. SQLite's
        // `(patient_key, type)` below serves the same look-ups (its indexes end with the row
        // id, but a patient's few thousand rows sort at once), and each index keyed by patient
        // costs a page per resident a batch of writes touches (BENCHMARKS.md, "Fewer pages
        // per reading").
        Index::new("resource_patient_key", &["patient_key"])
            .only_where("patient_key <> 0")
            .ends_with_rid_on_postgres()
            .postgres_only()
            .deferrable(),
        // A patient's resources of one type: the access rule's look-up of a resident's
        // consents beside each of their records.
        Index::new("resource_patient_type", &["patient_key", "type"])
            .only_where("patient_key <> 0"),
    ],
};

/// Every version of every resource, with its content.
pub const VERSION: Table = Table {
    name: "version",
    columns: &[
        Column {
            numbered_by_database: true,
            ..C::integer("seq")
        },
        C::integer("rid"),
        C::integer("version"),
        C::text("type"),
        C::integer("last_updated"),
        C::integer("superseded").nullable(),
        C::new("method", ColumnType::SmallInteger),
        C::integer("patient_key"),
        C::integer("content_hash"),
        C::new("content", ColumnType::Bytes).nullable(),
        C::text("custodian").nullable(),
        C::integer("sensitivity").defaulting("0"),
    ],
    sqlite_key: &["seq"],
    postgres_key: Some(&["seq"]),
    sqlite_clustered: false,
    on: OnDatabases::Both,
    postgres_extra: &[],
    indexes: &[
        Index::new("version_rid_version", &["rid", "version"]).unique(),
        Index::new("version_type_seq", &["type", "seq"]).deferrable(),
    ],
};

/// Named checkpoints of long-running jobs.
pub const CHECKPOINT: Table = Table {
    name: "checkpoint",
    columns: &[C::text("name"), C::new("value", ColumnType::UncomparedText)],
    sqlite_key: &["name"],
    postgres_key: Some(&["name"]),
    sqlite_clustered: false,
    on: OnDatabases::Both,
    postgres_extra: &[],
    indexes: &[],
};

const fn clustered_by_resource(
    name: &'static str,
    columns: &'static [Column],
    sqlite_key: &'static [&'static str],
    indexes: &'static [Index],
) -> Table {
    Table {
        name,
        columns,
        sqlite_key,
        postgres_key: None,
        sqlite_clustered: true,
        on: OnDatabases::Both,
        postgres_extra: &[],
        indexes,
    }
}

pub const TOKEN: Table = clustered_by_resource(
    "idx_token",
    &[
        C::integer("rid"),
        C::integer("param"),
        C::integer("h_code"),
        C::integer("h_system_code"),
        C::integer("h_system").nullable(),
        C::text("code"),
        C::integer("patient_key"),
    ],
    &["rid", "h_system_code"],
    &[
        Index::new("idx_token_rid", &["rid", "param"]).postgres_only(),
        Index::new("idx_token_code", &["h_code"])
            .ends_with_rid_on_postgres()
            .deferrable(),
        // Not deferred: the conditional references of transaction Bundles
        // (`Practitioner?identifier=system|value`) search it while a load runs.
        Index::new("idx_token_system_code", &["h_system_code"]).ends_with_rid_on_postgres(),
        Index::new("idx_token_system", &["h_system"])
            .only_where("h_system IS NOT NULL")
            .ends_with_rid_on_postgres()
            .deferrable(),
    ],
);

/// Keyed by value (`normalized` before `exact`): a walk along names keeps each resource once,
/// at its smallest matching value, by looking at the resource's first match.
pub const STRING: Table = clustered_by_resource(
    "idx_string",
    &[
        C::integer("rid"),
        C::integer("param"),
        C::text("normalized"),
        C::text("exact"),
        C::integer("patient_key"),
    ],
    &["rid", "param", "normalized", "exact"],
    &[
        Index::new("idx_string_rid", &["rid", "param", "normalized"]).postgres_only(),
        Index::new("idx_string_normalized", &["param", "normalized"])
            .ends_with_rid_on_postgres()
            .deferrable(),
    ],
);

pub const DATE: Table = clustered_by_resource(
    "idx_date",
    &[
        C::integer("rid"),
        C::integer("param"),
        C::integer("low"),
        C::integer("high"),
        C::integer("patient_key"),
    ],
    &["rid", "param", "low", "high"],
    &[
        Index::new("idx_date_rid", &["rid", "param"]).postgres_only(),
        Index::new("idx_date_low", &["param", "low"])
            .ends_with_rid_on_postgres()
            .deferrable(),
        Index::new("idx_date_high", &["param", "high"])
            .ends_with_rid_on_postgres()
            .deferrable(),
        // The few rows that span more than a day (periods, dates of a month or a year): a walk
        // along `high` bounded by another filter of a single-valued parameter reads the rest
        // only up to that bound plus a day, and these apart (store-sql `walk`).
        Index::new("idx_date_wide", &["param", "high"])
            .ends_with_rid_on_postgres()
            .only_where(WIDE_DATE)
            .deferrable(),
    ],
);

/// The longest span of a date row the walks count as narrow: a day, in microseconds (a date
/// without a time spans a day less a microsecond).
pub const NARROW_DATE_SPAN: i64 = 86_400_000_000;

/// The condition of `idx_date_wide`: a row spanning more than [`NARROW_DATE_SPAN`]. Written so
/// no open end (`i64::MIN`/`MAX`) overflows, and stated in a query exactly so (both databases
/// use a partial index only when the query's own condition matches it).
pub const WIDE_DATE: &str = "low < high - 86400000000";

pub const NUMBER: Table = clustered_by_resource(
    "idx_number",
    &[
        C::integer("rid"),
        C::integer("param"),
        C::real("value"),
        C::real("low"),
        C::real("high"),
        C::integer("patient_key"),
    ],
    &["rid", "param", "low", "high"],
    &[
        Index::new("idx_number_rid", &["rid", "param"]).postgres_only(),
        // Number and quantity comparisons are on `value` (`low` and `high` are the stored
        // value's precision, or a Range's bounds): keyed by `low`, nothing bounded the read
        // (`value-quantity=70`: 641 ms for a page at 10x Synthea).
        Index::new("idx_number_value", &["param", "value"]).deferrable(),
    ],
);

pub const QUANTITY: Table = clustered_by_resource(
    "idx_quantity",
    &[
        C::integer("rid"),
        C::integer("param"),
        C::text("system").nullable(),
        C::text("code").nullable(),
        C::real("value"),
        C::real("low"),
        C::real("high"),
        C::text("canonical_code").nullable(),
        C::real("canonical_value").nullable(),
        C::real("canonical_low").nullable(),
        C::real("canonical_high").nullable(),
        C::integer("patient_key"),
        C::place(),
    ],
    &["rid", "param", "seq"],
    &[
        Index::new("idx_quantity_rid", &["rid", "param"]).postgres_only(),
        Index::new("idx_quantity_value", &["param", "value"]).deferrable(),
        Index::new(
            "idx_quantity_canonical",
            &["param", "canonical_code", "canonical_value"],
        )
        .only_where("canonical_code IS NOT NULL")
        .deferrable(),
    ],
);

pub const REFERENCE: Table = clustered_by_resource(
    "idx_reference",
    &[
        C::integer("rid"),
        C::integer("param"),
        C::text("target_type").nullable(),
        C::text("target_id").nullable(),
        C::text("url").nullable(),
        C::text("version").nullable(),
        C::integer("patient_key"),
        C::place(),
    ],
    &["rid", "param", "seq"],
    &[
        Index::new("idx_reference_rid", &["rid", "param"]).postgres_only(),
        // Keyed by target first: a search always names the target, and a resident's many
        // references (a reading's subject, patient and performer, its trail's patient) share
        // a leaf, where keyed by parameter each took a page of its own at a random place.
        Index::new(
            "idx_reference_target",
            &["target_id", "param", "target_type"],
        )
        .only_where("target_id IS NOT NULL")
        .ends_with_rid_on_postgres()
        .deferrable(),
        Index::new("idx_reference_url", &["param", "url"])
            .only_where("url IS NOT NULL")
            .deferrable(),
    ],
);

pub const URI: Table = clustered_by_resource(
    "idx_uri",
    &[
        C::integer("rid"),
        C::integer("param"),
        C::text("uri"),
        C::integer("patient_key"),
    ],
    &["rid", "param", "uri"],
    &[
        Index::new("idx_uri_rid", &["rid", "param"]).postgres_only(),
        Index::new("idx_uri_value", &["param", "uri"]).deferrable(),
    ],
);

pub const COMPOSITE: Table = clustered_by_resource(
    "idx_composite",
    &[
        C::integer("rid"),
        C::integer("param"),
        C::integer("first_h_code"),
        C::integer("first_h_system_code"),
        C::integer("second_h_code").nullable(),
        C::integer("second_h_system_code").nullable(),
        C::real("second_value").nullable(),
        C::real("second_low").nullable(),
        C::real("second_high").nullable(),
        C::text("second_text").nullable(),
        C::integer("patient_key"),
        C::place(),
    ],
    &["rid", "param", "seq"],
    &[
        Index::new("idx_composite_rid", &["rid", "param"]).postgres_only(),
        Index::new("idx_composite_first_code", &["first_h_code"])
            .ends_with_rid_on_postgres()
            .deferrable(),
        Index::new("idx_composite_first_system_code", &["first_h_system_code"])
            .ends_with_rid_on_postgres()
            .deferrable(),
    ],
);

/// Durable jobs (exports, reindexing): claimed with a lease, found by state and due time.
pub const JOB: Table = Table {
    name: "job",
    columns: &[
        C::text("id"),
        C::new("kind", ColumnType::UncomparedText),
        C::new("state", ColumnType::SmallInteger),
        C::new("params", ColumnType::UncomparedText),
        C::new("progress", ColumnType::UncomparedText).nullable(),
        C::new("result", ColumnType::UncomparedText).nullable(),
        C::new("error", ColumnType::UncomparedText).nullable(),
        C::new("attempts", ColumnType::Integer32),
        C::new("max_attempts", ColumnType::Integer32),
        C::integer("run_after"),
        C::new("lease_owner", ColumnType::UncomparedText).nullable(),
        C::integer("lease_until").nullable(),
        C::new("cancel_requested", ColumnType::Boolean),
        C::integer("created"),
        C::integer("updated"),
    ],
    sqlite_key: &["id"],
    postgres_key: Some(&["id"]),
    sqlite_clustered: false,
    on: OnDatabases::Both,
    postgres_extra: &[],
    indexes: &[Index::new("job_due", &["state", "run_after"])],
};

/// PostgreSQL's log of committed changes: a row per version written (by a trigger, in the
/// writing transaction), numbered in the order it became visible by the reader of the log
/// (`position`, set after the commit), since the versions' own numbers are taken at insert and
/// commits finish in another order. SQLite's single writer commits in `version.seq` order, so
/// it reads its log from the versions.
pub const CHANGE: Table = Table {
    name: "change",
    columns: &[C::integer("seq"), C::integer("position").nullable()],
    sqlite_key: &["seq"],
    postgres_key: Some(&["seq"]),
    sqlite_clustered: false,
    on: OnDatabases::PostgresOnly,
    postgres_extra: &[
        "CREATE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN INSERT INTO change (seq) SELECT seq FROM written; RETURN NULL; END $$",
        "CREATE TRIGGER version_change AFTER INSERT ON version REFERENCING NEW TABLE AS written \
         FOR EACH STATEMENT EXECUTE FUNCTION record_change()",
    ],
    indexes: &[
        Index::new("change_position", &["position"])
            .unique()
            .only_where("position IS NOT NULL"),
        Index::new("change_unsequenced", &["seq"]).only_where("position IS NULL"),
    ],
};

/// The verifiable log's leaves (the `ledger` crate): each leaf's input, numbered from 0 in the
/// order appended, and the version it records, found by the version.
pub const LEDGER_LEAF: Table = Table {
    name: "ledger_leaf",
    columns: &[
        C::integer("idx"),
        C::integer("rid"),
        C::text("type"),
        C::text("id"),
        C::integer("version"),
        C::new("input", ColumnType::Bytes),
    ],
    sqlite_key: &["idx"],
    postgres_key: Some(&["idx"]),
    sqlite_clustered: false,
    on: OnDatabases::Both,
    postgres_extra: &[],
    indexes: &[Index::new("ledger_leaf_version", &["rid", "version"]).unique()],
};

/// The log's tree in tiles of 256 hashes (`ledger::tree`), rewritten whole as they grow.
pub const LEDGER_TILE: Table = Table {
    name: "ledger_tile",
    columns: &[
        C::integer("level"),
        C::integer("idx"),
        C::new("hashes", ColumnType::Bytes),
    ],
    sqlite_key: &["level", "idx"],
    postgres_key: Some(&["level", "idx"]),
    sqlite_clustered: false,
    on: OnDatabases::Both,
    postgres_extra: &[],
    indexes: &[],
};

/// The index tables, one per parameter type, in the order their rows are written.
pub const INDEX_TABLES: [&Table; 8] = [
    &TOKEN, &STRING, &DATE, &NUMBER, &QUANTITY, &REFERENCE, &URI, &COMPOSITE,
];

/// Every table, in the order the schema creates them.
pub const TABLES: [&Table; 15] = [
    &RESOURCE,
    &VERSION,
    &TOKEN,
    &STRING,
    &DATE,
    &NUMBER,
    &QUANTITY,
    &REFERENCE,
    &URI,
    &COMPOSITE,
    &CHECKPOINT,
    &JOB,
    &CHANGE,
    &LEDGER_LEAF,
    &LEDGER_TILE,
];

/// The table holding rows of one parameter type.
pub fn index_table(table: IndexTable) -> &'static Table {
    match table {
        IndexTable::Token => &TOKEN,
        IndexTable::String => &STRING,
        IndexTable::Date => &DATE,
        IndexTable::Number => &NUMBER,
        IndexTable::Quantity => &QUANTITY,
        IndexTable::Reference => &REFERENCE,
        IndexTable::Uri => &URI,
        IndexTable::Composite => &COMPOSITE,
    }
}
