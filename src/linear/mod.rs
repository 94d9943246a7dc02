//! Linear models: ridge (Cholesky through faer), logistic regression (L-BFGS and Newton-Cholesky),
//! elastic net (coordinate descent) and SGD, with one prediction path ([`LinearModel::decision`]).
//!
//! Heavy reductions (Gram matrices, gradients, Hessians) run over fixed blocks of rows in parallel;
//! each block's partial result is computed sequentially (Gram matrices by [`gram::lower_gram`], the
//! rest with faer) and the partials are summed in block order, so results do not depend on the thread
//! count.

pub mod cd;
pub mod gram;
pub mod logistic;
pub mod ridge;
pub mod sgd;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::frame::DenseMatrix;
use crate::error::{Error, Result};
pub use gram::lower_gram;

/// Rows per block of the parallel reductions.
pub const BLOCK: usize = 4096;

/// A fitted linear model: `decision = X coef^T + intercept`, one row of `coef` per output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    /// (n_outputs, n_features), row-major.
    pub coef: Vec<f64>,
    /// One per output.
    pub intercept: Vec<f64>,
    /// Inputs.
    pub n_features: usize,
    /// Outputs (targets, or classes for a multinomial model; 1 for binary).
    pub n_outputs: usize,
    /// Class labels of a classifier (as f64 codes into the Python-side labels), empty for regressors.
    pub classes: Vec<f64>,
    /// What the model is ("Ridge", "LogisticRegression", ...), for messages.
    pub kind: String,
    /// Caller metadata (JSON text: estimator parameters, class labels); never executed.
    pub meta: String,
}

impl LinearModel {
    /// The decision function: a row-major (rows, n_outputs) matrix.
    pub fn decision(&self, x: &DenseMatrix<'_>, n_threads: i64) -> Result<Vec<f64>> {
        let (n, m) = x.dim();
        if m != self.n_features {
            return Err(Error::data(format!(
                "X has {m} features, but {} is expecting {} features as input.",
                self.kind, self.n_features
            )));
        }
        let k = self.n_outputs;
        let mut out = vec![0.0; n * k];
        if n == 0 {
            return Ok(out);
        }
        let mut w = Mat::<f64>::zeros(m, k);
        for c in 0..k {
            for j in 0..m {
                w[(j, c)] = self.coef[c * m + j];
            }
        }
        crate::parallel::run_in_pool(n_threads, || {
            out.par_chunks_mut(BLOCK * k).enumerate().try_for_each(|(b, chunk)| {
                let row0 = b * BLOCK;
                let rows = chunk.len() / k;
                let bt = block_t(x, row0..row0 + rows, None, None, false)?;
                let mut z = Mat::<f64>::zeros(rows, k);
                matmul(z.as_mut(), Accum::Replace, bt.transpose(), w.as_ref(), 1.0, Par::Seq);
                for i in 0..rows {
                    for c in 0..k {
                        chunk[i * k + c] = z[(i, c)] + self.intercept[c];
                    }
                }
                Ok::<(), Error>(())
            })
        })??;
        Ok(out)
    }
}

/// The error for a NaN or infinite value of X at (row, column).
pub fn non_finite_error(v: f64, row: usize, col: usize) -> Error {
    Error::data(format!(
        "Input X contains {} at row {row}, column {col}; linear models need finite values \
         (impute missing values first, e.g. with SimpleImputer)",
        if v.is_nan() { "NaN" } else { "infinity" }
    ))
}

/// Rows `rows` of `x` as a transposed block: a (features [+1], rows) faer matrix whose column i is row
/// i, minus `center`, times `scale[i]` when given, with a trailing 1 when `ones`. Infinite or NaN
/// values are an error naming row and column.
pub fn block_t(
    x: &DenseMatrix<'_>,
    rows: std::ops::Range<usize>,
    center: Option<&[f64]>,
    scale: Option<&[f64]>,
    ones: bool,
) -> Result<Mat<f64>> {
    let m = x.dim().1;
    let r = rows.len();
    let p = m + ones as usize;
    let mut bt = Mat::<f64>::zeros(p, r);
    let zeros = vec![0.0; m];
    let center = center.unwrap_or(&zeros);
    for (i, row) in rows.clone().enumerate() {
        let s = scale.map_or(1.0, |s| s[i]);
        // Column i of bt is contiguous: fill it as a slice.
        let col = &mut bt.col_as_slice_mut(i)[..p];
        let mut finite = true;
        macro_rules! fill {
            ($a:expr) => {{
                let src = $a.row(row);
                match src.as_slice() {
                    Some(src) => {
                        for ((o, &v), &c) in col[..m].iter_mut().zip(src).zip(center) {
                            let v = v as f64;
                            finite &= v.is_finite();
                            *o = (v - c) * s;
                        }
                    }
                    None => {
                        for ((o, &v), &c) in col[..m].iter_mut().zip(src.iter()).zip(center) {
                            let v = v as f64;
                            finite &= v.is_finite();
                            *o = (v - c) * s;
                        }
                    }
                }
                if !finite {
                    let j = src.iter().position(|v| !(*v as f64).is_finite()).unwrap_or(0);
                    return Err(non_finite_error(src[j] as f64, row, j));
                }
            }};
        }
        match x {
            DenseMatrix::F32(a) => fill!(a),
            DenseMatrix::F64(a) => fill!(a),
        }
        if ones {
            col[m] = s;
        }
    }
    Ok(bt)
}

