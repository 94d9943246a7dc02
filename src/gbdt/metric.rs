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
    /// NDCG at a cut-off, averaged over queries.
    Ndcg(usize),
    /// Mean average precision at a cut-off.
    Map(usize),
}

const NAMES: &[&str] = &[
    "l2", "mse", "mean_squared_error", "regression", "rmse", "l2_root", "root_mean_squared_error", "l1", "mae",
    "mean_absolute_error", "huber", "quantile", "poisson", "binary_logloss", "binary", "binary_error", "auc",
    "cross_entropy", "xentropy", "multi_logloss", "multiclass", "softmax", "multi_error", "ndcg", "map",
];

impl Metric {
    /// Parses a metric name (LightGBM's names and aliases). `ndcg` and `map` expand to one metric per
    /// `eval_at` cut-off; `ndcg@3` names one.
    pub fn parse_all(name: &str, alpha: f64, eval_at: &[usize]) -> Result<Vec<Metric>> {
        let ranking = |base: &str, mk: fn(usize) -> Metric| -> Option<Result<Vec<Metric>>> {
            if name == base || (base == "ndcg" && name == "lambdarank") || (base == "map" && name == "mean_average_precision") {
                return Some(Ok(eval_at.iter().map(|&k| mk(k)).collect()));
            }
            let k = name.strip_prefix(base)?.strip_prefix('@')?;
            Some(k.parse::<usize>().ok().filter(|&k| k > 0).map(|k| vec![mk(k)]).ok_or_else(|| {
                Error::param(format!("metric '{name}': the cut-off after @ must be a positive integer"))
            }))
        };
        if let Some(r) = ranking("ndcg", Metric::Ndcg) {
            return r;
        }
        if let Some(r) = ranking("map", Metric::Map) {
            return r;
        }
        Ok(vec![Metric::parse(name, alpha)?])
    }

    /// Parses one metric name (LightGBM's names and aliases).
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
    pub fn name(&self) -> String {
        match self {
            Metric::Ndcg(k) => return format!("ndcg@{k}"),
            Metric::Map(k) => return format!("map@{k}"),
            _ => {}
        }
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
            Metric::Ndcg(_) | Metric::Map(_) => unreachable!(),
        }
        .to_string()
    }

    /// True when larger is better.
    pub fn higher_better(&self) -> bool {
        matches!(self, Metric::Auc | Metric::Ndcg(_) | Metric::Map(_))
    }

    /// The metric of raw `scores` against `label` (weighted where `weight` is given).
    pub fn eval(
        &self,
        scores: &[f64],
        label: &[f64],
        weight: Option<&[f64]>,
        transform: OutputTransform,
        queries: Option<&[usize]>,
        label_gain: &[f64],
    ) -> f64 {
        if let Metric::Ndcg(k) | Metric::Map(k) = self {
            let all = [0, label.len()];
            let q = queries.unwrap_or(&all);
            let per: Vec<f64> = q
                .windows(2)
                .map(|w| {
                    let (s, l) = (&scores[w[0]..w[1]], &label[w[0]..w[1]]);
                    if matches!(self, Metric::Ndcg(_)) {
                        ndcg_at(s, l, *k, label_gain)
                    } else {
                        map_at(s, l, *k)
                    }
                })
                .collect();
            return per.iter().sum::<f64>() / per.len().max(1) as f64;
        }
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
            Metric::Ndcg(_) | Metric::Map(_) => unreachable!(),
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

fn rank_order(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// NDCG@k of one query (1 when no document is relevant).
pub fn ndcg_at(scores: &[f64], label: &[f64], k: usize, label_gain: &[f64]) -> f64 {
    let gain = |y: f64| label_gain.get(y as usize).copied().unwrap_or(0.0);
    let dcg: f64 = rank_order(scores).iter().take(k).enumerate().map(|(r, &i)| gain(label[i]) / (2.0 + r as f64).log2()).sum();
    let mut ideal: Vec<f64> = label.iter().map(|&y| gain(y)).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let best: f64 = ideal.iter().take(k).enumerate().map(|(r, &g)| g / (2.0 + r as f64).log2()).sum();
    if best > 0.0 {
        dcg / best
    } else {
        1.0
    }
}

/// Average precision at k of one query (1 when no document is relevant).
pub fn map_at(scores: &[f64], label: &[f64], k: usize) -> f64 {
    let relevant = label.iter().filter(|&&y| y > 0.0).count();
    if relevant == 0 {
        return 1.0;
    }
    let (mut hits, mut sum) = (0.0, 0.0);
    for (r, &i) in rank_order(scores).iter().take(k).enumerate() {
        if label[i] > 0.0 {
            hits += 1.0;
            sum += hits / (r + 1) as f64;
        }
    }
    sum / relevant.min(k) as f64
}

/// Weighted ROC AUC; tied scores count half.
pub fn auc(scores: &[f64], label: &[f64], weight: Option<&[f64]>) -> f64 {
    let w = |i: usize| weight.map_or(1.0, |w| w[i]);
    let (area, tp, fp) = crate::drift::performance::roc_area(scores, |i| if label[i] > 0.5 { (w(i), 0.0) } else { (0.0, w(i)) });
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
    fn ndcg_and_map_by_hand() {
        let gains: Vec<f64> = (0..31).map(|i| ((1u64 << i) - 1) as f64).collect();
        // Perfect order.
        assert_eq!(ndcg_at(&[3.0, 2.0, 1.0], &[2.0, 1.0, 0.0], 3, &gains), 1.0);
        // Swapped top two: DCG = 1/log2(2) + 3/log2(3); ideal = 3 + 1/log2(3).
        let want = (1.0 + 3.0 / 3f64.log2()) / (3.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at(&[2.0, 3.0, 1.0], &[2.0, 1.0, 0.0], 3, &gains) - want).abs() < 1e-12);
        assert!((map_at(&[0.9, 0.8, 0.7], &[0.0, 1.0, 1.0], 3) - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        let m = Metric::parse_all("ndcg", 0.9, &[1, 3]).unwrap();
        assert_eq!(m.iter().map(|m| m.name()).collect::<Vec<_>>(), vec!["ndcg@1", "ndcg@3"]);
    }

    #[test]
    fn unknown_metric_suggests() {
        let e = Metric::parse("aucc", 0.9).unwrap_err();
        assert!(e.to_string().contains("'auc'"), "{e}");
    }
}
