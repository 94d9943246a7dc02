//! Feature-transform kernels for `ferrox.preprocessing`: per-column statistics and element-wise maps.

use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use super::convert::with_dense;
use super::errors::{detach, to_py};
use crate::data::frame::DenseMatrix;
use crate::error::Error;
use crate::transform::apply::{impute, Affine, QuantileMap};
use crate::transform::stats::{self, Moments};


fn matrix_out<'py>(py: Python<'py>, rows: usize, cols: usize, data: Vec<f64>) -> PyResult<Bound<'py, PyArray2<f64>>> {
    super::convert::matrix_from_vec(py, rows, cols, data)
}

type Vec3<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);

/// Folds the rows of X into running per-column (count, mean, var); NaN skipped.
#[pyfunction]
#[pyo3(signature = (x, count, mean, var, n_threads=0))]
pub fn moments_update<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    count: PyReadonlyArray1<'py, f64>,
    mean: PyReadonlyArray1<'py, f64>,
    var: PyReadonlyArray1<'py, f64>,
    n_threads: i64,
) -> PyResult<Vec3<'py>> {
    let mut m = Moments { count: count.as_array().to_vec(), mean: mean.as_array().to_vec(), var: var.as_array().to_vec() };
    let m = with_dense(py, x, move |d| {
        if m.count.len() != d.dim().1 || m.mean.len() != d.dim().1 || m.var.len() != d.dim().1 {
            return Err(Error::data(format!("X has {} features, but the running moments have {}", d.dim().1, m.count.len())));
        }
        m.update(&d, n_threads)?;
        Ok(m)
    })?;
    Ok((PyArray1::from_vec(py, m.count), PyArray1::from_vec(py, m.mean), PyArray1::from_vec(py, m.var)))
}

/// Per-column (min, max) over non-missing values.
#[pyfunction]
#[pyo3(signature = (x, n_threads=0))]
pub fn column_min_max<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    n_threads: i64,
) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>)> {
    let mm = with_dense(py, x, move |d| stats::min_max(&d, n_threads))?;
    let (lo, hi): (Vec<f64>, Vec<f64>) = mm.into_iter().unzip();
    Ok((PyArray1::from_vec(py, lo), PyArray1::from_vec(py, hi)))
}

/// Per-column percentiles (0..100) of non-missing values: a (len(q), n_features) array. `method` is
/// numpy's: "linear" or "averaged_inverted_cdf".
#[pyfunction]
#[pyo3(signature = (x, q, rows=None, n_threads=0, method="linear"))]
pub fn column_percentiles<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    q: PyReadonlyArray1<'py, f64>,
    rows: Option<PyReadonlyArray1<'py, i64>>,
    n_threads: i64,
    method: &str,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let method = match method {
        "linear" => stats::QuantileMethod::Linear,
        "averaged_inverted_cdf" => stats::QuantileMethod::AveragedInvertedCdf,
        other => {
            return Err(to_py(py, Error::param(format!(
                "quantile method must be 'linear' or 'averaged_inverted_cdf', got '{other}'"
            ))))
        }
    };
    let q = q.as_array().to_vec();
    if let Some(bad) = q.iter().find(|v| !(0.0..=100.0).contains(*v)) {
        return Err(to_py(py, Error::param(format!("percentiles must be in [0, 100], got {bad}"))));
    }
    let rows: Option<Vec<usize>> = rows.map(|r| r.as_array().iter().map(|&v| v.max(0) as usize).collect());
    let nq = q.len();
    let cols = with_dense(py, x, move |d| {
        if let Some(r) = &rows {
            if let Some(&bad) = r.iter().find(|&&v| v >= d.dim().0) {
                return Err(Error::data(format!("row index {bad} is out of range for {} rows", d.dim().0)));
            }
        }
        stats::percentiles_by(&d, &q, rows.as_deref(), method, n_threads)
    })?;
    let n_cols = cols.len();
    let mut out = vec![0.0; nq * n_cols];
    for (j, c) in cols.iter().enumerate() {
        for (k, v) in c.iter().enumerate() {
            out[k * n_cols + j] = *v;
        }
    }
    matrix_out(py, nq, n_cols, out)
}