/// Runs `f(block_index, row_range)` over fixed row blocks in parallel, returning results in block order.
pub fn over_blocks<T: Send>(
    n_rows: usize,
    f: impl Fn(usize, std::ops::Range<usize>) -> Result<T> + Sync + Send,
) -> Result<Vec<T>> {
    over_blocks_of(BLOCK, n_rows, f)
}

/// [`over_blocks`] with blocks of `size` rows.
pub fn over_blocks_of<T: Send>(
    size: usize,
    n_rows: usize,
    f: impl Fn(usize, std::ops::Range<usize>) -> Result<T> + Sync + Send,
) -> Result<Vec<T>> {
    let n_blocks = n_rows.div_ceil(size);
    (0..n_blocks)
        .into_par_iter()
        .map(|b| f(b, b * size..((b + 1) * size).min(n_rows)))
        .collect()
}

/// Turns the lower triangle of an uncentred Gram sum into the full centred one: subtracts
/// `weight * shift shift'` (the sum of weights times the offset of the mean from the centre used),
/// then mirrors the lower triangle above the diagonal.
pub fn centre_and_mirror(g: &mut Mat<f64>, weight: f64, shift: Option<&[f64]>) {
    let m = g.nrows();
    if let Some(d) = shift {
        for j in 0..m {
            for i in j..m {
                g[(i, j)] -= weight * d[i] * d[j];
            }
        }
    }
    for i in 0..m {
        for j in i + 1..m {
            g[(i, j)] = g[(j, i)];
        }
    }
}

/// Per-block sums (two matrices, two vectors) added up in block order.
pub type BlockSums = (Mat<f64>, Mat<f64>, Vec<f64>, Vec<f64>);

/// Adds per-block sums in block order; `dims` gives the shapes (rows and columns of the two matrices,
/// lengths of the two vectors) for when there are no blocks.
pub fn fold_blocks(parts: Vec<BlockSums>, dims: ((usize, usize), (usize, usize), usize, usize)) -> BlockSums {
    let (da, db, la, lb) = dims;
    let mut gs = Vec::with_capacity(parts.len());
    let mut xys = Vec::with_capacity(parts.len());
    let (mut a, mut b) = (vec![0.0; la], vec![0.0; lb]);
    for (g, xy, u, v) in parts {
        gs.push(g);
        xys.push(xy);
        a.iter_mut().zip(&u).for_each(|(s, x)| *s += x);
        b.iter_mut().zip(&v).for_each(|(s, x)| *s += x);
    }
    (sum_in_order(gs, da.0, da.1), sum_in_order(xys, db.0, db.1), a, b)
}

/// Sums matrices in order.
pub fn sum_in_order(parts: Vec<Mat<f64>>, nrows: usize, ncols: usize) -> Mat<f64> {
    let mut acc = Mat::<f64>::zeros(nrows, ncols);
    for p in parts {
        acc += p;
    }
    acc
}

