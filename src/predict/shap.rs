//! Path-dependent TreeSHAP: exact Shapley values of one tree's output for one row, in time
//! proportional to leaves x depth², using each node's training cover as the background.
//!
//! The recursion keeps, along the current path, every split feature met with the share of cover that
//! flows on when the feature is unknown (`zero`) and whether the row itself follows the path (`one`),
//! plus the weights of all subset sizes (`pweight`). At a leaf, each path feature receives its
//! marginal contribution by "unwinding" it from those weights.

use super::forest::FlatTree;

#[derive(Clone, Copy, Debug)]
struct PathElem {
    feature: i64,
    zero: f64,
    one: f64,
    pweight: f64,
}

/// Per tree, what every row's TreeSHAP needs: the deepest path, the cover-weighted expected output,
/// and per internal node the share of its cover that goes to each child.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShapInfo {
    depth: usize,
    expected: f64,
    /// (left share, right share); one half each where the node has no cover.
    shares: Vec<(f64, f64)>,
}

impl ShapInfo {
    /// Prepares `tree`.
    pub fn new(tree: &FlatTree) -> ShapInfo {
        if tree.nodes.is_empty() {
            return ShapInfo { depth: 0, expected: tree.leaf_values.first().copied().unwrap_or(0.0), shares: vec![] };
        }
        let root = tree.node_cover.first().copied().unwrap_or(0.0);
        let expected = if root > 0.0 {
            tree.leaf_values.iter().zip(&tree.leaf_cover).map(|(v, c)| v * c).sum::<f64>() / root
        } else {
            0.0
        };
        let shares = tree
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let w = tree.node_cover.get(i).copied().unwrap_or(0.0);
                if w > 0.0 {
                    (cover(tree, n.left) / w, cover(tree, n.right) / w)
                } else {
                    (0.5, 0.5)
                }
            })
            .collect();
        ShapInfo { depth: depth(tree), expected, shares }
    }
}

/// Adds feature `feature` with fractions (`zero`, `one`) to a path of length `d` (the new element is
/// at index `d`), updating the subset weights.
#[inline]
fn extend(path: &mut [PathElem], d: usize, zero: f64, one: f64, feature: i64, inv: &[f64]) {
    path[d] = PathElem { feature, zero, one, pweight: if d == 0 { 1.0 } else { 0.0 } };
    let inv_d1 = inv[d + 1];
    for i in (0..d).rev() {
        path[i + 1].pweight += one * path[i].pweight * (i + 1) as f64 * inv_d1;
        path[i].pweight = zero * path[i].pweight * (d - i) as f64 * inv_d1;
    }
}

