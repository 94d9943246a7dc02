//! Protocol-neutral tensors of the Open Inference Protocol: what REST and gRPC requests are parsed
//! into, how they become the model's input (a matrix or named Arrow columns), and the binary layout
//! of the binary tensor data extension (shared by REST binary data and gRPC raw contents).

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use super::ServeError;
use crate::transform::pipeline::{Output, Tensor};

/// Element types of the protocol that ferrox reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// BOOL
    Bool,
    /// UINT8..UINT64
    U8,
    U16,
    U32,
    U64,
    /// INT8..INT64
    I8,
    I16,
    I32,
    I64,
    /// FP32
    F32,
    /// FP64
    F64,
    /// BYTES
    Bytes,
}

impl DType {
    /// Parses a protocol datatype name.
    pub fn parse(s: &str, input: &str) -> Result<DType, ServeError> {
        Ok(match s {
            "BOOL" => DType::Bool,
            "UINT8" => DType::U8,
            "UINT16" => DType::U16,
            "UINT32" => DType::U32,
            "UINT64" => DType::U64,
            "INT8" => DType::I8,
            "INT16" => DType::I16,
            "INT32" => DType::I32,
            "INT64" => DType::I64,
            "FP32" => DType::F32,
            "FP64" => DType::F64,
            "BYTES" => DType::Bytes,
            "FP16" | "BF16" => {
                return Err(ServeError::bad(format!("input '{input}': datatype {s} is not supported; send FP32 or FP64")))
            }
            other => return Err(ServeError::bad(format!("input '{input}': unknown datatype {other:?}"))),
        })
    }

    /// Bytes per element in the binary layout (None for BYTES).
    pub fn size(self) -> Option<usize> {
        Some(match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
            DType::Bytes => return None,
        })
    }
}

/// The values of one input tensor, widened to the types the model reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// BOOL
    Bool(Vec<bool>),
    /// Every integer type.
    I64(Vec<i64>),
    /// FP32
    F32(Vec<f32>),
    /// FP64
    F64(Vec<f64>),
    /// BYTES
    Bytes(Vec<Vec<u8>>),
}

impl Data {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::Bool(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::Bytes(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn append(&mut self, other: Data) -> bool {
        match (self, other) {
            (Data::Bool(a), Data::Bool(b)) => a.extend(b),
            (Data::I64(a), Data::I64(b)) => a.extend(b),
            (Data::F32(a), Data::F32(b)) => a.extend(b),
            (Data::F64(a), Data::F64(b)) => a.extend(b),
            (Data::Bytes(a), Data::Bytes(b)) => a.extend(b),
            _ => return false,
        }
        true
    }
}

/// One input tensor of a request.
#[derive(Clone, Debug, PartialEq)]
pub struct InputTensor {
    /// Its name (a column of the model's schema, or any name for a whole matrix).
    pub name: String,
    /// Declared type.
    pub dtype: DType,
    /// Declared shape.
    pub shape: Vec<i64>,
    /// Values, row-major.
    pub data: Data,
}

/// One output a request asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestedOutput {
    /// "predict", "predict_proba", "raw" or "contrib".
    pub name: String,
    /// Answer this output in the binary layout (REST binary extension).
    pub binary: bool,
}

/// A parsed inference request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InferRequest {
    /// The client's id, echoed back.
    pub id: Option<String>,
    /// Inputs.
    pub inputs: Vec<InputTensor>,
    /// Requested outputs (empty: the model's default, `predict`).
    pub outputs: Vec<RequestedOutput>,
    /// SHAP contributions asked for through `parameters` (`"contrib": true`).
    pub contrib: bool,
    /// Binary outputs asked for through `binary_data_output`.
    pub binary_output: bool,
    /// The request's own deadline, microseconds (`timeout` parameter).
    pub timeout_us: Option<u64>,
    /// Other string and integer parameters, and the `x-ferrox-unit` / `x-ferrox-variant` headers
    /// (experiments read the unit key and a forced variant here).
    pub params: Vec<(String, String)>,
}

impl InferRequest {
    /// A parameter's value by name.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// One computed output.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputTensor {
    /// Its name.
    pub name: String,
    /// Values.
    pub tensor: Tensor,
    /// Rows.
    pub rows: usize,
    /// Whether to answer in the binary layout.
    pub binary: bool,
}

