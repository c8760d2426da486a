//! Model quality: captured predictions joined with ground truth, per model version and per
//! day, with the evaluation metrics of `mlops evaluate` (the same code, [`mlops_metrics`]),
//! the prediction and label distributions against the version's reference, and the gate's
//! floors.
//!
//! Ground truth is a dataset of its own (`labels_dataset`), ingested like any other: its
//! contract names an `id` column, which joins a label to the capture line whose inference id
//! it equals, and a `target` column, the label. Captures of the window's days are joined with
//! every label curated since the window began (labels arrive later than the predictions);
//! when an id has several labels, the last one read wins. A group with fewer than `min_rows`
//! joined rows is `insufficient_data`: it has no metrics and is never called degraded.
//!
//! The prediction distribution (classifiers) is compared by Evidently's chi-square test with
//! the holdout's predictions when the version's evaluation recorded them, otherwise with the
//! version's baseline distribution of the target; the label distribution with the baseline's.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};
use mlops_contract::Contract;
use mlops_contract::validate::Value;
use mlops_drift::profile::{ColumnProfile, Profile};
use mlops_drift::stats::chisq::chisquare_gof;
use mlops_formats::emf::{self, Metric};
use mlops_lake::capture::{self, CaptureLine};
use mlops_lake::{Lake, keys, registry};
use mlops_metrics::gate::Gate;
use mlops_metrics::{Metrics, OutputNames, greater_is_better};

/// The CloudWatch namespace of the quality metrics.
pub const METRICS_NAMESPACE: &str = "LambdaMlops/ModelQuality";
/// The `detail-type` of the event sent when a version's quality is below the gate's floor.
pub const MODEL_QUALITY_DEGRADED: &str = "ModelQualityDegraded";
/// The p-value below which a distribution is called changed.
pub const P_VALUE_THRESHOLD: f64 = 0.05;

/// What a quality check joins.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    pub model_name: String,
    /// The dataset that holds the ground truth.
    pub labels_dataset: String,
    /// Captures of the last N days, ending with the day of the check.
    pub window_days: u32,
    /// Fewer joined rows than this in a group is `insufficient_data`.
    pub min_rows: u64,
}

/// The result of one distribution test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributionTest {
    pub method: String,
    /// `holdout predictions` or `baseline target`.
    pub reference: String,
    pub p_value: f64,
    pub threshold: f64,
    pub drifted: bool,
}

/// The quality of one version over the window, or on one day of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityGroup {
    pub model_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<NaiveDate>,
    /// Captured rows with a label.
    pub rows: u64,
    /// `ok` or `insufficient_data`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// Joined rows by predicted class (classifiers).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub predicted: BTreeMap<String, u64>,
    /// Joined rows by true label (classifiers).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_drift: Option<DistributionTest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_drift: Option<DistributionTest>,
}

/// One floor of the gate applied to one version's quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloorCheck {
    pub model_version: u32,
    pub metric: String,
    pub value: f64,
    pub floor: f64,
    pub greater_is_better: bool,
    pub below: bool,
}

/// The stored quality report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub generated_at: DateTime<Utc>,
    pub model: String,
    pub labels_dataset: String,
    pub window: QualityWindow,
    /// `ok` when some version has enough joined rows, else `insufficient_data`.
    pub status: String,
    /// Capture lines read, labels read, and rows joined.
    pub captured: u64,
    pub labelled: u64,
    pub joined: u64,
    /// Joined rows whose label is not one of the model's classes (or not a number), left out.
    pub unusable_labels: u64,
    /// Capture lines that could not be read.
    pub unreadable: u64,
    pub versions: Vec<QualityGroup>,
    pub days: Vec<QualityGroup>,
    pub floors: Vec<FloorCheck>,
    pub degraded: bool,
    /// The gate whose floors applied, when the lake holds one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    pub inputs: Vec<String>,
}

/// The days of the captures joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityWindow {
    pub days: u32,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// A captured answer, as the join keeps it.
struct Answer {
    version: u32,
    day: NaiveDate,
    variant: String,
    request_id: String,
    prediction: serde_json::Map<String, serde_json::Value>,
}

/// What one version needs to be measured: its classes, outputs and references.
struct VersionRef {
    classes: Option<Vec<String>>,
    model_labels: Option<Vec<String>>,
    outputs: OutputNames,
    /// The holdout's predicted rows per class, when the evaluation recorded them.
    holdout_predicted: Option<BTreeMap<String, u64>>,
    /// The baseline's rows per target class.
    baseline_target: Option<BTreeMap<String, u64>>,
}

