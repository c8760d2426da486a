//! Drift of current data against a baseline, by the population stability index (PSI).

use serde::{Deserialize, Serialize};

use crate::contract::Contract;
use crate::profile::{ColumnProfile, Profile};

/// Proportions are floored at this value so that empty bins keep PSI finite.
pub const PSI_FLOOR: f64 = 1e-4;

/// Thresholds of a drift check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftConfig {
    /// PSI at or above which a column has drifted (0.2 is the customary "significant shift").
    pub psi_threshold: f64,
    /// Share of drifted columns at or above which the dataset has drifted.
    pub drift_share: f64,
    /// Columns with fewer current values than this are reported as insufficient data.
    pub min_rows: u64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig { psi_threshold: 0.2, drift_share: 0.5, min_rows: 30 }
    }
}

/// The verdict for one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Drift,
    NoDrift,
    InsufficientData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    pub column: String,
    pub method: String,
    /// The PSI value; absent when there was too little data to compute it.
    pub statistic: Option<f64>,
    pub threshold: f64,
    pub verdict: Verdict,
    pub reference_count: u64,
    pub current_count: u64,
}

/// The outcome of comparing a current profile with a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub dataset: String,
    pub dataset_drift: bool,
    /// Drifted columns over columns with enough data.
    pub drift_share: f64,
    pub drift_share_threshold: f64,
    pub drifted_columns: usize,
    pub checked_columns: usize,
    pub reference_rows: u64,
    pub current_rows: u64,
    pub columns: Vec<ColumnDrift>,
}

/// PSI = Σ (a − e) · ln(a / e) over bins, with proportions floored at [`PSI_FLOOR`].
pub fn psi(expected: &[u64], actual: &[u64]) -> f64 {
    let (te, ta) = (expected.iter().sum::<u64>() as f64, actual.iter().sum::<u64>() as f64);
    if te == 0.0 || ta == 0.0 {
        return 0.0;
    }
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let e = (e as f64 / te).max(PSI_FLOOR);
            let a = (a as f64 / ta).max(PSI_FLOOR);
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Compares `current` with `reference` column by column.
///
/// The columns checked are the contract's features, or every profiled column when the
/// contract names no features.
pub fn compare(contract: &Contract, reference: &Profile, current: &Profile, config: &DriftConfig) -> DriftReport {
    let names: Vec<&str> = if contract.features.is_empty() {
        reference.columns.keys().map(String::as_str).collect()
    } else {
        contract.features.iter().map(String::as_str).collect()
    };
    let columns: Vec<ColumnDrift> = names
        .into_iter()
        .filter_map(|name| {
            let r = reference.columns.get(name)?;
            let c = current.columns.get(name);
            Some(column_drift(name, r, c, config))
        })
        .collect();
    let checked = columns.iter().filter(|c| c.verdict != Verdict::InsufficientData).count();
    let drifted = columns.iter().filter(|c| c.verdict == Verdict::Drift).count();
    let share = if checked == 0 { 0.0 } else { drifted as f64 / checked as f64 };
    DriftReport {
        dataset: contract.dataset.clone(),
        dataset_drift: checked > 0 && share >= config.drift_share,
        drift_share: share,
        drift_share_threshold: config.drift_share,
        drifted_columns: drifted,
        checked_columns: checked,
        reference_rows: reference.rows,
        current_rows: current.rows,
        columns,
    }
}

fn column_drift(
    name: &str,
    reference: &ColumnProfile,
    current: Option<&ColumnProfile>,
    config: &DriftConfig,
) -> ColumnDrift {
    let (reference_count, current_count, statistic) = match (reference, current) {
        (ColumnProfile::Numeric(r), Some(ColumnProfile::Numeric(c))) if r.histogram.edges == c.histogram.edges => {
            (r.count, c.count, Some(psi(&r.histogram.counts, &c.histogram.counts)))
        }
        (ColumnProfile::Categorical(r), Some(ColumnProfile::Categorical(c))) => {
            let mut keys: Vec<&String> = r.counts.keys().chain(c.counts.keys()).collect();
            keys.sort();
            keys.dedup();
            let get = |m: &std::collections::BTreeMap<String, u64>| -> Vec<u64> {
                keys.iter().map(|k| m.get(*k).copied().unwrap_or(0)).collect()
            };
            (r.count, c.count, Some(psi(&get(&r.counts), &get(&c.counts))))
        }
        (ColumnProfile::Numeric(r), _) => (r.count, 0, None),
        (ColumnProfile::Categorical(r), _) => (r.count, 0, None),
    };
    let enough = current_count >= config.min_rows && reference_count >= config.min_rows;
    let (statistic, verdict) = match statistic {
        Some(s) if enough && s >= config.psi_threshold => (Some(s), Verdict::Drift),
        Some(s) if enough => (Some(s), Verdict::NoDrift),
        _ => (statistic.filter(|_| current_count > 0), Verdict::InsufficientData),
    };
    ColumnDrift {
        column: name.to_string(),
        method: "psi".into(),
        statistic,
        threshold: config.psi_threshold,
        verdict,
        reference_count,
        current_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Value;

    #[test]
    fn psi_matches_hand_computation() {
        // Expected 50/50, actual 80/20: 0.3·ln(1.6) + (−0.3)·ln(0.4) = 0.41589…
        let v = psi(&[50, 50], &[80, 20]);
        assert!((v - (0.3 * 1.6f64.ln() - 0.3 * 0.4f64.ln())).abs() < 1e-12);
        assert_eq!(psi(&[5, 5], &[1, 1]), 0.0);
        // An empty bin is floored, not infinite.
        assert!(psi(&[10, 0], &[5, 5]).is_finite());
    }

    #[test]
    fn finds_shift_and_ignores_noise() {
        let contract = Contract::from_yaml(
            "dataset: d\nfeatures: [x, y]\ncolumns:\n  - {name: x, type: float}\n  - {name: y, type: float}\n",
            "t.yaml",
        )
        .expect("contract");
        let row = |x: f64, y: f64| vec![Value::Float(x), Value::Float(y)];
        let train: Vec<_> = (0..1000).map(|i| row(i as f64, (i * 7 % 1000) as f64)).collect();
        let base = Profile::baseline(&contract, &train);
        let mut current = Profile::empty_like(&contract, &base);
        for i in 0..500 {
            current.observe(&contract, &row((i * 2) as f64 + 400.0, (i * 2) as f64));
        }
        let report = compare(&contract, &base, &current, &DriftConfig::default());
        assert_eq!(report.columns[0].verdict, Verdict::Drift);
        assert_eq!(report.columns[1].verdict, Verdict::NoDrift);
        assert!(report.dataset_drift, "one of two columns drifted: share 0.5 reaches the threshold");
        let mut small = Profile::empty_like(&contract, &base);
        small.observe(&contract, &row(1.0, 1.0));
        let report = compare(&contract, &base, &small, &DriftConfig::default());
        assert!(report.columns.iter().all(|c| c.verdict == Verdict::InsufficientData));
        assert!(!report.dataset_drift);
    }
}
