//! `predict`: serves a registered model version over HTTP.
//!
//! The same axum [`Router`] runs behind API Gateway (through lambda_http), on a local port,
//! and in-process for `mlops invoke`.

mod error;
mod request;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mlops_core::config::{Env, ModelConfig};
use mlops_core::registry::{self, ModelVersion};
use mlops_core::storage::Lake;
use serde_json::json;

pub use error::{ApiError, Error};
pub use request::Detail;

/// Largest request body accepted, the same as Lambda's synchronous payload limit.
const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// Settings of the HTTP layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Most instances one request may carry; more get 413.
    pub max_instances: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_instances: 1000 }
    }
}

impl Limits {
    /// `PREDICT_MAX_INSTANCES` (default 1000).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> mlops_core::Result<Limits> {
        Ok(Limits { max_instances: env.parsed("PREDICT_MAX_INSTANCES", Limits::default().max_instances)? })
    }
}

/// What the handlers share: the loaded model version and the limits.
#[derive(Debug)]
pub struct App {
    pub version: ModelVersion,
    pub limits: Limits,
}

impl App {
    /// Loads the configured model version from the registry (once per cold start).
    pub async fn load(lake: &Lake, config: &ModelConfig, limits: Limits) -> Result<App, Error> {
        let version = registry::load(lake, &config.model_name, config.model_version).await?;
        registry::check_fits(&version.model, &version.contract)?;
        Ok(App { version, limits })
    }
}

/// The HTTP routes: `POST /predict` and `GET /model`.
pub fn router(app: Arc<App>) -> Router {
    Router::new().route("/predict", post(predict)).route("/model", get(model_info)).fallback(not_found).with_state(app)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}; use POST /predict or GET /model", request.method(), request.uri().path()),
    )
}

async fn model_info(State(app): State<Arc<App>>) -> Response {
    let v = &app.version;
    axum::Json(json!({
        "name": v.manifest.name,
        "version": v.manifest.version,
        "created_at": v.manifest.created_at,
        "model_sha256": v.manifest.model_sha256,
        "inputs": v.manifest.inputs,
        "outputs": v.manifest.outputs,
        "features": v.contract.features,
        "class_labels": v.manifest.class_labels,
        "metrics": v.manifest.metrics,
        "contract": v.contract,
    }))
    .into_response()
}

async fn predict(State(app): State<Arc<App>>, request: Request) -> Response {
    let started = Instant::now();
    let request_id = request
        .extensions()
        .get::<lambda_http::Context>()
        .map(|c| c.request_id.clone())
        .or_else(|| request.headers().get("x-request-id").and_then(|h| h.to_str().ok()).map(str::to_string))
        .unwrap_or_default();
    let (rows, response) = match score(&app, request).await {
        Ok((rows, body)) => (rows, (StatusCode::OK, axum::Json(body)).into_response()),
        Err((rows, e)) => (rows, e.into_response()),
    };
    let manifest = &app.version.manifest;
    tracing::info!(
        target: "audit",
        request_id = %request_id,
        model = %manifest.name,
        model_version = manifest.version,
        rows,
        latency_ms = started.elapsed().as_secs_f64() * 1e3,
        status = response.status().as_u16(),
        outcome = if response.status().is_success() { "ok" } else { "rejected" },
        "prediction request"
    );
    response
}

async fn score(app: &App, request: Request) -> Result<(usize, serde_json::Value), (usize, ApiError)> {
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await.map_err(|_| {
        (0, ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the body exceeds {MAX_BODY_BYTES} bytes")))
    })?;
    let contract = &app.version.contract;
    let batch = request::parse(contract, &body, app.limits.max_instances).map_err(|e| (0, e))?;
    let rows = batch.rows;
    let mut outputs = app.version.model.predict(&batch.features, rows).map_err(|e| {
        tracing::error!(error = %e, "model run failed");
        (rows, ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the model could not score these instances"))
    })?;
    add_class_names(app, &mut outputs);
    let manifest = &app.version.manifest;
    Ok((
        rows,
        json!({
            "model": {"name": manifest.name, "version": manifest.version},
            "predictions": outputs,
        }),
    ))
}

/// Adds `class` beside the model's integer label when the version names its classes.
fn add_class_names(app: &App, outputs: &mut mlops_core::model::RowOutputs) {
    let manifest = &app.version.manifest;
    let Some(labels) = &manifest.class_labels else { return };
    let Some(label) = manifest.outputs.iter().find(|o| o.dtype == "i64" && o.shape.len() == 1) else { return };
    for row in outputs.iter_mut() {
        let class = row.get(&label.name).and_then(|v| v.as_u64()).and_then(|i| labels.get(i as usize)).cloned();
        if let Some(class) = class {
            row.insert("class".into(), class.into());
        }
    }
}

/// Runs one API Gateway (HTTP API, payload 2.0) event through the router exactly as
/// lambda_http does on Lambda, and returns the response event as JSON.
pub async fn invoke(router: Router, event: &str) -> Result<serde_json::Value, Error> {
    use lambda_http::Service;
    let request: lambda_http::request::LambdaRequest =
        serde_json::from_str(event).map_err(|e| Error::Event(e.to_string()))?;
    let mut context = lambda_http::Context::default();
    context.request_id = "local-invoke".into();
    // lambda_http's Adapter is the conversion `lambda_http::run` applies on Lambda; using it
    // here keeps local invocations byte-for-byte the same as deployed ones.
    let mut adapter = lambda_http::Adapter::from(router);
    let response =
        adapter.call(lambda_http::LambdaEvent::new(request, context)).await.map_err(|e| Error::Event(e.to_string()))?;
    serde_json::to_value(response).map_err(|e| Error::Event(e.to_string()))
}

/// Serves the router on a local address until the process is stopped.
pub async fn serve_local(router: Router, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("predict listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router).await
}
