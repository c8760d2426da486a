//! The profile of a numeric column: moments merged with Chan's formula, a histogram on the
//! baseline's edges, a KLL sketch, the smallest and largest values exactly, the exact values
//! while there are few, and counts per value while there are few distinct ones.

use serde::{Deserialize, Serialize, Serializer};

use super::sketches::{Hll, Kll};
use crate::error::{Error, Result};

/// A column keeps its exact values up to this many: the size up to which the field's defaults
/// test with KS or chi-square (a reference of at most 1000 rows), so those tests are exact.
pub const EXACT_VALUES: usize = 1000;

/// A column keeps its smallest and its largest values exactly, this many of each, so that its
/// distribution's tails, where a quantile sketch holds few items, are exact.
pub const TAIL_VALUES: usize = 128;

/// A column keeps counts per value up to this many distinct values: more than the 20 distinct
/// reference values up to which Evidently bins a numeric column per value, so that choice is
/// exact on any profile.
pub const DISTINCT_VALUES: usize = 32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericProfile {
    /// Non-null values.
    pub count: u64,
    pub nulls: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    pub histogram: Histogram,
    /// Every value, sorted, while there are at most [`EXACT_VALUES`].
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "sorted")]
    pub values: Option<Vec<f64>>,
    /// `(value, count)` in value order while there are at most [`DISTINCT_VALUES`] distinct values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_counts: Option<Vec<(f64, u64)>>,
    /// A KLL sketch of every value (absent from an empty profile written without one).
    #[serde(default)]
    pub sketch: Kll,
    /// The [`TAIL_VALUES`] smallest values, ascending.
    #[serde(default)]
    pub low: Vec<f64>,
    /// The [`TAIL_VALUES`] largest values, ascending.
    #[serde(default)]
    pub high: Vec<f64>,
    /// A HyperLogLog sketch of the distinct values (empty in profiles written before it).
    #[serde(default)]
    pub distinct: Hll,
}

/// Histograms with at most this many edges find a value's bin by counting, not searching.
const LINEAR_EDGES: usize = 32;

/// Counts of values in the bins cut by `edges`: bin `i` holds values in
/// `(edges[i-1], edges[i]]`, with open outer bins, so there is one more bin than edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

impl Histogram {
    pub fn new(edges: Vec<f64>) -> Histogram {
        let counts = vec![0; edges.len() + 1];
        Histogram { edges, counts }
    }

    /// Counts `v` in its bin: the number of edges below it, the bins' edges being ascending.
    #[inline]
    pub fn add(&mut self, v: f64) {
        // A baseline's few edges are counted in one branch-free pass, which the compiler
        // vectorises; a binary search over them waits on one load after another.
        let bin = if self.edges.len() <= LINEAR_EDGES {
            self.edges.iter().map(|e| usize::from(*e < v)).sum()
        } else {
            self.edges.partition_point(|e| *e < v)
        };
        self.counts[bin] += 1;
    }
}

fn sorted<S: Serializer>(values: &Option<Vec<f64>>, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    let mut values = values.clone().unwrap_or_default();
    values.sort_by(f64::total_cmp);
    values.serialize(serializer)
}

impl NumericProfile {
    pub fn new(edges: Vec<f64>) -> NumericProfile {
        NumericProfile {
            count: 0,
            nulls: 0,
            min: None,
            max: None,
            mean: 0.0,
            m2: 0.0,
            histogram: Histogram::new(edges),
            values: Some(Vec::new()),
            value_counts: Some(Vec::new()),
            sketch: Kll::default(),
            low: Vec::new(),
            high: Vec::new(),
            distinct: Hll::default(),
        }
    }

    /// Adds a finite value.
    #[inline]
    pub fn add(&mut self, v: f64) {
        // One zero: -0.0 and 0.0 are the same value.
        let v = if v == 0.0 { 0.0 } else { v };
        self.count += 1;
        let delta = v - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (v - self.mean);
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
        self.histogram.add(v);
        self.sketch.update(v);
        self.distinct.update_number(v);
        if self.low.len() < TAIL_VALUES || v < self.low[TAIL_VALUES - 1] {
            let at = self.low.partition_point(|&x| x <= v);
            self.low.insert(at, v);
            self.low.truncate(TAIL_VALUES);
        }
        if self.high.len() < TAIL_VALUES || v > self.high[0] {
            let at = self.high.partition_point(|&x| x < v);
            self.high.insert(at, v);
            if self.high.len() > TAIL_VALUES {
                self.high.remove(0);
            }
        }
        if let Some(values) = &mut self.values {
            if values.len() < EXACT_VALUES {
                values.push(v);
            } else {
                self.values = None;
            }
        }
        if let Some(counts) = &mut self.value_counts {
            match counts.binary_search_by(|(x, _)| x.total_cmp(&v)) {
                Ok(i) => counts[i].1 += 1,
                Err(i) if counts.len() < DISTINCT_VALUES => counts.insert(i, (v, 1)),
                Err(_) => self.value_counts = None,
            }
        }
    }

