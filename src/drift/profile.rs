//! Reference profiles: what drift checks need to remember about reference data, fitted once, saved
//! through the artifact, merged across partitions, and compared against current data.
//!
//! Per numeric column the profile keeps the sorted non-missing values (exact tests) up to
//! `exact_limit` values, and a mergeable [`QuantileSketch`] beyond (rank error bound stated in the
//! report); per categorical column the count of each category; per column the rows and missing values.
//!
//! ## The test chosen per column (override with `CompareOptions::tests`)
//! - numeric: two-sample Kolmogorov–Smirnov (`ks`, scipy's method choice: exact up to 10 000 values);
//! - categorical: chi-square test on the 2 × K table of reference and current counts (`chi2`, Yates'
//!   correction when K = 2), unseen categories included as their own columns.
//!
//! P-values are corrected across columns (Benjamini–Hochberg by default). A column drifts when its
//! corrected p-value is below `alpha` and it shows an effect of at least `min_effect` (PSI 0.1): a
//! test on many rows rejects for differences too small to matter, so significance alone never flags a
//! column. The effect rule applies at every size (`large_sample`, 0 by default, can exempt samples of
//! at most that many rows from it, as earlier versions did below 100 000 rows). Distance tests (`psi`, `wasserstein` normalised by the
//! reference standard deviation, `jensenshannon`) have no p-value and drift when the distance reaches
//! `min_effect`. The effect size reported for every column is the PSI over 10 reference-quantile bins
//! (numeric) or over categories (categorical), so columns of both kinds sort on one scale.
//! A column missing from current data, of another kind, or with no values left is reported with its
//! status and counts as drifted: it never passes silently.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::distance::{
    bin_counts_sorted, cdf_distance, jensenshannon, psi_from_counts, quantile_edges, Sorted,
};
use super::multitest::{adjust, Correction};
use super::sketch::{sort_present_into, QuantileSketch, SortScratch};
use super::twosample::{self, Alternative, KsMethod};
use crate::data::frame::{CategoricalSource, ColumnSource, NumericSource};
use crate::data::{CatKey, Frame};
use crate::error::{Error, Result};

/// How a profile is built.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProfileConfig {
    /// Most values per numeric column kept exactly; beyond, a sketch.
    pub exact_limit: usize,
    /// Level capacity of the sketch (rank error bound about log2(n/k)/k).
    pub sketch_k: usize,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig { exact_limit: 1_000_000, sketch_k: 4096 }
    }
}

/// The non-missing values of a numeric column.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Values {
    /// All values, sorted.
    Exact(Vec<f64>),
    /// A quantile sketch of them.
    Sketch(QuantileSketch),
}

/// A numeric column's profile.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NumericProfile {
    /// Rows seen.
    pub n_rows: u64,
    /// Missing values (NaN or null).
    pub n_null: u64,
    /// Infinite values (kept among the values).
    pub n_inf: u64,
    /// The values.
    pub values: Values,
}

/// A categorical column's profile.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CategoricalProfile {
    /// Rows seen.
    pub n_rows: u64,
    /// Missing values.
    pub n_null: u64,
    /// Categories, in order of first appearance.
    pub keys: Vec<CatKey>,
    /// Count of each category.
    pub counts: Vec<u64>,
}

/// One column's profile.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum ColumnProfile {
    /// Numbers.
    Numeric(NumericProfile),
    /// Categories.
    Categorical(CategoricalProfile),
}

impl ColumnProfile {
    fn kind(&self) -> &'static str {
        match self {
            ColumnProfile::Numeric(_) => "numeric",
            ColumnProfile::Categorical(_) => "categorical",
        }
    }
    fn counts(&self) -> (u64, u64) {
        match self {
            ColumnProfile::Numeric(p) => (p.n_rows, p.n_null),
            ColumnProfile::Categorical(p) => (p.n_rows, p.n_null),
        }
    }
}

/// The profile of a reference table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReferenceProfile {
    /// Column names.
    pub names: Vec<String>,
    /// Column profiles, in name order.
    pub columns: Vec<ColumnProfile>,
    /// How it was built.
    pub config: ProfileConfig,
}

