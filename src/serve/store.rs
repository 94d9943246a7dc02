//! The model store: every served model's versions, the one each serves (an atomic pointer readers
//! load without a lock), loading with verification and warm-up, hot swap, rollback, unload, and the
//! per-version dynamic batcher.
//!
//! A request loads the serving version's `Arc` once and keeps it to the end, so a swap never fails or
//! delays it: the old version is dropped (its batcher thread exits once drained) when its last request
//! is answered. Nothing on the request path grows with the number of swaps: versions beyond
//! `keep_versions` are released.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::oneshot;

use super::config::{check_name, BatchConfig};
use super::log::{now_ts, Log};
use super::metrics::{Metrics, VersionMetrics};
use super::tensor::{concat, slice_rows, Data, ModelInput, OutputTensor};
use super::ServeError;
use crate::data::frame::DenseMatrix;
use crate::transform::pipeline::{ColumnType, Deployable, Output};

/// Outputs a request asks for: (name, kind, binary).
pub type Wanted = Vec<(String, Output, bool)>;

/// Requests above this many rows run on the blocking pool instead of a runtime thread.
pub const INLINE_ROWS: usize = 512;

/// One loaded version of a model.
pub struct Version {
    /// Model name.
    pub model: String,
    /// Version label.
    pub version: String,
    /// The model.
    pub deployable: Arc<Deployable>,
    /// SHA-256 of the artifact.
    pub sha256: String,
    /// Where it was read from.
    pub source: Option<PathBuf>,
    /// Input column names, schema order.
    pub columns: Vec<String>,
    /// Metric handles.
    pub metrics: VersionMetrics,
    /// Batching and admission.
    pub batch: BatchConfig,
    batcher: Option<SyncSender<Job>>,
    /// Requests admitted and not yet answered.
    pub admitted: AtomicUsize,
    /// When it was loaded (seconds since the epoch).
    pub loaded_at: f64,
    /// Its monitor, once monitoring looked at it (None inside: nothing to monitor it against).
    pub monitor: std::sync::OnceLock<Option<Arc<super::monitor::Monitor>>>,
}

impl Drop for Version {
    fn drop(&mut self) {
        self.metrics.in_flight.set(0.0);
    }
}

/// A request waiting in a batcher.
pub struct Job {
    input: ModelInput,
    wanted: Wanted,
    deadline: Option<Instant>,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Vec<OutputTensor>, ServeError>>,
}

/// Runs the model on one input for every wanted output.
pub fn execute(dep: &Deployable, input: &ModelInput, wanted: &Wanted, n_threads: i64) -> Result<Vec<OutputTensor>, ServeError> {
    let rows = input.rows();
    let mut out = Vec::with_capacity(wanted.len());
    for (name, kind, binary) in wanted {
        let tensor = match input {
            ModelInput::Matrix { data, rows, cols } => match data {
                Data::F32(v) => {
                    let view = ndarray::ArrayView2::from_shape((*rows, *cols), v).map_err(|e| ServeError::internal(e.to_string()))?;
                    dep.predict_dense(&DenseMatrix::F32(view), *kind, n_threads)
                }
                Data::F64(v) => {
                    let view = ndarray::ArrayView2::from_shape((*rows, *cols), v).map_err(|e| ServeError::internal(e.to_string()))?;
                    dep.predict_dense(&DenseMatrix::F64(view), *kind, n_threads)
                }
                _ => return Err(ServeError::internal("matrix input of a non-float type")),
            },
            ModelInput::Columns { batch } => dep.predict_arrow(std::slice::from_ref(batch), &batch.schema(), *kind, n_threads),
        }
        .map_err(ServeError::from_core)?;
        out.push(OutputTensor { name: name.clone(), tensor, rows, binary: *binary });
    }
    Ok(out)
}

fn threads_for(rows: usize) -> i64 {
    if rows >= 4096 {
        0
    } else {
        1
    }
}

