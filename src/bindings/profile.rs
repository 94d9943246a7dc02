//! `ferrox._ferrox.ReferenceProfile` and `DriftReport`: the profile and report of `crate::drift::profile`
//! behind `ferrox.drift.ReferenceProfile`.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::PyReadonlyArray2;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3_arrow::{PyRecordBatch, PyTable};

use super::errors::{detach, to_py};
use crate::artifact;
use crate::data::frame::DenseMatrix;
use crate::data::Frame;
use crate::drift::multitest::Correction;
use crate::drift::profile::{default_categorical, CompareOptions, DriftReport, ProfileConfig, ReferenceProfile, TestKind};
use crate::error::Error;

const KIND: &str = "reference_profile";

/// A fitted reference profile (immutable; shared cheaply).
#[pyclass(frozen, name = "ReferenceProfile", module = "ferrox._ferrox")]
pub struct PyReferenceProfile {
    pub inner: Arc<ReferenceProfile>,
}

/// The outcome of a comparison.
#[pyclass(frozen, name = "DriftReport", module = "ferrox._ferrox")]
pub struct PyDriftReport {
    pub inner: Arc<DriftReport>,
}

fn arrow_input(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<(Vec<arrow_array::RecordBatch>, arrow_schema::SchemaRef)> {
    if data.hasattr("__arrow_c_stream__")? {
        Ok(data.extract::<PyTable>()?.into_inner())
    } else if data.hasattr("__arrow_c_array__")? {
        let b = data.extract::<PyRecordBatch>()?.into_inner();
        let s = b.schema();
        Ok((vec![b], s))
    } else {
        Err(to_py(py, Error::data("data must implement __arrow_c_stream__ or __arrow_c_array__")))
    }
}

/// Runs `f` on a frame read from a numpy matrix (f32 or f64) with `names`.
fn with_numpy<T: Send>(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    names: Option<Vec<String>>,
    f: impl for<'a> Fn(&Frame<'a>) -> crate::Result<T> + Send + Sync,
) -> PyResult<T> {
    if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f32>>() {
        let view = a.as_array();
        detach(py, move || f(&Frame::from_dense(DenseMatrix::F32(view), names, &[])?))
    } else if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f64>>() {
        let view = a.as_array();
        detach(py, move || f(&Frame::from_dense(DenseMatrix::F64(view), names, &[])?))
    } else {
        Err(to_py(py, Error::data("data must be a 2-D float32 or float64 numpy array")))
    }
}

fn with_arrow<T: Send>(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    f: impl for<'a> Fn(&Frame<'a>) -> crate::Result<T> + Send + Sync,
) -> PyResult<T> {
    let (batches, schema) = arrow_input(py, data)?;
    detach(py, move || {
        let cats = default_categorical(&schema);
        let frame = Frame::from_arrow(&batches, &schema, &cats)?;
        f(&frame)
    })
}

#[allow(clippy::too_many_arguments)]
fn options(
    py: Python<'_>,
    alpha: f64,
    correction: &str,
    tests: Option<Vec<(String, String)>>,
    large_sample: u64,
    min_effect: f64,
    psi_bins: usize,
    epsilon: f64,
    drift_share: f64,
    hist_bins: usize,
) -> PyResult<CompareOptions> {
    let correction = Correction::parse(correction).map_err(|e| to_py(py, e))?;
    let mut parsed = Vec::new();
    for (c, t) in tests.unwrap_or_default() {
        parsed.push((c, TestKind::parse(&t).map_err(|e| to_py(py, e))?));
    }
    if !(epsilon > 0.0 && epsilon < 1.0) {
        return Err(to_py(py, Error::param(format!("epsilon must be in (0, 1), got {epsilon}"))));
    }
    Ok(CompareOptions { alpha, correction, tests: parsed, large_sample, min_effect, psi_bins, epsilon, drift_share, hist_bins })
}

#[pymethods]
impl PyReferenceProfile {
    /// Profiles a 2-D numpy array (all columns numeric).
    #[staticmethod]
    #[pyo3(signature = (data, feature_names=None, exact_limit=1_000_000, sketch_k=4096, num_threads=0))]
    fn fit_numpy(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        feature_names: Option<Vec<String>>,
        exact_limit: usize,
        sketch_k: usize,
        num_threads: i64,
    ) -> PyResult<Self> {
        let cfg = ProfileConfig { exact_limit, sketch_k };
        let p = with_numpy(py, data, feature_names, move |f| ReferenceProfile::fit(f, cfg.clone(), num_threads))?;
        Ok(PyReferenceProfile { inner: Arc::new(p) })
    }

    /// Profiles an Arrow table or record batch (strings, booleans and dictionaries are categorical).
    #[staticmethod]
    #[pyo3(signature = (data, exact_limit=1_000_000, sketch_k=4096, num_threads=0))]
    fn fit_arrow(py: Python<'_>, data: &Bound<'_, PyAny>, exact_limit: usize, sketch_k: usize, num_threads: i64) -> PyResult<Self> {
        let cfg = ProfileConfig { exact_limit, sketch_k };
        let p = with_arrow(py, data, move |f| ReferenceProfile::fit(f, cfg.clone(), num_threads))?;
        Ok(PyReferenceProfile { inner: Arc::new(p) })
    }

