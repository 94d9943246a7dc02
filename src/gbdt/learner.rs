//! The tree learner: histograms over bins, split finding, leaf-wise growth.
//!
//! Rows of each leaf occupy a contiguous range of one index array (partitioned stably at every split,
//! so rows stay in ascending order). A leaf's histogram is built from the gradients gathered into that
//! order; of two children only the smaller one is built, the larger is the parent minus it.
//!
//! Histograms are exact: gradients and hessians are fixed-point integers (one power-of-two scale per
//! tree, from the largest magnitude, so a row's value keeps 30 bits) or quantized integers, and bins
//! sum them in i64. Integer sums do not depend on the order rows are added in or on how they are split
//! between threads, blocks or machines, so the tree does not either: the [`Grower`] (split finding and
//! leaf-wise growth) sees the same histograms whether one learner built them or several shards of the
//! rows did and their histograms were added.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::params::GbdtParams;
use super::tree::{Child, Tree, TreeNode};
use crate::data::{BinMapper, BinMatrix, Dataset};
use crate::error::{Error, Result};

/// Gradient statistics of a set of rows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sums {
    pub g: f64,
    pub h: f64,
    pub n: u32,
}

/// One histogram bin: sums of gradients and hessians. Rows are not counted per bin (that would be a
/// third read-modify-write per row and feature): as LightGBM does, a side's row count is estimated
/// from its share of the leaf's hessian, and leaves get their exact counts when they are partitioned.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bin {
    pub g: f64,
    pub h: f64,
}

impl Bin {
    #[inline]
    fn add(&mut self, o: &Bin) {
        self.g += o.g;
        self.h += o.h;
    }
    /// No row fell in the bin (or only rows with zero gradient and hessian).
    #[inline]
    fn is_empty(&self) -> bool {
        self.g == 0.0 && self.h == 0.0
    }
}

/// One bin of an exact histogram: integer sums of the fixed-point (or quantized) gradients and
/// hessians of the rows in the bin. Adding histograms of disjoint row sets gives the histogram of their
/// union, bit for bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HBin {
    pub g: i64,
    pub h: i64,
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
    sums: Sums,
    depth: usize,
    hist: Option<Vec<HBin>>,
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
    /// Fixed-point gradient and hessian per row, side by side: true value = integer x scale.
    Fixed { gh: &'g [[i32; 2]], g_scale: f64, h_scale: f64 },
    /// Quantized gradient and hessian per row (two bytes); true value = integer x scale. Hessians lie
    /// in [0, max_h].
    Quantized { gh: &'g [(i8, u8)], max_h: u64, g_scale: f64, h_scale: f64 },
}

impl Gradients<'_> {
    /// Value of one unit of gradient and of hessian.
    pub fn scales(&self) -> (f64, f64) {
        match *self {
            Gradients::Fixed { g_scale, h_scale, .. } | Gradients::Quantized { g_scale, h_scale, .. } => (g_scale, h_scale),
        }
    }
}

/// Bits a fixed-point gradient or hessian keeps: the largest magnitude of a tree maps below 2^30.
pub const FIXED_BITS: i32 = 30;

/// The power of two by which values of largest magnitude `max` are multiplied to become fixed-point
/// integers below 2^FIXED_BITS (1 when `max` is 0 or not finite).
pub fn fixed_scale(max: f64) -> f64 {
    if !(max > 0.0) || !max.is_finite() {
        return 1.0;
    }
    // max < 2^e for e = the binary exponent of max + 1.
    let bits = max.to_bits();
    let biased = ((bits >> 52) & 0x7FF) as i32;
    let e = if biased == 0 { -1022 } else { biased - 1022 };
    let k = (FIXED_BITS - e).clamp(-1000, 1000);
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// `v` as a fixed-point integer at `scale` (a power of two from [`fixed_scale`]): rounded to nearest.
#[inline]
pub fn to_fixed(v: f32, scale: f64) -> i32 {
    (v as f64 * scale).round() as i32
}

/// A quantized gradient and hessian in one integer, `g * 2^32 + h` (0 <= h < 2^32): adding packed
/// values adds both parts, exactly, while the hessians sum below 2^32.
#[inline]
fn pack_quantized((g, h): (i8, u8)) -> i64 {
    ((g as i64) << 32) + h as i64
}

/// The (gradient, hessian) sums held by a packed sum whose hessian part is below 2^32.
#[inline]
fn unpack_quantized(v: i64) -> (i64, i64) {
    let h = v & 0xFFFF_FFFF;
    ((v - h) >> 32, h)
}

/// Rows per task when gathering gradients and partitioning a leaf (fixed: results do not depend on
/// the thread count).
const PAR_CHUNK: usize = 32_768;

/// Fewest rows per task when partitioning a leaf.
const PART_MIN: usize = 4096;

/// Per-dataset layout of the histogram: feature `f` has bins `offsets[f]..offsets[f + 1]`.
pub struct HistLayout {
    offsets: Vec<usize>,
}

impl HistLayout {
    pub fn new(data: &Dataset) -> Self {
        Self::from_mappers(&data.mappers)
    }
    pub fn from_mappers(mappers: &[BinMapper]) -> Self {
        let mut offsets = Vec::with_capacity(mappers.len() + 1);
        let mut at = 0;
        offsets.push(0);
        for m in mappers {
            at += m.num_bins();
            offsets.push(at);
        }
        HistLayout { offsets }
    }
    /// Feature `f` owns bins `offsets()[f]..offsets()[f + 1]`.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }
    pub fn total(&self) -> usize {
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
    hist: &[Bin],
    total: &Sums,
    bounds: Bounds,
) -> Option<Split> {
    // Rows per unit of hessian in this leaf: a side's count is estimated from its hessian (LightGBM's
    // rule), the other side gets the rest of the leaf's exact count.
    let cnt_factor = if total.h > 0.0 { total.n as f64 / total.h } else { 0.0 };
    let count = |b: &Bin| -> u32 { ((b.h * cnt_factor + 0.5).floor().max(0.0) as u32).min(total.n) };
    let sides = |acc: &Bin| -> (Sums, Sums) {
        let ln = count(acc);
        (Sums { g: acc.g, h: acc.h, n: ln }, Sums { g: total.g - acc.g, h: total.h - acc.h, n: total.n - ln })
    };
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
            let mut acc = Bin::default();
            for (t, hb) in hist[..missing].iter().enumerate() {
                acc.add(hb);
                if hb.is_empty() && t + 1 < missing {
                    continue;
                }
                let (left, right) = sides(&acc);
                // Missing goes right; with none seen, it follows the larger side at inference.
                let dl = miss.is_empty() && left.n >= right.n;
                consider(left, right, t as u32, dl, Vec::new(), l2, &mut best);
            }
            if !miss.is_empty() {
                let mut acc = miss;
                for (t, hb) in hist[..missing.saturating_sub(1)].iter().enumerate() {
                    acc.add(hb);
                    if hb.is_empty() {
                        continue;
                    }
                    let (left, right) = sides(&acc);
                    consider(left, right, t as u32, true, Vec::new(), l2, &mut best);
                }
            }
        }
        BinMapper::Categorical { .. } => {
            let used: Vec<usize> = (0..hist.len()).filter(|&b| !hist[b].is_empty()).collect();
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
                    let (left, right) = sides(&hist[b]);
                    consider(left, right, 0, b == missing, set_of(&[b]), l2, &mut best);
                }
            } else {
                let l2c = l2 + rules.cat_l2;
                let mut cands: Vec<usize> =
                    used.iter().copied().filter(|&b| count(&hist[b]) >= rules.min_data_per_group.min(total.n / 2).max(1)).collect();
                let ratio = |b: usize| hist[b].g / (hist[b].h + rules.cat_smooth);
                cands.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)).then(a.cmp(&b)));
                let limit = rules.max_cat_threshold.min(cands.len().saturating_sub(1)).max(1);
                for dir in 0..2 {
                    let order: Vec<usize> = if dir == 0 { cands.clone() } else { cands.iter().rev().copied().collect() };
                    let mut acc = Bin::default();
                    for k in 0..limit.min(order.len()) {
                        acc.add(&hist[order[k]]);
                        let (left, right) = sides(&acc);
                        let left_bins = &order[..=k];
                        consider(left, right, 0, left_bins.contains(&missing), set_of(left_bins), l2c, &mut best);
                    }
                }
            }
        }
    }
    best
}

