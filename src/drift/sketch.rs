//! A mergeable quantile sketch (a deterministic hierarchy of compactors, as in Manku–Rajagopalan–
//! Lindsay and KLL) and a radix sort for f64.
//!
//! Level h holds values that each stand for 2^h inputs. When a level reaches `k` values it is sorted
//! and every other value (alternating the starting offset) moves up a level with twice the weight.
//! A compaction at level h shifts any rank by at most 2^h, and level h compacts at most n / (k 2^h)
//! times, so the compactions move any rank by at most `n · (L - 1) / k` where L is the number of
//! levels (about log2(n / k) + 1); reading a quantile adds at most one top-level weight (2n / k). [`QuantileSketch::rank_error_bound`] returns that bound as a share of n.
//! Merging two sketches concatenates levels and compacts: the bound holds for the merged count.

use serde::{Deserialize, Serialize};

/// Sorts f64 values (NaN excluded by the caller) by an LSD radix sort on order-preserving keys;
/// the same order as `total_cmp` (so -0.0 sorts before +0.0).
pub fn sort_f64(values: &mut [f64]) {
    sort_f64_in(values, &mut Vec::new())
}

/// [`sort_f64`] with the caller's second buffer (grown as needed), for callers sorting many arrays.
pub fn sort_f64_in(values: &mut [f64], scratch: &mut Vec<f64>) {
    let n = values.len();
    if n < 256 {
        values.sort_unstable_by(|a, b| a.total_cmp(b));
        return;
    }
    if scratch.len() < n {
        scratch.resize(n, 0.0);
    }
    let tmp = &mut scratch[..n];
    // 11-bit digits keep each pass's 2048 counters in L1 and its scatter targets few enough for the
    // write buffers; 16-bit digits (4 passes) pay off only on arrays well beyond the L2 cache.
    if n >= 1_000_000 {
        radix_passes::<16, 65536, 4>(values, tmp);
    } else {
        radix_passes::<11, 2048, 6>(values, tmp);
    }
}

/// The order-preserving key of a float's bits: sign flipped for positives, all bits for negatives
/// (branch-free: the sign of `b` decides the mask).
#[inline(always)]
fn to_key(b: u64) -> u64 {
    b ^ ((((b as i64) >> 63) as u64) | (1 << 63))
}

/// Inverse of [`to_key`].
#[inline(always)]
fn from_key(k: u64) -> u64 {
    k ^ ((k >> 63).wrapping_sub(1) | (1 << 63))
}

