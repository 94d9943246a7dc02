//! The boosting loop: one [`Trainer::update`] per round (the caller drives rounds, callbacks and early
//! stopping), and the fitted [`Model`].

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::learner::{add_leaf_values_at, fixed_scale, to_fixed, Buffers, Gradients, GroupedBins, Learner, SplitRules, Sums};
use crate::gpu::learner::GradMode;
use super::metric::Metric;
use super::objective::{weighted_quantile, Objective};
use super::params::{GbdtParams, ObjectiveKind};
use super::tree::Tree;
use crate::data::sample::{keyed_uniform, SplitMix64};
use crate::data::{BinMapper, Dataset};
use crate::error::{Error, Result};
use crate::predict::OutputTransform;

/// Rows per task when pairing gradients with hessians.
const PAIR_CHUNK: usize = 16_384;

/// A fitted gradient-boosted model: what `Booster` saves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Trees, round by round; within a round, one per class.
    pub trees: Vec<Tree>,
    /// Scores per row: 1, or the number of classes.
    pub num_scores: usize,
    /// Raw score before any tree, per class.
    pub base_score: Vec<f64>,
    /// How raw scores become predictions.
    pub transform: OutputTransform,
    /// The objective trained.
    pub objective: ObjectiveKind,
    /// Feature names, in column order.
    pub feature_names: Vec<String>,
    /// Bin rules of the training data (categories of categorical features live here).
    pub mappers: Vec<BinMapper>,
    /// Best round by the early-stopping metric (1-based), 0 when none was recorded.
    pub best_iteration: usize,
    /// The parameters trained with.
    pub params: GbdtParams,
    /// Raw scores are the mean, not the sum, of the trees (random-forest models imported from LightGBM).
    #[serde(default)]
    pub average_output: bool,
    /// Scores are summed in float32, as the source library did (XGBoost models).
    #[serde(default)]
    pub accumulate_f32: bool,
    /// Free-form text a front end stores with the model (the estimator's parameters, as JSON).
    #[serde(default)]
    pub meta: String,
}

impl Model {
    /// Completed rounds.
    pub fn num_iterations(&self) -> usize {
        self.trees.len() / self.num_scores.max(1)
    }

    /// Trees used when predicting with `num_iteration` (None or 0: the best iteration when recorded,
    /// else all).
    pub fn trees_for(&self, num_iteration: Option<usize>) -> usize {
        let rounds = match num_iteration {
            Some(k) if k > 0 => k.min(self.num_iterations()),
            _ if self.best_iteration > 0 => self.best_iteration.min(self.num_iterations()),
            _ => self.num_iterations(),
        };
        rounds * self.num_scores
    }

    /// Split counts ("split") or total gains ("gain") per feature over the first `num_iteration` rounds.
    pub fn feature_importance(&self, gain: bool, num_iteration: Option<usize>) -> Vec<f64> {
        let mut out = vec![0.0; self.feature_names.len()];
        for t in &self.trees[..self.trees_for(num_iteration)] {
            for n in &t.nodes {
                out[n.feature as usize] += if gain { n.gain } else { 1.0 };
            }
        }
        out
    }
}

/// Training state across rounds.
pub struct Trainer {
    params: GbdtParams,
    objective: Objective,
    train: Arc<Dataset>,
    valids: Vec<Arc<Dataset>>,
    scores: Vec<f64>,
    valid_scores: Vec<Vec<f64>>,
    grad: Vec<f32>,
    hess: Vec<f32>,
    metrics: Vec<Metric>,
    model: Model,
    pool: rayon::ThreadPool,
    bag: Option<Vec<u32>>,
    /// Set once no tree can split any more.
    finished: bool,
    /// Quantized gradient and hessian of each row of the current class (quantized training).
    qgh: Vec<(i8, u8)>,
    /// Fixed-point gradient and hessian side by side (what the exact histograms read).
    gh: Vec<[i32; 2]>,
    /// The training bins, four features to a record (one-byte bins only).
    grouped: Option<GroupedBins>,
    /// The learner's row buffers between rounds.
    buffers: Buffers,
    /// The device that builds histograms and partitions when training is not on the CPU.
    device: Option<Box<dyn crate::gpu::learner::DeviceLearner>>,
}

