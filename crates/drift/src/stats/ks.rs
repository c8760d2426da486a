//! The two-sample Kolmogorov–Smirnov test, as `scipy.stats.ks_2samp` computes it with its
//! defaults (two-sided, `method='auto'`): docs/drift-methods.md, section 3.

use serde::{Deserialize, Serialize};

use super::special::ln_gamma;

/// The largest sample size for which the exact p-value is used (scipy's `MAX_AUTO_N`).
pub const MAX_EXACT_N: u64 = 10_000;

/// At or above this value of `N·D²` the asymptotic p-value is 0, as in scipy's `_kolmogn`.
const ZERO_P_ND2: f64 = 370.0;

/// How a KS p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsMethod {
    /// The exact distribution of the two-sample statistic (lattice-path recursions).
    Exact,
    /// The one-sample distribution `kstwo` with `N = round(n₁·n₂/(n₁ + n₂))`, computed as
    /// `min(1, 2·smirnov(N, D))`.
    Asymptotic,
}

/// The outcome of a two-sample KS test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// `D = max |F_R − F_C|`; on the exact path it is rounded to the lattice, `h / lcm(n₁, n₂)`,
    /// as scipy reports it.
    pub statistic: f64,
    pub p_value: f64,
    pub method: KsMethod,
}

/// The KS statistic `max_x |F_R(x) − F_C(x)|` of two **sorted** samples of finite values.
///
/// Both empirical CDFs are evaluated after every distinct pooled value (scipy's
/// `searchsorted(side='right')`), so ties are handled as scipy does, with the same floating-point
/// expression `i/n₁ − j/n₂`. Returns NaN when a sample is empty.
pub fn ks_statistic_sorted(reference: &[f64], current: &[f64]) -> f64 {
    if reference.is_empty() || current.is_empty() {
        return f64::NAN;
    }
    let (n1, n2) = (reference.len() as f64, current.len() as f64);
    let (mut max_diff, mut min_diff) = (f64::NEG_INFINITY, f64::INFINITY);
    for (_, i, j) in super::binning::pooled_steps(reference, current) {
        let diff = i as f64 / n1 - j as f64 / n2;
        max_diff = max_diff.max(diff);
        min_diff = min_diff.min(diff);
    }
    // scipy clips the negative side to [0, 1] and keeps the positive side on a tie.
    let min_side = (-min_diff).clamp(0.0, 1.0);
    if min_side > max_diff { min_side } else { max_diff }
}

/// The KS statistic from two CDFs evaluated at the given points (for instance the union of two
/// quantile sketches' points): `max |F_R(x) − F_C(x)|`. Returns 0 when there are no points.
pub fn ks_statistic_from_cdfs(
    points: impl IntoIterator<Item = f64>,
    reference_cdf: impl Fn(f64) -> f64,
    current_cdf: impl Fn(f64) -> f64,
) -> f64 {
    points.into_iter().map(|x| (reference_cdf(x) - current_cdf(x)).abs()).fold(0.0, f64::max)
}

