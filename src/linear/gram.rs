//! The lower triangle of a block's Gram matrix `bt bt'`, where column k of `bt` is one row of X.
//!
//! With AVX-512 the product is taken straight from the rows as they lie: a tile of the result (24 rows
//! by 8 columns, 24 accumulator registers) is built by streaming the rows of a chunk that stays in L2,
//! loading 24 consecutive values of each row and broadcasting 8, so no packed copy of the block is
//! made and only the tiles that touch the lower triangle are computed. Other machines (and layouts
//! whose rows are not contiguous) use faer's triangular product.

use faer::linalg::matmul::triangular::{matmul as tri, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};

/// The lower triangle of `bt bt'` (the upper part is left zero: half the work).
pub fn lower_gram(bt: MatRef<'_, f64>) -> Mat<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        let (p, r) = (bt.nrows(), bt.ncols());
        if p > 0 && r > 0 && bt.row_stride() == 1 && bt.col_stride() >= p as isize && std::arch::is_x86_feature_detected!("avx512f")
        {
            let mut g = Mat::<f64>::zeros(p, p);
            let cs = bt.col_stride() as usize;
            // SAFETY: column k of `bt` holds p contiguous values at `ptr + k * cs` for k < r (checked
            // strides), and AVX-512F is present.
            unsafe { avx512::lower_gram(bt.as_ptr(), cs, p, r, &mut g) };
            return g;
        }
    }
    lower_gram_faer(bt)
}

