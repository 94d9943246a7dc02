//! Arrow record batches to a [`Frame`]. Float32/Float64 columns are used in place (zero-copy, nulls from
//! the validity bitmap); integer and boolean columns are widened to f64 once; dictionary columns
//! (pandas `category`, polars Categorical/Enum) are categorical; string columns must be declared
//! categorical.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_schema::{DataType, Schema};

use super::frame::{
    check_shape, float_category, resolve_categorical, CategoricalSource, ColumnSource, FeatureRef,
    FloatChunk, Frame, KeyInterner, NumericSource,
};
use crate::error::{Error, Result};

impl Frame<'static> {
    /// A frame over record batches sharing `schema`. Columns named (or indexed) in `categorical` are
    /// binned as categories; dictionary columns always are.
    pub fn from_arrow(batches: &[RecordBatch], schema: &Schema, categorical: &[FeatureRef]) -> Result<Self> {
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let n_rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        check_shape(n_rows, names.len())?;
        let is_cat = resolve_categorical(&names, categorical)?;
        let mut columns = Vec::with_capacity(names.len());
        for (j, field) in schema.fields().iter().enumerate() {
            let chunks: Vec<&ArrayRef> = batches.iter().map(|b| b.column(j)).collect();
            if chunks.iter().any(|c| c.data_type() != field.data_type()) {
                return Err(Error::data(format!(
                    "column '{}' changes type between record batches",
                    field.name()
                )));
            }
            let dt = field.data_type();
            let col = if matches!(dt, DataType::Dictionary(..)) || is_cat[j] {
                ColumnSource::Categorical(code_arrow(&chunks, field.name(), dt)?)
            } else {
                ColumnSource::Numeric(numeric_arrow(&chunks, field.name(), dt)?)
            };
            columns.push(col);
        }
        Ok(Frame { names, columns, n_rows })
    }
}

fn widen<T: ArrowPrimitiveType>(a: &dyn Array) -> FloatChunk
where
    T::Native: num_like::ToF64,
{
    let p = a.as_primitive::<T>();
    let vals: Vec<f64> = p.values().iter().map(|v| num_like::ToF64::to_f64(*v)).collect();
    FloatChunk::F64(Float64Array::new(vals.into(), p.nulls().cloned()))
}

