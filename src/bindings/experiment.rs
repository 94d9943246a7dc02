//! `ferrox._ferrox` experiment functions: the A/B statistics of `crate::experiment`, behind
//! `ferrox.experiment`. Results travel as JSON (the core's serde types).

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;

use super::errors::{detach, to_py};
use crate::drift::multitest::Correction;
use crate::error::Error;
use crate::experiment::events::{self, AnalyzeOptions, MetricSpec};
use crate::experiment::{self as ex, power, Method, Metric, Moments, Options};

type M6 = (f64, f64, f64, f64, f64, f64);

fn pack(m: Moments) -> M6 {
    (m.n, m.mean_y, m.m2_y, m.mean_x, m.m2_x, m.c_xy)
}

fn unpack(t: M6) -> Moments {
    Moments { n: t.0, mean_y: t.1, m2_y: t.2, mean_x: t.3, m2_x: t.4, c_xy: t.5 }
}

fn json<T: serde::Serialize>(v: &T) -> crate::Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))
}

/// Centred moments (n, mean_y, m2_y, mean_x, m2_x, c_xy) of per-unit values, two passes.
#[pyfunction]
#[pyo3(signature = (y, name, x=None, x_name="covariate"))]
pub fn experiment_moments(
    py: Python<'_>,
    y: PyReadonlyArray1<'_, f64>,
    name: &str,
    x: Option<PyReadonlyArray1<'_, f64>>,
    x_name: &str,
) -> PyResult<M6> {
    let yv = y.as_array();
    let xv = x.as_ref().map(|a| a.as_array());
    let (name, x_name) = (name.to_owned(), x_name.to_owned());
    detach(py, move || {
        let ys = yv.as_slice().map(|s| s.to_vec()).unwrap_or_else(|| yv.iter().copied().collect());
        let xs = xv.map(|v| v.as_slice().map(|s| s.to_vec()).unwrap_or_else(|| v.iter().copied().collect()));
        Moments::from_values(&name, &ys, xs.as_deref().map(|s| (x_name.as_str(), s))).map(pack)
    })
}

/// Centred moments from raw sums (n, Σy, Σy², Σx, Σx², Σxy).
#[pyfunction]
pub fn experiment_moments_from_sums(py: Python<'_>, name: &str, sums: M6) -> PyResult<M6> {
    let (n, sy, syy, sx, sxx, sxy) = sums;
    Moments::from_sums(name, n, sy, syy, sx, sxx, sxy).map(pack).map_err(|e| to_py(py, e))
}

/// One comparison as JSON.
#[pyfunction]
#[pyo3(signature = (control, treatment, metric, method, relative, alpha, tuning, cuped))]
#[allow(clippy::too_many_arguments)]
pub fn experiment_compare(
    py: Python<'_>,
    control: M6,
    treatment: M6,
    metric: &str,
    method: &str,
    relative: bool,
    alpha: f64,
    tuning: f64,
    cuped: bool,
) -> PyResult<String> {
    let metric = Metric::parse(metric).map_err(|e| to_py(py, e))?;
    let method = Method::parse(method).map_err(|e| to_py(py, e))?;
    let o = Options { metric, method, relative, alpha, tuning, cuped };
    detach(py, move || json(&ex::compare(&unpack(control), &unpack(treatment), &o)?))
}

/// Sample-ratio mismatch: (statistic, pvalue, mismatch).
#[pyfunction]
pub fn experiment_srm(py: Python<'_>, counts: Vec<f64>, weights: Vec<f64>, threshold: f64) -> PyResult<(f64, f64, bool)> {
    let r = ex::srm::srm(&counts, &weights, threshold).map_err(|e| to_py(py, e))?;
    Ok((r.statistic, r.pvalue, r.mismatch))
}

/// Power analysis: (effect_size, nobs1, alpha, power) with the missing one solved for.
#[pyfunction]
#[pyo3(signature = (test, effect_size, nobs1, alpha, power, ratio, alternative))]
#[allow(clippy::too_many_arguments)]
pub fn experiment_power(
    py: Python<'_>,
    test: &str,
    effect_size: Option<f64>,
    nobs1: Option<f64>,
    alpha: Option<f64>,
    power: Option<f64>,
    ratio: f64,
    alternative: &str,
) -> PyResult<(f64, f64, f64, f64)> {
    let t = power::Test::parse(test).map_err(|e| to_py(py, e))?;
    let alt = power::Alternative::parse(alternative).map_err(|e| to_py(py, e))?;
    detach(py, move || power::solve(t, effect_size, nobs1, alpha, power, ratio, alt))
}

/// Many arms and metrics from an Arrow table, as JSON. `metrics`: (name, kind, y, x, cuped).
#[pyfunction]
#[pyo3(signature = (data, arm, metrics, control, weights, srm_threshold, correction, method, relative, alpha, tuning))]
#[allow(clippy::too_many_arguments)]
pub fn experiment_analyze(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    arm: &str,
    metrics: Vec<(String, String, String, Option<String>, bool)>,
    control: Option<String>,
    weights: Option<Vec<f64>>,
    srm_threshold: f64,
    correction: &str,
    method: &str,
    relative: bool,
    alpha: f64,
    tuning: f64,
) -> PyResult<String> {
    let (batches, schema) = super::convert::arrow_or(py, data, "events must implement __arrow_c_stream__ or __arrow_c_array__")?;
    let specs = metrics
        .into_iter()
        .map(|(name, kind, y, x, cuped)| Ok(MetricSpec { name, metric: Metric::parse(&kind)?, y, x, cuped }))
        .collect::<crate::Result<Vec<_>>>()
        .map_err(|e| to_py(py, e))?;
    let o = AnalyzeOptions {
        control,
        weights,
        srm_threshold,
        correction: Correction::parse(correction).map_err(|e| to_py(py, e))?,
        method: Method::parse(method).map_err(|e| to_py(py, e))?,
        relative,
        alpha,
        tuning,
    };
    let arm = arm.to_owned();
    detach(py, move || json(&events::analyze(&batches, &schema, &arm, &specs, &o)?))
}

/// The HTML page of comparisons given as JSON (`[[label, comparison], ...]`) with notes.
#[pyfunction]
pub fn experiment_html(py: Python<'_>, title: &str, notes: Vec<String>, rows_json: &str) -> PyResult<String> {
    let rows: Vec<(String, ex::Comparison)> =
        serde_json::from_str(rows_json).map_err(|e| to_py(py, Error::data(format!("rows: {e}"))))?;
    let refs: Vec<(String, &ex::Comparison)> = rows.iter().map(|(l, c)| (l.clone(), c)).collect();
    Ok(ex::html::page(title, &notes, &refs))
}

/// Reads the server's experiment event log (a folder of segments, or one segment file):
/// (table, files read, torn partial batches skipped).
#[pyfunction]
pub fn read_event_log(py: Python<'_>, path: std::path::PathBuf) -> PyResult<(pyo3_arrow::PyTable, usize, usize)> {
    let r = detach(py, move || ex::eventlog::read(&path))?;
    Ok((pyo3_arrow::PyTable::try_new(r.batches, r.schema)?, r.files, r.torn))
}
