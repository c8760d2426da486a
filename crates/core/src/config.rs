//! Function configuration from environment variables, read and checked once per cold start.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::ingest::IngestLimits;
use crate::stats::{Correction, Override, TestConfig};

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

/// The current window of a drift check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The profiles of the last N days, ending with the day of the check.
    Days(u32),
    /// The last K batch profiles, newest first, looking back at most [`LOOKBACK_DAYS`].
    Batches(u32),
}

/// How far back a window of K batches looks for them.
pub const LOOKBACK_DAYS: u32 = 366;

/// Configuration of `drift-check`.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftCheckConfig {
    pub model: ModelConfig,
    pub window: Window,
    pub tests: TestConfig,
    /// Method and threshold per column.
    pub overrides: BTreeMap<String, Override>,
    /// The EventBridge bus that receives `DriftDetected`; none means no event is sent.
    pub event_bus: Option<String>,
}

impl DriftCheckConfig {
    /// `ModelConfig`'s variables plus:
    ///
    /// - `DRIFT_WINDOW_DAYS` (7) or `DRIFT_WINDOW_BATCHES` (which wins when set): the window;
    /// - `DRIFT_SHARE` (0.5), `DRIFT_MIN_ROWS` (30), `DRIFT_CORRECTION` (`none`, `bonferroni`,
    ///   `bh`);
    /// - `DRIFT_METHOD` and `DRIFT_THRESHOLD` for every column, `DRIFT_COLUMN_METHODS` per column
    ///   (`col=method[:threshold],…`); unset, the field's defaults choose;
    /// - `EVENT_BUS_NAME`.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<DriftCheckConfig> {
        let at_least_one = |name: &str, value: u32| {
            if value == 0 {
                Err(Error::Config(format!("environment variable {name} must be at least 1")))
            } else {
                Ok(value)
            }
        };
        let window = match (env.0)("DRIFT_WINDOW_BATCHES").filter(|v| !v.is_empty()) {
            Some(_) => {
                Window::Batches(at_least_one("DRIFT_WINDOW_BATCHES", env.parsed("DRIFT_WINDOW_BATCHES", 1u32)?)?)
            }
            None => Window::Days(at_least_one("DRIFT_WINDOW_DAYS", env.parsed("DRIFT_WINDOW_DAYS", 7u32)?)?),
        };
        let defaults = TestConfig::default();
        let text = |name: &str| (env.0)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let bad = |name: &str, e: String| Error::Config(format!("environment variable {name}: {e}"));
        let correction = match text("DRIFT_CORRECTION") {
            Some(name) => Correction::from_name(&name).map_err(|e| bad("DRIFT_CORRECTION", e))?,
            None => Correction::None,
        };
        let method = match text("DRIFT_METHOD") {
            Some(name) => Some(
                crate::stats::Method::from_name(&name)
                    .ok_or_else(|| bad("DRIFT_METHOD", format!("{name:?} is not a method")))?,
            ),
            None => None,
        };
        let threshold = match text("DRIFT_THRESHOLD") {
            Some(t) => Some(t.parse::<f64>().map_err(|_| bad("DRIFT_THRESHOLD", format!("{t:?} is not a number")))?),
            None => None,
        };
        let mut overrides = BTreeMap::new();
        for item in text("DRIFT_COLUMN_METHODS").unwrap_or_default().split(',').filter(|s| !s.trim().is_empty()) {
            let (column, o) = Override::parse_for_column(item).map_err(|e| bad("DRIFT_COLUMN_METHODS", e))?;
            overrides.insert(column, o);
        }
        Ok(DriftCheckConfig {
            model: ModelConfig::from_env(env)?,
            window,
            tests: TestConfig {
                min_rows: env.parsed("DRIFT_MIN_ROWS", defaults.min_rows)?,
                drift_share: env.parsed("DRIFT_SHARE", defaults.drift_share)?,
                correction,
                all: Override { method, threshold },
                ..defaults
            },
            overrides,
            event_bus: text("EVENT_BUS_NAME"),
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
            ("DRIFT_SHARE", "high"),
        ]))
        .expect_err("bad number");
        assert!(e.to_string().contains("DRIFT_SHARE=\"high\" is not a valid f64"), "{e}");
        let c = DriftCheckConfig::from_env(&env(&[
            ("LAKE_BUCKET", "b"),
            ("MODEL_NAME", "m"),
            ("MODEL_VERSION", "1"),
            ("DRIFT_WINDOW_BATCHES", "3"),
            ("DRIFT_COLUMN_METHODS", "x=psi:0.2, y=ks"),
            ("DRIFT_CORRECTION", "bh"),
        ]))
        .expect("valid");
        assert_eq!(c.window, Window::Batches(3));
        assert_eq!(c.overrides["x"], Override { method: Some(crate::stats::Method::Psi), threshold: Some(0.2) });
        assert_eq!(c.tests.correction, Correction::BenjaminiHochberg);
        let e = DriftCheckConfig::from_env(&env(&[
            ("LAKE_BUCKET", "b"),
            ("MODEL_NAME", "m"),
            ("MODEL_VERSION", "1"),
            ("DRIFT_COLUMN_METHODS", "x=median"),
        ]))
        .expect_err("unknown method");
        assert!(e.to_string().contains("DRIFT_COLUMN_METHODS: \"median\" is not a method"), "{e}");
        let c = IngestConfig::from_env(&env(&[("LAKE_BUCKET", "b"), ("INGEST_ROW_GROUP_MB", "16")])).expect("valid");
        assert_eq!(c.limits.row_group_bytes, 16 << 20);
        let e = IngestConfig::from_env(&env(&[("LAKE_BUCKET", "b"), ("INGEST_PART_MB", "2")])).expect_err("small");
        assert_eq!(e.to_string(), "configuration: environment variable INGEST_PART_MB must be at least 5");
    }
}
