//! Model performance on live traffic: realised from outcomes when they come back, estimated from the
//! scores alone when they do not.
//!
//! * **Realised** ([`realised`]): ROC AUC, log-loss and accuracy of a binary classifier's scores
//!   against 0/1 outcomes; RMSE and MAE of a regressor's predictions.
//! * **Confidence-based estimation** for binary classifiers ([`Calibration`], [`estimate_binary`]):
//!   the scores are calibrated on reference data (isotonic regression, pool-adjacent-violators);
//!   on current data each calibrated probability `q` is the chance the row is positive, so the
//!   expected confusion matrix at the decision threshold, and the expected ROC curve over all
//!   thresholds, follow without a single label. Expected accuracy is the mean chance that each
//!   predicted label is right; expected AUC walks the rows in score order adding `q` to the true
//!   positives and `1 − q` to the false positives. This is valid while `P(y | score)` is what it
//!   was on the reference data (covariate shift, not concept shift). Bands are ±3 standard errors:
//!   the Poisson-binomial variance of the accuracy and the Hanley–McNeil variance of the AUC at the
//!   expected class counts.
//! * **Direct loss estimation** for regressors ([`estimate_regression`]): models of the absolute and
//!   squared error, trained on reference data, predict each current row's loss; their means are the
//!   estimated MAE and MSE (RMSE its root).

use serde::{Deserialize, Serialize};

use crate::drift::profile::ReferenceProfile;
use crate::error::{Error, Result};

/// An isotonic (non-decreasing) map from scores to probabilities, linear between its knots and
/// constant beyond them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// Knot scores, increasing.
    pub x: Vec<f64>,
    /// Knot probabilities, non-decreasing.
    pub y: Vec<f64>,
}

impl Calibration {
    /// Fits the isotonic regression of 0/1 `labels` on `scores` (pool-adjacent-violators; equal
    /// scores are pooled first).
    pub fn fit(scores: &[f64], labels: &[f64]) -> Result<Calibration> {
        check_pairs(scores, labels, "scores")?;
        check_binary(labels)?;
        let mut idx: Vec<usize> = (0..scores.len()).collect();
        idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        // Blocks of (first score, last score, label sum, weight), merged while they violate order.
        let mut blocks: Vec<(f64, f64, f64, f64)> = Vec::new();
        let mut k = 0;
        while k < idx.len() {
            let s = scores[idx[k]];
            let (mut sum, mut w) = (0.0, 0.0);
            while k < idx.len() && scores[idx[k]] == s {
                sum += labels[idx[k]];
                w += 1.0;
                k += 1;
            }
            blocks.push((s, s, sum, w));
            while blocks.len() > 1 {
                let n = blocks.len();
                let (a, b) = (blocks[n - 2], blocks[n - 1]);
                if a.2 / a.3 < b.2 / b.3 {
                    break;
                }
                blocks[n - 2] = (a.0, b.1, a.2 + b.2, a.3 + b.3);
                blocks.pop();
            }
        }
        let (mut x, mut y) = (Vec::with_capacity(2 * blocks.len()), Vec::with_capacity(2 * blocks.len()));
        for (lo, hi, sum, w) in blocks {
            let v = sum / w;
            x.push(lo);
            y.push(v);
            if hi > lo {
                x.push(hi);
                y.push(v);
            }
        }
        Ok(Calibration { x, y })
    }

    /// The calibrated probability of one score.
    pub fn apply(&self, s: f64) -> f64 {
        let (x, y) = (&self.x, &self.y);
        if s.is_nan() {
            return f64::NAN;
        }
        if s <= x[0] {
            return y[0];
        }
        let n = x.len();
        if s >= x[n - 1] {
            return y[n - 1];
        }
        let j = x.partition_point(|&t| t <= s); // x[j-1] <= s < x[j]
        let (x0, x1, y0, y1) = (x[j - 1], x[j], y[j - 1], y[j]);
        y0 + (y1 - y0) * (s - x0) / (x1 - x0)
    }
}

