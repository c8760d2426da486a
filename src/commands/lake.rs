//! `mlops lake`: the embedded S3 lake on its own.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use mlops_contract::Contract;
use mlops_devkit::lake_server::{EmbeddedLake, LakeCredentials, ensure_bucket};
use mlops_flows::baseline::training_baseline;
use mlops_lake::{Lake, keys};

use super::{LakeArgs, lake_hint};

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Serve a directory as an S3-compatible endpoint on 127.0.0.1 until interrupted.
    Serve(ServeArgs),
    Dataset(DatasetArgs),
}

impl LakeCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            LakeCommand::Serve(args) => args.run().await,
            LakeCommand::Dataset(args) => args.run().await,
        }
    }
}

/// Publish a dataset that no model is registered with (ground truth, say), so that ingest takes
/// the batches dropped under raw/<dataset>/.
///
/// Writes the contract to datasets/<dataset>/contract.yaml and the baseline that ingest cuts
/// its profiles on, computed from the given rows, to datasets/<dataset>/baseline.json.
/// Registering a model does the same for the model's dataset.
#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// The dataset's contract (YAML).
    #[arg(long)]
    pub contract: PathBuf,
    /// Rows the baseline is computed from: .csv, .jsonl or .ndjson, optionally gzip.
    #[arg(long = "baseline-from", required = true, num_args = 1..)]
    pub baseline_from: Vec<PathBuf>,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl DatasetArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let lake = self.lake.connect().await?;
        let contract = Contract::load(&self.contract)?;
        let (contract_key, baseline_key) =
            publish_dataset(&lake, &contract, &self.baseline_from).await.map_err(lake_hint)?;
        println!(
            "dataset {} published: s3://{b}/{contract_key}, s3://{b}/{baseline_key}",
            contract.dataset,
            b = lake.bucket()
        );
        Ok(())
    }
}

/// Writes a dataset's contract and its baseline (profiled from `files`); returns their keys.
pub async fn publish_dataset(lake: &Lake, contract: &Contract, files: &[PathBuf]) -> anyhow::Result<(String, String)> {
    let baseline = training_baseline(contract, files)?;
    let (contract_key, baseline_key) =
        (keys::dataset_contract(&contract.dataset), keys::dataset_baseline(&contract.dataset));
    let profile = baseline.profile.to_json();
    lake.put(&contract_key, contract.to_yaml().into_bytes(), "application/yaml").await?;
    lake.put(&baseline_key, profile, "application/json").await?;
    Ok((contract_key, baseline_key))
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory holding the buckets (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    #[command(flatten)]
    pub lake: LakeArgs,
}

impl ServeArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let bucket = &self.lake.bucket;
        let server = EmbeddedLake::start_with(&self.dir, self.port, LakeCredentials::from_env()).await?;
        ensure_bucket(&server.client(), bucket).await?;
        println!("Embedded S3 lake serving {} at {}", self.dir.display(), server.endpoint());
        println!("Bucket: {bucket}. Point the AWS SDKs, the CLI and the functions at it with:\n");
        for (name, value) in server.env_vars() {
            println!("  export {name}={value}");
        }
        println!("  export LAKE_BUCKET={bucket}");
        println!("\nPress Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
        Ok(())
    }
}
