//! Per-column statistics, NaN skipped, infinities rejected: moments (mergeable across `partial_fit`
//! calls), extremes, percentiles as numpy's default "linear" method computes them, and the mode.

use super::{infinity_error, per_column};
use crate::data::frame::DenseMatrix;
use crate::error::Result;

fn check_finite(j: usize, col: &[f64]) -> Result<()> {
    match col.iter().position(|v| v.is_infinite()) {
        Some(i) => Err(infinity_error(i, j)),
        None => Ok(()),
    }
}

/// Rows per block of the row-wise reductions: small enough that a block of a 50-column matrix stays
/// in the core's cache between the passes a statistic makes over it.
const RED_BLOCK: usize = 1024;

/// Calls `each(i, row)` for every row `i` in `rows`, with the row as a contiguous f64 slice: borrowed
/// from a C-ordered f64 input, copied into a reused buffer otherwise.
#[inline]
pub(crate) fn for_each_row(m: &DenseMatrix<'_>, rows: std::ops::Range<usize>, mut each: impl FnMut(usize, &[f64])) {
    let cols = m.dim().1;
    if let DenseMatrix::F64(a) = m {
        if let Some(flat) = a.as_slice() {
            // C-ordered: the block is one contiguous run of rows.
            if cols > 0 {
                let start = rows.start;
                for (k, row) in flat[rows.start * cols..rows.end * cols].chunks_exact(cols).enumerate() {
                    each(start + k, row);
                }
            }
            return;
        }
        if a.strides()[1] == 1 || cols <= 1 {
            for i in rows {
                let row = a.row(i);
                // A row of a matrix with unit column stride is contiguous.
                let slice = row.as_slice().expect("unit column stride");
                each(i, slice);
            }
            return;
        }
    }
    let mut buf = vec![0.0f64; cols];
    for i in rows {
        match m {
            DenseMatrix::F32(a) => buf.iter_mut().zip(a.row(i)).for_each(|(b, &v)| *b = v as f64),
            DenseMatrix::F64(a) => buf.iter_mut().zip(a.row(i)).for_each(|(b, &v)| *b = v),
        }
        each(i, &buf);
    }
}

/// The error naming the first infinite value in `rows` (which must hold one).
fn first_infinite(m: &DenseMatrix<'_>, rows: std::ops::Range<usize>) -> crate::error::Error {
    let mut hit = None;
    for_each_row(m, rows, |i, row| {
        if hit.is_none() {
            if let Some(j) = row.iter().position(|v| v.is_infinite()) {
                hit = Some((i, j));
            }
        }
    });
    match hit {
        Some((i, j)) => infinity_error(i, j),
        None => crate::error::Error::Internal("an infinite value vanished while being located".into()),
    }
}

/// Per-block partial results over fixed row blocks, computed in parallel, returned in block order.
fn blocks<T: Send>(m: &DenseMatrix<'_>, n_threads: i64, f: impl Fn(std::ops::Range<usize>) -> Result<T> + Sync + Send) -> Result<Vec<T>> {
    use rayon::prelude::*;
    let n = m.dim().0;
    let nb = n.div_ceil(RED_BLOCK);
    crate::parallel::run_in_pool(n_threads, || {
        (0..nb).into_par_iter().map(|b| f(b * RED_BLOCK..((b + 1) * RED_BLOCK).min(n))).collect::<Result<Vec<T>>>()
    })?
}

/// An error naming the first infinite value, if X holds one (one parallel pass over the rows).
pub fn check_no_infinity(m: &DenseMatrix<'_>, n_threads: i64) -> Result<()> {
    blocks(m, n_threads, |rows| {
        let mut inf = false;
        for_each_row(m, rows.clone(), |_, row| inf |= row.iter().fold(false, |a, v| a | v.is_infinite()));
        if inf {
            return Err(first_infinite(m, rows));
        }
        Ok(())
    })?;
    Ok(())
}

