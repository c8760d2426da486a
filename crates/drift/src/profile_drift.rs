//! Drift between two profiles: the same methods, defaults and report as [`crate::samples`], read
//! from mergeable profiles instead of samples.
//!
//! A column whose two profiles still hold their exact values (at most
//! [`EXACT_VALUES`](crate::profile::numeric::EXACT_VALUES) each) is tested exactly as on samples.
//! Otherwise the statistic comes from the KLL sketches (KS `D`, the Wasserstein distance, the
//! histograms behind PSI and Jensen–Shannon) or from the frequent-items sketch, within their
//! error bounds, and the test is marked `from_sketch`. KS p-values on sketches are asymptotic.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::profile::numeric::{DISTINCT_VALUES, align_value_counts};
use crate::profile::{CategoricalProfile, ColumnProfile, NumericProfile, Profile};
use crate::samples::{DriftReport, FeatureDrift, finish, tested};
use crate::stats::binning::{Binned, STURGES_MIN_DISTINCT, sturges_edges};
use crate::stats::distribution::{self, Distribution};
use crate::stats::{
    ColumnTest, Kind, Method, Override, TestConfig, Verdict, binned_distance, count_test, distance, insufficient, ks,
    test_counts, test_numeric, untested,
};
use mlops_contract::{ColumnType, Contract};

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
        let missing = |p: &ColumnProfile| match p {
            ColumnProfile::Numeric(n) => n.nulls,
            ColumnProfile::Categorical(c) => c.nulls,
        };
        let (missing_reference, missing_current) = (Some(missing(r)), Some(missing(c)));
        let distinct = |p: &ColumnProfile| match p {
            ColumnProfile::Numeric(n) => n.cardinality(),
            ColumnProfile::Categorical(c) => c.cardinality(),
        };
        let (kind, test) = match (r, c) {
            (ColumnProfile::Numeric(r), ColumnProfile::Numeric(c)) => {
                ("numeric", test_numeric_profiles(r, c, column.kind == ColumnType::Int, o, config))
            }
            (ColumnProfile::Categorical(r), ColumnProfile::Categorical(c)) => {
                ("categorical", test_categorical_profiles(r, c, o, config))
            }
            _ => return Err(Error::Profile(format!("column {name:?} has different types in the two profiles"))),
        };
        let test = test.map_err(|e| Error::Method(format!("column {name:?}: {e}")))?;
        features.push(FeatureDrift {
            column: name.clone(),
            kind: kind.to_string(),
            test,
            missing_reference,
            missing_current,
            distinct_reference: Some(distinct(r)),
            distinct_current: Some(distinct(c)),
        });
    }
    let mut report = finish(&contract.dataset, features, config, reference.rows, current.rows);
    report.freshness = freshness(contract, reference, current);
    Ok(report)
}

/// The event times of both profiles, by the contract's event-time column.
fn freshness(contract: &Contract, reference: &Profile, current: &Profile) -> Option<crate::samples::Freshness> {
    let column = contract.event_time.as_deref()?;
    let (r, c) = (reference.text.get(column), current.text.get(column));
    if r.is_none() && c.is_none() {
        return None;
    }
    let time = |us: Option<i64>| {
        us.and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    };
    Some(crate::samples::Freshness {
        column: column.to_string(),
        reference_earliest: time(r.and_then(|p| p.earliest_us)),
        reference_latest: time(r.and_then(|p| p.latest_us)),
        current_earliest: time(c.and_then(|p| p.earliest_us)),
        current_latest: time(c.and_then(|p| p.latest_us)),
    })
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
            let result = ks::ks_from_cdfs(distribution::ks_statistic(&r, &c), n_r, n_c);
            (test.statistic, test.p_value, test.ks_method) =
                (Some(result.statistic), Some(result.p_value), Some(result.method));
        }
        Method::Wasserstein => {
            let w = distribution::wasserstein(&r, &c);
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
        reference_counts: distribution::histogram(r, &edges),
        current_counts: distribution::histogram(c, &edges),
        edges: Some(edges),
    }
}

/// Two `(value, count)` lists aligned on the union of their values, in value order: the number
/// of values, the reference counts and the current counts.
fn aligned_values(a: &[(f64, u64)], b: &[(f64, u64)]) -> (usize, Vec<u64>, Vec<u64>) {
    let aligned = align_value_counts(a, b);
    (aligned.len(), aligned.iter().map(|&(_, n, _)| n).collect(), aligned.iter().map(|&(_, _, m)| m).collect())
}