/// A uniform draw in [0, 1) from a seed and a row: the same for a row whatever thread handles it.
#[inline]
fn row_uniform(seed: u64, row: usize) -> f64 {
    keyed_uniform(seed, row as u64)
}

/// The largest |gradient| and hessian of a plane (a maximum does not depend on the order).
pub fn max_abs(g: &[f32], h: &[f32]) -> (f64, f64) {
    let (mg, mh) = g
        .par_chunks(PAIR_CHUNK)
        .zip(h.par_chunks(PAIR_CHUNK))
        .map(|(g, h)| (g.iter().fold(0f32, |m, v| m.max(v.abs())), h.iter().fold(0f32, |m, v| m.max(v.abs()))))
        .reduce(|| (0.0, 0.0), |a, b| (a.0.max(b.0), a.1.max(b.1)));
    (mg as f64, mh as f64)
}

/// Fills `gh` with the fixed-point pairs of `g` and `h` at the scales of largest magnitudes `max`
/// (see [`fixed_scale`]); returns the value of one unit of each.
pub fn fill_fixed(g: &[f32], h: &[f32], max: (f64, f64), gh: &mut Vec<[i32; 2]>) -> (f64, f64) {
    let (gs, hs) = (fixed_scale(max.0), fixed_scale(max.1));
    if gh.len() != g.len() {
        *gh = crate::mem::zeroed(g.len(), [0; 2]);
    }
    gh.par_chunks_mut(PAIR_CHUNK).zip(g.par_chunks(PAIR_CHUNK).zip(h.par_chunks(PAIR_CHUNK))).for_each(|(o, (g, h))| {
        for (o, (&g, &h)) in o.iter_mut().zip(g.iter().zip(h)) {
            *o = [to_fixed(g, gs), to_fixed(h, hs)];
        }
    });
    // Powers of two: their inverses are exact.
    (1.0 / gs, 1.0 / hs)
}

/// The seed of the bag used at round `it` (bags are redrawn every `bagging_freq` rounds).
pub fn bag_seed(p: &GbdtParams, it: usize) -> u64 {
    let drawn = it - it % p.bagging_freq.max(1);
    p.bagging_seed.wrapping_add(drawn as u64 * 0x9E37_79B9)
}

/// The bag: the rows whose draw, keyed by the row's identity (`ids[r]`, or its position), falls below
/// `fraction`. A row's membership depends on nothing else, so shards of the data draw their part of
/// the same bag. Ascending positions.
pub fn bag_rows(n: usize, ids: Option<&[u64]>, fraction: f64, seed: u64) -> Vec<u32> {
    let parts: Vec<Vec<u32>> = (0..n.div_ceil(PAIR_CHUNK))
        .into_par_iter()
        .map(|c| {
            (c * PAIR_CHUNK..((c + 1) * PAIR_CHUNK).min(n))
                .filter(|&r| keyed_uniform(seed, ids.map_or(r as u64, |ids| ids[r])) < fraction)
                .map(|r| r as u32)
                .collect()
        })
        .collect();
    parts.concat()
}

/// The features a tree may split on: those with more than one bin, less the ones feature_fraction
/// leaves out of tree `tree_index` (drawn from the seed and the tree's index only).
pub fn active_features(mappers: &[BinMapper], params: &GbdtParams, tree_index: usize) -> Vec<bool> {
    let nf = mappers.len();
    let mut active: Vec<bool> = mappers.iter().map(|m| m.num_bins() > 1).collect();
    let ff = params.feature_fraction;
    if ff < 1.0 {
        let want = ((nf as f64) * ff).round().max(1.0) as usize;
        let mut rng = SplitMix64::new(params.feature_fraction_seed.wrapping_add(tree_index as u64 * 0x2545_F491));
        // Partial Fisher-Yates over feature indices: the first `want` are kept.
        let mut idx: Vec<usize> = (0..nf).collect();
        for i in 0..want.min(nf) {
            let j = i + (rng.next_u64() % (nf - i) as u64) as usize;
            idx.swap(i, j);
        }
        let mut keep = vec![false; nf];
        for &i in &idx[..want.min(nf)] {
            keep[i] = true;
        }
        for (a, k) in active.iter_mut().zip(keep) {
            *a &= k;
        }
    }
    active
}

