//! `mlops model register`: a model file, its contract and training data → a new version.

use std::path::PathBuf;

use anyhow::Context as _;
use mlops_core::registry::{self, Manifest, Registration};
use mlops_core::{Contract, Lake};

/// What to register.
#[derive(Debug, Clone)]
pub struct RegisterArgs {
    pub name: String,
    pub model: PathBuf,
    pub contract: PathBuf,
    pub train: PathBuf,
    pub metrics: Option<PathBuf>,
    pub class_labels: Option<Vec<String>>,
}

/// Reads the files, computes the baseline from the training CSV and registers the next version.
pub async fn register(lake: &Lake, args: &RegisterArgs) -> anyhow::Result<Manifest> {
    let contract = Contract::load(&args.contract)?;
    let model = std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let train = std::fs::read(&args.train).with_context(|| format!("reading {}", args.train.display()))?;
    let (baseline, rejected) = registry::baseline_from_csv(&contract, &train, &args.train.display().to_string())?;
    if rejected > 0 {
        tracing::warn!(rejected, file = %args.train.display(), "training rows that break the contract are left out of the baseline");
    }
    let metrics = match &args.metrics {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Some(serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?)
        }
        None => None,
    };
    let registration = Registration {
        name: &args.name,
        model: &model,
        contract: &contract,
        baseline: &baseline,
        class_labels: args.class_labels.clone(),
        metrics,
    };
    Ok(registry::register(lake, &registration).await?)
}
