//! Bin mappers: how raw feature values become small integer bins.
//!
//! Numeric features get quantile bins: the bin edges come from a seeded sample of rows; when a feature
//! has no more distinct values than bins, each distinct value gets a bin of its own, otherwise bins hold
//! about equal counts and a value frequent enough to fill a bin alone gets one. A value `v` falls in the
//! first bin whose upper bound is `>= v`. Categorical features get one bin per category, most frequent
//! first; categories beyond the bin budget, unseen ones and missing values share the last bin.
//! Every feature has that dedicated missing bin, numbered after its value bins.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A category value: integer categories (numpy, pandas int categories) and string ones are kept apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CatKey {
    /// A whole-number category.
    Int(i64),
    /// A string category.
    Str(String),
}

impl std::fmt::Display for CatKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatKey::Int(v) => write!(f, "{v}"),
            CatKey::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// How to bin: LightGBM's parameter names and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BinConfig {
    /// Most bins per feature, the missing-value bin included, as LightGBM counts them for a feature
    /// with missing values (2..=65535). Bins are stored as u8 while every feature has at most 256.
    pub max_bin: usize,
    /// Rows sampled to find bin edges.
    pub bin_construct_sample_cnt: usize,
    /// Seed of that sample.
    pub data_random_seed: u64,
    /// Least sampled rows a numeric bin holds (where the data allows).
    pub min_data_in_bin: usize,
    /// Threads (0 = all cores this process may use).
    pub num_threads: i64,
}

impl Default for BinConfig {
    fn default() -> Self {
        BinConfig {
            max_bin: 255,
            bin_construct_sample_cnt: 200_000,
            data_random_seed: 1,
            min_data_in_bin: 3,
            num_threads: 0,
        }
    }
}

impl BinConfig {
    /// Rejects out-of-range values, naming the parameter.
    pub fn validate(&self) -> Result<()> {
        if !(2..=65535).contains(&self.max_bin) {
            return Err(Error::param(format!("max_bin must be in 2..=65535, got {}", self.max_bin)));
        }
        if self.bin_construct_sample_cnt < 1 {
            return Err(Error::param("bin_construct_sample_cnt must be at least 1, got 0"));
        }
        if self.min_data_in_bin < 1 {
            return Err(Error::param("min_data_in_bin must be at least 1, got 0"));
        }
        Ok(())
    }
}

/// The bin rule of one feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BinMapper {
    /// Quantile bins over numbers.
    Numeric {
        /// Upper bound of each value bin, ascending; the last is +inf.
        upper_bounds: Vec<f64>,
        /// Smallest and largest non-missing value seen in the sample (NaN when none).
        min: f64,
        /// See `min`.
        max: f64,
    },
    /// One bin per kept category, most frequent first.
    Categorical {
        /// `categories[b]` is the category of bin `b`.
        categories: Vec<CatKey>,
        /// Sampled count of each kept category.
        counts: Vec<u64>,
    },
}

impl BinMapper {
    /// Number of value bins (the missing bin not counted).
    pub fn num_value_bins(&self) -> usize {
        match self {
            BinMapper::Numeric { upper_bounds, .. } => upper_bounds.len(),
            BinMapper::Categorical { categories, .. } => categories.len(),
        }
    }

    /// The bin that holds missing values (and, for categories, unseen or dropped ones).
    pub fn missing_bin(&self) -> u32 {
        self.num_value_bins() as u32
    }

    /// All bins, the missing bin included.
    pub fn num_bins(&self) -> usize {
        self.num_value_bins() + 1
    }

    /// True for a categorical feature.
    pub fn is_categorical(&self) -> bool {
        matches!(self, BinMapper::Categorical { .. })
    }

    /// The numeric bin of a value; NaN goes to the missing bin.
    #[inline]
    pub fn numeric_bin(upper_bounds: &[f64], v: f64) -> u32 {
        if v.is_nan() {
            return upper_bounds.len() as u32;
        }
        // The last bound is +inf, so only the finite ones need a search: the answer is the number of
        // cuts below v (std's search compiles branch-free; measured 5x faster than a hand-rolled one).
        let cuts = &upper_bounds[..upper_bounds.len() - 1];
        cuts.partition_point(|&c| c < v) as u32
    }

