//! The deployable model: fitted preprocessing (numeric transforms, encoders, column transformers),
//! a final model (the compiled GBDT forest or a linear model), the input schema and an optional
//! reference profile, in one verified artifact. Python's `Pipeline.predict` and the model server both
//! call [`Deployable::predict_arrow`] / [`Deployable::predict_dense`], so what is served is exactly
//! what was validated: there is one prediction path, in Rust.
//!
//! Every step reuses the kernels of `ferrox.preprocessing` (affine, quantile, impute, digitize,
//! category lookup, ordinal, one-hot, target encoding); tree models predict through [`Forest`] only.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Schema};
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::apply::digitize;
use super::encode::{self, CatValues, CategoryIndex, ColumnCategories, OneHotColumn};
use super::pipeline::{FeaturePipeline, Step};
use super::target;
use crate::artifact;
use crate::data::binning::{BinMapper, CatKey};
use crate::data::frame::{default_names, ColumnSource, DenseMatrix, FeatureRef, Frame};
use crate::drift::profile::ReferenceProfile;
use crate::error::{Error, Result};
use crate::gbdt::Model;
use crate::linear::LinearModel;
use crate::predict::Forest;

/// The artifact kind of a deployable pipeline.
pub const KIND: &str = "pipeline";

/// Rows up to which a request runs on the calling thread's own one-thread pool.
const SMALL_BATCH: usize = 2048;

/// The type of one input column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnType {
    /// Floating-point numbers.
    Float,
    /// Whole numbers.
    Integer,
    /// Booleans.
    Bool,
    /// Strings (categories).
    String,
}

impl ColumnType {
    /// The lower-case name used in messages and in Python ("float", "integer", "bool", "string").
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Float => "float",
            ColumnType::Integer => "integer",
            ColumnType::Bool => "bool",
            ColumnType::String => "string",
        }
    }

    /// The type of an Arrow column of type `dt`, if it can be an input.
    pub fn of_arrow(dt: &DataType) -> Option<ColumnType> {
        Some(match dt {
            DataType::Float16 | DataType::Float32 | DataType::Float64 => ColumnType::Float,
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => ColumnType::Integer,
            DataType::Boolean => ColumnType::Bool,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnType::String,
            DataType::Dictionary(_, v) => match ColumnType::of_arrow(v)? {
                ColumnType::String => ColumnType::String,
                _ => return None,
            },
            _ => return None,
        })
    }
}

/// One input column: its name, type, categories (string columns), training range (numeric columns)
/// and whether a missing value can be processed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// The column name.
    pub name: String,
    /// Its type.
    pub dtype: ColumnType,
    /// The categories seen at training (string columns), sorted.
    pub categories: Option<Vec<String>>,
    /// The smallest training value (numeric columns).
    pub min: Option<f64>,
    /// The largest training value (numeric columns).
    pub max: Option<f64>,
    /// Whether the pipeline can process a missing value here (an imputer fills it, an encoder maps
    /// it, or the tree model routes it); when false a missing value is an error.
    pub nullable: bool,
}

/// The input columns a model reads, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSchema {
    /// The columns.
    pub columns: Vec<ColumnSpec>,
}

impl InputSchema {
    /// The column names.
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Infers the schema of training data: types from the Arrow schema (all float for a matrix),
    /// categories of string columns, ranges of the others. Every column starts nullable.
    pub fn infer(frame: &Frame<'_>, dtypes: &[ColumnType]) -> Result<InputSchema> {
        if dtypes.len() != frame.n_cols() {
            return Err(Error::Internal("one type per column expected".into()));
        }
        let strings: Vec<usize> = (0..frame.n_cols()).filter(|&j| dtypes[j] == ColumnType::String).collect();
        let sub = Frame {
            names: strings.iter().map(|&j| frame.names[j].clone()).collect(),
            columns: strings.iter().map(|&j| frame.columns[j].clone()).collect(),
            n_rows: frame.n_rows,
        };
        let cats = if strings.is_empty() { Vec::new() } else { encode::fit_categories(&sub, 1)? };
        let mut columns = Vec::with_capacity(frame.n_cols());
        for (j, (name, col)) in frame.names.iter().zip(&frame.columns).enumerate() {
            let mut spec =
                ColumnSpec { name: name.clone(), dtype: dtypes[j], categories: None, min: None, max: None, nullable: true };
            if let Some(k) = strings.iter().position(|&s| s == j) {
                spec.categories = Some(match &cats[k].values {
                    CatValues::Str(v) => v.clone(),
                    CatValues::Num(v) => v.iter().map(|x| format!("{x}")).collect(),
                });
            } else {
                let values = numbers_of(col, frame.n_rows, name)?;
                let (lo, hi) = values
                    .iter()
                    .filter(|v| !v.is_nan())
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                if lo <= hi {
                    spec.min = Some(lo);
                    spec.max = Some(hi);
                }
            }
            columns.push(spec);
        }
        Ok(InputSchema { columns })
    }
}

/// The values of a column as numbers (NaN = missing); string categories are an error.
fn numbers_of(col: &ColumnSource<'_>, n: usize, name: &str) -> Result<Vec<f64>> {
    Ok(match col {
        ColumnSource::Numeric(src) => {
            let mut v = vec![0.0; n];
            src.read(0, &mut v);
            v
        }
        ColumnSource::Categorical(c) => {
            let mut keys = Vec::with_capacity(c.keys.len());
            for k in &c.keys {
                match k {
                    CatKey::Int(i) => keys.push(*i as f64),
                    CatKey::Str(_) => {
                        return Err(Error::data(format!(
                            "column '{name}' holds strings, but this step of the pipeline reads numbers"
                        )))
                    }
                }
            }
            c.codes.iter().map(|&code| if code < 0 { f64::NAN } else { keys[code as usize] }).collect()
        }
    })
}

/// What a caller asks a model for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The prediction: class labels for classifiers, values otherwise.
    Predict,
    /// Class probabilities, (rows, classes).
    PredictProba,
    /// The raw score / decision function.
    Raw,
    /// TreeSHAP contributions (tree models).
    Contrib,
}

impl Output {
    /// The output's name ("predict", "predict_proba", "raw", "contrib").
    pub fn name(self) -> &'static str {
        match self {
            Output::Predict => "predict",
            Output::PredictProba => "predict_proba",
            Output::Raw => "raw",
            Output::Contrib => "contrib",
        }
    }

    /// The output of a name (as [`Output::name`] gives them).
    pub fn parse(name: &str) -> Result<Output> {
        Ok(match name {
            "predict" => Output::Predict,
            "predict_proba" => Output::PredictProba,
            "raw" => Output::Raw,
            "contrib" => Output::Contrib,
            other => {
                return Err(Error::param(format!(
                    "output must be 'predict', 'predict_proba', 'raw' or 'contrib', got '{other}'"
                )))
            }
        })
    }
}

