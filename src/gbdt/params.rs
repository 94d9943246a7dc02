//! Training parameters: LightGBM's names, aliases and defaults, validated with messages that name the
//! parameter (and, for an unknown one, the closest valid name).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A parameter value as it arrives from a caller.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string (objective names, metric lists "auc,binary_logloss", ...).
    Str(String),
    /// A list (metrics, monotone constraints, ...).
    List(Vec<ParamValue>),
    /// An explicit "not set".
    None,
}

/// The training objective.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum ObjectiveKind {
    /// Squared error.
    Regression,
    /// Absolute error.
    RegressionL1,
    /// Huber loss with `alpha`.
    Huber,
    /// Pinball loss at quantile `alpha`.
    Quantile,
    /// Poisson deviance (log link).
    Poisson,
    /// Tweedie deviance (log link).
    Tweedie,
    /// Log loss on 0/1 labels.
    Binary,
    /// Softmax over `num_class` classes.
    Multiclass,
    /// Cross-entropy on labels in [0, 1].
    CrossEntropy,
    /// LambdaRank with NDCG, over query groups.
    Lambdarank,
    /// A gradient and hessian supplied by the caller each iteration.
    Custom,
}

impl ObjectiveKind {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "regression" | "regression_l2" | "l2" | "mean_squared_error" | "mse" | "l2_root" | "root_mean_squared_error" | "rmse" => {
                ObjectiveKind::Regression
            }
            "regression_l1" | "l1" | "mean_absolute_error" | "mae" => ObjectiveKind::RegressionL1,
            "huber" => ObjectiveKind::Huber,
            "quantile" => ObjectiveKind::Quantile,
            "poisson" => ObjectiveKind::Poisson,
            "tweedie" => ObjectiveKind::Tweedie,
            "binary" => ObjectiveKind::Binary,
            "multiclass" | "softmax" => ObjectiveKind::Multiclass,
            "cross_entropy" | "xentropy" => ObjectiveKind::CrossEntropy,
            "lambdarank" => ObjectiveKind::Lambdarank,
            "custom" | "none" | "null" | "na" => ObjectiveKind::Custom,
            other => {
                return Err(Error::param(format!(
                    "unknown objective '{other}'{}; expected one of regression, regression_l1, huber, \
                     quantile, poisson, tweedie, binary, multiclass, cross_entropy",
                    suggest(other, OBJECTIVES)
                )))
            }
        })
    }

    /// The metric reported when none is asked for.
    pub fn default_metric(self) -> &'static str {
        match self {
            ObjectiveKind::Regression => "l2",
            ObjectiveKind::RegressionL1 => "l1",
            ObjectiveKind::Huber => "huber",
            ObjectiveKind::Quantile => "quantile",
            ObjectiveKind::Poisson => "poisson",
            ObjectiveKind::Tweedie => "tweedie",
            ObjectiveKind::Binary => "binary_logloss",
            ObjectiveKind::Multiclass => "multi_logloss",
            ObjectiveKind::CrossEntropy => "cross_entropy",
            ObjectiveKind::Lambdarank => "ndcg",
            ObjectiveKind::Custom => "",
        }
    }
}

const OBJECTIVES: &[&str] = &[
    "regression", "regression_l1", "huber", "quantile", "poisson", "tweedie", "binary", "multiclass",
    "cross_entropy", "lambdarank",
];

