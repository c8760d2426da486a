//! The score Lambda: the shared scorer run over the lake, for batch and stream scoring.
//!
//! - **Batch**: each invocation is one batch of the batch-score state machine's Distributed
//!   Map (`{"Items": [{"Key": …}, …], "BatchInput": {"model": …, "version": …}}`), whose
//!   items are curated Parquet objects (or CSV / JSON Lines objects) listed under a prefix or
//!   read from a manifest. Each object's rows are scored and written to
//!   `predictions/<model>/v<N>/dt=<its dt>/<its name>.parquet`, one prediction per row,
//!   joinable with the curated rows by `source` and `row` (and by the contract's id column).
//! - **Stream**: an SQS event whose records each carry one instance as JSON. The valid ones
//!   are scored and written as one Parquet object per invocation; the records that could not
//!   be read or scored are reported as `batchItemFailures`, so only they are retried (and,
//!   past the queue's receive limit, go to its dead-letter queue).
//!
//! Rows are read against the model's contract as ingest and predict read them, and scored by
//! [`mlops_model::Scorer`], so a row gets the same answer here as from `mlops score` or predict.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use aws_lambda_events::event::sqs::SqsEvent;
use chrono::NaiveDate;
use mlops_contract::{ColumnType, Contract, Value};
use mlops_formats::rows::{FileKind, ReadError, read_batch};
use mlops_lake::{Lake, ModelRef, registry};
use mlops_lambda::{ConfigError, Env};
use mlops_model::{Model, Scorer};
use serde::{Deserialize, Serialize};

/// Rows per model run.
pub const CHUNK_ROWS: usize = 1024;

/// What can stop a batch (the whole invocation fails, and the Map retries or counts it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lake(#[from] mlops_lake::Error),
    #[error("model {model}: {source}")]
    Model { model: String, source: mlops_model::Error },
    #[error("{key}: {message}")]
    Object { key: String, message: String },
    #[error(
        "the batch names no model: give BatchInput.model and BatchInput.version, or set MODEL_NAME and MODEL_VERSION"
    )]
    NoModel,
    #[error("writing {key}: {message}")]
    Write { key: String, message: String },
    #[error("the event is neither a batch of items nor SQS records: {0}")]
    Event(String),
}

impl Error {
    /// A stable name for the kind of error, reported to Lambda (and so to the Map's Retry and
    /// Catch as the error name).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Lake(mlops_lake::Error::NotFound { .. }) => "NotFound",
            Error::Lake(_) => "LakeError",
            Error::Model { .. } => "ModelError",
            Error::Object { .. } => "UnreadableObject",
            Error::NoModel => "NoModel",
            Error::Write { .. } => "OutputError",
            Error::Event(_) => "BadEvent",
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic { error_type: e.kind().into(), error_message: e.to_string() }
    }
}

/// The function's configuration: the lake, and the model stream records are scored with (a
/// batch may name another).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub bucket: String,
    pub model: Option<ModelRef>,
}

impl Config {
    /// `LAKE_BUCKET`, and `MODEL_NAME` with `MODEL_VERSION` (both or neither).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Config, ConfigError> {
        let bucket = env.required("LAKE_BUCKET")?;
        let model = match env.text("MODEL_NAME") {
            Some(name) => Some(ModelRef { name, version: env.version("MODEL_VERSION")? }),
            None => None,
        };
        Ok(Config { bucket, model })
    }
}

/// Where a row's features and id are among the columns it was read with.
#[derive(Debug, Clone)]
struct Positions {
    features: Vec<usize>,
    id: Option<usize>,
}

impl Positions {
    fn of(read_with: &Contract, id: Option<&str>) -> Positions {
        let position = |name: &str| read_with.columns.iter().position(|c| c.name == name);
        Positions {
            features: read_with.features.iter().filter_map(|f| position(f)).collect(),
            id: id.and_then(position),
        }
    }
}

/// A model version ready to score, with the contract its rows are read against.
#[derive(Debug)]
pub struct Loaded {
    pub model: ModelRef,
    pub scorer: Scorer,
    /// The dataset's contract: lake objects hold all of its columns.
    pub contract: Contract,
    /// What a stream record holds: the features, and the id when the contract has one.
    pub record: Contract,
    objects: Positions,
    records: Positions,
}