/// Applies the learning rate to a grown tree's outputs.
pub fn shrink(tree: &mut Tree, lr: f64) {
    for v in tree.leaf_value.iter_mut() {
        *v *= lr;
    }
    for node in tree.nodes.iter_mut() {
        node.value *= lr;
    }
}

/// The scales of quantized gradients and hessians from their largest magnitudes: a gradient level
/// is `max_g / (bins / 2)`, a hessian level `max_h / bins` (1 when the maximum is 0).
pub fn quant_scales(max_g: f64, max_h: f64, bins: usize) -> (f64, f64) {
    let half = (bins / 2) as f64;
    let gs = if max_g > 0.0 { max_g / half } else { 1.0 };
    let hs = if max_h > 0.0 { max_h / bins as f64 } else { 1.0 };
    (gs, hs)
}

/// The seed of the hessians' rounding draws, from the gradients'.
pub fn hessian_seed(seed: u64) -> u64 {
    seed ^ 0xA076_1D64_78BD_642F
}

/// The seed of the quantization draws of tree `c` of round `it` (k trees a round).
pub fn quant_seed(p: &GbdtParams, it: usize, k: usize, c: usize) -> u64 {
    p.bagging_seed ^ ((it * k + c) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Rounds gradients to integers in [-bins/2, bins/2] and hessians to [0, bins], stochastically
/// (unbiased: E[rounded] = exact / scale), a row's two side by side. Returns the two scales.
fn quantize(g: &[f32], h: &[f32], bins: usize, seed: u64, out: &mut Vec<(i8, u8)>) -> (f64, f64) {
    const CH: usize = 4096;
    // Largest magnitudes, chunk by chunk in parallel (a maximum does not depend on the order).
    let (max_g, max_h) = g
        .par_chunks(CH)
        .zip(h.par_chunks(CH))
        .map(|(g, h)| (g.iter().fold(0f32, |m, v| m.max(v.abs())), h.iter().fold(0f32, |m, v| m.max(*v))))
        .reduce(|| (0.0, 0.0), |a, b| (a.0.max(b.0), a.1.max(b.1)));
    let (gs, hs) = quant_scales(max_g as f64, max_h as f64, bins);
    let half = (bins / 2) as f64;
    // floor() without a library call (the values are small): truncate, then step down below zero.
    let floor = |y: f64| {
        let t = y as i32 as f64;
        if t > y { t - 1.0 } else { t }
    };
    out.resize(g.len(), (0, 0));
    out.par_chunks_mut(CH).enumerate().for_each(|(c, out)| {
        for (k, o) in out.iter_mut().enumerate() {
            let i = c * CH + k;
            let u = row_uniform(seed, i);
            let qg = floor(g[i] as f64 / gs + u).clamp(-half, half) as i8;
            let v = row_uniform(hessian_seed(seed), i);
            let qh = floor(h[i] as f64 / hs + v).clamp(0.0, bins as f64) as u8;
            *o = (qg, qh);
        }
    });
    (gs, hs)
}

/// [`quantize`], for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) fn quantize_for_tests(g: &[f32], h: &[f32], bins: usize, seed: u64, out: &mut Vec<(i8, u8)>) -> (f64, f64) {
    quantize(g, h, bins, seed, out)
}

/// The metrics `params` ask for (the objective's default when none), without repeats.
pub(crate) fn parse_metrics(params: &GbdtParams) -> Result<Vec<Metric>> {
    let metric_names: Vec<String> = if params.metric.is_empty() {
        let d = params.objective.default_metric();
        if d.is_empty() { vec![] } else { vec![d.to_string()] }
    } else {
        params.metric.iter().filter(|m| !matches!(m.as_str(), "None" | "none" | "null" | "custom" | "na" | "")).cloned().collect()
    };
    let mut metrics = Vec::new();
    for m in &metric_names {
        for parsed in Metric::parse_all(m, params.alpha, &params.eval_at)? {
            if !metrics.contains(&parsed) {
                metrics.push(parsed);
            }
        }
    }
    Ok(metrics)
}

/// Starting raw scores of `d` (class-major): its init_score plus the base score, or the base score.
pub(crate) fn start_scores(d: &Dataset, base_score: &[f64], what: &str) -> Result<Vec<f64>> {
    let (dn, k) = (d.num_data(), base_score.len());
    match &d.init_score {
        Some(s) if s.len() == k * dn => Ok(s.iter().zip(base_score.iter().flat_map(|&b| std::iter::repeat_n(b, dn))).map(|(a, b)| a + b).collect()),
        Some(s) => Err(Error::data(format!(
            "the {what} init_score has {} values; expected {} ({dn} rows x {k} scores)",
            s.len(),
            k * dn
        ))),
        None => Ok(base_score.iter().flat_map(|&b| std::iter::repeat_n(b, dn)).collect()),
    }
}

/// Metric values on one data set: (name, value, higher is better).
pub(crate) fn eval_metrics(metrics: &[Metric], ds: &Dataset, scores: &[f64], model: &Model, params: &GbdtParams) -> Vec<(String, f64, bool)> {
    let label = ds.label.as_deref().unwrap_or(&[]);
    let q = ds.query_boundaries();
    metrics
        .iter()
        .map(|m| (m.name(), m.eval(scores, label, ds.weight.as_deref(), model.transform, q.as_deref(), &params.label_gain), m.higher_better()))
        .collect()
}

pub(crate) fn need_label<'a>(d: &'a Dataset, what: &str) -> Result<&'a [f64]> {
    d.label.as_deref().ok_or_else(|| Error::data(format!("the {what} Dataset has no label; pass label= when building it")))
}