/// Every setting of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GbdtParams {
    pub objective: ObjectiveKind,
    pub num_class: usize,
    pub learning_rate: f64,
    pub num_leaves: usize,
    /// <= 0: no limit.
    pub max_depth: i64,
    /// Fewest rows a child may hold. As in LightGBM, a candidate split's row counts are estimated from
    /// the hessian sums of its histogram bins (a leaf's own count is exact).
    pub min_data_in_leaf: usize,
    pub min_sum_hessian_in_leaf: f64,
    pub lambda_l1: f64,
    pub lambda_l2: f64,
    pub min_gain_to_split: f64,
    /// <= 0: no limit.
    pub max_delta_step: f64,
    pub bagging_fraction: f64,
    pub bagging_freq: usize,
    pub bagging_seed: u64,
    pub feature_fraction: f64,
    pub feature_fraction_seed: u64,
    pub num_threads: i64,
    /// Metric names; empty = the objective's default.
    pub metric: Vec<String>,
    /// Huber delta / quantile level.
    pub alpha: f64,
    pub tweedie_variance_power: f64,
    pub sigmoid: f64,
    pub boost_from_average: bool,
    pub scale_pos_weight: f64,
    pub is_unbalance: bool,
    pub max_cat_to_onehot: usize,
    pub max_cat_threshold: usize,
    pub cat_smooth: f64,
    pub cat_l2: f64,
    pub min_data_per_group: usize,
    /// Per feature: +1 output must not decrease with the feature, -1 not increase, 0 free. Empty: none.
    pub monotone_constraints: Vec<i8>,
    /// Groups of feature indices allowed to interact on one branch. Empty: no constraint.
    pub interaction_constraints: Vec<Vec<usize>>,
    /// LambdaRank: only pairs with a document in the top this-many positions count.
    pub lambdarank_truncation_level: usize,
    /// LambdaRank: normalise each query's gradients.
    pub lambdarank_norm: bool,
    /// Gain of each relevance label (default 2^label - 1).
    pub label_gain: Vec<f64>,
    /// Cut-offs of the ndcg@k / map@k metrics.
    pub eval_at: Vec<usize>,
    /// Quantized training: gradients rounded (stochastically) to a few integer levels per round.
    pub use_quantized_grad: bool,
    /// Levels of quantized gradients.
    pub num_grad_quant_bins: usize,
    /// Refit leaf outputs from the exact gradients after a quantized tree is grown.
    pub quant_train_renew_leaf: bool,
    /// Gradient-based one-side sampling instead of bagging.
    pub goss: bool,
    /// GOSS: share of rows with the largest gradients kept.
    pub top_rate: f64,
    /// GOSS: share of the other rows sampled.
    pub other_rate: f64,
    /// Where the histograms are built: the CPU, or a CUDA device. How a model is computed, not part of
    /// it: not stored with the model (models from either device are byte-identical).
    #[serde(skip)]
    pub device: crate::gpu::Device,
    /// Dataset parameters (used when the training Dataset is built from raw data here).
    pub max_bin: usize,
    pub verbosity: i64,
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            device: crate::gpu::Device::Cpu,
            objective: ObjectiveKind::Regression,
            num_class: 1,
            learning_rate: 0.1,
            num_leaves: 31,
            max_depth: -1,
            min_data_in_leaf: 20,
            min_sum_hessian_in_leaf: 1e-3,
            lambda_l1: 0.0,
            lambda_l2: 0.0,
            min_gain_to_split: 0.0,
            max_delta_step: 0.0,
            bagging_fraction: 1.0,
            bagging_freq: 0,
            bagging_seed: 3,
            feature_fraction: 1.0,
            feature_fraction_seed: 2,
            num_threads: 0,
            metric: Vec::new(),
            alpha: 0.9,
            tweedie_variance_power: 1.5,
            sigmoid: 1.0,
            boost_from_average: true,
            scale_pos_weight: 1.0,
            is_unbalance: false,
            max_cat_to_onehot: 4,
            max_cat_threshold: 32,
            cat_smooth: 10.0,
            cat_l2: 10.0,
            min_data_per_group: 100,
            monotone_constraints: Vec::new(),
            interaction_constraints: Vec::new(),
            lambdarank_truncation_level: 30,
            lambdarank_norm: true,
            label_gain: (0..31).map(|i| ((1u64 << i) - 1) as f64).collect(),
            eval_at: vec![1, 2, 3, 4, 5],
            use_quantized_grad: false,
            num_grad_quant_bins: 4,
            quant_train_renew_leaf: false,
            goss: false,
            top_rate: 0.2,
            other_rate: 0.1,
            max_bin: 255,
            verbosity: 1,
        }
    }
}

