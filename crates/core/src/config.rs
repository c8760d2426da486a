//! Function configuration from environment variables, read and checked once per cold start.

use crate::drift::DriftConfig;
use crate::error::{Error, Result};
use crate::ingest::IngestLimits;

/// Reads configuration through a lookup function, so that tests and the CLI can supply
/// values without touching the process environment.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> std::fmt::Debug for Env<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// A required, non-empty variable.
    pub fn required(&self, name: &str) -> Result<String> {
        match (self.0)(name) {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            _ => Err(Error::Config(format!("environment variable {name} is not set"))),
        }
    }

    /// An optional variable parsed as `T`, with a default.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        match (self.0)(name) {
            Some(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "environment variable {name}={v:?} is not a valid {}",
                    std::any::type_name::<T>()
                ))
            }),
            _ => Ok(default),
        }
    }

    fn version(&self, name: &str) -> Result<u32> {
        let raw = self.required(name)?;
        raw.trim_start_matches('v').parse().map_err(|_| {
            Error::Config(format!("environment variable {name}={raw:?} is not a version number such as 1"))
        })
    }
}

/// The process environment.
pub fn process_env() -> Env<fn(&str) -> Option<String>> {
    Env(|name| std::env::var(name).ok())
}

/// The model version a function serves or watches.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub bucket: String,
    pub model_name: String,
    pub model_version: u32,
    /// A second version of the same model scored beside the first, for comparison only.
    pub shadow_version: Option<u32>,
}

impl ModelConfig {
    /// `LAKE_BUCKET`, `MODEL_NAME`, `MODEL_VERSION` and the optional `SHADOW_MODEL_VERSION`.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<ModelConfig> {
        Ok(ModelConfig {
            bucket: env.required("LAKE_BUCKET")?,
            model_name: env.required("MODEL_NAME")?,
            model_version: env.version("MODEL_VERSION")?,
            shadow_version: match (env.0)("SHADOW_MODEL_VERSION") {
                Some(v) if !v.trim().is_empty() => Some(env.version("SHADOW_MODEL_VERSION")?),
                _ => None,
            },
        })
    }
}

/// Configuration of `ingest`: the bucket (contracts live in the lake) and the memory limits.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestConfig {
    pub bucket: String,
    pub limits: IngestLimits,
}

impl IngestConfig {
    /// `LAKE_BUCKET`, and optionally `INGEST_ROW_GROUP_MB`, `INGEST_PART_MB` (at least 5) and
    /// `INGEST_OPEN_PARTITIONS`, which set [`IngestLimits`].
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<IngestConfig> {
        Ok(IngestConfig { bucket: env.required("LAKE_BUCKET")?, limits: ingest_limits(env)? })
    }
}

/// The ingest memory limits from the environment, with [`IngestLimits::default`] for those
/// not set.
pub fn ingest_limits<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<IngestLimits> {
    let d = IngestLimits::default();
    let mb = |name: &str, default: usize, min: usize| -> Result<usize> {
        let value = env.parsed(name, default >> 20)?;
        if value < min {
            return Err(Error::Config(format!("environment variable {name} must be at least {min}")));
        }
        Ok(value << 20)
    };
    Ok(IngestLimits {
        row_group_bytes: mb("INGEST_ROW_GROUP_MB", d.row_group_bytes, 1)?,
        part_bytes: mb("INGEST_PART_MB", d.part_bytes, crate::upload::MIN_PART_BYTES >> 20)?,
        max_open_partitions: match env.parsed("INGEST_OPEN_PARTITIONS", d.max_open_partitions)? {
            0 => return Err(Error::Config("environment variable INGEST_OPEN_PARTITIONS must be at least 1".into())),
            n => n,
        },
    })
}

/// Configuration of `drift-check`.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftCheckConfig {
    pub model: ModelConfig,
    /// Days of profiles, ending with the day of the check, that make the current window.
    pub window_days: u32,
    pub drift: DriftConfig,
}

impl DriftCheckConfig {
    /// `ModelConfig`'s variables plus `DRIFT_WINDOW_DAYS` (7), `DRIFT_PSI_THRESHOLD` (0.2),
    /// `DRIFT_SHARE` (0.5) and `DRIFT_MIN_ROWS` (30).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<DriftCheckConfig> {
        let defaults = DriftConfig::default();
        let window_days = env.parsed("DRIFT_WINDOW_DAYS", 7u32)?;
        if window_days == 0 {
            return Err(Error::Config("environment variable DRIFT_WINDOW_DAYS must be at least 1".into()));
        }
        Ok(DriftCheckConfig {
            model: ModelConfig::from_env(env)?,
            window_days,
            drift: DriftConfig {
                psi_threshold: env.parsed("DRIFT_PSI_THRESHOLD", defaults.psi_threshold)?,
                drift_share: env.parsed("DRIFT_SHARE", defaults.drift_share)?,
                min_rows: env.parsed("DRIFT_MIN_ROWS", defaults.min_rows)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env(move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn reads_and_names_missing_or_bad_values() {
        let c = ModelConfig::from_env(&env(&[("LAKE_BUCKET", "b"), ("MODEL_NAME", "m"), ("MODEL_VERSION", "v3")]))
            .expect("complete");
        assert_eq!(c.model_version, 3);
        let e = ModelConfig::from_env(&env(&[("LAKE_BUCKET", "b"), ("MODEL_NAME", "m")])).expect_err("missing");
        assert_eq!(e.to_string(), "configuration: environment variable MODEL_VERSION is not set");
        let e = DriftCheckConfig::from_env(&env(&[
            ("LAKE_BUCKET", "b"),
            ("MODEL_NAME", "m"),
            ("MODEL_VERSION", "1"),
            ("DRIFT_PSI_THRESHOLD", "high"),
        ]))
        .expect_err("bad number");
        assert!(e.to_string().contains("DRIFT_PSI_THRESHOLD=\"high\" is not a valid f64"), "{e}");
        let c = IngestConfig::from_env(&env(&[("LAKE_BUCKET", "b"), ("INGEST_ROW_GROUP_MB", "16")])).expect("valid");
        assert_eq!(c.limits.row_group_bytes, 16 << 20);
        let e = IngestConfig::from_env(&env(&[("LAKE_BUCKET", "b"), ("INGEST_PART_MB", "2")])).expect_err("small");
        assert_eq!(e.to_string(), "configuration: environment variable INGEST_PART_MB must be at least 5");
    }
}
