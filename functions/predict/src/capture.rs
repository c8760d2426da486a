//! Data capture: a sample of the requests, with their instances and answers, delivered to the
//! lake through an Amazon Data Firehose delivery stream (`PutRecordBatch`).
//!
//! The request path only decides whether the request is sampled and hands its rows and
//! outputs (already in memory) to a bounded queue with `try_send`: it never waits for the
//! stream, and a full queue drops the capture, counted, rather than the request. A
//! background task turns them into JSON lines ([`mlops_lake::capture::CaptureLine`]), packs
//! the lines of successive requests into records of up to [`RECORD_BYTES`], and sends them in
//! batches of at most [`BATCH_RECORDS`] records and [`BATCH_BYTES`] bytes, at the latest every
//! `flush_interval`. Records Firehose refuses are sent once more, then dropped
//! with a warning. On Lambda the task runs while an invocation runs; what is queued when the
//! environment is shut down (at most one flush interval's worth) is lost, as capture is a
//! sample and not the record of the request (the audit log is).

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use chrono::{DateTime, Utc};
use mlops_contract::validate::Value;
use mlops_lake::capture::{CaptureLine, CaptureMeta, inference_id};
use mlops_lambda::{ConfigError, Env};
use mlops_model::RowOutputs;
use tokio::sync::mpsc;

/// Most records one `PutRecordBatch` carries (Firehose's limit).
pub const BATCH_RECORDS: usize = 500;
/// Most bytes of records one `PutRecordBatch` carries: Firehose takes requests of up to 4 MiB,
/// and the records travel base64-encoded (4 bytes for 3), so 3 MiB of records stay within it.
pub const BATCH_BYTES: usize = 3 * 1024 * 1024;
/// Most bytes of one record (Firehose's limit is 1,000 KiB); a request's lines are split
/// into records of at most this size.
pub const RECORD_BYTES: usize = 1000 * 1024;

/// How capture is configured: `CAPTURE_STREAM` (the delivery stream; unset turns capture
/// off), `CAPTURE_SAMPLE_RATE` (the share of requests captured, 0 to 1, default 1),
/// `CAPTURE_FLUSH_MS` (the longest a captured request waits to be sent, default 1000, at least
/// 10) and `CAPTURE_QUEUE` (requests queued at most, default 10000, at least 1).
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureConfig {
    pub stream: String,
    pub sample_rate: f64,
    pub flush_interval: Duration,
    pub queue: usize,
}

impl CaptureConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Option<CaptureConfig>, ConfigError> {
        let Some(stream) = env.text("CAPTURE_STREAM") else { return Ok(None) };
        let sample_rate: f64 = env.parsed("CAPTURE_SAMPLE_RATE", 1.0)?;
        if !(0.0..=1.0).contains(&sample_rate) {
            return Err(ConfigError::new(
                "CAPTURE_SAMPLE_RATE",
                format!("={sample_rate} is not a share between 0 and 1"),
            ));
        }
        Ok(Some(CaptureConfig {
            stream,
            sample_rate,
            flush_interval: Duration::from_millis(env.at_least("CAPTURE_FLUSH_MS", 1000u64, 10)?),
            queue: env.at_least("CAPTURE_QUEUE", 10_000usize, 1)?,
        }))
    }
}

/// One sampled request, as the request path hands it over.
#[derive(Debug)]
pub struct Captured {
    pub at: DateTime<Utc>,
    pub request_id: String,
    pub model: String,
    pub model_version: u32,
    pub variant: &'static str,
    pub rows: Arc<Vec<Vec<Value>>>,
    pub ids: Vec<Option<String>>,
    pub outputs: Arc<RowOutputs>,
    /// The names of the row's values.
    pub columns: Arc<Columns>,
}

/// Counts of what capture did, for predict's metrics.
#[derive(Debug, Default)]
pub struct CaptureCounts {
    /// Requests dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Lines Firehose took.
    pub delivered: AtomicU64,
    /// Lines lost after Firehose refused them twice or the call failed.
    pub failed: AtomicU64,
}

/// The request path's end of capture.
#[derive(Debug)]
pub struct Capture {
    sender: mpsc::Sender<Captured>,
    sample_rate: f64,
    sequence: AtomicU64,
    pub counts: Arc<CaptureCounts>,
}

/// The names the lines use: the contract's features in order, then its id column.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    pub features: Vec<String>,
    pub id: Option<String>,
}

impl Columns {
    pub fn of(contract: &mlops_contract::Contract) -> Columns {
        Columns { features: contract.features.clone(), id: contract.id.clone() }
    }
}

