//! Drift between two profiles: the same methods, defaults and report as [`crate::compare`], read
//! from mergeable profiles instead of samples.
//!
//! A column whose two profiles still hold their exact values (at most
//! [`EXACT_VALUES`](crate::profile::numeric::EXACT_VALUES) each) is tested exactly as on samples.
//! Otherwise the statistic comes from the KLL sketches (KS `D`, the Wasserstein distance, the
//! histograms behind PSI and Jensen–Shannon) or from the frequent-items sketch, within their
//! error bounds, and the test is marked `from_sketch`. KS p-values on sketches are asymptotic.

use std::collections::BTreeMap;

use crate::compare::{DriftReport, FeatureDrift, finish, tested};
use crate::contract::{ColumnType, Contract};
use crate::error::{Error, Result};
use crate::profile::numeric::DISTINCT_VALUES;
use crate::profile::{CategoricalProfile, ColumnProfile, NumericProfile, Profile};
use crate::stats::binning::{Binned, STURGES_MIN_DISTINCT, align_counts, sturges_edges};
use crate::stats::dist::{self, Distribution};
use crate::stats::{
    ColumnTest, Kind, Method, Override, TestConfig, Verdict, binned_distance, count_test, distance, insufficient, ks,
    test_counts, test_numeric, untested,
};

/// The label under which a frequent-items sketch's untracked labels are counted.
pub const OTHER_LABELS: &str = "(other labels)";

/// Tests every feature of `current` against `reference`, both profiles of `contract`'s dataset,
/// with per-column overrides by column name.
pub fn compare_profiles(
    contract: &Contract,
    reference: &Profile,
    current: &Profile,
    config: &TestConfig,
    overrides: &BTreeMap<String, Override>,
) -> Result<DriftReport> {
    let mut features = Vec::new();
    for (_, column) in tested(contract) {
        let name = &column.name;
        let (r, c) = (column_of(reference, name, "reference")?, column_of(current, name, "current")?);
        let o = overrides.get(name);
        let (kind, test) = match (r, c) {
            (ColumnProfile::Numeric(r), ColumnProfile::Numeric(c)) => {
                ("numeric", test_numeric_profiles(r, c, column.kind == ColumnType::Int, o, config))
            }
            (ColumnProfile::Categorical(r), ColumnProfile::Categorical(c)) => {
                ("categorical", test_categorical_profiles(r, c, o, config))
            }
            _ => return Err(Error::Profile(format!("column {name:?} has different types in the two profiles"))),
        };
        let test = test.map_err(|e| Error::Config(format!("column {name:?}: {e}")))?;
        features.push(FeatureDrift { column: name.clone(), kind: kind.to_string(), test });
    }
    Ok(finish(&contract.dataset, features, config, reference.rows, current.rows))
}

fn column_of<'a>(profile: &'a Profile, name: &str, which: &str) -> Result<&'a ColumnProfile> {
    profile.columns.get(name).ok_or_else(|| {
        Error::Profile(format!("column {name:?} is not in the {which} profile of {:?}", profile.dataset))
    })
}

/// Tests one numeric column on two profiles. `integer` says the column has an integer type.
pub fn test_numeric_profiles(
    reference: &NumericProfile,
    current: &NumericProfile,
    integer: bool,
    column: Option<&Override>,
    config: &TestConfig,
) -> std::result::Result<ColumnTest, String> {
    // numpy's integer bin width applies only when the column keeps an integer dtype.
    let integer = integer && reference.nulls == 0 && current.nulls == 0;
    let (r, c) = (Distribution::of(reference), Distribution::of(current));
    if let (Distribution::Exact(r), Distribution::Exact(c)) = (&r, &c) {
        return test_numeric(r, c, integer, column, config).map_err(|e| e.to_string());
    }
    let pooled = match (&reference.value_counts, &current.value_counts) {
        (Some(a), Some(b)) => Some(aligned_values(a, b)),
        _ => None,
    };
    let distinct = pooled.as_ref().map_or(DISTINCT_VALUES as u64 + 1, |(keys, _, _)| *keys as u64);
    let (n_r, n_c) = (r.n(), c.n());
    let (method, threshold) = config.resolve(Kind::Numeric, column, n_r, distinct);
    let mut test = untested(method, threshold, n_r, n_c);
    if insufficient(n_r, n_c, config.min_rows) {
        return Ok(test);
    }
    match method {
        Method::Ks => {
            let result = ks::ks_from_cdfs(dist::ks_statistic(&r, &c), n_r, n_c);
            (test.statistic, test.p_value, test.ks_method) =
                (Some(result.statistic), Some(result.p_value), Some(result.method));
        }
        Method::Wasserstein => {
            let w = dist::wasserstein(&r, &c);
            test.statistic = Some(w / distance::wasserstein_norm(reference.population_std()));
        }
        Method::Chisquare | Method::Z => {
            let Some((_, rc, cc)) = pooled else {
                return Err(format!(
                    "{method} needs counts per value, and the profiles hold them only up to {DISTINCT_VALUES} distinct values"
                ));
            };
            (test.statistic, test.p_value) = count_test(method, &rc, &cc);
        }
        Method::Psi | Method::Jensenshannon => {
            test.statistic = Some(binned_distance(method, &bin_profiles(reference, current, &r, &c, integer)));
        }
    }
    test.from_sketch = true;
    test.verdict = Verdict::NoDrift;
    test.decide();
    Ok(test)
}

