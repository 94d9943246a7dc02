//! The tree learner: histograms over bins, split finding, leaf-wise growth.
//!
//! Rows of each leaf occupy a contiguous range of one index array (partitioned stably at every split,
//! so rows stay in ascending order). A leaf's histogram is built from the gradients gathered into that
//! order; of two children only the smaller one is built, the larger is the parent minus it. Histograms
//! are built feature by feature, each feature summed sequentially in row order, so the sums (and thus
//! the tree) do not depend on how many threads share the work.

use rayon::prelude::*;

use super::params::GbdtParams;
use super::tree::{Child, Tree, TreeNode};
use crate::data::{BinMapper, BinMatrix, Dataset};

/// Gradient statistics of a set of rows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sums {
    pub g: f64,
    pub h: f64,
    pub n: u32,
}

impl Sums {
    #[inline]
    fn add(&mut self, o: &Sums) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }
    #[inline]
    fn minus(&self, o: &Sums) -> Sums {
        Sums { g: self.g - o.g, h: self.h - o.h, n: self.n - o.n }
    }
}

/// A candidate split.
#[derive(Clone, Debug)]
struct Split {
    feature: usize,
    threshold_bin: u32,
    default_left: bool,
    gain: f64,
    left: Sums,
    right: Sums,
    cat_left: Vec<u32>,
    /// Outputs of the two children (within the leaf's bounds).
    left_out: f64,
    right_out: f64,
}

/// Range a leaf's output must stay in (monotone constraints).
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    lo: f64,
    hi: f64,
}

impl Bounds {
    const FREE: Bounds = Bounds { lo: f64::NEG_INFINITY, hi: f64::INFINITY };
}

struct Leaf {
    begin: usize,
    end: usize,
    sums: Sums,
    depth: usize,
    hist: Option<Vec<Sums>>,
    best: Option<Split>,
    bounds: Bounds,
    /// Features split on along the path to this leaf (kept only under interaction constraints).
    used: Vec<usize>,
    /// Where this leaf hangs: (parent node, is left child); None for the root.
    parent: Option<(usize, bool)>,
}

/// The gradients a tree is grown from: floats, or small integers with one scale per round
/// (quantized training: histograms then sum integers exactly, reading 2 bytes per row instead of 8).
#[derive(Clone, Copy)]
pub enum Gradients<'g> {
    /// Gradient and hessian per row.
    Float { g: &'g [f32], h: &'g [f32] },
    /// Quantized gradient and hessian per row; true value = integer x scale.
    Quantized { g: &'g [i8], h: &'g [u8], g_scale: f64, h_scale: f64 },
}

/// Rows per task when gathering gradients and partitioning a leaf (fixed: results do not depend on
/// the thread count).
const PAR_CHUNK: usize = 32_768;

/// Per-dataset layout of the histogram: feature `f` has bins `offsets[f]..offsets[f + 1]`.
pub struct HistLayout {
    offsets: Vec<usize>,
}

impl HistLayout {
    pub fn new(data: &Dataset) -> Self {
        let mut offsets = Vec::with_capacity(data.num_features() + 1);
        let mut at = 0;
        offsets.push(0);
        for m in &data.mappers {
            at += m.num_bins();
            offsets.push(at);
        }
        HistLayout { offsets }
    }
    fn total(&self) -> usize {
        *self.offsets.last().unwrap()
    }
}

/// L1-thresholded gradient.
#[inline]
fn threshold_l1(g: f64, l1: f64) -> f64 {
    if l1 > 0.0 {
        g.signum() * (g.abs() - l1).max(0.0)
    } else {
        g
    }
}

/// What the learner needs from the parameters.
#[derive(Clone, Debug)]
pub struct SplitRules {
    pub lambda_l1: f64,
    pub lambda_l2: f64,
    pub min_data_in_leaf: u32,
    pub min_sum_hessian: f64,
    pub min_gain_to_split: f64,
    pub max_delta_step: f64,
    pub max_cat_to_onehot: usize,
    pub max_cat_threshold: usize,
    pub cat_smooth: f64,
    pub cat_l2: f64,
    pub min_data_per_group: u32,
    pub num_leaves: usize,
    pub max_depth: i64,
    /// Per feature -1/0/+1 (empty: none).
    pub monotone: Vec<i8>,
    /// Allowed interaction groups, features in no group as their own (empty: none).
    pub groups: Vec<Vec<usize>>,
}

