//! Linear models for `ferrox.linear_model`: fitting entry points and the fitted model (one
//! prediction path, artifact bytes for save/load and pickling).

use std::path::PathBuf;

use ndarray::Array2;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::convert::with_dense;
use super::errors::{detach, to_py};
use crate::artifact;
use crate::error::Error;
use crate::linear::{cd, logistic, ridge, sgd, LinearModel};

const KIND: &str = "linear_model";


fn vec_of(a: Option<PyReadonlyArray1<'_, f64>>) -> Option<Vec<f64>> {
    a.map(|a| a.as_array().to_vec())
}

fn rows_of(y: &PyReadonlyArray2<'_, f64>) -> (Vec<f64>, usize) {
    let a = y.as_array();
    (a.iter().copied().collect(), a.ncols())
}

/// A fitted linear model (coefficients and intercepts), predicting in Rust.
#[pyclass(frozen, name = "LinearModel", module = "ferrox._ferrox")]
pub struct PyLinearModel {
    pub inner: LinearModel,
}

#[pymethods]
impl PyLinearModel {
    /// A model from coefficients (n_outputs, n_features) and intercepts.
    #[new]
    #[pyo3(signature = (coef, intercept, kind, meta=String::new()))]
    fn new(py: Python<'_>, coef: PyReadonlyArray2<'_, f64>, intercept: Vec<f64>, kind: String, meta: String) -> PyResult<Self> {
        let c = coef.as_array();
        if c.nrows() != intercept.len() {
            return Err(to_py(py, Error::data("coef has one row per output; intercept needs one value per output")));
        }
        Ok(PyLinearModel {
            inner: LinearModel {
                coef: c.iter().copied().collect(),
                intercept,
                n_features: c.ncols(),
                n_outputs: c.nrows(),
                classes: vec![],
                kind,
                meta,
            },
        })
    }

    /// The decision function X coef^T + intercept: (rows, n_outputs).
    #[pyo3(signature = (x, n_threads=0))]
    fn decision<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>, n_threads: i64) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let m = &self.inner;
        let (out, n) = with_dense(py, x, move |d| Ok((m.decision(&d, n_threads)?, d.dim().0)))?;
        let a = Array2::from_shape_vec((n, m.n_outputs), out).map_err(|e| to_py(py, Error::Internal(e.to_string())))?;
        Ok(PyArray2::from_owned_array(py, a))
    }

    /// Coefficients, (n_outputs, n_features).
    fn coef<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let m = &self.inner;
        let a = Array2::from_shape_vec((m.n_outputs, m.n_features), m.coef.clone())
            .map_err(|e| to_py(py, Error::Internal(e.to_string())))?;
        Ok(PyArray2::from_owned_array(py, a))
    }

    /// Intercepts, one per output.
    fn intercept<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.intercept)
    }

    /// The estimator kind.
    #[getter]
    fn kind(&self) -> String {
        self.inner.kind.clone()
    }

    /// Caller metadata (JSON text).
    #[getter]
    fn meta(&self) -> String {
        self.inner.meta.clone()
    }

    /// The same model with other metadata.
    fn with_meta(&self, meta: String) -> Self {
        let mut inner = self.inner.clone();
        inner.meta = meta;
        PyLinearModel { inner }
    }

    /// The model as artifact bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = artifact::encode(KIND, &self.inner).map_err(|e| to_py(py, e))?;
        Ok(PyBytes::new(py, &b))
    }

    /// A model from artifact bytes (verified; ModelIntegrityError when changed).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: Vec<u8>) -> PyResult<Self> {
        let inner = detach(py, move || artifact::decode::<LinearModel>(&data, KIND))?;
        Ok(PyLinearModel { inner })
    }

    /// Writes the model to `path` (atomically).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let inner = self.inner.clone();
        detach(py, move || artifact::save(&path, KIND, &inner))
    }

    /// Reads and verifies a model written by `save`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = detach(py, move || artifact::load::<LinearModel>(&path, KIND))?;
        Ok(PyLinearModel { inner })
    }
}

/// Ridge: returns (model, singular) where singular means the minimum-norm solution was used.
#[pyfunction]
#[pyo3(signature = (x, y, alpha, fit_intercept, sample_weight=None, n_threads=0))]
pub fn ridge_fit(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: PyReadonlyArray2<'_, f64>,
    alpha: f64,
    fit_intercept: bool,
    sample_weight: Option<PyReadonlyArray1<'_, f64>>,
    n_threads: i64,
) -> PyResult<(PyLinearModel, bool)> {
    let (yv, t) = rows_of(&y);
    let sw = vec_of(sample_weight);
    let r = with_dense(py, x, move |d| ridge::fit(&d, &yv, t, alpha, fit_intercept, sw.as_deref(), n_threads))?;
    Ok((PyLinearModel { inner: r.model }, r.singular))
}

/// Logistic regression: returns (model, n_iter, converged, objective).
#[pyfunction]
#[pyo3(signature = (x, y, n_classes, c, fit_intercept, tol, max_iter, solver, sample_weight=None, init=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
pub fn logistic_fit(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: PyReadonlyArray1<'_, i64>,
    n_classes: usize,
    c: f64,
    fit_intercept: bool,
    tol: f64,
    max_iter: usize,
    solver: &str,
    sample_weight: Option<PyReadonlyArray1<'_, f64>>,
    init: Option<PyReadonlyArray1<'_, f64>>,
    n_threads: i64,
) -> PyResult<(PyLinearModel, usize, bool, f64)> {
    let solver = match solver {
        "lbfgs" => logistic::Solver::Lbfgs,
        "newton-cholesky" => logistic::Solver::NewtonCholesky,
        other => {
            return Err(to_py(py, Error::param(format!("solver must be 'lbfgs' or 'newton-cholesky', got '{other}'"))))
        }
    };
    let yv: Vec<u32> = y.as_array().iter().map(|&v| v.clamp(0, u32::MAX as i64) as u32).collect();
    let sw = vec_of(sample_weight);
    let init = vec_of(init);
    let opt = logistic::Options { c, fit_intercept, tol, max_iter, solver };
    let r = with_dense(py, x, move |d| logistic::fit(&d, &yv, n_classes, sw.as_deref(), &opt, init.as_deref(), n_threads))?;
    Ok((PyLinearModel { inner: r.model }, r.n_iter, r.converged, r.objective))
}

