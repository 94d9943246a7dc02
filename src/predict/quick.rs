//! Exit-leaf bitmasks: batch evaluation of numeric forests without walking the trees.
//!
//! Number the leaves of a tree left to right and give every internal node a mask of the tree's leaves
//! with the leaves of its left subtree cleared. A row reaches the leftmost leaf that survives the AND
//! of the masks of all nodes where it goes right (a leaf left of the exit leaf sits in the left subtree
//! of the node where the two paths part, and the row goes right there; the exit leaf is never in the
//! left subtree of a node where the row goes right).
//!
//! Which nodes on one feature a value sends right depends only on where the value falls among that
//! feature's thresholds. So for each feature the thresholds of a group of trees are sorted into cuts,
//! and for each interval between cuts (and for missing values) the AND of the masks of the nodes that
//! send such values right is computed once, for every tree of the group. Evaluating a row is then one
//! search per feature and a few vector ANDs per feature; the exit leaf is the lowest set bit.
//! Tables grow with trees x nodes, so trees are grouped to keep each group's tables cache-sized.

use super::forest::FlatTree;

/// Mask words: one bit per leaf.
pub(super) trait Word: Copy + Send + Sync + std::fmt::Debug + PartialEq + std::ops::BitAnd<Output = Self> {
    const ONES: Self;
    const BITS: usize;
    fn tz(self) -> usize;
    /// All ones except bits `lo..hi`.
    fn without(lo: usize, hi: usize) -> Self;
    /// Evaluates one sub-block of rows through a group (see [`sub_block`]), in the fastest way this
    /// CPU allows for this word.
    fn sub_block(g: &Group<Self>, v: &View<'_>, offs: &mut [u32], vals: &mut [f64]);
}

/// The bit operations shared by both words.
macro_rules! word_bits {
    ($t:ty) => {
        const ONES: $t = <$t>::MAX;
        const BITS: usize = <$t>::BITS as usize;
        #[inline(always)]
        fn tz(self) -> usize {
            self.trailing_zeros() as usize
        }
        fn without(lo: usize, hi: usize) -> $t {
            let span = if hi - lo >= <$t>::BITS as usize { <$t>::MAX } else { (((1 as $t) << (hi - lo)) - 1) << lo };
            !span
        }
    };
}

impl Word for u32 {
    word_bits!(u32);
    fn sub_block(g: &Group<u32>, v: &View<'_>, offs: &mut [u32], vals: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY (all arms): the CPU has every feature the function is compiled for.
            match g.padded / CHUNK {
                1 => return unsafe { sub_block_avx512_narrow::<1>(g, v, offs, vals) },
                2 => return unsafe { sub_block_avx512_narrow::<2>(g, v, offs, vals) },
                3 => return unsafe { sub_block_avx512_narrow::<3>(g, v, offs, vals) },
                4 => return unsafe { sub_block_avx512_narrow::<4>(g, v, offs, vals) },
                5 => return unsafe { sub_block_avx512_narrow::<5>(g, v, offs, vals) },
                6 => return unsafe { sub_block_avx512_narrow::<6>(g, v, offs, vals) },
                7 => return unsafe { sub_block_avx512_narrow::<7>(g, v, offs, vals) },
                8 => return unsafe { sub_block_avx512_narrow::<8>(g, v, offs, vals) },
                _ => {}
            }
        }
        sub_block_generic(g, v, offs, vals)
    }
}

impl Word for u64 {
    word_bits!(u64);
    fn sub_block(g: &Group<u64>, v: &View<'_>, offs: &mut [u32], vals: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY (all arms): the CPU has every feature the function is compiled for; the masks
            // are u64 words, one a tree.
            let m = &g.masks[..];
            match g.padded / 8 {
                2 => return unsafe { sub_block_avx512_wide::<2>(g.as_words(m), v, offs, vals) },
                4 => return unsafe { sub_block_avx512_wide::<4>(g.as_words(m), v, offs, vals) },
                6 => return unsafe { sub_block_avx512_wide::<6>(g.as_words(m), v, offs, vals) },
                8 => return unsafe { sub_block_avx512_wide::<8>(g.as_words(m), v, offs, vals) },
                10 => return unsafe { sub_block_avx512_wide::<10>(g.as_words(m), v, offs, vals) },
                12 => return unsafe { sub_block_avx512_wide::<12>(g.as_words(m), v, offs, vals) },
                14 => return unsafe { sub_block_avx512_wide::<14>(g.as_words(m), v, offs, vals) },
                16 => return unsafe { sub_block_avx512_wide::<16>(g.as_words(m), v, offs, vals) },
                _ => {}
            }
        }
        sub_block_generic(g, v, offs, vals)
    }
}