/// Per-column weighted means of X (weights `w`, or uniform), read row by row in place; a NaN or
/// infinite value is an error naming its row and column.
pub fn weighted_means(x: &DenseMatrix<'_>, w: Option<&[f64]>) -> Result<Vec<f64>> {
    let (n, m) = x.dim();
    let parts = over_blocks(n, |_, rows| {
        let mut s = vec![0.0; m + 1];
        let mut finite = true;
        crate::transform::stats::for_each_row(x, rows.clone(), |i, row| {
            let wi = w.map_or(1.0, |w| w[i]);
            for (t, &v) in s.iter_mut().zip(row) {
                finite &= v.is_finite();
                *t += wi * v;
            }
            s[m] += wi;
        });
        if !finite {
            let mut hit = None;
            crate::transform::stats::for_each_row(x, rows, |i, row| {
                if hit.is_none() {
                    hit = row.iter().position(|v| !v.is_finite()).map(|j| non_finite_error(row[j], i, j));
                }
            });
            return Err(hit.unwrap_or_else(|| Error::Internal("a non-finite value vanished".into())));
        }
        Ok(s)
    })?;
    let mut tot = vec![0.0; m + 1];
    for p in parts {
        for (t, v) in tot.iter_mut().zip(p) {
            *t += v;
        }
    }
    let sw = tot[m];
    Ok(tot[..m].iter().map(|s| s / sw).collect())
}

/// Checks sample weights: one per row, finite, >= 0, not all zero.
pub fn check_weights(w: Option<&[f64]>, n: usize) -> Result<()> {
    if let Some(w) = w {
        if w.len() != n {
            return Err(Error::data(format!("sample_weight has {} values but X has {n} rows", w.len())));
        }
        if let Some(i) = w.iter().position(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::data(format!("sample_weight[{i}] = {}; weights must be finite and >= 0", w[i])));
        }
        if w.iter().all(|&v| v == 0.0) {
            return Err(Error::data("Sample weights must contain at least one non-zero number (all weights are zero)"));
        }
    }
    Ok(())
}

/// Checks a target: finite values.
pub fn check_target(y: &[f64], what: &str) -> Result<()> {
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(format!("{what} holds {} at row {i}; the target must be finite (no NaN)", y[i])));
    }
    Ok(())
}

/// Solves the symmetric positive (semi-)definite system A X = B: Cholesky, or a pseudo-inverse solve
/// (the minimum-norm solution) when A is singular. Never returns NaN for finite input.
pub fn solve_spd(a: &Mat<f64>, b: &Mat<f64>) -> Result<(Mat<f64>, bool)> {
    use faer::linalg::solvers::Solve;
    if let Ok(llt) = a.llt(faer::Side::Lower) {
        // A factor with a tiny pivot relative to the largest means A is numerically singular: the
        // Cholesky solve would be dominated by rounding, so take the minimum-norm solution instead.
        let l = llt.L();
        let n = l.nrows();
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for i in 0..n {
            let d = l[(i, i)].abs();
            lo = lo.min(d);
            hi = hi.max(d);
        }
        let well_conditioned = n == 0 || (lo / hi).powi(2) > 1e3 * f64::EPSILON * n as f64;
        let x = llt.solve(b);
        if well_conditioned && x.col_iter().all(|c| c.iter().all(|v| v.is_finite())) {
            return Ok((x, false));
        }
    }
    let evd = a
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::data(format!("the linear system could not be solved: {e:?}")))?;
    let pinv = evd.pseudoinverse();
    let x = &pinv * b;
    if !x.col_iter().all(|c| c.iter().all(|v| v.is_finite())) {
        return Err(Error::data("the linear system is singular and has no finite solution"));
    }
    Ok((x, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn decision_is_x_coef_plus_intercept() {
        let m = LinearModel {
            coef: vec![1.0, 2.0, -1.0, 0.5],
            intercept: vec![0.5, -1.0],
            n_features: 2,
            n_outputs: 2,
            classes: vec![],
            kind: "test".into(),
            meta: String::new(),
        };
        let x = array![[1.0, 1.0], [2.0, 0.0]];
        let d = m.decision(&DenseMatrix::F64(x.view()), 2).unwrap();
        assert_eq!(d, vec![3.5, -1.5, 2.5, -3.0]);
        let bad = array![[1.0, f64::NAN]];
        let e = m.decision(&DenseMatrix::F64(bad.view()), 1).unwrap_err().to_string();
        assert!(e.contains("NaN at row 0, column 1"), "{e}");
    }

    #[test]
    fn singular_system_falls_back_to_min_norm() {
        let mut a = Mat::<f64>::zeros(2, 2);
        a[(0, 0)] = 1.0;
        a[(0, 1)] = 1.0;
        a[(1, 0)] = 1.0;
        a[(1, 1)] = 1.0;
        let mut b = Mat::<f64>::zeros(2, 1);
        b[(0, 0)] = 2.0;
        b[(1, 0)] = 2.0;
        let (x, fell_back) = solve_spd(&a, &b).unwrap();
        assert!(fell_back);
        assert!((x[(0, 0)] - 1.0).abs() < 1e-12 && (x[(1, 0)] - 1.0).abs() < 1e-12);
    }
}
