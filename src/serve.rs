//! `mlops serve`: the whole stack on a laptop, without an AWS account.
//!
//! - the embedded S3 lake;
//! - predict's router on a port (the model version is loaded on the first request once it is
//!   registered, and kept);
//! - the bucket notification: objects that appear under `raw/` (put through S3, or copied
//!   into the lake's directory) are handed to ingest in the shape S3 delivers them;
//! - drift-check on a schedule (`--drift-every`), or on demand with `mlops invoke
//!   drift-check` against the same lake;
//! - a local EventBridge endpoint that receives drift-check's `DriftDetected` events and
//!   appends them to `events.jsonl` in the lake's directory.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use mlops_core::Lake;
use mlops_core::config::{DriftCheckConfig, Env, ModelConfig, ingest_limits, process_env};
use tokio::sync::Mutex;
use tower::ServiceExt as _;

use crate::event_bus::LocalEventBus;
use crate::lake_server::{EmbeddedLake, ensure_bucket};

/// The bus name drift-check sends to when `EVENT_BUS_NAME` is not set.
pub const LOCAL_BUS: &str = "mlops-local";

/// What `mlops serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub dir: PathBuf,
    pub lake_port: u16,
    pub predict_port: u16,
    pub events_port: u16,
    pub bucket: String,
    /// The model version predict serves and drift-check watches.
    pub model: String,
    pub version: u32,
    /// How often `raw/` is listed for new objects.
    pub poll: Duration,
    /// How often drift-check runs; never when `None`.
    pub drift_every: Option<Duration>,
}

/// Runs the stack until Ctrl-C.
pub async fn serve(options: &ServeOptions) -> anyhow::Result<()> {
    let server = EmbeddedLake::start(&options.dir, options.lake_port).await?;
    let client = server.client();
    ensure_bucket(&client, &options.bucket).await?;
    let lake = Lake::new(client, &options.bucket);
    let bus = LocalEventBus::start(options.events_port, Some(options.dir.join("events.jsonl"))).await?;
    let model = ModelConfig {
        bucket: options.bucket.clone(),
        model_name: options.model.clone(),
        model_version: options.version,
        shadow_version: None,
    };

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.predict_port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let predict = lazy_predict(lake.clone(), model.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, predict).await {
            tracing::error!(error = %e, "predict server stopped");
        }
    });

    println!("lake     {} (directory {}, bucket {})", server.endpoint(), options.dir.display(), options.bucket);
    println!("predict  http://{addr}/predict  (model {} v{})", options.model, options.version);
    println!(
        "ingest   objects under s3://{}/raw/<dataset>/ (or {}/{}/raw/<dataset>/)",
        options.bucket,
        options.dir.display(),
        options.bucket
    );
    println!(
        "events   {} (EventBridge PutEvents; entries appended to {})",
        bus.endpoint(),
        options.dir.join("events.jsonl").display()
    );
    match options.drift_every {
        Some(every) => println!("drift    every {} s", every.as_secs()),
        None => println!("drift    on demand: mlops invoke drift-check --event events/schedule.json"),
    }
    println!("\nexport these to use the lake from another terminal (mlops model register, mlops invoke, aws s3):");
    for (name, value) in server.env_vars() {
        println!("  export {name}={value}");
    }
    println!("  export AWS_ENDPOINT_URL_EVENTBRIDGE={} EVENT_BUS_NAME={LOCAL_BUS}", bus.endpoint());
    println!("  export LAKE_BUCKET={} MODEL_NAME={} MODEL_VERSION={}", options.bucket, options.model, options.version);
    println!("\nPress Ctrl-C to stop.");

    let notifier = tokio::spawn(notify_raw(lake.clone(), options.poll));
    let events = bus.client();
    let drift = options.drift_every.map(|every| tokio::spawn(drift_schedule(lake.clone(), events, model, every)));
    tokio::signal::ctrl_c().await?;
    notifier.abort();
    if let Some(d) = drift {
        d.abort();
    }
    Ok(())
}

