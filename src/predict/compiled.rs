//! The evaluation layout of a forest: every node of every tree in one array of 16-byte records, the
//! two children of a node side by side (right = left + 1), leaves as nodes that point to themselves.
//! A step is branch-free: `next = child + !(goes left)`, so groups of rows walk a tree in lock-step
//! and their independent memory loads overlap. Batches of numeric forests with up to 64 leaves a tree
//! skip the walk: see `quick` (exit-leaf mask tables).

use super::forest::{FlatTree, ZERO_THRESHOLD};
use super::quick::MaskForest;
use crate::gbdt::tree::bit;

const LEAF: u32 = 1 << 31;
const DEFAULT_LEFT: u32 = 1 << 30;
const CATEGORICAL: u32 = 1 << 29;
const CAT_INVERTED: u32 = 1 << 28;
const FEATURE: u32 = (1 << 28) - 1;

/// Rows walked through a tree together.
pub const LANES: usize = 8;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
struct CNode {
    /// Threshold of an internal node, output of a leaf.
    value: f64,
    /// Feature index and flags.
    feature: u32,
    /// Index of the left child (the right one follows); a leaf's own index.
    child: u32,
}

/// A forest laid out for evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Compiled {
    nodes: Vec<CNode>,
    roots: Vec<u32>,
    /// Every node numeric with NaN as its only missing value: the branch-free fast path applies.
    simple: bool,
    /// Per node (only when not simple): missing rule and category set range.
    missing: Vec<u8>,
    cats: Vec<(u32, u32)>,
    cat_words: Vec<u32>,
    /// Sum tree outputs in float32, as XGBoost does (its models then predict bit for bit alike).
    f32_sum: bool,
    /// Exit-leaf mask tables for batches, when every node is numeric and trees are small enough.
    quick: Quick,
}

/// Mask tables sized to the largest tree.
#[derive(Clone, Debug, Default, PartialEq)]
enum Quick {
    #[default]
    None,
    Narrow(MaskForest<u32>),
    Wide(MaskForest<u64>),
}

/// Batches of at least this many rows use the mask tables.
const QUICK_MIN_ROWS: usize = 16;

impl Compiled {
    /// Lays out `trees`; with `f32_sum`, scores accumulate in float32.
    pub fn new(trees: &[FlatTree], f32_sum: bool) -> Compiled {
        let simple = trees.iter().all(|t| t.nodes.iter().all(|n| n.cat_len == 0 && n.missing == 0));
        let mut c = Compiled { simple, f32_sum, ..Default::default() };
        for t in trees {
            c.add(t);
        }
        let nf = trees.iter().flat_map(|t| t.nodes.iter().map(|n| n.feature as usize + 1)).max().unwrap_or(0);
        let leaves = trees.iter().map(|t| t.leaf_values.len()).max().unwrap_or(0);
        c.quick = if leaves <= 32 {
            MaskForest::new(trees, nf).map_or(Quick::None, Quick::Narrow)
        } else if leaves <= 64 {
            MaskForest::new(trees, nf).map_or(Quick::None, Quick::Wide)
        } else {
            Quick::None
        };
        c
    }

    fn push(&mut self, n: CNode, missing: u8, cat: (u32, u32)) -> usize {
        self.nodes.push(n);
        if !self.simple {
            self.missing.push(missing);
            self.cats.push(cat);
        }
        self.nodes.len() - 1
    }

