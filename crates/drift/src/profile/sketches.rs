//! The Apache DataSketches a profile carries, stored in DataSketches' compact binary format
//! (base64 in the profile's JSON), so that other DataSketches libraries can read them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use datasketches::common::SearchCriteria;
use datasketches::frequencies::{ErrorType, FrequentItemsSketch};
use datasketches::hll::{HllSketch, HllType, HllUnion};
use datasketches::kll::{KllFloat, SortedView};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::kll::KllCore;

/// The KLL parameter `k` of numeric columns: a normalised rank error of about 0.3 % at 99 %
/// confidence (DataSketches' default of 200 gives 1.3 %, too coarse for the binned distances on
/// large samples), in some tens of KB per column.
pub const KLL_K: u16 = 1000;

/// The map size of the frequent-items sketch of categorical columns beyond
/// [`CATEGORY_LIMIT`](super::categorical::CATEGORY_LIMIT) distinct values. Counts are exact
/// below 3/4 of it distinct values; beyond, each count is within `3.5/4096` of the total.
pub const FREQUENT_MAP_SIZE: usize = 4096;

/// A KLL quantile sketch of a numeric column's non-missing values: DataSketches' sketch,
/// updated in place by [`KllCore`] and queried and merged by DataSketches.
#[derive(Debug, Clone, PartialEq)]
pub struct Kll(KllCore);

impl Default for Kll {
    fn default() -> Self {
        Kll(KllCore::new(KLL_K))
    }
}

impl Kll {
    /// Adds a value; NaN is not a value and is ignored.
    #[inline]
    pub fn update(&mut self, value: f64) {
        self.0.update(value);
    }

    pub fn merge(&mut self, other: &Kll) -> Result<(), String> {
        self.0.merge(&other.0)
    }

    pub fn n(&self) -> u64 {
        self.0.n()
    }

    /// Whether the sketch has compacted, that is, whether its answers are approximate.
    pub fn is_estimation_mode(&self) -> bool {
        self.0.is_estimation_mode()
    }

    /// The sketch's `k`.
    pub fn k(&self) -> u16 {
        self.0.k()
    }

    /// The retained items level by level, lowest first, each level ascending; none when empty.
    pub fn levels(&self) -> Vec<Vec<f64>> {
        self.0.sorted_levels()
    }

    /// DataSketches' normalised rank error of this sketch (single-sided, 99 % confidence).
    pub fn rank_error(&self) -> f64 {
        self.0.to_sketch().normalized_rank_error()
    }

    /// A sorted view for repeated rank and quantile queries.
    pub fn view(&self) -> KllView {
        let sketch = self.0.to_sketch();
        KllView { view: sketch.sorted_view(), retained: sketch.num_retained() }
    }
}

/// A sorted snapshot of a [`Kll`] sketch.
#[derive(Debug)]
pub struct KllView {
    view: SortedView<KllFloat<f64>>,
    retained: usize,
}

impl KllView {
    /// The share of values at most `x` (`inclusive`) or below `x`.
    pub fn rank(&self, x: f64, inclusive: bool) -> f64 {
        let criteria = if inclusive { SearchCriteria::Inclusive } else { SearchCriteria::Exclusive };
        match KllFloat::<f64>::new(x) {
            Ok(x) => self.view.rank(&x, criteria).unwrap_or(0.0),
            Err(_) => 0.0,
        }
    }

    /// The smallest value whose inclusive rank is at least `t`, for `t` in `[0, 1]`.
    pub fn quantile(&self, t: f64) -> f64 {
        match self.view.quantile(t.clamp(0.0, 1.0), SearchCriteria::Inclusive) {
            Ok(Some(q)) => q.into_inner(),
            _ => f64::NAN,
        }
    }

    /// The values the sketch retains, recovered as quantiles on a grid twice as fine as their
    /// number, sorted and without repeats: the points where the sketch's CDF steps.
    pub fn points(&self) -> Vec<f64> {
        let grid = 2 * self.retained.max(1);
        let ranks: Vec<f64> = (0..=grid).map(|i| i as f64 / grid as f64).collect();
        let mut points: Vec<f64> = match self.view.quantiles(&ranks, SearchCriteria::Inclusive) {
            Ok(Some(q)) => q.into_iter().map(KllFloat::into_inner).collect(),
            _ => Vec::new(),
        };
        points.dedup();
        points
    }
}

/// A sketch's binary form as a base64 string.
fn write_base64<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&STANDARD.encode(bytes))
}

