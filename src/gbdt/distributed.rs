//! Training on shards of the rows held by other processes (Ray actors, for `ferrox.ray.train`), with
//! the same model bytes as [`super::Trainer`] on all the rows.
//!
//! A [`ShardTrainer`] holds one shard: its binned rows (binned with the shared bin rules), labels,
//! scores and gradients, and each row's global identity (its position in the whole data). The
//! [`Leader`] holds no rows: it grows each tree with the same [`Grower`] the local learner uses, from
//! the sum of the shards' histograms, and keeps the model and the validation scores.
//!
//! Why the result equals single-process training, bit for bit:
//! - bin rules come from a sample keyed by row identity (`data::sample::in_keyed_sample`);
//! - histograms are integer sums of fixed-point gradients at one power-of-two scale per tree (from the
//!   global largest magnitude, a maximum), so adding shard histograms gives exactly the histogram of
//!   all rows, whatever the partitioning or arrival order;
//! - the bag and feature_fraction are drawn from the seed and the row identity / tree index only;
//! - the start score is an exact sum of labels ([`ExactSum`]), merged across shards;
//! - metrics are computed on the leader's validation sets, exactly as the local trainer does.
//!
//! Options that depend on all rows at once (GOSS's global top-k, quantile leaf renewal, ranking
//! groups, quantized gradients' leaf renewal, class re-weighting from label counts, custom objectives)
//! are refused by [`check_supported`].
//!
//! Per split the leader sends a [`SplitOrder`] (a few dozen bytes) and each shard answers its two
//! children's row counts and the histogram of the child the leader expects to be smaller; when that
//! guess turns out not to be needed or to be missing, the shard is asked once more.

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::boosting::{active_features, bag_rows, bag_seed, eval_metrics, fill_fixed, max_abs, parse_metrics, shrink, start_scores, Model};
use super::exact::ExactSum;
use super::learner::{fixed_scale, Buffers, Gradients, Grower, GroupedBins, HBin, HistLayout, Learner, SplitOrder, SplitRules};
use super::metric::Metric;
use super::objective::{label_sums, Objective};
use super::params::{GbdtParams, ObjectiveKind};
use super::tree::Tree;
use crate::data::{BinMapper, Dataset};
use crate::error::{Error, Result};

/// Refuses the options distributed training cannot reproduce exactly, naming the parameter.
pub fn check_supported(p: &GbdtParams) -> Result<()> {
    let refuse = |what: &str, why: &str| Err(Error::param(format!("{what} is not supported by distributed training: {why}")));
    match p.objective {
        ObjectiveKind::RegressionL1 | ObjectiveKind::Quantile => {
            return refuse(&format!("objective '{}'", p.objective.default_metric()), "its leaf values are quantiles of all the rows of a leaf")
        }
        ObjectiveKind::Lambdarank => return refuse("objective 'lambdarank'", "query groups would have to stay on one worker"),
        ObjectiveKind::Custom => return refuse("a custom objective", "gradients are computed on the workers"),
        _ => {}
    }
    if p.goss {
        return refuse("GOSS (data_sample_strategy='goss')", "it keeps a global top share of gradients; use bagging instead");
    }
    if p.device != crate::gpu::Device::Cpu {
        return refuse(&format!("device '{}'", p.device.name()), "the workers build their histograms on their CPUs");
    }
    if p.use_quantized_grad {
        return refuse("use_quantized_grad", "fixed-point histograms are already exact");
    }
    if p.is_unbalance {
        return refuse("is_unbalance", "set scale_pos_weight instead");
    }
    Ok(())
}

/// Varint encoding of a histogram (zigzag i64s): empty and small bins take a byte or two. Only the
/// bins of features marked in `active` (feature `f` owns bins `offsets[f]..offsets[f + 1]`) are
/// written: the others are zero and the reader knows which they are.
pub fn encode_hist(h: &[HBin], offsets: &[usize], active: &[bool]) -> Vec<u8> {
    let mut out = Vec::with_capacity(h.len() * 4 + 8);
    let mut put = |v: i64| {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let b = (z & 0x7F) as u8;
            z >>= 7;
            if z == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    };
    put(h.len() as i64);
    for f in (0..active.len()).filter(|&f| active[f]) {
        for b in &h[offsets[f]..offsets[f + 1]] {
            put(b.g);
            put(b.h);
        }
    }
    out
}

