//! predict's configuration, from the environment set by template.yaml.

use std::time::Duration;

use mlops_lambda::{ConfigError, Env, ModelConfig};

/// Settings of the HTTP layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Most instances one request may carry; more get 413.
    pub max_instances: usize,
    /// How long a request may wait for the shadow model after the champion has answered.
    pub shadow_budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_instances: 1000, shadow_budget: Duration::from_millis(50) }
    }
}

impl Limits {
    /// `PREDICT_MAX_INSTANCES` (default 1000, at least 1) and `SHADOW_BUDGET_MS` (default 50).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Limits, ConfigError> {
        let defaults = Limits::default();
        Ok(Limits {
            max_instances: env.at_least("PREDICT_MAX_INSTANCES", defaults.max_instances, 1)?,
            shadow_budget: Duration::from_millis(env.parsed("SHADOW_BUDGET_MS", 50u64)?),
        })
    }
}

/// Everything predict reads at start: the model version to serve, the limits and capture.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub model: ModelConfig,
    pub limits: Limits,
    pub capture: Option<crate::CaptureConfig>,
    pub ab: Option<crate::AbConfig>,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Config, ConfigError> {
        Ok(Config {
            model: ModelConfig::from_env(env)?,
            limits: Limits::from_env(env)?,
            capture: crate::CaptureConfig::from_env(env)?,
            ab: crate::AbConfig::from_env(env)?,
        })
    }
}

/// The worker threads of predict's async runtime: `TOKIO_WORKER_THREADS` (default: the cores
/// this process may run on), at least 1. It is read before the runtime starts, so that a bad
/// value is an error naming it rather than tokio's panic.
pub fn worker_threads<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<usize, ConfigError> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    env.at_least("TOKIO_WORKER_THREADS", cores, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlops_lambda::env::fixed;

    #[test]
    fn bad_limits_fail_the_start_with_the_variable_named() {
        let base = [("LAKE_BUCKET", "b"), ("MODEL_NAME", "m"), ("MODEL_VERSION", "1")];
        assert_eq!(Config::from_env(&fixed(&base)).expect("valid").limits, Limits::default());
        for (name, value, says) in [
            ("PREDICT_MAX_INSTANCES", "lots", "PREDICT_MAX_INSTANCES=\"lots\" is not a valid usize"),
            ("PREDICT_MAX_INSTANCES", "0", "PREDICT_MAX_INSTANCES must be at least 1"),
            ("SHADOW_BUDGET_MS", "-1", "SHADOW_BUDGET_MS=\"-1\" is not a valid u64"),
            ("CAPTURE_SAMPLE_RATE", "1.5", "CAPTURE_SAMPLE_RATE=1.5 is not a share between 0 and 1"),
            ("CAPTURE_FLUSH_MS", "1", "CAPTURE_FLUSH_MS must be at least 10"),
        ] {
            let mut pairs = base.to_vec();
            pairs.extend([("CAPTURE_STREAM", "s"), (name, value)]);
            let e = Config::from_env(&fixed(&pairs)).expect_err(name).to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn worker_threads_default_to_the_cores_and_name_a_bad_value() {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        assert_eq!(worker_threads(&fixed(&[])), Ok(cores));
        assert_eq!(worker_threads(&fixed(&[("TOKIO_WORKER_THREADS", " 3 ")])), Ok(3));
        for (value, says) in [("0", "TOKIO_WORKER_THREADS must be at least 1"), ("two", "TOKIO_WORKER_THREADS=\"two\"")]
        {
            let e = worker_threads(&fixed(&[("TOKIO_WORKER_THREADS", value)])).expect_err(value).to_string();
            assert!(e.contains(says), "{e}");
        }
    }
}