    /// Compares a numpy matrix with the profile.
    #[pyo3(signature = (data, feature_names=None, alpha=0.05, correction="bh", tests=None, large_sample=100_000,
        min_effect=0.1, psi_bins=10, epsilon=1e-4, drift_share=0.5, hist_bins=20, num_threads=0))]
    #[allow(clippy::too_many_arguments)]
    fn compare_numpy(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        feature_names: Option<Vec<String>>,
        alpha: f64,
        correction: &str,
        tests: Option<Vec<(String, String)>>,
        large_sample: u64,
        min_effect: f64,
        psi_bins: usize,
        epsilon: f64,
        drift_share: f64,
        hist_bins: usize,
        num_threads: i64,
    ) -> PyResult<PyDriftReport> {
        let o = options(py, alpha, correction, tests, large_sample, min_effect, psi_bins, epsilon, drift_share, hist_bins)?;
        let inner = self.inner.clone();
        let r = with_numpy(py, data, feature_names, move |f| inner.compare(f, &o, num_threads))?;
        Ok(PyDriftReport { inner: Arc::new(r) })
    }

    /// Compares an Arrow table or record batch with the profile.
    #[pyo3(signature = (data, alpha=0.05, correction="bh", tests=None, large_sample=100_000, min_effect=0.1,
        psi_bins=10, epsilon=1e-4, drift_share=0.5, hist_bins=20, num_threads=0))]
    #[allow(clippy::too_many_arguments)]
    fn compare_arrow(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        alpha: f64,
        correction: &str,
        tests: Option<Vec<(String, String)>>,
        large_sample: u64,
        min_effect: f64,
        psi_bins: usize,
        epsilon: f64,
        drift_share: f64,
        hist_bins: usize,
        num_threads: i64,
    ) -> PyResult<PyDriftReport> {
        let o = options(py, alpha, correction, tests, large_sample, min_effect, psi_bins, epsilon, drift_share, hist_bins)?;
        let inner = self.inner.clone();
        let r = with_arrow(py, data, move |f| inner.compare(f, &o, num_threads))?;
        Ok(PyDriftReport { inner: Arc::new(r) })
    }

    /// A profile combining this one with another fitted on other rows of the same columns.
    fn merge(&self, py: Python<'_>, other: PyRef<'_, PyReferenceProfile>) -> PyResult<Self> {
        let (a, b) = (self.inner.clone(), other.inner.clone());
        let m = detach(py, move || a.merge(&b))?;
        Ok(PyReferenceProfile { inner: Arc::new(m) })
    }

    /// Column names.
    fn names(&self) -> Vec<String> {
        self.inner.names.clone()
    }

    /// Per column: name, kind, rows, missing, infinite, stored values and the sketch's rank error bound.
    fn describe_json(&self, py: Python<'_>) -> PyResult<String> {
        use crate::drift::profile::{ColumnProfile, Values};
        #[derive(serde::Serialize)]
        struct Col<'a> {
            name: &'a str,
            kind: &'a str,
            n_rows: u64,
            n_null: u64,
            n_inf: u64,
            stored: usize,
            exact: bool,
            rank_error_bound: f64,
            categories: usize,
        }
        let cols: Vec<Col<'_>> = self
            .inner
            .names
            .iter()
            .zip(&self.inner.columns)
            .map(|(name, c)| match c {
                ColumnProfile::Numeric(p) => {
                    let (stored, exact, bound) = match &p.values {
                        Values::Exact(v) => (v.len(), true, 0.0),
                        Values::Sketch(s) => (s.levels.iter().map(|l| l.len()).sum(), false, s.rank_error_bound()),
                    };
                    Col { name, kind: "numeric", n_rows: p.n_rows, n_null: p.n_null, n_inf: p.n_inf, stored, exact, rank_error_bound: bound, categories: 0 }
                }
                ColumnProfile::Categorical(p) => Col {
                    name,
                    kind: "categorical",
                    n_rows: p.n_rows,
                    n_null: p.n_null,
                    n_inf: 0,
                    stored: p.keys.len(),
                    exact: true,
                    rank_error_bound: 0.0,
                    categories: p.keys.len(),
                },
            })
            .collect();
        artifact::to_json(&cols).map_err(|e| to_py(py, e))
    }

    /// The profile as artifact bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let inner = self.inner.clone();
        let bytes = detach(py, move || artifact::encode(KIND, inner.as_ref()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// A profile from artifact bytes (verified).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: Vec<u8>) -> PyResult<Self> {
        let p = detach(py, move || artifact::decode::<ReferenceProfile>(&data, KIND))?;
        Ok(PyReferenceProfile { inner: Arc::new(p) })
    }

    /// Writes the profile to `path` (atomically).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let inner = self.inner.clone();
        detach(py, move || artifact::save(&path, KIND, inner.as_ref()))
    }

    /// Reads and verifies a profile written by `save`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let p = detach(py, move || artifact::load::<ReferenceProfile>(&path, KIND))?;
        Ok(PyReferenceProfile { inner: Arc::new(p) })
    }
}

#[pymethods]
impl PyDriftReport {
    /// The report as JSON (NaN written as null).
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        let inner = self.inner.clone();
        detach(py, move || serde_json::to_string(inner.as_ref()).map_err(|e| Error::Internal(e.to_string())))
    }

    /// The report as a self-contained HTML page.
    fn to_html(&self, py: Python<'_>) -> PyResult<String> {
        let inner = self.inner.clone();
        detach(py, move || Ok(crate::drift::html::render(&inner)))
    }
}
