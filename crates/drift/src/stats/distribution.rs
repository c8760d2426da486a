//! Numeric distributions as the drift tests read them from profiles: the exact sorted values, or
//! a KLL sketch. KS, the Wasserstein distance and histograms are computed from the two CDFs; on
//! exact values they equal the sample formulas, on a sketch they are within its rank error.

use crate::profile::NumericProfile;
use crate::profile::numeric::TAIL_VALUES;
use crate::profile::sketches::KllView;

/// One sample's distribution.
#[derive(Debug)]
pub enum Distribution {
    /// Sorted finite values.
    Exact(Vec<f64>),
    /// A sketch of `n` values from `min` to `max`, with the smallest (`low`) and largest (`high`)
    /// values kept exactly, ascending.
    Sketch { view: KllView, n: u64, min: f64, max: f64, low: Vec<f64>, high: Vec<f64> },
}

impl Distribution {
    /// The profile's exact values when it holds them, otherwise its sketch.
    pub fn of(profile: &NumericProfile) -> Distribution {
        match profile.sorted_values() {
            Some(values) => Distribution::Exact(values),
            None => Distribution::Sketch {
                view: profile.sketch.view(),
                n: profile.count,
                min: profile.min.unwrap_or(f64::NAN),
                max: profile.max.unwrap_or(f64::NAN),
                low: profile.low.clone(),
                high: profile.high.clone(),
            },
        }
    }

    pub fn n(&self) -> u64 {
        match self {
            Distribution::Exact(v) => v.len() as u64,
            Distribution::Sketch { n, .. } => *n,
        }
    }

    pub fn is_exact(&self) -> bool {
        matches!(self, Distribution::Exact(_))
    }

    pub fn min(&self) -> f64 {
        match self {
            Distribution::Exact(v) => v.first().copied().unwrap_or(f64::NAN),
            Distribution::Sketch { min, .. } => *min,
        }
    }

    pub fn max(&self) -> f64 {
        match self {
            Distribution::Exact(v) => v.last().copied().unwrap_or(f64::NAN),
            Distribution::Sketch { max, .. } => *max,
        }
    }

    /// The share of values at most `x` (`inclusive`) or below `x`.
    pub fn cdf(&self, x: f64, inclusive: bool) -> f64 {
        match self {
            Distribution::Exact(v) if v.is_empty() => 0.0,
            Distribution::Exact(v) => {
                let below = if inclusive { v.partition_point(|&y| y <= x) } else { v.partition_point(|&y| y < x) };
                below as f64 / v.len() as f64
            }
            Distribution::Sketch { view, n, low, high, .. } => {
                let n = *n as f64;
                // Every value at most x (below x) is among the smallest kept when x is below
                // (at most) the largest of them; likewise above, with the largest kept.
                let full_low = low.len() >= TAIL_VALUES;
                if low.last().is_some_and(|&last| full_low && (x < last || (!inclusive && x == last))) {
                    let below =
                        if inclusive { low.partition_point(|&y| y <= x) } else { low.partition_point(|&y| y < x) };
                    return below as f64 / n;
                }
                let full_high = high.len() >= TAIL_VALUES;
                if high.first().is_some_and(|&first| full_high && (x > first || (inclusive && x == first))) {
                    let above = if inclusive {
                        high.len() - high.partition_point(|&y| y <= x)
                    } else {
                        high.len() - high.partition_point(|&y| y < x)
                    };
                    return 1.0 - above as f64 / n;
                }
                view.rank(x, inclusive)
            }
        }
    }

    /// The points where the CDF steps, sorted, without repeats.
    fn points(&self) -> Vec<f64> {
        match self {
            Distribution::Exact(v) => {
                let mut p = v.clone();
                p.dedup();
                p
            }
            Distribution::Sketch { view, min, max, low, high, .. } => {
                let mut p = view.points();
                p.push(*min);
                p.push(*max);
                p.extend_from_slice(low);
                p.extend_from_slice(high);
                p.retain(|x| x.is_finite());
                p.sort_by(f64::total_cmp);
                p.dedup();
                p
            }
        }
    }
}

/// The points of both CDFs, sorted, without repeats.
fn union_points(reference: &Distribution, current: &Distribution) -> Vec<f64> {
    let mut points = reference.points();
    points.extend(current.points());
    points.sort_by(f64::total_cmp);
    points.dedup();
    points
}

/// The KS statistic `max |F_R(x) − F_C(x)|` over the points of both CDFs.
pub fn ks_statistic(reference: &Distribution, current: &Distribution) -> f64 {
    super::ks::ks_statistic_from_cdfs(
        union_points(reference, current),
        |x| reference.cdf(x, true),
        |x| current.cdf(x, true),
    )
}

/// The first Wasserstein distance `∫ |F_R(x) − F_C(x)| dx`, integrating the two step CDFs over
/// the points of both. NaN when a distribution is empty.
pub fn wasserstein(reference: &Distribution, current: &Distribution) -> f64 {
    if reference.n() == 0 || current.n() == 0 {
        return f64::NAN;
    }
    let points = union_points(reference, current);
    points.windows(2).map(|w| (reference.cdf(w[0], true) - current.cdf(w[0], true)).abs() * (w[1] - w[0])).sum()
}

/// Counts in numpy's histogram bins `[edges[i], edges[i+1])`, the last closed: exact on exact
/// values, the sketch's CDF differences scaled to its count (rounded) otherwise.
pub fn histogram(distribution: &Distribution, edges: &[f64]) -> Vec<u64> {
    match distribution {
        Distribution::Exact(v) => super::binning::histogram(v, edges),
        Distribution::Sketch { n, .. } => {
            let bins = edges.len().saturating_sub(1);
            (0..bins)
                .map(|i| {
                    let lo = distribution.cdf(edges[i], false);
                    let hi = distribution.cdf(edges[i + 1], i + 1 == bins);
                    ((hi - lo).max(0.0) * *n as f64).round() as u64
                })
                .collect()
        }
    }
}