impl Trainer {
    /// Starts training on `train`, tracking `valids` (built with `reference=train`), optionally
    /// continuing `init_model` (which must have been trained on data binned like `train`).
    pub fn new(params: GbdtParams, train: Arc<Dataset>, valids: Vec<Arc<Dataset>>, init_model: Option<Model>) -> Result<Self> {
        params.validate()?;
        params.validate_features(train.num_features())?;
        let label = need_label(&train, "training")?;
        let n = train.num_data();
        let objective = Objective::new(&params, label, train.weight.as_deref(), train.query_boundaries())?;
        for (i, v) in valids.iter().enumerate() {
            let vl = need_label(v, &format!("validation set {i}"))?;
            if v.mappers != train.mappers {
                return Err(Error::data(format!(
                    "validation set {i} was binned differently from the training data; build it with \
                     reference=<training Dataset>"
                )));
            }
            Objective::new(&params, vl, v.weight.as_deref(), v.query_boundaries())
                .map_err(|e| Error::data(format!("validation set {i}: {e}")))?;
        }
        let metrics = parse_metrics(&params)?;
        let k = objective.num_scores();
        let base_score = match &init_model {
            Some(m) => {
                if m.mappers != train.mappers || m.num_scores != k {
                    return Err(Error::data(
                        "init_model was trained on data binned differently (or for another number of \
                         classes); continue training on the same Dataset, or one built with reference= \
                         to it",
                    ));
                }
                m.base_score.clone()
            }
            None => objective.init_scores(label, train.weight.as_deref(), params.boost_from_average),
        };
        // A Dataset's init_score replaces the average as the starting score (and is not part of the
        // model, as in LightGBM).
        let base_score = if train.init_score.is_some() && init_model.is_none() { vec![0.0; k] } else { base_score };
        let start = |d: &Dataset, what: &str| start_scores(d, &base_score, what);
        let mut scores = start(&train, "training")?;
        let mut valid_scores: Vec<Vec<f64>> =
            valids.iter().enumerate().map(|(i, v)| start(v, &format!("validation set {i}"))).collect::<Result<_>>()?;
        // Held for the whole training: concurrent default-thread calls share the cores.
        let lease = crate::parallel::lease(params.num_threads);
        let threads = lease.threads();
        let pool = crate::parallel::pool(threads)?;
        let mut model = Model {
            trees: Vec::new(),
            num_scores: k,
            base_score,
            transform: objective.transform(),
            objective: params.objective,
            feature_names: train.feature_names.clone(),
            mappers: train.mappers.clone(),
            best_iteration: 0,
            // The thread count is how a model was computed, not part of it: models trained with any
            // number of threads are byte-identical.
            params: GbdtParams { num_threads: 0, device: crate::gpu::Device::Cpu, ..params.clone() },
            average_output: false,
            accumulate_f32: false,
            meta: String::new(),
        };
        if let Some(m) = init_model {
            pool.install(|| {
                for (t, tree) in m.trees.iter().enumerate() {
                    let c = t % k;
                    tree.add_to_scores(&train, &mut scores[c * n..(c + 1) * n], None);
                    for (v, vs) in valids.iter().zip(valid_scores.iter_mut()) {
                        let vn = v.num_data();
                        tree.add_to_scores(v, &mut vs[c * vn..(c + 1) * vn], None);
                    }
                }
            });
            model.trees = m.trees;
        }
        let device: Option<Box<dyn crate::gpu::learner::DeviceLearner>> = match params.device {
            crate::gpu::Device::Cpu => None,
            d => Some(Box::new(crate::gpu::learner::GpuLearner::new(crate::gpu::gpu_of(d)?, train.clone())?)),
        };
        let grouped = if device.is_some() { None } else { pool.install(|| GroupedBins::new(&train)) };
        Ok(Trainer {
            grad: vec![0.0; k * n],
            hess: vec![0.0; k * n],
            params,
            objective,
            train,
            valids,
            scores,
            valid_scores,
            metrics,
            model,
            pool,
            bag: None,
            finished: false,
            qgh: Vec::new(),
            gh: Vec::new(),
            grouped,
            buffers: Buffers::default(),
            device,
        })
    }

