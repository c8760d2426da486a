//! `mlops invoke`: one event through a function's handler, in-process — `sam local invoke`
//! without Docker. Configuration comes from the same variables the function reads on Lambda.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use mlops_lake::Lake;
use mlops_lambda::{Env, process_env};

use super::{LakeArgs, lake_hint};

/// The deployable functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Function {
    /// API Gateway (HTTP API) event → prediction response.
    Predict,
    /// S3 ObjectCreated event → curated, quarantine and profile objects.
    Ingest,
    /// Scheduled event → drift report.
    DriftCheck,
    /// A batch of the batch-score Distributed Map, or an SQS event → predictions objects (and
    /// for SQS, the records that failed).
    Score,
}

/// Run one event through a function's handler in-process, like `sam local invoke`.
///
/// No Docker needed. Reads LAKE_BUCKET, MODEL_NAME, MODEL_VERSION and the DRIFT_*, QUALITY_*,
/// LABELS_DATASET and INGEST_* variables as the deployed function does; prints the function's
/// answer as JSON. A drift check whose window had nothing to compare exits with status 3
/// (`insufficient_data`), so that a script never takes "no data" for "no drift".
#[derive(Debug, Clone, Args)]
pub struct InvokeArgs {
    /// The function to run.
    #[arg(value_enum)]
    pub function: Function,
    /// A JSON event file, e.g. events/api-predict.json.
    #[arg(long)]
    pub event: PathBuf,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl InvokeArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(&self.event).with_context(|| format!("reading {}", self.event.display()))?;
        let clock = std::time::Instant::now();
        let lake = self.lake.connect().await?;
        let response = invoke(&lake, self.function, &text, &process_env()).await.map_err(lake_hint);
        eprintln!("{}", report_line(clock.elapsed()));
        let response = response?;
        println!("{}", serde_json::to_string_pretty(&response)?);
        if self.function == Function::DriftCheck && response["status"] == "insufficient_data" {
            eprintln!("insufficient data: the window held nothing to compare with the baseline");
            std::process::exit(INSUFFICIENT_DATA_EXIT);
        }
        Ok(())
    }
}

/// The exit status of a drift check with insufficient data.
pub const INSUFFICIENT_DATA_EXIT: i32 = 3;

/// Runs `event` through `function` with the S3 client of `lake` and configuration from `env`;
/// returns what the function returns to Lambda.
pub async fn invoke<F: Fn(&str) -> Option<String>>(
    lake: &Lake,
    function: Function,
    event: &str,
    env: &Env<F>,
) -> anyhow::Result<serde_json::Value> {
    Ok(match function {
        Function::Predict => {
            let config = predict::Config::from_env(env)?;
            let mut app =
                predict::App::load(&lake.with_bucket(&config.model.bucket), &config.model, config.limits).await?;
            app.emit = predict::Emit::Stderr;
            predict::invoke(predict::router(Arc::new(app)), event).await?
        }
        Function::Ingest => ingest::invoke(lake, &ingest::limits_from_env(env)?, event).await?,
        Function::DriftCheck => {
            let config = drift_check::Config::from_env(env)?;
            // AWS_ENDPOINT_URL_EVENTBRIDGE points this client at a local bus, as on Lambda.
            let events = aws_sdk_eventbridge::Client::new(
                &aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
            );
            drift_check::invoke(&lake.with_bucket(&config.bucket), &events, &config, event).await?
        }
        Function::Score => {
            let config = score::Config::from_env(env)?;
            let event: serde_json::Value = serde_json::from_str(event).context("the event is not JSON")?;
            score::handle(&lake.with_bucket(&config.bucket), &score::Scorers::default(), &config, event).await?
        }
    })
}
/// The line Lambda logs after each invocation, `REPORT Duration: … ms Max Memory Used: … MB`,
/// with this process's peak resident memory (Linux; left out elsewhere).
pub fn report_line(duration: std::time::Duration) -> String {
    let duration = format!("REPORT Duration: {:.2} ms", duration.as_secs_f64() * 1e3);
    match peak_rss_bytes() {
        Some(bytes) => format!("{duration}\tMax Memory Used: {} MB", bytes.div_ceil(1 << 20)),
        None => duration,
    }
}

/// Peak resident memory of this process (`VmHWM` in `/proc/self/status`).
pub fn peak_rss_bytes() -> Option<u64> {
    peak_rss_in("/proc/self/status")
}

/// Peak resident memory from a `/proc/<pid>/status` file (Linux).
pub fn peak_rss_in(status_file: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}