impl Capture {
    /// Starts the background sender on the current runtime.
    pub fn start(client: aws_sdk_firehose::Client, config: &CaptureConfig) -> Capture {
        let (sender, receiver) = mpsc::channel(config.queue);
        let counts = Arc::new(CaptureCounts::default());
        let sink = Sink { client, stream: config.stream.clone(), counts: Arc::clone(&counts) };
        tokio::spawn(run(sink, receiver, config.flush_interval));
        Capture { sender, sample_rate: config.sample_rate, sequence: AtomicU64::new(0), counts }
    }

    /// Whether a request is captured: decided by a hash of its request id, so that a sample
    /// is the same whichever process sees the request (requests without an id are numbered).
    pub fn sampled(&self, request_id: &str) -> bool {
        if self.sample_rate >= 1.0 {
            return true;
        }
        if self.sample_rate <= 0.0 {
            return false;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        request_id.hash(&mut hasher);
        if request_id.is_empty() {
            self.sequence.fetch_add(1, Ordering::Relaxed).hash(&mut hasher);
        }
        (hasher.finish() as f64 / u64::MAX as f64) < self.sample_rate
    }

    /// Queues a sampled request without waiting; a full queue drops it (counted).
    pub fn offer(&self, captured: Captured) {
        if self.sender.try_send(captured).is_err() {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn json_of(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Float(x) => serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Int(n) => (*n).into(),
        Value::Bool(b) => (*b).into(),
        Value::Text(t) => t.as_str().into(),
    }
}

/// The JSON lines of one captured request, grouped into records of at most
/// [`RECORD_BYTES`] (a single line longer than that is a record of its own).
pub fn records(captured: Captured) -> Vec<Vec<u8>> {
    let columns = Arc::clone(&captured.columns);
    let mut records = Vec::new();
    let mut current = Vec::new();
    for (index, (row, output)) in captured.rows.iter().zip(captured.outputs.iter()).enumerate() {
        let id = captured.ids.get(index).cloned().flatten();
        let mut values: serde_json::Map<String, serde_json::Value> =
            columns.features.iter().cloned().zip(row.iter().map(json_of)).collect();
        if let (Some(name), Some(id)) = (&columns.id, &id) {
            values.insert(name.clone(), id.clone().into());
        }
        let line = CaptureLine {
            capture: CaptureMeta {
                at: captured.at,
                request_id: captured.request_id.clone(),
                inference_id: id.unwrap_or_else(|| inference_id(&captured.request_id, index)),
                model: captured.model.clone(),
                model_version: captured.model_version,
                variant: captured.variant.to_string(),
            },
            prediction: output.clone(),
            values,
        };
        let Ok(mut text) = serde_json::to_vec(&line) else { continue };
        text.push(b'\n');
        if !current.is_empty() && current.len() + text.len() > RECORD_BYTES {
            records.push(std::mem::take(&mut current));
        }
        current.extend_from_slice(&text);
    }
    if !current.is_empty() {
        records.push(current);
    }
    records
}

struct Sink {
    client: aws_sdk_firehose::Client,
    stream: String,
    counts: Arc<CaptureCounts>,
}

fn lines(record: &[u8]) -> u64 {
    record.iter().filter(|b| **b == b'\n').count() as u64
}

impl Sink {
    /// Sends one batch; refused records are sent once more, then counted as failed.
    async fn send(&self, batch: Vec<Vec<u8>>) {
        let mut pending = batch;
        for attempt in 0..2 {
            let records: Vec<Record> =
                pending.iter().filter_map(|r| Record::builder().data(Blob::new(r.clone())).build().ok()).collect();
            let result = self
                .client
                .put_record_batch()
                .delivery_stream_name(&self.stream)
                .set_records(Some(records))
                .send()
                .await;
            match result {
                Ok(out) => {
                    let refused: Vec<Vec<u8>> = pending
                        .into_iter()
                        .zip(out.request_responses())
                        .filter_map(|(r, response)| response.error_code().map(|_| r))
                        .collect();
                    pending = refused;
                }
                Err(e) => {
                    tracing::warn!(
                        target: "capture", stream = %self.stream, attempt,
                        error = %aws_sdk_firehose::error::DisplayErrorContext(&e), "PutRecordBatch failed"
                    );
                }
            }
            if pending.is_empty() {
                return;
            }
        }
        let lost: u64 = pending.iter().map(|r| lines(r)).sum();
        self.counts.failed.fetch_add(lost, Ordering::Relaxed);
        tracing::warn!(target: "capture", stream = %self.stream, lines = lost, "captured lines dropped after two attempts");
    }
}

/// What the sender holds between flushes: the record being filled and the records of the
/// next batch.
#[derive(Default)]
struct Pending {
    record: Vec<u8>,
    batch: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pending {
    /// Adds a request's lines: to the record being filled while it stays within
    /// [`RECORD_BYTES`] (Firehose bills each record by 5 KB steps, so small requests share
    /// records), else as the start of the next record. Returns whether the batch is full.
    fn add(&mut self, lines: Vec<u8>) -> bool {
        if !self.record.is_empty() && self.record.len() + lines.len() > RECORD_BYTES {
            self.seal();
        }
        if self.record.is_empty() {
            self.record = lines;
        } else {
            self.record.extend_from_slice(&lines);
        }
        self.batch.len() + 1 >= BATCH_RECORDS || self.bytes + self.record.len() >= BATCH_BYTES - RECORD_BYTES
    }

    /// Moves the record being filled into the batch.
    fn seal(&mut self) {
        if !self.record.is_empty() {
            let record = std::mem::take(&mut self.record);
            self.bytes += record.len();
            self.batch.push(record);
        }
    }
}

/// The background sender: packs requests' lines into records and records into batches, and
/// flushes them when a batch is full or the flush interval has passed, and once more when the
/// queue closes.
async fn run(sink: Sink, mut receiver: mpsc::Receiver<Captured>, flush_interval: Duration) {
    let mut pending = Pending::default();
    let mut tick = tokio::time::interval(flush_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = receiver.recv() => {
                let Some(captured) = received else { break };
                for record in records(captured) {
                    if pending.add(record) {
                        flush(&sink, &mut pending).await;
                    }
                }
            }
            _ = tick.tick() => flush(&sink, &mut pending).await,
        }
    }
    flush(&sink, &mut pending).await;
}

async fn flush(sink: &Sink, pending: &mut Pending) {
    pending.seal();
    if pending.batch.is_empty() {
        return;
    }
    let taken = std::mem::take(&mut pending.batch);
    pending.bytes = 0;
    let total: u64 = taken.iter().map(|r| lines(r)).sum();
    let before = sink.counts.failed.load(Ordering::Relaxed);
    sink.send(taken).await;
    let failed = sink.counts.failed.load(Ordering::Relaxed) - before;
    sink.counts.delivered.fetch_add(total - failed, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(rows: usize, ids: Vec<Option<String>>, columns: Columns) -> Captured {
        Captured {
            at: DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z").expect("time").to_utc(),
            request_id: "req".into(),
            model: "m".into(),
            model_version: 3,
            variant: "champion",
            rows: Arc::new((0..rows).map(|i| vec![Value::Float(i as f64), Value::Text("a".into())]).collect()),
            ids,
            outputs: Arc::new(
                (0..rows)
                    .map(|i| serde_json::Map::from_iter([("label".to_string(), serde_json::Value::from(i as i64))]))
                    .collect(),
            ),
            columns: Arc::new(columns),
        }
    }

    #[test]
    fn lines_carry_typed_values_ids_and_outputs() {
        let columns = Columns { features: vec!["x".into(), "c".into()], id: Some("order".into()) };
        let records = records(captured(2, vec![Some("o-7".into()), None], columns));
        assert_eq!(records.len(), 1);
        let text = String::from_utf8(records[0].clone()).expect("UTF-8");
        let lines: Vec<CaptureLine> = text.lines().map(|l| serde_json::from_str(l).expect("line")).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].capture.inference_id, "o-7");
        assert_eq!(lines[0].values["order"], "o-7");
        assert_eq!(lines[1].capture.inference_id, "req:1", "without an id the request id and index name the row");
        assert_eq!(lines[1].values["x"], 1.0);
        assert_eq!(lines[1].values["c"], "a");
        assert_eq!(lines[1].prediction["label"], 1);
        assert_eq!((lines[1].capture.model_version, lines[1].capture.variant.as_str()), (3, "champion"));
    }

    #[test]
    fn small_requests_share_records_and_batches_stay_within_limits() {
        let mut pending = Pending::default();
        let mut full = false;
        for _ in 0..10 {
            full |= pending.add(b"{\"x\":1}\n".to_vec());
        }
        assert!(!full);
        pending.seal();
        assert_eq!(pending.batch.len(), 1, "ten small requests make one record");
        assert_eq!(lines(&pending.batch[0]), 10);
        let mut pending = Pending::default();
        let big = vec![b'x'; RECORD_BYTES - 1].into_iter().chain([b'\n']).collect::<Vec<u8>>();
        let mut adds = 0;
        while !pending.add(big.clone()) {
            adds += 1;
        }
        pending.seal();
        assert!(pending.bytes <= BATCH_BYTES && pending.batch.len() <= BATCH_RECORDS, "{adds}");
        assert!(pending.batch.iter().all(|r| r.len() <= RECORD_BYTES));
    }

    #[test]
    fn records_stay_within_firehose_limits() {
        let columns = Columns { features: vec!["x".into(), "c".into()], id: None };
        let records = records(captured(20_000, vec![], columns));
        assert!(records.len() > 1);
        assert!(records.iter().all(|r| r.len() <= RECORD_BYTES && r.ends_with(b"\n")));
        assert_eq!(records.iter().map(|r| lines(r)).sum::<u64>(), 20_000);
    }
}
