//! Evidently's binning for PSI and Jensen–Shannon (`get_binned_data`): Sturges equal-width bins
//! over the pooled sample for numeric columns whose reference has more than 20 distinct values,
//! one bin per distinct value otherwise; and the zero filling of PSI (docs/drift-methods.md,
//! section 6).
//!
//! There are two entry points: from samples ([`bin_numeric`], [`bin_categorical`]), and from
//! counts already binned elsewhere, such as sketches of a profile ([`sturges_edges`],
//! [`histogram`], [`shares`], [`fill_zeros`]).

use std::collections::BTreeMap;

/// A numeric reference with more distinct values than this is binned with Sturges' rule.
pub const STURGES_MIN_DISTINCT: usize = 20;

/// The share given to empty bins when the smallest non-empty share exceeds it.
pub const ZERO_FILL: f64 = 1e-4;

/// Counts of the reference and current samples in the same bins.
#[derive(Debug, Clone, PartialEq)]
pub struct Binned {
    /// The Sturges bin edges, or `None` when there is one bin per distinct value.
    pub edges: Option<Vec<f64>>,
    pub reference_counts: Vec<u64>,
    pub current_counts: Vec<u64>,
}

impl Binned {
    /// `count / n` per bin of the reference sample.
    pub fn reference_shares(&self) -> Vec<f64> {
        shares(&self.reference_counts)
    }

    /// `count / n` per bin of the current sample.
    pub fn current_shares(&self) -> Vec<f64> {
        shares(&self.current_counts)
    }
}

/// The edges numpy's `histogram_bin_edges(pooled, bins="sturges")` gives for a pooled sample of
/// `n_total` values from `lo` to `hi`.
///
/// `width = (hi − lo)/(log₂ N + 1)`, raised to 1 when the pooled array has an integer dtype
/// (`integer_dtype`) and it is below 1; `k = ⌈(hi − lo)/width⌉` bins; `edges[i] = lo + i·((hi −
/// lo)/k)` and `edges[k] = hi` (`numpy.linspace`). A zero range becomes one bin from `lo − 0.5`
/// to `hi + 0.5`. Returns an empty vector when `n_total` is 0 or a bound is not finite.
pub fn sturges_edges(lo: f64, hi: f64, n_total: u64, integer_dtype: bool) -> Vec<f64> {
    if n_total == 0 || !lo.is_finite() || !hi.is_finite() || lo > hi {
        return Vec::new();
    }
    let range = hi - lo;
    let mut width = range / ((n_total as f64).log2() + 1.0);
    let (first, last) = if lo == hi { (lo - 0.5, hi + 0.5) } else { (lo, hi) };
    let bins = if width != 0.0 {
        if integer_dtype && width < 1.0 {
            width = 1.0;
        }
        ((last - first) / width).ceil().max(1.0) as usize
    } else {
        1
    };
    let step = (last - first) / bins as f64;
    let mut edges: Vec<f64> = (0..bins).map(|i| i as f64 * step + first).collect();
    edges.push(last);
    edges
}

/// Counts of a **sorted** sample in the bins `[edges[i], edges[i+1])`, the last bin closed on the
/// right (numpy's `histogram` with explicit edges). Values outside the edges are not counted.
pub fn histogram(sorted: &[f64], edges: &[f64]) -> Vec<u64> {
    if edges.len() < 2 {
        return Vec::new();
    }
    // The position of the first value not below each edge; the last edge counts values equal to it.
    let mut positions: Vec<usize> = edges.iter().map(|&e| sorted.partition_point(|&x| x < e)).collect();
    if let (Some(last), Some(&edge)) = (positions.last_mut(), edges.last()) {
        *last = sorted.partition_point(|&x| x <= edge);
    }
    positions.windows(2).map(|w| (w[1].saturating_sub(w[0])) as u64).collect()
}

/// `count / n` per bin, with `n` the sum of the counts; all zeros when `n` is 0.
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return vec![0.0; counts.len()];
    }
    counts.iter().map(|&c| c as f64 / n as f64).collect()
}

/// Evidently's zero filling for PSI, on one array of shares: with `s` the smallest non-zero
/// share, every zero becomes `s/10⁶` if `s ≤ 10⁻⁴` and `10⁻⁴` otherwise. The array is not
/// renormalised. An array without a non-zero share is left as it is.
pub fn fill_zeros(shares: &mut [f64]) {
    let smallest = shares.iter().copied().filter(|&s| s != 0.0).fold(f64::INFINITY, f64::min);
    if !smallest.is_finite() {
        return;
    }
    let fill = if smallest <= ZERO_FILL { smallest / 1e6 } else { ZERO_FILL };
    for s in shares.iter_mut().filter(|s| **s == 0.0) {
        *s = fill;
    }
}

