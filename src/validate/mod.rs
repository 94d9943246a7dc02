//! Data validation: a schema inferred from data and checked against new data, and the checks worth
//! running on training data before fitting (missing shares, values beyond 3σ, infinite values, constant
//! and duplicate columns, duplicate rows, class balance, missing labels).
//!
//! Every finding is an [`Issue`] with a severity: "error" makes a report not ok, "warning" does not.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::frame::{CategoricalSource, ColumnSource, NumericSource};
use crate::data::{CatKey, Frame};
use crate::error::{Error, Result};

/// One finding.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Issue {
    /// The column it concerns ("" for the whole table).
    pub column: String,
    /// What was checked, e.g. "missing_share", "duplicate_rows".
    pub check: String,
    /// "error" or "warning".
    pub severity: String,
    /// What was found, for people.
    pub message: String,
    /// The measured value (a share or a count).
    pub value: f64,
}

fn issue(column: &str, check: &str, severity: &str, value: f64, message: String) -> Issue {
    Issue { column: column.to_owned(), check: check.to_owned(), severity: severity.to_owned(), message, value }
}

/// What a schema expects of one column.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ColumnSchema {
    /// Column name.
    pub name: String,
    /// "numeric" or "categorical".
    pub kind: String,
    /// The storage type seen when inferred (Arrow type name or numpy dtype).
    pub dtype: String,
    /// Whether missing values are allowed.
    pub nullable: bool,
    /// Smallest finite value seen (numeric).
    pub min: Option<f64>,
    /// Largest finite value seen (numeric).
    pub max: Option<f64>,
    /// Whether infinite values are allowed.
    pub allow_inf: bool,
    /// Allowed categories (categorical).
    pub categories: Vec<CatKey>,
}

/// The expected shape of a table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Schema {
    /// Columns, in order.
    pub columns: Vec<ColumnSchema>,
}

struct NumStats {
    n: usize,
    nulls: usize,
    infs: usize,
    min: f64,
    max: f64,
    beyond: usize,
    distinct_le1: bool,
}

fn read_all(src: &NumericSource<'_>, n: usize) -> Vec<f64> {
    let mut v = vec![0.0; n];
    src.read(0, &mut v);
    v
}

fn num_stats(v: &[f64], sigma: f64) -> NumStats {
    let (mut nulls, mut infs) = (0, 0);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut cnt, mut sum) = (0usize, 0.0f64);
    let mut first: Option<f64> = None;
    let mut distinct_le1 = true;
    for &x in v {
        if x.is_nan() {
            nulls += 1;
            continue;
        }
        match first {
            None => first = Some(x),
            Some(f) if f != x => distinct_le1 = false,
            _ => {}
        }
        if x.is_infinite() {
            infs += 1;
            continue;
        }
        min = min.min(x);
        max = max.max(x);
        cnt += 1;
        sum += x;
    }
    let mean = if cnt > 0 { sum / cnt as f64 } else { f64::NAN };
    let var = if cnt > 0 { v.iter().filter(|x| x.is_finite()).map(|x| (x - mean).powi(2)).sum::<f64>() / cnt as f64 } else { f64::NAN };
    let std = var.sqrt();
    let beyond = if std > 0.0 { v.iter().filter(|x| x.is_finite() && (*x - mean).abs() > sigma * std).count() } else { 0 };
    NumStats { n: v.len(), nulls, infs, min, max, beyond, distinct_le1 }
}

/// The storage type of each column of an Arrow schema, as Arrow names it.
pub fn arrow_dtypes(schema: &arrow_schema::Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.data_type().to_string()).collect()
}

fn key_label(k: &CatKey) -> String {
    match k {
        CatKey::Int(v) => v.to_string(),
        CatKey::Str(s) => s.clone(),
    }
}

/// `dtypes` below are the storage types of the frame's columns, one per column, given by the caller
/// (Arrow type names or the numpy dtype).
impl Schema {
    /// The schema of `frame`: kinds, dtypes, nullability, finite ranges and categories as seen.
    pub fn infer(frame: &Frame<'_>, dtypes: &[String], num_threads: i64) -> Result<Schema> {
        if dtypes.len() != frame.n_cols() {
            return Err(Error::Internal("one dtype per column expected".into()));
        }
        crate::parallel::run_in_pool(num_threads, || Self::infer_in_pool(frame, dtypes))
    }

