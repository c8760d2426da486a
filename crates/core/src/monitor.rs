//! The drift check: merge the window's batch profiles and compare them with the baseline.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::config::DriftCheckConfig;
use crate::drift::{DriftReport, compare};
use crate::error::{Error, Result};
use crate::lake;
use crate::profile::Profile;
use crate::registry;
use crate::storage::Lake;

/// The stored drift report: the comparison plus where its data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftCheck {
    pub generated_at: DateTime<Utc>,
    pub model: String,
    pub model_version: u32,
    pub window: Window,
    #[serde(flatten)]
    pub report: DriftReport,
}

/// The current window: the days it spans and the batch profiles it merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub from: String,
    pub to: String,
    pub profiles: Vec<String>,
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
    let dataset = reference.contract.dataset.clone();
    let to = at.date_naive();
    let from = to - Duration::days(i64::from(config.window_days) - 1);
    let mut current = Profile::empty_like(&reference.contract, &reference.baseline);
    let mut used = Vec::new();
    for day in from.iter_days().take_while(|d| *d <= to) {
        for key in lake.list(&lake::profiles_prefix(&dataset, day)).await? {
            let profile = Profile::from_json(&lake.get(&key).await?.bytes, &key)?;
            current.merge(&profile).map_err(|e| Error::Profile(format!("{key}: {e}")))?;
            used.push(key);
        }
    }
    let report = compare(&reference.contract, &reference.baseline, &current, &config.drift);
    let check = DriftCheck {
        generated_at: at,
        model: model.model_name.clone(),
        model_version: model.model_version,
        window: Window { from: from.to_string(), to: to.to_string(), profiles: used },
        report,
    };
    let key = lake::drift_report(&dataset, at);
    let body = serde_json::to_vec_pretty(&check).map_err(|e| Error::json("drift report", e))?;
    lake.put(&key, body, "application/json").await?;
    Ok((check, key))
}
