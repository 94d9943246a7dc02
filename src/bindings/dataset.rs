//! `ferrox._ferrox.BinnedDataset`: the binned dataset behind `ferrox.Dataset`.

use std::path::PathBuf;
use std::sync::Arc;

use ndarray::{Array2, ShapeBuilder};
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::errors::{detach, to_py};
use crate::artifact;
use crate::data::frame::{DenseMatrix, FeatureRef};
use crate::data::{BinConfig, BinMapper, BinMatrix, CatKey, Dataset, Frame};
use crate::error::Error;

const KIND: &str = "dataset";

/// A binned dataset (immutable; shared cheaply).
#[pyclass(frozen, name = "BinnedDataset", module = "ferrox._ferrox")]
pub struct PyDataset {
    pub inner: Arc<Dataset>,
}

fn feature_refs(items: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<FeatureRef>> {
    let Some(items) = items else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for item in items.try_iter()? {
        let item = item?;
        if let Ok(s) = item.extract::<String>() {
            out.push(FeatureRef::Name(s));
        } else if let Ok(i) = item.extract::<i64>() {
            let i = usize::try_from(i).map_err(|_| {
                to_py(item.py(), Error::param(format!("categorical_features holds {i}; column indices are >= 0")))
            })?;
            out.push(FeatureRef::Index(i));
        } else {
            return Err(to_py(
                item.py(),
                Error::param(format!("categorical_features holds {item}; expected column names or indices")),
            ));
        }
    }
    Ok(out)
}

fn vector(v: Option<PyReadonlyArray1<'_, f64>>) -> Option<Vec<f64>> {
    v.map(|a| a.as_array().to_vec())
}

#[allow(clippy::too_many_arguments)]
fn config(
    py: Python<'_>,
    max_bin: i64,
    bin_construct_sample_cnt: i64,
    data_random_seed: i64,
    min_data_in_bin: i64,
    num_threads: i64,
) -> PyResult<BinConfig> {
    let non_neg = |name: &str, v: i64| {
        usize::try_from(v).map_err(|_| to_py(py, Error::param(format!("{name} must be >= 0, got {v}"))))
    };
    let max_bin = usize::try_from(max_bin)
        .map_err(|_| to_py(py, Error::param(format!("max_bin must be in 2..=65535, got {max_bin}"))))?;
    Ok(BinConfig {
        max_bin,
        bin_construct_sample_cnt: non_neg("bin_construct_sample_cnt", bin_construct_sample_cnt)?,
        data_random_seed: data_random_seed as u64,
        min_data_in_bin: non_neg("min_data_in_bin", min_data_in_bin)?,
        num_threads,
    })
}

fn key_to_py<'py>(py: Python<'py>, k: &CatKey) -> PyResult<Bound<'py, PyAny>> {
    Ok(match k {
        CatKey::Int(v) => v.into_pyobject(py)?.into_any(),
        CatKey::Str(s) => s.into_pyobject(py)?.into_any(),
    })
}

