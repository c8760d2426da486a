//! `predict`: serves a registered model version over HTTP.
//!
//! The same axum [`Router`] runs behind API Gateway (through lambda_http), on a local port,
//! and in-process for `mlops invoke`.

pub mod ab;
pub mod capture;
mod config;
mod error;
pub mod metrics;
pub mod request;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mlops_contract::Contract;
use mlops_contract::validate::Value;
use mlops_lake::Lake;
use mlops_lake::registry::{self, Manifest};
use mlops_lambda::ModelConfig;
use mlops_model::{Model, RowOutputs, Scorer};
use serde_json::json;

pub use ab::{AbConfig, Variant};
pub use capture::{Capture, CaptureConfig};
pub use config::{Config, Limits, worker_threads};
pub use error::{ApiError, Error};
pub use metrics::Emit;
pub use request::Detail;

/// Longest request id taken from a caller's `x-request-id`; a longer one is replaced.
const MAX_REQUEST_ID_BYTES: usize = 128;

/// A request id for a request that came without one (off Lambda, no `x-request-id`): the
/// process's start, its id and a counter, unique within and across processes.
fn generated_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let start = START.get_or_init(|| chrono::Utc::now().timestamp_micros());
    format!("{start:x}-{:x}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Largest request body accepted, the same as Lambda's synchronous payload limit.
const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// A loaded model version: its manifest, contract and scorer.
#[derive(Debug)]
pub struct Served {
    pub manifest: Manifest,
    pub contract: Contract,
    pub scorer: Scorer,
    /// How long loading it took, for the cold-start breakdown.
    pub timings: LoadTimings,
    /// The dimension values and metric names of its metric lines, made once.
    pub names: metrics::Names,
}

/// Where a version's load time went.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadTimings {
    /// Reading the manifest, the contract and the model from the lake (concurrently).
    pub read: Duration,
    /// Parsing, typing and optimising the ONNX model, and checking it against the contract.
    pub build: Duration,
}

impl Served {
    /// Loads a registered version and checks that its model fits its contract.
    pub async fn load(lake: &Lake, name: &str, version: u32) -> Result<Served, Error> {
        let started = Instant::now();
        let (manifest, contract, bytes) = registry::load_for_serving(lake, name, version).await?;
        let read = started.elapsed();
        let mut served = Served::new(manifest, contract, Model::load(&bytes)?)?;
        served.timings = LoadTimings { read, build: started.elapsed() - read };
        Ok(served)
    }

    /// A version from its parts.
    pub fn new(manifest: Manifest, contract: Contract, model: Model) -> Result<Served, Error> {
        let scorer = Scorer::new(model, &contract, manifest.class_labels.clone())?;
        let names = metrics::Names::of(&manifest);
        Ok(Served { manifest, contract, scorer, timings: LoadTimings::default(), names })
    }

    /// Scores validated rows (contract feature order) and returns each row's outputs.
    pub fn score(&self, rows: &[Vec<Value>]) -> mlops_model::Result<RowOutputs> {
        self.scorer.score(rows)
    }
}

/// The challenger of an A/B test and its share of the keys.
#[derive(Debug)]
pub struct Ab {
    pub challenger: Served,
    pub weight: f64,
    pub columns: Arc<capture::Columns>,
}

/// What the handlers share: the champion, an optional shadow, an optional A/B challenger, the
/// limits, data capture and where the metrics go.
#[derive(Debug)]
pub struct App {
    pub champion: Served,
    /// Scored on the same input and logged beside the champion's answer; never returned.
    pub shadow: Option<Arc<Served>>,
    pub limits: Limits,
    /// A challenger that answers a share of the requests, when an A/B test runs.
    pub ab: Option<Ab>,
    /// Samples requests and their answers to the lake, when configured.
    pub capture: Option<Arc<Capture>>,
    /// The names of captured values: the champion's features and id column.
    pub columns: Arc<capture::Columns>,
    pub emit: Emit,
}

impl App {
    /// Loads the configured model version (and the shadow version, if any) from the
    /// registry, once per cold start.
    pub async fn load(lake: &Lake, config: &ModelConfig, limits: Limits) -> Result<App, Error> {
        App::load_with(lake, config, limits, None).await
    }

    /// [`App::load`] with the challenger of an A/B test too: the versions load concurrently,
    /// so a cold start waits for the slowest of them, not for their sum.
    pub async fn load_with(
        lake: &Lake,
        config: &ModelConfig,
        limits: Limits,
        ab: Option<&AbConfig>,
    ) -> Result<App, Error> {
        let name = &config.model_name;
        let optional = |version: Option<u32>| async move {
            match version {
                Some(v) => Served::load(lake, name, v).await.map(Some),
                None => Ok(None),
            }
        };
        let (champion, shadow, challenger) = tokio::try_join!(
            Served::load(lake, name, config.model_version),
            optional(config.shadow_version),
            optional(ab.map(|ab| ab.version)),
        )?;
        let columns = Arc::new(capture::Columns::of(&champion.contract));
        let ab = match (ab, challenger) {
            (Some(ab), Some(challenger)) => {
                let columns = Arc::new(capture::Columns::of(&challenger.contract));
                Some(Ab { challenger, weight: ab.weight, columns })
            }
            _ => None,
        };
        Ok(App { champion, shadow: shadow.map(Arc::new), ab, limits, capture: None, columns, emit: Emit::Stdout })
    }