/// One output a model can produce: its name, Open Inference Protocol datatype and columns per row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    /// "predict", "predict_proba", "raw" or "contrib".
    pub name: &'static str,
    /// "FP64", "INT64" or "BYTES".
    pub datatype: &'static str,
    /// Columns per row.
    pub width: usize,
}

/// A row-major result: rows = len / cols.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// Floats.
    F64 {
        /// Values, row-major.
        data: Vec<f64>,
        /// Columns per row.
        cols: usize,
    },
    /// Integers (integer class labels).
    I64 {
        /// Values, row-major.
        data: Vec<i64>,
        /// Columns per row.
        cols: usize,
    },
    /// Strings (string class labels).
    Bytes {
        /// Values, row-major.
        data: Vec<String>,
        /// Columns per row.
        cols: usize,
    },
}

impl Tensor {
    /// Columns per row.
    pub fn cols(&self) -> usize {
        match self {
            Tensor::F64 { cols, .. } | Tensor::I64 { cols, .. } | Tensor::Bytes { cols, .. } => *cols,
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        let len = match self {
            Tensor::F64 { data, .. } => data.len(),
            Tensor::I64 { data, .. } => data.len(),
            Tensor::Bytes { data, .. } => data.len(),
        };
        len.checked_div(self.cols()).unwrap_or(0)
    }
}

/// Class labels of a classifier, sorted as the estimator's `classes_`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Labels {
    /// Integer (or boolean) classes.
    I64(Vec<i64>),
    /// Float classes.
    F64(Vec<f64>),
    /// String classes.
    Str(Vec<String>),
}

impl Labels {
    fn len(&self) -> usize {
        match self {
            Labels::I64(v) => v.len(),
            Labels::F64(v) => v.len(),
            Labels::Str(v) => v.len(),
        }
    }

    fn datatype(&self) -> &'static str {
        match self {
            Labels::I64(_) => "INT64",
            Labels::F64(_) => "FP64",
            Labels::Str(_) => "BYTES",
        }
    }

    fn pick(&self, idx: &[usize]) -> Tensor {
        match self {
            Labels::I64(v) => Tensor::I64 { data: idx.iter().map(|&i| v[i]).collect(), cols: 1 },
            Labels::F64(v) => Tensor::F64 { data: idx.iter().map(|&i| v[i]).collect(), cols: 1 },
            Labels::Str(v) => Tensor::Bytes { data: idx.iter().map(|&i| v[i].clone()).collect(), cols: 1 },
        }
    }

    /// Labels from JSON values (metadata of saved estimators): all integers, all numbers or all strings.
    pub fn from_json(values: &[serde_json::Value]) -> Option<Labels> {
        if values.iter().all(|v| v.is_i64() || v.is_boolean()) {
            return Some(Labels::I64(values.iter().map(|v| v.as_i64().unwrap_or(i64::from(v.as_bool() == Some(true)))).collect()));
        }
        if values.iter().all(|v| v.is_number()) {
            return Some(Labels::F64(values.iter().filter_map(|v| v.as_f64()).collect()));
        }
        if values.iter().all(|v| v.is_string()) {
            return Some(Labels::Str(values.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()));
        }
        None
    }
}

/// What the final model's `predict` returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Task {
    /// The model's values (regression, or a bare booster's transformed scores).
    Scores,
    /// The most probable class, as a label.
    Classes {
        /// The labels, in score order.
        labels: Labels,
        /// Whether `predict_proba` exists (GBDT classifiers, logistic regression).
        proba: bool,
    },
}

/// The final model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum FinalModel {
    /// A gradient-boosted tree model, predicting through its compiled [`Forest`].
    Gbdt {
        /// The model.
        model: Model,
        /// Trees used (the best round when one was recorded).
        n_trees: usize,
        /// What `predict` returns.
        task: Task,
    },
    /// A linear model.
    Linear {
        /// The model.
        model: LinearModel,
        /// What `predict` returns.
        task: Task,
    },
}

impl FinalModel {
    fn task(&self) -> &Task {
        match self {
            FinalModel::Gbdt { task, .. } | FinalModel::Linear { task, .. } => task,
        }
    }

    /// Scores per row.
    fn n_scores(&self) -> usize {
        match self {
            FinalModel::Gbdt { model, .. } => model.num_scores,
            FinalModel::Linear { model, .. } => model.n_outputs,
        }
    }

    fn n_features(&self) -> usize {
        match self {
            FinalModel::Gbdt { model, .. } => model.feature_names.len(),
            FinalModel::Linear { model, .. } => model.n_features,
        }
    }
}

/// One part of a column transformer: its input columns and what is done with them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part {
    /// Input columns (positions in the transformer's input).
    pub columns: Vec<usize>,
    /// The fitted transform; None passes the columns through.
    pub transform: Option<Transform>,
}

/// One fitted preprocessing step. Outputs are float matrices; the first step may read string columns.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Transform {
    /// Scalers, QuantileTransformer, SimpleImputer.
    Numeric(Step),
    /// OrdinalEncoder.
    Ordinal {
        /// The fitted categories per column.
        categories: Vec<ColumnCategories>,
        /// The code of unseen values (None: they are an error).
        unknown_value: Option<f64>,
        /// The code of the fitted missing category.
        missing_value: f64,
        /// The string index of `categories`, built at load.
        #[serde(skip)]
        index: CategoryIndex,
    },
    /// OneHotEncoder (dense output).
    OneHot {
        /// The fitted categories per column.
        categories: Vec<ColumnCategories>,
        /// Where each category lands.
        layout: Vec<OneHotColumn>,
        /// Unseen values without an infrequent column are an error (handle_unknown="error").
        error_on_unknown: bool,
        /// The string index of `categories`, built at load.
        #[serde(skip)]
        index: CategoryIndex,
    },
    /// TargetEncoder (the encodings fitted on all rows).
    Target {
        /// The fitted categories per column.
        categories: Vec<ColumnCategories>,
        /// Per (feature, target column), one value per category.
        encodings: Vec<Vec<f64>>,
        /// Target means (the value of unseen categories), one per target column.
        means: Vec<f64>,
        /// The string index of `categories`, built at load.
        #[serde(skip)]
        index: CategoryIndex,
    },
    /// KBinsDiscretizer.
    Bins {
        /// Inner bin edges per column.
        inner_edges: Vec<Vec<f64>>,
        /// Bins per column.
        n_bins: Vec<usize>,
        /// One-hot output (else the bin index).
        onehot: bool,
    },
    /// ColumnTransformer: parts side by side, in order.
    Columns {
        /// The parts (dropped columns are in none).
        parts: Vec<Part>,
        /// Input columns.
        n_inputs: usize,
    },
    /// Steps applied in order (a scikit-learn Pipeline of transforms).
    Chain(Vec<Transform>),
}

