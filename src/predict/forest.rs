//! The compiled forest: trees as flat node arrays, evaluated over blocks of rows read from any
//! [`Frame`] (numpy views, Arrow columns, categorical codes).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::compiled::Compiled;
use super::OutputTransform;
use crate::data::frame::{default_names, ColumnSource, Frame};
use crate::data::{BinMapper, CatKey};
use crate::error::{Error, Result};
use crate::gbdt::boosting::Model;
use crate::gbdt::tree::bit;
use crate::parallel::run_in_pool;

/// One internal node.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Feature index.
    pub feature: u32,
    /// Numeric: values `<= threshold` go left.
    pub threshold: f64,
    /// Children: `>= 0` a node, `< 0` the leaf `!child`.
    pub left: i32,
    /// See `left`.
    pub right: i32,
    /// Where a missing numeric value goes.
    pub default_left: bool,
    /// Missing-value rule of a numeric node (see `gbdt::tree::TreeNode::missing`).
    pub missing: u8,
    /// The category set lists the categories that go right (NaN then follows `default_left`).
    pub cat_inverted: bool,
    /// Categorical: bitset words `cat_start..cat_start + cat_len` of the tree's `cat_words`; 0 = numeric.
    pub cat_len: u32,
    /// See `cat_len`.
    pub cat_start: u32,
}

/// One tree.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FlatTree {
    /// Internal nodes, root first; empty for a single leaf.
    pub nodes: Vec<Node>,
    /// Leaf outputs.
    pub leaf_values: Vec<f64>,
    /// Category bitsets of categorical nodes.
    pub cat_words: Vec<u32>,
    /// Training rows that reached each node and each leaf (TreeSHAP's cover).
    pub node_cover: Vec<f64>,
    /// See `node_cover`.
    pub leaf_cover: Vec<f64>,
}

impl FlatTree {
    /// Whether value `x` goes left at node `n`.
    #[inline]
    pub fn goes_left(&self, n: &Node, x: f64) -> bool {
        if n.cat_len > 0 {
            // Categories are whole numbers >= 0; NaN and negatives are in no set.
            let in_set = !x.is_nan() && x >= 0.0 && {
                let set = &self.cat_words[n.cat_start as usize..(n.cat_start + n.cat_len) as usize];
                bit(set, x as u32)
            };
            if n.cat_inverted {
                if x.is_nan() {
                    n.default_left
                } else {
                    !in_set
                }
            } else {
                in_set
            }
        } else {
            match n.missing {
                0 => {
                    if x.is_nan() {
                        n.default_left
                    } else {
                        x <= n.threshold
                    }
                }
                1 => {
                    let x = if x.is_nan() { 0.0 } else { x };
                    if x.abs() <= ZERO_THRESHOLD {
                        n.default_left
                    } else {
                        x <= n.threshold
                    }
                }
                _ => (if x.is_nan() { 0.0 } else { x }) <= n.threshold,
            }
        }
    }

    /// The leaf of one row (`row[f]` = value of feature f; categorical features as bin index).
    #[inline]
    pub fn leaf(&self, row: &[f64]) -> usize {
        if self.nodes.is_empty() {
            return 0;
        }
        let mut at = 0i32;
        while at >= 0 {
            let n = &self.nodes[at as usize];
            at = if self.goes_left(n, row[n.feature as usize]) { n.left } else { n.right };
        }
        !at as usize
    }
}

/// A whole model, ready to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct Forest {
    /// The evaluation layout of `trees`.
    pub compiled: Compiled,
    /// Trees, round by round, one per score within a round.
    pub trees: Vec<FlatTree>,
    /// Scores per row.
    pub num_scores: usize,
    /// Raw score before any tree, per score.
    pub base_score: Vec<f64>,
    /// Output transform.
    pub transform: OutputTransform,
    /// Feature names the model expects, in order.
    pub feature_names: Vec<String>,
    /// Bin rules (categorical features map their values to bins through these).
    pub mappers: Vec<BinMapper>,
    /// Predictions average the trees' outputs over rounds (LightGBM random forests).
    pub average_output: bool,
    /// Scores accumulate in float32 (XGBoost models).
    pub accumulate_f32: bool,
    /// Per tree, what TreeSHAP needs beyond the tree.
    pub shap: Vec<super::shap::ShapInfo>,
}

/// Values this close to zero count as zero for zero-as-missing nodes (LightGBM's kZeroThreshold).
pub const ZERO_THRESHOLD: f64 = 1e-35;

