//! The model registry: immutable, numbered model versions under `models/<name>/v<N>/`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contract::{Contract, is_path_segment};
use crate::error::{Error, Result};
use crate::lake;
use crate::model::{Layout, Model, TensorSpec};
use crate::profile::Profile;
use crate::storage::Lake;

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
    /// Names of the classes, indexed by the model's integer labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_labels: Option<Vec<String>>,
    /// Training or evaluation metrics supplied at registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<serde_json::Value>,
}

/// What `register` needs.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub name: &'a str,
    pub model: &'a [u8],
    pub contract: &'a Contract,
    pub baseline: &'a Profile,
    pub class_labels: Option<Vec<String>>,
    pub metrics: Option<serde_json::Value>,
}

/// A registered model version, read back.
#[derive(Debug, Clone)]
pub struct ModelVersion {
    pub manifest: Manifest,
    pub model: Model,
    pub contract: Contract,
    pub baseline: Profile,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The versions of a model that exist, in ascending order.
pub async fn versions(lake: &Lake, name: &str) -> Result<Vec<u32>> {
    let mut versions: Vec<u32> = lake
        .list(&lake::model_root(name))
        .await?
        .iter()
        .filter(|k| k.ends_with("/manifest.json"))
        .filter_map(|k| lake::model_version_of(name, k))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    Ok(versions)
}

/// Registers a new version: checks that the model loads and fits the contract, then writes
/// model, contract, baseline and (last, so that a version is visible only when complete)
/// the manifest. The dataset's active contract and baseline are updated too.
pub async fn register(lake: &Lake, reg: &Registration<'_>) -> Result<Manifest> {
    if !is_path_segment(reg.name) {
        return Err(Error::Registry(format!(
            "model name {:?} must use only letters, digits, '-', '_' and '.'",
            reg.name
        )));
    }
    let model = Model::load(reg.model)?;
    check_fits(&model, reg.contract)?;
    let version = versions(lake, reg.name).await?.last().map_or(1, |v| v + 1);
    let manifest_key = lake::model_file(reg.name, version, "manifest.json");
    if lake.exists(&manifest_key).await? {
        return Err(Error::Registry(format!("{} v{version} already exists; versions are never overwritten", reg.name)));
    }
    let manifest = Manifest {
        name: reg.name.to_string(),
        version,
        created_at: Utc::now(),
        dataset: reg.contract.dataset.clone(),
        contract_version: reg.contract.version,
        model_sha256: sha256_hex(reg.model),
        model_bytes: reg.model.len() as u64,
        inputs: model.inputs().to_vec(),
        outputs: model.outputs().to_vec(),
        class_labels: reg.class_labels.clone(),
        metrics: reg.metrics.clone(),
    };
    let contract_yaml = reg.contract.to_yaml().into_bytes();
    let baseline = reg.baseline.to_json();
    lake.put(&lake::model_file(reg.name, version, "model.onnx"), reg.model.to_vec(), "application/octet-stream")
        .await?;
    lake.put(&lake::model_file(reg.name, version, "contract.yaml"), contract_yaml.clone(), "application/yaml").await?;
    lake.put(&lake::model_file(reg.name, version, "baseline.json"), baseline.clone(), "application/json").await?;
    let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::json("manifest", e))?;
    lake.put(&manifest_key, manifest_json, "application/json").await?;
    lake.put(&lake::dataset_contract(&manifest.dataset), contract_yaml, "application/yaml").await?;
    lake.put(&lake::dataset_baseline(&manifest.dataset), baseline, "application/json").await?;
    Ok(manifest)
}

/// Adds `class` beside a model's integer label when the manifest names the classes.
pub fn add_class_names(manifest: &Manifest, rows: &mut crate::model::RowOutputs) {
    let Some(labels) = &manifest.class_labels else { return };
    let Some(label) = manifest.outputs.iter().find(|o| o.dtype == "i64" && o.shape.len() == 1) else { return };
    for row in rows.iter_mut() {
        let class = row.get(&label.name).and_then(|v| v.as_u64()).and_then(|i| labels.get(i as usize)).cloned();
        if let Some(class) = class {
            row.insert("class".into(), class.into());
        }
    }
}

/// Checks that a model takes exactly the contract's features, and returns its input layout.
pub fn check_fits(model: &Model, contract: &Contract) -> Result<Layout> {
    let layout = Layout::of(model)?;
    layout
        .feature_order(contract)
        .map_err(|e| Error::Registry(e.to_string().trim_start_matches("model: ").to_string()))?;
    Ok(layout)
}

/// Computes a baseline profile from a training CSV. Rows the contract rejects are left out
/// and counted; a training file with no valid row is an error.
pub fn baseline_from_csv(contract: &Contract, bytes: &[u8], file: &str) -> Result<(Profile, u64)> {
    let mut rows = Vec::new();
    let mut rejected = 0;
    crate::reading::read_csv(contract, bytes, |row| {
        match row.outcome {
            Ok(values) => rows.push(values),
            Err(_) => rejected += 1,
        }
        Ok(())
    })
    .map_err(|e| Error::Registry(format!("training data {file}: {e}")))?;
    if rows.is_empty() {
        return Err(Error::Registry(format!("training data {file} has no row that satisfies the contract")));
    }
    Ok((Profile::baseline(contract, &rows), rejected))
}

/// A model version's manifest, contract and baseline: what monitoring needs, without the model.
#[derive(Debug, Clone)]
pub struct Reference {
    pub manifest: Manifest,
    pub contract: Contract,
    pub baseline: Profile,
}

async fn get_file(lake: &Lake, name: &str, version: u32, file: &str) -> Result<Vec<u8>> {
    let key = lake::model_file(name, version, file);
    match lake.get(&key).await {
        Ok(o) => Ok(o.bytes),
        Err(Error::NotFound { .. }) => Err(Error::Registry(format!(
            "model {name} v{version} is not registered in s3://{}: {key} is missing",
            lake.bucket()
        ))),
        Err(e) => Err(e),
    }
}

/// Reads a version's manifest, contract and baseline.
pub async fn load_reference(lake: &Lake, name: &str, version: u32) -> Result<Reference> {
    let manifest = get_file(lake, name, version, "manifest.json").await?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest).map_err(|e| Error::json(format!("manifest of {name} v{version}"), e))?;
    let contract_text = String::from_utf8_lossy(&get_file(lake, name, version, "contract.yaml").await?).into_owned();
    let contract = Contract::from_yaml(&contract_text, &lake::model_file(name, version, "contract.yaml"))?;
    let baseline = get_file(lake, name, version, "baseline.json").await?;
    let baseline = Profile::from_json(&baseline, &format!("baseline of {name} v{version}"))?;
    Ok(Reference { manifest, contract, baseline })
}

/// Reads a model version: manifest, contract, baseline, and the model, checked against the
/// SHA-256 its manifest records.
pub async fn load(lake: &Lake, name: &str, version: u32) -> Result<ModelVersion> {
    let Reference { manifest, contract, baseline } = load_reference(lake, name, version).await?;
    let bytes = get_file(lake, name, version, "model.onnx").await?;
    let digest = sha256_hex(&bytes);
    if digest != manifest.model_sha256 {
        return Err(Error::Registry(format!(
            "model.onnx of {name} v{version} has SHA-256 {digest}, but the manifest records {}",
            manifest.model_sha256
        )));
    }
    let model = Model::load(&bytes)?;
    Ok(ModelVersion { manifest, model, contract, baseline })
}