/// Elastic net: returns (model, n_iter per target, dual gap per target, converged per target).
#[pyfunction]
#[pyo3(signature = (x, y, alpha, l1_ratio, fit_intercept, tol, max_iter, positive, sample_weight=None, init=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
pub fn enet_fit(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: PyReadonlyArray2<'_, f64>,
    alpha: f64,
    l1_ratio: f64,
    fit_intercept: bool,
    tol: f64,
    max_iter: usize,
    positive: bool,
    sample_weight: Option<PyReadonlyArray1<'_, f64>>,
    init: Option<PyReadonlyArray1<'_, f64>>,
    n_threads: i64,
) -> PyResult<(PyLinearModel, Vec<usize>, Vec<f64>, Vec<bool>)> {
    let (yv, t) = rows_of(&y);
    let sw = vec_of(sample_weight);
    let init = vec_of(init);
    let opt = cd::Options { alpha, l1_ratio, fit_intercept, tol, max_iter, positive };
    let r = with_dense(py, x, move |d| cd::fit(&d, &yv, t, sw.as_deref(), &opt, init.as_deref(), n_threads))?;
    Ok((PyLinearModel { inner: r.model }, r.n_iter, r.dual_gap, r.converged))
}

/// SGD on k problems (rows of `targets`): returns (coef (k, m), intercepts, epochs per problem).
#[pyfunction]
#[pyo3(signature = (x, targets, weight_pos, weight_neg, coef, intercept, loss, epsilon, alpha, l1_ratio,
    penalized, fit_intercept, max_iter, tol, n_iter_no_change, learning_rate, eta0, power_t, shuffle_seed,
    t0, sample_weight=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
pub fn sgd_fit<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    targets: PyReadonlyArray2<'py, f64>,
    weight_pos: Vec<f64>,
    weight_neg: Vec<f64>,
    coef: PyReadonlyArray2<'py, f64>,
    intercept: Vec<f64>,
    loss: &str,
    epsilon: f64,
    alpha: f64,
    l1_ratio: f64,
    penalized: bool,
    fit_intercept: bool,
    max_iter: usize,
    tol: Option<f64>,
    n_iter_no_change: usize,
    learning_rate: &str,
    eta0: f64,
    power_t: f64,
    shuffle_seed: Option<u64>,
    t0: f64,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    n_threads: i64,
) -> PyResult<(Bound<'py, PyArray2<f64>>, Vec<f64>, Vec<usize>)> {
    let loss = match loss {
        "hinge" => sgd::Loss::Hinge(1.0),
        "perceptron" => sgd::Loss::Hinge(0.0),
        "squared_hinge" => sgd::Loss::SquaredHinge,
        "modified_huber" => sgd::Loss::ModifiedHuber,
        "log_loss" => sgd::Loss::Log,
        "squared_error" => sgd::Loss::Squared,
        "huber" => sgd::Loss::Huber(epsilon),
        "epsilon_insensitive" => sgd::Loss::EpsilonInsensitive(epsilon),
        "squared_epsilon_insensitive" => sgd::Loss::SquaredEpsilonInsensitive(epsilon),
        other => return Err(to_py(py, Error::param(format!("unknown loss '{other}'")))),
    };
    let schedule = match learning_rate {
        "optimal" => sgd::Schedule::Optimal,
        "constant" => sgd::Schedule::Constant,
        "invscaling" => sgd::Schedule::InvScaling,
        "adaptive" => sgd::Schedule::Adaptive,
        other => return Err(to_py(py, Error::param(format!("learning_rate must be 'optimal', 'constant', 'invscaling' or 'adaptive', got '{other}'")))),
    };
    let t = targets.as_array();
    let c = coef.as_array();
    let k = t.nrows();
    if weight_pos.len() != k || weight_neg.len() != k || c.nrows() != k || intercept.len() != k {
        return Err(to_py(py, Error::Internal("SGD problem arrays disagree".into())));
    }
    let m = c.ncols();
    let problems: Vec<sgd::Problem> = (0..k)
        .map(|p| sgd::Problem {
            y: t.row(p).to_vec(),
            weight_pos: weight_pos[p],
            weight_neg: weight_neg[p],
            coef: c.row(p).to_vec(),
            intercept: intercept[p],
        })
        .collect();
    let opt = sgd::Options {
        loss,
        alpha,
        l1_ratio,
        penalized,
        fit_intercept,
        max_iter,
        tol,
        n_iter_no_change,
        schedule,
        eta0,
        power_t,
        shuffle_seed,
    };
    let sw = vec_of(sample_weight);
    let solved = with_dense(py, x, move |d| sgd::fit(&d, &problems, sw.as_deref(), &opt, t0, n_threads))?;
    let mut flat = Vec::with_capacity(k * m);
    let mut icpt = Vec::with_capacity(k);
    let mut iters = Vec::with_capacity(k);
    for (w, b, it) in solved {
        flat.extend(w);
        icpt.push(b);
        iters.push(it);
    }
    let a = Array2::from_shape_vec((k, m), flat).map_err(|e| to_py(py, Error::Internal(e.to_string())))?;
    Ok((PyArray2::from_owned_array(py, a), icpt, iters))
}