/// Steps through the distinct values of two **sorted** samples together, in ascending order:
/// each value with how many values of each sample are at most it (the two empirical CDFs'
/// counts just after it, scipy's `searchsorted(side='right')`).
pub fn pooled_steps<'a>(reference: &'a [f64], current: &'a [f64]) -> impl Iterator<Item = (f64, usize, usize)> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let value = match (reference.get(i), current.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => return None,
        };
        while reference.get(i).is_some_and(|&a| a <= value) {
            i += 1;
        }
        while current.get(j).is_some_and(|&b| b <= value) {
            j += 1;
        }
        Some((value, i, j))
    })
}

/// The distinct values of two **sorted** samples of finite values and the count of each in
/// each sample, in ascending order (`-0.0` and `0.0` are one value).
pub fn numeric_value_counts(reference: &[f64], current: &[f64]) -> (Vec<f64>, Vec<u64>, Vec<u64>) {
    let (mut keys, mut rc, mut cc) = (Vec::new(), Vec::new(), Vec::new());
    let (mut last_i, mut last_j) = (0, 0);
    for (value, i, j) in pooled_steps(reference, current) {
        keys.push(if value == 0.0 { 0.0 } else { value });
        rc.push((i - last_i) as u64);
        cc.push((j - last_j) as u64);
        (last_i, last_j) = (i, j);
    }
    (keys, rc, cc)
}

/// Counts per value of a sample of labels.
pub fn value_counts<'a>(values: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, u64> {
    let mut counts = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_insert(0) += 1;
    }
    counts
}

/// Two count maps aligned on the union of their keys, in key order: the keys, the reference
/// counts and the current counts (0 where a key is absent).
pub fn align_counts<K: Ord + Clone>(
    reference: &BTreeMap<K, u64>,
    current: &BTreeMap<K, u64>,
) -> (Vec<K>, Vec<u64>, Vec<u64>) {
    let mut union: BTreeMap<K, (u64, u64)> = BTreeMap::new();
    for (k, &c) in reference {
        union.entry(k.clone()).or_default().0 = c;
    }
    for (k, &c) in current {
        union.entry(k.clone()).or_default().1 = c;
    }
    let mut keys = Vec::with_capacity(union.len());
    let (mut rc, mut cc) = (Vec::with_capacity(union.len()), Vec::with_capacity(union.len()));
    for (k, (r, c)) in union {
        keys.push(k);
        rc.push(r);
        cc.push(c);
    }
    (keys, rc, cc)
}

/// Evidently's bins of a numeric column from two **sorted** samples of finite values: Sturges
/// bins over the pooled sample when the reference has more than 20 distinct values, one bin per
/// distinct value of both samples otherwise. `integer_dtype` applies numpy's integer width rule
/// (only when the column would keep an integer dtype: an integer column without missing values).
pub fn bin_numeric(reference: &[f64], current: &[f64], integer_dtype: bool) -> Binned {
    let reference_distinct = count_distinct_sorted(reference);
    if reference_distinct > STURGES_MIN_DISTINCT {
        let lo = reference.first().copied().unwrap_or(f64::NAN).min(current.first().copied().unwrap_or(f64::NAN));
        let hi = reference.last().copied().unwrap_or(f64::NAN).max(current.last().copied().unwrap_or(f64::NAN));
        let edges = sturges_edges(lo, hi, (reference.len() + current.len()) as u64, integer_dtype);
        let reference_counts = histogram(reference, &edges);
        let current_counts = histogram(current, &edges);
        return Binned { edges: Some(edges), reference_counts, current_counts };
    }
    let (_, reference_counts, current_counts) = numeric_value_counts(reference, current);
    Binned { edges: None, reference_counts, current_counts }
}

/// Evidently's bins of a categorical column: one bin per distinct label of both samples, in label
/// order. Missing values must already be removed.
pub fn bin_categorical<S: AsRef<str>>(reference: &[S], current: &[S]) -> Binned {
    let r = value_counts(reference.iter().map(AsRef::as_ref));
    let c = value_counts(current.iter().map(AsRef::as_ref));
    let (_, reference_counts, current_counts) = align_counts(&r, &c);
    Binned { edges: None, reference_counts, current_counts }
}

