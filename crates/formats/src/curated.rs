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
    encoder: Encoder<W>,
}

/// Where the Arrow batches are encoded to Parquet and written to the sink.
enum Encoder<W: std::io::Write + Send> {
    /// On the thread that pushes the rows.
    Inline { writer: Box<ArrowWriter<W>>, row_group_bytes: usize },
    /// On a thread of its own, a batch behind the rows pushed (see
    /// [`CuratedWriter::with_encoder_thread`]).
    Thread(EncoderThread<W>),
}

/// What the encoding thread is asked to do, in order.
enum Command {
    Write(RecordBatch),
    CloseRowGroup,
    /// The file will not be finished: stop without writing its footer.
    Abandon,
}

struct EncoderThread<W> {
    /// `None` once the thread has stopped (after an error) or the file is finished.
    commands: Option<std::sync::mpsc::SyncSender<Command>>,
    thread: Option<std::thread::JoinHandle<Result<W>>>,
    /// The encoded bytes of the open row group, as of the last batch encoded.
    in_progress: Arc<std::sync::atomic::AtomicUsize>,
}

impl<W> EncoderThread<W> {
    /// Hands a command on; when the thread has stopped, returns its error.
    fn send(&mut self, command: Command) -> Result<()> {
        if let Some(commands) = &self.commands
            && commands.send(command).is_ok()
        {
            return Ok(());
        }
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(Error::Curated("the Parquet encoder stopped".into())),
        }
    }

    /// Waits for the thread to end and takes its sink (or its error).
    fn join(&mut self) -> Result<W> {
        self.commands = None;
        match self.thread.take() {
            Some(thread) => {
                thread.join().unwrap_or_else(|_| Err(Error::Curated("the Parquet encoder panicked".into())))
            }
            None => Err(Error::Curated("the Parquet encoder already stopped".into())),
        }
    }
}

/// The encoding thread: writes each batch, closing a row group at `row_group_bytes` or when
/// asked, until the commands end; then finishes the file and returns the sink.
fn encode<W: std::io::Write + Send>(
    mut writer: ArrowWriter<W>,
    row_group_bytes: usize,
    commands: &std::sync::mpsc::Receiver<Command>,
    in_progress: &std::sync::atomic::AtomicUsize,
) -> Result<W> {
    use std::sync::atomic::Ordering;
    while let Ok(command) = commands.recv() {
        match command {
            Command::Write(batch) => write_batch(&mut writer, &batch, row_group_bytes)?,
            Command::CloseRowGroup => writer.flush().map_err(parquet_error)?,
            Command::Abandon => return Err(Error::Curated("the Parquet file was abandoned".into())),
        }
        in_progress.store(writer.in_progress_size(), Ordering::Relaxed);
    }
    writer.into_inner().map_err(parquet_error)
}

impl<W: std::io::Write + Send> std::fmt::Debug for CuratedWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CuratedWriter").field("rows", &self.rows).finish()
    }
}

fn parquet_error(e: impl std::fmt::Display) -> Error {
    Error::Curated(e.to_string())
}

/// Encodes a batch into the open row group, and closes the row group once its encoded data
/// reaches `row_group_bytes`.
fn write_batch<W: std::io::Write + Send>(
    writer: &mut ArrowWriter<W>,
    batch: &RecordBatch,
    row_group_bytes: usize,
) -> Result<()> {
    writer.write(batch).map_err(parquet_error)?;
    if writer.in_progress_size() >= row_group_bytes {
        writer.flush().map_err(parquet_error)?;
    }
    Ok(())
}

/// The Parquet writer of a contract's curated files, and their Arrow schema.
fn arrow_writer<W: std::io::Write + Send>(contract: &Contract, sink: W) -> Result<(Arc<Schema>, ArrowWriter<W>)> {
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
    let writer = ArrowWriter::try_new(sink, Arc::clone(&schema), Some(properties.build())).map_err(parquet_error)?;
    Ok((schema, writer))
}

