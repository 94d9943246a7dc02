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

#[cfg(test)]
mod tests {
    use super::*;

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
