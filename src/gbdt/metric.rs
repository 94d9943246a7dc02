//! Evaluation metrics, LightGBM's names. Each takes raw scores (class-major for multiclass) and applies
//! the model's output transform itself where the metric is defined on probabilities or means.

use crate::error::{Error, Result};
use crate::predict::OutputTransform;

/// A metric.
#[derive(Clone, Debug, PartialEq)]
pub enum Metric {
    L2,
    Rmse,
    L1,
    Huber(f64),
    Quantile(f64),
    Poisson,
    BinaryLogloss,
    BinaryError,
    Auc,
    CrossEntropy,
    MultiLogloss,
    MultiError,
}

const NAMES: &[&str] = &[
    "l2", "mse", "mean_squared_error", "regression", "rmse", "l2_root", "root_mean_squared_error", "l1", "mae",
    "mean_absolute_error", "huber", "quantile", "poisson", "binary_logloss", "binary", "binary_error", "auc",
    "cross_entropy", "xentropy", "multi_logloss", "multiclass", "softmax", "multi_error",
];

impl Metric {
    /// Parses a metric name (LightGBM's names and aliases).
    pub fn parse(name: &str, alpha: f64) -> Result<Metric> {
        Ok(match name {
            "l2" | "mse" | "mean_squared_error" | "regression" | "regression_l2" => Metric::L2,
            "rmse" | "l2_root" | "root_mean_squared_error" => Metric::Rmse,
            "l1" | "mae" | "mean_absolute_error" | "regression_l1" => Metric::L1,
            "huber" => Metric::Huber(alpha),
            "quantile" => Metric::Quantile(alpha),
            "poisson" => Metric::Poisson,
            "binary_logloss" | "binary" => Metric::BinaryLogloss,
            "binary_error" => Metric::BinaryError,
            "auc" => Metric::Auc,
            "cross_entropy" | "xentropy" => Metric::CrossEntropy,
            "multi_logloss" | "multiclass" | "softmax" | "multiclassova" => Metric::MultiLogloss,
            "multi_error" => Metric::MultiError,
            other => {
                return Err(Error::param(format!(
                    "unknown metric '{other}'{}",
                    super::params::suggest(other, NAMES)
                )))
            }
        })
    }

    /// The name reported in evaluation results.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Rmse => "rmse",
            Metric::L1 => "l1",
            Metric::Huber(_) => "huber",
            Metric::Quantile(_) => "quantile",
            Metric::Poisson => "poisson",
            Metric::BinaryLogloss => "binary_logloss",
            Metric::BinaryError => "binary_error",
            Metric::Auc => "auc",
            Metric::CrossEntropy => "cross_entropy",
            Metric::MultiLogloss => "multi_logloss",
            Metric::MultiError => "multi_error",
        }
    }

    /// True when larger is better.
    pub fn higher_better(&self) -> bool {
        matches!(self, Metric::Auc)
    }

    /// The metric of raw `scores` against `label` (weighted where `weight` is given).
    pub fn eval(&self, scores: &[f64], label: &[f64], weight: Option<&[f64]>, transform: OutputTransform) -> f64 {
        let n = label.len();
        let w = |i: usize| weight.map_or(1.0, |w| w[i]);
        let sw: f64 = (0..n).map(w).sum();
        let avg = |f: &dyn Fn(usize) -> f64| (0..n).map(|i| w(i) * f(i)).sum::<f64>() / sw;
        let prob = |i: usize| transform.apply1(scores[i]);
        const EPS: f64 = 1e-15;
        match self {
            Metric::L2 => avg(&|i| (prob(i) - label[i]).powi(2)),
            Metric::Rmse => avg(&|i| (prob(i) - label[i]).powi(2)).sqrt(),
            Metric::L1 => avg(&|i| (prob(i) - label[i]).abs()),
            Metric::Huber(a) => avg(&|i| {
                let d = (prob(i) - label[i]).abs();
                if d <= *a {
                    0.5 * d * d
                } else {
                    a * (d - 0.5 * a)
                }
            }),
            Metric::Quantile(a) => avg(&|i| {
                let d = label[i] - prob(i);
                if d >= 0.0 {
                    a * d
                } else {
                    (a - 1.0) * d
                }
            }),
            Metric::Poisson => avg(&|i| {
                let mu = prob(i).max(EPS);
                mu - label[i] * mu.ln()
            }),
            Metric::BinaryLogloss | Metric::CrossEntropy => avg(&|i| {
                let p = prob(i).clamp(EPS, 1.0 - EPS);
                -(label[i] * p.ln() + (1.0 - label[i]) * (1.0 - p).ln())
            }),
            Metric::BinaryError => avg(&|i| ((prob(i) > 0.5) != (label[i] > 0.5)) as i32 as f64),
            Metric::Auc => auc(scores, label, weight),
            Metric::MultiLogloss | Metric::MultiError => {
                let k = scores.len() / n.max(1);
                let mut row = vec![0.0; k];
                let mut total = 0.0;
                for i in 0..n {
                    for (c, r) in row.iter_mut().enumerate() {
                        *r = scores[c * n + i];
                    }
                    transform.apply_row(&mut row);
                    let y = label[i] as usize;
                    let v = if *self == Metric::MultiLogloss {
                        -row[y].clamp(EPS, 1.0).ln()
                    } else {
                        // Wrong when another class scores strictly higher than the true one.
                        row.iter().any(|&p| p > row[y]) as i32 as f64
                    };
                    total += w(i) * v;
                }
                total / sw
            }
        }
    }
}

/// Weighted ROC AUC; tied scores count half.
pub fn auc(scores: &[f64], label: &[f64], weight: Option<&[f64]>) -> f64 {
    let mut idx: Vec<usize> = (0..label.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let w = |i: usize| weight.map_or(1.0, |w| w[i]);
    let (mut tp, mut fp, mut area) = (0.0, 0.0, 0.0);
    let mut k = 0;
    while k < idx.len() {
        let s = scores[idx[k]];
        let (mut dtp, mut dfp) = (0.0, 0.0);
        while k < idx.len() && scores[idx[k]] == s {
            let i = idx[k];
            if label[i] > 0.5 {
                dtp += w(i)
            } else {
                dfp += w(i)
            }
            k += 1;
        }
        area += dfp * (tp + 0.5 * dtp);
        tp += dtp;
        fp += dfp;
    }
    if tp == 0.0 || fp == 0.0 {
        return 1.0;
    }
    area / (tp * fp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half() {
        assert_eq!(auc(&[0.9, 0.8, 0.1], &[1.0, 0.0, 0.0], None), 1.0);
        assert_eq!(auc(&[0.5, 0.5], &[1.0, 0.0], None), 0.5);
        assert!((auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0], None) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn unknown_metric_suggests() {
        let e = Metric::parse("aucc", 0.9).unwrap_err();
        assert!(e.to_string().contains("'auc'"), "{e}");
    }
}
