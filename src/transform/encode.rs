//! Categorical encoders: the sorted category table of each column (numbers or strings, the missing
//! value last, as scikit-learn orders `categories_`), row lookup against it, ordinal codes and the
//! one-hot layout (dropped categories, infrequent grouping, unknown handling).
//!
//! Columns come from a [`Frame`]: numeric sources (numpy, Arrow floats) hold numbers; categorical
//! sources (Arrow strings, dictionaries, integers, booleans) hold interned keys, integers being
//! treated as numbers.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::binning::CatKey;
use crate::data::frame::{ColumnSource, Frame};
use crate::error::{Error, Result};

/// The distinct values of one column, sorted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CatValues {
    /// Numbers, ascending (-0.0 folded into 0.0).
    Num(Vec<f64>),
    /// Strings, in code-point order.
    Str(Vec<String>),
}

impl CatValues {
    fn len(&self) -> usize {
        match self {
            CatValues::Num(v) => v.len(),
            CatValues::Str(v) => v.len(),
        }
    }
}

/// The fitted categories of one column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnCategories {
    /// Non-missing categories, sorted.
    pub values: CatValues,
    /// Whether the missing value is a category (the last one).
    pub has_missing: bool,
    /// Rows seen per category, the missing category last when present.
    pub counts: Vec<u64>,
    /// The numbers came from an integer column (they are whole).
    pub integer: bool,
}

impl ColumnCategories {
    /// Number of categories, the missing one included.
    pub fn n_categories(&self) -> usize {
        self.values.len() + self.has_missing as usize
    }
}

/// One column's values: numbers (NaN = missing) or string codes into keys (-1 = missing).
enum Values<'f> {
    Num(Vec<f64>, bool),
    Str { keys: &'f [String], codes: &'f [i32] },
}

#[inline]
fn norm(v: f64) -> f64 {
    v + 0.0
}

fn values_of<'f>(col: &'f ColumnSource<'_>, n_rows: usize, strs: &'f [Vec<String>], j: usize) -> Result<Values<'f>> {
    Ok(match col {
        ColumnSource::Numeric(src) => {
            let mut v = vec![0.0; n_rows];
            src.read(0, &mut v);
            if let Some(i) = v.iter().position(|x| x.is_infinite()) {
                return Err(super::infinity_error(i, j));
            }
            Values::Num(v, false)
        }
        ColumnSource::Categorical(c) => {
            if c.keys.iter().all(|k| matches!(k, CatKey::Int(_))) {
                let v = c
                    .codes
                    .iter()
                    .map(|&code| match c.keys.get(code as usize) {
                        Some(CatKey::Int(i)) if code >= 0 => *i as f64,
                        _ => f64::NAN,
                    })
                    .collect();
                Values::Num(v, true)
            } else {
                Values::Str { keys: &strs[j], codes: &c.codes }
            }
        }
    })
}

/// The string form of every key of each categorical column (integers print as numbers).
fn string_keys(frame: &Frame<'_>) -> Vec<Vec<String>> {
    frame
        .columns
        .iter()
        .map(|c| match c {
            ColumnSource::Categorical(c) => c
                .keys
                .iter()
                .map(|k| match k {
                    CatKey::Str(s) => s.clone(),
                    CatKey::Int(i) => i.to_string(),
                })
                .collect(),
            ColumnSource::Numeric(_) => Vec::new(),
        })
        .collect()
}

/// Fits the sorted categories of every column, column-parallel.
pub fn fit_categories(frame: &Frame<'_>, n_threads: i64) -> Result<Vec<ColumnCategories>> {
    let strs = string_keys(frame);
    crate::parallel::run_in_pool(n_threads, || {
        frame
            .columns
            .par_iter()
            .enumerate()
            .map(|(j, col)| {
                Ok(match values_of(col, frame.n_rows, &strs, j)? {
                    Values::Num(v, integer) => {
                        let mut present: Vec<f64> = v.iter().filter(|x| !x.is_nan()).map(|&x| norm(x)).collect();
                        let n_missing = (v.len() - present.len()) as u64;
                        present.sort_unstable_by(f64::total_cmp);
                        let mut values: Vec<f64> = Vec::new();
                        let mut counts: Vec<u64> = Vec::new();
                        for x in present {
                            if values.last() == Some(&x) {
                                *counts.last_mut().unwrap() += 1;
                            } else {
                                values.push(x);
                                counts.push(1);
                            }
                        }
                        if n_missing > 0 {
                            counts.push(n_missing);
                        }
                        ColumnCategories { values: CatValues::Num(values), has_missing: n_missing > 0, counts, integer }
                    }
                    Values::Str { keys, codes } => {
                        let mut per_key = vec![0u64; keys.len()];
                        let mut n_missing = 0u64;
                        for &c in codes {
                            if c < 0 {
                                n_missing += 1;
                            } else {
                                per_key[c as usize] += 1;
                            }
                        }
                        let mut order: Vec<usize> = (0..keys.len()).filter(|&k| per_key[k] > 0).collect();
                        order.sort_unstable_by(|&a, &b| keys[a].cmp(&keys[b]));
                        let mut counts: Vec<u64> = order.iter().map(|&k| per_key[k]).collect();
                        if n_missing > 0 {
                            counts.push(n_missing);
                        }
                        ColumnCategories {
                            values: CatValues::Str(order.iter().map(|&k| keys[k].clone()).collect()),
                            has_missing: n_missing > 0,
                            counts,
                            integer: false,
                        }
                    }
                })
            })
            .collect::<Result<Vec<_>>>()
    })?
}