impl SplitRules {
    pub fn from_params(p: &GbdtParams) -> Self {
        SplitRules {
            lambda_l1: p.lambda_l1,
            lambda_l2: p.lambda_l2,
            min_data_in_leaf: p.min_data_in_leaf.max(1) as u32,
            min_sum_hessian: p.min_sum_hessian_in_leaf,
            min_gain_to_split: p.min_gain_to_split,
            max_delta_step: p.max_delta_step,
            max_cat_to_onehot: p.max_cat_to_onehot,
            max_cat_threshold: p.max_cat_threshold.max(1),
            cat_smooth: p.cat_smooth,
            cat_l2: p.cat_l2,
            min_data_per_group: p.min_data_per_group as u32,
            num_leaves: p.num_leaves,
            max_depth: p.max_depth,
            monotone: p.monotone_constraints.clone(),
            groups: Vec::new(),
        }
    }

    /// Adds the interaction groups of `p` for a dataset of `nf` features.
    pub fn with_groups(mut self, p: &GbdtParams, nf: usize) -> Self {
        if !p.interaction_constraints.is_empty() {
            let mut groups = p.interaction_constraints.clone();
            for f in 0..nf {
                if !groups.iter().any(|g| g.contains(&f)) {
                    groups.push(vec![f]);
                }
            }
            self.groups = groups;
        }
        self
    }

    fn monotone_of(&self, f: usize) -> i8 {
        self.monotone.get(f).copied().unwrap_or(0)
    }

    /// Features a leaf that already split on `used` may split on next.
    fn allowed(&self, used: &[usize], active: &[bool]) -> Vec<bool> {
        if self.groups.is_empty() {
            return active.to_vec();
        }
        let mut ok = vec![false; active.len()];
        for g in self.groups.iter().filter(|g| used.iter().all(|u| g.contains(u))) {
            for &f in g {
                ok[f] = active[f];
            }
        }
        ok
    }

    /// The output of a leaf with these sums (before shrinkage), with no monotone bounds.
    pub fn unbounded_output(&self, s: &Sums) -> f64 {
        self.leaf_output(s, self.lambda_l2, Bounds::FREE)
    }

    /// The output of a leaf with these sums (before shrinkage), kept within `b`.
    #[inline]
    pub fn leaf_output(&self, s: &Sums, l2: f64, b: Bounds) -> f64 {
        let mut out = -threshold_l1(s.g, self.lambda_l1) / (s.h + l2);
        if self.max_delta_step > 0.0 {
            out = out.clamp(-self.max_delta_step, self.max_delta_step);
        }
        out.clamp(b.lo, b.hi)
    }

    /// The loss reduction a leaf with these sums achieves at output `out`.
    #[inline]
    fn gain_at(&self, s: &Sums, l2: f64, out: f64) -> f64 {
        let sg = threshold_l1(s.g, self.lambda_l1);
        -(2.0 * sg * out + (s.h + l2) * out * out)
    }

    #[inline]
    fn admissible(&self, l: &Sums, r: &Sums) -> bool {
        l.n >= self.min_data_in_leaf
            && r.n >= self.min_data_in_leaf
            && l.h >= self.min_sum_hessian
            && r.h >= self.min_sum_hessian
    }
}

fn better(a: &Option<Split>, b: &Split) -> bool {
    match a {
        None => true,
        Some(a) => b.gain > a.gain,
    }
}

