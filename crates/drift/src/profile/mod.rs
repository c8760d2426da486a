//! Mergeable statistics of a batch of rows.
//!
//! A profile holds, per numeric column, count, nulls, min, max, mean and the sum of squared
//! deviations (merged with Chan's formula), a histogram on bin edges fixed by the baseline, a
//! KLL quantile sketch, and the exact values and per-value counts while they are few
//! ([`numeric`]); per categorical column, counts per label, beyond a bound a frequent-items
//! sketch ([`categorical`]). The sketches are Apache DataSketches ([`sketches`]). Profiles of
//! batches that share the baseline's edges merge in any order: the moments and counts exactly,
//! the sketches within their error bounds.

pub mod categorical;
mod kll;
pub mod numeric;
pub mod sketches;
pub mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use mlops_contract::validate::Value;
use mlops_contract::{Column, ColumnType, Contract};

pub use categorical::{CategoricalProfile, LABEL_BYTES, profiled_label};
pub use numeric::{Histogram, NumericProfile};
pub use text::TextProfile;

/// Number of equal-frequency bins a baseline cuts each numeric column into.
pub const BASELINE_BINS: usize = 10;

/// Statistics of a set of rows, per profiled column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub dataset: String,
    /// The id of the baseline whose bin edges this profile's histograms use ([`Profile::edges_id`]
    /// of that baseline). Profiles cut on different baselines never meet in one merge:
    /// [`Profile::rebinned`] moves one onto another baseline first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_id: Option<String>,
    /// Rows observed (valid rows only).
    pub rows: u64,
    pub columns: BTreeMap<String, ColumnProfile>,
    /// The string and timestamp columns, which are not tested for drift: counts, distinct
    /// values, lengths, and the earliest and latest time (absent from older profiles).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub text: BTreeMap<String, TextProfile>,
}

/// The statistics of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnProfile {
    Numeric(NumericProfile),
    Categorical(CategoricalProfile),
}

/// Whether a column is profiled, and how.
fn profiled_as_numeric(column: &Column) -> Option<bool> {
    match column.kind {
        ColumnType::Float | ColumnType::Int => Some(true),
        ColumnType::Category | ColumnType::Bool => Some(false),
        // Free text and timestamps are not tested for drift, so not profiled.
        ColumnType::String | ColumnType::Timestamp => None,
    }
}

impl Profile {
    /// An empty profile of the contract's columns, with numeric bins cut at `baseline`'s edges.
    pub fn empty_like(contract: &Contract, baseline: &Profile) -> Profile {
        let edges = |name: &str| match baseline.columns.get(name) {
            Some(ColumnProfile::Numeric(n)) => n.histogram.edges.clone(),
            _ => Vec::new(),
        };
        let mut profile = Profile::with_edges(contract, edges);
        profile.baseline_id = Some(baseline.edges_id());
        profile
    }

    /// The id of this profile's bin edges: a digest of every numeric column's name and edges.
    /// A baseline's id names it in the lake (`profiles/<dataset>/<id>/`) and in the manifest
    /// of every model version registered with it.
    pub fn edges_id(&self) -> String {
        let mut digest = Sha256::new();
        for (name, column) in &self.columns {
            if let ColumnProfile::Numeric(n) = column {
                digest.update(name.as_bytes());
                digest.update([0]);
                for e in &n.histogram.edges {
                    digest.update(e.to_bits().to_le_bytes());
                }
                digest.update([0xff]);
            }
        }
        format!("e{}", &hex::encode(digest.finalize())[..15])
    }

    /// The id of the baseline this profile was cut on: the one it records, or its own edges'.
    pub fn cut_on(&self) -> String {
        self.baseline_id.clone().unwrap_or_else(|| self.edges_id())
    }

