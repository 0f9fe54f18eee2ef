//! The Parquet writer (the `parquet` feature): files read back with the parquet crate's own
//! reader, their schema and values for every column type, nulls, collections, no rows, more
//! rows than a batch, the rows refused; and one file read by pyarrow, pandas and DuckDB
//! (`tests/parquet_check.py`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use analytics::parquet::{BATCH_ROWS, ParquetWriter, WriteError};
use analytics::{Row, View};
use arrow_array::cast::AsArray;
use arrow_array::temporal_conversions::{time64us_to_time, timestamp_us_to_datetime};
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::types::{Decimal128Type, Int32Type, Int64Type, Time64MicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use expect_test::expect;
use serde_json::{Value, json};

use crate::python_venv::python_with;

/// A view of Observations with a column of every type: declared, inferred, and the default.
fn observation_view() -> View {
    View::parse(&json!({"resourceType": "ViewDefinition", "name": "observation_values",
        "resource": "Observation", "select": [{"column": [
            {"name": "id", "path": "getResourceKey()"},
            {"name": "status", "path": "status"},
            {"name": "final", "path": "status = 'final'"},
            {"name": "issued", "path": "issued"},
            {"name": "effective", "path": "effective.ofType(dateTime)"},
            {"name": "recorded_on",
             "path": "extension.where(url = 'http://example.org/recorded').value.ofType(date)"},
            {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
            {"name": "quantity", "path": "value.ofType(Quantity)", "type": "Quantity"},
            {"name": "count", "path": "value.ofType(integer)"},
            {"name": "big_count", "path": "value.ofType(integer)", "type": "integer64"},
            {"name": "at", "path": "value.ofType(time)"},
            {"name": "signature",
             "path": "extension.where(url = 'http://example.org/signature').value.ofType(base64Binary)"},
            {"name": "interpretations", "path": "interpretation.coding.code", "collection": true},
            {"name": "components", "path": "component.value.ofType(Quantity).value",
             "type": "decimal", "collection": true},
            {"name": "component_codes", "path": "component.code", "type": "CodeableConcept",
             "collection": true},
            {"name": "position", "path": "%rowIndex"}]}]}))
    .unwrap()
}

/// Three Observations, parsed as the platform parses them (decimals keep their text).
fn observations() -> Vec<Value> {
    [
        r#"{"resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"text": "glucose"},
            "extension": [
                {"url": "http://example.org/signature", "valueBase64Binary": "aGVsbG8="},
                {"url": "http://example.org/recorded", "valueDate": "1970"}],
            "issued": "2020-03-15T10:30:00.123456+01:00",
            "effectiveDateTime": "2020-03",
            "valueQuantity": {"value": 1.50, "unit": "mmol/L"},
            "interpretation": [{"coding": [{"code": "H"}, {"code": "HH"}]}],
            "component": [
                {"code": {"text": "a"}, "valueQuantity": {"value": 120}},
                {"code": {"text": "b"}, "valueQuantity": {"value": 80.25}}]}"#,
        r#"{"resourceType": "Observation", "id": "o2", "status": "preliminary",
            "code": {"text": "count"},
            "effectiveDateTime": "2020-03-15T10:30:00Z",
            "valueInteger": 42}"#,
        r#"{"resourceType": "Observation", "id": "o3", "status": "final",
            "code": {"text": "time"},
            "extension": [{"url": "http://example.org/recorded", "valueDate": "2021-02-28"}],
            "issued": "1969-12-31T23:59:59Z",
            "valueTime": "14:30:00.25"}"#,
    ]
    .iter()
    .map(|text| fhir_model::json::parse(text.as_bytes()).unwrap())
    .collect()
}

fn observation_rows(view: &View) -> Vec<Row> {
    observations()
        .iter()
        .flat_map(|resource| view.rows(resource).unwrap())
        .collect()
}

/// Where the tests' files go: under the target directory, kept for a look after a failure.
fn path_of(name: &str) -> PathBuf {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analytics-parquet");
    std::fs::create_dir_all(&directory).unwrap();
    directory.join(format!("{name}.parquet"))
}

/// Writes `rows` of `view` to a file named `name`; answers its path.
fn write_file(name: &str, view: &View, rows: &[Row]) -> PathBuf {
    let path = path_of(name);
    let mut writer = ParquetWriter::new(view, File::create(&path).unwrap()).unwrap();
    for row in rows {
        writer.write(row).unwrap();
    }
    let (written, _) = writer.finish().unwrap();
    assert_eq!(written, rows.len() as u64);
    path
}

