//! A fitted feature pipeline: numeric transform steps followed by a linear model, saved as one
//! artifact and applied end to end in Rust (the object the model server loads).

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::apply::{impute, Affine, QuantileMap};
use crate::data::frame::DenseMatrix;
use crate::error::{Error, Result};
use crate::linear::LinearModel;

pub use super::deploy::{ColumnSpec, ColumnType, Deployable, InputSchema, Output, OutputSpec, Tensor};

/// One fitted transform.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Step {
    /// Per-column affine map (StandardScaler, MinMaxScaler, RobustScaler).
    Affine(Affine),
    /// Missing values filled per column, then only `keep` columns kept, then 0/1 indicator columns for
    /// the input columns `indicator` (SimpleImputer).
    Impute {
        /// Fill value per input column.
        fill: Vec<f64>,
        /// Input columns kept, in order.
        keep: Vec<usize>,
        /// Input columns whose missingness is appended.
        indicator: Vec<usize>,
    },
    /// Quantile map to uniform or normal (QuantileTransformer).
    Quantile(QuantileMap),
}

impl Step {
    pub fn apply(&self, x: &DenseMatrix<'_>, n_threads: i64) -> Result<(Vec<f64>, usize)> {
        let (n, m) = x.dim();
        match self {
            Step::Affine(a) => Ok((a.apply(x, n_threads)?, m)),
            Step::Quantile(q) => Ok((q.apply(x, n_threads)?, m)),
            Step::Impute { fill, keep, indicator } => {
                let filled = impute(x, fill, n_threads)?;
                let w = keep.len() + indicator.len();
                let mut out = vec![0.0; n * w];
                for i in 0..n {
                    for (k, &j) in keep.iter().enumerate() {
                        out[i * w + k] = filled[i * m + j];
                    }
                    for (k, &j) in indicator.iter().enumerate() {
                        let v = match x {
                            DenseMatrix::F32(a) => a[[i, j]] as f64,
                            DenseMatrix::F64(a) => a[[i, j]],
                        };
                        out[i * w + keep.len() + k] = if v.is_nan() { 1.0 } else { 0.0 };
                    }
                }
                Ok((out, w))
            }
        }
    }
}

/// Transform steps and the model that reads their output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeaturePipeline {
    /// Steps, applied in order.
    pub steps: Vec<Step>,
    /// The final model.
    pub model: LinearModel,
    /// Input columns.
    pub n_features: usize,
    /// Caller metadata (JSON text); never executed.
    pub meta: String,
}

impl FeaturePipeline {
    /// The model's decision function on X after every step: (rows, outputs) row-major.
    pub fn decision(&self, x: &DenseMatrix<'_>, n_threads: i64) -> Result<Vec<f64>> {
        let (n, m) = x.dim();
        if m != self.n_features {
            return Err(Error::data(format!(
                "X has {m} features, but the pipeline is expecting {} features as input.",
                self.n_features
            )));
        }
        let mut cur: Option<(Vec<f64>, usize)> = None;
        for step in &self.steps {
            let next = match &cur {
                None => step.apply(x, n_threads)?,
                Some((buf, w)) => {
                    let view = ArrayView2::from_shape((n, *w), buf).map_err(|e| Error::Internal(e.to_string()))?;
                    step.apply(&DenseMatrix::F64(view), n_threads)?
                }
            };
            // The step's input is done with: it serves a later step's (or call's) output.
            if let Some((done, _)) = cur.replace(next) {
                crate::mem::recycle(done);
            }
        }
        match cur {
            None => self.model.decision(x, n_threads),
            Some((buf, w)) => {
                let view = ArrayView2::from_shape((n, w), &buf[..]).map_err(|e| Error::Internal(e.to_string()))?;
                let out = self.model.decision(&DenseMatrix::F64(view), n_threads);
                crate::mem::recycle(buf);
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn impute_then_scale_then_model() {
        let p = FeaturePipeline {
            steps: vec![
                Step::Impute { fill: vec![1.0, 5.0], keep: vec![0, 1], indicator: vec![1] },
                Step::Affine(Affine {
                    sub: vec![1.0, 0.0, 0.0],
                    div: vec![2.0, 1.0, 1.0],
                    mul: vec![1.0, 1.0, 1.0],
                    add: vec![0.0, 0.0, 0.0],
                    clip: None,
                }),
            ],
            model: LinearModel {
                coef: vec![1.0, 1.0, 10.0],
                intercept: vec![0.5],
                n_features: 3,
                n_outputs: 1,
                classes: vec![],
                kind: "test".into(),
                meta: String::new(),
            },
            n_features: 2,
            meta: String::new(),
        };
        let x = array![[3.0, f64::NAN], [1.0, 2.0]];
        let d = p.decision(&DenseMatrix::F64(x.view()), 1).unwrap();
        assert_eq!(d, vec![1.0 + 5.0 + 10.0 + 0.5, 0.0 + 2.0 + 0.0 + 0.5]);
    }
}

