//! A view's rows written as they come, in the formats SQL on FHIR's `$viewdefinition-run`
//! names: NDJSON (an object a row, every column named, null when empty), CSV (RFC 4180; empty
//! when null, a collection or object as its JSON) and a JSON array of the same objects
//! ([`RowWriter`]); and, in builds with the `parquet` feature, one Parquet file
//! ([`TableWriter`] writes any of them).

use std::io::Write;

use serde_json::{Map, Value};

use crate::{Row, View};

/// How rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    /// With a header row of the column names, or without.
    Csv {
        header: bool,
    },
    Json,
}

impl Format {
    /// The media type of what is written.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Csv { .. } => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// Writes rows (a view's, or any answer's of named columns) to `out` in a format.
pub struct RowWriter<W: Write> {
    names: Vec<String>,
    format: Format,
    out: W,
    rows: u64,
}

impl<W: Write> RowWriter<W> {
    /// Starts the output of `view`'s rows (the CSV header, the JSON array's opening).
    pub fn new(view: &View, format: Format, out: W) -> std::io::Result<RowWriter<W>> {
        let names = view.columns().iter().map(|c| c.name().to_owned()).collect();
        RowWriter::with_columns(names, format, out)
    }

    /// Starts the output of rows of the columns `names`.
    pub fn with_columns(
        names: Vec<String>,
        format: Format,
        mut out: W,
    ) -> std::io::Result<RowWriter<W>> {
        match format {
            Format::Csv { header: true } => {
                let header: Vec<String> = names.iter().map(|n| csv_field(n)).collect();
                out.write_all(header.join(",").as_bytes())?;
                out.write_all(b"\r\n")?;
            }
            Format::Json => out.write_all(b"[")?,
            Format::Csv { header: false } | Format::Ndjson => {}
        }
        Ok(RowWriter {
            names,
            format,
            out,
            rows: 0,
        })
    }