/// A leaf holding fewer than 1/SPARSE_LEAF of the rows reads its bins (and gradients) with prefetching.
const SPARSE_LEAF: usize = 5;
/// How many rows ahead the prefetches reach.
const PREFETCH_AHEAD: usize = 64;

/// Asks the cache for `data[rows[at]]` ahead of its use (a hint: no effect past the end, or off x86-64).
#[inline(always)]
fn prefetch<T>(data: &[T], rows: &[u32], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(&r) = rows.get(at) {
        // SAFETY: a prefetch is a hint that never faults; the address lies inside `data` (rows index it).
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(data.as_ptr().wrapping_add(r as usize) as *const i8)
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, rows, at);
}

/// Adds rows `at` (an even start) to one feature's exact histogram. `gh` holds gradient and hessian
/// pairs in the order of `rows` (of the data when `rows` is None). Even rows go to `hs`, odd rows to
/// `other`, to be added together at the end: two neighbouring rows landing in one bin then do not
/// wait on each other's sums.
fn float_hist<B: Copy + Into<usize>>(
    col: &[B],
    rows: Option<&[u32]>,
    gh: &[[i32; 2]],
    at: std::ops::Range<usize>,
    hs: &mut [HBin],
    other: &mut [HBin],
) {
    debug_assert!(at.start % 2 == 0);
    macro_rules! run {
        ($bin:expr) => {{
            let mut i = at.start;
            while i + 1 < at.end {
                let (a, b) = (gh[i], gh[i + 1]);
                let e = &mut hs[$bin(i)];
                e.g += a[0] as i64;
                e.h += a[1] as i64;
                let e = &mut other[$bin(i + 1)];
                e.g += b[0] as i64;
                e.h += b[1] as i64;
                i += 2;
            }
            if i < at.end {
                let e = &mut hs[$bin(i)];
                e.g += gh[i][0] as i64;
                e.h += gh[i][1] as i64;
            }
        }};
    }
    match rows {
        None => run!(|i: usize| -> usize { col[i].into() }),
        // A sparse leaf's rows are far apart: each read of a bin would wait on memory, so the bins a
        // few dozen rows ahead are fetched early.
        Some(rows) if rows.len() * SPARSE_LEAF < col.len() => run!(|i: usize| -> usize {
            prefetch(col, rows, i + PREFETCH_AHEAD);
            col[rows[i] as usize].into()
        }),
        Some(rows) => run!(|i: usize| -> usize { col[rows[i] as usize].into() }),
    }
}

/// Rows per block of a exact histogram. A bin's sum is defined block by block: the block's rows are
/// summed, and the block's sum is added to the bin, blocks in order (one-byte bins, read four features
/// at a time: rows in order; wider bins, read one feature at a time: even and odd rows apart, then
/// together). Histograms built by features or by rows keep exactly this order, so they give the
/// same bits.
const HIST_BLOCK: usize = 16_384;

/// Features per group in [`GroupedBins`].
const GROUP: usize = 4;

/// One-byte bins of four consecutive features side by side, a 4-byte record per row: a leaf's
/// histogram reads one record per row for four features (instead of four scattered bytes), and its
/// gradients once per four features.
pub struct GroupedBins {
    /// Group u's records are `recs[u * n..(u + 1) * n]`.
    recs: Vec<[u8; GROUP]>,
    n: usize,
}

impl GroupedBins {
    /// The grouped copy of a dataset's bins; None when they are wider than a byte.
    pub fn new(data: &Dataset) -> Option<Self> {
        let BinMatrix::U8(cols) = &data.bins else { return None };
        let (n, nf) = (data.num_data(), data.num_features());
        let mut recs = crate::mem::zeroed(nf.div_ceil(GROUP) * n, [0u8; GROUP]);
        recs.par_chunks_mut(n.max(1)).enumerate().for_each(|(u, g)| {
            for k in 0..GROUP.min(nf - u * GROUP) {
                let f = u * GROUP + k;
                for (rec, &b) in g.iter_mut().zip(&cols[f * n..(f + 1) * n]) {
                    rec[k] = b;
                }
            }
        });
        Some(GroupedBins { recs, n })
    }

    fn group(&self, u: usize) -> &[[u8; GROUP]] {
        &self.recs[u * self.n..(u + 1) * self.n]
    }
}

/// Whether to build a exact histogram by rows (tasks are blocks of rows, each summing every feature)
/// rather than by features (one task per feature, or per group of features): when there are too few
/// tasks to keep the threads busy and rows enough for two blocks per thread.
fn row_wise(tasks: usize, rows: usize, threads: usize) -> bool {
    tasks < 2 * threads && rows >= 2 * threads * HIST_BLOCK
}

/// Adds one block of rows `at` of one feature to `total`; `pair` is scratch of twice the bins.
fn add_block<B: Copy + Into<usize>>(col: &[B], rows: Option<&[u32]>, gh: &[[i32; 2]], at: std::ops::Range<usize>, pair: &mut [HBin], total: &mut [HBin]) {
    let nb = total.len();
    let (even, odd) = pair[..2 * nb].split_at_mut(nb);
    even.fill(HBin::default());
    odd.fill(HBin::default());
    float_hist(col, rows, gh, at, even, odd);
    for ((t, e), o) in total.iter_mut().zip(even.iter()).zip(odd.iter()) {
        t.g += e.g + o.g;
        t.h += e.h + o.h;
    }
}

/// Adds rows `at` of one group of features to `sums` (one histogram of 256 bins per feature, zeroed by
/// the caller).
fn group_block(recs: &[[u8; GROUP]], rows: Option<&[u32]>, gh: &[[i32; 2]], at: std::ops::Range<usize>, sums: &mut [HBin]) {
    let sums = &mut sums[..GROUP * 256];
    for_each_record(recs, rows, at, |i, b| {
        let (g, h) = (gh[i][0] as i64, gh[i][1] as i64);
        for k in 0..GROUP {
            let e = &mut sums[k * 256 + b[k] as usize];
            e.g += g;
            e.h += h;
        }
    });
}

