//! `drift-check`: a scheduled event → merged window profiles vs. the baseline → report, metrics
//! and, on dataset drift, a `DriftDetected` event.

mod config;

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use mlops_drift::stats::Verdict;
use mlops_flows::drift_check::{DriftCheck, emf_lines, run_drift_check};
use mlops_flows::quality::{self, MODEL_QUALITY_DEGRADED, QualityReport, run_quality_check};
use mlops_lake::Lake;
use serde::Serialize;

pub use config::Config;

/// The `source` of the events drift-check sends.
pub const EVENT_SOURCE: &str = "lambda-mlops";
/// The `detail-type` of the event sent on dataset drift.
pub const DRIFT_DETECTED: &str = "DriftDetected";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the event is not a scheduled EventBridge event: {0}")]
    Event(String),
    #[error("sending {detail_type} to event bus {bus}: {message}")]
    Publish { detail_type: &'static str, bus: String, message: String },
    #[error(transparent)]
    Check(#[from] mlops_flows::Error),
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        let error_type = match e {
            Error::Event(_) => "InvalidEvent",
            Error::Publish { .. } => "PublishFailed",
            Error::Check(_) => "DriftCheckFailed",
        };
        lambda_runtime::Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// The invocation's result: where the report is and what it says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub report_key: String,
    pub html_key: String,
    /// `ok`, or `insufficient_data` when the window had no row to compare (or no feature
    /// with enough values): then `dataset_drift` is false because nothing was tested.
    pub status: String,
    pub dataset: String,
    pub dataset_drift: bool,
    pub drift_share: f64,
    pub current_rows: u64,
    pub profiles: usize,
    pub drifted: Vec<String>,
    /// The id EventBridge gave the `DriftDetected` event, when one was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The model-quality check, when ground truth is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualitySummary>,
}

/// What the model-quality check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualitySummary {
    pub report_key: String,
    pub status: String,
    pub joined: u64,
    pub degraded: bool,
    /// Per version: its rows and headline metric (`macro_f1` or `rmse`), when measured.
    pub versions: Vec<serde_json::Value>,
    /// The id EventBridge gave the `ModelQualityDegraded` event, when one was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// The detail of a `DriftDetected` event.
pub fn drift_detected_detail(check: &DriftCheck, report_key: &str) -> serde_json::Value {
    let report = &check.report;
    serde_json::json!({
        "dataset": report.dataset,
        "model": check.model,
        "model_version": check.model_version,
        "report_key": report_key,
        "html_key": check.outputs.html,
        "drift_share": report.share,
        "drifted": drifted(check),
        "current_rows": report.current_rows,
        "window": {"kind": check.window.kind, "size": check.window.size, "from": check.window.from, "to": check.window.to},
    })
}

fn drifted(check: &DriftCheck) -> Vec<String> {
    check.report.columns.iter().filter(|c| c.test.verdict == Verdict::Drift).map(|c| c.column.clone()).collect()
}

/// Sends `DriftDetected` to `bus`; returns the event id.
pub async fn publish(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    check: &DriftCheck,
    report_key: &str,
) -> Result<Option<String>, Error> {
    send(events, bus, DRIFT_DETECTED, report_key, drift_detected_detail(check, report_key)).await
}

/// Sends one event of this project to `bus`; returns its id.
async fn send(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    detail_type: &'static str,
    report_key: &str,
    detail: serde_json::Value,
) -> Result<Option<String>, Error> {
    let failed = |message: String| Error::Publish { detail_type, bus: bus.to_string(), message };
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(EVENT_SOURCE)
        .detail_type(detail_type)
        .resources(report_key)
        .detail(detail.to_string())
        .build();
    let out = events
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|e| failed(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string()))?;
    if out.failed_entry_count() > 0 {
        let reason = out.entries().first().and_then(|e| e.error_message()).unwrap_or("no reason given");
        return Err(failed(reason.to_string()));
    }
    Ok(out.entries().first().and_then(|e| e.event_id()).map(str::to_string))
}

