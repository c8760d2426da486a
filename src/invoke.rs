//! `mlops invoke`: one event through a function's handler, in-process — `sam local invoke`
//! without Docker. Configuration comes from the same variables the function reads on Lambda.

use std::sync::Arc;

use clap::ValueEnum;
use mlops_core::Lake;
use mlops_core::config::{DriftCheckConfig, Env, ModelConfig};

/// The deployable functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Function {
    /// API Gateway (HTTP API) event → prediction response.
    Predict,
    /// S3 ObjectCreated event → curated, quarantine and profile objects.
    Ingest,
    /// Scheduled event → drift report.
    DriftCheck,
}

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
            let config = ModelConfig::from_env(env)?;
            let limits = predict::Limits::from_env(env)?;
            let app = predict::App::load(&lake.with_bucket(&config.bucket), &config, limits).await?;
            predict::invoke(predict::router(Arc::new(app)), event).await?
        }
        Function::Ingest => ingest::invoke(lake, &mlops_core::config::ingest_limits(env)?, event).await?,
        Function::DriftCheck => {
            let config = DriftCheckConfig::from_env(env)?;
            // AWS_ENDPOINT_URL_EVENTBRIDGE points this client at a local bus, as on Lambda.
            let events = aws_sdk_eventbridge::Client::new(
                &aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
            );
            drift_check::invoke(&lake.with_bucket(&config.model.bucket), &events, &config, event).await?
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
