//! Import of LightGBM text models into a ferrox [`Model`], evaluated by the same compiled forest.
//!
//! Every index in the file is checked before use (features, children, leaves, category bitsets), and
//! children must come after their parent, so a hostile or truncated file gives an error, never an
//! out-of-bounds read or a cycle. Thresholds are parsed as f64 and compared in f64, as LightGBM does.

use std::collections::HashMap;

use super::OutputTransform;
use crate::data::BinMapper;
use crate::error::{Error, Result};
use crate::gbdt::boosting::Model;
use crate::gbdt::params::{GbdtParams, ObjectiveKind};
use crate::gbdt::tree::{Tree, TreeNode};

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::integrity(format!("not a valid LightGBM model: {msg}"))
}

/// `key=value` lines of one block.
fn fields(block: &str) -> HashMap<&str, &str> {
    block
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

fn list<T: std::str::FromStr>(f: &HashMap<&str, &str>, key: &str, want: usize, tree: usize) -> Result<Vec<T>> {
    let raw = f.get(key).ok_or_else(|| bad(format!("tree {tree} has no '{key}'")))?;
    let out: Vec<T> = raw
        .split_whitespace()
        .map(|v| v.parse::<T>().map_err(|_| bad(format!("tree {tree}: '{key}' holds '{v}', which does not parse"))))
        .collect::<Result<_>>()?;
    if want != usize::MAX && out.len() != want {
        return Err(bad(format!("tree {tree}: '{key}' has {} values, expected {want}", out.len())));
    }
    Ok(out)
}

/// The output transform named by LightGBM's `objective=` line, and whether it is multiclass.
fn transform_of(objective: &str) -> (OutputTransform, ObjectiveKind) {
    let mut parts = objective.split_whitespace();
    let name = parts.next().unwrap_or("");
    let mut sigmoid = 1.0;
    for p in parts {
        if let Some(v) = p.strip_prefix("sigmoid:") {
            sigmoid = v.parse().unwrap_or(1.0);
        }
    }
    match name {
        "binary" => (OutputTransform::Sigmoid(sigmoid), ObjectiveKind::Binary),
        "multiclass" | "softmax" => (OutputTransform::Softmax, ObjectiveKind::Multiclass),
        "multiclassova" | "multiclass_ova" | "ova" | "ovr" => (OutputTransform::SigmoidEach(sigmoid), ObjectiveKind::Multiclass),
        "cross_entropy" | "xentropy" => (OutputTransform::Sigmoid(1.0), ObjectiveKind::CrossEntropy),
        "cross_entropy_lambda" | "xentlambda" => (OutputTransform::Log1pExp, ObjectiveKind::Custom),
        "poisson" => (OutputTransform::Exp, ObjectiveKind::Poisson),
        "tweedie" => (OutputTransform::Exp, ObjectiveKind::Tweedie),
        "gamma" => (OutputTransform::Exp, ObjectiveKind::Custom),
        "regression" | "regression_l2" => (OutputTransform::Identity, ObjectiveKind::Regression),
        "regression_l1" => (OutputTransform::Identity, ObjectiveKind::RegressionL1),
        "huber" => (OutputTransform::Identity, ObjectiveKind::Huber),
        "quantile" => (OutputTransform::Identity, ObjectiveKind::Quantile),
        "lambdarank" => (OutputTransform::Identity, ObjectiveKind::Lambdarank),
        _ => (OutputTransform::Identity, ObjectiveKind::Custom),
    }
}

fn parse_tree(block: &str, t: usize, num_features: usize) -> Result<Tree> {
    let f = fields(block);
    let num_leaves: usize = f
        .get("num_leaves")
        .ok_or_else(|| bad(format!("tree {t} has no num_leaves")))?
        .parse()
        .map_err(|_| bad(format!("tree {t}: num_leaves does not parse")))?;
    if num_leaves == 0 || num_leaves > 1 << 24 {
        return Err(bad(format!("tree {t}: num_leaves = {num_leaves}")));
    }
    let leaf_value: Vec<f64> = list(&f, "leaf_value", num_leaves, t)?;
    if let Some(v) = leaf_value.iter().find(|v| !v.is_finite()) {
        return Err(bad(format!("tree {t}: leaf value {v}")));
    }
    let shrink_ok = f.get("shrinkage").is_none_or(|s| s.parse::<f64>().is_ok());
    if !shrink_ok {
        return Err(bad(format!("tree {t}: shrinkage does not parse")));
    }
    let leaf_count: Vec<u32> =
        if f.contains_key("leaf_count") { list(&f, "leaf_count", num_leaves, t)? } else { vec![0; num_leaves] };
    let leaf_hess: Vec<f64> =
        if f.contains_key("leaf_weight") { list(&f, "leaf_weight", num_leaves, t)? } else { vec![0.0; num_leaves] };
    if num_leaves == 1 {
        return Ok(Tree { nodes: Vec::new(), leaf_value, leaf_count, leaf_hess, cover_is_hessian: false });
    }
    if f.get("is_linear").is_some_and(|v| *v != "0") {
        return Err(bad(format!("tree {t} is a linear tree (linear_tree=true), which ferrox does not import")));
    }
    let m = num_leaves - 1;
    let split_feature: Vec<i64> = list(&f, "split_feature", m, t)?;
    let threshold: Vec<f64> = list(&f, "threshold", m, t)?;
    let decision_type: Vec<u8> = list(&f, "decision_type", m, t)?;
    let left: Vec<i32> = list(&f, "left_child", m, t)?;
    let right: Vec<i32> = list(&f, "right_child", m, t)?;
    let gain: Vec<f64> = if f.contains_key("split_gain") { list(&f, "split_gain", m, t)? } else { vec![0.0; m] };
    let icount: Vec<u32> =
        if f.contains_key("internal_count") { list(&f, "internal_count", m, t)? } else { vec![0; m] };
    let ihess: Vec<f64> =
        if f.contains_key("internal_weight") { list(&f, "internal_weight", m, t)? } else { vec![0.0; m] };
    let ivalue: Vec<f64> =
        if f.contains_key("internal_value") { list(&f, "internal_value", m, t)? } else { vec![0.0; m] };
    let num_cat: usize = f.get("num_cat").map_or(Ok(0), |v| v.parse()).map_err(|_| bad(format!("tree {t}: num_cat")))?;
    let (cat_bounds, cat_words): (Vec<usize>, Vec<u32>) = if num_cat > 0 {
        let b: Vec<usize> = list(&f, "cat_boundaries", num_cat + 1, t)?;
        let w: Vec<u32> = list(&f, "cat_threshold", usize::MAX, t)?;
        if b[0] != 0 || b.windows(2).any(|p| p[0] > p[1]) || *b.last().unwrap() != w.len() {
            return Err(bad(format!("tree {t}: cat_boundaries do not index cat_threshold")));
        }
        (b, w)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut nodes = Vec::with_capacity(m);
    let mut seen_leaf = vec![false; num_leaves];
    for i in 0..m {
        let feat = split_feature[i];
        if feat < 0 || feat as usize >= num_features {
            return Err(bad(format!("tree {t} node {i} splits on feature {feat}; the model has {num_features}")));
        }
        for (side, c) in [("left", left[i]), ("right", right[i])] {
            if c >= 0 {
                if c as usize >= m || c as usize <= i {
                    return Err(bad(format!("tree {t} node {i}: {side} child {c} is out of order or out of range")));
                }
            } else {
                let leaf = !c as usize;
                if leaf >= num_leaves || seen_leaf[leaf] {
                    return Err(bad(format!("tree {t} node {i}: {side} leaf {leaf} is out of range or reused")));
                }
                seen_leaf[leaf] = true;
            }
        }
        let dt = decision_type[i];
        let categorical = dt & 1 == 1;
        let cat_left = if categorical {
            let idx = threshold[i];
            if !(idx >= 0.0 && (idx as usize) < num_cat && idx.fract() == 0.0) {
                return Err(bad(format!("tree {t} node {i}: category set {idx} does not exist")));
            }
            let k = idx as usize;
            cat_words[cat_bounds[k]..cat_bounds[k + 1]].to_vec()
        } else {
            Vec::new()
        };
        if !categorical && !threshold[i].is_finite() && !threshold[i].is_infinite() {
            return Err(bad(format!("tree {t} node {i}: threshold is NaN")));
        }
        let missing = match (dt >> 2) & 3 {
            0 => 2, // None: NaN reads as 0
            1 => 1, // Zero
            _ => 0, // NaN
        };
        nodes.push(TreeNode {
            feature: feat as u32,
            threshold_bin: 0,
            threshold: if categorical { 0.0 } else { threshold[i] },
            default_left: dt & 2 == 2,
            missing,
            cat_inverted: false,
            cat_left: if categorical && cat_left.is_empty() { vec![0] } else { cat_left },
            left: left[i],
            right: right[i],
            gain: gain[i],
            count: icount[i],
            hess: ihess[i],
            value: ivalue[i],
        });
    }
    if seen_leaf.iter().any(|s| !s) {
        return Err(bad(format!("tree {t}: some leaves are not reachable")));
    }
    Ok(Tree { nodes, leaf_value, leaf_count, leaf_hess, cover_is_hessian: false })
}

/// Parses a LightGBM model in its text format (`model_to_string()` / `save_model()` output).
pub fn parse(text: &str) -> Result<Model> {
    let text = text.replace("\r\n", "\n");
    let head_end = text.find("\nTree=").unwrap_or_else(|| text.find("end of trees").unwrap_or(text.len()));
    let header = fields(&text[..head_end]);
    if !text.starts_with("tree") || !header.contains_key("version") {
        return Err(bad("it does not start with LightGBM's 'tree' / 'version=' header"));
    }
    let num = |key: &str| -> Result<usize> {
        header.get(key).ok_or_else(|| bad(format!("the header has no '{key}'")))?.parse().map_err(|_| bad(format!("'{key}' does not parse")))
    };
    let num_class = num("num_class")?;
    let per_iter = num("num_tree_per_iteration")?;
    let max_feature_idx: i64 = header
        .get("max_feature_idx")
        .ok_or_else(|| bad("the header has no 'max_feature_idx'"))?
        .parse()
        .map_err(|_| bad("'max_feature_idx' does not parse"))?;
    if !(0..1 << 24).contains(&max_feature_idx) || per_iter == 0 || per_iter > 1 << 16 || num_class == 0 {
        return Err(bad("num_class / num_tree_per_iteration / max_feature_idx out of range"));
    }
    let nf = max_feature_idx as usize + 1;
    let names: Vec<String> = match header.get("feature_names") {
        Some(s) => s.split_whitespace().map(String::from).collect(),
        None => (0..nf).map(|i| format!("Column_{i}")).collect(),
    };
    if names.len() != nf {
        return Err(bad(format!("{} feature names for {nf} features", names.len())));
    }
    let (transform, objective) = transform_of(header.get("objective").copied().unwrap_or("regression"));
    let average_output = text[..head_end].lines().any(|l| l.trim() == "average_output");
    let body_end = text.find("end of trees").ok_or_else(|| bad("it is truncated: 'end of trees' is missing"))?;
    let mut trees = Vec::new();
    for (t, block) in text[head_end..body_end].split("\nTree=").skip(1).enumerate() {
        let (idx, rest) = block.split_once('\n').unwrap_or((block, ""));
        if idx.trim().parse::<usize>().ok() != Some(t) {
            return Err(bad(format!("tree {t} is labelled 'Tree={}'", idx.trim())));
        }
        trees.push(parse_tree(rest, t, nf)?);
    }
    if trees.len() % per_iter != 0 {
        return Err(bad(format!("{} trees is not a multiple of {per_iter} trees per iteration", trees.len())));
    }
    let mut mappers = vec![BinMapper::Numeric { upper_bounds: vec![f64::INFINITY], min: f64::NAN, max: f64::NAN }; nf];
    for (j, categories) in pandas_categories(&header, &text[body_end..], nf)? {
        let counts = vec![0; categories.len()];
        mappers[j] = BinMapper::Categorical { categories, counts };
    }
    Ok(Model {
        trees,
        num_scores: per_iter,
        base_score: vec![0.0; per_iter],
        transform,
        objective,
        feature_names: names,
        mappers,
        best_iteration: 0,
        params: GbdtParams { num_class: per_iter.max(1), ..GbdtParams::default() },
        average_output,
        accumulate_f32: false,
        meta: String::new(),
    })
}

/// The categories of features trained from pandas categorical columns (the model's
/// `pandas_categorical` line): LightGBM codes such a column by the position of each value in its
/// list, so the feature reads pandas/Arrow categorical input through a categorical mapper whose bin
/// is that position. Only when every categorical feature of the model came from such a column (the
/// lists then match the categorical features in order); otherwise those features read codes as plain
/// numbers, as LightGBM does for numeric input.
fn pandas_categories(header: &HashMap<&str, &str>, tail: &str, nf: usize) -> Result<Vec<(usize, Vec<crate::data::CatKey>)>> {
    use crate::data::CatKey;
    let Some(line) = tail.lines().find_map(|l| l.strip_prefix("pandas_categorical:")) else {
        return Ok(vec![]);
    };
    let value: serde_json::Value = serde_json::from_str(line.trim()).map_err(|e| bad(format!("pandas_categorical does not parse: {e}")))?;
    let Some(lists) = value.as_array() else {
        return Ok(vec![]); // "null": no pandas categorical columns
    };
    let cat_features: Vec<usize> = match header.get("feature_infos") {
        Some(infos) => {
            infos.split_whitespace().enumerate().filter(|(_, i)| !i.starts_with('[') && *i != "none").map(|(j, _)| j).collect()
        }
        None => vec![],
    };
    if lists.is_empty() || lists.len() != cat_features.len() || cat_features.iter().any(|&j| j >= nf) {
        return Ok(vec![]);
    }
    let mut out = Vec::with_capacity(lists.len());
    for (&j, list) in cat_features.iter().zip(lists) {
        let items = list.as_array().ok_or_else(|| bad("pandas_categorical holds something other than lists"))?;
        let mut keys = Vec::with_capacity(items.len());
        for v in items {
            keys.push(match v {
                serde_json::Value::String(s) => CatKey::Str(s.clone()),
                serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => CatKey::Int(i),
                    (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => CatKey::Int(f as i64),
                    _ => return Ok(vec![]), // categories that are not whole numbers or strings: read codes
                },
                serde_json::Value::Bool(b) => CatKey::Int(*b as i64),
                _ => return Ok(vec![]),
            });
        }
        out.push((j, keys));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\n\
objective=binary sigmoid:1\nfeature_names=a b\n\nTree=0\nnum_leaves=3\nnum_cat=0\nsplit_feature=0 1\n\
split_gain=1 1\nthreshold=0.5 -1\ndecision_type=2 10\nleft_child=-1 -2\nright_child=1 -3\n\
leaf_value=0.1 0.2 0.3\nleaf_count=1 1 1\nshrinkage=1\n\n\nend of trees\n";

    #[test]
    fn parses_a_small_model() {
        let m = parse(SMALL).unwrap();
        assert_eq!(m.trees.len(), 1);
        assert_eq!(m.trees[0].nodes[1].missing, 0);
        assert!(m.trees[0].nodes[1].default_left);
        assert_eq!(m.feature_names, vec!["a", "b"]);
    }

    #[test]
    fn hostile_edits_are_errors() {
        for (from, to) in [
            ("split_feature=0 1", "split_feature=0 7"),
            ("left_child=-1 -2", "left_child=-1 0"),
            ("right_child=1 -3", "right_child=1 -9"),
            ("leaf_value=0.1 0.2 0.3", "leaf_value=0.1 0.2"),
            ("num_leaves=3", "num_leaves=99999999999"),
            ("end of trees", "end of tr"),
            ("left_child=-1 -2", "left_child=-1 -1"),
        ] {
            let text = SMALL.replace(from, to);
            assert!(parse(&text).is_err(), "{to}");
        }
    }

    proptest::proptest! {
        #[test]
        fn truncations_and_byte_flips_never_panic(cut in 0usize..400, pos in 0usize..400, byte in 0u8..128) {
            let s = SMALL.as_bytes();
            let mut v = s[..cut.min(s.len())].to_vec();
            if pos < v.len() { v[pos] = byte; }
            let _ = parse(&String::from_utf8_lossy(&v));
        }
    }
}