/// Per-column most frequent non-missing value (smallest among ties; NaN when none).
#[pyfunction]
#[pyo3(signature = (x, n_threads=0))]
pub fn column_most_frequent<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, n_threads: i64) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let v = with_dense(py, x, move |d| stats::most_frequent(&d, n_threads))?;
    Ok(PyArray1::from_vec(py, v))
}

/// Per-column count of missing values (NaN).
#[pyfunction]
#[pyo3(signature = (x, n_threads=0))]
pub fn column_missing_counts(py: Python<'_>, x: &Bound<'_, PyAny>, n_threads: i64) -> PyResult<Vec<usize>> {
    with_dense(py, x, move |d| stats::missing_counts(&d, n_threads))
}

/// ((X - sub) / div) * mul + add per column, clipped to `clip` when given; NaN passes through.
#[pyfunction]
#[pyo3(signature = (x, sub, div, mul, add, clip=None, n_threads=0))]
#[allow(clippy::too_many_arguments)]
pub fn affine_transform<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    sub: PyReadonlyArray1<'py, f64>,
    div: PyReadonlyArray1<'py, f64>,
    mul: PyReadonlyArray1<'py, f64>,
    add: PyReadonlyArray1<'py, f64>,
    clip: Option<(f64, f64)>,
    n_threads: i64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let a = Affine {
        sub: sub.as_array().to_vec(),
        div: div.as_array().to_vec(),
        mul: mul.as_array().to_vec(),
        add: add.as_array().to_vec(),
        clip,
    };
    let (out, r, c) = with_dense(py, x, move |d| Ok((a.apply(&d, n_threads)?, d.dim().0, d.dim().1)))?;
    matrix_out(py, r, c, out)
}

/// Bin index of each value against per-column inner edges (searchsorted, side="right").
#[pyfunction]
#[pyo3(signature = (x, inner_edges, n_threads=0))]
pub fn digitize<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    inner_edges: Vec<Vec<f64>>,
    n_threads: i64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let (out, r, c) = with_dense(py, x, move |d| {
        Ok((crate::transform::apply::digitize(&d, &inner_edges, n_threads)?, d.dim().0, d.dim().1))
    })?;
    matrix_out(py, r, c, out)
}

/// X with missing values of column j replaced by fill[j].
#[pyfunction]
#[pyo3(signature = (x, fill, n_threads=0))]
pub fn impute_transform<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    fill: PyReadonlyArray1<'py, f64>,
    n_threads: i64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let fill = fill.as_array().to_vec();
    let (out, r, c) = with_dense(py, x, move |d| Ok((impute(&d, &fill, n_threads)?, d.dim().0, d.dim().1)))?;
    matrix_out(py, r, c, out)
}

/// Maps X through per-column quantiles (an (n_quantiles, n_features) array) to uniform or normal.
#[pyfunction]
#[pyo3(signature = (x, quantiles, references, normal, n_threads=0))]
pub fn quantile_transform<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    quantiles: PyReadonlyArray2<'py, f64>,
    references: PyReadonlyArray1<'py, f64>,
    normal: bool,
    n_threads: i64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let q = quantiles.as_array();
    let refs = references.as_array().to_vec();
    if q.nrows() != refs.len() || refs.is_empty() {
        return Err(to_py(py, Error::data("quantiles must have one row per reference")));
    }
    let map = QuantileMap { quantiles: (0..q.ncols()).map(|j| q.column(j).to_vec()).collect(), references: refs, normal };
    let (out, r, c) = with_dense(py, x, move |d| Ok((map.apply(&d, n_threads)?, d.dim().0, d.dim().1)))?;
    matrix_out(py, r, c, out)
}

// ---------------------------------------------------------------------------------------------
// Categorical encoders.

use arrow_schema::DataType;
use pyo3::types::{PyBytes, PyList};

use crate::artifact;
use crate::data::frame::{FeatureRef, Frame};
use crate::transform::encode::{self, CatValues, ColumnCategories, OneHotOptions};

const ENCODER_KIND: &str = "category_table";

