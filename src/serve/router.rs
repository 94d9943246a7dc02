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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use super::metrics::Metrics;
use super::store::{execute, Store};
use super::tensor::{ModelInput, OutputTensor};
use super::ServeError;
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

/// A running experiment.
pub struct Experiment {
    /// As declared.
    pub config: ExperimentConfig,
    weights: Vec<f64>,
    counts: Vec<AtomicU64>,
    forced: AtomicU64,
    draws: AtomicU64,
    assignments: Vec<metrics::Counter>,
    shadow_tx: Option<SyncSender<ShadowJob>>,
    shadow_stats: Arc<Mutex<Vec<ShadowStats>>>,
    shadow_dropped: AtomicU64,
    shadow_dropped_metric: metrics::Counter,
    nonce: u64,
}

/// Where one request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// Variant index.
    pub variant: usize,
    /// Forced by header or parameter.
    pub forced: bool,
}

impl Experiment {
    /// The salt in use.
    pub fn salt(&self) -> &str {
        self.config.salt.as_deref().unwrap_or(&self.config.name)
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
            return Ok(Assignment { variant: i, forced: true });
        }
        let b = match unit {
            Some(u) => bucket(self.salt(), u),
            None => {
                let k = self.draws.fetch_add(1, Ordering::Relaxed) ^ self.nonce;
                (fmix64(k) >> 11) as f64 / (1u64 << 53) as f64
            }
        };
        let i = pick(&self.weights, b);
        self.count(i);
        Ok(Assignment { variant: i, forced: false })
    }

    fn count(&self, i: usize) {
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.assignments[i].increment(1);
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

    /// Counts, shares and shadow comparisons, as JSON.
    pub fn status(&self) -> serde_json::Value {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let w: f64 = self.weights.iter().sum();
        let variants: Vec<serde_json::Value> = self
            .config
            .variants
            .iter()
            .zip(&counts)
            .zip(&self.weights)
            .map(|((v, &n), &wt)| {
                serde_json::json!({"name": v.name, "model": v.model, "weight": wt / w, "requests": n,
                                   "share": if total > 0 { n as f64 / total as f64 } else { 0.0 }})
            })
            .collect();
        let shadows: Vec<ShadowStats> = self.shadow_stats.lock().map(|s| s.iter().map(|x| x.summary()).collect()).unwrap_or_default();
        serde_json::json!({
            "name": self.config.name, "endpoint": self.config.endpoint, "salt": self.salt(),
            "unit": self.config.unit.as_deref().unwrap_or("unit_id"), "variants": variants,
            "forced": self.forced.load(Ordering::Relaxed), "shadows": shadows,
            "shadow_dropped": self.shadow_dropped.load(Ordering::Relaxed), "config": self.config,
        })
    }
}

/// Every experiment of the server, by endpoint.
#[derive(Default)]
pub struct Router {
    by_endpoint: ArcSwap<HashMap<String, Arc<Experiment>>>,
    write: Mutex<()>,
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

impl Router {
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
    pub fn create(&self, cfg: ExperimentConfig, store: &Arc<Store>, metrics: &Metrics) -> Result<Arc<Experiment>, ServeError> {
        super::config::check_name(&cfg.name).map_err(|e| ServeError::bad(e.to_string()))?;
        if cfg.variants.is_empty() {
            return Err(ServeError::bad(format!("experiment '{}' needs at least one variant", cfg.name)));
        }
        if cfg.variants.iter().any(|v| !(v.weight.is_finite() && v.weight >= 0.0)) || cfg.variants.iter().all(|v| v.weight == 0.0) {
            return Err(ServeError::bad(format!("experiment '{}': weights must be finite, non-negative and not all zero", cfg.name)));
        }
        let mut names = std::collections::HashSet::new();
        for v in &cfg.variants {
            if !names.insert(&v.name) {
                return Err(ServeError::bad(format!("experiment '{}': variant '{}' is named twice", cfg.name, v.name)));
            }
            store.version(&v.model, None).map_err(|_| {
                ServeError::bad(format!("experiment '{}': variant '{}' points at model '{}', which is not loaded", cfg.name, v.name, v.model))
            })?;
        }
        for m in &cfg.shadows {
            store.version(m, None).map_err(|_| ServeError::bad(format!("experiment '{}': shadow model '{m}' is not loaded", cfg.name)))?;
        }
        let _w = self.write.lock().unwrap();
        let current = self.by_endpoint.load();
        if current.values().any(|e| e.config.name == cfg.name) {
            return Err(ServeError::bad(format!("an experiment named '{}' is running; stop it first", cfg.name)));
        }
        if let Some(e) = current.get(&cfg.endpoint) {
            return Err(ServeError::bad(format!("endpoint '{}' is already routed by experiment '{}'", cfg.endpoint, e.config.name)));
        }
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
        let exp = Arc::new(Experiment {
            weights: cfg.variants.iter().map(|v| v.weight).collect(),
            counts: cfg.variants.iter().map(|_| AtomicU64::new(0)).collect(),
            forced: AtomicU64::new(0),
            draws: AtomicU64::new(0),
            assignments: cfg.variants.iter().map(|v| metrics.assignment(&cfg.name, &v.name)).collect(),
            shadow_tx,
            shadow_stats: stats,
            shadow_dropped: AtomicU64::new(0),
            shadow_dropped_metric: metrics.shadow_dropped(&cfg.name),
            nonce: fnv1a64(&[cfg.name.as_bytes(), &super::log::now_ts().to_le_bytes()]),
            config: cfg,
        });
        let mut map = HashMap::clone(&current);
        map.insert(exp.config.endpoint.clone(), exp.clone());
        self.by_endpoint.store(Arc::new(map));
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
        Ok(e)
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
}
