//! The pipeline record: one JSON object per run (`pipelines/<name>/<run-id>.json`) with its
//! trigger, settings, every step's start, end, inputs and outputs, the gate's decision and how
//! the run ended — the audit trail of the loop.

use chrono::{DateTime, Utc};
use mlops_lake::Lake;
use mlops_train::gate::Decision;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::state::{CaughtError, Outcome, Settings, Trigger};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Another run held the model's guard: nothing was done.
    Skipped,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub name: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub duration_ms: f64,
    /// The lake keys (or other references) the step read and wrote.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// What the step found or decided, briefly.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// A run's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRecord {
    pub run_id: String,
    pub model: String,
    pub trigger: Trigger,
    pub settings: Settings,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The version the challenger was registered as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    pub steps: Vec<StepRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
}

impl PipelineRecord {
    /// Adds a step, replacing an earlier attempt of the same step (a retry).
    pub fn push(&mut self, step: StepRecord) {
        self.steps.retain(|s| s.name != step.name);
        self.steps.push(step);
    }

    /// Ends the run.
    pub fn close(&mut self, status: RunStatus, at: DateTime<Utc>) {
        self.status = status;
        self.finished_at = Some(at);
        self.duration_ms = Some((at - self.started_at).num_microseconds().unwrap_or_default() as f64 / 1e3);
    }
}

/// Reads a run's record.
pub async fn read(lake: &Lake, key: &str) -> Result<PipelineRecord> {
    let object = lake.get(key).await?;
    serde_json::from_slice(&object.bytes).map_err(|e| Error::json(key, e))
}

/// Writes a run's record (only the run's own steps write it, one at a time).
pub async fn write(lake: &Lake, key: &str, record: &PipelineRecord) -> Result<()> {
    let json = serde_json::to_vec_pretty(record).map_err(|e| Error::json(key, e))?;
    lake.put(key, json, "application/json").await?;
    Ok(())
}

/// Reads, changes and writes back a run's record.
pub async fn update(lake: &Lake, key: &str, change: impl FnOnce(&mut PipelineRecord)) -> Result<PipelineRecord> {
    let mut record = read(lake, key).await?;
    change(&mut record);
    write(lake, key, &record).await?;
    Ok(record)
}

/// Every record of a model, oldest first.
pub async fn list(lake: &Lake, model: &str) -> Result<Vec<PipelineRecord>> {
    let prefix = format!("pipelines/{model}/");
    let mut records = Vec::new();
    for key in lake.list(&prefix).await? {
        let Some(rest) = key.strip_prefix(&prefix) else { continue };
        if rest.contains('/') || !rest.ends_with(".json") || rest == "running.json" {
            continue;
        }
        records.push(read(lake, &key).await?);
    }
    records.sort_by_key(|r| r.started_at);
    Ok(records)
}
