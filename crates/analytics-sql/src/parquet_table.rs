//! The `parquet` virtual table module: `CREATE VIRTUAL TABLE t USING parquet('DIR')` makes the
//! dataset at `DIR` a read-only table. The columns are the view's; a scan reads the files named
//! by the dataset's manifest in order, only the columns the query uses.

use std::borrow::Cow;
use std::ffi::{CStr, CString, c_int};
use std::fs::File;
use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::temporal_conversions::{time64us_to_time, timestamp_us_to_datetime};
use arrow_array::types::{
    Decimal128Type, Int32Type, Int64Type, Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use rusqlite::ffi::{sqlite3_vtab, sqlite3_vtab_cursor};
use rusqlite::vtab::{
    Context, CreateVTab, Filters, IndexInfo, Module, VTab, VTabConnection, VTabCursor, VTabKind,
    dequote,
};
use rusqlite::{Connection, Error};
use serde_json::Value;

pub fn register(connection: &Connection) -> rusqlite::Result<()> {
    const MODULE: Module<'_, ParquetTable> = Module::read_only_module();
    connection.create_module(c"parquet", &MODULE, None)
}

fn module_error(message: impl Into<String>) -> Error {
    Error::ModuleError(message.into())
}

#[repr(C)]
struct ParquetTable {
    /// SQLite's part; must come first.
    base: sqlite3_vtab,
    schema: Schema,
    files: Vec<PathBuf>,
    rows: i64,
}

// SAFETY: rusqlite hands SQLite a pointer to `ParquetTable` as a `sqlite3_vtab`; it is
// `repr(C)` with that struct first, as the trait requires.
#[allow(unsafe_code)]
unsafe impl<'vtab> VTab<'vtab> for ParquetTable {
    type Aux = ();
    type Cursor = ParquetCursor<'vtab>;

    fn connect(
        _db: &mut VTabConnection,
        _aux: Option<&()>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, ParquetTable)> {
        let [dir] = args else {
            return Err(module_error("parquet('DIR') takes one directory"));
        };
        let dir =
            std::str::from_utf8(dir).map_err(|_| module_error("the directory is not UTF-8"))?;
        let dir = PathBuf::from(dequote(dir).as_ref());
        let table =
            analytics::parquet::dataset::table_of(&dir).map_err(|e| module_error(e.to_string()))?;
        let (schema, files) = (table.schema, table.files);
        let rows = i64::try_from(table.rows).unwrap_or(i64::MAX);
        let columns: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| {
                format!(
                    "\"{}\" {}",
                    f.name().replace('"', "\"\""),
                    sql_type(f.data_type())
                )
            })
            .collect();
        let declaration = CString::new(format!("CREATE TABLE x({})", columns.join(", ")))
            .map_err(|_| module_error("a column name holds a NUL"))?;
        Ok((
            Cow::Owned(declaration),
            ParquetTable {
                base: sqlite3_vtab::default(),
                schema,
                files,
                rows,
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        // No index: every scan reads every row, but only the columns used (bit 63 stands for
        // every column from the 64th on).
        let used = info.col_used();
        info.set_idx_str(&used.to_string());
        info.set_estimated_rows(self.rows.max(1));
        info.set_estimated_cost(self.rows.max(1) as f64);
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<ParquetCursor<'vtab>> {
        Ok(ParquetCursor {
            base: sqlite3_vtab_cursor::default(),
            table: self,
            slots: Vec::new(),
            projection: Vec::new(),
            next_file: 0,
            reader: None,
            batch: None,
            row: 0,
            rowid: 0,
        })
    }
}

/// `CREATE VIRTUAL TABLE` connects as to an existing table: the files are already there.
impl<'vtab> CreateVTab<'vtab> for ParquetTable {
    const KIND: VTabKind = VTabKind::Default;
}

fn sql_type(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Boolean | DataType::Int32 | DataType::Int64 => "INTEGER",
        DataType::Decimal128(..) => "REAL",
        DataType::Binary => "BLOB",
        _ => "TEXT",
    }
}

#[repr(C)]
struct ParquetCursor<'vtab> {
    /// SQLite's part; must come first.
    base: sqlite3_vtab_cursor,
    table: &'vtab ParquetTable,
    /// For each column of the table, where it is in the batches read (`None`: not read).
    slots: Vec<Option<usize>>,
    /// The columns read, in the file's order.
    projection: Vec<usize>,
    next_file: usize,
    reader: Option<ParquetRecordBatchReader>,
    batch: Option<RecordBatch>,
    row: usize,
    rowid: i64,
}

impl ParquetCursor<'_> {
    /// Moves to the next row, reading the next batch or file as needed; `batch` is `None` at
    /// the end.
    fn advance(&mut self) -> rusqlite::Result<()> {
        loop {
            if let Some(batch) = &self.batch
                && self.row < batch.num_rows()
            {
                return Ok(());
            }
            self.batch = None;
            self.row = 0;
            if let Some(reader) = &mut self.reader {
                match reader.next() {
                    Some(Ok(batch)) => {
                        self.batch = Some(batch);
                        continue;
                    }
                    Some(Err(error)) => return Err(module_error(error.to_string())),
                    None => self.reader = None,
                }
            }
            let Some(file) = self.table.files.get(self.next_file) else {
                return Ok(());
            };
            self.next_file += 1;
            let opened =
                File::open(file).map_err(|e| module_error(format!("{}: {e}", file.display())))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(opened)
                .map_err(|e| module_error(format!("{}: {e}", file.display())))?;
            let mask =
                ProjectionMask::roots(builder.parquet_schema(), self.projection.iter().copied());
            self.reader = Some(
                builder
                    .with_projection(mask)
                    .build()
                    .map_err(|e| module_error(format!("{}: {e}", file.display())))?,
            );
        }
    }
}

