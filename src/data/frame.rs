//! Column sources: what binning reads. Numeric columns are borrowed where the layout allows (a strided
//! view into a numpy matrix of either order, or Arrow float buffers); categorical columns are turned
//! into dense integer codes against a per-column key table, so that the same category value maps to the
//! same bin whatever container it came from.

use std::collections::HashMap;

use arrow_array::{Array, Float32Array, Float64Array};
use ndarray::{ArrayView1, ArrayView2, Axis};

use super::binning::CatKey;
use crate::error::{Error, Result};

/// A borrowed 2-D float matrix (numpy, either memory order, any strides).
#[derive(Clone, Copy, Debug)]
pub enum DenseMatrix<'a> {
    /// 32-bit floats.
    F32(ArrayView2<'a, f32>),
    /// 64-bit floats.
    F64(ArrayView2<'a, f64>),
}

impl DenseMatrix<'_> {
    /// (rows, columns).
    pub fn dim(&self) -> (usize, usize) {
        match self {
            DenseMatrix::F32(m) => m.dim(),
            DenseMatrix::F64(m) => m.dim(),
        }
    }
}

/// One Arrow float chunk (zero-copy; nulls come from its validity bitmap).
#[derive(Clone, Debug)]
pub enum FloatChunk {
    /// Float32 values.
    F32(Float32Array),
    /// Float64 values.
    F64(Float64Array),
}

impl FloatChunk {
    fn len(&self) -> usize {
        match self {
            FloatChunk::F32(a) => a.len(),
            FloatChunk::F64(a) => a.len(),
        }
    }

    /// The value at `i` as f64, NaN where null.
    #[inline]
    fn get(&self, i: usize) -> f64 {
        match self {
            FloatChunk::F32(a) => {
                if a.is_null(i) {
                    f64::NAN
                } else {
                    a.value(i) as f64
                }
            }
            FloatChunk::F64(a) => {
                if a.is_null(i) {
                    f64::NAN
                } else {
                    a.value(i)
                }
            }
        }
    }

    /// Copies rows `from..from + out.len()` of this chunk into `out` as f64 (NaN where null).
    fn read(&self, from: usize, out: &mut [f64]) {
        macro_rules! copy {
            ($a:expr) => {{
                let vals = &$a.values()[from..from + out.len()];
                for (o, &v) in out.iter_mut().zip(vals) {
                    *o = v as f64;
                }
                if let Some(nulls) = $a.nulls() {
                    if nulls.null_count() > 0 {
                        for (k, o) in out.iter_mut().enumerate() {
                            if nulls.is_null(from + k) {
                                *o = f64::NAN;
                            }
                        }
                    }
                }
            }};
        }
        match self {
            FloatChunk::F32(a) => copy!(a),
            FloatChunk::F64(a) => copy!(a),
        }
    }
}