impl Loaded {
    pub fn new(model: ModelRef, scorer: Scorer, contract: Contract) -> Loaded {
        let mut record = contract.features_only();
        if let Some(id) = contract.id.as_deref().and_then(|id| contract.columns.iter().find(|c| c.name == id))
            && !record.columns.iter().any(|c| c.name == id.name)
        {
            record.columns.push(id.clone());
        }
        let objects = Positions::of(&contract, contract.id.as_deref());
        let records = Positions::of(&record, contract.id.as_deref());
        Loaded { model, scorer, contract, record, objects, records }
    }

    /// Loads a registered version from the lake.
    pub async fn from_registry(lake: &Lake, model: &ModelRef) -> Result<Loaded, Error> {
        let (stored, bytes) = registry::load(lake, &model.name, model.version).await?;
        let name = model.to_string();
        let loaded = Model::load(&bytes).map_err(|source| Error::Model { model: name.clone(), source })?;
        let scorer = Scorer::new(loaded, &stored.contract, stored.manifest.class_labels.clone())
            .map_err(|source| Error::Model { model: name, source })?;
        Ok(Loaded::new(model.clone(), scorer, stored.contract))
    }

    fn id_column(&self) -> Option<&mlops_contract::Column> {
        self.contract.id.as_deref().and_then(|id| self.contract.columns.iter().find(|c| c.name == id))
    }
}

/// The versions loaded so far in this execution environment.
#[derive(Debug, Default)]
pub struct Scorers {
    loaded: tokio::sync::Mutex<HashMap<ModelRef, Arc<Loaded>>>,
}

impl Scorers {
    pub async fn get(&self, lake: &Lake, model: &ModelRef) -> Result<Arc<Loaded>, Error> {
        let mut loaded = self.loaded.lock().await;
        if let Some(l) = loaded.get(model) {
            return Ok(Arc::clone(l));
        }
        let l = Arc::new(Loaded::from_registry(lake, model).await?);
        loaded.insert(model.clone(), Arc::clone(&l));
        Ok(l)
    }
}

/// One item of the Distributed Map: an object of the lake (the listing's other fields, and a
/// manifest's other columns, are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    #[serde(rename = "Key")]
    pub key: String,
}

/// What the state machine's ItemBatcher adds to each batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchInput {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "version")]
    pub version: Option<u32>,
}

/// A version given as a number or as text (`"2"`, `"v2"`), as execution input may carry it.
fn version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error as _;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => {
            n.as_u64().and_then(|v| u32::try_from(v).ok()).map(Some).ok_or_else(|| D::Error::custom("a bad version"))
        }
        Some(serde_json::Value::String(s)) => {
            s.trim_start_matches('v').parse().map(Some).map_err(|_| D::Error::custom(format!("version {s:?}")))
        }
        Some(other) => Err(D::Error::custom(format!("version {other}"))),
    }
}

/// One batch of items, as the Distributed Map's ItemBatcher passes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemBatch {
    #[serde(rename = "Items")]
    pub items: Vec<Item>,
    #[serde(rename = "BatchInput", default)]
    pub input: BatchInput,
}

/// What a batch did, which the Map's ResultWriter keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchScored {
    pub model: String,
    pub items: usize,
    pub rows: u64,
    pub scored: u64,
    pub failed: u64,
    /// The prediction objects written, one per item.
    pub outputs: Vec<String>,
}

/// The answer to an SQS event source with `ReportBatchItemFailures`: the records to retry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsBatchResponse {
    pub batch_item_failures: Vec<BatchItemFailure>,
}

/// One record to retry, by its message id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    pub item_identifier: String,
}

/// A row's prediction, or why it has none.
type Outcome = Result<serde_json::Map<String, serde_json::Value>, String>;

/// A prediction row before it is written: where its row came from (the source and the row's
/// number in it, from 1, as `mlops score` numbers rows), its id, its outcome.
struct Prediction {
    source: String,
    row: i64,
    id: Value,
    outcome: Outcome,
}

/// The key the predictions of `source` go to: its `dt=` partition (today's date when it
/// has none) and its name.
pub fn prediction_key(model: &ModelRef, source: &str, today: NaiveDate) -> String {
    let dt = source
        .split('/')
        .find_map(|s| s.strip_prefix("dt="))
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(today);
    let file = source.rsplit('/').next().unwrap_or(source);
    let stem = file.split('.').next().filter(|s| !s.is_empty()).unwrap_or("object");
    format!("predictions/{}/v{}/dt={}/{stem}.parquet", model.name, model.version, dt.format("%Y-%m-%d"))
}

