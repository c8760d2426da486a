//! The drift check: merge the window's batch profiles, compare them with the baseline, and write
//! the report (JSON and HTML), Model Monitor's files and the metrics.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};
use mlops_drift::DriftReport;
use mlops_drift::profile::Profile;
use mlops_drift::stats::{Override, TestConfig};
use mlops_formats::emf::{self, Metric};
use mlops_formats::model_monitor;
use mlops_lake::Lake;
use mlops_lake::keys;
use mlops_lake::registry;

fn ok() -> String {
    "ok".into()
}

/// The status of a report: `insufficient_data` when nothing could be tested.
pub fn status_of(report: &DriftReport) -> &'static str {
    if report.current_rows == 0 || report.checked == 0 { "insufficient_data" } else { "ok" }
}

/// The current window of a drift check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The profiles of the last N days, ending with the day of the check.
    Days(u32),
    /// The last K batch profiles, newest first, looking back at most [`LOOKBACK_DAYS`].
    Batches(u32),
}

/// How far back a window of K batches looks for them.
pub const LOOKBACK_DAYS: u32 = 366;

/// What a drift check compares: the monitored model version's baseline with the window.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftCheckConfig {
    pub model_name: String,
    pub model_version: u32,
    pub window: Window,
    pub tests: TestConfig,
    /// Method and threshold per column.
    pub overrides: BTreeMap<String, Override>,
}

/// The CloudWatch namespace of the drift metrics.
pub const METRICS_NAMESPACE: &str = "LambdaMlops/Drift";

/// The stored drift report: the comparison plus where its data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftCheck {
    pub generated_at: DateTime<Utc>,
    pub model: String,
    pub model_version: u32,
    /// The id of the monitored version's baseline.
    #[serde(default)]
    pub baseline_id: String,
    pub window: WindowUsed,
    /// `ok`, or `insufficient_data` when the window held no row, or no feature had enough
    /// values to be tested: nothing was compared, which is not "no drift".
    #[serde(default = "ok")]
    pub status: String,
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
    /// How many of them were cut on another baseline and re-binned onto the monitored one.
    #[serde(default)]
    pub rebinned: usize,
}

/// The monitored version's contract and baseline.
struct Reference {
    contract: mlops_contract::Contract,
    baseline: Profile,
}

/// The keys of the check's other outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outputs {
    pub html: String,
    pub statistics: String,
    pub constraints: String,
    pub constraint_violations: String,
}