    /// The model version that answers as `variant`.
    pub fn served(&self, variant: Variant) -> &Served {
        match (variant, &self.ab) {
            (Variant::Challenger, Some(ab)) => &ab.challenger,
            _ => &self.champion,
        }
    }

    /// An app that serves `champion` alone, with default limits, no capture and no metrics.
    pub fn of(champion: Served) -> App {
        let columns = Arc::new(capture::Columns::of(&champion.contract));
        App { champion, shadow: None, ab: None, limits: Limits::default(), capture: None, columns, emit: Emit::Discard }
    }
}

/// The HTTP routes: `POST /predict` and `GET /model`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/predict", post(predict))
        .route("/model", get(model_info))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(app)
}

async fn method_not_allowed(request: Request) -> ApiError {
    let path = request.uri().path();
    let allowed = if path == "/model" { "GET" } else { "POST" };
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {path}; use {allowed} {path}", request.method()),
    )
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}; use POST /predict or GET /model", request.method(), request.uri().path()),
    )
}

async fn model_info(State(app): State<Arc<App>>) -> Response {
    let v = &app.champion;
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
        "input_layout": v.scorer.layout(),
        "shadow_version": app.shadow.as_ref().map(|s| s.manifest.version),
        "ab": app.ab.as_ref().map(|ab| json!({"challenger_version": ab.challenger.manifest.version, "weight": ab.weight})),
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
        .filter(|id| !id.is_empty() && id.len() <= MAX_REQUEST_ID_BYTES)
        .unwrap_or_else(generated_request_id);
    let (key, target) = (header(&request, ab::KEY_HEADER), header(&request, ab::TARGET_HEADER));
    let mut variant = Variant::Champion;
    let (rows, mut response) = match score(&app, request, &request_id, key.as_deref(), target.as_deref()).await {
        Ok(answer) => {
            variant = answer.variant;
            app.emit.line(|| metrics::answered(&app, answer.variant, started.elapsed(), &answer.outputs));
            let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
            (answer.rows, (StatusCode::OK, json, answer.body).into_response())
        }
        Err((rows, e)) => {
            app.emit.line(|| metrics::rejected(&app, started.elapsed(), e.reason()));
            (rows, e.into_response())
        }
    };
    // The request id names the captured rows (`<request id>:<index>`), so the caller gets it.
    if let Ok(value) = axum::http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let manifest = &app.served(variant).manifest;
    tracing::info!(
        target: "audit",
        request_id = %request_id,
        model = %manifest.name,
        model_version = manifest.version,
        variant = variant.name(),
        rows,
        latency_ms = started.elapsed().as_secs_f64() * 1e3,
        status = response.status().as_u16(),
        outcome = if response.status().is_success() { "ok" } else { "rejected" },
        "prediction request"
    );
    response
}

/// The body of a `200` answer.
#[derive(serde::Serialize)]
struct Answered<'a> {
    model: AnsweredModel<'a>,
    predictions: &'a RowOutputs,
    variant: &'a str,
}

#[derive(serde::Serialize)]
struct AnsweredModel<'a> {
    name: &'a str,
    version: u32,
}

fn header(request: &Request, name: &str) -> Option<String> {
    request.headers().get(name).and_then(|h| h.to_str().ok()).map(str::to_string)
}

/// The answer of a scored request: its rows, the response body, the outputs and the variant
/// that answered.
struct Answer {
    rows: usize,
    /// The JSON of an [`Answered`].
    body: Vec<u8>,
    outputs: Arc<RowOutputs>,
    variant: Variant,
}

/// The variant that answers: the pinned one, else by the key (the header, else the first
/// instance's id), else by the request id; always the champion without an A/B test.
fn choose(
    app: &App,
    key: Option<&str>,
    target: Option<&str>,
    first_id: Option<&str>,
    request_id: &str,
) -> Result<Variant, ApiError> {
    if let Some(target) = target {
        let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, m);
        return match Variant::parse(target) {
            Some(Variant::Challenger) if app.ab.is_none() => Err(bad("x-target-variant: no challenger is served")),
            Some(variant) => Ok(variant),
            None => Err(bad("x-target-variant must be champion or challenger")),
        };
    }
    Ok(match &app.ab {
        Some(ab) => ab::assign(key.or(first_id).unwrap_or(request_id), ab.weight),
        None => Variant::Champion,
    })
}

