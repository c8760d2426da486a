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
    let scorer = Scorer::new(model, v.contract, class_labels.clone())
        .map_err(|e| Error::Model(format!("the model does not fit the contract of {}: {e}", v.contract.dataset)))?;
    let samples = samples(v.contract, v.baseline, &scorer)?;
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
        samples: Some(&samples),
    };
    if let Some(existing) = registry::find_identical(lake, &registration).await? {
        return Ok((existing, false));
    }
    Ok((registry::register(lake, &registration).await?, true))
}

/// Instances made from a baseline: for each of [`SAMPLE_QUANTILES`], every numeric feature at
/// that quantile of its training values (rounded for an int) and every categorical feature at
/// its labels in turn, most frequent first.
pub fn sample_instances(contract: &Contract, baseline: &Profile) -> Vec<serde_json::Map<String, serde_json::Value>> {
    use mlops_contract::ColumnType;
    use mlops_drift::profile::ColumnProfile;
    SAMPLE_QUANTILES
        .iter()
        .enumerate()
        .map(|(i, q)| {
            contract
                .feature_columns()
                .filter_map(|column| {
                    let value = match baseline.columns.get(&column.name)? {
                        ColumnProfile::Numeric(n) if n.count > 0 => {
                            let x = n.sketch.view().quantile(*q);
                            if column.kind == ColumnType::Int {
                                serde_json::json!(x.round() as i64)
                            } else {
                                serde_json::json!(x)
                            }
                        }
                        ColumnProfile::Categorical(c) if c.count > 0 => {
                            let mut labels: Vec<(String, u64)> = c.label_counts().into_iter().collect();
                            labels.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                            let label = &labels[i % labels.len()].0;
                            match column.kind {
                                ColumnType::Bool => serde_json::json!(label == "true"),
                                _ => serde_json::json!(label),
                            }
                        }
                        _ => return None,
                    };
                    Some((column.name.clone(), value))
                })
                .collect()
        })
        .collect()
}

/// The quantiles of the sample instances.
pub const SAMPLE_QUANTILES: [f64; 5] = [0.1, 0.3, 0.5, 0.7, 0.9];

/// `samples.json` of a version: sample instances and the scorer's answers to them, which a
/// deployment's pre-traffic check sends to the new predict version and compares.
fn samples(contract: &Contract, baseline: &Profile, scorer: &Scorer) -> Result<Vec<u8>> {
    let instances = sample_instances(contract, baseline);
    let body = serde_json::json!({ "instances": instances }).to_string();
    let mut rows = Vec::with_capacity(instances.len());
    for instance in &instances {
        let mut row = Vec::new();
        for column in contract.feature_columns() {
            let value = instance.get(&column.name).cloned().unwrap_or(serde_json::Value::Null);
            let checked = mlops_contract::validate::check_json(column, &value).map_err(|reasons| {
                Error::Model(format!(
                    "a sample value of {} breaks the contract: {:?}",
                    column.name,
                    reasons.first().map(|r| &r.message)
                ))
            })?;
            row.push(checked);
        }
        rows.push(row);
    }
    let predictions = scorer.score(&rows).map_err(|e| Error::Model(format!("scoring the sample instances: {e}")))?;
    let samples = serde_json::json!({
        "request": serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default(),
        "predictions": predictions,
    });
    serde_json::to_vec_pretty(&samples).map_err(|e| Error::Model(format!("samples as JSON: {e}")))
}