/// The histogram [`encode_hist`] wrote (with the same `offsets` and `active`).
pub fn decode_hist(bytes: &[u8], offsets: &[usize], active: &[bool]) -> Result<Vec<HBin>> {
    let bad = || Error::data("a histogram message is truncated or corrupt");
    let mut at = 0usize;
    let mut get = || -> Result<i64> {
        let mut z = 0u64;
        let mut shift = 0;
        loop {
            let b = *bytes.get(at).ok_or_else(bad)?;
            at += 1;
            if shift > 63 {
                return Err(bad());
            }
            z |= ((b & 0x7F) as u64) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    };
    let n = get()?;
    if n < 0 || n as usize != offsets.last().copied().unwrap_or(0) || active.len() + 1 != offsets.len() {
        return Err(bad());
    }
    let mut out = vec![HBin::default(); n as usize];
    for f in (0..active.len()).filter(|&f| active[f]) {
        for b in &mut out[offsets[f]..offsets[f + 1]] {
            *b = HBin { g: get()?, h: get()? };
        }
    }
    if at != bytes.len() {
        return Err(bad());
    }
    Ok(out)
}

/// A shard's answer to a split: its children's rows and, when asked, one child's histogram.
#[derive(Clone, Debug)]
pub struct SplitReply {
    pub left: u32,
    pub right: u32,
    /// Encoded (see [`encode_hist`]).
    pub hist: Option<Vec<u8>>,
}

/// What a shard reports when a round starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoundStart {
    /// Rows of the shard in this round's bag.
    pub bag_rows: u64,
    /// Largest |gradient| and hessian of each class.
    pub max: Vec<(f64, f64)>,
}

/// One shard's state: its rows, scores and gradients.
pub struct ShardTrainer {
    params: GbdtParams,
    objective: Objective,
    data: Arc<Dataset>,
    ids: Vec<u64>,
    k: usize,
    scores: Vec<f64>,
    grad: Vec<f32>,
    hess: Vec<f32>,
    gh: Vec<[i32; 2]>,
    grouped: Option<GroupedBins>,
    buffers: Buffers,
    pool: rayon::ThreadPool,
    /// The round whose gradients and bag are current, and what it reported.
    round: Option<(usize, RoundStart)>,
    bag: Option<Vec<u32>>,
    /// The tree being grown: (class, whole data instead of the bag, active features, unit values).
    tree: Option<(usize, bool, Vec<bool>, (f64, f64))>,
    last_leaf: usize,
    trees_applied: usize,
    offsets: Vec<usize>,
}

impl ShardTrainer {
    /// A shard of `data` (binned with the shared rules) whose row `i` is row `ids[i]` of the whole
    /// data, starting from `base_score` (from [`Leader::base_score`]).
    pub fn new(params: GbdtParams, data: Arc<Dataset>, ids: Vec<u64>, base_score: Vec<f64>, num_threads: i64) -> Result<Self> {
        params.validate()?;
        check_supported(&params)?;
        params.validate_features(data.num_features())?;
        let label = super::boosting::need_label(&data, "training")?;
        let n = data.num_data();
        if ids.len() != n {
            return Err(Error::data(format!("row_ids has {} values but the shard has {n} rows", ids.len())));
        }
        if data.init_score.is_some() || data.group.is_some() {
            return Err(Error::param("init_score and group are not supported by distributed training"));
        }
        let objective = Objective::new(&params, label, data.weight.as_deref(), None)?;
        let k = objective.num_scores();
        if base_score.len() != k {
            return Err(Error::param(format!("base_score has {} values, expected {k}", base_score.len())));
        }
        let pool = crate::parallel::pool(crate::parallel::lease(num_threads).threads())?;
        let grouped = pool.install(|| GroupedBins::new(&data));
        let scores = base_score.iter().flat_map(|&b| std::iter::repeat_n(b, n)).collect();
        let data_mappers = data.mappers.clone();
        Ok(ShardTrainer {
            params,
            objective,
            data,
            ids,
            k,
            scores,
            grad: vec![0.0; k * n],
            hess: vec![0.0; k * n],
            gh: Vec::new(),
            grouped,
            buffers: Buffers::default(),
            pool,
            round: None,
            bag: None,
            tree: None,
            last_leaf: 0,
            trees_applied: 0,
            offsets: HistLayout::from_mappers(&data_mappers).offsets().to_vec(),
        })
    }