/// Buffers a worker reuses from column to column: fresh multi-megabyte buffers cost a page fault
/// per 4 KiB on first touch, more than the work done in them.
#[derive(Default)]
struct Scratch {
    /// The radix sort's buffers and the column as read (NaN included).
    sort: ReadScratch,
    /// Current data's values (compare).
    values: Vec<f64>,
}

/// A column as read, and the sort's buffers.
#[derive(Default)]
struct ReadScratch {
    raw: Vec<f64>,
    sort: SortScratch,
}

/// Fills `out` with the present values of a numeric column, sorted (`out` grows to exactly their
/// number when it has less room); returns the missing and the infinite counts.
fn numeric_values(src: &NumericSource<'_>, n_rows: usize, out: &mut Vec<f64>, scratch: &mut ReadScratch) -> (u64, u64) {
    // Read the whole column in place; the sort drops the NaN as it reads them.
    if scratch.raw.len() < n_rows {
        scratch.raw.resize(n_rows, 0.0);
    }
    let raw = &mut scratch.raw[..n_rows];
    src.read(0, raw);
    let (nan, infs) = sort_present_into(raw, out, &mut scratch.sort);
    (nan as u64, infs)
}

fn categorical_counts(src: &CategoricalSource) -> (Vec<u64>, u64) {
    let mut counts = vec![0u64; src.keys.len()];
    let mut nulls = 0;
    for &c in &src.codes {
        if c < 0 {
            nulls += 1;
        } else {
            counts[c as usize] += 1;
        }
    }
    (counts, nulls)
}

fn profile_column(col: &ColumnSource<'_>, n_rows: usize, cfg: &ProfileConfig, scratch: &mut Scratch) -> ColumnProfile {
    match col {
        ColumnSource::Numeric(src) => {
            let mut vals = Vec::new();
            let (n_null, n_inf) = numeric_values(src, n_rows, &mut vals, &mut scratch.sort);
            let values = if vals.len() <= cfg.exact_limit {
                Values::Exact(vals)
            } else {
                let mut s = QuantileSketch::new(cfg.sketch_k);
                s.extend(&vals);
                Values::Sketch(s)
            };
            ColumnProfile::Numeric(NumericProfile { n_rows: n_rows as u64, n_null, n_inf, values })
        }
        ColumnSource::Categorical(src) => {
            let (counts, n_null) = categorical_counts(src);
            ColumnProfile::Categorical(CategoricalProfile { n_rows: n_rows as u64, n_null, keys: src.keys.clone(), counts })
        }
    }
}

impl ReferenceProfile {
    /// Profiles every column of `frame` (columns in parallel on `num_threads` threads).
    pub fn fit(frame: &Frame<'_>, config: ProfileConfig, num_threads: i64) -> Result<Self> {
        if config.exact_limit < 1 || config.sketch_k < 8 {
            return Err(Error::param("exact_limit must be >= 1 and sketch_k >= 8"));
        }
        let columns = crate::parallel::run_in_pool(num_threads, || {
            frame
                .columns
                .par_iter()
                .map_init(Scratch::default, |s, c| profile_column(c, frame.n_rows, &config, s))
                .collect::<Vec<_>>()
        })?;
        Ok(ReferenceProfile { names: frame.names.clone(), columns, config })
    }

    /// Combines profiles fitted on partitions of the same columns.
    pub fn merge(&self, other: &ReferenceProfile) -> Result<ReferenceProfile> {
        if self.names != other.names {
            return Err(Error::data(format!(
                "cannot merge profiles of different columns: {:?} vs {:?}",
                self.names, other.names
            )));
        }
        let mut columns = Vec::with_capacity(self.columns.len());
        for ((name, a), b) in self.names.iter().zip(&self.columns).zip(&other.columns) {
            columns.push(match (a, b) {
                (ColumnProfile::Numeric(a), ColumnProfile::Numeric(b)) => {
                    ColumnProfile::Numeric(merge_numeric(a, b, &self.config))
                }
                (ColumnProfile::Categorical(a), ColumnProfile::Categorical(b)) => {
                    let mut keys = a.keys.clone();
                    let mut counts = a.counts.clone();
                    let mut index: HashMap<&CatKey, usize> = a.keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
                    for (k, c) in b.keys.iter().zip(&b.counts) {
                        match index.get(k) {
                            Some(&i) => counts[i] += c,
                            None => {
                                keys.push(k.clone());
                                counts.push(*c);
                                index.insert(k, keys.len() - 1);
                            }
                        }
                    }
                    ColumnProfile::Categorical(CategoricalProfile {
                        n_rows: a.n_rows + b.n_rows,
                        n_null: a.n_null + b.n_null,
                        keys,
                        counts,
                    })
                }
                (a, b) => {
                    return Err(Error::data(format!(
                        "cannot merge profiles: column '{name}' is {} in one and {} in the other",
                        a.kind(),
                        b.kind()
                    )))
                }
            });
        }
        Ok(ReferenceProfile { names: self.names.clone(), columns, config: self.config.clone() })
    }
}