/// Running per-column mean and (population) variance over the non-missing values seen so far.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Moments {
    /// Non-missing values seen, per column.
    pub count: Vec<f64>,
    /// Mean of those values (NaN for a column with none).
    pub mean: Vec<f64>,
    /// Population variance of those values (NaN for a column with none).
    pub var: Vec<f64>,
}

impl Moments {
    /// Empty moments for `n` columns.
    pub fn empty(n: usize) -> Self {
        Moments { count: vec![0.0; n], mean: vec![0.0; n], var: vec![0.0; n] }
    }

    /// Folds a new batch of rows into the moments (Chan, Golub and LeVeque's pairwise update, in the
    /// form scikit-learn's `_incremental_mean_and_var` uses, so the numbers agree). X is read once:
    /// each small row block is summed, then centred on its own mean while still in cache, and the
    /// blocks' (count, mean, squares) are merged in block order.
    pub fn update(&mut self, m: &DenseMatrix<'_>, n_threads: i64) -> Result<()> {
        let cols = m.dim().1;
        let parts = blocks(m, n_threads, |rows| {
            let mut cnt = vec![0.0f64; cols];
            let mut sum = vec![0.0f64; cols];
            let mut inf = false;
            for_each_row(m, rows.clone(), |_, row| {
                for ((c, s), &v) in cnt.iter_mut().zip(sum.iter_mut()).zip(row) {
                    inf |= v.is_infinite();
                    let miss = v.is_nan();
                    *s += if miss { 0.0 } else { v };
                    *c += if miss { 0.0 } else { 1.0 };
                }
            });
            if inf {
                return Err(first_infinite(m, rows));
            }
            let mean: Vec<f64> = sum.iter().zip(&cnt).map(|(s, c)| if *c > 0.0 { s / c } else { 0.0 }).collect();
            // Centred sums and squares; the sum of deviations corrects the squares for rounding.
            let mut dev = vec![0.0f64; cols];
            let mut sq = vec![0.0f64; cols];
            for_each_row(m, rows, |_, row| {
                for (((d, q), &mu), &v) in dev.iter_mut().zip(sq.iter_mut()).zip(&mean).zip(row) {
                    let x = v - mu;
                    let x = if x.is_nan() { 0.0 } else { x };
                    *d += x;
                    *q += x * x;
                }
            });
            let m2: Vec<f64> = (0..cols).map(|j| if cnt[j] > 0.0 { sq[j] - dev[j] * dev[j] / cnt[j] } else { 0.0 }).collect();
            Ok((cnt, mean, m2))
        })?;
        // Merge the blocks in order: (count, mean, M2) per column.
        let mut tn = vec![0.0f64; cols];
        let mut tmean = vec![0.0f64; cols];
        let mut tm2 = vec![0.0f64; cols];
        for (cnt, mean, m2) in &parts {
            for j in 0..cols {
                let nb = cnt[j];
                if nb == 0.0 {
                    continue;
                }
                let na = tn[j];
                let n = na + nb;
                let delta = mean[j] - tmean[j];
                tmean[j] += delta * nb / n;
                tm2[j] += m2[j] + delta * delta * na * nb / n;
                tn[j] = n;
            }
        }
        for j in 0..cols {
            let (new_n, new_m2) = (tn[j], tm2[j]);
            let new_sum = tmean[j] * new_n;
            let last_n = self.count[j];
            let last_sum = self.mean[j] * last_n;
            let n = last_n + new_n;
            let mean = (last_sum + new_sum) / n;
            let m2 = if last_n == 0.0 {
                new_m2
            } else if new_n == 0.0 {
                self.var[j] * last_n
            } else {
                let ratio = last_n / new_n;
                self.var[j] * last_n + new_m2 + ratio / n * (last_sum / ratio - new_sum).powi(2)
            };
            self.count[j] = n;
            self.mean[j] = mean;
            self.var[j] = m2 / n;
        }
        Ok(())
    }
}

