//! Experiments in the server: a named endpoint whose requests are split between variants (sticky by
//! a unit key, hashed with a per-experiment salt), and shadow models that score the same rows off the
//! request path and are compared online with the answer that was given.
//!
//! Assignment (documented so that analysis can recompute any unit's variant): the unit key is the
//! request parameter named by the experiment's `unit` (default `unit_id`), or the `x-ferrox-unit`
//! header. Its bucket is the top 53 bits of `fmix64(FNV-1a 64(salt + "/" + unit))` divided by 2^53,
//! a number in [0, 1) (fmix64 is MurmurHash3's 64-bit finaliser, which spreads FNV's last bytes over
//! the high bits); the variant is the first whose cumulative weight share exceeds it.
//! Requests without a key draw the same way from an internal counter (a uniform split, not sticky).
//! A `x-ferrox-variant` header (or `variant` parameter) forces a variant by name.
//!
//! Three kinds of experiment:
//! * `split`: fixed weights, as above.
//! * `canary`: two variants, champion then challenger; the challenger's share follows a ramp (see
//!   [`crate::experiment::rollout`]), advanced by a controller thread while the guardrails hold and
//!   rolled back at once when one breaks. Units are sticky through a table of the units seen (up to
//!   `sticky_capacity`; beyond it by bucket, challenger when the bucket is below the share, so a
//!   challenger unit stays one as the share grows). When promoted every request goes to the
//!   challenger; when rolled back, to the champion.
//! * `bandit`: each request draws its variant from the bandit's allocation probabilities
//!   ([`crate::experiment::bandit`]), updated as rewards arrive through `POST /v2/feedback`; the
//!   probability of the draw (the propensity) is returned and logged. Not sticky.
//!
//! Outcomes (`POST /v2/feedback`) are joined to what was served by request id (the last
//! `feedback_window` routed requests of each experiment are remembered) or, for split and canary
//! experiments, by unit key (recomputed from the hash or the sticky table).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::log::{now_ts, Log};
use super::metrics::Metrics;
use super::store::{execute, Store};
use super::tensor::{ModelInput, OutputTensor};
use super::ServeError;
use crate::data::sample::SplitMix64;
use crate::experiment::bandit::{self, Arm, BanditConfig};
use crate::experiment::eventlog::{Event, EventLog};
use crate::experiment::moments::Moments;
use crate::experiment::rollout::{self, CanaryConfig, Observed};
use crate::transform::pipeline::{Output, Tensor};

/// One arm of an experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    /// Name reported to clients and in metrics.
    pub name: String,
    /// The loaded model that answers for it.
    pub model: String,
    /// Share of traffic (relative to the other variants' weights).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

fn shadow_queue_default() -> usize {
    1024
}

fn window_default() -> usize {
    1_000_000
}

/// How an experiment splits its traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Fixed weights, sticky by unit.
    #[default]
    Split,
    /// A champion and a challenger whose share ramps up under guardrails.
    Canary,
    /// Allocation by a multi-armed bandit.
    Bandit,
}

/// An experiment as declared (TOML, JSON over REST, Python).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name.
    pub name: String,
    /// The model name clients call; its requests are routed to the variants.
    pub endpoint: String,
    /// Request parameter holding the unit key (default `unit_id`).
    #[serde(default)]
    pub unit: Option<String>,
    /// Hash salt (default: the experiment's name).
    #[serde(default)]
    pub salt: Option<String>,
    /// The variants that answer.
    pub variants: Vec<VariantConfig>,
    /// Models that score the same rows off the request path.
    #[serde(default)]
    pub shadows: Vec<String>,
    /// Shadow work waiting at most; beyond it shadow work is dropped (and counted).
    #[serde(default = "shadow_queue_default")]
    pub shadow_queue: usize,
    /// Split, canary or bandit.
    #[serde(default)]
    pub kind: Kind,
    /// The ramp and guardrails of a canary (defaults when absent).
    #[serde(default)]
    pub canary: Option<CanaryConfig>,
    /// The policy of a bandit (defaults when absent).
    #[serde(default)]
    pub bandit: Option<BanditConfig>,
    /// Routed requests remembered for joining feedback by request id.
    #[serde(default = "window_default")]
    pub feedback_window: usize,
}

/// FNV-1a, 64 bits.
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// MurmurHash3's 64-bit finaliser.
pub fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The bucket in [0, 1) of a unit under a salt.
pub fn bucket(salt: &str, unit: &str) -> f64 {
    (fmix64(fnv1a64(&[salt.as_bytes(), b"/", unit.as_bytes()])) >> 11) as f64 / (1u64 << 53) as f64
}

/// The variant index a bucket falls in, for weights (not necessarily normalised).
pub fn pick(weights: &[f64], bucket: f64) -> usize {
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w / total;
        if bucket < acc {
            return i;
        }
    }
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
}

/// Online comparison of one shadow model with the live answers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ShadowStats {
    /// The shadow model.
    pub model: String,
    /// Requests compared.
    pub requests: u64,
    /// Rows compared.
    pub rows: u64,
    /// Rows whose shadow prediction equals the live one.
    pub agreeing_rows: u64,
    /// Mean absolute difference of numeric predictions.
    pub mean_abs_diff: f64,
    /// Shadow calls that failed.
    pub errors: u64,
    #[serde(skip)]
    sum_abs: f64,
    #[serde(skip)]
    live: Vec<f64>,
    #[serde(skip)]
    shadow: Vec<f64>,
    /// Kolmogorov–Smirnov distance between the recent live and shadow predictions.
    pub ks_distance: Option<f64>,
}

const KS_WINDOW: usize = 5000;

