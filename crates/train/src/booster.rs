//! Gradient-boosted trees through `forust-ml` (XGBoost's algorithm, in Rust): one booster for
//! a binary task or a regression, one per class (one-vs-rest log-odds, normalised by softmax)
//! for several classes.

use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};

use crate::config::{Task, TrainConfig};
use crate::error::{Error, Result};

/// The trained boosters of one model.
pub struct Ensemble {
    pub task: Task,
    pub boosters: Vec<GradientBooster>,
}

impl std::fmt::Debug for Ensemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let trees: usize = self.boosters.iter().map(|b| b.trees.len()).sum();
        f.debug_struct("Ensemble").field("task", &self.task).field("trees", &trees).finish()
    }
}

/// What a model predicts for rows: class probabilities (row by row) or numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    Classes(Vec<Vec<f64>>),
    Numbers(Vec<f64>),
}

impl Prediction {
    /// The most probable class of each row (the first on a tie, as ONNX's ArgMax).
    pub fn labels(&self) -> Vec<usize> {
        match self {
            Prediction::Classes(p) => p.iter().map(|row| argmax(row)).collect(),
            Prediction::Numbers(_) => Vec::new(),
        }
    }
}

pub use mlops_metrics::argmax;

fn booster(objective: ObjectiveType, config: &TrainConfig) -> GradientBooster {
    let mut b = GradientBooster::default();
    b.objective_type = objective;
    b.iterations = config.iterations;
    b.learning_rate = config.learning_rate;
    b.max_depth = config.max_depth;
    b.l2 = config.l2;
    b.min_leaf_weight = config.min_leaf_weight;
    b.nbins = config.nbins;
    b.seed = config.seed;
    // One core, as in a Lambda of up to 1,769 MB, and the same trees on every machine.
    b.parallel = false;
    b.initialize_base_score = true;
    b
}

impl Ensemble {
    /// Fits on a column-major matrix; `y` holds class indices or numbers.
    pub fn fit(
        task: Task,
        x: &[f64],
        rows: usize,
        y: &[f64],
        classes: usize,
        config: &TrainConfig,
    ) -> Result<Ensemble> {
        let cols = x.len().checked_div(rows).unwrap_or(0);
        let data = Matrix::new(x, rows, cols);
        let fit = |objective: ObjectiveType, y: &[f64]| -> Result<GradientBooster> {
            let mut b = booster(objective, config);
            b.fit_unweighted(&data, y, None).map_err(|e| Error::Booster(e.to_string()))?;
            Ok(b)
        };
        let boosters = match task {
            Task::Regression => vec![fit(ObjectiveType::SquaredLoss, y)?],
            Task::Binary => vec![fit(ObjectiveType::LogLoss, y)?],
            Task::Multiclass => (0..classes)
                .map(|k| {
                    let yk: Vec<f64> = y.iter().map(|v| f64::from(u8::from(*v as usize == k))).collect();
                    fit(ObjectiveType::LogLoss, &yk)
                })
                .collect::<Result<Vec<_>>>()?,
        };
        Ok(Ensemble { task, boosters })
    }

    /// The raw scores (log-odds or numbers) of each booster, booster by booster.
    pub fn margins(&self, x: &[f64], rows: usize) -> Vec<Vec<f64>> {
        let cols = x.len().checked_div(rows).unwrap_or(0);
        let data = Matrix::new(x, rows, cols);
        self.boosters.iter().map(|b| b.predict(&data, false)).collect()
    }

    /// Native predictions on a column-major matrix.
    pub fn predict(&self, x: &[f64], rows: usize) -> Prediction {
        let margins = self.margins(x, rows);
        match self.task {
            Task::Regression => Prediction::Numbers(margins.into_iter().next().unwrap_or_default()),
            Task::Binary => Prediction::Classes(
                margins[0]
                    .iter()
                    .map(|m| {
                        let p = 1.0 / (1.0 + (-m).exp());
                        vec![1.0 - p, p]
                    })
                    .collect(),
            ),
            Task::Multiclass => Prediction::Classes(
                (0..rows)
                    .map(|i| {
                        let m: Vec<f64> = margins.iter().map(|k| k[i]).collect();
                        let top = m.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                        let e: Vec<f64> = m.iter().map(|v| (v - top).exp()).collect();
                        let sum: f64 = e.iter().sum();
                        e.into_iter().map(|v| v / sum).collect()
                    })
                    .collect(),
            ),
        }
    }
}
