//! Chi-square tests on counts per category (docs/drift-methods.md, section 4): Evidently's
//! goodness-of-fit test of the current counts against the reference proportions, which decides
//! the `chisquare` method, and Pearson's test of homogeneity on the 2×k table as
//! `scipy.stats.chi2_contingency` computes it.
//!
//! Both take two count arrays aligned on the same keys (the union of the two samples' values, see
//! [`super::binning::align_counts`] and [`super::binning::numeric_value_counts`]).

use super::special::gamma_q;

/// A chi-square statistic, its degrees of freedom and its p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiSquare {
    pub statistic: f64,
    pub dof: usize,
    /// `P(χ²_dof > statistic)`; NaN for zero degrees of freedom in the goodness-of-fit form, as
    /// scipy's `chisquare` gives.
    pub p_value: f64,
}

/// The chi-square survival function `P(χ²_dof > x) = Q(dof/2, x/2)`: 0 for an infinite statistic,
/// NaN for zero degrees of freedom.
pub fn chi2_sf(x: f64, dof: usize) -> f64 {
    if dof == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return 0.0;
    }
    gamma_q(dof as f64 / 2.0, x.max(0.0) / 2.0)
}

/// Evidently's `chisquare`: observed `O_k` = current counts, expected `E_k = ref_k · (n_C/n_R)`,
/// `χ² = Σ (O_k − E_k)²/E_k` with `dof = k − 1`. A key counted only in the current sample makes the
/// statistic infinite and the p-value 0. Keys with no count in either sample are ignored.
///
/// Returns `None` when the arrays differ in length or a sample is empty.
pub fn chisquare_gof(reference_counts: &[u64], current_counts: &[u64]) -> Option<ChiSquare> {
    if reference_counts.len() != current_counts.len() {
        return None;
    }
    let n_r: u64 = reference_counts.iter().sum();
    let n_c: u64 = current_counts.iter().sum();
    if n_r == 0 || n_c == 0 {
        return None;
    }
    let k_norm = n_c as f64 / n_r as f64;
    let mut keys = 0;
    let mut statistic = 0.0;
    for (&r, &c) in reference_counts.iter().zip(current_counts) {
        if r == 0 && c == 0 {
            continue;
        }
        keys += 1;
        let expected = r as f64 * k_norm;
        let diff = c as f64 - expected;
        statistic += diff * diff / expected;
    }
    let dof = keys - 1;
    Some(ChiSquare { statistic, dof, p_value: chi2_sf(statistic, dof) })
}

/// A Pearson test of homogeneity on the 2×k table, with the uncorrected figures when Yates'
/// correction applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contingency {
    /// The statistic and p-value scipy returns (corrected when `yates`).
    pub test: ChiSquare,
    /// Whether Yates' continuity correction was applied (`dof = 1` and correction asked for).
    pub yates: bool,
}