    fn add(&mut self, t: &FlatTree) {
        let root = self.push(CNode::default(), 0, (0, 0));
        self.roots.push(root as u32);
        // (slot, reference in t: >= 0 node, < 0 leaf, depth)
        let mut queue = std::collections::VecDeque::from([(root, 0i32, 0u32)]);
        if t.nodes.is_empty() {
            queue.clear();
            self.nodes[root] = CNode { value: t.leaf_values[0], feature: LEAF | DEFAULT_LEFT, child: root as u32 };
        }
        while let Some((slot, r, d)) = queue.pop_front() {
            if r < 0 {
                let leaf = !r as usize;
                self.nodes[slot] = CNode { value: t.leaf_values[leaf], feature: LEAF | DEFAULT_LEFT, child: slot as u32 };
                continue;
            }
            let n = &t.nodes[r as usize];
            let left = self.push(CNode::default(), 0, (0, 0));
            self.push(CNode::default(), 0, (0, 0));
            let mut flags = n.feature & FEATURE;
            if n.default_left {
                flags |= DEFAULT_LEFT;
            }
            let mut cat = (0, 0);
            if n.cat_len > 0 {
                flags |= CATEGORICAL;
                if n.cat_inverted {
                    flags |= CAT_INVERTED;
                }
                let start = self.cat_words.len() as u32;
                self.cat_words.extend_from_slice(&t.cat_words[n.cat_start as usize..(n.cat_start + n.cat_len) as usize]);
                cat = (start, n.cat_len);
            }
            self.nodes[slot] = CNode { value: n.threshold, feature: flags, child: left as u32 };
            if !self.simple {
                self.missing[slot] = n.missing;
                self.cats[slot] = cat;
            }
            queue.push_back((left, n.left, d + 1));
            queue.push_back((left + 1, n.right, d + 1));
        }
    }

    #[inline]
    fn acc(&self, o: &mut f64, v: f64) {
        if self.f32_sum {
            *o = (*o as f32 + v as f32) as f64;
        } else {
            *o += v;
        }
    }

    /// Whether `x` goes left at node `i` (general rules: categories, zero or no missing values).
    #[inline]
    fn goes_left_general(&self, i: usize, x: f64) -> bool {
        let n = &self.nodes[i];
        if n.feature & LEAF != 0 {
            return true;
        }
        let dl = n.feature & DEFAULT_LEFT != 0;
        if n.feature & CATEGORICAL != 0 {
            let (s, l) = self.cats[i];
            let in_set = !x.is_nan() && x >= 0.0 && bit(&self.cat_words[s as usize..(s + l) as usize], x as u32);
            return if n.feature & CAT_INVERTED != 0 {
                if x.is_nan() {
                    dl
                } else {
                    !in_set
                }
            } else {
                in_set
            };
        }
        match self.missing[i] {
            0 => {
                if x.is_nan() {
                    dl
                } else {
                    x <= n.value
                }
            }
            1 => {
                let x = if x.is_nan() { 0.0 } else { x };
                if x.abs() <= ZERO_THRESHOLD {
                    dl
                } else {
                    x <= n.value
                }
            }
            _ => (if x.is_nan() { 0.0 } else { x }) <= n.value,
        }
    }

    /// Adds, for each of `rows` rows of the row-major block `buf` (`nf` values per row), the output of
    /// trees `0..n_trees` to its scores in `out` (`k` per row; tree t adds to score t % k).
    pub fn add_block(&self, buf: &[f64], nf: usize, rows: usize, n_trees: usize, k: usize, out: &mut [f64]) {
        let n_trees = n_trees.min(self.roots.len());
        let mut first = 0;
        if rows >= QUICK_MIN_ROWS {
            first = match &self.quick {
                Quick::None => 0,
                Quick::Narrow(q) => {
                    q.add_block(buf, nf, 1, rows, n_trees, k, self.f32_sum, out);
                    q.covered(n_trees)
                }
                Quick::Wide(q) => {
                    q.add_block(buf, nf, 1, rows, n_trees, k, self.f32_sum, out);
                    q.covered(n_trees)
                }
            };
        }
        self.walk_block(buf, nf, rows, first, n_trees, k, out);
    }

    /// Whether blocks should come column by column (see [`Compiled::add_block_cols`]).
    pub fn prefers_columns(&self) -> bool {
        !matches!(self.quick, Quick::None)
    }

