//! A tiny seeded generator and row sampling. Kept in-house so that a seed means the same sample in
//! every ferrox version, whatever a third-party RNG crate does.

/// SplitMix64: small, fast, and good enough for sampling rows.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed; equal seeds give equal streams.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A uniform draw from [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// `k` distinct row indices out of `n`, ascending, chosen uniformly (selection sampling).
/// Returns every row when `k >= n`.
pub fn sample_rows(n: usize, k: usize, seed: u64) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(k);
    let mut needed = k;
    for i in 0..n {
        let left = n - i;
        if (rng.next_f64() * left as f64) < needed as f64 {
            out.push(i);
            needed -= 1;
            if needed == 0 {
                break;
            }
        }
    }
    out
}

/// A uniform draw in [0, 1) keyed by a seed and a row's identity: the same wherever the row is held
/// (which thread, which worker, which position in a shard).
#[inline]
pub fn keyed_uniform(seed: u64, id: u64) -> f64 {
    SplitMix64::new(seed ^ id.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_f64()
}

/// Whether the row with identity `id` is in the binning sample of `k` rows out of `n_total`: each row is
/// in with probability `k / n_total`, decided by its identity alone (every row when `k >= n_total`), so
/// a shard of the data finds its part of the sample without seeing the rest.
#[inline]
pub fn in_keyed_sample(id: u64, n_total: usize, k: usize, seed: u64) -> bool {
    k >= n_total || keyed_uniform(seed, id) * (n_total as f64) < k as f64
}

/// The rows of `0..n` in the binning sample of about `k` rows (see [`in_keyed_sample`]), ascending.
pub fn keyed_sample(n: usize, k: usize, seed: u64) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    (0..n).filter(|&r| in_keyed_sample(r as u64, n, k, seed)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_sample_is_partition_invariant_and_about_k() {
        let all = keyed_sample(50_000, 5_000, 9);
        assert!((4_600..5_400).contains(&all.len()), "{}", all.len());
        // Any shard of the ids finds exactly its part of the sample.
        let odd: Vec<usize> = (0..50_000u64).filter(|i| i % 2 == 1 && in_keyed_sample(*i, 50_000, 5_000, 9)).map(|i| i as usize).collect();
        assert_eq!(odd, all.iter().copied().filter(|i| i % 2 == 1).collect::<Vec<_>>());
        assert_eq!(keyed_sample(10, 20, 1), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn sample_is_sorted_distinct_exact_and_seeded() {
        let s = sample_rows(10_000, 1_000, 7);
        assert_eq!(s.len(), 1_000);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s, sample_rows(10_000, 1_000, 7));
        assert_ne!(s, sample_rows(10_000, 1_000, 8));
        assert_eq!(sample_rows(5, 10, 1), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn sample_is_roughly_uniform() {
        let s = sample_rows(100_000, 10_000, 3);
        let first_half = s.iter().filter(|&&i| i < 50_000).count();
        assert!((4_700..5_300).contains(&first_half), "{first_half}");
    }
}
