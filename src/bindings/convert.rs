//! Input conversions shared by the binding files.

use numpy::PyReadonlyArray2;
use pyo3::prelude::*;
use pyo3_arrow::{PyRecordBatch, PyTable};

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

/// Owns the values behind a float64 array built by [`matrix_from_vec`]; when numpy frees the array,
/// the buffer goes back to the pool of large outputs ([`crate::mem::recycle`]) for the next transform.
#[pyclass(module = "ferrox._ferrox")]
pub struct OutputBuffer {
    data: Vec<f64>,
}

impl Drop for OutputBuffer {
    fn drop(&mut self) {
        crate::mem::recycle(std::mem::take(&mut self.data));
    }
}

/// A (rows, cols) C-ordered float64 numpy array over `data`, without a copy.
pub fn matrix_from_vec<'py>(
    py: Python<'py>,
    rows: usize,
    cols: usize,
    data: Vec<f64>,
) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
    if rows.checked_mul(cols) != Some(data.len()) {
        return Err(to_py(py, Error::Internal(format!("{} values for a {rows} x {cols} matrix", data.len()))));
    }
    let owner = Bound::new(py, OutputBuffer { data })?;
    let held = owner.borrow();
    let view = ndarray::ArrayView2::from_shape((rows, cols), &held.data[..])
        .map_err(|e| to_py(py, Error::Internal(e.to_string())))?;
    // SAFETY: `owner` becomes the array's base object and keeps `data` alive and unmoved (nothing
    // resizes it) until numpy drops the array.
    Ok(unsafe { numpy::PyArray2::borrow_from_array(&view, owner.clone().into_any()) })
}

/// The record batches and schema of an Arrow object (anything with `__arrow_c_stream__`, or one
/// record batch with `__arrow_c_array__`), or None for any other object.
pub fn arrow_of(data: &Bound<'_, PyAny>) -> PyResult<Option<(Vec<arrow_array::RecordBatch>, arrow_schema::SchemaRef)>> {
    if data.hasattr("__arrow_c_stream__")? {
        return Ok(Some(data.extract::<PyTable>()?.into_inner()));
    }
    if data.hasattr("__arrow_c_array__")? {
        let b = data.extract::<PyRecordBatch>()?.into_inner();
        let s = b.schema();
        return Ok(Some((vec![b], s)));
    }
    Ok(None)
}

/// [`arrow_of`], with a `DataError` saying `message` when `data` is no Arrow object.
pub fn arrow_or(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    message: &str,
) -> PyResult<(Vec<arrow_array::RecordBatch>, arrow_schema::SchemaRef)> {
    arrow_of(data)?.ok_or_else(|| to_py(py, Error::data(message)))
}