/// Calls `f(i, record)` for the positions `at` of a leaf, with the record of row `rows[i]` (of row i
/// when `rows` is None). The records of a sparse leaf's rows are fetched well ahead (each is a likely
/// cache miss).
#[inline(always)]
fn for_each_record(recs: &[[u8; GROUP]], rows: Option<&[u32]>, at: std::ops::Range<usize>, mut f: impl FnMut(usize, [u8; GROUP])) {
    match rows {
        None => at.for_each(|i| f(i, recs[i])),
        Some(rows) if rows.len() * SPARSE_LEAF < recs.len() => at.for_each(|i| {
            prefetch(recs, rows, i + 2 * PREFETCH_AHEAD);
            f(i, recs[rows[i] as usize])
        }),
        Some(rows) => at.for_each(|i| f(i, recs[rows[i] as usize])),
    }
}

/// Scratch a task needs for [`add_unit_block`].
fn unit_scratch(layout: &HistLayout) -> Vec<HBin> {
    let widest = layout.offsets.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    vec![HBin::default(); (GROUP * 256).max(2 * widest)]
}

/// Adds rows `at` of one unit (a group of four features with grouped bins, else one feature) to the
/// histograms `feats` of the unit's active features.
fn add_unit_block(
    data: &Dataset,
    grouped: Option<&GroupedBins>,
    unit: usize,
    rows: Option<&[u32]>,
    gh: &[[i32; 2]],
    at: std::ops::Range<usize>,
    scratch: &mut [HBin],
    feats: &mut [(usize, &mut [HBin])],
) {
    match grouped {
        Some(gb) => {
            let sums = &mut scratch[..GROUP * 256];
            sums.fill(HBin::default());
            group_block(gb.group(unit), rows, gh, at, sums);
            for (f, total) in feats.iter_mut() {
                let k = *f % GROUP;
                for (t, s) in total.iter_mut().zip(&sums[k * 256..(k + 1) * 256]) {
                    t.g += s.g;
                    t.h += s.h;
                }
            }
        }
        None => {
            let n = data.num_data();
            for (f, total) in feats.iter_mut() {
                let f = *f;
                match &data.bins {
                    BinMatrix::U8(d) => add_block(&d[f * n..(f + 1) * n], rows, gh, at.clone(), scratch, total),
                    BinMatrix::U16(d) => add_block(&d[f * n..(f + 1) * n], rows, gh, at.clone(), scratch, total),
                }
            }
        }
    }
}

/// The active features' histograms, in units: groups of four features with grouped bins, else single
/// features. Each entry: (unit, [(feature, its histogram)]).
fn units<'h>(grouped: Option<&GroupedBins>, slices: Vec<&'h mut [HBin]>, active: &[bool]) -> Vec<(usize, Vec<(usize, &'h mut [HBin])>)> {
    let width = if grouped.is_some() { GROUP } else { 1 };
    let mut out: Vec<(usize, Vec<(usize, &'h mut [HBin])>)> = Vec::new();
    for (f, s) in slices.into_iter().enumerate() {
        if !active[f] {
            continue;
        }
        let u = f / width;
        match out.last_mut() {
            Some((last, feats)) if *last == u => feats.push((f, s)),
            _ => out.push((u, vec![(f, s)])),
        }
    }
    out
}

/// Float histograms, one task per unit walking all rows block by block.
fn float_hist_by_features(data: &Dataset, grouped: Option<&GroupedBins>, layout: &HistLayout, slices: Vec<&mut [HBin]>, rows: Option<&[u32]>, gh: &[[i32; 2]], active: &[bool]) {
    let m = gh.len();
    units(grouped, slices, active).into_par_iter().for_each(|(u, mut feats)| {
        for (_, hs) in feats.iter_mut() {
            hs.fill(HBin::default());
        }
        let mut scratch = unit_scratch(layout);
        for b0 in (0..m).step_by(HIST_BLOCK) {
            add_unit_block(data, grouped, u, rows, gh, b0..(b0 + HIST_BLOCK).min(m), &mut scratch, &mut feats);
        }
    });
}

/// Float histograms, tasks being blocks of rows: `threads` blocks at a time each sum every active
/// feature into a histogram of their own, which are then added to `hist` in block order.
fn float_hist_by_rows(
    data: &Dataset,
    grouped: Option<&GroupedBins>,
    layout: &HistLayout,
    rows: Option<&[u32]>,
    gh: &[[i32; 2]],
    active: &[bool],
    threads: usize,
    hist: &mut [HBin],
) {
    let m = gh.len();
    let offsets = &layout.offsets;
    for f in (0..active.len()).filter(|&f| active[f]) {
        hist[offsets[f]..offsets[f + 1]].fill(HBin::default());
    }
    let blocks = m.div_ceil(HIST_BLOCK);
    for wave in (0..blocks).step_by(threads.max(1)) {
        let parts: Vec<Vec<HBin>> = (wave..(wave + threads.max(1)).min(blocks))
            .into_par_iter()
            .map(|k| {
                let at = k * HIST_BLOCK..((k + 1) * HIST_BLOCK).min(m);
                let mut part = vec![HBin::default(); layout.total()];
                let mut scratch = unit_scratch(layout);
                for (u, mut feats) in units(grouped, per_feature(layout, &mut part), active) {
                    add_unit_block(data, grouped, u, rows, gh, at.clone(), &mut scratch, &mut feats);
                }
                part
            })
            .collect();
        const BINS: usize = 4096;
        hist.par_chunks_mut(BINS).enumerate().for_each(|(c, hc)| {
            for part in &parts {
                for (t, p) in hc.iter_mut().zip(&part[c * BINS..]) {
                    t.g += p.g;
                    t.h += p.h;
                }
            }
        });
    }
}

/// One feature's histogram from quantized gradients: exact integer sums, scaled once per bin. When
/// `fits` (the leaf's hessians sum below 2^32) a row's pair is packed (see [`pack_quantized`]) and one
/// addition sums both parts; otherwise the parts are summed apart.
fn quantized_hist<B: Copy + Into<usize>>(col: &[B], rows: Option<&[u32]>, gh: &[(i8, u8)], fits: bool, hs: &mut [HBin]) {
    let nb = hs.len();
    let m = gh.len();
    let sparse = rows.is_some_and(|r| r.len() * SPARSE_LEAF < col.len());
    let bin = |i: usize| -> usize {
        match rows {
            None => col[i].into(),
            Some(rows) => {
                if sparse {
                    prefetch(col, rows, i + PREFETCH_AHEAD);
                }
                col[rows[i] as usize].into()
            }
        }
    };
    if fits {
        // Even and odd rows in two partial sums, as for float histograms.
        let mut acc = vec![0i64; 2 * nb];
        let (a, b) = acc.split_at_mut(nb);
        for k in 0..m / 2 {
            let (i, j) = (2 * k, 2 * k + 1);
            a[bin(i)] += pack_quantized(gh[i]);
            b[bin(j)] += pack_quantized(gh[j]);
        }
        if m % 2 == 1 {
            a[bin(m - 1)] += pack_quantized(gh[m - 1]);
        }
        for (e, (&x, &y)) in hs.iter_mut().zip(a.iter().zip(b.iter())) {
            let (g, h) = unpack_quantized(x + y);
            *e = HBin { g, h };
        }
    } else {
        let mut acc = vec![(0i64, 0i64); nb];
        for (i, &(g, h)) in gh.iter().enumerate() {
            let e = &mut acc[bin(i)];
            e.0 += g as i64;
            e.1 += h as i64;
        }
        for (e, &(g, h)) in hs.iter_mut().zip(&acc) {
            *e = HBin { g, h };
        }
    }
}

/// The histograms `feats` of one group of features (grouped bins) from quantized gradients whose
/// packed sums fit (see [`quantized_hist`]): one packed addition per row and feature.
fn quantized_group(recs: &[[u8; GROUP]], rows: Option<&[u32]>, gh: &[(i8, u8)], feats: &mut [(usize, &mut [HBin])]) {
    let mut acc = vec![0i64; GROUP * 256];
    let a = &mut acc[..GROUP * 256];
    for_each_record(recs, rows, 0..gh.len(), |i, b| {
        let v = pack_quantized(gh[i]);
        for k in 0..GROUP {
            a[k * 256 + b[k] as usize] += v;
        }
    });
    for (f, hs) in feats.iter_mut() {
        let k = *f % GROUP;
        for (e, &v) in hs.iter_mut().zip(&acc[k * 256..(k + 1) * 256]) {
            let (g, h) = unpack_quantized(v);
            *e = HBin { g, h };
        }
    }
}

/// Splits `hist` into one mutable slice per feature.
fn per_feature<'a>(layout: &HistLayout, mut hist: &'a mut [HBin]) -> Vec<&'a mut [HBin]> {
    let mut out = Vec::with_capacity(layout.offsets.len() - 1);
    for w in layout.offsets.windows(2) {
        let (head, tail) = hist.split_at_mut(w[1] - w[0]);
        out.push(head);
        hist = tail;
    }
    out
}

/// Row-sized buffers a learner works in, kept from round to round (allocating them anew each round
/// would cost page faults over every row).
#[derive(Default)]
pub struct Buffers {
    indices: Vec<u32>,
    scratch: Vec<u32>,
    ogh: Vec<[i32; 2]>,
    oqgh: Vec<(i8, u8)>,
    ranges: Vec<(usize, usize)>,
}

impl Buffers {
    /// Makes every buffer hold (or have room for) `n` rows.
    fn fit(&mut self, n: usize) {
        fn room<T: Clone>(v: &mut Vec<T>, n: usize, zero: T) {
            if v.capacity() < n {
                *v = crate::mem::zeroed(n, zero);
                v.clear();
            }
        }
        room(&mut self.indices, n, 0);
        room(&mut self.ogh, n, [0; 2]);
        room(&mut self.oqgh, n, (0, 0));
        if self.scratch.len() != n {
            self.scratch = crate::mem::zeroed(n, 0);
        }
    }
}

/// Grows trees on one dataset.
pub struct Learner<'a> {
    data: &'a Dataset,
    /// Grouped bins for float histograms (None: read feature by feature).
    grouped: Option<&'a GroupedBins>,
    layout: HistLayout,
    rules: SplitRules,
    indices: Vec<u32>,
    scratch: Vec<u32>,
    ogh: Vec<[i32; 2]>,
    oqgh: Vec<(i8, u8)>,
    /// Row range of each leaf of the current tree in `indices`.
    ranges: Vec<(usize, usize)>,
}

