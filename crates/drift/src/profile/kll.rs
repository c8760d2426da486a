//! The update side of a KLL sketch of `f64`, with DataSketches' algorithm and binary image.
//!
//! DataSketches 0.6 compacts a level by sorting it and merging every other item into the
//! level above at once, into a new vector, with a data-dependent branch per item; the low
//! levels hold a few dozen items at `k` = 1000, so every item is merged again and again on
//! its way up. A profile updates one sketch per numeric column for every row, so that is
//! where much of an ingest's time went. This core keeps the same levels, capacities,
//! leftover and parity rules and the same compact image, but a level above 0 holds the
//! ascending runs it was given until it compacts itself, and then sorts them together once.
//! Level 0 keeps its allocation. Queries and merges go through DataSketches itself:
//! [`KllCore::to_sketch`] reads the image back with DataSketches' own validating reader, so
//! the two cannot drift apart unnoticed.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use datasketches::kll::{KllFloat, KllSketch};

/// DataSketches' minimum level capacity `m`, the only one its reader accepts.
const M: u8 = 8;
/// DataSketches' family id of KLL sketches.
const FAMILY_KLL: u8 = 15;
const FLAG_EMPTY: u8 = 1;
const FLAG_LEVEL_ZERO_SORTED: u8 = 2;
const FLAG_SINGLE_ITEM: u8 = 4;
/// The deepest level count DataSketches' capacities are defined for.
const MAX_LEVELS: usize = 61;

const POWERS_OF_THREE: [u64; 31] = [
    1,
    3,
    9,
    27,
    81,
    243,
    729,
    2187,
    6561,
    19683,
    59049,
    177147,
    531441,
    1594323,
    4782969,
    14348907,
    43046721,
    129140163,
    387420489,
    1162261467,
    3486784401,
    10460353203,
    31381059609,
    94143178827,
    282429536481,
    847288609443,
    2541865828329,
    7625597484987,
    22876792454961,
    68630377364883,
    205891132094649,
];

/// `k · (2/3)^depth`, rounded, as DataSketches computes it.
fn capacity_at_shallow_depth(k: u16, depth: usize) -> u16 {
    let scaled = (u64::from(k) << (depth + 1)) / POWERS_OF_THREE[depth];
    ((scaled + 1) >> 1) as u16
}

fn capacity_at_depth(k: u16, depth: usize) -> u16 {
    if depth < POWERS_OF_THREE.len() {
        return capacity_at_shallow_depth(k, depth);
    }
    let first = depth / 2;
    capacity_at_shallow_depth(capacity_at_shallow_depth(k, first), depth - first)
}

/// The capacity of `level` in a sketch of `levels` levels.
fn level_capacity(k: u16, levels: usize, level: usize) -> usize {
    usize::from(capacity_at_depth(k, levels - level - 1).max(u16::from(M)))
}

fn total_capacity(k: u16, levels: usize) -> usize {
    (0..levels).map(|level| level_capacity(k, levels, level)).sum()
}

thread_local! {
    /// A SplitMix64 state per thread, seeded at random on first use, as DataSketches does.
    static RANDOM: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()));
}

fn random_bit() -> bool {
    RANDOM.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) & 1 == 1
    })
}

/// The order of non-NaN values (DataSketches' own: -0 and 0 are equal).
fn ascending(a: &f64, b: &f64) -> std::cmp::Ordering {
    a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
}

/// A KLL sketch of non-NaN `f64` values (see the module's documentation).
#[derive(Debug, Clone)]
pub struct KllCore {
    k: u16,
    min_k: u16,
    n: u64,
    /// Level 0 holds the newest items in arrival order unless `level_zero_sorted`; a higher
    /// level holds one ascending run per compaction of the level below since its own last
    /// compaction (the image sorts it).
    levels: Vec<Vec<f64>>,
    level_zero_sorted: bool,
    min: f64,
    max: f64,
    retained: usize,
    capacity: usize,
}

impl PartialEq for KllCore {
    /// Sketches are equal when their images are: the same levels, each in its image's order.
    fn eq(&self, other: &Self) -> bool {
        self.image() == other.image()
    }
}

impl KllCore {
    /// An empty sketch; `k` must be at least DataSketches' minimum of 8.
    pub fn new(k: u16) -> KllCore {
        let k = k.max(u16::from(M));
        KllCore {
            k,
            min_k: k,
            n: 0,
            levels: vec![Vec::with_capacity(usize::from(k))],
            level_zero_sorted: false,
            min: f64::NAN,
            max: f64::NAN,
            retained: 0,
            capacity: total_capacity(k, 1),
        }
    }