    fn infer_in_pool(frame: &Frame<'_>, dtypes: &[String]) -> Schema {
        let columns = frame
            .columns
            .par_iter()
            .zip(frame.names.par_iter())
            .zip(dtypes.par_iter())
            .map(|((c, name), dtype)| match c {
                ColumnSource::Numeric(src) => {
                    let s = num_stats(&read_all(src, frame.n_rows), 3.0);
                    let finite = s.n - s.nulls - s.infs > 0;
                    ColumnSchema {
                        name: name.clone(),
                        kind: "numeric".into(),
                        dtype: dtype.clone(),
                        nullable: s.nulls > 0,
                        min: finite.then_some(s.min),
                        max: finite.then_some(s.max),
                        allow_inf: s.infs > 0,
                        categories: Vec::new(),
                    }
                }
                ColumnSource::Categorical(src) => {
                    let mut used = vec![false; src.keys.len()];
                    let mut nulls = 0;
                    for &code in &src.codes {
                        if code < 0 {
                            nulls += 1;
                        } else {
                            used[code as usize] = true;
                        }
                    }
                    ColumnSchema {
                        name: name.clone(),
                        kind: "categorical".into(),
                        dtype: dtype.clone(),
                        nullable: nulls > 0,
                        min: None,
                        max: None,
                        allow_inf: false,
                        categories: src.keys.iter().zip(&used).filter(|(_, u)| **u).map(|(k, _)| k.clone()).collect(),
                    }
                }
            })
            .collect();
        Schema { columns }
    }

    /// Checks `frame` against the schema.
    pub fn validate(&self, frame: &Frame<'_>, dtypes: &[String], num_threads: i64) -> Result<Vec<Issue>> {
        crate::parallel::run_in_pool(num_threads, || self.validate_in_pool(frame, dtypes))
    }

    fn validate_in_pool(&self, frame: &Frame<'_>, dtypes: &[String]) -> Vec<Issue> {
        let index: HashMap<&str, usize> = frame.names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let per_col: Vec<Vec<Issue>> = self
            .columns
            .par_iter()
            .map(|cs| {
                let name = cs.name.as_str();
                let mut out = Vec::new();
                let Some(&j) = index.get(name) else {
                    out.push(issue(name, "missing_column", "error", 1.0, format!("column '{name}' is missing")));
                    return out;
                };
                let dtype = dtypes.get(j).cloned().unwrap_or_default();
                match (&frame.columns[j], cs.kind.as_str()) {
                    (ColumnSource::Numeric(src), "numeric") => {
                        if dtype != cs.dtype {
                            out.push(issue(name, "dtype", "warning", 0.0, format!(
                                "column '{name}' has dtype {dtype}, the schema expects {}", cs.dtype)));
                        }
                        let v = read_all(src, frame.n_rows);
                        let s = num_stats(&v, 3.0);
                        if s.nulls > 0 && !cs.nullable {
                            out.push(issue(name, "nulls", "error", s.nulls as f64, format!(
                                "column '{name}' has {} missing values but the schema does not allow any", s.nulls)));
                        }
                        if s.infs > 0 && !cs.allow_inf {
                            out.push(issue(name, "infinite", "error", s.infs as f64, format!(
                                "column '{name}' has {} infinite values", s.infs)));
                        }
                        if let (Some(lo), Some(hi)) = (cs.min, cs.max) {
                            let below = v.iter().filter(|x| x.is_finite() && **x < lo).count();
                            let above = v.iter().filter(|x| x.is_finite() && **x > hi).count();
                            if below > 0 {
                                out.push(issue(name, "below_min", "error", below as f64, format!(
                                    "column '{name}' has {below} values below the schema minimum {lo} (smallest {})", s.min)));
                            }
                            if above > 0 {
                                out.push(issue(name, "above_max", "error", above as f64, format!(
                                    "column '{name}' has {above} values above the schema maximum {hi} (largest {})", s.max)));
                            }
                        }
                    }
                    (ColumnSource::Categorical(src), "categorical") => {
                        if dtype != cs.dtype {
                            out.push(issue(name, "dtype", "warning", 0.0, format!(
                                "column '{name}' has dtype {dtype}, the schema expects {}", cs.dtype)));
                        }
                        let allowed: HashSet<&CatKey> = cs.categories.iter().collect();
                        let bad_codes: Vec<bool> = src.keys.iter().map(|k| !allowed.contains(k)).collect();
                        let (mut nulls, mut unknown) = (0usize, 0usize);
                        let mut seen_bad = vec![false; src.keys.len()];
                        for &c in &src.codes {
                            if c < 0 {
                                nulls += 1;
                            } else if bad_codes[c as usize] {
                                unknown += 1;
                                seen_bad[c as usize] = true;
                            }
                        }
                        if nulls > 0 && !cs.nullable {
                            out.push(issue(name, "nulls", "error", nulls as f64, format!(
                                "column '{name}' has {nulls} missing values but the schema does not allow any")));
                        }
                        if unknown > 0 {
                            let examples: Vec<String> = src.keys.iter().zip(&seen_bad).filter(|(_, b)| **b)
                                .take(5).map(|(k, _)| format!("'{}'", key_label(k))).collect();
                            out.push(issue(name, "unknown_category", "error", unknown as f64, format!(
                                "column '{name}' has {unknown} values in categories the schema does not allow: {}",
                                examples.join(", "))));
                        }
                    }
                    (_, kind) => {
                        let found = if matches!(frame.columns[j], ColumnSource::Numeric(_)) { "numeric" } else { "categorical" };
                        out.push(issue(name, "kind", "error", 0.0, format!(
                            "column '{name}' is {found} ({dtype}) but the schema expects {kind} ({})", cs.dtype)));
                    }
                }
                out
            })
            .collect();
        let mut issues: Vec<Issue> = per_col.into_iter().flatten().collect();
        let known: HashSet<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        for n in &frame.names {
            if !known.contains(n.as_str()) {
                issues.push(issue(n, "extra_column", "warning", 1.0, format!("column '{n}' is not in the schema")));
            }
        }
        issues
    }
}

