//! Inference: the one place trees are evaluated on raw feature values. Boosters trained here (and,
//! later, imported models) are compiled into a [`Forest`] of flat node arrays.

pub mod compiled;
pub mod forest;
pub mod lightgbm;
mod quick;
pub mod shap;
pub mod ubjson;
pub mod xgboost;

pub use forest::{Forest, FlatTree, Node};

use serde::{Deserialize, Serialize};

/// How raw scores become predictions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum OutputTransform {
    /// The raw score.
    Identity,
    /// 1 / (1 + exp(-s * raw)).
    Sigmoid(f64),
    /// exp(raw).
    Exp,
    /// Softmax across the classes of a row.
    Softmax,
    /// An independent sigmoid per class (one-vs-all multiclass).
    SigmoidEach(f64),
    /// log(1 + exp(raw)) (LightGBM's cross_entropy_lambda).
    Log1pExp,
}

impl OutputTransform {
    /// The transform of one score (softmax excepted: see [`OutputTransform::apply_row`]).
    #[inline]
    pub fn apply1(self, raw: f64) -> f64 {
        match self {
            OutputTransform::Identity | OutputTransform::Softmax => raw,
            OutputTransform::Sigmoid(s) | OutputTransform::SigmoidEach(s) => 1.0 / (1.0 + (-s * raw).exp()),
            OutputTransform::Exp => raw.exp(),
            OutputTransform::Log1pExp => raw.exp().ln_1p(),
        }
    }

    /// Transforms the scores of one row in place.
    pub fn apply_row(self, row: &mut [f64]) {
        match self {
            OutputTransform::Softmax => {
                let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = (*v - mx).exp();
                    sum += *v;
                }
                for v in row.iter_mut() {
                    *v /= sum;
                }
            }
            t => {
                for v in row.iter_mut() {
                    *v = t.apply1(*v);
                }
            }
        }
    }
}
