//! One run per model at a time: a run holds `pipelines/<name>/running.json`, claimed with a
//! conditional write (`If-None-Match: *`) and released when the run ends. A claim older than
//! the guard's time to live (a run that died without releasing it) is taken over with
//! `If-Match` on its ETag, so two triggers that find it stale cannot both win.

use chrono::{DateTime, Duration, Utc};
use mlops_lake::{Lake, keys};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How long a run may hold the guard before another trigger may take it over, by default:
/// a day longer than the state machine lets a run live (its `TimeoutSeconds`, 8 days, which
/// covers the 7 days WaitForApproval waits), so a live run is never taken over. A run that
/// ended without releasing it (an execution stopped by hand) holds it until then; deleting
/// `pipelines/<name>/running.json` releases it sooner.
pub const DEFAULT_TTL_HOURS: u32 = 216;

/// The content of the guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub run_id: String,
    pub since: DateTime<Utc>,
}

/// Claims the guard of `model` for `run_id` (again, for a retried first step).
pub async fn claim(lake: &Lake, model: &str, run_id: &str, ttl: Duration, now: DateTime<Utc>) -> Result<()> {
    let key = keys::pipeline_guard(model);
    let claim = Claim { run_id: run_id.to_string(), since: now };
    let json = serde_json::to_vec(&claim).map_err(|e| Error::json("the guard", e))?;
    match lake.put_if_absent(&key, json.clone(), "application/json").await {
        Ok(_) => return Ok(()),
        Err(mlops_lake::Error::Exists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let held = match lake.get(&key).await {
        Ok(o) => o,
        // Released between the two calls: try once more.
        Err(mlops_lake::Error::NotFound { .. }) => {
            return match lake.put_if_absent(&key, json, "application/json").await {
                Ok(_) => Ok(()),
                Err(mlops_lake::Error::Exists { .. }) => Err(busy(model, "another run", now)),
                Err(e) => Err(e.into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    let holder: Claim = serde_json::from_slice(&held.bytes).map_err(|e| Error::json(&key, e))?;
    if holder.run_id == run_id {
        return Ok(());
    }
    if now - holder.since < ttl {
        return Err(busy(model, &holder.run_id, holder.since));
    }
    let etag = held.etag.unwrap_or_default();
    match lake.put_if_match(&key, json, "application/json", &etag).await {
        Ok(_) => {
            tracing::warn!(model, stale = %holder.run_id, since = %holder.since, run = run_id, "took over a stale guard");
            Ok(())
        }
        Err(mlops_lake::Error::Exists { .. }) => Err(busy(model, "another run", now)),
        Err(e) => Err(e.into()),
    }
}

fn busy(model: &str, run_id: &str, since: DateTime<Utc>) -> Error {
    Error::Busy { model: model.to_string(), run_id: run_id.to_string(), since: since.to_rfc3339() }
}

/// Releases the guard if `run_id` holds it; says whether it did.
pub async fn release(lake: &Lake, model: &str, run_id: &str) -> Result<bool> {
    let key = keys::pipeline_guard(model);
    let held = match lake.get(&key).await {
        Ok(o) => o,
        Err(mlops_lake::Error::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let holder: Claim = serde_json::from_slice(&held.bytes).map_err(|e| Error::json(&key, e))?;
    if holder.run_id != run_id {
        return Ok(false);
    }
    lake.delete(&key).await?;
    Ok(true)
}

/// The run holding the guard, if any.
pub async fn holder(lake: &Lake, model: &str) -> Result<Option<Claim>> {
    match lake.get(&keys::pipeline_guard(model)).await {
        Ok(o) => Ok(Some(serde_json::from_slice(&o.bytes).map_err(|e| Error::json("the guard", e))?)),
        Err(mlops_lake::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