fn merge_sorted(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].total_cmp(&b[j]).is_le() {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

fn merge_numeric(a: &NumericProfile, b: &NumericProfile, cfg: &ProfileConfig) -> NumericProfile {
    let values = match (&a.values, &b.values) {
        (Values::Exact(x), Values::Exact(y)) if x.len() + y.len() <= cfg.exact_limit => Values::Exact(merge_sorted(x, y)),
        (x, y) => {
            let mut s = QuantileSketch::new(cfg.sketch_k);
            for v in [x, y] {
                match v {
                    Values::Exact(e) => s.extend(e),
                    Values::Sketch(k) => s.merge(k),
                }
            }
            Values::Sketch(s)
        }
    };
    NumericProfile { n_rows: a.n_rows + b.n_rows, n_null: a.n_null + b.n_null, n_inf: a.n_inf + b.n_inf, values }
}

/// A per-column test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestKind {
    /// Kolmogorov–Smirnov.
    Ks,
    /// Cramér–von Mises.
    Cvm,
    /// Mann–Whitney U.
    MannWhitneyU,
    /// Anderson–Darling k-sample (midrank).
    Anderson,
    /// Chi-square on category counts.
    Chi2,
    /// Population stability index (distance).
    Psi,
    /// Wasserstein distance over the reference standard deviation (distance).
    Wasserstein,
    /// Jensen–Shannon distance over categories (distance).
    JensenShannon,
}

impl TestKind {
    /// Parses a test name.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "ks" => TestKind::Ks,
            "cvm" | "cramervonmises" => TestKind::Cvm,
            "mannwhitneyu" | "mwu" => TestKind::MannWhitneyU,
            "anderson" => TestKind::Anderson,
            "chi2" => TestKind::Chi2,
            "psi" => TestKind::Psi,
            "wasserstein" => TestKind::Wasserstein,
            "jensenshannon" | "js" => TestKind::JensenShannon,
            _ => {
                return Err(Error::param(format!(
                    "unknown test '{s}'; expected one of ks, cvm, mannwhitneyu, anderson, chi2, psi, \
                     wasserstein, jensenshannon"
                )))
            }
        })
    }
    /// The name.
    pub fn name(&self) -> &'static str {
        match self {
            TestKind::Ks => "ks",
            TestKind::Cvm => "cvm",
            TestKind::MannWhitneyU => "mannwhitneyu",
            TestKind::Anderson => "anderson",
            TestKind::Chi2 => "chi2",
            TestKind::Psi => "psi",
            TestKind::Wasserstein => "wasserstein",
            TestKind::JensenShannon => "jensenshannon",
        }
    }
    fn is_distance(&self) -> bool {
        matches!(self, TestKind::Psi | TestKind::Wasserstein | TestKind::JensenShannon)
    }
}