// SAFETY: rusqlite hands SQLite a pointer to `ParquetCursor` as a `sqlite3_vtab_cursor`; it
// is `repr(C)` with that struct first, as the trait requires.
#[allow(unsafe_code)]
unsafe impl VTabCursor for ParquetCursor<'_> {
    fn filter(
        &mut self,
        _idx_num: c_int,
        idx_str: Option<&str>,
        _args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        let width = self.table.schema.fields().len();
        let used: u64 = idx_str.and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
        self.projection = (0..width)
            .filter(|&column| used & (1u64 << column.min(63)) != 0)
            .collect();
        self.slots = vec![None; width];
        for (slot, &column) in self.projection.iter().enumerate() {
            self.slots[column] = Some(slot);
        }
        self.next_file = 0;
        self.reader = None;
        self.batch = None;
        self.row = 0;
        self.rowid = 0;
        self.advance()
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.row += 1;
        self.rowid += 1;
        self.advance()
    }

    fn eof(&self) -> bool {
        self.batch.is_none()
    }

    fn column(&self, context: &mut Context, column: c_int) -> rusqlite::Result<()> {
        let slot = usize::try_from(column)
            .ok()
            .and_then(|c| self.slots.get(c).copied().flatten());
        let (Some(batch), Some(slot)) = (&self.batch, slot) else {
            return context.set_result(rusqlite::types::Null);
        };
        set_value(context, batch.column(slot).as_ref(), self.row)
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.rowid)
    }
}

/// A value of the types the dataset writer makes (`analytics::parquet`), as SQLite takes it.
fn set_value(context: &mut Context, array: &dyn Array, row: usize) -> rusqlite::Result<()> {
    if array.is_null(row) {
        return context.set_result(rusqlite::types::Null);
    }
    match array.data_type() {
        DataType::Boolean => context.set_result(array.as_boolean().value(row)),
        DataType::Int32 => context.set_result(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => context.set_result(array.as_primitive::<Int64Type>().value(row)),
        DataType::Decimal128(_, scale) => context.set_result(decimal(array, row, *scale)),
        DataType::Utf8 => context.set_result(array.as_string::<i32>().value(row)),
        DataType::Binary => context.set_result(array.as_binary::<i32>().value(row)),
        DataType::List(_) => context.set_result(json_value(array, row).to_string()),
        _ => match json_value(array, row) {
            Value::String(text) => context.set_result(&text),
            other => context.set_result(other.to_string()),
        },
    }
}

/// A decimal as SQL reads it: a double.
fn decimal(array: &dyn Array, row: usize, scale: i8) -> f64 {
    let value = array.as_primitive::<Decimal128Type>().value(row);
    value as f64 / 10f64.powi(i32::from(scale))
}

/// A value as JSON: for list columns (a JSON array) and the temporal types (text).
fn json_value(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int32 => Value::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::Decimal128(_, scale) => serde_json::Number::from_f64(decimal(array, row, *scale))
            .map_or(Value::Null, Value::Number),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_owned()),
        DataType::Binary => Value::Array(
            array
                .as_binary::<i32>()
                .value(row)
                .iter()
                .map(|b| Value::from(*b))
                .collect(),
        ),
        DataType::Timestamp(..) => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
            timestamp_us_to_datetime(micros).map_or(Value::Null, |at| {
                Value::String(at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            })
        }
        DataType::Time64(_) => {
            let micros = array.as_primitive::<Time64MicrosecondType>().value(row);
            time64us_to_time(micros).map_or(Value::Null, |at| {
                Value::String(at.format("%H:%M:%S%.6f").to_string())
            })
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(row);
            Value::Array((0..list.len()).map(|at| json_value(&list, at)).collect())
        }
        _ => Value::Null,
    }
}
