//! The model registry: immutable, numbered model versions under `models/<name>/v<N>/`.
//!
//! A version is claimed with a conditional write (`If-None-Match: *`) of its
//! `registration.json` before anything else of it is written, so two concurrent
//! registrations get two versions, never one overwritten by the other. Its manifest is
//! written last: a version is visible only when complete.
//!
//! The registry stores a model's bytes and checks their SHA-256 on every load, but does not
//! run models or read profiles: callers load the model (mlops-model) and parse the baseline
//! (mlops-drift), so that a function links only what it uses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use mlops_contract::{Contract, TensorSpec, is_path_segment};

use crate::client::Lake;
use crate::error::{Error, Result};
use crate::keys;

/// What is known about a model version, stored as `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: u32,
    pub created_at: DateTime<Utc>,
    pub dataset: String,
    pub contract_version: u32,
    /// SHA-256 of `model.onnx`, checked whenever the version is loaded.
    pub model_sha256: String,
    pub model_bytes: u64,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// The id of the version's baseline profile: the digest of its bin edges. Profiles cut on
    /// this baseline are stored under `profiles/<dataset>/<baseline_id>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_id: Option<String>,
    /// Names of the classes, indexed by the model's integer labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_labels: Option<Vec<String>>,
    /// Training or evaluation metrics supplied at registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<serde_json::Value>,
    /// Where the version came from: its training and evaluation records, its parent, the
    /// code, and who registered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
}

/// The lineage of a version, recorded in its (immutable) manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// The training record (`mlops train` writes it beside the model): data snapshot,
    /// parameters, metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<serde_json::Value>,
    /// The evaluation record (`mlops evaluate --json`): metrics of candidate and champion on
    /// the same holdout, and the gate's decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<serde_json::Value>,
    /// The version this one was evaluated against (the champion when it was trained).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_version: Option<u32>,
    /// The code that built it: a git commit when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_version: Option<String>,
    pub registered_by: String,
}

/// A version's approval status, as SageMaker's model registry names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApprovalStatus {
    PendingManualApproval,
    Approved,
    Rejected,
}

impl std::fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ApprovalStatus::PendingManualApproval => "PendingManualApproval",
            ApprovalStatus::Approved => "Approved",
            ApprovalStatus::Rejected => "Rejected",
        })
    }
}

/// A decision on a version, kept in its own object (`approval.json`) beside the immutable
/// files; a version without one is pending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub status: ApprovalStatus,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// What `register` needs. The caller has checked that the model loads and fits the contract.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub name: &'a str,
    pub model: &'a [u8],
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub contract: &'a Contract,
    /// The baseline profile as stored (JSON), and its id.
    pub baseline: &'a [u8],
    pub baseline_id: &'a str,
    pub class_labels: Option<Vec<String>>,
    pub metrics: Option<serde_json::Value>,
    pub lineage: Option<Lineage>,
    /// `samples.json`: sample requests and the scorer's answers, for pre-traffic checks.
    pub samples: Option<&'a [u8]>,
}

/// A registered version's files, read back and checked.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub manifest: Manifest,
    pub contract: Contract,
    /// The baseline profile's JSON.
    pub baseline: Vec<u8>,
}

/// A model version named as `NAME@VERSION` (`penguins@1`, `penguins@v1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    pub name: String,
    pub version: u32,
}

impl std::str::FromStr for ModelRef {
    type Err = Error;

