//! The domain classifier: a multivariate drift check. A small gradient-boosted model learns to tell
//! reference rows (label 0) from current rows (label 1); its ROC AUC on held-out rows says how
//! separable the two samples are: about 0.5 when they come from one distribution, towards 1 when
//! they differ, including in ways no single column shows (a changed correlation between columns whose
//! marginals stay the same). The features the model splits on most (by total gain) say where the
//! difference lies.
//!
//! Rows: at most `max_rows` from each sample (a seeded uniform sample without replacement, so the
//! classes stay balanced when one sample is much larger). Each sampled row is held out with
//! probability `test_size` (seeded), the model trains on the rest and is scored on the held-out rows.
//! Same data, options and seed give the same AUC whatever the thread count.

use arrow_array::Float64Array;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::data::frame::{CategoricalSource, ColumnSource, FloatChunk, KeyInterner, NumericSource};
use crate::data::sample::{sample_rows, SplitMix64};
use crate::data::{BinConfig, Dataset, Frame};
use crate::error::{Error, Result};
use crate::gbdt::metric::auc;
use crate::gbdt::{GbdtParams, ParamValue, Trainer};
use crate::predict::Forest;

/// How the domain classifier samples, trains and decides.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DomainOptions {
    /// Most rows taken from each sample.
    pub max_rows: usize,
    /// Share of the sampled rows held out for the AUC.
    pub test_size: f64,
    /// Boosting rounds.
    pub num_boost_round: usize,
    /// Leaves per tree.
    pub num_leaves: usize,
    /// Learning rate.
    pub learning_rate: f64,
    /// Least rows per leaf.
    pub min_data_in_leaf: usize,
    /// Seed of the row sample, the split and the model.
    pub seed: u64,
    /// Held-out AUC at or above which the samples count as drifted.
    pub threshold: f64,
    /// Features listed in the report, most separating first.
    pub top_features: usize,
}

impl Default for DomainOptions {
    fn default() -> Self {
        DomainOptions {
            max_rows: 50_000,
            test_size: 0.3,
            num_boost_round: 50,
            num_leaves: 15,
            learning_rate: 0.1,
            min_data_in_leaf: 20,
            seed: 0,
            threshold: 0.55,
            top_features: 5,
        }
    }
}

/// What the domain classifier found.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DomainReport {
    /// ROC AUC of the classifier on the held-out rows.
    pub auc: f64,
    /// Whether `auc` reached the threshold.
    pub drift: bool,
    /// The threshold used.
    pub threshold: f64,
    /// Reference rows sampled.
    pub n_reference: usize,
    /// Current rows sampled.
    pub n_current: usize,
    /// Rows trained on.
    pub n_train: usize,
    /// Rows scored.
    pub n_test: usize,
    /// The features with the largest total split gain, largest first (at most `top_features`).
    pub top_features: Vec<String>,
    /// Each listed feature's share of the model's total gain.
    pub importance: Vec<f64>,
}

fn check(o: &DomainOptions) -> Result<()> {
    if o.max_rows < 10 {
        return Err(Error::param(format!("max_rows must be at least 10, got {}", o.max_rows)));
    }
    if !(o.test_size > 0.0 && o.test_size < 1.0) {
        return Err(Error::param(format!("test_size must be in (0, 1), got {}", o.test_size)));
    }
    if o.num_boost_round < 1 {
        return Err(Error::param("num_boost_round must be at least 1, got 0"));
    }
    if !(o.threshold > 0.5 && o.threshold <= 1.0) {
        return Err(Error::param(format!("threshold must be in (0.5, 1], got {}", o.threshold)));
    }
    Ok(())
}

/// The rows of a numeric column at ascending `rows` (NaN where missing).
fn gather_numeric(src: &NumericSource<'_>, rows: &[usize], out: &mut Vec<f64>) {
    const BLOCK: usize = 8192;
    let mut buf = vec![0.0; BLOCK];
    let mut k = 0;
    while k < rows.len() {
        let start = rows[k];
        let len = BLOCK.min(rows[rows.len() - 1] + 1 - start);
        src.read(start, &mut buf[..len]);
        while k < rows.len() && rows[k] < start + len {
            out.push(buf[rows[k] - start]);
            k += 1;
        }
    }
}

/// One column of the stacked sample: reference rows, then current rows.
enum Stacked {
    Numeric(Vec<f64>),
    Categorical(CategoricalSource),
}

impl Stacked {
    /// The rows `idx` of the stacked column, as a frame column (codes keep the shared key table).
    fn take(&self, idx: &[usize]) -> ColumnSource<'static> {
        match self {
            Stacked::Numeric(v) => {
                let vals: Vec<f64> = idx.iter().map(|&i| v[i]).collect();
                ColumnSource::Numeric(NumericSource::from_chunks(vec![FloatChunk::F64(Float64Array::from(vals))]))
            }
            Stacked::Categorical(c) => ColumnSource::Categorical(CategoricalSource {
                keys: c.keys.clone(),
                codes: idx.iter().map(|&i| c.codes[i]).collect(),
            }),
        }
    }
}