fn batcher_loop(dep: Arc<Deployable>, cfg: BatchConfig, rx: Receiver<Job>, metrics_rows: metrics::Histogram, queue: metrics::Histogram) {
    let max_rows = cfg.max_batch_size.max(1);
    let delay = Duration::from_micros(cfg.max_queue_delay_us);
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut rows = jobs[0].input.rows();
        let until = Instant::now() + delay;
        while rows < max_rows {
            let next = if delay.is_zero() {
                rx.try_recv().ok()
            } else {
                let now = Instant::now();
                if now >= until {
                    rx.try_recv().ok()
                } else {
                    match rx.recv_timeout(until - now) {
                        Ok(j) => Some(j),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => None,
                    }
                }
            };
            match next {
                Some(j) => {
                    rows += j.input.rows();
                    jobs.push(j);
                }
                None => break,
            }
        }
        let now = Instant::now();
        let mut live = Vec::with_capacity(jobs.len());
        for j in jobs {
            queue.record(now.duration_since(j.enqueued).as_secs_f64());
            if j.deadline.is_some_and(|d| now > d) {
                let _ = j.reply.send(Err(ServeError::deadline()));
            } else {
                live.push(j);
            }
        }
        // Requests with the same layout and outputs run as one call; the rest one by one.
        while !live.is_empty() {
            let wanted = live[0].wanted.clone();
            let head = live[0].input.clone_layout();
            let (same, rest): (Vec<Job>, Vec<Job>) =
                live.into_iter().partition(|j| j.wanted == wanted && j.input.same_layout(&head));
            live = rest;
            let counts: Vec<usize> = same.iter().map(|j| j.input.rows()).collect();
            let total: usize = counts.iter().sum();
            let (inputs, replies): (Vec<ModelInput>, Vec<_>) = same.into_iter().map(|j| (j.input, j.reply)).unzip();
            let single = inputs.len() == 1;
            let joined = if single { inputs.first().cloned() } else { concat(inputs.clone()) };
            metrics_rows.record(total as f64);
            let result = match &joined {
                Some(input) => execute(&dep, input, &wanted, threads_for(total)),
                None => Err(ServeError::internal("requests of different layouts were batched")),
            };
            match result {
                Ok(outs) => {
                    let mut at = 0;
                    for (reply, n) in replies.into_iter().zip(counts) {
                        let part = outs
                            .iter()
                            .map(|o| OutputTensor {
                                name: o.name.clone(),
                                tensor: if single { o.tensor.clone() } else { slice_rows(&o.tensor, at, at + n) },
                                rows: n,
                                binary: o.binary,
                            })
                            .collect();
                        let _ = reply.send(Ok(part));
                        at += n;
                    }
                }
                Err(e) if single => {
                    let _ = replies.into_iter().next().map(|r| r.send(Err(e)));
                }
                Err(_) => {
                    // One bad request must not fail its neighbours: each runs alone.
                    for (reply, input) in replies.into_iter().zip(inputs) {
                        let _ = reply.send(execute(&dep, &input, &wanted, 1));
                    }
                }
            }
        }
    }
}

impl Version {
    /// Admits a request (429 when the model's queue is full); the guard releases it.
    pub fn admit(self: &Arc<Self>) -> Result<Admitted, ServeError> {
        let n = self.admitted.fetch_add(1, Ordering::AcqRel);
        if n >= self.batch.queue_size {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(ServeError::overloaded(&self.model, self.batch.queue_size));
        }
        self.metrics.in_flight.increment(1.0);
        Ok(Admitted { v: self.clone() })
    }

    /// Predicts: through the batcher when batching is on, else here (small requests) or on the
    /// blocking pool (large ones).
    pub async fn run(self: &Arc<Self>, input: ModelInput, wanted: Wanted, deadline: Option<Instant>) -> Result<Vec<OutputTensor>, ServeError> {
        let rows = input.rows();
        self.metrics.rows.increment(rows as u64);
        let wait = |rx: oneshot::Receiver<Result<Vec<OutputTensor>, ServeError>>| async move {
            let fut = async { rx.await.unwrap_or_else(|_| Err(ServeError::internal("the model worker stopped"))) };
            match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), fut).await.unwrap_or_else(|_| Err(ServeError::deadline())),
                None => fut.await,
            }
        };
        if let Some(tx) = &self.batcher {
            let (reply, rx) = oneshot::channel();
            let job = Job { input, wanted, deadline, enqueued: Instant::now(), reply };
            match tx.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return Err(ServeError::overloaded(&self.model, self.batch.queue_size)),
                Err(TrySendError::Disconnected(_)) => return Err(ServeError::internal("the model worker stopped")),
            }
            return wait(rx).await;
        }
        self.metrics.batch_rows.record(rows as f64);
        if rows <= INLINE_ROWS {
            return execute(&self.deployable, &input, &wanted, 1);
        }
        let dep = self.deployable.clone();
        let (reply, rx) = oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(&dep, &input, &wanted, threads_for(rows))))
                .unwrap_or_else(|_| Err(ServeError::internal("the model panicked on this request")));
            let _ = reply.send(r);
        });
        wait(rx).await
    }
}