/// Reads `data` (2-D float numpy array, or an Arrow table/batch: non-float columns are categories)
/// into a frame and runs `f` on it with the GIL released.
fn with_frame<T: Send>(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    f: impl for<'a, 'b> FnOnce(&'b Frame<'a>) -> crate::Result<T> + Send,
) -> PyResult<T> {
    if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f64>>() {
        let v = a.as_array();
        return detach(py, move || f(&Frame::from_dense(DenseMatrix::F64(v), None, &[])?));
    }
    if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f32>>() {
        let v = a.as_array();
        return detach(py, move || f(&Frame::from_dense(DenseMatrix::F32(v), None, &[])?));
    }
    let (batches, schema) = super::convert::arrow_or(py, data, "data must be a 2-D float numpy array or an Arrow table")?;
    detach(py, move || {
        let cats: Vec<FeatureRef> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, fld)| !matches!(fld.data_type(), DataType::Float32 | DataType::Float64))
            .map(|(j, _)| FeatureRef::Index(j))
            .collect();
        f(&Frame::from_arrow(&batches, &schema, &cats)?)
    })
}

/// The fitted categories of each column of a categorical encoder.
#[pyclass(frozen, name = "CategoryTable", module = "ferrox._ferrox")]
pub struct PyCategoryTable {
    pub(crate) inner: Vec<ColumnCategories>,
}

fn onehot_options(min_frequency: Option<f64>, max_categories: Option<usize>, drop: Option<String>, infrequent_if_exist: bool) -> OneHotOptions {
    OneHotOptions { min_frequency, max_categories, drop, infrequent_if_exist }
}

#[pymethods]
impl PyCategoryTable {
    /// Fits the sorted categories of every column (numbers or strings; the missing value last).
    #[staticmethod]
    #[pyo3(signature = (data, n_threads=0))]
    fn fit(py: Python<'_>, data: &Bound<'_, PyAny>, n_threads: i64) -> PyResult<Self> {
        let inner = with_frame(py, data, move |f| encode::fit_categories(f, n_threads))?;
        Ok(PyCategoryTable { inner })
    }

