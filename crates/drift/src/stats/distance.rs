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
    let mut total = 0.0;
    let mut previous: Option<(f64, f64)> = None;
    for (value, i, j) in super::binning::pooled_steps(reference, current) {
        if let Some((x, gap)) = previous {
            total += gap * (value - x);
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
    let (mut f1, mut f2) = (0.0f64, 0.0f64);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::binning::fill_zeros;
    use crate::stats::binning::tests::binned;
    use crate::stats::fixture::{assert_close, cases, name, number, numeric_samples};

    // Tolerances. PSI and Jensen–Shannon sum at most 20 terms in another order than numpy's
    // pairwise sums: 10⁻¹² relative is ample. The Wasserstein distance sums up to 40000 positive
    // terms, where sequential and pairwise summation differ by up to n·10⁻¹⁶ in the worst case:
    // 10⁻¹¹. The standard deviation is a mean of squares after a mean: 10⁻¹².

    #[test]
    fn psi_and_jensenshannon_match_evidently_on_every_case() {
        let mut checked = 0;
        for case in cases() {
            let Some(methods) = case["expected"]["methods"].as_object() else { continue };
            let case_name = name(case);
            let binned = binned(case);
            let (r, c) = (binned.reference_shares(), binned.current_shares());
            let (mut rf, mut cf) = (r.clone(), c.clone());
            fill_zeros(&mut rf);
            fill_zeros(&mut cf);
            let expected_psi = number(&methods["psi"]["value"]);
            assert_close(psi(&rf, &cf), expected_psi, 1e-12, &format!("{case_name}: PSI"));
            assert_close(psi_with_zero_fill(&r, &c), expected_psi, 1e-12, &format!("{case_name}: PSI"));
            let expected_js = number(&methods["jensenshannon"]["value"]);
            assert_close(jensenshannon(&r, &c), expected_js, 1e-12, &format!("{case_name}: JS"));
            checked += 1;
        }
        assert_eq!(checked, 24, "every case with values in both samples");
    }

    #[test]
    fn wasserstein_matches_scipy_on_every_case() {
        let mut checked = 0;
        for case in cases() {
            let Some(expected) = case["expected"]["methods"].get("wasserstein") else { continue };
            let case_name = name(case);
            let (r, c) = numeric_samples(case);
            let w = wasserstein_sorted(&r, &c);
            assert_close(w, number(&expected["distance"]), 1e-11, &format!("{case_name}: W"));
            let std = population_std(&r);
            assert_close(std, number(&expected["reference_std_ddof0"]), 1e-12, &format!("{case_name}: σ"));
            assert_close(wasserstein_norm(std), number(&expected["norm"]), 1e-12, &format!("{case_name}: norm"));
            let normed = wasserstein_normed_sorted(&r, &c);
            assert_close(normed, number(&expected["normed"]), 1e-11, &format!("{case_name}: W_norm"));
            // The same distance from CDF steps: (value, cumulative count) per distinct value.
            let steps = |v: &[f64]| -> Vec<(f64, f64)> {
                let mut out: Vec<(f64, f64)> = Vec::new();
                for (i, &x) in v.iter().enumerate() {
                    match out.last_mut() {
                        Some(last) if last.0 == x => last.1 = (i + 1) as f64,
                        _ => out.push((x, (i + 1) as f64)),
                    }
                }
                out
            };
            let from_cdfs = wasserstein_from_cdfs(&steps(&r), &steps(&c));
            assert_close(from_cdfs, w, 1e-12, &format!("{case_name}: W from CDF steps"));
            checked += 1;
        }
        assert_eq!(checked, 16, "every numeric case with values in both samples");
    }

    #[test]
    fn jensenshannon_bounds_and_renormalisation() {
        // Disjoint supports reach √(ln 2); counts work as well as shares.
        assert_close(jensenshannon(&[3.0, 0.0], &[0.0, 5.0]), std::f64::consts::LN_2.sqrt(), 1e-15, "JS max");
        assert_eq!(jensenshannon(&[1.0, 3.0], &[0.25, 0.75]), 0.0);
        assert!(jensenshannon(&[1.0], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn wasserstein_from_quantiles_and_the_std_floor() {
        // Two uniform distributions shifted by 0.5: W = 0.5, on any grid.
        let w = wasserstein_from_quantiles(|t| t, |t| t + 0.5, 1000);
        assert!((w - 0.5).abs() < 1e-12, "{w}");
        // A shift of 0.3 between samples on the same two points: W = 0.3.
        assert!((wasserstein_sorted(&[0.0, 1.0], &[0.3, 1.3]) - 0.3).abs() < 1e-15);
        // A constant reference is normalised by the floor 0.001.
        assert_eq!(wasserstein_normed_sorted(&[2.0, 2.0], &[2.5, 2.5]), 0.5 / 0.001);
        assert!(wasserstein_sorted(&[], &[1.0]).is_nan());
    }
}
