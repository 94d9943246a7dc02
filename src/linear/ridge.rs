//! Ridge regression: minimise ||W^{1/2}(y - X w - b)||^2 + alpha ||w||^2 by a Cholesky solve of the
//! centred normal equations (the intercept is not penalised), several targets at once.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};

use super::{block_t, centre_and_mirror, check_target, check_weights, fold_blocks, lower_gram, over_blocks, solve_spd, LinearModel};
use crate::data::frame::DenseMatrix;
use crate::error::{Error, Result};

/// What a ridge fit reports besides the model.
#[derive(Clone, Debug, PartialEq)]
pub struct RidgeFit {
    /// The fitted model (`kind` = "Ridge").
    pub model: LinearModel,
    /// True when the system was singular and the minimum-norm least-squares solution was used.
    pub singular: bool,
}

/// Fits ridge on X (rows, m) and Y (rows, t) row-major, with optional sample weights.
pub fn fit(
    x: &DenseMatrix<'_>,
    y: &[f64],
    n_targets: usize,
    alpha: f64,
    fit_intercept: bool,
    sample_weight: Option<&[f64]>,
    n_threads: i64,
) -> Result<RidgeFit> {
    let (n, m) = x.dim();
    if !(alpha >= 0.0) || !alpha.is_finite() {
        return Err(Error::param(format!("alpha must be a finite number >= 0, got {alpha}")));
    }
    if n == 0 || m == 0 || n_targets == 0 {
        return Err(Error::data(format!("Ridge needs data: got X of shape ({n}, {m}) and {n_targets} targets")));
    }
    if y.len() != n * n_targets {
        return Err(Error::data(format!("y has {} values but X has {n} rows and there are {n_targets} targets", y.len())));
    }
    check_target(y, "y")?;
    check_weights(sample_weight, n)?;
    let t = n_targets;
    crate::parallel::run_in_pool(n_threads, || {
        // Blocks are centred on a provisional centre (the mean of up to 4096 rows spread over X), then
        // the Gram matrix is corrected to the exact weighted mean found in the same pass:
        // sum w (x - mean)(x - mean)^T = sum w d d^T - W delta delta^T with d = x - centre and
        // delta = mean - centre = sum w d / W. A spread-out sample keeps delta small next to the
        // spread of X, so the correction cancels little; X is read once instead of twice.
        let centre = if fit_intercept { sample_centre(x)? } else { vec![0.0; m] };
        let y_mean: Vec<f64> = if fit_intercept {
            let (mut s, mut sw) = (vec![0.0; t], 0.0);
            for i in 0..n {
                let wi = sample_weight.map_or(1.0, |w| w[i]);
                for c in 0..t {
                    s[c] += wi * y[i * t + c];
                }
                sw += wi;
            }
            s.iter().map(|v| v / sw).collect()
        } else {
            vec![0.0; t]
        };
        let parts = over_blocks(n, |_, rows| {
            let sq: Option<Vec<f64>> = sample_weight.map(|w| rows.clone().map(|i| w[i].sqrt()).collect());
            let bt = block_t(x, rows.clone(), Some(&centre), sq.as_deref(), false)?;
            let r = rows.len();
            let mut yb = Mat::<f64>::zeros(r, t);
            let mut wy = vec![0.0; t];
            for (k, i) in rows.clone().enumerate() {
                let s = sq.as_ref().map_or(1.0, |s| s[k]);
                for c in 0..t {
                    yb[(k, c)] = (y[i * t + c] - y_mean[c]) * s;
                    wy[c] += yb[(k, c)] * s;
                }
            }
            // sum of w d over the block (the columns of bt carry sqrt(w) d).
            let mut wd = vec![0.0; m];
            for k in 0..r {
                let s = sq.as_ref().map_or(1.0, |s| s[k]);
                for (j, v) in wd.iter_mut().enumerate() {
                    *v += bt[(j, k)] * s;
                }
            }
            // The Gram matrix is symmetric: its lower triangle only.
            let g = lower_gram(bt.as_ref());
            let mut xy = Mat::<f64>::zeros(m, t);
            matmul(xy.as_mut(), Accum::Replace, bt.as_ref(), yb.as_ref(), 1.0, Par::Seq);
            Ok((g, xy, wd, wy))
        })?;
        let (mut g, mut xy, wd, wy) = fold_blocks(parts, ((m, m), (m, t), m, t));
        let w_sum: f64 = sample_weight.map_or(n as f64, |w| w.iter().sum());
        let delta: Vec<f64> = if fit_intercept { wd.iter().map(|v| v / w_sum).collect() } else { vec![0.0; m] };
        let x_mean: Vec<f64> = centre.iter().zip(&delta).map(|(c, d)| c + d).collect();
        centre_and_mirror(&mut g, w_sum, Some(&delta));
        // sum w (x - mean)(y - y_mean) = sum w d (y - y_mean) - delta sum w (y - y_mean).
        for j in 0..m {
            for c in 0..t {
                xy[(j, c)] -= delta[j] * wy[c];
            }
        }
        for j in 0..m {
            g[(j, j)] += alpha;
        }
        let (w, singular) = solve_spd(&g, &xy)?;
        let mut coef = vec![0.0; t * m];
        let mut intercept = vec![0.0; t];
        for c in 0..t {
            let mut dot = 0.0;
            for j in 0..m {
                coef[c * m + j] = w[(j, c)];
                dot += x_mean[j] * w[(j, c)];
            }
            intercept[c] = if fit_intercept { y_mean[c] - dot } else { 0.0 };
        }
        Ok(RidgeFit {
            model: LinearModel { coef, intercept, n_features: m, n_outputs: t, classes: vec![], kind: "Ridge".into(), meta: String::new() },
            singular,
        })
    })?
}