    /// Fits the categories of `data` and returns them with the ordinal codes of the same rows, reading
    /// `data` once (`fit_transform`).
    #[staticmethod]
    #[pyo3(signature = (data, names, missing_value=f64::NAN, n_threads=0))]
    fn fit_ordinal<'py>(
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        names: Vec<String>,
        missing_value: f64,
        n_threads: i64,
    ) -> PyResult<(Self, Bound<'py, PyArray2<f64>>)> {
        let (cats, out, n) = with_frame(py, data, move |f| {
            let (cats, (codes, unknown)) = encode::fit_lookup(f, n_threads)?;
            let out = encode::ordinal(&codes, &unknown, &cats, &names, None, missing_value)?;
            Ok((cats, out, f.n_rows))
        })?;
        let m = cats.len();
        Ok((PyCategoryTable { inner: cats }, matrix_out(py, n, m, out)?))
    }

    /// Fits the categories of `data` and returns them with the one-hot CSR parts (indptr, indices,
    /// n_columns) of the same rows, reading `data` once (`fit_transform`).
    #[staticmethod]
    #[pyo3(signature = (data, min_frequency=None, max_categories=None, drop=None, infrequent_if_exist=false, n_threads=0))]
    #[allow(clippy::type_complexity)]
    fn fit_onehot<'py>(
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        min_frequency: Option<f64>,
        max_categories: Option<usize>,
        drop: Option<String>,
        infrequent_if_exist: bool,
        n_threads: i64,
    ) -> PyResult<(Self, Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>, usize)> {
        let opt = onehot_options(min_frequency, max_categories, drop, infrequent_if_exist);
        let (cats, indptr, indices, width) = with_frame(py, data, move |f| {
            let (cats, (codes, _)) = encode::fit_lookup(f, n_threads)?;
            let layout = encode::onehot_layout(&cats, &opt)?;
            let (indptr, indices) = encode::onehot_csr(&codes, &layout);
            let width = layout.iter().map(|l| l.width).sum::<usize>();
            Ok((cats, indptr, indices, width))
        })?;
        Ok((PyCategoryTable { inner: cats }, PyArray1::from_vec(py, indptr), PyArray1::from_vec(py, indices), width))
    }

    /// Number of columns.
    fn n_features(&self) -> usize {
        self.inner.len()
    }

    /// Column j's categories: (float64 array or list of str, whether the missing value is one, whether
    /// the numbers came from an integer column).
    fn categories<'py>(&self, py: Python<'py>, j: usize) -> PyResult<(Bound<'py, PyAny>, bool, bool)> {
        let c = self.inner.get(j).ok_or_else(|| to_py(py, Error::param(format!("column {j} out of range"))))?;
        let v = match &c.values {
            CatValues::Num(v) => PyArray1::from_slice(py, v).into_any(),
            CatValues::Str(v) => PyList::new(py, v)?.into_any(),
        };
        Ok((v, c.has_missing, c.integer))
    }

    /// Column j's row count per category (the missing category last).
    fn counts(&self, py: Python<'_>, j: usize) -> PyResult<Vec<u64>> {
        let c = self.inner.get(j).ok_or_else(|| to_py(py, Error::param(format!("column {j} out of range"))))?;
        Ok(c.counts.clone())
    }

    /// Ordinal codes (rows, columns): unknown values become `unknown_value` (None = DataError naming the
    /// column and value); the fitted missing category becomes `missing_value`.
    #[pyo3(signature = (data, names, unknown_value=None, missing_value=f64::NAN, n_threads=0))]
    fn ordinal<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        names: Vec<String>,
        unknown_value: Option<f64>,
        missing_value: f64,
        n_threads: i64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let cats = &self.inner;
        let (out, n) = with_frame(py, data, move |f| {
            let (codes, unknown) = encode::lookup(f, cats, n_threads)?;
            Ok((encode::ordinal(&codes, &unknown, cats, &names, unknown_value, missing_value)?, f.n_rows))
        })?;
        matrix_out(py, n, self.inner.len(), out)
    }

    /// The one-hot layout per column: dicts with slot, width, unknown_slot, infrequent, dropped.
    #[pyo3(signature = (min_frequency=None, max_categories=None, drop=None, infrequent_if_exist=false))]
    fn onehot_layout<'py>(
        &self,
        py: Python<'py>,
        min_frequency: Option<f64>,
        max_categories: Option<usize>,
        drop: Option<String>,
        infrequent_if_exist: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let opt = onehot_options(min_frequency, max_categories, drop, infrequent_if_exist);
        let layout = encode::onehot_layout(&self.inner, &opt).map_err(|e| to_py(py, e))?;
        let out = PyList::empty(py);
        for l in layout {
            let d = pyo3::types::PyDict::new(py);
            d.set_item("slot", l.slot)?;
            d.set_item("width", l.width)?;
            d.set_item("unknown_slot", l.unknown_slot)?;
            d.set_item("infrequent", l.infrequent)?;
            d.set_item("dropped", l.dropped)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// One-hot rows as CSR parts (indptr, indices, n_columns); unknown values raise when `error`.
    #[pyo3(signature = (data, names, error, min_frequency=None, max_categories=None, drop=None,
        infrequent_if_exist=false, n_threads=0))]
    #[allow(clippy::too_many_arguments)]
    fn onehot<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        names: Vec<String>,
        error: bool,
        min_frequency: Option<f64>,
        max_categories: Option<usize>,
        drop: Option<String>,
        infrequent_if_exist: bool,
        n_threads: i64,
    ) -> PyResult<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>, usize)> {
        let cats = &self.inner;
        let opt = onehot_options(min_frequency, max_categories, drop, infrequent_if_exist);
        let (indptr, indices, width) = with_frame(py, data, move |f| {
            let layout = encode::onehot_layout(cats, &opt)?;
            let (codes, unknown) = encode::lookup(f, cats, n_threads)?;
            if error {
                for (j, u) in unknown.iter().enumerate() {
                    if let Some((row, v)) = u {
                        if layout[j].unknown_slot < 0 {
                            return Err(encode::unknown_error(&names, j, *row, v));
                        }
                    }
                }
            }
            let (indptr, indices) = encode::onehot_csr(&codes, &layout);
            Ok((indptr, indices, layout.iter().map(|l| l.width).sum::<usize>()))
        })?;
        Ok((PyArray1::from_vec(py, indptr), PyArray1::from_vec(py, indices), width))
    }

    /// Target encodings fitted on all rows: (list of per-(feature, target column) arrays, target means).
    /// `targets` is (k, rows); smooth None = "auto".
    #[pyo3(signature = (data, targets, smooth=None, n_threads=0))]
    fn target_fit<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        targets: PyReadonlyArray2<'py, f64>,
        smooth: Option<f64>,
        n_threads: i64,
    ) -> PyResult<(Vec<Bound<'py, PyArray1<f64>>>, Bound<'py, PyArray1<f64>>)> {
        let cats = &self.inner;
        let t = targets_of(&targets);
        let (enc, means) = with_frame(py, data, move |f| {
            let (codes, _) = encode::lookup(f, cats, n_threads)?;
            let n_cats: Vec<usize> = cats.iter().map(|c| c.n_categories()).collect();
            target::fit(&codes, &n_cats, &t, smooth_of(smooth), n_threads)
        })?;
        Ok((enc.into_iter().map(|e| PyArray1::from_vec(py, e)).collect(), PyArray1::from_vec(py, means)))
    }

    /// Cross-fitted target encodings of the training rows: (rows, features * k).
    #[pyo3(signature = (data, targets, folds, n_folds, smooth=None, n_threads=0))]
    #[allow(clippy::too_many_arguments)]
    fn target_cross_fit<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        targets: PyReadonlyArray2<'py, f64>,
        folds: Vec<u32>,
        n_folds: u32,
        smooth: Option<f64>,
        n_threads: i64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let cats = &self.inner;
        let t = targets_of(&targets);
        let k = t.len();
        let (out, n) = with_frame(py, data, move |f| {
            let (codes, _) = encode::lookup(f, cats, n_threads)?;
            let n_cats: Vec<usize> = cats.iter().map(|c| c.n_categories()).collect();
            Ok((target::cross_fit(&codes, &n_cats, &t, &folds, n_folds, smooth_of(smooth), n_threads)?, f.n_rows))
        })?;
        matrix_out(py, n, self.inner.len() * k, out)
    }

    /// Applies fitted target encodings (unknown categories get the target mean): (rows, features * k).
    #[pyo3(signature = (data, encodings, means, n_threads=0))]
    fn target_apply<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        encodings: Vec<Vec<f64>>,
        means: Vec<f64>,
        n_threads: i64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let cats = &self.inner;
        let k = means.len();
        if encodings.len() != cats.len() * k {
            return Err(to_py(py, Error::data("encodings do not match the category table")));
        }
        let (out, n) = with_frame(py, data, move |f| {
            let (codes, _) = encode::lookup(f, cats, n_threads)?;
            Ok((target::apply(&codes, &encodings, &means), f.n_rows))
        })?;
        matrix_out(py, n, self.inner.len() * k, out)
    }

    /// The table as artifact bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = artifact::encode(ENCODER_KIND, &self.inner).map_err(|e| to_py(py, e))?;
        Ok(PyBytes::new(py, &b))
    }

    /// A table from artifact bytes (verified).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: Vec<u8>) -> PyResult<Self> {
        let inner = detach(py, move || artifact::decode::<Vec<ColumnCategories>>(&data, ENCODER_KIND))?;
        Ok(PyCategoryTable { inner })
    }
}

// ---------------------------------------------------------------------------------------------
// Target encoding over a category table.

use crate::transform::target::{self, Smooth};

fn smooth_of(smooth: Option<f64>) -> Smooth {
    smooth.map_or(Smooth::Auto, Smooth::Fixed)
}

fn targets_of(t: &PyReadonlyArray2<'_, f64>) -> Vec<Vec<f64>> {
    let a = t.as_array();
    (0..a.nrows()).map(|c| a.row(c).to_vec()).collect()
}


/// Frees the large output buffers kept for reuse; returns the bytes they held.
#[pyfunction]
pub fn release_memory() -> usize {
    let (_, bytes) = crate::mem::recycled();
    crate::mem::release_recycled();
    bytes
}
