//! Element-wise kernels: affine scaling with optional clipping, imputation, and the quantile map to a
//! uniform or normal output (with the same bound handling as scikit-learn's QuantileTransformer).

use super::map_elements;
use crate::data::frame::DenseMatrix;
use crate::error::{Error, Result};

/// Per-column affine map `((x - sub) / div) * mul + add`, then clipped to `clip` when given.
/// NaN passes through.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Affine {
    /// Subtracted first.
    pub sub: Vec<f64>,
    /// Then divided by.
    pub div: Vec<f64>,
    /// Then multiplied by.
    pub mul: Vec<f64>,
    /// Then added.
    pub add: Vec<f64>,
    /// Output bounds.
    pub clip: Option<(f64, f64)>,
}

fn check_len(name: &str, v: &[f64], n: usize) -> Result<()> {
    if v.len() != n {
        return Err(Error::data(format!(
            "X has {n} features, but the transform was fitted with {} ({name})",
            v.len()
        )));
    }
    Ok(())
}

impl Affine {
    /// Applies the map to every element.
    pub fn apply(&self, m: &DenseMatrix<'_>, n_threads: i64) -> Result<Vec<f64>> {
        let (n_rows, n) = m.dim();
        for (name, v) in [("sub", &self.sub), ("div", &self.div), ("mul", &self.mul), ("add", &self.add)] {
            check_len(name, v, n)?;
        }
        if let DenseMatrix::F64(a) = m {
            if let Some(flat) = a.as_slice() {
                return self.apply_rows(flat, n_rows, n, n_threads);
            }
        }
        let clip = self.clip;
        map_elements(m, n_threads, |x, j| {
            let y = ((x - self.sub[j]) / self.div[j]) * self.mul[j] + self.add[j];
            match clip {
                Some((lo, hi)) if !y.is_nan() => y.max(lo).min(hi),
                _ => y,
            }
        })
    }

    /// The same map on a C-contiguous f64 matrix, in straight-line loops the compiler vectorises.
    /// Columns whose divisor is 1 skip the division (x / 1 is exactly x, so the numbers are the same).
    fn apply_rows(&self, x: &[f64], n_rows: usize, n: usize, n_threads: i64) -> Result<Vec<f64>> {
        use rayon::prelude::*;
        let mut out = super::output_buffer(n_rows * n);
        if n == 0 {
            return Ok(out);
        }
        const ROWS: usize = 1024;
        let (sub, div, mul, add) = (&self.sub[..n], &self.div[..n], &self.mul[..n], &self.add[..n]);
        let divides = div.iter().any(|&d| d != 1.0);
        let clip = self.clip;
        // A large output does not fit in cache: it is written with non-temporal stores where the
        // machine allows, so its lines are not read before being overwritten.
        #[cfg(target_arch = "x86_64")]
        let streamer = (out.len() * 8 >= STREAM_MIN_BYTES).then(|| stream::Streamer::new(self, n, divides)).flatten();
        crate::parallel::run_in_pool(n_threads, || {
            out.par_chunks_mut(ROWS * n).zip(x.par_chunks(ROWS * n)).enumerate().try_for_each(|(b, (o, xi))| {
                #[cfg(target_arch = "x86_64")]
                let streamed = streamer.as_ref().map(|s| s.run(o, xi, b * ROWS * n));
                #[cfg(not(target_arch = "x86_64"))]
                let streamed: Option<bool> = None;
                // Row by row unless the chunk was streamed (then only its infinity flag is left).
                let (mut inf, rows) = match streamed {
                    Some(inf) => (inf, 0),
                    None => (false, o.len()),
                };
                for (orow, xrow) in o[..rows].chunks_exact_mut(n).zip(xi.chunks_exact(n)) {
                    inf |= if divides {
                        affine_row_div(orow, xrow, sub, div, mul, add)
                    } else {
                        affine_row(orow, xrow, sub, mul, add)
                    };
                    if let Some((lo, hi)) = clip {
                        for y in orow.iter_mut() {
                            if !y.is_nan() {
                                *y = y.max(lo).min(hi);
                            }
                        }
                    }
                }
                if inf {
                    let at = xi.iter().position(|v| v.is_infinite()).unwrap_or(0);
                    return Err(super::infinity_error(b * ROWS + at / n, at % n));
                }
                Ok(())
            })
        })??;
        Ok(out)
    }
}