/// A step's input: the request's columns, a numeric matrix, or an earlier step's output.
enum Input<'a> {
    Frame(Frame<'a>),
    Matrix(DenseMatrix<'a>, Option<Vec<String>>),
    Owned { data: Vec<f64>, rows: usize, cols: usize, names: Option<Vec<String>> },
}

impl<'a> Input<'a> {
    fn n_rows(&self) -> usize {
        match self {
            Input::Frame(f) => f.n_rows,
            Input::Matrix(m, _) => m.dim().0,
            Input::Owned { rows, .. } => *rows,
        }
    }

    fn n_cols(&self) -> usize {
        match self {
            Input::Frame(f) => f.n_cols(),
            Input::Matrix(m, _) => m.dim().1,
            Input::Owned { cols, .. } => *cols,
        }
    }

    /// Runs `f` on the input as a float matrix.
    fn dense<T>(&self, f: impl FnOnce(&DenseMatrix<'_>) -> Result<T>) -> Result<T> {
        match self {
            Input::Matrix(m, _) => f(m),
            Input::Owned { data, rows, cols, .. } => f(&DenseMatrix::F64(view(data, *rows, *cols)?)),
            Input::Frame(fr) => {
                let (n, m) = (fr.n_rows, fr.n_cols());
                let mut out = vec![0.0; n * m];
                for (j, (col, name)) in fr.columns.iter().zip(&fr.names).enumerate() {
                    for (i, v) in numbers_of(col, n, name)?.into_iter().enumerate() {
                        out[i * m + j] = v;
                    }
                }
                f(&DenseMatrix::F64(view(&out, n, m)?))
            }
        }
    }

    /// Runs `f` on the input as a frame (named columns where the names are known).
    fn frame<T>(&self, f: impl FnOnce(&Frame<'_>) -> Result<T>) -> Result<T> {
        match self {
            Input::Frame(fr) => f(fr),
            Input::Matrix(m, names) => f(&Frame::from_dense(*m, names.clone(), &[])?),
            Input::Owned { data, rows, cols, names } => {
                f(&Frame::from_dense(DenseMatrix::F64(view(data, *rows, *cols)?), names.clone(), &[])?)
            }
        }
    }

    /// The input as a frame with default column names (what a tree model checks names against).
    fn model_frame<T>(&self, f: impl FnOnce(&Frame<'_>) -> Result<T>) -> Result<T> {
        match self {
            Input::Frame(fr) => {
                let renamed = Frame { names: default_names(fr.n_cols()), columns: fr.columns.clone(), n_rows: fr.n_rows };
                f(&renamed)
            }
            Input::Matrix(m, _) => f(&Frame::from_dense(*m, None, &[])?),
            Input::Owned { data, rows, cols, .. } => {
                f(&Frame::from_dense(DenseMatrix::F64(view(data, *rows, *cols)?), None, &[])?)
            }
        }
    }

    /// Columns `cols` of the input.
    fn select(&self, cols: &[usize]) -> Result<Input<'a>> {
        if let Some(&bad) = cols.iter().find(|&&c| c >= self.n_cols()) {
            return Err(Error::data(format!("column {bad} is out of range for {} columns", self.n_cols())));
        }
        Ok(match self {
            Input::Frame(fr) => Input::Frame(Frame {
                names: cols.iter().map(|&c| fr.names[c].clone()).collect(),
                columns: cols.iter().map(|&c| fr.columns[c].clone()).collect(),
                n_rows: fr.n_rows,
            }),
            Input::Matrix(m, names) => {
                let (n, w) = (m.dim().0, cols.len());
                let mut out = vec![0.0; n * w];
                for (k, &c) in cols.iter().enumerate() {
                    for i in 0..n {
                        out[i * w + k] = match m {
                            DenseMatrix::F32(a) => a[[i, c]] as f64,
                            DenseMatrix::F64(a) => a[[i, c]],
                        };
                    }
                }
                Input::Owned { data: out, rows: n, cols: w, names: names.as_ref().map(|v| cols.iter().map(|&c| v[c].clone()).collect()) }
            }
            Input::Owned { data, rows, cols: m, names } => {
                let (n, w) = (*rows, cols.len());
                let mut out = vec![0.0; n * w];
                for i in 0..n {
                    for (k, &c) in cols.iter().enumerate() {
                        out[i * w + k] = data[i * m + c];
                    }
                }
                Input::Owned { data: out, rows: n, cols: w, names: names.as_ref().map(|v| cols.iter().map(|&c| v[c].clone()).collect()) }
            }
        })
    }

    /// The first row where column `j` is missing.
    fn first_missing(&self, j: usize) -> Option<usize> {
        match self {
            Input::Frame(fr) => match &fr.columns[j] {
                ColumnSource::Numeric(src) => {
                    const BLOCK: usize = 4096;
                    let mut buf = vec![0.0; BLOCK.min(fr.n_rows)];
                    let mut row = 0;
                    while row < fr.n_rows {
                        let len = BLOCK.min(fr.n_rows - row);
                        src.read(row, &mut buf[..len]);
                        if let Some(i) = buf[..len].iter().position(|v| v.is_nan()) {
                            return Some(row + i);
                        }
                        row += len;
                    }
                    None
                }
                ColumnSource::Categorical(c) => c.codes.iter().position(|&k| k < 0),
            },
            Input::Matrix(m, _) => match m {
                DenseMatrix::F32(a) => a.column(j).iter().position(|v| v.is_nan()),
                DenseMatrix::F64(a) => a.column(j).iter().position(|v| v.is_nan()),
            },
            Input::Owned { data, rows, cols, .. } => (0..*rows).find(|&i| data[i * cols + j].is_nan()),
        }
    }
}

fn view(data: &[f64], rows: usize, cols: usize) -> Result<ArrayView2<'_, f64>> {
    ArrayView2::from_shape((rows, cols), data).map_err(|e| Error::Internal(e.to_string()))
}

/// Origins (input columns) whose missing value can reach each column as NaN.
type Taint = Vec<BTreeSet<usize>>;

impl Transform {
    /// Builds what a loaded step needs beyond its fitted state (the string indexes of encoders).
    fn prepare(&mut self) {
        match self {
            Transform::Ordinal { categories, index, .. }
            | Transform::OneHot { categories, index, .. }
            | Transform::Target { categories, index, .. } => *index = encode::category_index(categories),
            Transform::Columns { parts, .. } => {
                for p in parts.iter_mut() {
                    if let Some(t) = p.transform.as_mut() {
                        t.prepare();
                    }
                }
            }
            Transform::Chain(steps) => steps.iter_mut().for_each(Transform::prepare),
            Transform::Numeric(_) | Transform::Bins { .. } => {}
        }
    }

    /// Applies the step to `x`: a row-major float output.
    fn apply(&self, x: &Input<'_>, t: i64) -> Result<Input<'static>> {
        let n = x.n_rows();
        let (data, cols) = match self {
            Transform::Numeric(step) => x.dense(|d| step.apply(d, t))?,
            Transform::Ordinal { categories, unknown_value, missing_value, index } => x.frame(|f| {
                let (codes, unknown) = encode::lookup_indexed(f, categories, Some(index), t)?;
                let out = encode::ordinal(&codes, &unknown, categories, &f.names, *unknown_value, *missing_value)?;
                Ok((out, categories.len()))
            })?,
            Transform::OneHot { categories, layout, error_on_unknown, index } => x.frame(|f| {
                let (codes, unknown) = encode::lookup_indexed(f, categories, Some(index), t)?;
                if *error_on_unknown {
                    for (j, u) in unknown.iter().enumerate() {
                        if let Some((row, v)) = u {
                            if layout[j].unknown_slot < 0 {
                                return Err(encode::unknown_error(&f.names, j, *row, v));
                            }
                        }
                    }
                }
                let (indptr, indices) = encode::onehot_csr(&codes, layout);
                let w = layout.iter().map(|l| l.width).sum::<usize>();
                let mut out = vec![0.0; n * w];
                for i in 0..n {
                    for &c in &indices[indptr[i] as usize..indptr[i + 1] as usize] {
                        out[i * w + c as usize] = 1.0;
                    }
                }
                Ok((out, w))
            })?,
            Transform::Target { categories, encodings, means, index } => x.frame(|f| {
                let (codes, _) = encode::lookup_indexed(f, categories, Some(index), t)?;
                Ok((target::apply(&codes, encodings, means), categories.len() * means.len()))
            })?,
            Transform::Bins { inner_edges, n_bins, onehot } => x.dense(|d| {
                let codes = digitize(d, inner_edges, t)?;
                let m = inner_edges.len();
                if !*onehot {
                    return Ok((codes, m));
                }
                let w = n_bins.iter().sum::<usize>();
                let offsets: Vec<usize> = n_bins.iter().scan(0, |acc, &b| {
                    let o = *acc;
                    *acc += b;
                    Some(o)
                }).collect();
                let mut out = vec![0.0; n * w];
                for i in 0..n {
                    for j in 0..m {
                        out[i * w + offsets[j] + codes[i * m + j] as usize] = 1.0;
                    }
                }
                Ok((out, w))
            })?,
            Transform::Columns { parts, n_inputs } => {
                if x.n_cols() != *n_inputs {
                    return Err(Error::data(format!(
                        "X has {} features, but ColumnTransformer is expecting {n_inputs} features as input.",
                        x.n_cols()
                    )));
                }
                let mut outs: Vec<(Vec<f64>, usize)> = Vec::with_capacity(parts.len());
                for p in parts {
                    let sub = x.select(&p.columns)?;
                    let done = match &p.transform {
                        None => sub.dense(|d| Ok((row_major(d), d.dim().1)))?,
                        Some(tr) => match tr.apply(&sub, t)? {
                            Input::Owned { data, cols, .. } => (data, cols),
                            _ => return Err(Error::Internal("a step returned a borrowed output".into())),
                        },
                    };
                    outs.push(done);
                }
                let w: usize = outs.iter().map(|o| o.1).sum();
                let mut out = vec![0.0; n * w];
                let mut at = 0;
                for (data, c) in &outs {
                    for i in 0..n {
                        out[i * w + at..i * w + at + c].copy_from_slice(&data[i * c..(i + 1) * c]);
                    }
                    at += c;
                }
                (out, w)
            }
            Transform::Chain(steps) => {
                let mut cur: Option<Input<'static>> = None;
                for s in steps {
                    let next = match &cur {
                        None => s.apply(x, t)?,
                        Some(c) => s.apply(c, t)?,
                    };
                    cur = Some(next);
                }
                return match cur {
                    Some(c) => Ok(c),
                    None => x.dense(|d| {
                        let (r, c) = d.dim();
                        Ok(Input::Owned { data: row_major(d), rows: r, cols: c, names: None })
                    }),
                };
            }
        };
        Ok(Input::Owned { data, rows: n, cols, names: None })
    }

    /// How missing values flow: the taint of each output column, given the input columns' taints;
    /// origins whose missing value this step rejects go to `forbidden`.
    fn missing_flow(&self, input: &Taint, forbidden: &mut BTreeSet<usize>) -> Result<Taint> {
        let none = BTreeSet::new;
        let col = |j: usize| input.get(j).cloned().unwrap_or_default();
        Ok(match self {
            Transform::Numeric(Step::Affine(_)) | Transform::Numeric(Step::Quantile(_)) => input.clone(),
            Transform::Numeric(Step::Impute { keep, indicator, .. }) => {
                (0..keep.len() + indicator.len()).map(|_| none()).collect()
            }
            Transform::Ordinal { categories, unknown_value, missing_value, .. } => categories
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    let code = if c.has_missing {
                        Some(*missing_value)
                    } else {
                        *unknown_value
                    };
                    match code {
                        None => {
                            forbidden.extend(col(j));
                            none()
                        }
                        Some(v) if v.is_nan() => col(j),
                        Some(_) => none(),
                    }
                })
                .collect(),
            Transform::OneHot { categories, layout, error_on_unknown, .. } => {
                let mut out = Vec::new();
                for (j, (c, l)) in categories.iter().zip(layout).enumerate() {
                    if !c.has_missing && *error_on_unknown && l.unknown_slot < 0 {
                        forbidden.extend(col(j));
                    }
                    out.extend((0..l.width).map(|_| none()));
                }
                out
            }
            Transform::Target { categories, means, .. } => (0..categories.len() * means.len()).map(|_| none()).collect(),
            Transform::Bins { inner_edges, n_bins, onehot } => {
                for j in 0..inner_edges.len() {
                    forbidden.extend(col(j));
                }
                let w = if *onehot { n_bins.iter().sum() } else { inner_edges.len() };
                (0..w).map(|_| none()).collect()
            }
            Transform::Columns { parts, .. } => {
                let mut out = Vec::new();
                for p in parts {
                    let sub: Taint = p.columns.iter().map(|&c| col(c)).collect();
                    match &p.transform {
                        None => out.extend(sub),
                        Some(t) => out.extend(t.missing_flow(&sub, forbidden)?),
                    }
                }
                out
            }
            Transform::Chain(steps) => {
                let mut cur = input.clone();
                for s in steps {
                    cur = s.missing_flow(&cur, forbidden)?;
                }
                cur
            }
        })
    }
}

/// The serialised content of a deployable artifact.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Body {
    /// The input columns.
    pub schema: InputSchema,
    /// Preprocessing steps, in order.
    pub steps: Vec<Transform>,
    /// The final model.
    pub model: FinalModel,
    /// The training frame's profile, for drift monitoring.
    pub profile: Option<ReferenceProfile>,
    /// Caller metadata (JSON text); never executed.
    pub meta: String,
}

