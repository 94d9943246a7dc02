//! Import of XGBoost gbtree models (JSON, or UBJSON as `save_raw()` writes) into a ferrox [`Model`].
//!
//! XGBoost casts features to float32 and sends a row left when `value < threshold`; missing values
//! follow the node's default. The forest compares float64 values with `<=`, so each float32 threshold
//! `t` becomes the largest float64 that float32 rounding sends below `t`: the same decision for every
//! float32 and float64 input. Categorical nodes list the categories that go right.

use serde_json::Value;

use super::OutputTransform;
use crate::data::BinMapper;
use crate::error::{Error, Result};
use crate::gbdt::boosting::Model;
use crate::gbdt::params::{GbdtParams, ObjectiveKind};
use crate::gbdt::tree::{Tree, TreeNode};

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::integrity(format!("not a valid XGBoost model: {msg}"))
}

/// The float64 threshold `c` with `x <= c` exactly when `(x as f32) < t`, for every float64 `x`.
pub fn strict_f32_threshold(t: f32) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    if t == f32::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let below = t.next_down();
    if below == f32::NEG_INFINITY {
        // Only values that round to -inf are below the smallest finite float32.
        return -(f32::MAX as f64) - (f32::MAX as f64 - (f32::MAX.next_down()) as f64) / 2.0;
    }
    // Halfway between the two float32 neighbours; a tie rounds to the one with an even mantissa.
    let mid = (below as f64 + t as f64) / 2.0;
    if below.to_bits() & 1 == 0 {
        mid
    } else {
        mid.next_down()
    }
}

fn arr<'a>(v: &'a Value, key: &str, tree: usize) -> Result<&'a Vec<Value>> {
    v.get(key).and_then(Value::as_array).ok_or_else(|| bad(format!("tree {tree} has no array '{key}'")))
}

fn nums(v: &Value, key: &str, tree: usize, want: usize) -> Result<Vec<f64>> {
    let a = arr(v, key, tree)?;
    if want != usize::MAX && a.len() != want {
        return Err(bad(format!("tree {tree}: '{key}' has {} values, expected {want}", a.len())));
    }
    a.iter().map(|x| x.as_f64().ok_or_else(|| bad(format!("tree {tree}: '{key}' holds {x}")))).collect()
}

fn ints(v: &Value, key: &str, tree: usize, want: usize) -> Result<Vec<i64>> {
    let a = arr(v, key, tree)?;
    if want != usize::MAX && a.len() != want {
        return Err(bad(format!("tree {tree}: '{key}' has {} values, expected {want}", a.len())));
    }
    a.iter().map(|x| x.as_i64().ok_or_else(|| bad(format!("tree {tree}: '{key}' holds {x}")))).collect()
}

/// All numbers of a value XGBoost may write as a number, a string, or a bracketed list ("[0.5,0.1]").
fn vector(v: Option<&Value>) -> Option<Vec<f64>> {
    match v? {
        Value::Number(n) => Some(vec![n.as_f64()?]),
        Value::String(s) => s
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(|p| p.trim().parse::<f64>().ok())
            .collect(),
        Value::Array(a) => a.iter().map(Value::as_f64).collect(),
        _ => None,
    }
}

/// A number that XGBoost may write as a string, possibly as "[0.5]" in 3.x.
fn scalar(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_start_matches('[').trim_end_matches(']').split(',').next()?.trim().parse().ok(),
        Value::Array(a) => a.first().and_then(|x| x.as_f64()),
        _ => None,
    }
}