/// A numeric column: where its values live.
#[derive(Clone, Debug)]
pub enum NumericSource<'a> {
    /// A column of a numpy f32 matrix (strided view, no copy).
    Dense32(ArrayView1<'a, f32>),
    /// A column of a numpy f64 matrix (strided view, no copy).
    Dense64(ArrayView1<'a, f64>),
    /// Arrow chunks, in row order; `starts[k]` is the first row of `chunks[k]`.
    Chunks { chunks: Vec<FloatChunk>, starts: Vec<usize> },
}

impl NumericSource<'_> {
    /// Builds a chunked source from chunks in row order.
    pub fn from_chunks(chunks: Vec<FloatChunk>) -> Self {
        let mut starts = Vec::with_capacity(chunks.len());
        let mut at = 0;
        for c in &chunks {
            starts.push(at);
            at += c.len();
        }
        NumericSource::Chunks { chunks, starts }
    }

    /// Fills `out` with rows `row0..row0 + out.len()` as f64; missing values become NaN.
    pub fn read(&self, row0: usize, out: &mut [f64]) {
        match self {
            NumericSource::Dense32(v) => {
                let n = out.len();
                for (o, &x) in out.iter_mut().zip(v.slice(ndarray::s![row0..row0 + n])) {
                    *o = x as f64;
                }
            }
            NumericSource::Dense64(v) => {
                let n = out.len();
                for (o, &x) in out.iter_mut().zip(v.slice(ndarray::s![row0..row0 + n])) {
                    *o = x;
                }
            }
            NumericSource::Chunks { chunks, starts } => {
                let end = row0 + out.len();
                let mut k = starts.partition_point(|&s| s <= row0).saturating_sub(1);
                let mut row = row0;
                while row < end {
                    let c = &chunks[k];
                    let local = row - starts[k];
                    let take = (c.len() - local).min(end - row);
                    c.read(local, &mut out[row - row0..row - row0 + take]);
                    row += take;
                    k += 1;
                }
            }
        }
    }

    /// Appends the non-missing values at `rows` (ascending) to `out`.
    pub fn gather_present(&self, rows: &[usize], out: &mut Vec<f64>) {
        match self {
            NumericSource::Dense32(v) => {
                out.extend(rows.iter().map(|&r| v[r] as f64).filter(|x| !x.is_nan()))
            }
            NumericSource::Dense64(v) => out.extend(rows.iter().map(|&r| v[r]).filter(|x| !x.is_nan())),
            NumericSource::Chunks { chunks, starts } => {
                let mut k = 0;
                for &r in rows {
                    while k + 1 < chunks.len() && starts[k + 1] <= r {
                        k += 1;
                    }
                    let x = chunks[k].get(r - starts[k]);
                    if !x.is_nan() {
                        out.push(x);
                    }
                }
            }
        }
    }
}

/// A categorical column as dense codes into `keys`; -1 marks a missing value.
#[derive(Clone, Debug, Default)]
pub struct CategoricalSource {
    /// The distinct category values, in order of first appearance.
    pub keys: Vec<CatKey>,
    /// One code per row: an index into `keys`, or -1 for missing.
    pub codes: Vec<i32>,
}

/// Interns category values into dense codes.
#[derive(Default)]
pub struct KeyInterner {
    ints: HashMap<i64, i32>,
    strs: HashMap<String, i32>,
    keys: Vec<CatKey>,
}

impl KeyInterner {
    /// The code of an integer category, adding it if new.
    pub fn int(&mut self, v: i64) -> i32 {
        let keys = &mut self.keys;
        *self.ints.entry(v).or_insert_with(|| {
            keys.push(CatKey::Int(v));
            (keys.len() - 1) as i32
        })
    }
    /// The code of a string category, adding it if new.
    pub fn str(&mut self, v: &str) -> i32 {
        if let Some(&c) = self.strs.get(v) {
            return c;
        }
        self.keys.push(CatKey::Str(v.to_owned()));
        let c = (self.keys.len() - 1) as i32;
        self.strs.insert(v.to_owned(), c);
        c
    }
    /// The code of any key.
    pub fn key(&mut self, k: &CatKey) -> i32 {
        match k {
            CatKey::Int(v) => self.int(*v),
            CatKey::Str(s) => self.str(s),
        }
    }
    /// The key table, in code order.
    pub fn into_keys(self) -> Vec<CatKey> {
        self.keys
    }
}

/// A float used as a category must be a whole number; NaN is missing.
pub fn float_category(v: f64, column: &str, row: usize) -> Result<Option<i64>> {
    if v.is_nan() {
        return Ok(None);
    }
    if v.fract() != 0.0 || !v.is_finite() || v.abs() > 9.0e15 {
        return Err(Error::data(format!(
            "column '{column}' is categorical but row {row} holds {v}; categorical values must be \
             whole numbers (or strings)"
        )));
    }
    Ok(Some(v as i64))
}

/// One input column.
#[derive(Clone, Debug)]
pub enum ColumnSource<'a> {
    /// Binned by quantiles.
    Numeric(NumericSource<'a>),
    /// Binned by category frequency.
    Categorical(CategoricalSource),
}

/// A column addressed by position or by name, as in `categorical_features`.
#[derive(Clone, Debug, PartialEq)]
pub enum FeatureRef {
    /// A 0-based column position.
    Index(usize),
    /// A column name.
    Name(String),
}

/// The input table binning reads: named columns of equal length.
#[derive(Clone, Debug)]
pub struct Frame<'a> {
    /// Column names, unique.
    pub names: Vec<String>,
    /// The columns, in order.
    pub columns: Vec<ColumnSource<'a>>,
    /// Rows in every column.
    pub n_rows: usize,
}