/// A loaded model ready to serve: preprocessing + final model + input schema (+ reference profile).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "Body", into = "Body")]
pub struct Deployable {
    body: Arc<Body>,
    forest: Option<Arc<Forest>>,
    /// Schema position of each column name.
    by_name: Arc<HashMap<String, usize>>,
    /// What monitoring compares live traffic with, beyond the feature profile.
    monitoring: Option<Arc<MonitoringReference>>,
}

/// The reference a served model's performance is monitored against: its scores and metrics on
/// reference data (prediction drift, confidence-based estimation) and, for regressors, the loss
/// models of direct loss estimation (`("mae", model of |error|)`, `("mse", model of error²)`), which
/// take the same inputs as the model.
///
/// In the artifact it follows the pipeline's body (files without it end after the body), so
/// artifacts written before it existed read unchanged, and ones without it keep their bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MonitoringReference {
    /// Scores and metrics on reference data.
    pub performance: crate::drift::performance::PerformanceReference,
    /// Loss models by metric (regression).
    pub loss_models: Vec<(String, Deployable)>,
}

impl From<Deployable> for Body {
    fn from(d: Deployable) -> Body {
        Arc::unwrap_or_clone(d.body)
    }
}

impl TryFrom<Body> for Deployable {
    type Error = Error;
    fn try_from(b: Body) -> Result<Deployable> {
        Deployable::new(b)
    }
}

