//! Curated rows as Parquet: typed per the contract, snappy-compressed, in row groups sized
//! for Athena and Spark.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};
use mlops_contract::validate::Value;
use mlops_contract::{ColumnType, Contract};

/// Rows per Parquet row group at most: about a million, so that a group of a typical table
/// is the tens of megabytes query engines read best.
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// A row group is also closed once its encoded data held in memory reaches this size
/// (Athena and Spark read row groups of 64–128 MB best; this bounds memory as well).
pub const ROW_GROUP_BYTES: usize = 64 << 20;

/// Rows buffered in Arrow builders before they are handed to the Parquet writer.
const ARROW_BATCH_ROWS: usize = 8192;

/// Bytes of values buffered in Arrow builders before they are handed to the Parquet writer,
/// whatever the number of rows: rows of megabyte strings go in a few at a time.
pub const ARROW_BATCH_BYTES: usize = 4 << 20;

/// The Arrow schema of a contract's columns: float → Float64, int → Int64, bool → Boolean,
/// timestamp → Timestamp(µs, UTC), category and string → Utf8.
pub fn schema(contract: &Contract) -> Schema {
    let fields: Vec<Field> = contract
        .columns
        .iter()
        .map(|c| {
            let dt = match c.kind {
                ColumnType::Float => DataType::Float64,
                ColumnType::Int => DataType::Int64,
                ColumnType::Bool => DataType::Boolean,
                ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                ColumnType::Category | ColumnType::String => DataType::Utf8,
            };
            Field::new(&c.name, dt, c.nullable)
        })
        .collect();
    Schema::new(fields)
}

pub use mlops_contract::validate::timestamp_micros;

