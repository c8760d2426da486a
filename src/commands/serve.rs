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
//!   appends them to `events.jsonl` in the lake's directory;
//! - data capture: predict samples requests (`CAPTURE_SAMPLE_RATE`, all by default) to a local
//!   Firehose delivery stream that writes them under `capture/<model>/dt=…/` in the lake;
//! - the retraining state machine (`statemachines/retrain.asl.json`, run locally), which the
//!   `DriftDetected` rule starts, as does `mlops pipeline start` through a local Step Functions
//!   endpoint; a promotion loads the new version into predict once it answers, and drift-check
//!   watches it from then on.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::event::s3::S3Event;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::Args;
use mlops_flows::ingest::{IngestLimits, IngestOutcome};
use mlops_lake::client::Listed;
use mlops_lake::{Lake, ModelRef};
use mlops_lambda::{Env, ModelConfig, process_env};
use tokio::sync::Mutex;
use tower::ServiceExt as _;

use mlops_devkit::event_bus::LocalEventBus;
use mlops_devkit::firehose::LocalFirehose;
use mlops_devkit::lake_server::{EmbeddedLake, LakeCredentials, ensure_bucket};
use mlops_devkit::step_functions::LocalStepFunctions;
use mlops_pipeline::asl::{RunOptions, TaskTokens};
use mlops_pipeline::local::Deployer;
use mlops_pipeline::state::Settings as RetrainSettings;

use super::LakeArgs;
use super::pipeline::{
    ApprovalArg, LOCAL_STATE_MACHINE, PromoteArg, TokenBackend, local_settings, run_retrain, summary,
};

/// The bus name drift-check sends to when `EVENT_BUS_NAME` is not set.
pub const LOCAL_BUS: &str = "mlops-local";

/// Run the whole stack locally until Ctrl-C, with no AWS account.
///
/// The embedded lake, predict on a port, ingest on
/// every object that appears under raw/ (as the bucket notification would), and drift-check on
/// a schedule. No AWS account needed. The functions' variables (PREDICT_*, INGEST_*, DRIFT_*)
/// apply, and a bad value stops the start with a message naming it.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory holding the lake (one sub-directory per bucket).
    #[arg(long, default_value = "lake")]
    pub dir: PathBuf,
    /// Port of the S3 endpoint.
    #[arg(long, default_value_t = 9000)]
    pub lake_port: u16,
    /// Port of predict (POST /predict, GET /model).
    #[arg(long, default_value_t = 8080)]
    pub predict_port: u16,
    /// Port of the local EventBridge endpoint that receives DriftDetected events.
    #[arg(long, default_value_t = 9001)]
    pub events_port: u16,
    /// The model version to serve and watch, as NAME@VERSION.
    #[arg(long, default_value = "penguins@1")]
    pub model: ModelRef,
    /// How often raw/ is listed for new objects, in milliseconds (at least 50).
    #[arg(long, default_value_t = 1000)]
    pub poll_ms: u64,
    /// Run drift-check every this many seconds (off unless set).
    #[arg(long)]
    pub drift_every_s: Option<u64>,
    /// Port of the local Step Functions endpoint (`mlops pipeline start`, approvals).
    #[arg(long, default_value_t = 9002)]
    pub sfn_port: u16,
    /// Port of the local Firehose endpoint that delivers predict's capture into the lake.
    #[arg(long, default_value_t = 9003)]
    pub firehose_port: u16,
    /// Capture no request (capture is on by default, at CAPTURE_SAMPLE_RATE).
    #[arg(long)]
    pub no_capture: bool,
    /// An A/B test: this version of the model answers a share of the requests (sticky by the
    /// x-request-key header or the contract's id), beside the served one.
    #[arg(long, env = "AB_MODEL_VERSION")]
    pub ab_version: Option<u32>,
    /// The challenger's share of the keys, 0 to 1.
    #[arg(long, env = "AB_WEIGHT", default_value_t = 0.5)]
    pub ab_weight: f64,
    /// Whether a person approves a version the retraining gate promotes.
    #[arg(long, value_enum, default_value_t = ApprovalArg::None)]
    pub approval: ApprovalArg,
    /// Deploy a promoted version as the served model or as the shadow beside it.
    #[arg(long, value_enum, default_value_t = PromoteArg::Live)]
    pub promote_as: PromoteArg,
    /// Days of curated partitions a retraining snapshot takes.
    #[arg(long, default_value_t = 30)]
    pub retrain_window_days: u32,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl ServeArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let options = ServeOptions {
            dir: self.dir,
            lake_port: self.lake_port,
            predict_port: self.predict_port,
            events_port: self.events_port,
            bucket: self.lake.bucket,
            model: self.model.name,
            version: self.model.version,
            poll: Duration::from_millis(self.poll_ms.max(50)),
            drift_every: self.drift_every_s.map(Duration::from_secs),
            sfn_port: self.sfn_port,
            firehose_port: (!self.no_capture).then_some(self.firehose_port),
            ab: match self.ab_version {
                Some(version) if (0.0..=1.0).contains(&self.ab_weight) => {
                    Some(predict::AbConfig { version, weight: self.ab_weight })
                }
                Some(_) => anyhow::bail!("--ab-weight {} is not a share between 0 and 1", self.ab_weight),
                None => None,
            },
            settings: local_settings(self.approval, self.promote_as),
            retrain_window_days: self.retrain_window_days,
        };
        serve(&options).await
    }
}

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
    pub sfn_port: u16,
    /// The port of the local Firehose that takes predict's capture; no capture when `None`.
    pub firehose_port: Option<u16>,
    /// The challenger of an A/B test, when one runs.
    pub ab: Option<predict::AbConfig>,
    /// The retraining state machine's settings.
    pub settings: RetrainSettings,
    pub retrain_window_days: u32,
}