/// The category index of each row of each column: 0.. for known categories (the missing category is
/// `values.len()` when fitted), -1 for a value unseen at fit (missing included when it was not seen).
/// The second element names the first unknown value of each column, if any.
pub type Lookup = (Vec<Vec<i32>>, Vec<Option<(usize, String)>>);

/// The string categories of each column by name (None for numeric columns): what [`lookup`] searches
/// a string column in. Built per call by [`lookup`]; a caller that looks many batches up in the same
/// categories (a loaded model) builds it once with [`category_index`] and calls [`lookup_indexed`].
pub type CategoryIndex = Vec<Option<HashMap<String, i32>>>;

/// The [`CategoryIndex`] of fitted categories.
pub fn category_index(cats: &[ColumnCategories]) -> CategoryIndex {
    cats.iter()
        .map(|c| match &c.values {
            CatValues::Str(known) => Some(known.iter().enumerate().map(|(p, s)| (s.clone(), p as i32)).collect()),
            CatValues::Num(_) => None,
        })
        .collect()
}

/// Looks every row up in the fitted categories, column-parallel.
pub fn lookup(frame: &Frame<'_>, cats: &[ColumnCategories], n_threads: i64) -> Result<Lookup> {
    lookup_indexed(frame, cats, None, n_threads)
}

/// [`lookup`] with the string index of `cats` built beforehand (`index`, from [`category_index`]).
pub fn lookup_indexed(
    frame: &Frame<'_>,
    cats: &[ColumnCategories],
    index: Option<&CategoryIndex>,
    n_threads: i64,
) -> Result<Lookup> {
    if cats.len() != frame.n_cols() {
        return Err(Error::data(format!(
            "X has {} features, but the encoder is expecting {} features as input.",
            frame.n_cols(),
            cats.len()
        )));
    }
    let strs = string_keys(frame);
    let per_col = crate::parallel::run_in_pool(n_threads, || {
        frame
            .columns
            .par_iter()
            .enumerate()
            .map(|(j, col)| {
                let fitted = &cats[j];
                let missing_code = if fitted.has_missing { fitted.values.len() as i32 } else { -1 };
                let values = values_of(col, frame.n_rows, &strs, j)?;
                let mut first_unknown: Option<(usize, String)> = None;
                let codes: Vec<i32> = match (&values, &fitted.values) {
                    (Values::Num(v, _), CatValues::Num(known)) => v
                        .iter()
                        .enumerate()
                        .map(|(i, &x)| {
                            if x.is_nan() {
                                if missing_code < 0 && first_unknown.is_none() {
                                    first_unknown = Some((i, "nan".into()));
                                }
                                return missing_code;
                            }
                            let x = norm(x);
                            match known.binary_search_by(|k| k.total_cmp(&x)) {
                                Ok(p) => p as i32,
                                Err(_) => {
                                    if first_unknown.is_none() {
                                        first_unknown = Some((i, format!("{x}")));
                                    }
                                    -1
                                }
                            }
                        })
                        .collect(),
                    (Values::Str { keys, codes }, CatValues::Str(known)) => {
                        let built;
                        let index: &HashMap<String, i32> = match index.and_then(|ix| ix.get(j)).and_then(|c| c.as_ref()) {
                            Some(ix) => ix,
                            None => {
                                built = known.iter().enumerate().map(|(p, s)| (s.clone(), p as i32)).collect();
                                &built
                            }
                        };
                        let table: Vec<i32> = keys.iter().map(|k| *index.get(k.as_str()).unwrap_or(&-1)).collect();
                        codes
                            .iter()
                            .enumerate()
                            .map(|(i, &c)| {
                                let out = if c < 0 { missing_code } else { table[c as usize] };
                                if out < 0 && first_unknown.is_none() {
                                    first_unknown =
                                        Some((i, if c < 0 { "None".into() } else { format!("'{}'", keys[c as usize]) }));
                                }
                                out
                            })
                            .collect()
                    }
                    (Values::Num(..), CatValues::Str(_)) => {
                        return Err(Error::data(format!(
                            "column {j} held strings at fit but holds numbers now; encode it with the same types"
                        )))
                    }
                    (Values::Str { .. }, CatValues::Num(_)) => {
                        return Err(Error::data(format!(
                            "column {j} held numbers at fit but holds strings now; encode it with the same types"
                        )))
                    }
                };
                Ok((codes, first_unknown))
            })
            .collect::<Result<Vec<_>>>()
    })??;
    Ok(per_col.into_iter().unzip())
}