/// Per column: (min, max) over non-missing values; NaN for a column with none.
pub fn min_max(m: &DenseMatrix<'_>, n_threads: i64) -> Result<Vec<(f64, f64)>> {
    let cols = m.dim().1;
    let parts = blocks(m, n_threads, |rows| {
        let mut lo = vec![f64::INFINITY; cols];
        let mut hi = vec![f64::NEG_INFINITY; cols];
        // Comparisons with NaN are false, so missing values never replace a bound.
        match m {
            DenseMatrix::F64(a) if a.as_slice().is_some() && cols > 0 => {
                // C-ordered: one row at a time against the running bounds of every column. The bounds
                // stay in L1 and each row is read once, straight through (twice as fast as sweeping the
                // block once per group of columns with the bounds in registers).
                let flat = &a.as_slice().expect("checked")[rows.start * cols..rows.end * cols];
                let (l, h) = (&mut lo[..cols], &mut hi[..cols]);
                for row in flat.chunks_exact(cols) {
                    let row = &row[..cols];
                    for j in 0..cols {
                        let v = row[j];
                        l[j] = if v < l[j] { v } else { l[j] };
                        h[j] = if v > h[j] { v } else { h[j] };
                    }
                }
            }
            _ => for_each_row(m, rows.clone(), |_, row| {
                for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                    *l = if v < *l { v } else { *l };
                    *h = if v > *h { v } else { *h };
                }
            }),
        }
        // An infinite value becomes a bound (-inf a minimum, +inf a maximum); the starting bounds
        // (+inf, -inf) stay only in columns without values.
        if lo.iter().any(|&v| v == f64::NEG_INFINITY) || hi.iter().any(|&v| v == f64::INFINITY) {
            return Err(first_infinite(m, rows));
        }
        Ok((lo, hi))
    })?;
    let mut lo = vec![f64::INFINITY; cols];
    let mut hi = vec![f64::NEG_INFINITY; cols];
    for (l, h) in parts {
        for j in 0..cols {
            lo[j] = lo[j].min(l[j]);
            hi[j] = hi[j].max(h[j]);
        }
    }
    Ok((0..cols).map(|j| if lo[j] > hi[j] { (f64::NAN, f64::NAN) } else { (lo[j], hi[j]) }).collect())
}

/// numpy's linear interpolation between neighbours `a` and `b` at fraction `t`.
#[inline]
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// How a percentile between two order statistics is taken (numpy's `method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantileMethod {
    /// numpy's default: linear interpolation (Hyndman and Fan type 7).
    Linear,
    /// The average of the inverted CDF at a jump (type 2).
    AveragedInvertedCdf,
}

/// Below this many values, percentiles select in place; above, [`select_ranks`] narrows first.
const RADIX_MIN: usize = 1 << 14;

/// An order-preserving integer key of a non-NaN f64 (the order of `f64::total_cmp`).
#[inline]
fn order_key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// The values at sorted positions `ranks` (ascending, distinct, each < len) of `values` (no NaN),
/// as a full sort would place them. One pass counts the values per bucket of the keys' top 16 bits,
/// which locates each rank's bucket; a second pass gathers only those buckets' values, and the
/// selection runs among them. `values` is not reordered.
pub fn select_ranks(values: &[f64], ranks: &[usize]) -> Vec<f64> {
    const BITS: u32 = 16;
    const SHIFT: u32 = 64 - BITS;
    let mut hist = vec![0u32; 1 << BITS];
    for &v in values {
        hist[(order_key(v) >> SHIFT) as usize] += 1;
    }
    // For each rank: its bucket and the number of values in lower buckets.
    let mut located = Vec::with_capacity(ranks.len());
    let (mut bucket, mut below) = (0usize, 0usize);
    for &r in ranks {
        while below + hist[bucket] as usize <= r {
            below += hist[bucket] as usize;
            bucket += 1;
        }
        located.push((bucket, below));
    }
    let mut slot = vec![0u8; 1 << BITS];
    let mut buckets: Vec<usize> = Vec::new();
    for &(b, _) in &located {
        if slot[b] == 0 {
            buckets.push(b);
            slot[b] = buckets.len() as u8;
        }
    }
    let mut cands: Vec<Vec<f64>> = buckets.iter().map(|&b| Vec::with_capacity(hist[b] as usize)).collect();
    for &v in values {
        let s = slot[(order_key(v) >> SHIFT) as usize];
        if s != 0 {
            cands[s as usize - 1].push(v);
        }
    }
    ranks
        .iter()
        .zip(&located)
        .map(|(&r, &(b, below))| {
            let c = &mut cands[slot[b] as usize - 1];
            *c.select_nth_unstable_by(r - below, f64::total_cmp).1
        })
        .collect()
}