/// Trees per mask chunk (a multiple of the SIMD width; groups are padded to it).
const CHUNK: usize = 16;
/// Target size of one group's mask tables.
const GROUP_BYTES: usize = 2 << 20;
/// Most trees in a group: their masks for one value fit in eight 512-bit registers.
const MAX_GROUP_TREES: usize = 128;
/// Rows whose leaf values are gathered before they are summed.
const SUB: usize = 64;

/// Keys per search block (two 512-bit vectors of f64).
const FAN: usize = 16;

/// The cuts of one feature within a group.
#[derive(Clone, Debug, PartialEq)]
struct Cuts {
    feature: usize,
    /// Number of cuts (sorted, distinct); a value's interval is the number of cuts below it.
    n: usize,
    /// The cuts as a static search tree, levels stored one after the other, top first: the bottom
    /// level is the cuts followed by at least one +inf, in blocks of `FAN`; each level above holds the
    /// last key of every block below, padded with +inf. The top level is one block.
    keys: Vec<f64>,
    /// Where each level starts in `keys` (`depth` of them).
    starts: [usize; MAX_LEVELS],
    depth: usize,
    /// Word offset of this feature's first mask row; row `n + 1` is for missing values.
    base: usize,
    /// Per chunk of `CHUNK` trees, all ones (0xFFFF) when some tree of the chunk splits on this
    /// feature, else 0: the chunk's masks are all ones and need not be read.
    used: [u16; MAX_GROUP_TREES / CHUNK],
}

/// Most search levels (16^4 keys; a group has at most 128 trees x 63 nodes x 3 cuts).
const MAX_LEVELS: usize = 4;

/// The search tree of sorted, distinct `cuts` as (keys, level starts, depth); see [`Cuts::keys`].
/// `None` beyond [`MAX_LEVELS`] levels.
fn search_tree(cuts: &[f64]) -> Option<(Vec<f64>, [usize; MAX_LEVELS], usize)> {
    let levels = search_levels(cuts);
    if levels.len() > MAX_LEVELS {
        return None;
    }
    let mut starts = [0; MAX_LEVELS];
    let mut keys = Vec::new();
    for (i, l) in levels.iter().enumerate() {
        starts[i] = keys.len();
        keys.extend_from_slice(l);
    }
    Some((keys, starts, levels.len()))
}

/// The search levels of sorted, distinct `cuts`, top first.
fn search_levels(cuts: &[f64]) -> Vec<Vec<f64>> {
    let pad = |mut v: Vec<f64>| {
        let len = v.len().div_ceil(FAN).max(1) * FAN;
        v.resize(len, f64::INFINITY);
        v
    };
    let mut bottom = cuts.to_vec();
    bottom.push(f64::INFINITY);
    let mut levels = vec![pad(bottom)];
    while levels.last().is_some_and(|l| l.len() > FAN) {
        let upper = levels.last().unwrap().chunks(FAN).map(|b| b[FAN - 1]).collect();
        levels.push(pad(upper));
    }
    levels.reverse();
    levels
}

/// How many keys of a block are below `x`.
#[inline(always)]
fn count_below(block: &[f64; FAN], x: f64) -> usize {
    // Written as a bit mask so the compare becomes one vector compare and a population count.
    let mut m = 0u32;
    for (i, &k) in block.iter().enumerate() {
        m |= ((k < x) as u32) << i;
    }
    m.count_ones() as usize
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Group<W> {
    /// First tree and number of trees; masks hold `padded` words a row.
    t0: usize,
    nt: usize,
    padded: usize,
    feats: Vec<Cuts>,
    masks: Vec<W>,
    /// `values[t * W::BITS + position]`: the output of the leaf at that left-to-right position.
    values: Vec<f64>,
}

impl<W: Word> Group<W> {
    /// The group with its masks seen as u64 words.
    fn as_words<'a>(&'a self, masks: &'a [W]) -> WideGroup<'a> {
        debug_assert!(std::mem::size_of::<W>() % 8 == 0 && std::mem::align_of::<W>() == 8);
        let n = masks.len() * std::mem::size_of::<W>() / 8;
        // SAFETY: only called for u64 masks: `n` initialised, aligned u64.
        let masks = unsafe { std::slice::from_raw_parts(masks.as_ptr() as *const u64, n) };
        WideGroup { feats: &self.feats, masks, values: &self.values, padded: self.padded, bits: W::BITS }
    }
}

/// A group whose masks are u64 words, for the wide kernels.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct WideGroup<'a> {
    feats: &'a [Cuts],
    masks: &'a [u64],
    values: &'a [f64],
    padded: usize,
    bits: usize,
}