/// The best split of one feature, from its histogram slice.
fn best_split_for_feature(
    rules: &SplitRules,
    feature: usize,
    mapper: &BinMapper,
    hist: &[Sums],
    total: &Sums,
    bounds: Bounds,
) -> Option<Split> {
    let l2 = rules.lambda_l2;
    let parent_gain = rules.gain_at(total, l2, rules.leaf_output(total, l2, bounds));
    let mono = if mapper.is_categorical() { 0 } else { rules.monotone_of(feature) };
    let mut best: Option<Split> = None;
    // Without output limits the gain has a closed form, and outputs are needed only for the winner.
    let constrained =
        rules.max_delta_step > 0.0 || mono != 0 || bounds.lo > f64::NEG_INFINITY || bounds.hi < f64::INFINITY;
    let consider = |left: Sums, right: Sums, bin: u32, default_left: bool, cat: Vec<u32>, l2: f64, best: &mut Option<Split>| {
        if !rules.admissible(&left, &right) {
            return;
        }
        let (gain, outs) = if constrained {
            let lo = rules.leaf_output(&left, l2, bounds);
            let ro = rules.leaf_output(&right, l2, bounds);
            if (mono > 0 && lo > ro) || (mono < 0 && lo < ro) {
                return;
            }
            (rules.gain_at(&left, l2, lo) + rules.gain_at(&right, l2, ro) - parent_gain, Some((lo, ro)))
        } else {
            let a = threshold_l1(left.g, rules.lambda_l1);
            let b = threshold_l1(right.g, rules.lambda_l1);
            (a * a / (left.h + l2) + b * b / (right.h + l2) - parent_gain, None)
        };
        if gain <= rules.min_gain_to_split || !gain.is_finite() || best.as_ref().is_some_and(|b| gain <= b.gain) {
            return;
        }
        let (lo, ro) = outs.unwrap_or_else(|| (rules.leaf_output(&left, l2, bounds), rules.leaf_output(&right, l2, bounds)));
        *best = Some(Split { feature, threshold_bin: bin, default_left, gain, left, right, cat_left: cat, left_out: lo, right_out: ro });
    };
    let missing = mapper.missing_bin() as usize;
    match mapper {
        BinMapper::Numeric { .. } => {
            let miss = hist[missing];
            let mut acc = Sums::default();
            for (t, hb) in hist[..missing].iter().enumerate() {
                acc.add(hb);
                if hb.n == 0 && t + 1 < missing {
                    continue;
                }
                let right = total.minus(&acc);
                // Missing goes right; with none seen, it follows the larger side at inference.
                let dl = miss.n == 0 && acc.n >= right.n;
                consider(acc, right, t as u32, dl, Vec::new(), l2, &mut best);
            }
            if miss.n > 0 {
                let mut acc = miss;
                for (t, hb) in hist[..missing.saturating_sub(1)].iter().enumerate() {
                    acc.add(hb);
                    if hb.n == 0 {
                        continue;
                    }
                    let right = total.minus(&acc);
                    consider(acc, right, t as u32, true, Vec::new(), l2, &mut best);
                }
            }
        }
        BinMapper::Categorical { .. } => {
            let used: Vec<usize> = (0..hist.len()).filter(|&b| hist[b].n > 0).collect();
            let words = hist.len().div_ceil(32);
            let set_of = |bins: &[usize]| {
                let mut s = vec![0u32; words];
                for &b in bins {
                    s[b / 32] |= 1 << (b % 32);
                }
                s
            };
            if used.len() <= rules.max_cat_to_onehot {
                for &b in &used {
                    let left = hist[b];
                    let right = total.minus(&left);
                    consider(left, right, 0, b == missing, set_of(&[b]), l2, &mut best);
                }
            } else {
                let l2c = l2 + rules.cat_l2;
                let mut cands: Vec<usize> =
                    used.iter().copied().filter(|&b| hist[b].n >= rules.min_data_per_group.min(total.n / 2).max(1)).collect();
                let ratio = |b: usize| hist[b].g / (hist[b].h + rules.cat_smooth);
                cands.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)).then(a.cmp(&b)));
                let limit = rules.max_cat_threshold.min(cands.len().saturating_sub(1)).max(1);
                for dir in 0..2 {
                    let order: Vec<usize> = if dir == 0 { cands.clone() } else { cands.iter().rev().copied().collect() };
                    let mut acc = Sums::default();
                    for k in 0..limit.min(order.len()) {
                        acc.add(&hist[order[k]]);
                        let right = total.minus(&acc);
                        let left_bins = &order[..=k];
                        consider(acc, right, 0, left_bins.contains(&missing), set_of(left_bins), l2c, &mut best);
                    }
                }
            }
        }
    }
    best
}