/// The prefix holding every prediction of a model version.
pub fn predictions_prefix(model: &ModelRef) -> String {
    format!("predictions/{}/v{}/", model.name, model.version)
}

/// Scores `rows` (all contract columns, or an error per row) in chunks.
fn score_rows(loaded: &Loaded, at: &Positions, source: &str, rows: Vec<Result<Vec<Value>, String>>) -> Vec<Prediction> {
    let mut out = Vec::with_capacity(rows.len());
    let mut start = 0;
    for chunk in rows.chunks(CHUNK_ROWS) {
        let good: Vec<Vec<Value>> = chunk
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|r| at.features.iter().map(|&i| r[i].clone()).collect())
            .collect();
        let mut results = loaded.scorer.score_each(&good).into_iter();
        for (i, row) in chunk.iter().enumerate() {
            let (id, outcome) = match row {
                Ok(values) => (
                    at.id.map_or(Value::Null, |k| values[k].clone()),
                    results.next().unwrap_or_else(|| Err("no output for this row".into())),
                ),
                Err(e) => (Value::Null, Err(e.clone())),
            };
            out.push(Prediction { source: source.to_string(), row: (start + i + 1) as i64, id, outcome });
        }
        start += chunk.len();
    }
    out
}

/// The rows of an object: curated Parquet by column name, CSV and JSON Lines by the contract.
fn read_object(loaded: &Loaded, key: &str, bytes: bytes::Bytes) -> Result<Vec<Result<Vec<Value>, String>>, Error> {
    let object = |message: String| Error::Object { key: key.to_string(), message };
    if key.ends_with(".parquet") {
        let rows = mlops_formats::curated::read_values(bytes, &loaded.contract).map_err(|e| object(e.to_string()))?;
        return Ok(rows.into_iter().map(Ok).collect());
    }
    let kind = FileKind::of(key);
    if kind == FileKind::Profile {
        return Err(object("objects to score are .parquet, .csv or .jsonl (optionally .gz)".into()));
    }
    let input: Box<dyn std::io::BufRead> = if mlops_formats::rows::is_gzip(key, None) {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(bytes))))
    } else {
        Box::new(std::io::Cursor::new(bytes))
    };
    let mut rows = Vec::new();
    let read = read_batch(&loaded.contract, kind, input, |row| {
        rows.push(row.outcome.map_err(|reasons| reasons.into_iter().map(|r| r.message).collect::<Vec<_>>().join("; ")));
        Ok::<(), std::convert::Infallible>(())
    });
    match read {
        Ok(()) => Ok(rows),
        Err(ReadError::Consumer(never)) => match never {},
        Err(e) => Err(object(e.to_string())),
    }
}

/// The Parquet file of `predictions`.
fn predictions_parquet(loaded: &Loaded, predictions: &[Prediction]) -> Result<Vec<u8>, String> {
    let id = loaded.id_column();
    let mut fields = vec![Field::new("source", DataType::Utf8, false), Field::new("row", DataType::Int64, false)];
    let mut columns: Vec<ArrayRef> = Vec::new();
    let mut source = StringBuilder::new();
    let mut row = Int64Builder::new();
    for p in predictions {
        source.append_value(&p.source);
        row.append_value(p.row);
    }
    columns.push(Arc::new(source.finish()));
    columns.push(Arc::new(row.finish()));
    if let Some(id) = id {
        let name = &id.name;
        let array: ArrayRef = match id.kind {
            ColumnType::Int => {
                let mut b = Int64Builder::new();
                predictions.iter().for_each(|p| b.append_option(if let Value::Int(v) = p.id { Some(v) } else { None }));
                Arc::new(b.finish())
            }
            ColumnType::Float => {
                let mut b = Float64Builder::new();
                predictions.iter().for_each(|p| b.append_option(p.id.as_f64()));
                Arc::new(b.finish())
            }
            ColumnType::Bool => {
                let mut b = BooleanBuilder::new();
                predictions
                    .iter()
                    .for_each(|p| b.append_option(if let Value::Bool(v) = p.id { Some(v) } else { None }));
                Arc::new(b.finish())
            }
            _ => {
                let mut b = StringBuilder::new();
                predictions
                    .iter()
                    .for_each(|p| b.append_option(if let Value::Text(t) = &p.id { Some(t) } else { None }));
                Arc::new(b.finish())
            }
        };
        fields.push(Field::new(name, array.data_type().clone(), true));
        columns.push(array);
    }
    let (mut class, mut prediction, mut error) = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    for p in predictions {
        match &p.outcome {
            Ok(outputs) => {
                class.append_option(outputs.get("class").and_then(|c| c.as_str()));
                prediction.append_value(serde_json::Value::Object(outputs.clone()).to_string());
                error.append_null();
            }
            Err(e) => {
                class.append_null();
                prediction.append_null();
                error.append_value(e);
            }
        }
    }
    for (name, b) in [("class", class), ("prediction", prediction), ("error", error)] {
        let mut b = b;
        fields.push(Field::new(name, DataType::Utf8, true));
        columns.push(Arc::new(b.finish()));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(|e| e.to_string())?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, schema, Some(props)).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(out)
}