/// A forest as exit-leaf mask tables.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct MaskForest<W> {
    groups: Vec<Group<W>>,
}

/// In-order leaf positions: for each internal node the positions of its left subtree's leaves, and
/// for each position the leaf output. `None` unless the nodes form one tree over all leaves.
fn leaf_order(t: &FlatTree) -> Option<(Vec<(usize, usize)>, Vec<f64>)> {
    let mut left_span = vec![(0, 0); t.nodes.len()];
    let mut values = Vec::with_capacity(t.leaf_values.len());
    if t.nodes.is_empty() {
        values.push(*t.leaf_values.first()?);
        return Some((left_span, values));
    }
    let mut seen = vec![false; t.nodes.len()];
    let mut leaf_seen = vec![false; t.leaf_values.len()];
    // Explicit stack (no recursion on model data): (reference, stage) with stage 0 = enter,
    // 1 = left subtree done.
    let mut stack = vec![(0i32, 0u8, 0usize)];
    while let Some((r, stage, lo)) = stack.pop() {
        if r < 0 {
            let leaf = !r as usize;
            if std::mem::replace(leaf_seen.get_mut(leaf)?, true) {
                return None;
            }
            values.push(t.leaf_values[leaf]);
            continue;
        }
        let n = t.nodes.get(r as usize)?;
        if stage == 0 {
            if std::mem::replace(&mut seen[r as usize], true) {
                return None;
            }
            stack.push((r, 1, values.len()));
            stack.push((n.left, 0, 0));
        } else {
            left_span[r as usize] = (lo, values.len());
            stack.push((n.right, 0, 0));
        }
    }
    (values.len() == t.leaf_values.len()).then_some((left_span, values))
}

/// Most category words (32 categories each) a categorical node may have for the tables to hold it.
const MAX_CAT_WORDS: usize = 64;

/// The cuts node `n` needs among its feature's intervals: values on either side of a cut may go
/// different ways, values between two neighbouring cuts go the same way.
fn node_cuts(n: &super::forest::Node) -> impl Iterator<Item = f64> {
    let z = super::forest::ZERO_THRESHOLD;
    let (numeric, zero_band, cats) = if n.cat_len > 0 {
        (None, false, 32 * n.cat_len as usize)
    } else {
        (Some(n.threshold), n.missing == 1, 0)
    };
    // The zero band [-ZERO_THRESHOLD, ZERO_THRESHOLD] is an interval of its own.
    let band = zero_band.then_some([(-z).next_down(), z]).into_iter().flatten();
    // A category is a whole number: values in [c, c + 1) name category c (negatives none), so the
    // intervals end just below each whole number up to the last category of the set, and one more.
    let categories = (0..=cats).filter(move |_| cats > 0).map(|c| (c as f64).next_down());
    numeric.into_iter().chain(band).chain(categories)
}