/// Percentiles (in 0..=100) of `values` (no NaN inside; reordered in place) as numpy's
/// `nanpercentile(..., method="linear")` gives them. Few percentiles use selection, many a sort.
pub fn percentiles_of(values: &mut [f64], qs: &[f64]) -> Vec<f64> {
    percentiles_with(values, qs, QuantileMethod::Linear)
}

/// Percentiles as numpy computes them with `method`.
pub fn percentiles_with(values: &mut [f64], qs: &[f64], method: QuantileMethod) -> Vec<f64> {
    let n = values.len();
    if n == 0 {
        return vec![f64::NAN; qs.len()];
    }
    let last = (n - 1) as f64;
    let pos: Vec<(usize, f64)> = qs
        .iter()
        .map(|&q| {
            let q = q / 100.0;
            match method {
                QuantileMethod::Linear => {
                    // numpy's own formula for this method, (n - 1) q: the Hyndman-Fan form
                    // n q + (1 - q) - 1 is equal in exact arithmetic but can round to the other side of
                    // an integer, and then a value next to a run of ties comes out one ulp-step off.
                    let virt = (last * q).clamp(0.0, last);
                    let lo = virt.floor();
                    (lo as usize, virt - lo)
                }
                QuantileMethod::AveragedInvertedCdf => {
                    let virt = (n as f64) * q - 1.0;
                    let prev = virt.floor();
                    let gamma = if virt - prev == 0.0 { 0.5 } else { 1.0 };
                    if prev < 0.0 {
                        // Both neighbours clip to the first value.
                        (0, if prev + 1.0 <= 0.0 { 0.0 } else { gamma })
                    } else if prev >= last {
                        (n - 1, 0.0)
                    } else {
                        (prev as usize, gamma)
                    }
                }
            }
        })
        .collect();
    let mut ranks: Vec<usize> = pos.iter().flat_map(|&(lo, _)| [lo, (lo + 1).min(n - 1)]).collect();
    ranks.sort_unstable();
    ranks.dedup();
    if ranks.len() <= 24 && n >= RADIX_MIN {
        let at = select_ranks(values, &ranks);
        let value = |r: usize| at[ranks.binary_search(&r).expect("rank was selected")];
        return pos
            .iter()
            .map(|&(lo, t)| {
                let hi = (lo + 1).min(n - 1);
                lerp(value(lo), value(hi), t)
            })
            .collect();
    }
    if ranks.len() > 24 {
        values.sort_unstable_by(f64::total_cmp);
    } else {
        let mut start = 0;
        for &r in &ranks {
            if r >= start {
                values[start..].select_nth_unstable_by(r - start, f64::total_cmp);
                start = r + 1;
            }
        }
    }
    pos.iter()
        .map(|&(lo, t)| {
            let hi = (lo + 1).min(n - 1);
            lerp(values[lo], values[hi], t)
        })
        .collect()
}

/// Per column, the percentiles `qs` (0..=100) of the non-missing values, as numpy's `nanpercentile`.
/// When `rows` is given only those rows are used (a subsample).
pub fn percentiles(
    m: &DenseMatrix<'_>,
    qs: &[f64],
    rows: Option<&[usize]>,
    n_threads: i64,
) -> Result<Vec<Vec<f64>>> {
    percentiles_by(m, qs, rows, QuantileMethod::Linear, n_threads)
}

