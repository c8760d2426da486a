//! A model's metrics on holdout rows, through the one scorer (as predict scores), and the
//! gate's verdict of a candidate against the champion on the same rows.

use serde::{Deserialize, Serialize};

use mlops_contract::Contract;
use mlops_contract::validate::Value;
use mlops_model::Scorer;

use crate::encode::Target;
use crate::error::{Error, Result};
use crate::gate::{Gate, Verdict, decide};
use crate::metrics::{self, Metrics, OutputNames};

/// A model to evaluate: its scorer, the contract it was registered with, and its classes.
#[derive(Debug)]
pub struct Evaluated<'a> {
    /// A file path or NAME@VERSION, for the record.
    pub model: String,
    pub sha256: String,
    pub scorer: &'a Scorer,
    pub contract: &'a Contract,
    /// Names of the classes by the model's label index (a classifier).
    pub class_labels: Option<Vec<String>>,
}

/// One model's result on the holdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    pub model: String,
    pub sha256: String,
    pub metrics: Metrics,
}

/// An evaluation: the holdout, each model's metrics, and the gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    /// Holdout rows with a target, and rows left out for want of one.
    pub rows: u64,
    pub without_target: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    pub candidate: ModelResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion: Option<ModelResult>,
    pub gate: Gate,
    pub verdict: Verdict,
}

/// Rows per scorer run.
const CHUNK: usize = 1024;

/// The metrics of a model on `rows` (valid rows of `contract`, in its column order), against
/// the target `target` read from column `target_column`.
pub fn metrics_of(
    model: &Evaluated<'_>,
    contract: &Contract,
    target: &Target,
    target_column: usize,
    rows: &[Vec<Value>],
) -> Result<Metrics> {
    // The model's features, by name, from the holdout's columns.
    let positions: Vec<usize> = model
        .contract
        .features
        .iter()
        .map(|f| {
            contract.columns.iter().position(|c| &c.name == f).ok_or_else(|| {
                Error::Invalid(format!("{} takes feature {f:?}, which the holdout's contract lacks", model.model))
            })
        })
        .collect::<Result<_>>()?;
    let names = OutputNames::of(model.scorer.model().outputs());
    let (mut truth, mut probabilities, mut values) = (Vec::new(), Vec::new(), Vec::new());
    let labelled: Vec<(&Vec<Value>, f64)> =
        rows.iter().filter_map(|r| target.encode(&r[target_column]).map(|y| (r, y))).collect();
    for chunk in labelled.chunks(CHUNK) {
        let features: Vec<Vec<Value>> =
            chunk.iter().map(|(r, _)| positions.iter().map(|&i| r[i].clone()).collect()).collect();
        let scored =
            model.scorer.score(&features).map_err(|e| Error::Invalid(format!("scoring {}: {e}", model.model)))?;
        for ((_, y), out) in chunk.iter().zip(scored) {
            truth.push(*y);
            match target {
                Target::Classes { labels, .. } => {
                    let model_labels = model.class_labels.as_deref().unwrap_or(labels);
                    probabilities.push(names.probabilities(&out, labels, model_labels));
                }
                Target::Number { .. } => values.push(names.value(&out)),
            }
        }
    }
    Ok(match target {
        Target::Classes { labels, .. } => {
            let truth: Vec<usize> = truth.iter().map(|t| *t as usize).collect();
            Metrics::Classification(metrics::classification(labels, &truth, &probabilities))
        }
        Target::Number { .. } => Metrics::Regression(metrics::regression(&truth, &values)),
    })
}

pub use mlops_metrics::numbers;