#[pymethods]
impl PyDataset {
    /// Bins a 2-D float32/float64 numpy array (either memory order; the floats are not copied).
    #[staticmethod]
    #[pyo3(signature = (data, label=None, weight=None, feature_names=None, categorical_features=None,
        max_bin=255, bin_construct_sample_cnt=200000, data_random_seed=1, min_data_in_bin=3,
        num_threads=0, reference=None, group=None, init_score=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_numpy(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        label: Option<PyReadonlyArray1<'_, f64>>,
        weight: Option<PyReadonlyArray1<'_, f64>>,
        feature_names: Option<Vec<String>>,
        categorical_features: Option<&Bound<'_, PyAny>>,
        max_bin: i64,
        bin_construct_sample_cnt: i64,
        data_random_seed: i64,
        min_data_in_bin: i64,
        num_threads: i64,
        reference: Option<PyRef<'_, PyDataset>>,
        group: Option<Vec<i64>>,
        init_score: Option<PyReadonlyArray1<'_, f64>>,
    ) -> PyResult<Self> {
        let init_score = vector(init_score);
        let cfg = config(py, max_bin, bin_construct_sample_cnt, data_random_seed, min_data_in_bin, num_threads)?;
        let cats = feature_refs(categorical_features)?;
        let (label, weight) = (vector(label), vector(weight));
        let reference = reference.map(|r| r.inner.clone());
        let build = |m: DenseMatrix<'_>| {
            let frame = Frame::from_dense(m, feature_names, &cats)?;
            Dataset::construct(&frame, label, weight, &cfg, reference.as_deref())?
                .with_group(group)?
                .with_init_score(init_score)
        };
        let ds = if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f32>>() {
            let view = a.as_array();
            detach(py, move || build(DenseMatrix::F32(view)))?
        } else if let Ok(a) = data.extract::<PyReadonlyArray2<'_, f64>>() {
            let view = a.as_array();
            detach(py, move || build(DenseMatrix::F64(view)))?
        } else {
            return Err(to_py(py, Error::data("data must be a 2-D float32 or float64 numpy array")));
        };
        Ok(PyDataset { inner: Arc::new(ds) })
    }

    /// Bins an Arrow table or record batch (anything with `__arrow_c_stream__` or `__arrow_c_array__`).
    #[staticmethod]
    #[pyo3(signature = (data, label=None, weight=None, categorical_features=None, max_bin=255,
        bin_construct_sample_cnt=200000, data_random_seed=1, min_data_in_bin=3, num_threads=0,
        reference=None, group=None, init_score=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_arrow(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        label: Option<PyReadonlyArray1<'_, f64>>,
        weight: Option<PyReadonlyArray1<'_, f64>>,
        categorical_features: Option<&Bound<'_, PyAny>>,
        max_bin: i64,
        bin_construct_sample_cnt: i64,
        data_random_seed: i64,
        min_data_in_bin: i64,
        num_threads: i64,
        reference: Option<PyRef<'_, PyDataset>>,
        group: Option<Vec<i64>>,
        init_score: Option<PyReadonlyArray1<'_, f64>>,
    ) -> PyResult<Self> {
        let init_score = vector(init_score);
        let cfg = config(py, max_bin, bin_construct_sample_cnt, data_random_seed, min_data_in_bin, num_threads)?;
        let cats = feature_refs(categorical_features)?;
        let (batches, schema) = super::convert::arrow_or(py, data, "data must implement __arrow_c_stream__ or __arrow_c_array__")?;
        let (label, weight) = (vector(label), vector(weight));
        let reference = reference.map(|r| r.inner.clone());
        let ds = detach(py, move || {
            let cats = match &reference {
                Some(r) => r.categorical_with(&cats, schema.fields().len()),
                None => cats,
            };
            let frame = Frame::from_arrow(&batches, &schema, &cats)?;
            Dataset::construct(&frame, label, weight, &cfg, reference.as_deref())?
                .with_group(group)?
                .with_init_score(init_score)
        })?;
        Ok(PyDataset { inner: Arc::new(ds) })
    }

    /// Number of rows.
    fn num_data(&self) -> usize {
        self.inner.num_data()
    }

    /// Number of features.
    fn num_feature(&self) -> usize {
        self.inner.num_features()
    }

    /// Feature names, in column order.
    fn feature_name(&self) -> Vec<String> {
        self.inner.feature_names.clone()
    }

    /// Per feature, whether it is categorical.
    fn categorical_mask(&self) -> Vec<bool> {
        self.inner.mappers.iter().map(|m| m.is_categorical()).collect()
    }

    /// Number of bins of each feature, the missing bin included.
    fn num_bins(&self) -> Vec<usize> {
        self.inner.mappers.iter().map(|m| m.num_bins()).collect()
    }

    /// Bin storage width in bits (8 or 16).
    fn bin_bits(&self) -> u32 {
        match self.inner.bins {
            BinMatrix::U8(_) => 8,
            BinMatrix::U16(_) => 16,
        }
    }

    /// Bytes the bins occupy.
    fn bin_bytes(&self) -> usize {
        self.inner.bin_bytes()
    }

    /// The bin rule of feature `i` as a dict.
    fn feature_info<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyDict>> {
        let m = self.inner.mappers.get(i).ok_or_else(|| {
            to_py(py, Error::param(format!("feature index {i} out of range (0..{})", self.inner.num_features())))
        })?;
        let d = PyDict::new(py);
        d.set_item("name", &self.inner.feature_names[i])?;
        d.set_item("missing_bin", m.missing_bin())?;
        d.set_item("num_bins", m.num_bins())?;
        match m {
            BinMapper::Numeric { upper_bounds, min, max } => {
                d.set_item("kind", "numeric")?;
                d.set_item("upper_bounds", PyArray1::from_slice(py, upper_bounds))?;
                d.set_item("min", *min)?;
                d.set_item("max", *max)?;
            }
            BinMapper::Categorical { categories, counts } => {
                d.set_item("kind", "categorical")?;
                let cats = PyList::empty(py);
                for k in categories {
                    cats.append(key_to_py(py, k)?)?;
                }
                d.set_item("categories", cats)?;
                d.set_item("counts", counts.clone())?;
            }
        }
        Ok(d)
    }

    /// The bins as a (num_data, num_feature) array (a copy; uint8 or uint16).
    fn bins<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let shape = (self.inner.n_rows, self.inner.num_features()).f();
        let err = |e: ndarray::ShapeError| to_py(py, Error::Internal(e.to_string()));
        Ok(match &self.inner.bins {
            BinMatrix::U8(d) => PyArray2::from_owned_array(py, Array2::from_shape_vec(shape, d.clone()).map_err(err)?).into_any(),
            BinMatrix::U16(d) => PyArray2::from_owned_array(py, Array2::from_shape_vec(shape, d.clone()).map_err(err)?).into_any(),
        })
    }

    /// The label (a copy), or None.
    fn get_label<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.inner.label.as_ref().map(|l| PyArray1::from_slice(py, l))
    }

    /// The weights (a copy), or None.
    fn get_weight<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.inner.weight.as_ref().map(|w| PyArray1::from_slice(py, w))
    }

    /// Query sizes, or None.
    fn get_group(&self) -> Option<Vec<u32>> {
        self.inner.group.clone()
    }

    /// Starting raw scores (a copy), or None.
    fn get_init_score<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.inner.init_score.as_ref().map(|s| PyArray1::from_slice(py, s))
    }

    /// The binning parameters, as a dict.
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.inner.config;
        let d = PyDict::new(py);
        d.set_item("max_bin", c.max_bin)?;
        d.set_item("bin_construct_sample_cnt", c.bin_construct_sample_cnt)?;
        d.set_item("data_random_seed", c.data_random_seed)?;
        d.set_item("min_data_in_bin", c.min_data_in_bin)?;
        d.set_item("num_threads", c.num_threads)?;
        Ok(d)
    }

    /// The dataset as artifact bytes (verified on load).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let inner = self.inner.clone();
        let bytes = detach(py, move || artifact::encode(KIND, inner.as_ref()))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// A dataset from artifact bytes; raises ModelIntegrityError when they were changed.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: Vec<u8>) -> PyResult<Self> {
        let ds = detach(py, move || artifact::decode::<Dataset>(&data, KIND))?;
        Ok(PyDataset { inner: Arc::new(ds) })
    }

    /// Writes the dataset to `path` (atomically).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let inner = self.inner.clone();
        detach(py, move || artifact::save(&path, KIND, inner.as_ref()))
    }

    /// Reads and verifies a dataset written by `save`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let ds = detach(py, move || artifact::load::<Dataset>(&path, KIND))?;
        Ok(PyDataset { inner: Arc::new(ds) })
    }

    /// Names, bin rules and parameters as JSON (the bins themselves left out), for people to read.
    fn describe_json(&self, py: Python<'_>) -> PyResult<String> {
        #[derive(serde::Serialize)]
        struct Summary<'a> {
            num_data: usize,
            feature_names: &'a [String],
            mappers: &'a [BinMapper],
            config: &'a BinConfig,
        }
        let d = &self.inner;
        artifact::to_json(&Summary {
            num_data: d.n_rows,
            feature_names: &d.feature_names,
            mappers: &d.mappers,
            config: &d.config,
        })
        .map_err(|e| to_py(py, e))
    }
}
