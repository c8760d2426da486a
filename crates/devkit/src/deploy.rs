//! Local stand-ins for what a deployment's lifecycle hooks call: a Lambda `Invoke` endpoint
//! (the REST protocol aws-sdk-lambda speaks, `POST /2015-03-31/functions/{name}/invocations`)
//! that hands each payload to a handler the caller gives, and a CodeDeploy endpoint that
//! answers `PutLifecycleEventHookExecutionStatus` (AWS JSON 1.1) and keeps every status.
//! `AWS_ENDPOINT_URL_LAMBDA` and `AWS_ENDPOINT_URL_CODEDEPLOY` point clients at them.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What an invocation answers: the payload, or a function error with its payload.
pub type Invoked = Result<Vec<u8>, Vec<u8>>;

/// A function behind the local Lambda endpoint: the function name (or ARN, as the caller
/// gave it) and the payload in, the answer out.
pub type Handler = Arc<dyn Fn(String, Vec<u8>) -> Pin<Box<dyn Future<Output = Invoked> + Send>> + Send + Sync>;

/// A running local Lambda endpoint. Dropping it stops the server.
pub struct LocalLambda {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for LocalLambda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLambda").field("addr", &self.addr).finish()
    }
}

impl LocalLambda {
    /// Serves on 127.0.0.1:`port` (0 picks a free port), every invocation through `handler`.
    pub async fn start(port: u16, handler: Handler) -> crate::Result<LocalLambda> {
        let app = Router::new().route(
            "/2015-03-31/functions/{name}/invocations",
            post(move |Path(name): Path<String>, body: Bytes| {
                let handler = Arc::clone(&handler);
                async move {
                    match handler(name, body.to_vec()).await {
                        Ok(payload) => {
                            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], payload).into_response()
                        }
                        Err(payload) => (
                            StatusCode::OK,
                            [
                                (header::CONTENT_TYPE, "application/json"),
                                (header::HeaderName::from_static("x-amz-function-error"), "Unhandled"),
                            ],
                            payload,
                        )
                            .into_response(),
                    }
                }
            }),
        );
        let (listener, addr) = crate::listen::bind("the Lambda endpoint", port).await?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "local Lambda stopped");
            }
        });
        Ok(LocalLambda { addr, task })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for LocalLambda {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running local CodeDeploy endpoint. Dropping it stops the server.
#[derive(Debug)]
pub struct LocalCodeDeploy {
    addr: SocketAddr,
    statuses: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalCodeDeploy {
    pub async fn start(port: u16) -> crate::Result<LocalCodeDeploy> {
        let statuses = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&statuses);
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let kept = Arc::clone(&kept);
            async move { put_status(&kept, &headers, &body) }
        });
        let (listener, addr) = crate::listen::bind("the CodeDeploy endpoint", port).await?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "local CodeDeploy stopped");
            }
        });
        Ok(LocalCodeDeploy { addr, statuses, task })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The statuses reported so far: `deploymentId`, `lifecycleEventHookExecutionId`, `status`.
    pub fn statuses(&self) -> Vec<Value> {
        self.statuses.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for LocalCodeDeploy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn put_status(statuses: &Mutex<Vec<Value>>, headers: &HeaderMap, body: &[u8]) -> Response {
    let reply = |status: StatusCode, body: Value| {
        (status, [(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body.to_string()).into_response()
    };
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if target != "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus" {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"__type": "UnknownOperationException", "message": format!("{target:?} is not supported")}),
        );
    }
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let status = request["status"].as_str().unwrap_or_default();
    if !["Succeeded", "Failed"].contains(&status) || request["deploymentId"].as_str().is_none() {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"__type": "InvalidLifecycleEventHookExecutionStatusException", "message": "status must be Succeeded or Failed, with a deploymentId"}),
        );
    }
    if let Ok(mut kept) = statuses.lock() {
        kept.push(request.clone());
    }
    reply(StatusCode::OK, json!({"lifecycleEventHookExecutionId": request["lifecycleEventHookExecutionId"]}))
}
