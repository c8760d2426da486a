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
    let (mut i, mut j) = (0, 0);
    let (mut max_diff, mut min_diff) = (f64::NEG_INFINITY, f64::INFINITY);
    while i < reference.len() || j < current.len() {
        let value = match (reference.get(i), current.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        while reference.get(i).is_some_and(|&a| a <= value) {
            i += 1;
        }
        while current.get(j).is_some_and(|&b| b <= value) {
            j += 1;
        }
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