/// How `compare` decides.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CompareOptions {
    /// Significance level for corrected p-values.
    pub alpha: f64,
    /// Multiple-testing correction across columns.
    pub correction: Correction,
    /// Per-column test overrides.
    pub tests: Vec<(String, TestKind)>,
    /// Drift needs `min_effect` when both samples have more rows than this (0: always).
    pub large_sample: u64,
    /// The smallest effect (PSI, or the distance of a distance test) that counts as drift.
    pub min_effect: f64,
    /// Reference-quantile bins for the numeric PSI.
    pub psi_bins: usize,
    /// Share given to empty bins in PSI.
    pub epsilon: f64,
    /// Share of drifted columns that makes the dataset drifted.
    pub drift_share: f64,
    /// Bars per histogram in the HTML report.
    pub hist_bins: usize,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            alpha: 0.05,
            correction: Correction::BenjaminiHochberg,
            tests: Vec::new(),
            large_sample: 0,
            min_effect: 0.1,
            psi_bins: 10,
            epsilon: 1e-4,
            drift_share: 0.5,
            hist_bins: 20,
        }
    }
}

/// Reference and current shares per histogram bar.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct Histogram {
    /// Bar labels (bin ranges or categories).
    pub labels: Vec<String>,
    /// Reference share per bar.
    pub reference: Vec<f64>,
    /// Current share per bar.
    pub current: Vec<f64>,
}

/// One column's drift finding.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ColumnReport {
    /// Column name.
    pub column: String,
    /// "numeric" or "categorical".
    pub kind: String,
    /// "ok", or what stopped the test: "missing_column", "kind_mismatch", "no_current_values",
    /// "no_reference_values".
    pub status: String,
    /// The test that ran.
    pub test: String,
    /// Its statistic (NaN when not run).
    pub statistic: f64,
    /// Its p-value (NaN for distance tests and when not run).
    pub pvalue: f64,
    /// The p-value after correction across columns.
    pub pvalue_corrected: f64,
    /// PSI of current against reference.
    pub effect_size: f64,
    /// The verdict.
    pub drift: bool,
    /// Reference non-missing values.
    pub n_reference: u64,
    /// Current non-missing values.
    pub n_current: u64,
    /// Missing share in the reference.
    pub null_share_reference: f64,
    /// Missing share in current data.
    pub null_share_current: f64,
    /// Current minus reference missing share.
    pub null_share_change: f64,
    /// Infinite values in the reference (numeric).
    pub n_inf_reference: u64,
    /// Infinite values in current data (numeric).
    pub n_inf_current: u64,
    /// Categories in current data never seen in the reference (first 50).
    pub unseen_categories: Vec<String>,
    /// Rows of current data holding unseen categories.
    pub n_unseen: u64,
    /// Rank error bound of the reference sketch as a share (0 when exact).
    pub reference_rank_error: f64,
    /// Histograms for the HTML report.
    pub histogram: Histogram,
}

/// The result of comparing current data against a profile.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DriftReport {
    /// Per reference column, in reference order.
    pub columns: Vec<ColumnReport>,
    /// Columns of current data the reference does not have.
    pub extra_columns: Vec<String>,
    /// Columns that drifted.
    pub n_drifted: usize,
    /// Drifted share of the reference columns.
    pub share_drifted: f64,
    /// Whether the share reached `drift_share`.
    pub dataset_drift: bool,
    /// The options used.
    pub options: CompareOptions,
}

fn nan_report(column: &str, kind: &str, status: &str, test: &str) -> ColumnReport {
    ColumnReport {
        column: column.to_owned(),
        kind: kind.to_owned(),
        status: status.to_owned(),
        test: test.to_owned(),
        statistic: f64::NAN,
        pvalue: f64::NAN,
        pvalue_corrected: f64::NAN,
        effect_size: f64::NAN,
        drift: true,
        n_reference: 0,
        n_current: 0,
        null_share_reference: f64::NAN,
        null_share_current: f64::NAN,
        null_share_change: f64::NAN,
        n_inf_reference: 0,
        n_inf_current: 0,
        unseen_categories: Vec::new(),
        n_unseen: 0,
        reference_rank_error: 0.0,
        histogram: Histogram::default(),
    }
}

fn key_label(k: &CatKey) -> String {
    match k {
        CatKey::Int(v) => v.to_string(),
        CatKey::Str(s) => s.clone(),
    }
}

fn share(part: u64, total: u64) -> f64 {
    if total == 0 {
        f64::NAN
    } else {
        part as f64 / total as f64
    }
}