mod num_like {
    /// Lossless-enough widening of Arrow native integers to f64 (as numpy's astype would do).
    pub trait ToF64: Copy {
        fn to_f64(self) -> f64;
    }
    macro_rules! impl_to_f64 {
        ($($t:ty),*) => { $(impl ToF64 for $t { #[inline] fn to_f64(self) -> f64 { self as f64 } })* };
    }
    impl_to_f64!(i8, i16, i32, i64, u8, u16, u32, u64);
}

fn numeric_arrow(chunks: &[&ArrayRef], name: &str, dt: &DataType) -> Result<NumericSource<'static>> {
    let mut out = Vec::with_capacity(chunks.len());
    for c in chunks {
        let c: &dyn Array = c.as_ref();
        let chunk = match dt {
            DataType::Float32 => FloatChunk::F32(c.as_primitive::<Float32Type>().clone()),
            DataType::Float64 => FloatChunk::F64(c.as_primitive::<Float64Type>().clone()),
            DataType::Int8 => widen::<Int8Type>(c),
            DataType::Int16 => widen::<Int16Type>(c),
            DataType::Int32 => widen::<Int32Type>(c),
            DataType::Int64 => widen::<Int64Type>(c),
            DataType::UInt8 => widen::<UInt8Type>(c),
            DataType::UInt16 => widen::<UInt16Type>(c),
            DataType::UInt32 => widen::<UInt32Type>(c),
            DataType::UInt64 => widen::<UInt64Type>(c),
            DataType::Boolean => {
                let b = c.as_boolean();
                let vals: Vec<f64> = (0..b.len()).map(|i| if b.value(i) { 1.0 } else { 0.0 }).collect();
                FloatChunk::F64(Float64Array::new(vals.into(), b.nulls().cloned()))
            }
            DataType::Null => FloatChunk::F64(Float64Array::new_null(c.len())),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                return Err(Error::data(format!(
                    "column '{name}' holds strings ({dt}); list it in categorical_features or convert \
                     it to numbers"
                )))
            }
            other => {
                return Err(Error::data(format!(
                    "column '{name}' has Arrow type {other}, which ferrox cannot use as a feature; \
                     expected a float, integer, boolean, string or dictionary column"
                )))
            }
        };
        out.push(chunk);
    }
    Ok(NumericSource::from_chunks(out))
}

/// The category of each entry of `values` (None where null), interned into `interner`.
fn intern_all(values: &dyn Array, name: &str, interner: &mut KeyInterner) -> Result<Vec<i32>> {
    let n = values.len();
    let mut codes = Vec::with_capacity(n);
    macro_rules! ints {
        ($t:ty) => {{
            let p = values.as_primitive::<$t>();
            for i in 0..n {
                codes.push(if p.is_null(i) { -1 } else { interner.int(p.value(i) as i64) });
            }
        }};
    }
    macro_rules! strs {
        ($arr:expr) => {{
            let s = $arr;
            for i in 0..n {
                codes.push(if s.is_null(i) { -1 } else { interner.str(s.value(i)) });
            }
        }};
    }
    match values.data_type() {
        DataType::Utf8 => strs!(values.as_string::<i32>()),
        DataType::LargeUtf8 => strs!(values.as_string::<i64>()),
        DataType::Utf8View => strs!(values.as_string_view()),
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => {
            let p = values.as_primitive::<UInt64Type>();
            for i in 0..n {
                codes.push(if p.is_null(i) {
                    -1
                } else {
                    let v = i64::try_from(p.value(i)).map_err(|_| {
                        Error::data(format!("column '{name}': category {} is too large", p.value(i)))
                    })?;
                    interner.int(v)
                });
            }
        }
        DataType::Boolean => {
            let b = values.as_boolean();
            for i in 0..n {
                codes.push(if b.is_null(i) { -1 } else { interner.int(b.value(i) as i64) });
            }
        }
        DataType::Float32 | DataType::Float64 => {
            let chunk = match values.data_type() {
                DataType::Float32 => FloatChunk::F32(values.as_primitive::<Float32Type>().clone()),
                _ => FloatChunk::F64(values.as_primitive::<Float64Type>().clone()),
            };
            let mut buf = vec![0.0; n];
            NumericSource::from_chunks(vec![chunk]).read(0, &mut buf);
            for (i, v) in buf.into_iter().enumerate() {
                codes.push(match float_category(v, name, i)? {
                    Some(k) => interner.int(k),
                    None => -1,
                });
            }
        }
        other => {
            return Err(Error::data(format!(
                "column '{name}' is categorical with values of Arrow type {other}; expected strings, \
                 integers, booleans or whole-number floats"
            )))
        }
    }
    Ok(codes)
}

/// Appends the codes of a dictionary chunk's rows (`table`: the code of each dictionary value),
/// reading its typed keys and null bits directly (no per-row dynamic calls, no normalised copy of
/// the keys); the same codes as `normalized_keys` with `is_null` give. False, with nothing appended,
/// when the dictionary has no values.
fn dictionary_codes(c: &ArrayRef, table: &[i32], codes: &mut Vec<i32>) -> bool {
    fn typed<K: ArrowDictionaryKeyType>(c: &ArrayRef, table: &[i32], codes: &mut Vec<i32>) -> bool {
        use arrow_buffer::ArrowNativeType as _;
        let d = c.as_dictionary::<K>();
        let v_len = d.values().len();
        if v_len == 0 {
            return false;
        }
        // As normalized_keys: a key past the values (or negative) reads the last value.
        let code = |k: K::Native| table.get(k.as_usize().min(v_len - 1)).copied().unwrap_or(-1);
        let keys = d.keys().values();
        match c.nulls() {
            None => codes.extend(keys.iter().map(|&k| code(k))),
            Some(nulls) => codes.extend(keys.iter().enumerate().map(|(i, &k)| if nulls.is_null(i) { -1 } else { code(k) })),
        }
        true
    }
    let DataType::Dictionary(key, _) = c.data_type() else { return false };
    match key.as_ref() {
        DataType::Int8 => typed::<Int8Type>(c, table, codes),
        DataType::Int16 => typed::<Int16Type>(c, table, codes),
        DataType::Int32 => typed::<Int32Type>(c, table, codes),
        DataType::Int64 => typed::<Int64Type>(c, table, codes),
        DataType::UInt8 => typed::<UInt8Type>(c, table, codes),
        DataType::UInt16 => typed::<UInt16Type>(c, table, codes),
        DataType::UInt32 => typed::<UInt32Type>(c, table, codes),
        DataType::UInt64 => typed::<UInt64Type>(c, table, codes),
        _ => false,
    }
}

fn code_arrow(chunks: &[&ArrayRef], name: &str, dt: &DataType) -> Result<CategoricalSource> {
    let mut interner = KeyInterner::default();
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let mut codes = Vec::with_capacity(total);
    for c in chunks {
        if let DataType::Dictionary(..) = dt {
            let d = c.as_any_dictionary();
            // Map this chunk's dictionary once, then each row through it.
            let table = intern_all(d.values().as_ref(), name, &mut interner)?;
            if !dictionary_codes(c, &table, &mut codes) {
                let keys = d.normalized_keys();
                for (i, k) in keys.into_iter().enumerate() {
                    codes.push(if c.is_null(i) { -1 } else { table.get(k).copied().unwrap_or(-1) });
                }
            }
        } else {
            codes.extend(intern_all(c.as_ref(), name, &mut interner)?);
        }
    }
    Ok(CategoricalSource { keys: interner.into_keys(), codes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::binning::CatKey;
    use arrow_array::{BooleanArray, DictionaryArray, Int64Array, StringArray};
    use arrow_schema::Field;
    use std::sync::Arc;

    fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> =
            cols.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols.into_iter().map(|c| c.1).collect()).unwrap()
    }

    #[test]
    fn types_map_to_sources() {
        let dict: DictionaryArray<Int32Type> = vec![Some("x"), None, Some("y")].into_iter().collect();
        let b = batch(vec![
            ("f", Arc::new(Float64Array::from(vec![Some(1.5), None, Some(2.5)])) as ArrayRef),
            ("i", Arc::new(Int64Array::from(vec![Some(1), Some(2), None])) as ArrayRef),
            ("b", Arc::new(BooleanArray::from(vec![true, false, true])) as ArrayRef),
            ("d", Arc::new(dict) as ArrayRef),
            ("s", Arc::new(StringArray::from(vec!["u", "v", "u"])) as ArrayRef),
        ]);
        let frame = Frame::from_arrow(&[b.clone(), b.clone()], &b.schema(), &[FeatureRef::Name("s".into())]).unwrap();
        assert_eq!(frame.n_rows, 6);
        let ColumnSource::Numeric(i) = &frame.columns[1] else { panic!() };
        let mut out = [0.0; 6];
        i.read(0, &mut out);
        assert_eq!(&out[..2], &[1.0, 2.0]);
        assert!(out[2].is_nan());
        let ColumnSource::Categorical(d) = &frame.columns[3] else { panic!() };
        assert_eq!(d.keys, vec![CatKey::Str("x".into()), CatKey::Str("y".into())]);
        assert_eq!(d.codes, vec![0, -1, 1, 0, -1, 1]);
        let ColumnSource::Categorical(s) = &frame.columns[4] else { panic!() };
        assert_eq!(s.codes, vec![0, 1, 0, 0, 1, 0]);
    }

    #[test]
    fn typed_dictionary_codes_equal_normalized_keys() {
        use arrow_array::{Int8Array, UInt16Array};
        let values: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c"]));
        let table = vec![5, -1, 7];
        let k8 = Int8Array::from(vec![Some(0), None, Some(2), Some(1), None, Some(0)]);
        let k16 = UInt16Array::from(vec![Some(2), Some(2), None, Some(1)]);
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(DictionaryArray::<Int8Type>::try_new(k8, values.clone()).unwrap()),
            Arc::new(DictionaryArray::<UInt16Type>::try_new(k16, values.clone()).unwrap()),
            Arc::new(DictionaryArray::<Int8Type>::try_new(Int8Array::from(vec![0, 1, 2]), values).unwrap()),
        ];
        for c in &arrays {
            let d = c.as_any_dictionary();
            let want: Vec<i32> = d
                .normalized_keys()
                .into_iter()
                .enumerate()
                .map(|(i, k)| if c.is_null(i) { -1 } else { table.get(k).copied().unwrap_or(-1) })
                .collect();
            let mut got = Vec::new();
            assert!(dictionary_codes(c, &table, &mut got));
            assert_eq!(got, want);
        }
    }

    #[test]
    fn undeclared_strings_are_an_error_naming_the_column() {
        let b = batch(vec![("city", Arc::new(StringArray::from(vec!["a"])) as ArrayRef)]);
        let e = Frame::from_arrow(&[b.clone()], &b.schema(), &[]).unwrap_err();
        assert!(e.to_string().contains("'city'"), "{e}");
    }
}