impl OutputTensor {
    /// Protocol datatype.
    pub fn datatype(&self) -> &'static str {
        match self.tensor {
            Tensor::F64 { .. } => "FP64",
            Tensor::I64 { .. } => "INT64",
            Tensor::Bytes { .. } => "BYTES",
        }
    }

    /// Protocol shape: [rows] for one value per row, [rows, width] otherwise.
    pub fn shape(&self) -> Vec<i64> {
        let cols = match &self.tensor {
            Tensor::F64 { cols, .. } | Tensor::I64 { cols, .. } | Tensor::Bytes { cols, .. } => *cols,
        };
        if cols == 1 {
            vec![self.rows as i64]
        } else {
            vec![self.rows as i64, cols as i64]
        }
    }

    /// The values in the binary layout (little-endian; BYTES as 4-byte length + bytes).
    pub fn to_binary(&self) -> Vec<u8> {
        match &self.tensor {
            Tensor::F64 { data, .. } => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Tensor::I64 { data, .. } => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Tensor::Bytes { data, .. } => {
                let mut out = Vec::with_capacity(data.iter().map(|s| s.len() + 4).sum());
                for s in data {
                    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                out
            }
        }
    }
}

/// Number of elements a shape holds, refusing negative or overflowing dimensions.
pub fn elements(shape: &[i64], input: &str) -> Result<usize, ServeError> {
    let mut n: usize = 1;
    for &d in shape {
        if d < 0 {
            return Err(ServeError::bad(format!("input '{input}': shape {shape:?} has a negative dimension")));
        }
        n = n
            .checked_mul(d as usize)
            .filter(|&n| n <= 1 << 34)
            .ok_or_else(|| ServeError::bad(format!("input '{input}': shape {shape:?} is too large")))?;
    }
    Ok(n)
}

/// Decodes the binary layout of one tensor.
pub fn from_binary(bytes: &[u8], dtype: DType, count: usize, input: &str) -> Result<Data, ServeError> {
    let wrong = |got: usize, want: usize| {
        ServeError::bad(format!(
            "input '{input}': its binary data has {got} bytes but its shape and datatype need {want}"
        ))
    };
    if let Some(size) = dtype.size() {
        let want = count.checked_mul(size).ok_or_else(|| wrong(bytes.len(), usize::MAX))?;
        if bytes.len() != want {
            return Err(wrong(bytes.len(), want));
        }
    }
    macro_rules! ints {
        ($t:ty, $n:expr) => {
            Data::I64(bytes.chunks_exact($n).map(|c| <$t>::from_le_bytes(c.try_into().unwrap()) as i64).collect())
        };
    }
    Ok(match dtype {
        DType::Bool => Data::Bool(bytes.iter().map(|&b| b != 0).collect()),
        DType::U8 => Data::I64(bytes.iter().map(|&b| b as i64).collect()),
        DType::I8 => Data::I64(bytes.iter().map(|&b| b as i8 as i64).collect()),
        DType::U16 => ints!(u16, 2),
        DType::I16 => ints!(i16, 2),
        DType::U32 => ints!(u32, 4),
        DType::I32 => ints!(i32, 4),
        DType::I64 => ints!(i64, 8),
        DType::U64 => {
            let mut v = Vec::with_capacity(count);
            for c in bytes.chunks_exact(8) {
                let x = u64::from_le_bytes(c.try_into().unwrap());
                v.push(i64::try_from(x).map_err(|_| {
                    ServeError::bad(format!("input '{input}': UINT64 value {x} does not fit a 64-bit signed integer"))
                })?);
            }
            Data::I64(v)
        }
        DType::F32 => Data::F32(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()),
        DType::F64 => Data::F64(bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()),
        DType::Bytes => {
            let mut out = Vec::with_capacity(count);
            let mut at = 0usize;
            while at < bytes.len() {
                let len = bytes
                    .get(at..at + 4)
                    .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
                    .ok_or_else(|| ServeError::bad(format!("input '{input}': BYTES data ends inside a length prefix")))?;
                at += 4;
                let s = bytes
                    .get(at..at + len)
                    .ok_or_else(|| ServeError::bad(format!("input '{input}': BYTES element longer than the data")))?;
                out.push(s.to_vec());
                at += len;
                if out.len() > count {
                    break;
                }
            }
            if out.len() != count {
                return Err(ServeError::bad(format!(
                    "input '{input}': its BYTES data holds {} elements but its shape needs {count}",
                    out.len()
                )));
            }
            Data::Bytes(out)
        }
    })
}