async fn version_ref(lake: &Lake, model: &str, version: u32) -> Result<VersionRef> {
    let stored = registry::load_reference(lake, model, version).await?;
    let contract = &stored.contract;
    let target = contract.target.as_ref().and_then(|t| contract.column(t));
    let classes = stored.manifest.class_labels.clone().or_else(|| target.and_then(|t| t.allowed.clone()));
    let holdout_predicted = stored
        .manifest
        .lineage
        .as_ref()
        .and_then(|l| l.evaluation.as_ref())
        .and_then(|e| e["candidate"]["metrics"]["per_class"].as_array().cloned())
        .map(|per_class| {
            per_class
                .iter()
                .filter_map(|c| Some((c["class"].as_str()?.to_string(), c["predicted"].as_u64()?)))
                .collect::<BTreeMap<_, _>>()
        })
        .filter(|m| !m.is_empty() && m.values().any(|n| *n > 0));
    let baseline = Profile::from_json(&stored.baseline, &format!("baseline of {model} v{version}"))?;
    let baseline_target = contract.target.as_ref().and_then(|t| match baseline.columns.get(t) {
        Some(ColumnProfile::Categorical(c)) => Some(c.label_counts()),
        _ => None,
    });
    Ok(VersionRef {
        model_labels: stored.manifest.class_labels.clone(),
        classes,
        outputs: OutputNames::of(&stored.manifest.outputs),
        holdout_predicted,
        baseline_target,
    })
}

fn label_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Text(t) => Some(t.to_string()),
        Value::Int(n) => Some(n.to_string()),
        Value::Float(x) => Some(x.to_string()),
        Value::Bool(b) => Some(b.to_string()),
    }
}

/// The labels of the ground-truth dataset curated from `from` on: id → label.
async fn read_labels(
    lake: &Lake,
    contract: &Contract,
    from: NaiveDate,
    inputs: &mut Vec<String>,
) -> Result<HashMap<String, String>> {
    let dataset = &contract.dataset;
    let (Some(id), Some(target)) = (&contract.id, &contract.target) else {
        return Err(Error::Rows {
            name: keys::dataset_contract(dataset),
            reason: "a ground-truth contract must name its id column (`id`) and its label (`target`)".into(),
        });
    };
    let id_at = contract.columns.iter().position(|c| &c.name == id);
    let target_at = contract.columns.iter().position(|c| &c.name == target);
    let (Some(id_at), Some(target_at)) = (id_at, target_at) else {
        return Err(Error::Rows {
            name: keys::dataset_contract(dataset),
            reason: "id or target is not a column".into(),
        });
    };
    let mut listed: Vec<(NaiveDate, String)> = lake
        .list_objects(&format!("curated/{dataset}/"))
        .await?
        .into_iter()
        .filter(|o| o.key.ends_with(".parquet"))
        .filter_map(|o| {
            let day = o.key.split('/').find_map(|p| p.strip_prefix("dt="))?;
            let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
            (day >= from).then_some((day, o.key))
        })
        .collect();
    listed.sort();
    let mut labels = HashMap::new();
    for (_, key) in listed {
        let bytes = lake.get(&key).await?.bytes;
        let rows = mlops_formats::curated::read_values(bytes.into(), contract)?;
        for row in rows {
            if let (Some(id), Some(label)) = (label_text(&row[id_at]), label_text(&row[target_at])) {
                labels.insert(id, label);
            }
        }
        inputs.push(lake.uri(&key));
    }
    Ok(labels)
}