/// A file as the parquet crate reads it: its Arrow schema (a field a line, with its metadata),
/// then its Parquet schema, then its rows.
fn read_back(path: &Path) -> (String, Vec<RecordBatch>) {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let schema = reader.schema().clone();
    let mut described = String::new();
    let mut metadata: Vec<_> = schema.metadata().iter().collect();
    metadata.sort();
    described.push_str(&format!("schema {metadata:?}\n"));
    for field in schema.fields() {
        described.push_str(&format!(
            "{}: {}{} {:?}\n",
            field.name(),
            field.data_type(),
            if field.is_nullable() { "" } else { " NOT NULL" },
            field.metadata()
        ));
    }
    let mut printed = Vec::new();
    ::parquet::schema::printer::print_schema(&mut printed, reader.parquet_schema().root_schema());
    described.push_str(&String::from_utf8(printed).unwrap());
    let batches = reader
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (described, batches)
}

/// The rows of the batches, a line each: `name=value` for every column.
fn rendered(batches: &[RecordBatch]) -> String {
    let mut lines = String::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .schema()
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(field, array)| format!("{}={}", field.name(), render(array, row)))
                .collect();
            lines.push_str(&cells.join(" "));
            lines.push('\n');
        }
    }
    lines
}

/// One value of an array as text: strings quoted, bytes as `b"..."`, timestamps in UTC.
fn render(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "null".to_string();
    }
    match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::Decimal128(..) => array.as_primitive::<Decimal128Type>().value_as_string(row),
        DataType::Utf8 => format!("{:?}", array.as_string::<i32>().value(row)),
        DataType::Binary => format!(
            "b{:?}",
            String::from_utf8_lossy(array.as_binary::<i32>().value(row))
        ),
        DataType::Timestamp(TimeUnit::Microsecond, Some(zone)) if zone.as_ref() == "UTC" => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
            format!("{}Z", timestamp_us_to_datetime(micros).unwrap())
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            let micros = array.as_primitive::<Time64MicrosecondType>().value(row);
            time64us_to_time(micros).unwrap().to_string()
        }
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            let items: Vec<String> = (0..items.len()).map(|i| render(&items, i)).collect();
            format!("[{}]", items.join(", "))
        }
        other => panic!("a type the writer does not write: {other}"),
    }
}

