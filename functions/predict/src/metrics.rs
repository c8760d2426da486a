//! predict's own metrics, one embedded-metric-format line per request in namespace
//! [`NAMESPACE`], with the dimensions `Model`, `ModelVersion` and `Variant`:
//!
//! - an answered request: `Latency` (milliseconds, from the request's arrival to its answer),
//!   `Rows`, `Requests` (1), and either `Predicted.<class>` (the rows predicted as each of the
//!   model's classes, at most [`MAX_CLASSES`] of them, the rest as `Predicted.other`) or, for
//!   a model without classes, `Score` (up to 100 of the request's first output values, so
//!   CloudWatch can chart their percentiles);
//! - a rejected request: `Rejected` (1) and `Latency`, with a fourth dimension `Reason`
//!   ([`crate::ApiError::reason`]), under the champion (a request rejected before a variant
//!   was chosen has none of its own).
//!
//! Capture's counters (`CaptureDropped`, `CaptureFailed`) ride on the answered line: they are
//! totals since the cold start, so an alarm watches their maximum.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlops_emf::{Metric, Samples};
use mlops_model::RowOutputs;

use crate::{App, Variant};

/// The CloudWatch namespace of predict's metrics.
pub const NAMESPACE: &str = "LambdaMlops/Predict";
/// Classes counted by name; the others are counted together.
pub const MAX_CLASSES: usize = 50;

/// Where the lines go.
#[derive(Debug, Clone, Default)]
pub enum Emit {
    /// Printed on stdout, where CloudWatch Logs extracts them (on Lambda).
    Stdout,
    /// Printed on stderr, beside the logs (`mlops invoke`, whose stdout is the answer).
    Stderr,
    /// Not written (a local server, a benchmark).
    #[default]
    Discard,
    /// Kept in memory, for tests.
    Memory(Arc<Mutex<Vec<String>>>),
}

impl Emit {
    /// Writes the line `make` builds, unless the lines are discarded.
    pub fn line(&self, make: impl FnOnce() -> String) {
        match self {
            Emit::Stdout => println!("{}", make()),
            Emit::Stderr => eprintln!("{}", make()),
            Emit::Discard => {}
            Emit::Memory(lines) => {
                if let Ok(mut lines) = lines.lock() {
                    lines.push(make());
                }
            }
        }
    }
}

/// What the lines of one model version name, made when it is loaded rather than per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The `ModelVersion` dimension.
    pub version: String,
    /// `Predicted.<class>` for the first [`MAX_CLASSES`] classes, then `Predicted.other`.
    pub predicted: Vec<String>,
}

impl Names {
    pub fn of(manifest: &mlops_lake::registry::Manifest) -> Names {
        let classes = manifest.class_labels.as_deref().unwrap_or_default();
        let kept = &classes[..classes.len().min(MAX_CLASSES)];
        let mut predicted: Vec<String> =
            kept.iter().map(|c| format!("Predicted.{}", mlops_emf::dimension_value(c))).collect();
        predicted.push("Predicted.other".into());
        Names { version: manifest.version.to_string(), predicted }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The line of an answered request.
pub fn answered(app: &App, variant: Variant, latency: Duration, outputs: &RowOutputs) -> String {
    let served = app.served(variant);
    let (model, version) = (&served.manifest.name, &served.names.version);
    let classes = served.manifest.class_labels.as_deref().unwrap_or_default();
    let kept = &classes[..classes.len().min(MAX_CLASSES)];
    let names = &served.names.predicted;
    let mut metrics = vec![
        Metric { name: "Latency", unit: "Milliseconds", value: latency.as_secs_f64() * 1e3 },
        Metric { name: "Rows", unit: "Count", value: outputs.len() as f64 },
        Metric { name: "Requests", unit: "Count", value: 1.0 },
    ];
    if let Some(capture) = &app.capture {
        metrics.push(Metric {
            name: "CaptureDropped",
            unit: "Count",
            value: capture.counts.dropped.load(Ordering::Relaxed) as f64,
        });
        metrics.push(Metric {
            name: "CaptureFailed",
            unit: "Count",
            value: capture.counts.failed.load(Ordering::Relaxed) as f64,
        });
    }
    let mut samples = Vec::new();
    if classes.is_empty() {
        let values: Vec<f64> =
            outputs.iter().filter_map(|row| row.values().find_map(first_number)).take(mlops_emf::MAX_VALUES).collect();
        if !values.is_empty() {
            samples.push(Samples { name: "Score", unit: "None", values });
        }
    } else {
        let mut counts = vec![0u64; kept.len() + 1];
        for row in outputs {
            let class = row.get("class").and_then(serde_json::Value::as_str);
            let at = class.and_then(|c| kept.iter().position(|k| k == c)).unwrap_or(kept.len());
            counts[at] += 1;
        }
        for (name, count) in names.iter().zip(&counts) {
            if *count > 0 || name != "Predicted.other" {
                metrics.push(Metric { name, unit: "Count", value: *count as f64 });
            }
        }
    }
    mlops_emf::line_of(
        NAMESPACE,
        now_ms(),
        &[("Model", model), ("ModelVersion", version), ("Variant", variant.name())],
        &metrics,
        &samples,
        &[],
    )
}

fn first_number(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::Array(items) => items.first().and_then(first_number),
        _ => None,
    }
}

/// The line of a rejected request.
pub fn rejected(app: &App, latency: Duration, reason: &str) -> String {
    let served = &app.champion;
    let (model, version) = (&served.manifest.name, &served.names.version);
    mlops_emf::line(
        NAMESPACE,
        now_ms(),
        &[("Model", model), ("ModelVersion", version), ("Variant", crate::ab::CHAMPION), ("Reason", reason)],
        &[
            Metric { name: "Rejected", unit: "Count", value: 1.0 },
            Metric { name: "Latency", unit: "Milliseconds", value: latency.as_secs_f64() * 1e3 },
        ],
        &[],
    )
}