    /// For a categorical mapper: the bin of each code of a column whose key table is `keys`.
    pub fn category_table(&self, keys: &[CatKey]) -> Vec<u32> {
        match self {
            BinMapper::Categorical { categories, .. } => {
                let index: HashMap<&CatKey, u32> =
                    categories.iter().enumerate().map(|(b, k)| (k, b as u32)).collect();
                let missing = self.missing_bin();
                keys.iter().map(|k| index.get(k).copied().unwrap_or(missing)).collect()
            }
            BinMapper::Numeric { .. } => Vec::new(),
        }
    }

    /// Numeric bins from the sampled non-missing values of one feature (`values` is sorted here).
    pub fn numeric_from_sample(values: &mut [f64], max_value_bins: usize, min_data_in_bin: usize) -> BinMapper {
        values.sort_unstable_by(|a, b| a.total_cmp(b));
        let mut distinct: Vec<f64> = Vec::new();
        let mut counts: Vec<usize> = Vec::new();
        for &v in values.iter() {
            match distinct.last() {
                Some(&last) if last == v => *counts.last_mut().unwrap() += 1,
                _ => {
                    distinct.push(v);
                    counts.push(1);
                }
            }
        }
        let (min, max) = match (distinct.first(), distinct.last()) {
            (Some(&a), Some(&b)) => (a, b),
            _ => (f64::NAN, f64::NAN),
        };
        let mut upper_bounds = Vec::new();
        if distinct.len() <= max_value_bins {
            // Every distinct value gets its own bin.
            for w in distinct.windows(2) {
                upper_bounds.push(midpoint(w[0], w[1]));
            }
        } else {
            greedy_bounds(&distinct, &counts, max_value_bins, min_data_in_bin, &mut upper_bounds);
        }
        upper_bounds.push(f64::INFINITY);
        BinMapper::Numeric { upper_bounds, min, max }
    }

    /// Categorical bins from the sampled codes of a column with key table `keys`: the most frequent
    /// categories (ties: smaller key first) up to `max_value_bins` of them.
    pub fn categorical_from_sample(codes: &[i32], keys: &[CatKey], max_value_bins: usize) -> BinMapper {
        let mut counts = vec![0u64; keys.len()];
        for &c in codes {
            if c >= 0 {
                counts[c as usize] += 1;
            }
        }
        let mut order: Vec<usize> = (0..keys.len()).filter(|&i| counts[i] > 0).collect();
        order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then_with(|| keys[a].cmp(&keys[b])));
        order.truncate(max_value_bins);
        BinMapper::Categorical {
            categories: order.iter().map(|&i| keys[i].clone()).collect(),
            counts: order.iter().map(|&i| counts[i]).collect(),
        }
    }
}

/// A cut `c` with `a <= c < b`, halfway where the floats allow.
fn midpoint(a: f64, b: f64) -> f64 {
    let m = a + (b - a) / 2.0;
    if m >= b || m < a || !m.is_finite() {
        a
    } else {
        m
    }
}