    /// This profile with its histograms cut on `baseline`'s edges instead of its own. Counts
    /// come from the exact values while the profile holds them, otherwise from the KLL sketch
    /// (within its rank error); every other statistic is unchanged.
    pub fn rebinned(&self, baseline: &Profile) -> Profile {
        let mut out = self.clone();
        for (name, column) in out.columns.iter_mut() {
            let (ColumnProfile::Numeric(n), Some(ColumnProfile::Numeric(b))) = (column, baseline.columns.get(name))
            else {
                continue;
            };
            let edges = b.histogram.edges.clone();
            let distribution = crate::stats::distribution::Distribution::of(n);
            let total = n.count;
            let mut counts = Vec::with_capacity(edges.len() + 1);
            let mut below = 0u64;
            for &e in &edges {
                // Histogram bins hold values in (e[i-1], e[i]]: the values at most e[i] so far.
                let at_most = ((distribution.cdf(e, true) * total as f64).round() as u64).clamp(below, total);
                counts.push(at_most - below);
                below = at_most;
            }
            counts.push(total - below);
            n.histogram = Histogram { edges, counts };
        }
        out.baseline_id = Some(baseline.edges_id());
        out
    }

    fn with_edges(contract: &Contract, edges: impl Fn(&str) -> Vec<f64>) -> Profile {
        let columns = contract
            .columns
            .iter()
            .filter_map(|c| {
                let profile = match profiled_as_numeric(c)? {
                    true => ColumnProfile::Numeric(NumericProfile::new(edges(&c.name))),
                    false => ColumnProfile::Categorical(CategoricalProfile::default()),
                };
                Some((c.name.clone(), profile))
            })
            .collect();
        let text = contract
            .columns
            .iter()
            .filter(|c| profiled_as_numeric(c).is_none())
            .map(|c| (c.name.clone(), TextProfile::default()))
            .collect();
        Profile { dataset: contract.dataset.clone(), baseline_id: None, rows: 0, columns, text }
    }

    /// Computes a baseline from training rows: bin edges are the deciles of each numeric
    /// column (linear interpolation, as numpy's default), then every row is observed.
    pub fn baseline(contract: &Contract, rows: &[Vec<Value>]) -> Profile {
        let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (i, column) in contract.columns.iter().enumerate() {
            if column.kind.is_numeric() {
                let v: Vec<f64> = rows.iter().filter_map(|r| r.get(i).and_then(Value::as_f64)).collect();
                values.insert(column.name.clone(), v);
            }
        }
        let mut profile = Profile::empty_with_deciles(contract, values);
        for row in rows {
            profile.observe(contract, row);
        }
        profile
    }

    /// An empty profile whose numeric bins are cut at the deciles of `values` (per column name),
    /// for a baseline whose rows are observed afterwards.
    pub fn empty_with_deciles(contract: &Contract, mut values: BTreeMap<String, Vec<f64>>) -> Profile {
        for v in values.values_mut() {
            v.sort_by(f64::total_cmp);
        }
        let mut profile =
            Profile::with_edges(contract, |name| values.get(name).map(|v| decile_edges(v)).unwrap_or_default());
        profile.baseline_id = Some(profile.edges_id());
        profile
    }

    /// Adds one valid row (values in contract column order).
    pub fn observe(&mut self, contract: &Contract, row: &[Value]) {
        self.rows += 1;
        for (column, value) in contract.columns.iter().zip(row) {
            if let Some(profile) = self.columns.get_mut(&column.name) {
                observe_value(profile, value);
            } else if let Some(profile) = self.text.get_mut(&column.name) {
                observe_text(profile, column.kind, value);
            }
        }
    }

