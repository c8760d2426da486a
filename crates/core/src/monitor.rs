//! The drift check: merge the window's batch profiles, compare them with the baseline, and write
//! the report (JSON and HTML), Model Monitor's files and the metrics.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::charts;
use crate::compare::DriftReport;
use crate::config::{DriftCheckConfig, LOOKBACK_DAYS, Window};
use crate::drift::compare_profiles;
use crate::error::{Error, Result};
use crate::lake;
use crate::model_monitor;
use crate::profile::Profile;
use crate::registry;
use crate::storage::Lake;

/// The CloudWatch namespace of the drift metrics.
pub const METRICS_NAMESPACE: &str = "LambdaMlops/Drift";

/// The stored drift report: the comparison plus where its data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftCheck {
    pub generated_at: DateTime<Utc>,
    pub model: String,
    pub model_version: u32,
    pub window: WindowUsed,
    /// Where the HTML page and Model Monitor's files were written.
    pub outputs: Outputs,
    #[serde(flatten)]
    pub report: DriftReport,
}

/// The current window: how it was chosen, the days it spans and the batch profiles it merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowUsed {
    /// `days` or `batches`.
    pub kind: String,
    /// N days or K batches.
    pub size: u32,
    pub from: Option<String>,
    pub to: Option<String>,
    pub profiles: Vec<String>,
}

/// The keys of the check's other outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outputs {
    pub html: String,
    pub statistics: String,
    pub constraints: String,
    pub constraint_violations: String,
}

/// The keys of one day's profiles, oldest first (by last modification, then key).
async fn day_profiles(lake: &Lake, dataset: &str, day: NaiveDate) -> Result<Vec<String>> {
    let mut listed = lake.list_objects(&lake::profiles_prefix(dataset, day)).await?;
    listed.retain(|o| o.key.ends_with(".json"));
    listed.sort_by(|a, b| (a.last_modified, &a.key).cmp(&(b.last_modified, &b.key)));
    Ok(listed.into_iter().map(|o| o.key).collect())
}

/// The profile keys of the window ending on `to`.
async fn window_profiles(lake: &Lake, dataset: &str, window: Window, to: NaiveDate) -> Result<Vec<String>> {
    match window {
        Window::Days(n) => {
            let from = to - Duration::days(i64::from(n) - 1);
            let mut keys = Vec::new();
            for day in from.iter_days().take_while(|d| *d <= to) {
                keys.extend(day_profiles(lake, dataset, day).await?);
            }
            Ok(keys)
        }
        Window::Batches(k) => {
            let mut newest_first: Vec<String> = Vec::new();
            for back in 0..LOOKBACK_DAYS {
                let day = to - Duration::days(i64::from(back));
                newest_first.extend(day_profiles(lake, dataset, day).await?.into_iter().rev());
                if newest_first.len() >= k as usize {
                    break;
                }
            }
            newest_first.truncate(k as usize);
            newest_first.reverse();
            Ok(newest_first)
        }
    }
}

/// The day of a profile key (`profiles/<dataset>/dt=YYYY-MM-DD/<batch>.json`).
fn key_day(key: &str) -> Option<&str> {
    key.split('/').find_map(|part| part.strip_prefix("dt="))
}