/// (canonical name, aliases). Names handled by the Python layer (early stopping, callbacks) are
/// accepted here too so that one params dict serves both.
const NAMES: &[(&str, &[&str])] = &[
    ("objective", &["objective_type", "app", "application", "loss"]),
    ("boosting", &["boosting_type", "boost"]),
    ("num_class", &["num_classes"]),
    ("learning_rate", &["shrinkage_rate", "eta"]),
    ("num_leaves", &["num_leaf", "max_leaves", "max_leaf", "max_leaf_nodes"]),
    ("max_depth", &[]),
    ("min_data_in_leaf", &["min_data_per_leaf", "min_data", "min_child_samples", "min_samples_leaf"]),
    ("min_sum_hessian_in_leaf", &["min_sum_hessian_per_leaf", "min_sum_hessian", "min_hessian", "min_child_weight"]),
    ("lambda_l1", &["reg_alpha", "l1_regularization"]),
    ("lambda_l2", &["reg_lambda", "lambda", "l2_regularization"]),
    ("min_gain_to_split", &["min_split_gain"]),
    ("max_delta_step", &["max_tree_output", "max_leaf_output"]),
    ("bagging_fraction", &["sub_row", "subsample", "bagging"]),
    ("bagging_freq", &["subsample_freq"]),
    ("bagging_seed", &["bagging_fraction_seed"]),
    ("feature_fraction", &["sub_feature", "colsample_bytree"]),
    ("feature_fraction_seed", &[]),
    ("seed", &["random_seed", "random_state"]),
    ("num_threads", &["num_thread", "nthread", "nthreads", "n_jobs"]),
    ("device", &["device_type"]),
    ("metric", &["metrics", "metric_types"]),
    ("alpha", &[]),
    ("tweedie_variance_power", &[]),
    ("sigmoid", &[]),
    ("boost_from_average", &[]),
    ("scale_pos_weight", &[]),
    ("is_unbalance", &["unbalance", "unbalanced_sets"]),
    ("max_cat_to_onehot", &[]),
    ("max_cat_threshold", &[]),
    ("cat_smooth", &[]),
    ("cat_l2", &[]),
    ("min_data_per_group", &[]),
    ("monotone_constraints", &["mc", "monotone_constraint", "monotonic_cst"]),
    ("interaction_constraints", &[]),
    ("data_sample_strategy", &[]),
    ("lambdarank_truncation_level", &[]),
    ("lambdarank_norm", &[]),
    ("label_gain", &[]),
    ("eval_at", &["ndcg_eval_at", "ndcg_at", "map_eval_at", "map_at"]),
    ("top_rate", &[]),
    ("use_quantized_grad", &[]),
    ("num_grad_quant_bins", &[]),
    ("quant_train_renew_leaf", &[]),
    ("stochastic_rounding", &[]),
    ("other_rate", &[]),
    ("max_bin", &["max_bins"]),
    ("verbosity", &["verbose"]),
    ("num_iterations", &["num_iteration", "n_iter", "num_tree", "num_trees", "num_round", "num_rounds", "nrounds", "num_boost_round", "n_estimators", "max_iter"]),
    ("early_stopping_round", &["early_stopping_rounds", "early_stopping", "n_iter_no_change"]),
    ("first_metric_only", &[]),
    ("bin_construct_sample_cnt", &["subsample_for_bin"]),
    ("data_random_seed", &["data_seed"]),
    ("min_data_in_bin", &[]),
    ("deterministic", &[]),
    ("force_col_wise", &[]),
    ("force_row_wise", &[]),
];

/// The canonical name of a parameter or alias.
pub fn canonical(name: &str) -> Option<&'static str> {
    NAMES.iter().find(|(n, aliases)| *n == name || aliases.contains(&name)).map(|(n, _)| *n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + (ca != cb) as usize).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// "; did you mean 'x'?" for the closest candidate, or "".
pub fn suggest(name: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min()
        .map(|(_, c)| format!("; did you mean '{c}'?"))
        .unwrap_or_default()
}

fn all_names() -> Vec<&'static str> {
    NAMES.iter().flat_map(|(n, a)| std::iter::once(*n).chain(a.iter().copied())).collect()
}

fn as_f64(name: &str, v: &ParamValue) -> Result<f64> {
    match v {
        ParamValue::Float(f) => Ok(*f),
        ParamValue::Int(i) => Ok(*i as f64),
        ParamValue::Str(s) => s.trim().parse().map_err(|_| Error::param(format!("{name} must be a number, got '{s}'"))),
        other => Err(Error::param(format!("{name} must be a number, got {other:?}"))),
    }
}