async fn score(
    app: &App,
    request: Request,
    request_id: &str,
    key: Option<&str>,
    target: Option<&str>,
) -> Result<Answer, (usize, ApiError)> {
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.downcast_ref::<http_body_util::LengthLimitError>().is_some())
            || e.to_string().contains("length limit");
        let error = if too_large {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the body exceeds {MAX_BODY_BYTES} bytes"))
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "the body could not be read whole (was it cut short?)")
        };
        (0, error)
    })?;
    let mut batch = request::parse(&app.champion.contract, &body, app.limits.max_instances).map_err(|e| (0, e))?;
    let first_id = batch.ids.first().cloned().flatten();
    let variant = choose(app, key, target, first_id.as_deref(), request_id).map_err(|e| (0, e))?;
    let champion = app.served(variant);
    if champion.contract.features != app.champion.contract.features || champion.contract.id != app.champion.contract.id
    {
        batch = request::parse(&champion.contract, &body, app.limits.max_instances).map_err(|e| (0, e))?;
    }
    let at = chrono::Utc::now();
    let rows = Arc::new(batch.rows);
    let n = rows.len();
    let shadow = app.shadow.clone().map(|shadow| {
        let rows = Arc::clone(&rows);
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            (shadow.score(&rows), started.elapsed())
        })
    });
    let outputs = champion.score(&rows).map_err(|e| {
        tracing::error!(error = %e, "model run failed");
        (n, ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the model could not score these instances"))
    })?;
    if let (Some(task), Some(shadow)) = (shadow, &app.shadow) {
        log_shadow(request_id, champion, shadow, &outputs, task, app.limits.shadow_budget).await;
    }
    let manifest = &champion.manifest;
    // Serialised straight from the outputs, without a copy as a JSON tree.
    let body = serde_json::to_vec(&Answered {
        model: AnsweredModel { name: &manifest.name, version: manifest.version },
        predictions: &outputs,
        variant: variant.name(),
    })
    .map_err(|e| {
        tracing::error!(error = %e, "the answer could not be serialised");
        (n, ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the answer could not be serialised"))
    })?;
    let outputs = Arc::new(outputs);
    if let Some(capture) = app.capture.as_ref().filter(|c| c.sampled(request_id)) {
        capture.offer(capture::Captured {
            at,
            request_id: request_id.to_string(),
            model: manifest.name.clone(),
            model_version: manifest.version,
            variant: variant.name(),
            rows,
            ids: batch.ids,
            outputs: Arc::clone(&outputs),
            columns: match (variant, &app.ab) {
                (Variant::Challenger, Some(ab)) => Arc::clone(&ab.columns),
                _ => Arc::clone(&app.columns),
            },
        });
    }
    Ok(Answer { rows: n, body, outputs, variant })
}

/// Waits for the shadow's answer within its budget and logs it beside the champion's. A
/// shadow that fails or runs late is logged and otherwise ignored.
async fn log_shadow(
    request_id: &str,
    champion: &Served,
    shadow: &Served,
    answer: &RowOutputs,
    task: tokio::task::JoinHandle<(mlops_model::Result<RowOutputs>, Duration)>,
    budget: Duration,
) {
    let (champion_version, shadow_version) = (champion.manifest.version, shadow.manifest.version);
    match tokio::time::timeout(budget, task).await {
        Ok(Ok((Ok(shadow_answer), took))) => {
            let label = |row: &serde_json::Map<String, serde_json::Value>| {
                row.get("class").or_else(|| row.get("label")).cloned()
            };
            let agree = answer.iter().zip(&shadow_answer).filter(|(a, b)| label(a) == label(b)).count();
            tracing::info!(
                target: "shadow",
                request_id = %request_id,
                champion_version,
                shadow_version,
                rows = answer.len(),
                agreement = agree as f64 / answer.len().max(1) as f64,
                latency_ms = took.as_secs_f64() * 1e3,
                champion = %serde_json::Value::from(answer.clone()),
                shadow = %serde_json::Value::from(shadow_answer),
                "shadow prediction"
            );
        }
        Ok(Ok((Err(e), _))) => {
            tracing::warn!(target: "shadow", request_id = %request_id, shadow_version, error = %e, "shadow model failed")
        }
        Ok(Err(e)) => {
            tracing::warn!(target: "shadow", request_id = %request_id, shadow_version, error = %e, "shadow task failed")
        }
        Err(_) => tracing::warn!(
            target: "shadow",
            request_id = %request_id,
            shadow_version,
            budget_ms = budget.as_millis() as u64,
            "shadow model exceeded its budget"
        ),
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
    serve_on(listener, router).await
}

/// Serves the router on a bound listener. Every connection has `TCP_NODELAY` set, so that an
/// answer is not held back until the client's delayed ACK (about 40 ms) when its headers and
/// body go out in separate writes.
pub async fn serve_on(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|socket: &mut tokio::net::TcpStream| {
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, router).await
}
