//! `ferrox._ferrox` drift functions: the two-sample tests, distances and p-value correction of
//! `crate::drift`, behind `ferrox.drift`.

use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use super::errors::{detach, to_py};
use crate::drift::{distance, multitest, twosample};
use crate::error::Error;

fn vec1(a: &PyReadonlyArray1<'_, f64>) -> Vec<f64> {
    a.as_array().iter().copied().collect()
}

/// Two-sample Kolmogorov–Smirnov test: (statistic, pvalue, location, sign).
#[pyfunction]
#[pyo3(signature = (data1, data2, alternative="two-sided", method="auto"))]
pub fn ks_2samp(
    py: Python<'_>,
    data1: PyReadonlyArray1<'_, f64>,
    data2: PyReadonlyArray1<'_, f64>,
    alternative: &str,
    method: &str,
) -> PyResult<(f64, f64, f64, i8)> {
    let alt = twosample::Alternative::parse(alternative).map_err(|e| to_py(py, e))?;
    let m = twosample::KsMethod::parse(method).map_err(|e| to_py(py, e))?;
    let (a, b) = (vec1(&data1), vec1(&data2));
    let r = detach(py, move || {
        let a = twosample::sorted_sample("data1", &a)?;
        let b = twosample::sorted_sample("data2", &b)?;
        twosample::ks_2samp(&a, &b, alt, m)
    })?;
    Ok((r.statistic, r.pvalue, r.location, r.sign))
}

/// Two-sample Cramér–von Mises test: (statistic, pvalue).
#[pyfunction]
#[pyo3(signature = (x, y, method="auto"))]
pub fn cramervonmises_2samp(
    py: Python<'_>,
    x: PyReadonlyArray1<'_, f64>,
    y: PyReadonlyArray1<'_, f64>,
    method: &str,
) -> PyResult<(f64, f64)> {
    let (a, b, method) = (vec1(&x), vec1(&y), method.to_owned());
    detach(py, move || {
        let a = twosample::sorted_sample("x", &a)?;
        let b = twosample::sorted_sample("y", &b)?;
        twosample::cramervonmises_2samp(&a, &b, &method)
    })
}

/// Mann–Whitney U test: (U1, pvalue).
#[pyfunction]
#[pyo3(signature = (x, y, use_continuity=true, alternative="two-sided", method="auto"))]
pub fn mannwhitneyu(
    py: Python<'_>,
    x: PyReadonlyArray1<'_, f64>,
    y: PyReadonlyArray1<'_, f64>,
    use_continuity: bool,
    alternative: &str,
    method: &str,
) -> PyResult<(f64, f64)> {
    let alt = twosample::Alternative::parse(alternative).map_err(|e| to_py(py, e))?;
    let (a, b, method) = (vec1(&x), vec1(&y), method.to_owned());
    detach(py, move || {
        let a = twosample::sorted_sample("x", &a)?;
        let b = twosample::sorted_sample("y", &b)?;
        twosample::mannwhitneyu(&a, &b, use_continuity, alt, &method)
    })
}

/// k-sample Anderson–Darling test: (statistic, pvalue, capped).
#[pyfunction]
#[pyo3(signature = (samples, midrank=true))]
pub fn anderson_ksamp(py: Python<'_>, samples: Vec<PyReadonlyArray1<'_, f64>>, midrank: bool) -> PyResult<(f64, f64, bool)> {
    let vs: Vec<Vec<f64>> = samples.iter().map(vec1).collect();
    detach(py, move || {
        let sorted: Vec<Vec<f64>> = vs
            .iter()
            .enumerate()
            .map(|(i, v)| twosample::sorted_sample(&format!("samples[{i}]"), v))
            .collect::<crate::Result<_>>()?;
        let refs: Vec<&[f64]> = sorted.iter().map(|v| v.as_slice()).collect();
        twosample::anderson_ksamp(&refs, midrank)
    })
}