/// Removes element `at` from a path whose last index is `d`, undoing [`extend`].
fn unwind(path: &mut [PathElem], d: usize, at: usize, inv: &[f64]) {
    let (one, zero) = (path[at].one, path[at].zero);
    let mut next = path[d].pweight;
    let d1 = (d + 1) as f64;
    let inv_d1 = inv[d + 1];
    if one != 0.0 {
        // `one` is 1 here (a product of ones and zeros): the divisions of the weight chain become
        // products with reciprocals, which keeps the chain short.
        let inv_one = 1.0 / one;
        for i in (0..d).rev() {
            let tmp = path[i].pweight;
            let w = next * d1 * inv[i + 1] * inv_one;
            path[i].pweight = w;
            next = tmp - w * zero * (d - i) as f64 * inv_d1;
        }
    } else {
        let inv_zero = 1.0 / zero;
        for (i, e) in path[..d].iter_mut().enumerate() {
            e.pweight = e.pweight * d1 * inv_zero * inv[d - i];
        }
    }
    for i in at..d {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
}

/// The total subset weight of the path with an element of fractions (`zero`, 1) unwound (the path
/// is left unchanged). Elements with `one` = 0 need no walk: see [`recurse`].
#[inline]
fn unwound_sum_hot(path: &[PathElem], d: usize, zero: f64, inv: &[f64]) -> f64 {
    let d1 = (d + 1) as f64;
    let inv_d1 = inv[d + 1];
    let mut next = path[d].pweight;
    let mut total = 0.0;
    for i in (0..d).rev() {
        let tmp = next * d1 * inv[i + 1];
        total += tmp;
        next = path[i].pweight - tmp * zero * (d - i) as f64 * inv_d1;
    }
    total
}

fn cover(tree: &FlatTree, child: i32) -> f64 {
    let c = if child >= 0 { tree.node_cover.get(child as usize) } else { tree.leaf_cover.get(!child as usize) };
    c.copied().unwrap_or(0.0)
}

/// Reusable storage for [`tree_shap`] (one per thread): each depth's path is a segment of `path`;
/// `inv[k]` = 1 / k.
#[derive(Default)]
pub struct ShapScratch {
    path: Vec<PathElem>,
    inv: Vec<f64>,
}

/// Depth of the deepest leaf.
fn depth(tree: &FlatTree) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(0i32, 0usize)];
    while let Some((node, d)) = stack.pop() {
        if node < 0 {
            deepest = deepest.max(d);
        } else {
            let n = &tree.nodes[node as usize];
            stack.push((n.left, d + 1));
            stack.push((n.right, d + 1));
        }
    }
    deepest
}

/// `buf[..d]` holds the path down to this node's parent; the node extends it at `d`, and its
/// children work in `buf` past the current path.
#[allow(clippy::too_many_arguments)]
fn recurse(tree: &FlatTree, info: &ShapInfo, row: &[f64], phi: &mut [f64], node: i32, buf: &mut [PathElem], d: usize, zero: f64, one: f64, feature: i64, inv: &[f64]) {
    extend(buf, d, zero, one, feature, inv);
    if node < 0 {
        let value = tree.leaf_values[!node as usize];
        // Unwinding an element with one = 0 divides every weight by its `zero` alone, so all such
        // elements share one sum, scaled by 1 / zero.
        let mut cold_sum: Option<f64> = None;
        let d1 = (d + 1) as f64;
        for i in 1..=d {
            let e = buf[i];
            let w = if e.one == 0.0 {
                let s = *cold_sum.get_or_insert_with(|| (0..d).map(|j| buf[j].pweight * d1 * inv[d - j]).sum());
                s / e.zero
            } else {
                unwound_sum_hot(buf, d, e.zero, inv)
            };
            phi[e.feature as usize] += w * (e.one - e.zero) * value;
        }
        return;
    }
    let n = &tree.nodes[node as usize];
    let (left, right) = info.shares[node as usize];
    let (hot, cold, hot_zero, cold_zero) =
        if tree.goes_left(n, row[n.feature as usize]) { (n.left, n.right, left, right) } else { (n.right, n.left, right, left) };
    let (mut in_zero, mut in_one) = (1.0, 1.0);
    let mut d = d;
    // A feature met again on the path: undo its earlier split and merge the fractions.
    if let Some(k) = (1..=d).find(|&k| buf[k].feature == n.feature as i64) {
        in_zero = buf[k].zero;
        in_one = buf[k].one;
        unwind(buf, d, k, inv);
        d -= 1;
    }
    let (cur, rest) = buf.split_at_mut(d + 1);
    rest[..d + 1].copy_from_slice(cur);
    recurse(tree, info, row, phi, hot, rest, d + 1, hot_zero * in_zero, in_one, n.feature as i64, inv);
    // The second child needs the path no more after it: it extends it where it lies.
    recurse(tree, info, row, phi, cold, buf, d + 1, cold_zero * in_zero, 0.0, n.feature as i64, inv);
}