impl<'a> Frame<'a> {
    /// When every column is a float64 column of one C- or F-contiguous matrix: the matrix's values and
    /// the (row, column) strides of element (r, c) at `values[r * rs + c * cs]`.
    pub fn dense_f64(&self) -> Option<(&'a [f64], usize, usize)> {
        let (n, nf) = (self.n_rows, self.columns.len());
        if n == 0 || nf == 0 {
            return None;
        }
        let mut cols = Vec::with_capacity(nf);
        for c in &self.columns {
            match c {
                ColumnSource::Numeric(NumericSource::Dense64(v)) if v.len() == n => cols.push(v),
                _ => return None,
            }
        }
        let p0 = cols[0].as_ptr();
        let fits = |rs: usize, cs: usize| {
            cols.iter().enumerate().all(|(j, v)| {
                (n == 1 || v.strides()[0] == rs as isize) && std::ptr::eq(v.as_ptr(), p0.wrapping_add(j * cs))
            })
        };
        let (rs, cs) = if fits(nf, 1) {
            (nf, 1)
        } else if fits(1, n) {
            (1, n)
        } else {
            return None;
        };
        // SAFETY: element (r, j) of column j's view sits at p0 + r * rs + j * cs for every r < n and
        // j < nf, and with these strides those addresses are exactly p0 .. p0 + n * nf: every value
        // of the slice belongs to one of the views, which borrow their data for 'a.
        Some((unsafe { std::slice::from_raw_parts(p0, n * nf) }, rs, cs))
    }
}

/// Checks names are unique and resolves `categorical` to sorted column positions.
pub fn resolve_categorical(names: &[String], categorical: &[FeatureRef]) -> Result<Vec<bool>> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        if let Some(j) = seen.insert(n.as_str(), i) {
            return Err(Error::data(format!(
                "duplicate column name '{n}' (columns {j} and {i}); column names must be unique"
            )));
        }
    }
    let mut is_cat = vec![false; names.len()];
    for f in categorical {
        let i = match f {
            FeatureRef::Index(i) if *i < names.len() => *i,
            FeatureRef::Index(i) => {
                return Err(Error::param(format!(
                    "categorical_features names column {i}, but the data has {} columns",
                    names.len()
                )))
            }
            FeatureRef::Name(n) => *seen.get(n.as_str()).ok_or_else(|| {
                Error::param(format!(
                    "categorical_features names column '{n}', which is not in the data (columns: {})",
                    preview(names)
                ))
            })?,
        };
        is_cat[i] = true;
    }
    Ok(is_cat)
}

/// The first few names, for error messages.
pub fn preview(names: &[String]) -> String {
    let mut s = names.iter().take(8).map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
    if names.len() > 8 {
        s.push_str(&format!(", ... ({} in all)", names.len()));
    }
    s
}

/// Default names `Column_0`, `Column_1`, ... as LightGBM gives them.
pub fn default_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("Column_{i}")).collect()
}

impl<'a> Frame<'a> {
    /// A frame over a numpy matrix; no float is copied for numeric columns. Categorical columns
    /// (whole-number floats, NaN = missing) are coded.
    pub fn from_dense(
        matrix: DenseMatrix<'a>,
        names: Option<Vec<String>>,
        categorical: &[FeatureRef],
    ) -> Result<Frame<'a>> {
        let (n_rows, n_cols) = matrix.dim();
        let names = match names {
            Some(n) if n.len() != n_cols => {
                return Err(Error::data(format!(
                    "feature_name has {} names but the data has {n_cols} columns",
                    n.len()
                )))
            }
            Some(n) => n,
            None => default_names(n_cols),
        };
        check_shape(n_rows, n_cols)?;
        let is_cat = resolve_categorical(&names, categorical)?;
        let mut columns = Vec::with_capacity(n_cols);
        for (j, cat) in is_cat.iter().enumerate() {
            let src = match matrix {
                DenseMatrix::F32(m) => NumericSource::Dense32(m.index_axis_move(Axis(1), j)),
                DenseMatrix::F64(m) => NumericSource::Dense64(m.index_axis_move(Axis(1), j)),
            };
            if *cat {
                columns.push(ColumnSource::Categorical(code_numeric(&src, n_rows, &names[j])?));
            } else {
                columns.push(ColumnSource::Numeric(src));
            }
        }
        Ok(Frame { names, columns, n_rows })
    }

    /// Number of columns.
    pub fn n_cols(&self) -> usize {
        self.columns.len()
    }
}