fn parse_tree(t: &Value, idx: usize, nf: usize) -> Result<Tree> {
    let left = ints(t, "left_children", idx, usize::MAX)?;
    let n = left.len();
    if n == 0 || n > 1 << 24 {
        return Err(bad(format!("tree {idx} has {n} nodes")));
    }
    let right = ints(t, "right_children", idx, n)?;
    let cond = nums(t, "split_conditions", idx, n)?;
    let feat = ints(t, "split_indices", idx, n)?;
    let dl = ints(t, "default_left", idx, n)?;
    let hess = nums(t, "sum_hessian", idx, n).unwrap_or_else(|_| vec![0.0; n]);
    let gain = nums(t, "loss_changes", idx, n).unwrap_or_else(|_| vec![0.0; n]);
    let split_type = ints(t, "split_type", idx, n).unwrap_or_else(|_| vec![0; n]);
    // Categorical sets: node ids, their segments into `categories`.
    let cat_nodes = ints(t, "categories_nodes", idx, usize::MAX).unwrap_or_default();
    let cat_segs = ints(t, "categories_segments", idx, cat_nodes.len()).unwrap_or_default();
    let cat_sizes = ints(t, "categories_sizes", idx, cat_nodes.len()).unwrap_or_default();
    let cats = ints(t, "categories", idx, usize::MAX).unwrap_or_default();
    // Internal nodes and leaves in ferrox's numbering: internal nodes in XGBoost order, leaves by
    // first appearance.
    let is_leaf = |i: usize| left[i] == -1;
    let mut internal_id = vec![usize::MAX; n];
    let mut leaf_id = vec![usize::MAX; n];
    let (mut ni, mut nl) = (0, 0);
    for i in 0..n {
        if is_leaf(i) {
            leaf_id[i] = nl;
            nl += 1;
        } else {
            internal_id[i] = ni;
            ni += 1;
        }
    }
    let mut tree = Tree {
        nodes: Vec::with_capacity(ni),
        leaf_value: vec![0.0; nl],
        leaf_count: vec![0; nl],
        leaf_hess: vec![0.0; nl],
        cover_is_hessian: true,
    };
    let mut reached = vec![false; n];
    reached[0] = true;
    for i in 0..n {
        if is_leaf(i) {
            if right[i] != -1 {
                return Err(bad(format!("tree {idx} node {i}: a leaf with a right child")));
            }
            let l = leaf_id[i];
            tree.leaf_value[l] = cond[i];
            tree.leaf_hess[l] = hess[i];
            continue;
        }
        if feat[i] < 0 || feat[i] as usize >= nf {
            return Err(bad(format!("tree {idx} node {i} splits on feature {}; the model has {nf}", feat[i])));
        }
        let child = |c: i64, side: &str| -> Result<i32> {
            if c <= i as i64 || c as usize >= n {
                return Err(bad(format!("tree {idx} node {i}: {side} child {c} is out of order or out of range")));
            }
            let c = c as usize;
            Ok(if is_leaf(c) { !(leaf_id[c] as i32) } else { internal_id[c] as i32 })
        };
        let (lc, rc) = (child(left[i], "left")?, child(right[i], "right")?);
        for c in [left[i] as usize, right[i] as usize] {
            if reached[c] {
                return Err(bad(format!("tree {idx}: node {c} has two parents")));
            }
            reached[c] = true;
        }
        let mut cat_left = Vec::new();
        if split_type[i] == 1 {
            let k = cat_nodes.iter().position(|&c| c == i as i64).ok_or_else(|| bad(format!("tree {idx} node {i}: no category set")))?;
            let (s, z) = (cat_segs[k], cat_sizes[k]);
            if s < 0 || z < 0 || (s + z) as usize > cats.len() {
                return Err(bad(format!("tree {idx} node {i}: category set out of range")));
            }
            let set = &cats[s as usize..(s + z) as usize];
            let top = set.iter().copied().max().unwrap_or(0);
            if set.iter().any(|&c| !(0..1 << 24).contains(&c)) {
                return Err(bad(format!("tree {idx} node {i}: category {top} out of range")));
            }
            cat_left = vec![0u32; (top as usize / 32) + 1];
            for &c in set {
                cat_left[c as usize / 32] |= 1 << (c % 32);
            }
        }
        tree.nodes.push(TreeNode {
            feature: feat[i] as u32,
            threshold_bin: 0,
            threshold: if split_type[i] == 1 { 0.0 } else { strict_f32_threshold(cond[i] as f32) },
            default_left: dl[i] != 0,
            missing: 0,
            cat_inverted: split_type[i] == 1,
            cat_left,
            left: lc,
            right: rc,
            gain: gain[i],
            count: 0,
            hess: hess[i],
            value: 0.0,
        });
    }
    if reached.iter().any(|r| !r) {
        return Err(bad(format!("tree {idx}: some nodes are not reachable")));
    }
    Ok(tree)
}

