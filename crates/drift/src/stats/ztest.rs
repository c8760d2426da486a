//! Evidently's z-test for two proportions (docs/drift-methods.md, section 5).

use super::special::normal_two_sided_p;

/// The outcome of the z-test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZTest {
    /// `z`; `None` when both samples hold one and the same value (the test is not run).
    pub statistic: Option<f64>,
    /// The two-sided p-value `erfc(|z|/√2)`, or 1 when both samples hold one and the same value.
    pub p_value: f64,
}

/// The z-test on counts aligned on the **sorted** union of the two samples' values: the first key
/// is "0" and every other value "1". `p₁ = #{r ≠ k₀}/n_R`, `p₂ = #{c ≠ k₀}/n_C`, pooled
/// `P = (p₁·n_R + p₂·n_C)/(n_R + n_C)`, `z = (p₁ − p₂)/√(P(1 − P)(1/n_R + 1/n_C))`.
///
/// When only one key is counted at all (both samples hold a single value, the same), `p = 1`.
/// Returns `None` when the arrays differ in length or a sample is empty.
pub fn z_test(reference_counts: &[u64], current_counts: &[u64]) -> Option<ZTest> {
    if reference_counts.len() != current_counts.len() {
        return None;
    }
    let n1: u64 = reference_counts.iter().sum();
    let n2: u64 = current_counts.iter().sum();
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let present = reference_counts.iter().zip(current_counts).filter(|&(&r, &c)| r + c > 0).count();
    if present == 1 {
        return Some(ZTest { statistic: None, p_value: 1.0 });
    }
    // The first key counted in either sample is k₀.
    let first = reference_counts.iter().zip(current_counts).position(|(&r, &c)| r + c > 0).unwrap_or_default();
    let r0 = reference_counts.get(first).copied().unwrap_or_default();
    let c0 = current_counts.get(first).copied().unwrap_or_default();
    let z = z_statistic(n1 - r0, n1, n2 - c0, n2);
    Some(ZTest { statistic: Some(z), p_value: normal_two_sided_p(z) })
}

/// `z` for `ones₁` "1" values out of `n₁` against `ones₂` out of `n₂`, with the floating-point
/// expressions of Evidently's `proportions_diff_z_stat_ind`.
pub fn z_statistic(ones1: u64, n1: u64, ones2: u64, n2: u64) -> f64 {
    let (n1, n2) = (n1 as f64, n2 as f64);
    let p1 = ones1 as f64 / n1;
    let p2 = ones2 as f64 / n2;
    let pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
    (p1 - p2) / (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixture::{assert_close, cases, name, number, value_counts_of};

    #[test]
    fn matches_evidently_on_every_case() {
        let mut checked = 0;
        for case in cases() {
            let Some(expected) = case["expected"]["methods"].get("z") else { continue };
            let case_name = name(case);
            let (_, rc, cc) = value_counts_of(case);
            let z = z_test(&rc, &cc).expect("non-empty samples");
            match expected["statistic"].as_f64() {
                // The same floating-point expressions as Evidently: 10⁻¹³ only allows for the
                // square root and division being fused differently.
                Some(statistic) => {
                    assert_close(z.statistic.expect("a statistic"), statistic, 1e-13, &format!("{case_name}: z"))
                }
                None => assert_eq!(z.statistic, None, "{case_name}: no statistic for one identical value"),
            }
            // Evidently computes 2·(1 − Φ(|z|)), which loses about 10⁻¹⁶/p relative to the exact
            // tail; erfc keeps full precision. The p-values here are above 10⁻⁴, so 10⁻¹⁰ is ample.
            assert_close(z.p_value, number(&expected["pvalue"]), 1e-10, &format!("{case_name}: p"));
            checked += 1;
        }
        assert_eq!(checked, 4, "the cases with at most 2 distinct values");
    }

    #[test]
    fn single_value_rule_and_disjoint_values() {
        // Both samples hold the one value: p = 1 without a statistic.
        assert_eq!(z_test(&[0, 7], &[0, 3]), Some(ZTest { statistic: None, p_value: 1.0 }));
        // Two different single values: p₁ = 0, p₂ = 1, a large |z|.
        let z = z_test(&[50, 0], &[0, 50]).expect("non-empty");
        assert!(z.statistic.expect("a statistic") < -9.0 && z.p_value < 1e-20);
        assert!(z_test(&[0, 0], &[1, 1]).is_none());
    }
}