fn as_i64(name: &str, v: &ParamValue) -> Result<i64> {
    match v {
        ParamValue::Int(i) => Ok(*i),
        ParamValue::Float(f) if f.fract() == 0.0 && f.is_finite() => Ok(*f as i64),
        ParamValue::Str(s) => s.trim().parse().map_err(|_| Error::param(format!("{name} must be an integer, got '{s}'"))),
        other => Err(Error::param(format!("{name} must be an integer, got {other:?}"))),
    }
}

fn as_bool(name: &str, v: &ParamValue) -> Result<bool> {
    match v {
        ParamValue::Bool(b) => Ok(*b),
        ParamValue::Int(0) => Ok(false),
        ParamValue::Int(1) => Ok(true),
        ParamValue::Str(s) if s == "true" || s == "True" => Ok(true),
        ParamValue::Str(s) if s == "false" || s == "False" => Ok(false),
        other => Err(Error::param(format!("{name} must be true or false, got {other:?}"))),
    }
}

fn as_strings(name: &str, v: &ParamValue) -> Result<Vec<String>> {
    match v {
        ParamValue::Str(s) => Ok(s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()),
        ParamValue::List(items) => items
            .iter()
            .map(|i| match i {
                ParamValue::Str(s) => Ok(s.clone()),
                other => Err(Error::param(format!("{name} must hold strings, got {other:?}"))),
            })
            .collect(),
        ParamValue::None => Ok(Vec::new()),
        other => Err(Error::param(format!("{name} must be a string or a list of strings, got {other:?}"))),
    }
}

fn as_int_list(name: &str, v: &ParamValue) -> Result<Vec<i64>> {
    match v {
        ParamValue::List(items) => items.iter().map(|i| as_i64(name, i)).collect(),
        ParamValue::Str(s) => s.split(',').filter(|p| !p.trim().is_empty()).map(|p| as_i64(name, &ParamValue::Str(p.to_string()))).collect(),
        other => Err(Error::param(format!("{name} must be a list of integers, got {other:?}"))),
    }
}

fn non_neg(name: &str, v: i64) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::param(format!("{name} must be >= 0, got {v}")))
}

/// Parameters the trainer itself leaves to the caller (the boosting loop in Python): read, not stored.
pub const CALLER_PARAMS: &[&str] =
    &["num_iterations", "early_stopping_round", "first_metric_only", "deterministic", "force_col_wise", "force_row_wise"];