    /// Exact sums of the shard's weights and weight x label (for [`Leader::new`]).
    pub fn label_sums(data: &Dataset) -> Result<(ExactSum, ExactSum)> {
        let label = super::boosting::need_label(data, "training")?;
        Ok(label_sums(label, data.weight.as_deref()))
    }

    /// Rows of the shard.
    pub fn num_data(&self) -> usize {
        self.data.num_data()
    }

    /// Trees added to the scores so far.
    pub fn trees_applied(&self) -> usize {
        self.trees_applied
    }

    /// Starts round `it`: gradients of every class at the current scores, and the bag. Asking again
    /// for the same round returns the same report without recomputing.
    pub fn begin_round(&mut self, it: usize) -> RoundStart {
        if let Some((r, start)) = &self.round {
            if *r == it {
                return start.clone();
            }
        }
        let n = self.data.num_data();
        let label = self.data.label.as_deref().unwrap_or(&[]);
        let weight = self.data.weight.as_deref();
        let (obj, scores, grad, hess) = (&self.objective, &self.scores, &mut self.grad, &mut self.hess);
        self.pool.install(|| obj.gradients(scores, label, weight, grad, hess));
        let p = &self.params;
        self.bag = if p.bagging_freq > 0 && p.bagging_fraction < 1.0 {
            let (fraction, seed, ids) = (p.bagging_fraction, bag_seed(p, it), &self.ids);
            Some(self.pool.install(|| bag_rows(n, Some(ids), fraction, seed)))
        } else {
            None
        };
        let max = (0..self.k)
            .map(|c| {
                let (g, h) = (&self.grad[c * n..(c + 1) * n], &self.hess[c * n..(c + 1) * n]);
                self.pool.install(|| max_abs(g, h))
            })
            .collect();
        let start = RoundStart { bag_rows: self.bag.as_ref().map_or(n, |b| b.len()) as u64, max };
        self.round = Some((it, start.clone()));
        start
    }

    /// Starts the tree of class `c` in the current round: fixed-point gradients at the global
    /// largest magnitudes `max`, the rows (the bag, or every row when `whole` — the leader says so when
    /// the bag is empty everywhere), and the root histogram.
    pub fn root(&mut self, c: usize, whole: bool, max: (f64, f64)) -> Result<Vec<u8>> {
        let Some(it) = self.round.as_ref().map(|(i, _)| *i) else {
            return Err(Error::Internal("root before begin_round".into()));
        };
        if c >= self.k {
            return Err(Error::param(format!("class {c} out of range (the model has {} scores)", self.k)));
        }
        let n = self.data.num_data();
        let active = active_features(&self.data.mappers, &self.params, it * self.k + c);
        let (g, h) = (&self.grad[c * n..(c + 1) * n], &self.hess[c * n..(c + 1) * n]);
        let gh = &mut self.gh;
        let scale = self.pool.install(|| fill_fixed(g, h, max, gh));
        let grads = Gradients::Fixed { gh: &self.gh, g_scale: scale.0, h_scale: scale.1 };
        let bag = if whole { None } else { self.bag.as_deref() };
        let mut learner = shard_learner(&self.data, self.grouped.as_ref(), &self.params, std::mem::take(&mut self.buffers));
        let hist = self.pool.install(|| learner.begin_tree(grads, bag, &active));
        self.buffers = learner.into_buffers();
        let bytes = encode_hist(&hist, &self.offsets, &active);
        self.tree = Some((c, whole, active, scale));
        Ok(bytes)
    }

    /// Applies a split of the current tree; with `build`, returns the histogram of its left (true) or
    /// right (false) child.
    pub fn split(&mut self, order: &SplitOrder, build: Option<bool>) -> Result<SplitReply> {
        let Some((_, _, active, scale)) = &self.tree else { return Err(Error::Internal("split before root".into())) };
        let grads = Gradients::Fixed { gh: &self.gh, g_scale: scale.0, h_scale: scale.1 };
        let mut learner = shard_learner(&self.data, self.grouped.as_ref(), &self.params, std::mem::take(&mut self.buffers));
        if order.leaf >= learner.ranges().len() || order.feature >= self.data.num_features() {
            self.buffers = learner.into_buffers();
            return Err(Error::Internal(format!("the split order for leaf {} does not match this tree", order.leaf)));
        }
        let pool = &self.pool;
        let (left, right) = pool.install(|| learner.split_leaf(order));
        let hist = build.map(|is_left| {
            let child = if is_left { order.leaf } else { learner.ranges().len() - 1 };
            encode_hist(&pool.install(|| learner.leaf_hist(child, grads, active)), &self.offsets, active)
        });
        self.buffers = learner.into_buffers();
        self.last_leaf = order.leaf;
        Ok(SplitReply { left, right, hist })
    }