/// Splits `hist` into one mutable slice per feature.
fn per_feature<'a>(layout: &HistLayout, mut hist: &'a mut [Sums]) -> Vec<&'a mut [Sums]> {
    let mut out = Vec::with_capacity(layout.offsets.len() - 1);
    for w in layout.offsets.windows(2) {
        let (head, tail) = hist.split_at_mut(w[1] - w[0]);
        out.push(head);
        hist = tail;
    }
    out
}

/// Grows trees on one dataset; holds buffers reused across trees.
pub struct Learner<'a> {
    data: &'a Dataset,
    layout: HistLayout,
    rules: SplitRules,
    indices: Vec<u32>,
    scratch: Vec<u32>,
    og: Vec<f32>,
    oh: Vec<f32>,
    oqg: Vec<i8>,
    oqh: Vec<u8>,
}

impl<'a> Learner<'a> {
    pub fn new(data: &'a Dataset, rules: SplitRules) -> Self {
        let n = data.num_data();
        Learner {
            data,
            layout: HistLayout::new(data),
            rules,
            indices: Vec::with_capacity(n),
            scratch: vec![0; n],
            og: Vec::new(),
            oh: Vec::new(),
            oqg: Vec::new(),
            oqh: Vec::new(),
        }
    }

    /// Fills the histogram of rows `indices[begin..end]` for the `active` features.
    fn build_hist(&mut self, begin: usize, end: usize, grads: Gradients<'_>, active: &[bool], hist: &mut [Sums]) {
        let rows = &self.indices[begin..end];
        let full = rows.len() == self.data.num_data();
        let n = self.data.num_data();
        let data = self.data;
        let slices = per_feature(&self.layout, hist);
        // Gradients gathered into this leaf's row order, so every feature reads them sequentially.
        fn gather<T: Copy + Default + Send + Sync>(buf: &mut Vec<T>, src: &[T], rows: &[u32]) {
            buf.resize(rows.len(), T::default());
            buf.par_chunks_mut(PAR_CHUNK).zip(rows.par_chunks(PAR_CHUNK)).for_each(|(o, r)| {
                for (o, &r) in o.iter_mut().zip(r) {
                    *o = src[r as usize];
                }
            });
        }
        match grads {
            Gradients::Float { g, h } => {
                let (og, oh): (&[f32], &[f32]) = if full {
                    (g, h)
                } else {
                    gather(&mut self.og, g, rows);
                    gather(&mut self.oh, h, rows);
                    (&self.og, &self.oh)
                };
                slices.into_par_iter().enumerate().filter(|(f, _)| active[*f]).for_each(|(f, hs)| {
                    hs.fill(Sums::default());
                    macro_rules! accumulate {
                        ($col:expr) => {{
                            let col = $col;
                            if full {
                                for ((&b, &gv), &hv) in col.iter().zip(og).zip(oh) {
                                    let e = &mut hs[b as usize];
                                    e.g += gv as f64;
                                    e.h += hv as f64;
                                    e.n += 1;
                                }
                            } else {
                                for ((&r, &gv), &hv) in rows.iter().zip(og).zip(oh) {
                                    let e = &mut hs[col[r as usize] as usize];
                                    e.g += gv as f64;
                                    e.h += hv as f64;
                                    e.n += 1;
                                }
                            }
                        }};
                    }
                    match &data.bins {
                        BinMatrix::U8(d) => accumulate!(&d[f * n..(f + 1) * n]),
                        BinMatrix::U16(d) => accumulate!(&d[f * n..(f + 1) * n]),
                    }
                });
            }
            Gradients::Quantized { g, h, g_scale, h_scale } => {
                let (og, oh): (&[i8], &[u8]) = if full {
                    (g, h)
                } else {
                    gather(&mut self.oqg, g, rows);
                    gather(&mut self.oqh, h, rows);
                    (&self.oqg, &self.oqh)
                };
                slices.into_par_iter().enumerate().filter(|(f, _)| active[*f]).for_each(|(f, hs)| {
                    // Exact integer sums, scaled once per bin at the end.
                    let mut acc = vec![(0i64, 0i64, 0u32); hs.len()];
                    macro_rules! accumulate {
                        ($col:expr) => {{
                            let col = $col;
                            if full {
                                for ((&b, &gv), &hv) in col.iter().zip(og).zip(oh) {
                                    let e = &mut acc[b as usize];
                                    e.0 += gv as i64;
                                    e.1 += hv as i64;
                                    e.2 += 1;
                                }
                            } else {
                                for ((&r, &gv), &hv) in rows.iter().zip(og).zip(oh) {
                                    let e = &mut acc[col[r as usize] as usize];
                                    e.0 += gv as i64;
                                    e.1 += hv as i64;
                                    e.2 += 1;
                                }
                            }
                        }};
                    }
                    match &data.bins {
                        BinMatrix::U8(d) => accumulate!(&d[f * n..(f + 1) * n]),
                        BinMatrix::U16(d) => accumulate!(&d[f * n..(f + 1) * n]),
                    }
                    for (o, &(gs, hsum, c)) in hs.iter_mut().zip(&acc) {
                        *o = Sums { g: gs as f64 * g_scale, h: hsum as f64 * h_scale, n: c };
                    }
                });
            }
        }
    }