/// Runs a drift check as of `at` and writes the report under `reports/drift/`. Returns the
/// report and its key.
pub async fn run_drift_check(
    lake: &Lake,
    config: &DriftCheckConfig,
    at: DateTime<Utc>,
) -> Result<(DriftCheck, String)> {
    let model = &config.model;
    let reference = registry::load_reference(lake, &model.model_name, model.model_version).await?;
    let contract = &reference.contract;
    let dataset = contract.dataset.clone();
    let keys = window_profiles(lake, &dataset, config.window, at.date_naive()).await?;
    let mut current = Profile::empty_like(contract, &reference.baseline);
    for key in &keys {
        let profile = Profile::from_json(&lake.get(key).await?.bytes, key)?;
        current.merge(&profile).map_err(|e| Error::Profile(format!("{key}: {e}")))?;
    }
    let report = compare_profiles(contract, &reference.baseline, &current, &config.tests, &config.overrides)?;
    let (kind, size) = match config.window {
        Window::Days(n) => ("days", n),
        Window::Batches(k) => ("batches", k),
    };
    let key = lake::drift_report(&dataset, at);
    let stem = key.trim_end_matches(".json");
    let outputs = Outputs {
        html: format!("{stem}.html"),
        statistics: format!("{stem}/statistics.json"),
        constraints: format!("{stem}/constraints.json"),
        constraint_violations: format!("{stem}/constraint_violations.json"),
    };
    let (from, to) = match config.window {
        Window::Days(n) => {
            let to = at.date_naive();
            (Some((to - Duration::days(i64::from(n) - 1)).to_string()), Some(to.to_string()))
        }
        Window::Batches(_) => (
            keys.first().and_then(|k| key_day(k)).map(str::to_string),
            keys.last().and_then(|k| key_day(k)).map(str::to_string),
        ),
    };
    let check = DriftCheck {
        generated_at: at,
        model: model.model_name.clone(),
        model_version: model.model_version,
        window: WindowUsed { kind: kind.into(), size, from, to, profiles: keys },
        outputs,
        report,
    };
    let names: Vec<&str> = check.report.columns.iter().map(|f| f.column.as_str()).collect();
    let page = crate::report_html::render(&check.report, &charts::from_profiles(names, &reference.baseline, &current));
    let threshold = config.tests.all.threshold.unwrap_or(crate::stats::Method::Wasserstein.default_threshold());
    let json = |value: &serde_json::Value| serde_json::to_vec_pretty(value).map_err(|e| Error::json("drift report", e));
    let o = &check.outputs;
    lake.put(&o.html, page.into_bytes(), "text/html; charset=utf-8").await?;
    lake.put(&o.statistics, json(&model_monitor::statistics(contract, &current))?, "application/json").await?;
    lake.put(
        &o.constraints,
        json(&model_monitor::constraints(contract, &reference.baseline, threshold))?,
        "application/json",
    )
    .await?;
    let violations = model_monitor::violations(&check.report, &reference.baseline, &current);
    lake.put(&o.constraint_violations, json(&violations)?, "application/json").await?;
    let body = serde_json::to_vec_pretty(&check).map_err(|e| Error::json("drift report", e))?;
    lake.put(&key, body, "application/json").await?;
    Ok((check, key))
}

/// The check's CloudWatch metrics as embedded-metric-format log lines: one per tested feature
/// (`DriftScore`, `Drifted`, by dataset and feature) and one for the dataset (`DriftShare`,
/// `DatasetDrift`, `CurrentRows`).
pub fn emf_lines(check: &DriftCheck) -> Vec<String> {
    let report = &check.report;
    let timestamp = check.generated_at.timestamp_millis();
    let mut lines = Vec::with_capacity(report.columns.len() + 1);
    for feature in &report.columns {
        let Some(score) = feature.test.score().filter(|s| s.is_finite()) else { continue };
        lines.push(
            json!({
                "_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [{
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [["Dataset", "Feature"]],
                    "Metrics": [{"Name": "DriftScore", "Unit": "None"}, {"Name": "Drifted", "Unit": "Count"}]
                }]},
                "Dataset": report.dataset,
                "Feature": feature.column,
                "Method": feature.test.method.name(),
                "DriftScore": score,
                "Drifted": u8::from(feature.test.drifted),
            })
            .to_string(),
        );
    }
    lines.push(
        json!({
            "_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["Dataset"]],
                "Metrics": [
                    {"Name": "DriftShare", "Unit": "None"},
                    {"Name": "DatasetDrift", "Unit": "Count"},
                    {"Name": "CurrentRows", "Unit": "Count"}
                ]
            }]},
            "Dataset": report.dataset,
            "ModelVersion": check.model_version,
            "DriftShare": report.share,
            "DatasetDrift": u8::from(report.dataset_drift),
            "CurrentRows": report.current_rows,
        })
        .to_string(),
    );
    lines
}