impl<'a> Learner<'a> {
    /// A learner on `data`; `grouped` must be `GroupedBins::new(data)` (or None). `buffers` are reused
    /// (any, e.g. `Buffers::default()`; [`Learner::into_buffers`] gives them back).
    pub fn new(data: &'a Dataset, grouped: Option<&'a GroupedBins>, rules: SplitRules, mut buffers: Buffers) -> Self {
        let n = data.num_data();
        let fits = |g: &GroupedBins| g.n == n && g.recs.len() == data.num_features().div_ceil(GROUP) * n;
        buffers.fit(n);
        Learner {
            data,
            grouped: grouped.filter(|g| fits(g)),
            layout: HistLayout::new(data),
            rules,
            indices: buffers.indices,
            scratch: buffers.scratch,
            ogh: buffers.ogh,
            oqgh: buffers.oqgh,
            ranges: buffers.ranges,
        }
    }

    /// The buffers, for the next learner.
    pub fn into_buffers(self) -> Buffers {
        Buffers { indices: self.indices, scratch: self.scratch, ogh: self.ogh, oqgh: self.oqgh, ranges: self.ranges }
    }

    /// Fills the histogram of rows `indices[begin..end]` for the `active` features: one task per feature,
    /// each feature summed in row order (so the sums do not depend on the thread count).
    fn build_hist(&mut self, begin: usize, end: usize, grads: Gradients<'_>, active: &[bool], hist: &mut [HBin]) {
        let n = self.data.num_data();
        let rows = &self.indices[begin..end];
        // The whole data set, in order: bins are read straight, with no row indices.
        let rows = if rows.len() == n { None } else { Some(rows) };
        let data = self.data;
        // Gradients gathered into this leaf's row order, so every feature reads them sequentially.
        fn gather<T: Copy + Default + Send + Sync>(buf: &mut Vec<T>, src: &[T], rows: &[u32]) {
            buf.resize(rows.len(), T::default());
            let sparse = rows.len() * SPARSE_LEAF < src.len();
            buf.par_chunks_mut(PAR_CHUNK).zip(rows.par_chunks(PAR_CHUNK)).for_each(|(o, r)| {
                for (i, (o, &ri)) in o.iter_mut().zip(r).enumerate() {
                    if sparse {
                        prefetch(src, r, i + PREFETCH_AHEAD);
                    }
                    *o = src[ri as usize];
                }
            });
        }
        match grads {
            Gradients::Fixed { gh, .. } => {
                let ogh: &[[i32; 2]] = match rows {
                    None => gh,
                    Some(rows) => {
                        gather(&mut self.ogh, gh, rows);
                        &self.ogh
                    }
                };
                let threads = rayon::current_num_threads();
                let grouped = self.grouped;
                let tasks = units(grouped, per_feature(&self.layout, hist), active).len();
                if row_wise(tasks, ogh.len(), threads) {
                    float_hist_by_rows(data, grouped, &self.layout, rows, ogh, active, threads, hist);
                } else {
                    float_hist_by_features(data, grouped, &self.layout, per_feature(&self.layout, hist), rows, ogh, active);
                }
            }
            Gradients::Quantized { gh, max_h, .. } => {
                let op: &[(i8, u8)] = match rows {
                    None => gh,
                    Some(rows) => {
                        gather(&mut self.oqgh, gh, rows);
                        &self.oqgh
                    }
                };
                // The packed sums stay exact while the leaf's hessians cannot reach 2^32.
                let fits = (op.len() as u64).saturating_mul(max_h) < 1 << 32;
                if let (Some(gb), true) = (self.grouped, fits) {
                    units(Some(gb), per_feature(&self.layout, hist), active).into_par_iter().for_each(|(u, mut feats)| {
                        quantized_group(gb.group(u), rows, op, &mut feats);
                    });
                    return;
                }
                per_feature(&self.layout, hist).into_par_iter().enumerate().filter(|(f, _)| active[*f]).for_each(|(f, hs)| {
                    match &data.bins {
                        BinMatrix::U8(d) => quantized_hist(&d[f * n..(f + 1) * n], rows, op, fits, hs),
                        BinMatrix::U16(d) => quantized_hist(&d[f * n..(f + 1) * n], rows, op, fits, hs),
                    }
                });
            }
        }
    }