/// The functions' configuration, read once at start as each function reads it at its cold start.
struct Settings {
    predict: predict::Limits,
    capture: Option<predict::CaptureConfig>,
    ingest: IngestLimits,
    drift: drift_check::Config,
}

fn settings(options: &ServeOptions) -> anyhow::Result<Settings> {
    let version = options.version.to_string();
    // The DRIFT_* and other variables apply; the model and bucket are the ones served.
    let env = Env(|name: &str| match name {
        "LAKE_BUCKET" => Some(options.bucket.clone()),
        "MODEL_NAME" => Some(options.model.clone()),
        "MODEL_VERSION" => Some(version.clone()),
        "EVENT_BUS_NAME" => Some(std::env::var(name).unwrap_or_else(|_| LOCAL_BUS.to_string())),
        _ => std::env::var(name).ok(),
    });
    let stream = capture_stream(&options.model);
    let capture_env = Env(|name: &str| match name {
        "CAPTURE_STREAM" => Some(stream.clone()),
        "CAPTURE_FLUSH_MS" => Some(std::env::var(name).unwrap_or_else(|_| "200".into())),
        _ => std::env::var(name).ok(),
    });
    Ok(Settings {
        predict: predict::Limits::from_env(&process_env())?,
        capture: predict::CaptureConfig::from_env(&capture_env)?,
        ingest: ingest::limits_from_env(&process_env())?,
        drift: drift_check::Config::from_env(&env)?,
    })
}

/// The delivery stream of a model's capture (the template names it the same way).
pub fn capture_stream(model: &str) -> String {
    format!("mlops-capture-{model}")
}

