//! `ferrox._ferrox.ReferenceProfile` and `DriftReport`: the profile and report of `crate::drift::profile`
//! behind `ferrox.drift.ReferenceProfile`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use numpy::PyReadonlyArray2;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::{detach, to_py};
use crate::artifact;
use crate::data::frame::DenseMatrix;
use crate::data::Frame;
use crate::drift::multitest::Correction;
use crate::drift::monitor::{DriftMonitor, MonitorConfig, TimeWindows, WindowFinding};
use crate::drift::profile::{default_categorical, CompareOptions, DriftReport, ProfileConfig, ReferenceProfile, TestKind};
use crate::error::Error;

const KIND: &str = "reference_profile";
const MONITOR_KIND: &str = "drift_monitor";

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
    super::convert::arrow_or(py, data, "data must implement __arrow_c_stream__ or __arrow_c_array__")
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
    #[pyo3(signature = (data, feature_names=None, alpha=0.05, correction="bh", tests=None, large_sample=0,
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
    #[pyo3(signature = (data, alpha=0.05, correction="bh", tests=None, large_sample=0, min_effect=0.1,
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

/// A streaming drift monitor (its state changes with every batch).
#[pyclass(frozen, name = "DriftMonitor", module = "ferrox._ferrox")]
pub struct PyDriftMonitor {
    inner: Mutex<DriftMonitor>,
}

type Finding = (u64, u64, u64, f64, f64, bool, PyDriftReport);

fn findings(v: Vec<WindowFinding>) -> Vec<Finding> {
    v.into_iter()
        .map(|f| (f.window, f.start_row, f.end_row, f.start_time, f.end_time, f.alert, PyDriftReport { inner: Arc::new(f.report) }))
        .collect()
}

impl PyDriftMonitor {
    fn state(&self, py: Python<'_>) -> PyResult<std::sync::MutexGuard<'_, DriftMonitor>> {
        self.inner.lock().map_err(|_| to_py(py, Error::Internal("the monitor's lock was poisoned by an earlier failure".into())))
    }
}

#[pymethods]
impl PyDriftMonitor {
    /// A monitor of batches against `profile`.
    #[new]
    #[pyo3(signature = (profile, window, step, alert_after=3, cooldown=0, alpha=0.05, correction="bh", tests=None,
        large_sample=0, min_effect=0.1, psi_bins=10, epsilon=1e-4, drift_share=0.5, hist_bins=20,
        time_column=None, time_width=0.0, time_step=0.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        profile: PyRef<'_, PyReferenceProfile>,
        window: usize,
        step: usize,
        alert_after: usize,
        cooldown: usize,
        alpha: f64,
        correction: &str,
        tests: Option<Vec<(String, String)>>,
        large_sample: u64,
        min_effect: f64,
        psi_bins: usize,
        epsilon: f64,
        drift_share: f64,
        hist_bins: usize,
        time_column: Option<String>,
        time_width: f64,
        time_step: f64,
    ) -> PyResult<Self> {
        let options = options(py, alpha, correction, tests, large_sample, min_effect, psi_bins, epsilon, drift_share, hist_bins)?;
        let time = time_column.map(|column| TimeWindows { column, width: time_width, step: time_step });
        let cfg = MonitorConfig { window, step, alert_after, cooldown, options, time };
        let m = DriftMonitor::new(profile.inner.as_ref().clone(), cfg).map_err(|e| to_py(py, e))?;
        Ok(PyDriftMonitor { inner: Mutex::new(m) })
    }

    /// Appends a numpy batch; returns (window, start_row, end_row, alert, report) per completed window.
    #[pyo3(signature = (data, feature_names=None, num_threads=0))]
    fn update_numpy(&self, py: Python<'_>, data: &Bound<'_, PyAny>, feature_names: Option<Vec<String>>, num_threads: i64) -> PyResult<Vec<Finding>> {
        let mut m = self.state(py)?;
        let m = &mut *m;
        let out = with_numpy_mut(py, data, feature_names, |f| m.update(f, num_threads))?;
        Ok(findings(out))
    }

    /// Appends an Arrow batch; returns (window, start_row, end_row, alert, report) per completed window.
    #[pyo3(signature = (data, num_threads=0))]
    fn update_arrow(&self, py: Python<'_>, data: &Bound<'_, PyAny>, num_threads: i64) -> PyResult<Vec<Finding>> {
        let (batches, schema) = arrow_input(py, data)?;
        let mut m = self.state(py)?;
        let m = &mut *m;
        let out = detach(py, move || {
            let frame = Frame::from_arrow(&batches, &schema, &default_categorical(&schema))?;
            m.update(&frame, num_threads)
        })?;
        Ok(findings(out))
    }

