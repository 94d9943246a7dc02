//! A trained tree, in the form it is saved: internal nodes with both the bin threshold (how the
//! trainer routes binned rows) and the value threshold (how raw values are routed at inference), and
//! leaf outputs with the statistics TreeSHAP and importance need.

use serde::{Deserialize, Serialize};

use crate::data::Dataset;

/// Child pointer: `>= 0` an internal node, `< 0` the leaf `!child`.
pub type Child = i32;

/// One internal node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeNode {
    /// Feature index.
    pub feature: u32,
    /// Numeric: rows whose bin is `<= threshold_bin` go left.
    pub threshold_bin: u32,
    /// Numeric: raw values `<= threshold` go left (the upper bound of `threshold_bin`).
    pub threshold: f64,
    /// Where missing values (NaN, null) go.
    pub default_left: bool,
    /// Numeric missing-value rule: 0 NaN is missing; 1 zero (and NaN) is missing (LightGBM's
    /// zero_as_missing); 2 nothing is missing, NaN reads as 0 (LightGBM's missing_type None).
    #[serde(default)]
    pub missing: u8,
    /// Categorical: `cat_left` lists the categories that go right instead (XGBoost's convention;
    /// then NaN follows `default_left` and any other value goes left).
    #[serde(default)]
    pub cat_inverted: bool,
    /// Categorical: bitset over the feature's bins (categories, then the missing/other bin) that go
    /// left. Empty for numeric splits.
    pub cat_left: Vec<u32>,
    /// Left child.
    pub left: Child,
    /// Right child.
    pub right: Child,
    /// Loss reduction of this split.
    pub gain: f64,
    /// Training rows (in the bag) that reached this node.
    pub count: u32,
    /// Sum of hessians of those rows.
    pub hess: f64,
    /// The (shrunk) output this node would have as a leaf.
    pub value: f64,
}

/// A tree: `nodes` (root first when there is any) and leaves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Internal nodes; empty for a single-leaf tree.
    pub nodes: Vec<TreeNode>,
    /// Output of each leaf (learning rate applied).
    pub leaf_value: Vec<f64>,
    /// Training rows per leaf.
    pub leaf_count: Vec<u32>,
    /// Hessian sum per leaf.
    pub leaf_hess: Vec<f64>,
    /// The cover of nodes (TreeSHAP's background weight) is their hessian sum, not their row count.
    #[serde(default)]
    pub cover_is_hessian: bool,
}

/// Whether bit `b` is set in a bitset.
#[inline]
pub fn bit(set: &[u32], b: u32) -> bool {
    set.get((b / 32) as usize).is_some_and(|w| (w >> (b % 32)) & 1 == 1)
}

impl TreeNode {
    /// Whether a row with bin `b` of this node's feature (whose missing bin is `missing_bin`) goes left.
    #[inline]
    pub fn bin_goes_left(&self, b: u32, missing_bin: u32) -> bool {
        if !self.cat_left.is_empty() {
            bit(&self.cat_left, b) != self.cat_inverted
        } else if b == missing_bin {
            self.default_left
        } else {
            b <= self.threshold_bin
        }
    }
}

impl Tree {
    /// Number of leaves.
    pub fn num_leaves(&self) -> usize {
        self.leaf_value.len()
    }

    /// The leaf a binned row falls in.
    pub fn leaf_of_binned(&self, data: &Dataset, row: usize) -> usize {
        if self.nodes.is_empty() {
            return 0;
        }
        let mut at: Child = 0;
        while at >= 0 {
            let node = &self.nodes[at as usize];
            let f = node.feature as usize;
            let b = data.bin(row, f);
            at = if node.bin_goes_left(b, data.mappers[f].missing_bin()) { node.left } else { node.right };
        }
        !at as usize
    }

    /// Adds this tree's output to `scores` for every row of a binned dataset (training-time score
    /// tracking of validation and out-of-bag rows; inference goes through `predict::Forest`).
    pub fn add_to_scores(&self, data: &Dataset, scores: &mut [f64], rows: Option<&[u32]>) {
        match rows {
            Some(rows) => {
                for &r in rows {
                    scores[r as usize] += self.leaf_value[self.leaf_of_binned(data, r as usize)];
                }
            }
            None => {
                use rayon::prelude::*;
                scores.par_chunks_mut(4096).enumerate().for_each(|(c, chunk)| {
                    for (k, s) in chunk.iter_mut().enumerate() {
                        *s += self.leaf_value[self.leaf_of_binned(data, c * 4096 + k)];
                    }
                });
            }
        }
    }
}