/// A sketch read from a base64 string with `decode`; errors name `what`.
fn read_base64<'de, D: Deserializer<'de>, T, E: std::fmt::Display>(
    deserializer: D,
    what: &str,
    decode: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<T, D::Error> {
    let text = String::deserialize(deserializer)?;
    let bytes = STANDARD.decode(text).map_err(|e| serde::de::Error::custom(format!("{what}: {e}")))?;
    decode(&bytes).map_err(|e| serde::de::Error::custom(format!("{what}: {e}")))
}

impl Serialize for Kll {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        write_base64(&self.0.image(), serializer)
    }
}

impl<'de> Deserialize<'de> for Kll {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_base64(deserializer, "KLL sketch", KllCore::from_image).map(Kll)
    }
}

/// A frequent-items sketch of a categorical column's labels.
#[derive(Debug, Clone)]
pub struct Frequent(FrequentItemsSketch<String>);

impl Frequent {
    /// A sketch holding the given exact counts.
    pub fn from_counts<'a>(counts: impl IntoIterator<Item = (&'a String, &'a u64)>) -> Frequent {
        let mut sketch = FrequentItemsSketch::new(FREQUENT_MAP_SIZE)
            .expect("FREQUENT_MAP_SIZE is a power of two within DataSketches' bounds");
        for (label, &count) in counts {
            sketch.update_with_count_ref(label.as_str(), count);
        }
        Frequent(sketch)
    }

    #[inline]
    pub fn update(&mut self, label: &str) {
        self.0.update_ref(label);
    }

    pub fn merge(&mut self, other: &Frequent) {
        self.0.merge(&other.0);
    }

    /// The total count.
    pub fn total(&self) -> u64 {
        self.0.total_weight()
    }

    /// The largest error of any estimate.
    pub fn maximum_error(&self) -> u64 {
        self.0.maximum_error()
    }

    /// The labels the sketch tracks, each with its estimated count, in label order.
    pub fn estimates(&self) -> Vec<(String, u64)> {
        let mut rows: Vec<(String, u64)> = self
            .0
            .frequent_items_with_threshold(ErrorType::NoFalseNegatives, 0)
            .into_iter()
            .map(|row| (row.item().clone(), row.estimate()))
            .collect();
        rows.sort();
        rows
    }
}

impl PartialEq for Frequent {
    fn eq(&self, other: &Self) -> bool {
        self.total() == other.total() && self.estimates() == other.estimates()
    }
}

impl Serialize for Frequent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        write_base64(&self.0.serialize(), serializer)
    }
}

impl<'de> Deserialize<'de> for Frequent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_base64(deserializer, "frequent items", FrequentItemsSketch::deserialize).map(Frequent)
    }
}

/// The `lg_k` of the HyperLogLog sketches: 4,096 registers, a relative standard error of about
/// 1.6 %, at most 4 KB per column (a few bytes while a column has few distinct values).
pub const HLL_LG_K: u8 = 12;

/// A HyperLogLog sketch of a column's distinct values: its cardinality estimate, mergeable.
#[derive(Clone, PartialEq)]
pub struct Hll(HllSketch);

impl std::fmt::Debug for Hll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hll(~{:.0})", self.estimate())
    }
}

impl Default for Hll {
    fn default() -> Self {
        Hll(HllSketch::new(HLL_LG_K, HllType::Hll8).expect("HLL_LG_K is within DataSketches' bounds, 4 to 21"))
    }
}

impl Hll {
    /// Adds a text value.
    #[inline]
    pub fn update_text(&mut self, value: &str) {
        self.0.update(value);
    }

    /// Adds a number, by its bits (one zero: callers pass 0.0 for -0.0).
    #[inline]
    pub fn update_number(&mut self, value: f64) {
        self.0.update(value.to_bits());
    }

    pub fn merge(&mut self, other: &Hll) {
        let mut union = HllUnion::new(HLL_LG_K).expect("HLL_LG_K is within DataSketches' bounds");
        union.update(&self.0);
        union.update(&other.0);
        self.0 = union.to_sketch(HllType::Hll8);
    }

    /// The estimated number of distinct values. It is the composite estimate, which depends on
    /// the registers alone, so that a sketch merged from parts estimates what one sketch of
    /// all the values estimates.
    pub fn estimate(&self) -> f64 {
        self.0.composite_estimate()
    }
}

impl Serialize for Hll {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        write_base64(&self.0.serialize(), serializer)
    }
}

impl<'de> Deserialize<'de> for Hll {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_base64(deserializer, "HLL sketch", HllSketch::deserialize).map(Hll)
    }
}