/// Rejects empty data with a message that says which way it is empty.
pub fn check_shape(n_rows: usize, n_cols: usize) -> Result<()> {
    if n_rows == 0 {
        return Err(Error::data("the data has no rows: a Dataset needs at least one"));
    }
    if n_cols == 0 {
        return Err(Error::data("the data has no columns: a Dataset needs at least one feature"));
    }
    Ok(())
}

/// Codes a numeric column as categories (whole numbers; NaN = missing).
pub fn code_numeric(src: &NumericSource<'_>, n_rows: usize, name: &str) -> Result<CategoricalSource> {
    const BLOCK: usize = 4096;
    let mut interner = KeyInterner::default();
    let mut codes = Vec::with_capacity(n_rows);
    let mut buf = vec![0.0; BLOCK];
    let mut row = 0;
    while row < n_rows {
        let len = BLOCK.min(n_rows - row);
        src.read(row, &mut buf[..len]);
        for (k, &v) in buf[..len].iter().enumerate() {
            codes.push(match float_category(v, name, row + k)? {
                Some(i) => interner.int(i),
                None => -1,
            });
        }
        row += len;
    }
    Ok(CategoricalSource { keys: interner.into_keys(), codes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, ShapeBuilder};

    #[test]
    fn dense_views_read_either_order() {
        let c = array![[1.0f32, 2.0], [3.0, 4.0], [5.0, f32::NAN]];
        let mut f = ndarray::Array2::<f32>::zeros((3, 2).f());
        f.assign(&c);
        for m in [c.view(), f.view()] {
            let frame = Frame::from_dense(DenseMatrix::F32(m), None, &[]).unwrap();
            assert_eq!(frame.names, vec!["Column_0", "Column_1"]);
            let ColumnSource::Numeric(col) = &frame.columns[1] else { panic!() };
            let mut out = [0.0; 3];
            col.read(0, &mut out);
            assert_eq!(&out[..2], &[2.0, 4.0]);
            assert!(out[2].is_nan());
            let mut present = vec![];
            col.gather_present(&[0, 2], &mut present);
            assert_eq!(present, vec![2.0]);
        }
    }

    #[test]
    fn chunked_reads_cross_chunk_borders() {
        let a = Float64Array::from(vec![Some(1.0), None, Some(3.0)]);
        let b = Float64Array::from(vec![Some(4.0), Some(5.0)]);
        let src = NumericSource::from_chunks(vec![FloatChunk::F64(a), FloatChunk::F64(b)]);
        let mut out = [0.0; 3];
        src.read(1, &mut out);
        assert!(out[0].is_nan());
        assert_eq!(&out[1..], &[3.0, 4.0]);
        let mut present = vec![];
        src.gather_present(&[0, 1, 3, 4], &mut present);
        assert_eq!(present, vec![1.0, 4.0, 5.0]);
    }

    #[test]
    fn categorical_spec_errors_name_the_column() {
        let names = vec!["a".to_string(), "b".to_string()];
        let e = resolve_categorical(&names, &[FeatureRef::Name("c".into())]).unwrap_err();
        assert!(e.to_string().contains("'c'"), "{e}");
        let e = resolve_categorical(&names, &[FeatureRef::Index(5)]).unwrap_err();
        assert!(e.to_string().contains("column 5"), "{e}");
        let dup = vec!["a".to_string(), "a".to_string()];
        assert!(resolve_categorical(&dup, &[]).unwrap_err().to_string().contains("duplicate"));
    }

    #[test]
    fn non_integer_category_is_rejected_with_row() {
        let m = array![[1.0f64], [2.5]];
        let e = Frame::from_dense(DenseMatrix::F64(m.view()), None, &[FeatureRef::Index(0)]).unwrap_err();
        assert!(e.to_string().contains("row 1"), "{e}");
    }
}