/// Which input columns may be missing, given the steps and the final model.
pub fn nullable_columns(n_inputs: usize, steps: &[Transform], model: &FinalModel) -> Result<Vec<bool>> {
    let mut taint: Taint = (0..n_inputs).map(|j| BTreeSet::from([j])).collect();
    let mut forbidden = BTreeSet::new();
    for s in steps {
        taint = s.missing_flow(&taint, &mut forbidden)?;
    }
    if let FinalModel::Linear { .. } = model {
        for t in &taint {
            forbidden.extend(t.iter().copied());
        }
    }
    Ok((0..n_inputs).map(|j| !forbidden.contains(&j)).collect())
}

fn names_or_default(names: Option<Vec<String>>, n: usize) -> Vec<String> {
    match names {
        Some(v) if v.len() == n => v,
        _ => (0..n).map(|i| format!("f{i}")).collect(),
    }
}

fn numeric_schema(names: Vec<String>) -> InputSchema {
    InputSchema {
        columns: names
            .into_iter()
            .map(|name| ColumnSpec { name, dtype: ColumnType::Float, categories: None, min: None, max: None, nullable: true })
            .collect(),
    }
}

fn meta_json(meta: &str) -> serde_json::Value {
    serde_json::from_str(meta).unwrap_or(serde_json::Value::Null)
}

fn json_names(v: &serde_json::Value) -> Option<Vec<String>> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_owned)).collect())
}

/// The task of a linear model from its saved metadata (classes and the estimator name).
fn linear_task(meta: &serde_json::Value) -> Task {
    match meta.get("classes").and_then(|c| c.as_array()).and_then(|c| Labels::from_json(c)) {
        Some(labels) => Task::Classes { labels, proba: meta.get("estimator").and_then(|e| e.as_str()) == Some("LogisticRegression") },
        None => Task::Scores,
    }
}

impl Deployable {
    /// A deployable from its parts; checks them and builds the lookup tables and the forest.
    pub fn new(mut body: Body) -> Result<Deployable> {
        for s in body.steps.iter_mut() {
            s.prepare();
        }
        if let Task::Classes { labels, .. } = body.model.task() {
            let k = body.model.n_scores();
            let n = labels.len();
            if !(n == k || (k == 1 && n == 2)) {
                return Err(Error::data(format!("the model has {k} scores per row but {n} class labels")));
            }
        }
        let forest = match &body.model {
            FinalModel::Gbdt { model, .. } => Some(Arc::new(Forest::from_model(model))),
            FinalModel::Linear { .. } => None,
        };
        let mut by_name = HashMap::with_capacity(body.schema.columns.len());
        for (j, c) in body.schema.columns.iter().enumerate() {
            if by_name.insert(c.name.clone(), j).is_some() {
                return Err(Error::data(format!("the schema names column '{}' twice", c.name)));
            }
        }
        Ok(Deployable { body: Arc::new(body), forest, by_name: Arc::new(by_name), monitoring: None })
    }

    /// Builds a deployable from fitted parts: the nullable flags of `schema` are computed here.
    pub fn build(
        mut schema: InputSchema,
        steps: Vec<Transform>,
        model: FinalModel,
        profile: Option<ReferenceProfile>,
        meta: String,
    ) -> Result<Deployable> {
        let nullable = nullable_columns(schema.columns.len(), &steps, &model)?;
        for (c, n) in schema.columns.iter_mut().zip(nullable) {
            c.nullable = n;
        }
        if steps.is_empty() && model.n_features() != schema.columns.len() {
            return Err(Error::data(format!(
                "the model reads {} features but the schema has {} columns",
                model.n_features(),
                schema.columns.len()
            )));
        }
        Deployable::new(Body { schema, steps, model, profile, meta })
    }