    /// Starts a tree on rows `bag` (ascending; all rows when None): one leaf holding them. Returns that
    /// leaf's histogram.
    pub fn begin_tree(&mut self, grads: Gradients<'_>, bag: Option<&[u32]>, active: &[bool]) -> Vec<HBin> {
        self.indices.clear();
        match bag {
            Some(b) => {
                // Distinct rows (add_leaf_values relies on it).
                assert!(b.windows(2).all(|w| w[0] < w[1]), "the rows of a bag must ascend strictly");
                self.indices.extend_from_slice(b)
            }
            None => self.indices.extend(0..self.data.num_data() as u32),
        }
        let n_rows = self.indices.len();
        self.ranges.clear();
        self.ranges.push((0, n_rows));
        let mut root_hist = vec![HBin::default(); self.layout.total()];
        self.build_hist(0, n_rows, grads, active, &mut root_hist);
        root_hist
    }

    /// Rows of the current tree's leaves.
    pub fn leaf_rows(&self, leaf: usize) -> usize {
        self.ranges.get(leaf).map_or(0, |r| r.1 - r.0)
    }

    /// Applies `order` to its leaf's rows (a stable partition): the left child keeps the leaf's index,
    /// the right child gets the next one. Returns the rows of the two children.
    pub fn split_leaf(&mut self, order: &SplitOrder) -> (u32, u32) {
        let (begin, end) = self.ranges[order.leaf];
        let mid = self.partition(begin, end, order);
        self.ranges[order.leaf] = (begin, mid);
        self.ranges.push((mid, end));
        ((mid - begin) as u32, (end - mid) as u32)
    }

    /// The histogram of leaf `leaf` of the current tree.
    pub fn leaf_hist(&mut self, leaf: usize, grads: Gradients<'_>, active: &[bool]) -> Vec<HBin> {
        let (begin, end) = self.ranges[leaf];
        let mut h = vec![HBin::default(); self.layout.total()];
        self.build_hist(begin, end, grads, active, &mut h);
        h
    }

    /// The row ranges of the current tree's leaves.
    pub fn ranges(&self) -> &[(usize, usize)] {
        &self.ranges
    }

    /// Grows one tree on rows `bag` (ascending; all rows when None). Returns the tree (outputs not
    /// yet shrunk) and the rows of each leaf, for updating scores without traversal.
    pub fn grow(&mut self, grads: Gradients<'_>, bag: Option<&[u32]>, active: &[bool]) -> (Tree, Vec<(usize, usize)>) {
        let root = self.begin_tree(grads, bag, active);
        let n_rows = self.leaf_rows(0) as u32;
        let data = self.data;
        let mut grower = Grower::new(self.rules.clone(), &data.mappers, active, grads.scales(), n_rows, root);
        while let Some(order) = grower.next_split(&data.mappers) {
            let (left_n, right_n) = self.split_leaf(&order);
            // Which child is built does not change the tree (the sums are exact integers), only the
            // time: the smaller one is.
            let built = grower.wants_hist(left_n, right_n).map(|left| {
                let child = if left { order.leaf } else { self.ranges.len() - 1 };
                (left, self.leaf_hist(child, grads, active))
            });
            grower.finish_split(&data.mappers, left_n, right_n, built).expect("the histogram asked for was built");
        }
        (grower.into_tree(), self.ranges.clone())
    }

    /// Stable partition of `indices[begin..end]` by the split; returns the first right position.
    fn partition(&mut self, begin: usize, end: usize, split: &SplitOrder) -> usize {
        let f = split.feature;
        let n = self.data.num_data();
        let missing = self.data.mappers[f].missing_bin();
        let node = split.node();
        let rows = &mut self.indices[begin..end];
        let scratch = &mut self.scratch[..rows.len()];
        // Which side each bin goes to, looked up instead of tested (numeric, missing and categorical
        // rules alike), so the loop below has no data-dependent branch.
        let side: Vec<u8> = (0..self.data.mappers[f].num_bins() as u32).map(|b| node.bin_goes_left(b, missing) as u8).collect();
        let bins = &self.data.bins;
        let sparse = rows.len() * SPARSE_LEAF < n;
        let prefetch_bin = |src: &[u32], at: usize| match bins {
            BinMatrix::U8(d) => prefetch(&d[f * n..(f + 1) * n], src, at),
            BinMatrix::U16(d) => prefetch(&d[f * n..(f + 1) * n], src, at),
        };
        let goes_left = |r: u32| -> usize {
            let b = match bins {
                BinMatrix::U8(d) => d[f * n + r as usize] as usize,
                BinMatrix::U16(d) => d[f * n + r as usize] as usize,
            };
            side[b] as usize
        };
        // One chunk of rows per thread (at least PART_MIN rows each): a chunk keeps its left rows at its
        // front, in order, and puts its right rows in scratch; then the runs are joined. The outcome is
        // the stable partition, the same for any chunking.
        let len = rows.len();
        let chunk = len.div_ceil(rayon::current_num_threads().max(1)).max(PART_MIN);
        let counts: Vec<usize> = rows
            .par_chunks_mut(chunk)
            .zip(scratch.par_chunks_mut(chunk))
            .map(|(src, right)| {
                let (mut nl, mut nr) = (0, 0);
                for i in 0..src.len() {
                    if sparse {
                        prefetch_bin(src, i + PREFETCH_AHEAD);
                    }
                    let r = src[i];
                    let left = goes_left(r);
                    // Both slots are written, the side taken keeps its row; nl <= i, so no unread row
                    // is overwritten.
                    src[nl] = r;
                    right[nr] = r;
                    nl += left;
                    nr += 1 - left;
                }
                nl
            })
            .collect();
        let total_left: usize = counts.iter().sum();
        // Left runs slide to the front in chunk order: each lands at or before its own start and ends
        // before the next run begins.
        let mut at = 0;
        for (c, &nl) in counts.iter().enumerate() {
            rows.copy_within(c * chunk..c * chunk + nl, at);
            at += nl;
        }
        let mut dests: Vec<(usize, &mut [u32])> = Vec::with_capacity(counts.len());
        let mut rest = &mut rows[total_left..];
        for (c, &nl) in counts.iter().enumerate() {
            let (d, tail) = rest.split_at_mut(chunk.min(len - c * chunk) - nl);
            dests.push((c, d));
            rest = tail;
        }
        let scratch = &*scratch;
        dests.into_par_iter().for_each(|(c, d)| d.copy_from_slice(&scratch[c * chunk..c * chunk + d.len()]));
        begin + total_left
    }

