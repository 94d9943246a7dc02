//! Input conversions shared by the binding files.

use numpy::PyReadonlyArray2;
use pyo3::prelude::*;

use super::errors::{detach, to_py};
use crate::data::frame::DenseMatrix;
use crate::error::Error;

/// Runs `f` on the 2-D float32/float64 numpy array `x` (no copy) with the GIL released.
pub fn with_dense<T: Send>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    f: impl for<'a> FnOnce(DenseMatrix<'a>) -> crate::Result<T> + Send,
) -> PyResult<T> {
    if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f64>>() {
        let v = a.as_array();
        detach(py, move || f(DenseMatrix::F64(v)))
    } else if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f32>>() {
        let v = a.as_array();
        detach(py, move || f(DenseMatrix::F32(v)))
    } else {
        Err(to_py(py, Error::data("X must be a 2-D float32 or float64 numpy array")))
    }
}
