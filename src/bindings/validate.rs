//! `ferrox._ferrox` validation functions behind `ferrox.validation`: schema inference and checks, and
//! the training-data checks of `crate::validate`. Results travel as JSON.

use numpy::PyReadonlyArray2;
use pyo3::prelude::*;

use super::errors::{detach, to_py};
use crate::data::frame::DenseMatrix;
use crate::data::Frame;
use crate::drift::profile::default_categorical;
use crate::error::Error;
use crate::validate::{arrow_dtypes, check_training_data, Schema, TrainingChecks};

fn json<T: serde::Serialize>(v: &T) -> crate::Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))
}

/// Runs `f` on a frame read from numpy or Arrow input, with the column storage types.
fn with_frame(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    names: Option<Vec<String>>,
    f: impl for<'a> Fn(&Frame<'a>, &[String]) -> crate::Result<String> + Send + Sync,
) -> PyResult<String> {
    if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f32>>() {
        let view = a.as_array();
        let dtypes = vec!["float32".to_string(); view.ncols()];
        return detach(py, move || f(&Frame::from_dense(DenseMatrix::F32(view), names, &[])?, &dtypes));
    }
    if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f64>>() {
        let view = a.as_array();
        let dtypes = vec!["float64".to_string(); view.ncols()];
        return detach(py, move || f(&Frame::from_dense(DenseMatrix::F64(view), names, &[])?, &dtypes));
    }
    let (batches, schema) =
        super::convert::arrow_or(py, data, "data must be a 2-D numpy array or implement __arrow_c_stream__")?;
    detach(py, move || {
        let frame = Frame::from_arrow(&batches, &schema, &default_categorical(&schema))?;
        f(&frame, &arrow_dtypes(&schema))
    })
}

/// The schema of a table, as JSON.
#[pyfunction]
#[pyo3(signature = (data, feature_names=None, num_threads=0))]
pub fn infer_schema(py: Python<'_>, data: &Bound<'_, PyAny>, feature_names: Option<Vec<String>>, num_threads: i64) -> PyResult<String> {
    with_frame(py, data, feature_names, move |f, d| json(&Schema::infer(f, d, num_threads)?))
}

/// The issues of a table against a schema (given as JSON), as JSON.
#[pyfunction]
#[pyo3(signature = (schema, data, feature_names=None, num_threads=0))]
pub fn validate_schema(
    py: Python<'_>,
    schema: &str,
    data: &Bound<'_, PyAny>,
    feature_names: Option<Vec<String>>,
    num_threads: i64,
) -> PyResult<String> {
    let schema: Schema = serde_json::from_str(schema)
        .map_err(|e| to_py(py, Error::data(format!("not a ferrox schema: {e}"))))?;
    with_frame(py, data, feature_names, move |f, d| json(&schema.validate(f, d, num_threads)?))
}

/// The training-data checks, as JSON.
#[pyfunction]
#[pyo3(signature = (data, feature_names=None, target=None, missing_limit=0.1, outlier_sigma=3.0,
    outlier_limit=0.01, min_class_share=0.05, max_classes=50, num_threads=0))]
#[allow(clippy::too_many_arguments)]
pub fn check_training(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    feature_names: Option<Vec<String>>,
    target: Option<String>,
    missing_limit: f64,
    outlier_sigma: f64,
    outlier_limit: f64,
    min_class_share: f64,
    max_classes: usize,
    num_threads: i64,
) -> PyResult<String> {
    let o = TrainingChecks { target, missing_limit, outlier_sigma, outlier_limit, min_class_share, max_classes };
    with_frame(py, data, feature_names, move |f, _| json(&check_training_data(f, &o, num_threads)?))
}
