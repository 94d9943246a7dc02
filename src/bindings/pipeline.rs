//! The serialisable feature pipeline: fitted transform steps plus a linear model, predicting in Rust.

use std::path::PathBuf;

use ndarray::Array2;
use numpy::{PyArray2, PyReadonlyArray1, PyReadonlyArray2};
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

pub(crate) fn step_of(kind: &str, d: &Bound<'_, PyDict>) -> PyResult<Step> {
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

// ---------------------------------------------------------------------------------------------
// The deployable model: preprocessing + final model + schema + profile, predicting in Rust.

use arrow_schema::DataType;
use pyo3::types::PyList;

use super::gbdt::PyBoosterModel;
use super::profile::PyReferenceProfile;
use super::transform::PyCategoryTable;
use crate::data::frame::FeatureRef;
use crate::transform::deploy::{ColumnType, Deployable, FinalModel, InputSchema, Labels, Output, Part, Task, Tensor, Transform};
use crate::transform::encode::{self as encode_mod, OneHotOptions};

fn table_of(d: &Bound<'_, PyDict>) -> PyResult<Vec<crate::transform::encode::ColumnCategories>> {
    let t = item(d, "table")?;
    let t = t.cast::<PyCategoryTable>().map_err(|_| to_py(d.py(), Error::param("'table' must be a fitted CategoryTable")))?;
    Ok(t.get().inner.clone())
}

fn transform_of(kind: &str, d: &Bound<'_, PyDict>) -> PyResult<Transform> {
    let py = d.py();
    Ok(match kind {
        "affine" | "impute" | "quantile" => Transform::Numeric(step_of(kind, d)?),
        "ordinal" => Transform::Ordinal {
            categories: table_of(d)?,
            unknown_value: get!(d, "unknown_value", Option<f64>),
            missing_value: get!(d, "missing_value", f64),
            index: Vec::new(),
        },
        "onehot" => {
            let categories = table_of(d)?;
            let opt = OneHotOptions {
                min_frequency: get!(d, "min_frequency", Option<f64>),
                max_categories: get!(d, "max_categories", Option<usize>),
                drop: get!(d, "drop", Option<String>),
                infrequent_if_exist: get!(d, "infrequent_if_exist", bool),
            };
            let layout = encode_mod::onehot_layout(&categories, &opt).map_err(|e| to_py(py, e))?;
            Transform::OneHot { categories, layout, error_on_unknown: get!(d, "error", bool), index: Vec::new() }
        }
        "target" => {
            let categories = table_of(d)?;
            let encodings = get!(d, "encodings", Vec<Vec<f64>>);
            let means = get!(d, "means", Vec<f64>);
            if encodings.len() != categories.len() * means.len() {
                return Err(to_py(py, Error::data("target encodings do not match the category table")));
            }
            Transform::Target { categories, encodings, means, index: Vec::new() }
        }
        "kbins" => Transform::Bins {
            inner_edges: get!(d, "inner_edges", Vec<Vec<f64>>),
            n_bins: get!(d, "n_bins", Vec<usize>),
            onehot: get!(d, "onehot", bool),
        },
        "columns" => {
            let parts = get!(d, "parts", Vec<(Vec<usize>, String, Bound<'_, PyDict>)>);
            let parts = parts
                .iter()
                .map(|(cols, k, pd)| {
                    Ok(Part {
                        columns: cols.clone(),
                        transform: if k == "passthrough" { None } else { Some(transform_of(k, pd)?) },
                    })
                })
                .collect::<PyResult<Vec<_>>>()?;
            Transform::Columns { parts, n_inputs: get!(d, "n_inputs", usize) }
        }
        "chain" => {
            let steps = get!(d, "steps", Vec<(String, Bound<'_, PyDict>)>);
            Transform::Chain(steps.iter().map(|(k, sd)| transform_of(k, sd)).collect::<PyResult<Vec<_>>>()?)
        }
        other => return Err(to_py(py, Error::param(format!("unknown pipeline step kind '{other}'")))),
    })
}

fn labels_of(v: &Bound<'_, PyAny>) -> PyResult<Labels> {
    if let Ok(l) = v.extract::<Vec<i64>>() {
        return Ok(Labels::I64(l));
    }
    if let Ok(l) = v.extract::<Vec<f64>>() {
        return Ok(Labels::F64(l));
    }
    if let Ok(l) = v.extract::<Vec<String>>() {
        return Ok(Labels::Str(l));
    }
    Err(to_py(v.py(), Error::data("class labels must be all integers, all floats or all strings")))
}

/// Arrow batches and schema of a table / record batch object.

/// The schema of training data (a numpy matrix named `names`, or an Arrow table).
fn infer_schema(py: Python<'_>, data: &Bound<'_, PyAny>, names: Option<Vec<String>>) -> PyResult<InputSchema> {
    let numeric = |m: DenseMatrix<'_>, names: Option<Vec<String>>| {
        let n = m.dim().1;
        let names = names.unwrap_or_else(|| (0..n).map(|i| format!("f{i}")).collect());
        let frame = crate::data::frame::Frame::from_dense(m, Some(names), &[])?;
        InputSchema::infer(&frame, &vec![ColumnType::Float; n])
    };
    if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f64>>() {
        let v = a.as_array();
        return detach(py, move || numeric(DenseMatrix::F64(v), names));
    }
    if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f32>>() {
        let v = a.as_array();
        return detach(py, move || numeric(DenseMatrix::F32(v), names));
    }
    let Some((batches, schema)) = super::convert::arrow_of(data)? else {
        return Err(to_py(py, Error::data("training data must be a 2-D float numpy array or an Arrow table")));
    };
    detach(py, move || {
        let mut dtypes = Vec::with_capacity(schema.fields().len());
        let mut cats = Vec::new();
        for (j, f) in schema.fields().iter().enumerate() {
            let t = ColumnType::of_arrow(f.data_type()).ok_or_else(|| {
                Error::data(format!("column '{}' has Arrow type {}, which a model input cannot have", f.name(), f.data_type()))
            })?;
            if t == ColumnType::String || matches!(f.data_type(), DataType::Dictionary(..)) {
                cats.push(FeatureRef::Index(j));
            }
            dtypes.push(t);
        }
        let frame = crate::data::frame::Frame::from_arrow(&batches, &schema, &cats)?;
        InputSchema::infer(&frame, &dtypes)
    })
}

fn tensor_out<'py>(py: Python<'py>, t: Tensor) -> PyResult<Bound<'py, PyAny>> {
    let rows = t.rows();
    Ok(match t {
        Tensor::F64 { data, cols } => super::convert::matrix_from_vec(py, rows, cols, data)?.into_any(),
        Tensor::I64 { data, cols } => {
            let a = Array2::from_shape_vec((rows, cols), data).map_err(|e| to_py(py, Error::Internal(e.to_string())))?;
            PyArray2::from_owned_array(py, a).into_any()
        }
        Tensor::Bytes { data, .. } => PyList::new(py, data)?.into_any(),
    })
}

/// A deployable model: fitted preprocessing, a final model (GBDT forest or linear), the input schema
/// and an optional reference profile; the one prediction path of `ferrox.pipeline.Pipeline` and of
/// the model server.
#[pyclass(frozen, name = "Deployable", module = "ferrox._ferrox")]
pub struct PyDeployable {
    pub inner: Deployable,
}

#[pymethods]
impl PyDeployable {
    /// Builds a deployable from fitted steps ((kind, parameters) pairs), a final model ("gbdt" with a
    /// BoosterModel, or "linear" with a LinearModel), class labels (classifiers) and the training data
    /// (its schema is inferred: types, categories, ranges; missing-value support from the steps).
    #[staticmethod]
    #[pyo3(signature = (data, feature_names, steps, final_kind, model, labels=None, proba=false, reference_profile=None, meta=String::new()))]
    #[allow(clippy::too_many_arguments)]
    fn build(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        feature_names: Option<Vec<String>>,
        steps: Vec<(String, Bound<'_, PyDict>)>,
        final_kind: &str,
        model: &Bound<'_, PyAny>,
        labels: Option<Bound<'_, PyAny>>,
        proba: bool,
        reference_profile: Option<PyRef<'_, PyReferenceProfile>>,
        meta: String,
    ) -> PyResult<Self> {
        let steps = steps.iter().map(|(k, d)| transform_of(k, d)).collect::<PyResult<Vec<_>>>()?;
        let task = match &labels {
            Some(l) => Task::Classes { labels: labels_of(l)?, proba },
            None => Task::Scores,
        };
        let model = match final_kind {
            "gbdt" => {
                let m = model.cast::<PyBoosterModel>().map_err(|_| to_py(py, Error::param("a gbdt final model must be a BoosterModel")))?;
                let m = m.get().model.as_ref().clone();
                let n_trees = m.trees_for(None);
                FinalModel::Gbdt { model: m, n_trees, task }
            }
            "linear" => {
                let m = model.cast::<PyLinearModel>().map_err(|_| to_py(py, Error::param("a linear final model must be a LinearModel")))?;
                FinalModel::Linear { model: m.get().inner.clone(), task }
            }
            other => return Err(to_py(py, Error::param(format!("final_kind must be 'gbdt' or 'linear', got '{other}'")))),
        };
        let schema = infer_schema(py, data, feature_names)?;
        let profile = reference_profile.map(|p| p.inner.as_ref().clone());
        let inner = detach(py, move || Deployable::build(schema, steps, model, profile, meta))?;
        Ok(PyDeployable { inner })
    }

    /// Predictions for a 2-D numpy array (the schema's columns in order) or an Arrow table/batch
    /// (columns by name). `output`: "predict", "predict_proba", "raw" or "contrib". Returns a 2-D
    /// array, or a list of str for string class labels.
    #[pyo3(signature = (data, output="predict", n_threads=0))]
    fn predict<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>, output: &str, n_threads: i64) -> PyResult<Bound<'py, PyAny>> {
        let output = Output::parse(output).map_err(|e| to_py(py, e))?;
        let d = &self.inner;
        let t = if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f64>>() {
            let v = a.as_array();
            detach(py, move || d.predict_dense(&DenseMatrix::F64(v), output, n_threads))?
        } else if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f32>>() {
            let v = a.as_array();
            detach(py, move || d.predict_dense(&DenseMatrix::F32(v), output, n_threads))?
        } else if let Some((batches, schema)) = super::convert::arrow_of(data)? {
            detach(py, move || d.predict_arrow(&batches, &schema, output, n_threads))?
        } else {
            return Err(to_py(py, Error::data("data must be a 2-D float numpy array or an Arrow table / record batch")));
        };
        tensor_out(py, t)
    }

    /// The input schema: one dict per column (name, dtype, categories, min, max, nullable).
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for c in &self.inner.schema().columns {
            let d = PyDict::new(py);
            d.set_item("name", &c.name)?;
            d.set_item("dtype", c.dtype.name())?;
            d.set_item("categories", c.categories.clone())?;
            d.set_item("min", c.min)?;
            d.set_item("max", c.max)?;
            d.set_item("nullable", c.nullable)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// What the model produces: (name, datatype, width) per output, "predict" first.
    fn outputs(&self) -> Vec<(String, String, usize)> {
        self.inner.outputs().into_iter().map(|o| (o.name.to_string(), o.datatype.to_string(), o.width)).collect()
    }

    /// The stored reference profile of the training frame, or None.
    fn reference_profile(&self) -> Option<PyReferenceProfile> {
        self.inner.reference_profile().map(|p| PyReferenceProfile { inner: std::sync::Arc::new(p.clone()) })
    }

    /// A copy carrying a performance reference for monitoring: `task` "binary" (`scores` are
    /// P(class 1) on reference data, `outcomes` 0/1) or "regression" (`scores` the predictions),
    /// `prediction_profile` the profile of those scores (one column), `loss_models` the
    /// (metric, Deployable) pairs of direct loss estimation ("mae", "mse"). None removes it.
    #[pyo3(signature = (task=None, scores=None, outcomes=None, prediction_profile=None, loss_models=Vec::new(), threshold=0.5))]
    fn with_monitoring(
        &self,
        py: Python<'_>,
        task: Option<&str>,
        scores: Option<PyReadonlyArray1<'_, f64>>,
        outcomes: Option<PyReadonlyArray1<'_, f64>>,
        prediction_profile: Option<PyRef<'_, PyReferenceProfile>>,
        loss_models: Vec<(String, PyRef<'_, PyDeployable>)>,
        threshold: f64,
    ) -> PyResult<Self> {
        let Some(task) = task else {
            let inner = self.inner.with_monitoring(None).map_err(|e| to_py(py, e))?;
            return Ok(PyDeployable { inner });
        };
        let (Some(scores), Some(outcomes), Some(profile)) = (scores, outcomes, prediction_profile) else {
            return Err(to_py(py, Error::param("a performance reference needs scores, outcomes and prediction_profile")));
        };
        let (s, o) = (scores.as_slice()?.to_vec(), outcomes.as_slice()?.to_vec());
        let profile = profile.inner.as_ref().clone();
        let losses: Vec<(String, Deployable)> = loss_models.iter().map(|(k, d)| (k.clone(), d.inner.clone())).collect();
        let task = task.to_owned();
        let d = &self.inner;
        let inner = detach(py, move || {
            let performance = crate::drift::performance::PerformanceReference::fit(&task, &s, &o, threshold, profile)?;
            d.with_monitoring(Some(crate::transform::deploy::MonitoringReference { performance, loss_models: losses }))
        })?;
        Ok(PyDeployable { inner })
    }

    /// The performance reference as a dict (task, threshold, metrics, n_rows, loss_models), or None.
    fn monitoring_reference<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(m) = self.inner.monitoring() else { return Ok(None) };
        let d = PyDict::new(py);
        d.set_item("task", &m.performance.task)?;
        d.set_item("threshold", m.performance.threshold)?;
        d.set_item("n_rows", m.performance.n_rows)?;
        let metrics = PyDict::new(py);
        for (k, v) in &m.performance.metrics {
            metrics.set_item(k, v)?;
        }
        d.set_item("metrics", metrics)?;
        d.set_item("loss_models", m.loss_models.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())?;
        d.set_item("calibrated", m.performance.calibration.is_some())?;
        Ok(Some(d))
    }

    /// Caller metadata (JSON text).
    #[getter]
    fn meta(&self) -> String {
        self.inner.meta().to_string()
    }

    /// The deployable as artifact bytes (kind "pipeline").
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let d = &self.inner;
        let b = detach(py, move || d.to_artifact())?;
        Ok(PyBytes::new(py, &b))
    }

    /// A deployable from artifact bytes (verified): a pipeline, booster, linear_model or feature_pipeline.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: Vec<u8>) -> PyResult<Self> {
        let inner = detach(py, move || Deployable::from_artifact(&data))?;
        Ok(PyDeployable { inner })
    }

    /// Writes the deployable to `path` (atomically).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let d = &self.inner;
        detach(py, move || artifact::write_file(&path, &d.to_artifact()?))
    }

    /// Reads and verifies a file written by `save` (or a saved booster / linear model / feature pipeline).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = detach(py, move || Deployable::from_artifact(&artifact::read_file(&path)?))?;
        Ok(PyDeployable { inner })
    }
}