    /// Merges `other` into `self`. Both must profile the same dataset on the same edges.
    pub fn merge(&mut self, other: &Profile) -> Result<()> {
        if self.dataset != other.dataset {
            return Err(Error::Profile(format!(
                "cannot merge a profile of {:?} into one of {:?}",
                other.dataset, self.dataset
            )));
        }
        let (ours, theirs) = (self.cut_on(), other.cut_on());
        if ours != theirs {
            return Err(Error::Profile(format!(
                "cannot merge a profile cut on baseline {theirs} into one cut on baseline {ours}; re-bin it first"
            )));
        }
        self.rows += other.rows;
        for (name, theirs) in &other.columns {
            match (self.columns.get_mut(name), theirs) {
                (None, _) => {
                    self.columns.insert(name.clone(), theirs.clone());
                }
                (Some(ColumnProfile::Numeric(a)), ColumnProfile::Numeric(b)) => a.merge(b, name)?,
                (Some(ColumnProfile::Categorical(a)), ColumnProfile::Categorical(b)) => a.merge(b),
                _ => {
                    return Err(Error::Profile(format!(
                        "column {name:?} is numeric in one profile and categorical in the other"
                    )));
                }
            }
        }
        for (name, theirs) in &other.text {
            self.text.entry(name.clone()).or_default().merge(theirs);
        }
        Ok(())
    }