    /// Adds `values[i]` to `plane[r]` for every row r of leaf range `ranges[i]` of the last grown tree,
    /// leaves in parallel (in pieces of at most PAR_CHUNK rows).
    pub fn add_leaf_values(&self, ranges: &[(usize, usize)], values: &[f64], plane: &mut [f64]) {
        add_leaf_values_at(&self.indices, ranges, values, plane)
    }

    /// The row indices of the last grown tree's leaves, laid out as its ranges say.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// The row indices of leaf range `(begin, end)` of the last grown tree.
    pub fn rows(&self, range: (usize, usize)) -> &[u32] {
        &self.indices[range.0..range.1]
    }
}

/// Adds `values[i]` to `plane[r]` for every row r of `indices[ranges[i].0..ranges[i].1]` (a grown
/// tree's leaves: disjoint ranges of distinct rows), leaves in parallel (in pieces of at most PAR_CHUNK
/// rows).
pub fn add_leaf_values_at(indices: &[u32], ranges: &[(usize, usize)], values: &[f64], plane: &mut [f64]) {
    /// The plane, shared by tasks that write disjoint rows.
    struct Shared(*mut f64);
    // SAFETY: only the disjoint writes below go through it.
    unsafe impl Sync for Shared {}
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    assert!(
        sorted.windows(2).all(|w| w[0].1 <= w[1].0) && sorted.iter().all(|r| r.0 <= r.1 && r.1 <= indices.len()),
        "leaf ranges overlap"
    );
    let out = Shared(plane.as_mut_ptr());
    let len = plane.len();
    let pieces: Vec<(&[u32], f64)> =
        ranges.iter().zip(values).flat_map(|(&(b, e), &v)| indices[b..e].chunks(PAR_CHUNK).map(move |c| (c, v))).collect();
    pieces.into_par_iter().for_each(|(rows, v)| {
        let out = &out;
        for &r in rows {
            assert!((r as usize) < len, "row {r} outside the scores");
            // SAFETY: in bounds (checked); the ranges are disjoint parts of `indices`, whose rows
            // are distinct (a tree starts from distinct rows and partitioning only permutes them), so
            // no two tasks write one row.
            unsafe { *out.0.add(r as usize) += v };
        }
    });
}

/// A split the tree grower chose, as the holders of the rows need it: the leaf and the rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitOrder {
    /// The leaf to split (its left child keeps the index; the right child gets the next).
    pub leaf: usize,
    /// Feature split on.
    pub feature: usize,
    /// Numeric: bins `<= threshold_bin` go left.
    pub threshold_bin: u32,
    /// Where the missing bin goes (numeric).
    pub default_left: bool,
    /// Categorical: bitset of the bins that go left (empty for numeric splits).
    pub cat_left: Vec<u32>,
    /// The rows of each side as the histogram estimates them (the exact counts come from the rows).
    pub est_left: u32,
    /// See `est_left`.
    pub est_right: u32,
}

impl SplitOrder {
    /// Whether rows in bin `b` of the feature (whose missing bin is `missing`) go left.
    pub fn goes_left(&self, b: u32, missing: u32) -> bool {
        self.node().bin_goes_left(b, missing)
    }

    fn node(&self) -> TreeNode {
        TreeNode {
            feature: self.feature as u32,
            threshold_bin: self.threshold_bin,
            threshold: 0.0,
            default_left: self.default_left,
            missing: 0,
            cat_inverted: false,
            cat_left: self.cat_left.clone(),
            left: 0,
            right: 0,
            gain: 0.0,
            count: 0,
            hess: 0.0,
            value: 0.0,
        }
    }
}

/// Leaf-wise growth of one tree from exact histograms, knowing nothing of where the rows are: the
/// trainer feeds it the root histogram, then for each split it orders the rows' children counts and
/// the histogram of one child. One process (the local learner) or many (shards of the rows, whose
/// histograms are added) drive it the same way, so both grow the same tree.
pub struct Grower {
    rules: SplitRules,
    layout: HistLayout,
    active: Vec<bool>,
    /// Value of one unit of the histograms' integer gradient and hessian sums.
    scale: (f64, f64),
    leaves: Vec<Leaf>,
    nodes: Vec<TreeNode>,
    pending: Option<(usize, Split)>,
}

impl Grower {
    /// A tree whose root holds `n_rows` rows with histogram `root_hist` (integer sums; one unit of
    /// gradient is `scale.0`, of hessian `scale.1`).
    pub fn new(rules: SplitRules, mappers: &[BinMapper], active: &[bool], scale: (f64, f64), n_rows: u32, root_hist: Vec<HBin>) -> Self {
        let layout = HistLayout::from_mappers(mappers);
        // Root sums from the first active feature's histogram (every row lands in one of its bins).
        let f0 = active.iter().position(|&a| a).unwrap_or(0);
        let (mut g, mut h) = (0i64, 0i64);
        if f0 + 1 < layout.offsets.len() {
            for b in &root_hist[layout.offsets[f0]..layout.offsets[f0 + 1]] {
                g += b.g;
                h += b.h;
            }
        }
        let root = Sums { g: g as f64 * scale.0, h: h as f64 * scale.1, n: n_rows };
        let mut grower = Grower { rules, layout, active: active.to_vec(), scale, leaves: Vec::new(), nodes: Vec::new(), pending: None };
        let mut leaf = Leaf { sums: root, depth: 0, hist: Some(root_hist), best: None, parent: None, bounds: Bounds::FREE, used: Vec::new() };
        if grower.may_split(0, n_rows) {
            leaf.best = grower.find_best(mappers, leaf.hist.as_ref().unwrap(), &root, Bounds::FREE, &[]);
        }
        grower.leaves.push(leaf);
        grower
    }

    /// Histogram bins (all features).
    pub fn total_bins(&self) -> usize {
        self.layout.total()
    }

    /// The next split: of the leaf whose best split gains most (the first such leaf on ties). None when
    /// the tree is complete.
    pub fn next_split(&mut self, mappers: &[BinMapper]) -> Option<SplitOrder> {
        let _ = mappers;
        if self.pending.is_some() || self.leaves.len() >= self.rules.num_leaves {
            return None;
        }
        let mut pick: Option<usize> = None;
        for (i, l) in self.leaves.iter().enumerate() {
            if let Some(s) = &l.best {
                if pick.is_none_or(|p| s.gain > self.leaves[p].best.as_ref().unwrap().gain) {
                    pick = Some(i);
                }
            }
        }
        let li = pick?;
        let split = self.leaves[li].best.take().unwrap();
        let order = SplitOrder {
            leaf: li,
            feature: split.feature,
            threshold_bin: split.threshold_bin,
            default_left: split.default_left,
            cat_left: split.cat_left.clone(),
            est_left: split.left.n,
            est_right: split.right.n,
        };
        self.pending = Some((li, split));
        Some(order)
    }

    /// Whether the pending split's children need a histogram, given their exact row counts: Some(true)
    /// for the left child, Some(false) for the right (the smaller; either gives the same tree), None
    /// when neither child can be split further.
    pub fn wants_hist(&self, left_n: u32, right_n: u32) -> Option<bool> {
        let (li, _) = self.pending.as_ref()?;
        let depth = self.leaves[*li].depth;
        let grows = self.leaves.len() + 1 < self.rules.num_leaves
            && (self.may_split(depth + 1, left_n) || self.may_split(depth + 1, right_n));
        grows.then_some(left_n <= right_n)
    }

