//! mlops-train: the built-in trainer, its ONNX export, evaluation metrics and the gate.
//!
//! Gradient-boosted trees (`forust-ml`) for binary and multiclass classification and
//! regression on a contract's features and target, exported as an ONNX graph that predict,
//! `mlops score` and onnxruntime serve unchanged; the metrics of a model by task; and the
//! promotion gate of a candidate against the champion. Pure: rows in, bytes and records out.

pub mod booster;
pub mod config;
pub mod encode;
mod error;
pub mod evaluate;
pub use mlops_metrics as metrics;
pub use mlops_metrics::gate;
pub mod onnx;
pub mod record;

use std::time::Instant;

use mlops_contract::Contract;
use mlops_contract::validate::Value;

pub use booster::{Ensemble, Prediction};
pub use config::{Task, TrainConfig};
pub use encode::{Encoder, Target};
pub use error::{Error, Result};
pub use metrics::Metrics;
pub use record::{DataSnapshot, ExportCheck, InputFile, RowCounts, RunMetrics, TrainingRecord};

/// A trained model: its ONNX bytes, its record, and what it needs to predict natively.
#[derive(Debug)]
pub struct Trained {
    pub onnx: Vec<u8>,
    pub record: TrainingRecord,
    pub encoder: Encoder,
    pub target: Target,
    pub ensemble: Ensemble,
}

impl Trained {
    /// Names of the classes of a classifier, by label index.
    pub fn class_labels(&self) -> Option<Vec<String>> {
        match &self.target {
            Target::Classes { labels, .. } => Some(labels.clone()),
            Target::Number { .. } => None,
        }
    }

    /// Native predictions for rows in contract column order.
    pub fn predict(&self, rows: &[&[Value]]) -> Prediction {
        self.ensemble.predict(&self.encoder.matrix(rows), rows.len())
    }
}

/// Whether row `i` is held out for validation: a hash of its position and the seed.
fn held_out(i: usize, seed: u64, fraction: f64) -> bool {
    // SplitMix64 of the position and seed: uniform, and the same on every machine.
    let mut z = (i as u64).wrapping_add(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

/// The metrics of predictions against targets.
pub fn metrics_of(target: &Target, truth: &[f64], prediction: &Prediction) -> Metrics {
    match (target, prediction) {
        (Target::Classes { labels, .. }, Prediction::Classes(p)) => {
            let truth: Vec<usize> = truth.iter().map(|t| *t as usize).collect();
            Metrics::Classification(metrics::classification(labels, &truth, p))
        }
        (_, Prediction::Numbers(v)) => Metrics::Regression(metrics::regression(truth, v)),
        (Target::Number { .. }, Prediction::Classes(_)) => {
            Metrics::Regression(metrics::regression(truth, &vec![f64::NAN; truth.len()]))
        }
    }
}

/// Trains a model on rows (valid rows of the contract, in contract column order) and exports
/// it. `data` describes where the rows came from, for the record.
pub fn train(contract: &Contract, rows: &[Vec<Value>], config: &TrainConfig, data: DataSnapshot) -> Result<Trained> {
    config.check()?;
    let started = Instant::now();
    let regression = config.task.map(|t| t == Task::Regression);
    let (target, target_column) = Target::fit(contract, rows, regression)?;
    let labelled: Vec<(&[Value], f64)> =
        rows.iter().filter_map(|r| target.encode(&r[target_column]).map(|y| (r.as_slice(), y))).collect();
    let without_target = (rows.len() - labelled.len()) as u64;
    let (mut train_rows, mut train_y, mut valid_rows, mut valid_y) = (vec![], vec![], vec![], vec![]);
    for (i, (row, y)) in labelled.into_iter().enumerate() {
        if held_out(i, config.seed, config.validation_fraction) {
            valid_rows.push(row);
            valid_y.push(y);
        } else {
            train_rows.push(row);
            train_y.push(y);
        }
    }
    if train_rows.len() < 2 {
        return Err(Error::Invalid(format!(
            "{} training rows with a target: too few to train on ({without_target} rows had none)",
            train_rows.len()
        )));
    }
    let task = match (&target, config.task) {
        (Target::Number { .. }, _) => Task::Regression,
        (Target::Classes { labels, .. }, _) if labels.len() < 2 => {
            return Err(Error::Invalid(format!("the target has {} class(es); a classifier needs two", labels.len())));
        }
        (Target::Classes { labels, .. }, _) if labels.len() == 2 => Task::Binary,
        (Target::Classes { .. }, _) => Task::Multiclass,
    };
    if let Some(asked) = config.task
        && asked != task
    {
        return Err(Error::Invalid(format!("the config asks for a {asked:?} task but the target makes it {task:?}")));
    }
    let encoder = Encoder::fit(contract, &train_rows)?;
    let x = encoder.matrix(&train_rows);
    let classes = match &target {
        Target::Classes { labels, .. } => labels.len(),
        Target::Number { .. } => 0,
    };
    let ensemble = Ensemble::fit(task, &x, train_rows.len(), &train_y, classes, config)?;
    let training = metrics_of(&target, &train_y, &ensemble.predict(&x, train_rows.len()));
    drop(x);
    let validation = (!valid_rows.is_empty()).then(|| {
        let xv = encoder.matrix(&valid_rows);
        metrics_of(&target, &valid_y, &ensemble.predict(&xv, valid_rows.len()))
    });
    let class_labels = match &target {
        Target::Classes { labels, .. } => Some(labels.as_slice()),
        Target::Number { .. } => None,
    };
    let metadata = vec![
        ("trainer".to_string(), "lambda-mlops builtin gradient-boosted trees (forust-ml 0.5)".to_string()),
        ("dataset".to_string(), contract.dataset.clone()),
    ];
    let onnx = onnx::export(&contract.dataset, &encoder, &ensemble, class_labels, &metadata)?;
    let model_sha256 = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(&onnx))
    };
    let record = TrainingRecord {
        trainer: "builtin".into(),
        trainer_version: env!("CARGO_PKG_VERSION").into(),
        task: Some(task),
        target: Some(target.clone()),
        features: encoder.features.clone(),
        parameters: Some(config.clone()),
        command: None,
        data,
        rows: RowCounts { training: train_rows.len() as u64, validation: valid_rows.len() as u64, without_target },
        metrics: Some(RunMetrics { training, validation }),
        reported_metrics: None,
        duration_ms: started.elapsed().as_secs_f64() * 1e3,
        model_sha256,
        export_check: None,
    };
    Ok(Trained { onnx, record, encoder, target, ensemble })
}