/// The mean of up to 4096 rows spread evenly over X (a centre close to the true mean).
fn sample_centre(x: &DenseMatrix<'_>) -> Result<Vec<f64>> {
    let (n, m) = x.dim();
    let take = n.min(4096);
    let mut s = vec![0.0; m];
    for k in 0..take {
        let row = k * n / take;
        let b = block_t(x, row..row + 1, None, None, false)?;
        for (j, v) in s.iter_mut().enumerate() {
            *v += b[(j, 0)];
        }
    }
    Ok(s.iter().map(|v| v / take as f64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn recovers_coefficients_and_thread_count_does_not_matter() {
        let n = 9000;
        let x = Array2::from_shape_fn((n, 3), |(i, j)| (((i * 7 + j * 13) % 17) as f64) / 3.0 + j as f64);
        let y: Vec<f64> = (0..n).map(|i| 2.0 * x[[i, 0]] - x[[i, 1]] + 0.5 * x[[i, 2]] + 3.0).collect();
        let a = fit(&DenseMatrix::F64(x.view()), &y, 1, 0.0, true, None, 1).unwrap();
        let b = fit(&DenseMatrix::F64(x.view()), &y, 1, 0.0, true, None, 3).unwrap();
        assert_eq!(a.model, b.model);
        for (got, want) in a.model.coef.iter().zip([2.0, -1.0, 0.5]) {
            assert!((got - want).abs() < 1e-8, "{:?}", a.model.coef);
        }
        assert!((a.model.intercept[0] - 3.0).abs() < 1e-7);
        let e = fit(&DenseMatrix::F64(x.view()), &y, 1, -1.0, true, None, 1).unwrap_err();
        assert!(e.to_string().contains("alpha"));
    }

    #[test]
    fn large_offsets_and_trends_keep_full_precision() {
        // A sorted feature far from zero and a weighted fit: the provisional centre is off from the
        // mean, and the correction must still give the coefficients of an exactly centred solve.
        let n = 30_000;
        let x = Array2::from_shape_fn((n, 2), |(i, j)| if j == 0 { 1e6 + i as f64 * 0.01 } else { ((i * 7919) % 1000) as f64 / 100.0 });
        let y: Vec<f64> = (0..n).map(|i| 0.3 * x[[i, 0]] - 2.0 * x[[i, 1]] + ((i * 31) % 97) as f64 / 97.0).collect();
        let w: Vec<f64> = (0..n).map(|i| 1.0 + (i % 3) as f64).collect();
        let fitted = fit(&DenseMatrix::F64(x.view()), &y, 1, 10.0, true, Some(&w), 2).unwrap().model;
        // Exactly centred normal equations, two unknowns, by hand.
        let sw: f64 = w.iter().sum();
        let mean = |f: &dyn Fn(usize) -> f64| (0..n).map(|i| w[i] * f(i)).sum::<f64>() / sw;
        let (m0, m1, my) = (mean(&|i| x[[i, 0]]), mean(&|i| x[[i, 1]]), mean(&|i| y[i]));
        let s = |a: &dyn Fn(usize) -> f64, b: &dyn Fn(usize) -> f64| (0..n).map(|i| w[i] * a(i) * b(i)).sum::<f64>();
        let (c0, c1, cy) = (|i: usize| x[[i, 0]] - m0, |i: usize| x[[i, 1]] - m1, |i: usize| y[i] - my);
        let (a, b, d) = (s(&c0, &c0) + 10.0, s(&c0, &c1), s(&c1, &c1) + 10.0);
        let (r0, r1) = (s(&c0, &cy), s(&c1, &cy));
        let det = a * d - b * b;
        let want = [(d * r0 - b * r1) / det, (a * r1 - b * r0) / det];
        for (got, want) in fitted.coef.iter().zip(want) {
            assert!((got - want).abs() <= 1e-9 * want.abs(), "{got} vs {want}");
        }
        let intercept = my - want[0] * m0 - want[1] * m1;
        assert!((fitted.intercept[0] - intercept).abs() <= 1e-6 * intercept.abs().max(1.0), "{} vs {intercept}", fitted.intercept[0]);
    }
}
