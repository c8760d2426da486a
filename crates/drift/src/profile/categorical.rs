//! The profile of a categorical column: exact counts per label up to a bound on distinct
//! labels, then a frequent-items sketch.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::sketches::{Frequent, Hll};

/// Labels are counted exactly up to this many distinct ones; beyond, a frequent-items sketch
/// holds them, so a column of identifiers cannot make a profile grow with the data.
pub const CATEGORY_LIMIT: usize = 1000;

/// Labels longer than this many bytes are profiled by a stand-in (see [`profiled_label`]), so
/// that a profile's size is bounded per label as well as in labels.
pub const LABEL_BYTES: usize = 256;

/// Bytes of a long label kept at the head of its stand-in.
const LABEL_HEAD_BYTES: usize = 64;

/// The label a profile counts a value under: the value itself up to [`LABEL_BYTES`] bytes;
/// beyond, its first 64 bytes (cut at a character boundary), its length and the start of its
/// SHA-256 digest: `head…[262144 bytes, sha256 3f5c…]`. Distinct long labels stay distinct,
/// the stand-in is shorter than [`LABEL_BYTES`], and the same label gets the same stand-in
/// in every profile, so baselines and batches compare.
pub fn profiled_label(label: &str) -> Cow<'_, str> {
    if label.len() <= LABEL_BYTES {
        return Cow::Borrowed(label);
    }
    let mut end = LABEL_HEAD_BYTES;
    while !label.is_char_boundary(end) {
        end -= 1;
    }
    let digest = hex::encode(Sha256::digest(label.as_bytes()));
    Cow::Owned(format!("{}…[{} bytes, sha256 {}]", &label[..end], label.len(), &digest[..16]))
}

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
    /// A HyperLogLog sketch of the distinct labels (empty in profiles written before it).
    #[serde(default)]
    pub distinct: Hll,
}

impl CategoricalProfile {
    /// Counts one value, under its [`profiled_label`].
    #[inline]
    pub fn add(&mut self, label: &str) {
        let label = profiled_label(label);
        let label = label.as_ref();
        self.count += 1;
        if let Some(sketch) = &mut self.frequent {
            self.distinct.update_text(label);
            sketch.update(label);
            return;
        }
        match self.counts.get_mut(label) {
            Some(n) => *n += 1,
            None => {
                // An HLL sketch's state depends on the set of labels it was given, not on how
                // often each came: while the counts are exact, a label is added when first seen.
                self.distinct.update_text(label);
                self.counts.insert(label.to_string(), 1);
                if self.counts.len() > CATEGORY_LIMIT {
                    self.spill();
                }
            }
        }
    }

    /// Moves the exact counts into a frequent-items sketch.
    fn spill(&mut self) {
        // A profile written before it had an HLL sketch holds labels its sketch never saw.
        for label in self.counts.keys() {
            self.distinct.update_text(label);
        }
        let sketch = Frequent::from_counts(&self.counts);
        self.counts.clear();
        self.frequent = Some(sketch);
    }

    /// The number of distinct labels: exact while the counts are, else the HLL estimate.
    pub fn cardinality(&self) -> f64 {
        if self.is_exact() { self.counts.len() as f64 } else { self.distinct.estimate() }
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
        self.distinct.merge(&other.distinct);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_labels_are_profiled_by_a_bounded_stand_in() {
        assert_eq!(profiled_label("Adelie"), "Adelie");
        let exactly = "x".repeat(LABEL_BYTES);
        assert_eq!(profiled_label(&exactly), exactly.as_str());
        let (a, b) = (format!("{}a", "é".repeat(1 << 17)), format!("{}b", "é".repeat(1 << 17)));
        let (sa, sb) = (profiled_label(&a), profiled_label(&b));
        assert_ne!(sa, sb, "distinct labels stay distinct");
        assert!(sa.len() < LABEL_BYTES, "{sa}");
        assert!(sa.starts_with(&"é".repeat(32)) && sa.contains("[262145 bytes, sha256 "), "{sa}");
        assert_eq!(profiled_label(&sa), sa, "a stand-in is its own label");
        let mut p = CategoricalProfile::default();
        for _ in 0..3 {
            p.add(&a);
        }
        assert_eq!(p.counts.get(sa.as_ref()), Some(&3));
    }

    #[test]
    fn the_distinct_sketch_is_the_one_every_value_would_give() {
        // Labels are added to the HLL sketch when first seen; its image must be the one a
        // sketch given every value gets, below and beyond the exact-count limit.
        for labels in [7, CATEGORY_LIMIT + 500] {
            let mut p = CategoricalProfile::default();
            let mut every = Hll::default();
            for i in 0..(4 * labels) {
                let label = format!("l{}", (i * 7919) % labels);
                p.add(&label);
                every.update_text(&label);
            }
            assert_eq!(p.is_exact(), labels <= CATEGORY_LIMIT);
            assert_eq!(
                serde_json::to_string(&p.distinct).expect("a sketch serialises"),
                serde_json::to_string(&every).expect("a sketch serialises"),
                "{labels} labels"
            );
        }
    }
}