/// A request admitted to a version; leaving frees its place.
pub struct Admitted {
    v: Arc<Version>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.v.admitted.fetch_sub(1, Ordering::AcqRel);
        self.v.metrics.in_flight.decrement(1.0);
    }
}

/// One model: its loaded versions and the one it serves.
pub struct ModelEntry {
    /// Name.
    pub name: String,
    /// The serving version (None once unloaded).
    pub serving: ArcSwapOption<Version>,
    /// Loaded versions, oldest first.
    versions: Mutex<Vec<Arc<Version>>>,
    /// The last load that was refused, and why.
    pub last_error: Mutex<Option<String>>,
}

impl ModelEntry {
    /// Loaded version labels, oldest first.
    pub fn version_labels(&self) -> Vec<String> {
        self.versions.lock().unwrap().iter().map(|v| v.version.clone()).collect()
    }

    /// A loaded version by label.
    pub fn get(&self, label: &str) -> Option<Arc<Version>> {
        self.versions.lock().unwrap().iter().find(|v| v.version == label).cloned()
    }
}

/// Where a model comes from.
pub enum Source {
    /// A file.
    Path(PathBuf),
    /// Artifact bytes.
    Bytes(Vec<u8>),
}

/// Every model of the server.
pub struct Store {
    models: ArcSwap<HashMap<String, Arc<ModelEntry>>>,
    write: Mutex<()>,
    metrics: Arc<Metrics>,
    log: Log,
    keep_versions: usize,
    batching: BatchConfig,
    /// The model repository, when one was configured.
    pub repository: Option<PathBuf>,
}

/// What a load did.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Model.
    pub model: String,
    /// Version now serving.
    pub version: String,
    /// Version served before (None for a first load).
    pub previous: Option<String>,
    /// SHA-256 of the artifact.
    pub sha256: String,
    /// Seconds from the call to serving.
    pub seconds: f64,
}

fn schema_columns(dep: &Deployable) -> Vec<String> {
    dep.schema().columns.iter().map(|c| c.name.clone()).collect()
}

/// One row of plausible values (training minimum, or 0) to run once before a version serves.
fn warm_up(dep: &Deployable) -> Result<(), ServeError> {
    let cols = &dep.schema().columns;
    if cols.iter().all(|c| matches!(c.dtype, ColumnType::Float | ColumnType::Integer | ColumnType::Bool)) && !cols.is_empty() {
        let row: Vec<f64> = cols.iter().map(|c| c.min.unwrap_or(0.0)).collect();
        let view = ndarray::ArrayView2::from_shape((1, row.len()), &row).map_err(|e| ServeError::internal(e.to_string()))?;
        match dep.predict_dense(&DenseMatrix::F64(view), Output::Predict, 1) {
            Ok(_) | Err(crate::Error::Data(_)) => {}
            Err(e) => return Err(ServeError::from_core(e)),
        }
    }
    Ok(())
}

impl Store {
    /// An empty store.
    pub fn new(metrics: Arc<Metrics>, log: Log, keep_versions: usize, batching: BatchConfig, repository: Option<PathBuf>) -> Store {
        Store { models: ArcSwap::from_pointee(HashMap::new()), write: Mutex::new(()), metrics, log, keep_versions, batching, repository }
    }

    /// A model by name.
    pub fn entry(&self, name: &str) -> Option<Arc<ModelEntry>> {
        self.models.load().get(name).cloned()
    }