    /// The histogram of the left (true) or right (false) child of the last split.
    pub fn child_hist(&mut self, left: bool) -> Result<Vec<u8>> {
        let Some((_, _, active, scale)) = &self.tree else { return Err(Error::Internal("child_hist before root".into())) };
        let grads = Gradients::Fixed { gh: &self.gh, g_scale: scale.0, h_scale: scale.1 };
        let mut learner = shard_learner(&self.data, self.grouped.as_ref(), &self.params, std::mem::take(&mut self.buffers));
        let child = if left { self.last_leaf } else { learner.ranges().len() - 1 };
        let hist = self.pool.install(|| learner.leaf_hist(child, grads, active));
        self.buffers = learner.into_buffers();
        Ok(encode_hist(&hist, &self.offsets, active))
    }

    /// Adds finished tree number `tree_index` (its outputs shrunk) to the scores: the bag's rows through
    /// their leaves, the others by traversal. A tree already added is skipped, so a repeated message is
    /// harmless.
    pub fn end_tree(&mut self, tree_index: usize, tree: &Tree) -> Result<()> {
        if tree_index < self.trees_applied {
            return Ok(());
        }
        if tree_index > self.trees_applied {
            return Err(Error::Internal(format!("tree {tree_index} arrived before tree {}", self.trees_applied)));
        }
        let Some((c, whole, _, _)) = self.tree.take() else { return Err(Error::Internal("end_tree before root".into())) };
        let n = self.data.num_data();
        let learner = shard_learner(&self.data, self.grouped.as_ref(), &self.params, std::mem::take(&mut self.buffers));
        let ranges = learner.ranges().to_vec();
        if tree.leaf_value.len() != ranges.len() {
            self.buffers = learner.into_buffers();
            return Err(Error::Internal("the finished tree does not match the shard's leaves".into()));
        }
        let plane = &mut self.scores[c * n..(c + 1) * n];
        self.pool.install(|| learner.add_leaf_values(&ranges, &tree.leaf_value, plane));
        self.buffers = learner.into_buffers();
        if let (false, Some(bag)) = (whole, &self.bag) {
            let mut in_bag = vec![false; n];
            for &r in bag {
                in_bag[r as usize] = true;
            }
            let oob: Vec<u32> = (0..n as u32).filter(|&r| !in_bag[r as usize]).collect();
            tree.add_to_scores(&self.data, plane, Some(&oob));
        }
        self.trees_applied += 1;
        Ok(())
    }

    /// Brings a fresh shard to where the others are: adds the trees of completed rounds (`done`), starts
    /// round `it` (gradients at those scores) and adds the trees already finished in it (`partial`).
    pub fn restore(&mut self, done: &[Tree], it: Option<usize>, partial: &[Tree]) -> Result<()> {
        if self.trees_applied != 0 {
            return Err(Error::Internal("restore on a shard that has trained".into()));
        }
        let n = self.data.num_data();
        let k = self.k;
        let apply = |scores: &mut [f64], data: &Dataset, trees: &[Tree], first: usize| {
            for (t, tree) in trees.iter().enumerate() {
                let c = (first + t) % k;
                tree.add_to_scores(data, &mut scores[c * n..(c + 1) * n], None);
            }
        };
        let (scores, data, pool) = (&mut self.scores, &self.data, &self.pool);
        pool.install(|| apply(scores, data, done, 0));
        self.trees_applied = done.len();
        if let Some(it) = it {
            self.begin_round(it);
            let (scores, data, pool) = (&mut self.scores, &self.data, &self.pool);
            pool.install(|| apply(scores, data, partial, done.len()));
            self.trees_applied += partial.len();
        }
        Ok(())
    }
}

fn shard_learner<'a>(data: &'a Dataset, grouped: Option<&'a GroupedBins>, params: &GbdtParams, buffers: Buffers) -> Learner<'a> {
    Learner::new(data, grouped, SplitRules::from_params(params), buffers)
}

/// What the leader wants next while growing a tree.
#[derive(Clone, Debug)]
pub enum Step {
    /// Apply this split; `build`: the child whose histogram to return (true = left), if any.
    Split { order: SplitOrder, build: Option<bool> },
    /// Return the histogram of the left (true) or right child of the last split.
    Child(bool),
    /// The tree is complete: call [`Leader::finish_tree`].
    Done,
}