fn radix_passes<const BITS: u32, const BUCKETS: usize, const PASSES: usize>(values: &mut [f64], tmp: &mut [f64]) {
    debug_assert!(BUCKETS == 1 << BITS && PASSES * BITS as usize >= 64);
    // Digits on which every key agrees need no pass, nor counting (counting one bucket over and over
    // is a chain of dependent increments): one read finds them.
    let (mut any, mut all) = (0u64, !0u64);
    for v in values.iter() {
        let k = to_key(v.to_bits());
        any |= k;
        all &= k;
    }
    let varying = any ^ all;
    let live: Vec<u32> = (0..PASSES as u32)
        .map(|p| p * BITS)
        .filter(|&shift| (varying >> shift) & (BUCKETS as u64 - 1) != 0)
        .collect();
    if live.is_empty() {
        return; // all keys equal: already sorted
    }
    // The histograms of the live digits, counted in one read.
    let mut hist = vec![[0u32; BUCKETS]; live.len()];
    for v in values.iter() {
        let k = to_key(v.to_bits());
        for (h, &shift) in hist.iter_mut().zip(&live) {
            h[((k >> shift) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    // The first pass reads the floats and writes keys, the last writes floats back: no separate
    // passes to transform the keys there and back.
    let mut in_tmp = false;
    let last = live.len() - 1;
    for (step, (&shift, h)) in live.iter().zip(&hist).enumerate() {
        let mut pos = vec![0u32; BUCKETS];
        let mut acc = 0u32;
        for (q, c) in pos.iter_mut().zip(h.iter()) {
            *q = acc;
            acc += c;
        }
        let (src, dst): (&[f64], &mut [f64]) = if in_tmp { (tmp, values) } else { (values, tmp) };
        let (first, fin) = (step == 0, step == last);
        for v in src.iter() {
            let k = if first { to_key(v.to_bits()) } else { v.to_bits() };
            let b = ((k >> shift) as usize) & (BUCKETS - 1);
            dst[pos[b] as usize] = f64::from_bits(if fin { from_key(k) } else { k });
            pos[b] += 1;
        }
        in_tmp = !in_tmp;
    }
    if in_tmp {
        values.copy_from_slice(tmp);
    }
}

/// A mergeable quantile summary of a stream of values.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct QuantileSketch {
    /// Capacity of each level before it compacts.
    pub k: usize,
    /// Values per level; a value at level h stands for 2^h inputs.
    pub levels: Vec<Vec<f64>>,
    /// Per level, the offset (0 or 1) the next compaction keeps.
    offsets: Vec<u8>,
    /// Inputs summarised.
    pub n: u64,
}

impl QuantileSketch {
    /// An empty sketch with level capacity `k` (at least 8).
    pub fn new(k: usize) -> Self {
        QuantileSketch { k: k.max(8), levels: vec![Vec::new()], offsets: vec![0], n: 0 }
    }

    /// Adds values.
    pub fn extend(&mut self, values: &[f64]) {
        for chunk in values.chunks(self.k) {
            self.levels[0].extend_from_slice(chunk);
            self.n += chunk.len() as u64;
            self.compact_from(0);
        }
    }

    fn compact_from(&mut self, mut h: usize) {
        while h < self.levels.len() {
            if self.levels[h].len() < self.k {
                h += 1;
                continue;
            }
            let mut buf = std::mem::take(&mut self.levels[h]);
            sort_f64(&mut buf);
            // An odd value out stays at this level so weights are conserved.
            if buf.len() % 2 == 1 {
                let last = buf.pop().unwrap_or(f64::NAN);
                self.levels[h].push(last);
            }
            let off = self.offsets[h] as usize;
            self.offsets[h] ^= 1;
            if h + 1 == self.levels.len() {
                self.levels.push(Vec::new());
                self.offsets.push(0);
            }
            let up: Vec<f64> = buf.iter().skip(off).step_by(2).copied().collect();
            self.levels[h + 1].extend(up);
            h += 1;
        }
    }

    /// Combines another sketch into this one (levels concatenated, then compacted).
    pub fn merge(&mut self, other: &QuantileSketch) {
        while self.levels.len() < other.levels.len() {
            self.levels.push(Vec::new());
            self.offsets.push(0);
        }
        for (h, lv) in other.levels.iter().enumerate() {
            self.levels[h].extend_from_slice(lv);
        }
        self.n += other.n;
        self.compact_from(0);
    }

    /// The summary as sorted (value, weight) pairs whose weights sum to n.
    pub fn weighted_points(&self) -> (Vec<f64>, Vec<f64>) {
        let mut pts: Vec<(f64, f64)> = Vec::new();
        for (h, lv) in self.levels.iter().enumerate() {
            let w = (1u64 << h) as f64;
            pts.extend(lv.iter().map(|&v| (v, w)));
        }
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        pts.into_iter().unzip()
    }

    /// The guaranteed bound on any rank error, as a share of n: (L + 1) / k with L levels in use
    /// (L - 1 from compactions, 2 for the weight of one top-level value), 0 while nothing compacted.
    pub fn rank_error_bound(&self) -> f64 {
        let used = self.levels.iter().rposition(|l| !l.is_empty()).map(|i| i + 1).unwrap_or(1);
        if used <= 1 {
            0.0
        } else {
            (used + 1) as f64 / self.k as f64
        }
    }

    /// The value at quantile q (0..=1) of the summary.
    pub fn quantile(&self, q: f64) -> f64 {
        let (v, w) = self.weighted_points();
        let total: f64 = w.iter().sum();
        let target = q.clamp(0.0, 1.0) * total;
        let mut acc = 0.0;
        for (x, wi) in v.iter().zip(&w) {
            acc += wi;
            if acc >= target {
                return *x;
            }
        }
        v.last().copied().unwrap_or(f64::NAN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sample::SplitMix64;

    #[test]
    fn radix_sort_matches_total_cmp() {
        let mut rng = SplitMix64::new(7);
        let mut v: Vec<f64> = (0..5000).map(|_| (rng.next_f64() - 0.5) * 1e6).collect();
        v.extend([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, 1e-310, -1e-310]);
        let mut big: Vec<f64> = (0..120_000).map(|_| (rng.next_f64() - 0.5) * 1e3).collect();
        big.extend([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY]);
        let mut want_big = big.clone();
        want_big.sort_by(|a, b| a.total_cmp(b));
        sort_f64(&mut big);
        assert!(big.iter().zip(&want_big).all(|(a, b)| a.to_bits() == b.to_bits()));
        // Digits shared by every key are skipped: whole numbers, one value, a sign and a zero.
        for mut w in [
            (0..3000).map(|_| (rng.next_f64() * 20.0).floor()).collect::<Vec<f64>>(),
            vec![2.5; 3000],
            (0..3000).map(|i| if i % 3 == 0 { -0.0 } else { 0.0 }).collect(),
            (0..3000).map(|_| -(rng.next_f64() * 1e6).floor()).collect(),
        ] {
            let mut want = w.clone();
            want.sort_by(|a, b| a.total_cmp(b));
            sort_f64(&mut w);
            assert!(w.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
        // Past a million values the sort takes 16-bit digits.
        let mut huge: Vec<f64> = (0..1_000_003).map(|_| (rng.next_f64() - 0.5) * 1e9).collect();
        huge.extend([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, -1e-310]);
        let mut want_huge = huge.clone();
        want_huge.sort_by(|a, b| a.total_cmp(b));
        sort_f64(&mut huge);
        assert!(huge.iter().zip(&want_huge).all(|(a, b)| a.to_bits() == b.to_bits()));
        // Odd lengths.
        for len in [257usize, 4001, 99_999] {
            let mut odd: Vec<f64> = (0..len).map(|_| ((rng.next_f64() - 0.5) * 1e4).floor() / 8.0).collect();
            let mut want = odd.clone();
            want.sort_by(|a, b| a.total_cmp(b));
            sort_f64(&mut odd);
            assert!(odd.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{len}");
        }
        let mut want = v.clone();
        want.sort_by(|a, b| a.total_cmp(b));
        sort_f64(&mut v);
        assert_eq!(v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), want.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    }

    #[test]
    fn sketch_ranks_within_bound_and_merge_keeps_it() {
        let mut rng = SplitMix64::new(3);
        let data: Vec<f64> = (0..200_000).map(|_| rng.next_f64().powi(3)).collect();
        let mut whole = QuantileSketch::new(256);
        whole.extend(&data);
        let mut a = QuantileSketch::new(256);
        a.extend(&data[..90_000]);
        let mut b = QuantileSketch::new(256);
        b.extend(&data[90_000..]);
        a.merge(&b);
        let mut sorted = data.clone();
        sort_f64(&mut sorted);
        for s in [&whole, &a] {
            assert_eq!(s.n, 200_000);
            let (_, w) = s.weighted_points();
            assert_eq!(w.iter().sum::<f64>(), 200_000.0);
            let bound = s.rank_error_bound();
            assert!(bound > 0.0 && bound < 0.05);
            for q in [0.01, 0.1, 0.5, 0.9, 0.99] {
                let x = s.quantile(q);
                let rank = sorted.partition_point(|v| *v <= x) as f64 / 200_000.0;
                assert!((rank - q).abs() <= bound + 1e-9, "q={q} rank={rank} bound={bound}");
            }
        }
    }
}
