//! What the drift report draws per feature: bin labels and the reference and current shares per
//! bin, from samples or from profiles.

use crate::profile::{CategoricalProfile, ColumnProfile, NumericProfile, Profile};
use crate::samples::{Column, Samples};
use crate::stats::binning::{
    align_counts, bin_categorical, bin_numeric, numeric_value_counts, shares, sturges_edges, value_counts,
};
use crate::stats::distribution::{self, Distribution};

/// Bins drawn per chart; the rest are summed as "other".
pub const MAX_BARS: usize = 20;

/// One feature's chart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chart {
    pub labels: Vec<String>,
    /// Share of the reference's values per bin.
    pub reference: Vec<f64>,
    /// Share of the current values per bin.
    pub current: Vec<f64>,
}

/// A chart per feature of two sets of samples: Evidently's bins.
pub fn from_samples(reference: &Samples, current: &Samples) -> Vec<Chart> {
    reference.columns.iter().zip(&current.columns).map(|((_, r), (_, c))| sample_chart(r, c)).collect()
}

fn sample_chart(reference: &Column, current: &Column) -> Chart {
    let (labels, binned) = match (reference, current) {
        (Column::Numeric { values: r, .. }, Column::Numeric { values: c, .. }) => {
            let clean = |v: &[f64]| {
                let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
                v.sort_by(f64::total_cmp);
                v
            };
            let (r, c) = (clean(r), clean(c));
            let binned = bin_numeric(&r, &c, false);
            let labels: Vec<String> = match &binned.edges {
                Some(edges) => range_labels(edges),
                None => numeric_value_counts(&r, &c).0.iter().map(|v| short(*v)).collect(),
            };
            (labels, binned)
        }
        (Column::Categorical(r), Column::Categorical(c)) => {
            let r: Vec<&str> = r.iter().flatten().map(String::as_str).collect();
            let c: Vec<&str> = c.iter().flatten().map(String::as_str).collect();
            let (keys, _, _) = align_counts(&value_counts(r.iter().copied()), &value_counts(c.iter().copied()));
            (keys.iter().map(|k| k.to_string()).collect(), bin_categorical(&r, &c))
        }
        _ => return Chart::default(),
    };
    capped(Chart { labels, reference: binned.reference_shares(), current: binned.current_shares() })
}

/// A chart per tested feature (`names`, in the report's order) of two profiles: numeric columns
/// on the baseline's histogram edges when both profiles have them, otherwise on Sturges bins
/// from the sketches; categorical columns per label.
pub fn from_profiles<'a>(
    names: impl IntoIterator<Item = &'a str>,
    reference: &Profile,
    current: &Profile,
) -> Vec<Chart> {
    names
        .into_iter()
        .map(|name| match (reference.columns.get(name), current.columns.get(name)) {
            (Some(ColumnProfile::Numeric(r)), Some(ColumnProfile::Numeric(c))) => numeric_chart(r, c),
            (Some(ColumnProfile::Categorical(r)), Some(ColumnProfile::Categorical(c))) => categorical_chart(r, c),
            _ => Chart::default(),
        })
        .collect()
}

fn numeric_chart(reference: &NumericProfile, current: &NumericProfile) -> Chart {
    let (r, c) = (&reference.histogram, &current.histogram);
    if !r.edges.is_empty() && r.edges == c.edges {
        let mut labels = vec![format!("≤ {}", short(r.edges[0]))];
        labels.extend(r.edges.windows(2).map(|w| format!("{}–{}", short(w[0]), short(w[1]))));
        labels.push(format!("> {}", short(r.edges[r.edges.len() - 1])));
        return Chart { labels, reference: shares(&r.counts), current: shares(&c.counts) };
    }
    let (r, c) = (Distribution::of(reference), Distribution::of(current));
    let edges = sturges_edges(r.min().min(c.min()), r.max().max(c.max()), r.n() + c.n(), false);
    let chart = Chart {
        labels: range_labels(&edges),
        reference: shares(&distribution::histogram(&r, &edges)),
        current: shares(&distribution::histogram(&c, &edges)),
    };
    capped(chart)
}

fn categorical_chart(reference: &CategoricalProfile, current: &CategoricalProfile) -> Chart {
    let (keys, rc, cc) = align_counts(&reference.counts_with_other(), &current.counts_with_other());
    capped(Chart { labels: keys, reference: shares(&rc), current: shares(&cc) })
}

fn range_labels(edges: &[f64]) -> Vec<String> {
    edges.windows(2).map(|w| format!("{}–{}", short(w[0]), short(w[1]))).collect()
}

/// The chart with at most [`MAX_BARS`] bins: the largest by combined share, in their order, and
/// the rest summed as "other".
fn capped(chart: Chart) -> Chart {
    let Chart { labels, reference: rs, current: cs } = chart;
    if labels.len() <= MAX_BARS {
        return Chart { labels, reference: rs, current: cs };
    }
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| (rs[b] + cs[b]).total_cmp(&(rs[a] + cs[a])));
    let mut keep: Vec<usize> = order[..MAX_BARS - 1].to_vec();
    keep.sort_unstable();
    let other = |s: &[f64]| s.iter().enumerate().filter(|(i, _)| !keep.contains(i)).map(|(_, v)| v).sum::<f64>();
    let mut l: Vec<String> = keep.iter().map(|&i| labels[i].clone()).collect();
    let mut r: Vec<f64> = keep.iter().map(|&i| rs[i]).collect();
    let mut c: Vec<f64> = keep.iter().map(|&i| cs[i]).collect();
    l.push("other".into());
    r.push(other(&rs));
    c.push(other(&cs));
    Chart { labels: l, reference: r, current: c }
}

/// A number short enough for an axis label.
pub fn short(x: f64) -> String {
    if x.abs() >= 1e4 || (x != 0.0 && x.abs() < 1e-2) { format!("{x:.2e}") } else { format!("{x:.3}") }
}
