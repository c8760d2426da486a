//! The profile of a string or timestamp column: counts, nulls, distinct values (HLL), value
//! lengths, and for timestamps the earliest and latest time, so that a batch's freshness is
//! known. These columns are not tested for drift; their profile is what a report shows of
//! them.

use serde::{Deserialize, Serialize};

use super::sketches::Hll;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextProfile {
    /// Non-null values.
    pub count: u64,
    pub nulls: u64,
    /// A HyperLogLog sketch of the distinct values.
    pub distinct: Hll,
    /// The shortest and longest value, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// The sum of the lengths, in characters (their mean is this over `count`).
    pub total_length: u64,
    /// For a timestamp column, the earliest and latest time, in microseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_us: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_us: Option<i64>,
}

fn pick<T: Copy>(a: Option<T>, b: Option<T>, f: fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

impl TextProfile {
    /// Adds a value; `time` is its instant for a timestamp column.
    #[inline]
    pub fn add(&mut self, value: &str, time: Option<i64>) {
        self.count += 1;
        self.distinct.update_text(value);
        let length = value.chars().count() as u64;
        self.total_length += length;
        self.min_length = pick(self.min_length, Some(length), u64::min);
        self.max_length = pick(self.max_length, Some(length), u64::max);
        self.earliest_us = pick(self.earliest_us, time, i64::min);
        self.latest_us = pick(self.latest_us, time, i64::max);
    }

    pub fn merge(&mut self, other: &TextProfile) {
        self.count += other.count;
        self.nulls += other.nulls;
        self.distinct.merge(&other.distinct);
        self.total_length += other.total_length;
        self.min_length = pick(self.min_length, other.min_length, u64::min);
        self.max_length = pick(self.max_length, other.max_length, u64::max);
        self.earliest_us = pick(self.earliest_us, other.earliest_us, i64::min);
        self.latest_us = pick(self.latest_us, other.latest_us, i64::max);
    }

    /// The mean length in characters, when there are values.
    pub fn mean_length(&self) -> Option<f64> {
        (self.count > 0).then(|| self.total_length as f64 / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_merge_into_the_whole() {
        let values: Vec<String> = (0..3000).map(|i| format!("id-{}", i % 2500)).collect();
        let mut whole = TextProfile::default();
        let (mut a, mut b) = (TextProfile::default(), TextProfile::default());
        for (i, v) in values.iter().enumerate() {
            whole.add(v, Some(i as i64));
            if i < 1700 { a.add(v, Some(i as i64)) } else { b.add(v, Some(i as i64)) }
        }
        a.merge(&b);
        assert_eq!((a.count, a.total_length, a.min_length, a.max_length), (3000, whole.total_length, Some(4), Some(7)));
        assert_eq!((a.earliest_us, a.latest_us), (Some(0), Some(2999)));
        let (merged, one) = (a.distinct.estimate(), whole.distinct.estimate());
        assert!((merged - 2500.0).abs() < 2500.0 * 0.05 && (one - 2500.0).abs() < 2500.0 * 0.05, "{merged} {one}");
    }
}
