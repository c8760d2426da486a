//! A Lambda Runtime API (2018-06-01) on 127.0.0.1, for running the shipped `bootstrap`
//! binaries as Lambda runs them: the binary polls `invocation/next`, answers on
//! `invocation/{id}/response` or `invocation/{id}/error`, and reports a failed start on
//! `init/error`.
//!
//! Tests and the cold-start benchmark start a function binary with
//! `AWS_LAMBDA_RUNTIME_API` set to [`RuntimeApi::address`], then [`RuntimeApi::invoke`] it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Notify, oneshot, watch};

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The body posted to `invocation/{id}/response`.
    Response(String),
    /// An error posted to `invocation/{id}/error` (or `init/error`).
    Error(FunctionError),
}

/// An error report: `{"errorType", "errorMessage"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct FunctionError {
    #[serde(rename = "errorType", default)]
    pub error_type: String,
    #[serde(rename = "errorMessage", default)]
    pub error_message: String,
}

impl FunctionError {
    fn parse(body: &[u8]) -> FunctionError {
        serde_json::from_slice(body).unwrap_or_else(|_| FunctionError {
            error_type: String::new(),
            error_message: String::from_utf8_lossy(body).into_owned(),
        })
    }
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<(String, String)>>,
    queued: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<watch::Sender<Option<FunctionError>>>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// A running Runtime API. Dropping it stops the server.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    init_errors: watch::Receiver<Option<FunctionError>>,
    stop: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi").field("addr", &self.addr).finish()
    }
}

/// The deadline given with each invocation.
const DEADLINE: Duration = Duration::from_secs(900);

impl RuntimeApi {
    /// Starts the API on a free port of 127.0.0.1.
    pub async fn start() -> crate::Result<RuntimeApi> {
        let shared = Arc::new(Shared::default());
        let (init_tx, init_errors) = watch::channel(None);
        if let Ok(mut slot) = shared.init_error.lock() {
            *slot = Some(init_tx);
        }
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        // Lambda's Runtime API answers at once; so must this one (no delayed-ACK stalls).
        let (listener, addr) = crate::listen::bind("the Runtime API", 0).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "runtime API server stopped");
            }
        });
        Ok(RuntimeApi { addr, shared, init_errors, stop: Some(stop) })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`: `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The environment Lambda gives a function, besides its own configuration.
    pub fn lambda_env(&self, function: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", function.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_string()),
            ("_HANDLER", "bootstrap".to_string()),
        ]
    }

    /// Queues `event` and waits for the function's answer.
    pub async fn invoke(&self, event: &str) -> crate::Result<Outcome> {
        let n = self.shared.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.waiting).insert(id.clone(), tx);
        lock(&self.shared.queue).push_back((id, event.to_string()));
        self.shared.queued.notify_one();
        let mut init_errors = self.init_errors.clone();
        tokio::select! {
            outcome = rx => outcome.map_err(|_| crate::Error::Dropped),
            reported = init_errors.wait_for(Option::is_some) => {
                let error = reported.ok().and_then(|e| e.clone());
                Ok(Outcome::Error(error.unwrap_or_else(|| FunctionError::parse(b""))))
            }
        }
    }

    /// Waits for the function to report a failed start on `init/error`.
    pub async fn init_error(&self) -> Option<FunctionError> {
        let mut init_errors = self.init_errors.clone();
        init_errors.wait_for(Option::is_some).await.ok().and_then(|e| e.clone())
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    loop {
        let notified = shared.queued.notified();
        if let Some((id, event)) = lock(&shared.queue).pop_front() {
            let deadline = std::time::SystemTime::now()
                .checked_add(DEADLINE)
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis());
            let mut headers = HeaderMap::new();
            let mut set = |name: &'static str, value: String| {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(name, v);
                }
            };
            set("lambda-runtime-aws-request-id", id);
            set("lambda-runtime-deadline-ms", deadline.to_string());
            set("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:local".into());
            set(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".into(),
            );
            set("content-type", "application/json".into());
            return (StatusCode::OK, headers, event).into_response();
        }
        notified.await;
    }
}

fn complete(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match lock(&shared.waiting).remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    complete(&shared, &id, Outcome::Response(String::from_utf8_lossy(&body).into_owned()))
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    complete(&shared, &id, Outcome::Error(FunctionError::parse(&body)))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    if let Some(tx) = lock(&shared.init_error).as_ref() {
        let _ = tx.send(Some(FunctionError::parse(&body)));
    }
    StatusCode::ACCEPTED
}