    /// A bare GBDT model as a deployable (numeric inputs named as the model's features; string
    /// categorical features as string columns).
    pub fn from_model(model: Model) -> Result<Deployable> {
        let meta = meta_json(&model.meta);
        let columns = model
            .feature_names
            .iter()
            .zip(&model.mappers)
            .map(|(name, m)| {
                let cats = match m {
                    BinMapper::Categorical { categories, .. } if categories.iter().all(|k| matches!(k, CatKey::Str(_))) => {
                        let mut v: Vec<String> =
                            categories.iter().filter_map(|k| if let CatKey::Str(s) = k { Some(s.clone()) } else { None }).collect();
                        v.sort();
                        Some(v)
                    }
                    _ => None,
                };
                ColumnSpec {
                    name: name.clone(),
                    dtype: if cats.is_some() { ColumnType::String } else { ColumnType::Float },
                    categories: cats,
                    min: None,
                    max: None,
                    nullable: true,
                }
            })
            .collect();
        let task = match (meta.get("estimator").and_then(|e| e.as_str()), meta.get("classes_").and_then(|c| c.as_array())) {
            (Some("GBDTClassifier"), Some(c)) => match Labels::from_json(c) {
                Some(labels) => Task::Classes { labels, proba: true },
                None => Task::Scores,
            },
            _ => Task::Scores,
        };
        let n_trees = model.trees_for(None);
        Deployable::build(InputSchema { columns }, vec![], FinalModel::Gbdt { model, n_trees, task }, None, String::new())
    }

    /// A bare linear model as a deployable (inputs named from its saved feature names, else f0..).
    pub fn from_linear(model: LinearModel) -> Result<Deployable> {
        let meta = meta_json(&model.meta);
        let names = names_or_default(meta.get("feature_names_in_").and_then(json_names), model.n_features);
        let task = linear_task(&meta);
        Deployable::build(numeric_schema(names), vec![], FinalModel::Linear { model, task }, None, String::new())
    }

    /// An old feature pipeline (numeric steps + a linear model) as a deployable.
    pub fn from_feature_pipeline(p: FeaturePipeline) -> Result<Deployable> {
        let meta = meta_json(&p.meta);
        let names = names_or_default(meta.get("feature_names_in_").and_then(json_names), p.n_features);
        let final_meta = meta.get("final").cloned().unwrap_or_else(|| meta_json(&p.model.meta));
        let task = linear_task(&final_meta);
        let steps = p.steps.into_iter().map(Transform::Numeric).collect();
        Deployable::build(numeric_schema(names), steps, FinalModel::Linear { model: p.model, task }, None, p.meta)
    }

    /// Reads and verifies an artifact: a pipeline, a bare booster, a bare linear model or an old
    /// feature pipeline.
    pub fn from_artifact(bytes: &[u8]) -> Result<Deployable> {
        let (header, _) = artifact::verify(bytes)?;
        match header.kind.as_str() {
            KIND => {
                let (body, tail) = artifact::decode_with_tail::<Body, MonitoringReference>(bytes, KIND)?;
                let mut d = Deployable::new(body)?;
                d.monitoring = tail.map(Arc::new);
                Ok(d)
            }
            "booster" => Deployable::from_model(artifact::decode::<Model>(bytes, "booster")?),
            "linear_model" => Deployable::from_linear(artifact::decode::<LinearModel>(bytes, "linear_model")?),
            "feature_pipeline" => {
                Deployable::from_feature_pipeline(artifact::decode::<FeaturePipeline>(bytes, "feature_pipeline")?)
            }
            other => Err(Error::data(format!(
                "this file holds a '{other}', which cannot be served; expected a pipeline, booster, linear_model or \
                 feature_pipeline"
            ))),
        }
    }

    /// The deployable as artifact bytes (kind "pipeline").
    pub fn to_artifact(&self) -> Result<Vec<u8>> {
        match &self.monitoring {
            None => artifact::encode(KIND, self),
            Some(m) => artifact::encode(KIND, &(self, m.as_ref())),
        }
    }

    /// The monitoring reference, when one was attached.
    pub fn monitoring(&self) -> Option<&MonitoringReference> {
        self.monitoring.as_deref()
    }

    /// A copy with `reference` attached (or removed, with None). Loss models must take this
    /// model's inputs.
    pub fn with_monitoring(&self, reference: Option<MonitoringReference>) -> Result<Deployable> {
        if let Some(r) = &reference {
            let names = self.body.schema.names();
            for (metric, m) in &r.loss_models {
                if !matches!(metric.as_str(), "mae" | "mse") {
                    return Err(Error::param(format!("loss models are 'mae' or 'mse', got '{metric}'")));
                }
                if m.body.schema.names() != names {
                    return Err(Error::param(format!("the '{metric}' loss model takes other inputs than the model")));
                }
            }
            if r.performance.binary() != matches!(self.body.model.task(), Task::Classes { .. }) {
                return Err(Error::param(format!(
                    "a '{}' performance reference does not fit this model",
                    r.performance.task
                )));
            }
        }
        let mut d = self.clone();
        d.monitoring = reference.map(Arc::new);
        Ok(d)
    }

    /// The input schema.
    pub fn schema(&self) -> &InputSchema {
        &self.body.schema
    }

    /// Caller metadata (JSON text).
    pub fn meta(&self) -> &str {
        &self.body.meta
    }

    /// The parts.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The training frame's reference profile, when one was stored.
    pub fn reference_profile(&self) -> Option<&ReferenceProfile> {
        self.body.profile.as_ref()
    }

    /// What this model can produce; "predict" (the default) first.
    pub fn outputs(&self) -> Vec<OutputSpec> {
        let model = &self.body.model;
        let k = model.n_scores();
        let mut out = Vec::with_capacity(4);
        match model.task() {
            Task::Scores => out.push(OutputSpec { name: "predict", datatype: "FP64", width: k }),
            Task::Classes { labels, proba } => {
                out.push(OutputSpec { name: "predict", datatype: labels.datatype(), width: 1 });
                if *proba {
                    out.push(OutputSpec { name: "predict_proba", datatype: "FP64", width: labels.len() });
                }
            }
        }
        out.push(OutputSpec { name: "raw", datatype: "FP64", width: k });
        if let FinalModel::Gbdt { model, .. } = model {
            out.push(OutputSpec { name: "contrib", datatype: "FP64", width: k * (model.feature_names.len() + 1) });
        }
        out
    }

    fn check_output(&self, output: Output) -> Result<()> {
        if self.outputs().iter().any(|o| o.name == output.name()) {
            return Ok(());
        }
        let names: Vec<&str> = self.outputs().iter().map(|o| o.name).collect();
        Err(Error::param(format!("this model does not produce '{}' (it produces: {})", output.name(), names.join(", "))))
    }