/// Limits of [`check_training_data`].
#[derive(Clone, Debug)]
pub struct TrainingChecks {
    /// The label column, if any.
    pub target: Option<String>,
    /// Largest allowed missing share per column.
    pub missing_limit: f64,
    /// Values further than this many standard deviations from the mean count as outliers.
    pub outlier_sigma: f64,
    /// Largest outlier share before a warning.
    pub outlier_limit: f64,
    /// Smallest share of the rarest class before a warning.
    pub min_class_share: f64,
    /// Most distinct label values for the label to count as classes.
    pub max_classes: usize,
}

impl Default for TrainingChecks {
    fn default() -> Self {
        TrainingChecks {
            target: None,
            missing_limit: 0.1,
            outlier_sigma: 3.0,
            outlier_limit: 0.01,
            min_class_share: 0.05,
            max_classes: 50,
        }
    }
}

/// Per-column numbers measured by [`check_training_data`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ColumnSummary {
    /// Column name.
    pub column: String,
    /// "numeric" or "categorical".
    pub kind: String,
    /// Missing share.
    pub missing_share: f64,
    /// Share of present finite values beyond `outlier_sigma` standard deviations (numeric).
    pub outlier_share: f64,
    /// Infinite values (numeric).
    pub n_inf: u64,
    /// Whether it holds at most one distinct present value.
    pub constant: bool,
}

/// The outcome of [`check_training_data`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainingReport {
    /// The findings.
    pub issues: Vec<Issue>,
    /// Per-column numbers.
    pub columns: Vec<ColumnSummary>,
    /// Rows that repeat an earlier row.
    pub duplicate_rows: u64,
    /// Share of the rarest label class (NaN when the label is not a class label).
    pub minority_share: f64,
}

const MISSING_BITS: u64 = 0x7ff8_0000_0000_0001;

fn mix(h: u64, v: u64) -> u64 {
    let mut x = h ^ v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 29)
}

fn key_hash(k: &CatKey) -> u64 {
    match k {
        CatKey::Int(v) => mix(1, *v as u64),
        CatKey::Str(s) => s.bytes().fold(2u64, |h, b| mix(h, b as u64)),
    }
}

/// Per row, a 64-bit value of column `c` (float bits, NaN unified; category key hash).
fn column_words(c: &ColumnSource<'_>, n: usize) -> Vec<u64> {
    match c {
        ColumnSource::Numeric(src) => read_all(src, n)
            .into_iter()
            .map(|x| if x.is_nan() { MISSING_BITS } else if x == 0.0 { 0 } else { x.to_bits() })
            .collect(),
        ColumnSource::Categorical(src) => {
            let table: Vec<u64> = src.keys.iter().map(key_hash).collect();
            src.codes.iter().map(|&code| if code < 0 { MISSING_BITS } else { table[code as usize] }).collect()
        }
    }
}

