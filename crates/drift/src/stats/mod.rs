//! Drift statistics, as pure functions over samples and counts.
//!
//! These are the methods of docs/drift-methods.md, computed with the formulas of Evidently's
//! `DataDriftPreset` and scipy so that the verdicts agree with Evidently's wherever the method is
//! the same:
//!
//! - [`ks`]: the two-sample Kolmogorov–Smirnov test, exact and asymptotic p-values;
//! - [`chisq`]: Evidently's goodness-of-fit chi-square and Pearson's 2×k contingency test;
//! - [`ztest`]: the two-proportion z-test;
//! - [`binning`]: Evidently's bins for PSI and Jensen–Shannon, with PSI's zero filling;
//! - [`distance`]: PSI, Jensen–Shannon and the normalised Wasserstein distance;
//! - [`select`]: the default method per column, thresholds, comparisons and overrides;
//! - [`verdict`]: column verdicts, the multiple-testing correction and the dataset drift share;
//! - [`special`]: the special functions behind the p-values.
//!
//! [`test_numeric`] and [`test_categorical`] run the whole decision for one column on samples held
//! in memory. The lower-level functions also take counts, CDFs and quantile functions, so that
//! profiles can feed them from sketches.

pub mod binning;
pub mod chisq;
pub mod distance;
pub mod distribution;
pub mod ks;
pub mod select;
pub mod special;
pub mod verdict;
pub mod ztest;

#[cfg(test)]
pub(crate) mod fixture;

pub use ks::{KsMethod, KsResult};
pub use select::{Kind, Method, Override, TestConfig, default_method};
pub use verdict::{ColumnTest, Correction, DatasetDrift, Verdict, adjust_p_values, apply_correction, dataset_drift};

use std::collections::BTreeMap;

use binning::{Binned, align_counts, bin_numeric, numeric_value_counts, value_counts};

/// A method was asked for a column it cannot test (KS or Wasserstein on a categorical column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {method} method does not apply to {kind} columns")]
pub struct UnsupportedMethod {
    pub method: Method,
    pub kind: Kind,
}