/// Chi-square test of independence: (statistic, pvalue, dof, expected).
#[pyfunction]
#[pyo3(signature = (observed, correction=true))]
pub fn chi2_contingency<'py>(
    py: Python<'py>,
    observed: PyReadonlyArray2<'py, f64>,
    correction: bool,
) -> PyResult<(f64, f64, usize, Bound<'py, PyArray2<f64>>)> {
    let (rows, cols) = observed.as_array().dim();
    let table: Vec<f64> = observed.as_array().iter().copied().collect();
    let r = detach(py, move || twosample::chi2_contingency(&table, rows, cols, correction))?;
    let expected = ndarray::Array2::from_shape_vec((rows, cols), r.expected)
        .map_err(|e| to_py(py, Error::Internal(e.to_string())))?;
    Ok((r.statistic, r.pvalue, r.dof, PyArray2::from_owned_array(py, expected)))
}

fn weights(w: &Option<PyReadonlyArray1<'_, f64>>) -> Option<Vec<f64>> {
    w.as_ref().map(vec1)
}

/// First Wasserstein distance between two 1-D distributions.
#[pyfunction]
#[pyo3(signature = (u_values, v_values, u_weights=None, v_weights=None))]
pub fn wasserstein_distance(
    py: Python<'_>,
    u_values: PyReadonlyArray1<'_, f64>,
    v_values: PyReadonlyArray1<'_, f64>,
    u_weights: Option<PyReadonlyArray1<'_, f64>>,
    v_weights: Option<PyReadonlyArray1<'_, f64>>,
) -> PyResult<f64> {
    let (u, v, uw, vw) = (vec1(&u_values), vec1(&v_values), weights(&u_weights), weights(&v_weights));
    detach(py, move || distance::wasserstein_distance(&u, &v, uw.as_deref(), vw.as_deref()))
}

/// Energy distance between two 1-D distributions.
#[pyfunction]
#[pyo3(signature = (u_values, v_values, u_weights=None, v_weights=None))]
pub fn energy_distance(
    py: Python<'_>,
    u_values: PyReadonlyArray1<'_, f64>,
    v_values: PyReadonlyArray1<'_, f64>,
    u_weights: Option<PyReadonlyArray1<'_, f64>>,
    v_weights: Option<PyReadonlyArray1<'_, f64>>,
) -> PyResult<f64> {
    let (u, v, uw, vw) = (vec1(&u_values), vec1(&v_values), weights(&u_weights), weights(&v_weights));
    detach(py, move || distance::energy_distance(&u, &v, uw.as_deref(), vw.as_deref()))
}

/// Jensen–Shannon distance between two probability vectors.
#[pyfunction]
#[pyo3(signature = (p, q, base=None))]
pub fn jensenshannon(py: Python<'_>, p: PyReadonlyArray1<'_, f64>, q: PyReadonlyArray1<'_, f64>, base: Option<f64>) -> PyResult<f64> {
    let (p, q) = (vec1(&p), vec1(&q));
    detach(py, move || distance::jensenshannon(&p, &q, base))
}

/// Hellinger distance between two probability vectors.
#[pyfunction]
pub fn hellinger(py: Python<'_>, p: PyReadonlyArray1<'_, f64>, q: PyReadonlyArray1<'_, f64>) -> PyResult<f64> {
    let (p, q) = (vec1(&p), vec1(&q));
    detach(py, move || distance::hellinger(&p, &q))
}

/// Population stability index of `current` against `reference`.
#[pyfunction]
#[pyo3(signature = (reference, current, bins=10, epsilon=1e-4))]
pub fn psi(
    py: Python<'_>,
    reference: PyReadonlyArray1<'_, f64>,
    current: PyReadonlyArray1<'_, f64>,
    bins: usize,
    epsilon: f64,
) -> PyResult<f64> {
    let (r, c) = (vec1(&reference), vec1(&current));
    detach(py, move || distance::psi(&r, &c, bins, epsilon))
}

/// Multiple-testing adjusted p-values ("bh", "holm", "bonferroni", "none").
#[pyfunction]
#[pyo3(signature = (pvalues, method="bh"))]
pub fn adjust_pvalues<'py>(py: Python<'py>, pvalues: PyReadonlyArray1<'py, f64>, method: &str) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let m = multitest::Correction::parse(method).map_err(|e| to_py(py, e))?;
    let p = vec1(&pvalues);
    let out = detach(py, move || multitest::adjust(&p, m))?;
    Ok(PyArray1::from_vec(py, out))
}