#[test]
fn every_column_type_reads_back_with_its_arrow_type_and_its_values() {
    let view = observation_view();
    let path = write_file("every-type", &view, &observation_rows(&view));
    let (schema, batches) = read_back(&path);
    expect![[r#"
        schema [("fhir.resource", "Observation"), ("fhir.view", "observation_values")]
        id: Utf8 {"fhir.type": "string"}
        status: Utf8 {"fhir.type": "string"}
        final: Boolean {"fhir.type": "boolean"}
        issued: Timestamp(µs, "UTC") {"fhir.type": "instant"}
        effective: Utf8 {"fhir.type": "dateTime"}
        recorded_on: Utf8 {"fhir.type": "date"}
        value: Decimal128(38, 18) {"fhir.type": "decimal"}
        quantity: Utf8 {"fhir.type": "Quantity"}
        count: Int32 {"fhir.type": "integer"}
        big_count: Int64 {"fhir.type": "integer64"}
        at: Time64(µs) {"fhir.type": "time"}
        signature: Binary {"fhir.type": "base64Binary"}
        interpretations: List(Utf8) {"fhir.type": "string"}
        components: List(Decimal128(38, 18)) {"fhir.type": "decimal"}
        component_codes: List(Utf8) {"fhir.type": "CodeableConcept"}
        position: Utf8 {}
        message arrow_schema {
          OPTIONAL BYTE_ARRAY id (STRING);
          OPTIONAL BYTE_ARRAY status (STRING);
          OPTIONAL BOOLEAN final;
          OPTIONAL INT64 issued (TIMESTAMP(MICROS,true));
          OPTIONAL BYTE_ARRAY effective (STRING);
          OPTIONAL BYTE_ARRAY recorded_on (STRING);
          OPTIONAL FIXED_LEN_BYTE_ARRAY (16) value (DECIMAL(38,18));
          OPTIONAL BYTE_ARRAY quantity (STRING);
          OPTIONAL INT32 count;
          OPTIONAL INT64 big_count;
          OPTIONAL INT64 at (TIME(MICROS,false));
          OPTIONAL BYTE_ARRAY signature;
          OPTIONAL group interpretations (LIST) {
            REPEATED group list {
              OPTIONAL BYTE_ARRAY item (STRING);
            }
          }
          OPTIONAL group components (LIST) {
            REPEATED group list {
              OPTIONAL FIXED_LEN_BYTE_ARRAY (16) item (DECIMAL(38,18));
            }
          }
          OPTIONAL group component_codes (LIST) {
            REPEATED group list {
              OPTIONAL BYTE_ARRAY item (STRING);
            }
          }
          OPTIONAL BYTE_ARRAY position (STRING);
        }
    "#]]
    .assert_eq(&schema);
    expect![[r#"
        id="o1" status="final" final=true issued=2020-03-15 09:30:00.123456Z effective="2020-03" recorded_on="1970" value=1.500000000000000000 quantity="{\"value\":1.50,\"unit\":\"mmol/L\"}" count=null big_count=null at=null signature=b"hello" interpretations=["H", "HH"] components=[120.000000000000000000, 80.250000000000000000] component_codes=["{\"text\":\"a\"}", "{\"text\":\"b\"}"] position="0"
        id="o2" status="preliminary" final=false issued=null effective="2020-03-15T10:30:00Z" recorded_on=null value=null quantity=null count=42 big_count=42 at=null signature=null interpretations=[] components=[] component_codes=[] position="0"
        id="o3" status="final" final=true issued=1969-12-31 23:59:59Z effective=null recorded_on="2021-02-28" value=null quantity=null count=null big_count=null at=14:30:00.250 signature=null interpretations=[] components=[] component_codes=[] position="0"
    "#]]
    .assert_eq(&rendered(&batches));
}

#[test]
fn nulls_empty_lists_and_null_items_are_kept_apart() {
    let view = View::parse(&json!({"resource": "Patient", "select": [{"column": [
        {"name": "active", "path": "active"},
        {"name": "given", "path": "name.given", "collection": true},
        {"name": "names", "path": "name", "type": "HumanName", "collection": true},
        {"name": "born", "path": "birthDate"}]}]}))
    .unwrap();
    let rows = vec![
        vec![Value::Null, Value::Null, Value::Null, Value::Null],
        vec![json!(false), json!([]), json!([]), json!("1970")],
        vec![
            json!(true),
            json!(["Ann", null, "Bo"]),
            json!([{"family": "F", "given": ["Ann"]}, null]),
            json!("1970-06-01"),
        ],
    ];
    let (_, batches) = read_back(&write_file("nulls", &view, &rows));
    expect![[r#"
        active=null given=null names=null born=null
        active=false given=[] names=[] born="1970"
        active=true given=["Ann", null, "Bo"] names=["{\"family\":\"F\",\"given\":[\"Ann\"]}", null] born="1970-06-01"
    "#]]
    .assert_eq(&rendered(&batches));
}

#[test]
fn an_empty_result_is_a_valid_file_with_the_schema_and_no_rows() {
    let view = observation_view();
    let (schema, batches) = read_back(&write_file("empty", &view, &[]));
    let (schema_with_rows, _) = read_back(&write_file(
        "every-type-again",
        &view,
        &observation_rows(&view),
    ));
    assert_eq!(schema, schema_with_rows);
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
    let bytes = std::fs::read(path_of("empty")).unwrap();
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
}

#[test]
fn more_rows_than_one_batch_are_all_written_in_order() {
    let view = View::parse(&json!({"resource": "Patient", "select": [{"column": [
        {"name": "id", "path": "id"},
        {"name": "births", "path": "multipleBirth.ofType(integer)"}]}]}))
    .unwrap();
    let count = 2 * BATCH_ROWS + 7;
    let rows: Vec<Row> = (0..count)
        .map(|i| {
            let births = if i % 3 == 0 { Value::Null } else { json!(i) };
            vec![json!(format!("p{i}")), births]
        })
        .collect();
    let (_, batches) = read_back(&write_file("many", &view, &rows));
    let mut seen = 0;
    for batch in &batches {
        let ids = batch.column(0).as_string::<i32>();
        let births = batch.column(1).as_primitive::<Int32Type>();
        for row in 0..batch.num_rows() {
            assert_eq!(ids.value(row), format!("p{seen}"));
            if seen % 3 == 0 {
                assert!(births.is_null(row), "row {seen}");
            } else {
                assert_eq!(births.value(row), seen as i32);
            }
            seen += 1;
        }
    }
    assert_eq!(seen, count);
}

#[test]
fn a_value_that_does_not_fit_refuses_its_row_and_the_writer_goes_on() {
    let view = View::parse(&json!({"resource": "Patient", "select": [{"column": [
        {"name": "id", "path": "id"},
        {"name": "births", "path": "multipleBirth.ofType(integer)"},
        {"name": "photo", "path": "photo.data", "collection": true},
        {"name": "updated", "path": "meta.lastUpdated"},
        {"name": "weight", "path": "extension.value.ofType(decimal)"}]}]}))
    .unwrap();
    let good = |id: &str| vec![json!(id), json!(2), json!(["aGk="]), Value::Null, json!(70)];
    let decimal = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    let refused = [
        vec![json!("a"), json!(1.5), json!([]), Value::Null, Value::Null],
        vec![
            json!("b"),
            json!(3_000_000_000_i64),
            json!([]),
            Value::Null,
            Value::Null,
        ],
        vec![
            json!("c"),
            Value::Null,
            json!(["aGk=", "%%"]),
            Value::Null,
            Value::Null,
        ],
        vec![
            json!("d"),
            Value::Null,
            json!("aGk="),
            Value::Null,
            Value::Null,
        ],
        vec![
            json!("e"),
            Value::Null,
            json!([]),
            json!("2020-01-01T00:00:00"),
            Value::Null,
        ],
        vec![
            json!("f"),
            Value::Null,
            json!([]),
            json!("2020-01-01"),
            Value::Null,
        ],
        vec![
            json!("g"),
            Value::Null,
            json!([]),
            Value::Null,
            decimal("0.1234567890123456789"),
        ],
        vec![
            json!("h"),
            Value::Null,
            json!([]),
            Value::Null,
            decimal("1e21"),
        ],
        vec![json!("i"), Value::Null, json!([])],
    ];
    let path = path_of("refused");
    let mut writer = ParquetWriter::new(&view, File::create(&path).unwrap()).unwrap();
    writer.write(&good("first")).unwrap();
    let mut errors = String::new();
    for row in &refused {
        match writer.write(row) {
            Err(error @ (WriteError::Value { .. } | WriteError::RowWidth { .. })) => {
                errors.push_str(&format!("{error}\n"))
            }
            other => panic!("{row:?} is not refused as a value: {other:?}"),
        }
    }
    writer.write(&good("last")).unwrap();
    assert_eq!(writer.finish().unwrap().0, 2);
    expect![[r#"
        row 1, column births: 1.5 is not an integer of 32 bits
        row 1, column births: 3000000000 is not an integer of 32 bits
        row 1, column photo: item 1: "%%" is not base64: Invalid symbol 37, offset 0.
        row 1, column photo: "aGk=" is not a list, in a collection column
        row 1, column updated: "2020-01-01T00:00:00" is not an instant: it has no time zone
        row 1, column updated: "2020-01-01" is not an instant (a date and time to the second)
        row 1, column weight: 0.1234567890123456789 does not fit a decimal of 20 digits before the point and 18 after
        row 1, column weight: 1e+21 does not fit a decimal of 20 digits before the point and 18 after
        row 1 has 3 values for 5 columns
    "#]]
    .assert_eq(&errors);
    let (_, batches) = read_back(&path);
    expect![[r#"
        id="first" births=2 photo=[b"hi"] updated=null weight=70.000000000000000000
        id="last" births=2 photo=[b"hi"] updated=null weight=70.000000000000000000
    "#]]
    .assert_eq(&rendered(&batches));
}

/// An output that fails after `room` bytes, as a full disk does.
struct FullDisk {
    room: usize,
}

impl std::io::Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.room {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left",
            ));
        }
        self.room -= buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_output_that_fails_is_an_io_error_not_a_panic() {
    let view = observation_view();
    let rows = observation_rows(&view);
    let mut writer = ParquetWriter::new(&view, FullDisk { room: 100 }).unwrap();
    for row in &rows {
        writer.write(row).unwrap();
    }
    match writer.finish() {
        Err(WriteError::Io(error)) => {
            assert_eq!(error.kind(), std::io::ErrorKind::StorageFull)
        }
        other => panic!("not an I/O error: {:?}", other.map(|(rows, _)| rows)),
    }
}

#[test]
fn pyarrow_pandas_and_duckdb_read_the_file_as_written() {
    let python = python_with(
        "analytics-parquet",
        &["pyarrow==25.0.1", "pandas==3.0.6", "duckdb==1.5.6"],
        "import pyarrow, pandas, duckdb",
    );
    let view = observation_view();
    let path = write_file("for-python", &view, &observation_rows(&view));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/parquet_check.py");
    let output = Command::new(&python)
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "parquet_check.py {}:\n{stdout}\n{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    expect![[r#"
        pyarrow 25.0.1: 16 columns, 3 rows, types and values as written
        pandas 3.0.6: the same rows as a data frame
        duckdb 1.5.6: SELECT over the file, types and values as written
    "#]]
    .assert_eq(&stdout);
}