/// Every batch profile of `dataset` dated from `from` to `to`, whatever baseline it was cut on,
/// oldest first (by day, then last modification, then key).
async fn dated_profiles(lake: &Lake, dataset: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<String>> {
    let mut listed: Vec<(NaiveDate, Option<i64>, String)> = lake
        .list_objects(&keys::profiles_prefix(dataset))
        .await?
        .into_iter()
        .filter_map(|o| {
            let day = keys::parse_profile_key(dataset, &o.key)?.day;
            (from <= day && day <= to).then_some((day, o.last_modified, o.key))
        })
        .collect();
    listed.sort();
    Ok(listed.into_iter().map(|(_, _, key)| key).collect())
}

/// The profile keys of the window ending on `to`.
async fn window_profiles(lake: &Lake, dataset: &str, window: Window, to: NaiveDate) -> Result<Vec<String>> {
    match window {
        Window::Days(n) => dated_profiles(lake, dataset, to - Duration::days(i64::from(n) - 1), to).await,
        Window::Batches(k) => {
            let mut keys = dated_profiles(lake, dataset, to - Duration::days(i64::from(LOOKBACK_DAYS) - 1), to).await?;
            let keep = keys.len().saturating_sub(k as usize);
            Ok(keys.split_off(keep))
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
    let (name, version) = (&config.model_name, config.model_version);
    let stored = registry::load_reference(lake, name, version).await?;
    let baseline = Profile::from_json(&stored.baseline, &format!("baseline of {name} v{version}"))?;
    let reference = Reference { contract: stored.contract, baseline };
    let contract = &reference.contract;
    let dataset = contract.dataset.clone();
    let keys = window_profiles(lake, &dataset, config.window, at.date_naive()).await?;
    let mut current = Profile::empty_like(contract, &reference.baseline);
    let mut rebinned = 0;
    for key in &keys {
        let profile = Profile::from_json(&lake.get(key).await?.bytes, key)?;
        // A window that spans a new registration holds profiles cut on another baseline:
        // they are re-binned onto the monitored version's edges, never refused.
        if current
            .merge_onto(&profile, &reference.baseline)
            .map_err(|e| Error::Rows { name: key.clone(), reason: e.to_string() })?
        {
            rebinned += 1;
        }
    }
    let drift = mlops_drift::of_profiles(contract, &reference.baseline, &current, &config.tests, &config.overrides)?;
    let report = drift.report;
    let (kind, size) = match config.window {
        Window::Days(n) => ("days", n),
        Window::Batches(k) => ("batches", k),
    };
    let key = keys::drift_report(&dataset, at);
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
        model: name.clone(),
        model_version: version,
        baseline_id: reference.baseline.edges_id(),
        window: WindowUsed { kind: kind.into(), size, from, to, profiles: keys, rebinned },
        status: status_of(&report).into(),
        outputs,
        report,
    };
    let meta = mlops_formats::html::ReportMeta {
        generated_at: Some(check.generated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        model: Some(check.model.clone()),
        model_version: Some(check.model_version.to_string()),
        baseline_id: Some(check.baseline_id.clone()),
        window_kind: Some(check.window.kind.clone()),
        window_size: Some(check.window.size),
        window_from: check.window.from.clone(),
        window_to: check.window.to.clone(),
        profiles: check.window.profiles.clone(),
        rebinned: check.window.rebinned,
        ..Default::default()
    };
    let page = mlops_formats::html::render(&check.report, &drift.charts, &meta);
    let json = |value: &serde_json::Value| serde_json::to_vec_pretty(value).map_err(|e| Error::json("drift report", e));
    let o = &check.outputs;
    lake.put(&o.html, page.into_bytes(), "text/html; charset=utf-8").await?;
    lake.put(&o.statistics, json(&model_monitor::statistics(contract, &current))?, "application/json").await?;
    lake.put(
        &o.constraints,
        json(&model_monitor::constraints(contract, &reference.baseline, &check.report))?,
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
/// and one for the dataset (`DriftShare`, `DatasetDrift`, `CurrentRows`, and
/// `InsufficientData`, 1 when nothing could be tested: alarm on it, or treat missing data as
/// breaching, so that "no data" never reads as "no drift").
///
/// A feature's score has one meaning per name, so one alarm threshold fits every feature:
/// `DriftPValue` for the p-value methods (KS, chi-square, z; drift when *below* the
/// `Threshold` property) and `DriftDistance` for the distances (Wasserstein, Jensen–Shannon,
/// PSI; drift when *above* it), beside `Drifted` (1 or 0), which means the same for every
/// method. Feature names become CloudWatch-safe dimension values (`emf::dimension_value`; the
/// name as written is the `FeatureName` property), and a check of a time CloudWatch would
/// drop (a replayed event more than 14 days old) is stamped now, with `CheckedFor` naming
/// the time it was for.
pub fn emf_lines(check: &DriftCheck) -> Vec<String> {
    let report = &check.report;
    let timestamp = emf::timestamp_ms(check.generated_at, chrono::Utc::now());
    let checked_for = (timestamp != check.generated_at.timestamp_millis())
        .then(|| ("CheckedFor", json!(check.generated_at.to_rfc3339())));
    let mut lines = Vec::with_capacity(report.columns.len() + 1);
    for feature in &report.columns {
        let Some(score) = feature.test.score().filter(|s| s.is_finite()) else { continue };
        let name = if feature.test.method.is_p_value() { "DriftPValue" } else { "DriftDistance" };
        let mut properties = vec![
            ("Method", json!(feature.test.method.name())),
            ("Threshold", json!(feature.test.threshold)),
            ("FeatureName", json!(feature.column)),
        ];
        properties.extend(checked_for.clone());
        lines.push(emf::line(
            METRICS_NAMESPACE,
            timestamp,
            &[("Dataset", &report.dataset), ("Feature", &feature.column)],
            &[
                Metric { name, unit: "None", value: score },
                Metric { name: "Drifted", unit: "Count", value: f64::from(u8::from(feature.test.drifted)) },
            ],
            &properties,
        ));
    }
    lines.push(emf::line(
        METRICS_NAMESPACE,
        timestamp,
        &[("Dataset", &report.dataset)],
        &[
            Metric { name: "DriftShare", unit: "None", value: report.share },
            Metric { name: "DatasetDrift", unit: "Count", value: f64::from(u8::from(report.dataset_drift)) },
            Metric { name: "CurrentRows", unit: "Count", value: report.current_rows as f64 },
            Metric {
                name: "InsufficientData",
                unit: "Count",
                value: f64::from(u8::from(check.status == "insufficient_data")),
            },
        ],
        &[&[("ModelVersion", json!(check.model_version))][..], checked_for.as_slice()].concat(),
    ));
    lines
}