    /// Merges `other`, first re-binning it onto `baseline` when it was cut on another baseline
    /// (`self` must be cut on `baseline`). Returns whether `other` was re-binned.
    pub fn merge_onto(&mut self, other: &Profile, baseline: &Profile) -> Result<bool> {
        if other.cut_on() == self.cut_on() {
            self.merge(other)?;
            Ok(false)
        } else {
            self.merge(&other.rebinned(baseline))?;
            Ok(true)
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Profiles hold only finite numbers and strings; serialisation cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Reads a profile, checking that each numeric column's sketch holds as many values as the
    /// column counts (a profile written without sketches is accepted only when it is empty).
    pub fn from_json(bytes: &[u8], what: &str) -> Result<Profile> {
        let profile: Profile = serde_json::from_slice(bytes).map_err(|e| Error::json(format!("profile {what}"), e))?;
        for (name, column) in &profile.columns {
            if let ColumnProfile::Numeric(n) = column
                && n.sketch.n() != n.count
            {
                return Err(Error::Profile(format!(
                    "profile {what}: column {name:?} counts {} values but its sketch holds {}; \
                     rebuild the profile with this version",
                    n.count,
                    n.sketch.n()
                )));
            }
        }
        Ok(profile)
    }
}

fn observe_text(profile: &mut TextProfile, kind: ColumnType, value: &Value) {
    match value {
        Value::Null => profile.nulls += 1,
        Value::Text(t) => {
            let time = (kind == ColumnType::Timestamp).then(|| mlops_contract::validate::timestamp_micros(t)).flatten();
            profile.add(t, time);
        }
        other => profile.add(&other.to_text(), None),
    }
}

fn observe_value(profile: &mut ColumnProfile, value: &Value) {
    match (profile, value) {
        (ColumnProfile::Numeric(p), Value::Null) => p.nulls += 1,
        (ColumnProfile::Numeric(p), v) => {
            if let Some(x) = v.as_f64() {
                p.add(x);
            }
        }
        (ColumnProfile::Categorical(p), Value::Null) => p.nulls += 1,
        (ColumnProfile::Categorical(p), Value::Text(t)) => p.add(t),
        (ColumnProfile::Categorical(p), v) => p.add(&v.to_text()),
    }
}

/// Observes many rows into a profile, with each column looked up once rather than per row.
#[derive(Debug)]
pub struct Profiler {
    profile: Profile,
    /// The profile's columns in contract order (`None` for columns not profiled).
    slots: Vec<Option<(String, ColumnProfile)>>,
    /// The string and timestamp columns in contract order, with their type.
    texts: Vec<Option<(String, TextProfile, ColumnType)>>,
}

impl Profiler {
    pub fn new(contract: &Contract, mut profile: Profile) -> Profiler {
        let slots =
            contract.columns.iter().map(|c| profile.columns.remove(&c.name).map(|p| (c.name.clone(), p))).collect();
        let texts = contract
            .columns
            .iter()
            .map(|c| profile.text.remove(&c.name).map(|p| (c.name.clone(), p, c.kind)))
            .collect();
        Profiler { profile, slots, texts }
    }

    /// Adds one valid row (values in contract column order).
    pub fn observe(&mut self, row: &[Value]) {
        self.profile.rows += 1;
        for ((slot, text), value) in self.slots.iter_mut().zip(self.texts.iter_mut()).zip(row) {
            if let Some((_, p)) = slot {
                observe_value(p, value);
            } else if let Some((_, p, kind)) = text {
                observe_text(p, *kind, value);
            }
        }
    }

    /// Merges a profile of rows observed elsewhere (on the same baseline's edges), as if its
    /// rows had been observed here now.
    pub fn merge(&mut self, other: &Profile) -> Result<()> {
        self.profile.rows += other.rows;
        for (name, ours) in self.slots.iter_mut().flatten() {
            match (ours, other.columns.get(name.as_str())) {
                (_, None) => {}
                (ColumnProfile::Numeric(a), Some(ColumnProfile::Numeric(b))) => a.merge(b, name)?,
                (ColumnProfile::Categorical(a), Some(ColumnProfile::Categorical(b))) => a.merge(b),
                _ => {
                    return Err(Error::Profile(format!(
                        "column {name:?} is numeric in one profile and categorical in the other"
                    )));
                }
            }
        }
        for (name, ours, _) in self.texts.iter_mut().flatten() {
            if let Some(theirs) = other.text.get(name.as_str()) {
                ours.merge(theirs);
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Profile {
        let mut profile = self.profile;
        profile.columns.extend(self.slots.into_iter().flatten());
        profile.text.extend(self.texts.into_iter().flatten().map(|(name, p, _)| (name, p)));
        profile
    }
}

/// Deciles of sorted values with linear interpolation, without repeats.
fn decile_edges(sorted: &[f64]) -> Vec<f64> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let mut edges: Vec<f64> =
        (1..BASELINE_BINS).map(|i| quantile_sorted(sorted, i as f64 / BASELINE_BINS as f64)).collect();
    edges.dedup();
    edges
}

fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        Contract::from_yaml(
            "dataset: d\ncolumns:\n  - {name: x, type: float, nullable: true}\n  - {name: k, type: category}\n",
            "t.yaml",
        )
        .expect("contract")
    }

    fn rows(xs: &[Option<f64>]) -> Vec<Vec<Value>> {
        xs.iter()
            .enumerate()
            .map(|(i, x)| vec![x.map_or(Value::Null, Value::Float), Value::Text(["a", "b"][i % 2].into())])
            .collect()
    }

    fn numeric(p: &Profile) -> &NumericProfile {
        match &p.columns["x"] {
            ColumnProfile::Numeric(n) => n,
            ColumnProfile::Categorical(_) => panic!("x is numeric"),
        }
    }

    #[test]
    fn baseline_statistics_match_direct_computation() {
        let xs: Vec<Option<f64>> = (1..=100).map(|i| Some(i as f64)).chain([None]).collect();
        let p = Profile::baseline(&contract(), &rows(&xs));
        let n = numeric(&p);
        assert_eq!((n.count, n.nulls, n.min, n.max), (100, 1, Some(1.0), Some(100.0)));
        assert!((n.mean - 50.5).abs() < 1e-12);
        // Variance of 1..=100 with n-1 denominator is 841.666…
        assert!((n.variance().expect("var") - 841.666_666_666_666_6).abs() < 1e-9);
        // numpy.quantile(range(1, 101), 0.1) == 10.9
        assert!((n.histogram.edges[0] - 10.9).abs() < 1e-12);
        assert_eq!(n.histogram.counts.iter().sum::<u64>(), 100);
        assert_eq!(n.histogram.counts, vec![10; 10]);
    }

    #[test]
    fn merging_in_any_order_equals_one_pass() {
        let c = contract();
        let all: Vec<Option<f64>> =
            (0..90).map(|i| if i % 17 == 0 { None } else { Some((i * 37 % 101) as f64 / 3.0) }).collect();
        let all = rows(&all);
        let base = Profile::baseline(&c, &all);
        let parts: Vec<Profile> = all
            .chunks(25)
            .map(|chunk| {
                let mut p = Profile::empty_like(&c, &base);
                for r in chunk {
                    p.observe(&c, r);
                }
                p
            })
            .collect();
        for order in [[0, 1, 2, 3], [3, 1, 0, 2], [2, 3, 1, 0]] {
            let mut merged = Profile::empty_like(&c, &base);
            for i in order {
                merged.merge(&parts[i]).expect("same edges");
            }
            let (m, b) = (numeric(&merged), numeric(&base));
            assert_eq!((m.count, m.nulls, m.min, m.max), (b.count, b.nulls, b.min, b.max));
            assert!((m.mean - b.mean).abs() < 1e-9);
            assert!((m.m2 - b.m2).abs() < 1e-6 * b.m2);
            assert_eq!(m.histogram, b.histogram);
            assert_eq!(merged.columns["k"], base.columns["k"]);
            assert_eq!(merged.rows, base.rows);
        }
    }

    #[test]
    fn reads_an_empty_profile_without_sketches_and_refuses_a_filled_one() {
        let empty = r#"{"dataset": "d", "rows": 0, "columns": {"x": {"kind": "numeric", "count": 0, "nulls": 0,
            "min": null, "max": null, "mean": 0.0, "m2": 0.0, "histogram": {"edges": [1.0], "counts": [0, 0]}}}}"#;
        let p = Profile::from_json(empty.as_bytes(), "empty").expect("an empty profile needs no sketch");
        assert_eq!(numeric(&p).histogram.edges, [1.0]);
        let filled = empty.replace(r#""count": 0"#, r#""count": 5"#);
        let e = Profile::from_json(filled.as_bytes(), "old.json").expect_err("no sketch for 5 values");
        assert!(e.to_string().contains("column \"x\" counts 5 values but its sketch holds 0"), "{e}");
    }