/// `ks_2samp(reference, current)` with scipy's defaults. Non-finite values are ignored.
/// Returns `None` when a sample has no finite value.
pub fn ks_2samp(reference: &[f64], current: &[f64]) -> Option<KsResult> {
    let sorted = |values: &[f64]| {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (r, c) = (sorted(reference), sorted(current));
    ks_2samp_sorted(&r, &c)
}

/// `ks_2samp` on two sorted samples of finite values: the exact p-value when
/// `max(n₁, n₂) ≤ 10000` (falling back to the asymptotic one if it fails numerically, as scipy
/// does), the asymptotic one otherwise. Returns `None` when a sample is empty.
pub fn ks_2samp_sorted(reference: &[f64], current: &[f64]) -> Option<KsResult> {
    if reference.is_empty() || current.is_empty() {
        return None;
    }
    let (n1, n2) = (reference.len() as u64, current.len() as u64);
    let d = ks_statistic_sorted(reference, current);
    if n1.max(n2) <= MAX_EXACT_N {
        let (lattice_d, p) = attempt_exact(n1, n2, d);
        return Some(match p {
            Some(p) => KsResult { statistic: lattice_d, p_value: p, method: KsMethod::Exact },
            None => ks_from_cdfs(lattice_d, n1, n2),
        });
    }
    Some(ks_from_cdfs(d, n1, n2))
}

/// The KS test on a statistic computed elsewhere (for instance from two sketches' CDFs) and the
/// two sample sizes: always the asymptotic p-value.
pub fn ks_from_cdfs(d: f64, n_reference: u64, n_current: u64) -> KsResult {
    KsResult { statistic: d, p_value: ks_p_asymptotic(d, n_reference, n_current), method: KsMethod::Asymptotic }
}

/// The exact two-sided p-value of the statistic `d` for sample sizes `n₁` and `n₂`, or `None`
/// when a size is zero or the computation leaves [0, 1].
pub fn ks_p_exact(d: f64, n1: u64, n2: u64) -> Option<f64> {
    if n1 == 0 || n2 == 0 || d.is_nan() {
        return None;
    }
    attempt_exact(n1, n2, d).1
}

/// scipy's `_attempt_exact_2kssamp`: the statistic rounded to the lattice `h / lcm`, and the
/// p-value when it is a number in [0, 1].
fn attempt_exact(n1: u64, n2: u64, d: f64) -> (f64, Option<f64>) {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) * n2;
    // numpy's round is half-to-even.
    let h = (d * lcm as f64).round_ties_even() as u64;
    let lattice_d = h as f64 / lcm as f64;
    if h == 0 {
        return (lattice_d, Some(1.0));
    }
    let p = if n1 == n2 { prob_outside_square(n1, h) } else { outer_prob_inside_method(n1, n2, g, h) };
    (lattice_d, (0.0..=1.0).contains(&p).then_some(p))
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Equal sizes (scipy's `_compute_prob_outside_square`):
/// `2·Σ_{k≥1} (−1)^{k−1} C(2n, n−kh)/C(2n, n)`, evaluated Horner-like without cancellation.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as i64, h as i64);
    let mut p = 0.0;
    let mut k = n / h;
    while k >= 0 {
        let mut a = 1.0;
        for j in 0..h {
            a = (n - k * h - j) as f64 * a / (n + k * h + j + 1) as f64;
        }
        p = a * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// Unequal sizes (scipy's `_compute_outer_prob_inside_method`): the share of monotone lattice
/// paths from (0, 0) to (m, n) that leave the band `|ng·i − mg·j| < h`, by Viehmann's
/// recursion for that share over a sliding window of one column.
fn outer_prob_inside_method(n1: u64, n2: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if n1 >= n2 { (n1 as i64, n2 as i64) } else { (n2 as i64, n1 as i64) };
    let (g, h) = (g as i64, h as i64);
    let (mg, ng) = (m / g, n / g);
    let mut min_j: i64 = 0;
    let mut max_j = ceil_div(h, mg).min(n + 1);
    let mut cur_len = max_j - min_j;
    // scipy sizes the column min(2·max_j + 2, n + 1) and fills it with ones; a column of n + 2
    // ones behaves identically and cannot be indexed out of range.
    let mut a = vec![1.0f64; (n + 2) as usize];
    for v in a.iter_mut().take(max_j as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let (last_min_j, last_len) = (min_j, cur_len);
        min_j = ((ng * i - h).div_euclid(mg) + 1).max(0).min(n);
        max_j = ceil_div(ng * i + h, mg).min(n + 1);
        if max_j <= min_j {
            return 1.0;
        }
        let fi = i as f64;
        let mut val = if min_j == 0 { 0.0 } else { 1.0 };
        for jj in 0..(max_j - min_j) {
            let j = (jj + min_j) as f64;
            let previous = a.get((jj + min_j - last_min_j) as usize).copied().unwrap_or(1.0);
            val = (previous * fi + val * j) / (fi + j);
            if let Some(slot) = a.get_mut(jj as usize) {
                *slot = val;
            }
        }
        cur_len = max_j - min_j;
        if last_len > cur_len {
            let start = (max_j - min_j) as usize;
            let end = (start + (last_len - cur_len) as usize).min(a.len());
            for v in a.iter_mut().take(end).skip(start) {
                *v = 1.0;
            }
        }
    }
    a.get((max_j - min_j - 1) as usize).copied().unwrap_or(f64::NAN)
}

/// `⌈a / b⌉` for `b > 0`.
fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

/// The asymptotic two-sided p-value: with `N = round(n₁·n₂/(n₁ + n₂))` (half to even, as numpy),
/// `p = 0` when `N·D² ≥ 370`, else `min(1, 2·smirnov(N, D))`.
pub fn ks_p_asymptotic(d: f64, n1: u64, n2: u64) -> f64 {
    if n1 == 0 || n2 == 0 || d.is_nan() {
        return f64::NAN;
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = (m * n / (m + n)).round_ties_even();
    if d <= 0.0 {
        return 1.0;
    }
    if d >= 1.0 || en * d * d >= ZERO_P_ND2 {
        return 0.0;
    }
    (2.0 * smirnov(en as u64, d)).clamp(0.0, 1.0)
}

/// The exact one-sided tail `P(D⁺_N ≥ x)` of the one-sample statistic, by the Birnbaum–Tingey sum
/// `x·Σ_{j=0..⌊N(1−x)⌋} C(N, j)·(1 − x − j/N)^{N−j}·(x + j/N)^{j−1}`, summed in log space.
///
/// The cost is linear in `N`; the relative error grows like `N·10⁻¹⁶` (about 10⁻⁹ at a
/// million) from the logarithms of the binomial coefficients.
pub fn smirnov(n: u64, x: f64) -> f64 {
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let t = nf * x;
    let last = (nf * (1.0 - x)).floor().max(0.0) as u64;
    let ln_n_factorial = ln_gamma(nf + 1.0);
    // A running log-sum-exp: the sum is `exp(scale) · total`.
    let mut scale = f64::NEG_INFINITY;
    let mut total = 0.0;
    for j in 0..=last.min(n) {
        let jf = j as f64;
        // N·(1 − x − j/N), formed from exact integers and the single rounding of N·x.
        let rest = nf - jf - t;
        if rest <= 0.0 {
            break;
        }
        let term = ln_n_factorial - ln_gamma(jf + 1.0) - ln_gamma(nf - jf + 1.0)
            + (nf - jf) * (rest / nf).ln()
            + (jf - 1.0) * ((t + jf) / nf).ln();
        if term > scale {
            total = total * (scale - term).exp() + 1.0;
            scale = term;
        } else {
            total += (term - scale).exp();
        }
    }
    if total == 0.0 {
        return 0.0;
    }
    (scale + total.ln() + x.ln()).exp()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::fixture::{assert_close, cases, name, number, numeric_samples};

    /// The tolerance of our asymptotic p-value against scipy's `kstwo.sf(D, N)`.
    ///
    /// Where scipy also computes `2·smirnov(N, D)` (`N > 140` and `N·D² ≥ 2.2`, or `D ≥ 0.5`), the
    /// two differ only by rounding: scipy sums the Birnbaum–Tingey series in double-double
    /// arithmetic, we in log space with log-gamma binomials, good to about `N·10⁻¹⁶`; 10⁻⁸ covers
    /// N up to 10⁴ with a wide margin. Elsewhere scipy computes `1 − CDF` and the bounds are those
    /// docs/drift-methods.md (section 3) states for `2·smirnov` against `kstwo.sf`: a relative
    /// 2·10⁻⁵ up to p = 0.05, 1.3·10⁻⁴ up to 0.1, 10⁻³ up to 0.2 and 1.7·10⁻² up to 0.5. Above
    /// 0.5 the document gives no bound and `2·smirnov` overshoots more (it reaches 1 while scipy
    /// says 0.94 for `num_large_same`): there only the absolute difference is bounded, by 0.1,
    /// which leaves every such p far above any threshold.
    fn asymptotic_tolerance(p_scipy: f64, n: f64, d: f64) -> (f64, bool) {
        let relative = |rel: f64| (rel, true);
        if (n > 140.0 && n * d * d >= 2.2) || d >= 0.5 {
            relative(1e-8)
        } else if p_scipy <= 0.05 {
            relative(2e-5)
        } else if p_scipy <= 0.1 {
            relative(1.3e-4)
        } else if p_scipy <= 0.2 {
            relative(1e-3)
        } else if p_scipy <= 0.5 {
            relative(1.7e-2)
        } else {
            (0.1, false)
        }
    }

    /// Asserts that our asymptotic p-value is within [`asymptotic_tolerance`] of scipy's.
    #[track_caller]
    pub(crate) fn assert_asymptotic(ours: f64, scipy: f64, n: f64, d: f64, what: &str) {
        match asymptotic_tolerance(scipy, n, d) {
            (rel, true) => assert_close(ours, scipy, rel, what),
            (abs, _) => assert!((ours - scipy).abs() <= abs, "{what}: {ours} against {scipy}, beyond {abs}"),
        }
    }

    #[test]
    fn every_fixture_case_matches_scipy() {
        let mut checked = 0;
        for case in cases() {
            let Some(expected) = case["expected"]["methods"].get("ks") else { continue };
            let case_name = name(case);
            let (r, c) = numeric_samples(case);
            let (n1, n2) = (r.len() as u64, c.len() as u64);
            let result = ks_2samp_sorted(&r, &c).expect("both samples are non-empty");
            let raw_d = ks_statistic_sorted(&r, &c);
            let method = expected["method"].as_str().expect("a KS method");
            assert_eq!(
                result.method,
                if method == "exact" { KsMethod::Exact } else { KsMethod::Asymptotic },
                "{case_name}: KS method"
            );
            // The statistic is the same expression over the same counts (on the exact path the same
            // lattice rounding), so it agrees to the last bit; 10⁻¹⁵ only allows for a different
            // but equally rounded form.
            assert_close(result.statistic, number(&expected["statistic"]), 1e-15, &format!("{case_name}: D"));
            // The sizes' harmonic term `en`, from which N is rounded.
            let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
            assert_close(m * n / (m + n), number(&expected["en"]), 1e-15, &format!("{case_name}: en"));
            let big_n = number(&expected["en"]).round_ties_even();
            // The exact p-value follows scipy's recursions operation for operation; 10⁻¹² allows
            // for the compiler's freedom in evaluating them, far below the 10⁻⁶ that matters.
            if let Some(p_exact) = expected.get("pvalue_exact") {
                let ours = ks_p_exact(raw_d, n1, n2).expect("the exact p-value is computable");
                assert_close(ours, number(p_exact), 1e-12, &format!("{case_name}: exact p"));
            }
            let ours = ks_p_asymptotic(raw_d, n1, n2);
            let what = format!("{case_name}: asymptotic p");
            assert_asymptotic(ours, number(&expected["pvalue_asymp"]), big_n, raw_d, &what);
            // The p-value of method 'auto'.
            let p = number(&expected["pvalue"]);
            if result.method == KsMethod::Exact {
                assert_close(result.p_value, p, 1e-12, &format!("{case_name}: p"));
            } else {
                assert_asymptotic(result.p_value, p, big_n, raw_d, &format!("{case_name}: p"));
            }
            checked += 1;
        }
        assert_eq!(checked, 16, "every numeric case with values has a KS entry");
    }

    #[test]
    fn ks_2samp_handles_ties_and_small_samples() {
        // F_R − F_C after 1, 2 and 3 with R = [1, 2, 2] and C = [2, 3]: 1/3, 1/2, 0.
        let r = ks_2samp(&[2.0, 1.0, 2.0, f64::NAN], &[3.0, 2.0]).expect("non-empty");
        assert_eq!(r.statistic, 0.5);
        assert_eq!(r.method, KsMethod::Exact);
        assert!(ks_2samp(&[f64::NAN], &[1.0]).is_none());
        // Identical samples: D = 0, p = 1.
        let same = ks_2samp(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).expect("non-empty");
        assert_eq!((same.statistic, same.p_value), (0.0, 1.0));
        // Disjoint samples of 3 and 3: p = 2/C(6, 3) = 0.1.
        let apart = ks_2samp(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).expect("non-empty");
        assert_eq!(apart.statistic, 1.0);
        assert!((apart.p_value - 0.1).abs() < 1e-15, "{}", apart.p_value);
        // Disjoint samples of 2 and 3: p = 2/C(5, 2) = 0.2 (the unequal-size recursion).
        let apart = ks_2samp(&[1.0, 2.0], &[4.0, 5.0, 6.0]).expect("non-empty");
        assert!((apart.p_value - 0.2).abs() < 1e-15, "{}", apart.p_value);
    }

    #[test]
    fn ks_2samp_switches_to_asymptotic_above_the_exact_limit() {
        let r: Vec<f64> = (0..10_001).map(|i| i as f64).collect();
        let c: Vec<f64> = (0..50).map(|i| i as f64 * 200.0 + 0.5).collect();
        let result = ks_2samp_sorted(&r, &c).expect("non-empty");
        assert_eq!(result.method, KsMethod::Asymptotic);
        assert_eq!(result.p_value, ks_p_asymptotic(result.statistic, 10_001, 50));
    }

    #[test]
    fn ks_from_cdfs_is_the_asymptotic_test_on_a_given_statistic() {
        let points = [0.0, 0.5, 1.0];
        let d = ks_statistic_from_cdfs(points, |x| x.clamp(0.0, 1.0), |x| (x * x).clamp(0.0, 1.0));
        assert_eq!(d, 0.25);
        let result = ks_from_cdfs(d, 400, 600);
        assert_eq!(result.method, KsMethod::Asymptotic);
        assert_eq!(result.p_value, ks_p_asymptotic(0.25, 400, 600));
        // N = 240 and N·D² = 15 ≥ 2.2: p = 2·smirnov(240, 0.25).
        assert_eq!(result.p_value, 2.0 * smirnov(240, 0.25));
        // N·D² ≥ 370 gives 0; D = 0 gives 1.
        assert_eq!(ks_p_asymptotic(0.9, 1000, 1000), 0.0);
        assert_eq!(ks_p_asymptotic(0.0, 1000, 1000), 1.0);
    }

    #[test]
    fn smirnov_matches_closed_forms() {
        // With N = 1 the sum has the single term j = 0: P(D⁺₁ ≥ x) = 1 − x.
        assert!((smirnov(1, 0.3) - 0.7).abs() < 1e-13);
        // For x ≥ 1 − 1/N only j = 0 remains: (1 − x)^N.
        let x: f64 = 0.95;
        assert!((smirnov(10, x) / (1.0 - x).powi(10) - 1.0).abs() < 1e-13);
        assert_eq!(smirnov(10, 0.0), 1.0);
        assert_eq!(smirnov(10, 1.0), 0.0);
    }
}
