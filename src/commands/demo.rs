//! `mlops demo`: the whole loop on the penguins example, in a temporary embedded lake.
//!
//! Register the model → score the sample API event → drop the batches into `raw/` and run
//! ingest on their notifications → run drift-check on two days; the drift sends
//! `DriftDetected`, which starts the retraining state machine (run locally): snapshot →
//! train → evaluate against the champion → register v2 → promote → predict answers with v2.
//! Both versions answer traffic that predict captures (through a local Firehose into
//! `capture/`); the birds' species then arrive as ground truth, and the quality check measures
//! each version on them.

use std::io::Write;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::Context as _;
use aws_lambda_events::event::s3::S3Event;
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use mlops_contract::Contract;
use mlops_flows::ingest::{Counts, IngestLimits, IngestOutcome, QuarantineRecord};
use mlops_lake::Lake;
use mlops_lambda::Env;

use mlops_devkit::event_bus::LocalEventBus;
use mlops_devkit::firehose::LocalFirehose;
use mlops_devkit::lake_server::{EmbeddedLake, ensure_bucket};
use mlops_pipeline::asl::{RunOptions, TaskTokens};
use mlops_pipeline::local::Deployer;

use super::model::{RegisterArgs, register};
use super::serve::schedule;

const MODEL: &str = "penguins";

/// Run the whole loop on the penguins example in a temporary embedded lake.
///
/// Register, predict,
/// ingest three batches, check drift on two days, retrain on the drift, promote the
/// challenger if the gate says so, and predict with it.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Keep the lake in this directory instead of a temporary one.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Also show the functions' metric lines (CloudWatch EMF), as their logs would hold them.
    #[arg(long, short)]
    pub verbose: bool,
}

impl DemoArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let options = DemoOptions { keep: self.keep, verbose: self.verbose, ..DemoOptions::from_repository() };
        run(&options, &mut std::io::stdout()).await?;
        Ok(())
    }
}

/// Where the demo finds its inputs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The example directory (contract, model, training data, batches).
    pub example: PathBuf,
    /// The directory of sample events.
    pub events: PathBuf,
    /// Keep the lake here instead of a temporary directory.
    pub keep: Option<PathBuf>,
    /// Show the EMF metric lines.
    pub verbose: bool,
}

impl DemoOptions {
    /// The repository's own example and events, found from the working directory or,
    /// failing that, from where this crate was built.
    pub fn from_repository() -> DemoOptions {
        let base = if Path::new("examples/penguins").is_dir() {
            PathBuf::from(".")
        } else {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        };
        DemoOptions { example: base.join("examples/penguins"), events: base.join("events"), keep: None, verbose: false }
    }
}

/// What the demo saw, for callers that check it.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSummary {
    pub predictions: Vec<serde_json::Value>,
    /// Per batch file: its name and row accounting.
    pub batches: Vec<(String, Counts)>,
    /// Per day checked.
    pub drift: Vec<DayDrift>,
    /// The retraining run the drift started.
    pub retrain: Option<RetrainSummary>,
    /// The version predict serves at the end, and its answers to the same request.
    pub serving: u32,
    pub predictions_after: Vec<serde_json::Value>,
    /// Per model version, once the labels arrived: its joined rows and macro-F1.
    pub quality: Vec<(u32, u64, Option<f64>)>,
}

/// What the retraining run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrainSummary {
    /// The states it went through.
    pub states: Vec<String>,
    pub decision: Option<String>,
    pub outcome: Option<String>,
    pub version: Option<u32>,
    /// From `DriftDetected` to the new version serving (or the run's end).
    pub seconds: f64,
}

/// The outcome of one day's drift check.
#[derive(Debug, Clone, PartialEq)]
pub struct DayDrift {
    pub dataset_drift: bool,
    /// Per feature: the method and its score (`None` where there was too little data).
    pub scores: Vec<(String, String, Option<f64>)>,
}