/// Outputs at least this large are written with non-temporal stores (x86_64 with AVX-512).
const STREAM_MIN_BYTES: usize = 16 << 20;

/// The affine map over a C-ordered chunk seen as one flat run of values, in AVX-512 vectors written
/// with non-temporal stores. The per-column parameters are laid out repeated over lcm(columns, 8)
/// values, so each vector of 8 consecutive values finds its 8 parameters side by side. The arithmetic
/// is the scalar path's, operation for operation (no fused multiply-add), so the numbers are the same.
#[cfg(target_arch = "x86_64")]
mod stream {
    use super::Affine;
    use std::arch::x86_64::*;

    pub struct Streamer {
        period: usize,
        sub: Vec<f64>,
        div: Vec<f64>,
        mul: Vec<f64>,
        add: Vec<f64>,
        divides: bool,
        clip: Option<(f64, f64)>,
    }

    impl Streamer {
        /// None without AVX-512F, or when the repeated parameters would not stay in L1 (period over 1024).
        pub fn new(a: &Affine, n: usize, divides: bool) -> Option<Self> {
            if n == 0 || !std::arch::is_x86_feature_detected!("avx512f") {
                return None;
            }
            // lcm(n, 8): 8 is a power of two, so the common factor is the power of two dividing n, up to 8.
            let period = n * 8 / (1usize << n.trailing_zeros().min(3));
            if period > 1024 {
                return None;
            }
            // Eight extra values, so a vector starting anywhere in the period reads its parameters in one run.
            let spread = |v: &[f64]| (0..period + 8).map(|i| v[i % n]).collect::<Vec<f64>>();
            Some(Self {
                period,
                sub: spread(&a.sub),
                div: spread(&a.div),
                mul: spread(&a.mul),
                add: spread(&a.add),
                divides,
                clip: a.clip,
            })
        }

        /// Maps `x` into `o` (equal lengths; the chunk begins at value `start` of the matrix, counted
        /// row by row). True when `x` holds an infinite value.
        pub fn run(&self, o: &mut [f64], x: &[f64], start: usize) -> bool {
            assert_eq!(o.len(), x.len(), "the chunk's input and output differ in length");
            // SAFETY: AVX-512F was detected in `new`.
            unsafe {
                match (self.divides, self.clip.is_some()) {
                    (false, false) => self.run_avx512::<false, false>(o, x, start),
                    (false, true) => self.run_avx512::<false, true>(o, x, start),
                    (true, false) => self.run_avx512::<true, false>(o, x, start),
                    (true, true) => self.run_avx512::<true, true>(o, x, start),
                }
            }
        }

        #[inline(always)]
        fn one(&self, v: f64, k: usize) -> f64 {
            let mut y = v - self.sub[k];
            if self.divides {
                y /= self.div[k];
            }
            y = y * self.mul[k] + self.add[k];
            match self.clip {
                Some((lo, hi)) if !y.is_nan() => y.max(lo).min(hi),
                _ => y,
            }
        }

        #[target_feature(enable = "avx512f")]
        unsafe fn run_avx512<const DIV: bool, const CLIP: bool>(&self, o: &mut [f64], x: &[f64], start: usize) -> bool {
            let len = o.len();
            let p = self.period;
            // Values before the first 64-byte boundary of the output, one at a time.
            let head = ((64 - o.as_ptr() as usize % 64) % 64 / 8).min(len);
            let mut inf = false;
            for e in 0..head {
                inf |= x[e].abs() == f64::INFINITY;
                o[e] = self.one(x[e], (start + e) % p);
            }
            let (lo, hi) = self.clip.unwrap_or((0.0, 0.0));
            let (lo, hi, infinity) = (_mm512_set1_pd(lo), _mm512_set1_pd(hi), _mm512_set1_pd(f64::INFINITY));
            let (sub, div, mul, add) = (self.sub.as_ptr(), self.div.as_ptr(), self.mul.as_ptr(), self.add.as_ptr());
            let mut infinite: __mmask8 = 0;
            let mut k = (start + head) % p;
            let mut e = head;
            while e + 8 <= len {
                // SAFETY: e + 8 <= len for x and o; k + 8 <= period + 8 for the parameters; o + e is
                // 64-byte aligned (head), as the streaming store needs.
                unsafe {
                    let v = _mm512_loadu_pd(x.as_ptr().add(e));
                    infinite |= _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(_mm512_abs_pd(v), infinity);
                    let mut y = _mm512_sub_pd(v, _mm512_loadu_pd(sub.add(k)));
                    if DIV {
                        y = _mm512_div_pd(y, _mm512_loadu_pd(div.add(k)));
                    }
                    y = _mm512_add_pd(_mm512_mul_pd(y, _mm512_loadu_pd(mul.add(k))), _mm512_loadu_pd(add.add(k)));
                    if CLIP {
                        // MAXPD/MINPD return the second operand when either is NaN: NaN passes through.
                        y = _mm512_min_pd(hi, _mm512_max_pd(lo, y));
                    }
                    _mm512_stream_pd(o.as_mut_ptr().add(e), y);
                }
                e += 8;
                k += 8;
                if k >= p {
                    k -= p;
                }
            }
            for e in e..len {
                inf |= x[e].abs() == f64::INFINITY;
                o[e] = self.one(x[e], (start + e) % p);
            }
            // The streamed values are in memory before the chunk is reported done.
            _mm_sfence();
            inf || infinite != 0
        }
    }
}

