//! Feature transforms: per-column statistics (fitted column-parallel) and element-wise kernels
//! (applied row-block-parallel), NaN-aware the way scikit-learn's preprocessing is.
//!
//! Everything reads a borrowed [`DenseMatrix`] (numpy f32/f64, any order) and writes a fresh row-major
//! f64 buffer, so callers get a C-ordered (rows, columns) matrix back. Results never depend on the
//! thread count: each column's statistic is computed by one thread in row order, and each output
//! element by a pure function of its input.

pub mod apply;
pub mod encode;
pub mod deploy;
pub mod pipeline;
pub mod stats;
pub mod target;

use rayon::prelude::*;

use crate::data::frame::DenseMatrix;
use crate::error::{Error, Result};

/// Rows handed to one task by the element-wise kernels.
const ROW_BLOCK: usize = 256;

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

/// Columns read together by one task: a row of a C-ordered matrix then costs one cache line per group
/// instead of one per column.
const COLUMN_GROUP: usize = 8;

/// Columns `cols` of `m`, as f64, reading row by row (cache-friendly for row-major input).
pub fn column_group(m: &DenseMatrix<'_>, cols: std::ops::Range<usize>) -> Vec<Vec<f64>> {
    let n = m.dim().0;
    let width = cols.len();
    let mut out: Vec<Vec<f64>> = (0..width).map(|_| vec![0.0; n]).collect();
    macro_rules! read {
        ($a:expr) => {{
            let a = $a;
            let (s0, s1) = (a.strides()[0], a.strides()[1]);
            let base = a.as_ptr();
            for (k, o) in out.iter_mut().enumerate() {
                let j = (cols.start + k) as isize;
                if n == 0 {
                    continue;
                }
                // SAFETY: i < nrows and j < ncols index elements of the view, whose strides are its own.
                unsafe {
                    let col = base.offset(j * s1);
                    for (i, v) in o.iter_mut().enumerate() {
                        *v = *col.offset(i as isize * s0) as f64;
                    }
                }
            }
        }};
    }
    // Row-major input: read a tile of rows across all the group's columns at a time.
    macro_rules! read_rows {
        ($a:expr) => {{
            let a = $a;
            let (s0, s1) = (a.strides()[0], a.strides()[1]);
            let base = a.as_ptr();
            const TILE: usize = 256;
            let mut i0 = 0;
            while i0 < n {
                let i1 = (i0 + TILE).min(n);
                for (k, o) in out.iter_mut().enumerate() {
                    let j = (cols.start + k) as isize;
                    // SAFETY: as above; rows i0..i1 exist.
                    unsafe {
                        let col = base.offset(j * s1);
                        for i in i0..i1 {
                            *o.get_unchecked_mut(i) = *col.offset(i as isize * s0) as f64;
                        }
                    }
                }
                i0 = i1;
            }
        }};
    }
    match m {
        DenseMatrix::F32(a) if a.strides()[1] == 1 => read_rows!(a),
        DenseMatrix::F64(a) if a.strides()[1] == 1 => read_rows!(a),
        DenseMatrix::F32(a) => read!(a),
        DenseMatrix::F64(a) => read!(a),
    }
    out
}

/// Computes one statistic per column in parallel (column order kept).
pub fn per_column<T: Send>(
    m: &DenseMatrix<'_>,
    n_threads: i64,
    f: impl Fn(usize, Vec<f64>) -> Result<T> + Sync + Send,
) -> Result<Vec<T>> {
    let (_, n_cols) = m.dim();
    let groups: Vec<std::ops::Range<usize>> =
        (0..n_cols).step_by(COLUMN_GROUP).map(|s| s..(s + COLUMN_GROUP).min(n_cols)).collect();
    let per_group = crate::parallel::run_in_pool(n_threads, || {
        groups
            .par_iter()
            .map(|g| {
                let cols = column_group(m, g.clone());
                cols.into_iter().enumerate().map(|(k, c)| f(g.start + k, c)).collect::<Result<Vec<T>>>()
            })
            .collect::<Result<Vec<Vec<T>>>>()
    })??;
    Ok(per_group.into_iter().flatten().collect())
}