/// Tests one categorical column on two profiles: on exact counts as on samples; on a
/// frequent-items sketch, on its tracked labels plus
/// [`OTHER_LABELS`](crate::profile::categorical::OTHER_LABELS) for the rest.
pub fn test_categorical_profiles(
    reference: &CategoricalProfile,
    current: &CategoricalProfile,
    column: Option<&Override>,
    config: &TestConfig,
) -> std::result::Result<ColumnTest, String> {
    let mut test = test_counts(&reference.counts_with_other(), &current.counts_with_other(), column, config)
        .map_err(|e| e.to_string())?;
    test.from_sketch = !(reference.is_exact() && current.is_exact());
    Ok(test)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::profile::numeric::EXACT_VALUES;
    use crate::stats::fixture::{cases, is_numeric, labels, name, number, numbers};
    use crate::stats::tests::run;

    #[test]
    fn a_report_shows_freshness_and_cardinality() {
        use mlops_contract::Value as V;
        let contract = Contract::from_yaml(
            "dataset: d\nevent_time: at\nfeatures: [x, k]\ncolumns:\n  - {name: at, type: timestamp}\n  \
             - {name: x, type: float}\n  - {name: k, type: category}\n  - {name: note, type: string, nullable: true}\n",
            "d.yaml",
        )
        .expect("contract");
        let rows = |day: u32, labels: usize, n: usize| -> Vec<Vec<V>> {
            (0..n)
                .map(|i| {
                    vec![
                        V::Text(format!("2026-03-{day:02}T{:02}:00:00Z", i % 24).into()),
                        V::Float((i % 50) as f64),
                        V::Text(format!("k{}", i % labels).into()),
                        if i % 4 == 0 { V::Null } else { V::Text("é".repeat(1 + i % 3).into()) },
                    ]
                })
                .collect()
        };
        let reference = Profile::baseline(&contract, &rows(1, 3, 200));
        let mut current = Profile::empty_like(&contract, &reference);
        for row in rows(9, 12, 300) {
            current.observe(&contract, &row);
        }
        let drift = crate::of_profiles(&contract, &reference, &current, &TestConfig::default(), &BTreeMap::new())
            .expect("report");
        let f = drift.report.freshness.expect("freshness");
        assert_eq!(f.column, "at");
        assert_eq!(f.reference_latest.as_deref(), Some("2026-03-01T23:00:00Z"));
        assert_eq!(
            (f.current_earliest.as_deref(), f.current_latest.as_deref()),
            (Some("2026-03-09T00:00:00Z"), Some("2026-03-09T23:00:00Z"))
        );
        let k = drift.report.columns.iter().find(|c| c.column == "k").expect("k");
        assert_eq!((k.distinct_reference, k.distinct_current), (Some(3.0), Some(12.0)));
        let x = drift.report.columns.iter().find(|c| c.column == "x").expect("x");
        assert_eq!((x.distinct_reference, x.distinct_current), (Some(50.0), Some(50.0)));
        let note = &current.text["note"];
        assert_eq!((note.count, note.nulls, note.min_length, note.max_length), (225, 75, Some(1), Some(3)));
        assert!((note.distinct.estimate() - 3.0).abs() < 0.5);
        // Profiles round-trip through JSON with their text columns and sketches.
        let back = Profile::from_json(&current.to_json(), "current").expect("JSON");
        assert_eq!(back.text, current.text);
    }

    fn numeric_profile(values: &[f64]) -> NumericProfile {
        let mut p = NumericProfile::new(Vec::new());
        for &v in values {
            if v.is_finite() { p.add(v) } else { p.nulls += 1 }
        }
        p
    }

    fn categorical_profile(labels: &[Option<String>]) -> CategoricalProfile {
        let mut p = CategoricalProfile::default();
        for label in labels {
            match label {
                Some(l) => p.add(l),
                None => p.nulls += 1,
            }
        }
        p
    }

    /// The column test of a fixture case, from profiles of its two samples.
    fn run_profiles(case: &Value, column: Option<&Override>) -> ColumnTest {
        let config =
            TestConfig { min_rows: if name(case) == "num_tiny_shift" { 20 } else { 30 }, ..TestConfig::default() };
        let test = if is_numeric(case) {
            let (r, c) = (numeric_profile(&numbers(&case["reference"])), numeric_profile(&numbers(&case["current"])));
            test_numeric_profiles(&r, &c, case["contract_type"] == "int", column, &config)
        } else {
            let (r, c) =
                (categorical_profile(&labels(&case["reference"])), categorical_profile(&labels(&case["current"])));
            test_categorical_profiles(&r, &c, column, &config)
        };
        test.unwrap_or_else(|e| panic!("{}: {e}", name(case)))
    }

    fn small(case: &Value) -> bool {
        let n = |s: &Value| s.as_array().map_or(0, |a| a.iter().filter(|v| !v.is_null()).count());
        n(&case["reference"]) <= EXACT_VALUES && n(&case["current"]) <= EXACT_VALUES
    }

    /// On samples the profiles still hold exactly, every method gives the sample path's result to
    /// the last bit.
    #[test]
    fn exact_profiles_give_the_sample_results() {
        let mut checked = 0;
        for case in cases().iter().filter(|c| small(c) || !is_numeric(c)) {
            let config =
                TestConfig { min_rows: if name(case) == "num_tiny_shift" { 20 } else { 30 }, ..TestConfig::default() };
            let methods: Vec<Option<Method>> = std::iter::once(None)
                .chain(
                    Method::ALL.into_iter().filter(|m| is_numeric(case) || m.applies_to(Kind::Categorical)).map(Some),
                )
                .collect();
            for method in methods {
                let column = Override { method, threshold: None };
                let from_profiles = run_profiles(case, Some(&column));
                let from_samples = run(case, Some(&column), &config);
                // Debug output compares NaN p-values as equal, and every other field exactly.
                assert_eq!(format!("{from_profiles:?}"), format!("{from_samples:?}"), "{} with {method:?}", name(case));
                assert!(!from_profiles.from_sketch);
                checked += 1;
            }
        }
        assert!(checked >= 90, "{checked}");
    }

    /// Numeric cases with more than EXACT_VALUES values go through the KLL sketches (k = 1000)
    /// and the exact tails. Tolerances: with ε the sketch's normalised rank error (DataSketches'
    /// bound at 99 % confidence, about 0.003), each CDF is within ε, so KS `D` is within ε_R + ε_C of scipy's and
    /// the unnormalised Wasserstein distance within (ε_R + ε_C)·(max − min). PSI and
    /// Jensen–Shannon are sums over bins whose shares each move by at most 2ε; they are held to
    /// 0.02 absolute (PSI) and 0.01 (Jensen–Shannon), with the verdict unchanged where scipy's
    /// score is further than that from the threshold.
    #[test]
    fn sketch_profiles_match_scipy_within_the_sketch_error() {
        let mut checked = 0;
        for case in cases().iter().filter(|c| is_numeric(c) && !small(c)) {
            let case_name = name(case);
            let methods = &case["expected"]["methods"];
            let (r, c) = (numeric_profile(&numbers(&case["reference"])), numeric_profile(&numbers(&case["current"])));
            let eps = r.sketch.rank_error() + c.sketch.rank_error();
            let range = r.max.unwrap_or(0.0).max(c.max.unwrap_or(0.0)) - r.min.unwrap_or(0.0).min(c.min.unwrap_or(0.0));
            let with = |method: Method| run_profiles(case, Some(&Override { method: Some(method), threshold: None }));

            let ks = with(Method::Ks);
            let d = number(&methods["ks"]["statistic"]);
            assert!(ks.from_sketch, "{case_name}");
            assert!(
                (ks.statistic.expect("D") - d).abs() <= eps,
                "{case_name}: D {:?} vs scipy {d} (ε {eps})",
                ks.statistic
            );

            let w = with(Method::Wasserstein);
            let expected = number(&methods["wasserstein"]["normed"]);
            let norm = number(&methods["wasserstein"]["norm"]).max(0.001);
            let bound = eps * range / norm;
            let got = w.statistic.expect("W");
            assert!((got - expected).abs() <= bound, "{case_name}: W {got} vs scipy {expected} (bound {bound})");

            for (method, key, tolerance) in [(Method::Psi, "psi", 0.02), (Method::Jensenshannon, "jensenshannon", 0.01)]
            {
                let test = with(method);
                let expected = number(&methods[key]["value"]);
                let got = test.statistic.expect("a distance");
                assert!((got - expected).abs() <= tolerance, "{case_name} {key}: {got} vs {expected}");
                if (expected - method.default_threshold()).abs() > tolerance {
                    assert_eq!(test.drifted, expected >= method.default_threshold(), "{case_name} {key}");
                }
            }
            // The default method and its verdict are Evidently's.
            let default = run_profiles(case, None);
            let evidently = &case["expected"]["evidently"];
            assert_eq!(default.method.name(), evidently["method"], "{case_name}");
            assert_eq!(default.drifted, evidently["drift"] == true, "{case_name}");
            checked += 1;
        }
        assert_eq!(checked, 7, "every numeric case beyond the exact bound");
    }

    /// Profiles of the parts of a sample, merged in any order, answer as the profile of the whole
    /// does: counts, moments and histograms exactly; sketch quantiles within the rank error of
    /// the true ranks; and the drift tests within the sketch's error, with the same verdicts.
    #[test]
    fn profiles_merged_in_any_order_agree_within_the_sketch_error() {
        let case = crate::stats::fixture::case("num_large_shift");
        let (reference, current) = (numbers(&case["reference"]), numbers(&case["current"]));
        let whole = numeric_profile(&current);
        let parts: Vec<NumericProfile> = current.chunks(2_300).map(numeric_profile).collect();
        let r = numeric_profile(&reference);
        let config = TestConfig::default();
        let mut sorted = current.clone();
        sorted.sort_by(f64::total_cmp);
        let baseline_tests: Vec<ColumnTest> = [Method::Ks, Method::Wasserstein, Method::Jensenshannon]
            .into_iter()
            .map(|m| {
                test_numeric_profiles(&r, &whole, false, Some(&Override { method: Some(m), threshold: None }), &config)
            })
            .collect::<std::result::Result<_, _>>()
            .expect("tests");
        let orders: [Vec<usize>; 3] =
            [(0..parts.len()).collect(), (0..parts.len()).rev().collect(), vec![3, 0, 6, 1, 5, 2, 4]];
        for order in orders {
            let mut merged = NumericProfile::new(Vec::new());
            for &i in &order {
                merged.merge(&parts[i], "x").expect("same edges");
            }
            assert_eq!(
                (merged.count, merged.nulls, merged.min, merged.max),
                (whole.count, whole.nulls, whole.min, whole.max)
            );
            assert!((merged.mean - whole.mean).abs() <= 1e-12 * whole.mean.abs().max(1.0), "{order:?}");
            assert!((merged.m2 - whole.m2).abs() <= 1e-9 * whole.m2, "{order:?}");
            assert_eq!(merged.histogram, whole.histogram);
            assert!(merged.sketch.is_estimation_mode() && merged.values.is_none());
            let eps = merged.sketch.rank_error();
            let view = merged.sketch.view();
            for q in [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99] {
                let x = view.quantile(q);
                let (below, upto) = (sorted.partition_point(|&v| v < x), sorted.partition_point(|&v| v <= x));
                let n = sorted.len() as f64;
                assert!(
                    below as f64 / n - eps <= q && q <= upto as f64 / n + eps,
                    "{order:?}: quantile {q} is {x}, at true ranks {}..{}",
                    below as f64 / n,
                    upto as f64 / n
                );
            }
            for expected in &baseline_tests {
                let column = Override { method: Some(expected.method), threshold: None };
                let test = test_numeric_profiles(&r, &merged, false, Some(&column), &config).expect("test");
                let tolerance = match expected.method {
                    Method::Ks => 2.0 * (eps + r.sketch.rank_error()),
                    _ => 0.02,
                };
                let (a, b) = (test.statistic.expect("statistic"), expected.statistic.expect("statistic"));
                assert!((a - b).abs() <= tolerance, "{order:?} {}: {a} vs {b}", expected.method);
                assert_eq!(test.drifted, expected.drifted, "{order:?} {}", expected.method);
            }
        }
    }

    /// Beyond CATEGORY_LIMIT labels a column's counts move into a frequent-items sketch: exact
    /// while it tracks fewer than 3/4 of its map, so the tests are unchanged; merged in any order.
    #[test]
    fn frequent_items_profiles_keep_the_counts() {
        let label =
            |i: usize| Some(if i.is_multiple_of(3) { format!("hot-{}", i % 7) } else { format!("id-{}", i % 2_000) });
        let reference: Vec<Option<String>> = (0..9_000).map(label).collect();
        let current: Vec<Option<String>> = (0..9_000).map(|i| label(i * 7 + 1)).collect();
        let (r, c) = (categorical_profile(&reference), categorical_profile(&current));
        assert!(!r.is_exact() && !c.is_exact(), "2000 labels spill into the sketch");
        let config = TestConfig::default();
        for method in [Method::Chisquare, Method::Jensenshannon, Method::Psi] {
            let column = Override { method: Some(method), threshold: None };
            let from_sketch = test_categorical_profiles(&r, &c, Some(&column), &config).expect("test");
            let exact = crate::stats::test_categorical(&reference, &current, Some(&column), &config).expect("test");
            assert!(from_sketch.from_sketch);
            assert_eq!((from_sketch.statistic, from_sketch.p_value), (exact.statistic, exact.p_value), "{method}");
        }
        let parts: Vec<CategoricalProfile> = current.chunks(1_000).map(categorical_profile).collect();
        for order in [(0..9).collect::<Vec<_>>(), (0..9).rev().collect()] {
            let mut merged = CategoricalProfile::default();
            for &i in &order {
                merged.merge(&parts[i]);
            }
            assert_eq!(merged.label_counts(), c.label_counts(), "{order:?}");
            assert_eq!((merged.count, merged.is_exact()), (9_000, false));
        }
    }
}
