//! `ferrox._ferrox.Trainer` and `ferrox._ferrox.BoosterModel`: the GBDT training state and the fitted
//! model behind `ferrox.train` and `ferrox.Booster`.

use std::path::PathBuf;
use std::sync::Arc;

use ndarray::Array2;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::dataset::PyDataset;
use super::errors::{detach, to_py};
use crate::artifact;
use crate::data::frame::{DenseMatrix, Frame};
use crate::error::Error;
use crate::gbdt::{GbdtParams, Model, ParamValue, Trainer};
use crate::predict::Forest;

const KIND: &str = "booster";

fn param_value(v: &Bound<'_, PyAny>) -> PyResult<ParamValue> {
    Ok(if v.is_none() {
        ParamValue::None
    } else if v.is_instance_of::<PyBool>() {
        ParamValue::Bool(v.extract()?)
    } else if v.is_instance_of::<PyInt>() {
        ParamValue::Int(v.extract()?)
    } else if v.is_instance_of::<PyFloat>() {
        ParamValue::Float(v.extract()?)
    } else if v.is_instance_of::<PyString>() {
        ParamValue::Str(v.extract()?)
    } else if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        ParamValue::List(v.try_iter()?.map(|i| param_value(&i?)).collect::<PyResult<_>>()?)
    } else if let Ok(f) = v.extract::<f64>() {
        // numpy scalars and other number-likes.
        if let Ok(i) = v.extract::<i64>() {
            if (i as f64) == f {
                return Ok(ParamValue::Int(i));
            }
        }
        ParamValue::Float(f)
    } else {
        ParamValue::Str(v.str()?.to_string())
    })
}

/// Parses a list of (name, value) pairs into training parameters.
pub fn parse_params(py: Python<'_>, pairs: &Bound<'_, PyAny>) -> PyResult<GbdtParams> {
    let mut out = Vec::new();
    for item in pairs.try_iter()? {
        let item = item?;
        let (k, v): (String, Bound<'_, PyAny>) = item.extract()?;
        out.push((k, param_value(&v)?));
    }
    GbdtParams::from_pairs(&out).map_err(|e| to_py(py, e))
}

/// The state of a training run.
#[pyclass(name = "Trainer", module = "ferrox._ferrox")]
pub struct PyTrainer {
    inner: Trainer,
}

#[pymethods]
impl PyTrainer {
    #[new]
    #[pyo3(signature = (params, train, valids, init_model=None))]
    fn new(
        py: Python<'_>,
        params: &Bound<'_, PyAny>,
        train: PyRef<'_, PyDataset>,
        valids: Vec<PyRef<'_, PyDataset>>,
        init_model: Option<PyRef<'_, PyBoosterModel>>,
    ) -> PyResult<Self> {
        let p = parse_params(py, params)?;
        let train = train.inner.clone();
        let valids = valids.iter().map(|v| v.inner.clone()).collect();
        let init = init_model.map(|m| m.model.as_ref().clone());
        let inner = detach(py, move || Trainer::new(p, train, valids, init))?;
        Ok(PyTrainer { inner })
    }

    /// One boosting round; with grad/hess (float32, class-major), a custom objective's.
    /// Returns True when no tree can split any more.
    #[pyo3(signature = (grad=None, hess=None))]
    fn update(&mut self, py: Python<'_>, grad: Option<PyReadonlyArray1<'_, f32>>, hess: Option<PyReadonlyArray1<'_, f32>>) -> PyResult<bool> {
        let custom = match (&grad, &hess) {
            (Some(g), Some(h)) => Some((g.as_slice()?, h.as_slice()?)),
            (None, None) => None,
            _ => return Err(to_py(py, Error::param("pass both grad and hess, or neither"))),
        };
        let inner = &mut self.inner;
        detach(py, move || inner.update(custom))
    }

    /// Metrics on data 0 (training) or validation set i + 1: [(name, value, higher_is_better)].
    fn eval(&self, py: Python<'_>, data: usize) -> PyResult<Vec<(String, f64, bool)>> {
        self.inner.eval(data).map_err(|e| to_py(py, e))
    }

    /// Rounds completed.
    fn current_iteration(&self) -> usize {
        self.inner.current_iteration()
    }

    /// Metric names in evaluation order.
    fn metric_names(&self) -> Vec<String> {
        self.inner.metric_names()
    }

    /// Records the best round (1-based).
    fn set_best_iteration(&mut self, iteration: usize) {
        self.inner.set_best_iteration(iteration)
    }

    /// Raw training scores, class-major (a copy).
    fn train_scores<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, self.inner.train_scores())
    }

    /// A snapshot of the model so far.
    fn model(&self) -> PyBoosterModel {
        PyBoosterModel::new(self.inner.model().clone())
    }
}