/// One row of `((x - sub) / div) * mul + add`; true when the row holds an infinite value.
#[inline]
fn affine_row_div(o: &mut [f64], x: &[f64], sub: &[f64], div: &[f64], mul: &[f64], add: &[f64]) -> bool {
    let n = o.len();
    let (x, sub, div, mul, add) = (&x[..n], &sub[..n], &div[..n], &mul[..n], &add[..n]);
    let mut inf = false;
    for j in 0..n {
        let v = x[j];
        inf |= v.abs() == f64::INFINITY;
        o[j] = ((v - sub[j]) / div[j]) * mul[j] + add[j];
    }
    inf
}

/// One row of `(x - sub) * mul + add` (all divisors 1); true when the row holds an infinite value.
#[inline]
fn affine_row(o: &mut [f64], x: &[f64], sub: &[f64], mul: &[f64], add: &[f64]) -> bool {
    let n = o.len();
    let (x, sub, mul, add) = (&x[..n], &sub[..n], &mul[..n], &add[..n]);
    let mut inf = false;
    for j in 0..n {
        let v = x[j];
        inf |= v.abs() == f64::INFINITY;
        o[j] = (v - sub[j]) * mul[j] + add[j];
    }
    inf
}

/// Replaces missing values of column j by `fill[j]`.
pub fn impute(m: &DenseMatrix<'_>, fill: &[f64], n_threads: i64) -> Result<Vec<f64>> {
    check_len("fill", fill, m.dim().1)?;
    map_elements(m, n_threads, |x, j| if x.is_nan() { fill[j] } else { x })
}

/// Bin index of each value: the count of `inner[j]` edges <= x (numpy's `searchsorted(.., side="right")`).
/// NaN is an error here (binning needs a value).
pub fn digitize(m: &DenseMatrix<'_>, inner: &[Vec<f64>], n_threads: i64) -> Result<Vec<f64>> {
    if inner.len() != m.dim().1 {
        return Err(Error::data(format!("X has {} features, but the bins were fitted with {}", m.dim().1, inner.len())));
    }
    map_elements(m, n_threads, |x, j| {
        if x.is_nan() {
            f64::NAN
        } else {
            inner[j].partition_point(|&e| e <= x) as f64
        }
    })
}

/// numpy's `interp(x, xp, fp)` for increasing `xp` (ties allowed), without NaN in `x`.
#[inline]
pub fn interp(x: f64, xp: &[f64], fp: &[f64]) -> f64 {
    let n = xp.len();
    if x > xp[n - 1] {
        return fp[n - 1];
    }
    if x < xp[0] {
        return fp[0];
    }
    // The last j with xp[j] <= x.
    let j = xp.partition_point(|&v| v <= x) - 1;
    if j == n - 1 || x == xp[j] {
        return fp[j];
    }
    let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    let y = slope * (x - xp[j]) + fp[j];
    if y.is_nan() {
        let y2 = slope * (x - xp[j + 1]) + fp[j + 1];
        if y2.is_nan() && fp[j] == fp[j + 1] {
            return fp[j];
        }
        return y2;
    }
    y
}