/// Tests one numeric column on its two samples, where NaN and ±infinity are missing values.
///
/// `integer` says the column has an integer type; numpy's integer bin-width rule then applies to
/// Sturges bins when neither sample has a missing value (pandas keeps the integer dtype only
/// then). The method and threshold are resolved from `column` and `config`
/// ([`TestConfig::resolve`]); the default method depends on the reference size and on the number
/// of distinct values of both samples.
pub fn test_numeric(
    reference: &[f64],
    current: &[f64],
    integer: bool,
    column: Option<&Override>,
    config: &TestConfig,
) -> Result<ColumnTest, UnsupportedMethod> {
    let finite_sorted = |values: &[f64]| {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (r, c) = (finite_sorted(reference), finite_sorted(current));
    let no_missing = r.len() == reference.len() && c.len() == current.len();
    let (_, rc, cc) = numeric_value_counts(&r, &c);
    let (n_r, n_c) = (r.len() as u64, c.len() as u64);
    let (method, threshold) = config.resolve(Kind::Numeric, column, n_r, rc.len() as u64);
    let mut test = untested(method, threshold, n_r, n_c);
    if insufficient(n_r, n_c, config.min_rows) {
        return Ok(test);
    }
    match method {
        Method::Ks => {
            if let Some(ks) = ks::ks_2samp_sorted(&r, &c) {
                test.statistic = Some(ks.statistic);
                test.p_value = Some(ks.p_value);
                test.ks_method = Some(ks.method);
            }
        }
        Method::Wasserstein => test.statistic = Some(distance::wasserstein_normed_sorted(&r, &c)),
        Method::Chisquare | Method::Z => (test.statistic, test.p_value) = count_test(method, &rc, &cc),
        Method::Psi | Method::Jensenshannon => {
            test.statistic = Some(binned_distance(method, &bin_numeric(&r, &c, integer && no_missing)))
        }
    }
    test.verdict = Verdict::NoDrift;
    test.decide();
    Ok(test)
}

/// Tests one categorical column on its two samples of labels, where `None` is a missing value.
///
/// Values are compared by equality: chi-square, z, PSI and Jensen–Shannon count them per label.
/// KS and Wasserstein do not apply and give [`UnsupportedMethod`].
pub fn test_categorical<S: AsRef<str>>(
    reference: &[Option<S>],
    current: &[Option<S>],
    column: Option<&Override>,
    config: &TestConfig,
) -> Result<ColumnTest, UnsupportedMethod> {
    let r = value_counts(reference.iter().flatten().map(AsRef::as_ref));
    let c = value_counts(current.iter().flatten().map(AsRef::as_ref));
    test_counts(&r, &c, column, config)
}

/// Tests one categorical column on its counts per label, as [`test_categorical`] does on the
/// labels themselves.
pub fn test_counts<K: Ord + Clone>(
    reference: &BTreeMap<K, u64>,
    current: &BTreeMap<K, u64>,
    column: Option<&Override>,
    config: &TestConfig,
) -> Result<ColumnTest, UnsupportedMethod> {
    let (_, rc, cc) = align_counts(reference, current);
    let (n_r, n_c) = (rc.iter().sum::<u64>(), cc.iter().sum::<u64>());
    let (method, threshold) = config.resolve(Kind::Categorical, column, n_r, rc.len() as u64);
    if !method.applies_to(Kind::Categorical) {
        return Err(UnsupportedMethod { method, kind: Kind::Categorical });
    }
    let mut test = untested(method, threshold, n_r, n_c);
    if insufficient(n_r, n_c, config.min_rows) {
        return Ok(test);
    }
    match method {
        Method::Chisquare | Method::Z => (test.statistic, test.p_value) = count_test(method, &rc, &cc),
        _ => {
            let binned = Binned { edges: None, reference_counts: rc, current_counts: cc };
            test.statistic = Some(binned_distance(method, &binned));
        }
    }
    test.verdict = Verdict::NoDrift;
    test.decide();
    Ok(test)
}

/// A column test before any statistic: `insufficient_data` until decided.
pub(crate) fn untested(method: Method, threshold: f64, n_reference: u64, n_current: u64) -> ColumnTest {
    ColumnTest {
        method,
        statistic: None,
        p_value: None,
        adjusted_p_value: None,
        threshold,
        verdict: Verdict::InsufficientData,
        drifted: false,
        n_reference,
        n_current,
        ks_method: None,
        from_sketch: false,
    }
}

/// The minimum-sample rule; an empty sample is always insufficient.
pub(crate) fn insufficient(n_reference: u64, n_current: u64, min_rows: u64) -> bool {
    n_reference == 0 || n_current == 0 || n_reference < min_rows || n_current < min_rows
}

/// Chi-square or z on counts per value: the statistic and the p-value.
pub(crate) fn count_test(
    method: Method,
    reference_counts: &[u64],
    current_counts: &[u64],
) -> (Option<f64>, Option<f64>) {
    match method {
        Method::Z => match ztest::z_test(reference_counts, current_counts) {
            Some(z) => (z.statistic, Some(z.p_value)),
            None => (None, None),
        },
        _ => match chisq::chisquare_gof(reference_counts, current_counts) {
            Some(chi) => (Some(chi.statistic), Some(chi.p_value)),
            None => (None, None),
        },
    }
}

/// PSI (with Evidently's zero filling) or the Jensen–Shannon distance on binned counts.
pub(crate) fn binned_distance(method: Method, binned: &Binned) -> f64 {
    let (r, c) = (binned.reference_shares(), binned.current_shares());
    match method {
        Method::Psi => distance::psi_with_zero_fill(&r, &c),
        _ => distance::jensenshannon(&r, &c),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::Value;

    use super::*;
    use crate::stats::fixture::{assert_close, case, cases, is_numeric, labels, name, number, numbers};
    use crate::stats::ks::tests::assert_asymptotic;

    /// The column test of numeric or categorical samples given as fixture JSON.
    pub(crate) fn run_samples(
        numeric: bool,
        integer: bool,
        reference: &Value,
        current: &Value,
        column: Option<&Override>,
        config: &TestConfig,
    ) -> Result<ColumnTest, UnsupportedMethod> {
        if numeric {
            test_numeric(&numbers(reference), &numbers(current), integer, column, config)
        } else {
            test_categorical(&labels(reference), &labels(current), column, config)
        }
    }

    /// The column test of a fixture case.
    pub(crate) fn run(case: &Value, column: Option<&Override>, config: &TestConfig) -> ColumnTest {
        let integer = case["contract_type"] == "int";
        run_samples(is_numeric(case), integer, &case["reference"], &case["current"], column, config)
            .unwrap_or_else(|e| panic!("{}: {e}", name(case)))
    }

    /// Asserts our score against Evidently's. An exact KS p-value follows scipy's arithmetic
    /// (10⁻¹²); an asymptotic one is held to the bands of docs/drift-methods.md
    /// ([`assert_asymptotic`]); chi-square and z p-values to 10⁻¹⁰ (the incomplete gamma and erfc
    /// against cephes, see the chisq and ztest tests); distances to 10⁻¹¹ (summation order).
    #[track_caller]
    pub(crate) fn assert_score(test: &ColumnTest, expected: f64, what: &str) {
        let score = test.score().expect("a tested column has a score");
        match (test.method, test.ks_method) {
            (Method::Ks, Some(KsMethod::Asymptotic)) => {
                let n = (test.n_reference.max(test.n_current) as f64 * test.n_reference.min(test.n_current) as f64
                    / (test.n_reference + test.n_current) as f64)
                    .round_ties_even();
                assert_asymptotic(score, expected, n, test.statistic.expect("a statistic"), what);
            }
            (Method::Ks, _) => assert_close(score, expected, 1e-12, what),
            (Method::Chisquare | Method::Z, _) => assert_close(score, expected, 1e-10, what),
            _ => assert_close(score, expected, 1e-11, what),
        }
    }

    /// Evidently tests any non-empty sample; our default minimum of 30 values only excludes
    /// `num_tiny_shift` (25 and 20 values), which is run with `min_rows` 20 once it has been seen
    /// to be insufficient at the default.
    fn config_for(case: &Value) -> TestConfig {
        TestConfig { min_rows: if name(case) == "num_tiny_shift" { 20 } else { 30 }, ..TestConfig::default() }
    }

    #[test]
    fn default_verdicts_match_evidently_on_every_case() {
        let mut checked = 0;
        for case in cases() {
            let (case_name, expected) = (name(case), &case["expected"]);
            let test = run(case, None, &config_for(case));
            assert_eq!(test.n_reference, expected["reference_count"].as_u64().expect("a count"), "{case_name}");
            assert_eq!(test.n_current, expected["current_count"].as_u64().expect("a count"), "{case_name}");
            let evidently = &expected["evidently"];
            if evidently.get("error").is_some() {
                // Evidently refuses an empty sample; we report insufficient data.
                assert_eq!((test.verdict, test.drifted, test.statistic), (Verdict::InsufficientData, false, None));
                checked += 1;
                continue;
            }
            assert_eq!(test.method.name(), evidently["method"], "{case_name}: method");
            assert_eq!(test.method.name(), expected["default_method"], "{case_name}: method");
            assert_eq!(test.threshold, number(&evidently["threshold"]), "{case_name}: threshold");
            assert_score(&test, number(&evidently["score"]), &format!("{case_name}: score"));
            assert_eq!(test.drifted, evidently["drift"] == true, "{case_name}: drift");
            let verdict = if test.drifted { Verdict::Drift } else { Verdict::NoDrift };
            assert_eq!(test.verdict, verdict, "{case_name}: verdict");
            checked += 1;
        }
        assert_eq!(checked, 25, "every case");
        // The small case is insufficient at the default minimum.
        let tiny = run(case("num_tiny_shift"), None, &TestConfig::default());
        assert_eq!((tiny.verdict, tiny.method, tiny.p_value), (Verdict::InsufficientData, Method::Ks, None));
    }

    #[test]
    fn every_evidently_method_matches_on_every_case() {
        let mut checked = 0;
        for case in cases() {
            let Some(methods) = case["expected"]["evidently_methods"].as_object() else { continue };
            for (method_name, expected) in methods {
                let method = Method::from_name(method_name).expect("a known method");
                let what = format!("{} with {method}", name(case));
                let column = Override { method: Some(method), threshold: None };
                let test = run(case, Some(&column), &config_for(case));
                assert_eq!(test.method, method, "{what}");
                assert_eq!(test.threshold, number(&expected["threshold"]), "{what}: threshold");
                assert_score(&test, number(&expected["score"]), &what);
                assert_eq!(test.drifted, expected["drift"] == true, "{what}: drift");
                checked += 1;
            }
        }
        assert_eq!(checked, 98, "every method Evidently ran on every case");
    }

    #[test]
    fn categorical_columns_refuse_ordered_methods() {
        let (r, c) = (vec![Some("a"); 40], vec![Some("b"); 40]);
        for method in [Method::Ks, Method::Wasserstein] {
            let column = Override { method: Some(method), threshold: None };
            let error = test_categorical(&r, &c, Some(&column), &TestConfig::default()).expect_err("refused");
            assert_eq!(error, UnsupportedMethod { method, kind: Kind::Categorical });
        }
    }

    #[test]
    fn minimum_sample_rule_counts_non_missing_values() {
        // 30 values, 5 of them missing in the current sample: 25 < 30.
        let r: Vec<f64> = (0..30).map(f64::from).collect();
        let mut c = r.clone();
        c[..5].fill(f64::NAN);
        c[5] = f64::INFINITY;
        let short = test_numeric(&r, &c, false, None, &TestConfig::default()).expect("numeric");
        assert_eq!((short.verdict, short.n_reference, short.n_current), (Verdict::InsufficientData, 30, 24));
        // Exactly min_rows values in each sample is enough.
        let config = TestConfig { min_rows: 24, ..TestConfig::default() };
        let enough = test_numeric(&r, &c, false, None, &config).expect("numeric");
        assert_eq!(enough.verdict, Verdict::NoDrift);
        // An empty sample is insufficient whatever min_rows says.
        let config = TestConfig { min_rows: 0, ..TestConfig::default() };
        let empty = test_categorical::<&str>(&[Some("a")], &[None], None, &config).expect("categorical");
        assert_eq!(empty.verdict, Verdict::InsufficientData);
    }

    #[test]
    fn column_tests_serialise_with_snake_case_names_and_non_finite_strings() {
        let test = run(case("cat_small_new_and_missing"), None, &TestConfig::default());
        let json = serde_json::to_value(test).expect("serialisable");
        assert_eq!(json["method"], "chisquare");
        assert_eq!(json["verdict"], "drift");
        assert_eq!(json["statistic"], "inf");
        assert_eq!(json["p_value"], 0.0);
        assert!(json.get("adjusted_p_value").is_none() && json.get("ks_method").is_none());
        let back: ColumnTest = serde_json::from_value(json).expect("deserialisable");
        assert_eq!(back, test);
        let insufficient = run(case("num_current_all_missing"), None, &TestConfig::default());
        let json = serde_json::to_value(insufficient).expect("serialisable");
        assert_eq!((json["verdict"].as_str(), json["statistic"].is_null()), (Some("insufficient_data"), true));
    }
}
