//! A view's rows written as one Parquet file (the `parquet` feature): gathered into Arrow
//! arrays of [`BATCH_ROWS`] rows, so memory stays bounded whatever the number of rows, and
//! encoded with zstd.
//!
//! The schema comes from the view's columns, each nullable, in the view's order, with the FHIR
//! type in the field's metadata (`fhir.type`: the type the view declares, else the inferred
//! output type's name, absent when unknown) and the view's resource (`fhir.resource`) and name
//! (`fhir.view`) in the schema's:
//!
//! | column type | Arrow type |
//! |---|---|
//! | boolean | `Boolean` |
//! | integer | `Int32` |
//! | integer64 | `Int64` |
//! | decimal | `Decimal128(38, 18)` |
//! | string (code, uri, id...) | `Utf8` |
//! | base64Binary | `Binary`, decoded |
//! | date, dateTime | `Utf8`, as written |
//! | instant | `Timestamp(Microsecond, "UTC")` |
//! | time | `Time64(Microsecond)` |
//! | complex types, quantities | `Utf8`, the JSON text |
//! | `collection: true` | `List` of the above |
//!
//! A native type is used where the FHIR values of a type fit it (all of them for instants and
//! times, all but the rarest for decimals), and each value is written exactly or refused, never
//! rounded:
//!
//! - **Decimals** are `Decimal128(38, 18)`, not `Float64`: a reader must get the value that was
//!   recorded, and a double turns `0.1` into `0.1000000000000000055...` and keeps only 15 to 17
//!   digits. Every decimal with at most 20 digits before the point and 18 after is exact (a
//!   value with more is refused). What is lost is the written precision: `1.50` and `1.5` read
//!   back as the same number, since a Parquet column has one scale for all its values.
//! - **Dates and dateTimes stay text.** FHIR allows `1970` or `2020-03` for both, and a date, or
//!   a dateTime to the day, has no time zone: a `Date32` or a UTC timestamp would invent a day,
//!   an hour and a zone the record does not have. Each value is checked to be a date or
//!   dateTime; where a reader knows its data are complete it casts (`CAST(x AS TIMESTAMPTZ)`).
//!   Instants always have seconds and a zone, so they are timestamps; times always have seconds,
//!   so they are `Time64`. Digits past the microsecond must be zeros.
//! - A column whose type is unknown (a path the model cannot type, with no `type` declared) is
//!   text, and takes what the path found: a number or a boolean there is written as its JSON text.
//!
//! A value that does not fit its column is a [`WriteError::Value`]: the whole row is refused,
//! none of its values written, and the writer goes on with the next one.

pub mod dataset;
mod value;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::errors::ParquetError;
use ::parquet::file::properties::WriterProperties;
use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Decimal128Builder, Int32Builder, Int64Builder,
    NullBufferBuilder, OffsetBufferBuilder, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, RecordBatch};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use serde_json::Value;

use crate::{Column, ColumnType, Row, View};
use value::{Cell, DECIMAL_PRECISION, DECIMAL_SCALE};

/// Rows gathered into Arrow arrays before they are handed to the encoder.
pub const BATCH_ROWS: usize = 8_192;

/// A row group is closed when its encoded size reaches this, or at the encoder's row limit
/// (1,048,576 rows): what the encoder keeps in memory before writing it out.
const ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// The time zone of `instant` columns.
const UTC: &str = "UTC";

/// Why a row or the file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A value does not fit its column: the data's fault, or the caller's when the row is not
    /// one of the view's. `row` counts the rows written before it, from 0. The row is not
    /// written and the writer can go on.
    #[error("row {row}, column {column}: {message}")]
    Value {
        row: u64,
        column: String,
        message: String,
    },
    /// The row has a different number of values than the view has columns.
    #[error("row {row} has {values} values for {columns} columns")]
    RowWidth {
        row: u64,
        values: usize,
        columns: usize,
    },
    /// The output could not be written; the file is incomplete.
    #[error("writing the Parquet file: {0}")]
    Io(#[from] std::io::Error),
    /// The encoder refused what this module built: a fault here, not in the data. The file is
    /// incomplete.
    #[error("encoding Parquet: {0}")]
    Internal(String),
}

