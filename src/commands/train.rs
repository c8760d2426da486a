//! `mlops train`: the built-in trainer (or a user's own) on contract rows, to an ONNX model
//! and its training record.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use mlops_contract::Contract;
use mlops_contract::validate::Value;
use mlops_model::{Model, Scorer};
use mlops_train::{TrainConfig, TrainingRecord};
use sha2::{Digest, Sha256};

use super::data;

/// Train a model on a contract's features and target.
///
/// The built-in trainer fits gradient-boosted trees (forust-ml; binary and multiclass
/// classification, regression), with categories encoded by label and missing values sent
/// down the branch training chose. It writes an ONNX model (one named input per feature,
/// integer labels and class probabilities, as a scikit-learn export has) that predict, `mlops
/// score` and onnxruntime serve unchanged, and a training record beside it: the data snapshot
/// (inputs, rows, SHA-256), the parameters, the train and validation metrics, the duration,
/// and a check of the exported graph against the native model.
///
/// With --command, a trainer of your own runs instead: it gets the snapshot's rows as one
/// CSV file in MLOPS_TRAIN_DATA, the contract in MLOPS_CONTRACT, and must write its ONNX model
/// to MLOPS_TRAIN_MODEL (and may write metrics JSON to MLOPS_TRAIN_METRICS).
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The data contract (YAML): its features are the model's inputs, its target the label.
    #[arg(long)]
    pub contract: PathBuf,
    /// Where to write the ONNX model.
    #[arg(long)]
    pub out: PathBuf,
    /// Training parameters (YAML): task, iterations, learning_rate, max_depth, l2,
    /// min_leaf_weight, nbins, seed, validation_fraction.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where to write the training record [default: the model's path with .training.json].
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Run this trainer (through `sh -c`) instead of the built-in one.
    #[arg(long)]
    pub command: Option<String>,
    /// Rows: .csv, .jsonl, .ndjson (optionally .gz) or curated .parquet files, or lake
    /// objects and prefixes (s3://bucket/curated/<dataset>/).
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<String>,
}

/// The record's path beside a model: `model.onnx` → `model.training.json`.
pub fn record_path(model: &Path) -> PathBuf {
    model.with_extension("training.json")
}

impl TrainArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let contract = Contract::load(&self.contract)?;
        let config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                TrainConfig::from_yaml(&text, &path.display().to_string())?
            }
            None => TrainConfig::default(),
        };
        let data = data::read(&contract, &self.inputs).await?;
        if data.rows.is_empty() {
            bail!("the inputs hold no row that satisfies the contract of {}", contract.dataset);
        }
        let record_path = self.record.clone().unwrap_or_else(|| record_path(&self.out));
        let record = match &self.command {
            Some(command) => tokio::task::block_in_place(|| external(&self, &contract, command, data))?,
            None => tokio::task::block_in_place(|| builtin(&self, &contract, &config, data))?,
        };
        let json = serde_json::to_vec_pretty(&record)?;
        std::fs::write(&record_path, json).with_context(|| format!("writing {}", record_path.display()))?;
        println!("model  {} (sha256 {})", self.out.display(), &record.model_sha256[..16]);
        println!("record {}", record_path.display());
        Ok(())
    }
}

fn builtin(
    args: &TrainArgs,
    contract: &Contract,
    config: &TrainConfig,
    data: data::Rows,
) -> anyhow::Result<TrainingRecord> {
    let mut trained = mlops_train::train(contract, &data.rows, config, data.snapshot)?;
    trained.record.export_check = Some(mlops_train::evaluate::check_export(contract, &trained, &data.rows)?);
    std::fs::write(&args.out, &trained.onnx).with_context(|| format!("writing {}", args.out.display()))?;
    let r = &trained.record;
    println!(
        "trained {:?} on {} rows ({} held out for validation, {} without a target) in {:.2} s",
        r.task.unwrap_or(mlops_train::Task::Regression),
        r.rows.training,
        r.rows.validation,
        r.rows.without_target,
        r.duration_ms / 1e3
    );
    if let Some(metrics) = &r.metrics {
        println!("  training   {}", summary(&metrics.training));
        if let Some(v) = &metrics.validation {
            println!("  validation {}", summary(v));
        }
    }
    if let Some(check) = &r.export_check {
        println!(
            "  ONNX export checked on {} rows: {} labels differ, largest difference {:.2e}",
            check.rows, check.labels_differing, check.max_abs_diff
        );
    }
    Ok(trained.record)
}

/// One line of the headline metrics.
pub fn summary(metrics: &mlops_train::Metrics) -> String {
    match metrics {
        mlops_train::Metrics::Classification(c) => format!(
            "accuracy {:.4}  macro-F1 {:.4}  log loss {:.4}  ROC AUC {}",
            c.accuracy,
            c.macro_f1,
            c.log_loss,
            c.roc_auc.map_or("n/a".into(), |a| format!("{a:.4}"))
        ),
        mlops_train::Metrics::Regression(r) => format!("RMSE {:.4}  MAE {:.4}  R² {:.4}", r.rmse, r.mae, r.r2),
    }
}

/// Runs a user's trainer on the snapshot and collects its model and metrics.
fn external(args: &TrainArgs, contract: &Contract, command: &str, data: data::Rows) -> anyhow::Result<TrainingRecord> {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir()?;
    let csv_path = dir.path().join("snapshot.csv");
    let metrics_path = dir.path().join("metrics.json");
    {
        let mut w = csv::Writer::from_path(&csv_path)?;
        w.write_record(contract.columns.iter().map(|c| c.name.as_str()))?;
        for row in &data.rows {
            w.write_record(row.iter().map(Value::to_text))?;
        }
        w.flush()?;
    }
    eprintln!("running {command:?} on {} rows", data.rows.len());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("MLOPS_TRAIN_DATA", &csv_path)
        .env("MLOPS_CONTRACT", &args.contract)
        .env("MLOPS_TRAIN_MODEL", &args.out)
        .env("MLOPS_TRAIN_METRICS", &metrics_path)
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("the trainer {command:?} failed ({status})");
    }
    let onnx = std::fs::read(&args.out)
        .with_context(|| format!("the trainer {command:?} wrote no model to {}", args.out.display()))?;
    let model = Model::load(&onnx).context("the trainer's model does not load")?;
    Scorer::new(model, contract, None).context("the trainer's model does not fit the contract")?;
    let reported_metrics = match std::fs::read(&metrics_path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).context("the trainer's metrics are not JSON")?),
        Err(_) => None,
    };
    let snapshot = data.snapshot;
    println!("trained by {command:?} on {} rows in {:.2} s", snapshot.rows, started.elapsed().as_secs_f64());
    Ok(TrainingRecord {
        trainer: "command".into(),
        trainer_version: env!("CARGO_PKG_VERSION").into(),
        task: None,
        target: None,
        features: Vec::new(),
        parameters: None,
        command: Some(vec!["sh".into(), "-c".into(), command.into()]),
        rows: mlops_train::RowCounts { training: snapshot.rows, validation: 0, without_target: 0 },
        data: snapshot,
        metrics: None,
        reported_metrics,
        duration_ms: started.elapsed().as_secs_f64() * 1e3,
        model_sha256: hex::encode(Sha256::digest(&onnx)),
        export_check: None,
    })
}