impl ShadowStats {
    fn add(&mut self, live: &Tensor, shadow: &Tensor) {
        self.requests += 1;
        match (live, shadow) {
            (Tensor::F64 { data: a, .. }, Tensor::F64 { data: b, .. }) if a.len() == b.len() => {
                for (x, y) in a.iter().zip(b) {
                    self.sum_abs += (x - y).abs();
                    self.agreeing_rows += u64::from(x == y);
                }
                self.rows += a.len() as u64;
                for (buf, v) in [(&mut self.live, a), (&mut self.shadow, b)] {
                    buf.extend_from_slice(v);
                    if buf.len() > 2 * KS_WINDOW {
                        buf.drain(..buf.len() - KS_WINDOW);
                    }
                }
            }
            (Tensor::I64 { data: a, .. }, Tensor::I64 { data: b, .. }) if a.len() == b.len() => {
                self.agreeing_rows += a.iter().zip(b).filter(|(x, y)| x == y).count() as u64;
                self.rows += a.len() as u64;
            }
            (Tensor::Bytes { data: a, .. }, Tensor::Bytes { data: b, .. }) if a.len() == b.len() => {
                self.agreeing_rows += a.iter().zip(b).filter(|(x, y)| x == y).count() as u64;
                self.rows += a.len() as u64;
            }
            _ => self.errors += 1,
        }
    }

    fn summary(&self) -> ShadowStats {
        let mut s = self.clone();
        s.mean_abs_diff = if self.rows > 0 { self.sum_abs / self.rows as f64 } else { 0.0 };
        s.ks_distance = (self.live.len() >= 2).then(|| {
            let (mut a, mut b) = (self.live[self.live.len().saturating_sub(KS_WINDOW)..].to_vec(), self.shadow[self.shadow.len().saturating_sub(KS_WINDOW)..].to_vec());
            a.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            crate::drift::twosample::ks_2samp(&a, &b, crate::drift::twosample::Alternative::TwoSided, crate::drift::twosample::KsMethod::Asymp)
                .map(|r| r.statistic)
                .unwrap_or(f64::NAN)
        });
        s.live = Vec::new();
        s.shadow = Vec::new();
        s
    }
}

struct ShadowJob {
    input: ModelInput,
    live: Tensor,
}

/// What the router shares with the server: metrics, log lines, the event log.
#[derive(Clone)]
pub struct Ctx {
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Log lines.
    pub log: Log,
    /// The event log, when configured.
    pub events: Option<EventLog>,
}

const LAT_BUCKETS: usize = 200;
const PRED_WINDOW: usize = 2000;
const SHARDS: usize = 16;

/// Latency counts in buckets of 2^(1/8) from 1 µs (up to about 33 s).
struct Latency {
    counts: Vec<AtomicU64>,
}

impl Latency {
    fn new() -> Self {
        Latency { counts: (0..LAT_BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }
    fn record(&self, seconds: f64) {
        let us = seconds * 1e6;
        let i = if us <= 1.0 { 0 } else { ((us.log2() * 8.0).ceil() as usize).min(LAT_BUCKETS - 1) };
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }
    fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
    }
    /// The q-quantile in seconds (the upper edge of its bucket) and the count behind it.
    fn quantile(&self, q: f64) -> Option<(f64, u64)> {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let target = ((q * total as f64).ceil() as u64).max(1);
        let mut acc = 0;
        for (i, c) in counts.iter().enumerate() {
            acc += c;
            if acc >= target {
                return Some((2f64.powf(i as f64 / 8.0) * 1e-6, total));
            }
        }
        None
    }
}

/// What one variant has done since the experiment started.
struct Live {
    requests: AtomicU64,
    errors: AtomicU64,
    /// Latencies of the current canary step (since the start otherwise).
    latency: Latency,
    predictions: Mutex<VecDeque<f64>>,
    outcomes: Mutex<BTreeMap<String, Moments>>,
    outcome_metric: metrics::Counter,
}

const RAMPING: u8 = 0;
const PROMOTED: u8 = 1;
const ROLLED_BACK: u8 = 2;

fn phase_name(p: u8) -> &'static str {
    match p {
        RAMPING => "ramping",
        PROMOTED => "promoted",
        _ => "rolled_back",
    }
}

struct Canary {
    cfg: CanaryConfig,
    share: AtomicU64,
    phase: AtomicU8,
    step: AtomicUsize,
    step_started: Mutex<Instant>,
    step_units: Mutex<HashSet<u64>>,
    step_unkeyed: AtomicU64,
    sticky: Vec<Mutex<HashMap<u64, u8>>>,
    sticky_len: AtomicUsize,
    reason: Mutex<Option<String>>,
}

struct Bandit {
    cfg: BanditConfig,
    probabilities: ArcSwap<Vec<f64>>,
    arms: Mutex<Vec<Arm>>,
    rng: Mutex<SplitMix64>,
    dirty: AtomicBool,
    unsaved: AtomicBool,
    last_update: Mutex<Instant>,
    updates: AtomicU64,
}

/// Routed requests remembered for the feedback join: id hash → (variant, propensity).
struct Served {
    map: HashMap<u64, (u16, f32)>,
    order: VecDeque<u64>,
    cap: usize,
}

impl Served {
    fn insert(&mut self, key: u64, variant: usize, propensity: Option<f64>) {
        if self.cap == 0 {
            return;
        }
        if self.map.insert(key, (variant as u16, propensity.map(|p| p as f32).unwrap_or(f32::NAN))).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// A running experiment.
pub struct Experiment {
    /// As declared.
    pub config: ExperimentConfig,
    weights: Vec<f64>,
    counts: Vec<AtomicU64>,
    forced: AtomicU64,
    draws: AtomicU64,
    assignments: Vec<metrics::Counter>,
    live: Vec<Live>,
    canary: Option<Canary>,
    bandit: Option<Bandit>,
    served: Mutex<Served>,
    transitions: Mutex<Vec<Value>>,
    shadow_tx: Option<SyncSender<ShadowJob>>,
    shadow_stats: Arc<Mutex<Vec<ShadowStats>>>,
    shadow_dropped: AtomicU64,
    shadow_dropped_metric: metrics::Counter,
    nonce: u64,
    stopped: AtomicBool,
    ctx: Ctx,
}

/// Where one request goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assignment {
    /// Variant index.
    pub variant: usize,
    /// Forced by header or parameter.
    pub forced: bool,
    /// The probability with which a bandit chose the variant.
    pub propensity: Option<f64>,
}

fn unit_hash(salt: &str, unit: &str) -> u64 {
    fmix64(fnv1a64(&[salt.as_bytes(), b"/", unit.as_bytes()]))
}

fn id_hash(id: &str) -> u64 {
    fmix64(fnv1a64(&[b"id/", id.as_bytes()]))
}

fn ts_us() -> i64 {
    (now_ts() * 1e6) as i64
}

fn first_value(t: &Tensor) -> Option<f64> {
    match t {
        Tensor::F64 { data, .. } => data.first().copied(),
        Tensor::I64 { data, .. } => data.first().map(|v| *v as f64),
        Tensor::Bytes { .. } => None,
    }
}

/// One outcome value.
pub type Value64 = (String, f64);

impl Experiment {
    /// The salt in use.
    pub fn salt(&self) -> &str {
        self.config.salt.as_deref().unwrap_or(&self.config.name)
    }