impl From<arrow_schema::ArrowError> for WriteError {
    fn from(error: arrow_schema::ArrowError) -> WriteError {
        WriteError::Internal(error.to_string())
    }
}

/// The first error the output gave, shared between the writer and the output it hands to the
/// encoder.
type Failure = Arc<Mutex<Option<std::io::Error>>>;

/// The caller's output as the encoder sees it, keeping the first error it gives: the encoder
/// buffers what it writes and reports a failed last flush as text, and a full disk must reach
/// the caller as the I/O error it is, not as a fault of the encoder.
struct Output<W> {
    out: W,
    failure: Failure,
}

impl<W: Write> Output<W> {
    fn keep(&self, error: std::io::Error) -> std::io::Error {
        if error.kind() == std::io::ErrorKind::Interrupted {
            return error;
        }
        let told = std::io::Error::new(error.kind(), error.to_string());
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        failure.get_or_insert(error);
        told
    }
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf).map_err(|e| self.keep(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush().map_err(|e| self.keep(e))
    }
}

/// What the encoder's error means: the output's own error when the output failed, else a
/// fault here.
fn encoder_error(error: ParquetError, failure: &Failure) -> WriteError {
    let mut failure = failure.lock().unwrap_or_else(|p| p.into_inner());
    match failure.take() {
        Some(io) => WriteError::Io(io),
        None => WriteError::Internal(error.to_string()),
    }
}

/// The Arrow schema of a view's Parquet file.
pub fn schema(view: &View) -> Schema {
    let fields: Vec<Field> = view.columns().iter().map(field).collect();
    let mut metadata = HashMap::from([("fhir.resource".to_string(), view.resource().to_string())]);
    if let Some(name) = view.name() {
        metadata.insert("fhir.view".to_string(), name.to_string());
    }
    Schema::new_with_metadata(fields, metadata)
}

/// A column's field: its Arrow type, nullable, and its FHIR type in the metadata when it is
/// known.
fn field(column: &Column) -> Field {
    let data_type = match list_item(column) {
        Some(item) => DataType::List(item),
        None => element_type(column.column_type()),
    };
    let fhir_type = match column.fhir_type() {
        Some(declared) => Some(declared),
        None => column.is_type_known().then(|| column.column_type().name()),
    };
    let metadata = fhir_type.map(|name| ("fhir.type".to_string(), name.to_string()));
    Field::new(column.name(), data_type, true)
        .with_metadata(metadata.into_iter().collect::<HashMap<_, _>>())
}

/// The item field of a collection column's list; `None` for a column of single values.
fn list_item(column: &Column) -> Option<FieldRef> {
    column.is_collection().then(|| {
        Arc::new(Field::new_list_field(
            element_type(column.column_type()),
            true,
        ))
    })
}

/// The Arrow type of one value of a column type.
fn element_type(column_type: ColumnType) -> DataType {
    match column_type {
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Integer => DataType::Int32,
        ColumnType::Integer64 => DataType::Int64,
        ColumnType::Decimal => DataType::Decimal128(DECIMAL_PRECISION, DECIMAL_SCALE),
        ColumnType::String | ColumnType::Date | ColumnType::DateTime | ColumnType::Json => {
            DataType::Utf8
        }
        ColumnType::Binary => DataType::Binary,
        ColumnType::Instant => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        ColumnType::Time => DataType::Time64(TimeUnit::Microsecond),
    }
}

/// How every file is encoded: zstd, row groups of [`ROW_GROUP_BYTES`].
fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .build()
}

/// Writes a view's rows to `out` as one Parquet file, as [`crate::output::RowWriter`] writes
/// them as text: made with the view, given its rows one at a time, finished once.
pub struct ParquetWriter<W: Write + Send> {
    columns: Vec<ColumnBuilder>,
    schema: SchemaRef,
    encoder: ArrowWriter<Output<W>>,
    failure: Failure,
    /// Rows in the builders, not yet handed to the encoder.
    gathered: usize,
    rows: u64,
}