impl<W: Word> MaskForest<W> {
    /// Builds the tables, or `None` when some tree has more than `W::BITS` leaves or a categorical
    /// node with a set of more than [`MAX_CAT_WORDS`] words, or the trees' node references are out
    /// of range.
    pub(super) fn new(trees: &[FlatTree], nf: usize) -> Option<MaskForest<W>> {
        for t in trees {
            if t.leaf_values.len() > W::BITS || t.leaf_values.is_empty() {
                return None;
            }
            if t.nodes.len() + 1 != t.leaf_values.len() {
                return None;
            }
            for n in &t.nodes {
                if n.feature as usize >= nf || n.cat_len as usize > MAX_CAT_WORDS {
                    return None;
                }
            }
        }
        let mut groups = Vec::new();
        let mut t0 = 0;
        // Distinct cuts per feature of the group being grown: its tables hold (cuts + 2) mask rows a
        // feature.
        let mut seen: std::collections::HashSet<(u32, u64)> = std::collections::HashSet::new();
        while t0 < trees.len() {
            // Grow the group while its tables fit.
            seen.clear();
            let mut features = vec![false; nf];
            let (mut rows, mut t1) = (0usize, t0);
            while t1 < trees.len() {
                let padded = (t1 + 1 - t0).div_ceil(CHUNK) * CHUNK;
                let mut add = 0;
                let mut new_features = Vec::new();
                for n in &trees[t1].nodes {
                    for c in node_cuts(n) {
                        if !seen.contains(&(n.feature, c.to_bits())) {
                            add += 1;
                        }
                    }
                    if !features[n.feature as usize] && !new_features.contains(&n.feature) {
                        new_features.push(n.feature);
                    }
                }
                let r = rows + add + 2 * new_features.len();
                if t1 > t0 && (t1 - t0 == MAX_GROUP_TREES || r * padded * std::mem::size_of::<W>() > GROUP_BYTES) {
                    break;
                }
                for n in &trees[t1].nodes {
                    for c in node_cuts(n) {
                        seen.insert((n.feature, c.to_bits()));
                    }
                    features[n.feature as usize] = true;
                }
                rows = r;
                t1 += 1;
            }
            groups.push(Self::group(&trees[t0..t1], t0, nf)?);
            t0 = t1;
        }
        Some(MaskForest { groups })
    }

    fn group(trees: &[FlatTree], t0: usize, nf: usize) -> Option<Group<W>> {
        let nt = trees.len();
        let padded = nt.div_ceil(CHUNK) * CHUNK;
        let orders: Vec<_> = trees.iter().map(leaf_order).collect::<Option<_>>()?;
        let mut values = vec![0.0; padded * W::BITS];
        for (t, (_, v)) in orders.iter().enumerate() {
            values[t * W::BITS..t * W::BITS + v.len()].copy_from_slice(v);
        }
        // Nodes by feature: (tree, node).
        let mut by_feature: Vec<Vec<(usize, usize)>> = vec![Vec::new(); nf];
        for (ti, t) in trees.iter().enumerate() {
            for (ni, n) in t.nodes.iter().enumerate() {
                by_feature[n.feature as usize].push((ti, ni));
            }
        }
        let mut feats = Vec::new();
        let mut masks: Vec<W> = Vec::new();
        for (f, nodes) in by_feature.iter().enumerate() {
            if nodes.is_empty() {
                continue;
            }
            let mut cuts: Vec<f64> = nodes.iter().flat_map(|&(ti, ni)| node_cuts(&trees[ti].nodes[ni])).collect();
            cuts.retain(|c| !c.is_nan());
            cuts.sort_by(|a, b| a.total_cmp(b));
            cuts.dedup_by(|a, b| a == b);
            let base = masks.len();
            // Interval i holds (cuts[i-1], cuts[i]]; cuts[i] itself stands for it, +inf for the last.
            let reps = cuts.iter().copied().chain([f64::INFINITY, f64::NAN]);
            for rep in reps {
                let row = masks.len();
                masks.extend(std::iter::repeat_n(W::ONES, padded));
                for &(ti, ni) in nodes {
                    let t = &trees[ti];
                    let n = &t.nodes[ni];
                    if !t.goes_left(n, rep) {
                        let (lo, hi) = orders[ti].0[ni];
                        let m = &mut masks[row + ti];
                        *m = *m & W::without(lo, hi);
                    }
                }
            }
            let mut used = [0u16; MAX_GROUP_TREES / CHUNK];
            for &(ti, _) in nodes {
                used[ti / CHUNK] = u16::MAX;
            }
            let (keys, starts, depth) = search_tree(&cuts)?;
            feats.push(Cuts { feature: f, n: cuts.len(), keys, starts, depth, base, used });
        }
        Some(Group { t0, nt, padded, feats, masks, values })
    }

    /// How many trees, from the first, the tables cover when `n_trees` are asked for (whole groups
    /// only); the caller walks the rest.
    pub(super) fn covered(&self, n_trees: usize) -> usize {
        self.groups.iter().map(|g| g.t0 + g.nt).take_while(|&e| e <= n_trees).last().unwrap_or(0)
    }