/// Evidently's bins from two profiles: one per distinct value when the reference has at most 20
/// (values of the current outside them are one more bin), Sturges bins over the pooled range
/// otherwise.
fn bin_profiles(
    reference: &NumericProfile,
    current: &NumericProfile,
    r: &Distribution,
    c: &Distribution,
    integer: bool,
) -> Binned {
    if let Some(rv) = reference.value_counts.as_ref().filter(|v| v.len() <= STURGES_MIN_DISTINCT) {
        if let Some(cv) = &current.value_counts {
            let (_, reference_counts, current_counts) = aligned_values(rv, cv);
            return Binned { edges: None, reference_counts, current_counts };
        }
        let mut reference_counts: Vec<u64> = rv.iter().map(|&(_, n)| n).collect();
        let mut current_counts: Vec<u64> =
            rv.iter().map(|&(x, _)| ((c.cdf(x, true) - c.cdf(x, false)) * c.n() as f64).round() as u64).collect();
        reference_counts.push(0);
        current_counts.push(c.n().saturating_sub(current_counts.iter().sum()));
        return Binned { edges: None, reference_counts, current_counts };
    }
    let lo = r.min().min(c.min());
    let hi = r.max().max(c.max());
    let edges = sturges_edges(lo, hi, r.n() + c.n(), integer);
    Binned {
        reference_counts: dist::histogram(r, &edges),
        current_counts: dist::histogram(c, &edges),
        edges: Some(edges),
    }
}

/// Two `(value, count)` lists aligned on the union of their values, in value order: the number
/// of values, the reference counts and the current counts.
fn aligned_values(a: &[(f64, u64)], b: &[(f64, u64)]) -> (usize, Vec<u64>, Vec<u64>) {
    let ma: BTreeMap<(bool, u64), u64> = a.iter().map(|&(x, n)| (order_key(x), n)).collect();
    let mb: BTreeMap<(bool, u64), u64> = b.iter().map(|&(x, n)| (order_key(x), n)).collect();
    let (keys, rc, cc) = align_counts(&ma, &mb);
    (keys.len(), rc, cc)
}

/// A key that sorts finite floats in numeric order.
fn order_key(x: f64) -> (bool, u64) {
    if x >= 0.0 { (true, x.to_bits()) } else { (false, !x.to_bits()) }
}

/// Tests one categorical column on two profiles: on exact counts as on samples; on a
/// frequent-items sketch, on its tracked labels plus [`OTHER_LABELS`] for the rest.
pub fn test_categorical_profiles(
    reference: &CategoricalProfile,
    current: &CategoricalProfile,
    column: Option<&Override>,
    config: &TestConfig,
) -> std::result::Result<ColumnTest, String> {
    let counts = |p: &CategoricalProfile| {
        let mut counts = p.label_counts();
        let tracked: u64 = counts.values().sum();
        if !p.is_exact() && p.count > tracked {
            *counts.entry(OTHER_LABELS.to_string()).or_insert(0) += p.count - tracked;
        }
        counts
    };
    let mut test = test_counts(&counts(reference), &counts(current), column, config).map_err(|e| e.to_string())?;
    test.from_sketch = !(reference.is_exact() && current.is_exact());
    Ok(test)
}
