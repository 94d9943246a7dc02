//! The evaluation layout of a forest: every node of every tree in one array of 16-byte records, the
//! two children of a node side by side (right = left + 1), leaves as nodes that point to themselves.
//! A step is branch-free: `next = child + !(goes left)`, so groups of rows walk a tree in lock-step
//! and their independent memory loads overlap; with AVX-512, batches of forests whose nodes are all
//! numeric with NaN as the missing value walk eight rows a vector (gathers), eight vectors in flight.
//! Batches of forests with up to 32 leaves a tree (64 for forests that cannot walk by vectors) skip
//! the walk: see `quick` (exit-leaf mask tables, chosen by the largest tree when the forest is laid
//! out and built at the first batch, so single rows never pay for them).

use super::forest::{FlatTree, ZERO_THRESHOLD};
use super::quick::MaskForest;
use std::sync::{Arc, OnceLock};
use crate::gbdt::tree::bit;

const LEAF: u32 = 1 << 31;
const DEFAULT_LEFT: u32 = 1 << 30;
const CATEGORICAL: u32 = 1 << 29;
const CAT_INVERTED: u32 = 1 << 28;
/// Missing-value rules other than NaN (general forests): zero counts as missing, or nothing does
/// (NaN then reads as 0).
const MISSING_ZERO: u32 = 1 << 27;
const MISSING_NONE: u32 = 1 << 26;
const FEATURE: u32 = (1 << 26) - 1;

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
#[derive(Clone, Debug, Default)]
pub struct Compiled {
    nodes: Vec<CNode>,
    roots: Vec<u32>,
    /// Every node numeric with NaN as its only missing value: the branch-free fast path applies.
    simple: bool,
    /// Per node (only when not simple): missing rule and category set range.
    missing: Vec<u8>,
    /// Per node: (first word in `cat_words`, words) of its category set; (0, 0) when numeric.
    cats: Vec<[u32; 2]>,
    cat_words: Vec<u32>,
    /// Sum tree outputs in float32, as XGBoost does (its models then predict bit for bit alike).
    f32_sum: bool,
    /// The mask width the largest tree needs (`QuickKind::None` when the tables cannot hold it).
    kind: QuickKind,
    /// The trees and feature count the tables are built from, at the first batch.
    source: Arc<[FlatTree]>,
    nf: usize,
    /// Exit-leaf mask tables for batches.
    quick: OnceLock<Arc<Quick>>,
}

impl PartialEq for Compiled {
    /// The layout, not whether its tables were built yet.
    fn eq(&self, o: &Compiled) -> bool {
        self.nodes == o.nodes
            && self.roots == o.roots
            && self.simple == o.simple
            && self.missing == o.missing
            && self.cats == o.cats
            && self.cat_words == o.cat_words
            && self.f32_sum == o.f32_sum
            && self.kind == o.kind
    }
}

/// Mask width, by the most leaves a tree has.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum QuickKind {
    #[default]
    None,
    /// Up to 32 leaves.
    Narrow,
    /// Up to 64.
    W64,
}

/// Mask tables sized to the largest tree.
#[derive(Debug, Default, PartialEq)]
enum Quick {
    #[default]
    None,
    Narrow(MaskForest<u32>),
    W64(MaskForest<u64>),
}

/// Calls `$body` with `$q` bound to the mask forest of whatever width `$quick` has, else `$none`.
macro_rules! with_masks {
    ($quick:expr, $q:ident => $body:expr, $none:expr) => {
        match $quick {
            Quick::None => $none,
            Quick::Narrow($q) => $body,
            Quick::W64($q) => $body,
        }
    };
}

/// Rows a vector walk takes at once (eight vectors of eight).
const WIDE_ROWS: usize = 64;