impl GbdtParams {
    /// Parses `(name, value)` pairs; later pairs override earlier ones. Unknown names are an error
    /// naming the closest valid one; two aliases of one parameter with different values are an error.
    pub fn from_pairs(pairs: &[(String, ParamValue)]) -> Result<Self> {
        let mut p = GbdtParams::default();
        let mut seen: Vec<(&'static str, &str, &ParamValue)> = Vec::new();
        let mut seed: Option<u64> = None;
        for (name, value) in pairs {
            let Some(canon) = canonical(name) else {
                return Err(Error::param(format!("unknown parameter '{name}'{}", suggest(name, &all_names()))));
            };
            if let Some((_, other, prev)) = seen.iter().find(|(c, _, _)| *c == canon) {
                if *prev != value && other != name {
                    return Err(Error::param(format!(
                        "'{other}' and '{name}' are the same parameter ({canon}) with different values"
                    )));
                }
            }
            seen.push((canon, name, value));
            if matches!(value, ParamValue::None) {
                continue;
            }
            let n = name.as_str();
            match canon {
                "objective" => {
                    p.objective = match value {
                        ParamValue::Str(s) => ObjectiveKind::parse(s)?,
                        other => return Err(Error::param(format!("objective must be a string, got {other:?}"))),
                    }
                }
                "boosting" => match value {
                    ParamValue::Str(s) if s == "gbdt" || s == "gbrt" => {}
                    ParamValue::Str(s) if s == "goss" => p.goss = true,
                    other => return Err(Error::param(format!("boosting {other:?} is not supported; use 'gbdt' (or 'goss')"))),
                },
                "data_sample_strategy" => match value {
                    ParamValue::Str(s) if s == "bagging" => p.goss = false,
                    ParamValue::Str(s) if s == "goss" => p.goss = true,
                    other => return Err(Error::param(format!("data_sample_strategy must be 'bagging' or 'goss', got {other:?}"))),
                },
                "top_rate" => p.top_rate = as_f64(n, value)?,
                "use_quantized_grad" => p.use_quantized_grad = as_bool(n, value)?,
                "num_grad_quant_bins" => p.num_grad_quant_bins = non_neg(n, as_i64(n, value)?)?,
                "quant_train_renew_leaf" => p.quant_train_renew_leaf = as_bool(n, value)?,
                "stochastic_rounding" => {
                    if !as_bool(n, value)? {
                        return Err(Error::param("stochastic_rounding=false is not supported: quantized gradients are always rounded stochastically (deterministically seeded)"));
                    }
                }
                "lambdarank_truncation_level" => p.lambdarank_truncation_level = non_neg(n, as_i64(n, value)?)?,
                "lambdarank_norm" => p.lambdarank_norm = as_bool(n, value)?,
                "label_gain" => {
                    p.label_gain = match value {
                        ParamValue::List(items) => items.iter().map(|i| as_f64(n, i)).collect::<Result<_>>()?,
                        ParamValue::Str(s) => s.split(',').map(|x| as_f64(n, &ParamValue::Str(x.to_string()))).collect::<Result<_>>()?,
                        other => return Err(Error::param(format!("{n} must be a list of numbers, got {other:?}"))),
                    }
                }
                "eval_at" => {
                    p.eval_at = as_int_list(n, value)?.into_iter().map(|k| non_neg(n, k)).collect::<Result<_>>()?;
                    if p.eval_at.contains(&0) {
                        return Err(Error::param(format!("{n} positions must be >= 1")));
                    }
                }
                "other_rate" => p.other_rate = as_f64(n, value)?,
                "monotone_constraints" => {
                    p.monotone_constraints = as_int_list(n, value)?
                        .into_iter()
                        .map(|v| match v {
                            -1..=1 => Ok(v as i8),
                            _ => Err(Error::param(format!("{n} holds {v}; each must be -1, 0 or 1"))),
                        })
                        .collect::<Result<_>>()?
                }
                "interaction_constraints" => {
                    let ParamValue::List(groups) = value else {
                        return Err(Error::param(format!("{n} must be a list of lists of feature indices")));
                    };
                    p.interaction_constraints = groups
                        .iter()
                        .map(|g| as_int_list(n, g)?.into_iter().map(|i| non_neg(n, i)).collect::<Result<Vec<_>>>())
                        .collect::<Result<_>>()?;
                }
                "num_class" => p.num_class = non_neg(n, as_i64(n, value)?)?,
                "learning_rate" => p.learning_rate = as_f64(n, value)?,
                "num_leaves" => p.num_leaves = non_neg(n, as_i64(n, value)?)?,
                "max_depth" => p.max_depth = as_i64(n, value)?,
                "min_data_in_leaf" => p.min_data_in_leaf = non_neg(n, as_i64(n, value)?)?,
                "min_sum_hessian_in_leaf" => p.min_sum_hessian_in_leaf = as_f64(n, value)?,
                "lambda_l1" => p.lambda_l1 = as_f64(n, value)?,
                "lambda_l2" => p.lambda_l2 = as_f64(n, value)?,
                "min_gain_to_split" => p.min_gain_to_split = as_f64(n, value)?,
                "max_delta_step" => p.max_delta_step = as_f64(n, value)?,
                "bagging_fraction" => p.bagging_fraction = as_f64(n, value)?,
                "bagging_freq" => p.bagging_freq = non_neg(n, as_i64(n, value)?)?,
                "bagging_seed" => p.bagging_seed = as_i64(n, value)? as u64,
                "feature_fraction" => p.feature_fraction = as_f64(n, value)?,
                "feature_fraction_seed" => p.feature_fraction_seed = as_i64(n, value)? as u64,
                "seed" => seed = Some(as_i64(n, value)? as u64),
                "num_threads" => p.num_threads = as_i64(n, value)?,
                "device" => {
                    p.device = match value {
                        ParamValue::Str(s) => crate::gpu::Device::parse(s)?,
                        other => return Err(Error::param(format!("{n} must be a string such as 'cpu' or 'cuda', got {other:?}"))),
                    }
                }
                "metric" => p.metric = as_strings(n, value)?,
                "alpha" => p.alpha = as_f64(n, value)?,
                "tweedie_variance_power" => p.tweedie_variance_power = as_f64(n, value)?,
                "sigmoid" => p.sigmoid = as_f64(n, value)?,
                "boost_from_average" => p.boost_from_average = as_bool(n, value)?,
                "scale_pos_weight" => p.scale_pos_weight = as_f64(n, value)?,
                "is_unbalance" => p.is_unbalance = as_bool(n, value)?,
                "max_cat_to_onehot" => p.max_cat_to_onehot = non_neg(n, as_i64(n, value)?)?,
                "max_cat_threshold" => p.max_cat_threshold = non_neg(n, as_i64(n, value)?)?,
                "cat_smooth" => p.cat_smooth = as_f64(n, value)?,
                "cat_l2" => p.cat_l2 = as_f64(n, value)?,
                "min_data_per_group" => p.min_data_per_group = non_neg(n, as_i64(n, value)?)?,
                "max_bin" => p.max_bin = non_neg(n, as_i64(n, value)?)?,
                "verbosity" => p.verbosity = as_i64(n, value)?,
                // Dataset and caller-side parameters: accepted, used elsewhere.
                _ => {}
            }
        }
        if let Some(s) = seed {
            // As LightGBM: `seed` derives the other seeds unless they were given explicitly.
            let given = |c: &str| seen.iter().any(|(k, _, _)| *k == c);
            if !given("bagging_seed") {
                p.bagging_seed = s.wrapping_mul(0x9E37_79B9).wrapping_add(3);
            }
            if !given("feature_fraction_seed") {
                p.feature_fraction_seed = s.wrapping_mul(0x85EB_CA6B).wrapping_add(2);
            }
        }
        if p.objective != ObjectiveKind::Multiclass && !seen.iter().any(|(k, _, _)| *k == "num_class") {
            p.num_class = 1;
        }
        p.validate()?;
        Ok(p)
    }

    /// Range checks, each naming the parameter.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &str, want: &str, got: String| Err(Error::param(format!("{name} must be {want}, got {got}")));
        if self.num_leaves < 2 || self.num_leaves > 131_072 {
            return bad("num_leaves", "in 2..=131072", self.num_leaves.to_string());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", "> 0", self.learning_rate.to_string());
        }
        if !(self.bagging_fraction > 0.0 && self.bagging_fraction <= 1.0) {
            return bad("bagging_fraction", "in (0, 1]", self.bagging_fraction.to_string());
        }
        if !(self.feature_fraction > 0.0 && self.feature_fraction <= 1.0) {
            return bad("feature_fraction", "in (0, 1]", self.feature_fraction.to_string());
        }
        for (name, v) in [
            ("lambda_l1", self.lambda_l1),
            ("lambda_l2", self.lambda_l2),
            ("min_gain_to_split", self.min_gain_to_split),
            ("min_sum_hessian_in_leaf", self.min_sum_hessian_in_leaf),
            ("cat_smooth", self.cat_smooth),
            ("cat_l2", self.cat_l2),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(name, ">= 0", v.to_string());
            }
        }
        match self.objective {
            ObjectiveKind::Multiclass if self.num_class < 2 => {
                return bad("num_class", ">= 2 for multiclass", self.num_class.to_string())
            }
            ObjectiveKind::Multiclass => {}
            _ if self.num_class != 1 => {
                return bad("num_class", "1 unless the objective is multiclass", self.num_class.to_string())
            }
            _ => {}
        }
        if matches!(self.objective, ObjectiveKind::Quantile) && !(self.alpha > 0.0 && self.alpha < 1.0) {
            return bad("alpha", "in (0, 1) for the quantile objective", self.alpha.to_string());
        }
        if matches!(self.objective, ObjectiveKind::Huber) && !(self.alpha > 0.0) {
            return bad("alpha", "> 0 for the huber objective", self.alpha.to_string());
        }
        if matches!(self.objective, ObjectiveKind::Tweedie)
            && !(self.tweedie_variance_power >= 1.0 && self.tweedie_variance_power < 2.0)
        {
            return bad("tweedie_variance_power", "in [1, 2)", self.tweedie_variance_power.to_string());
        }
        if self.goss {
            if !(self.top_rate > 0.0 && self.other_rate > 0.0 && self.top_rate + self.other_rate <= 1.0) {
                return Err(Error::param(format!(
                    "GOSS needs top_rate > 0, other_rate > 0 and top_rate + other_rate <= 1, got {} and {}",
                    self.top_rate, self.other_rate
                )));
            }
            if self.bagging_freq > 0 && self.bagging_fraction < 1.0 {
                return Err(Error::param("GOSS and bagging (bagging_fraction < 1 with bagging_freq > 0) cannot be combined"));
            }
        }
        if self.use_quantized_grad && !(2..=64).contains(&self.num_grad_quant_bins) {
            return bad("num_grad_quant_bins", "in 2..=64", self.num_grad_quant_bins.to_string());
        }
        if !(self.sigmoid > 0.0) {
            return bad("sigmoid", "> 0", self.sigmoid.to_string());
        }
        if !(self.scale_pos_weight > 0.0) {
            return bad("scale_pos_weight", "> 0", self.scale_pos_weight.to_string());
        }
        Ok(())
    }

    /// Checks the per-feature parameters against the number of features.
    pub fn validate_features(&self, num_features: usize) -> Result<()> {
        if !self.monotone_constraints.is_empty() && self.monotone_constraints.len() != num_features {
            return Err(Error::param(format!(
                "monotone_constraints has {} entries but the data has {num_features} features",
                self.monotone_constraints.len()
            )));
        }
        for g in &self.interaction_constraints {
            if let Some(&f) = g.iter().find(|&&f| f >= num_features) {
                return Err(Error::param(format!(
                    "interaction_constraints names feature {f}, but the data has {num_features} features"
                )));
            }
        }
        Ok(())
    }

    /// Trees grown per boosting round.
    pub fn trees_per_iteration(&self) -> usize {
        if self.objective == ObjectiveKind::Multiclass {
            self.num_class
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, ParamValue)]) -> Vec<(String, ParamValue)> {
        v.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn aliases_resolve() {
        let p = GbdtParams::from_pairs(&pairs(&[
            ("objective", ParamValue::Str("binary".into())),
            ("eta", ParamValue::Float(0.05)),
            ("min_child_samples", ParamValue::Int(7)),
            ("reg_lambda", ParamValue::Int(2)),
            ("subsample", ParamValue::Float(0.5)),
            ("n_estimators", ParamValue::Int(10)),
        ]))
        .unwrap();
        assert_eq!(p.objective, ObjectiveKind::Binary);
        assert_eq!(p.learning_rate, 0.05);
        assert_eq!(p.min_data_in_leaf, 7);
        assert_eq!(p.lambda_l2, 2.0);
        assert_eq!(p.bagging_fraction, 0.5);
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let e = GbdtParams::from_pairs(&pairs(&[("num_leave", ParamValue::Int(3))])).unwrap_err();
        assert!(e.to_string().contains("did you mean 'num_leaves'"), "{e}");
        let e = GbdtParams::from_pairs(&pairs(&[("objective", ParamValue::Str("binar".into()))])).unwrap_err();
        assert!(e.to_string().contains("'binary'"), "{e}");
    }

    #[test]
    fn ranges_name_the_parameter() {
        for (k, v, msg) in [
            ("num_leaves", ParamValue::Int(1), "num_leaves"),
            ("learning_rate", ParamValue::Float(0.0), "learning_rate"),
            ("bagging_fraction", ParamValue::Float(1.5), "bagging_fraction"),
            ("lambda_l2", ParamValue::Float(-1.0), "lambda_l2"),
            ("min_data_in_leaf", ParamValue::Int(-1), "min_data_in_leaf"),
        ] {
            let e = GbdtParams::from_pairs(&pairs(&[(k, v)])).unwrap_err();
            assert!(e.to_string().contains(msg), "{e}");
        }
        let e = GbdtParams::from_pairs(&pairs(&[("objective", ParamValue::Str("multiclass".into()))])).unwrap_err();
        assert!(e.to_string().contains("num_class"), "{e}");
    }

    #[test]
    fn conflicting_aliases_are_refused() {
        let e = GbdtParams::from_pairs(&pairs(&[("eta", ParamValue::Float(0.1)), ("learning_rate", ParamValue::Float(0.2))]))
            .unwrap_err();
        assert!(e.to_string().contains("same parameter"), "{e}");
    }
}
