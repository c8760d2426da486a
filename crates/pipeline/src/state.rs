//! The state a retraining run carries from step to step: what each step adds under its own
//! field (`ResultPath`), as JSON the definition and the step handlers share.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use mlops_lake::registry::ApprovalStatus;
use mlops_train::gate::Decision;
use serde::{Deserialize, Serialize};

/// Which trainer the Train state runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trainer {
    /// The built-in trainer, in the step function.
    #[default]
    Builtin,
    /// A CodeBuild project of the user's (`codebuild:startBuild.sync`).
    Codebuild,
    /// A SageMaker training job with the user's image (`sagemaker:createTrainingJob.sync`).
    Sagemaker,
}

/// Whether a person approves a version the gate promotes before it is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    #[default]
    None,
    Required,
}

/// How a promoted version is deployed: as the served model, or as the shadow beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromoteAs {
    #[default]
    Live,
    Shadow,
}

impl PromoteAs {
    /// The stack parameter a promotion sets.
    pub fn parameter(self) -> &'static str {
        match self {
            PromoteAs::Live => "ModelVersion",
            PromoteAs::Shadow => "ShadowModelVersion",
        }
    }
}

/// The definition's settings (its `DefinitionSubstitutions`), passed to the first step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub trainer: Trainer,
    #[serde(default)]
    pub approval: ApprovalMode,
    #[serde(default)]
    pub promote_as: PromoteAs,
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    /// drift-check's `DriftDetected` event.
    Drift,
    /// drift-check's `ModelQualityDegraded` event: the model fell below the gate's floor on
    /// ground truth.
    Quality,
    /// The retraining schedule.
    Schedule,
    /// A person (`mlops pipeline start`, or the console).
    Manual,
}

/// The trigger, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub kind: TriggerKind,
    /// The EventBridge event's id, when an event started the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The drift report that found the drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drifted: Vec<String>,
    /// Who started a manual run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// The run: who, what, and with which settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub run_id: String,
    pub model: String,
    pub dataset: String,
    /// The version serving when the run began (the one the challenger is gated against).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion: Option<u32>,
    pub trigger: Trigger,
    pub trainer: Trainer,
    pub approval: ApprovalMode,
    pub promote_as: PromoteAs,
    pub window_days: u32,
    pub started_at: DateTime<Utc>,
    pub record_key: String,
}

/// A CodeBuild environment variable, as `EnvironmentVariablesOverride` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Value")]
    pub value: String,
    #[serde(rename = "Type")]
    pub kind: String,
}

impl EnvVar {
    pub fn plain(name: &str, value: impl Into<String>) -> EnvVar {
        EnvVar { name: name.into(), value: value.into(), kind: "PLAINTEXT".into() }
    }
}

/// One object of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotObject {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub size: u64,
}

/// The data a run trains and evaluates on, fixed when the run takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Where the snapshot is kept (`pipelines/<name>/<run>/snapshot.json`).
    pub key: String,
    /// The contract the rows are read with.
    pub contract_key: String,
    /// The curated days taken, inclusive.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// How many objects the snapshot holds. The list itself stays in the lake (the state
    /// machine's state is bounded at 256 KiB; a window can hold thousands of batches).
    pub object_count: usize,
    /// The objects, in the kept snapshot only; empty in the state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<SnapshotObject>,
    /// SHA-256 of every object's key, ETag and size, one line each in key order.
    pub digest: String,
    /// For a trainer of the user's: the training rows as one CSV file, and where its model
    /// goes, as CodeBuild variables (`MLOPS_TRAIN_DATA`, `MLOPS_CONTRACT`,
    /// `MLOPS_TRAIN_MODEL`, `MLOPS_TRAIN_METRICS`) and SageMaker channel and output URIs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trainer_env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_prefix_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_uri: Option<String>,
}

/// A trained challenger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trained {
    pub model_key: String,
    pub record_key: String,
    pub model_sha256: String,
    pub trainer: String,
    pub training_rows: u64,
    pub duration_ms: f64,
}

/// What an external Train state returned (through its `ResultSelector`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct External {
    pub trainer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The SageMaker model artifact (`model.tar.gz` holding `model.onnx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
}

/// The champion's side of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChampionResult {
    pub version: u32,
    pub metrics: BTreeMap<String, f64>,
}

/// The gate's decision on the challenger against the champion on the same holdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub key: String,
    pub decision: Decision,
    pub holdout_rows: u64,
    pub challenger: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion: Option<ChampionResult>,
    /// Each rule's outcome, for people.
    pub reasons: Vec<String>,
}

/// The version the challenger was registered as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub version: u32,
    /// False when an identical version existed (a retried step).
    pub created: bool,
    pub model_sha256: String,
}

/// The task result `mlops model approve|reject` sends to a waiting run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalResult {
    pub status: ApprovalStatus,
    pub by: String,
    pub reason: String,
}

/// What a promotion deploys: one stack parameter, as the deploy project's variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub parameter: String,
    pub version: u32,
    pub environment: Vec<EnvVar>,
}

/// How a run that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Registered, approved and deployed.
    Promoted,
    /// The gate held the challenger: registered, not deployed.
    Held,
    /// The gate rejected the challenger: not registered.
    Rejected,
    /// An approver refused the version: registered, rejected, not deployed.
    Refused,
    /// Nobody decided within the approval's time: registered, not deployed.
    ApprovalTimedOut,
}

/// An error a `Catch` put into the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

/// The whole state after the first step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Snapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<External>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<Trained>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<Registered>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
    /// The deploy build (`Build.Id`, `Build.BuildStatus` through the `ResultSelector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<serde_json::Value>,
}
