//! Registering a model version: the one path `mlops model register` and the pipeline's
//! Register step share.

use mlops_contract::Contract;
use mlops_drift::Profile;
use mlops_lake::Lake;
use mlops_lake::registry::{self, Lineage, Manifest, Registration};
use mlops_model::{Model, Scorer};

use crate::error::{Error, Result};

/// A version to register.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    pub name: &'a str,
    pub model: &'a [u8],
    pub contract: &'a Contract,
    /// The baseline profile of the training data.
    pub baseline: &'a Profile,
    /// Class names by label index [default: those the model records].
    pub class_labels: Option<Vec<String>>,
    pub metrics: Option<serde_json::Value>,
    pub lineage: Option<Lineage>,
}

/// Checks that the model loads and fits the contract, then registers the next version, or
/// returns the version that already holds these files; says whether a version was made.
pub async fn register_model(lake: &Lake, v: NewVersion<'_>) -> Result<(Manifest, bool)> {
    let model = Model::load(v.model).map_err(|e| Error::Model(format!("the model does not load: {e}")))?;
    let (inputs, outputs) = (model.inputs().to_vec(), model.outputs().to_vec());
    let class_labels = v.class_labels.or_else(|| mlops_train::onnx::class_labels(v.model));
    Scorer::new(model, v.contract, class_labels.clone())
        .map_err(|e| Error::Model(format!("the model does not fit the contract of {}: {e}", v.contract.dataset)))?;
    let registration = Registration {
        name: v.name,
        model: v.model,
        inputs,
        outputs,
        contract: v.contract,
        baseline: &v.baseline.to_json(),
        baseline_id: &v.baseline.edges_id(),
        class_labels,
        metrics: v.metrics,
        lineage: v.lineage,
    };
    if let Some(existing) = registry::find_identical(lake, &registration).await? {
        return Ok((existing, false));
    }
    Ok((registry::register(lake, &registration).await?, true))
}
