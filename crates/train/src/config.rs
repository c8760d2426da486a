//! What a training run is asked for: the task, the boosting parameters, the seed and the
//! validation split. Every field has a default; `train.yaml` overrides any of them.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The learning task, from the target column unless set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Two classes: one booster on the log-odds of the second.
    Binary,
    /// Three or more classes: one booster per class (one-vs-rest log-odds), normalised by
    /// softmax.
    Multiclass,
    Regression,
}

/// Training parameters (`train.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// `binary`, `multiclass` or `regression`; by default from the target column: a float
    /// target is regression, any other is classification on its labels.
    pub task: Option<Task>,
    /// Boosting rounds (trees per class).
    pub iterations: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    /// L2 regularisation of the leaf weights.
    pub l2: f32,
    /// Smallest sum of hessians in a leaf.
    pub min_leaf_weight: f32,
    /// Histogram bins per feature.
    pub nbins: u16,
    /// Seeds the validation split (and the booster).
    pub seed: u64,
    /// Share of rows held out for the validation metrics, by a hash of the row's position and
    /// the seed: deterministic, and independent of the order of other rows.
    pub validation_fraction: f64,
}

impl Default for TrainConfig {
    fn default() -> TrainConfig {
        TrainConfig {
            task: None,
            iterations: 100,
            learning_rate: 0.3,
            max_depth: 5,
            l2: 1.0,
            min_leaf_weight: 1.0,
            nbins: 256,
            seed: 0,
            validation_fraction: 0.2,
        }
    }
}

impl TrainConfig {
    pub fn from_yaml(text: &str, path: &str) -> Result<TrainConfig> {
        let config: TrainConfig =
            serde_norway::from_str(text).map_err(|source| Error::Config { path: path.to_string(), source })?;
        config.check()?;
        Ok(config)
    }

    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Invalid(format!("train config: {what}")));
        if self.iterations == 0 {
            return bad("iterations must be at least 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad(format!("learning_rate {} must be in (0, 1]", self.learning_rate));
        }
        if self.max_depth == 0 {
            return bad("max_depth must be at least 1".into());
        }
        if !(0.0..0.9).contains(&self.validation_fraction) {
            return bad(format!("validation_fraction {} must be in [0, 0.9)", self.validation_fraction));
        }
        if self.nbins < 2 {
            return bad("nbins must be at least 2".into());
        }
        if self.l2 < 0.0 || self.min_leaf_weight < 0.0 {
            return bad("l2 and min_leaf_weight must not be negative".into());
        }
        Ok(())
    }
}
