//! The retraining state machine's step function: one Lambda for every step of
//! `statemachines/retrain.asl.json`, which names the step in its payload (`{"step": …,
//! "state": …}`). The handler is `mlops_pipeline::handle`; this crate adds the configuration
//! and the error names Step Functions' `Retry` and `Catch` match.

use mlops_lake::Lake;
use mlops_lambda::{ConfigError, Env};
use mlops_pipeline::PipelineConfig;

/// `LAKE_BUCKET`, `MODEL_NAME`, `MODEL_VERSION` (the serving version: the champion; empty
/// when none is registered yet), `RETRAIN_WINDOW_DAYS` (30: the curated days a snapshot
/// takes), `RETRAIN_GUARD_HOURS` (216, longer than a run may live: how long a run may hold
/// the model's guard before another may take it over), `MLOPS_CODE_VERSION` (recorded in the lineage).
pub fn config_from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<PipelineConfig, ConfigError> {
    Ok(PipelineConfig {
        bucket: env.required("LAKE_BUCKET")?,
        model: env.required("MODEL_NAME")?,
        champion: match env.text("MODEL_VERSION") {
            Some(_) => Some(env.version("MODEL_VERSION")?),
            None => None,
        },
        window_days: env.at_least("RETRAIN_WINDOW_DAYS", 30u32, 1)?,
        guard_ttl: chrono::Duration::hours(i64::from(env.at_least(
            "RETRAIN_GUARD_HOURS",
            mlops_pipeline::guard::DEFAULT_TTL_HOURS,
            1,
        )?)),
        code_version: env.text("MLOPS_CODE_VERSION"),
    })
}

/// A step's error, reported to Lambda with the name the definition matches
/// (`PipelineBusy`, `TrainFailed`, `LakeError`, …) as its `errorType`.
#[derive(Debug)]
pub struct StepError(pub mlops_pipeline::Error);

impl From<StepError> for lambda_runtime::Diagnostic {
    fn from(e: StepError) -> lambda_runtime::Diagnostic {
        lambda_runtime::Diagnostic { error_type: e.0.name().to_string(), error_message: e.0.to_string() }
    }
}

/// Runs the step the payload names.
pub async fn handle(
    lake: &Lake,
    config: &PipelineConfig,
    payload: serde_json::Value,
) -> Result<serde_json::Value, StepError> {
    mlops_pipeline::handle(lake, config, payload).await.map_err(|e| {
        tracing::error!(error = e.name(), message = %e, "step failed");
        StepError(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_names_what_is_wrong() {
        let c = config_from_env(&mlops_lambda::env::fixed(&[
            ("LAKE_BUCKET", "b"),
            ("MODEL_NAME", "m"),
            ("MODEL_VERSION", ""),
        ]))
        .expect("complete");
        assert_eq!((c.champion, c.window_days), (None, 30));
        let e = config_from_env(&mlops_lambda::env::fixed(&[
            ("LAKE_BUCKET", "b"),
            ("MODEL_NAME", "m"),
            ("RETRAIN_WINDOW_DAYS", "0"),
        ]))
        .expect_err("zero days");
        assert!(e.to_string().contains("RETRAIN_WINDOW_DAYS must be at least 1"), "{e}");
    }

    #[test]
    fn errors_reach_step_functions_by_name() {
        let d: lambda_runtime::Diagnostic =
            StepError(mlops_pipeline::Error::Input("the step's input: missing field".into())).into();
        assert_eq!(d.error_type, "InvalidInput");
    }
}