    /// Completes the pending split with the children's exact row counts and, when [`Grower::wants_hist`]
    /// asks for one, the histogram of one child (`(is_left, histogram)`).
    pub fn finish_split(&mut self, mappers: &[BinMapper], left_n: u32, right_n: u32, built: Option<(bool, Vec<HBin>)>) -> Result<()> {
        let need = self.wants_hist(left_n, right_n);
        let (li, mut split) = self.pending.take().ok_or_else(|| Error::Internal("no split is pending".into()))?;
        let leaves = &mut self.leaves;
        let nodes = &mut self.nodes;
        let l2 = self.rules.lambda_l2;
        let depth = leaves[li].depth;
        split.left.n = left_n;
        split.right.n = right_n;
        let node_index = nodes.len();
        let threshold = match &mappers[split.feature] {
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
        // Children: one is built, the other is the parent minus it (exact integers); neither when no
        // child will be split (the tree is full after this split, or both are too small or too deep).
        let mut parent_hist = leaves[li].hist.take().unwrap_or_default();
        let (left_hist, right_hist) = match (need, built) {
            (Some(_), Some((left, mut small))) => {
                if small.len() != parent_hist.len() {
                    return Err(Error::Internal(format!("a child histogram has {} bins, expected {}", small.len(), parent_hist.len())));
                }
                for f in (0..self.active.len()).filter(|&f| self.active[f]) {
                    let r = self.layout.offsets[f]..self.layout.offsets[f + 1];
                    for (p, s) in parent_hist[r.clone()].iter_mut().zip(&mut small[r]) {
                        *p = HBin { g: p.g - s.g, h: p.h - s.h };
                    }
                }
                if left { (Some(small), Some(parent_hist)) } else { (Some(parent_hist), Some(small)) }
            }
            (Some(_), None) => return Err(Error::Internal("the split needs a child histogram".into())),
            (None, _) => (None, None),
        };
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
        leaves[li] = Leaf { sums: split.left, depth: depth + 1, hist: left_hist, best: None, parent: Some((node_index, true)), bounds: lb, used: used.clone() };
        leaves.push(Leaf { sums: split.right, depth: depth + 1, hist: right_hist, best: None, parent: Some((node_index, false)), bounds: rb, used });
        for i in [li, right_index] {
            let leaf = &self.leaves[i];
            let best = if self.leaves.len() < self.rules.num_leaves && self.may_split(leaf.depth, leaf.sums.n) && leaf.hist.is_some() {
                self.find_best(mappers, leaf.hist.as_ref().expect("checked"), &leaf.sums, leaf.bounds, &leaf.used)
            } else {
                None
            };
            let leaf = &mut self.leaves[i];
            if best.is_none() {
                leaf.hist = None;
            }
            leaf.best = best;
        }
        Ok(())
    }

    /// The grown tree (outputs not yet shrunk).
    pub fn into_tree(self) -> Tree {
        let l2 = self.rules.lambda_l2;
        Tree {
            leaf_value: self.leaves.iter().map(|l| self.rules.leaf_output(&l.sums, l2, l.bounds)).collect(),
            leaf_count: self.leaves.iter().map(|l| l.sums.n).collect(),
            leaf_hess: self.leaves.iter().map(|l| l.sums.h).collect(),
            nodes: self.nodes,
            cover_is_hessian: false,
        }
    }

    fn find_best(&self, mappers: &[BinMapper], hist: &[HBin], sums: &Sums, bounds: Bounds, used: &[usize]) -> Option<Split> {
        let allowed = self.rules.allowed(used, &self.active);
        let active = &allowed[..];
        let offsets = &self.layout.offsets;
        let rules = &self.rules;
        let (gs, hs) = self.scale;
        let found: Vec<Option<Split>> = (0..mappers.len())
            .into_par_iter()
            .map(|f| {
                if !active[f] {
                    return None;
                }
                let h: Vec<Bin> = hist[offsets[f]..offsets[f + 1]].iter().map(|b| Bin { g: b.g as f64 * gs, h: b.h as f64 * hs }).collect();
                best_split_for_feature(rules, f, &mappers[f], &h, sums, bounds)
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

    /// Whether a leaf this deep with this many rows may be split.
    fn may_split(&self, depth: usize, rows: u32) -> bool {
        (self.rules.max_depth <= 0 || (depth as i64) < self.rules.max_depth) && rows >= 2 * self.rules.min_data_in_leaf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::{DenseMatrix, Frame};
    use crate::data::sample::SplitMix64;
    use crate::data::BinConfig;
    use ndarray::Array2;

    /// 40,000 rows x 3 features, the second with 10% missing values.
    fn dataset() -> Dataset {
        let mut rng = SplitMix64::new(7);
        let x = Array2::from_shape_fn((40_000, 3), |(_, j)| {
            let v = rng.next_f64();
            if j == 1 && v < 0.1 { f64::NAN } else { (v * 1000.0).floor() }
        });
        let f = Frame::from_dense(DenseMatrix::F64(x.view()), None, &[]).unwrap();
        Dataset::construct(&f, Some(vec![0.0; 40_000]), None, &BinConfig::default(), None).unwrap()
    }

    fn rules() -> SplitRules {
        SplitRules::from_params(&GbdtParams::default())
    }

    fn split_on(feature: usize, threshold_bin: u32, default_left: bool) -> SplitOrder {
        SplitOrder { leaf: 0, feature, threshold_bin, default_left, cat_left: vec![], est_left: 0, est_right: 0 }
    }

    #[test]
    fn partition_is_stable_for_any_thread_count_and_leaf_size() {
        let data = dataset();
        let n = data.num_data();
        // Every 9th row (a sparse leaf, read with prefetching) and every row (one chunk per thread).
        let leaves: [Vec<u32>; 2] = [(0..n as u32).step_by(9).collect(), (0..n as u32).collect()];
        for rows in &leaves {
            for (feature, default_left) in [(0, false), (1, true), (1, false)] {
                let split = split_on(feature, 100, default_left);
                let missing = data.mappers[feature].missing_bin();
                let goes_left = |r: u32| {
                    let b = data.bin(r as usize, feature);
                    if b == missing { default_left } else { b <= 100 }
                };
                let want: Vec<u32> = rows.iter().copied().filter(|&r| goes_left(r)).chain(rows.iter().copied().filter(|&r| !goes_left(r))).collect();
                for threads in [1, 2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    let mut l = Learner::new(&data, None, rules(), Buffers::default());
                    l.indices = rows.clone();
                    let mid = pool.install(|| l.partition(0, rows.len(), &split));
                    assert_eq!(l.indices, want, "feature {feature}, {threads} threads, {} rows", rows.len());
                    assert_eq!(mid, want.iter().take_while(|&&r| goes_left(r)).count());
                }
            }
        }
    }

    #[test]
    fn histograms_match_a_plain_sum() {
        let data = dataset();
        let n = data.num_data();
        let mut rng = SplitMix64::new(3);
        // Fixed-point gradients and hessians up to 2^30 in magnitude (as the trainer makes them).
        let gh: Vec<[i32; 2]> = (0..n).map(|_| [((rng.next_f64() - 0.5) * 2.0 * (1 << 30) as f64) as i32, (rng.next_f64() * (1 << 30) as f64) as i32]).collect();
        let qg: Vec<i8> = (0..n).map(|i| (i % 9) as i8 - 4).collect();
        let qh: Vec<u8> = (0..n).map(|i| (i % 5) as u8).collect();
        let qgh: Vec<(i8, u8)> = qg.iter().copied().zip(qh.iter().copied()).collect();
        let active = vec![true; 3];
        let layout = HistLayout::new(&data);
        let grouped = GroupedBins::new(&data).unwrap();
        for (rows, grouped) in [(0..n as u32).collect::<Vec<_>>(), (0..n as u32).filter(|r| r % 7 == 3).collect(), (5..n as u32).step_by(31).collect()]
            .into_iter()
            .flat_map(|rows| [(rows.clone(), None), (rows, Some(&grouped))])
        {
            let mut l = Learner::new(&data, grouped, rules(), Buffers::default());
            l.indices = rows.clone();
            let mut hf = vec![HBin::default(); layout.total()];
            l.build_hist(0, rows.len(), Gradients::Fixed { gh: &gh, g_scale: 1.0, h_scale: 1.0 }, &active, &mut hf);
            let mut hq = vec![HBin::default(); layout.total()];
            l.build_hist(0, rows.len(), Gradients::Quantized { gh: &qgh, max_h: 4, g_scale: 0.5, h_scale: 0.25 }, &active, &mut hq);
            // A hessian bound too large for packed sums: the parts are summed apart, same result.
            let mut hq2 = vec![HBin::default(); layout.total()];
            l.build_hist(0, rows.len(), Gradients::Quantized { gh: &qgh, max_h: 1 << 31, g_scale: 0.5, h_scale: 0.25 }, &active, &mut hq2);
            assert_eq!(hq, hq2);
            let mut want = vec![HBin::default(); layout.total()];
            let mut want_q = vec![(0i64, 0i64); layout.total()];
            for &r in &rows {
                for f in 0..3 {
                    let at = layout.offsets[f] + data.bin(r as usize, f) as usize;
                    want[at].g += gh[r as usize][0] as i64;
                    want[at].h += gh[r as usize][1] as i64;
                    want_q[at].0 += qg[r as usize] as i64;
                    want_q[at].1 += qh[r as usize] as i64;
                }
            }
            for at in 0..layout.total() {
                // Exact: the integer sums, whatever the grouping and row order.
                assert_eq!(hf[at], want[at], "bin {at}");
                assert_eq!(hq[at], HBin { g: want_q[at].0, h: want_q[at].1 }, "bin {at}");
            }
        }
    }

    #[test]
    fn histograms_by_rows_and_by_features_are_identical() {
        let data = dataset();
        let n = data.num_data();
        let layout = HistLayout::new(&data);
        let mut rng = SplitMix64::new(11);
        // Gradients of mixed signs and magnitudes, some exactly zero.
        let gh: Vec<[i32; 2]> = (0..n).map(|i| if i % 13 == 0 { [0, 0] } else { [to_fixed(((rng.next_f64() - 0.5) * 1e3) as f32, fixed_scale(500.0)), to_fixed(rng.next_f64() as f32, fixed_scale(1.0))] }).collect();
        for (rows, active) in [(None, vec![true; 3]), (Some((0..n as u32).filter(|r| r % 3 != 1).collect::<Vec<_>>()), vec![true, false, true])] {
            let ogh: Vec<[i32; 2]> = match &rows {
                None => gh.clone(),
                Some(r) => r.iter().map(|&r| gh[r as usize]).collect(),
            };
            let gb = GroupedBins::new(&data).unwrap();
            for grouped in [None, Some(&gb)] {
                let mut by_features = vec![HBin::default(); layout.total()];
                float_hist_by_features(&data, grouped, &layout, per_feature(&layout, &mut by_features), rows.as_deref(), &ogh, &active);
                for threads in [1, 2, 3] {
                    let mut by_rows = vec![HBin::default(); layout.total()];
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    pool.install(|| float_hist_by_rows(&data, grouped, &layout, rows.as_deref(), &ogh, &active, threads, &mut by_rows));
                    for (at, (a, b)) in by_features.iter().zip(&by_rows).enumerate() {
                        assert_eq!(a, b, "bin {at}");
                    }
                }
            }
        }
        assert!(row_wise(3, 1_000_000, 16) && !row_wise(28, 1_000_000, 2) && !row_wise(3, 1000, 16));
    }

    #[test]
    fn fixed_point_keeps_thirty_bits_of_the_largest_value() {
        for max in [1e-12f64, 0.25, 1.0, 3.0, 1e9] {
            let s = fixed_scale(max);
            assert!(max * s < (1u64 << 30) as f64 && max * s >= (1u64 << 29) as f64, "{max}: {s}");
            assert_eq!(s.to_bits() & ((1 << 52) - 1), 0, "a power of two");
        }
        assert_eq!(fixed_scale(0.0), 1.0);
        assert_eq!(to_fixed(-0.75, 4.0), -3);
    }

    #[test]
    fn the_built_child_does_not_change_the_tree() {
        // Either child may be built (the other is parent minus it): with exact sums both give the
        // same tree, which is what lets shards of the rows choose by estimated counts.
        let data = dataset();
        let n = data.num_data();
        let mut rng = SplitMix64::new(5);
        let g: Vec<f32> = (0..n).map(|i| (data.bin(i, 0) as f32 / 100.0 - 2.0) + rng.next_f64() as f32 * 0.1).collect();
        let gs = fixed_scale(g.iter().fold(0f64, |m, v| m.max(v.abs() as f64)));
        let gh: Vec<[i32; 2]> = g.iter().map(|&v| [to_fixed(v, gs), to_fixed(1.0, fixed_scale(1.0))]).collect();
        let grads = Gradients::Fixed { gh: &gh, g_scale: 1.0 / gs, h_scale: 1.0 / fixed_scale(1.0) };
        let active = vec![true; 3];
        let mut trees = Vec::new();
        for pick in [None, Some(true), Some(false)] {
            let mut l = Learner::new(&data, None, SplitRules { num_leaves: 15, ..rules() }, Buffers::default());
            let root = l.begin_tree(grads, None, &active);
            let mut gr = Grower::new(SplitRules { num_leaves: 15, ..rules() }, &data.mappers, &active, grads.scales(), n as u32, root);
            while let Some(o) = gr.next_split(&data.mappers) {
                let (ln, rn) = l.split_leaf(&o);
                let built = gr.wants_hist(ln, rn).map(|smaller| {
                    let left = pick.unwrap_or(smaller);
                    let child = if left { o.leaf } else { l.ranges().len() - 1 };
                    (left, l.leaf_hist(child, grads, &active))
                });
                gr.finish_split(&data.mappers, ln, rn, built).unwrap();
            }
            trees.push(gr.into_tree());
        }
        assert!(trees[0].nodes.len() >= 10);
        assert_eq!(trees[0], trees[1]);
        assert_eq!(trees[0], trees[2]);
    }
}