/// The capture lines of the window's days: inference id → answer.
async fn read_captures(
    lake: &Lake,
    model: &str,
    from: NaiveDate,
    to: NaiveDate,
    inputs: &mut Vec<String>,
) -> Result<(HashMap<String, Answer>, u64, u64)> {
    let mut listed: Vec<(NaiveDate, String)> = lake
        .list_objects(&capture::prefix(model))
        .await?
        .into_iter()
        .filter_map(|o| {
            let day = capture::day_of(model, &o.key)?;
            (from <= day && day <= to).then_some((day, o.key))
        })
        .collect();
    listed.sort();
    let (mut answers, mut read, mut unreadable) = (HashMap::new(), 0u64, 0u64);
    for (day, key) in listed {
        let bytes = lake.get(&key).await?.bytes;
        let text = if key.ends_with(".gz") {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut out)
                .map_err(|e| Error::Read { key: key.clone(), message: e.to_string() })?;
            out
        } else {
            bytes.to_vec()
        };
        for line in text.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
            match serde_json::from_slice::<CaptureLine>(line) {
                Ok(line) if line.capture.model == model => {
                    read += 1;
                    let answer = Answer {
                        version: line.capture.model_version,
                        day,
                        variant: line.capture.variant,
                        request_id: line.capture.request_id,
                        prediction: line.prediction,
                    };
                    answers.insert(line.capture.inference_id, answer);
                }
                Ok(_) => {}
                Err(_) => unreadable += 1,
            }
        }
        inputs.push(lake.uri(&key));
    }
    Ok((answers, read, unreadable))
}

/// One group's joined rows: the predictions and the truths.
#[derive(Default)]
struct Joined<'a> {
    rows: Vec<(&'a serde_json::Map<String, serde_json::Value>, &'a str)>,
}

fn chisquare(
    reference: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
    name: &str,
) -> Option<DistributionTest> {
    let keys: std::collections::BTreeSet<&String> = reference.keys().chain(current.keys()).collect();
    let r: Vec<u64> = keys.iter().map(|k| reference.get(*k).copied().unwrap_or(0)).collect();
    let c: Vec<u64> = keys.iter().map(|k| current.get(*k).copied().unwrap_or(0)).collect();
    let test = chisquare_gof(&r, &c)?;
    let p_value = if test.p_value.is_nan() { 1.0 } else { test.p_value };
    Some(DistributionTest {
        method: "chisquare".into(),
        reference: name.into(),
        p_value,
        threshold: P_VALUE_THRESHOLD,
        drifted: p_value < P_VALUE_THRESHOLD,
    })
}

/// Measures one group; `unusable` counts the labels it could not use.
fn measure(
    version: u32,
    day: Option<NaiveDate>,
    joined: &Joined<'_>,
    r: &VersionRef,
    min_rows: u64,
    unusable: &mut u64,
) -> QualityGroup {
    let mut group = QualityGroup {
        model_version: version,
        day,
        rows: 0,
        status: "insufficient_data".into(),
        metrics: None,
        predicted: BTreeMap::new(),
        labels: BTreeMap::new(),
        prediction_drift: None,
        label_drift: None,
    };
    let metrics = match &r.classes {
        Some(classes) => {
            let model_labels = r.model_labels.as_deref().unwrap_or(classes);
            let (mut truth, mut probabilities) = (Vec::new(), Vec::new());
            for (prediction, label) in &joined.rows {
                let Some(t) = classes.iter().position(|c| c == label) else {
                    *unusable += 1;
                    continue;
                };
                let p = r.outputs.probabilities(prediction, classes, model_labels);
                *group.predicted.entry(classes[mlops_metrics::argmax(&p)].clone()).or_default() += 1;
                *group.labels.entry(classes[t].clone()).or_default() += 1;
                truth.push(t);
                probabilities.push(p);
            }
            group.rows = truth.len() as u64;
            Metrics::Classification(mlops_metrics::classification(classes, &truth, &probabilities))
        }
        None => {
            let (mut truth, mut values) = (Vec::new(), Vec::new());
            for (prediction, label) in &joined.rows {
                let Ok(y) = label.parse::<f64>() else {
                    *unusable += 1;
                    continue;
                };
                truth.push(y);
                values.push(r.outputs.value(prediction));
            }
            group.rows = truth.len() as u64;
            Metrics::Regression(mlops_metrics::regression(&truth, &values))
        }
    };
    if group.rows >= min_rows.max(1) {
        group.status = "ok".into();
        group.metrics = Some(metrics);
        group.prediction_drift = match (&r.holdout_predicted, &r.baseline_target) {
            (Some(holdout), _) => chisquare(holdout, &group.predicted, "holdout predictions"),
            (None, Some(baseline)) => chisquare(baseline, &group.predicted, "baseline target"),
            _ => None,
        };
        group.label_drift = r.baseline_target.as_ref().and_then(|b| chisquare(b, &group.labels, "baseline target"));
    }
    group
}