    pub fn n(&self) -> u64 {
        self.n
    }

    #[cfg(test)]
    fn retained(&self) -> usize {
        self.retained
    }

    /// Whether the sketch has compacted, that is, whether its answers are approximate.
    pub fn is_estimation_mode(&self) -> bool {
        self.levels.len() > 1
    }

    pub fn k(&self) -> u16 {
        self.k
    }

    /// The retained items level by level, lowest first, each level ascending; none when empty.
    pub fn sorted_levels(&self) -> Vec<Vec<f64>> {
        if self.n == 0 {
            return Vec::new();
        }
        self.levels
            .iter()
            .map(|level| {
                let mut level = level.clone();
                level.sort_unstable_by(ascending);
                level
            })
            .collect()
    }

    /// Adds a value; NaN is not a value and is ignored.
    #[inline]
    pub fn update(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        if self.n == 0 {
            (self.min, self.max) = (value, value);
        } else {
            if value < self.min {
                self.min = value;
            }
            if value > self.max {
                self.max = value;
            }
        }
        if self.retained >= self.capacity {
            self.compact();
        }
        self.n += 1;
        self.retained += 1;
        self.level_zero_sorted = false;
        self.levels[0].push(value);
    }

    /// DataSketches' `compress_while_updating`: halves the lowest level at its capacity into
    /// the one above.
    fn compact(&mut self) {
        let levels = self.levels.len();
        let Some(level) = (0..levels).find(|&l| self.levels[l].len() >= level_capacity(self.k, levels, l)) else {
            // Unreachable while `retained` counts the levels' items and `capacity` is their
            // total capacity; recount rather than compact nothing.
            self.refresh();
            return;
        };
        if level + 1 == levels {
            self.levels.push(Vec::new());
        }
        let use_up = self.levels[level + 1].is_empty();
        let offset = usize::from(random_bit());
        let mut current = std::mem::take(&mut self.levels[level]);
        let odd = current.len() % 2 == 1;
        let (leftover, start) = if level == 0 && !self.level_zero_sorted {
            // The newest item of an odd level 0 waits for the next compaction, as in
            // DataSketches.
            let leftover = if odd { current.pop() } else { None };
            current.sort_unstable_by(ascending);
            (leftover, 0)
        } else {
            // A higher level is a sequence of ascending runs, one per compaction below it
            // since its last one; they are sorted together once, now.
            current.sort_unstable_by(ascending);
            if odd { (Some(current[0]), 1) } else { (None, 0) }
        };
        let len = current.len() - start;
        let parity = if use_up { (len - 1 - offset) % 2 } else { offset };
        let half = len / 2;
        self.levels[level + 1].extend((0..half).map(|i| current[start + parity + 2 * i]));
        current.clear();
        current.extend(leftover);
        self.levels[level] = current;
        self.level_zero_sorted = false;
        // `2·half` items left the level, half of them for the level above.
        self.retained -= half;
        if level + 2 > levels {
            self.capacity = total_capacity(self.k, self.levels.len().min(MAX_LEVELS));
        }
    }