/// The coordinating side: grows trees from the shards' summed histograms, keeps the model and the
/// validation sets.
pub struct Leader {
    params: GbdtParams,
    mappers: Vec<BinMapper>,
    k: usize,
    metrics: Vec<Metric>,
    valids: Vec<Arc<Dataset>>,
    valid_scores: Vec<Vec<f64>>,
    model: Model,
    grower: Option<Grower>,
    /// Bin offsets per feature, and the features of the tree being grown (what histograms carry).
    offsets: Vec<usize>,
    active: Vec<bool>,
    /// The class of the tree being grown and the hint of the pending split.
    class: usize,
    hint: Option<bool>,
    pending_counts: Option<(u32, u32)>,
    round: usize,
    round_trees: Vec<Tree>,
    max: Vec<(f64, f64)>,
    whole: bool,
    finished: bool,
}

impl Leader {
    /// A leader for data binned like `reference` (its bin rules and feature names), tracking
    /// `valids`, starting from the label sums `(sum w, sum w y)` merged over the shards.
    pub fn new(params: GbdtParams, reference: &Dataset, valids: Vec<Arc<Dataset>>, sw: &ExactSum, swy: &ExactSum) -> Result<Self> {
        params.validate()?;
        check_supported(&params)?;
        params.validate_features(reference.num_features())?;
        let objective = Objective::new(&params, &[], None, None)?;
        let k = objective.num_scores();
        for (i, v) in valids.iter().enumerate() {
            let vl = super::boosting::need_label(v, &format!("validation set {i}"))?;
            if v.mappers != reference.mappers {
                return Err(Error::data(format!(
                    "validation set {i} was binned differently from the training data; build it with \
                     reference= the Dataset of the bin rules"
                )));
            }
            Objective::new(&params, vl, v.weight.as_deref(), v.query_boundaries()).map_err(|e| Error::data(format!("validation set {i}: {e}")))?;
        }
        let metrics = parse_metrics(&params)?;
        let base_score = objective.init_scores_from(&[], None, sw, swy, params.boost_from_average);
        let valid_scores = valids.iter().enumerate().map(|(i, v)| start_scores(v, &base_score, &format!("validation set {i}"))).collect::<Result<_>>()?;
        let model = Model {
            trees: Vec::new(),
            num_scores: k,
            base_score,
            transform: objective.transform(),
            objective: params.objective,
            feature_names: reference.feature_names.clone(),
            mappers: reference.mappers.clone(),
            best_iteration: 0,
            params: GbdtParams { num_threads: 0, ..params.clone() },
            average_output: false,
            accumulate_f32: false,
            meta: String::new(),
        };
        Ok(Leader {
            params,
            mappers: reference.mappers.clone(),
            k,
            metrics,
            valids,
            valid_scores,
            model,
            grower: None,
            offsets: HistLayout::from_mappers(&reference.mappers).offsets().to_vec(),
            active: Vec::new(),
            class: 0,
            hint: None,
            pending_counts: None,
            round: 0,
            round_trees: Vec::new(),
            max: Vec::new(),
            whole: false,
            finished: false,
        })
    }

    /// The starting raw score of each class (the shards start from it).
    pub fn base_score(&self) -> Vec<f64> {
        self.model.base_score.clone()
    }

    /// Scores per row (classes).
    pub fn num_scores(&self) -> usize {
        self.k
    }

    /// Rounds completed.
    pub fn current_iteration(&self) -> usize {
        self.model.num_iterations()
    }

    /// True once a round could not split any tree.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Starts the round after the completed ones from the shards' reports. Returns whether the trees
    /// use every row (the bag is empty on every shard).
    pub fn begin_round(&mut self, starts: &[RoundStart]) -> Result<bool> {
        if starts.iter().any(|s| s.max.len() != self.k) {
            return Err(Error::Internal("a shard reported another number of classes".into()));
        }
        self.round = self.current_iteration();
        self.round_trees.clear();
        self.max = (0..self.k).map(|c| starts.iter().fold((0.0f64, 0.0f64), |m, s| (m.0.max(s.max[c].0), m.1.max(s.max[c].1)))).collect();
        self.whole = starts.iter().map(|s| s.bag_rows).sum::<u64>() == 0;
        Ok(self.whole)
    }

    /// The largest magnitudes the shards quantize class `c` with.
    pub fn max_for(&self, c: usize) -> (f64, f64) {
        self.max.get(c).copied().unwrap_or((0.0, 0.0))
    }