fn fmt_num(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

fn numeric_histogram(rv: &[f64], rw: Option<&[f64]>, cur: &[f64], bins: usize) -> Histogram {
    // rv is sorted: infinities sit at the ends.
    let (lo, hi) = match (rv.iter().find(|v| v.is_finite()), rv.iter().rev().find(|v| v.is_finite())) {
        (Some(&a), Some(&b)) if b > a => (a, b),
        (Some(&a), _) => (a - 0.5, a + 0.5),
        _ => return Histogram::default(),
    };
    let width = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (1..bins).map(|i| lo + width * i as f64).collect();
    let rc = bin_counts_sorted(rv, rw, &edges);
    let cc = bin_counts_sorted(cur, None, &edges);
    let (rt, ct) = (rc.iter().sum::<f64>().max(1.0), cc.iter().sum::<f64>().max(1.0));
    let labels = (0..bins)
        .map(|i| format!("{} – {}", fmt_num(lo + width * i as f64), fmt_num(lo + width * (i + 1) as f64)))
        .collect();
    Histogram { labels, reference: rc.iter().map(|c| c / rt).collect(), current: cc.iter().map(|c| c / ct).collect() }
}

fn compare_numeric(
    name: &str,
    p: &NumericProfile,
    src: &NumericSource<'_>,
    n_rows: usize,
    test: TestKind,
    o: &CompareOptions,
    scratch: &mut Scratch,
) -> Result<ColumnReport> {
    let mut cur = std::mem::take(&mut scratch.values);
    let r = compare_numeric_values(name, p, src, n_rows, test, o, &mut cur, &mut scratch.sort);
    scratch.values = cur;
    r
}

#[allow(clippy::too_many_arguments)]
fn compare_numeric_values(
    name: &str,
    p: &NumericProfile,
    src: &NumericSource<'_>,
    n_rows: usize,
    test: TestKind,
    o: &CompareOptions,
    cur: &mut Vec<f64>,
    sort_scratch: &mut ReadScratch,
) -> Result<ColumnReport> {
    let (n_null_cur, n_inf_cur) = numeric_values(src, n_rows, cur, sort_scratch);
    let cur: &[f64] = cur;
    let mut r = nan_report(name, "numeric", "ok", test.name());
    let n_ref = p.n_rows - p.n_null;
    r.n_reference = n_ref;
    r.n_current = cur.len() as u64;
    r.null_share_reference = share(p.n_null, p.n_rows);
    r.null_share_current = share(n_null_cur, n_rows as u64);
    r.null_share_change = r.null_share_current - r.null_share_reference;
    r.n_inf_current = n_inf_cur;
    r.n_inf_reference = p.n_inf;
    if n_ref == 0 {
        r.status = "no_reference_values".into();
        return Ok(r);
    }
    if cur.is_empty() {
        r.status = "no_current_values".into();
        return Ok(r);
    }
    let (rv, rw): (std::borrow::Cow<'_, [f64]>, Option<Vec<f64>>) = match &p.values {
        Values::Exact(v) => (std::borrow::Cow::Borrowed(v.as_slice()), None),
        Values::Sketch(s) => {
            r.reference_rank_error = s.rank_error_bound();
            let (v, w) = s.weighted_points();
            (std::borrow::Cow::Owned(v), Some(w))
        }
    };
    let rw = rw.as_deref();
    // Effect size: PSI over reference-quantile bins (edges from the weighted reference when sketched).
    let edges: Vec<f64> = match &p.values {
        Values::Exact(v) => quantile_edges(v, o.psi_bins),
        Values::Sketch(s) => {
            let mut e: Vec<f64> = (1..o.psi_bins).map(|k| s.quantile(k as f64 / o.psi_bins as f64)).collect();
            e.dedup();
            e
        }
    }
    .into_iter()
    .filter(|e| e.is_finite())
    .collect();
    r.effect_size = psi_from_counts(&bin_counts_sorted(&rv, rw, &edges), &bin_counts_sorted(&cur, None, &edges), o.epsilon);
    r.histogram = numeric_histogram(&rv, rw, &cur, o.hist_bins);
    let exact_only = |t: TestKind| -> Result<()> {
        if rw.is_some() {
            return Err(Error::param(format!(
                "test '{}' for column '{name}' needs the exact reference values, but the profile keeps a \
                 sketch for it (more than exact_limit values); use ks, psi or wasserstein",
                t.name()
            )));
        }
        Ok(())
    };
    match test {
        TestKind::Ks => {
            let k = twosample::ks_2samp_present(&rv, rw, n_ref, &cur, Alternative::TwoSided, KsMethod::Auto)?;
            r.statistic = k.statistic;
            r.pvalue = k.pvalue;
        }
        TestKind::Cvm => {
            exact_only(test)?;
            let (s, pv) = twosample::cramervonmises_2samp(&rv, &cur, "auto")?;
            (r.statistic, r.pvalue) = (s, pv);
        }
        TestKind::MannWhitneyU => {
            exact_only(test)?;
            let (s, pv) = twosample::mannwhitneyu(&rv, &cur, true, Alternative::TwoSided, "auto")?;
            (r.statistic, r.pvalue) = (s, pv);
        }
        TestKind::Anderson => {
            exact_only(test)?;
            let (s, pv, _) = twosample::anderson_ksamp(&[&rv, &cur], true)?;
            (r.statistic, r.pvalue) = (s, pv);
        }
        TestKind::Psi => r.statistic = r.effect_size,
        TestKind::Wasserstein => {
            let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
            if !finite(&rv) || !finite(&cur) {
                r.status = "infinite_values".into();
                return Ok(r);
            }
            let (n, mean) = match rw {
                None => (rv.len() as f64, rv.iter().sum::<f64>() / rv.len() as f64),
                Some(w) => {
                    let t: f64 = w.iter().sum();
                    (t, rv.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / t)
                }
            };
            let var = match rw {
                None => rv.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n,
                Some(w) => rv.iter().zip(w).map(|(x, b)| b * (x - mean).powi(2)).sum::<f64>() / n,
            };
            let u = Sorted { values: rv.to_vec(), weights: rw.map(|w| w.to_vec()) };
            let v = Sorted { values: cur.to_vec(), weights: None };
            r.statistic = cdf_distance(1, &u, &v) / var.sqrt().max(f64::MIN_POSITIVE);
        }
        TestKind::Chi2 | TestKind::JensenShannon => {
            return Err(Error::param(format!(
                "test '{}' applies to categorical columns, but '{name}' is numeric",
                test.name()
            )))
        }
    }
    Ok(r)
}

fn compare_categorical(
    name: &str,
    p: &CategoricalProfile,
    src: &CategoricalSource,
    test: TestKind,
    o: &CompareOptions,
) -> Result<ColumnReport> {
    let mut r = nan_report(name, "categorical", "ok", test.name());
    let (cur_counts, n_null_cur) = categorical_counts(src);
    let n_rows = src.codes.len() as u64;
    let n_ref = p.n_rows - p.n_null;
    let n_cur = n_rows - n_null_cur;
    r.n_reference = n_ref;
    r.n_current = n_cur;
    r.null_share_reference = share(p.n_null, p.n_rows);
    r.null_share_current = share(n_null_cur, n_rows);
    r.null_share_change = r.null_share_current - r.null_share_reference;
    // Align current categories with the reference's; unseen ones get columns of their own.
    let index: HashMap<&CatKey, usize> = p.keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut refc: Vec<f64> = p.counts.iter().map(|&c| c as f64).collect();
    let mut curc = vec![0.0; refc.len()];
    let mut labels: Vec<String> = p.keys.iter().map(|k| key_label(k)).collect();
    for (k, &c) in src.keys.iter().zip(&cur_counts) {
        if c == 0 {
            continue;
        }
        match index.get(k) {
            Some(&i) => curc[i] += c as f64,
            None => {
                refc.push(0.0);
                curc.push(c as f64);
                labels.push(key_label(k));
                r.n_unseen += c;
                if r.unseen_categories.len() < 50 {
                    r.unseen_categories.push(key_label(k));
                }
            }
        }
    }
    if n_ref == 0 {
        r.status = "no_reference_values".into();
        return Ok(r);
    }
    if n_cur == 0 {
        r.status = "no_current_values".into();
        return Ok(r);
    }
    // Keep categories present in either sample.
    let keep: Vec<usize> = (0..refc.len()).filter(|&i| refc[i] > 0.0 || curc[i] > 0.0).collect();
    let rk: Vec<f64> = keep.iter().map(|&i| refc[i]).collect();
    let ck: Vec<f64> = keep.iter().map(|&i| curc[i]).collect();
    r.effect_size = psi_from_counts(&rk, &ck, o.epsilon);
    // Histogram: the 20 most frequent reference categories, then unseen ones, the rest pooled.
    let mut order: Vec<usize> = (0..keep.len()).collect();
    order.sort_by(|&a, &b| rk[b].total_cmp(&rk[a]).then(ck[b].total_cmp(&ck[a])));
    let shown = order.len().min(o.hist_bins.max(2));
    let (rt, ct) = (n_ref as f64, n_cur as f64);
    let mut h = Histogram::default();
    for &i in &order[..shown] {
        h.labels.push(labels[keep[i]].clone());
        h.reference.push(rk[i] / rt);
        h.current.push(ck[i] / ct);
    }
    if order.len() > shown {
        h.labels.push(format!("({} others)", order.len() - shown));
        h.reference.push(order[shown..].iter().map(|&i| rk[i]).sum::<f64>() / rt);
        h.current.push(order[shown..].iter().map(|&i| ck[i]).sum::<f64>() / ct);
    }
    r.histogram = h;
    match test {
        TestKind::Chi2 => {
            if keep.len() < 2 {
                (r.statistic, r.pvalue) = (0.0, 1.0);
            } else {
                let mut table = rk.clone();
                table.extend_from_slice(&ck);
                let c = twosample::chi2_contingency(&table, 2, keep.len(), true)?;
                (r.statistic, r.pvalue) = (c.statistic, c.pvalue);
            }
        }
        TestKind::Psi => r.statistic = r.effect_size,
        TestKind::JensenShannon => r.statistic = jensenshannon(&rk, &ck, Some(2.0))?,
        _ => {
            return Err(Error::param(format!(
                "test '{}' applies to numeric columns, but '{name}' is categorical",
                test.name()
            )))
        }
    }
    Ok(r)
}

/// The columns of an Arrow schema that drift checks treat as categories without being told:
/// strings and booleans (dictionary columns always are).
pub fn default_categorical(schema: &arrow_schema::Schema) -> Vec<crate::data::frame::FeatureRef> {
    use arrow_schema::DataType;
    schema
        .fields()
        .iter()
        .filter(|f| matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean))
        .map(|f| crate::data::frame::FeatureRef::Name(f.name().clone()))
        .collect()
}