/// The same product through faer's triangular matrix multiply.
pub fn lower_gram_faer(bt: MatRef<'_, f64>) -> Mat<f64> {
    let mut g = Mat::<f64>::zeros(bt.nrows(), bt.nrows());
    tri(
        g.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        bt,
        BlockStructure::Rectangular,
        bt.transpose(),
        BlockStructure::Rectangular,
        1.0,
        Par::Seq,
    );
    g
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use faer::Mat;
    use std::arch::x86_64::*;

    /// Rows per chunk: a chunk of up to 128 features x 256 rows (256 KiB) stays in L2 while every
    /// tile streams it.
    const CHUNK: usize = 256;
    /// Result columns per tile (values broadcast from each row).
    const J: usize = 8;

    /// The byte range still to be prefetched.
    struct Ahead {
        at: usize,
        end: usize,
    }

    /// Lanes of the 8 starting at `i` that lie below `p`, as a mask.
    #[inline(always)]
    fn lanes(i: usize, p: usize) -> __mmask8 {
        let n = p.saturating_sub(i).min(8);
        ((1u32 << n) - 1) as __mmask8
    }

    /// Adds the lower triangle of sum over rows k < r of x_k x_k' into `g` (p x p, column-major), where
    /// x_k is the p values at `x + k * cs`.
    ///
    /// # Safety
    /// Rows 0..r of p values each must be readable at stride `cs`; AVX-512F must be present.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn lower_gram(x: *const f64, cs: usize, p: usize, r: usize, g: &mut Mat<f64>) {
        let mut k0 = 0;
        while k0 < r {
            let rows = CHUNK.min(r - k0);
            let xc = unsafe { x.add(k0 * cs) };
            // The next chunk is fetched into cache a line at a time while this one is multiplied (the
            // tiles read rows with a stride, which the hardware prefetchers follow poorly).
            let next = CHUNK.min(r - k0 - rows);
            let mut ahead = Ahead {
                at: xc.wrapping_add(rows * cs) as usize,
                end: if next == 0 { 0 } else { (unsafe { xc.add((rows + next - 1) * cs + p) }) as usize },
            };
            let mut j0 = 0;
            while j0 < p {
                // Tiles from the diagonal down: rows i0.. of the result, i0 = j0 (a multiple of 8).
                let mut i0 = j0;
                while i0 < p {
                    match (p - i0).div_ceil(8) {
                        1 => unsafe { tile::<1>(xc, cs, rows, p, i0, j0, g, &mut ahead) },
                        2 => unsafe { tile::<2>(xc, cs, rows, p, i0, j0, g, &mut ahead) },
                        _ => unsafe { tile::<3>(xc, cs, rows, p, i0, j0, g, &mut ahead) },
                    }
                    i0 += 24;
                }
                j0 += J;
            }
            k0 += rows;
        }
    }

    /// One tile: result rows i0 .. i0 + 8 NV (masked at p) by columns j0 .. j0 + 8 (columns past p
    /// repeat column p - 1 and are not stored), summed over `rows` rows, added into the lower triangle.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    unsafe fn tile<const NV: usize>(
        x: *const f64,
        cs: usize,
        rows: usize,
        p: usize,
        i0: usize,
        j0: usize,
        g: &mut Mat<f64>,
        ahead: &mut Ahead,
    ) {
        let mut acc = [[_mm512_setzero_pd(); J]; NV];
        let mut masks = [0 as __mmask8; NV];
        for (v, m) in masks.iter_mut().enumerate() {
            *m = lanes(i0 + 8 * v, p);
        }
        let mut cols = [0usize; J];
        for (jj, c) in cols.iter_mut().enumerate() {
            *c = (j0 + jj).min(p - 1);
        }
        for k in 0..rows {
            if ahead.at < ahead.end {
                // A hint only: prefetching never faults.
                _mm_prefetch::<_MM_HINT_T1>(ahead.at as *const i8);
                ahead.at += 64;
            }
            let row = unsafe { x.add(k * cs) };
            let mut xi = [_mm512_setzero_pd(); NV];
            for v in 0..NV {
                // SAFETY: masked lanes are not read (no fault past the row's end).
                xi[v] = unsafe { _mm512_maskz_loadu_pd(masks[v], row.add(i0 + 8 * v)) };
            }
            for jj in 0..J {
                let b = _mm512_set1_pd(unsafe { *row.add(cols[jj]) });
                for v in 0..NV {
                    acc[v][jj] = _mm512_fmadd_pd(xi[v], b, acc[v][jj]);
                }
            }
        }
        let ld = g.col_stride() as usize;
        let out = g.as_ptr_mut();
        for jj in 0..J {
            let j = j0 + jj;
            if j >= p {
                break;
            }
            for v in 0..NV {
                let i = i0 + 8 * v;
                // The lanes inside the matrix and on or below the diagonal (i + lane >= j).
                let below = if j > i { (!0u32 << (j - i).min(8)) as __mmask8 } else { 0xff };
                let m = masks[v] & below;
                if m != 0 {
                    let at = unsafe { out.add(j * ld + i) };
                    let cur = unsafe { _mm512_maskz_loadu_pd(m, at) };
                    unsafe { _mm512_mask_storeu_pd(at, m, _mm512_add_pd(cur, acc[v][jj])) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &Mat<f64>) -> Mat<f64> {
        let (p, r) = (x.nrows(), x.ncols());
        Mat::from_fn(p, p, |i, j| if i >= j { (0..r).map(|k| x[(i, k)] * x[(j, k)]).sum() } else { 0.0 })
    }

    #[test]
    fn lower_gram_matches_a_plain_sum_for_every_shape() {
        for &p in &[1usize, 3, 8, 9, 16, 23, 24, 25, 33, 47, 100] {
            for &r in &[1usize, 7, 256, 300, 777] {
                let x = Mat::<f64>::from_fn(p, r, |i, k| (((i * 131 + k * 71) % 97) as f64 - 48.0) / 7.0);
                let want = naive(&x);
                for (what, got) in [("kernel", lower_gram(x.as_ref())), ("faer", lower_gram_faer(x.as_ref()))] {
                    for j in 0..p {
                        for i in 0..p {
                            let (a, b) = (got[(i, j)], want[(i, j)]);
                            assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()), "{what} p={p} r={r} ({i},{j}): {a} vs {b}");
                        }
                    }
                }
            }
        }
        // A row-major slice seen as bt (column stride p, the last row ending the slice): nothing past
        // the end is read, and a padded column stride is honoured.
        let (p, r) = (13, 40);
        let flat: Vec<f64> = (0..p * r).map(|v| ((v * 7919) % 101) as f64 / 10.0).collect();
        let bt = MatRef::from_row_major_slice(&flat, r, p).transpose();
        let want = naive(&bt.to_owned());
        assert!((lower_gram(bt) - &want).norm_max() <= 1e-9 * want.norm_max());
        let padded: Vec<f64> = flat.chunks(p).flat_map(|row| row.iter().copied().chain([f64::NAN; 3])).collect();
        let bt = MatRef::from_column_major_slice_with_stride(&padded, p, r, p + 3);
        assert!((lower_gram(bt) - &want).norm_max() <= 1e-9 * want.norm_max());
    }
}