/// The model input a request describes.
#[derive(Clone, Debug)]
pub enum ModelInput {
    /// One numeric matrix whose columns are the schema's, in order.
    Matrix { data: Data, rows: usize, cols: usize },
    /// Named columns.
    Columns { batch: RecordBatch },
}

impl ModelInput {
    /// Whether two inputs can be concatenated (same matrix width and type, or the same columns).
    pub fn same_layout(&self, other: &ModelInput) -> bool {
        match (self, other) {
            (ModelInput::Matrix { data: a, cols: x, .. }, ModelInput::Matrix { data: b, cols: y, .. }) => {
                x == y && std::mem::discriminant(a) == std::mem::discriminant(b)
            }
            (ModelInput::Columns { batch: a }, ModelInput::Columns { batch: b }) => a.schema() == b.schema(),
            _ => false,
        }
    }

    /// An empty input of the same layout (for comparing layouts without holding the data).
    pub fn clone_layout(&self) -> ModelInput {
        match self {
            ModelInput::Matrix { data, cols, .. } => {
                let empty = match data {
                    Data::Bool(_) => Data::Bool(vec![]),
                    Data::I64(_) => Data::I64(vec![]),
                    Data::F32(_) => Data::F32(vec![]),
                    Data::F64(_) => Data::F64(vec![]),
                    Data::Bytes(_) => Data::Bytes(vec![]),
                };
                ModelInput::Matrix { data: empty, rows: 0, cols: *cols }
            }
            ModelInput::Columns { batch } => ModelInput::Columns { batch: batch.slice(0, 0) },
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        match self {
            ModelInput::Matrix { rows, .. } => *rows,
            ModelInput::Columns { batch } => batch.num_rows(),
        }
    }
}

/// Checks a request's inputs against the model's columns and builds the model input: one numeric
/// input of shape [rows, n_columns] is a matrix in schema order (any name), otherwise every input is
/// a column named as in the schema, of shape [rows] or [rows, 1].
pub fn model_input(inputs: Vec<InputTensor>, columns: &[String]) -> Result<ModelInput, ServeError> {
    if inputs.is_empty() {
        return Err(ServeError::bad("the request has no inputs"));
    }
    for t in &inputs {
        let n = elements(&t.shape, &t.name)?;
        if n != t.data.len() {
            return Err(ServeError::bad(format!(
                "input '{}': shape {:?} needs {n} values but {} were given",
                t.name,
                t.shape,
                t.data.len()
            )));
        }
    }
    if inputs.len() == 1 && inputs[0].shape.len() == 2 && !matches!(inputs[0].data, Data::Bytes(_)) {
        let t = &inputs[0];
        let cols = t.shape[1] as usize;
        let is_column = columns.iter().any(|c| *c == t.name) && cols == 1;
        if !is_column || columns.len() == 1 {
            if cols != columns.len() {
                return Err(ServeError::bad(format!(
                    "input '{}': a matrix input needs {} columns (the model's inputs {}), got shape {:?}",
                    t.name,
                    columns.len(),
                    preview(columns),
                    t.shape
                )));
            }
            let t = inputs.into_iter().next().unwrap();
            // Every matrix is read as float64: exact for FP32 (so predictions do not change) and the
            // forest's fastest layout.
            let data = match t.data {
                Data::Bool(v) => Data::F64(v.into_iter().map(|b| b as u8 as f64).collect()),
                Data::I64(v) => Data::F64(v.into_iter().map(|x| x as f64).collect()),
                Data::F32(v) => Data::F64(v.into_iter().map(f64::from).collect()),
                d => d,
            };
            return Ok(ModelInput::Matrix { data, rows: t.shape[0] as usize, cols });
        }
    }
    let mut rows: Option<usize> = None;
    let mut fields = Vec::with_capacity(inputs.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(inputs.len());
    for t in inputs {
        if !columns.iter().any(|c| *c == t.name) {
            return Err(ServeError::bad(format!(
                "input '{}' is not an input of this model; its inputs are {}",
                t.name,
                preview(columns)
            )));
        }
        let n = match t.shape.as_slice() {
            [n] => *n as usize,
            [n, 1] => *n as usize,
            s => {
                return Err(ServeError::bad(format!(
                    "input '{}': a column input has shape [rows] or [rows, 1], got {s:?}",
                    t.name
                )))
            }
        };
        if let Some(r) = rows {
            if r != n {
                return Err(ServeError::bad(format!("input '{}' has {n} rows but the other inputs have {r}", t.name)));
            }
        }
        rows = Some(n);
        let (dt, arr): (DataType, ArrayRef) = match t.data {
            Data::Bool(v) => (DataType::Boolean, Arc::new(BooleanArray::from(v))),
            Data::I64(v) => (DataType::Int64, Arc::new(Int64Array::from(v))),
            Data::F32(v) => (DataType::Float32, Arc::new(Float32Array::from(v))),
            Data::F64(v) => (DataType::Float64, Arc::new(Float64Array::from(v))),
            Data::Bytes(v) => {
                let mut strs = Vec::with_capacity(v.len());
                for (i, b) in v.iter().enumerate() {
                    strs.push(std::str::from_utf8(b).map_err(|_| {
                        ServeError::bad(format!("input '{}': element {i} is not valid UTF-8", t.name))
                    })?);
                }
                (DataType::Utf8, Arc::new(StringArray::from(strs)))
            }
        };
        if fields.iter().any(|f: &Field| f.name() == &t.name) {
            return Err(ServeError::bad(format!("input '{}' is given twice", t.name)));
        }
        fields.push(Field::new(t.name, dt, false));
        arrays.push(arr);
    }
    let missing: Vec<&String> = columns.iter().filter(|c| !fields.iter().any(|f| f.name() == *c)).collect();
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|s| s.to_string()).collect();
        return Err(ServeError::bad(format!("the request lacks the model's input(s) {}", preview(&names))));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| ServeError::bad(format!("inputs do not form a table: {e}")))?;
    Ok(ModelInput::Columns { batch })
}

