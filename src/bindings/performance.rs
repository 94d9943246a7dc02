//! `ferrox._ferrox` performance functions: realised metrics and the estimates of
//! `crate::drift::performance`, behind `ferrox.drift.CBPE`, `DLE` and `performance`.

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;

use super::errors::{detach, to_py};
use crate::drift::performance::{self, Calibration, Estimate};
use crate::error::Error;

fn vec1(a: &PyReadonlyArray1<'_, f64>) -> Vec<f64> {
    a.as_array().iter().copied().collect()
}

fn estimates(v: Vec<(String, Estimate)>) -> Vec<(String, f64, f64, f64)> {
    v.into_iter().map(|(k, e)| (k, e.value, e.lower, e.upper)).collect()
}

/// Realised metrics: task "binary" (roc_auc, logloss, accuracy) or "regression" (rmse, mae).
#[pyfunction]
#[pyo3(signature = (task, scores, outcomes, threshold=0.5))]
pub fn performance_realised(
    py: Python<'_>,
    task: &str,
    scores: PyReadonlyArray1<'_, f64>,
    outcomes: PyReadonlyArray1<'_, f64>,
    threshold: f64,
) -> PyResult<Vec<(String, f64)>> {
    let binary = match task {
        "binary" => true,
        "regression" => false,
        other => return Err(to_py(py, Error::param(format!("task must be 'binary' or 'regression', got '{other}'")))),
    };
    let (s, o) = (vec1(&scores), vec1(&outcomes));
    detach(py, move || performance::realised(binary, &s, &o, threshold))
}

/// The isotonic calibration of reference scores: (knot scores, knot probabilities).
#[pyfunction]
pub fn performance_calibrate(py: Python<'_>, scores: PyReadonlyArray1<'_, f64>, outcomes: PyReadonlyArray1<'_, f64>) -> PyResult<(Vec<f64>, Vec<f64>)> {
    let (s, o) = (vec1(&scores), vec1(&outcomes));
    let c = detach(py, move || Calibration::fit(&s, &o))?;
    Ok((c.x, c.y))
}

/// Confidence-based estimates (metric, value, lower, upper) of roc_auc and accuracy, from scores
/// and a calibration's knots.
#[pyfunction]
#[pyo3(signature = (scores, knots_x, knots_y, threshold=0.5))]
pub fn performance_estimate_binary(
    py: Python<'_>,
    scores: PyReadonlyArray1<'_, f64>,
    knots_x: Vec<f64>,
    knots_y: Vec<f64>,
    threshold: f64,
) -> PyResult<Vec<(String, f64, f64, f64)>> {
    if knots_x.is_empty() || knots_x.len() != knots_y.len() {
        return Err(to_py(py, Error::param("the calibration needs as many knot probabilities as knot scores, at least one")));
    }
    let s = vec1(&scores);
    let c = Calibration { x: knots_x, y: knots_y };
    detach(py, move || performance::estimate_binary(&s, &c, threshold)).map(estimates)
}

/// Direct loss estimates (metric, value, lower, upper) of mae and rmse from predicted losses.
#[pyfunction]
pub fn performance_estimate_regression(
    py: Python<'_>,
    abs_err: PyReadonlyArray1<'_, f64>,
    sq_err: PyReadonlyArray1<'_, f64>,
) -> PyResult<Vec<(String, f64, f64, f64)>> {
    let (a, s) = (vec1(&abs_err), vec1(&sq_err));
    detach(py, move || performance::estimate_regression(&a, &s)).map(estimates)
}