/// Runs the drift check as of the event's time, so that a replayed event checks the same window;
/// prints the metrics as EMF lines (stdout is the function's log, where CloudWatch Logs
/// extracts them) and, on dataset drift with a bus configured, sends `DriftDetected`.
pub async fn handle(
    lake: &Lake,
    events: &aws_sdk_eventbridge::Client,
    config: &Config,
    event: CloudWatchEvent,
) -> Result<Summary, Error> {
    let (summary, metrics) = check(lake, events, config, event).await?;
    for line in metrics {
        println!("{line}");
    }
    Ok(summary)
}

/// [`handle`] without printing: the summary and the EMF lines, for callers that show them
/// their own way.
pub async fn check(
    lake: &Lake,
    events: &aws_sdk_eventbridge::Client,
    config: &Config,
    event: CloudWatchEvent,
) -> Result<(Summary, Vec<String>), Error> {
    let (check, report_key) = run_drift_check(lake, &config.check, event.time).await?;
    let mut metrics = emf_lines(&check);
    let report = &check.report;
    let event_id = match (&config.event_bus, report.dataset_drift) {
        (Some(bus), true) => publish(events, bus, &check, &report_key).await?,
        _ => None,
    };
    tracing::info!(
        %report_key, dataset = %report.dataset, dataset_drift = report.dataset_drift,
        drift_share = report.share, current_rows = report.current_rows,
        profiles = check.window.profiles.len(), event_id = event_id.as_deref().unwrap_or(""), "drift check done"
    );
    let quality = match &config.quality {
        Some(q) => {
            let (quality, key) = run_quality_check(lake, q, event.time).await?;
            metrics.extend(quality::emf_lines(&quality));
            let event_id = match (&config.event_bus, quality.degraded) {
                (Some(bus), true) => {
                    send(events, bus, MODEL_QUALITY_DEGRADED, &key, quality::degraded_detail(&quality, &key)).await?
                }
                _ => None,
            };
            Some(quality_summary(&quality, key, event_id))
        }
        None => None,
    };
    let summary = Summary {
        html_key: check.outputs.html.clone(),
        report_key,
        status: check.status.clone(),
        dataset: report.dataset.clone(),
        dataset_drift: report.dataset_drift,
        drift_share: report.share,
        current_rows: report.current_rows,
        profiles: check.window.profiles.len(),
        drifted: drifted(&check),
        event_id,
        quality,
    };
    Ok((summary, metrics))
}

fn quality_summary(report: &QualityReport, report_key: String, event_id: Option<String>) -> QualitySummary {
    let versions = report
        .versions
        .iter()
        .map(|g| {
            let headline = match &g.metrics {
                Some(mlops_metrics::Metrics::Classification(c)) => serde_json::json!({"macro_f1": c.macro_f1, "accuracy": c.accuracy}),
                Some(mlops_metrics::Metrics::Regression(r)) => serde_json::json!({"rmse": r.rmse}),
                None => serde_json::Value::Null,
            };
            serde_json::json!({"model_version": g.model_version, "rows": g.rows, "status": g.status, "metrics": headline})
        })
        .collect();
    QualitySummary {
        report_key,
        status: report.status.clone(),
        joined: report.joined,
        degraded: report.degraded,
        versions,
        event_id,
    }
}

/// Runs one scheduled event given as JSON, as Lambda would, and returns the summary as JSON.
pub async fn invoke(
    lake: &Lake,
    events: &aws_sdk_eventbridge::Client,
    config: &Config,
    event: &str,
) -> Result<serde_json::Value, Error> {
    let event: CloudWatchEvent = serde_json::from_str(event).map_err(|e| Error::Event(e.to_string()))?;
    let summary = handle(lake, events, config, event).await?;
    serde_json::to_value(summary).map_err(|e| Error::Event(e.to_string()))
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
