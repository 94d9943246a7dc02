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

/// Sorts f64 values (NaN excluded by the caller) by a radix sort on order-preserving keys; the same
/// order as `total_cmp` (so -0.0 sorts before +0.0).
pub fn sort_f64(values: &mut [f64]) {
    sort_f64_in(values, &mut SortScratch::default())
}

/// [`sort_f64`] with the caller's buffers (grown as needed), for callers sorting many arrays.
pub fn sort_f64_in(values: &mut [f64], scratch: &mut SortScratch) {
    let mut out = Vec::new();
    sort_present_into(values, &mut out, scratch);
    values.copy_from_slice(&out);
}

/// The radix sort's reusable buffers: the keys and their second buffer. Fresh multi-megabyte buffers
/// cost a page fault per 4 KiB on first touch, so callers sorting many arrays keep one.
#[derive(Default)]
pub struct SortScratch {
    keys: Vec<u64>,
    tmp: Vec<u64>,
}

/// Sorts the values of `values` that are not NaN into `out` (cleared first; grown to exactly the
/// values kept when it has less room), in `total_cmp` order. Returns the NaN dropped and the
/// infinite values kept.
///
/// One pass reads the values, drops the NaN and writes their order-preserving keys; the keys are
/// then split on their 11 highest varying bits (one scatter), and each part, small enough for the
/// core's cache, is sorted by an LSD radix sort on the digits that vary within it (8-bit digits
/// below 4096 keys, 11-bit ones above, insertion sort below 64) and written to `out` as floats. Arrays of a million
/// values or more take 16-bit digits over the whole array instead.
pub fn sort_present_into(values: &[f64], out: &mut Vec<f64>, scratch: &mut SortScratch) -> (usize, u64) {
    let n = values.len();
    let SortScratch { keys, tmp } = scratch;
    if keys.len() < n {
        keys.resize(n, 0);
    }
    let (mut kept, mut infs) = (0usize, 0u64);
    let (mut any, mut all) = (0u64, !0u64);
    {
        let keys = &mut keys[..n];
        for &v in values {
            let k = to_key(v.to_bits());
            let keep = !v.is_nan();
            // Written at the next free slot whatever it is; a NaN's key is overwritten next.
            keys[kept.min(n - 1)] = k;
            kept += keep as usize;
            infs += v.is_infinite() as u64;
            let m = (keep as u64).wrapping_neg();
            any |= k & m;
            all &= k | !m;
        }
    }
    out.clear();
    out.reserve_exact(kept);
    let keys = &mut keys[..kept];
    if kept < 64 {
        insertion_sort(keys);
        out.extend(keys.iter().map(|&k| f64::from_bits(from_key(k))));
    } else {
        if tmp.len() < kept {
            tmp.resize(kept, 0);
        }
        sort_keys_into(keys, &mut tmp[..kept], any ^ all, out);
    }
    (n - kept, infs)
}

/// Below this many keys the whole array takes LSD passes (no split on the top bits first).
const SPLIT_MIN: usize = 8192;

/// Sorts `keys` (`tmp` as long; `varying` the bits on which the keys differ) and appends the sorted
/// floats to `out`.
fn sort_keys_into(keys: &mut [u64], tmp: &mut [u64], varying: u64, out: &mut Vec<f64>) {
    let n = keys.len();
    let emit = |src: &[u64], out: &mut Vec<f64>| out.extend(src.iter().map(|&k| f64::from_bits(from_key(k))));
    if varying == 0 {
        return emit(keys, out); // all keys equal: already sorted
    }
    if n >= 1_000_000 {
        let in_tmp = lsd::<16, 65536>(keys, tmp, varying);
        return emit(if in_tmp { tmp } else { keys }, out);
    }
    if n < SPLIT_MIN {
        let in_tmp = lsd::<11, 2048>(keys, tmp, varying);
        return emit(if in_tmp { tmp } else { keys }, out);
    }
    // Split on the 11 highest varying bits (MSD), keys -> tmp.
    let top = 64 - varying.leading_zeros();
    let shift = top.saturating_sub(11);
    let digit = |k: u64| ((k >> shift) & 2047) as usize;
    let mut counts = [0u32; 2048];
    for &k in keys.iter() {
        counts[digit(k)] += 1;
    }
    let mut starts = [0u32; 2049];
    for b in 0..2048 {
        starts[b + 1] = starts[b] + counts[b];
    }
    let mut pos = [0u32; 2048];
    pos.copy_from_slice(&starts[..2048]);
    assert!(starts[2048] as usize == n && tmp.len() == n);
    for &k in keys.iter() {
        let d = digit(k);
        // SAFETY: pos[d] stays below starts[d + 1] <= n = tmp.len() (asserted above): it is bumped
        // once per key of digit d from the count of keys of smaller digits.
        unsafe { *tmp.get_unchecked_mut(pos[d] as usize) = k };
        pos[d] += 1;
    }
    // Each part differs only below `shift` (and in the bits varying within it).
    let low = if shift == 0 { 0 } else { u64::MAX >> (64 - shift) };
    for b in 0..2048 {
        let (s, e) = (starts[b] as usize, starts[b + 1] as usize);
        if e - s < 2 {
            emit(&tmp[s..e], out);
            continue;
        }
        let (part, spare) = (&mut tmp[s..e], &mut keys[s..e]);
        if e - s < 64 {
            insertion_sort(part);
            emit(part, out);
            continue;
        }
        let (mut any, mut all) = (0u64, !0u64);
        for &k in part.iter() {
            any |= k;
            all &= k;
        }
        let v = (any ^ all) & low;
        let in_spare = if e - s < 4096 { lsd::<8, 256>(part, spare, v) } else { lsd::<11, 2048>(part, spare, v) };
        emit(if in_spare { spare } else { part }, out);
    }
}