    /// As [`Compiled::add_block`] for a block stored column by column (`buf[f * rows + r]`).
    pub fn add_block_cols(&self, buf: &[f64], nf: usize, rows: usize, n_trees: usize, k: usize, out: &mut [f64]) {
        self.add_block_view(buf, 1, rows, nf, rows, n_trees, k, out)
    }

    /// As [`Compiled::add_block`] for a block with row r's feature f at `buf[r * rs + f * cs]`: the
    /// mask tables read it as it is; trees they do not cover walk a row-major copy.
    #[allow(clippy::too_many_arguments)]
    pub fn add_block_view(&self, buf: &[f64], rs: usize, cs: usize, nf: usize, rows: usize, n_trees: usize, k: usize, out: &mut [f64]) {
        let n_trees = n_trees.min(self.roots.len());
        let first = match &self.quick {
            Quick::None => 0,
            Quick::Narrow(q) => {
                q.add_block(buf, rs, cs, rows, n_trees, k, self.f32_sum, out);
                q.covered(n_trees)
            }
            Quick::Wide(q) => {
                q.add_block(buf, rs, cs, rows, n_trees, k, self.f32_sum, out);
                q.covered(n_trees)
            }
        };
        if first < n_trees {
            if rs == nf && cs == 1 {
                self.walk_block(&buf[..rows * nf], nf, rows, first, n_trees, k, out);
            } else {
                let mut row_major = vec![0.0; rows * nf];
                for r in 0..rows {
                    for f in 0..nf {
                        row_major[r * nf + f] = buf[r * rs + f * cs];
                    }
                }
                self.walk_block(&row_major, nf, rows, first, n_trees, k, out);
            }
        }
    }

    /// Trees `first..n_trees` by walking them.
    #[allow(clippy::too_many_arguments)]
    fn walk_block(&self, buf: &[f64], nf: usize, rows: usize, first: usize, n_trees: usize, k: usize, out: &mut [f64]) {
        let full = rows / LANES * LANES;
        if self.simple {
            for t in first..n_trees {
                self.tree_simple(self.roots[t] as usize, buf, nf, full, k, t % k, out);
            }
            // Fewer rows than lanes (a single row above all): lanes walk different trees instead.
            for r in full..rows {
                self.row_simple(&buf[r * nf..(r + 1) * nf], first, n_trees, k, &mut out[r * k..(r + 1) * k]);
            }
            return;
        }
        for t in first..n_trees {
            let root = self.roots[t] as usize;
            let c = t % k;
            {
                for r in 0..rows {
                    let row = &buf[r * nf..(r + 1) * nf];
                    let mut at = root;
                    while self.nodes[at].feature & LEAF == 0 {
                        let n = self.nodes[at];
                        at = n.child as usize + (!self.goes_left_general(at, row[(n.feature & FEATURE) as usize])) as usize;
                    }
                    self.acc(&mut out[r * k + c], self.nodes[at].value);
                }
            }
        }
    }

    /// One row through trees `0..n_trees`, `LANES` trees at a time in lock-step.
    #[inline]
    fn row_simple(&self, row: &[f64], first: usize, n_trees: usize, k: usize, out: &mut [f64]) {
        let nodes = &self.nodes[..];
        let mut t0 = first;
        while t0 < n_trees {
            let lanes = LANES.min(n_trees - t0);
            let mut at = [0usize; LANES];
            for (l, a) in at.iter_mut().enumerate().take(lanes) {
                *a = self.roots[t0 + l] as usize;
            }
            loop {
                let mut done = true;
                for a in at.iter_mut().take(lanes) {
                    let n = nodes[*a];
                    let leaf = n.feature & LEAF != 0;
                    let x = row[(n.feature & FEATURE) as usize];
                    let left = leaf | ((n.feature & DEFAULT_LEFT != 0) & !(x > n.value)) | (x <= n.value);
                    *a = n.child as usize + (!left) as usize;
                    done &= leaf;
                }
                if done {
                    break;
                }
            }
            for (l, &a) in at.iter().enumerate().take(lanes) {
                self.acc(&mut out[(t0 + l) % k], nodes[a].value);
            }
            t0 += lanes;
        }
    }