    fn from_str(text: &str) -> Result<ModelRef> {
        let bad = |reason: &str| Error::ModelRef { text: text.to_string(), reason: reason.to_string() };
        let (name, version) = text.split_once('@').ok_or_else(|| bad("expected NAME@VERSION, e.g. penguins@1"))?;
        if !is_path_segment(name) {
            return Err(bad("the name must use only letters, digits, '-', '_' and '.'"));
        }
        let version = version.strip_prefix('v').unwrap_or(version);
        let version: u32 =
            version.parse().map_err(|_| bad("the version must be a whole number of at least 1, e.g. penguins@1"))?;
        if version == 0 {
            return Err(bad("versions start at 1"));
        }
        Ok(ModelRef { name: name.to_string(), version })
    }
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The versions of a model that exist (their manifest is written), in ascending order.
pub async fn versions(lake: &Lake, name: &str) -> Result<Vec<u32>> {
    versions_with(lake, name, "/manifest.json").await
}

async fn versions_with(lake: &Lake, name: &str, file: &str) -> Result<Vec<u32>> {
    let mut versions: Vec<u32> = lake
        .list(&keys::model_root(name))
        .await?
        .iter()
        .filter(|k| k.ends_with(file))
        .filter_map(|k| keys::model_version_of(name, k))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    Ok(versions)
}

/// Most versions one registration tries to claim before it gives up.
const CLAIM_ATTEMPTS: u32 = 32;

/// Registers a new version: claims the next free version number, then writes model,
/// contract, baseline and (last, so that a version is visible only when complete) the
/// manifest. The dataset's active contract and baseline become this version's.
pub async fn register(lake: &Lake, reg: &Registration<'_>) -> Result<Manifest> {
    if !is_path_segment(reg.name) {
        return Err(Error::Registry(format!(
            "model name {:?} must use only letters, digits, '-', '_' and '.'",
            reg.name
        )));
    }
    let created_at = Utc::now();
    let mut version = versions_with(lake, reg.name, "/registration.json").await?.last().map_or(1, |v| v + 1);
    let claim = serde_json::to_vec_pretty(&serde_json::json!({
        "name": reg.name,
        "created_at": created_at,
        "model_sha256": sha256_hex(reg.model),
    }))
    .map_err(|e| Error::json("registration", e))?;
    let mut attempts = 0;
    loop {
        let key = keys::model_file(reg.name, version, "registration.json");
        match lake.put_if_absent(&key, claim.clone(), "application/json").await {
            Ok(_) => break,
            Err(Error::Exists { .. }) if attempts + 1 < CLAIM_ATTEMPTS => {
                attempts += 1;
                version += 1;
            }
            Err(Error::Exists { .. }) => {
                return Err(Error::Registry(format!(
                    "{} v{version} is taken and {CLAIM_ATTEMPTS} later versions were claimed concurrently; try again",
                    reg.name
                )));
            }
            Err(e) => return Err(e),
        }
    }
    let manifest = Manifest {
        name: reg.name.to_string(),
        version,
        created_at,
        dataset: reg.contract.dataset.clone(),
        contract_version: reg.contract.version,
        model_sha256: sha256_hex(reg.model),
        model_bytes: reg.model.len() as u64,
        inputs: reg.inputs.clone(),
        outputs: reg.outputs.clone(),
        baseline_id: Some(reg.baseline_id.to_string()),
        class_labels: reg.class_labels.clone(),
        metrics: reg.metrics.clone(),
        lineage: reg.lineage.clone(),
    };
    let contract_yaml = reg.contract.to_yaml().into_bytes();
    let file = |name: &str| keys::model_file(reg.name, version, name);
    lake.put_if_absent(&file("model.onnx"), reg.model.to_vec(), "application/octet-stream").await?;
    lake.put_if_absent(&file("contract.yaml"), contract_yaml.clone(), "application/yaml").await?;
    lake.put_if_absent(&file("baseline.json"), reg.baseline.to_vec(), "application/json").await?;
    if let Some(samples) = reg.samples {
        lake.put_if_absent(&file("samples.json"), samples.to_vec(), "application/json").await?;
    }
    let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::json("manifest", e))?;
    lake.put_if_absent(&file("manifest.json"), manifest_json, "application/json").await?;
    lake.put(&keys::dataset_contract(&manifest.dataset), contract_yaml, "application/yaml").await?;
    lake.put(&keys::dataset_baseline(&manifest.dataset), reg.baseline.to_vec(), "application/json").await?;
    Ok(manifest)
}

/// The version whose model, contract and baseline are those of `reg`, if one is registered:
/// registering byte-identical artifacts again makes no new version.
pub async fn find_identical(lake: &Lake, reg: &Registration<'_>) -> Result<Option<Manifest>> {
    let digest = sha256_hex(reg.model);
    let contract_yaml = reg.contract.to_yaml();
    for version in versions(lake, reg.name).await? {
        let manifest: Manifest = match get_file(lake, reg.name, version, "manifest.json").await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::json("manifest", e))?,
            Err(_) => continue,
        };
        if manifest.model_sha256 != digest || manifest.baseline_id.as_deref() != Some(reg.baseline_id) {
            continue;
        }
        let contract = get_file(lake, reg.name, version, "contract.yaml").await?;
        if contract == contract_yaml.as_bytes() {
            return Ok(Some(manifest));
        }
    }
    Ok(None)
}