/// Insertion sort of keys (short arrays).
fn insertion_sort(keys: &mut [u64]) {
    for i in 1..keys.len() {
        let x = keys[i];
        let mut j = i;
        while j > 0 && keys[j - 1] > x {
            keys[j] = keys[j - 1];
            j -= 1;
        }
        keys[j] = x;
    }
}

/// LSD radix sort of `a` (`b` as long, its second buffer) on the BITS-bit digits (BUCKETS = 2^BITS)
/// that `varying` touches. Returns whether the sorted keys ended in `b`.
fn lsd<const BITS: u32, const BUCKETS: usize>(a: &mut [u64], b: &mut [u64], varying: u64) -> bool {
    debug_assert!(BUCKETS == 1 << BITS && a.len() == b.len() && a.len() < u32::MAX as usize);
    let mask = BUCKETS as u64 - 1;
    // Digits on which every key agrees need no pass, nor counting (counting one bucket over and over
    // is a chain of dependent increments).
    let live: Vec<u32> = (0..64u32.div_ceil(BITS)).map(|p| p * BITS).filter(|&s| (varying >> s) & mask != 0).collect();
    if live.is_empty() {
        return false;
    }
    // The histograms of the live digits, counted in one read.
    let mut hist = vec![[0u32; BUCKETS]; live.len()];
    for &k in a.iter() {
        for (h, &s) in hist.iter_mut().zip(&live) {
            h[((k >> s) & mask) as usize] += 1;
        }
    }
    let n = a.len();
    let mut in_b = false;
    for (h, &s) in hist.iter_mut().zip(&live) {
        let mut acc = 0u32;
        for c in h.iter_mut() {
            let x = *c;
            *c = acc;
            acc += x;
        }
        let (src, dst): (&[u64], &mut [u64]) = if in_b { (b, a) } else { (a, b) };
        assert!(acc as usize == n && dst.len() == n);
        for &k in src.iter() {
            let d = ((k >> s) & mask) as usize;
            // SAFETY: h[d] starts at the number of keys of smaller digits and is bumped once per
            // key of digit d, so it stays below the count of keys up to digit d: at most n - 1 here
            // (the counts sum to n = dst.len(), asserted above).
            unsafe { *dst.get_unchecked_mut(h[d] as usize) = k };
            h[d] += 1;
        }
        in_b = !in_b;
    }
    in_b
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

    /// The plain sort `sort_present_into` must equal: NaN dropped, `total_cmp` order, bit for bit.
    fn check_present(values: &[f64], scratch: &mut SortScratch, out: &mut Vec<f64>) {
        let mut want: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        want.sort_by(|a, b| a.total_cmp(b));
        let (nan, inf) = sort_present_into(values, out, scratch);
        assert_eq!(nan, values.len() - want.len(), "len {}", values.len());
        assert_eq!(inf, values.iter().filter(|v| v.is_infinite()).count() as u64);
        assert_eq!(out.len(), want.len(), "len {}", values.len());
        assert!(out.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "len {}", values.len());
    }

    #[test]
    fn split_radix_sort_matches_plain_sort() {
        let mut rng = SplitMix64::new(11);
        let mut scratch = SortScratch::default();
        let mut out = Vec::new();
        let specials = [f64::NAN, -f64::NAN, 0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, 1e-310, -1e-310, f64::MAX, f64::MIN];
        // Lengths around every switch: insertion sort, split parts, LSD below SPLIT_MIN, 16-bit digits.
        for len in [0usize, 1, 2, 63, 64, 65, 300, 4095, 4096, 8191, 8192, 8193, 50_000, 200_003, 1_000_001] {
            let kinds: [&dyn Fn(&mut SplitMix64) -> f64; 6] = [
                &|r| {
                    let u = r.next_f64().max(1e-300);
                    (-2.0 * u.ln()).sqrt() * (6.283185307179586 * r.next_f64()).cos()
                },
                &|r| (r.next_f64() - 0.5) * 1e6,
                &|r| (r.next_f64() * 3.0).exp() * if r.next_f64() < 0.5 { -1.0 } else { 1.0 },
                &|r| (r.next_f64() * 15.0).floor(),
                &|r| if r.next_f64() < 0.5 { 0.0 } else { -0.0 },
                &|r| (r.next_f64() * 1e-300) * if r.next_f64() < 0.5 { -1.0 } else { 1.0 },
            ];
            for kind in kinds {
                let mut v: Vec<f64> = (0..len).map(|_| kind(&mut rng)).collect();
                // Sprinkle specials (NaN, signed zeros, infinities, subnormals) and ties.
                for i in 0..len / 50 {
                    let at = (rng.next_f64() * len as f64) as usize % len;
                    v[at] = specials[i % specials.len()];
                }
                if len > 10 {
                    let x = v[len / 3];
                    v[len / 2] = x;
                    v[len - 1] = x;
                }
                check_present(&v, &mut scratch, &mut out);
            }
        }
        // All NaN, all equal, one value of each sign.
        check_present(&vec![f64::NAN; 10_000], &mut scratch, &mut out);
        check_present(&vec![-3.25; 10_000], &mut scratch, &mut out);
        let mixed: Vec<f64> = (0..20_000).map(|i| if i % 2 == 0 { 1.5 } else { -1.5 }).collect();
        check_present(&mixed, &mut scratch, &mut out);
        // A reused scratch, then a fresh output: the output grows to exactly the values kept.
        let mut fresh = Vec::new();
        let v: Vec<f64> = (0..30_000).map(|i| if i % 7 == 0 { f64::NAN } else { rng.next_f64() }).collect();
        sort_present_into(&v, &mut fresh, &mut scratch);
        assert_eq!(fresh.len(), fresh.capacity());
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
