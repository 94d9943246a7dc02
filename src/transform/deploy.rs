//! The deployable model (interface the server uses). Minimal form: a bare booster artifact.

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use serde::{Deserialize, Serialize};

use crate::data::frame::{DenseMatrix, Frame};
use crate::error::{Error, Result};
use crate::gbdt::boosting::Model;
use crate::predict::Forest;

/// What one input column holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ColumnType {
    /// Floating point.
    Float,
    /// Whole numbers.
    Integer,
    /// True/false.
    Bool,
    /// Text.
    String,
}

/// One input column of the schema.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// Name.
    pub name: String,
    /// Type.
    pub dtype: ColumnType,
    /// Known categories.
    pub categories: Option<Vec<String>>,
    /// Training minimum.
    pub min: Option<f64>,
    /// Training maximum.
    pub max: Option<f64>,
    /// Missing values allowed.
    pub nullable: bool,
}

/// The columns a model reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InputSchema {
    /// In order.
    pub columns: Vec<ColumnSpec>,
}

/// What to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Predictions.
    Predict,
    /// Class probabilities.
    PredictProba,
    /// Raw scores.
    Raw,
    /// SHAP contributions.
    Contrib,
}

/// One output a model offers.
#[derive(Clone, Debug)]
pub struct OutputSpec {
    /// Name.
    pub name: &'static str,
    /// OIP datatype.
    pub datatype: &'static str,
    /// Columns per row.
    pub width: usize,
}

/// Row-major values.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    /// Floats.
    F64 { data: Vec<f64>, cols: usize },
    /// Integers.
    I64 { data: Vec<i64>, cols: usize },
    /// Strings.
    Bytes { data: Vec<String>, cols: usize },
}

/// A model ready to serve.
#[derive(Clone, Debug)]
pub struct Deployable {
    model: Model,
    forest: Forest,
    schema: InputSchema,
}

impl Deployable {
    /// Verifies and parses an artifact.
    pub fn from_artifact(bytes: &[u8]) -> Result<Deployable> {
        let model: Model = crate::artifact::decode(bytes, "booster")?;
        let forest = Forest::from_model(&model);
        let columns = model
            .feature_names
            .iter()
            .map(|n| ColumnSpec { name: n.clone(), dtype: ColumnType::Float, categories: None, min: None, max: None, nullable: true })
            .collect();
        Ok(Deployable { model, forest, schema: InputSchema { columns } })
    }

    /// The schema.
    pub fn schema(&self) -> &InputSchema {
        &self.schema
    }

    /// Outputs offered.
    pub fn outputs(&self) -> Vec<OutputSpec> {
        let k = self.forest.num_scores;
        vec![
            OutputSpec { name: "predict", datatype: "FP64", width: k },
            OutputSpec { name: "raw", datatype: "FP64", width: k },
            OutputSpec { name: "contrib", datatype: "FP64", width: k * (self.forest.num_features() + 1) },
        ]
    }

    /// No profile in this form.
    pub fn reference_profile(&self) -> Option<&crate::drift::profile::ReferenceProfile> {
        None
    }

    fn run(&self, frame: &Frame<'_>, output: Output, n_threads: i64) -> Result<Tensor> {
        let n = self.model.trees_for(None);
        let k = self.forest.num_scores;
        let (data, cols) = match output {
            Output::Predict => (self.forest.predict(frame, n, false, n_threads)?, k),
            Output::Raw => (self.forest.predict(frame, n, true, n_threads)?, k),
            Output::Contrib => (self.forest.predict_contrib(frame, n, n_threads)?, k * (self.forest.num_features() + 1)),
            Output::PredictProba => return Err(Error::data("this model has no predict_proba output")),
        };
        Ok(Tensor::F64 { data, cols })
    }

    /// Named columns.
    pub fn predict_arrow(&self, batches: &[RecordBatch], schema: &Schema, output: Output, n_threads: i64) -> Result<Tensor> {
        let frame = Frame::from_arrow(batches, schema, &[])?;
        self.run(&frame, output, n_threads)
    }

    /// A matrix in schema order.
    pub fn predict_dense(&self, x: &DenseMatrix<'_>, output: Output, n_threads: i64) -> Result<Tensor> {
        let names = self.schema.columns.iter().map(|c| c.name.clone()).collect();
        let frame = Frame::from_dense(*x, Some(names), &[])?;
        self.run(&frame, output, n_threads)
    }
}