/// Rows evaluated together.
const BLOCK: usize = 256;
/// Below this many rows, prediction stays on the calling thread.
const PARALLEL_MIN_ROWS: usize = 4096;

impl Forest {
    /// Compiles a trained model.
    pub fn from_model(m: &Model) -> Forest {
        let trees: Vec<FlatTree> = m
            .trees
            .iter()
            .map(|t| {
                let mut cat_words = Vec::new();
                let nodes = t
                    .nodes
                    .iter()
                    .map(|n| {
                        let (cat_start, cat_len) = if n.cat_left.is_empty() {
                            (0, 0)
                        } else {
                            let s = cat_words.len() as u32;
                            cat_words.extend_from_slice(&n.cat_left);
                            (s, n.cat_left.len() as u32)
                        };
                        Node {
                            feature: n.feature,
                            threshold: n.threshold,
                            left: n.left,
                            right: n.right,
                            default_left: n.default_left,
                            missing: n.missing,
                            cat_inverted: n.cat_inverted,
                            cat_len,
                            cat_start,
                        }
                    })
                    .collect();
                FlatTree {
                    nodes,
                    leaf_values: t.leaf_value.clone(),
                    cat_words,
                    node_cover: t.nodes.iter().map(|n| if t.cover_is_hessian { n.hess } else { n.count as f64 }).collect(),
                    leaf_cover: if t.cover_is_hessian {
                        t.leaf_hess.clone()
                    } else {
                        t.leaf_count.iter().map(|&c| c as f64).collect()
                    },
                }
            })
            .collect();
        Forest {
            compiled: Compiled::new(&trees, m.accumulate_f32),
            shap: trees.iter().map(super::shap::ShapInfo::new).collect(),
            trees,
            num_scores: m.num_scores,
            base_score: m.base_score.clone(),
            transform: m.transform,
            feature_names: m.feature_names.clone(),
            mappers: m.mappers.clone(),
            average_output: m.average_output,
            accumulate_f32: m.accumulate_f32,
        }
    }

    /// Number of features expected.
    pub fn num_features(&self) -> usize {
        self.feature_names.len()
    }

    fn check_frame(&self, frame: &Frame<'_>) -> Result<()> {
        let nf = self.num_features();
        if frame.n_cols() != nf {
            return Err(Error::data(format!(
                "the model expects {nf} features but the data has {} columns",
                frame.n_cols()
            )));
        }
        if frame.names != default_names(nf) && frame.names != self.feature_names {
            let j = (0..nf).find(|&j| frame.names[j] != self.feature_names[j]).unwrap_or(0);
            return Err(Error::data(format!(
                "column {j} is named '{}' but the model's feature {j} is '{}'; pass the columns in training order",
                frame.names[j], self.feature_names[j]
            )));
        }
        Ok(())
    }