    fn uniform(&self) -> f64 {
        let k = self.draws.fetch_add(1, Ordering::Relaxed) ^ self.nonce;
        (fmix64(k) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Chooses the variant of a request from its unit key or forced variant name.
    pub fn assign(&self, unit: Option<&str>, force: Option<&str>) -> Result<Assignment, ServeError> {
        if let Some(f) = force {
            let i = self.config.variants.iter().position(|v| v.name == f).ok_or_else(|| {
                ServeError::bad(format!(
                    "experiment '{}' has no variant '{f}' (variants: {:?})",
                    self.config.name,
                    self.config.variants.iter().map(|v| &v.name).collect::<Vec<_>>()
                ))
            })?;
            self.forced.fetch_add(1, Ordering::Relaxed);
            self.count(i);
            return Ok(Assignment { variant: i, forced: true, propensity: None });
        }
        let (i, propensity) = if let Some(c) = &self.canary {
            (self.canary_pick(c, unit), None)
        } else if let Some(b) = &self.bandit {
            let p = b.probabilities.load();
            let i = pick(&p, self.uniform());
            (i, Some(p[i]))
        } else {
            let b = match unit {
                Some(u) => bucket(self.salt(), u),
                None => self.uniform(),
            };
            (pick(&self.weights, b), None)
        };
        self.count(i);
        Ok(Assignment { variant: i, forced: false, propensity })
    }

    fn canary_pick(&self, c: &Canary, unit: Option<&str>) -> usize {
        match c.phase.load(Ordering::Acquire) {
            PROMOTED => return 1,
            ROLLED_BACK => return 0,
            _ => {}
        }
        let share = f64::from_bits(c.share.load(Ordering::Acquire));
        match unit {
            Some(u) => {
                let h = unit_hash(self.salt(), u);
                let b = (h >> 11) as f64 / (1u64 << 53) as f64;
                let v = {
                    let mut m = c.sticky[(h as usize) % SHARDS].lock().unwrap();
                    match m.get(&h) {
                        Some(&v) => v as usize,
                        None => {
                            let v = usize::from(b < share);
                            if c.sticky_len.load(Ordering::Relaxed) < c.cfg.sticky_capacity {
                                m.insert(h, v as u8);
                                c.sticky_len.fetch_add(1, Ordering::Relaxed);
                            }
                            v
                        }
                    }
                };
                if v == 1 {
                    let mut units = c.step_units.lock().unwrap();
                    if (units.len() as u64) < c.cfg.min_units {
                        units.insert(h);
                    }
                }
                v
            }
            None => {
                let v = usize::from(self.uniform() < share);
                if v == 1 {
                    c.step_unkeyed.fetch_add(1, Ordering::Relaxed);
                }
                v
            }
        }
    }

    /// The variant a unit was (or would be) served, for joining feedback that carries no request id.
    pub fn variant_of_unit(&self, unit: &str) -> Option<usize> {
        if self.bandit.is_some() {
            return None;
        }
        let h = unit_hash(self.salt(), unit);
        if let Some(c) = &self.canary {
            if let Some(v) = c.sticky[(h as usize) % SHARDS].lock().unwrap().get(&h) {
                return Some(*v as usize);
            }
            let share = f64::from_bits(c.share.load(Ordering::Acquire));
            return Some(usize::from(((h >> 11) as f64 / (1u64 << 53) as f64) < share));
        }
        Some(pick(&self.weights, (h >> 11) as f64 / (1u64 << 53) as f64))
    }

    fn count(&self, i: usize) {
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.assignments[i].increment(1);
    }

    /// Records what a routed request did: success or failure, latency, prediction; remembers it for
    /// the feedback join and writes the assignment to the event log.
    #[allow(clippy::too_many_arguments)]
    pub fn record(&self, a: &Assignment, unit: Option<&str>, id: &str, ok: bool, seconds: f64, outputs: Option<&[OutputTensor]>, model: &str, version: &str) {
        let live = &self.live[a.variant];
        live.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            live.errors.fetch_add(1, Ordering::Relaxed);
        }
        live.latency.record(seconds);
        let first = outputs.and_then(|o| o.iter().find(|t| t.name == "predict").or(o.first()));
        let prediction = first.and_then(|t| first_value(&t.tensor));
        if let (Some(t), true) = (first, self.canary.as_ref().is_some_and(|c| c.cfg.max_ks.is_some())) {
            if let Tensor::F64 { data, cols } = &t.tensor {
                let mut p = live.predictions.lock().unwrap();
                p.extend(data.iter().step_by((*cols).max(1)).take(64));
                while p.len() > PRED_WINDOW {
                    p.pop_front();
                }
            }
        }
        self.served.lock().unwrap().insert(id_hash(id), a.variant, a.propensity);
        if let Some(ev) = &self.ctx.events {
            ev.send(Event {
                ts_us: ts_us(),
                kind: "assignment",
                experiment: self.config.name.clone(),
                variant: Some(self.config.variants[a.variant].name.clone()),
                unit: unit.map(str::to_owned),
                request_id: Some(id.to_owned()),
                model: Some(model.to_owned()),
                version: Some(version.to_owned()),
                propensity: a.propensity,
                prediction,
                rows: first.map(|t| t.rows as i64),
                detail: (!ok).then(|| "{\"error\":true}".to_owned()).or_else(|| a.forced.then(|| "{\"forced\":true}".to_owned())),
                ..Default::default()
            });
        }
    }

    /// The served variant (and propensity) of a request id, when remembered.
    pub fn served(&self, id: &str) -> Option<(usize, Option<f64>)> {
        self.served.lock().unwrap().map.get(&id_hash(id)).map(|&(v, p)| (v as usize, (!p.is_nan()).then_some(p as f64)))
    }

    /// Adds the outcome values of one served request or unit to its variant.
    pub fn outcome(&self, variant: usize, values: &[Value64], id: Option<&str>, unit: Option<&str>, label: Option<&str>) {
        let live = &self.live[variant];
        {
            let mut o = live.outcomes.lock().unwrap();
            for (k, v) in values {
                let m = o.entry(k.clone()).or_default();
                *m = if m.n == 0.0 { rollout::one(*v) } else { m.merge(&rollout::one(*v)) };
            }
        }
        live.outcome_metric.increment(1);
        if let Some(b) = &self.bandit {
            if let Some((_, r)) = values.iter().find(|(k, _)| *k == b.cfg.metric) {
                b.arms.lock().unwrap()[variant].add(*r);
                b.dirty.store(true, Ordering::Release);
                b.unsaved.store(true, Ordering::Release);
                let due = b.last_update.lock().unwrap().elapsed() >= Duration::from_millis(20);
                if due {
                    self.update_bandit(b);
                }
            }
        }
        if let Some(ev) = &self.ctx.events {
            let variant = Some(self.config.variants[variant].name.clone());
            let base = Event {
                ts_us: ts_us(),
                kind: "outcome",
                experiment: self.config.name.clone(),
                variant,
                unit: unit.map(str::to_owned),
                request_id: id.map(str::to_owned),
                detail: label.map(|l| json!({ "label": l }).to_string()),
                ..Default::default()
            };
            if values.is_empty() {
                ev.send(base.clone());
            }
            for (k, v) in values {
                ev.send(Event { metric: Some(k.clone()), value: Some(*v), ..base.clone() });
            }
        }
    }

    fn update_bandit(&self, b: &Bandit) {
        let arms = b.arms.lock().unwrap().clone();
        let p = bandit::probabilities(&b.cfg, &arms, &mut b.rng.lock().unwrap());
        b.probabilities.store(Arc::new(p));
        *b.last_update.lock().unwrap() = Instant::now();
        b.dirty.store(false, Ordering::Release);
        b.updates.fetch_add(1, Ordering::Relaxed);
    }

    fn save_bandit(&self) {
        let Some(b) = &self.bandit else { return };
        let Some(path) = &b.cfg.state_path else { return };
        if !b.unsaved.swap(false, Ordering::AcqRel) {
            return;
        }
        let state = bandit::State { experiment: self.config.name.clone(), policy: b.cfg.policy, reward: b.cfg.reward, arms: b.arms.lock().unwrap().clone() };
        if let Err(e) = bandit::save(path, &state) {
            b.unsaved.store(true, Ordering::Release);
            self.ctx.log.event("bandit_state_error", &self.config.endpoint, json!({"experiment": self.config.name, "error": e.to_string()}));
        }
    }

    fn transition(&self, event: &'static str, detail: Value) {
        let mut d = json!({"ts": now_ts(), "event": event});
        if let (Some(o), Value::Object(f)) = (d.as_object_mut(), detail) {
            o.extend(f);
        }
        self.ctx.log.event(event, &self.config.endpoint, {
            let mut v = d.clone();
            v["experiment"] = Value::from(self.config.name.clone());
            v.as_object_mut().map(|o| o.remove("ts"));
            v
        });
        self.ctx.metrics.transition(&self.config.name, event);
        if let Some(c) = &self.canary {
            let share = f64::from_bits(c.share.load(Ordering::Acquire));
            let s = match c.phase.load(Ordering::Acquire) {
                PROMOTED => 1.0,
                ROLLED_BACK => 0.0,
                _ => share,
            };
            self.ctx.metrics.share(&self.config.name, &self.config.variants[1].name, s);
        }
        if let Some(ev) = &self.ctx.events {
            ev.send(Event { ts_us: ts_us(), kind: "transition", experiment: self.config.name.clone(), detail: Some(d.to_string()), ..Default::default() });
        }
        self.transitions.lock().unwrap().push(d);
    }

    fn observed(&self, i: usize, metric: Option<&str>) -> Observed {
        let l = &self.live[i];
        Observed {
            requests: l.requests.load(Ordering::Relaxed) as f64,
            errors: l.errors.load(Ordering::Relaxed) as f64,
            p99: l.latency.quantile(0.99),
            metric: metric.and_then(|m| l.outcomes.lock().unwrap().get(m).copied()),
        }
    }

    fn prediction_ks(&self) -> Option<(f64, usize, usize)> {
        let mut a: Vec<f64> = self.live[0].predictions.lock().unwrap().iter().copied().collect();
        let mut b: Vec<f64> = self.live[1].predictions.lock().unwrap().iter().copied().collect();
        if a.len() < 2 || b.len() < 2 {
            return None;
        }
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let d = crate::drift::twosample::ks_2samp(&a, &b, crate::drift::twosample::Alternative::TwoSided, crate::drift::twosample::KsMethod::Asymp).ok()?.statistic;
        Some((d, a.len(), b.len()))
    }

    /// One look of the controller: canary guardrails and steps, bandit probabilities and state.
    pub fn tick(&self) {
        if let Some(b) = &self.bandit {
            if b.dirty.load(Ordering::Acquire) {
                self.update_bandit(b);
            }
            self.save_bandit();
        }
        let Some(c) = &self.canary else { return };
        if c.phase.load(Ordering::Acquire) != RAMPING {
            return;
        }
        let (champion, challenger) = (self.observed(0, c.cfg.metric.as_deref()), self.observed(1, c.cfg.metric.as_deref()));
        let ks = if c.cfg.max_ks.is_some() { self.prediction_ks() } else { None };
        let step = c.step.load(Ordering::Acquire);
        let share = c.cfg.steps[step];
        if let Some(reason) = rollout::breach(&c.cfg, &champion, &challenger, ks) {
            c.phase.store(ROLLED_BACK, Ordering::Release);
            *c.reason.lock().unwrap() = Some(reason.clone());
            self.transition("canary_rolled_back", json!({"step": step, "share": share, "reason": reason,
                "champion": self.config.variants[0].model, "challenger": self.config.variants[1].model}));
            return;
        }
        let elapsed = c.step_started.lock().unwrap().elapsed().as_secs_f64();
        let units = c.step_units.lock().unwrap().len() as u64 + c.step_unkeyed.load(Ordering::Relaxed);
        if elapsed < c.cfg.min_seconds || units < c.cfg.min_units {
            return;
        }
        if step + 1 < c.cfg.steps.len() {
            let next = c.cfg.steps[step + 1];
            c.step.store(step + 1, Ordering::Release);
            c.share.store((next / 100.0).to_bits(), Ordering::Release);
            *c.step_started.lock().unwrap() = Instant::now();
            c.step_units.lock().unwrap().clear();
            c.step_unkeyed.store(0, Ordering::Relaxed);
            for l in &self.live {
                l.latency.reset();
            }
            self.transition("canary_step", json!({"step": step + 1, "share": next, "from": share, "units": units, "seconds": elapsed}));
        } else {
            c.phase.store(PROMOTED, Ordering::Release);
            *c.reason.lock().unwrap() = Some(format!("every step held its guardrails ({:?} %)", c.cfg.steps));
            self.transition("canary_promoted", json!({"step": step, "share": 100.0,
                "champion": self.config.variants[0].model, "challenger": self.config.variants[1].model}));
        }
    }

    /// Whether shadow models are attached.
    pub fn has_shadows(&self) -> bool {
        self.shadow_tx.is_some()
    }

    /// Hands the rows and the live answer to the shadow worker; dropped (and counted) when it is busy.
    pub fn shadow(&self, input: ModelInput, live: &[OutputTensor]) {
        let (Some(tx), Some(first)) = (&self.shadow_tx, live.iter().find(|o| o.name == "predict").or(live.first())) else {
            return;
        };
        match tx.try_send(ShadowJob { input, live: first.tensor.clone() }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shadow_dropped.fetch_add(1, Ordering::Relaxed);
                self.shadow_dropped_metric.increment(1);
            }
        }
    }

