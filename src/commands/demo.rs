//! `mlops demo`: the whole loop on the penguins example, in a temporary embedded lake.
//!
//! Register the model → score the sample API event → drop the batches into `raw/` and run
//! ingest on their notifications → run drift-check on two days → print what happened.

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

use mlops_devkit::lake_server::{EmbeddedLake, ensure_bucket};

use super::model::{RegisterArgs, register};
use super::serve::schedule;

const MODEL: &str = "penguins";

/// Run the whole loop on the penguins example in a temporary embedded lake.
///
/// Register, predict,
/// ingest three batches, check drift on two days.
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
        _ => None,
    });

    let predictions = demo_predict(&lake, &options.events, &env, out).await?;
    let limits = ingest::limits_from_env(&env)?;
    let drift_config = drift_check::Config::from_env(&env)?;
    // No bus is configured: the demo reports drift here rather than sending DriftDetected.
    let events = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::Config::builder()
            .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
            .build(),
    );
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
    if let Some(keep) = &options.keep {
        writeln!(out, "\nThe lake is kept in {}.", keep.display())?;
    }
    Ok(DemoSummary { predictions, batches, drift })
}

async fn demo_predict<F: Fn(&str) -> Option<String>>(
    lake: &Lake,
    events: &Path,
    env: &Env<F>,
    out: &mut impl Write,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let path = events.join("api-predict.json");
    let event = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let config = predict::Config::from_env(env)?;
    let app = predict::App::load(lake, &config.model, config.limits).await?;
    let response = predict::invoke(predict::router(Arc::new(app)), &event).await?;
    let status = response["statusCode"].as_u64().unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap_or("null"))?;
    let request: serde_json::Value =
        serde_json::from_str(serde_json::from_str::<serde_json::Value>(&event)?["body"].as_str().unwrap_or("null"))?;
    writeln!(out, "\npredict (events/api-predict.json through the API Gateway adapter) -> HTTP {status}")?;
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