    /// Builds histograms and partitions on `device` from now on (e.g. the CPU emulation of the GPU
    /// learner, [`crate::gpu::emulate::EmulatedLearner`]), instead of the CPU learner.
    pub fn set_device_learner(&mut self, device: Box<dyn crate::gpu::learner::DeviceLearner>) {
        self.grouped = None;
        self.device = Some(device);
    }

    /// Rounds completed (initial model included).
    pub fn current_iteration(&self) -> usize {
        self.model.num_iterations()
    }

    /// The raw training scores (class-major), e.g. for a custom objective.
    pub fn train_scores(&self) -> &[f64] {
        &self.scores
    }

    /// The model so far.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Records the best round (1-based) for prediction defaults.
    pub fn set_best_iteration(&mut self, it: usize) {
        self.model.best_iteration = it;
    }

    /// Metric names, in evaluation order.
    pub fn metric_names(&self) -> Vec<String> {
        self.metrics.iter().map(|m| m.name()).collect()
    }

    /// One boosting round. With `custom`, its (gradient, hessian), class-major, replace the
    /// objective's. Returns true when no tree could split any more (training is finished).
    pub fn update(&mut self, custom: Option<(&[f32], &[f32])>) -> Result<bool> {
        if self.finished {
            return Ok(true);
        }
        let n = self.train.num_data();
        let k = self.model.num_scores;
        let train = self.train.clone();
        let label = train.label.as_deref().unwrap_or(&[]);
        let weight = train.weight.as_deref();
        match custom {
            Some((g, h)) => {
                if g.len() != k * n || h.len() != k * n {
                    return Err(Error::data(format!(
                        "a custom objective must return {} gradients and hessians ({} rows x {} scores), got {} and {}",
                        k * n,
                        n,
                        k,
                        g.len(),
                        h.len()
                    )));
                }
                if let Some(i) = g.iter().chain(h).position(|v| !v.is_finite()) {
                    return Err(Error::data(format!("the custom objective returned a non-finite value at position {i}")));
                }
                self.grad.copy_from_slice(g);
                self.hess.copy_from_slice(h);
            }
            None => {
                if self.params.objective == ObjectiveKind::Custom {
                    return Err(Error::param("objective is 'custom' but no gradients were supplied"));
                }
                let (obj, scores, grad, hess) = (&self.objective, &self.scores, &mut self.grad, &mut self.hess);
                self.pool.install(|| obj.gradients(scores, label, weight, grad, hess));
            }
        }
        let it = self.model.num_iterations();
        let p = &self.params;
        if p.bagging_freq > 0 && p.bagging_fraction < 1.0 && (it % p.bagging_freq == 0 || self.bag.is_none()) {
            let (fraction, seed) = (p.bagging_fraction, bag_seed(p, it));
            let rows = self.pool.install(|| bag_rows(n, None, fraction, seed));
            // An empty draw (tiny data) bags every row.
            self.bag = if rows.is_empty() { None } else { Some(rows) };
        }
        if p.goss {
            self.bag = self.goss_sample(it);
        }
        let p = &self.params;
        let oob: Option<Vec<u32>> = self.bag.as_ref().map(|bag| {
            let mut in_bag = vec![false; n];
            for &r in bag {
                in_bag[r as usize] = true;
            }
            (0..n as u32).filter(|&r| !in_bag[r as usize]).collect()
        });
        let rules = SplitRules::from_params(p).with_groups(p, self.train.num_features());
        let mut new_trees = Vec::with_capacity(k);
        let mut learner = Learner::new(&train, self.grouped.as_ref(), rules.clone(), std::mem::take(&mut self.buffers));
        let mut device = self.device.as_deref_mut();
        for c in 0..k {
            let active = active_features(&self.train.mappers, p, it * k + c);
            let (g, h) = (&self.grad[c * n..(c + 1) * n], &self.hess[c * n..(c + 1) * n]);
            let bag = self.bag.as_deref();
            let (mut tree, ranges) = if let Some(dev) = device.as_deref_mut() {
                // The same tree from a device's histograms and partitions (see crate::gpu).
                let mode = if p.use_quantized_grad {
                    GradMode::Quantized { bins: p.num_grad_quant_bins, seed: quant_seed(p, it, k, c) }
                } else {
                    GradMode::Fixed
                };
                let scales = self.pool.install(|| dev.set_gradients(g, h, mode))?;
                self.pool.install(|| crate::gpu::learner::grow(dev, &train, rules.clone(), scales, bag, &active))?
            } else {
                let grads = if p.use_quantized_grad {
                    let seed = quant_seed(p, it, k, c);
                    let qgh = &mut self.qgh;
                    let (g_scale, h_scale) = self.pool.install(|| quantize(g, h, p.num_grad_quant_bins, seed, qgh));
                    Gradients::Quantized { gh: &self.qgh, max_h: p.num_grad_quant_bins as u64, g_scale, h_scale }
                } else {
                    let gh = &mut self.gh;
                    let (g_scale, h_scale) = self.pool.install(|| fill_fixed(g, h, max_abs(g, h), gh));
                    Gradients::Fixed { gh: &self.gh, g_scale, h_scale }
                };
                self.pool.install(|| learner.grow(grads, bag, &active))
            };
            // Each leaf's rows: indices[range] (the device's, copied back, or the CPU learner's).
            let indices: &[u32] = match device.as_deref() {
                Some(dev) => dev.indices(),
                None => learner.indices(),
            };
            if p.use_quantized_grad && p.quant_train_renew_leaf && p.monotone_constraints.iter().all(|&m| m == 0) {
                // Leaf outputs from the exact gradients of each leaf's rows (in row order).
                let rules = SplitRules::from_params(p);
                for (leaf, &range) in ranges.iter().enumerate() {
                    let mut s = Sums::default();
                    for &r in &indices[range.0..range.1] {
                        s.g += g[r as usize] as f64;
                        s.h += h[r as usize] as f64;
                        s.n += 1;
                    }
                    tree.leaf_value[leaf] = rules.unbounded_output(&s);
                }
            }
            if let Some(q) = self.objective.renews_leaves() {
                for (leaf, &range) in ranges.iter().enumerate() {
                    let rows = &indices[range.0..range.1];
                    let resid: Vec<f64> = rows.iter().map(|&r| label[r as usize] - self.scores[c * n + r as usize]).collect();
                    let w: Option<Vec<f64>> = weight.map(|w| rows.iter().map(|&r| w[r as usize]).collect());
                    tree.leaf_value[leaf] = weighted_quantile(&resid, w.as_deref(), q);
                }
            }
            shrink(&mut tree, p.learning_rate);
            let plane = &mut self.scores[c * n..(c + 1) * n];
            self.pool.install(|| add_leaf_values_at(indices, &ranges, &tree.leaf_value, plane));
            if let Some(oob) = &oob {
                tree.add_to_scores(&train, plane, Some(oob));
            }
            for (v, vs) in self.valids.iter().zip(self.valid_scores.iter_mut()) {
                let vn = v.num_data();
                let t = &tree;
                self.pool.install(|| t.add_to_scores(v, &mut vs[c * vn..(c + 1) * vn], None));
            }
            new_trees.push(tree);
        }
        self.buffers = learner.into_buffers();
        if new_trees.iter().all(|t| t.nodes.is_empty()) && custom.is_none() {
            // No split anywhere: this round would change nothing; stop as LightGBM does. The scores
            // already include the (near-zero) constant outputs, so undo them.
            for (c, t) in new_trees.iter().enumerate() {
                let v = t.leaf_value[0];
                for s in &mut self.scores[c * n..(c + 1) * n] {
                    *s -= v;
                }
                for (vd, vs) in self.valids.iter().zip(self.valid_scores.iter_mut()) {
                    let vn = vd.num_data();
                    for s in &mut vs[c * vn..(c + 1) * vn] {
                        *s -= v;
                    }
                }
            }
            self.finished = true;
            return Ok(true);
        }
        self.model.trees.extend(new_trees);
        Ok(false)
    }