/// Runs the stack until Ctrl-C.
pub async fn serve(options: &ServeOptions) -> anyhow::Result<()> {
    let settings = settings(options)?;
    let server = EmbeddedLake::start_with(&options.dir, options.lake_port, LakeCredentials::from_env()).await?;
    let client = server.client();
    ensure_bucket(&client, &options.bucket).await?;
    let lake = Lake::new(client, &options.bucket);
    let (drift_events, drift_rx) = tokio::sync::mpsc::unbounded_channel();
    let bus =
        LocalEventBus::start_with(options.events_port, Some(options.dir.join("events.jsonl")), Some(drift_events))
            .await?;
    let model = ModelConfig {
        bucket: options.bucket.clone(),
        model_name: options.model.clone(),
        model_version: options.version,
        shadow_version: None,
    };

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.predict_port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let (firehose, capture) = match (options.firehose_port, &settings.capture) {
        (Some(port), Some(config)) => {
            let streams = [(config.stream.clone(), mlops_lake::capture::prefix(&options.model))];
            let firehose = LocalFirehose::start(port, lake.clone(), &streams).await?;
            let capture = Arc::new(predict::Capture::start(firehose.client(), config));
            (Some(firehose), Some(capture))
        }
        _ => (None, None),
    };
    let predictor =
        Predictor::new(lake.clone(), model.clone(), settings.predict.clone()).with_capture(capture).with_ab(options.ab);
    let predict = predictor.router();
    tokio::spawn(async move {
        if let Err(e) = predict::serve_on(listener, predict).await {
            tracing::error!(error = %e, "predict server stopped");
        }
    });
    let drift_config = Arc::new(Mutex::new(settings.drift));
    let tokens = TaskTokens::default();
    let (starts, starts_rx) = tokio::sync::mpsc::unbounded_channel();
    let sfn = LocalStepFunctions::start(
        options.sfn_port,
        Arc::new(TokenBackend { tokens: tokens.clone(), starts: Some(starts) }),
    )
    .await?;
    let retrain = Retrainer {
        lake: lake.clone(),
        deployer: Arc::new(ServeDeployer { predictor: predictor.clone(), drift: Arc::clone(&drift_config) }),
        tokens,
        settings: options.settings,
        window_days: options.retrain_window_days,
    };
    let retrainer = tokio::spawn(retrain.listen(drift_rx, starts_rx));

    println!("lake     {} (directory {}, bucket {})", server.endpoint(), options.dir.display(), options.bucket);
    println!("predict  http://{addr}/predict  (model {} v{})", options.model, options.version);
    if let Some(ab) = &options.ab {
        println!(
            "         A/B: v{} answers {:.0}% of the keys (x-request-key); pin with x-target-variant",
            ab.version,
            ab.weight * 100.0
        );
    }
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
    match &firehose {
        Some(f) => println!(
            "capture  {} (Firehose PutRecordBatch) → s3://{}/{}dt=…/",
            f.endpoint(),
            options.bucket,
            mlops_lake::capture::prefix(&options.model)
        ),
        None => println!("capture  off"),
    }
    match options.drift_every {
        Some(every) => println!("drift    every {} s", every.as_secs()),
        None => println!("drift    on demand: mlops invoke drift-check --event events/schedule.json"),
    }
    println!(
        "retrain  on DriftDetected or ModelQualityDegraded, or `mlops pipeline start` ({} at {}; approval {:?}, promote as {:?})",
        LOCAL_STATE_MACHINE,
        sfn.endpoint(),
        options.settings.approval,
        options.settings.promote_as
    );
    println!("\nexport these to use the lake from another terminal (mlops model register, mlops invoke, aws s3):");
    for (name, value) in server.env_vars() {
        println!("  export {name}={value}");
    }
    println!("  export AWS_ENDPOINT_URL_EVENTBRIDGE={} EVENT_BUS_NAME={LOCAL_BUS}", bus.endpoint());
    println!("  export AWS_ENDPOINT_URL_SFN={} RETRAIN_STATE_MACHINE_ARN={LOCAL_STATE_MACHINE}", sfn.endpoint());
    if let Some(f) = &firehose {
        println!("  export AWS_ENDPOINT_URL_FIREHOSE={}", f.endpoint());
    }
    println!("  export LAKE_BUCKET={} MODEL_NAME={} MODEL_VERSION={}", options.bucket, options.model, options.version);
    println!("\nPress Ctrl-C to stop.");

    let notifier = tokio::spawn(notify_raw(lake.clone(), settings.ingest, options.poll));
    let events = bus.client();
    let drift =
        options.drift_every.map(|every| tokio::spawn(drift_schedule(lake.clone(), events, drift_config, every)));
    tokio::signal::ctrl_c().await?;
    notifier.abort();
    retrainer.abort();
    if let Some(d) = drift {
        d.abort();
    }
    Ok(())
}

/// predict as `mlops serve` runs it: the router is built on the first request that finds the
/// model version registered, and rebuilt when a promotion switches the version.
#[derive(Debug, Clone)]
pub struct Predictor {
    lake: Lake,
    limits: predict::Limits,
    capture: Option<Arc<predict::Capture>>,
    ab: Option<predict::AbConfig>,
    config: Arc<Mutex<ModelConfig>>,
    loaded: Arc<Mutex<Option<Router>>>,
}