/// predict's router, built on the first request that finds the model version registered.
fn lazy_predict(lake: Lake, config: ModelConfig) -> Router {
    let loaded: Arc<Mutex<Option<Router>>> = Arc::new(Mutex::new(None));
    Router::new().fallback(move |request: Request<Body>| {
        let (lake, config, loaded) = (lake.clone(), config.clone(), Arc::clone(&loaded));
        async move {
            let router = {
                let mut slot = loaded.lock().await;
                if slot.is_none() {
                    let limits = match predict::Limits::from_env(&process_env()) {
                        Ok(l) => l,
                        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                    };
                    match predict::App::load(&lake, &config, limits).await {
                        Ok(app) => *slot = Some(predict::router(Arc::new(app))),
                        Err(e) => return not_ready(&config, &e.to_string()),
                    }
                }
                slot.clone()
            };
            match router {
                Some(router) => router.oneshot(request).await.into_response(),
                None => not_ready(&config, "not loaded"),
            }
        }
    })
}

fn not_ready(config: &ModelConfig, cause: &str) -> Response {
    let body = serde_json::json!({
        "error": format!("model {} v{} is not available: {cause}", config.model_name, config.model_version),
        "details": [{"path": "", "reason": "register it with `mlops model register` against this lake"}],
    });
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// Stands in for the bucket notification: lists `raw/` and hands every new or changed object
/// to ingest as an `ObjectCreated:Put` event. Objects present at start are taken as already
/// ingested.
async fn notify_raw(lake: Lake, poll: Duration) {
    let limits = match ingest_limits(&process_env()) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "ingest configuration");
            return;
        }
    };
    let mut seen: HashMap<String, (i64, Option<String>)> = HashMap::new();
    let mut first = true;
    loop {
        match lake.list_objects(mlops_core::lake::RAW_PREFIX).await {
            Ok(objects) => {
                for object in objects {
                    let stamp = (object.size, object.etag.clone());
                    if seen.get(&object.key) == Some(&stamp) {
                        continue;
                    }
                    seen.insert(object.key.clone(), stamp);
                    if !first {
                        ingest_one(&lake, &limits, &object).await;
                    }
                }
                first = false;
            }
            Err(e) => tracing::warn!(error = %e, "listing raw/"),
        }
        tokio::time::sleep(poll).await;
    }
}

async fn ingest_one(lake: &Lake, limits: &mlops_core::ingest::IngestLimits, object: &mlops_core::storage::Listed) {
    let etag = object.etag.clone().unwrap_or_default();
    let size = u64::try_from(object.size).unwrap_or_default();
    let event = match ingest::object_created_event(lake.bucket(), &object.key, &etag, size, chrono::Utc::now()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ingest {}: {e}", object.key);
            return;
        }
    };
    match ingest::invoke(lake, limits, &event).await {
        Ok(outcomes) => {
            let outcomes: Vec<mlops_core::ingest::IngestOutcome> = serde_json::from_value(outcomes).unwrap_or_default();
            for outcome in outcomes {
                match outcome {
                    mlops_core::ingest::IngestOutcome::Ingested(s) => println!(
                        "ingest   {}: {} rows, {} curated, {} quarantined → {}, {}, {}",
                        s.source,
                        s.counts.rows_read,
                        s.counts.curated,
                        s.counts.quarantined,
                        s.curated_keys.join(", "),
                        s.quarantine_key,
                        s.profile_key
                    ),
                    mlops_core::ingest::IngestOutcome::Skipped { key, reason } => {
                        println!("ingest   {key}: skipped ({reason})")
                    }
                }
            }
        }
        Err(e) => eprintln!("ingest   {}: {e}", object.key),
    }
}

async fn drift_schedule(lake: Lake, events: aws_sdk_eventbridge::Client, model: ModelConfig, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        // The DRIFT_* variables apply; the model is the one served.
        let version = model.model_version.to_string();
        let env = Env(|name: &str| match name {
            "LAKE_BUCKET" => Some(model.bucket.clone()),
            "MODEL_NAME" => Some(model.model_name.clone()),
            "MODEL_VERSION" => Some(version.clone()),
            "EVENT_BUS_NAME" => Some(std::env::var(name).unwrap_or_else(|_| LOCAL_BUS.to_string())),
            _ => std::env::var(name).ok(),
        });
        let config = match DriftCheckConfig::from_env(&env) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("drift    {e}");
                continue;
            }
        };
        let event = match drift_check::scheduled_event(chrono::Utc::now()) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("drift    {e}");
                continue;
            }
        };
        match drift_check::invoke(&lake, &events, &config, &event).await {
            Ok(summary) => println!("drift    {summary}"),
            Err(e) => eprintln!("drift    {e}"),
        }
    }
}