/// Runs a quality check as of `at` and writes its report under `reports/quality/<model>/`.
/// Returns the report and its key.
pub async fn run_quality_check(
    lake: &Lake,
    config: &QualityConfig,
    at: DateTime<Utc>,
) -> Result<(QualityReport, String)> {
    let model = &config.model_name;
    let to = at.date_naive();
    let from = to - Duration::days(i64::from(config.window_days.max(1)) - 1);
    let contract_key = keys::dataset_contract(&config.labels_dataset);
    let text = lake.get(&contract_key).await?.bytes;
    let labels_contract = Contract::from_yaml(&String::from_utf8_lossy(&text), &contract_key)?;
    let mut inputs = vec![lake.uri(&contract_key)];
    let (answers, captured, unreadable) = read_captures(lake, model, from, to, &mut inputs).await?;
    let labels = read_labels(lake, &labels_contract, from, &mut inputs).await?;
    let mut by_version: BTreeMap<u32, Joined<'_>> = BTreeMap::new();
    let mut by_day: BTreeMap<(NaiveDate, u32), Joined<'_>> = BTreeMap::new();
    for (id, answer) in &answers {
        if let Some(label) = labels.get(id) {
            by_version.entry(answer.version).or_default().rows.push((&answer.prediction, label));
            by_day.entry((answer.day, answer.version)).or_default().rows.push((&answer.prediction, label));
        }
    }
    let mut refs = BTreeMap::new();
    for version in by_version.keys() {
        refs.insert(*version, version_ref(lake, model, *version).await?);
    }
    let mut unusable = 0;
    let versions: Vec<QualityGroup> = by_version
        .iter()
        .map(|(v, joined)| measure(*v, None, joined, &refs[v], config.min_rows, &mut unusable))
        .collect();
    let mut ignored = 0;
    let days: Vec<QualityGroup> = by_day
        .iter()
        .map(|((day, v), joined)| measure(*v, Some(*day), joined, &refs[v], config.min_rows, &mut ignored))
        .collect();
    let gate_key = keys::pipeline_settings(model, "gate.yaml");
    let gate = match lake.get(&gate_key).await {
        Ok(object) => Some(
            Gate::from_yaml(&String::from_utf8_lossy(&object.bytes), &lake.uri(&gate_key))
                .map_err(|e| Error::Rows { name: gate_key.clone(), reason: e.to_string() })?,
        ),
        Err(mlops_lake::Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let mut floors = Vec::new();
    for group in versions.iter().filter(|g| g.status == "ok") {
        let Some(metrics) = &group.metrics else { continue };
        for rule in gate.iter().flat_map(|g| &g.rules) {
            let (Some(floor), Some(value)) = (rule.threshold, metrics.get(&rule.metric)) else { continue };
            let greater = rule.greater_is_better.unwrap_or_else(|| greater_is_better(&rule.metric));
            let below = if greater { value < floor } else { value > floor };
            floors.push(FloorCheck {
                model_version: group.model_version,
                metric: rule.metric.clone(),
                value,
                floor,
                greater_is_better: greater,
                below,
            });
        }
    }
    let status = if versions.iter().any(|g| g.status == "ok") { "ok" } else { "insufficient_data" };
    let report = QualityReport {
        generated_at: at,
        model: model.clone(),
        labels_dataset: config.labels_dataset.clone(),
        window: QualityWindow { days: config.window_days, from, to },
        status: status.into(),
        captured,
        labelled: labels.len() as u64,
        joined: by_version.values().map(|j| j.rows.len() as u64).sum(),
        unusable_labels: unusable,
        unreadable,
        degraded: floors.iter().any(|f| f.below),
        versions,
        days,
        floors,
        gate: gate.is_some().then(|| lake.uri(&gate_key)),
        inputs,
    };
    let key = keys::quality_report(model, at);
    let body = serde_json::to_vec_pretty(&report).map_err(|e| Error::json("quality report", e))?;
    lake.put(&key, body, "application/json").await?;
    Ok((report, key))
}

/// The check's metrics as EMF lines, one per version with `Model` and `ModelVersion`
/// dimensions: `JoinedRows`, `InsufficientData` (1 or 0), the task's metrics (`Accuracy`,
/// `MacroF1`, `LogLoss`, `RocAuc`; `Rmse`, `Mae`, `R2`), `BelowFloor` (1 when some floor of
/// the gate fails), and `PredictionDriftPValue` and `LabelDriftPValue` (drift when below
/// 0.05, as `DriftPValue` is). A report of a time CloudWatch would drop is stamped now, with
/// `CheckedFor`.
pub fn emf_lines(report: &QualityReport) -> Vec<String> {
    let timestamp = emf::timestamp_ms(report.generated_at, Utc::now());
    let checked_for = (timestamp != report.generated_at.timestamp_millis())
        .then(|| ("CheckedFor", json!(report.generated_at.to_rfc3339())));
    let mut lines = Vec::new();
    for group in &report.versions {
        let version = group.model_version.to_string();
        let mut metrics = vec![
            Metric { name: "JoinedRows", unit: "Count", value: group.rows as f64 },
            Metric { name: "InsufficientData", unit: "Count", value: f64::from(u8::from(group.status != "ok")) },
        ];
        let named: &[(&str, &str)] = match &group.metrics {
            Some(Metrics::Classification(_)) => {
                &[("Accuracy", "accuracy"), ("MacroF1", "macro_f1"), ("LogLoss", "log_loss"), ("RocAuc", "roc_auc")]
            }
            Some(Metrics::Regression(_)) => &[("Rmse", "rmse"), ("Mae", "mae"), ("R2", "r2")],
            None => &[],
        };
        for (name, key) in named {
            if let Some(value) = group.metrics.as_ref().and_then(|m| m.get(key)).filter(|v| v.is_finite()) {
                metrics.push(Metric { name, unit: "None", value });
            }
        }
        if group.status == "ok" {
            let below = report.floors.iter().any(|f| f.model_version == group.model_version && f.below);
            metrics.push(Metric { name: "BelowFloor", unit: "Count", value: f64::from(u8::from(below)) });
        }
        if let Some(t) = &group.prediction_drift {
            metrics.push(Metric { name: "PredictionDriftPValue", unit: "None", value: t.p_value });
        }
        if let Some(t) = &group.label_drift {
            metrics.push(Metric { name: "LabelDriftPValue", unit: "None", value: t.p_value });
        }
        lines.push(emf::line(
            METRICS_NAMESPACE,
            timestamp,
            &[("Model", &report.model), ("ModelVersion", &version)],
            &metrics,
            checked_for.as_slice(),
        ));
    }
    lines
}

/// The detail of a `ModelQualityDegraded` event: the versions and floors that failed.
pub fn degraded_detail(report: &QualityReport, report_key: &str) -> serde_json::Value {
    let below: Vec<&FloorCheck> = report.floors.iter().filter(|f| f.below).collect();
    json!({
        "model": report.model,
        "model_version": below.first().map(|f| f.model_version),
        "report_key": report_key,
        "floors": below,
        "window": report.window,
        "joined": report.joined,
    })
}

/// What an A/B report compares.
#[derive(Debug, Clone, PartialEq)]
pub struct AbConfig {
    pub model_name: String,
    pub labels_dataset: String,
    /// Captures from this day on.
    pub since: NaiveDate,
    /// Fewer joined outcomes than this in a variant is not enough to decide.
    pub min_rows: u64,
    /// The significance level of the test (0.05).
    pub alpha: f64,
    /// The power the sample size is computed for (0.8).
    pub power: f64,
}

/// One variant of an A/B test, as its captures and outcomes show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub variant: String,
    /// The model versions that answered as this variant (one, unless it changed).
    pub versions: Vec<u32>,
    pub requests: u64,
    pub captured_rows: u64,
    /// Captured rows with a label.
    pub outcomes: u64,
    /// Accuracy (classifiers) or mean absolute error (regressors) on the outcomes.
    pub metric: String,
    pub value: Option<f64>,
    /// Its 95% interval: Wilson's for accuracy, Student's t for the mean absolute error.
    pub interval: Option<mlops_metrics::ab::Interval>,
    /// Every evaluation metric, as the quality check computes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
}

/// The comparison of the challenger with the champion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbReport {
    pub generated_at: DateTime<Utc>,
    pub model: String,
    pub since: NaiveDate,
    pub variants: Vec<VariantResult>,
    /// `two-proportion z` (accuracy) or `welch t` (absolute errors), challenger minus champion.
    pub test: Option<String>,
    pub difference: Option<f64>,
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    pub alpha: f64,
    /// Outcomes per variant that the observed difference needs to be significant at `alpha`
    /// with the stated power.
    pub needed_per_variant: Option<u64>,
    /// `promote_challenger`, `keep_champion` or `not_enough_data`.
    pub recommendation: String,
    pub reason: String,
}