/// The model a batch names, else the function's.
fn batch_model(input: &BatchInput, config: &Config) -> Result<ModelRef, Error> {
    match (&input.model, input.version, &config.model) {
        (Some(name), Some(version), _) => Ok(ModelRef { name: name.clone(), version }),
        (None, None, Some(model)) => Ok(model.clone()),
        _ => Err(Error::NoModel),
    }
}

/// Scores one object into its prediction object; returns (rows, scored, failed, key).
pub async fn score_object(
    lake: &Lake,
    loaded: &Loaded,
    key: &str,
    today: NaiveDate,
) -> Result<(u64, u64, u64, String), Error> {
    let bytes = bytes::Bytes::from(lake.get(key).await?.bytes);
    let rows = read_object(loaded, key, bytes)?;
    let predictions = score_rows(loaded, &loaded.objects, key, rows);
    let scored = predictions.iter().filter(|p| p.outcome.is_ok()).count() as u64;
    let total = predictions.len() as u64;
    let out = prediction_key(&loaded.model, key, today);
    let parquet =
        predictions_parquet(loaded, &predictions).map_err(|message| Error::Write { key: out.clone(), message })?;
    lake.put(&out, parquet, "application/vnd.apache.parquet").await?;
    Ok((total, scored, total - scored, out))
}

/// Scores a batch of items: the handler of the batch-score state machine's Distributed Map.
pub async fn score_items(
    lake: &Lake,
    scorers: &Scorers,
    config: &Config,
    batch: &ItemBatch,
    today: NaiveDate,
) -> Result<BatchScored, Error> {
    let model = batch_model(&batch.input, config)?;
    let loaded = scorers.get(lake, &model).await?;
    let mut done = BatchScored { model: model.to_string(), items: batch.items.len(), ..BatchScored::default() };
    for item in &batch.items {
        let (rows, scored, failed, out) = score_object(lake, &loaded, &item.key, today).await?;
        tracing::info!(key = %item.key, rows, scored, failed, output = %out, "scored");
        done.rows += rows;
        done.scored += scored;
        done.failed += failed;
        done.outputs.push(out);
    }
    Ok(done)
}