impl Predictor {
    pub fn new(lake: Lake, config: ModelConfig, limits: predict::Limits) -> Predictor {
        Predictor {
            lake,
            limits,
            capture: None,
            ab: None,
            config: Arc::new(Mutex::new(config)),
            loaded: Arc::new(Mutex::new(None)),
        }
    }

    /// Captures what every version it serves answers.
    pub fn with_capture(mut self, capture: Option<Arc<predict::Capture>>) -> Predictor {
        self.capture = capture;
        self
    }

    /// Serves an A/B challenger beside every version it serves.
    pub fn with_ab(mut self, ab: Option<predict::AbConfig>) -> Predictor {
        self.ab = ab;
        self
    }

    async fn load(&self, config: &ModelConfig) -> Result<Router, predict::Error> {
        let mut app = predict::App::load_with(&self.lake, config, self.limits.clone(), self.ab.as_ref()).await?;
        app.capture = self.capture.clone();
        app.emit = predict::Emit::Discard;
        Ok(predict::router(Arc::new(app)))
    }

    /// The model versions served now.
    pub async fn config(&self) -> ModelConfig {
        self.config.lock().await.clone()
    }

    /// The router that answers with whatever is served.
    pub fn router(&self) -> Router {
        let this = self.clone();
        Router::new().fallback(move |request: Request<Body>| {
            let this = this.clone();
            async move {
                let config = this.config().await;
                let router = {
                    let mut slot = this.loaded.lock().await;
                    if slot.is_none() {
                        match this.load(&config).await {
                            Ok(router) => *slot = Some(router),
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

    /// Serves `version` as `parameter` (`ModelVersion` or `ShadowModelVersion`) once it loads:
    /// the version that serves is replaced only by one that is ready.
    pub async fn switch(&self, parameter: &str, version: u32) -> Result<ModelConfig, String> {
        let mut next = self.config().await;
        match parameter {
            "ModelVersion" => next.model_version = version,
            "ShadowModelVersion" => next.shadow_version = Some(version),
            other => return Err(format!("{other} is not a parameter a promotion sets")),
        }
        let router = self
            .load(&next)
            .await
            .map_err(|e| format!("{} v{version} does not load, so the served version stays: {e}", next.model_name))?;
        *self.loaded.lock().await = Some(router);
        *self.config.lock().await = next.clone();
        Ok(next)
    }
}

/// What a promotion does under `mlops serve`: predict switches to the version, and
/// drift-check watches it (as a stack update sets both functions' MODEL_VERSION).
struct ServeDeployer {
    predictor: Predictor,
    drift: Arc<Mutex<drift_check::Config>>,
}

#[async_trait::async_trait]
impl Deployer for ServeDeployer {
    async fn deploy(&self, model: &str, parameter: &str, version: u32) -> Result<String, String> {
        let served = self.predictor.config().await;
        if served.model_name != model {
            return Err(format!("this stack serves {}, not {model}", served.model_name));
        }
        let now = self.predictor.switch(parameter, version).await?;
        if parameter == "ModelVersion" {
            self.drift.lock().await.check.model_version = version;
        }
        let line = format!(
            "predict serves {} v{}{}",
            now.model_name,
            now.model_version,
            now.shadow_version.map_or(String::new(), |s| format!(" with v{s} as shadow"))
        );
        println!("deploy   {line}");
        Ok(line)
    }
}

/// Runs the retraining state machine on each trigger: `DriftDetected` and
/// `ModelQualityDegraded` events from the local bus (the template's rule) and
/// `StartExecution` calls.
struct Retrainer {
    lake: Lake,
    deployer: Arc<ServeDeployer>,
    tokens: TaskTokens,
    settings: RetrainSettings,
    window_days: u32,
}

impl Retrainer {
    async fn listen(
        self,
        mut events: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
        mut starts: tokio::sync::mpsc::UnboundedReceiver<(String, serde_json::Value)>,
    ) {
        let this = Arc::new(self);
        loop {
            let (run_id, trigger) = tokio::select! {
                Some(event) = events.recv() => {
                    // The template's rule: source lambda-mlops, detail-type DriftDetected or
                    // ModelQualityDegraded, the served model.
                    let served = this.deployer.predictor.config().await;
                    let detail_type = event["detail-type"].as_str().unwrap_or_default();
                    if event["source"] != drift_check::EVENT_SOURCE
                        || ![drift_check::DRIFT_DETECTED, mlops_flows::quality::MODEL_QUALITY_DEGRADED].contains(&detail_type)
                        || event["detail"]["model"] != served.model_name.as_str()
                    {
                        continue;
                    }
                    (mlops_pipeline::local::run_id(), event)
                }
                Some(start) = starts.recv() => start,
                else => return,
            };
            let this = Arc::clone(&this);
            tokio::spawn(async move { this.run(&run_id, trigger).await });
        }
    }

    async fn run(&self, run_id: &str, trigger: serde_json::Value) {
        let served = self.deployer.predictor.config().await;
        let config =
            super::pipeline::local_config(&self.lake, &served.model_name, Some(served.model_version), self.window_days);
        println!("retrain  run {run_id} of {} (champion v{})", served.model_name, served.model_version);
        let deployer: &dyn Deployer = self.deployer.as_ref();
        match run_retrain(
            &self.lake,
            &config,
            deployer,
            &self.tokens,
            self.settings,
            run_id,
            trigger,
            RunOptions::default(),
        )
        .await
        {
            Ok(execution) => match summary(&self.lake, &config.model, &execution).await {
                Ok(text) => print!("{text}"),
                Err(e) => eprintln!("retrain  run {run_id}: {e}"),
            },
            Err(e) => eprintln!("retrain  run {run_id}: {e}"),
        }
    }
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
async fn notify_raw(lake: Lake, limits: IngestLimits, poll: Duration) {
    let mut seen: HashMap<String, (i64, Option<String>)> = HashMap::new();
    let mut first = true;
    loop {
        match lake.list_objects(mlops_lake::keys::RAW_PREFIX).await {
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

/// The notification S3 would send for `object`, in its exact shape.
fn notification(lake: &Lake, object: &Listed) -> anyhow::Result<S3Event> {
    let etag = object.etag.clone().unwrap_or_default();
    let size = u64::try_from(object.size).unwrap_or_default();
    let event = mlops_lambda::events::object_created(lake.bucket(), &object.key, &etag, size, chrono::Utc::now())?;
    Ok(serde_json::from_str(&event)?)
}

async fn ingest_one(lake: &Lake, limits: &IngestLimits, object: &Listed) {
    let event = match notification(lake, object) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ingest   {}: {e}", object.key);
            return;
        }
    };
    match ingest::handle(lake, limits, event).await {
        Ok(outcomes) => {
            for outcome in outcomes {
                match outcome {
                    IngestOutcome::Ingested(s) => println!(
                        "ingest   {}: {} rows, {} curated, {} quarantined → {}, {}, {}",
                        s.source,
                        s.counts.rows_read,
                        s.counts.curated,
                        s.counts.quarantined,
                        s.curated_keys.join(", "),
                        s.quarantine_key,
                        s.profile_key
                    ),
                    IngestOutcome::Skipped { key, reason } => println!("ingest   {key}: skipped ({reason})"),
                }
            }
        }
        Err(e) => eprintln!("ingest   {}: {e}", object.key),
    }
}

/// A scheduled EventBridge event at `at`, in its exact shape.
pub fn schedule(at: chrono::DateTime<chrono::Utc>) -> anyhow::Result<CloudWatchEvent> {
    Ok(serde_json::from_str(&mlops_lambda::events::scheduled(at)?)?)
}

async fn drift_schedule(
    lake: Lake,
    events: aws_sdk_eventbridge::Client,
    config: Arc<Mutex<drift_check::Config>>,
    every: Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let event = match schedule(chrono::Utc::now()) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("drift    {e}");
                continue;
            }
        };
        let config = config.lock().await.clone();
        match drift_check::check(&lake, &events, &config, event).await {
            Ok((s, _metrics)) => println!(
                "drift    {}: dataset drift {} (share {:.2}, {} rows, {} profiles){} → {}",
                s.dataset,
                if s.dataset_drift { "YES" } else { "no" },
                s.drift_share,
                s.current_rows,
                s.profiles,
                if s.drifted.is_empty() { String::new() } else { format!(", drifted: {}", s.drifted.join(", ")) },
                s.report_key
            ),
            Err(e) => eprintln!("drift    {e}"),
        }
    }
}