impl ReferenceProfile {
    /// Compares `current` with the profile, column by column (in parallel), then corrects p-values.
    pub fn compare(&self, current: &Frame<'_>, o: &CompareOptions, num_threads: i64) -> Result<DriftReport> {
        if !(o.alpha > 0.0 && o.alpha < 1.0) {
            return Err(Error::param(format!("alpha must be in (0, 1), got {}", o.alpha)));
        }
        if o.psi_bins < 2 || o.hist_bins < 2 {
            return Err(Error::param("psi_bins and hist_bins must be at least 2"));
        }
        for (col, _) in &o.tests {
            if !self.names.contains(col) {
                return Err(Error::param(format!("tests names column '{col}', which the reference profile does not have")));
            }
        }
        let cur_index: HashMap<&str, usize> = current.names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let results: Vec<Result<ColumnReport>> = crate::parallel::run_in_pool(num_threads, || {
            self.names
                .par_iter()
                .zip(self.columns.par_iter())
                .map_init(Scratch::default, |scratch, (name, prof)| {
                    let default = match prof {
                        ColumnProfile::Numeric(_) => TestKind::Ks,
                        ColumnProfile::Categorical(_) => TestKind::Chi2,
                    };
                    let test = o.tests.iter().find(|(c, _)| c == name).map(|(_, t)| *t).unwrap_or(default);
                    let Some(&j) = cur_index.get(name.as_str()) else {
                        let mut r = nan_report(name, prof.kind(), "missing_column", test.name());
                        let (rows, nulls) = prof.counts();
                        r.n_reference = rows - nulls;
                        return Ok(r);
                    };
                    match (prof, &current.columns[j]) {
                        (ColumnProfile::Numeric(p), ColumnSource::Numeric(src)) => {
                            compare_numeric(name, p, src, current.n_rows, test, o, scratch)
                        }
                        (ColumnProfile::Categorical(p), ColumnSource::Categorical(src)) => {
                            compare_categorical(name, p, src, test, o)
                        }
                        (p, _) => {
                            let mut r = nan_report(name, p.kind(), "kind_mismatch", test.name());
                            let (rows, nulls) = p.counts();
                            r.n_reference = rows - nulls;
                            Ok(r)
                        }
                    }
                })
                .collect()
        })?;
        let mut columns = results.into_iter().collect::<Result<Vec<_>>>()?;
        let pvals: Vec<f64> = columns.iter().map(|c| c.pvalue).collect();
        let adjusted = adjust(&pvals, o.correction)?;
        for (c, q) in columns.iter_mut().zip(adjusted) {
            c.pvalue_corrected = q;
            if c.status != "ok" {
                c.drift = true;
                continue;
            }
            let test = TestKind::parse(&c.test)?;
            c.drift = if test.is_distance() {
                c.statistic >= o.min_effect
            } else {
                let significant = q < o.alpha;
                if c.n_reference > o.large_sample && c.n_current > o.large_sample {
                    significant && c.effect_size >= o.min_effect
                } else {
                    significant
                }
            };
        }
        let extra_columns = current.names.iter().filter(|n| !self.names.contains(n)).cloned().collect();
        let n_drifted = columns.iter().filter(|c| c.drift).count();
        let share_drifted = share(n_drifted as u64, columns.len() as u64);
        Ok(DriftReport {
            columns,
            extra_columns,
            n_drifted,
            share_drifted,
            dataset_drift: share_drifted >= o.drift_share,
            options: o.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::DenseMatrix;
    use crate::data::sample::SplitMix64;

    fn frame_data(n: usize, shift: f64, seed: u64) -> ndarray::Array2<f64> {
        let mut rng = SplitMix64::new(seed);
        ndarray::Array2::from_shape_fn((n, 3), |(_, j)| {
            let u = rng.next_f64();
            match j {
                0 => u + shift,
                1 => (u * 4.0).floor(),
                _ => u * 10.0,
            }
        })
    }

    #[test]
    fn fit_compare_merge() {
        let a = frame_data(4000, 0.0, 1);
        let b = frame_data(3000, 0.3, 2);
        let fa = Frame::from_dense(DenseMatrix::F64(a.view()), None, &[crate::data::frame::FeatureRef::Index(1)]).unwrap();
        let fb = Frame::from_dense(DenseMatrix::F64(b.view()), None, &[crate::data::frame::FeatureRef::Index(1)]).unwrap();
        let prof = ReferenceProfile::fit(&fa, ProfileConfig::default(), 2).unwrap();
        let rep = prof.compare(&fb, &CompareOptions::default(), 2).unwrap();
        assert!(rep.columns[0].drift && !rep.columns[1].drift && !rep.columns[2].drift, "{rep:?}");
        assert_eq!(rep.columns[1].test, "chi2");
        // halves merge into the whole
        let h1 = Frame::from_dense(DenseMatrix::F64(a.slice(ndarray::s![..1500, ..])), None, &[crate::data::frame::FeatureRef::Index(1)]).unwrap();
        let h2 = Frame::from_dense(DenseMatrix::F64(a.slice(ndarray::s![1500.., ..])), None, &[crate::data::frame::FeatureRef::Index(1)]).unwrap();
        let merged = ReferenceProfile::fit(&h1, ProfileConfig::default(), 1)
            .unwrap()
            .merge(&ReferenceProfile::fit(&h2, ProfileConfig::default(), 1).unwrap())
            .unwrap();
        let ColumnProfile::Categorical(m) = &merged.columns[1] else { panic!() };
        let ColumnProfile::Categorical(w) = &prof.columns[1] else { panic!() };
        assert_eq!(m.counts.iter().sum::<u64>(), w.counts.iter().sum::<u64>());
        assert_eq!(merged.columns[0], prof.columns[0]);
    }
}
