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
            drift_check::invoke(&lake.with_bucket(&config.model.bucket), &config, event).await?
        }
    })
}