    /// Starts the tree of class `c` from the shards' root histograms and their row counts.
    pub fn root(&mut self, c: usize, hists: &[Vec<u8>], rows: u64) -> Result<Step> {
        if c >= self.k {
            return Err(Error::param(format!("class {c} out of range")));
        }
        let tree_index = self.round * self.k + c;
        let active = active_features(&self.mappers, &self.params, tree_index);
        self.active = active.clone();
        let sum = self.sum_hists(hists)?;
        let (gm, hm) = self.max_for(c);
        let scale = (1.0 / fixed_scale(gm), 1.0 / fixed_scale(hm));
        let rules = SplitRules::from_params(&self.params).with_groups(&self.params, self.mappers.len());
        self.grower = Some(Grower::new(rules, &self.mappers, &active, scale, rows as u32, sum));
        self.class = c;
        Ok(self.next())
    }

    fn next(&mut self) -> Step {
        let g = self.grower.as_mut().expect("growing");
        match g.next_split(&self.mappers) {
            Some(order) => {
                let build = g.wants_hist(order.est_left, order.est_right);
                self.hint = build;
                Step::Split { order, build }
            }
            None => Step::Done,
        }
    }

    /// The shards' replies to the pending split.
    pub fn feed(&mut self, replies: &[SplitReply]) -> Result<Step> {
        let left: u32 = replies.iter().map(|r| r.left).sum();
        let right: u32 = replies.iter().map(|r| r.right).sum();
        let need = self.grower.as_ref().ok_or_else(|| Error::Internal("feed before root".into()))?.wants_hist(left, right);
        let built = match (need, self.hint) {
            (None, _) => None,
            (Some(_), Some(is_left)) => {
                let hists: Vec<Vec<u8>> = replies.iter().map(|r| r.hist.clone().ok_or_else(|| Error::Internal("a shard sent no histogram".into()))).collect::<Result<_>>()?;
                Some((is_left, self.sum_hists(&hists)?))
            }
            (Some(is_left), None) => {
                self.pending_counts = Some((left, right));
                return Ok(Step::Child(is_left));
            }
        };
        self.grower.as_mut().expect("checked").finish_split(&self.mappers, left, right, built)?;
        Ok(self.next())
    }

    /// The shards' histograms of the child asked for by [`Step::Child`].
    pub fn feed_child(&mut self, left: bool, hists: &[Vec<u8>]) -> Result<Step> {
        let (l, r) = self.pending_counts.take().ok_or_else(|| Error::Internal("no child histogram was asked for".into()))?;
        let sum = self.sum_hists(hists)?;
        let g = self.grower.as_mut().ok_or_else(|| Error::Internal("feed before root".into()))?;
        g.finish_split(&self.mappers, l, r, Some((left, sum)))?;
        Ok(self.next())
    }

    /// The grown tree of the current class, shrunk, added to the validation scores.
    pub fn finish_tree(&mut self) -> Result<Tree> {
        let g = self.grower.take().ok_or_else(|| Error::Internal("finish_tree before root".into()))?;
        let mut tree = g.into_tree();
        shrink(&mut tree, self.params.learning_rate);
        let c = self.class;
        for (v, vs) in self.valids.iter().zip(self.valid_scores.iter_mut()) {
            let vn = v.num_data();
            tree.add_to_scores(v, &mut vs[c * vn..(c + 1) * vn], None);
        }
        self.round_trees.push(tree.clone());
        Ok(tree)
    }

    /// Trees finished in the current round so far.
    pub fn round_trees(&self) -> &[Tree] {
        &self.round_trees
    }

    /// Ends the round. Returns true when no tree split (training is finished; the round is dropped).
    pub fn end_round(&mut self) -> Result<bool> {
        if self.round_trees.len() != self.k {
            return Err(Error::Internal(format!("the round has {} trees, expected {}", self.round_trees.len(), self.k)));
        }
        let trees = std::mem::take(&mut self.round_trees);
        if trees.iter().all(|t| t.nodes.is_empty()) {
            self.finished = true;
            return Ok(true);
        }
        self.model.trees.extend(trees);
        Ok(false)
    }

    /// Metrics on validation set `i` (0-based): (name, value, higher is better).
    pub fn eval(&self, i: usize) -> Result<Vec<(String, f64, bool)>> {
        let v = self.valids.get(i).ok_or_else(|| Error::param(format!("no validation set {i}")))?;
        Ok(eval_metrics(&self.metrics, v, &self.valid_scores[i], &self.model, &self.params))
    }