    fn find_best(&self, hist: &[Sums], sums: &Sums, active: &[bool], bounds: Bounds, used: &[usize]) -> Option<Split> {
        let allowed = self.rules.allowed(used, active);
        let active = &allowed[..];
        let layout = &self.layout;
        let data = self.data;
        let rules = &self.rules;
        let found: Vec<Option<Split>> = (0..data.num_features())
            .into_par_iter()
            .map(|f| {
                if !active[f] {
                    return None;
                }
                let h = &hist[layout.offsets[f]..layout.offsets[f + 1]];
                best_split_for_feature(rules, f, &data.mappers[f], h, sums, bounds)
            })
            .collect();
        // Fixed-order reduction: the largest gain, the smaller feature index on ties.
        let mut best: Option<Split> = None;
        for s in found.into_iter().flatten() {
            if better(&best, &s) {
                best = Some(s);
            }
        }
        best
    }

    fn can_split(&self, leaf: &Leaf) -> bool {
        (self.rules.max_depth <= 0 || (leaf.depth as i64) < self.rules.max_depth)
            && leaf.sums.n >= 2 * self.rules.min_data_in_leaf
    }

    /// Grows one tree on rows `bag` (ascending; all rows when None). Returns the tree (outputs not
    /// yet shrunk) and the rows of each leaf, for updating scores without traversal.
    pub fn grow(&mut self, grads: Gradients<'_>, bag: Option<&[u32]>, active: &[bool]) -> (Tree, Vec<(usize, usize)>) {
        self.indices.clear();
        match bag {
            Some(b) => self.indices.extend_from_slice(b),
            None => self.indices.extend(0..self.data.num_data() as u32),
        }
        let total_bins = self.layout.total();
        let mut root_hist = vec![Sums::default(); total_bins];
        let n_rows = self.indices.len();
        self.build_hist(0, n_rows, grads, active, &mut root_hist);
        // Root sums from the first active feature's histogram (every row lands in one of its bins).
        let f0 = active.iter().position(|&a| a).unwrap_or(0);
        let mut root = Sums::default();
        for s in &root_hist[self.layout.offsets[f0]..self.layout.offsets[f0 + 1]] {
            root.add(s);
        }
        let mut leaves = vec![Leaf {
            begin: 0,
            end: n_rows,
            sums: root,
            depth: 0,
            hist: Some(root_hist),
            best: None,
            parent: None,
            bounds: Bounds::FREE,
            used: Vec::new(),
        }];
        if self.can_split(&leaves[0]) {
            leaves[0].best = self.find_best(leaves[0].hist.as_ref().unwrap(), &root, active, Bounds::FREE, &[]);
        }
        let mut nodes: Vec<TreeNode> = Vec::new();
        let l2 = self.rules.lambda_l2;
        while leaves.len() < self.rules.num_leaves {
            // The leaf whose best split gains most (first such leaf on ties).
            let mut pick: Option<usize> = None;
            for (i, l) in leaves.iter().enumerate() {
                if let Some(s) = &l.best {
                    if pick.is_none_or(|p| s.gain > leaves[p].best.as_ref().unwrap().gain) {
                        pick = Some(i);
                    }
                }
            }
            let Some(li) = pick else { break };
            let split = leaves[li].best.take().unwrap();
            let (begin, end, depth) = (leaves[li].begin, leaves[li].end, leaves[li].depth);
            let mid = self.partition(begin, end, &split);
            let node_index = nodes.len();
            let m = &self.data.mappers[split.feature];
            let threshold = match m {
                BinMapper::Numeric { upper_bounds, .. } => upper_bounds[split.threshold_bin as usize],
                BinMapper::Categorical { .. } => 0.0,
            };
            let parent_sums = leaves[li].sums;
            nodes.push(TreeNode {
                feature: split.feature as u32,
                threshold_bin: split.threshold_bin,
                threshold,
                default_left: split.default_left,
                missing: 0,
                cat_inverted: false,
                cat_left: split.cat_left.clone(),
                left: !(li as Child),
                right: !(leaves.len() as Child),
                gain: split.gain,
                count: parent_sums.n,
                hess: parent_sums.h,
                value: self.rules.leaf_output(&parent_sums, l2, leaves[li].bounds),
            });
            if let Some((p, is_left)) = leaves[li].parent {
                if is_left {
                    nodes[p].left = node_index as Child;
                } else {
                    nodes[p].right = node_index as Child;
                }
            }
            // Children: the smaller is built, the larger is parent minus smaller.
            let mut parent_hist = leaves[li].hist.take().unwrap();
            let left_small = split.left.n <= split.right.n;
            let (sb, se) = if left_small { (begin, mid) } else { (mid, end) };
            let mut small_hist = vec![Sums::default(); total_bins];
            self.build_hist(sb, se, grads, active, &mut small_hist);
            for (f, (p, s)) in per_feature(&self.layout, &mut parent_hist)
                .into_iter()
                .zip(per_feature(&self.layout, &mut small_hist))
                .enumerate()
            {
                if active[f] {
                    for (pe, se) in p.iter_mut().zip(s.iter()) {
                        *pe = pe.minus(se);
                    }
                }
            }
            let (left_hist, right_hist) = if left_small { (small_hist, parent_hist) } else { (parent_hist, small_hist) };
            let right_index = leaves.len();
            let pb = leaves[li].bounds;
            let (lb, rb) = match self.rules.monotone_of(split.feature) {
                m if m != 0 && split.cat_left.is_empty() => {
                    let mid = 0.5 * (split.left_out + split.right_out);
                    if m > 0 {
                        (Bounds { lo: pb.lo, hi: mid.min(pb.hi) }, Bounds { lo: mid.max(pb.lo), hi: pb.hi })
                    } else {
                        (Bounds { lo: mid.max(pb.lo), hi: pb.hi }, Bounds { lo: pb.lo, hi: mid.min(pb.hi) })
                    }
                }
                _ => (pb, pb),
            };
            let mut used = std::mem::take(&mut leaves[li].used);
            if !self.rules.groups.is_empty() && !used.contains(&split.feature) {
                used.push(split.feature);
            }
            leaves[li] = Leaf {
                begin,
                end: mid,
                sums: split.left,
                depth: depth + 1,
                hist: Some(left_hist),
                best: None,
                parent: Some((node_index, true)),
                bounds: lb,
                used: used.clone(),
            };
            leaves.push(Leaf {
                begin: mid,
                end,
                sums: split.right,
                depth: depth + 1,
                hist: Some(right_hist),
                best: None,
                parent: Some((node_index, false)),
                bounds: rb,
                used,
            });
            for i in [li, right_index] {
                if leaves.len() < self.rules.num_leaves && self.can_split(&leaves[i]) {
                    let h = leaves[i].hist.as_ref().unwrap();
                    leaves[i].best = self.find_best(h, &leaves[i].sums, active, leaves[i].bounds, &leaves[i].used);
                } else {
                    leaves[i].best = None;
                }
                if leaves[i].best.is_none() {
                    leaves[i].hist = None;
                }
            }
        }
        let tree = Tree {
            nodes,
            leaf_value: leaves.iter().map(|l| self.rules.leaf_output(&l.sums, l2, l.bounds)).collect(),
            leaf_count: leaves.iter().map(|l| l.sums.n).collect(),
            leaf_hess: leaves.iter().map(|l| l.sums.h).collect(),
            cover_is_hessian: false,
        };
        (tree, leaves.iter().map(|l| (l.begin, l.end)).collect())
    }