    pub fn write(&mut self, row: &Row) -> std::io::Result<()> {
        match self.format {
            Format::Csv { .. } => {
                let fields: Vec<String> = row.iter().map(csv_value).collect();
                self.out.write_all(fields.join(",").as_bytes())?;
                self.out.write_all(b"\r\n")?;
            }
            Format::Ndjson | Format::Json => {
                if self.format == Format::Json && self.rows > 0 {
                    self.out.write_all(b",")?;
                }
                let object: Map<String, Value> = self
                    .names
                    .iter()
                    .zip(row)
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect();
                serde_json::to_writer(&mut self.out, &object)?;
                if self.format == Format::Ndjson {
                    self.out.write_all(b"\n")?;
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Ends the output; answers the number of rows and the writer.
    pub fn finish(mut self) -> std::io::Result<(u64, W)> {
        if self.format == Format::Json {
            self.out.write_all(b"]")?;
        }
        self.out.flush()?;
        Ok((self.rows, self.out))
    }
}

/// Any format a view's rows can be written in: a text format, or one Parquet file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Text(Format),
    /// Written only by builds with the `parquet` feature.
    Parquet,
}

impl TableFormat {
    /// The media type of what is written.
    pub fn media_type(self) -> &'static str {
        match self {
            TableFormat::Text(format) => format.media_type(),
            TableFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// Why rows could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A value does not fit its column's type in a typed format (Parquet): the view's data,
    /// not the writer. The row is not written.
    #[error("{0}")]
    Value(String),
    /// The output could not be written, or the format is not one this build writes.
    #[error("{0}")]
    Output(String),
}

/// As FHIR answers it: a value that does not fit its column is the data's (422,
/// `processing`); an output that could not be written is the server's (500, without detail).
impl fhir_model::Outcome for TableError {
    fn http_status(&self) -> u16 {
        match self {
            TableError::Value(_) => 422,
            TableError::Output(_) => 500,
        }
    }

    fn issues(&self, request_id: &str) -> Vec<fhir_model::Issue> {
        match self {
            TableError::Value(message) => vec![fhir_model::Issue::error(
                fhir_model::IssueCode::Processing,
                message.clone(),
            )],
            TableError::Output(_) => vec![fhir_model::internal_issue(request_id)],
        }
    }
}

/// A view's rows written in any [`TableFormat`]: made with the view, given its rows one at a
/// time, finished once.
pub enum TableWriter<W: Write + Send> {
    Text(RowWriter<W>),
    // Boxed: the encoder's state is large beside a text writer's.
    #[cfg(feature = "parquet")]
    Parquet(Box<crate::parquet::ParquetWriter<W>>),
}

impl<W: Write + Send> TableWriter<W> {
    pub fn new(view: &View, format: TableFormat, out: W) -> Result<Self, TableError> {
        match format {
            TableFormat::Text(format) => RowWriter::new(view, format, out)
                .map(TableWriter::Text)
                .map_err(|e| TableError::Output(e.to_string())),
            #[cfg(feature = "parquet")]
            TableFormat::Parquet => crate::parquet::ParquetWriter::new(view, out)
                .map(|writer| TableWriter::Parquet(Box::new(writer)))
                .map_err(parquet_error),
            #[cfg(not(feature = "parquet"))]
            TableFormat::Parquet => Err(TableError::Output(
                "this build writes no Parquet (the analytics crate's `parquet` feature)".into(),
            )),
        }
    }

    pub fn write(&mut self, row: &Row) -> Result<(), TableError> {
        match self {
            TableWriter::Text(writer) => writer
                .write(row)
                .map_err(|e| TableError::Output(e.to_string())),
            #[cfg(feature = "parquet")]
            TableWriter::Parquet(writer) => writer.write(row).map_err(parquet_error),
        }
    }

    /// Ends the output; answers the number of rows and the writer.
    pub fn finish(self) -> Result<(u64, W), TableError> {
        match self {
            TableWriter::Text(writer) => writer
                .finish()
                .map_err(|e| TableError::Output(e.to_string())),
            #[cfg(feature = "parquet")]
            TableWriter::Parquet(writer) => writer.finish().map_err(parquet_error),
        }
    }
}

#[cfg(feature = "parquet")]
fn parquet_error(error: crate::parquet::WriteError) -> TableError {
    match error {
        crate::parquet::WriteError::Value { .. } => TableError::Value(error.to_string()),
        other => TableError::Output(other.to_string()),
    }
}

/// A value as a CSV field: text as it is, numbers and booleans as JSON writes them, null as
/// nothing, a collection or object as its JSON; quoted when it must be.
pub fn csv_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => csv_field(text),
        other => csv_field(&other.to_string()),
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_value(&Value::Null), "");
        assert_eq!(csv_value(&json!(["a", "b"])), "\"[\"\"a\"\",\"\"b\"\"]\"");
        assert_eq!(csv_value(&json!(true)), "true");
        assert_eq!(csv_value(&json!(1.50)), "1.5");
    }

    fn written(format: Format) -> String {
        let view = View::parse(&json!({"resourceType": "ViewDefinition", "resource": "Patient",
            "select": [{"column": [{"name": "id", "path": "id"}, {"name": "gender", "path": "gender"}]}]}))
        .unwrap();
        let mut writer = RowWriter::new(&view, format, Vec::new()).unwrap();
        writer.write(&vec![json!("a"), json!("female")]).unwrap();
        writer.write(&vec![json!("b"), Value::Null]).unwrap();
        let (rows, bytes) = writer.finish().unwrap();
        assert_eq!(rows, 2);
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn each_format_writes_every_row_with_every_column() {
        assert_eq!(
            written(Format::Ndjson),
            "{\"id\":\"a\",\"gender\":\"female\"}\n{\"id\":\"b\",\"gender\":null}\n"
        );
        assert_eq!(
            written(Format::Csv { header: true }),
            "id,gender\r\na,female\r\nb,\r\n"
        );
        assert_eq!(written(Format::Csv { header: false }), "a,female\r\nb,\r\n");
        assert_eq!(
            written(Format::Json),
            "[{\"id\":\"a\",\"gender\":\"female\"},{\"id\":\"b\",\"gender\":null}]"
        );
    }
}