/// `scipy.stats.chi2_contingency` on the table whose rows are the reference and current counts:
/// `E_{s,k} = row_s·col_k/total`, `χ² = Σ (O − E)²/E`, `dof = k − 1`. When `dof = 1` and
/// `correction` is set (scipy's default), each `|O − E|` is reduced by `min(0.5, |O − E|)`. With
/// `dof = 0` the statistic is 0 and the p-value 1, as in scipy.
///
/// Returns `None` when the arrays differ in length or are empty, or an expected count is 0 (an
/// empty sample, or a key counted in neither sample), where scipy raises.
pub fn chi2_contingency(reference_counts: &[u64], current_counts: &[u64], correction: bool) -> Option<Contingency> {
    let k = reference_counts.len();
    if k == 0 || current_counts.len() != k {
        return None;
    }
    let rows = [reference_counts.iter().sum::<u64>() as f64, current_counts.iter().sum::<u64>() as f64];
    let total = rows[0] + rows[1];
    let columns: Vec<f64> = reference_counts.iter().zip(current_counts).map(|(&r, &c)| (r + c) as f64).collect();
    if rows.contains(&0.0) || columns.contains(&0.0) {
        return None;
    }
    let dof = k - 1;
    if dof == 0 {
        return Some(Contingency { test: ChiSquare { statistic: 0.0, dof, p_value: 1.0 }, yates: false });
    }
    let yates = correction && dof == 1;
    let mut statistic = 0.0;
    for (row, counts) in rows.iter().zip([reference_counts, current_counts]) {
        for (&column, &observed) in columns.iter().zip(counts) {
            let expected = row * column / total;
            let mut observed = observed as f64;
            if yates {
                let diff = expected - observed;
                observed += diff.abs().min(0.5).copysign(diff);
            }
            let diff = observed - expected;
            statistic += diff * diff / expected;
        }
    }
    Some(Contingency { test: ChiSquare { statistic, dof, p_value: chi2_sf(statistic, dof) }, yates })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixture::{assert_close, assert_keys, cases, counts, name, number, value_counts_of};

    // Tolerances. The statistics sum the same terms as scipy in another order (numpy sums
    // pairwise), which moves them by a few units of 10⁻¹⁶ relative: 10⁻¹² is ample. The p-values
    // come from our continued fraction or series for Q(a, x) against cephes' igamc; both are good
    // to about x·10⁻¹⁶ relative (x up to 300 here), so 10⁻¹⁰ leaves a wide margin while still
    // catching any wrong degree of freedom or prefactor.
    const STATISTIC_REL: f64 = 1e-12;
    const P_REL: f64 = 1e-10;

    #[test]
    fn goodness_of_fit_matches_evidently_on_every_case() {
        let mut checked = 0;
        for case in cases() {
            let Some(expected) = case["expected"]["methods"].get("chisquare") else { continue };
            let case_name = name(case);
            let (keys, rc, cc) = value_counts_of(case);
            assert_keys(&keys, &expected["keys"], case_name);
            assert_eq!(cc, counts(&expected["f_obs"]), "{case_name}: observed counts");
            let n_ratio = cc.iter().sum::<u64>() as f64 / rc.iter().sum::<u64>() as f64;
            for (&r, e) in rc.iter().zip(expected["f_exp"].as_array().expect("f_exp")) {
                // The same product ref_k · (n_C/n_R) as Evidently: equal to the last bit.
                assert_eq!(r as f64 * n_ratio, number(e), "{case_name}: expected count");
            }
            let chi = chisquare_gof(&rc, &cc).expect("non-empty samples");
            assert_eq!(chi.dof as u64, expected["dof"].as_u64().expect("dof"), "{case_name}: dof");
            assert_close(chi.statistic, number(&expected["statistic"]), STATISTIC_REL, &format!("{case_name}: χ²"));
            assert_close(chi.p_value, number(&expected["pvalue"]), P_REL, &format!("{case_name}: p"));
            checked += 1;
        }
        assert_eq!(checked, 14, "the cases with at most 20 distinct values");
    }

    #[test]
    fn contingency_matches_scipy_on_every_case() {
        let mut checked = 0;
        for case in cases() {
            let Some(expected) = case["expected"]["methods"].get("chi2_contingency") else { continue };
            let case_name = name(case);
            let (_, rc, cc) = value_counts_of(case);
            let table = expected["table"].as_array().expect("a table");
            assert_eq!((rc.clone(), cc.clone()), (counts(&table[0]), counts(&table[1])), "{case_name}: table");
            let corrected = chi2_contingency(&rc, &cc, true).expect("no empty row or column");
            assert_eq!(corrected.yates, expected["yates"] == true, "{case_name}: Yates");
            assert_eq!(corrected.test.dof as u64, expected["dof"].as_u64().expect("dof"), "{case_name}: dof");
            let what = format!("{case_name}: χ² with correction");
            assert_close(corrected.test.statistic, number(&expected["statistic"]), STATISTIC_REL, &what);
            assert_close(corrected.test.p_value, number(&expected["pvalue"]), P_REL, &what);
            let plain = chi2_contingency(&rc, &cc, false).expect("no empty row or column");
            assert!(!plain.yates);
            let what = format!("{case_name}: χ² without correction");
            assert_close(plain.test.statistic, number(&expected["statistic_uncorrected"]), STATISTIC_REL, &what);
            assert_close(plain.test.p_value, number(&expected["pvalue_uncorrected"]), P_REL, &what);
            checked += 1;
        }
        assert_eq!(checked, 14, "the cases with at most 20 distinct values");
    }

    #[test]
    fn degenerate_inputs() {
        // A key only in the current sample: infinite statistic, p = 0.
        let chi = chisquare_gof(&[10, 0], &[5, 5]).expect("non-empty");
        assert_eq!((chi.statistic, chi.p_value), (f64::INFINITY, 0.0));
        // One key: zero degrees of freedom, NaN p-value (scipy) for the goodness of fit, p = 1 for
        // the contingency table.
        assert!(chisquare_gof(&[10], &[4]).expect("non-empty").p_value.is_nan());
        assert_eq!(chi2_contingency(&[10], &[4], true).expect("non-empty").test.p_value, 1.0);
        // Empty samples, mismatched lengths and all-zero columns are refused.
        assert!(chisquare_gof(&[0, 0], &[1, 2]).is_none());
        assert!(chisquare_gof(&[1], &[1, 2]).is_none());
        assert!(chi2_contingency(&[1, 0], &[2, 0], true).is_none());
    }
}