    /// Runs `per_block(buf, rows, out)` over blocks of `frame`: `buf` holds the block's rows, row-major
    /// or, with `col_major`, column by column (categorical features as their bin index), `out` their
    /// `width` outputs each. Large inputs are split over a local pool.
    fn map_rows<F>(&self, frame: &Frame<'_>, width: usize, num_threads: i64, col_major: bool, per_block: F) -> Result<Vec<f64>>
    where
        F: Fn(&[f64], usize, &mut [f64]) + Sync,
    {
        self.check_frame(frame)?;
        let nf = self.num_features();
        let n = frame.n_rows;
        // Categorical columns: code -> bin, once per column.
        let mut tables: Vec<Option<Vec<f64>>> = Vec::with_capacity(nf);
        for (j, col) in frame.columns.iter().enumerate() {
            let m = &self.mappers[j];
            tables.push(match (col, m.is_categorical()) {
                (ColumnSource::Categorical(c), true) => {
                    Some(m.category_table(&c.keys).into_iter().map(|b| b as f64).collect())
                }
                (ColumnSource::Categorical(_), false) => {
                    return Err(Error::data(format!(
                        "column '{}' is categorical in the data but numeric in the model",
                        self.feature_names[j]
                    )))
                }
                _ => None,
            });
        }
        let mut out = vec![0.0; n * width];
        let work = |(b, chunk): (usize, &mut [f64])| {
            let row0 = b * BLOCK;
            let rows = chunk.len() / width;
            let mut buf = vec![0.0f64; rows * nf];
            let mut col = vec![0.0f64; if col_major { 0 } else { rows }];
            // Element (r, j) of the block.
            let at = |r: usize, j: usize| if col_major { j * rows + r } else { r * nf + j };
            for (j, c) in frame.columns.iter().enumerate() {
                let m = &self.mappers[j];
                match c {
                    ColumnSource::Numeric(src) => {
                        if col_major {
                            src.read(row0, &mut buf[j * rows..(j + 1) * rows]);
                        } else {
                            src.read(row0, &mut col);
                        }
                        if let BinMapper::Categorical { .. } = m {
                            // Whole-number values name categories; anything else is missing.
                            let values: &[f64] = if col_major { &buf[j * rows..(j + 1) * rows] } else { &col };
                            let missing = m.missing_bin() as f64;
                            let keys: Vec<CatKey> = values
                                .iter()
                                .map(|&v| CatKey::Int(if v.is_finite() && v.fract() == 0.0 { v as i64 } else { i64::MIN }))
                                .collect();
                            let bins: Vec<f64> = m
                                .category_table(&keys)
                                .into_iter()
                                .zip(values.iter())
                                .map(|(bin, v)| if v.is_nan() { missing } else { bin as f64 })
                                .collect();
                            for (r, b) in bins.into_iter().enumerate() {
                                buf[at(r, j)] = b;
                            }
                        } else if !col_major {
                            for (r, &v) in col.iter().enumerate() {
                                buf[r * nf + j] = v;
                            }
                        }
                    }
                    ColumnSource::Categorical(cs) => {
                        let table = tables[j].as_ref().unwrap();
                        let missing = m.missing_bin() as f64;
                        for r in 0..rows {
                            let code = cs.codes[row0 + r];
                            buf[at(r, j)] = if code < 0 { missing } else { table[code as usize] };
                        }
                    }
                }
            }
            per_block(&buf, rows, chunk);
        };
        if n >= PARALLEL_MIN_ROWS && crate::parallel::resolve_threads(num_threads) > 1 {
            run_in_pool(num_threads, || out.par_chunks_mut(BLOCK * width).enumerate().for_each(work))?;
        } else {
            out.chunks_mut(BLOCK * width).enumerate().for_each(work);
        }
        Ok(out)
    }

    /// Raw scores (before the output transform), row-major `n_rows x num_scores`, from the first
    /// `n_trees` trees.
    pub fn predict_raw(&self, frame: &Frame<'_>, n_trees: usize, num_threads: i64) -> Result<Vec<f64>> {
        let k = self.num_scores;
        let nf = self.num_features();
        let col_major = self.compiled.prefers_columns();
        let init = |out: &mut [f64]| {
            for o in out.chunks_mut(k) {
                o.copy_from_slice(&self.base_score);
                if self.accumulate_f32 {
                    for v in o.iter_mut() {
                        *v = *v as f32 as f64;
                    }
                }
            }
        };
        if col_major && !self.has_categorical() {
            // A float64 matrix in C or F order is read where it lies, without a copy.
            if let Some((values, rs, cs)) = frame.dense_f64() {
                self.check_frame(frame)?;
                let n = frame.n_rows;
                let mut out = vec![0.0; n * k];
                let work = |(b, chunk): (usize, &mut [f64])| {
                    init(chunk);
                    let rows = chunk.len() / k;
                    let r0 = b * BLOCK;
                    self.compiled.add_block_view(&values[r0 * rs..], rs, cs, nf, rows, n_trees, k, chunk);
                };
                if n >= PARALLEL_MIN_ROWS && crate::parallel::resolve_threads(num_threads) > 1 {
                    run_in_pool(num_threads, || out.par_chunks_mut(BLOCK * k).enumerate().for_each(work))?;
                } else {
                    out.chunks_mut(BLOCK * k).enumerate().for_each(work);
                }
                return Ok(out);
            }
        }
        self.map_rows(frame, k, num_threads, col_major, |buf, rows, out| {
            init(out);
            if col_major {
                self.compiled.add_block_cols(buf, nf, rows, n_trees, k, out);
            } else {
                self.compiled.add_block(buf, nf, rows, n_trees, k, out);
            }
        })
    }

    /// SHAP values (path-dependent TreeSHAP), row-major `n_rows x (num_scores * (features + 1))`:
    /// per score, one column per feature and last the expected value, as LightGBM's pred_contrib.
    /// Each row's values sum to its raw score.
    pub fn predict_contrib(&self, frame: &Frame<'_>, n_trees: usize, num_threads: i64) -> Result<Vec<f64>> {
        let k = self.num_scores;
        let nf = self.num_features();
        let trees = &self.trees[..n_trees.min(self.trees.len())];
        let width = k * (nf + 1);
        self.map_rows(frame, width, num_threads, false, |buf, rows, out| {
            let mut scratch = super::shap::ShapScratch::default();
            for r in 0..rows {
                let row = &buf[r * nf..(r + 1) * nf];
                let o = &mut out[r * width..(r + 1) * width];
                o.fill(0.0);
                for c in 0..k {
                    o[c * (nf + 1) + nf] = self.base_score[c];
                }
                for (t, tree) in trees.iter().enumerate() {
                    let c = t % k;
                    super::shap::tree_shap(tree, &self.shap[t], row, &mut o[c * (nf + 1)..(c + 1) * (nf + 1)], &mut scratch);
                }
            }
        })
    }

    /// Whether some feature is categorical (its values must be mapped to bins before evaluation).
    pub fn has_categorical(&self) -> bool {
        self.mappers.iter().any(|m| m.is_categorical())
    }

    /// One row, without threads or allocation: `row` holds the feature values (for categorical
    /// features, whole-number category values), `scratch` receives the mapped row when the model has
    /// categorical features (as long as `row`; else it may be empty), `out` the `num_scores` predictions.
    pub fn predict_one(&self, row: &[f64], scratch: &mut [f64], n_trees: usize, raw_score: bool, out: &mut [f64]) -> Result<()> {
        let nf = self.num_features();
        if row.len() != nf {
            return Err(Error::data(format!("the model expects {nf} features but the row has {}", row.len())));
        }
        if out.len() != self.num_scores || (self.has_categorical() && scratch.len() != nf) {
            return Err(Error::Internal("predict_one buffers of the wrong size".into()));
        }
        let row = if self.has_categorical() {
            for (j, (s, &v)) in scratch.iter_mut().zip(row).enumerate() {
                *s = match &self.mappers[j] {
                    m @ BinMapper::Categorical { categories, .. } => {
                        let key = if v.is_finite() && v.fract() == 0.0 { Some(v as i64) } else { None };
                        let bin = key.and_then(|k| categories.iter().position(|c| *c == CatKey::Int(k)));
                        bin.unwrap_or(m.missing_bin() as usize) as f64
                    }
                    BinMapper::Numeric { .. } => v,
                };
            }
            &*scratch
        } else {
            row
        };
        out.copy_from_slice(&self.base_score);
        if self.accumulate_f32 {
            for v in out.iter_mut() {
                *v = *v as f32 as f64;
            }
        }
        self.compiled.add_block(row, nf, 1, n_trees, self.num_scores, out);
        if !raw_score {
            if self.average_output {
                let rounds = (n_trees.min(self.trees.len()) / self.num_scores.max(1)).max(1) as f64;
                for v in out.iter_mut() {
                    *v /= rounds;
                }
            }
            self.transform.apply_row(out);
        }
        Ok(())
    }

    /// Predictions (output transform applied), row-major `n_rows x num_scores`.
    pub fn predict(&self, frame: &Frame<'_>, n_trees: usize, raw_score: bool, num_threads: i64) -> Result<Vec<f64>> {
        let mut out = self.predict_raw(frame, n_trees, num_threads)?;
        self.finish(&mut out, n_trees, raw_score);
        Ok(out)
    }

    /// Every feature of every row of `frame`, row-major, as the trees read them (categorical features
    /// as their bin index).
    pub fn feature_rows(&self, frame: &Frame<'_>, num_threads: i64) -> Result<Vec<f64>> {
        let nf = self.num_features();
        self.map_rows(frame, nf, num_threads, false, |buf, rows, out| out.copy_from_slice(&buf[..rows * nf]))
    }

    /// The start scores of one row (the base scores, rounded to float32 when scores accumulate so).
    pub fn start_row(&self) -> Vec<f64> {
        self.base_score.iter().map(|&v| if self.accumulate_f32 { v as f32 as f64 } else { v }).collect()
    }

    /// Raw scores from `predict_raw` (or a device) to predictions: averaged (random forests) and
    /// transformed unless `raw_score`.
    pub fn finish(&self, out: &mut [f64], n_trees: usize, raw_score: bool) {
        if !raw_score {
            if self.average_output {
                // As LightGBM: random-forest outputs are averaged before the transform (raw scores
                // stay summed).
                let rounds = (n_trees.min(self.trees.len()) / self.num_scores.max(1)).max(1) as f64;
                for v in out.iter_mut() {
                    *v /= rounds;
                }
            }
            for row in out.chunks_mut(self.num_scores) {
                self.transform.apply_row(row);
            }
        }
    }
}