/// Scores SQS records, one instance (a JSON object) each: the valid ones into one prediction
/// object, the rest reported as failed so that only they are retried.
pub async fn score_stream(
    lake: &Lake,
    scorers: &Scorers,
    config: &Config,
    event: &SqsEvent,
    today: NaiveDate,
) -> Result<SqsBatchResponse, Error> {
    let model = config.model.clone().ok_or(Error::NoModel)?;
    let loaded = scorers.get(lake, &model).await?;
    let mut rows = Vec::with_capacity(event.records.len());
    let mut ids = Vec::with_capacity(event.records.len());
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        let mut read: Vec<Result<Vec<Value>, String>> = Vec::new();
        let result = read_batch(&loaded.record, FileKind::Jsonl, body.as_bytes(), |row| {
            read.push(row.outcome.map_err(|r| r.into_iter().map(|r| r.message).collect::<Vec<_>>().join("; ")));
            Ok::<(), std::convert::Infallible>(())
        });
        let row = match (result, read.len()) {
            (Ok(()), 1) => read.pop().unwrap_or_else(|| Err("no instance".into())),
            (Ok(()), n) => Err(format!("the body holds {n} instances; a record carries one JSON object")),
            (Err(e), _) => Err(e.to_string()),
        };
        rows.push(row);
        ids.push(id);
    }
    let source = event.records.first().and_then(|r| r.event_source_arn.clone()).unwrap_or_else(|| "sqs".into());
    let predictions = score_rows(&loaded, &loaded.records, &source, rows);
    let mut failures = Vec::new();
    let mut kept = Vec::new();
    for (p, id) in predictions.into_iter().zip(ids) {
        match &p.outcome {
            Ok(_) => kept.push(p),
            Err(reason) => {
                tracing::warn!(message_id = %id, reason = %reason, "record not scored");
                failures.push(BatchItemFailure { item_identifier: id });
            }
        }
    }
    if !kept.is_empty() {
        let first = event.records.iter().find_map(|r| r.message_id.clone()).unwrap_or_default();
        let out = prediction_key(&model, &format!("stream-{first}"), today);
        let parquet =
            predictions_parquet(&loaded, &kept).map_err(|message| Error::Write { key: out.clone(), message })?;
        lake.put(&out, parquet, "application/vnd.apache.parquet").await?;
        tracing::info!(scored = kept.len(), failed = failures.len(), output = %out, "stream batch scored");
    }
    Ok(SqsBatchResponse { batch_item_failures: failures })
}

/// The two events the function takes.
#[derive(Debug)]
pub enum Event {
    Items(ItemBatch),
    Sqs(SqsEvent),
}

impl Event {
    /// Tells a Distributed Map batch from SQS records.
    pub fn parse(value: serde_json::Value) -> Result<Event, Error> {
        if value.get("Items").is_some() {
            return serde_json::from_value(value).map(Event::Items).map_err(|e| Error::Event(e.to_string()));
        }
        let sqs = value
            .get("Records")
            .and_then(|r| r.as_array())
            .is_some_and(|r| r.iter().all(|r| r.get("eventSource").and_then(|s| s.as_str()) == Some("aws:sqs")));
        if sqs {
            return serde_json::from_value(value).map(Event::Sqs).map_err(|e| Error::Event(e.to_string()));
        }
        Err(Error::Event("expected {\"Items\": [...]} or {\"Records\": [SQS messages]}".into()))
    }
}

/// The function's handler: a batch's summary, or the SQS batch response.
pub async fn handle(
    lake: &Lake,
    scorers: &Scorers,
    config: &Config,
    event: serde_json::Value,
) -> Result<serde_json::Value, Error> {
    let today = chrono::Utc::now().date_naive();
    let json = |v: Result<serde_json::Value, serde_json::Error>| v.map_err(|e| Error::Event(e.to_string()));
    match Event::parse(event)? {
        Event::Items(batch) => json(serde_json::to_value(score_items(lake, scorers, config, &batch, today).await?)),
        Event::Sqs(event) => json(serde_json::to_value(score_stream(lake, scorers, config, &event, today).await?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_go_to_their_source_date() {
        let m = ModelRef { name: "penguins".into(), version: 2 };
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        assert_eq!(
            prediction_key(&m, "curated/penguins/dt=2026-03-01/batch-02-abc.parquet", today),
            "predictions/penguins/v2/dt=2026-03-01/batch-02-abc.parquet"
        );
        assert_eq!(
            prediction_key(&m, "stream-19dd", today),
            "predictions/penguins/v2/dt=2026-12-01/stream-19dd.parquet"
        );
    }

    #[test]
    fn the_event_kind_is_told_by_its_shape() {
        let batch =
            serde_json::json!({"Items": [{"Key": "a", "Size": 3}], "BatchInput": {"model": "m", "version": "v3"}});
        match Event::parse(batch) {
            Ok(Event::Items(b)) => assert_eq!((b.items[0].key.as_str(), b.input.version), ("a", Some(3))),
            _ => panic!("a batch"),
        }
        let sqs: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/sqs-score.json")).expect("sample event");
        assert!(matches!(Event::parse(sqs), Ok(Event::Sqs(e)) if e.records.len() == 3));
        assert!(Event::parse(serde_json::json!({"Records": [{"eventSource": "aws:s3"}]})).is_err());
    }
}