    /// Counts, shares, guardrail inputs, canary and bandit state, shadow comparisons, as JSON.
    pub fn status(&self) -> Value {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let w: f64 = self.weights.iter().sum();
        let probabilities = self.bandit.as_ref().map(|b| b.probabilities.load_full());
        let variants: Vec<Value> = self
            .config
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let l = &self.live[i];
                let (req, err) = (l.requests.load(Ordering::Relaxed), l.errors.load(Ordering::Relaxed));
                let outcomes: BTreeMap<String, Value> = l
                    .outcomes
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(k, m)| (k.clone(), json!({"n": m.n, "mean": m.mean_y, "std": if m.n > 1.0 { (m.m2_y / (m.n - 1.0)).sqrt() } else { f64::NAN }})))
                    .collect();
                let mut o = json!({"name": v.name, "model": v.model, "weight": self.weights[i] / w, "requests": counts[i],
                    "share": if total > 0 { counts[i] as f64 / total as f64 } else { 0.0 },
                    "answered": req, "errors": err, "error_rate": if req > 0 { err as f64 / req as f64 } else { 0.0 },
                    "p99_ms": l.latency.quantile(0.99).map(|q| q.0 * 1e3), "outcomes": outcomes});
                if let Some(p) = &probabilities {
                    o["probability"] = Value::from(p[i]);
                }
                o
            })
            .collect();
        let shadows: Vec<ShadowStats> = self.shadow_stats.lock().map(|s| s.iter().map(|x| x.summary()).collect()).unwrap_or_default();
        let mut st = json!({
            "name": self.config.name, "endpoint": self.config.endpoint, "kind": self.config.kind, "salt": self.salt(),
            "unit": self.config.unit.as_deref().unwrap_or("unit_id"), "variants": variants,
            "forced": self.forced.load(Ordering::Relaxed), "shadows": shadows,
            "shadow_dropped": self.shadow_dropped.load(Ordering::Relaxed),
            "transitions": self.transitions.lock().unwrap().clone(), "config": self.config,
        });
        if let Some(c) = &self.canary {
            let step = c.step.load(Ordering::Acquire);
            let phase = c.phase.load(Ordering::Acquire);
            st["canary"] = json!({
                "phase": phase_name(phase), "step": step, "share": match phase { PROMOTED => 100.0, ROLLED_BACK => 0.0, _ => c.cfg.steps[step] },
                "step_units": c.step_units.lock().unwrap().len() as u64 + c.step_unkeyed.load(Ordering::Relaxed),
                "step_seconds": c.step_started.lock().unwrap().elapsed().as_secs_f64(),
                "sticky_units": c.sticky_len.load(Ordering::Relaxed), "reason": c.reason.lock().unwrap().clone(),
                "champion": self.config.variants[0].name, "challenger": self.config.variants[1].name,
            });
        }
        if let Some(b) = &self.bandit {
            st["bandit"] = json!({"policy": b.cfg.policy, "reward": b.cfg.reward, "metric": b.cfg.metric,
                "arms": b.arms.lock().unwrap().clone(), "updates": b.updates.load(Ordering::Relaxed)});
        }
        if let Some(ev) = &self.ctx.events {
            st["event_log"] = json!({"written": ev.written(), "dropped": ev.dropped(), "error": ev.last_error()});
        }
        st
    }
}