/// The standard normal quantile function (inverse CDF): a rational first guess refined by Halley
/// steps on the complementary error function, accurate to a few ulps on (0, 1).
pub fn norm_ppf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
        1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
        6.680131188771972e+01, -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
        -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00,
    ];
    const D: [f64; 4] = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
    let lowp = 0.02425;
    let mut x = if p < lowp {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - lowp {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // Halley refinement; work on the smaller tail for precision.
    for _ in 0..2 {
        let (e, sign) = if x <= 0.0 {
            (0.5 * libm::erfc(-x / std::f64::consts::SQRT_2) - p, 1.0)
        } else {
            (-(0.5 * libm::erfc(x / std::f64::consts::SQRT_2) - (1.0 - p)), 1.0)
        };
        let u = sign * e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
        x -= u / (1.0 + x * u / 2.0);
    }
    x
}

/// Quantile map of one fitted column set: `quantiles[j]` are column j's percentiles at `references`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct QuantileMap {
    /// Per column, the fitted quantiles (non-decreasing), one per reference.
    pub quantiles: Vec<Vec<f64>>,
    /// The reference probabilities, from 0 to 1.
    pub references: Vec<f64>,
    /// Map to a standard normal instead of a uniform.
    pub normal: bool,
}

/// scikit-learn's margin for values at the fitted bounds.
const BOUNDS_THRESHOLD: f64 = 1e-7;

impl QuantileMap {
    /// Maps every element to its estimated CDF value (uniform) or its normal score.
    pub fn apply(&self, m: &DenseMatrix<'_>, n_threads: i64) -> Result<Vec<f64>> {
        let n = m.dim().1;
        if self.quantiles.len() != n {
            return Err(Error::data(format!(
                "X has {n} features, but the quantile map was fitted with {}",
                self.quantiles.len()
            )));
        }
        let refs = &self.references;
        let eps = f64::EPSILON;
        let clip_lo = norm_ppf(BOUNDS_THRESHOLD - eps);
        let clip_hi = norm_ppf(1.0 - (BOUNDS_THRESHOLD - eps));
        let normal = self.normal;
        let lookups: Vec<Lookup> = self.quantiles.iter().map(|q| Lookup::new(q)).collect();
        map_elements(m, n_threads, |x, j| {
            if x.is_nan() {
                return x;
            }
            let q = &self.quantiles[j];
            let (lo, hi) = (q[0], q[q.len() - 1]);
            let (at_lo, at_hi) = if normal {
                (x - BOUNDS_THRESHOLD < lo, x + BOUNDS_THRESHOLD > hi)
            } else {
                (x == lo, x == hi)
            };
            let mut y = if x > hi || x < lo {
                quantile_cdf(x, q, refs)
            } else {
                let (ub, first) = lookups[j].bounds(x, q);
                cdf_between(x, q, refs, ub, first)
            };
            if at_hi {
                y = 1.0;
            }
            if at_lo {
                y = 0.0;
            }
            if normal {
                norm_ppf(y).max(clip_lo).min(clip_hi)
            } else {
                y
            }
        })
    }
}

/// A per-column index over a sorted quantile table: the table's order keys split into at most 4096
/// equal key ranges, each mapped to the span of table entries inside it, so locating a value takes a
/// lookup and a search among a few entries instead of a search through the whole table.
struct Lookup {
    base: u64,
    shift: u32,
    /// starts[b] = entries with a key in a range below b.
    starts: Vec<u32>,
}