    /// Metric names, in evaluation order.
    pub fn metric_names(&self) -> Vec<String> {
        self.metrics.iter().map(|m| m.name()).collect()
    }

    /// The model so far.
    pub fn model(&self) -> &Model {
        &self.model
    }
}

impl Leader {
    /// The sum of the shards' encoded histograms of the current tree.
    fn sum_hists(&self, hists: &[Vec<u8>]) -> Result<Vec<HBin>> {
        let decoded: Vec<Vec<HBin>> = hists.iter().map(|b| decode_hist(b, &self.offsets, &self.active)).collect::<Result<_>>()?;
        sum_hists(&decoded)
    }
}

fn sum_hists(hists: &[Vec<HBin>]) -> Result<Vec<HBin>> {
    let Some(first) = hists.first() else { return Err(Error::Internal("no shard histograms".into())) };
    if hists.iter().any(|h| h.len() != first.len()) {
        return Err(Error::Internal("shard histograms differ in size".into()));
    }
    let mut out = first.clone();
    for h in &hists[1..] {
        out.par_iter_mut().zip(h.par_iter()).for_each(|(o, b)| {
            o.g += b.g;
            o.h += b.h;
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::frame::{DenseMatrix, Frame};
    use crate::data::sample::SplitMix64;
    use crate::data::BinConfig;
    use crate::gbdt::params::ParamValue;
    use crate::gbdt::Trainer;
    use ndarray::Array2;

    fn params(v: &[(&str, ParamValue)]) -> GbdtParams {
        GbdtParams::from_pairs(&v.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<Vec<_>>()).unwrap()
    }

    /// Trains on shards `parts` (row positions of the whole data) through leader and shard trainers.
    fn distributed(x: &Array2<f64>, y: &[f64], p: &GbdtParams, parts: &[Vec<usize>], rounds: usize, cfg: &BinConfig) -> Model {
        let f = Frame::from_dense(DenseMatrix::F64(x.view()), None, &[]).unwrap();
        // The bin rules: the whole data's (a keyed sample; see the Python driver for the shard-wise way).
        let reference = Dataset::construct(&f, Some(y.to_vec()), None, cfg, None).unwrap();
        let mut shards = Vec::new();
        let (mut sw, mut swy) = (ExactSum::new(), ExactSum::new());
        let mut datas = Vec::new();
        for part in parts {
            let xs = Array2::from_shape_fn((part.len(), x.ncols()), |(i, j)| x[[part[i], j]]);
            let ys: Vec<f64> = part.iter().map(|&i| y[i]).collect();
            let fs = Frame::from_dense(DenseMatrix::F64(xs.view()), None, &[]).unwrap();
            let d = Arc::new(Dataset::construct(&fs, Some(ys), None, cfg, Some(&reference)).unwrap());
            let (a, b) = ShardTrainer::label_sums(&d).unwrap();
            sw.merge(&a);
            swy.merge(&b);
            datas.push((d, part.iter().map(|&i| i as u64).collect::<Vec<u64>>()));
        }
        let mut leader = Leader::new(p.clone(), &reference, vec![], &sw, &swy).unwrap();
        for (d, ids) in datas {
            shards.push(ShardTrainer::new(p.clone(), d, ids, leader.base_score(), 1).unwrap());
        }
        for it in 0..rounds {
            let starts: Vec<RoundStart> = shards.iter_mut().map(|s| s.begin_round(it)).collect();
            let whole = leader.begin_round(&starts).unwrap();
            let rows: u64 = if whole { shards.iter().map(|s| s.num_data() as u64).sum() } else { starts.iter().map(|s| s.bag_rows).sum() };
            for c in 0..leader.num_scores() {
                let max = leader.max_for(c);
                let hists: Vec<Vec<u8>> = shards.iter_mut().map(|s| s.root(c, whole, max).unwrap()).collect();
                let mut step = leader.root(c, &hists, rows).unwrap();
                loop {
                    step = match step {
                        Step::Split { order, build } => {
                            let replies: Vec<SplitReply> = shards.iter_mut().map(|s| s.split(&order, build).unwrap()).collect();
                            leader.feed(&replies).unwrap()
                        }
                        Step::Child(left) => {
                            let hists: Vec<Vec<u8>> = shards.iter_mut().map(|s| s.child_hist(left).unwrap()).collect();
                            leader.feed_child(left, &hists).unwrap()
                        }
                        Step::Done => break,
                    }
                }
                let tree = leader.finish_tree().unwrap();
                let index = it * leader.num_scores() + c;
                for s in shards.iter_mut() {
                    s.end_tree(index, &tree).unwrap();
                }
            }
            if leader.end_round().unwrap() {
                break;
            }
        }
        leader.model().clone()
    }

    fn local(x: &Array2<f64>, y: &[f64], p: &GbdtParams, rounds: usize, cfg: &BinConfig) -> Model {
        let f = Frame::from_dense(DenseMatrix::F64(x.view()), None, &[]).unwrap();
        let d = Arc::new(Dataset::construct(&f, Some(y.to_vec()), None, cfg, None).unwrap());
        let mut t = Trainer::new(p.clone(), d, vec![], None).unwrap();
        for _ in 0..rounds {
            if t.update(None).unwrap() {
                break;
            }
        }
        t.model().clone()
    }

    #[test]
    fn shards_give_the_local_model_for_any_partitioning() {
        let n = 6_000;
        let mut rng = SplitMix64::new(21);
        let x = Array2::from_shape_fn((n, 6), |(_, j)| if j == 2 && rng.next_f64() < 0.1 { f64::NAN } else { rng.next_f64() * 4.0 - 2.0 });
        let y: Vec<f64> = (0..n).map(|i| if x[[i, 0]] + x[[i, 1]].powi(2) - 1.0 + (rng.next_f64() - 0.5) > 0.0 { 1.0 } else { 0.0 }).collect();
        let cfg = BinConfig { num_threads: 1, ..Default::default() };
        let p = params(&[
            ("objective", ParamValue::Str("binary".into())),
            ("num_leaves", ParamValue::Int(15)),
            ("bagging_fraction", ParamValue::Float(0.7)),
            ("bagging_freq", ParamValue::Int(2)),
            ("feature_fraction", ParamValue::Float(0.7)),
            ("num_threads", ParamValue::Int(1)),
        ]);
        let want = local(&x, &y, &p, 12, &cfg);
        assert_eq!(want.num_iterations(), 12);
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            perm.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let contiguous = vec![(0..2_500).collect::<Vec<_>>(), (2_500..n).collect()];
        let shuffled: Vec<Vec<usize>> = (0..3).map(|w| perm.iter().copied().filter(|&i| i % 3 == w).collect()).collect();
        let unsorted: Vec<Vec<usize>> = (0..2).map(|w| perm.iter().copied().filter(|&i| i % 2 == w).collect()).collect();
        for parts in [vec![(0..n).collect::<Vec<_>>()], contiguous, shuffled, unsorted] {
            let got = distributed(&x, &y, &p, &parts, 12, &cfg);
            assert_eq!(postcard::to_allocvec(&got).unwrap(), postcard::to_allocvec(&want).unwrap(), "{} shards", parts.len());
        }
    }

    #[test]
    fn unsupported_options_are_refused_by_name() {
        for (k, v) in [("objective", ParamValue::Str("quantile".into())), ("use_quantized_grad", ParamValue::Bool(true)), ("is_unbalance", ParamValue::Bool(true))] {
            let p = params(&[(k, v), ("objective", ParamValue::Str(if k == "objective" { "quantile" } else { "binary" }.into()))]);
            let e = check_supported(&p).unwrap_err().to_string();
            assert!(e.contains("not supported by distributed training"), "{e}");
        }
    }

    #[test]
    fn histogram_messages_round_trip() {
        let h = vec![HBin { g: 0, h: 0 }, HBin { g: -5, h: 1 << 40 }, HBin { g: i64::MIN, h: i64::MAX }, HBin { g: 7, h: 9 }];
        let offsets = [0, 1, 3, 4];
        let all = [true, true, true];
        assert_eq!(decode_hist(&encode_hist(&h, &offsets, &all), &offsets, &all).unwrap(), h);
        assert!(decode_hist(&encode_hist(&h, &offsets, &all)[..5], &offsets, &all).is_err());
        // Inactive features travel as nothing and come back zero.
        let some = [true, false, true];
        let short = encode_hist(&h, &offsets, &some);
        assert!(short.len() < encode_hist(&h, &offsets, &all).len());
        let back = decode_hist(&short, &offsets, &some).unwrap();
        assert_eq!(back, vec![h[0], HBin::default(), HBin::default(), h[3]]);
    }
}
