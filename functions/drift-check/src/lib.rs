//! `drift-check`: a scheduled event → merged window profiles vs. the baseline → report.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use mlops_core::config::DriftCheckConfig;
use mlops_core::drift::Verdict;
use mlops_core::monitor::run_drift_check;
use mlops_core::storage::Lake;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the event is not a scheduled EventBridge event: {0}")]
    Event(String),
    #[error(transparent)]
    Core(#[from] mlops_core::Error),
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        let error_type = match e {
            Error::Event(_) => "InvalidEvent",
            Error::Core(_) => "DriftCheckFailed",
        };
        lambda_runtime::Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// The invocation's result: where the report is and what it says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub report_key: String,
    pub dataset: String,
    pub dataset_drift: bool,
    pub drift_share: f64,
    pub current_rows: u64,
    pub drifted: Vec<String>,
}

/// Runs the drift check as of the event's time, so that a replayed event checks the same window.
pub async fn handle(lake: &Lake, config: &DriftCheckConfig, event: CloudWatchEvent) -> Result<Summary, Error> {
    let (check, report_key) = run_drift_check(lake, config, event.time).await?;
    let report = &check.report;
    let drifted: Vec<String> =
        report.columns.iter().filter(|c| c.verdict == Verdict::Drift).map(|c| c.column.clone()).collect();
    tracing::info!(
        %report_key, dataset = %report.dataset, dataset_drift = report.dataset_drift,
        drift_share = report.drift_share, current_rows = report.current_rows,
        profiles = check.window.profiles.len(), "drift check done"
    );
    Ok(Summary {
        report_key,
        dataset: report.dataset.clone(),
        dataset_drift: report.dataset_drift,
        drift_share: report.drift_share,
        current_rows: report.current_rows,
        drifted,
    })
}

/// Runs one scheduled event given as JSON, as Lambda would, and returns the summary as JSON.
pub async fn invoke(lake: &Lake, config: &DriftCheckConfig, event: &str) -> Result<serde_json::Value, Error> {
    let event: CloudWatchEvent = serde_json::from_str(event).map_err(|e| Error::Event(e.to_string()))?;
    let summary = handle(lake, config, event).await?;
    serde_json::to_value(summary).map_err(|e| Error::Event(e.to_string()))
}

/// A scheduled EventBridge event at `at`, in the shape of `events/schedule.json`.
pub fn scheduled_event(at: chrono::DateTime<chrono::Utc>) -> Result<String, Error> {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../../events/schedule.json")).map_err(|e| Error::Event(e.to_string()))?;
    event["time"] = at.format("%Y-%m-%dT%H:%M:%SZ").to_string().into();
    Ok(event.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sample_event() {
        let event: CloudWatchEvent =
            serde_json::from_str(include_str!("../../../events/schedule.json")).expect("event");
        assert_eq!(event.detail_type.as_deref(), Some("Scheduled Event"));
    }
}