fn check_pairs(a: &[f64], b: &[f64], what: &str) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::data(format!("{what} has {} values but the outcomes {}", a.len(), b.len())));
    }
    if a.is_empty() {
        return Err(Error::data(format!("{what} is empty: performance needs at least one row")));
    }
    if let Some(i) = a.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(format!("{what}[{i}] is {}: scores must be finite", a[i])));
    }
    if let Some(i) = b.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(format!("outcome {i} is {}: outcomes must be finite", b[i])));
    }
    Ok(())
}

fn check_binary(labels: &[f64]) -> Result<()> {
    if let Some(i) = labels.iter().position(|&v| v != 0.0 && v != 1.0) {
        return Err(Error::data(format!("label {i} is {}: a binary classifier's outcomes are 0 or 1", labels[i])));
    }
    Ok(())
}

/// An estimate with its band.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The estimated value.
    pub value: f64,
    /// Lower end of the band (value − 3 standard errors, clipped to the metric's range).
    pub lower: f64,
    /// Upper end of the band.
    pub upper: f64,
}

/// A metric's name and value.
pub type Named = (String, f64);

/// The area under the ROC curve before normalisation, walking the rows in decreasing score order:
/// `weights(i)` is row i's (positive, negative) weight; tied scores count half. Returns (area, total
/// positive weight, total negative weight); the AUC is `area / (tp * fp)`.
pub fn roc_area(scores: &[f64], weights: impl Fn(usize) -> (f64, f64)) -> (f64, f64, f64) {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut area) = (0.0, 0.0, 0.0);
    let mut k = 0;
    while k < idx.len() {
        let s = scores[idx[k]];
        let (mut dtp, mut dfp) = (0.0, 0.0);
        while k < idx.len() && scores[idx[k]] == s {
            let (p, q) = weights(idx[k]);
            dtp += p;
            dfp += q;
            k += 1;
        }
        area += dfp * (tp + 0.5 * dtp);
        tp += dtp;
        fp += dfp;
    }
    (area, tp, fp)
}

/// ROC AUC of `scores` against positive weights `pos` (and `1 − pos` for the negatives); with
/// fractional `pos` it is the expected-count AUC of confidence-based estimation. NaN without both.
fn weighted_auc(scores: &[f64], pos: &[f64]) -> (f64, f64, f64) {
    let (area, tp, fp) = roc_area(scores, |i| (pos[i], 1.0 - pos[i]));
    let auc = if tp > 0.0 && fp > 0.0 { area / (tp * fp) } else { f64::NAN };
    (auc, tp, fp)
}

/// Hanley–McNeil standard error of an AUC with `np` positives and `nn` negatives.
fn auc_se(a: f64, np: f64, nn: f64) -> f64 {
    if !(a.is_finite() && np > 1.0 && nn > 1.0) {
        return f64::NAN;
    }
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    let v = (a * (1.0 - a) + (np - 1.0) * (q1 - a * a) + (nn - 1.0) * (q2 - a * a)) / (np * nn);
    v.max(0.0).sqrt()
}

fn band(value: f64, se: f64, lo: f64, hi: f64) -> Estimate {
    if !se.is_finite() {
        return Estimate { value, lower: f64::NAN, upper: f64::NAN };
    }
    Estimate { value, lower: (value - 3.0 * se).max(lo), upper: (value + 3.0 * se).min(hi) }
}

/// Realised performance: for a binary classifier (`binary`), `scores` are P(class 1) and
/// `outcomes` 0/1 — ROC AUC (NaN when one class is absent), log-loss (probabilities clipped to
/// [1e-15, 1 − 1e-15]) and accuracy at `threshold`; for a regressor, RMSE and MAE.
pub fn realised(binary: bool, scores: &[f64], outcomes: &[f64], threshold: f64) -> Result<Vec<Named>> {
    check_pairs(scores, outcomes, "scores")?;
    let n = scores.len() as f64;
    if binary {
        check_binary(outcomes)?;
        let (auc, _, _) = weighted_auc(scores, outcomes);
        let mut ll = 0.0;
        let mut right = 0.0;
        for (&p, &y) in scores.iter().zip(outcomes) {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            ll -= if y > 0.5 { p.ln() } else { (1.0 - p).ln() };
            right += f64::from(((p >= threshold) as u8 as f64) == y);
        }
        Ok(vec![("roc_auc".into(), auc), ("logloss".into(), ll / n), ("accuracy".into(), right / n)])
    } else {
        let (mut se, mut ae) = (0.0, 0.0);
        for (&p, &y) in scores.iter().zip(outcomes) {
            se += (p - y) * (p - y);
            ae += (p - y).abs();
        }
        Ok(vec![("rmse".into(), (se / n).sqrt()), ("mae".into(), ae / n)])
    }
}