fn preview(names: &[String]) -> String {
    crate::data::frame::preview(names)
}

/// The output kind a requested output name asks for.
pub fn output_kind(name: &str) -> Result<Output, ServeError> {
    Ok(match name {
        "predict" | "output-0" | "output_0" => Output::Predict,
        "predict_proba" => Output::PredictProba,
        "raw" | "raw_score" | "decision_function" => Output::Raw,
        "contrib" | "shap" => Output::Contrib,
        other => {
            return Err(ServeError::bad(format!(
                "unknown output {other:?}; outputs are predict, predict_proba, raw and contrib"
            )))
        }
    })
}

/// Concatenates model inputs of the same layout (dynamic batching); None when they differ.
pub fn concat(parts: Vec<ModelInput>) -> Option<ModelInput> {
    let mut it = parts.into_iter();
    let first = it.next()?;
    match first {
        ModelInput::Matrix { mut data, mut rows, cols } => {
            for p in it {
                match p {
                    ModelInput::Matrix { data: d, rows: r, cols: c } if c == cols => {
                        if !data.append(d) {
                            return None;
                        }
                        rows += r;
                    }
                    _ => return None,
                }
            }
            Some(ModelInput::Matrix { data, rows, cols })
        }
        ModelInput::Columns { batch } => {
            let schema = batch.schema();
            let mut all = vec![batch];
            for p in it {
                match p {
                    ModelInput::Columns { batch } if batch.schema() == schema => all.push(batch),
                    _ => return None,
                }
            }
            arrow_select_concat(&schema, &all)
        }
    }
}

