//! A local Step Functions endpoint: it answers `StartExecution`, `SendTaskSuccess` and
//! `SendTaskFailure` (the AWS JSON 1.0 protocol that aws-sdk-sfn speaks) by handing them to a
//! [`Backend`], so that `mlops pipeline start` and `mlops model approve|reject` reach a local
//! run of the state machine as they reach AWS. `AWS_ENDPOINT_URL_SFN` points clients at it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::lake_server::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

/// An error as Step Functions names it (`TaskDoesNotExist`, `ExecutionAlreadyExists`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: String,
    pub message: String,
}

/// What the endpoint hands its calls to.
pub trait Backend: Send + Sync + 'static {
    /// Starts an execution; returns its ARN.
    fn start_execution(&self, state_machine: &str, name: Option<&str>, input: Value) -> Result<String, ApiError>;
    fn send_task_success(&self, token: &str, output: Value) -> Result<(), ApiError>;
    fn send_task_failure(&self, token: &str, error: &str, cause: &str) -> Result<(), ApiError>;
}

/// A running local Step Functions endpoint. Dropping it stops the server.
#[derive(Debug)]
pub struct LocalStepFunctions {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl LocalStepFunctions {
    /// Serves on 127.0.0.1:`port` (0 picks a free port).
    pub async fn start(port: u16, backend: Arc<dyn Backend>) -> crate::Result<LocalStepFunctions> {
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let backend = Arc::clone(&backend);
            async move { answer(backend.as_ref(), &headers, &body) }
        });
        let (listener, addr) = crate::listen::bind("the Step Functions endpoint", port).await?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "local Step Functions endpoint stopped");
            }
        });
        Ok(LocalStepFunctions { addr, task })
    }

    /// The endpoint URL clients use.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A Step Functions client for this endpoint.
    pub fn client(&self) -> aws_sdk_sfn::Client {
        client_for(&self.endpoint())
    }
}

/// A Step Functions client for a local endpoint, with the dev kit's credentials.
pub fn client_for(endpoint: &str) -> aws_sdk_sfn::Client {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
        .region(aws_sdk_sfn::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sfn::config::Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "local-step-functions",
        ))
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}

impl Drop for LocalStepFunctions {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/x-amz-json-1.0")], body.to_string()).into_response()
}

fn error(kind: &str, message: &str) -> Response {
    reply(StatusCode::BAD_REQUEST, json!({"__type": kind, "message": message}))
}

fn answer(backend: &dyn Backend, headers: &HeaderMap, body: &[u8]) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return error("ValidationException", &e.to_string()),
    };
    let text = |name: &str| request[name].as_str().unwrap_or_default().to_string();
    let json_field = |name: &str| -> Result<Value, String> {
        match request[name].as_str() {
            Some(s) => serde_json::from_str(s).map_err(|e| format!("{name} is not JSON: {e}")),
            None => Ok(json!({})),
        }
    };
    let result = match target {
        "AWSStepFunctions.StartExecution" => {
            let input = match json_field("input") {
                Ok(v) => v,
                Err(e) => return error("InvalidExecutionInput", &e),
            };
            let name = request["name"].as_str();
            backend.start_execution(&text("stateMachineArn"), name, input).map(|arn| {
                json!({"executionArn": arn, "startDate": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)})
            })
        }
        "AWSStepFunctions.SendTaskSuccess" => {
            let output = match json_field("output") {
                Ok(v) => v,
                Err(e) => return error("InvalidOutput", &e),
            };
            backend.send_task_success(&text("taskToken"), output).map(|()| json!({}))
        }
        "AWSStepFunctions.SendTaskFailure" => {
            backend.send_task_failure(&text("taskToken"), &text("error"), &text("cause")).map(|()| json!({}))
        }
        other => return error("UnknownOperationException", &format!("{other:?} is not supported locally")),
    };
    match result {
        Ok(body) => reply(StatusCode::OK, body),
        Err(e) => error(&e.kind, &e.message),
    }
}
