//! The serialisable feature pipeline: fitted transform steps plus a linear model, predicting in Rust.

use std::path::PathBuf;

use ndarray::Array2;
use numpy::{PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::errors::{detach, to_py};
use super::linear::PyLinearModel;
use crate::artifact;
use crate::data::frame::DenseMatrix;
use crate::error::Error;
use crate::transform::apply::{Affine, QuantileMap};
use crate::transform::pipeline::{FeaturePipeline, Step};

const KIND: &str = "feature_pipeline";

fn item<'py>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    d.get_item(key)?.ok_or_else(|| to_py(d.py(), Error::param(format!("pipeline step is missing '{key}'"))))
}

macro_rules! get {
    ($d:expr, $key:expr, $t:ty) => {
        item($d, $key)?.extract::<$t>()?
    };
}

fn step_of(kind: &str, d: &Bound<'_, PyDict>) -> PyResult<Step> {
    Ok(match kind {
        "affine" => Step::Affine(Affine {
            sub: get!(d, "sub", Vec<f64>),
            div: get!(d, "div", Vec<f64>),
            mul: get!(d, "mul", Vec<f64>),
            add: get!(d, "add", Vec<f64>),
            clip: get!(d, "clip", Option<(f64, f64)>),
        }),
        "impute" => Step::Impute {
            fill: get!(d, "fill", Vec<f64>),
            keep: get!(d, "keep", Vec<usize>),
            indicator: get!(d, "indicator", Vec<usize>),
        },
        "quantile" => {
            let q = item(d, "quantiles")?;
            let q = q.extract::<PyReadonlyArray2<'_, f64>>()?;
            let q = q.as_array();
            Step::Quantile(QuantileMap {
                quantiles: (0..q.ncols()).map(|j| q.column(j).to_vec()).collect(),
                references: get!(d, "references", Vec<f64>),
                normal: get!(d, "normal", bool),
            })
        }
        other => return Err(to_py(d.py(), Error::param(format!("unknown pipeline step kind '{other}'")))),
    })
}

/// Fitted transform steps and a linear model, applied end to end in Rust.
#[pyclass(frozen, name = "FeaturePipeline", module = "ferrox._ferrox")]
pub struct PyFeaturePipeline {
    inner: FeaturePipeline,
}

#[pymethods]
impl PyFeaturePipeline {
    /// Builds a pipeline from (kind, parameters) steps and a fitted model.
    #[staticmethod]
    #[pyo3(signature = (steps, model, n_features, meta=String::new()))]
    fn build(
        steps: Vec<(String, Bound<'_, PyDict>)>,
        model: PyRef<'_, PyLinearModel>,
        n_features: usize,
        meta: String,
    ) -> PyResult<Self> {
        let steps = steps.iter().map(|(k, d)| step_of(k, d)).collect::<PyResult<Vec<_>>>()?;
        Ok(PyFeaturePipeline { inner: FeaturePipeline { steps, model: model.inner.clone(), n_features, meta } })
    }

    /// The final model's decision function on X after every step: (rows, outputs).
    #[pyo3(signature = (x, n_threads=0))]
    fn decision<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>, n_threads: i64) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let p = &self.inner;
        let (out, n) = if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f64>>() {
            let v = a.as_array();
            detach(py, move || Ok((p.decision(&DenseMatrix::F64(v), n_threads)?, v.nrows())))?
        } else if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f32>>() {
            let v = a.as_array();
            detach(py, move || Ok((p.decision(&DenseMatrix::F32(v), n_threads)?, v.nrows())))?
        } else {
            return Err(to_py(py, Error::data("X must be a 2-D float32 or float64 numpy array")));
        };
        let a = Array2::from_shape_vec((n, p.model.n_outputs), out).map_err(|e| to_py(py, Error::Internal(e.to_string())))?;
        Ok(PyArray2::from_owned_array(py, a))
    }

    /// The final model.
    fn model(&self) -> PyLinearModel {
        PyLinearModel { inner: self.inner.model.clone() }
    }

    /// Number of steps before the model.
    fn n_steps(&self) -> usize {
        self.inner.steps.len()
    }

    /// Caller metadata (JSON text).
    #[getter]
    fn meta(&self) -> String {
        self.inner.meta.clone()
    }

    /// The pipeline as artifact bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = artifact::encode(KIND, &self.inner).map_err(|e| to_py(py, e))?;
        Ok(PyBytes::new(py, &b))
    }

    /// A pipeline from artifact bytes (verified).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: Vec<u8>) -> PyResult<Self> {
        let inner = detach(py, move || artifact::decode::<FeaturePipeline>(&data, KIND))?;
        Ok(PyFeaturePipeline { inner })
    }

    /// Writes the pipeline to `path` (atomically).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let inner = self.inner.clone();
        detach(py, move || artifact::save(&path, KIND, &inner))
    }

    /// Reads and verifies a pipeline written by `save`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = detach(py, move || artifact::load::<FeaturePipeline>(&path, KIND))?;
        Ok(PyFeaturePipeline { inner })
    }
}