/// Runs the demo, writing a readable account to `out`.
pub async fn run(options: &DemoOptions, out: &mut impl Write) -> anyhow::Result<DemoSummary> {
    let temp = tempfile::tempdir()?;
    let root = options.keep.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let server = EmbeddedLake::start(&root, 0).await?;
    let bucket = crate::DEFAULT_BUCKET;
    let client = server.client();
    ensure_bucket(&client, bucket).await?;
    let lake = Lake::new(client, bucket);
    writeln!(out, "lambda-mlops demo")?;
    writeln!(out, "  lake       {} (s3://{bucket}, files in {})", server.endpoint(), root.display())?;

    let example = &options.example;
    let contract = Contract::load(&example.join("contract.yaml"))?;
    let class_labels = contract.target.as_deref().and_then(|t| contract.column(t)).and_then(|c| c.allowed.clone());
    let manifest = register(
        &lake,
        &RegisterArgs {
            name: MODEL.into(),
            model: example.join("model.onnx"),
            contract: example.join("contract.yaml"),
            train: example.join("train.csv"),
            metrics: Some(example.join("metrics.json")).filter(|p| p.exists()),
            class_labels,
            lineage: Default::default(),
        },
    )
    .await?;
    writeln!(
        out,
        "  registered {} v{} (model.onnx {} bytes, sha256 {}…)",
        manifest.name,
        manifest.version,
        manifest.model_bytes,
        &manifest.model_sha256[..12]
    )?;

    let version = manifest.version.to_string();
    let env = Env(move |name: &str| match name {
        "LAKE_BUCKET" => Some(bucket.to_string()),
        "MODEL_NAME" => Some(MODEL.to_string()),
        "MODEL_VERSION" => Some(version.clone()),
        "DRIFT_WINDOW_DAYS" => Some("1".to_string()),
        "EVENT_BUS_NAME" => Some(super::serve::LOCAL_BUS.to_string()),
        _ => None,
    });

    let config = predict::Config::from_env(&env)?;
    let stream = super::serve::capture_stream(MODEL);
    let firehose =
        LocalFirehose::start(0, lake.clone(), &[(stream.clone(), mlops_lake::capture::prefix(MODEL))]).await?;
    let capture_config = predict::CaptureConfig {
        stream,
        sample_rate: 1.0,
        flush_interval: std::time::Duration::from_millis(20),
        queue: 1000,
    };
    let capture = Arc::new(predict::Capture::start(firehose.client(), &capture_config));
    let mut app = predict::App::load(&lake, &config.model, config.limits.clone()).await?;
    app.capture = Some(Arc::clone(&capture));
    app.emit = predict::Emit::Discard;
    let champion = predict::router(Arc::new(app));
    writeln!(out, "\npredict (events/api-predict.json through the API Gateway adapter)")?;
    let predictions = demo_predict(champion.clone(), &options.events, out).await?;
    let mut truth = demo_traffic(&champion, &contract, &example.join("batches/batch-01.csv"), "demo-v1", out).await?;
    let limits = ingest::limits_from_env(&env)?;
    let drift_config = drift_check::Config::from_env(&env)?;
    // drift-check sends DriftDetected to a local bus; the demo's rule hands it to retraining.
    let (delivered, mut drift_events) = tokio::sync::mpsc::unbounded_channel();
    let bus = LocalEventBus::start_with(0, None, Some(delivered)).await?;
    let events = bus.client();
    let today = Utc::now();
    let yesterday = today - Duration::days(1);
    let plan = [("batch-01.csv", yesterday), ("batch-02.csv", yesterday), ("batch-03-shifted.csv", today)];
    writeln!(out, "\ningest (S3 notifications for objects put under raw/{}/)", contract.dataset)?;
    writeln!(out, "  {:<22} {:>6} {:>8} {:>12}", "batch", "rows", "curated", "quarantined")?;
    let mut batches = Vec::new();
    for (file, at) in plan {
        let path = example.join("batches").join(file);
        let counts = demo_ingest(&lake, &contract.dataset, &path, at, &limits, out).await?;
        batches.push((file.to_string(), counts));
    }

    writeln!(
        out,
        "\ndrift-check (each feature against the training baseline, with the method Evidently's defaults choose)"
    )?;
    let mut drift = Vec::new();
    for (label, at) in [("yesterday: batch-01 + batch-02", yesterday), ("today: batch-03-shifted", today)] {
        let (summary, metrics) = drift_check::check(&lake, &events, &drift_config, schedule(at)?).await?;
        let key = summary.report_key.clone();
        let report: serde_json::Value = serde_json::from_slice(&lake.get(&key).await?.bytes)?;
        let mut scores = Vec::new();
        writeln!(out, "  {label}")?;
        for column in report["columns"].as_array().into_iter().flatten() {
            let name = column["column"].as_str().unwrap_or_default().to_string();
            let method = column["method"].as_str().unwrap_or_default().to_string();
            let p = column["p_value"].as_f64();
            let value = if p.is_some() { p } else { column["statistic"].as_f64() };
            let what = if p.is_some() { "p-value" } else { "score" };
            let verdict = column["verdict"].as_str().unwrap_or_default();
            writeln!(
                out,
                "    {name:<20} {method:<10} {what} {:>9}  {verdict}",
                value.map_or("-".into(), |v| if v != 0.0 && v.abs() < 1e-3 {
                    format!("{v:.2e}")
                } else {
                    format!("{v:.4}")
                })
            )?;
            scores.push((name, method, value));
        }
        let dataset_drift = report["dataset_drift"].as_bool().unwrap_or(false);
        writeln!(
            out,
            "    dataset drift: {} ({} of {} features)  report s3://{bucket}/{key}",
            if dataset_drift { "YES" } else { "no" },
            report["drifted"],
            report["checked"],
        )?;
        writeln!(out, "    html s3://{bucket}/{}", summary.html_key)?;
        if options.verbose {
            for line in metrics {
                writeln!(out, "    metric {line}")?;
            }
        }
        drift.push(DayDrift { dataset_drift, scores });
    }
    let mut trigger = None;
    while let Ok(event) = drift_events.try_recv() {
        if event["detail-type"] == drift_check::DRIFT_DETECTED {
            trigger = Some(event);
        }
    }
    let mut serving = manifest.version;
    let mut retrain = None;
    let mut predictions_after = predictions.clone();
    if let Some(event) = trigger {
        writeln!(
            out,
            "\nretrain (DriftDetected {} starts statemachines/retrain.asl.json, run locally over the retrain step handlers)",
            event["id"].as_str().unwrap_or("?")
        )?;
        let detected = std::time::Instant::now();
        let deployer = DemoDeployer {
            lake: lake.clone(),
            limits: config.limits.clone(),
            capture: Arc::clone(&capture),
            served: Default::default(),
        };
        let pipeline = super::pipeline::local_config(&lake, MODEL, Some(manifest.version), 30);
        let run_id = mlops_pipeline::local::run_id();
        let execution = super::pipeline::run_retrain(
            &lake,
            &pipeline,
            &deployer,
            &TaskTokens::default(),
            mlops_pipeline::local::default_settings(),
            &run_id,
            event,
            RunOptions::default(),
        )
        .await?;
        let seconds = detected.elapsed().as_secs_f64();
        write!(out, "{}", super::pipeline::summary(&lake, MODEL, &execution).await?)?;
        let record =
            mlops_pipeline::record::read(&lake, &mlops_lake::keys::pipeline_record(MODEL, &execution.name)).await?;
        retrain = Some(RetrainSummary {
            states: execution.path().into_iter().map(str::to_string).collect(),
            decision: record.decision.map(|d| d.to_string()),
            outcome: record.outcome.as_ref().map(super::pipeline::text),
            version: record.version,
            seconds,
        });
        if let Some((version, router)) = deployer.served.lock().await.take() {
            serving = version;
            writeln!(
                out,
                "\npredict after the promotion (the same request; drift detected → v{version} serving in {seconds:.2} s)"
            )?;
            predictions_after = demo_predict(router.clone(), &options.events, out).await?;
            let path = example.join("batches/batch-03-shifted.csv");
            truth.extend(demo_traffic(&router, &contract, &path, &format!("demo-v{version}"), out).await?);
        } else {
            writeln!(out, "\nnothing was promoted: predict still serves v{serving}")?;
        }
    }
    for _ in 0..400 {
        if capture.counts.delivered.load(std::sync::atomic::Ordering::Relaxed) >= truth.len() as u64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let quality = demo_quality(&lake, &example.join("labels.yaml"), &root, &truth, &limits, out).await?;
    if let Some(keep) = &options.keep {
        writeln!(out, "\nThe lake is kept in {}.", keep.display())?;
    }
    Ok(DemoSummary { predictions, batches, drift, retrain, serving, predictions_after, quality })
}

/// The demo's deploy: predict is loaded with the promoted version, as a stack update with the
/// new ModelVersion publishes a predict version that serves it.
struct DemoDeployer {
    lake: Lake,
    limits: predict::Limits,
    capture: Arc<predict::Capture>,
    served: tokio::sync::Mutex<Option<(u32, axum::Router)>>,
}

#[async_trait::async_trait]
impl Deployer for DemoDeployer {
    async fn deploy(&self, model: &str, parameter: &str, version: u32) -> Result<String, String> {
        let config = mlops_lambda::ModelConfig {
            bucket: self.lake.bucket().to_string(),
            model_name: model.to_string(),
            model_version: version,
            shadow_version: None,
        };
        if parameter != "ModelVersion" {
            return Err(format!("the demo promotes ModelVersion, not {parameter}"));
        }
        let mut app = predict::App::load(&self.lake, &config, self.limits.clone()).await.map_err(|e| e.to_string())?;
        app.capture = Some(Arc::clone(&self.capture));
        app.emit = predict::Emit::Discard;
        *self.served.lock().await = Some((version, predict::router(Arc::new(app))));
        Ok(format!("predict serves {model} v{version}"))
    }
}

/// Instances per request of the demo's traffic.
const TRAFFIC_BATCH: usize = 20;

/// Sends the first 100 birds of a batch file to predict, 20 per request, with request ids
/// `<prefix>-<n>`; returns each bird's inference id and its species, the labels to come.
async fn demo_traffic(
    router: &axum::Router,
    contract: &Contract,
    path: &Path,
    prefix: &str,
    out: &mut impl Write,
) -> anyhow::Result<Vec<(String, String)>> {
    use tower::ServiceExt as _;
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let header = reader.headers()?.clone();
    let target = contract.target.clone().unwrap_or_default();
    let mut birds = Vec::new();
    for record in reader.records().take(100) {
        let record = record?;
        let mut instance = serde_json::Map::new();
        let mut species = String::new();
        for (name, value) in header.iter().zip(record.iter()) {
            if name == target {
                species = value.to_string();
            }
            let Some(column) = contract.features.iter().any(|f| f == name).then(|| contract.column(name)).flatten()
            else {
                continue;
            };
            let v = match value.parse::<f64>() {
                _ if value.is_empty() => serde_json::Value::Null,
                Ok(x) if column.kind.is_numeric() => x.into(),
                _ => value.into(),
            };
            instance.insert(name.to_string(), v);
        }
        birds.push((serde_json::Value::Object(instance), species));
    }
    let mut truth = Vec::new();
    let mut answered = 0;
    for (n, chunk) in birds.chunks(TRAFFIC_BATCH).enumerate() {
        let request_id = format!("{prefix}-{n}");
        let instances: Vec<&serde_json::Value> = chunk.iter().map(|(i, _)| i).collect();
        let request = axum::http::Request::post("/predict")
            .header("content-type", "application/json")
            .header("x-request-id", &request_id)
            .body(axum::body::Body::from(serde_json::json!({ "instances": instances }).to_string()))?;
        let response = router.clone().oneshot(request).await?;
        if response.status().is_success() {
            answered += chunk.len();
            for (i, (_, species)) in chunk.iter().enumerate() {
                truth.push((mlops_lake::capture::inference_id(&request_id, i), species.clone()));
            }
        }
    }
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
    writeln!(
        out,
        "  traffic: {answered} birds of {file} answered in {} requests, captured",
        birds.len().div_ceil(TRAFFIC_BATCH)
    )?;
    Ok(truth)
}

/// The labels arrive: the birds' species as their own dataset, ingested like any batch, then
/// the quality check joins them with what predict captured.
async fn demo_quality(
    lake: &Lake,
    labels_contract: &Path,
    root: &Path,
    truth: &[(String, String)],
    limits: &IngestLimits,
    out: &mut impl Write,
) -> anyhow::Result<Vec<(u32, u64, Option<f64>)>> {
    let contract = Contract::load(labels_contract)?;
    let file = root.join("labels.csv");
    let mut writer = csv::Writer::from_path(&file)?;
    writer.write_record(["inference_id", "species"])?;
    for (id, species) in truth {
        writer.write_record([id, species])?;
    }
    writer.flush()?;
    drop(writer);
    super::lake::publish_dataset(lake, &contract, std::slice::from_ref(&file)).await?;
    writeln!(out, "\nground truth (the species of {} captured birds, under raw/{}/)", truth.len(), contract.dataset)?;
    demo_ingest(lake, &contract.dataset, &file, Utc::now(), limits, out).await?;
    let config = mlops_flows::quality::QualityConfig {
        model_name: MODEL.into(),
        labels_dataset: contract.dataset.clone(),
        window_days: 1,
        min_rows: 30,
    };
    let (report, key) = mlops_flows::quality::run_quality_check(lake, &config, Utc::now()).await?;
    writeln!(out, "\nmodel quality (captures joined with ground truth; the metrics of mlops evaluate)")?;
    write!(out, "{}", super::quality::text(&report))?;
    writeln!(out, "  report s3://{}/{key}", lake.bucket())?;
    Ok(report
        .versions
        .iter()
        .map(|g| (g.model_version, g.rows, g.metrics.as_ref().and_then(|m| m.get("macro_f1"))))
        .collect())
}

async fn demo_predict(
    router: axum::Router,
    events: &Path,
    out: &mut impl Write,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let path = events.join("api-predict.json");
    let event = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let response = predict::invoke(router, &event).await?;
    let status = response["statusCode"].as_u64().unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap_or("null"))?;
    let request: serde_json::Value =
        serde_json::from_str(serde_json::from_str::<serde_json::Value>(&event)?["body"].as_str().unwrap_or("null"))?;
    writeln!(
        out,
        "  HTTP {status} from {} v{}",
        body["model"]["name"].as_str().unwrap_or("?"),
        body["model"]["version"]
    )?;
    let predictions = body["predictions"].as_array().cloned().unwrap_or_default();
    for (instance, p) in request["instances"].as_array().into_iter().flatten().zip(&predictions) {
        let best = p["probabilities"]
            .as_array()
            .and_then(|ps| ps.iter().filter_map(|v| v.as_f64()).reduce(f64::max))
            .unwrap_or(f64::NAN);
        let fields: Vec<String> = instance
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect();
        let class = p["class"].as_str().map_or_else(|| p["label"].to_string(), str::to_string);
        writeln!(out, "  {} -> {class} (p = {best:.2})", fields.join(" "))?;
    }
    if status != 200 {
        anyhow::bail!("predict answered {status}: {body}");
    }
    Ok(predictions)
}