impl<W: Write + Send> ParquetWriter<W> {
    /// Starts the file (its magic number is written at once).
    pub fn new(view: &View, out: W) -> Result<ParquetWriter<W>, WriteError> {
        let schema = Arc::new(schema(view));
        let properties = properties();
        let failure = Failure::default();
        let out = Output {
            out,
            failure: Arc::clone(&failure),
        };
        let encoder = ArrowWriter::try_new(out, Arc::clone(&schema), Some(properties))
            .map_err(|e| encoder_error(e, &failure))?;
        Ok(ParquetWriter {
            columns: view.columns().iter().map(ColumnBuilder::new).collect(),
            schema,
            encoder,
            failure,
            gathered: 0,
            rows: 0,
        })
    }

    /// Adds a row, or refuses it whole when a value does not fit its column.
    pub fn write(&mut self, row: &Row) -> Result<(), WriteError> {
        if row.len() != self.columns.len() {
            return Err(WriteError::RowWidth {
                row: self.rows,
                values: row.len(),
                columns: self.columns.len(),
            });
        }
        // Every value is converted before any is added, so a refused row leaves no trace.
        let mut converted = Vec::with_capacity(row.len());
        for (column, value) in self.columns.iter().zip(row) {
            converted.push(column.convert(value).map_err(|message| WriteError::Value {
                row: self.rows,
                column: column.name.clone(),
                message,
            })?);
        }
        for (column, value) in self.columns.iter_mut().zip(converted) {
            column.append(value);
        }
        self.rows += 1;
        self.gathered += 1;
        if self.gathered == BATCH_ROWS {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Ends the file (the last rows, the footer); answers the number of rows and the writer.
    pub fn finish(mut self) -> Result<(u64, W), WriteError> {
        self.hand_over()?;
        let failure = self.failure;
        let mut output = self
            .encoder
            .into_inner()
            .map_err(|e| encoder_error(e, &failure))?;
        output.flush()?;
        Ok((self.rows, output.out))
    }

    /// Hands the gathered rows to the encoder as one record batch.
    fn hand_over(&mut self) -> Result<(), WriteError> {
        if self.gathered == 0 {
            return Ok(());
        }
        let arrays = self
            .columns
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect::<Result<Vec<ArrayRef>, WriteError>>()?;
        self.gathered = 0;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), arrays)?;
        self.encoder
            .write(&batch)
            .map_err(|e| encoder_error(e, &self.failure))
    }
}

/// A column's value converted for its builder.
enum Converted<'r> {
    One(Cell<'r>),
    /// A collection's values; `None` for a null list.
    Many(Option<Vec<Cell<'r>>>),
}

/// One column's values gathered for the next batch.
struct ColumnBuilder {
    name: String,
    column_type: ColumnType,
    type_known: bool,
    values: Values,
    /// For a collection column: where each row's list ends in `values`, and which are null.
    list: Option<ListParts>,
}

struct ListParts {
    item: FieldRef,
    offsets: OffsetBufferBuilder<i32>,
    validity: NullBufferBuilder,
}

impl ColumnBuilder {
    fn new(column: &Column) -> ColumnBuilder {
        ColumnBuilder {
            name: column.name().to_string(),
            column_type: column.column_type(),
            type_known: column.is_type_known(),
            values: Values::new(column.column_type()),
            list: list_item(column).map(|item| ListParts {
                item,
                offsets: OffsetBufferBuilder::new(BATCH_ROWS),
                validity: NullBufferBuilder::new(BATCH_ROWS),
            }),
        }
    }

    fn convert<'r>(&self, value: &'r Value) -> Result<Converted<'r>, String> {
        let cell = |value| value::cell(self.column_type, self.type_known, value);
        if self.list.is_none() {
            return cell(value).map(Converted::One);
        }
        match value {
            Value::Null => Ok(Converted::Many(None)),
            Value::Array(items) => {
                let mut cells = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    cells.push(cell(item).map_err(|message| format!("item {index}: {message}"))?);
                }
                Ok(Converted::Many(Some(cells)))
            }
            other => Err(format!("{other} is not a list, in a collection column")),
        }
    }

    fn append(&mut self, converted: Converted<'_>) {
        match (converted, &mut self.list) {
            (Converted::One(cell), None) => self.values.append(cell),
            (Converted::Many(cells), Some(list)) => {
                list.validity.append(cells.is_some());
                let cells = cells.unwrap_or_default();
                list.offsets.push_length(cells.len());
                for cell in cells {
                    self.values.append(cell);
                }
            }
            // `convert` answers for this column's shape.
            (Converted::One(_), Some(_)) | (Converted::Many(_), None) => {
                unreachable!("a value converted for another column")
            }
        }
    }

    /// The gathered values as an array; the builder starts again empty.
    fn finish(&mut self) -> Result<ArrayRef, WriteError> {
        let values = self.values.finish();
        let Some(list) = &mut self.list else {
            return Ok(values);
        };
        let offsets = std::mem::replace(&mut list.offsets, OffsetBufferBuilder::new(BATCH_ROWS));
        let array = ListArray::try_new(
            Arc::clone(&list.item),
            offsets.finish(),
            values,
            list.validity.finish(),
        )?;
        Ok(Arc::new(array))
    }
}

