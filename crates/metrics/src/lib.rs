//! Evaluation metrics by task, with scikit-learn's definitions (`sklearn.metrics`), checked
//! against it on committed cases; and a model's answer for a row read from its named outputs
//! ([`OutputNames`]), the one reading that evaluation and model quality share.

pub mod ab;
pub mod gate;

use mlops_contract::TensorSpec;
use serde::{Deserialize, Serialize};

/// The index of the largest value (the first on a tie).
pub fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// Which of a model's outputs hold its answer: the label (the first rank-1 `i64` output), the
/// class scores (the first rank-2 float output) and a regressor's value (the first float
/// output of rank 2, else of rank 1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutputNames {
    pub label: Option<String>,
    pub scores: Option<String>,
    pub value: Option<String>,
}

impl OutputNames {
    pub fn of(outputs: &[TensorSpec]) -> OutputNames {
        let float = |rank: usize| {
            outputs.iter().find(|o| o.dtype.starts_with('f') && o.shape.len() == rank).map(|o| o.name.clone())
        };
        OutputNames {
            label: outputs.iter().find(|o| o.dtype == "i64" && o.shape.len() == 1).map(|o| o.name.clone()),
            scores: float(2),
            value: float(2).or_else(|| float(1)),
        }
    }

    /// The probability of each of `labels` for one row's outputs. The model names its classes
    /// `model_labels` (by its label index); without scores, the predicted class gets all of it.
    pub fn probabilities(
        &self,
        out: &serde_json::Map<String, serde_json::Value>,
        labels: &[String],
        model_labels: &[String],
    ) -> Vec<f64> {
        let mut p = vec![0.0; labels.len()];
        let scores = self.scores.as_ref().and_then(|name| out.get(name)).map(numbers);
        match scores {
            Some(model_p) if model_p.len() == model_labels.len() => {
                for (name, q) in model_labels.iter().zip(model_p) {
                    if let Some(k) = labels.iter().position(|l| l == name) {
                        p[k] = q;
                    }
                }
            }
            _ => {
                let label = self.label.as_ref().and_then(|n| out.get(n)).and_then(serde_json::Value::as_u64);
                let name = label.and_then(|i| model_labels.get(i as usize));
                if let Some(k) = name.and_then(|n| labels.iter().position(|l| l == n)) {
                    p[k] = 1.0;
                }
            }
        }
        p
    }

    /// A regressor's value for one row's outputs (NaN when it has none).
    pub fn value(&self, out: &serde_json::Map<String, serde_json::Value>) -> f64 {
        let v = self.value.as_ref().and_then(|n| out.get(n).map(numbers)).and_then(|v| v.first().copied());
        v.unwrap_or(f64::NAN)
    }
}

/// The numbers of a scorer output: a number or (nested) arrays of them.
pub fn numbers(v: &serde_json::Value) -> Vec<f64> {
    match v {
        serde_json::Value::Array(items) => items.iter().flat_map(numbers).collect(),
        other => other.as_f64().into_iter().collect(),
    }
}

/// Precision and recall of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: String,
    /// Rows of the class in the truth.
    pub support: u64,
    /// 0 when the class is never predicted (`zero_division=0`).
    pub precision: f64,
    /// 0 when the class is absent from the truth.
    pub recall: f64,
    pub f1: f64,
    /// Rows predicted as the class.
    #[serde(default)]
    pub predicted: u64,
}

/// The metrics of a classifier on a set of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub rows: u64,
    pub accuracy: f64,
    /// Mean F1 over the classes present in the truth or the predictions (scikit-learn's
    /// default labels).
    pub macro_f1: f64,
    /// Mean negative log-likelihood of the true class, probabilities clipped to
    /// `[ε, 1 − ε]` with ε the f64 machine epsilon.
    pub log_loss: f64,
    /// Binary: the area under the ROC curve of the second class's probability, ties counted
    /// half. Several classes: the mean one-vs-rest AUC over the classes that are both present
    /// and absent somewhere in the truth. `None` when no class qualifies.
    pub roc_auc: Option<f64>,
    /// Classes left out of `roc_auc` because the truth has no row of them (or only them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roc_auc_skipped: Vec<String>,
    pub per_class: Vec<ClassMetrics>,
}

/// The metrics of a regressor on a set of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    pub rows: u64,
    pub rmse: f64,
    pub mae: f64,
    /// 1 − SSE/SST; for a constant truth, 1 when the predictions are exact and 0 otherwise
    /// (scikit-learn's `force_finite`).
    pub r2: f64,
}

/// The metrics of a model, by task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Metrics {
    Classification(Classification),
    Regression(Regression),
}