/// Every experiment of the server, by endpoint.
pub struct Router {
    by_endpoint: ArcSwap<HashMap<String, Arc<Experiment>>>,
    write: Mutex<()>,
    ctx: Ctx,
}

fn shadow_loop(rx: std::sync::mpsc::Receiver<ShadowJob>, models: Vec<String>, store: Weak<Store>, stats: Arc<Mutex<Vec<ShadowStats>>>) {
    for job in rx {
        let Some(store) = store.upgrade() else { return };
        for (k, m) in models.iter().enumerate() {
            let result = store
                .version(m, None)
                .and_then(|v| execute(&v.deployable, &job.input, &vec![("predict".to_owned(), Output::Predict, false)], 1));
            if let Ok(mut s) = stats.lock() {
                match result {
                    Ok(out) => s[k].add(&job.live, &out[0].tensor),
                    Err(_) => s[k].errors += 1,
                }
            }
        }
    }
}

fn control_loop(exp: Weak<Experiment>, every: Duration) {
    loop {
        std::thread::sleep(every);
        let Some(e) = exp.upgrade() else { return };
        if e.stopped.load(Ordering::Acquire) {
            return;
        }
        e.tick();
    }
}

/// What `POST /v2/feedback` made of its items.
#[derive(Debug, Default, Serialize)]
pub struct FeedbackResult {
    /// Items joined to a served request or unit.
    pub accepted: usize,
    /// Items whose request or unit was not found (still written to the event log).
    pub unmatched: usize,
    /// Items refused, with the reason: `{"index": i, "error": "..."}`.
    pub errors: Vec<Value>,
    /// Items with a request id and a label handed to the drift monitors (realised performance).
    pub monitored: usize,
}