    /// Counters: rows_seen, windows_seen, consecutive, cooldown_left, alerts, window, step.
    fn counters(&self, py: Python<'_>) -> PyResult<Vec<(String, u64)>> {
        let m = self.state(py)?;
        Ok(vec![
            ("rows_seen".into(), m.rows_seen),
            ("windows_seen".into(), m.windows_seen),
            ("consecutive_drifted".into(), m.consecutive as u64),
            ("cooldown_left".into(), m.cooldown_left as u64),
            ("alerts".into(), m.alerts),
            ("window".into(), m.config().window as u64),
            ("step".into(), m.config().step as u64),
        ])
    }

    /// The time column of time windows, or None.
    fn time_column(&self, py: Python<'_>) -> PyResult<Option<String>> {
        Ok(self.state(py)?.config().time.as_ref().map(|t| t.column.clone()))
    }

    /// The whole state as artifact bytes (kind "drift_monitor").
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let m = self.state(py)?.clone();
        let bytes = detach(py, move || artifact::encode(MONITOR_KIND, &m))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// A monitor restored from `to_bytes` output.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: Vec<u8>) -> PyResult<Self> {
        let m = detach(py, move || artifact::decode::<DriftMonitor>(&data, MONITOR_KIND))?;
        Ok(PyDriftMonitor { inner: Mutex::new(m) })
    }

    /// Writes the state to `path` (atomically).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let m = self.state(py)?.clone();
        detach(py, move || artifact::save(&path, MONITOR_KIND, &m))
    }

    /// Reads a state written by `save`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let m = detach(py, move || artifact::load::<DriftMonitor>(&path, MONITOR_KIND))?;
        Ok(PyDriftMonitor { inner: Mutex::new(m) })
    }
}

/// [`with_numpy`] for work that mutates borrowed state.
fn with_numpy_mut<T: Send>(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    names: Option<Vec<String>>,
    f: impl for<'a> FnOnce(&Frame<'a>) -> crate::Result<T> + Send,
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

/// A borrowed float32/float64 numpy matrix.
enum Dense<'py> {
    F32(PyReadonlyArray2<'py, f32>),
    F64(PyReadonlyArray2<'py, f64>),
}

impl Dense<'_> {
    fn extract<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, what: &str) -> PyResult<Dense<'py>> {
        if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f64>>() {
            Ok(Dense::F64(a))
        } else if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f32>>() {
            Ok(Dense::F32(a))
        } else {
            Err(to_py(py, Error::data(format!("{what} must be a 2-D float32 or float64 numpy array"))))
        }
    }

    fn matrix(&self) -> DenseMatrix<'_> {
        match self {
            Dense::F32(a) => DenseMatrix::F32(a.as_array()),
            Dense::F64(a) => DenseMatrix::F64(a.as_array()),
        }
    }
}

/// The domain classifier on two numpy matrices (`arrow=False`) or two Arrow tables (`arrow=True`);
/// returns its report as JSON.
#[pyfunction]
#[pyo3(signature = (reference, current, arrow, feature_names=None, max_rows=50_000, test_size=0.3, num_boost_round=50,
    num_leaves=15, learning_rate=0.1, min_data_in_leaf=20, seed=0, threshold=0.55, top_features=5, num_threads=0))]
#[allow(clippy::too_many_arguments)]
pub fn domain_classifier(
    py: Python<'_>,
    reference: &Bound<'_, PyAny>,
    current: &Bound<'_, PyAny>,
    arrow: bool,
    feature_names: Option<Vec<String>>,
    max_rows: usize,
    test_size: f64,
    num_boost_round: usize,
    num_leaves: usize,
    learning_rate: f64,
    min_data_in_leaf: usize,
    seed: u64,
    threshold: f64,
    top_features: usize,
    num_threads: i64,
) -> PyResult<String> {
    use crate::drift::domain::{self, DomainOptions};
    let o = DomainOptions { max_rows, test_size, num_boost_round, num_leaves, learning_rate, min_data_in_leaf, seed, threshold, top_features };
    let report = if arrow {
        let (rb, rs) = arrow_input(py, reference)?;
        let (cb, cs) = arrow_input(py, current)?;
        detach(py, move || {
            let fr = Frame::from_arrow(&rb, &rs, &default_categorical(&rs))?;
            let fc = Frame::from_arrow(&cb, &cs, &default_categorical(&cs))?;
            domain::domain_classifier(&fr, &fc, &o, num_threads)
        })?
    } else {
        let (r, c) = (Dense::extract(py, reference, "reference")?, Dense::extract(py, current, "current")?);
        let (rm, cm) = (r.matrix(), c.matrix());
        detach(py, move || {
            let fr = Frame::from_dense(rm, feature_names.clone(), &[])?;
            let fc = Frame::from_dense(cm, feature_names, &[])?;
            domain::domain_classifier(&fr, &fc, &o, num_threads)
        })?
    };
    artifact::to_json(&report).map_err(|e| to_py(py, e))
}