fn class_counts(c: &ColumnSource<'_>, n: usize, max_classes: usize) -> Option<(Vec<u64>, u64)> {
    match c {
        ColumnSource::Categorical(CategoricalSource { keys, codes }) => {
            let mut counts = vec![0u64; keys.len()];
            let mut nulls = 0;
            for &code in codes {
                if code < 0 {
                    nulls += 1;
                } else {
                    counts[code as usize] += 1;
                }
            }
            counts.retain(|&c| c > 0);
            Some((counts, nulls))
        }
        ColumnSource::Numeric(src) => {
            let v = read_all(src, n);
            let mut counts: HashMap<u64, u64> = HashMap::new();
            let mut nulls = 0;
            for x in v {
                if x.is_nan() {
                    nulls += 1;
                    continue;
                }
                if x.fract() != 0.0 || !x.is_finite() {
                    return None; // a continuous target: no classes
                }
                *counts.entry(x.to_bits()).or_insert(0) += 1;
                if counts.len() > max_classes {
                    return None;
                }
            }
            Some((counts.into_values().collect(), nulls))
        }
    }
}

/// Runs the training-data checks on `frame` (columns in parallel on `num_threads` threads).
pub fn check_training_data(frame: &Frame<'_>, o: &TrainingChecks, num_threads: i64) -> Result<TrainingReport> {
    crate::parallel::run_in_pool(num_threads, || check_in_pool(frame, o))?
}