/// Evaluates a candidate (and the champion, when there is one) on the same holdout rows and
/// applies the gate (by default [`Gate::default_for`]).
pub fn evaluate(
    contract: &Contract,
    rows: &[Vec<Value>],
    candidate: &Evaluated<'_>,
    champion: Option<&Evaluated<'_>>,
    gate: Option<Gate>,
) -> Result<EvaluationRecord> {
    let regression = matches!(
        contract.target.as_ref().and_then(|t| contract.column(t)).map(|c| c.kind),
        Some(mlops_contract::ColumnType::Float)
    );
    let (target, column) = Target::fit(contract, rows, Some(regression))?;
    let with_target = rows.iter().filter(|r| target.encode(&r[column]).is_some()).count();
    if with_target == 0 {
        return Err(Error::Invalid("the holdout has no row with a target".into()));
    }
    let ours = metrics_of(candidate, contract, &target, column, rows)?;
    let theirs = champion.map(|c| metrics_of(c, contract, &target, column, rows)).transpose()?;
    let gate = gate.unwrap_or_else(|| Gate::default_for(&ours));
    let verdict = decide(&gate, &ours, theirs.as_ref());
    Ok(EvaluationRecord {
        rows: with_target as u64,
        without_target: (rows.len() - with_target) as u64,
        classes: match &target {
            Target::Classes { labels, .. } => Some(labels.clone()),
            Target::Number { .. } => None,
        },
        candidate: ModelResult { model: candidate.model.clone(), sha256: candidate.sha256.clone(), metrics: ours },
        champion: champion.zip(theirs).map(|(c, m)| ModelResult {
            model: c.model.clone(),
            sha256: c.sha256.clone(),
            metrics: m,
        }),
        gate,
        verdict,
    })
}

/// Scores up to 5,000 training rows through the exported graph (tract, as predict runs it)
/// and compares them with the native model: the export is refused when a label differs or a
/// score is off by more than 1e-5.
pub fn check_export(contract: &Contract, trained: &crate::Trained, rows: &[Vec<Value>]) -> Result<crate::ExportCheck> {
    use crate::Prediction;
    let sample: Vec<&[Value]> = rows.iter().take(5000).map(Vec::as_slice).collect();
    let model = mlops_model::Model::load(&trained.onnx)
        .map_err(|e| Error::Invalid(format!("the exported model does not load: {e}")))?;
    let scorer = Scorer::new(model, contract, trained.class_labels())
        .map_err(|e| Error::Invalid(format!("the exported model does not fit the contract: {e}")))?;
    let positions = contract.feature_positions();
    let features: Vec<Vec<Value>> = sample.iter().map(|r| positions.iter().map(|&i| r[i].clone()).collect()).collect();
    let outputs = scorer.score(&features).map_err(|e| Error::Invalid(format!("scoring the exported model: {e}")))?;
    let native = trained.predict(&sample);
    let mut check = crate::ExportCheck { rows: sample.len() as u64, labels_differing: 0, max_abs_diff: 0.0 };
    for (i, out) in outputs.iter().enumerate() {
        match &native {
            Prediction::Classes(p) => {
                let label = out.get(crate::onnx::LABEL_OUTPUT).and_then(serde_json::Value::as_u64);
                if label != Some(crate::booster::argmax(&p[i]) as u64) {
                    check.labels_differing += 1;
                }
                let probabilities = out.get(crate::onnx::PROBABILITIES_OUTPUT).map(numbers).unwrap_or_default();
                for (a, b) in probabilities.iter().zip(&p[i]) {
                    check.max_abs_diff = check.max_abs_diff.max((a - b).abs());
                }
            }
            Prediction::Numbers(v) => {
                let got = out.get(crate::onnx::VALUE_OUTPUT).map(numbers).unwrap_or_default();
                let diff = got.first().map_or(f64::INFINITY, |g| (g - v[i]).abs() / v[i].abs().max(1.0));
                check.max_abs_diff = check.max_abs_diff.max(diff);
            }
        }
    }
    if check.labels_differing > 0 || check.max_abs_diff > 1e-5 {
        return Err(Error::Invalid(format!(
            "the exported model disagrees with the trained one on {} of {} rows (largest difference {:.2e})",
            check.labels_differing, check.rows, check.max_abs_diff
        )));
    }
    Ok(check)
}
