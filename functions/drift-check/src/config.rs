//! drift-check's configuration, from the environment set by template.yaml.

use std::collections::BTreeMap;

use mlops_drift::stats::{Correction, Method, Override, TestConfig};
use mlops_flows::drift_check::{DriftCheckConfig, Window};
use mlops_flows::quality::QualityConfig;
use mlops_lambda::{ConfigError, Env, ModelConfig};

/// The bucket, what to check, and where `DriftDetected` goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub bucket: String,
    pub check: DriftCheckConfig,
    /// The EventBridge bus that receives `DriftDetected` and `ModelQualityDegraded`; none
    /// means no event is sent.
    pub event_bus: Option<String>,
    /// The model-quality check run after the drift check, when ground truth is configured.
    pub quality: Option<QualityConfig>,
}

impl Config {
    /// `LAKE_BUCKET`, `MODEL_NAME`, `MODEL_VERSION`, plus:
    ///
    /// - `DRIFT_WINDOW_DAYS` (7) or `DRIFT_WINDOW_BATCHES` (which wins when set): the window;
    /// - `DRIFT_SHARE` (0.5), `DRIFT_MIN_ROWS` (30), `DRIFT_CORRECTION` (`none`, `bonferroni`,
    ///   `bh`);
    /// - `DRIFT_METHOD` and `DRIFT_THRESHOLD` for every column, `DRIFT_COLUMN_METHODS` per column
    ///   (`col=method[:threshold],…`); unset, the field's defaults choose;
    /// - `EVENT_BUS_NAME`;
    /// - `LABELS_DATASET` (the ground truth; unset, no quality check runs), `QUALITY_WINDOW_DAYS`
    ///   (7) and `QUALITY_MIN_ROWS` (30).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Config, ConfigError> {
        let model = ModelConfig::from_env(env)?;
        let window = match env.text("DRIFT_WINDOW_BATCHES") {
            Some(_) => Window::Batches(env.at_least("DRIFT_WINDOW_BATCHES", 1u32, 1)?),
            None => Window::Days(env.at_least("DRIFT_WINDOW_DAYS", 7u32, 1)?),
        };
        let defaults = TestConfig::default();
        let bad = |name: &str, e: String| ConfigError::new(name, format!(": {e}"));
        let correction = match env.text("DRIFT_CORRECTION") {
            Some(name) => Correction::from_name(&name).map_err(|e| bad("DRIFT_CORRECTION", e))?,
            None => Correction::None,
        };
        let method = match env.text("DRIFT_METHOD") {
            Some(name) => {
                Some(Method::from_name(&name).ok_or_else(|| bad("DRIFT_METHOD", format!("{name:?} is not a method")))?)
            }
            None => None,
        };
        let threshold = match env.text("DRIFT_THRESHOLD") {
            Some(t) => Some(t.parse::<f64>().map_err(|_| bad("DRIFT_THRESHOLD", format!("{t:?} is not a number")))?),
            None => None,
        };
        let mut overrides = BTreeMap::new();
        for item in env.text("DRIFT_COLUMN_METHODS").unwrap_or_default().split(',').filter(|s| !s.trim().is_empty()) {
            let (column, o) = Override::parse_for_column(item).map_err(|e| bad("DRIFT_COLUMN_METHODS", e))?;
            overrides.insert(column, o);
        }
        Ok(Config {
            bucket: model.bucket,
            check: DriftCheckConfig {
                model_name: model.model_name.clone(),
                model_version: model.model_version,
                window,
                tests: TestConfig {
                    min_rows: env.parsed("DRIFT_MIN_ROWS", defaults.min_rows)?,
                    drift_share: env.parsed("DRIFT_SHARE", defaults.drift_share)?,
                    correction,
                    all: Override { method, threshold },
                    ..defaults
                },
                overrides,
            },
            event_bus: env.text("EVENT_BUS_NAME"),
            quality: match env.text("LABELS_DATASET") {
                Some(labels_dataset) => Some(QualityConfig {
                    model_name: model.model_name.clone(),
                    labels_dataset,
                    window_days: env.at_least("QUALITY_WINDOW_DAYS", 7u32, 1)?,
                    min_rows: env.at_least("QUALITY_MIN_ROWS", 30u64, 1)?,
                }),
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlops_lambda::env::fixed;

    const MODEL: [(&str, &str); 3] = [("LAKE_BUCKET", "b"), ("MODEL_NAME", "m"), ("MODEL_VERSION", "1")];

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut pairs = MODEL.to_vec();
        pairs.extend_from_slice(extra);
        Config::from_env(&fixed(&pairs))
    }

    #[test]
    fn reads_and_names_missing_or_bad_values() {
        let e = with(&[("DRIFT_SHARE", "high")]).expect_err("bad number");
        assert!(e.to_string().contains("DRIFT_SHARE=\"high\" is not a valid f64"), "{e}");
        let c = with(&[
            ("DRIFT_WINDOW_BATCHES", "3"),
            ("DRIFT_COLUMN_METHODS", "x=psi:0.2, y=ks"),
            ("DRIFT_CORRECTION", "bh"),
        ])
        .expect("valid");
        assert_eq!(c.check.window, Window::Batches(3));
        assert_eq!(c.check.overrides["x"], Override { method: Some(Method::Psi), threshold: Some(0.2) });
        assert_eq!(c.check.tests.correction, Correction::BenjaminiHochberg);
        let e = with(&[("DRIFT_COLUMN_METHODS", "x=median")]).expect_err("unknown method");
        assert!(e.to_string().contains("DRIFT_COLUMN_METHODS: \"median\" is not a method"), "{e}");
        let e = with(&[("DRIFT_WINDOW_DAYS", "0")]).expect_err("zero");
        assert!(e.to_string().contains("DRIFT_WINDOW_DAYS must be at least 1"), "{e}");
    }
}