/// The device a prediction asks for (None: the CPU). SHAP values are computed on the CPU only.
fn parse_device(py: Python<'_>, device: Option<&str>, contrib: bool) -> PyResult<crate::gpu::Device> {
    let d = match device {
        None => crate::gpu::Device::Cpu,
        Some(s) => crate::gpu::Device::parse(s).map_err(|e| to_py(py, e))?,
    };
    if contrib && d != crate::gpu::Device::Cpu {
        return Err(to_py(py, Error::param("SHAP values (pred_contrib) are computed on the CPU: pass device='cpu'")));
    }
    Ok(d)
}

/// Predictions, SHAP values, or predictions on a device.
#[allow(clippy::too_many_arguments)]
fn run_predict(
    forest: &Forest,
    gpu: &crate::gpu::predict::GpuForests,
    frame: &Frame<'_>,
    n_trees: usize,
    raw_score: bool,
    num_threads: i64,
    contrib: bool,
    device: crate::gpu::Device,
) -> crate::Result<Vec<f64>> {
    match device {
        crate::gpu::Device::Cuda(i) => gpu.get(forest, i)?.predict(forest, frame, n_trees, raw_score, num_threads),
        crate::gpu::Device::Cpu if contrib => forest.predict_contrib(frame, n_trees, num_threads),
        crate::gpu::Device::Cpu => forest.predict(frame, n_trees, raw_score, num_threads),
    }
}

/// A fitted booster: the model and its compiled forest.
#[pyclass(frozen, name = "BoosterModel", module = "ferrox._ferrox")]
pub struct PyBoosterModel {
    pub model: Arc<Model>,
    forest: Arc<Forest>,
    /// The forest uploaded to each device it predicted on.
    gpu: Arc<crate::gpu::predict::GpuForests>,
}

impl PyBoosterModel {
    pub(crate) fn new(model: Model) -> Self {
        let forest = Arc::new(Forest::from_model(&model));
        PyBoosterModel { model: Arc::new(model), forest, gpu: Default::default() }
    }

    fn output<'py>(&self, py: Python<'py>, out: Vec<f64>, n: usize) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let k = if n == 0 { self.model.num_scores } else { out.len() / n };
        let arr = Array2::from_shape_vec((n, k), out).map_err(|e| to_py(py, Error::Internal(e.to_string())))?;
        Ok(PyArray2::from_owned_array(py, arr))
    }
}