/// A version's approval: its decision, or pending when none was made.
pub async fn approval(lake: &Lake, name: &str, version: u32) -> Result<Option<Approval>> {
    match lake.get(&keys::model_file(name, version, "approval.json")).await {
        Ok(o) => Ok(Some(serde_json::from_slice(&o.bytes).map_err(|e| Error::json("approval", e))?)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Records a decision on a version, once: the object is written only if absent, so a second
/// decision (or a concurrent one) is refused with the first.
pub async fn decide(lake: &Lake, name: &str, version: u32, decision: &Approval) -> Result<()> {
    get_file(lake, name, version, "manifest.json").await?;
    if decision.status == ApprovalStatus::PendingManualApproval {
        return Err(Error::Registry("a decision is Approved or Rejected".into()));
    }
    let key = keys::model_file(name, version, "approval.json");
    let json = serde_json::to_vec_pretty(decision).map_err(|e| Error::json("approval", e))?;
    match lake.put_if_absent(&key, json, "application/json").await {
        Ok(_) => Ok(()),
        Err(Error::Exists { .. }) => {
            let first = approval(lake, name, version).await?;
            Err(Error::Registry(match first {
                Some(a) => format!("{name} v{version} was already {} by {} at {}: {}", a.status, a.by, a.at, a.reason),
                None => format!("{name} v{version} was decided concurrently; read it again"),
            }))
        }
        Err(e) => Err(e),
    }
}

async fn get_file(lake: &Lake, name: &str, version: u32, file: &str) -> Result<Vec<u8>> {
    let key = keys::model_file(name, version, file);
    match lake.get(&key).await {
        Ok(o) => Ok(o.bytes),
        Err(Error::NotFound { .. }) => Err(Error::Registry(format!(
            "model {name} v{version} is not registered in s3://{}: {key} is missing",
            lake.bucket()
        ))),
        Err(e) => Err(e),
    }
}

/// Reads a version's manifest, contract and baseline: what monitoring needs, without the model.
/// The three reads run concurrently.
pub async fn load_reference(lake: &Lake, name: &str, version: u32) -> Result<StoredVersion> {
    // All three are awaited, and their errors taken in this order, so that a version that is
    // not there is reported by its manifest whichever read failed first.
    let (manifest, contract, baseline) = tokio::join!(
        get_file(lake, name, version, "manifest.json"),
        get_file(lake, name, version, "contract.yaml"),
        get_file(lake, name, version, "baseline.json"),
    );
    let (manifest, contract) = parse_version(name, version, &manifest?, &contract?)?;
    let baseline = baseline?;
    Ok(StoredVersion { manifest, contract, baseline })
}

fn parse_version(name: &str, version: u32, manifest: &[u8], contract: &[u8]) -> Result<(Manifest, Contract)> {
    let manifest: Manifest =
        serde_json::from_slice(manifest).map_err(|e| Error::json(format!("manifest of {name} v{version}"), e))?;
    let contract_text = String::from_utf8_lossy(contract);
    let contract = Contract::from_yaml(&contract_text, &keys::model_file(name, version, "contract.yaml"))?;
    Ok((manifest, contract))
}

/// Checks a model's bytes against the SHA-256 its manifest records.
fn check_model(name: &str, version: u32, manifest: &Manifest, bytes: &[u8]) -> Result<()> {
    let digest = sha256_hex(bytes);
    if digest != manifest.model_sha256 {
        return Err(Error::Registry(format!(
            "model.onnx of {name} v{version} has SHA-256 {digest}, but the manifest records {}",
            manifest.model_sha256
        )));
    }
    Ok(())
}

/// Reads a version's files and its model's bytes, checked against the SHA-256 its manifest
/// records.
pub async fn load(lake: &Lake, name: &str, version: u32) -> Result<(StoredVersion, Vec<u8>)> {
    let (stored, bytes) =
        tokio::join!(load_reference(lake, name, version), get_file(lake, name, version, "model.onnx"));
    let (stored, bytes) = (stored?, bytes?);
    check_model(name, version, &stored.manifest, &bytes)?;
    Ok((stored, bytes))
}

/// What serving a version needs: its manifest, its contract and its model's bytes (checked
/// against the manifest's SHA-256), read concurrently. The baseline, which only monitoring
/// reads, is left in the lake, so a cold start waits for one round of reads.
pub async fn load_for_serving(lake: &Lake, name: &str, version: u32) -> Result<(Manifest, Contract, Vec<u8>)> {
    let (manifest, contract, bytes) = tokio::join!(
        get_file(lake, name, version, "manifest.json"),
        get_file(lake, name, version, "contract.yaml"),
        get_file(lake, name, version, "model.onnx"),
    );
    let (manifest, contract) = parse_version(name, version, &manifest?, &contract?)?;
    let bytes = bytes?;
    check_model(name, version, &manifest, &bytes)?;
    Ok((manifest, contract, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_refs_parse_one_way() {
        assert_eq!("penguins@1".parse::<ModelRef>().expect("ok"), ModelRef { name: "penguins".into(), version: 1 });
        assert_eq!("penguins@v12".parse::<ModelRef>().expect("ok").version, 12);
        for (text, reason) in [
            ("penguins", "expected NAME@VERSION"),
            ("penguins@", "whole number"),
            ("penguins@x", "whole number"),
            ("penguins@0", "versions start at 1"),
            ("../x@1", "letters, digits"),
            ("@1", "letters, digits"),
        ] {
            let e = text.parse::<ModelRef>().expect_err(text).to_string();
            assert!(e.contains(reason) && e.contains(text), "{text}: {e}");
        }
    }
}
