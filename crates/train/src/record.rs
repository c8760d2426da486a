//! The training record: what a model was trained on, how, and how it scored.

use serde::{Deserialize, Serialize};

use crate::config::{Task, TrainConfig};
use crate::encode::{Feature, Target};
use crate::metrics::Metrics;

/// One input of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputFile {
    /// A local path or a lake key.
    pub key: String,
    pub bytes: u64,
    /// Rows read (valid and rejected).
    pub rows: u64,
    pub sha256: String,
}

/// The data a model was trained on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DataSnapshot {
    pub inputs: Vec<InputFile>,
    /// Rows the contract accepted, and rejected (left out).
    pub rows: u64,
    pub rejected: u64,
    /// SHA-256 over the inputs' keys and digests, in order: one id for the whole snapshot.
    pub sha256: String,
}

impl DataSnapshot {
    /// The digest of the inputs: each key and digest, in order.
    pub fn digest(inputs: &[InputFile]) -> String {
        use sha2::{Digest, Sha256};
        let mut d = Sha256::new();
        for input in inputs {
            d.update(input.key.as_bytes());
            d.update([0]);
            d.update(input.sha256.as_bytes());
            d.update([0xff]);
        }
        hex::encode(d.finalize())
    }
}

/// Rows used by a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RowCounts {
    pub training: u64,
    pub validation: u64,
    /// Rows without a usable target (null, or a label not among the classes).
    pub without_target: u64,
}

/// Metrics on the training rows and on the held-out validation rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    pub training: Metrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Metrics>,
}

/// Everything about a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// `builtin` (this trainer) or `command` (an external trainer).
    pub trainer: String,
    pub trainer_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<TrainConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    pub data: DataSnapshot,
    pub rows: RowCounts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<RunMetrics>,
    /// Metrics an external trainer reported, as it wrote them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_metrics: Option<serde_json::Value>,
    pub duration_ms: f64,
    /// SHA-256 of the model file written.
    pub model_sha256: String,
    /// The exported graph scored beside the native model on training rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_check: Option<ExportCheck>,
}

/// The exported graph against the native model on the same rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportCheck {
    pub rows: u64,
    /// Rows whose label (classification) differs.
    pub labels_differing: u64,
    /// The largest difference of a probability or a predicted number.
    pub max_abs_diff: f64,
}
