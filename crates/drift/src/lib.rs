//! mlops-drift: profiles, the statistics behind the drift tests, and drift itself.
//!
//! Mergeable profiles of a dataset's columns, the tests Evidently's defaults choose as scipy
//! computes them (`docs/drift-methods.md`), drift between two sets of samples or two profiles,
//! and what a report draws per feature. Pure: no I/O, no AWS, no environment variables.

pub mod charts;
mod error;
pub mod profile;
pub mod profile_drift;
pub mod samples;
pub mod stats;

pub use error::{Error, Result};
pub use profile::{Profile, Profiler};
pub use profile_drift::compare_profiles;
pub use samples::{DriftReport, FeatureDrift, Freshness, Samples, compare};

/// A drift report and what its HTML page draws per feature: the one result of a drift check,
/// on Lambda and in `mlops drift` alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    pub report: DriftReport,
    pub charts: Vec<charts::Chart>,
}

/// Drift between two profiles of `contract`'s dataset, `current` cut on `reference`'s edges.
pub fn of_profiles(
    contract: &mlops_contract::Contract,
    reference: &Profile,
    current: &Profile,
    tests: &stats::TestConfig,
    overrides: &std::collections::BTreeMap<String, stats::Override>,
) -> Result<Drift> {
    let report = compare_profiles(contract, reference, current, tests, overrides)?;
    let names: Vec<&str> = report.columns.iter().map(|f| f.column.as_str()).collect();
    let charts = charts::from_profiles(names, reference, current);
    Ok(Drift { report, charts })
}

/// Drift between two sets of samples of `dataset`, every value kept.
pub fn of_samples(
    dataset: &str,
    reference: &Samples,
    current: &Samples,
    tests: &stats::TestConfig,
    overrides: &std::collections::BTreeMap<String, stats::Override>,
) -> Result<Drift> {
    let report = compare(dataset, reference, current, tests, overrides)?;
    let charts = charts::from_samples(reference, current);
    Ok(Drift { report, charts })
}