fn stack_columns(
    reference: &Frame<'_>,
    current: &Frame<'_>,
    ref_rows: &[usize],
    cur_rows: &[usize],
) -> Result<Vec<Stacked>> {
    let mut out = Vec::with_capacity(reference.names.len());
    for (name, rcol) in reference.names.iter().zip(&reference.columns) {
        let j = current.names.iter().position(|n| n == name).ok_or_else(|| {
            Error::data(format!("current data has no column '{name}', which the reference data has"))
        })?;
        out.push(match (rcol, &current.columns[j]) {
            (ColumnSource::Numeric(r), ColumnSource::Numeric(c)) => {
                let mut v = Vec::with_capacity(ref_rows.len() + cur_rows.len());
                gather_numeric(r, ref_rows, &mut v);
                gather_numeric(c, cur_rows, &mut v);
                Stacked::Numeric(v)
            }
            (ColumnSource::Categorical(r), ColumnSource::Categorical(c)) => {
                // One key table for both samples: equal categories get equal codes.
                let mut interner = KeyInterner::default();
                let mut codes = Vec::with_capacity(ref_rows.len() + cur_rows.len());
                for (src, rows) in [(r, ref_rows), (c, cur_rows)] {
                    let table: Vec<i32> = src.keys.iter().map(|k| interner.key(k)).collect();
                    codes.extend(rows.iter().map(|&i| {
                        let code = src.codes[i];
                        if code < 0 {
                            -1
                        } else {
                            table[code as usize]
                        }
                    }));
                }
                Stacked::Categorical(CategoricalSource { keys: interner.into_keys(), codes })
            }
            (r, _) => {
                let kind = |c: &ColumnSource<'_>| if matches!(c, ColumnSource::Numeric(_)) { "numeric" } else { "categorical" };
                return Err(Error::data(format!(
                    "column '{name}' is {} in the reference data but {} in current data",
                    kind(r),
                    kind(&current.columns[j])
                )));
            }
        });
    }
    Ok(out)
}