/// Whether this CPU walks simple forests eight rows a vector.
fn vector_walks() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx512()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512bw")
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
        c.nf = trees.iter().flat_map(|t| t.nodes.iter().map(|n| n.feature as usize + 1)).max().unwrap_or(0);
        let leaves = trees.iter().map(|t| t.leaf_values.len()).max().unwrap_or(0);
        // Masks cost a row (features x trees x mask bytes) of loads whatever the depth; a walk costs
        // (trees x depth) steps. With AVX-512 a simple forest walks eight rows a vector, which beats
        // 64-bit masks; forests with categories or other missing-value rules walk row by row and keep
        // them.
        c.kind = match leaves {
            0 => QuickKind::None,
            ..=32 => QuickKind::Narrow,
            ..=64 if !(simple && vector_walks()) => QuickKind::W64,
            _ => QuickKind::None,
        };

        if c.kind != QuickKind::None {
            c.source = trees.into();
        }
        c
    }

    /// The mask tables, built on first use (`Quick::None` when the trees do not fit them after all).
    fn quick(&self) -> &Quick {
        self.quick.get_or_init(|| {
            let (t, nf) = (&self.source[..], self.nf);
            Arc::new(match self.kind {
                QuickKind::None => None,
                QuickKind::Narrow => MaskForest::new(t, nf).map(Quick::Narrow),
                QuickKind::W64 => MaskForest::new(t, nf).map(Quick::W64),
            }
            .unwrap_or(Quick::None))
        })
    }

    fn push(&mut self, n: CNode, missing: u8, cat: [u32; 2]) -> usize {
        self.nodes.push(n);
        if !self.simple {
            self.missing.push(missing);
            self.cats.push(cat);
        }
        self.nodes.len() - 1
    }

    fn add(&mut self, t: &FlatTree) {
        let root = self.push(CNode::default(), 0, [0, 0]);
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
            let left = self.push(CNode::default(), 0, [0, 0]);
            self.push(CNode::default(), 0, [0, 0]);
            let mut flags = n.feature & FEATURE;
            if n.default_left {
                flags |= DEFAULT_LEFT;
            }
            let mut cat = [0, 0];
            match n.missing {
                0 => {}
                1 => flags |= MISSING_ZERO,
                _ => flags |= MISSING_NONE,
            }
            if n.cat_len > 0 {
                flags |= CATEGORICAL;
                if n.cat_inverted {
                    flags |= CAT_INVERTED;
                }
                let start = self.cat_words.len() as u32;
                self.cat_words.extend_from_slice(&t.cat_words[n.cat_start as usize..(n.cat_start + n.cat_len) as usize]);
                cat = [start, n.cat_len];
            }
            // A categorical node has no threshold: its value field holds the set's (start, words),
            // which the vector walk reads with the node instead of gathering it apart.
            let value = if n.cat_len > 0 { f64::from_bits(cat[0] as u64 | (cat[1] as u64) << 32) } else { n.threshold };
            self.nodes[slot] = CNode { value, feature: flags, child: left as u32 };
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
            let [s, l] = self.cats[i];
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
        if rows >= QUICK_MIN_ROWS && self.kind != QuickKind::None {
            first = with_masks!(self.quick(), q => {
                q.add_block(buf, nf, 1, rows, n_trees, k, self.f32_sum, out);
                q.covered(n_trees)
            }, 0);
        }
        self.walk_block(buf, nf, rows, first, n_trees, k, out);
    }

    /// Whether blocks should come column by column (see [`Compiled::add_block_cols`]).
    pub fn prefers_columns(&self) -> bool {
        self.kind != QuickKind::None
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
        let first = if self.kind == QuickKind::None {
            0
        } else {
            with_masks!(self.quick(), q => {
                q.add_block(buf, rs, cs, rows, n_trees, k, self.f32_sum, out);
                q.covered(n_trees)
            }, 0)
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
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if rows >= WIDE_ROWS && has_avx512() {
            // SAFETY: the CPU has the features (the kernels check the sizes).
            if self.simple {
                done = rows / WIDE_ROWS * WIDE_ROWS;
                unsafe { self.walk_avx512(buf, nf, done, first, n_trees, k, out) };
            } else {
                done = rows;
                unsafe { self.walk_avx512_general(buf, nf, rows, first, n_trees, k, out) };
            }
        }
        let (buf, rows, out) = (&buf[done * nf..], rows - done, &mut out[done * k..]);
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

    /// Trees `first..n_trees` over `rows` rows (a multiple of [`WIDE_ROWS`]) of a simple forest with
    /// AVX-512: the step of [`Compiled::tree_simple`] for eight rows in one vector, eight vectors
    /// in flight; a node is two gathers (threshold; feature and child), its row values a third.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn walk_avx512(&self, buf: &[f64], nf: usize, rows: usize, first: usize, n_trees: usize, k: usize, out: &mut [f64]) {
        use std::arch::x86_64::*;
        const V: usize = WIDE_ROWS / 8;
        assert!(rows % WIDE_ROWS == 0 && buf.len() >= rows * nf && out.len() >= rows * k);
        assert!(self.nf <= nf);
        let nodes = self.nodes.as_ptr() as *const u8;
        let xs = buf.as_ptr();
        let lo32 = _mm512_set1_epi64(0xFFFF_FFFF);
        let feature_bits = _mm512_set1_epi64(FEATURE as i64);
        let leaf_bit = _mm512_set1_epi64(LEAF as i64);
        let dl_bit = _mm512_set1_epi64(DEFAULT_LEFT as i64);
        let one = _mm512_set1_epi64(1);
        let mut leaf_out = [0.0f64; WIDE_ROWS];
        for g in (0..rows).step_by(WIDE_ROWS) {
            // Element offset of each lane's row.
            let base: [__m512i; V] = std::array::from_fn(|j| {
                let r0 = (g + j * 8) as i64;
                _mm512_mullo_epi64(_mm512_add_epi64(_mm512_set1_epi64(r0), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7)), _mm512_set1_epi64(nf as i64))
            });
            for t in first..n_trees {
                let mut at = [_mm512_set1_epi64(self.roots[t] as i64); V];
                loop {
                    let mut all_leaves: __mmask8 = 0xFF;
                    for j in 0..V {
                        let off = _mm512_slli_epi64::<4>(at[j]);
                        // SAFETY: every index is a node of `nodes` (16 bytes each: the threshold,
                        // then feature and child); every row offset plus a feature is inside `buf`.
                        let (thr, fc) = unsafe {
                            (_mm512_i64gather_pd::<1>(off, nodes as *const f64), _mm512_i64gather_epi64::<1>(_mm512_add_epi64(off, _mm512_set1_epi64(8)), nodes as *const i64))
                        };
                        let flags = _mm512_and_si512(fc, lo32);
                        let leaf = _mm512_test_epi64_mask(flags, leaf_bit);
                        let dl = _mm512_test_epi64_mask(flags, dl_bit);
                        let f = _mm512_and_si512(flags, feature_bits);
                        // SAFETY: as above.
                        let x = unsafe { _mm512_i64gather_pd::<8>(_mm512_add_epi64(base[j], f), xs) };
                        // `!(x > v)` is `x <= v` but true for NaN: one compare serves both directions.
                        let not_gt = !_mm512_cmp_pd_mask::<_CMP_GT_OQ>(x, thr);
                        let le = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(x, thr);
                        let left = leaf | (dl & not_gt) | le;
                        let child = _mm512_srli_epi64::<32>(fc);
                        at[j] = _mm512_mask_add_epi64(child, !left, child, one);
                        all_leaves &= leaf;
                    }
                    if all_leaves == 0xFF {
                        break;
                    }
                }
                for j in 0..V {
                    // SAFETY: as above; `leaf_out` holds WIDE_ROWS values.
                    unsafe {
                        let v = _mm512_i64gather_pd::<1>(_mm512_slli_epi64::<4>(at[j]), nodes as *const f64);
                        _mm512_storeu_pd(leaf_out.as_mut_ptr().add(j * 8), v);
                    }
                }
                let c = t % k;
                for (l, &v) in leaf_out.iter().enumerate() {
                    self.acc(&mut out[(g + l) * k + c], v);
                }
            }
        }
    }

    /// Trees `first..n_trees` over `rows` rows of a forest with categorical nodes or other
    /// missing-value rules, with AVX-512. Each step decides every lane by all the rules at once
    /// (NaN-missing, zero-missing, no missing, category sets, inverted sets) and keeps the one its node
    /// has (the answers of [`Compiled::goes_left_general`]); category words are gathered only for
    /// vectors with a categorical node among their lanes. Lanes are refilled: each of the 64 lanes
    /// (eight vectors) walks one row, and a lane whose row reached its leaf adds the leaf's value and
    /// takes the next row of the block, so a step costs the rows still walking, not the deepest row of
    /// a group (such forests are often LightGBM's deep, unbalanced 255-leaf trees, 15-25 levels; for
    /// simple forests the lock-step walk measured faster). Rows add their trees in order.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn walk_avx512_general(&self, buf: &[f64], nf: usize, rows: usize, first: usize, n_trees: usize, k: usize, out: &mut [f64]) {
        use std::arch::x86_64::*;
        const V: usize = WIDE_ROWS / 8;
        assert!(buf.len() >= rows * nf && out.len() >= rows * k && rows < (1 << 31));
        assert!(self.nf <= nf && self.cats.len() == self.nodes.len());
        let nodes = self.nodes.as_ptr() as *const u8;
        let words = self.cat_words.as_ptr() as *const i32;
        let xs = buf.as_ptr();
        let lo32 = _mm512_set1_epi64(0xFFFF_FFFF);
        let feature_bits = _mm512_set1_epi64(FEATURE as i64);
        let bit = |b: u32| _mm512_set1_epi64(b as i64);
        let (leaf_bit, dl_bit, cat_bit, inv_bit, zero_bit, none_bit) =
            (bit(LEAF), bit(DEFAULT_LEFT), bit(CATEGORICAL), bit(CAT_INVERTED), bit(MISSING_ZERO), bit(MISSING_NONE));
        let one = _mm512_set1_epi64(1);
        let thirty_one = _mm512_set1_epi64(31);
        let zero_pd = _mm512_setzero_pd();
        let zero_band = _mm512_set1_pd(ZERO_THRESHOLD);
        let nfv = _mm512_set1_epi64(nf as i64);
        for t in first..n_trees {
            let root = self.roots[t] as i64;
            let c = t % k;
            // Lane l of vector j walks row `rid[j][l]` (its features start at `rid * nf`).
            let mut rid = [[0i64; 8]; V];
            let mut live = [0u8; V];
            let mut next = 0usize;
            for j in 0..V {
                for l in 0..8 {
                    if next < rows {
                        rid[j][l] = next as i64;
                        live[j] |= 1 << l;
                        next += 1;
                    }
                }
            }
            let mut at = [_mm512_set1_epi64(root); V];
            // SAFETY: `rid` holds eight i64 per vector.
            let mut base: [__m512i; V] = std::array::from_fn(|j| unsafe { _mm512_mullo_epi64(_mm512_loadu_si512(rid[j].as_ptr() as *const _), nfv) });
            while live.iter().any(|&m| m != 0) {
                for j in 0..V {
                    let act = live[j];
                    if act == 0 {
                        continue;
                    }
                    let off = _mm512_slli_epi64::<4>(at[j]);
                    // SAFETY: every index is a node of `nodes` (16 bytes each); every live lane's row
                    // offset plus a feature is inside `buf` (idle lanes keep a valid old row).
                    let (thr, fc) = unsafe {
                        (_mm512_i64gather_pd::<1>(off, nodes as *const f64), _mm512_i64gather_epi64::<1>(_mm512_add_epi64(off, _mm512_set1_epi64(8)), nodes as *const i64))
                    };
                    let flags = _mm512_and_si512(fc, lo32);
                    let leaf = _mm512_test_epi64_mask(flags, leaf_bit);
                    let dl = _mm512_test_epi64_mask(flags, dl_bit);
                    let f = _mm512_and_si512(flags, feature_bits);
                    // SAFETY: as above.
                    let x = unsafe { _mm512_i64gather_pd::<8>(_mm512_add_epi64(base[j], f), xs) };
                    let le = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(x, thr);
                    // `!(x > v)` is `x <= v` but true for NaN: the NaN-missing rule in one compare.
                    let left_nan = (dl & !_mm512_cmp_pd_mask::<_CMP_GT_OQ>(x, thr)) | le;
                    let left = {
                        let cat = _mm512_test_epi64_mask(flags, cat_bit);
                        let nan = _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(x, x);
                        let x0 = _mm512_mask_mov_pd(x, nan, zero_pd);
                        let le0 = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(x0, thr);
                        let in_band = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(_mm512_abs_pd(x0), zero_band);
                        let left_zero = (in_band & dl) | (!in_band & le0);
                        let zero_rule = _mm512_test_epi64_mask(flags, zero_bit);
                        let none_rule = _mm512_test_epi64_mask(flags, none_bit);
                        let numeric = (left_nan & !(zero_rule | none_rule)) | (left_zero & zero_rule) | (le0 & none_rule);
                        let mut left = leaf | (numeric & !cat);
                        if cat & act != 0 {
                            // The set's (start, words), from the node's value field.
                            let info = _mm512_castpd_si512(thr);
                            let start = _mm512_and_si512(info, lo32);
                            let len = _mm512_srli_epi64::<32>(info);
                            let cv = _mm512_cvttpd_epu64(x);
                            let w = _mm512_srli_epi64::<5>(cv);
                            let usable = cat & !nan & _mm512_cmp_pd_mask::<_CMP_GE_OQ>(x, zero_pd) & _mm512_cmplt_epu64_mask(w, len);
                            // SAFETY: lanes in `usable` index words inside their node's set.
                            let word = unsafe { _mm512_mask_i64gather_epi32::<4>(_mm256_setzero_si256(), usable, _mm512_add_epi64(start, w), words) };
                            let bits = _mm512_srlv_epi64(_mm512_cvtepu32_epi64(word), _mm512_and_si512(cv, thirty_one));
                            let in_set = usable & _mm512_test_epi64_mask(bits, one);
                            let inv = _mm512_test_epi64_mask(flags, inv_bit);
                            left |= cat & ((inv & nan & dl) | (inv & !nan & !in_set) | (!inv & in_set));
                        }
                        left
                    };
                    let child = _mm512_srli_epi64::<32>(fc);
                    at[j] = _mm512_mask_add_epi64(child, !left, child, one);
                    let finished = leaf & act;
                    if finished != 0 {
                        // A leaf's value is its node's `value` (just gathered as the threshold).
                        let mut vals = [0.0f64; 8];
                        // SAFETY: eight f64 / i64 slots.
                        unsafe { _mm512_storeu_pd(vals.as_mut_ptr(), thr) };
                        let mut nodes_at = [0i64; 8];
                        unsafe { _mm512_storeu_si512(nodes_at.as_mut_ptr() as *mut _, at[j]) };
                        let mut m = finished;
                        while m != 0 {
                            let l = m.trailing_zeros() as usize;
                            m &= m - 1;
                            let r = rid[j][l] as usize;
                            self.acc(&mut out[r * k + c], vals[l]);
                            if next < rows {
                                rid[j][l] = next as i64;
                                nodes_at[l] = root;
                                next += 1;
                            } else {
                                live[j] &= !(1 << l);
                            }
                        }
                        // SAFETY: as above.
                        unsafe {
                            at[j] = _mm512_loadu_si512(nodes_at.as_ptr() as *const _);
                            base[j] = _mm512_mullo_epi64(_mm512_loadu_si512(rid[j].as_ptr() as *const _), nfv);
                        }
                    }
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
        // missing-value rule, values on thresholds and in the zero band, a partial tree count. (A
        // simple 64-leaf forest walks by vectors instead where the CPU can: the same answers.)
        let mut rng = SplitMix64::new(5);
        let nf = 6;
        for (max_leaves, missing_rules, f32_sum) in [(32, false, false), (32, true, true), (64, true, false), (64, false, true)] {
            let trees: Vec<FlatTree> =
                (0..150).map(|i| random_tree_with(&mut rng, 1 + (i * 7) % max_leaves, nf, missing_rules, false)).collect();
            let c = Compiled::new(&trees, f32_sum);
            let masks = max_leaves == 32 || missing_rules || !vector_walks();
            assert_eq!(!matches!(c.quick(), Quick::None), masks);
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
            with_masks!(c.quick(), q => assert!(q.check_kernels(&buf, nf, rows) > 0), assert!(!masks));
            let cases = [(1, 150, false), (3, 150, true), (1, 97, true), (1, 97, false), (2, 20, true)];
            agrees_with_node_walks(&c, &trees, &buf, nf, rows, f32_sum, &cases, &format!("{max_leaves} leaves, {f32_sum}"));
        }
    }

    /// Checks a compiled forest's sums, for each (scores per row, trees used, column-major) case,
    /// against summing the leaves of node-by-node walks.
    #[allow(clippy::too_many_arguments)]
    fn agrees_with_node_walks(c: &Compiled, trees: &[FlatTree], buf: &[f64], nf: usize, rows: usize, f32_sum: bool, cases: &[(usize, usize, bool)], what: &str) {
        let cols: Vec<f64> = (0..rows * nf).map(|i| buf[(i % rows) * nf + i / rows]).collect();
        for &(k, n_trees, col_major) in cases {
            let mut out = vec![0.0; rows * k];
            if col_major {
                c.add_block_cols(&cols, nf, rows, n_trees, k, &mut out);
            } else {
                c.add_block(buf, nf, rows, n_trees, k, &mut out);
            }
            for r in 0..rows {
                let row = &buf[r * nf..(r + 1) * nf];
                let mut want = vec![0.0; k];
                for (t, tree) in trees.iter().enumerate().take(n_trees) {
                    let v = tree.leaf_values[tree.leaf(row)];
                    let w = &mut want[t % k];
                    *w = if f32_sum { (*w as f32 + v as f32) as f64 } else { *w + v };
                }
                assert_eq!(&out[r * k..(r + 1) * k], &want[..], "row {r}, {what}, k {k}, {n_trees} trees, {col_major}");
            }
        }
    }

    #[test]
    fn vector_walks_and_categorical_mask_tables_agree_with_node_walks() {
        // Deep simple forests (vector walks where the CPU has them), 64-leaf forests with categories
        // and every missing-value rule (64-bit masks), categorical 32-leaf ones (32-bit masks), deep
        // ones with categories or other missing rules (general vector walks, row walks for the
        // rows left over); values on thresholds, in the zero band, whole and fractional
        // categories, negatives, values past every category set, a partial tree count.
        let mut rng = SplitMix64::new(23);
        let nf = 5;
        let w64_or_walk = if vector_walks() { QuickKind::None } else { QuickKind::W64 };
        for (max_leaves, missing_rules, cats, f32_sum, want) in [
            (400, false, false, false, QuickKind::None),
            (256, false, false, true, QuickKind::None),
            (64, false, false, false, w64_or_walk),
            (64, true, true, true, QuickKind::W64),
            (50, false, true, false, QuickKind::W64),
            (32, false, true, false, QuickKind::Narrow),
            (32, true, true, true, QuickKind::Narrow),
            (200, true, true, false, QuickKind::None),
            (300, true, false, true, QuickKind::None),
            (120, false, true, false, QuickKind::None),
        ] {
            let n = 70;
            let trees: Vec<FlatTree> = (0..n)
                .map(|i| random_tree_with(&mut rng, if i == 3 { max_leaves } else { 1 + (i * 37) % max_leaves }, nf, missing_rules, cats))
                .collect();
            let c = Compiled::new(&trees, f32_sum);
            assert_eq!(c.kind, want, "{max_leaves} leaves");
            assert_eq!(c.simple, !missing_rules && !cats);
            if want != QuickKind::None {
                assert!(c.quick.get().is_none(), "tables are built at the first batch");
                let mut one = [0.0];
                c.add_block(&[0.5; 5], nf, 1, n, 1, &mut one);
                assert!(c.quick.get().is_none(), "a single row does not build them");
                assert!(!matches!(c.quick(), Quick::None));
            }
            let rows = 203;
            let thresholds: Vec<f64> = trees.iter().flat_map(|t| t.nodes.iter().map(|n| n.threshold)).collect();
            let buf: Vec<f64> = (0..rows * nf)
                .map(|_| match rng.next_u64() % 12 {
                    0 => f64::NAN,
                    1 => 0.0,
                    2 => -0.0,
                    3 => [1e-36, -1e-36, 1e-35, -1e-35][(rng.next_u64() % 4) as usize],
                    4 => thresholds[(rng.next_u64() % thresholds.len() as u64) as usize],
                    5 => [f64::NEG_INFINITY, f64::INFINITY, 1e12, -1.0, -0.5][(rng.next_u64() % 5) as usize],
                    6 | 7 => (rng.next_u64() % 40) as f64,
                    8 => (rng.next_u64() % 40) as f64 + rng.next_f64(),
                    _ => rng.next_f64() * 5.0 - 2.5,
                })
                .collect();
            if want != QuickKind::None {
                with_masks!(c.quick(), q => assert!(q.check_kernels(&buf, nf, rows) > 0), unreachable!());
            }
            let cases = [(1, n, false), (1, n, true), (3, n, true), (2, 45, false), (1, 17, true)];
            agrees_with_node_walks(&c, &trees, &buf, nf, rows, f32_sum, &cases, &format!("{max_leaves} leaves"));
        }
    }
}