    /// Adds the outputs of the first `covered(n_trees)` trees to `out` (`k` scores a row, tree t to
    /// score t % k) for `rows` rows of `buf`, where row r's feature f is `buf[r * rs + f * cs]`
    /// (row-major: `rs` = features, `cs` = 1; column-major: `rs` = 1, `cs` = rows).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_block(&self, buf: &[f64], rs: usize, cs: usize, rows: usize, n_trees: usize, k: usize, f32_sum: bool, out: &mut [f64]) {
        let mut offs: Vec<u32> = Vec::new();
        let mut vals: Vec<f64> = Vec::new();
        for g in self.groups.iter().take_while(|g| g.t0 + g.nt <= n_trees) {
            let nfe = g.feats.len();
            let p = g.padded;
            for s0 in (0..rows).step_by(SUB) {
                let sr = SUB.min(rows - s0);
                offs.clear();
                offs.resize(sr * nfe, 0);
                vals.clear();
                vals.resize(sr * p, 0.0);
                let view = View { buf: &buf[s0 * rs..], rs, cs, rows: sr };
                W::sub_block(g, &view, &mut offs, &mut vals);
                // Sum in tree order per row; the rows are independent, so their adds run side by side.
                let o = &mut out[s0 * k..(s0 + sr) * k];
                if k == 1 {
                    // Eight rows at a time, each its own chain of adds kept in registers.
                    let mut r0 = 0;
                    while r0 + 8 <= sr {
                        let rowv: [&[f64]; 8] = std::array::from_fn(|l| &vals[(r0 + l) * p..(r0 + l) * p + g.nt]);
                        if f32_sum {
                            let mut acc: [f32; 8] = std::array::from_fn(|l| o[r0 + l] as f32);
                            for t in 0..g.nt {
                                for l in 0..8 {
                                    acc[l] += rowv[l][t] as f32;
                                }
                            }
                            for l in 0..8 {
                                o[r0 + l] = acc[l] as f64;
                            }
                        } else {
                            let mut acc: [f64; 8] = o[r0..r0 + 8].try_into().unwrap();
                            for t in 0..g.nt {
                                for l in 0..8 {
                                    acc[l] += rowv[l][t];
                                }
                            }
                            o[r0..r0 + 8].copy_from_slice(&acc);
                        }
                        r0 += 8;
                    }
                    for r in r0..sr {
                        for &x in &vals[r * p..r * p + g.nt] {
                            o[r] = if f32_sum { (o[r] as f32 + x as f32) as f64 } else { o[r] + x };
                        }
                    }
                    continue;
                }
                for t in 0..g.nt {
                    let c = (g.t0 + t) % k;
                    if f32_sum {
                        for r in 0..sr {
                            o[r * k + c] = (o[r * k + c] as f32 + vals[r * p + t] as f32) as f64;
                        }
                    } else {
                        for r in 0..sr {
                            o[r * k + c] += vals[r * p + t];
                        }
                    }
                }
            }
        }
    }
}

/// Rows of a block: row r's feature f at `buf[r * rs + f * cs]`.
pub(super) struct View<'a> {
    buf: &'a [f64],
    rs: usize,
    cs: usize,
    rows: usize,
}

impl View<'_> {
    #[inline(always)]
    fn get(&self, r: usize, f: usize) -> f64 {
        self.buf[r * self.rs + f * self.cs]
    }
}

/// The mask row of the interval `x` falls in (`n + 1` for missing values).
#[inline(always)]
fn interval(c: &Cuts, x: f64) -> usize {
    let mut pos = 0;
    for &st in &c.starts[..c.depth] {
        let block: &[f64; FAN] = c.keys[st + pos * FAN..st + pos * FAN + FAN].try_into().unwrap();
        pos = pos * FAN + count_below(block, x);
    }
    // NaN is below no key, so its search ends at 0.
    if x.is_nan() {
        c.n + 1
    } else {
        pos
    }
}