fn arrow_select_concat(schema: &Arc<Schema>, batches: &[RecordBatch]) -> Option<ModelInput> {
    // Column by column: values of equal Arrow type appended in order.
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for j in 0..schema.fields().len() {
        let cols: Vec<&ArrayRef> = batches.iter().map(|b| b.column(j)).collect();
        let a: ArrayRef = match schema.field(j).data_type() {
            DataType::Boolean => Arc::new(cols.iter().flat_map(|c| c.as_any().downcast_ref::<BooleanArray>().unwrap().iter()).collect::<BooleanArray>()),
            DataType::Int64 => Arc::new(cols.iter().flat_map(|c| c.as_any().downcast_ref::<Int64Array>().unwrap().iter()).collect::<Int64Array>()),
            DataType::Float32 => Arc::new(cols.iter().flat_map(|c| c.as_any().downcast_ref::<Float32Array>().unwrap().iter()).collect::<Float32Array>()),
            DataType::Float64 => Arc::new(cols.iter().flat_map(|c| c.as_any().downcast_ref::<Float64Array>().unwrap().iter()).collect::<Float64Array>()),
            DataType::Utf8 => Arc::new(cols.iter().flat_map(|c| c.as_any().downcast_ref::<StringArray>().unwrap().iter()).collect::<StringArray>()),
            _ => return None,
        };
        arrays.push(a);
    }
    RecordBatch::try_new(schema.clone(), arrays).ok().map(|batch| ModelInput::Columns { batch })
}

/// Rows `r0..r1` of a model output.
pub fn slice_rows(t: &Tensor, r0: usize, r1: usize) -> Tensor {
    match t {
        Tensor::F64 { data, cols } => Tensor::F64 { data: data[r0 * cols..r1 * cols].to_vec(), cols: *cols },
        Tensor::I64 { data, cols } => Tensor::I64 { data: data[r0 * cols..r1 * cols].to_vec(), cols: *cols },
        Tensor::Bytes { data, cols } => Tensor::Bytes { data: data[r0 * cols..r1 * cols].to_vec(), cols: *cols },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("f{i}")).collect()
    }

    #[test]
    fn matrix_and_columns() {
        let m = InputTensor { name: "input-0".into(), dtype: DType::F32, shape: vec![2, 3], data: Data::F32(vec![0.0; 6]) };
        match model_input(vec![m], &names(3)).unwrap() {
            ModelInput::Matrix { rows, cols, .. } => assert_eq!((rows, cols), (2, 3)),
            _ => panic!("expected a matrix"),
        }
        let bad = InputTensor { name: "x".into(), dtype: DType::F32, shape: vec![2, 2], data: Data::F32(vec![0.0; 4]) };
        let e = model_input(vec![bad], &names(3)).err().unwrap();
        assert!(e.message.contains("needs 3 columns"), "{}", e.message);
        let cols = vec![
            InputTensor { name: "f0".into(), dtype: DType::F64, shape: vec![2], data: Data::F64(vec![1.0, 2.0]) },
            InputTensor { name: "f1".into(), dtype: DType::Bytes, shape: vec![2, 1], data: Data::Bytes(vec![b"a".to_vec(), b"b".to_vec()]) },
        ];
        let e = model_input(cols.clone(), &names(3)).err().unwrap();
        assert!(e.message.contains("f2"), "{}", e.message);
        match model_input(cols, &names(2)).unwrap() {
            ModelInput::Columns { batch } => assert_eq!(batch.num_rows(), 2),
            _ => panic!("expected columns"),
        }
        let short = InputTensor { name: "f0".into(), dtype: DType::F64, shape: vec![3], data: Data::F64(vec![1.0]) };
        assert!(model_input(vec![short], &names(1)).is_err());
    }

    #[test]
    fn binary_layout() {
        let d = from_binary(&[1, 0, 0, 0, b'x', 2, 0, 0, 0, b'y', b'z'], DType::Bytes, 2, "s").unwrap();
        assert_eq!(d, Data::Bytes(vec![b"x".to_vec(), b"yz".to_vec()]));
        assert!(from_binary(&[9, 0, 0, 0, b'x'], DType::Bytes, 1, "s").is_err());
        assert!(from_binary(&[1, 0, 0], DType::F32, 1, "s").is_err());
        let f = from_binary(&1.5f32.to_le_bytes(), DType::F32, 1, "s").unwrap();
        assert_eq!(f, Data::F32(vec![1.5]));
        assert!(from_binary(&u64::MAX.to_le_bytes(), DType::U64, 1, "s").is_err());
        let out = OutputTensor { name: "predict".into(), tensor: Tensor::Bytes { data: vec!["ab".into()], cols: 1 }, rows: 1, binary: true };
        assert_eq!(out.to_binary(), vec![2, 0, 0, 0, b'a', b'b']);
        assert!(elements(&[-1, 2], "x").is_err());
        assert!(elements(&[1 << 40, 1 << 40], "x").is_err());
    }
}