fn check_in_pool(frame: &Frame<'_>, o: &TrainingChecks) -> Result<TrainingReport> {
    if !(0.0..=1.0).contains(&o.missing_limit) || !(o.outlier_sigma > 0.0) || !(0.0..=1.0).contains(&o.min_class_share) {
        return Err(Error::param("missing_limit and min_class_share must be in [0, 1], outlier_sigma > 0"));
    }
    let n = frame.n_rows;
    let target_idx = match &o.target {
        None => None,
        Some(t) => Some(frame.names.iter().position(|c| c == t).ok_or_else(|| {
            Error::param(format!(
                "target '{t}' is not a column of the data (columns: {})",
                crate::data::frame::preview(&frame.names)
            ))
        })?),
    };
    let mut issues = Vec::new();
    let summaries: Vec<(ColumnSummary, Vec<u64>)> = frame
        .columns
        .par_iter()
        .zip(frame.names.par_iter())
        .map(|(c, name)| {
            let words = column_words(c, n);
            let s = match c {
                ColumnSource::Numeric(src) => {
                    let st = num_stats(&read_all(src, n), o.outlier_sigma);
                    let finite = st.n - st.nulls - st.infs;
                    ColumnSummary {
                        column: name.clone(),
                        kind: "numeric".into(),
                        missing_share: st.nulls as f64 / n as f64,
                        outlier_share: if finite > 0 { st.beyond as f64 / finite as f64 } else { f64::NAN },
                        n_inf: st.infs as u64,
                        constant: st.distinct_le1,
                    }
                }
                ColumnSource::Categorical(src) => {
                    let nulls = src.codes.iter().filter(|&&c| c < 0).count();
                    let first = src.codes.iter().find(|&&c| c >= 0);
                    let constant = match first {
                        None => true,
                        Some(f) => src.codes.iter().all(|c| *c < 0 || c == f),
                    };
                    ColumnSummary {
                        column: name.clone(),
                        kind: "categorical".into(),
                        missing_share: nulls as f64 / n as f64,
                        outlier_share: f64::NAN,
                        n_inf: 0,
                        constant,
                    }
                }
            };
            (s, words)
        })
        .collect();
    for (j, (s, _)) in summaries.iter().enumerate() {
        let name = &s.column;
        if Some(j) == target_idx {
            continue;
        }
        if s.missing_share > o.missing_limit {
            issues.push(issue(name, "missing_share", "error", s.missing_share, format!(
                "column '{name}' is {:.1}% missing, above the {:.1}% limit", s.missing_share * 100.0, o.missing_limit * 100.0)));
        }
        if s.n_inf > 0 {
            issues.push(issue(name, "infinite", "error", s.n_inf as f64, format!(
                "column '{name}' holds {} infinite values", s.n_inf)));
        }
        if s.outlier_share > o.outlier_limit {
            issues.push(issue(name, "outliers", "warning", s.outlier_share, format!(
                "{:.2}% of column '{name}' lies beyond {}σ of its mean (limit {:.2}%)",
                s.outlier_share * 100.0, o.outlier_sigma, o.outlier_limit * 100.0)));
        }
        if s.constant {
            issues.push(issue(name, "constant", "warning", 1.0, format!("column '{name}' holds a single value")));
        }
    }
    // Duplicate columns: equal content hashes, confirmed value by value.
    let col_hash: Vec<u64> = summaries.iter().map(|(_, w)| w.iter().fold(7u64, |h, &x| mix(h, x))).collect();
    let mut first_with: HashMap<(u64, &str), usize> = HashMap::new();
    for (j, (s, w)) in summaries.iter().enumerate() {
        match first_with.get(&(col_hash[j], s.kind.as_str())) {
            Some(&i) if summaries[i].1 == *w => {
                issues.push(issue(&s.column, "duplicate_column", "warning", 1.0, format!(
                    "column '{}' duplicates column '{}'", s.column, summaries[i].0.column)));
            }
            Some(_) => {}
            None => {
                first_with.insert((col_hash[j], s.kind.as_str()), j);
            }
        }
    }
    // Duplicate rows: a 64-bit hash per row over all columns, sorted; equal neighbours are repeats.
    let mut row_hash = vec![0x51_7cc1_b727_220au64; n];
    for (_, w) in &summaries {
        for (h, x) in row_hash.iter_mut().zip(w) {
            *h = mix(*h, *x);
        }
    }
    row_hash.sort_unstable();
    let duplicate_rows = row_hash.windows(2).filter(|w| w[0] == w[1]).count() as u64;
    if duplicate_rows > 0 {
        issues.push(issue("", "duplicate_rows", "warning", duplicate_rows as f64, format!(
            "{duplicate_rows} rows repeat an earlier row ({:.2}%)", duplicate_rows as f64 * 100.0 / n as f64)));
    }
    let mut minority_share = f64::NAN;
    if let Some(t) = target_idx {
        let name = &frame.names[t];
        let missing = summaries[t].0.missing_share;
        if missing > 0.0 {
            issues.push(issue(name, "label_missing", "error", missing * n as f64, format!(
                "the label '{name}' is missing in {} rows", (missing * n as f64).round())));
        }
        if summaries[t].0.n_inf > 0 {
            issues.push(issue(name, "label_infinite", "error", summaries[t].0.n_inf as f64, format!(
                "the label '{name}' is infinite in {} rows", summaries[t].0.n_inf)));
        }
        if let Some((counts, nulls)) = class_counts(&frame.columns[t], n, o.max_classes) {
            let present = n as u64 - nulls;
            if counts.len() < 2 {
                issues.push(issue(name, "single_class", "error", counts.len() as f64, format!(
                    "the label '{name}' has {} class(es); a classifier needs at least two", counts.len())));
            } else if present > 0 {
                minority_share = *counts.iter().min().unwrap_or(&0) as f64 / present as f64;
                if minority_share < o.min_class_share {
                    issues.push(issue(name, "class_balance", "warning", minority_share, format!(
                        "the rarest class of '{name}' is {:.2}% of the rows (limit {:.2}%)",
                        minority_share * 100.0, o.min_class_share * 100.0)));
                }
            }
        }
    }
    let columns = summaries.into_iter().map(|(s, _)| s).collect();
    Ok(TrainingReport { issues, columns, duplicate_rows, minority_share })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::DenseMatrix;

    #[test]
    fn training_checks_find_planted_problems() {
        let n = 200;
        let m = ndarray::Array2::from_shape_fn((n, 5), |(i, j)| match j {
            0 => i as f64,
            1 => if i % 3 == 0 { f64::NAN } else { 1.0 + i as f64 },
            2 => 5.0,
            3 => i as f64,
            _ => if i < 4 { 1.0 } else { 0.0 },
        });
        let f = Frame::from_dense(DenseMatrix::F64(m.view()), None, &[]).unwrap();
        let o = TrainingChecks { target: Some("Column_4".into()), ..Default::default() };
        let r = check_training_data(&f, &o, 2).unwrap();
        let checks: Vec<(&str, &str)> = r.issues.iter().map(|i| (i.column.as_str(), i.check.as_str())).collect();
        assert!(checks.contains(&("Column_1", "missing_share")), "{checks:?}");
        assert!(checks.contains(&("Column_2", "constant")), "{checks:?}");
        assert!(checks.contains(&("Column_3", "duplicate_column")), "{checks:?}");
        assert!(checks.contains(&("Column_4", "class_balance")), "{checks:?}");
        assert_eq!(r.duplicate_rows, 0);
        assert!((r.minority_share - 0.02).abs() < 1e-12);
    }
}