/// [`percentiles`] with a choice of numpy method. Columns are read a group at a time (a group's
/// values share cache lines in row-major input); only the subsample's rows are read when `rows` is
/// given, after one pass that rejects infinite values anywhere in X.
pub fn percentiles_by(
    m: &DenseMatrix<'_>,
    qs: &[f64],
    rows: Option<&[usize]>,
    method: QuantileMethod,
    n_threads: i64,
) -> Result<Vec<Vec<f64>>> {
    if rows.is_some() {
        check_no_infinity(m, n_threads)?;
    }
    super::per_column_values(m, rows, n_threads, |j, present| {
        if rows.is_none() {
            if let Some(i) = present.iter().position(|v| v.is_infinite()) {
                return Err(infinity_error(super::row_of_present(m, j, i), j));
            }
        }
        Ok(percentiles_with(present, qs, method))
    })
}

/// Per column, the most frequent non-missing value (the smallest among ties); NaN when none.
pub fn most_frequent(m: &DenseMatrix<'_>, n_threads: i64) -> Result<Vec<f64>> {
    per_column(m, n_threads, |j, col| {
        check_finite(j, &col)?;
        let mut v: Vec<f64> = col.into_iter().filter(|v| !v.is_nan()).collect();
        v.sort_unstable_by(f64::total_cmp);
        let (mut best, mut best_n) = (f64::NAN, 0usize);
        let mut i = 0;
        while i < v.len() {
            let mut k = i + 1;
            while k < v.len() && v[k] == v[i] {
                k += 1;
            }
            if k - i > best_n {
                best = v[i];
                best_n = k - i;
            }
            i = k;
        }
        Ok(best)
    })
}