    /// Every model, by name.
    pub fn entries(&self) -> Vec<Arc<ModelEntry>> {
        let mut v: Vec<_> = self.models.load().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The version a request addresses: the serving one, or a loaded one by label.
    pub fn version(&self, name: &str, label: Option<&str>) -> Result<Arc<Version>, ServeError> {
        let entry = self.entry(name).ok_or_else(|| ServeError::not_found(format!("model '{name}' is not loaded")))?;
        match label {
            None | Some("") => entry.serving.load_full().ok_or_else(|| ServeError::not_found(format!("model '{name}' is not loaded"))),
            Some(l) => entry
                .get(l)
                .ok_or_else(|| ServeError::not_found(format!("model '{name}' has no loaded version '{l}' (loaded: {:?})", entry.version_labels()))),
        }
    }

    /// Reads, verifies, warms up and serves a version; a refused artifact leaves the serving version
    /// as it is. `version` None: one more than the highest numeric label.
    pub fn load(&self, name: &str, source: Source, version: Option<String>, batching: Option<BatchConfig>) -> Result<Loaded, ServeError> {
        let t0 = Instant::now();
        let result = self.load_inner(name, source, version, batching, t0);
        if let Err(e) = &result {
            self.metrics.event(name, "refused");
            self.log.event("refused", name, serde_json::json!({"reason": e.message}));
            if let Some(entry) = self.entry(name) {
                *entry.last_error.lock().unwrap() = Some(e.message.clone());
            }
        }
        result
    }

    fn load_inner(&self, name: &str, source: Source, version: Option<String>, batching: Option<BatchConfig>, t0: Instant) -> Result<Loaded, ServeError> {
        check_name(name).map_err(ServeError::from_core)?;
        if let Some(v) = &version {
            check_name(v).map_err(|_| ServeError::bad(format!("version label {v:?} is not valid")))?;
        }
        let (bytes, path) = match source {
            Source::Path(p) => {
                let b = std::fs::read(&p).map_err(|e| ServeError::bad(format!("cannot read model file {}: {e}", p.display())))?;
                (b, Some(p))
            }
            Source::Bytes(b) => (b, None),
        };
        let (header, _) = crate::artifact::verify(&bytes).map_err(ServeError::from_core)?;
        let dep = Arc::new(Deployable::from_artifact(&bytes).map_err(ServeError::from_core)?);
        drop(bytes);
        warm_up(&dep)?;
        let _w = self.write.lock().unwrap();
        let existing = self.entry(name);
        let label = match version {
            Some(v) => v,
            None => {
                let top = existing
                    .as_ref()
                    .map(|e| e.version_labels().iter().filter_map(|l| l.parse::<u64>().ok()).max().unwrap_or(0))
                    .unwrap_or(0);
                (top + 1).to_string()
            }
        };
        let batch = batching.unwrap_or_else(|| self.batching.clone());
        let metrics = self.metrics.version(name, &label);
        let batcher = if batch.max_batch_size > 1 {
            let (tx, rx) = sync_channel::<Job>(batch.queue_size.max(1));
            let (d, cfg, rows, queue) = (dep.clone(), batch.clone(), metrics.batch_rows.clone(), metrics.queue.clone());
            std::thread::Builder::new()
                .name(format!("ferrox-batch-{name}"))
                .spawn(move || batcher_loop(d, cfg, rx, rows, queue))
                .map_err(|e| ServeError::internal(format!("cannot start the batcher: {e}")))?;
            Some(tx)
        } else {
            None
        };
        let v = Arc::new(Version {
            model: name.to_owned(),
            version: label.clone(),
            columns: schema_columns(&dep),
            deployable: dep,
            sha256: header.sha256.clone(),
            source: path.clone(),
            metrics,
            batch,
            batcher,
            admitted: AtomicUsize::new(0),
            loaded_at: now_ts(),
            monitor: std::sync::OnceLock::new(),
        });
        let entry = match existing {
            Some(e) => e,
            None => {
                let e = Arc::new(ModelEntry {
                    name: name.to_owned(),
                    serving: ArcSwapOption::empty(),
                    versions: Mutex::new(Vec::new()),
                    last_error: Mutex::new(None),
                });
                let mut map = HashMap::clone(&self.models.load());
                map.insert(name.to_owned(), e.clone());
                self.models.store(Arc::new(map));
                e
            }
        };
        let previous = entry.serving.load_full().map(|p| p.version.clone());
        {
            let mut versions = entry.versions.lock().unwrap();
            versions.retain(|x| x.version != label);
            versions.push(v.clone());
            entry.serving.store(Some(v.clone()));
            while versions.len() > self.keep_versions {
                let old = versions.remove(0);
                self.metrics.serving(name, &old.version, false);
            }
        }
        *entry.last_error.lock().unwrap() = None;
        if let Some(p) = &previous {
            self.metrics.serving(name, p, false);
        }
        self.metrics.serving(name, &label, true);
        let seconds = t0.elapsed().as_secs_f64();
        let event = if previous.is_some() { "swap" } else { "load" };
        self.metrics.event(name, event);
        self.log.event(
            event,
            name,
            serde_json::json!({"version": label, "previous": previous, "sha256": header.sha256,
                               "source": path.map(|p| p.display().to_string()), "seconds": seconds}),
        );
        Ok(Loaded { model: name.to_owned(), version: label, previous, sha256: header.sha256, seconds })
    }

    /// Serves an already loaded version again (instant rollback); `to` None: the version loaded
    /// before the serving one.
    pub fn activate(&self, name: &str, to: Option<&str>) -> Result<Loaded, ServeError> {
        let t0 = Instant::now();
        let _w = self.write.lock().unwrap();
        let entry = self.entry(name).ok_or_else(|| ServeError::not_found(format!("model '{name}' is not loaded")))?;
        let current = entry.serving.load_full();
        let target = {
            let versions = entry.versions.lock().unwrap();
            match to {
                Some(l) => versions.iter().find(|v| v.version == l).cloned(),
                None => {
                    let at = current.as_ref().and_then(|c| versions.iter().position(|v| Arc::ptr_eq(v, c)));
                    match at {
                        Some(i) if i > 0 => Some(versions[i - 1].clone()),
                        _ => None,
                    }
                }
            }
        }
        .ok_or_else(|| {
            ServeError::not_found(format!(
                "model '{name}' has no loaded version {} to serve (loaded: {:?})",
                to.map(|t| format!("'{t}'")).unwrap_or_else(|| "before the serving one".into()),
                entry.version_labels()
            ))
        })?;
        entry.serving.store(Some(target.clone()));
        let previous = current.map(|c| c.version.clone());
        if let Some(p) = &previous {
            self.metrics.serving(name, p, false);
        }
        self.metrics.serving(name, &target.version, true);
        self.metrics.event(name, "rollback");
        let seconds = t0.elapsed().as_secs_f64();
        self.log.event("rollback", name, serde_json::json!({"version": target.version, "previous": previous, "seconds": seconds}));
        Ok(Loaded { model: name.to_owned(), version: target.version.clone(), previous, sha256: target.sha256.clone(), seconds })
    }

    /// Stops serving a model (in-flight requests finish on the version they hold).
    pub fn unload(&self, name: &str) -> Result<(), ServeError> {
        let _w = self.write.lock().unwrap();
        let mut map = HashMap::clone(&self.models.load());
        let entry = map.remove(name).ok_or_else(|| ServeError::not_found(format!("model '{name}' is not loaded")))?;
        self.models.store(Arc::new(map));
        if let Some(v) = entry.serving.swap(None) {
            self.metrics.serving(name, &v.version, false);
        }
        entry.versions.lock().unwrap().clear();
        self.metrics.event(name, "unload");
        self.log.event("unload", name, serde_json::json!({}));
        Ok(())
    }

    /// The versions a repository holds for a model, ascending (numeric labels by number).
    pub fn repository_versions(&self, name: &str) -> Vec<(String, PathBuf)> {
        let Some(root) = &self.repository else { return Vec::new() };
        repository_versions(&root.join(name))
    }

    /// Model names in the repository.
    pub fn repository_models(&self) -> Vec<String> {
        let Some(root) = &self.repository else { return Vec::new() };
        let mut names: Vec<String> = std::fs::read_dir(root)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| check_name(n).is_ok() && !repository_versions(&root.join(n)).is_empty())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Loads a model's repository versions (all of them up to `keep_versions`, newest serving).
    pub fn load_from_repository(&self, name: &str) -> Result<Loaded, ServeError> {
        let found = self.repository_versions(name);
        if found.is_empty() {
            return Err(ServeError::not_found(format!(
                "model '{name}' is not in the model repository (expected <repository>/{name}/<version>/model.frx)"
            )));
        }
        let skip = found.len().saturating_sub(self.keep_versions);
        let mut last = None;
        for (label, path) in found.into_iter().skip(skip) {
            last = Some(self.load(name, Source::Path(path), Some(label), None)?);
        }
        Ok(last.expect("at least one version"))
    }
}

fn repository_versions(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let label = e.file_name().into_string().ok()?;
                    let p = e.path().join("model.frx");
                    (check_name(&label).is_ok() && p.is_file()).then_some((label, p))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| match (a.0.parse::<u64>(), b.0.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.0.cmp(&b.0),
    });
    v
}