/// Equal-count bins over sorted distinct values with their counts; a value whose count alone reaches
/// the target gets a bin of its own.
fn greedy_bounds(distinct: &[f64], counts: &[usize], max_bin: usize, min_data: usize, out: &mut Vec<f64>) {
    let total: usize = counts.iter().sum();
    let mut rest_count = total;
    let mut rest_bins = max_bin;
    let mut target = rest_count as f64 / rest_bins as f64;
    let mut acc = 0usize;
    for i in 0..distinct.len() - 1 {
        acc += counts[i];
        let next_heavy = counts[i + 1] as f64 >= target;
        if (acc >= min_data && acc as f64 >= target) || next_heavy {
            out.push(midpoint(distinct[i], distinct[i + 1]));
            rest_count -= acc;
            rest_bins -= 1;
            acc = 0;
            if rest_bins <= 1 {
                break;
            }
            target = rest_count as f64 / rest_bins as f64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sample::SplitMix64;

    fn bins_of(m: &BinMapper, vals: &[f64]) -> Vec<u32> {
        let BinMapper::Numeric { upper_bounds, .. } = m else { panic!() };
        vals.iter().map(|&v| BinMapper::numeric_bin(upper_bounds, v)).collect()
    }

    #[test]
    fn few_distinct_values_get_one_bin_each() {
        let mut vals = vec![3.0, 1.0, 2.0, 2.0, 1.0, 3.0, 10.0];
        let m = BinMapper::numeric_from_sample(&mut vals, 255, 3);
        assert_eq!(m.num_value_bins(), 4);
        assert_eq!(bins_of(&m, &[1.0, 2.0, 3.0, 10.0, f64::NAN, -5.0, 1e9]), vec![0, 1, 2, 3, 4, 0, 3]);
        assert_eq!(m.missing_bin(), 4);
    }

    #[test]
    fn adjacent_floats_stay_apart() {
        let a = 1.0f64;
        let b = f64::from_bits(a.to_bits() + 1);
        let m = BinMapper::numeric_from_sample(&mut vec![a, b], 255, 1);
        assert_eq!(bins_of(&m, &[a, b]), vec![0, 1]);
    }

    #[test]
    fn quantile_bins_are_balanced_and_bounded() {
        let mut rng = SplitMix64::new(5);
        let mut vals: Vec<f64> = (0..100_000).map(|_| rng.next_f64().powi(3) * 1e3).collect();
        let orig = vals.clone();
        let m = BinMapper::numeric_from_sample(&mut vals, 63, 3);
        assert!(m.num_value_bins() <= 63 && m.num_value_bins() >= 60, "{}", m.num_value_bins());
        let mut hist = vec![0usize; 64];
        for b in bins_of(&m, &orig) {
            hist[b as usize] += 1;
        }
        let expect = 100_000 / 63;
        for (b, &h) in hist[..m.num_value_bins()].iter().enumerate() {
            assert!(h > expect / 2 && h < expect * 2, "bin {b} holds {h}");
        }
        let BinMapper::Numeric { upper_bounds, .. } = &m else { panic!() };
        assert!(upper_bounds.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_heavy_value_gets_its_own_bin() {
        let mut vals: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        vals.extend(std::iter::repeat_n(0.5, 5000));
        let m = BinMapper::numeric_from_sample(&mut vals, 16, 3);
        let b = bins_of(&m, &[0.0, 0.5, 1.0]);
        assert!(b[0] != b[1] && b[1] != b[2], "{b:?}");
    }

    #[test]
    fn categories_by_frequency_with_overflow_to_missing() {
        let keys = vec![CatKey::Str("a".into()), CatKey::Str("b".into()), CatKey::Int(7)];
        let codes = [0, 1, 1, 2, 2, 2, -1, 1];
        let m = BinMapper::categorical_from_sample(&codes, &keys, 2);
        let BinMapper::Categorical { categories, counts } = &m else { panic!() };
        // Equal counts: the smaller key first (integers sort before strings).
        assert_eq!(categories, &vec![CatKey::Int(7), CatKey::Str("b".into())]);
        assert_eq!(counts, &vec![3, 3]);
        assert_eq!(m.category_table(&keys), vec![2, 1, 0]);
    }

    proptest::proptest! {
        #[test]
        fn numeric_bin_counts_cuts_below(mut cuts in proptest::collection::vec(-1e3f64..1e3, 0..300), v in -1.1e3f64..1.1e3) {
            cuts.sort_by(|a, b| a.total_cmp(b));
            cuts.dedup();
            let mut bounds = cuts.clone();
            bounds.push(f64::INFINITY);
            let expect = cuts.iter().filter(|&&c| c < v).count() as u32;
            proptest::prop_assert_eq!(BinMapper::numeric_bin(&bounds, v), expect);
            if let Some(&c) = cuts.first() {
                proptest::prop_assert_eq!(BinMapper::numeric_bin(&bounds, c), 0);
            }
        }
    }

    #[test]
    fn config_rejects_bad_max_bin() {
        for mb in [0, 1, 65536] {
            let e = BinConfig { max_bin: mb, ..Default::default() }.validate().unwrap_err();
            assert!(e.to_string().contains("max_bin"), "{e}");
        }
        assert!(BinConfig { max_bin: 65535, ..Default::default() }.validate().is_ok());
    }
}
