//! Core errors to Python exceptions (classes defined in `ferrox.exceptions`), and the panic guard that
//! keeps a Rust panic from ever reaching Python as anything but a `FerroxError`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::error::Error;

static FERROX_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATA_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static PARAMETER_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INTEGRITY_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static VERSION_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DEVICE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn raise(py: Python<'_>, cell: &'static PyOnceLock<Py<PyType>>, name: &str, msg: String) -> PyErr {
    match cell.import(py, "ferrox.exceptions", name) {
        Ok(ty) => PyErr::from_type(ty.clone(), msg),
        Err(_) => PyValueError::new_err(msg),
    }
}

/// The Python exception for a core error.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Data(_) => raise(py, &DATA_ERROR, "DataError", msg),
        Error::Param(_) => raise(py, &PARAMETER_ERROR, "ParameterError", msg),
        Error::Integrity(_) => raise(py, &INTEGRITY_ERROR, "ModelIntegrityError", msg),
        Error::Version { .. } => raise(py, &VERSION_ERROR, "ModelVersionError", msg),
        Error::Io { context, source } => {
            PyErr::from(std::io::Error::new(source.kind(), format!("{context}: {source}")))
        }
        Error::Device(_) => raise(py, &DEVICE_ERROR, "DeviceError", msg),
        Error::Internal(_) => raise(py, &FERROX_ERROR, "FerroxError", msg),
    }
}

/// Runs core work with the GIL released; a panic becomes an internal error instead of crossing over.
pub fn detach<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> crate::Result<T> + Send,
{
    let out = py.detach(move || match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::Internal(what))
        }
    });
    out.map_err(|e| to_py(py, e))
}