/// A JSON number or boolean as f64.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

impl Router {
    /// A router with no experiment.
    pub fn new(ctx: Ctx) -> Router {
        Router { by_endpoint: ArcSwap::default(), write: Mutex::new(()), ctx }
    }

    /// The event log, when configured.
    pub fn events(&self) -> Option<&EventLog> {
        self.ctx.events.as_ref()
    }

    /// The experiment routing `endpoint`, if any.
    pub fn for_endpoint(&self, endpoint: &str) -> Option<Arc<Experiment>> {
        let map = self.by_endpoint.load();
        if map.is_empty() {
            return None;
        }
        map.get(endpoint).cloned()
    }

    /// Every experiment.
    pub fn all(&self) -> Vec<Arc<Experiment>> {
        let mut v: Vec<_> = self.by_endpoint.load().values().cloned().collect();
        v.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        v
    }

    /// An experiment by name.
    pub fn get(&self, name: &str) -> Option<Arc<Experiment>> {
        self.by_endpoint.load().values().find(|e| e.config.name == name).cloned()
    }

    /// Starts an experiment (its variant and shadow models must be loaded).
    pub fn create(&self, mut cfg: ExperimentConfig, store: &Arc<Store>) -> Result<Arc<Experiment>, ServeError> {
        let bad = |m: String| ServeError::bad(m);
        super::config::check_name(&cfg.name).map_err(|e| bad(e.to_string()))?;
        if cfg.variants.is_empty() {
            return Err(bad(format!("experiment '{}' needs at least one variant", cfg.name)));
        }
        if cfg.variants.iter().any(|v| !(v.weight.is_finite() && v.weight >= 0.0)) || cfg.variants.iter().all(|v| v.weight == 0.0) {
            return Err(bad(format!("experiment '{}': weights must be finite, non-negative and not all zero", cfg.name)));
        }
        let mut names = HashSet::new();
        for v in &cfg.variants {
            if !names.insert(&v.name) {
                return Err(bad(format!("experiment '{}': variant '{}' is named twice", cfg.name, v.name)));
            }
            store.version(&v.model, None).map_err(|_| {
                bad(format!("experiment '{}': variant '{}' points at model '{}', which is not loaded", cfg.name, v.name, v.model))
            })?;
        }
        for m in &cfg.shadows {
            store.version(m, None).map_err(|_| bad(format!("experiment '{}': shadow model '{m}' is not loaded", cfg.name)))?;
        }
        let named = |what: &str, e: crate::Error| bad(format!("experiment '{}': {what}{e}", cfg.name));
        match cfg.kind {
            Kind::Split => {
                if cfg.canary.is_some() || cfg.bandit.is_some() {
                    return Err(bad(format!("experiment '{}': canary/bandit settings need kind = \"canary\" / \"bandit\"", cfg.name)));
                }
            }
            Kind::Canary => {
                if cfg.variants.len() != 2 {
                    return Err(bad(format!("experiment '{}': a canary has two variants, the champion then the challenger (got {})", cfg.name, cfg.variants.len())));
                }
                if cfg.bandit.is_some() {
                    return Err(bad(format!("experiment '{}': bandit settings on a canary", cfg.name)));
                }
                let c = cfg.canary.get_or_insert_with(CanaryConfig::default);
                c.check().map_err(|e| named("", e))?;
            }
            Kind::Bandit => {
                if cfg.canary.is_some() {
                    return Err(bad(format!("experiment '{}': canary settings on a bandit", cfg.name)));
                }
                let k = cfg.variants.len();
                let b = cfg.bandit.get_or_insert_with(BanditConfig::default);
                b.check(k).map_err(|e| named("", e))?;
            }
        }
        let _w = self.write.lock().unwrap();
        let current = self.by_endpoint.load();
        if current.values().any(|e| e.config.name == cfg.name) {
            return Err(bad(format!("an experiment named '{}' is running; stop it first", cfg.name)));
        }
        if let Some(e) = current.get(&cfg.endpoint) {
            return Err(bad(format!("endpoint '{}' is already routed by experiment '{}'", cfg.endpoint, e.config.name)));
        }
        let bandit = match &cfg.bandit {
            Some(b) if cfg.kind == Kind::Bandit => {
                let mut arms: Vec<Arm> = cfg.variants.iter().map(|v| Arm { name: v.name.clone(), ..Default::default() }).collect();
                if let Some(path) = &b.state_path {
                    if let Some(saved) = bandit::load(path).map_err(|e| named("", e))? {
                        if saved.experiment != cfg.name {
                            return Err(bad(format!(
                                "experiment '{}': bandit state {} belongs to experiment '{}'",
                                cfg.name,
                                path.display(),
                                saved.experiment
                            )));
                        }
                        for a in saved.arms {
                            if let Some(slot) = arms.iter_mut().find(|x| x.name == a.name) {
                                *slot = a;
                            }
                        }
                    }
                }
                let mut rng = SplitMix64::new(b.seed ^ fnv1a64(&[cfg.name.as_bytes()]));
                let p = bandit::probabilities(b, &arms, &mut rng);
                Some(Bandit {
                    cfg: b.clone(),
                    probabilities: ArcSwap::from_pointee(p),
                    arms: Mutex::new(arms),
                    rng: Mutex::new(rng),
                    dirty: AtomicBool::new(false),
                    unsaved: AtomicBool::new(false),
                    last_update: Mutex::new(Instant::now()),
                    updates: AtomicU64::new(0),
                })
            }
            _ => None,
        };
        let canary = match &cfg.canary {
            Some(c) if cfg.kind == Kind::Canary => Some(Canary {
                cfg: c.clone(),
                share: AtomicU64::new((c.steps[0] / 100.0).to_bits()),
                phase: AtomicU8::new(RAMPING),
                step: AtomicUsize::new(0),
                step_started: Mutex::new(Instant::now()),
                step_units: Mutex::new(HashSet::new()),
                step_unkeyed: AtomicU64::new(0),
                sticky: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                sticky_len: AtomicUsize::new(0),
                reason: Mutex::new(None),
            }),
            _ => None,
        };
        let stats = Arc::new(Mutex::new(cfg.shadows.iter().map(|m| ShadowStats { model: m.clone(), ..Default::default() }).collect()));
        let shadow_tx = if cfg.shadows.is_empty() {
            None
        } else {
            let (tx, rx) = sync_channel(cfg.shadow_queue.max(1));
            let (models, weak, st) = (cfg.shadows.clone(), Arc::downgrade(store), stats.clone());
            std::thread::Builder::new()
                .name(format!("ferrox-shadow-{}", cfg.name))
                .spawn(move || shadow_loop(rx, models, weak, st))
                .map_err(|e| ServeError::internal(format!("cannot start the shadow worker: {e}")))?;
            Some(tx)
        };
        let metrics = &self.ctx.metrics;
        let exp = Arc::new(Experiment {
            weights: cfg.variants.iter().map(|v| v.weight).collect(),
            counts: cfg.variants.iter().map(|_| AtomicU64::new(0)).collect(),
            forced: AtomicU64::new(0),
            draws: AtomicU64::new(0),
            assignments: cfg.variants.iter().map(|v| metrics.assignment(&cfg.name, &v.name)).collect(),
            live: cfg
                .variants
                .iter()
                .map(|v| Live {
                    requests: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                    latency: Latency::new(),
                    predictions: Mutex::new(VecDeque::new()),
                    outcomes: Mutex::new(BTreeMap::new()),
                    outcome_metric: metrics.outcomes(&cfg.name, &v.name),
                })
                .collect(),
            canary,
            bandit,
            served: Mutex::new(Served {
                map: HashMap::with_capacity(cfg.feedback_window.min(1 << 16)),
                order: VecDeque::with_capacity(cfg.feedback_window.min(1 << 16)),
                cap: cfg.feedback_window,
            }),
            transitions: Mutex::new(Vec::new()),
            shadow_tx,
            shadow_stats: stats,
            shadow_dropped: AtomicU64::new(0),
            shadow_dropped_metric: metrics.shadow_dropped(&cfg.name),
            nonce: fnv1a64(&[cfg.name.as_bytes(), &now_ts().to_le_bytes()]),
            stopped: AtomicBool::new(false),
            ctx: self.ctx.clone(),
            config: cfg,
        });
        let every = match (&exp.canary, &exp.bandit) {
            (Some(c), _) => Some(Duration::from_millis(c.cfg.check_interval_ms)),
            (_, Some(_)) => Some(Duration::from_millis(50)),
            _ => None,
        };
        if let Some(every) = every {
            let weak = Arc::downgrade(&exp);
            std::thread::Builder::new()
                .name(format!("ferrox-experiment-{}", exp.config.name))
                .spawn(move || control_loop(weak, every))
                .map_err(|e| ServeError::internal(format!("cannot start the experiment controller: {e}")))?;
        }
        let mut map = HashMap::clone(&current);
        map.insert(exp.config.endpoint.clone(), exp.clone());
        self.by_endpoint.store(Arc::new(map));
        self.ctx.log.event("experiment_started", &exp.config.endpoint, json!({"experiment": exp.config.name, "kind": exp.config.kind}));
        if let Some(c) = &exp.canary {
            exp.transition("canary_started", json!({"step": 0, "share": c.cfg.steps[0]}));
        }
        Ok(exp)
    }

