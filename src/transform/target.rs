//! Target encoding: each category replaced by a shrunk mean of the target over its rows, with
//! scikit-learn's empirical-Bayes "auto" smoothing or a fixed smoothing weight, and cross-fitting
//! (each row encoded by statistics from the other folds) for the training data.

use rayon::prelude::*;

use crate::error::{Error, Result};

/// How category means are shrunk toward the target mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Smooth {
    /// Variance-based shrinkage (scikit-learn's smooth="auto").
    Auto,
    /// (sum + m * mean) / (count + m).
    Fixed(f64),
}

/// Encodings of one feature for one target column: one value per category, from the rows where
/// `use_row` holds.
fn encode_one(codes: &[i32], n_cat: usize, y: &[f64], use_row: &dyn Fn(usize) -> bool, smooth: Smooth) -> Vec<f64> {
    let (mut sum, mut n, mut total, mut count) = (vec![0.0f64; n_cat], vec![0.0f64; n_cat], 0.0f64, 0.0f64);
    for (i, &c) in codes.iter().enumerate() {
        if !use_row(i) {
            continue;
        }
        total += y[i];
        count += 1.0;
        if c >= 0 {
            sum[c as usize] += y[i];
            n[c as usize] += 1.0;
        }
    }
    let mean = total / count;
    match smooth {
        Smooth::Fixed(m) => (0..n_cat).map(|k| (sum[k] + m * mean) / (n[k] + m)).collect(),
        Smooth::Auto => {
            let mut var = 0.0;
            for (i, &yi) in y.iter().enumerate() {
                if use_row(i) {
                    var += (yi - mean) * (yi - mean);
                }
            }
            let var = var / count;
            let means: Vec<f64> = (0..n_cat).map(|k| sum[k] / n[k]).collect();
            let mut ssd = vec![0.0f64; n_cat];
            for (i, &c) in codes.iter().enumerate() {
                if c >= 0 && use_row(i) {
                    let d = y[i] - means[c as usize];
                    ssd[c as usize] += d * d;
                }
            }
            (0..n_cat)
                .map(|k| {
                    let lambda = var * n[k] / (var * n[k] + ssd[k] / n[k]);
                    if lambda.is_nan() {
                        mean
                    } else {
                        lambda * means[k] + (1.0 - lambda) * mean
                    }
                })
                .collect()
        }
    }
}

fn mean_where(y: &[f64], use_row: &dyn Fn(usize) -> bool) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for (i, &v) in y.iter().enumerate() {
        if use_row(i) {
            s += v;
            c += 1.0;
        }
    }
    s / c
}

fn check(codes: &[Vec<i32>], n_cats: &[usize], targets: &[Vec<f64>]) -> Result<usize> {
    let n = codes.first().map_or(0, |c| c.len());
    if codes.len() != n_cats.len() {
        return Err(Error::Internal("codes and category counts disagree".into()));
    }
    for t in targets {
        if t.len() != n {
            return Err(Error::data(format!("y has {} values but X has {n} rows", t.len())));
        }
        if let Some(i) = t.iter().position(|v| !v.is_finite()) {
            return Err(Error::data(format!("y holds {} at row {i}; the target must be finite", t[i])));
        }
    }
    Ok(n)
}

/// Fitted encodings on all rows: `enc[j * k + c]` for feature j and target column c, and the target
/// means (the value for unknown categories).
pub fn fit(codes: &[Vec<i32>], n_cats: &[usize], targets: &[Vec<f64>], smooth: Smooth, n_threads: i64) -> Result<(Vec<Vec<f64>>, Vec<f64>)> {
    check(codes, n_cats, targets)?;
    let all = |_: usize| true;
    let k = targets.len();
    let enc = crate::parallel::run_in_pool(n_threads, || {
        (0..codes.len() * k)
            .into_par_iter()
            .map(|jc| encode_one(&codes[jc / k], n_cats[jc / k], &targets[jc % k], &all, smooth))
            .collect::<Vec<_>>()
    })?;
    Ok((enc, targets.iter().map(|t| mean_where(t, &all)).collect()))
}

/// Applies encodings: a row-major (rows, features * k) matrix; unknown codes (-1) get the mean.
pub fn apply(codes: &[Vec<i32>], enc: &[Vec<f64>], means: &[f64]) -> Vec<f64> {
    let n = codes.first().map_or(0, |c| c.len());
    let k = means.len();
    let w = codes.len() * k;
    let mut out = vec![0.0; n * w];
    for (j, col) in codes.iter().enumerate() {
        for c in 0..k {
            let e = &enc[j * k + c];
            for (i, &code) in col.iter().enumerate() {
                out[i * w + j * k + c] = if code >= 0 { e[code as usize] } else { means[c] };
            }
        }
    }
    out
}

/// Cross-fitted encodings for training rows: row i (in fold `folds[i]`) is encoded with statistics of
/// the other folds, as scikit-learn's `TargetEncoder.fit_transform` does.
pub fn cross_fit(
    codes: &[Vec<i32>],
    n_cats: &[usize],
    targets: &[Vec<f64>],
    folds: &[u32],
    n_folds: u32,
    smooth: Smooth,
    n_threads: i64,
) -> Result<Vec<f64>> {
    let n = check(codes, n_cats, targets)?;
    if folds.len() != n {
        return Err(Error::Internal("fold assignment length differs from rows".into()));
    }
    let k = targets.len();
    let w = codes.len() * k;
    let mut out = vec![0.0; n * w];
    for f in 0..n_folds {
        let train = |i: usize| folds[i] != f;
        let means: Vec<f64> = targets.iter().map(|t| mean_where(t, &train)).collect();
        let enc: Vec<Vec<f64>> = crate::parallel::run_in_pool(n_threads, || {
            (0..codes.len() * k)
                .into_par_iter()
                .map(|jc| encode_one(&codes[jc / k], n_cats[jc / k], &targets[jc % k], &train, smooth))
                .collect()
        })?;
        for (j, col) in codes.iter().enumerate() {
            for c in 0..k {
                let e = &enc[j * k + c];
                for (i, &code) in col.iter().enumerate() {
                    if folds[i] == f {
                        out[i * w + j * k + c] = if code >= 0 { e[code as usize] } else { means[c] };
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_smoothing_and_unknowns() {
        let codes = vec![vec![0, 0, 1, -1]];
        let y = vec![vec![1.0, 3.0, 10.0, 6.0]];
        let (enc, means) = fit(&codes, &[2], &y, Smooth::Fixed(1.0), 1).unwrap();
        assert_eq!(means, vec![5.0]);
        assert!((enc[0][0] - (4.0 + 5.0) / 3.0).abs() < 1e-12);
        assert_eq!(apply(&codes, &enc, &means)[3], 5.0);
        let e = fit(&codes, &[2], &[vec![1.0, f64::NAN, 0.0, 0.0]], Smooth::Auto, 1).unwrap_err();
        assert!(e.to_string().contains("row 1"));
    }
}