/// Computes one statistic per column in parallel from the column's non-missing values (only rows
/// `rows` when given, in that order), handed to `f` in a buffer it may reorder. Columns are gathered
/// a group at a time in row tiles, so row-major input is read one cache line per group and row;
/// each task reuses its buffers from group to group.
pub fn per_column_values<T: Send>(
    m: &DenseMatrix<'_>,
    rows: Option<&[usize]>,
    n_threads: i64,
    f: impl Fn(usize, &mut [f64]) -> Result<T> + Sync + Send,
) -> Result<Vec<T>> {
    let (n, n_cols) = m.dim();
    let groups: Vec<std::ops::Range<usize>> =
        (0..n_cols).step_by(COLUMN_GROUP).map(|s| s..(s + COLUMN_GROUP).min(n_cols)).collect();
    let len = rows.map_or(n, |r| r.len());
    let per_group = crate::parallel::run_in_pool(n_threads, || {
        // One set of buffers per thread's share of the groups (allocated once, on huge pages).
        let share = groups.len().div_ceil(rayon::current_num_threads().max(1)).max(1);
        groups
            .par_chunks(share)
            .flat_map_iter(|chunk| {
                let f = &f;
                let mut bufs: Vec<Vec<f64>> = (0..COLUMN_GROUP.min(n_cols))
                    .map(|_| {
                        let b = Vec::<f64>::with_capacity(len);
                        crate::mem::advise_huge_pages_raw(b.as_ptr() as usize, len * std::mem::size_of::<f64>());
                        b
                    })
                    .collect();
                chunk.iter().map(move |g| {
                    let bufs = &mut bufs;
                    for b in bufs.iter_mut() {
                        b.clear();
                    }
                    macro_rules! gather {
                        ($a:expr) => {{
                            let a = $a;
                            const TILE: usize = 256;
                            let mut t0 = 0;
                            while t0 < len {
                                let t1 = (t0 + TILE).min(len);
                                for (k, b) in bufs.iter_mut().enumerate().take(g.len()) {
                                    let col = a.column(g.start + k);
                                    for t in t0..t1 {
                                        let i = rows.map_or(t, |r| r[t]);
                                        let v = col[i] as f64;
                                        if !v.is_nan() {
                                            b.push(v);
                                        }
                                    }
                                }
                                t0 = t1;
                            }
                        }};
                    }
                    match m {
                        DenseMatrix::F64(a) if rows.is_none() && a.as_slice().is_some() => {
                            // Row-major f64: copy each row's slice of the group, keeping non-missing
                            // values without a branch (the slot is written, the length moves on or not).
                            let flat = a.as_slice().expect("checked");
                            let w = g.len();
                            let mut lens = [0usize; COLUMN_GROUP];
                            {
                                let mut spare: Vec<&mut [std::mem::MaybeUninit<f64>]> = bufs
                                    .iter_mut()
                                    .take(w)
                                    .map(|b| {
                                        b.reserve(n);
                                        &mut b.spare_capacity_mut()[..n]
                                    })
                                    .collect();
                                for row in flat.chunks_exact(n_cols) {
                                    let part = &row[g.start..g.end];
                                    for k in 0..w {
                                        let v = part[k];
                                        spare[k][lens[k]].write(v);
                                        lens[k] += usize::from(!v.is_nan());
                                    }
                                }
                            }
                            for (b, &len) in bufs.iter_mut().zip(&lens).take(w) {
                                // SAFETY: the first `len` spare slots were written above.
                                unsafe { b.set_len(len) };
                            }
                        }
                        DenseMatrix::F32(a) => gather!(a),
                        DenseMatrix::F64(a) => gather!(a),
                    }
                    bufs.iter_mut().take(g.len()).enumerate().map(|(k, b)| f(g.start + k, b)).collect::<Result<Vec<T>>>()
                })
                .collect::<Vec<_>>()
            })
            .collect::<Vec<Result<Vec<T>>>>()
            .into_iter()
            .collect::<Result<Vec<Vec<T>>>>()
    })??;
    Ok(per_group.into_iter().flatten().collect())
}

/// The row of the `i`-th non-missing value of column `j` (for error messages).
pub fn row_of_present(m: &DenseMatrix<'_>, j: usize, i: usize) -> usize {
    let present = |v: f64| !v.is_nan();
    let rows: Vec<usize> = match m {
        DenseMatrix::F32(a) => a.column(j).iter().enumerate().filter(|(_, v)| present(**v as f64)).map(|(r, _)| r).collect(),
        DenseMatrix::F64(a) => a.column(j).iter().enumerate().filter(|(_, v)| present(**v)).map(|(r, _)| r).collect(),
    };
    rows.get(i).copied().unwrap_or(i)
}

/// A buffer of `len` values for a transform's output; the caller writes every element. A large
/// buffer handed back by an earlier output of a similar size is reused as it is (see
/// [`crate::mem::take_recycled`]); otherwise a fresh one comes zero-filled from the kernel and is asked to
/// be backed by huge pages (Linux), so filling it costs a page fault per 2 MiB instead of per 4 KiB, as
/// numpy's own large arrays do.
pub fn output_buffer(len: usize) -> Vec<f64> {
    crate::mem::take_recycled(len).unwrap_or_else(|| crate::mem::zeroed(len, 0.0))
}

/// Applies `f(value, column) -> output` to every element, writing a row-major (rows, cols) buffer.
/// An infinite input is an error (named by row and column); NaN is passed to `f`.
pub fn map_elements(
    m: &DenseMatrix<'_>,
    n_threads: i64,
    f: impl Fn(f64, usize) -> f64 + Sync + Send,
) -> Result<Vec<f64>> {
    let (n_rows, n_cols) = m.dim();
    let mut out = output_buffer(n_rows * n_cols);
    if n_cols == 0 {
        return Ok(out);
    }
    crate::parallel::run_in_pool(n_threads, || {
        out.par_chunks_mut(ROW_BLOCK * n_cols).enumerate().try_for_each(|(b, chunk)| {
            let row0 = b * ROW_BLOCK;
            let rows = chunk.len() / n_cols;
            // Column by column within the block: each column's parameters (e.g. a quantile table)
            // stay in cache while its values are mapped.
            macro_rules! block {
                ($a:expr) => {
                    for j in 0..n_cols {
                        for r in 0..rows {
                            let x = $a[[row0 + r, j]] as f64;
                            if x.is_infinite() {
                                return Err(infinity_error(row0 + r, j));
                            }
                            chunk[r * n_cols + j] = f(x, j);
                        }
                    }
                };
            }
            match m {
                DenseMatrix::F32(a) => block!(a),
                DenseMatrix::F64(a) => block!(a),
            }
            Ok(())
        })
    })??;
    Ok(out)
}