    /// Gradient-based one-side sampling: the rows with the largest |gradient x hessian| (summed over
    /// classes) are kept, a random share of the others is kept with gradients scaled up to stay
    /// unbiased. Off for the first 1/learning_rate rounds, as in LightGBM.
    fn goss_sample(&mut self, it: usize) -> Option<Vec<u32>> {
        let p = &self.params;
        if (it as f64) < 1.0 / p.learning_rate {
            return None;
        }
        let n = self.train.num_data();
        let k = self.model.num_scores;
        let top_k = ((n as f64) * p.top_rate) as usize;
        let other_k = ((n as f64) * p.other_rate) as usize;
        if top_k + other_k >= n || top_k == 0 {
            return None;
        }
        let score: Vec<f64> = (0..n)
            .map(|i| (0..k).map(|c| (self.grad[c * n + i] as f64 * self.hess[c * n + i] as f64).abs()).sum())
            .collect();
        let mut sorted = score.clone();
        let (_, &mut threshold, _) = sorted.select_nth_unstable_by(top_k - 1, |a, b| b.total_cmp(a));
        let mut rng = SplitMix64::new(p.bagging_seed.wrapping_add(it as u64 * 0x9E37_79B9));
        let rest = n - score.iter().filter(|&&s| s >= threshold).count();
        let (mut need, mut left) = (other_k, rest);
        let amplify = ((1.0 - p.top_rate) / p.other_rate) as f32;
        let mut rows = Vec::with_capacity(top_k + other_k);
        for i in 0..n {
            if score[i] >= threshold {
                rows.push(i as u32);
            } else {
                if need > 0 && (rng.next_f64() * left as f64) < need as f64 {
                    rows.push(i as u32);
                    need -= 1;
                    for c in 0..k {
                        self.grad[c * n + i] *= amplify;
                        self.hess[c * n + i] *= amplify;
                    }
                }
                left -= 1;
            }
        }
        Some(rows)
    }