    /// Stops an experiment: its endpoint answers as a plain model name again.
    pub fn stop(&self, name: &str) -> Result<Arc<Experiment>, ServeError> {
        let _w = self.write.lock().unwrap();
        let mut map = HashMap::clone(&self.by_endpoint.load());
        let key = map
            .iter()
            .find(|(_, e)| e.config.name == name)
            .map(|(k, _)| k.clone())
            .ok_or_else(|| ServeError::not_found(format!("no experiment named '{name}' is running")))?;
        let e = map.remove(&key).expect("found above");
        self.by_endpoint.store(Arc::new(map));
        e.stopped.store(true, Ordering::Release);
        e.save_bandit();
        self.ctx.log.event("experiment_stopped", &e.config.endpoint, json!({"experiment": e.config.name}));
        Ok(e)
    }

    /// Saves every bandit's state and finishes the event log (the server is stopping).
    pub fn shutdown(&self) {
        for e in self.all() {
            e.stopped.store(true, Ordering::Release);
            e.save_bandit();
        }
        if let Some(ev) = &self.ctx.events {
            ev.close();
        }
    }

    /// Joins outcomes to what was served: each item names a request `id` or a `unit`, optionally the
    /// `experiment`, and carries `reward`, `label` and/or `metrics` (`{name: number}`).
    pub fn feedback(&self, items: &[Value], experiment: Option<&str>) -> Result<FeedbackResult, ServeError> {
        let all = self.all();
        if let Some(name) = experiment {
            if !all.iter().any(|e| e.config.name == name) {
                return Err(ServeError::not_found(format!("no experiment named '{name}' is running")));
            }
        }
        let mut out = FeedbackResult::default();
        for (i, item) in items.iter().enumerate() {
            let refuse = |out: &mut FeedbackResult, m: String| out.errors.push(json!({"index": i, "error": m}));
            let Some(obj) = item.as_object() else {
                refuse(&mut out, "an item must be an object with \"id\" or \"unit\"".into());
                continue;
            };
            if let Some(k) = obj.keys().find(|k| !matches!(k.as_str(), "id" | "unit" | "experiment" | "reward" | "label" | "metrics")) {
                refuse(&mut out, format!("unknown field '{k}' (fields: id, unit, experiment, reward, label, metrics)"));
                continue;
            }
            let id = obj.get("id").and_then(Value::as_str);
            let unit = obj.get("unit").and_then(Value::as_str);
            if id.is_none() && unit.is_none() {
                refuse(&mut out, "needs \"id\" (a request id) or \"unit\" (a unit key), as a string".into());
                continue;
            }
            let mut values: Vec<Value64> = Vec::new();
            let mut fail = None;
            if let Some(r) = obj.get("reward") {
                match number(r) {
                    Some(v) if v.is_finite() => values.push(("reward".into(), v)),
                    _ => fail = Some(format!("reward must be a finite number or a boolean, got {r}")),
                }
            }
            let mut label_text = None;
            if let Some(l) = obj.get("label") {
                match (number(l), l) {
                    (Some(v), _) if v.is_finite() => values.push(("label".into(), v)),
                    (_, Value::String(s)) => label_text = Some(s.clone()),
                    _ => fail = Some(format!("label must be a number, a boolean or a string, got {l}")),
                }
            }
            match obj.get("metrics") {
                None => {}
                Some(Value::Object(m)) => {
                    for (k, v) in m {
                        match number(v) {
                            Some(x) if x.is_finite() => values.push((k.clone(), x)),
                            _ => fail = Some(format!("metrics.{k} must be a finite number or a boolean, got {v}")),
                        }
                    }
                }
                Some(v) => fail = Some(format!("metrics must be an object of numbers, got {v}")),
            }
            if let Some(m) = fail {
                refuse(&mut out, m);
                continue;
            }
            if values.is_empty() && label_text.is_none() {
                refuse(&mut out, "carries no outcome: give \"reward\", \"label\" or \"metrics\"".into());
                continue;
            }
            let named = experiment.or_else(|| obj.get("experiment").and_then(Value::as_str));
            let candidates: Vec<&Arc<Experiment>> = all.iter().filter(|e| named.is_none_or(|n| e.config.name == n)).collect();
            if candidates.is_empty() {
                refuse(&mut out, format!("no experiment named '{}' is running", named.unwrap_or_default()));
                continue;
            }
            let by_id = id.and_then(|id| candidates.iter().find_map(|e| e.served(id).map(|(v, _)| (*e, v))));
            let found = by_id.or_else(|| match (unit, candidates.as_slice()) {
                (Some(u), [e]) => e.variant_of_unit(u).map(|v| (*e, v)),
                _ => None,
            });
            match found {
                Some((e, v)) => {
                    e.outcome(v, &values, id, unit, label_text.as_deref());
                    out.accepted += 1;
                }
                None => {
                    out.unmatched += 1;
                    if let Some(ev) = &self.ctx.events {
                        for (k, v) in values.iter().map(|(k, v)| (Some(k.clone()), Some(*v))).chain(values.is_empty().then_some((None, None))) {
                            ev.send(Event {
                                ts_us: ts_us(),
                                kind: "outcome",
                                experiment: named.unwrap_or_default().to_owned(),
                                unit: unit.map(str::to_owned),
                                request_id: id.map(str::to_owned),
                                metric: k,
                                value: v,
                                detail: Some(json!({"unmatched": true, "label": label_text}).to_string()),
                                ..Default::default()
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_documented_and_sticky() {
        // FNV-1a 64 of "" is the offset basis; of "a" a published value.
        assert_eq!(fnv1a64(&[b""]), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63dc4c8601ec8c);
        assert_eq!(bucket("s", "u1"), bucket("s", "u1"));
        assert_ne!(bucket("s", "u1"), bucket("t", "u1"));
        let w = [1.0, 3.0];
        let n = 20000;
        let ones = (0..n).filter(|i| pick(&w, bucket("exp", &format!("user-{i}"))) == 1).count();
        assert!((ones as f64 / n as f64 - 0.75).abs() < 0.02, "{ones}");
        assert_eq!(pick(&[0.0, 1.0], 0.0), 1);
        assert_eq!(pick(&[1.0, 0.0], 0.999999), 0);
    }

    #[test]
    fn latency_quantiles_come_from_the_buckets() {
        let l = Latency::new();
        assert!(l.quantile(0.99).is_none());
        for i in 0..1000 {
            l.record(if i < 985 { 100e-6 } else { 20e-3 });
        }
        let (q, n) = l.quantile(0.99).unwrap();
        assert_eq!(n, 1000);
        assert!(q > 19e-3 && q < 20e-3 * 1.1, "{q}");
        let (m, _) = l.quantile(0.5).unwrap();
        assert!(m >= 100e-6 && m < 100e-6 * 1.1, "{m}");
    }
}