    /// One tree over `rows` rows (a multiple of `LANES`): groups of `LANES` rows walk it in lock-step,
    /// branch-free (a row at its leaf stays there), until all rows of the group are at leaves.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn tree_simple(&self, root: usize, buf: &[f64], nf: usize, rows: usize, k: usize, c: usize, out: &mut [f64]) {
        let nodes = &self.nodes[..];
        let step = |at: usize, row: &[f64]| -> (usize, bool) {
            let n = nodes[at];
            let leaf = n.feature & LEAF != 0;
            let x = row[(n.feature & FEATURE) as usize];
            // `!(x > v)` is `x <= v` but true for NaN: one compare serves both missing directions.
            let left = leaf | ((n.feature & DEFAULT_LEFT != 0) & !(x > n.value)) | (x <= n.value);
            (n.child as usize + (!left) as usize, leaf)
        };
        for g in (0..rows).step_by(LANES) {
            let block = &buf[g * nf..(g + LANES) * nf];
            let rowv: [&[f64]; LANES] = std::array::from_fn(|l| &block[l * nf..(l + 1) * nf]);
            let mut at = [root; LANES];
            loop {
                let mut done = true;
                for l in 0..LANES {
                    let (next, leaf) = step(at[l], rowv[l]);
                    at[l] = next;
                    done &= leaf;
                }
                if done {
                    break;
                }
            }
            for l in 0..LANES {
                self.acc(&mut out[(g + l) * k + c], nodes[at[l]].value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sample::SplitMix64;
    use crate::predict::forest::Node;

    /// A random tree with `leaves` leaves; `general` adds categorical nodes and the LightGBM
    /// missing-value rules.
    fn random_tree(rng: &mut SplitMix64, leaves: usize, nf: usize, general: bool) -> FlatTree {
        random_tree_with(rng, leaves, nf, general, general)
    }

    /// As `random_tree`, with categorical nodes and missing-value rules chosen apart.
    fn random_tree_with(rng: &mut SplitMix64, leaves: usize, nf: usize, missing_rules: bool, cats: bool) -> FlatTree {
        // Grow by splitting a random leaf, as a leaf-wise learner does.
        let mut nodes: Vec<Node> = Vec::new();
        let mut parents: Vec<Option<(usize, bool)>> = vec![None];
        let mut cat_words = Vec::new();
        for _ in 1..leaves {
            let leaf = (rng.next_u64() % parents.len() as u64) as usize;
            let id = nodes.len();
            let cat = cats && rng.next_f64() < 0.3;
            let (cat_start, cat_len) = if cat {
                cat_words.push((rng.next_u64() & 0xFFFF_FFFF) as u32);
                (cat_words.len() as u32 - 1, 1)
            } else {
                (0, 0)
            };
            nodes.push(Node {
                feature: (rng.next_u64() % nf as u64) as u32,
                threshold: if cat { 0.0 } else { rng.next_f64() * 4.0 - 2.0 },
                left: !(leaf as i32),
                right: !(parents.len() as i32),
                default_left: rng.next_f64() < 0.5,
                missing: if missing_rules { (rng.next_u64() % 3) as u8 } else { 0 },
                cat_inverted: cat && rng.next_f64() < 0.5,
                cat_len,
                cat_start,
            });
            if let Some((p, is_left)) = parents[leaf] {
                if is_left {
                    nodes[p].left = id as i32;
                } else {
                    nodes[p].right = id as i32;
                }
            }
            parents[leaf] = Some((id, true));
            parents.push(Some((id, false)));
        }
        let leaf_values = (0..leaves).map(|_| rng.next_f64() - 0.5).collect();
        FlatTree { nodes, leaf_values, cat_words, node_cover: vec![], leaf_cover: vec![] }
    }

    #[test]
    fn compiled_layout_agrees_with_node_walks() {
        let mut rng = SplitMix64::new(11);
        let nf = 5;
        for general in [false, true] {
            let trees: Vec<FlatTree> = (0..20).map(|i| random_tree(&mut rng, 1 + i * 3, nf, general)).collect();
            let c = Compiled::new(&trees, false);
            assert_eq!(c.simple, !general);
            let rows = 37;
            let buf: Vec<f64> = (0..rows * nf)
                .map(|_| match rng.next_u64() % 6 {
                    0 => f64::NAN,
                    1 => 0.0,
                    2 => ((rng.next_u64() % 40) as f64) - 3.0,
                    _ => rng.next_f64() * 4.0 - 2.0,
                })
                .collect();
            for k in [1, 3] {
                let mut out = vec![0.0; rows * k];
                c.add_block(&buf, nf, rows, trees.len(), k, &mut out);
                for r in 0..rows {
                    let row = &buf[r * nf..(r + 1) * nf];
                    let mut want = vec![0.0; k];
                    for (t, tree) in trees.iter().enumerate() {
                        want[t % k] += tree.leaf_values[tree.leaf(row)];
                    }
                    assert_eq!(&out[r * k..(r + 1) * k], &want[..], "row {r}");
                }
            }
        }
    }

    #[test]
    fn mask_tables_agree_with_node_walks() {
        // Batches large enough for the mask tables, trees of up to 32 and up to 64 leaves, every
        // missing-value rule, values on thresholds and in the zero band, a partial tree count.
        let mut rng = SplitMix64::new(5);
        let nf = 6;
        for (max_leaves, missing_rules, f32_sum) in [(32, false, false), (32, true, true), (64, true, false), (64, false, true)] {
            let trees: Vec<FlatTree> =
                (0..150).map(|i| random_tree_with(&mut rng, 1 + (i * 7) % max_leaves, nf, missing_rules, false)).collect();
            let c = Compiled::new(&trees, f32_sum);
            assert!(!matches!(c.quick, Quick::None));
            let rows = 300;
            let thresholds: Vec<f64> = trees.iter().flat_map(|t| t.nodes.iter().map(|n| n.threshold)).collect();
            let buf: Vec<f64> = (0..rows * nf)
                .map(|_| match rng.next_u64() % 8 {
                    0 => f64::NAN,
                    1 => 0.0,
                    2 => 1e-36,
                    3 => -1e-36,
                    4 => thresholds[(rng.next_u64() % thresholds.len() as u64) as usize],
                    5 => f64::NEG_INFINITY,
                    _ => rng.next_f64() * 5.0 - 2.5,
                })
                .collect();
            match &c.quick {
                Quick::Narrow(q) => assert!(q.check_kernels(&buf, nf, rows) > 0),
                Quick::Wide(q) => assert!(q.check_kernels(&buf, nf, rows) > 0),
                Quick::None => unreachable!(),
            }
            let cols: Vec<f64> = (0..rows * nf).map(|i| buf[(i % rows) * nf + i / rows]).collect();
            for (k, n_trees, col_major) in [(1, 150, false), (3, 150, true), (1, 97, true), (1, 97, false), (2, 20, true)] {
                let mut out = vec![0.0; rows * k];
                if col_major {
                    c.add_block_cols(&cols, nf, rows, n_trees, k, &mut out);
                } else {
                    c.add_block(&buf, nf, rows, n_trees, k, &mut out);
                }
                for r in 0..rows {
                    let row = &buf[r * nf..(r + 1) * nf];
                    let mut want = vec![0.0; k];
                    for (t, tree) in trees.iter().enumerate().take(n_trees) {
                        let v = tree.leaf_values[tree.leaf(row)];
                        let w = &mut want[t % k];
                        *w = if f32_sum { (*w as f32 + v as f32) as f64 } else { *w + v };
                    }
                    assert_eq!(&out[r * k..(r + 1) * k], &want[..], "row {r}, {max_leaves} leaves, k {k}, {n_trees} trees, {col_major}, {f32_sum}");
                }
            }
        }
    }
}