/// Builds a model from a decoded XGBoost model document.
pub fn from_value(doc: &Value) -> Result<Model> {
    let learner = doc.get("learner").ok_or_else(|| bad("no 'learner'"))?;
    let mp = learner.get("learner_model_param").ok_or_else(|| bad("no 'learner_model_param'"))?;
    let nf = scalar(mp.get("num_feature")).ok_or_else(|| bad("no num_feature"))? as usize;
    let num_class = scalar(mp.get("num_class")).unwrap_or(0.0) as usize;
    if scalar(mp.get("num_target")).unwrap_or(1.0) > 1.0 {
        return Err(bad("multi-target models are not supported"));
    }
    if nf == 0 || nf > 1 << 24 {
        return Err(bad(format!("num_feature = {nf}")));
    }
    let base_all = vector(mp.get("base_score")).filter(|v| !v.is_empty()).ok_or_else(|| bad("no base_score"))?;
    let base = base_all[0];
    let objective = learner.get("objective").and_then(|o| o.get("name")).and_then(Value::as_str).unwrap_or("reg:squarederror");
    let gb = learner.get("gradient_booster").ok_or_else(|| bad("no 'gradient_booster'"))?;
    let name = gb.get("name").and_then(Value::as_str).unwrap_or("");
    if name != "gbtree" {
        return Err(bad(format!("booster '{name}' is not supported (only gbtree)")));
    }
    let model = gb.get("model").ok_or_else(|| bad("no gbtree model"))?;
    let trees_v = model.get("trees").and_then(Value::as_array).ok_or_else(|| bad("no trees"))?;
    let info: Vec<i64> = model
        .get("tree_info")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_else(|| vec![0; trees_v.len()]);
    let k = num_class.max(1);
    if info.len() != trees_v.len() {
        return Err(bad("tree_info does not match the trees"));
    }
    // Round by round, one tree per class; XGBoost's order is the same for gbtree.
    for (t, &c) in info.iter().enumerate() {
        if c < 0 || c as usize >= k || c as usize != t % k {
            return Err(bad(format!("tree {t} is for class {c}, which breaks the round-by-round order")));
        }
    }
    let trees = trees_v.iter().enumerate().map(|(t, v)| parse_tree(v, t, nf)).collect::<Result<Vec<_>>>()?;
    let (transform, kind, margin) = match objective {
        "binary:logistic" | "reg:logistic" => {
            // XGBoost computes the starting margin in float32.
            let p = (base as f32).clamp(1e-16, 1.0 - 1e-7);
            (OutputTransform::Sigmoid(1.0), ObjectiveKind::Binary, -((1.0f32 / p - 1.0).ln()) as f64)
        }
        "binary:logitraw" => (OutputTransform::Identity, ObjectiveKind::Binary, base),
        "multi:softprob" | "multi:softmax" => (OutputTransform::Softmax, ObjectiveKind::Multiclass, f64::NAN),
        "count:poisson" => (OutputTransform::Exp, ObjectiveKind::Poisson, base.max(1e-300).ln()),
        "reg:tweedie" => (OutputTransform::Exp, ObjectiveKind::Tweedie, base.max(1e-300).ln()),
        "reg:gamma" | "survival:cox" => (OutputTransform::Exp, ObjectiveKind::Custom, base.max(1e-300).ln()),
        "reg:squarederror" | "reg:squaredlogerror" | "reg:pseudohubererror" | "reg:absoluteerror" | "reg:quantileerror" => {
            (OutputTransform::Identity, ObjectiveKind::Regression, base)
        }
        o if o.starts_with("rank:") => (OutputTransform::Identity, ObjectiveKind::Lambdarank, base),
        o => return Err(bad(format!("objective '{o}' is not supported"))),
    };
    let names: Vec<String> = match learner.get("feature_names").and_then(Value::as_array) {
        Some(a) if a.len() == nf => a.iter().map(|v| v.as_str().unwrap_or("").to_string()).collect(),
        _ => (0..nf).map(|i| format!("f{i}")).collect(),
    };
    let base_score = if margin.is_nan() {
        // Multiclass: one starting margin per class (XGBoost >= 3 writes a vector).
        if base_all.len() == k {
            base_all.clone()
        } else {
            vec![base; k]
        }
    } else {
        vec![margin; k]
    };
    Ok(Model {
        trees,
        num_scores: k,
        base_score,
        transform,
        objective: kind,
        feature_names: names,
        mappers: vec![BinMapper::Numeric { upper_bounds: vec![f64::INFINITY], min: f64::NAN, max: f64::NAN }; nf],
        best_iteration: 0,
        params: GbdtParams { num_class: k, ..GbdtParams::default() },
        average_output: false,
        accumulate_f32: true,
        meta: String::new(),
    })
}

/// Parses an XGBoost model saved as JSON or UBJSON (the format is told by the first byte).
pub fn parse(bytes: &[u8]) -> Result<Model> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let doc = if first == Some(b'{') && bytes.get(1).is_some_and(|b| b.is_ascii_whitespace() || *b == b'"') {
        serde_json::from_slice(bytes).map_err(|e| bad(format!("JSON: {e}")))?
    } else {
        super::ubjson::parse(bytes)?
    };
    from_value(&doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_thresholds_decide_like_float32() {
        let mut rng = crate::data::sample::SplitMix64::new(4);
        for _ in 0..20_000 {
            let t = (rng.next_f64() * 200.0 - 100.0) as f32;
            let c = strict_f32_threshold(t);
            // Probe float64 values right around t and its float32 neighbours.
            for base in [t.next_down() as f64, t as f64, t.next_up() as f64, (t.next_down() as f64 + t as f64) / 2.0] {
                let mut x = base;
                for _ in 0..3 {
                    x = x.next_down();
                }
                for _ in 0..7 {
                    assert_eq!(x <= c, (x as f32) < t, "t={t} x={x}");
                    x = x.next_up();
                }
            }
        }
    }
}