/// Fits the categories of `frame` and looks its rows up in them: what `fit_transform` needs, with
/// the frame read (and its strings interned) once.
pub fn fit_lookup(frame: &Frame<'_>, n_threads: i64) -> Result<(Vec<ColumnCategories>, Lookup)> {
    let cats = fit_categories(frame, n_threads)?;
    let found = lookup(frame, &cats, n_threads)?;
    Ok((cats, found))
}

/// The error for an unknown category under handle_unknown="error".
pub fn unknown_error(names: &[String], j: usize, row: usize, value: &str) -> Error {
    let name = names.get(j).map(|n| format!(" ('{n}')")).unwrap_or_default();
    Error::data(format!(
        "Found unknown categories [{value}] in column {j}{name} during transform (first at row {row}); \
         use handle_unknown='ignore' (one-hot) or 'use_encoded_value' (ordinal) to accept them"
    ))
}

/// Ordinal codes as a row-major (rows, columns) f64 matrix: the category index, `missing_value` for
/// the fitted missing category, `unknown_value` for unseen values (None = an error).
pub fn ordinal(
    codes: &[Vec<i32>],
    first_unknown: &[Option<(usize, String)>],
    cats: &[ColumnCategories],
    names: &[String],
    unknown_value: Option<f64>,
    missing_value: f64,
) -> Result<Vec<f64>> {
    let m = codes.len();
    if unknown_value.is_none() {
        if let Some((j, (row, v))) = first_unknown.iter().enumerate().find_map(|(j, u)| u.as_ref().map(|u| (j, u))) {
            return Err(unknown_error(names, j, *row, v));
        }
    }
    let n = codes.first().map_or(0, |c| c.len());
    let mut out = vec![0.0; n * m];
    for (j, col) in codes.iter().enumerate() {
        let miss = if cats[j].has_missing { cats[j].values.len() as i32 } else { i32::MIN };
        for (i, &c) in col.iter().enumerate() {
            out[i * m + j] = if c < 0 {
                unknown_value.unwrap_or(f64::NAN)
            } else if c == miss {
                missing_value
            } else {
                c as f64
            };
        }
    }
    Ok(out)
}

/// How each category of one column lands in the one-hot output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OneHotColumn {
    /// Per category (missing last): its output column within this feature's block, or -1 (dropped).
    pub slot: Vec<i64>,
    /// Output columns of this feature.
    pub width: usize,
    /// Where unknown values go: an output column (the infrequent one), or -1 (all zeros / error).
    pub unknown_slot: i64,
    /// Indices (into categories) grouped as infrequent, ascending.
    pub infrequent: Vec<usize>,
    /// The dropped category index, if any.
    pub dropped: Option<usize>,
}

/// One-hot options, scikit-learn's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OneHotOptions {
    /// min_frequency as a count (already multiplied out when given as a fraction), or None.
    pub min_frequency: Option<f64>,
    /// max_categories, or None.
    pub max_categories: Option<usize>,
    /// "first", "if_binary", or None.
    pub drop: Option<String>,
    /// Unknown values go to the infrequent column when there is one.
    pub infrequent_if_exist: bool,
}

