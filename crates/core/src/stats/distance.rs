//! The distance methods: population stability index, Jensen–Shannon distance and the normalised
//! Wasserstein distance (docs/drift-methods.md, sections 7 to 9).

/// The floor of the reference standard deviation that normalises the Wasserstein distance.
pub const WASSERSTEIN_STD_FLOOR: f64 = 0.001;

/// `PSI = Σ (r_i − c_i)·ln(r_i / c_i)` over shares that are already zero-filled
/// ([`super::binning::fill_zeros`]). Returns NaN when the lengths differ.
pub fn psi(reference_shares: &[f64], current_shares: &[f64]) -> f64 {
    if reference_shares.len() != current_shares.len() {
        return f64::NAN;
    }
    reference_shares.iter().zip(current_shares).map(|(&r, &c)| (r - c) * (r / c).ln()).sum()
}

/// PSI from raw shares (or counts): each array is zero-filled separately as Evidently does, then
/// [`psi`] is applied.
pub fn psi_with_zero_fill(reference_shares: &[f64], current_shares: &[f64]) -> f64 {
    let (mut r, mut c) = (reference_shares.to_vec(), current_shares.to_vec());
    super::binning::fill_zeros(&mut r);
    super::binning::fill_zeros(&mut c);
    psi(&r, &c)
}

/// The Jensen–Shannon distance with the natural logarithm, as `scipy.spatial.distance.
/// jensenshannon(p, q)`: both arrays are renormalised to sum to 1, `m = (p + q)/2`, and the
/// distance is `√((KL(p‖m) + KL(q‖m))/2)` with `0·ln 0 = 0`. Its range is [0, √(ln 2)].
///
/// The arrays may hold shares or counts. Returns NaN when the lengths differ or a sum is 0.
pub fn jensenshannon(p: &[f64], q: &[f64]) -> f64 {
    if p.len() != q.len() {
        return f64::NAN;
    }
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let (mut left, mut right) = (0.0, 0.0);
    for (&pi, &qi) in p.iter().zip(q) {
        let (pi, qi) = (pi / sp, qi / sq);
        let m = (pi + qi) / 2.0;
        left += rel_entr(pi, m);
        right += rel_entr(qi, m);
    }
    ((left + right) / 2.0).sqrt()
}

/// scipy's `rel_entr(x, y)`: `x·ln(x/y)` for positive `x` and `y`, 0 for `x = 0 ≤ y`, infinity
/// otherwise.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// The first Wasserstein distance between the empirical distributions of two **sorted**
/// samples of finite values, `∫ |F_R(x) − F_C(x)| dx`, as scipy's `wasserstein_distance`
/// (`_cdf_distance` with `p = 1`) computes it by merging the samples. NaN when a sample is empty.
pub fn wasserstein_sorted(reference: &[f64], current: &[f64]) -> f64 {
    if reference.is_empty() || current.is_empty() {
        return f64::NAN;
    }
    let (n1, n2) = (reference.len() as f64, current.len() as f64);
    let (mut i, mut j) = (0, 0);
    let mut total = 0.0;
    let mut previous: Option<(f64, f64)> = None;
    loop {
        let value = match (reference.get(i), current.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        if let Some((x, gap)) = previous {
            total += gap * (value - x);
        }
        while reference.get(i).is_some_and(|&a| a <= value) {
            i += 1;
        }
        while current.get(j).is_some_and(|&b| b <= value) {
            j += 1;
        }
        previous = Some((value, (i as f64 / n1 - j as f64 / n2).abs()));
    }
    total
}

/// The first Wasserstein distance between two weighted discrete distributions given as CDF steps:
/// `(value, cumulative weight)` pairs sorted by value, the CDF being `cumulative / last
/// cumulative` from each value on (for instance the centroids of two quantile sketches).
/// NaN when a list is empty or its total weight is not positive.
pub fn wasserstein_from_cdfs(reference: &[(f64, f64)], current: &[(f64, f64)]) -> f64 {
    let total = |steps: &[(f64, f64)]| steps.last().map_or(f64::NAN, |&(_, w)| w);
    let (t1, t2) = (total(reference), total(current));
    if t1.is_nan() || t2.is_nan() || t1 <= 0.0 || t2 <= 0.0 {
        return f64::NAN;
    }
    let (mut i, mut j) = (0, 0);
    let (mut f1, mut f2) = (0.0, 0.0);
    let mut result = 0.0;
    let mut previous: Option<f64> = None;
    loop {
        let value = match (reference.get(i), current.get(j)) {
            (Some(&(a, _)), Some(&(b, _))) => a.min(b),
            (Some(&(a, _)), None) => a,
            (None, Some(&(b, _))) => b,
            (None, None) => break,
        };
        if let Some(x) = previous {
            result += (f1 - f2).abs() * (value - x);
        }
        while let Some(&(a, w)) = reference.get(i) {
            if a > value {
                break;
            }
            f1 = w / t1;
            i += 1;
        }
        while let Some(&(b, w)) = current.get(j) {
            if b > value {
                break;
            }
            f2 = w / t2;
            j += 1;
        }
        previous = Some(value);
    }
    result
}

/// The first Wasserstein distance from two quantile functions, `∫₀¹ |Q_R(t) − Q_C(t)| dt`, by the
/// midpoint rule on `grid` equal steps of `t` (at least one).
pub fn wasserstein_from_quantiles(
    reference_quantile: impl Fn(f64) -> f64,
    current_quantile: impl Fn(f64) -> f64,
    grid: usize,
) -> f64 {
    let grid = grid.max(1);
    let step = 1.0 / grid as f64;
    let sum: f64 = (0..grid)
        .map(|k| {
            let t = (k as f64 + 0.5) * step;
            (reference_quantile(t) - current_quantile(t)).abs()
        })
        .sum();
    sum * step
}

/// The population standard deviation (`ddof = 0`) of a sample, `√(m2/n)` with `m2` the sum of
/// squared deviations from the mean. NaN for an empty sample.
pub fn population_std(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let m2: f64 = values.iter().map(|&x| (x - mean) * (x - mean)).sum();
    (m2 / n).sqrt()
}

/// The normaliser of the Wasserstein distance, `max(σ, 0.001)`.
pub fn wasserstein_norm(reference_std: f64) -> f64 {
    reference_std.max(WASSERSTEIN_STD_FLOOR)
}

/// Evidently's score: `W / max(σ_R, 0.001)` on two **sorted** samples of finite values.
pub fn wasserstein_normed_sorted(reference: &[f64], current: &[f64]) -> f64 {
    wasserstein_sorted(reference, current) / wasserstein_norm(population_std(reference))
}