/// Confidence-based estimation of a binary classifier's ROC AUC and accuracy at `threshold` from
/// its uncalibrated `scores` and the reference `calibration`.
pub fn estimate_binary(scores: &[f64], calibration: &Calibration, threshold: f64) -> Result<Vec<(String, Estimate)>> {
    if scores.is_empty() {
        return Err(Error::data("no scores to estimate performance from"));
    }
    if let Some(i) = scores.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(format!("scores[{i}] is {}: scores must be finite", scores[i])));
    }
    let q: Vec<f64> = scores.iter().map(|&s| calibration.apply(s)).collect();
    let n = q.len() as f64;
    let (mut right, mut var) = (0.0, 0.0);
    for (&s, &p) in scores.iter().zip(&q) {
        let c = if s >= threshold { p } else { 1.0 - p };
        right += c;
        var += c * (1.0 - c);
    }
    let (auc, np, nn) = weighted_auc(scores, &q);
    Ok(vec![
        ("roc_auc".into(), band(auc, auc_se(auc, np, nn), 0.0, 1.0)),
        ("accuracy".into(), band(right / n, var.sqrt() / n, 0.0, 1.0)),
    ])
}

/// Direct loss estimation for a regressor: `abs_err` and `sq_err` are the loss models' predictions
/// of each row's absolute and squared error (negative predictions count as 0). Returns MAE and RMSE.
pub fn estimate_regression(abs_err: &[f64], sq_err: &[f64]) -> Result<Vec<(String, Estimate)>> {
    if abs_err.is_empty() || abs_err.len() != sq_err.len() {
        return Err(Error::data("direct loss estimation needs one absolute and one squared error per row"));
    }
    let n = abs_err.len() as f64;
    let mean_sd = |v: &[f64]| {
        let m = v.iter().map(|x| x.max(0.0)).sum::<f64>() / n;
        let var = v.iter().map(|x| (x.max(0.0) - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        (m, (var / n).sqrt())
    };
    let (mae, mae_se) = mean_sd(abs_err);
    let (mse, mse_se) = mean_sd(sq_err);
    let rmse = mse.sqrt();
    // delta method: se(sqrt(m)) = se(m) / (2 sqrt(m))
    let rmse_se = if rmse > 0.0 { mse_se / (2.0 * rmse) } else { f64::NAN };
    Ok(vec![("mae".into(), band(mae, mae_se, 0.0, f64::INFINITY)), ("rmse".into(), band(rmse, rmse_se, 0.0, f64::INFINITY))])
}

/// Whether a larger value of a metric is better.
pub fn higher_is_better(metric: &str) -> bool {
    matches!(metric, "roc_auc" | "accuracy")
}

/// What a deployable model knows about its own performance on reference data, for monitoring.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PerformanceReference {
    /// `"binary"` or `"regression"`.
    pub task: String,
    /// Decision threshold on the score (binary).
    pub threshold: f64,
    /// Score → probability (binary).
    pub calibration: Option<Calibration>,
    /// Profile of the reference scores (one column, `prediction`), for prediction drift.
    pub predictions: ReferenceProfile,
    /// Realised metrics on the reference data.
    pub metrics: Vec<Named>,
    /// Reference rows.
    pub n_rows: u64,
}

impl PerformanceReference {
    /// Builds the reference from scores and outcomes of reference data.
    pub fn fit(task: &str, scores: &[f64], outcomes: &[f64], threshold: f64, predictions: ReferenceProfile) -> Result<PerformanceReference> {
        let binary = match task {
            "binary" => true,
            "regression" => false,
            other => return Err(Error::param(format!("task must be 'binary' or 'regression', got '{other}'"))),
        };
        if binary && !(threshold > 0.0 && threshold < 1.0) {
            return Err(Error::param(format!("threshold must lie in (0, 1), got {threshold}")));
        }
        if predictions.names.len() != 1 {
            return Err(Error::param("the prediction profile must have exactly one column"));
        }
        let metrics = realised(binary, scores, outcomes, threshold)?;
        let calibration = if binary { Some(Calibration::fit(scores, outcomes)?) } else { None };
        Ok(PerformanceReference { task: task.to_owned(), threshold, calibration, predictions, metrics, n_rows: scores.len() as u64 })
    }

    /// Whether the model is a binary classifier.
    pub fn binary(&self) -> bool {
        self.task == "binary"
    }

    /// The reference value of a metric.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn isotonic_pools_violators_and_interpolates() {
        let c = Calibration::fit(&[0.1, 0.2, 0.3, 0.4], &[0.0, 1.0, 0.0, 1.0]).unwrap();
        // 0.2 and 0.3 pool to 0.5.
        assert_eq!(c.x, vec![0.1, 0.2, 0.3, 0.4]);
        assert_eq!(c.y, vec![0.0, 0.5, 0.5, 1.0]);
        assert_eq!(c.apply(0.0), 0.0);
        assert!((c.apply(0.15) - 0.25).abs() < 1e-12);
        assert_eq!(c.apply(0.25), 0.5);
        assert_eq!(c.apply(9.0), 1.0);
        assert!(c.y.windows(2).all(|w| w[0] <= w[1]));
        assert!(Calibration::fit(&[0.1], &[2.0]).is_err());
        assert!(Calibration::fit(&[f64::NAN], &[1.0]).is_err());
    }

    #[test]
    fn realised_metrics_by_hand() {
        let r = realised(true, &[0.9, 0.2, 0.6, 0.4], &[1.0, 0.0, 0.0, 1.0], 0.5).unwrap();
        assert_eq!(r[0], ("roc_auc".into(), 0.75));
        let ll = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln() + 0.4f64.ln()) / 4.0;
        assert!((r[1].1 - ll).abs() < 1e-12);
        assert_eq!(r[2], ("accuracy".into(), 0.5));
        let g = realised(false, &[1.0, 2.0], &[2.0, 2.0], 0.5).unwrap();
        assert_eq!(g, vec![("rmse".into(), (0.5f64).sqrt()), ("mae".into(), 0.5)]);
        assert!(realised(true, &[0.5], &[0.3], 0.5).is_err());
    }

    #[test]
    fn estimates_track_the_realised_values_of_a_calibrated_model() {
        // Scores that are exactly calibrated: y ~ Bernoulli(s).
        let mut seed = 7u64;
        let draw = |seed: &mut u64, n: usize, shift: f64| {
            let (mut s, mut y) = (Vec::new(), Vec::new());
            for _ in 0..n {
                let p = (lcg(seed).powf(shift)).clamp(0.001, 0.999);
                s.push(p);
                y.push(f64::from(lcg(seed) < p));
            }
            (s, y)
        };
        let (rs, ry) = draw(&mut seed, 20_000, 1.0);
        let cal = Calibration::fit(&rs, &ry).unwrap();
        // A shifted population: scores pushed towards 0 (covariate shift).
        let (cs, cy) = draw(&mut seed, 20_000, 2.5);
        let real = realised(true, &cs, &cy, 0.5).unwrap();
        let est = estimate_binary(&cs, &cal, 0.5).unwrap();
        for (name, want) in [("roc_auc", real[0].1), ("accuracy", real[2].1)] {
            let e = est.iter().find(|(k, _)| k == name).unwrap().1;
            assert!((e.value - want).abs() < 0.02, "{name}: estimated {} realised {want}", e.value);
            assert!(e.lower <= want && want <= e.upper, "{name}: {e:?} misses {want}");
        }
    }

    #[test]
    fn loss_estimates_are_means() {
        let e = estimate_regression(&[1.0, 3.0], &[1.0, 9.0]).unwrap();
        assert_eq!(e[0].1.value, 2.0);
        assert_eq!(e[1].1.value, 5f64.sqrt());
        assert!(estimate_regression(&[], &[]).is_err());
    }
}