/// The one-hot layout of each column (scikit-learn's infrequent grouping and drop rules).
pub fn onehot_layout(cats: &[ColumnCategories], opt: &OneHotOptions) -> Result<Vec<OneHotColumn>> {
    cats.iter()
        .map(|c| {
            // The missing category counts like any other (scikit-learn's OneHotEncoder does so).
            let n_cat = c.n_categories();
            let counts = &c.counts[..n_cat];
            let mut infrequent = vec![false; n_cat];
            if let Some(minf) = opt.min_frequency {
                for (k, &cnt) in counts.iter().enumerate() {
                    infrequent[k] = (cnt as f64) < minf;
                }
            }
            if let Some(maxc) = opt.max_categories {
                let n_current = n_cat - infrequent.iter().filter(|&&b| b).count() + 1;
                if maxc < n_current {
                    let keep = maxc.saturating_sub(1);
                    if keep == 0 {
                        infrequent.iter_mut().for_each(|b| *b = true);
                    } else {
                        let mut order: Vec<usize> = (0..n_cat).collect();
                        order.sort_by_key(|&k| counts[k]); // stable, as mergesort
                        for &k in &order[..n_cat.saturating_sub(keep)] {
                            infrequent[k] = true;
                        }
                    }
                }
            }
            let infreq: Vec<usize> = (0..n_cat).filter(|&k| infrequent[k]).collect();
            // Slots: frequent categories in order, then the infrequent group.
            let mut slot = vec![0i64; n_cat];
            let mut next = 0i64;
            for k in 0..n_cat {
                if !infrequent[k] {
                    slot[k] = next;
                    next += 1;
                }
            }
            let infreq_slot = if infreq.is_empty() {
                -1
            } else {
                let s = next;
                next += 1;
                for &k in &infreq {
                    slot[k] = s;
                }
                s
            };
            let mut width = next as usize;
            // Drop: in the transformed (grouped) space.
            let dropped_slot = match opt.drop.as_deref() {
                None => None,
                Some("first") => Some(0i64),
                Some("if_binary") if width == 2 => Some(0i64),
                Some("if_binary") => None,
                Some(other) => return Err(Error::param(format!("drop must be None, 'first' or 'if_binary', got '{other}'"))),
            };
            let mut dropped = None;
            if let Some(d) = dropped_slot {
                if width > 0 {
                    dropped = slot.iter().position(|&s| s == d);
                    for s in slot.iter_mut() {
                        if *s == d {
                            *s = -1;
                        } else if *s > d {
                            *s -= 1;
                        }
                    }
                    width -= 1;
                }
            }
            let mut unknown_slot = -1;
            if opt.infrequent_if_exist && infreq_slot >= 0 {
                unknown_slot = slot[infreq[0]];
            }
            Ok(OneHotColumn { slot, width, unknown_slot, infrequent: infreq, dropped })
        })
        .collect()
}

/// One-hot rows as CSR parts (indptr, column indices); every stored value is 1.
pub fn onehot_csr(codes: &[Vec<i32>], layout: &[OneHotColumn]) -> (Vec<i64>, Vec<i64>) {
    let n = codes.first().map_or(0, |c| c.len());
    let offsets: Vec<i64> = layout
        .iter()
        .scan(0i64, |acc, l| {
            let o = *acc;
            *acc += l.width as i64;
            Some(o)
        })
        .collect();
    let mut indptr = Vec::with_capacity(n + 1);
    let mut indices = Vec::with_capacity(n * codes.len());
    indptr.push(0);
    for i in 0..n {
        for (j, col) in codes.iter().enumerate() {
            let c = col[i];
            let s = if c < 0 { layout[j].unknown_slot } else { layout[j].slot[c as usize] };
            if s >= 0 {
                indices.push(offsets[j] + s);
            }
        }
        indptr.push(indices.len() as i64);
    }
    (indptr, indices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::DenseMatrix;
    use ndarray::array;

    #[test]
    fn numbers_sort_with_missing_last_and_unknowns_are_found() {
        let x = array![[3.0], [1.0], [f64::NAN], [3.0], [-0.0]];
        let f = Frame::from_dense(DenseMatrix::F64(x.view()), None, &[]).unwrap();
        let cats = fit_categories(&f, 2).unwrap();
        assert_eq!(cats[0].values, CatValues::Num(vec![0.0, 1.0, 3.0]));
        assert!(cats[0].has_missing);
        assert_eq!(cats[0].counts, vec![1, 1, 2, 1]);
        let y = array![[1.0], [f64::NAN], [7.0]];
        let g = Frame::from_dense(DenseMatrix::F64(y.view()), None, &[]).unwrap();
        let (codes, unk) = lookup(&g, &cats, 1).unwrap();
        assert_eq!(codes[0], vec![1, 3, -1]);
        assert_eq!(unk[0], Some((2, "7".into())));
        let e = ordinal(&codes, &unk, &cats, &["x".into()], None, f64::NAN).unwrap_err().to_string();
        assert!(e.contains("[7]") && e.contains("'x'"), "{e}");
    }

    #[test]
    fn infrequent_and_drop_layout() {
        let c = ColumnCategories { values: CatValues::Num(vec![0.0, 1.0, 2.0, 3.0]), has_missing: false, counts: vec![5, 1, 9, 2], integer: false };
        let opt = OneHotOptions { min_frequency: Some(3.0), max_categories: None, drop: None, infrequent_if_exist: true };
        let l = &onehot_layout(&[c.clone()], &opt).unwrap()[0];
        assert_eq!(l.slot, vec![0, 2, 1, 2]);
        assert_eq!((l.width, l.unknown_slot), (3, 2));
        let opt = OneHotOptions { min_frequency: None, max_categories: Some(2), drop: Some("first".into()), infrequent_if_exist: false };
        let l = &onehot_layout(&[c], &opt).unwrap()[0];
        assert_eq!(l.infrequent, vec![0, 1, 3]);
        assert_eq!(l.slot, vec![0, 0, -1, 0]);
        assert_eq!(l.width, 1);
    }
}