    /// Metrics on the training data (`data == 0`) or validation set `data - 1`: (name, value, higher is better).
    pub fn eval(&self, data: usize) -> Result<Vec<(String, f64, bool)>> {
        let (ds, scores) = if data == 0 {
            (&self.train, &self.scores)
        } else {
            let i = data - 1;
            let v = self.valids.get(i).ok_or_else(|| Error::param(format!("no validation set {i}")))?;
            (v, &self.valid_scores[i])
        };
        Ok(eval_metrics(&self.metrics, ds, scores, &self.model, &self.params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::{DenseMatrix, Frame};
    use crate::data::BinConfig;
    use crate::gbdt::params::ParamValue;
    use ndarray::Array2;

    fn make(n: usize, seed: u64) -> (Array2<f64>, Vec<f64>) {
        let mut rng = SplitMix64::new(seed);
        let x = Array2::from_shape_fn((n, 5), |_| rng.next_f64() * 2.0 - 1.0);
        let y = (0..n).map(|i| 3.0 * x[[i, 0]] + (x[[i, 1]] > 0.0) as i32 as f64 * 2.0 + 0.1 * rng.next_f64()).collect();
        (x, y)
    }

    fn dataset(x: &Array2<f64>, y: Vec<f64>, threads: i64) -> Arc<Dataset> {
        let f = Frame::from_dense(DenseMatrix::F64(x.view()), None, &[]).unwrap();
        Arc::new(Dataset::construct(&f, Some(y), None, &BinConfig { num_threads: threads, ..Default::default() }, None).unwrap())
    }

    fn params(v: &[(&str, ParamValue)]) -> GbdtParams {
        GbdtParams::from_pairs(&v.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn regression_learns_and_is_thread_independent() {
        let (x, y) = make(5_000, 1);
        let mut models = Vec::new();
        for threads in [1, 3] {
            let ds = dataset(&x, y.clone(), threads);
            let p = params(&[("num_threads", ParamValue::Int(threads)), ("bagging_fraction", ParamValue::Float(0.8)), ("bagging_freq", ParamValue::Int(1)), ("feature_fraction", ParamValue::Float(0.8))]);
            let mut t = Trainer::new(p, ds, vec![], None).unwrap();
            let start = t.eval(0).unwrap()[0].1;
            for _ in 0..30 {
                t.update(None).unwrap();
            }
            let end = t.eval(0).unwrap()[0].1;
            assert!(end < start * 0.05, "l2 {start} -> {end}");
            models.push(t.model().clone());
        }
        assert_eq!(models[0], models[1]);
    }

    #[test]
    fn histograms_by_rows_give_the_same_model() {
        // 5 features and 3 threads: histograms of the large leaves are built by rows; with 1 thread, by
        // features. The model bytes must not change.
        let (x, y) = make(110_000, 4);
        let mut models = Vec::new();
        for threads in [1, 3] {
            let p = params(&[("num_threads", ParamValue::Int(threads)), ("num_leaves", ParamValue::Int(15))]);
            let mut t = Trainer::new(p, dataset(&x, y.clone(), threads), vec![], None).unwrap();
            for _ in 0..5 {
                t.update(None).unwrap();
            }
            models.push(serde_json::to_string(t.model()).unwrap());
        }
        assert_eq!(models[0], models[1]);
    }

    #[test]
    fn binary_with_validation_improves_auc() {
        let (x, y) = make(4_000, 2);
        let yb: Vec<f64> = y.iter().map(|&v| (v > 1.0) as i32 as f64).collect();
        let ds = dataset(&x, yb.clone(), 2);
        let p = params(&[("objective", ParamValue::Str("binary".into())), ("metric", ParamValue::Str("auc,binary_logloss".into()))]);
        let mut t = Trainer::new(p, ds.clone(), vec![ds], None).unwrap();
        for _ in 0..20 {
            t.update(None).unwrap();
        }
        let e = t.eval(1).unwrap();
        assert_eq!(e[0].0, "auc");
        assert!(e[0].1 > 0.97, "{e:?}");
    }
}
