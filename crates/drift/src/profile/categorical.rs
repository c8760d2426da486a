//! The profile of a categorical column: exact counts per label up to a bound on distinct
//! labels, then a frequent-items sketch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::sketches::Frequent;

/// Labels are counted exactly up to this many distinct ones; beyond, a frequent-items sketch
/// holds them, so a column of identifiers cannot make a profile grow with the data.
pub const CATEGORY_LIMIT: usize = 1000;

/// The label under which a frequent-items sketch's untracked labels are counted.
pub const OTHER_LABELS: &str = "(other labels)";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CategoricalProfile {
    /// Non-null values.
    pub count: u64,
    pub nulls: u64,
    /// Exact counts per label while there are at most [`CATEGORY_LIMIT`] labels (empty beyond).
    pub counts: BTreeMap<String, u64>,
    /// The labels beyond [`CATEGORY_LIMIT`]: a frequent-items sketch of all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequent: Option<Frequent>,
}

impl CategoricalProfile {
    #[inline]
    pub fn add(&mut self, label: &str) {
        self.count += 1;
        if let Some(sketch) = &mut self.frequent {
            sketch.update(label);
            return;
        }
        match self.counts.get_mut(label) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(label.to_string(), 1);
                if self.counts.len() > CATEGORY_LIMIT {
                    self.spill();
                }
            }
        }
    }

    /// Moves the exact counts into a frequent-items sketch.
    fn spill(&mut self) {
        let sketch = Frequent::from_counts(&self.counts);
        self.counts.clear();
        self.frequent = Some(sketch);
    }

    /// Whether the counts are exact.
    pub fn is_exact(&self) -> bool {
        self.frequent.is_none()
    }

    /// Counts per label: exact, or the sketch's estimates for the labels it tracks.
    pub fn label_counts(&self) -> BTreeMap<String, u64> {
        match &self.frequent {
            None => self.counts.clone(),
            Some(sketch) => sketch.estimates().into_iter().collect(),
        }
    }

    /// [`label_counts`](Self::label_counts), plus [`OTHER_LABELS`] for the values of labels a
    /// sketch does not track, so that the counts add up to `count`.
    pub fn counts_with_other(&self) -> BTreeMap<String, u64> {
        let mut counts = self.label_counts();
        let tracked: u64 = counts.values().sum();
        if self.count > tracked {
            *counts.entry(OTHER_LABELS.to_string()).or_insert(0) += self.count - tracked;
        }
        counts
    }

    pub fn merge(&mut self, other: &CategoricalProfile) {
        self.count += other.count;
        self.nulls += other.nulls;
        if self.frequent.is_none() && other.frequent.is_none() {
            for (k, v) in &other.counts {
                *self.counts.entry(k.clone()).or_insert(0) += v;
            }
            if self.counts.len() > CATEGORY_LIMIT {
                self.spill();
            }
            return;
        }
        if self.frequent.is_none() {
            self.spill();
        }
        let theirs = match &other.frequent {
            Some(sketch) => sketch.clone(),
            None => Frequent::from_counts(&other.counts),
        };
        if let Some(sketch) = &mut self.frequent {
            sketch.merge(&theirs);
        }
    }
}