/// A variant's captured answers, and those with their label.
type VariantRows<'a> = (Vec<&'a Answer>, Vec<(&'a Answer, &'a str)>);

/// Compares the variants of an A/B test on their outcomes, and writes the report under
/// `reports/ab/<model>/`. Returns the report and its key.
pub async fn run_ab_report(lake: &Lake, config: &AbConfig, at: DateTime<Utc>) -> Result<(AbReport, String)> {
    let model = &config.model_name;
    let contract_key = keys::dataset_contract(&config.labels_dataset);
    let text = lake.get(&contract_key).await?.bytes;
    let labels_contract = Contract::from_yaml(&String::from_utf8_lossy(&text), &contract_key)?;
    let mut inputs = Vec::new();
    let (answers, _, _) = read_captures(lake, model, config.since, at.date_naive(), &mut inputs).await?;
    let labels = read_labels(lake, &labels_contract, config.since, &mut inputs).await?;
    let mut refs = BTreeMap::new();
    let mut variants: BTreeMap<&str, VariantRows<'_>> = BTreeMap::new();
    for (id, answer) in &answers {
        let entry = variants.entry(answer.variant.as_str()).or_default();
        entry.0.push(answer);
        if let Some(label) = labels.get(id) {
            entry.1.push((answer, label.as_str()));
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = refs.entry(answer.version) {
            slot.insert(version_ref(lake, model, answer.version).await?);
        }
    }
    // Per variant: accuracy's successes and outcomes, or the absolute errors.
    let mut results = Vec::new();
    let mut correct: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut errors: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (variant, (captured, joined)) in &variants {
        let mut versions: Vec<u32> = captured.iter().map(|a| a.version).collect();
        versions.sort_unstable();
        versions.dedup();
        let requests = captured.iter().map(|a| a.request_id.as_str()).collect::<std::collections::BTreeSet<_>>().len();
        let group = Joined { rows: joined.iter().map(|(a, l)| (&a.prediction, *l)).collect() };
        let reference = &refs[&versions[0]];
        let mut unusable = 0;
        let measured = measure(versions[0], None, &group, reference, 1, &mut unusable);
        let (metric, value, interval) = match &measured.metrics {
            Some(Metrics::Classification(c)) => {
                let n = measured.rows;
                let hits = (c.accuracy * n as f64).round() as u64;
                correct.insert(variant, (hits, n));
                ("accuracy", Some(c.accuracy), mlops_metrics::ab::wilson(hits, n, 0.95))
            }
            Some(Metrics::Regression(_)) => {
                let e: Vec<f64> = joined
                    .iter()
                    .filter_map(|(a, l)| Some((reference.outputs.value(&a.prediction) - l.parse::<f64>().ok()?).abs()))
                    .collect();
                let mae = (!e.is_empty()).then(|| e.iter().sum::<f64>() / e.len() as f64);
                let interval = mlops_metrics::ab::mean_interval(&e, 0.95);
                errors.insert(variant, e);
                ("mae", mae, interval)
            }
            None => ("accuracy", None, None),
        };
        results.push(VariantResult {
            variant: variant.to_string(),
            versions,
            requests: requests as u64,
            captured_rows: captured.len() as u64,
            outcomes: measured.rows,
            metric: metric.into(),
            value,
            interval,
            metrics: measured.metrics,
        });
    }
    let (champion, challenger) = ("champion", "challenger");
    let mut report = AbReport {
        generated_at: at,
        model: model.clone(),
        since: config.since,
        variants: results,
        test: None,
        difference: None,
        statistic: None,
        p_value: None,
        alpha: config.alpha,
        needed_per_variant: None,
        recommendation: "not_enough_data".into(),
        reason: String::new(),
    };
    let outcomes = |name: &str| report.variants.iter().find(|v| v.variant == name).map_or(0, |v| v.outcomes);
    let (n_a, n_b) = (outcomes(champion), outcomes(challenger));
    if let (Some(&(x_a, n_a)), Some(&(x_b, n_b))) = (correct.get(champion), correct.get(challenger)) {
        let (p_a, p_b) = (x_a as f64 / n_a as f64, x_b as f64 / n_b as f64);
        report.test = Some("two-proportion z".into());
        report.difference = Some(p_b - p_a);
        if let Some(t) = mlops_metrics::ab::two_proportion_z(x_b, n_b, x_a, n_a) {
            (report.statistic, report.p_value) = (Some(t.statistic), Some(t.p_value));
        }
        report.needed_per_variant = mlops_metrics::ab::sample_size_proportions(p_b, p_a, config.alpha, config.power);
    } else if let (Some(a), Some(b)) = (errors.get(champion), errors.get(challenger)) {
        report.test = Some("welch t".into());
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        if a.len() >= 2 && b.len() >= 2 {
            report.difference = Some(mean(b) - mean(a));
            if let Some(t) = mlops_metrics::ab::welch_t(b, a) {
                (report.statistic, report.p_value) = (Some(t.statistic), Some(t.p_value));
            }
            if let (Some(sa), Some(sb)) = (mlops_metrics::ab::sample_sd(a), mlops_metrics::ab::sample_sd(b)) {
                report.needed_per_variant =
                    mlops_metrics::ab::sample_size_means(mean(b) - mean(a), sb, sa, config.alpha, config.power);
            }
        }
    }
    // Lower is better for the mean absolute error: a negative difference favours the challenger.
    let challenger_better = match (report.test.as_deref(), report.difference) {
        (Some("welch t"), Some(d)) => d < 0.0,
        (_, Some(d)) => d > 0.0,
        _ => false,
    };
    (report.recommendation, report.reason) = if n_a < config.min_rows || n_b < config.min_rows {
        (
            "not_enough_data".into(),
            format!(
                "{n_a} champion and {n_b} challenger outcomes; at least {} each are needed{}",
                config.min_rows,
                report
                    .needed_per_variant
                    .map_or(String::new(), |n| format!(" (about {n} each for the difference seen so far)"))
            ),
        )
    } else {
        match report.p_value {
            Some(p) if p < config.alpha && challenger_better => {
                ("promote_challenger".into(), format!("the challenger is better (p = {p:.4} < {})", config.alpha))
            }
            Some(p) if p < config.alpha => {
                ("keep_champion".into(), format!("the champion is better (p = {p:.4} < {})", config.alpha))
            }
            Some(p) => ("not_enough_data".into(), format!(
                "no significant difference yet (p = {p:.4}){}",
                report.needed_per_variant.map_or(String::new(), |n| format!(
                    "; about {n} outcomes per variant would make the difference seen so far significant at {} with power {}",
                    config.alpha, config.power
                ))
            )),
            None => ("not_enough_data".into(), "the variants could not be compared (no variance in their outcomes)".into()),
        }
    };
    let key = format!("reports/ab/{model}/{}.json", at.format("%Y-%m-%dT%H-%M-%SZ"));
    let body = serde_json::to_vec_pretty(&report).map_err(|e| Error::json("A/B report", e))?;
    lake.put(&key, body, "application/json").await?;
    let html = key.replace(".json", ".html");
    lake.put(&html, ab_page(&report).into_bytes(), "text/html; charset=utf-8").await?;
    Ok((report, key))
}

/// The A/B report as a page: the variants' figures, the test and the recommendation.
pub fn ab_page(report: &AbReport) -> String {
    let show = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    let rows: Vec<Vec<String>> = report
        .variants
        .iter()
        .map(|v| {
            vec![
                v.variant.clone(),
                v.versions.iter().map(|n| format!("v{n}")).collect::<Vec<_>>().join(", "),
                v.requests.to_string(),
                v.outcomes.to_string(),
                v.metric.clone(),
                show(v.value),
                v.interval.map_or("n/a".into(), |i| format!("{:.4} – {:.4}", i.low, i.high)),
            ]
        })
        .collect();
    let mut notes = Vec::new();
    if let Some(test) = &report.test {
        notes.push(format!(
            "{test}: challenger − champion = {}, statistic {}, p = {} (α = {})",
            show(report.difference),
            show(report.statistic),
            show(report.p_value),
            report.alpha
        ));
    }
    notes.push(format!("Recommendation: {} — {}", report.recommendation.replace('_', " "), report.reason));
    mlops_formats::html::table_page(
        &format!("A/B test: {}", report.model),
        &[
            ("generated", report.generated_at.to_rfc3339()),
            ("model", report.model.clone()),
            ("captures since", report.since.to_string()),
            ("outcomes needed per variant", report.needed_per_variant.map_or("n/a".into(), |n| n.to_string())),
        ],
        &["variant", "versions", "requests", "outcomes", "metric", "value", "95% interval"],
        &rows,
        &notes,
    )
}
