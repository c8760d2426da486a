//! A local Amazon Data Firehose endpoint: it answers `PutRecordBatch` and `PutRecord` (the AWS
//! JSON 1.1 protocol that aws-sdk-firehose speaks) and delivers each call's records, in order
//! and concatenated, as one object under its stream's prefix in the embedded lake, named as
//! Firehose names them (`<prefix>dt=YYYY-MM-DD/<stream>-1-<time>-<n>.jsonl`). A stream that
//! is not configured is `ResourceNotFoundException`, as on AWS. `AWS_ENDPOINT_URL_FIREHOSE`
//! points clients at it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use mlops_lake::Lake;
use serde_json::{Value, json};

use crate::lake_server::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

/// Largest record Firehose takes (1,000 KiB before base64).
pub const MAX_RECORD_BYTES: usize = 1000 * 1024;
/// Most records one `PutRecordBatch` takes.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Largest request Firehose takes (4 MiB, the base64 of the records included).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// A running local delivery-stream endpoint. Dropping it stops the server.
#[derive(Debug)]
pub struct LocalFirehose {
    addr: SocketAddr,
    delivered: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone)]
struct State {
    lake: Lake,
    /// Per stream name, the prefix it delivers to (ending in `/`).
    streams: Arc<BTreeMap<String, String>>,
    sequence: Arc<AtomicU64>,
    delivered: Arc<AtomicU64>,
}

impl LocalFirehose {
    /// Serves on 127.0.0.1:`port` (0 picks a free port), delivering each stream of `streams`
    /// (name, prefix) into `lake`.
    pub async fn start(port: u16, lake: Lake, streams: &[(String, String)]) -> crate::Result<LocalFirehose> {
        let delivered = Arc::new(AtomicU64::new(0));
        let state = State {
            lake,
            streams: Arc::new(streams.iter().cloned().collect()),
            sequence: Arc::new(AtomicU64::new(0)),
            delivered: Arc::clone(&delivered),
        };
        // Requests over Firehose's limit are refused by `handle`, in Firehose's words, rather
        // than cut off by the server's default body limit.
        let app = Router::new()
            .fallback(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move { handle(&state, &headers, &body).await }
            })
            .layer(axum::extract::DefaultBodyLimit::max(2 * MAX_REQUEST_BYTES));
        let (listener, addr) = crate::listen::bind("the Firehose endpoint", port).await?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "local Firehose stopped");
            }
        });
        Ok(LocalFirehose { addr, delivered, task })
    }

    /// The endpoint URL clients use.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Records delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// A Firehose client for this endpoint.
    pub fn client(&self) -> aws_sdk_firehose::Client {
        client_for(&self.endpoint())
    }
}

/// A Firehose client for a local endpoint URL.
pub fn client_for(endpoint: &str) -> aws_sdk_firehose::Client {
    use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_firehose::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "local-firehose"))
        .build();
    aws_sdk_firehose::Client::from_conf(config)
}

impl Drop for LocalFirehose {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"__type": kind, "message": message}).to_string();
    (status, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body).into_response()
}

fn reply(body: Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body.to_string()).into_response()
}

async fn handle(state: &State, headers: &HeaderMap, body: &[u8]) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let batch = match target {
        "Firehose_20150804.PutRecordBatch" => true,
        "Firehose_20150804.PutRecord" => false,
        other => {
            return error(StatusCode::BAD_REQUEST, "UnknownOperationException", &format!("{other:?} is not supported"));
        }
    };
    if body.len() > MAX_REQUEST_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "InvalidArgumentException",
            &format!("the request of {} bytes exceeds {MAX_REQUEST_BYTES}", body.len()),
        );
    }
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "ValidationException", &e.to_string()),
    };
    let stream = request["DeliveryStreamName"].as_str().unwrap_or_default();
    let Some(prefix) = state.streams.get(stream) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            &format!("Firehose {stream} under account 000000000000 not found."),
        );
    };
    let records: Vec<&Value> = if batch {
        match request["Records"].as_array() {
            Some(list) if !list.is_empty() && list.len() <= MAX_BATCH_RECORDS => list.iter().collect(),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    &format!("Records must hold 1 to {MAX_BATCH_RECORDS} records"),
                );
            }
        }
    } else {
        vec![&request["Record"]]
    };
    let mut data = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let decoded = record["Data"]
            .as_str()
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .filter(|d| !d.is_empty() && d.len() <= MAX_RECORD_BYTES);
        let Some(decoded) = decoded else {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                &format!("record {i}: Data must be base64 of 1 to {MAX_RECORD_BYTES} bytes"),
            );
        };
        data.extend_from_slice(&decoded);
    }
    let now = chrono::Utc::now();
    let n = state.sequence.fetch_add(1, Ordering::Relaxed);
    let key =
        format!("{prefix}dt={}/{stream}-1-{}-{n:08}.jsonl", now.format("%Y-%m-%d"), now.format("%Y-%m-%d-%H-%M-%S"));
    if let Err(e) = state.lake.put(&key, data, "application/x-ndjson").await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceUnavailableException", &e.to_string());
    }
    state.delivered.fetch_add(records.len() as u64, Ordering::Relaxed);
    let id = |i: usize| format!("local-{n:08}-{i:04}");
    if batch {
        let responses: Vec<Value> = (0..records.len()).map(|i| json!({"RecordId": id(i)})).collect();
        reply(json!({"FailedPutCount": 0, "Encrypted": false, "RequestResponses": responses}))
    } else {
        reply(json!({"RecordId": id(0), "Encrypted": false}))
    }
}