    /// Stable partition of `indices[begin..end]` by the split; returns the first right position.
    fn partition(&mut self, begin: usize, end: usize, split: &Split) -> usize {
        let f = split.feature;
        let n = self.data.num_data();
        let missing = self.data.mappers[f].missing_bin();
        let node = TreeNode {
            feature: f as u32,
            threshold_bin: split.threshold_bin,
            threshold: 0.0,
            default_left: split.default_left,
            missing: 0,
            cat_inverted: false,
            cat_left: split.cat_left.clone(),
            left: 0,
            right: 0,
            gain: 0.0,
            count: 0,
            hess: 0.0,
            value: 0.0,
        };
        let rows = &mut self.indices[begin..end];
        let scratch = &mut self.scratch[..rows.len()];
        let bins = &self.data.bins;
        let goes_left = |r: u32| -> bool {
            let b = match bins {
                BinMatrix::U8(d) => d[f * n + r as usize] as u32,
                BinMatrix::U16(d) => d[f * n + r as usize] as u32,
            };
            node.bin_goes_left(b, missing)
        };
        // Each chunk of rows splits itself into [left rows, right rows] in scratch (in order), then
        // every chunk's two runs are copied to their final places: a stable partition whatever the
        // number of threads.
        let counts: Vec<usize> = rows
            .par_chunks(PAR_CHUNK)
            .zip(scratch.par_chunks_mut(PAR_CHUNK))
            .map(|(src, dst)| {
                let mut nl = 0;
                let mut nr = dst.len();
                for &r in src {
                    if goes_left(r) {
                        dst[nl] = r;
                        nl += 1;
                    } else {
                        nr -= 1;
                        dst[nr] = r;
                    }
                }
                // Right rows were written from the end backwards: restore their order.
                dst[nl..].reverse();
                nl
            })
            .collect();
        let total_left: usize = counts.iter().sum();
        let mut pieces: Vec<(&mut [u32], &mut [u32])> = Vec::with_capacity(counts.len());
        let (mut lefts, mut rights) = rows.split_at_mut(total_left);
        for (c, &nl) in counts.iter().enumerate() {
            let len = PAR_CHUNK.min(scratch.len() - c * PAR_CHUNK);
            let (l, lt) = lefts.split_at_mut(nl);
            let (r, rt) = rights.split_at_mut(len - nl);
            pieces.push((l, r));
            lefts = lt;
            rights = rt;
        }
        let scratch = &*scratch;
        pieces.into_par_iter().enumerate().for_each(|(c, (l, r))| {
            let src = &scratch[c * PAR_CHUNK..c * PAR_CHUNK + l.len() + r.len()];
            l.copy_from_slice(&src[..l.len()]);
            r.copy_from_slice(&src[l.len()..]);
        });
        begin + total_left
    }

    /// The row indices of leaf range `(begin, end)` of the last grown tree.
    pub fn rows(&self, range: (usize, usize)) -> &[u32] {
        &self.indices[range.0..range.1]
    }
}