    /// Sample variance (n − 1 denominator); `None` below two values.
    /// The number of distinct values: exact while the profile holds every value or counts per
    /// value, else the HLL estimate.
    pub fn cardinality(&self) -> f64 {
        if let Some(counts) = &self.value_counts {
            return counts.len() as f64;
        }
        if let Some(values) = &self.values {
            let mut v = values.clone();
            v.sort_by(f64::total_cmp);
            v.dedup();
            return v.len() as f64;
        }
        self.distinct.estimate()
    }

    pub fn variance(&self) -> Option<f64> {
        (self.count > 1).then(|| self.m2 / (self.count - 1) as f64)
    }

    /// Population standard deviation (n denominator), as Evidently normalises the Wasserstein
    /// distance; NaN when there is no value.
    pub fn population_std(&self) -> f64 {
        if self.count == 0 { f64::NAN } else { (self.m2 / self.count as f64).sqrt() }
    }

    /// The exact values, sorted, when the profile still holds them.
    pub fn sorted_values(&self) -> Option<Vec<f64>> {
        let mut values = self.values.clone()?;
        values.sort_by(f64::total_cmp);
        Some(values)
    }

    pub fn merge(&mut self, other: &NumericProfile, column: &str) -> Result<()> {
        if self.histogram.edges != other.histogram.edges {
            return Err(Error::Profile(format!(
                "column {column:?}: profiles use different histogram edges and cannot be merged"
            )));
        }
        let (n1, n2) = (self.count as f64, other.count as f64);
        if other.count > 0 {
            let n = n1 + n2;
            let delta = other.mean - self.mean;
            self.mean += delta * n2 / n;
            self.m2 += other.m2 + delta * delta * n1 * n2 / n;
        }
        self.count += other.count;
        self.nulls += other.nulls;
        self.min = pick(self.min, other.min, f64::min);
        self.max = pick(self.max, other.max, f64::max);
        for (a, b) in self.histogram.counts.iter_mut().zip(&other.histogram.counts) {
            *a += b;
        }
        self.sketch.merge(&other.sketch).map_err(|e| Error::Profile(format!("column {column:?}: {e}")))?;
        self.distinct.merge(&other.distinct);
        self.values = match (self.values.take(), &other.values) {
            (Some(mut a), Some(b)) if a.len() + b.len() <= EXACT_VALUES => {
                a.extend_from_slice(b);
                Some(a)
            }
            _ => None,
        };
        let mut low: Vec<f64> = self.low.iter().chain(&other.low).copied().collect();
        low.sort_by(f64::total_cmp);
        low.truncate(TAIL_VALUES);
        self.low = low;
        let mut high: Vec<f64> = self.high.iter().chain(&other.high).copied().collect();
        high.sort_by(f64::total_cmp);
        self.high = high.split_off(high.len().saturating_sub(TAIL_VALUES));
        self.value_counts = match (self.value_counts.take(), &other.value_counts) {
            (Some(a), Some(b)) => merge_counts(&a, b),
            _ => None,
        };
        Ok(())
    }
}

/// Two sorted `(value, count)` lists aligned on the union of their values, in value order:
/// `(value, count in a, count in b)`.
pub fn align_value_counts(a: &[(f64, u64)], b: &[(f64, u64)]) -> Vec<(f64, u64, u64)> {
    let mut aligned = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    loop {
        let next = match (a.get(i), b.get(j)) {
            (Some(&(x, n)), Some(&(y, m))) if x == y => {
                (i, j) = (i + 1, j + 1);
                (x, n, m)
            }
            (Some(&(x, n)), Some(&(y, _))) if x < y => {
                i += 1;
                (x, n, 0)
            }
            (Some(&(x, n)), None) => {
                i += 1;
                (x, n, 0)
            }
            (_, Some(&(y, m))) => {
                j += 1;
                (y, 0, m)
            }
            (None, None) => return aligned,
        };
        aligned.push(next);
    }
}

/// Two sorted `(value, count)` lists merged, or `None` beyond [`DISTINCT_VALUES`].
fn merge_counts(a: &[(f64, u64)], b: &[(f64, u64)]) -> Option<Vec<(f64, u64)>> {
    let merged: Vec<(f64, u64)> = align_value_counts(a, b).into_iter().map(|(x, n, m)| (x, n + m)).collect();
    (merged.len() <= DISTINCT_VALUES).then_some(merged)
}

fn pick(a: Option<f64>, b: Option<f64>, choose: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(choose(a, b)),
        (a, b) => a.or(b),
    }
}