/// Per column, how many values are missing (NaN).
pub fn missing_counts(m: &DenseMatrix<'_>, n_threads: i64) -> Result<Vec<usize>> {
    per_column(m, n_threads, |j, col| {
        check_finite(j, &col)?;
        Ok(col.iter().filter(|v| v.is_nan()).count())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn percentiles_match_numpy_linear() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        // numpy.percentile([1,2,3,4], [0, 25, 50, 90, 100]) = [1, 1.75, 2.5, 3.7, 4]
        let p = percentiles_of(&mut v, &[0.0, 25.0, 50.0, 90.0, 100.0]);
        let want = [1.0, 1.75, 2.5, 3.7, 4.0];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{p:?}");
        }
        let many: Vec<f64> = (0..=40).map(|k| k as f64 * 2.5).collect();
        let mut v2: Vec<f64> = (0..101).rev().map(|k| k as f64).collect();
        let p = percentiles_of(&mut v2, &many);
        for (a, q) in p.iter().zip(&many) {
            assert!((a - q).abs() < 1e-9);
        }
    }

    #[test]
    fn radix_selection_equals_sorting() {
        let n = 50_000;
        let mut v: Vec<f64> = (0..n).map(|i| (((i * 7919) % 10007) as f64 - 5000.0) * if i % 3 == 0 { 1e-3 } else { 1.0 }).collect();
        v[7] = -0.0;
        v[8] = 0.0;
        v.extend(std::iter::repeat_n(42.0, 20_000));
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        let ranks = [0, 1, 17_500, 17_501, 35_000, 60_000, 60_001, v.len() - 1];
        let got = select_ranks(&v, &ranks);
        for (r, g) in ranks.iter().zip(&got) {
            assert_eq!(g.to_bits(), sorted[*r].to_bits(), "rank {r}");
        }
        let qs = [0.0, 12.5, 25.0, 50.0, 75.0, 99.9, 100.0];
        let mut a = v.clone();
        let fast = percentiles_of(&mut a, &qs);
        let mut b = v[..RADIX_MIN - 1].to_vec();
        let _ = percentiles_of(&mut b, &qs);
        let slow: Vec<f64> = qs
            .iter()
            .map(|q| {
                let virt = (v.len() - 1) as f64 * (q / 100.0);
                let lo = virt.floor() as usize;
                lerp(sorted[lo], sorted[(lo + 1).min(v.len() - 1)], virt - lo as f64)
            })
            .collect();
        for (f, s) in fast.iter().zip(&slow) {
            assert!((f - s).abs() <= 1e-12 * s.abs().max(1.0), "{fast:?} vs {slow:?}");
        }
    }

    #[test]
    fn moments_merge_equals_one_pass() {
        let x = array![[1.0, f64::NAN], [2.0, 5.0], [4.0, 7.0], [8.0, f64::NAN], [3.0, 1.0]];
        let mut all = Moments::empty(2);
        all.update(&DenseMatrix::F64(x.view()), 2).unwrap();
        let mut parts = Moments::empty(2);
        parts.update(&DenseMatrix::F64(x.slice(ndarray::s![..2, ..])), 1).unwrap();
        parts.update(&DenseMatrix::F64(x.slice(ndarray::s![2.., ..])), 1).unwrap();
        assert_eq!(all.count, vec![5.0, 3.0]);
        for j in 0..2 {
            assert!((all.mean[j] - parts.mean[j]).abs() < 1e-12);
            assert!((all.var[j] - parts.var[j]).abs() < 1e-12);
        }
        assert!((all.mean[0] - 3.6).abs() < 1e-12);
        assert!((all.var[0] - 5.84).abs() < 1e-12);
    }

    #[test]
    fn linear_percentile_index_is_numpys() {
        // 963 values, the 937th the first 22: numpy's (n - 1) q puts the 97.297...th percentile exactly
        // on it (22.0); the equal-in-theory n q + (1 - q) - 1 gives 935.9999999999999 and 21.99999999999989.
        let mut v: Vec<f64> = (0..963).map(|i| if i < 936 { 21.0 } else { 22.0 }).collect();
        let q = 97.297_297_297_297_29;
        assert_eq!(percentiles_with(&mut v, &[q], QuantileMethod::Linear), vec![22.0]);
    }

    #[test]
    fn min_max_matches_a_scan_of_each_column() {
        let (n, m) = (3000, 11);
        let mut x = ndarray::Array2::from_shape_fn((n, m), |(i, j)| (((i * 31 + j * 7) % 101) as f64 - 50.0) * (j + 1) as f64);
        x.column_mut(4).fill(f64::NAN);
        x[[17, 9]] = f64::NAN;
        let got = min_max(&DenseMatrix::F64(x.view()), 2).unwrap();
        let f = x.t().as_standard_layout().to_owned();
        let strided = min_max(&DenseMatrix::F64(f.t()), 1).unwrap();
        for j in 0..m {
            let col: Vec<f64> = x.column(j).iter().copied().filter(|v| !v.is_nan()).collect();
            let want = if col.is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                (col.iter().copied().fold(f64::INFINITY, f64::min), col.iter().copied().fold(f64::NEG_INFINITY, f64::max))
            };
            for (g, what) in [(got[j], "C"), (strided[j], "F")] {
                assert!(g.0.to_bits() == want.0.to_bits() && g.1.to_bits() == want.1.to_bits(), "{what} column {j}: {g:?} vs {want:?}");
            }
        }
        x[[2500, 8]] = f64::NEG_INFINITY;
        let e = min_max(&DenseMatrix::F64(x.view()), 2).unwrap_err().to_string();
        assert!(e.contains("row 2500, column 8"), "{e}");
    }

    #[test]
    fn mode_prefers_smallest_and_infinity_is_named() {
        let x = array![[2.0], [1.0], [2.0], [1.0], [f64::NAN]];
        assert_eq!(most_frequent(&DenseMatrix::F64(x.view()), 1).unwrap(), vec![1.0]);
        let bad = array![[1.0, f64::INFINITY]];
        let e = min_max(&DenseMatrix::F64(bad.view()), 1).unwrap_err().to_string();
        assert!(e.contains("infinity") && e.contains("column 1"), "{e}");
    }
}