    #[test]
    fn refuses_to_merge_profiles_on_other_edges() {
        let c = contract();
        let a = Profile::baseline(&c, &rows(&[Some(1.0), Some(2.0), Some(3.0)]));
        let mut b = Profile::baseline(&c, &rows(&[Some(10.0), Some(20.0), Some(30.0)]));
        let e = b.merge(&a).expect_err("other edges");
        let (ida, idb) = (a.edges_id(), b.edges_id());
        assert_ne!(ida, idb);
        assert_eq!(
            e.to_string(),
            format!(
                "profile: cannot merge a profile cut on baseline {ida} into one cut on baseline {idb}; re-bin it first"
            )
        );
    }

    #[test]
    fn a_profile_cut_on_another_baseline_is_rebinned_before_it_merges() {
        let c = contract();
        let old = Profile::baseline(&c, &rows(&[Some(1.0), Some(2.0), Some(3.0), Some(4.0)]));
        let new = Profile::baseline(&c, &rows(&[Some(10.0), Some(20.0), Some(30.0), Some(40.0)]));
        let mut batch = Profile::empty_like(&c, &old);
        for x in [0.5, 2.0, 15.0, 25.0, 35.0, 99.0] {
            batch.observe(&c, &[Value::Float(x), Value::Text("a".into())]);
        }
        assert_eq!(batch.cut_on(), old.edges_id());
        let mut window = Profile::empty_like(&c, &new);
        assert!(window.merge_onto(&batch, &new).expect("re-binned"), "cut on the old baseline");
        assert_eq!(window.cut_on(), new.edges_id());
        let n = numeric(&window);
        assert_eq!(n.histogram.edges, numeric(&new).histogram.edges);
        // The exact values re-binned onto the new edges, bins (e[i-1], e[i]].
        let mut expected = Histogram::new(n.histogram.edges.clone());
        for x in [0.5, 2.0, 15.0, 25.0, 35.0, 99.0] {
            expected.add(x);
        }
        assert_eq!(n.histogram.counts, expected.counts);
        assert_eq!((n.count, n.min, n.max), (6, Some(0.5), Some(99.0)));
        // A profile already on the window's baseline merges as it is.
        let same = window.clone();
        assert!(!window.merge_onto(&same, &new).expect("same baseline"));
        assert_eq!(numeric(&window).count, 12);
    }
}