/// Adds one tree's SHAP values for `row` to `phi` (features, then the expected value last); `info`
/// is the tree's [`ShapInfo`].
pub fn tree_shap(tree: &FlatTree, info: &ShapInfo, row: &[f64], phi: &mut [f64], scratch: &mut ShapScratch) {
    let nf = phi.len() - 1;
    if tree.nodes.is_empty() {
        phi[nf] += tree.leaf_values[0];
        return;
    }
    phi[nf] += info.expected;
    let dmax = info.depth + 2;
    let need = dmax * (dmax + 1) / 2 + dmax;
    if scratch.path.len() < need {
        scratch.path.resize(need, PathElem { feature: 0, zero: 0.0, one: 0.0, pweight: 0.0 });
    }
    if scratch.inv.len() < dmax + 2 {
        scratch.inv = (0..dmax + 2).map(|k| if k == 0 { 0.0 } else { 1.0 / k as f64 }).collect();
    }
    recurse(tree, info, row, phi, 0, &mut scratch.path, 0, 1.0, 1.0, -1, &scratch.inv);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::forest::Node;

    /// x0 <= 0 ? (x1 <= 0 ? 1 : 2) : 3, covers 10 / (6: 2, 4) / 4.
    fn tree() -> FlatTree {
        let node = |feature, left, right| Node {
            feature,
            threshold: 0.0,
            left,
            right,
            default_left: true,
            missing: 0,
            cat_inverted: false,
            cat_len: 0,
            cat_start: 0,
        };
        FlatTree {
            nodes: vec![node(0, 1, !2), node(1, !0, !1)],
            leaf_values: vec![1.0, 2.0, 3.0],
            cat_words: vec![],
            node_cover: vec![10.0, 6.0],
            leaf_cover: vec![2.0, 4.0, 4.0],
        }
    }

    /// Shapley values by brute force over feature subsets, with the cover-weighted conditional
    /// expectation that path-dependent TreeSHAP defines.
    fn brute(t: &FlatTree, row: &[f64]) -> Vec<f64> {
        fn expect(t: &FlatTree, row: &[f64], known: &[bool], node: i32) -> f64 {
            if node < 0 {
                return t.leaf_values[!node as usize];
            }
            let n = &t.nodes[node as usize];
            if known[n.feature as usize] {
                let next = if t.goes_left(n, row[n.feature as usize]) { n.left } else { n.right };
                return expect(t, row, known, next);
            }
            let c = |ch: i32| if ch >= 0 { t.node_cover[ch as usize] } else { t.leaf_cover[!ch as usize] };
            let w = t.node_cover[node as usize];
            (c(n.left) * expect(t, row, known, n.left) + c(n.right) * expect(t, row, known, n.right)) / w
        }
        let m = row.len();
        let fact = |k: usize| (1..=k).product::<usize>() as f64;
        let mut phi = vec![0.0; m + 1];
        for i in 0..m {
            for mask in 0..(1usize << m) {
                if mask & (1 << i) != 0 {
                    continue;
                }
                let s = mask.count_ones() as usize;
                let mut known: Vec<bool> = (0..m).map(|j| mask & (1 << j) != 0).collect();
                let without = expect(t, row, &known, 0);
                known[i] = true;
                let with = expect(t, row, &known, 0);
                phi[i] += fact(s) * fact(m - s - 1) / fact(m) * (with - without);
            }
        }
        phi[m] = expect(t, row, &vec![false; m], 0);
        phi
    }

    #[test]
    fn matches_brute_force_and_sums_to_the_prediction() {
        let t = tree();
        for row in [[-1.0, -1.0, 5.0], [-1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [f64::NAN, 1.0, 0.0]] {
            let mut phi = vec![0.0; 4];
            tree_shap(&t, &ShapInfo::new(&t), &row, &mut phi, &mut ShapScratch::default());
            let want = brute(&t, &row);
            for (a, b) in phi.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{phi:?} vs {want:?}");
            }
            let pred = t.leaf_values[t.leaf(&row)];
            assert!((phi.iter().sum::<f64>() - pred).abs() < 1e-12);
            assert_eq!(phi[2], 0.0);
        }
    }
}