#[pymethods]
impl PyBoosterModel {
    /// Predictions for a 2-D float32/float64 numpy array: (rows, scores).
    #[pyo3(signature = (data, feature_names=None, raw_score=false, num_iteration=None, num_threads=0, contrib=false, device=None))]
    #[allow(clippy::too_many_arguments)]
    fn predict_numpy<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        feature_names: Option<Vec<String>>,
        raw_score: bool,
        num_iteration: Option<usize>,
        num_threads: i64,
        contrib: bool,
        device: Option<String>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let forest = self.forest.clone();
        let gpu = self.gpu.clone();
        let n_trees = self.model.trees_for(num_iteration);
        let device = parse_device(py, device.as_deref(), contrib)?;
        let run = move |m: DenseMatrix<'_>| {
            let frame = Frame::from_dense(m, feature_names, &[])?;
            run_predict(&forest, &gpu, &frame, n_trees, raw_score, num_threads, contrib, device)
        };
        let (out, n) = if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f32>>() {
            let v = a.as_array();
            let n = v.nrows();
            (detach(py, move || run(DenseMatrix::F32(v)))?, n)
        } else if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f64>>() {
            let v = a.as_array();
            let n = v.nrows();
            (detach(py, move || run(DenseMatrix::F64(v)))?, n)
        } else {
            return Err(to_py(py, Error::data("data must be a 2-D float32 or float64 numpy array")));
        };
        self.output(py, out, n)
    }

    /// Predictions for one row of float64 values: (scores,). Runs on the calling thread, without
    /// releasing the GIL (the work is shorter than releasing it).
    #[pyo3(signature = (row, raw_score=false, num_iteration=None))]
    fn predict_row<'py>(
        &self,
        py: Python<'py>,
        row: PyReadonlyArray1<'py, f64>,
        raw_score: bool,
        num_iteration: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let n_trees = self.model.trees_for(num_iteration);
        let values = row.as_slice()?;
        let mut out = vec![0.0; self.model.num_scores];
        let mut scratch = if self.forest.has_categorical() { vec![0.0; values.len()] } else { Vec::new() };
        self.forest.predict_one(values, &mut scratch, n_trees, raw_score, &mut out).map_err(|e| to_py(py, e))?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// Predictions for an Arrow table or record batch: (rows, scores).
    #[pyo3(signature = (data, raw_score=false, num_iteration=None, num_threads=0, contrib=false, device=None))]
    #[allow(clippy::too_many_arguments)]
    fn predict_arrow<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        raw_score: bool,
        num_iteration: Option<usize>,
        num_threads: i64,
        contrib: bool,
        device: Option<String>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let device = parse_device(py, device.as_deref(), contrib)?;
        let gpu = self.gpu.clone();
        let (batches, schema) =
            super::convert::arrow_or(py, data, "data must implement __arrow_c_stream__ or __arrow_c_array__")?;
        let forest = self.forest.clone();
        let n_trees = self.model.trees_for(num_iteration);
        let cats: Vec<_> = (0..forest.num_features().min(schema.fields().len()))
            .filter(|&j| forest.mappers[j].is_categorical())
            .map(crate::data::frame::FeatureRef::Index)
            .collect();
        let n: usize = batches.iter().map(|b| b.num_rows()).sum();
        let out = detach(py, move || {
            let frame = Frame::from_arrow(&batches, &schema, &cats)?;
            run_predict(&forest, &gpu, &frame, n_trees, raw_score, num_threads, contrib, device)
        })?;
        self.output(py, out, n)
    }

    /// Split counts (gain=False) or total gains per feature.
    #[pyo3(signature = (gain=false, num_iteration=None))]
    fn feature_importance<'py>(&self, py: Python<'py>, gain: bool, num_iteration: Option<usize>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_vec(py, self.model.feature_importance(gain, num_iteration))
    }

    /// Trees in the model.
    fn num_trees(&self) -> usize {
        self.model.trees.len()
    }

    /// Completed rounds.
    fn num_iterations(&self) -> usize {
        self.model.num_iterations()
    }

    /// Scores per row (classes for multiclass, else 1).
    fn num_scores(&self) -> usize {
        self.model.num_scores
    }

    /// Best round (1-based), 0 when none was recorded.
    fn best_iteration(&self) -> usize {
        self.model.best_iteration
    }

    /// The same model with another best round recorded.
    fn with_best_iteration(&self, iteration: usize) -> PyBoosterModel {
        let mut m = self.model.as_ref().clone();
        m.best_iteration = iteration;
        PyBoosterModel { model: Arc::new(m), forest: self.forest.clone(), gpu: self.gpu.clone() }
    }

    /// The same model carrying `meta` (text saved with it, e.g. an estimator's parameters as JSON).
    fn with_meta(&self, meta: String) -> PyBoosterModel {
        let mut m = self.model.as_ref().clone();
        m.meta = meta;
        PyBoosterModel { model: Arc::new(m), forest: self.forest.clone(), gpu: self.gpu.clone() }
    }

    /// The text saved with the model ("" when none).
    fn meta(&self) -> String {
        self.model.meta.clone()
    }

    /// Feature names.
    fn feature_name(&self) -> Vec<String> {
        self.model.feature_names.clone()
    }

    /// Per feature, whether it is categorical.
    fn categorical_mask(&self) -> Vec<bool> {
        self.model.mappers.iter().map(|m| m.is_categorical()).collect()
    }

    /// The objective's name.
    fn objective(&self) -> String {
        format!("{:?}", self.model.objective)
    }

    /// Leaves per tree.
    fn num_leaves(&self) -> Vec<usize> {
        self.model.trees.iter().map(|t| t.num_leaves()).collect()
    }

    /// The model as artifact bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let m = self.model.clone();
        let b = detach(py, move || artifact::encode(KIND, m.as_ref()))?;
        Ok(PyBytes::new(py, &b))
    }

    /// A model from artifact bytes (verified).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: Vec<u8>) -> PyResult<Self> {
        let m = detach(py, move || artifact::decode::<Model>(&data, KIND))?;
        Ok(PyBoosterModel::new(m))
    }

    /// Writes the model to `path` (atomically).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let m = self.model.clone();
        detach(py, move || artifact::save(&path, KIND, m.as_ref()))
    }

    /// Reads and verifies a model file.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let m = detach(py, move || artifact::load::<Model>(&path, KIND))?;
        Ok(PyBoosterModel::new(m))
    }

    /// A model from LightGBM's text format (verified node by node).
    #[staticmethod]
    fn from_lightgbm_string(py: Python<'_>, text: String) -> PyResult<Self> {
        let m = detach(py, move || crate::predict::lightgbm::parse(&text))?;
        Ok(PyBoosterModel::new(m))
    }

    /// A model from XGBoost's JSON or UBJSON format (verified node by node).
    #[staticmethod]
    fn from_xgboost_bytes(py: Python<'_>, data: Vec<u8>) -> PyResult<Self> {
        let m = detach(py, move || crate::predict::xgboost::parse(&data))?;
        Ok(PyBoosterModel::new(m))
    }

    /// The whole model as JSON, for people to read.
    fn dump_json(&self, py: Python<'_>) -> PyResult<String> {
        artifact::to_json(self.model.as_ref()).map_err(|e| to_py(py, e))
    }
}