    /// Predicts from named Arrow columns (matched to the schema by name, in any order).
    pub fn predict_arrow(&self, batches: &[RecordBatch], schema: &Schema, output: Output, n_threads: i64) -> Result<Tensor> {
        self.check_output(output)?;
        let spec = &self.body.schema.columns;
        let mut pos: Vec<Option<usize>> = vec![None; spec.len()];
        let mut cats = Vec::new();
        for (i, field) in schema.fields().iter().enumerate() {
            let Some(&j) = self.by_name.get(field.name()) else {
                return Err(Error::data(format!(
                    "column '{}' is not an input of this model (its inputs are {})",
                    field.name(),
                    crate::data::frame::preview(&self.body.schema.names())
                )));
            };
            let want = spec[j].dtype;
            let dt = field.data_type();
            let got = ColumnType::of_arrow(dt);
            let ok = match (want, got) {
                (_, _) if *dt == DataType::Null => true,
                (ColumnType::String, Some(ColumnType::String)) => true,
                (ColumnType::String, _) => false,
                (_, Some(ColumnType::String)) | (_, None) => false,
                _ => !matches!(dt, DataType::Dictionary(..) | DataType::Float16),
            };
            if !ok {
                let what = match got {
                    Some(ColumnType::String) => format!("strings ({dt})"),
                    _ => format!("Arrow type {dt}"),
                };
                let expected = match want {
                    ColumnType::String => "strings (a categorical column)".to_string(),
                    other => format!("{} values", other.name()),
                };
                return Err(Error::data(format!("column '{}' expects {expected}, but got {what}", field.name())));
            }
            if want == ColumnType::String {
                cats.push(FeatureRef::Index(i));
            }
            pos[j] = Some(i);
        }
        if let Some(j) = pos.iter().position(|p| p.is_none()) {
            return Err(Error::data(format!(
                "missing column '{}' ({}): the model needs every input column",
                spec[j].name,
                spec[j].dtype.name()
            )));
        }
        let frame = Frame::from_arrow(batches, schema, &cats)?;
        let mut cols: Vec<Option<ColumnSource<'static>>> = frame.columns.into_iter().map(Some).collect();
        let columns = pos.iter().map(|p| cols[p.expect("checked")].take().expect("each column once")).collect();
        let frame = Frame { names: self.body.schema.names(), columns, n_rows: frame.n_rows };
        self.run(Input::Frame(frame), output, n_threads)
    }

    /// Predicts from a numeric matrix whose columns are the schema's, in order.
    pub fn predict_dense(&self, x: &DenseMatrix<'_>, output: Output, n_threads: i64) -> Result<Tensor> {
        self.check_output(output)?;
        let spec = &self.body.schema.columns;
        let (n, m) = x.dim();
        if m != spec.len() {
            return Err(Error::data(format!(
                "X has {m} features, but the pipeline is expecting {} features as input.",
                spec.len()
            )));
        }
        if let Some(c) = spec.iter().find(|c| c.dtype == ColumnType::String) {
            return Err(Error::data(format!(
                "column '{}' holds strings; pass the columns by name (a table) instead of a numeric matrix",
                c.name
            )));
        }
        if n == 0 {
            return Err(Error::data("the data has no rows: a prediction needs at least one"));
        }
        self.run(Input::Matrix(*x, Some(self.body.schema.names())), output, n_threads)
    }

    fn check_missing(&self, x: &Input<'_>) -> Result<()> {
        for (j, c) in self.body.schema.columns.iter().enumerate() {
            if c.nullable {
                continue;
            }
            if let Some(row) = x.first_missing(j) {
                return Err(Error::data(format!(
                    "column '{}' has a missing value (NaN or null) at row {row}, but this model cannot take \
                     missing values in it: no imputer or encoder handles them before a model that needs finite \
                     inputs",
                    c.name
                )));
            }
        }
        Ok(())
    }

    fn run(&self, input: Input<'_>, output: Output, n_threads: i64) -> Result<Tensor> {
        self.check_missing(&input)?;
        let n = input.n_rows();
        let threads = if n <= SMALL_BATCH { 1 } else { crate::parallel::resolve_threads(n_threads) };
        let work = || -> Result<Tensor> {
            let t = threads as i64;
            let mut cur: Option<Input<'static>> = None;
            for s in &self.body.steps {
                let next = match &cur {
                    None => s.apply(&input, t)?,
                    Some(c) => s.apply(c, t)?,
                };
                cur = Some(next);
            }
            match &cur {
                None => self.final_output(&input, output, t),
                Some(c) => self.final_output(c, output, t),
            }
        };
        if threads == 1 && self.body.steps.is_empty() && matches!(self.body.model, FinalModel::Gbdt { .. }) {
            // A bare forest on few rows uses no thread pool: it runs here, with no hand-off to a pool
            // thread (the model server's one-row path).
            work()
        } else if threads == 1 {
            crate::parallel::run_solo(work)?
        } else {
            crate::parallel::run_in_pool(threads as i64, work)?
        }
    }

    fn final_output(&self, x: &Input<'_>, output: Output, t: i64) -> Result<Tensor> {
        let n = x.n_rows();
        match &self.body.model {
            FinalModel::Gbdt { model, n_trees, task } => {
                let forest = self.forest.as_ref().ok_or_else(|| Error::Internal("the forest was not built".into()))?;
                let k = model.num_scores;
                let scores = |raw: bool| x.model_frame(|f| forest.predict(f, *n_trees, raw, t));
                let proba = |p: Vec<f64>| -> Vec<f64> {
                    if k == 1 {
                        p.iter().flat_map(|&v| [1.0 - v, v]).collect()
                    } else {
                        p
                    }
                };
                Ok(match output {
                    Output::Raw => Tensor::F64 { data: scores(true)?, cols: k },
                    Output::Contrib => {
                        let nf = model.feature_names.len();
                        Tensor::F64 { data: x.model_frame(|f| forest.predict_contrib(f, *n_trees, t))?, cols: k * (nf + 1) }
                    }
                    Output::Predict => match task {
                        Task::Scores => Tensor::F64 { data: scores(false)?, cols: k },
                        Task::Classes { labels, .. } => {
                            let p = proba(scores(false)?);
                            labels.pick(&argmax_rows(&p, labels.len().max(1), n))
                        }
                    },
                    Output::PredictProba => {
                        let w = if k == 1 { 2 } else { k };
                        Tensor::F64 { data: proba(scores(false)?), cols: w }
                    }
                })
            }
            FinalModel::Linear { model, task } => {
                let k = model.n_outputs;
                let d = x.dense(|m| model.decision(m, t))?;
                Ok(match output {
                    Output::Raw => Tensor::F64 { data: d, cols: k },
                    Output::Contrib => return Err(Error::param("contributions need a tree model")),
                    Output::Predict => match task {
                        Task::Scores => Tensor::F64 { data: d, cols: k },
                        Task::Classes { labels, .. } => {
                            let idx: Vec<usize> = if k == 1 {
                                d.iter().map(|&v| usize::from(v > 0.0)).collect()
                            } else {
                                argmax_rows(&d, k, n)
                            };
                            labels.pick(&idx)
                        }
                    },
                    Output::PredictProba => {
                        if k == 1 {
                            let data = d
                                .iter()
                                .flat_map(|&v| {
                                    let p1 = 1.0 / (1.0 + (-v).exp());
                                    [1.0 - p1, p1]
                                })
                                .collect();
                            Tensor::F64 { data, cols: 2 }
                        } else {
                            let mut data = d;
                            for row in data.chunks_mut(k) {
                                let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                                let mut sum = 0.0;
                                for v in row.iter_mut() {
                                    *v = (*v - mx).exp();
                                    sum += *v;
                                }
                                for v in row.iter_mut() {
                                    *v /= sum;
                                }
                            }
                            Tensor::F64 { data, cols: k }
                        }
                    }
                })
            }
        }
    }
}