async fn demo_ingest(
    lake: &Lake,
    dataset: &str,
    path: &Path,
    at: DateTime<Utc>,
    limits: &IngestLimits,
    out: &mut impl Write,
) -> anyhow::Result<Counts> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("batch.csv");
    let key = format!("raw/{dataset}/{file}");
    let size = bytes.len() as u64;
    let etag = lake.put(&key, bytes, "text/csv").await?.unwrap_or_default();
    let event: S3Event =
        serde_json::from_str(&mlops_lambda::events::object_created(lake.bucket(), &key, &etag, size, at)?)?;
    let outcomes = ingest::handle(lake, limits, event).await?;
    let Some(IngestOutcome::Ingested(summary)) = outcomes.into_iter().next() else {
        anyhow::bail!("ingest skipped {key}");
    };
    let c = summary.counts;
    writeln!(out, "  {file:<22} {:>6} {:>8} {:>12}", c.rows_read, c.curated, c.quarantined)?;
    if c.quarantined > 0 {
        let quarantine = lake.get(&summary.quarantine_key).await?;
        for line in String::from_utf8_lossy(&quarantine.bytes).lines() {
            let record: QuarantineRecord = serde_json::from_str(line)?;
            let reasons: Vec<String> = record.reasons.into_iter().map(|r| r.message).collect();
            writeln!(out, "      line {:>4}: {}", record.line.unwrap_or_default(), reasons.join("; "))?;
        }
    }
    Ok(c)
}