impl<W: std::io::Write + Send + 'static> CuratedWriter<W> {
    /// As [`to_sink`](Self::to_sink), but the Parquet encoding, compression and writes to the
    /// sink run on a thread of their own, so that the rows of the next batch are taken while
    /// the last is encoded. The file is the same. The thread holds at most one Arrow batch
    /// ([`ARROW_BATCH_BYTES`] of values) besides the one being filled, and an encoding or write
    /// error comes back from the next call after it happened.
    pub fn with_encoder_thread(contract: &Contract, sink: W, row_group_bytes: usize) -> Result<CuratedWriter<W>> {
        let (schema, writer) = arrow_writer(contract, sink)?;
        let (commands, received) = std::sync::mpsc::sync_channel(0);
        let in_progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let shared = Arc::clone(&in_progress);
        let thread = std::thread::Builder::new()
            .name("parquet-encoder".into())
            .spawn(move || encode(writer, row_group_bytes, &received, &shared))
            .map_err(|e| Error::Curated(format!("cannot start the Parquet encoder thread: {e}")))?;
        let encoder = EncoderThread { commands: Some(commands), thread: Some(thread), in_progress };
        Ok(CuratedWriter::around(contract, schema, Encoder::Thread(encoder)))
    }
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
        let (schema, writer) = arrow_writer(contract, sink)?;
        Ok(CuratedWriter::around(contract, schema, Encoder::Inline { writer: Box::new(writer), row_group_bytes }))
    }

    fn around(contract: &Contract, schema: Arc<Schema>, encoder: Encoder<W>) -> CuratedWriter<W> {
        let columns = contract.columns.iter().map(|c| Column::new(c.kind)).collect();
        CuratedWriter { schema, columns, buffered: 0, buffered_values: 0, rows: 0, encoder }
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
        self.buffered = 0;
        self.buffered_values = 0;
        match &mut self.encoder {
            Encoder::Inline { writer, row_group_bytes } => write_batch(writer, &batch, *row_group_bytes),
            Encoder::Thread(thread) => thread.send(Command::Write(batch)),
        }
    }

    /// Bytes of encoded data held in memory for the open row group (with an encoder thread,
    /// as of the last batch it encoded).
    pub fn buffered_bytes(&self) -> usize {
        match &self.encoder {
            Encoder::Inline { writer, .. } => writer.in_progress_size(),
            Encoder::Thread(thread) => thread.in_progress.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Closes the open row group, sending it to the sink.
    pub fn flush_row_group(&mut self) -> Result<()> {
        self.flush()?;
        match &mut self.encoder {
            Encoder::Inline { writer, .. } => writer.flush().map_err(parquet_error),
            Encoder::Thread(thread) => {
                thread.send(Command::CloseRowGroup)?;
                // Counted as closed from now on, so that the next check of the budget does
                // not close another row group for the same bytes.
                thread.in_progress.store(0, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Finishes the file and returns the sink.
    pub fn finish(mut self) -> Result<W> {
        self.flush()?;
        match self.encoder {
            Encoder::Inline { writer, .. } => (*writer).into_inner().map_err(parquet_error),
            Encoder::Thread(mut thread) => thread.join(),
        }
    }
}

impl<W> Drop for EncoderThread<W> {
    /// An unfinished file's thread is stopped and waited for, so that it does not outlive
    /// the writer (its sink is dropped with it).
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Some(commands) = &self.commands {
                let _ = commands.send(Command::Abandon);
            }
            let _ = self.join();
        }
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

    fn mixed_contract() -> Contract {
        Contract::from_yaml(
            "dataset: d\ncolumns:\n  - {name: x, type: float, nullable: true}\n  - {name: n, type: int}\n  - {name: k, type: category}\n",
            "t.yaml",
        )
        .expect("contract")
    }

    fn mixed_row(i: usize) -> [Value; 3] {
        let x = if i.is_multiple_of(7) { Value::Null } else { Value::Float(i as f64 / 3.0) };
        [x, Value::Int(i as i64 * 31), Value::Text(["a", "bb", "ccc"][i % 3].into())]
    }

    /// A sink whose bytes stay readable after the writer is gone, and that can be made to fail.
    #[derive(Clone, Debug, Default)]
    struct Shared {
        bytes: Arc<std::sync::Mutex<Vec<u8>>>,
        fail_after: Option<usize>,
    }

    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut bytes = self.bytes.lock().expect("lock");
            if self.fail_after.is_some_and(|n| bytes.len() + buf.len() > n) {
                return Err(std::io::Error::other("the disk is full"));
            }
            bytes.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_encoder_thread_writes_the_same_file() {
        let contract = mixed_contract();
        // Small row groups, closed by size and once by hand, over several Arrow batches.
        let write = |threaded: bool| {
            let sink = Shared::default();
            let mut w = if threaded {
                CuratedWriter::with_encoder_thread(&contract, sink.clone(), 64 << 10)
            } else {
                CuratedWriter::to_sink(&contract, sink.clone(), 64 << 10)
            }
            .expect("writer");
            for i in 0..30_000 {
                w.push(&mixed_row(i)).expect("row");
                if i == 12_345 {
                    w.flush_row_group().expect("row group");
                }
            }
            w.finish().expect("finished");
            sink.bytes.lock().expect("lock").clone()
        };
        let inline = write(false);
        let threaded = write(true);
        assert_eq!(threaded, inline);
        let reader = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(threaded)).expect("parquet");
        let metadata = parquet::file::reader::FileReader::metadata(&reader);
        assert!(metadata.num_row_groups() > 2, "{}", metadata.num_row_groups());
        assert_eq!(metadata.file_metadata().num_rows(), 30_000);
    }

    #[test]
    fn the_encoder_threads_write_error_comes_back_named() {
        let contract = mixed_contract();
        let sink = Shared { fail_after: Some(1000), ..Shared::default() };
        let mut w = CuratedWriter::with_encoder_thread(&contract, sink, 1 << 10).expect("writer");
        let pushed = (0..50_000).try_for_each(|i| w.push(&mixed_row(i)).map(|_| ()));
        let e = match pushed {
            Err(e) => e,
            Ok(()) => w.finish().expect_err("the sink is full"),
        };
        assert!(e.to_string().contains("the disk is full"), "{e}");
    }

    #[test]
    fn an_unfinished_file_gets_no_footer() {
        let contract = mixed_contract();
        let sink = Shared::default();
        let mut w = CuratedWriter::with_encoder_thread(&contract, sink.clone(), ROW_GROUP_BYTES).expect("writer");
        for i in 0..20_000 {
            w.push(&mixed_row(i)).expect("row");
        }
        drop(w);
        let bytes = sink.bytes.lock().expect("lock").clone();
        // The leading magic number at most: no row group was closed and no footer written.
        assert!(bytes.len() <= 4, "{} bytes", bytes.len());
    }
}