/// An order key in which numerically equal values (0.0 and -0.0) are equal; `x` is not NaN.
#[inline]
fn value_key(x: f64) -> u64 {
    let b = (x + 0.0).to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

impl Lookup {
    fn new(q: &[f64]) -> Self {
        let n = q.len();
        let base = value_key(q[0]);
        let range = value_key(q[n - 1]) - base;
        let target = (4 * n).next_power_of_two().min(4096) as u64;
        let mut shift = 0;
        while (range >> shift) >= target {
            shift += 1;
        }
        let nb = (range >> shift) as usize + 1;
        let mut starts = vec![0u32; nb + 1];
        for &v in q {
            starts[((value_key(v) - base) >> shift) as usize + 1] += 1;
        }
        for b in 1..=nb {
            starts[b] += starts[b - 1];
        }
        Lookup { base, shift, starts }
    }

    /// For `q[0] <= x <= q[last]`: (first index with q > x, first index with q >= x).
    #[inline]
    fn bounds(&self, x: f64, q: &[f64]) -> (usize, usize) {
        let b = ((value_key(x) - self.base) >> self.shift) as usize;
        let (lo, hi) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        let span = &q[lo..hi];
        (lo + span.partition_point(|&v| v <= x), lo + span.partition_point(|&v| v < x))
    }
}

/// [`quantile_cdf`] for `xp[0] <= x <= xp[last]`, given `ub` (first index with xp > x) and `first`
/// (first index with xp >= x).
#[inline]
fn cdf_between(x: f64, xp: &[f64], fp: &[f64], ub: usize, first: usize) -> f64 {
    let n = xp.len();
    let j = ub - 1;
    let up = if j == n - 1 || x == xp[j] {
        fp[j]
    } else {
        let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
        let y = slope * (x - xp[j]) + fp[j];
        if y.is_nan() {
            let y2 = slope * (x - xp[j + 1]) + fp[j + 1];
            if y2.is_nan() && fp[j] == fp[j + 1] {
                fp[j]
            } else {
                y2
            }
        } else {
            y
        }
    };
    let i = first;
    let down = if i == 0 || x == xp[i] {
        -fp[i]
    } else {
        let (x0, x1, f0, f1) = (-xp[i], -xp[i - 1], -fp[i], -fp[i - 1]);
        let slope = (f1 - f0) / (x1 - x0);
        let y = slope * (-x - x0) + f0;
        if y.is_nan() {
            let y2 = slope * (-x - x1) + f1;
            if y2.is_nan() && f0 == f1 {
                f0
            } else {
                y2
            }
        } else {
            y
        }
    };
    0.5 * (up - down)
}

/// scikit-learn's `0.5 * (interp(x, xp, fp) - interp(-x, -xp[::-1], -fp[::-1]))` with one binary search:
/// the second interpolation needs the first index of the tie run the first one ends on.
#[inline]
pub fn quantile_cdf(x: f64, xp: &[f64], fp: &[f64]) -> f64 {
    let n = xp.len();
    if x > xp[n - 1] || x < xp[0] {
        return 0.5 * (interp(x, xp, fp) - interp_from_above(x, xp, fp));
    }
    // ub: first index with xp[ub] > x (>= 1 here); i: first index with xp[i] >= x.
    let ub = xp.partition_point(|&v| v <= x);
    let mut i = ub;
    while i > 0 && xp[i - 1] == x {
        i -= 1;
    }
    cdf_between(x, xp, fp, ub, i)
}

/// numpy's `interp(-x, -xp[::-1], -fp[::-1])` computed on `xp`, `fp` directly (no reversed copies): the
/// interpolation that resolves ties in `xp` from above.
#[inline]
pub fn interp_from_above(x: f64, xp: &[f64], fp: &[f64]) -> f64 {
    let n = xp.len();
    // In the reversed, negated arrays, -x sits at the last k with -xp[n-1-k] <= -x, i.e. xp[n-1-k] >= x.
    if x < xp[0] {
        return -fp[0];
    }
    if x > xp[n - 1] {
        return -fp[n - 1];
    }
    // i = first index with xp[i] >= x; k = n - 1 - i.
    let i = xp.partition_point(|&v| v < x);
    if i == 0 || x == xp[i] {
        return -fp[i];
    }
    // Neighbours in the reversed arrays: (k, k+1) = (i, i-1) in the original.
    let (x0, x1, f0, f1) = (-xp[i], -xp[i - 1], -fp[i], -fp[i - 1]);
    let slope = (f1 - f0) / (x1 - x0);
    let y = slope * (-x - x0) + f0;
    if y.is_nan() {
        let y2 = slope * (-x - x1) + f1;
        if y2.is_nan() && f0 == f1 {
            return f0;
        }
        return y2;
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn streamed_affine_is_the_row_path_bit_for_bit() {
        for n in [1usize, 3, 8, 50, 53] {
            let rows = 97;
            let x: Vec<f64> = (0..rows * n)
                .map(|i| if i % 37 == 5 { f64::NAN } else { ((i * 7919) % 1013) as f64 / 17.0 - 20.0 })
                .collect();
            let par = |k: usize| (0..n).map(|j| (j * k % 11) as f64 / 3.0 + 0.5).collect::<Vec<f64>>();
            for (div, clip) in [(vec![1.0; n], None), (par(5), None), (vec![1.0; n], Some((-1.0, 2.0))), (par(3), Some((0.0, 1.5)))] {
                let a = Affine { sub: par(7), div: div.clone(), mul: par(2), add: par(9), clip };
                let divides = div.iter().any(|&d| d != 1.0);
                let Some(s) = stream::Streamer::new(&a, n, divides) else { return }; // no AVX-512 here
                let want = a.apply(&DenseMatrix::F64(ndarray::ArrayView2::from_shape((rows, n), &x).unwrap()), 1).unwrap();
                // Chunks starting at any row, into outputs at every alignment.
                for (r0, shift) in [(0usize, 0usize), (1, 1), (3, 5), (10, 7)] {
                    let mut buf = vec![f64::NAN; rows * n + 8];
                    let out = &mut buf[shift..shift + (rows - r0) * n];
                    assert!(!s.run(out, &x[r0 * n..], r0 * n));
                    for (g, w) in out.iter().zip(&want[r0 * n..]) {
                        assert!(g.to_bits() == w.to_bits(), "n={n} {a:?}: {g} vs {w}");
                    }
                }
                let mut bad = x.clone();
                bad[(rows - 2) * n] = f64::NEG_INFINITY;
                assert!(s.run(&mut vec![0.0; bad.len()], &bad, 0), "an infinite value is reported");
            }
        }
    }

    #[test]
    fn ppf_matches_known_values() {
        // scipy.stats.norm.ppf at these points.
        let cases = [
            (0.5, 0.0),
            (0.975, 1.959963984540054),
            (0.025, -1.9599639845400545),
            (1e-7, -5.1993375821928165),
            (0.9, 1.2815515655446004),
            (1e-300, -37.0470962993612),
        ];
        for (p, want) in cases {
            let got = norm_ppf(p);
            assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "ppf({p}) = {got}, want {want}");
        }
        assert_eq!(norm_ppf(0.0), f64::NEG_INFINITY);
    }

    #[test]
    fn one_search_cdf_equals_two_interpolations() {
        let xp = [0.0, 1.0, 1.0, 1.0, 2.0, 5.0];
        let fp = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
        for x in [-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 6.0] {
            let two = 0.5 * (interp(x, &xp, &fp) - interp_from_above(x, &xp, &fp));
            assert_eq!(quantile_cdf(x, &xp, &fp), two, "x = {x}");
        }
    }

    #[test]
    fn lookup_finds_the_same_positions_as_a_search() {
        let mut q: Vec<f64> = (0..1000).map(|i| ((i as f64) / 97.0).exp() - 3.0).collect();
        q[500] = q[499];
        q[501] = q[499];
        q[10] = -0.0;
        q.sort_by(f64::total_cmp);
        let refs: Vec<f64> = (0..1000).map(|i| i as f64 / 999.0).collect();
        let lk = Lookup::new(&q);
        let mut xs: Vec<f64> = q.clone();
        xs.extend((0..5000).map(|i| q[0] + (q[999] - q[0]) * (i as f64 / 4999.0).powi(3)));
        xs.push(0.0);
        for &x in &xs {
            let (ub, first) = lk.bounds(x, &q);
            assert_eq!(ub, q.partition_point(|&v| v <= x), "x = {x}");
            assert_eq!(first, q.partition_point(|&v| v < x), "x = {x}");
            assert_eq!(cdf_between(x, &q, &refs, ub, first), quantile_cdf(x, &q, &refs));
        }
        let flat = Lookup::new(&[2.0, 2.0, 2.0]);
        assert_eq!(flat.bounds(2.0, &[2.0, 2.0, 2.0]), (3, 0));
    }

    #[test]
    fn interp_follows_numpy() {
        let xp = [0.0, 1.0, 1.0, 2.0];
        let fp = [0.0, 0.25, 0.75, 1.0];
        assert_eq!(interp(1.0, &xp, &fp), 0.75);
        assert_eq!(interp(-1.0, &xp, &fp), 0.0);
        assert_eq!(interp(3.0, &xp, &fp), 1.0);
        assert!((interp(1.5, &xp, &fp) - 0.875).abs() < 1e-15);
    }
}
