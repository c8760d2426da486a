//! `mlops model`: the model registry — register a version, list versions.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use mlops_contract::Contract;
use mlops_flows::baseline::training_baseline;
use mlops_lake::Lake;
use mlops_lake::registry::{self, Manifest, Registration};
use mlops_model::{Model, Scorer};

use super::{LakeArgs, lake_hint};

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Upload a model with its contract, a baseline computed from its training data and a
    /// manifest, as the next immutable version.
    Register(RegisterCommand),
    /// List the registered versions of a model.
    List(ListArgs),
}

impl ModelCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            ModelCommand::Register(RegisterCommand { args, lake }) => {
                let lake = lake.connect().await?;
                let manifest = register(&lake, &args).await.map_err(lake_hint)?;
                println!("{}", serde_json::to_string_pretty(&manifest)?);
                eprintln!(
                    "registered {} v{} in s3://{} (baseline {})",
                    manifest.name,
                    manifest.version,
                    lake.bucket(),
                    manifest.baseline_id.as_deref().unwrap_or("-")
                );
                Ok(())
            }
            ModelCommand::List(args) => {
                let lake = args.lake.connect().await?;
                for v in registry::versions(&lake, &args.name).await.map_err(|e| lake_hint(e.into()))? {
                    println!("{} v{v}", args.name);
                }
                Ok(())
            }
        }
    }
}

/// What to register.
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    /// Model name, e.g. penguins.
    #[arg(long)]
    pub name: String,
    /// The ONNX file.
    #[arg(long)]
    pub model: PathBuf,
    /// The data contract (YAML).
    #[arg(long)]
    pub contract: PathBuf,
    /// The training data the baseline is computed from: .csv, .jsonl or .ndjson, optionally
    /// .gz (streamed, never held whole).
    #[arg(long)]
    pub train: PathBuf,
    /// Metrics to record in the manifest (a JSON file).
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Class names indexed by the model's integer labels, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub class_labels: Option<Vec<String>>,
}

/// `mlops model register`: what to register, and where.
#[derive(Debug, Clone, Args)]
pub struct RegisterCommand {
    #[command(flatten)]
    pub args: RegisterArgs,
    #[command(flatten)]
    pub lake: LakeArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// The model's name.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub lake: LakeArgs,
}

/// Reads the files, checks that the model fits the contract, computes the baseline from the
/// training data and registers the next version.
pub async fn register(lake: &Lake, args: &RegisterArgs) -> anyhow::Result<Manifest> {
    let contract = Contract::load(&args.contract)?;
    let bytes = std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let model = Model::load(&bytes).with_context(|| format!("loading {}", args.model.display()))?;
    let (inputs, outputs) = (model.inputs().to_vec(), model.outputs().to_vec());
    Scorer::new(model, &contract, args.class_labels.clone())
        .with_context(|| format!("{} does not fit {}", args.model.display(), args.contract.display()))?;
    let baseline = training_baseline(&contract, std::slice::from_ref(&args.train))?;
    if baseline.rejected > 0 {
        eprintln!(
            "{} rows of {} break the contract and are left out of the baseline",
            baseline.rejected,
            args.train.display()
        );
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
        model: &bytes,
        inputs,
        outputs,
        contract: &contract,
        baseline: &baseline.profile.to_json(),
        baseline_id: &baseline.profile.edges_id(),
        class_labels: args.class_labels.clone(),
        metrics,
    };
    Ok(registry::register(lake, &registration).await?)
}
