//! Feature transforms: per-column statistics (fitted column-parallel) and element-wise kernels
//! (applied row-block-parallel), NaN-aware the way scikit-learn's preprocessing is.
//!
//! Everything reads a borrowed [`DenseMatrix`] (numpy f32/f64, any order) and writes a fresh row-major
//! f64 buffer, so callers get a C-ordered (rows, columns) matrix back. Results never depend on the
//! thread count: each column's statistic is computed by one thread in row order, and each output
//! element by a pure function of its input.

pub mod apply;
pub mod encode;
pub mod stats;
pub mod target;

use rayon::prelude::*;

use crate::data::frame::DenseMatrix;
use crate::error::{Error, Result};

/// Rows handed to one task by the element-wise kernels.
const ROW_BLOCK: usize = 2048;

/// Column `j` of `m`, as f64.
pub fn column(m: &DenseMatrix<'_>, j: usize) -> Vec<f64> {
    match m {
        DenseMatrix::F32(a) => a.column(j).iter().map(|&v| v as f64).collect(),
        DenseMatrix::F64(a) => a.column(j).to_vec(),
    }
}

/// The error for an infinite input value.
pub fn infinity_error(row: usize, col: usize) -> Error {
    Error::data(format!(
        "Input X contains infinity or a value too large for float64 at row {row}, column {col}; \
         transforms accept finite values and NaN (missing)"
    ))
}

/// Computes one statistic per column in parallel (column order kept).
pub fn per_column<T: Send>(
    m: &DenseMatrix<'_>,
    n_threads: i64,
    f: impl Fn(usize, Vec<f64>) -> Result<T> + Sync + Send,
) -> Result<Vec<T>> {
    let (_, n_cols) = m.dim();
    crate::parallel::run_in_pool(n_threads, || {
        (0..n_cols).into_par_iter().map(|j| f(j, column(m, j))).collect::<Result<Vec<T>>>()
    })?
}

/// Applies `f(value, column) -> output` to every element, writing a row-major (rows, cols) buffer.
/// An infinite input is an error (named by row and column); NaN is passed to `f`.
pub fn map_elements(
    m: &DenseMatrix<'_>,
    n_threads: i64,
    f: impl Fn(f64, usize) -> f64 + Sync + Send,
) -> Result<Vec<f64>> {
    let (n_rows, n_cols) = m.dim();
    let mut out = vec![0.0f64; n_rows * n_cols];
    if n_cols == 0 {
        return Ok(out);
    }
    crate::parallel::run_in_pool(n_threads, || {
        out.par_chunks_mut(ROW_BLOCK * n_cols).enumerate().try_for_each(|(b, chunk)| {
            let row0 = b * ROW_BLOCK;
            for (r, orow) in chunk.chunks_mut(n_cols).enumerate() {
                let i = row0 + r;
                macro_rules! row {
                    ($a:expr) => {
                        for (j, (o, &x)) in orow.iter_mut().zip($a.row(i).iter()).enumerate() {
                            let x = x as f64;
                            if x.is_infinite() {
                                return Err(infinity_error(i, j));
                            }
                            *o = f(x, j);
                        }
                    };
                }
                match m {
                    DenseMatrix::F32(a) => row!(a),
                    DenseMatrix::F64(a) => row!(a),
                }
            }
            Ok(())
        })
    })??;
    Ok(out)
}