    /// Level `i` as the image holds it: ascending above level 0.
    fn level_sorted(&self, i: usize) -> std::borrow::Cow<'_, [f64]> {
        let level = &self.levels[i];
        if (i == 0 && !self.level_zero_sorted) || level.is_sorted_by(|a, b| a <= b) {
            std::borrow::Cow::Borrowed(level)
        } else {
            let mut level = level.clone();
            level.sort_by(ascending);
            std::borrow::Cow::Owned(level)
        }
    }

    fn refresh(&mut self) {
        self.retained = self.levels.iter().map(Vec::len).sum();
        self.capacity = total_capacity(self.k, self.levels.len().min(MAX_LEVELS));
    }

    /// The sketch in DataSketches' compact binary image, which any DataSketches library reads.
    pub fn image(&self) -> Vec<u8> {
        let sorted_flag = if self.level_zero_sorted { FLAG_LEVEL_ZERO_SORTED } else { 0 };
        let [k0, k1] = self.k.to_le_bytes();
        if self.n == 0 {
            return vec![2, 1, FAMILY_KLL, FLAG_EMPTY | sorted_flag, k0, k1, M, 0];
        }
        if self.n == 1 {
            let mut bytes = vec![2, 2, FAMILY_KLL, FLAG_SINGLE_ITEM | sorted_flag, k0, k1, M, 0];
            bytes.extend_from_slice(&self.levels[0][0].to_le_bytes());
            return bytes;
        }
        let mut bytes = Vec::with_capacity(20 + 4 * self.levels.len() + 16 + 8 * self.retained);
        bytes.extend_from_slice(&[5, 1, FAMILY_KLL, sorted_flag, k0, k1, M, 0]);
        bytes.extend_from_slice(&self.n.to_le_bytes());
        bytes.extend_from_slice(&self.min_k.to_le_bytes());
        bytes.extend_from_slice(&[self.levels.len() as u8, 0]);
        let mut offset = (self.capacity - self.retained) as u32;
        for level in &self.levels {
            bytes.extend_from_slice(&offset.to_le_bytes());
            offset += level.len() as u32;
        }
        bytes.extend_from_slice(&self.min.to_le_bytes());
        bytes.extend_from_slice(&self.max.to_le_bytes());
        for i in 0..self.levels.len() {
            // DataSketches' image holds an unsorted level 0 newest first.
            if i == 0 && !self.level_zero_sorted {
                self.levels[0].iter().rev().for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
            } else {
                self.level_sorted(i).iter().for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
            }
        }
        bytes
    }

    /// Reads a compact image, first checked by DataSketches' own reader.
    pub fn from_image(bytes: &[u8]) -> Result<KllCore, String> {
        KllSketch::<KllFloat<f64>>::deserialize(bytes).map_err(|e| e.to_string())?;
        // The image is valid: read its fields where the format puts them.
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let f64_at = |at: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            f64::from_le_bytes(b)
        };
        let flags = bytes[3];
        let mut core = KllCore::new(u16_at(4));
        core.level_zero_sorted = flags & FLAG_LEVEL_ZERO_SORTED != 0;
        if flags & FLAG_EMPTY != 0 {
            return Ok(core);
        }
        if flags & FLAG_SINGLE_ITEM != 0 {
            let x = f64_at(8);
            (core.n, core.min, core.max) = (1, x, x);
            core.levels[0].push(x);
            core.refresh();
            return Ok(core);
        }
        let mut n = [0; 8];
        n.copy_from_slice(&bytes[8..16]);
        core.n = u64::from_le_bytes(n);
        core.min_k = u16_at(16);
        let levels = usize::from(bytes[18]);
        let offsets: Vec<usize> = (0..levels).map(|l| u32_at(20 + 4 * l) as usize).collect();
        let items_at = 20 + 4 * levels + 16;
        let total = (bytes.len() - items_at) / 8;
        (core.min, core.max) = (f64_at(20 + 4 * levels), f64_at(20 + 4 * levels + 8));
        core.levels = Vec::with_capacity(levels);
        let mut at = items_at;
        let mut read = 0;
        for level in 0..levels {
            let size = match offsets.get(level + 1) {
                Some(next) => next - offsets[level],
                None => total - read,
            };
            let mut items: Vec<f64> = (0..size).map(|i| f64_at(at + 8 * i)).collect();
            if level == 0 && !core.level_zero_sorted {
                items.reverse();
            }
            at += 8 * size;
            read += size;
            core.levels.push(items);
        }
        core.refresh();
        Ok(core)
    }

    /// The same sketch as a DataSketches one, for its queries and merges.
    pub fn to_sketch(&self) -> KllSketch<KllFloat<f64>> {
        match KllSketch::deserialize(&self.image()) {
            Ok(sketch) => sketch,
            // The image is written to DataSketches' format above and checked by the tests on
            // every shape of sketch; an image its reader refused would be a defect here.
            Err(e) => unreachable!("a KLL image this module wrote is refused by DataSketches: {e}"),
        }
    }

    /// A DataSketches sketch as one of these.
    pub fn from_sketch(sketch: &KllSketch<KllFloat<f64>>) -> Result<KllCore, String> {
        KllCore::from_image(&sketch.serialize())
    }

    /// Merges `other` into this sketch, with DataSketches' merge.
    pub fn merge(&mut self, other: &KllCore) -> Result<(), String> {
        if other.n == 0 {
            return Ok(());
        }
        let mut sketch = self.to_sketch();
        sketch.merge(&other.to_sketch()).map_err(|e| e.to_string())?;
        *self = KllCore::from_sketch(&sketch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datasketches::common::SearchCriteria;

    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 11) % 100_000) as f64 / 100.0
            })
            .collect()
    }

    #[test]
    fn capacities_are_datasketches_ones() {
        // DataSketches' tests: k 200 gives 200, 133, 89, ... from the top level down.
        assert_eq!(level_capacity(200, 3, 2), 200);
        assert_eq!(level_capacity(200, 3, 1), 133);
        assert_eq!(level_capacity(200, 3, 0), 89);
        assert_eq!(level_capacity(200, 40, 0), 8);
        assert_eq!(total_capacity(1000, 1), 1000);
        // Deep levels go through the two-step depth.
        assert_eq!(level_capacity(65535, 61, 0), 8);
    }

    #[test]
    fn every_shape_of_sketch_round_trips_through_datasketches() {
        for n in [0, 1, 2, 7, 8, 9, 200, 201, 1000, 1001, 5000, 123_457] {
            let mut core = KllCore::new(200);
            values(n, n as u64 + 3).into_iter().for_each(|v| core.update(v));
            let sketch = core.to_sketch();
            assert_eq!(sketch.n(), n as u64, "n = {n}");
            assert_eq!(sketch.num_retained(), core.retained(), "n = {n}");
            assert_eq!(sketch.is_estimation_mode(), core.is_estimation_mode(), "n = {n}");
            assert_eq!(sketch.serialize(), core.image(), "n = {n}: the image DataSketches writes back");
            let back = KllCore::from_sketch(&sketch).expect("DataSketches' image reads back");
            assert_eq!(back, core, "n = {n}");
        }
    }

    #[test]
    fn levels_fill_and_compact_as_datasketches_levels_do() {
        // Which level compacts and how many items stay behind depend only on the number of
        // updates, not on the random bits: so every level must hold as many items as in a
        // sketch DataSketches updated with the same stream, after every update.
        for k in [8, 200, 1000] {
            let mut core = KllCore::new(k);
            let mut theirs = KllSketch::<KllFloat<f64>>::new(k).expect("k within bounds");
            for (i, v) in values(60_000, u64::from(k)).into_iter().enumerate() {
                core.update(v);
                theirs.update(KllFloat::<f64>::new(v).expect("not NaN"));
                if i % 997 == 0 || i < 3000 {
                    let (ours, image) = (core.image(), theirs.serialize());
                    let header = if i == 0 { 8 } else { 20 + 4 * usize::from(image[18]) };
                    assert_eq!(ours[..header], image[..header], "k {k}, after {} updates: the levels", i + 1);
                }
            }
            assert_eq!(core.retained(), theirs.num_retained(), "k {k}");
        }
    }

    #[test]
    fn updates_keep_datasketches_rank_guarantee() {
        // The sketch must answer ranks within DataSketches' error bound for k, as a sketch
        // updated by DataSketches does, on sorted, reversed and shuffled streams.
        let n = 200_000;
        let shuffled = values(n, 11);
        let mut sorted = shuffled.clone();
        sorted.sort_by(f64::total_cmp);
        let reversed: Vec<f64> = sorted.iter().rev().copied().collect();
        for (name, stream) in [("shuffled", &shuffled), ("sorted", &sorted), ("reversed", &reversed)] {
            let mut core = KllCore::new(200);
            stream.iter().for_each(|&v| core.update(v));
            let sketch = core.to_sketch();
            let eps = sketch.normalized_rank_error();
            let view = sketch.sorted_view();
            for q in [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99] {
                let x = sorted[(q * n as f64) as usize];
                let truth = sorted.partition_point(|&y| y <= x) as f64 / n as f64;
                let rank = view
                    .rank(&KllFloat::<f64>::new(x).expect("not NaN"), SearchCriteria::Inclusive)
                    .expect("not empty");
                assert!((rank - truth).abs() <= eps, "{name}: rank of {x} is {rank}, truly {truth}, eps {eps}");
            }
            assert_eq!(sketch.min_item().map(|x| x.into_inner()), Some(sorted[0]));
            assert_eq!(sketch.max_item().map(|x| x.into_inner()), Some(sorted[n - 1]));
        }
    }

    #[test]
    fn nan_is_ignored_and_merge_adds_the_streams() {
        let mut a = KllCore::new(200);
        let mut b = KllCore::new(200);
        values(3000, 5).into_iter().for_each(|v| a.update(v));
        a.update(f64::NAN);
        values(4000, 9).into_iter().for_each(|v| b.update(v));
        assert_eq!(a.n(), 3000);
        a.merge(&b).expect("same m");
        assert_eq!(a.n(), 7000);
        assert_eq!(a.to_sketch().n(), 7000);
        a.merge(&KllCore::new(200)).expect("an empty sketch merges");
        assert_eq!(a.n(), 7000);
    }

    #[test]
    fn a_corrupt_image_is_refused_with_datasketches_reason() {
        let mut core = KllCore::new(200);
        values(500, 2).into_iter().for_each(|v| core.update(v));
        let mut image = core.image();
        image.truncate(image.len() - 3);
        assert!(KllCore::from_image(&image).is_err());
        assert!(KllCore::from_image(&[]).is_err());
    }
}