/// The number of distinct values of a sorted sample.
pub fn count_distinct_sorted(sorted: &[f64]) -> usize {
    let mut count = 0;
    let mut previous: Option<f64> = None;
    for &x in sorted {
        if previous != Some(x) {
            count += 1;
            previous = Some(x);
        }
    }
    count
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::fixture::{assert_keys, cases, counts, is_numeric, label_samples, name, number, numeric_samples};
    use crate::stats::fixture::{numbers, value_counts_of};

    /// Evidently's bins for a fixture case, as the drift check forms them.
    pub(crate) fn binned(case: &serde_json::Value) -> Binned {
        if is_numeric(case) {
            let (r, c) = numeric_samples(case);
            let no_missing =
                numbers(&case["reference"]).iter().chain(&numbers(&case["current"])).all(|x| x.is_finite());
            bin_numeric(&r, &c, case["contract_type"] == "int" && no_missing)
        } else {
            let (r, c) = label_samples(case);
            bin_categorical(&r, &c)
        }
    }

    #[test]
    fn bins_and_shares_match_evidently_on_every_case() {
        let mut checked = 0;
        for case in cases() {
            let Some(psi) = case["expected"]["methods"].get("psi") else { continue };
            let case_name = name(case);
            let binned = binned(case);
            match psi["binning"].as_str() {
                Some("sturges") => {
                    // numpy's edges come from the same few roundings (one division, one multiply
                    // and add per edge), so they are compared bit for bit.
                    let expected: Vec<f64> = psi["edges"].as_array().expect("edges").iter().map(number).collect();
                    assert_eq!(binned.edges.as_deref(), Some(expected.as_slice()), "{case_name}: edges");
                }
                Some("values") => {
                    assert_eq!(binned.edges, None, "{case_name}: bins by value");
                    assert_keys(&value_counts_of(case).0, &psi["keys"], case_name);
                }
                other => panic!("{case_name}: unknown binning {other:?}"),
            }
            // Counts are exact, and so are the shares: one division each, as numpy's.
            assert_eq!(binned.reference_counts, counts(&psi["reference_counts"]), "{case_name}: reference counts");
            assert_eq!(binned.current_counts, counts(&psi["current_counts"]), "{case_name}: current counts");
            let js = &case["expected"]["methods"]["jensenshannon"];
            assert_eq!(binned.reference_counts, counts(&js["reference_counts"]), "{case_name}: JS reference counts");
            assert_eq!(binned.current_counts, counts(&js["current_counts"]), "{case_name}: JS current counts");
            let (mut r, mut c) = (binned.reference_shares(), binned.current_shares());
            fill_zeros(&mut r);
            fill_zeros(&mut c);
            let expected =
                |key: &str| -> Vec<f64> { psi[key].as_array().expect("shares").iter().map(number).collect() };
            assert_eq!(r, expected("reference_percents"), "{case_name}: reference shares after zero filling");
            assert_eq!(c, expected("current_percents"), "{case_name}: current shares after zero filling");
            checked += 1;
        }
        assert_eq!(checked, 24, "every case with values in both samples");
    }

    #[test]
    fn sturges_follows_numpy() {
        // 100 values from 0 to 10: width 10/(log₂ 100 + 1) = 1.30…, k = ⌈7.64⌉ = 8 bins of 1.25.
        let edges = sturges_edges(0.0, 10.0, 100, false);
        assert_eq!(edges, (0..=8).map(|i| i as f64 * 1.25).collect::<Vec<_>>());
        // An integer dtype raises a width below 1 to 1: 0..=3 over 1000 values gives 3 bins, not 31.
        assert_eq!(sturges_edges(0.0, 3.0, 1000, true), vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(sturges_edges(0.0, 3.0, 1000, false).len(), 12);
        // A zero range is one bin of width 1.
        assert_eq!(sturges_edges(2.0, 2.0, 10, false), vec![1.5, 2.5]);
        // The last bin is closed: the maximum is counted, values outside are not.
        assert_eq!(histogram(&[-1.0, 0.0, 1.25, 9.0, 10.0, 11.0], &edges), vec![1, 1, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn zero_filling_rule() {
        // The smallest non-zero share 0.2 exceeds 10⁻⁴: zeros become 10⁻⁴.
        let mut shares = vec![0.8, 0.2, 0.0];
        fill_zeros(&mut shares);
        assert_eq!(shares, vec![0.8, 0.2, 1e-4]);
        // The smallest non-zero share 5·10⁻⁵ is at most 10⁻⁴: zeros become 5·10⁻¹¹.
        let mut shares = vec![1.0 - 5e-5, 5e-5, 0.0];
        fill_zeros(&mut shares);
        assert_eq!(shares[2], 5e-5 / 1e6);
    }

    #[test]
    fn numeric_references_with_few_values_are_binned_by_value() {
        // 20 distinct reference values: bins by value over both samples.
        let r: Vec<f64> = (0..20).map(f64::from).collect();
        let c = [0.5, 30.0];
        let binned = bin_numeric(&r, &c, false);
        assert_eq!(binned.edges, None);
        assert_eq!(binned.reference_counts.len(), 22);
        // 21 distinct values: Sturges bins.
        let r: Vec<f64> = (0..21).map(f64::from).collect();
        assert!(bin_numeric(&r, &c, false).edges.is_some());
        // -0.0 and 0.0 are one value.
        assert_eq!(numeric_value_counts(&[-0.0, 0.0], &[0.0]), (vec![0.0], vec![2], vec![1]));
    }
}
