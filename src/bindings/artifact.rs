//! Artifact inspection.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::to_py;

/// The verified header of an artifact held in `data`: format_version, kind, body_len, sha256.
#[pyfunction]
pub fn artifact_header<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    let (h, _) = crate::artifact::verify(data).map_err(|e| to_py(py, e))?;
    let d = PyDict::new(py);
    d.set_item("format_version", h.format_version)?;
    d.set_item("kind", h.kind)?;
    d.set_item("body_len", h.body_len)?;
    d.set_item("sha256", h.sha256)?;
    Ok(d)
}

/// The thread count a call passing num_threads=0 would get now.
#[pyfunction]
pub fn default_num_threads() -> usize {
    crate::parallel::default_threads()
}