impl Metrics {
    /// A metric by name (`accuracy`, `macro_f1`, `log_loss`, `roc_auc`, `rmse`, `mae`, `r2`).
    pub fn get(&self, name: &str) -> Option<f64> {
        match self {
            Metrics::Classification(c) => match name {
                "accuracy" => Some(c.accuracy),
                "macro_f1" => Some(c.macro_f1),
                "log_loss" => Some(c.log_loss),
                "roc_auc" => c.roc_auc,
                _ => None,
            },
            Metrics::Regression(r) => match name {
                "rmse" => Some(r.rmse),
                "mae" => Some(r.mae),
                "r2" => Some(r.r2),
                _ => None,
            },
        }
    }
}

/// Whether a larger value of a metric is better.
pub fn greater_is_better(name: &str) -> bool {
    !matches!(name, "log_loss" | "rmse" | "mae")
}

/// Classification metrics of probabilities (`probabilities[i][k]` for row `i`, class `k`) for
/// true class indices `truth`; the predicted class is the most probable (the first on a tie).
pub fn classification(classes: &[String], truth: &[usize], probabilities: &[Vec<f64>]) -> Classification {
    let n = truth.len();
    let k = classes.len();
    let predicted: Vec<usize> = probabilities.iter().map(|p| argmax(p)).collect();
    let correct = truth.iter().zip(&predicted).filter(|(t, p)| t == p).count();
    let mut per_class = Vec::with_capacity(k);
    let mut f1_sum = 0.0;
    let mut f1_count = 0;
    for (c, class) in classes.iter().enumerate() {
        let tp = truth.iter().zip(&predicted).filter(|(t, p)| **t == c && **p == c).count() as f64;
        let support = truth.iter().filter(|t| **t == c).count();
        let predicted_c = predicted.iter().filter(|p| **p == c).count();
        let precision = if predicted_c == 0 { 0.0 } else { tp / predicted_c as f64 };
        let recall = if support == 0 { 0.0 } else { tp / support as f64 };
        let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        if support > 0 || predicted_c > 0 {
            f1_sum += f1;
            f1_count += 1;
        }
        per_class.push(ClassMetrics {
            class: class.clone(),
            support: support as u64,
            precision,
            recall,
            f1,
            predicted: predicted_c as u64,
        });
    }
    let eps = f64::EPSILON;
    let log_loss = if n == 0 {
        f64::NAN
    } else {
        truth
            .iter()
            .zip(probabilities)
            .map(|(t, p)| -p.get(*t).copied().unwrap_or(0.0).clamp(eps, 1.0 - eps).ln())
            .sum::<f64>()
            / n as f64
    };
    let (roc_auc, roc_auc_skipped) = if k == 2 {
        let scores: Vec<f64> = probabilities.iter().map(|p| p[1]).collect();
        let positive: Vec<bool> = truth.iter().map(|t| *t == 1).collect();
        match auc(&scores, &positive) {
            Some(a) => (Some(a), vec![]),
            None => (None, classes.to_vec()),
        }
    } else {
        let mut aucs = Vec::new();
        let mut skipped = Vec::new();
        for (c, class) in classes.iter().enumerate() {
            let scores: Vec<f64> = probabilities.iter().map(|p| p[c]).collect();
            let positive: Vec<bool> = truth.iter().map(|t| *t == c).collect();
            match auc(&scores, &positive) {
                Some(a) => aucs.push(a),
                None => skipped.push(class.clone()),
            }
        }
        let mean = (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64);
        (mean, skipped)
    };
    Classification {
        rows: n as u64,
        accuracy: if n == 0 { f64::NAN } else { correct as f64 / n as f64 },
        macro_f1: if f1_count == 0 { 0.0 } else { f1_sum / f1_count as f64 },
        log_loss,
        roc_auc,
        roc_auc_skipped,
        per_class,
    }
}

/// The area under the ROC curve: the probability that a positive scores above a negative,
/// ties counted half (the Mann–Whitney statistic, with average ranks). `None` without both.
pub fn auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let pos = positive.iter().filter(|p| **p).count();
    let neg = positive.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += rank * order[i..=j].iter().filter(|r| positive[**r]).count() as f64;
        i = j + 1;
    }
    let (pos, neg) = (pos as f64, neg as f64);
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// Regression metrics of `predicted` against `truth`.
pub fn regression(truth: &[f64], predicted: &[f64]) -> Regression {
    let n = truth.len() as f64;
    let sse: f64 = truth.iter().zip(predicted).map(|(t, p)| (t - p) * (t - p)).sum();
    let sae: f64 = truth.iter().zip(predicted).map(|(t, p)| (t - p).abs()).sum();
    let mean = truth.iter().sum::<f64>() / n;
    let sst: f64 = truth.iter().map(|t| (t - mean) * (t - mean)).sum();
    let r2 = if sst == 0.0 { if sse == 0.0 { 1.0 } else { 0.0 } } else { 1.0 - sse / sst };
    Regression { rows: truth.len() as u64, rmse: (sse / n).sqrt(), mae: sae / n, r2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half() {
        assert_eq!(auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Some(0.75));
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auc(&[0.5, 0.7], &[true, true]), None);
    }
}
