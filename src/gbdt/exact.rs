//! Exact sums of f64 values: the total of a set of numbers, whatever order they are added in or
//! however they are split into partial sums, so a distributed run and a single process agree bit for
//! bit on statistics such as the label average.
//!
//! Each finite f64 is an integer mantissa (53 bits) times a power of two. The accumulator keeps one
//! i128 per 32 exponents: a value's mantissa, shifted by its exponent's offset in its bucket (at most 85
//! bits), is added to its bucket. Integer additions are exact and commute, so the accumulator after any
//! sequence of additions and merges of the same values is the same; [`ExactSum::value`] rounds the exact
//! total once. Up to 2^40 values may be added before a bucket could overflow.

use serde::{Deserialize, Serialize};

/// Buckets of 32 exponents covering every finite f64 (exponents -1074 ..= 971 of the integer mantissa).
const BUCKETS: usize = 65;

/// An exact, order-independent sum of f64 values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactSum {
    buckets: Vec<i128>,
}

impl Default for ExactSum {
    fn default() -> Self {
        ExactSum { buckets: vec![0; BUCKETS] }
    }
}

impl ExactSum {
    /// An empty sum.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `x` (non-finite values are ignored: callers check finiteness).
    #[inline]
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() || x == 0.0 {
            return;
        }
        let bits = x.to_bits();
        let biased = ((bits >> 52) & 0x7FF) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        // x = mant * 2^(e - 1074) with e >= 0.
        let (mant, e) = if biased == 0 { (frac, 0) } else { (frac | (1u64 << 52), biased - 1) };
        let (b, s) = ((e / 32) as usize, (e % 32) as u32);
        let v = (mant as i128) << s;
        if x < 0.0 {
            self.buckets[b] -= v;
        } else {
            self.buckets[b] += v;
        }
    }

    /// Adds every value of `xs`.
    pub fn extend(&mut self, xs: impl IntoIterator<Item = f64>) {
        for x in xs {
            self.add(x);
        }
    }

    /// Adds another partial sum (exact).
    pub fn merge(&mut self, other: &ExactSum) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += *b;
        }
    }

    /// The exact total, rounded once to the nearest f64 (ties to even).
    pub fn value(&self) -> f64 {
        // Carry into 32-bit limbs: total = sum(limb[i] * 2^(32 i - 1074)) + carry * 2^(32 BUCKETS - 1074).
        let mut limbs = [0u64; BUCKETS + 4];
        let mut carry: i128 = 0;
        for (i, &b) in self.buckets.iter().enumerate() {
            let v = b + carry;
            limbs[i] = (v & 0xFFFF_FFFF) as u64;
            carry = v >> 32;
        }
        for limb in limbs[BUCKETS..].iter_mut() {
            *limb = (carry & 0xFFFF_FFFF) as u64;
            carry >>= 32;
        }
        // carry is now 0 (non-negative total) or -1 (negative: two's complement over the limbs).
        let negative = carry < 0;
        if negative {
            let mut c = 1u64;
            for limb in limbs.iter_mut() {
                let v = (!*limb & 0xFFFF_FFFF) + c;
                *limb = v & 0xFFFF_FFFF;
                c = v >> 32;
            }
        }
        let Some(top) = limbs.iter().rposition(|&l| l != 0) else { return 0.0 };
        // The top three limbs (96 bits, at least 65 significant) with a sticky bit for the rest round
        // correctly in one conversion.
        let lo = top.saturating_sub(2);
        let mut m: u128 = 0;
        for i in (lo..=top).rev() {
            m = (m << 32) | limbs[i] as u128;
        }
        if limbs[..lo].iter().any(|&l| l != 0) {
            m |= 1;
        }
        let mag = m as f64 * pow2(32 * lo as i64 - 1074);
        if negative { -mag } else { mag }
    }
}

/// 2^k as an f64 (0 or infinity outside the range), applied in steps so that subnormal and large
/// factors stay exact.
fn pow2(k: i64) -> f64 {
    let mut out = 1.0f64;
    let mut k = k;
    while k != 0 {
        let step = k.clamp(-1000, 1000);
        out *= f64::from_bits(((step + 1023) as u64) << 52);
        k -= step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sample::SplitMix64;

    #[test]
    fn sums_are_exact_and_order_free() {
        let mut rng = SplitMix64::new(3);
        let xs: Vec<f64> = (0..10_000)
            .map(|i| {
                let u = rng.next_f64() - 0.5;
                u * 10f64.powi((i % 40) as i32 - 20)
            })
            .collect();
        let mut a = ExactSum::new();
        a.extend(xs.iter().copied());
        let mut b = ExactSum::new();
        b.extend(xs.iter().rev().copied());
        let (mut c, mut d) = (ExactSum::new(), ExactSum::new());
        c.extend(xs.iter().step_by(2).copied());
        d.extend(xs.iter().skip(1).step_by(2).copied());
        c.merge(&d);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.value().to_bits(), c.value().to_bits());
        // Close to a compensated float sum.
        let naive: f64 = xs.iter().sum();
        assert!((a.value() - naive).abs() <= 1e-9 * naive.abs().max(1.0));
    }

    #[test]
    fn small_cases_are_exact() {
        let mut s = ExactSum::new();
        s.extend([1e100, 1.0, -1e100]);
        assert_eq!(s.value(), 1.0);
        let mut s = ExactSum::new();
        s.extend([0.1, 0.2]);
        assert_eq!(s.value(), 0.30000000000000004);
        let mut s = ExactSum::new();
        s.extend([-3.5, 1.25, f64::MIN_POSITIVE / 4.0]);
        assert_eq!(s.value(), -2.25);
        let mut s = ExactSum::new();
        s.extend([f64::MAX, -f64::MAX, -5e-324]);
        assert_eq!(s.value(), -5e-324);
        assert_eq!(ExactSum::new().value(), 0.0);
    }
}