/// Trains the classifier on samples of `reference` and `current` and scores it on held-out rows.
pub fn domain_classifier(
    reference: &Frame<'_>,
    current: &Frame<'_>,
    o: &DomainOptions,
    num_threads: i64,
) -> Result<DomainReport> {
    check(o)?;
    if reference.n_rows == 0 || current.n_rows == 0 {
        return Err(Error::data("the domain classifier needs rows in both the reference and the current data"));
    }
    let ref_rows = sample_rows(reference.n_rows, o.max_rows, o.seed);
    let cur_rows = sample_rows(current.n_rows, o.max_rows, o.seed ^ 0x5DEE_CE66_D1CE_4E5B);
    let stacked = stack_columns(reference, current, &ref_rows, &cur_rows)?;
    let n = ref_rows.len() + cur_rows.len();
    let label: Vec<f64> = (0..n).map(|i| if i < ref_rows.len() { 0.0 } else { 1.0 }).collect();
    let mut rng = SplitMix64::new(o.seed.wrapping_add(0xD0_4A11));
    let held: Vec<bool> = (0..n).map(|_| rng.next_f64() < o.test_size).collect();
    let train_idx: Vec<usize> = (0..n).filter(|&i| !held[i]).collect();
    let test_idx: Vec<usize> = (0..n).filter(|&i| held[i]).collect();
    let classes = |idx: &[usize]| {
        let pos = idx.iter().filter(|&&i| label[i] > 0.5).count();
        pos > 0 && pos < idx.len()
    };
    if !classes(&train_idx) || !classes(&test_idx) {
        return Err(Error::data(format!(
            "too few rows for the domain classifier ({} reference and {} current sampled): the training \
             and held-out parts each need rows of both samples",
            ref_rows.len(),
            cur_rows.len()
        )));
    }
    let frame_of = |idx: &[usize]| Frame {
        names: reference.names.clone(),
        columns: stacked.iter().map(|c| c.take(idx)).collect(),
        n_rows: idx.len(),
    };
    let (train_frame, test_frame) = (frame_of(&train_idx), frame_of(&test_idx));
    let bins = BinConfig { num_threads, data_random_seed: o.seed, ..BinConfig::default() };
    let train_label: Vec<f64> = train_idx.iter().map(|&i| label[i]).collect();
    let train = Dataset::construct(&train_frame, Some(train_label), None, &bins, None)?;
    let pairs: Vec<(String, ParamValue)> = vec![
        ("objective".into(), ParamValue::Str("binary".into())),
        ("num_leaves".into(), ParamValue::Int(o.num_leaves as i64)),
        ("learning_rate".into(), ParamValue::Float(o.learning_rate)),
        ("min_data_in_leaf".into(), ParamValue::Int(o.min_data_in_leaf as i64)),
        ("seed".into(), ParamValue::Int(o.seed as i64)),
        ("num_threads".into(), ParamValue::Int(num_threads)),
    ];
    let params = GbdtParams::from_pairs(&pairs)?;
    let mut trainer = Trainer::new(params, Arc::new(train), Vec::new(), None)?;
    for _ in 0..o.num_boost_round {
        if trainer.update(None)? {
            break;
        }
    }
    let model = trainer.model();
    let forest = Forest::from_model(model);
    let scores = forest.predict(&test_frame, model.trees_for(None), false, num_threads)?;
    let test_label: Vec<f64> = test_idx.iter().map(|&i| label[i]).collect();
    let auc = auc(&scores, &test_label, None);
    let gain = model.feature_importance(true, None);
    let total: f64 = gain.iter().sum();
    let mut order: Vec<usize> = (0..gain.len()).filter(|&f| gain[f] > 0.0).collect();
    order.sort_by(|&x, &y| gain[y].total_cmp(&gain[x]).then(x.cmp(&y)));
    order.truncate(o.top_features);
    Ok(DomainReport {
        auc,
        drift: auc >= o.threshold,
        threshold: o.threshold,
        n_reference: ref_rows.len(),
        n_current: cur_rows.len(),
        n_train: train_idx.len(),
        n_test: test_idx.len(),
        top_features: order.iter().map(|&f| model.feature_names[f].clone()).collect(),
        importance: order.iter().map(|&f| gain[f] / total).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::{DenseMatrix, FeatureRef};

    fn normal(rng: &mut SplitMix64) -> f64 {
        let u = rng.next_f64().max(1e-300);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * rng.next_f64()).cos()
    }

    /// Three columns: x, y (correlated with x by `rho`), a category; standard normal marginals.
    fn sample(n: usize, rho: f64, seed: u64) -> ndarray::Array2<f64> {
        let mut rng = SplitMix64::new(seed);
        let mut m = ndarray::Array2::zeros((n, 3));
        for i in 0..n {
            let (x, z) = (normal(&mut rng), normal(&mut rng));
            m[[i, 0]] = x;
            m[[i, 1]] = rho * x + (1.0 - rho * rho).sqrt() * z;
            m[[i, 2]] = (rng.next_f64() * 4.0).floor();
        }
        m
    }

    fn run(a: &ndarray::Array2<f64>, b: &ndarray::Array2<f64>, threads: i64) -> DomainReport {
        let cat = [FeatureRef::Index(2)];
        let fa = Frame::from_dense(DenseMatrix::F64(a.view()), None, &cat).unwrap();
        let fb = Frame::from_dense(DenseMatrix::F64(b.view()), None, &cat).unwrap();
        domain_classifier(&fa, &fb, &DomainOptions { max_rows: 3000, ..Default::default() }, threads).unwrap()
    }

    #[test]
    fn same_distribution_near_half_changed_correlation_caught() {
        let same = run(&sample(4000, 0.0, 1), &sample(4000, 0.0, 2), 2);
        assert!((same.auc - 0.5).abs() < 0.06 && !same.drift, "{same:?}");
        assert_eq!((same.n_reference, same.n_current), (3000, 3000));
        let corr = run(&sample(4000, 0.0, 3), &sample(4000, 0.9, 4), 2);
        assert!(corr.auc > 0.75 && corr.drift, "{corr:?}");
        assert_eq!(corr.top_features[..2].iter().filter(|f| *f == "Column_0" || *f == "Column_1").count(), 2, "{corr:?}");
        // Seeded: the thread count does not change the result.
        assert_eq!(run(&sample(4000, 0.0, 3), &sample(4000, 0.9, 4), 1), corr);
    }

    #[test]
    fn bad_options_and_columns_are_named() {
        let a = sample(100, 0.0, 1);
        let fa = Frame::from_dense(DenseMatrix::F64(a.view()), None, &[]).unwrap();
        let fb = Frame::from_dense(DenseMatrix::F64(a.view()), Some(vec!["Column_0".into(), "Column_1".into(), "other".into()]), &[]).unwrap();
        let e = domain_classifier(&fa, &fb, &DomainOptions::default(), 1).unwrap_err().to_string();
        assert!(e.contains("Column_2"), "{e}");
        let e = domain_classifier(&fa, &fa, &DomainOptions { test_size: 1.5, ..Default::default() }, 1).unwrap_err().to_string();
        assert!(e.contains("test_size"), "{e}");
    }
}