/// For each row of the view and each tree of the group, the output of the exit leaf, in
/// `vals[r * padded + t]`; `offs` is scratch of `rows * features` words.
#[inline(always)]
fn sub_block<W: Word>(g: &Group<W>, v: &View<'_>, offs: &mut [u32], vals: &mut [f64]) {
    let nfe = g.feats.len();
    let p = g.padded;
    for (fi, c) in g.feats.iter().enumerate() {
        for r in 0..v.rows {
            offs[r * nfe + fi] = (c.base + interval(c, v.get(r, c.feature)) * p) as u32;
        }
    }
    let masks = &g.masks[..];
    let mut acc = [W::ONES; MAX_GROUP_TREES];
    debug_assert!(p <= MAX_GROUP_TREES);
    let acc = &mut acc[..p];
    for r in 0..v.rows {
        acc.fill(W::ONES);
        for (c, &off) in g.feats.iter().zip(&offs[r * nfe..(r + 1) * nfe]) {
            let row = &masks[off as usize..off as usize + p];
            for ((a, m), &used) in acc.chunks_mut(CHUNK).zip(row.chunks(CHUNK)).zip(&c.used) {
                if used != 0 {
                    for (a, &m) in a.iter_mut().zip(m) {
                        *a = *a & m;
                    }
                }
            }
        }
        let out = &mut vals[r * p..(r + 1) * p];
        for (t, (o, a)) in out.iter_mut().zip(acc.iter()).enumerate() {
            *o = g.values[t * W::BITS + a.tz().min(W::BITS - 1)];
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512cd")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("popcnt")
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("popcnt")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,bmi1,popcnt")]
unsafe fn sub_block_avx2<W: Word>(g: &Group<W>, v: &View<'_>, offs: &mut [u32], vals: &mut [f64]) {
    sub_block(g, v, offs, vals)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512cd,avx512bw,avx512vl,avx512dq,avx2,fma,bmi1,popcnt")]
unsafe fn sub_block_avx512<W: Word>(g: &Group<W>, v: &View<'_>, offs: &mut [u32], vals: &mut [f64]) {
    sub_block(g, v, offs, vals)
}

/// `sub_block` compiled for the widest vector unit this CPU has.
fn sub_block_generic<W: Word>(g: &Group<W>, v: &View<'_>, offs: &mut [u32], vals: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            // SAFETY: the CPU has every feature the function is compiled for.
            return unsafe { sub_block_avx512(g, v, offs, vals) };
        }
        if has_avx2() {
            // SAFETY: as above.
            return unsafe { sub_block_avx2(g, v, offs, vals) };
        }
    }
    sub_block(g, v, offs, vals)
}

/// 32-leaf groups of `16 * NCH` trees with AVX-512: block compares as two vector compares and a
/// population count; each value's masks for all trees ANDed into `NCH` registers; the exit leaves'
/// outputs gathered 8 at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512cd,avx512bw,avx512vl,avx512dq,avx2,fma,bmi1,popcnt")]
unsafe fn sub_block_avx512_narrow<const NCH: usize>(g: &Group<u32>, v: &View<'_>, offs: &mut [u32], vals: &mut [f64]) {
    use std::arch::x86_64::*;
    let nfe = g.feats.len();
    let p = g.padded;
    assert!(p == NCH * CHUNK && offs.len() >= v.rows * nfe && vals.len() >= v.rows * p);
    // SAFETY: this function runs only where AVX-512 was detected, as locate_avx512 needs.
    unsafe { locate_avx512(&g.feats, p, v, offs) };
    let masks = &g.masks[..];
    let lanes = _mm512_setr_epi32(0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 480);
    let values = g.values.as_ptr();
    for r in 0..v.rows {
        let mut acc = [_mm512_set1_epi32(-1); NCH];
        let ones = _mm512_set1_epi32(-1);
        for (c, &off) in g.feats.iter().zip(&offs[r * nfe..(r + 1) * nfe]) {
            let m = &masks[off as usize..off as usize + p];
            for (ch, a) in acc.iter_mut().enumerate() {
                // Chunks whose trees never split on this feature are all ones: the masked load
                // leaves them unread.
                // SAFETY: `m` holds `NCH * 16` u32; this load reads 16 of them or none.
                *a = _mm512_and_si512(*a, unsafe { _mm512_mask_loadu_epi32(ones, c.used[ch], m.as_ptr().add(ch * CHUNK) as *const _) });
            }
        }
        let out = &mut vals[r * p..(r + 1) * p];
        for (ch, &a) in acc.iter().enumerate() {
            // Lowest set bit: 31 - lzcnt(a & -a), kept >= 0 (an exit leaf always survives).
            let low = _mm512_and_si512(a, _mm512_sub_epi32(_mm512_setzero_si512(), a));
            let tz = _mm512_max_epi32(_mm512_sub_epi32(_mm512_set1_epi32(31), _mm512_lzcnt_epi32(low)), _mm512_setzero_si512());
            let idx = _mm512_add_epi32(_mm512_add_epi32(tz, lanes), _mm512_set1_epi32((ch * CHUNK * 32) as i32));
            let o = &mut out[ch * CHUNK..(ch + 1) * CHUNK];
            // SAFETY: each index is t * 32 + tz with t < padded and tz < 32, inside `values`
            // (padded * 32 long); `o` holds 16 f64.
            unsafe {
                let v0 = _mm512_i32gather_pd::<8>(_mm512_castsi512_si256(idx), values);
                let v1 = _mm512_i32gather_pd::<8>(_mm512_extracti64x4_epi64::<1>(idx), values);
                _mm512_storeu_pd(o.as_mut_ptr(), v0);
                _mm512_storeu_pd(o.as_mut_ptr().add(8), v1);
            }
        }
    }
}

/// The mask rows of every row of the view, one per feature, in `offs` (offsets in words of `p`
/// masks): block compares as two vector compares and a population count.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512cd,avx512bw,avx512vl,avx512dq,avx2,fma,bmi1,popcnt")]
#[inline]
unsafe fn locate_avx512(feats: &[Cuts], p: usize, v: &View<'_>, offs: &mut [u32]) {
    use std::arch::x86_64::*;
    let nfe = feats.len();
    assert!(offs.len() >= v.rows * nfe);
    let locate = |fi: usize, c: &Cuts, r: usize, offs: &mut [u32]| {
        let x = v.get(r, c.feature);
        let xv = _mm512_set1_pd(x);
        let keys = c.keys.as_ptr();
        let mut pos = 0;
        for &st in &c.starts[..c.depth] {
            // SAFETY: every level holds whole blocks of 16 keys and the search stays inside them
            // (each block's last key is not below x unless the level above pointed past it).
            let (lo, hi) = unsafe { (_mm512_loadu_pd(keys.add(st + pos * FAN)), _mm512_loadu_pd(keys.add(st + pos * FAN + 8))) };
            let below = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(lo, xv).count_ones() + _mm512_cmp_pd_mask::<_CMP_LT_OQ>(hi, xv).count_ones();
            pos = pos * FAN + below as usize;
        }
        let i = if x.is_nan() { c.n + 1 } else { pos };
        offs[r * nfe + fi] = (c.base + i * p) as u32;
    };
    if v.cs == 1 {
        for r in 0..v.rows {
            for (fi, c) in feats.iter().enumerate() {
                locate(fi, c, r, offs);
            }
        }
    } else {
        for (fi, c) in feats.iter().enumerate() {
            for r in 0..v.rows {
                locate(fi, c, r, offs);
            }
        }
    }
}

/// Groups of 64-leaf trees (one u64 a mask) with AVX-512: each value's masks for all trees ANDed
/// into `NV` registers (chunks of trees that never split on the feature are not read); the exit
/// leaves found eight at a time, their outputs gathered.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512cd,avx512bw,avx512vl,avx512dq,avx2,fma,bmi1,popcnt")]
unsafe fn sub_block_avx512_wide<const NV: usize>(g: WideGroup<'_>, v: &View<'_>, offs: &mut [u32], vals: &mut [f64]) {
    use std::arch::x86_64::*;
    let nfe = g.feats.len();
    let p = g.padded;
    let pw = p;
    assert!(pw == NV * 8 && offs.len() >= v.rows * nfe && vals.len() >= v.rows * p && g.values.len() >= p * g.bits);
    // SAFETY: the CPU has the features this function is compiled for.
    unsafe { locate_avx512(g.feats, p, v, offs) };
    let masks = g.masks;
    let values = g.values.as_ptr();
    let ones = _mm512_set1_epi64(-1);
    // Per feature and register: all lanes read when a tree of the register's chunk splits on it.
    let used: Vec<[u8; NV]> =
        g.feats.iter().map(|c| std::array::from_fn(|vi| if c.used[vi * 8 / CHUNK] != 0 { 0xFF } else { 0 })).collect();
    for r in 0..v.rows {
        let mut acc = [ones; NV];
        for (u, &off) in used.iter().zip(&offs[r * nfe..(r + 1) * nfe]) {
            let base = off as usize;
            let m = &masks[base..base + pw];
            for (vi, a) in acc.iter_mut().enumerate() {
                // SAFETY: `m` holds `NV * 8` u64; this load reads 8 of them or none.
                *a = _mm512_and_si512(*a, unsafe { _mm512_mask_loadu_epi64(ones, u[vi], m.as_ptr().add(vi * 8) as *const _) });
            }
        }
        let out = &mut vals[r * p..(r + 1) * p];
        let lanes = _mm512_setr_epi64(0, 64, 128, 192, 256, 320, 384, 448);
        for (vi, &a) in acc.iter().enumerate() {
            // Lowest set bit: 63 - lzcnt(a & -a), kept >= 0 (an exit leaf always survives).
            let low = _mm512_and_si512(a, _mm512_sub_epi64(_mm512_setzero_si512(), a));
            let tz = _mm512_max_epi64(_mm512_sub_epi64(_mm512_set1_epi64(63), _mm512_lzcnt_epi64(low)), _mm512_setzero_si512());
            let idx = _mm512_add_epi64(_mm512_add_epi64(tz, lanes), _mm512_set1_epi64((vi * 8 * 64) as i64));
            // SAFETY: each index is t * 64 + tz with t < padded and tz < 64, inside `values`;
            // `out` holds 8 f64 from vi * 8.
            unsafe { _mm512_storeu_pd(out.as_mut_ptr().add(vi * 8), _mm512_i64gather_pd::<8>(idx, values)) };
        }
    }
}

#[cfg(test)]
impl<W: Word> MaskForest<W> {
    /// Runs every kernel this CPU can run on row-major `buf` and checks they agree with the portable
    /// one; returns how many kernels ran.
    pub(super) fn check_kernels(&self, buf: &[f64], nf: usize, rows: usize) -> usize {
        let mut ran = 0;
        for g in &self.groups {
            let view = View { buf, rs: nf, cs: 1, rows };
            let nfe = g.feats.len();
            let run = |f: &dyn Fn(&mut [u32], &mut [f64])| {
                let (mut offs, mut vals) = (vec![0u32; rows * nfe], vec![0.0; rows * g.padded]);
                f(&mut offs, &mut vals);
                vals
            };
            let want = run(&|o, v| sub_block(g, &view, o, v));
            let mut got = vec![run(&|o, v| W::sub_block(g, &view, o, v)), run(&|o, v| sub_block_generic(g, &view, o, v))];
            #[cfg(target_arch = "x86_64")]
            {
                if has_avx2() {
                    // SAFETY: the CPU has the features.
                    got.push(run(&|o, v| unsafe { sub_block_avx2(g, &view, o, v) }));
                }
            }
            for v in &got {
                assert_eq!(v, &want);
            }
            ran += got.len();
        }
        ran
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::forest::Node;

    fn node(left: i32, right: i32) -> Node {
        Node { feature: 0, threshold: 0.5, left, right, default_left: true, missing: 0, cat_inverted: false, cat_len: 0, cat_start: 0 }
    }

    #[test]
    fn malformed_trees_get_no_tables() {
        let tree = |nodes: Vec<Node>, leaves: usize| FlatTree { nodes, leaf_values: vec![1.0; leaves], ..Default::default() };
        // A cycle, a leaf reached twice, a child out of range, a node left out.
        for t in [
            tree(vec![node(0, !0), node(!1, !2)], 3),
            tree(vec![node(1, !0), node(!0, !1)], 3),
            tree(vec![node(5, !0), node(!1, !2)], 3),
            tree(vec![node(!0, !1), node(!1, !2)], 3),
        ] {
            assert!(MaskForest::<u32>::new(&[t], 1).is_none());
        }
        let ok = tree(vec![node(1, !0), node(!1, !2)], 3);
        assert!(MaskForest::<u32>::new(&[ok], 1).is_some());
    }

    #[test]
    fn search_levels_count_the_cuts_below() {
        for n in [1usize, 15, 16, 17, 255, 256, 257, 5000] {
            let cuts: Vec<f64> = (0..n).map(|i| i as f64 * 0.5).collect();
            let (keys, starts, depth) = search_tree(&cuts).unwrap();
            let c = Cuts { feature: 0, n, keys, starts, depth, base: 0, used: [0; 8] };
            for x in [-1.0, 0.0, 0.25, 0.5, (n as f64) * 0.25, (n as f64) * 0.5 - 0.5, 1e9, f64::INFINITY, f64::NEG_INFINITY] {
                assert_eq!(interval(&c, x), cuts.iter().filter(|&&k| k < x).count(), "n {n} x {x}");
            }
            assert_eq!(interval(&c, f64::NAN), n + 1);
        }
    }
}