/// The builder of one Arrow type.
enum Values {
    Boolean(BooleanBuilder),
    Integer(Int32Builder),
    Integer64(Int64Builder),
    Decimal(Decimal128Builder),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Time(Time64MicrosecondBuilder),
}

impl Values {
    fn new(column_type: ColumnType) -> Values {
        match column_type {
            ColumnType::Boolean => Values::Boolean(BooleanBuilder::new()),
            ColumnType::Integer => Values::Integer(Int32Builder::new()),
            ColumnType::Integer64 => Values::Integer64(Int64Builder::new()),
            ColumnType::Decimal => {
                Values::Decimal(Decimal128Builder::new().with_data_type(element_type(column_type)))
            }
            ColumnType::String | ColumnType::Date | ColumnType::DateTime | ColumnType::Json => {
                Values::Text(StringBuilder::new())
            }
            ColumnType::Binary => Values::Bytes(BinaryBuilder::new()),
            ColumnType::Instant => {
                Values::Timestamp(TimestampMicrosecondBuilder::new().with_timezone(UTC))
            }
            ColumnType::Time => Values::Time(Time64MicrosecondBuilder::new()),
        }
    }

    fn append(&mut self, cell: Cell<'_>) {
        match (self, cell) {
            (Values::Boolean(b), Cell::Boolean(v)) => b.append_value(v),
            (Values::Integer(b), Cell::Integer(v)) => b.append_value(v),
            (Values::Integer64(b), Cell::Integer64(v)) => b.append_value(v),
            (Values::Decimal(b), Cell::Decimal(v)) => b.append_value(v),
            (Values::Text(b), Cell::Text(v)) => b.append_value(v),
            (Values::Bytes(b), Cell::Bytes(v)) => b.append_value(v),
            (Values::Timestamp(b), Cell::Timestamp(v)) => b.append_value(v),
            (Values::Time(b), Cell::Time(v)) => b.append_value(v),
            (values, Cell::Null) => values.append_null(),
            // `value::cell` makes the cells of the column's own type.
            (_, cell) => unreachable!("a {cell:?} for another type's builder"),
        }
    }

    fn append_null(&mut self) {
        match self {
            Values::Boolean(b) => b.append_null(),
            Values::Integer(b) => b.append_null(),
            Values::Integer64(b) => b.append_null(),
            Values::Decimal(b) => b.append_null(),
            Values::Text(b) => b.append_null(),
            Values::Bytes(b) => b.append_null(),
            Values::Timestamp(b) => b.append_null(),
            Values::Time(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Values::Boolean(b) => ArrayBuilder::finish(b),
            Values::Integer(b) => ArrayBuilder::finish(b),
            Values::Integer64(b) => ArrayBuilder::finish(b),
            Values::Decimal(b) => ArrayBuilder::finish(b),
            Values::Text(b) => ArrayBuilder::finish(b),
            Values::Bytes(b) => ArrayBuilder::finish(b),
            Values::Timestamp(b) => ArrayBuilder::finish(b),
            Values::Time(b) => ArrayBuilder::finish(b),
        }
    }
}