/// A matrix's values as a row-major float64 buffer.
fn row_major(d: &DenseMatrix<'_>) -> Vec<f64> {
    let (r, c) = d.dim();
    let mut out = Vec::with_capacity(r * c);
    match d {
        DenseMatrix::F32(a) => out.extend(a.rows().into_iter().flat_map(|row| row.into_iter().map(|&v| v as f64))),
        DenseMatrix::F64(a) => out.extend(a.rows().into_iter().flat_map(|row| row.into_iter().copied())),
    }
    out
}

/// The first largest entry of each row (numpy's argmax).
fn argmax_rows(values: &[f64], k: usize, n: usize) -> Vec<usize> {
    (0..n)
        .map(|i| {
            let row = &values[i * k..(i + 1) * k];
            let mut best = 0;
            for c in 1..k {
                if row[c] > row[best] {
                    best = c;
                }
            }
            best
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::apply::Affine;
    use crate::transform::encode::{fit_categories, onehot_layout, OneHotOptions};
    use arrow_array::{ArrayRef, Float64Array, StringArray};
    use arrow_schema::Field;

    fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = cols.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols.into_iter().map(|c| c.1).collect()).unwrap()
    }

    /// city (string) one-hot, x (float) scaled, then a linear model.
    fn deployable() -> Deployable {
        let train = batch(vec![
            ("city", Arc::new(StringArray::from(vec!["b", "a", "b"])) as ArrayRef),
            ("x", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])) as ArrayRef),
        ]);
        let frame = Frame::from_arrow(&[train.clone()], &train.schema(), &[FeatureRef::Index(0)]).unwrap();
        let schema = InputSchema::infer(&frame, &[ColumnType::String, ColumnType::Float]).unwrap();
        let city = Frame { names: vec!["city".into()], columns: vec![frame.columns[0].clone()], n_rows: 3 };
        let categories = fit_categories(&city, 1).unwrap();
        let opt = OneHotOptions { min_frequency: None, max_categories: None, drop: None, infrequent_if_exist: false };
        let layout = onehot_layout(&categories, &opt).unwrap();
        let steps = vec![Transform::Columns {
            parts: vec![
                Part {
                    columns: vec![0],
                    transform: Some(Transform::OneHot { categories, layout, error_on_unknown: true, index: Vec::new() }),
                },
                Part {
                    columns: vec![1],
                    transform: Some(Transform::Numeric(Step::Affine(Affine {
                        sub: vec![2.0],
                        div: vec![1.0],
                        mul: vec![1.0],
                        add: vec![0.0],
                        clip: None,
                    }))),
                },
            ],
            n_inputs: 2,
        }];
        let model = LinearModel {
            coef: vec![10.0, 20.0, 1.0],
            intercept: vec![0.5],
            n_features: 3,
            n_outputs: 1,
            classes: vec![],
            kind: "Ridge".into(),
            meta: String::new(),
        };
        Deployable::build(schema, steps, FinalModel::Linear { model, task: Task::Scores }, None, String::new()).unwrap()
    }

    #[test]
    fn strings_in_predictions_out_in_any_column_order() {
        let d = deployable();
        assert_eq!(d.schema().columns[0].categories, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!((d.schema().columns[1].min, d.schema().columns[1].max), (Some(1.0), Some(3.0)));
        assert!(!d.schema().columns[0].nullable && !d.schema().columns[1].nullable);
        let req = batch(vec![
            ("x", Arc::new(Float64Array::from(vec![4.0, 2.0])) as ArrayRef),
            ("city", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
        ]);
        let out = d.predict_arrow(&[req.clone()], &req.schema(), Output::Predict, 1).unwrap();
        assert_eq!(out, Tensor::F64 { data: vec![10.0 + 2.0 + 0.5, 20.0 + 0.0 + 0.5], cols: 1 });
        // Round trip through the artifact.
        let again = Deployable::from_artifact(&d.to_artifact().unwrap()).unwrap();
        assert_eq!(again.predict_arrow(&[req.clone()], &req.schema(), Output::Predict, 1).unwrap(), out);
        // One row alone gives that row's prediction.
        let one = req.slice(1, 1);
        assert_eq!(
            d.predict_arrow(&[one.clone()], &one.schema(), Output::Raw, 1).unwrap(),
            Tensor::F64 { data: vec![20.5], cols: 1 }
        );
    }

    #[test]
    fn bad_requests_name_the_column() {
        let d = deployable();
        let err = |b: RecordBatch| d.predict_arrow(&[b.clone()], &b.schema(), Output::Predict, 1).unwrap_err().to_string();
        let e = err(batch(vec![("x", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef)]));
        assert!(e.contains("missing column 'city'"), "{e}");
        let e = err(batch(vec![
            ("x", Arc::new(StringArray::from(vec!["1"])) as ArrayRef),
            ("city", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
        ]));
        assert!(e.contains("column 'x' expects float values"), "{e}");
        let e = err(batch(vec![
            ("x", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef),
            ("city", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
            ("extra", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef),
        ]));
        assert!(e.contains("column 'extra' is not an input"), "{e}");
        let e = err(batch(vec![
            ("x", Arc::new(Float64Array::from(vec![Some(1.0), None])) as ArrayRef),
            ("city", Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef),
        ]));
        assert!(e.contains("column 'x' has a missing value") && e.contains("row 1"), "{e}");
        let e = err(batch(vec![
            ("x", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef),
            ("city", Arc::new(StringArray::from(vec!["zzz"])) as ArrayRef),
        ]));
        assert!(e.contains("'zzz'") && e.contains("'city'"), "{e}");
        assert!(d.predict_arrow(&[], &Schema::empty(), Output::Contrib, 1).is_err());
    }

    #[test]
    fn a_changed_byte_fails_verification() {
        let mut bytes = deployable().to_artifact().unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 1;
        assert!(matches!(Deployable::from_artifact(&bytes), Err(Error::Integrity(_))));
    }
}
