//! A local EventBridge endpoint: it answers `PutEvents` (the AWS JSON 1.1 protocol that
//! aws-sdk-eventbridge speaks) and keeps every entry, so that drift-check's `DriftDetected`
//! events can be sent and read without an AWS account. `AWS_ENDPOINT_URL_EVENTBRIDGE` points
//! clients at it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::lake_server::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

/// A running local event bus. Dropping it stops the server.
#[derive(Debug)]
pub struct LocalEventBus {
    addr: SocketAddr,
    events: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone)]
struct State {
    events: Arc<Mutex<Vec<Value>>>,
    /// Each entry is also appended to this JSON Lines file, when set.
    log: Option<PathBuf>,
    /// Each entry is also sent here, as EventBridge delivers it to a rule's target.
    subscriber: Option<tokio::sync::mpsc::UnboundedSender<Value>>,
}

impl LocalEventBus {
    /// Serves on 127.0.0.1:`port` (0 picks a free port); entries are also appended to `log`.
    pub async fn start(port: u16, log: Option<PathBuf>) -> crate::Result<LocalEventBus> {
        LocalEventBus::start_with(port, log, None).await
    }

    /// [`start`](LocalEventBus::start), also sending every entry to `subscriber` in the shape
    /// a rule's target receives (see [`delivered`]).
    pub async fn start_with(
        port: u16,
        log: Option<PathBuf>,
        subscriber: Option<tokio::sync::mpsc::UnboundedSender<Value>>,
    ) -> crate::Result<LocalEventBus> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let state = State { events: Arc::clone(&events), log, subscriber };
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move { put_events(&state, &headers, &body) }
        });
        let (listener, addr) = crate::listen::bind("the event bus", port).await?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "local event bus stopped");
            }
        });
        Ok(LocalEventBus { addr, events, task })
    }

    /// The endpoint URL clients use.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The entries received so far, as sent (`Source`, `DetailType`, `Detail`, …) plus `EventId`.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// An EventBridge client for this endpoint.
    pub fn client(&self) -> aws_sdk_eventbridge::Client {
        let config = aws_sdk_eventbridge::Config::builder()
            .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
            .region(aws_sdk_eventbridge::config::Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "local-event-bus",
            ))
            .build();
        aws_sdk_eventbridge::Client::from_conf(config)
    }
}

impl Drop for LocalEventBus {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An entry as `PutEvents` took it, in the shape EventBridge delivers it to a rule's target
/// (a state machine's execution input): `version`, `id`, `detail-type`, `source`, `account`,
/// `time`, `region`, `resources`, and `detail` as JSON.
pub fn delivered(entry: &Value) -> Value {
    let detail = entry["Detail"].as_str().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null);
    json!({
        "version": "0",
        "id": entry["EventId"],
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "000000000000",
        "time": entry.get("Time").cloned().unwrap_or_else(|| now_rfc3339().into()),
        "region": REGION,
        "resources": entry.get("Resources").cloned().unwrap_or_else(|| json!([])),
        "detail": detail,
    })
}

fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"__type": kind, "message": message}).to_string();
    (status, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body).into_response()
}

fn put_events(state: &State, headers: &HeaderMap, body: &[u8]) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if target != "AWSEvents.PutEvents" {
        return error(StatusCode::BAD_REQUEST, "UnknownOperationException", &format!("{target:?} is not supported"));
    }
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "ValidationException", &e.to_string()),
    };
    let Some(entries) = request["Entries"].as_array() else {
        return error(StatusCode::BAD_REQUEST, "ValidationException", "Entries is required");
    };
    let mut results = Vec::with_capacity(entries.len());
    let mut failed = 0;
    for entry in entries {
        let detail_ok = entry["Detail"].as_str().is_some_and(|d| serde_json::from_str::<Value>(d).is_ok());
        if entry["Source"].as_str().is_none() || entry["DetailType"].as_str().is_none() || !detail_ok {
            failed += 1;
            results.push(json!({"ErrorCode": "MalformedDetail", "ErrorMessage": "Source, DetailType and a JSON Detail are required"}));
            continue;
        }
        let mut events = match state.events.lock() {
            Ok(events) => events,
            Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "InternalException", "event store unavailable"),
        };
        let id = format!("local-{:08}", events.len() + 1);
        let mut stored = entry.clone();
        stored["EventId"] = id.clone().into();
        if let Some(path) = &state.log {
            use std::io::Write as _;
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| writeln!(f, "{stored}"));
            if let Err(e) = appended {
                tracing::warn!(error = %e, path = %path.display(), "local event bus: appending to the log");
            }
        }
        if let Some(subscriber) = &state.subscriber {
            // A closed subscriber only means nobody listens any more.
            let _ = subscriber.send(delivered(&stored));
        }
        events.push(stored);
        results.push(json!({"EventId": id}));
    }
    let body = json!({"FailedEntryCount": failed, "Entries": results}).to_string();
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body).into_response()
}