enum Column {
    Float(Float64Builder),
    Int(Int64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Time(TimestampMicrosecondBuilder),
}

impl Column {
    fn new(kind: ColumnType) -> Column {
        match kind {
            ColumnType::Float => Column::Float(Float64Builder::new()),
            ColumnType::Int => Column::Int(Int64Builder::new()),
            ColumnType::Bool => Column::Bool(BooleanBuilder::new()),
            ColumnType::Timestamp => Column::Time(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            ColumnType::Category | ColumnType::String => Column::Text(StringBuilder::new()),
        }
    }

    fn push(&mut self, value: &Value) {
        match (self, value) {
            (Column::Float(b), v) => b.append_option(v.as_f64()),
            (Column::Int(b), Value::Int(i)) => b.append_value(*i),
            (Column::Int(b), _) => b.append_null(),
            (Column::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (Column::Bool(b), _) => b.append_null(),
            (Column::Text(b), Value::Null) => b.append_null(),
            (Column::Text(b), Value::Text(t)) => b.append_value(t),
            (Column::Text(b), v) => b.append_value(v.to_text()),
            (Column::Time(b), Value::Text(t)) => b.append_option(timestamp_micros(t)),
            (Column::Time(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Float(b) => Arc::new(b.finish()),
            Column::Int(b) => Arc::new(b.finish()),
            Column::Bool(b) => Arc::new(b.finish()),
            Column::Text(b) => Arc::new(b.finish()),
            Column::Time(b) => Arc::new(b.finish()),
        }
    }
}

/// Writes valid rows (values in contract column order) as a Parquet file into a sink.
///
/// Encoded row groups are held in memory until they are closed at [`ROW_GROUP_ROWS`] rows,
/// at the writer's row-group byte limit, or by [`CuratedWriter::flush_row_group`]; then they
/// go to the sink.
pub struct CuratedWriter<W: std::io::Write + Send = Vec<u8>> {
    schema: Arc<Schema>,
    columns: Vec<Column>,
    buffered: usize,
    /// Bytes of the values in the Arrow builders (text by its length, the rest by 8).
    buffered_values: usize,
    rows: u64,
    row_group_bytes: usize,
    writer: ArrowWriter<W>,
}

impl<W: std::io::Write + Send> std::fmt::Debug for CuratedWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CuratedWriter").field("rows", &self.rows).finish()
    }
}

fn parquet_error(e: impl std::fmt::Display) -> Error {
    Error::Curated(e.to_string())
}

impl CuratedWriter<Vec<u8>> {
    /// A writer into memory.
    pub fn new(contract: &Contract) -> Result<CuratedWriter<Vec<u8>>> {
        CuratedWriter::to_sink(contract, Vec::new(), ROW_GROUP_BYTES)
    }
}

impl<W: std::io::Write + Send> CuratedWriter<W> {
    /// A writer into `sink` whose row groups close at `row_group_bytes` of encoded data.
    pub fn to_sink(contract: &Contract, sink: W, row_group_bytes: usize) -> Result<CuratedWriter<W>> {
        let schema = Arc::new(schema(contract));
        // Dictionary encoding pays for text (categories repeat) but not for measurements,
        // where hashing every value costs more than it saves.
        let mut properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_dictionary_enabled(false)
            .set_created_by(format!("lambda-mlops {}", env!("CARGO_PKG_VERSION")));
        for c in contract.columns.iter().filter(|c| matches!(c.kind, ColumnType::Category | ColumnType::String)) {
            properties = properties.set_column_dictionary_enabled(ColumnPath::from(c.name.as_str()), true);
        }
        let properties = properties.build();
        let writer = ArrowWriter::try_new(sink, Arc::clone(&schema), Some(properties)).map_err(parquet_error)?;
        let columns = contract.columns.iter().map(|c| Column::new(c.kind)).collect();
        Ok(CuratedWriter { schema, columns, buffered: 0, buffered_values: 0, rows: 0, row_group_bytes, writer })
    }

    /// Adds one row. Returns whether the buffered rows went to the Parquet writer (at
    /// [`ARROW_BATCH_ROWS`] rows or [`ARROW_BATCH_BYTES`] bytes), the only time
    /// [`buffered_bytes`](Self::buffered_bytes) changes.
    pub fn push(&mut self, row: &[Value]) -> Result<bool> {
        for (column, value) in self.columns.iter_mut().zip(row) {
            column.push(value);
            self.buffered_values += match value {
                Value::Text(t) => t.len() + 4,
                _ => 8,
            };
        }
        self.buffered += 1;
        self.rows += 1;
        if self.buffered >= ARROW_BATCH_ROWS || self.buffered_values >= ARROW_BATCH_BYTES {
            self.flush()?;
            return Ok(true);
        }
        Ok(false)
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn flush(&mut self) -> Result<()> {
        if self.buffered == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(Column::finish).collect();
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), arrays).map_err(parquet_error)?;
        self.writer.write(&batch).map_err(parquet_error)?;
        self.buffered = 0;
        self.buffered_values = 0;
        if self.writer.in_progress_size() >= self.row_group_bytes {
            self.writer.flush().map_err(parquet_error)?;
        }
        Ok(())
    }

    /// Bytes of encoded data held in memory for the open row group.
    pub fn buffered_bytes(&self) -> usize {
        self.writer.in_progress_size()
    }

    /// Closes the open row group, sending it to the sink.
    pub fn flush_row_group(&mut self) -> Result<()> {
        self.flush()?;
        self.writer.flush().map_err(parquet_error)
    }

    /// Finishes the file and returns the sink.
    pub fn finish(mut self) -> Result<W> {
        self.flush()?;
        self.writer.into_inner().map_err(parquet_error)
    }
}

/// Reads a curated Parquet file (as ingest writes it) into rows of values in the contract's
/// column order, columns matched by name: the way back from the lake to training. A
/// contract column the file lacks is an error; values come back as the contract types them
/// (timestamps as RFC 3339 text).
pub fn read_values(bytes: bytes::Bytes, contract: &Contract) -> Result<Vec<Vec<Value>>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(parquet_error)?.build().map_err(parquet_error)?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(parquet_error)?;
        let columns: Vec<&ArrayRef> = contract
            .columns
            .iter()
            .map(|c| {
                batch
                    .column_by_name(&c.name)
                    .ok_or_else(|| Error::Curated(format!("the Parquet file has no column {:?}", c.name)))
            })
            .collect::<Result<_>>()?;
        for i in 0..batch.num_rows() {
            let mut row = Vec::with_capacity(columns.len());
            for (column, array) in contract.columns.iter().zip(&columns) {
                if array.is_null(i) {
                    row.push(Value::Null);
                    continue;
                }
                let mismatch = || {
                    Error::Curated(format!(
                        "column {:?} is {}, not as the contract types it",
                        column.name,
                        array.data_type()
                    ))
                };
                row.push(match (column.kind, array.data_type()) {
                    (ColumnType::Float, DataType::Float64) => {
                        Value::Float(array.as_primitive::<Float64Type>().value(i))
                    }
                    (ColumnType::Int, DataType::Int64) => Value::Int(array.as_primitive::<Int64Type>().value(i)),
                    (ColumnType::Bool, DataType::Boolean) => Value::Bool(array.as_boolean().value(i)),
                    (ColumnType::Category | ColumnType::String, DataType::Utf8) => {
                        Value::Text(array.as_string::<i32>().value(i).into())
                    }
                    (ColumnType::Timestamp, DataType::Timestamp(TimeUnit::Microsecond, _)) => {
                        let micros = array.as_primitive::<TimestampMicrosecondType>().value(i);
                        match chrono::DateTime::from_timestamp_micros(micros) {
                            Some(t) => Value::Text(t.to_rfc3339().into()),
                            None => Value::Null,
                        }
                    }
                    _ => return Err(mismatch()),
                });
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Reads a curated Parquet file back as text rows (`{column: value, …}`), for tests and checks.
pub fn read_rows(bytes: Vec<u8>) -> Result<Vec<String>> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).map_err(parquet_error)?;
    reader.get_row_iter(None).map_err(parquet_error)?.map(|r| r.map(|r| r.to_string()).map_err(parquet_error)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_typed_columns_with_nulls() {
        let contract = Contract::from_yaml(
            "dataset: d\ncolumns:\n  - {name: x, type: float, nullable: true}\n  - {name: n, type: int}\n  - {name: b, type: bool}\n  - {name: k, type: category}\n  - {name: t, type: timestamp}\n",
            "t.yaml",
        )
        .expect("contract");
        let s = schema(&contract);
        let types: Vec<String> = s.fields().iter().map(|f| f.data_type().to_string()).collect();
        assert_eq!(types, ["Float64", "Int64", "Boolean", "Utf8", "Timestamp(µs, \"UTC\")"]);
        let mut w = CuratedWriter::new(&contract).expect("writer");
        w.push(&[
            Value::Float(1.5),
            Value::Int(2),
            Value::Bool(true),
            Value::Text("a".into()),
            Value::Text("2024-01-02".into()),
        ])
        .expect("row");
        w.push(&[
            Value::Null,
            Value::Int(3),
            Value::Bool(false),
            Value::Text("b".into()),
            Value::Text("2024-01-02T03:04:05Z".into()),
        ])
        .expect("row");
        let bytes = w.finish().expect("parquet");
        let values = read_values(bytes::Bytes::from(bytes.clone()), &contract).expect("typed rows");
        assert_eq!(
            values[1],
            [
                Value::Null,
                Value::Int(3),
                Value::Bool(false),
                Value::Text("b".into()),
                Value::Text("2024-01-02T03:04:05+00:00".into())
            ]
        );
        let rows = read_rows(bytes).expect("readable");
        assert_eq!(rows.len(), 2);
        assert!(rows[0].starts_with("{x: 1.5, n: 2, b: true, k: \"a\", t: 2024-01-02 00:00:00"), "{}", rows[0]);
        assert!(rows[1].starts_with("{x: null, n: 3, b: false, k: \"b\", t: 2024-01-02 03:04:05"), "{}", rows[1]);
    }
}
