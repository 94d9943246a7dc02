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

/// Rows per block of the row-wise reductions.
const RED_BLOCK: usize = 8192;

/// Calls `visit(j, row_values)` style scans: applies `each(j, v)` to every element of rows `rows`.
#[inline]
fn scan_rows(m: &DenseMatrix<'_>, rows: std::ops::Range<usize>, mut each: impl FnMut(usize, f64)) {
    macro_rules! go {
        ($a:expr) => {
            for i in rows.clone() {
                for (j, &v) in $a.row(i).iter().enumerate() {
                    each(j, v as f64);
                }
            }
        };
    }
    match m {
        DenseMatrix::F32(a) => go!(a),
        DenseMatrix::F64(a) => go!(a),
    }
}

/// The error naming the first infinite value in `rows` (which must hold one).
fn first_infinite(m: &DenseMatrix<'_>, rows: std::ops::Range<usize>) -> crate::error::Error {
    for i in rows {
        let mut hit = None;
        scan_rows(m, i..i + 1, |j, v| {
            if v.is_infinite() && hit.is_none() {
                hit = Some(j);
            }
        });
        if let Some(j) = hit {
            return infinity_error(i, j);
        }
    }
    crate::error::Error::Internal("an infinite value vanished while being located".into())
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
    /// form scikit-learn's `_incremental_mean_and_var` uses, so the numbers agree).
    pub fn update(&mut self, m: &DenseMatrix<'_>, n_threads: i64) -> Result<()> {
        let cols = m.dim().1;
        // Pass 1: sums and counts per column over fixed row blocks (merged in block order).
        let parts = blocks(m, n_threads, |rows| {
            let mut acc = vec![0.0f64; 2 * cols];
            let mut inf = false;
            scan_rows(m, rows.clone(), |j, v| {
                inf |= v.is_infinite();
                if !v.is_nan() {
                    acc[2 * j] += v;
                    acc[2 * j + 1] += 1.0;
                }
            });
            if inf {
                return Err(first_infinite(m, rows));
            }
            Ok(acc)
        })?;
        let mut tot = vec![0.0f64; 2 * cols];
        for p in &parts {
            for (t, v) in tot.iter_mut().zip(p) {
                *t += v;
            }
        }
        let mean_new: Vec<f64> = (0..cols).map(|j| tot[2 * j] / tot[2 * j + 1]).collect();
        // Pass 2: centred sums and squares.
        let parts2 = blocks(m, n_threads, |rows| {
            let mut acc = vec![0.0f64; 2 * cols];
            scan_rows(m, rows, |j, v| {
                if !v.is_nan() {
                    let d = v - mean_new[j];
                    acc[2 * j] += d;
                    acc[2 * j + 1] += d * d;
                }
            });
            Ok(acc)
        })?;
        let mut tot2 = vec![0.0f64; 2 * cols];
        for p in &parts2 {
            for (t, v) in tot2.iter_mut().zip(p) {
                *t += v;
            }
        }
        let batch: Vec<(f64, f64, f64)> = (0..cols)
            .map(|j| {
                let (n, sum) = (tot[2 * j + 1], tot[2 * j]);
                let (corr, sq) = (tot2[2 * j], tot2[2 * j + 1]);
                (n, sum, sq - corr * corr / n)
            })
            .collect();
        for (j, (new_n, new_sum, new_m2)) in batch.into_iter().enumerate() {
            let last_n = self.count[j];
            let last_sum = self.mean[j] * last_n;
            let n = last_n + new_n;
            let mean = (last_sum + new_sum) / n;
            let m2 = if last_n == 0.0 {
                new_m2
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
        // f64::min/max ignore a NaN operand, so missing values drop out without a branch.
        let mut lo = vec![f64::INFINITY; cols];
        let mut hi = vec![f64::NEG_INFINITY; cols];
        let mut inf = false;
        // Comparisons with NaN are false, so missing values never replace a bound.
        macro_rules! go {
            ($a:expr) => {
                for i in rows.clone() {
                    let row = $a.row(i);
                    for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row.iter()) {
                        let v = v as f64;
                        inf |= v.is_infinite();
                        *l = if v < *l { v } else { *l };
                        *h = if v > *h { v } else { *h };
                    }
                }
            };
        }
        match m {
            DenseMatrix::F32(a) => go!(a),
            DenseMatrix::F64(a) => go!(a),
        }
        if inf {
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
                    let virt = ((n as f64) * q + (1.0 - q) - 1.0).clamp(0.0, last);
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

/// [`percentiles`] with a choice of numpy method.
pub fn percentiles_by(
    m: &DenseMatrix<'_>,
    qs: &[f64],
    rows: Option<&[usize]>,
    method: QuantileMethod,
    n_threads: i64,
) -> Result<Vec<Vec<f64>>> {
    per_column(m, n_threads, |j, col| {
        check_finite(j, &col)?;
        let mut present: Vec<f64> = match rows {
            Some(rows) => rows.iter().map(|&r| col[r]).filter(|v| !v.is_nan()).collect(),
            None => col.into_iter().filter(|v| !v.is_nan()).collect(),
        };
        Ok(percentiles_with(&mut present, qs, method))
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
    fn mode_prefers_smallest_and_infinity_is_named() {
        let x = array![[2.0], [1.0], [2.0], [1.0], [f64::NAN]];
        assert_eq!(most_frequent(&DenseMatrix::F64(x.view()), 1).unwrap(), vec![1.0]);
        let bad = array![[1.0, f64::INFINITY]];
        let e = min_max(&DenseMatrix::F64(bad.view()), 1).unwrap_err().to_string();
        assert!(e.contains("infinity") && e.contains("column 1"), "{e}");
    }
}
