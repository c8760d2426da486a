//! ingest's configuration, from the environment set by template.yaml.

use mlops_flows::ingest::IngestLimits;
use mlops_lambda::{ConfigError, Env};

/// The bucket (contracts live in the lake) and the memory limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub bucket: String,
    pub limits: IngestLimits,
}

impl Config {
    /// `LAKE_BUCKET`, and optionally `INGEST_ROW_GROUP_MB`, `INGEST_PART_MB` (at least 5),
    /// `INGEST_OPEN_PARTITIONS` and `INGEST_THREADS` (the cores, at most 6, unless set), which
    /// set [`IngestLimits`].
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Config, ConfigError> {
        Ok(Config { bucket: env.required("LAKE_BUCKET")?, limits: limits_from_env(env)? })
    }
}

/// The ingest memory limits from the environment, with [`IngestLimits::default`] for those
/// not set.
pub fn limits_from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<IngestLimits, ConfigError> {
    let d = IngestLimits::default();
    let min_part_mb = mlops_lake::multipart::MIN_PART_BYTES >> 20;
    Ok(IngestLimits {
        row_group_bytes: env.at_least("INGEST_ROW_GROUP_MB", d.row_group_bytes >> 20, 1)? << 20,
        part_bytes: env.at_least("INGEST_PART_MB", d.part_bytes >> 20, min_part_mb)? << 20,
        max_open_partitions: env.at_least("INGEST_OPEN_PARTITIONS", d.max_open_partitions, 1)?,
        // Lambda gives a function up to 6 vCPUs, in proportion to its memory.
        threads: env.at_least("INGEST_THREADS", default_threads(), 1)?,
    })
}

/// The cores this process may run on, at most 6.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlops_lambda::env::fixed;

    #[test]
    fn reads_limits_and_names_bad_ones() {
        let c = Config::from_env(&fixed(&[("LAKE_BUCKET", "b"), ("INGEST_ROW_GROUP_MB", "16")])).expect("valid");
        assert_eq!(c.limits.row_group_bytes, 16 << 20);
        let e = Config::from_env(&fixed(&[("LAKE_BUCKET", "b"), ("INGEST_PART_MB", "2")])).expect_err("small");
        assert_eq!(e.to_string(), "configuration: environment variable INGEST_PART_MB must be at least 5");
        let e = Config::from_env(&fixed(&[("LAKE_BUCKET", "b"), ("INGEST_OPEN_PARTITIONS", "0")])).expect_err("zero");
        assert_eq!(e.to_string(), "configuration: environment variable INGEST_OPEN_PARTITIONS must be at least 1");
        let e = Config::from_env(&fixed(&[])).expect_err("no bucket");
        assert_eq!(e.to_string(), "configuration: environment variable LAKE_BUCKET is not set");
    }
}
