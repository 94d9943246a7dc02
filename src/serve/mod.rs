//! The model server: the Open Inference Protocol (KServe v2) over REST (axum, HTTP/1.1 and HTTP/2)
//! and gRPC (tonic), with no Python on the request path.
//!
//! The core pieces know no protocol: [`store`] (versions, hot swap, batching), [`tensor`] (requests
//! and their conversion to the model's input), [`metrics`] and [`log`]; [`http`] and [`grpc`] are thin
//! front-ends over [`ServerState`]. [`Server`] owns the runtime, the listeners and graceful shutdown.

pub mod config;
pub mod grpc;
pub mod http;
pub mod log;
pub mod metrics;
pub mod monitor;
pub mod router;
pub mod store;
pub mod tensor;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use config::{BatchConfig, ModelConfig, ServerConfig};
use metrics::{Cause, Metrics};
use store::{Loaded, Source, Store, Version};
use tensor::{model_input, output_kind, InferRequest, OutputTensor};

use crate::error::{Error, Result};
use crate::transform::pipeline::ColumnType;

/// The server's version string (server metadata).
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Versions of one model whose monitors are kept (a canary watches two).
const MONITORED_VERSIONS: usize = 4;
/// Protocol extensions served.
pub const EXTENSIONS: &[&str] = &["binary_tensor_data", "model_repository", "parameters", "health", "metadata"];

/// A failed request: the HTTP status, the failure cause and a message naming what was wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeError {
    /// HTTP status code.
    pub status: u16,
    /// Metric cause.
    pub cause: Cause,
    /// What was wrong.
    pub message: String,
    /// The artifact failed verification (a changed or truncated file, a newer format).
    pub integrity: bool,
}

impl ServeError {
    /// 400.
    pub fn bad(msg: impl Into<String>) -> Self {
        ServeError { status: 400, cause: Cause::BadRequest, message: msg.into(), integrity: false }
    }
    /// 404.
    pub fn not_found(msg: impl Into<String>) -> Self {
        ServeError { status: 404, cause: Cause::NotFound, message: msg.into(), integrity: false }
    }
    /// 429.
    pub fn overloaded(model: &str, limit: usize) -> Self {
        ServeError {
            status: 429,
            cause: Cause::Overloaded,
            message: format!("model '{model}' has {limit} requests queued or running; retry later"),
            integrity: false,
        }
    }
    /// 504.
    pub fn deadline() -> Self {
        ServeError {
            status: 504,
            cause: Cause::Deadline,
            message: "the request's deadline passed before it was answered".into(),
            integrity: false,
        }
    }
    /// 500.
    pub fn internal(msg: impl Into<String>) -> Self {
        ServeError { status: 500, cause: Cause::Internal, message: msg.into(), integrity: false }
    }
    /// 401.
    pub fn unauthorized() -> Self {
        ServeError {
            status: 401,
            cause: Cause::Unauthorized,
            message: "missing or wrong bearer token (send 'Authorization: Bearer <token>')".into(),
            integrity: false,
        }
    }
    /// The error for a core error: bad input is the client's (400), a refused artifact too.
    pub fn from_core(e: Error) -> Self {
        match e {
            Error::Data(m) | Error::Param(m) => ServeError::bad(m),
            Error::Integrity(m) => ServeError { integrity: true, ..ServeError::bad(m) },
            e @ Error::Version { .. } => ServeError { integrity: true, ..ServeError::bad(e.to_string()) },
            Error::Io { .. } | Error::Device(_) | Error::Internal(_) => ServeError::internal(e.to_string()),
        }
    }
}

/// An answered inference.
#[derive(Debug)]
pub struct InferResponse {
    /// Model.
    pub model_name: String,
    /// Version that answered.
    pub model_version: String,
    /// Request id (the client's, or generated).
    pub id: String,
    /// Outputs.
    pub outputs: Vec<OutputTensor>,
    /// Response parameters (the experiment and variant that answered).
    pub parameters: Vec<(&'static str, String)>,
}

/// One tensor of model metadata.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TensorMeta {
    /// Name.
    pub name: String,
    /// Protocol datatype.
    pub datatype: String,
    /// Shape, -1 for the rows.
    pub shape: Vec<i64>,
}

/// Model metadata (inputs from the artifact's schema).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelMeta {
    /// Name.
    pub name: String,
    /// Loaded versions.
    pub versions: Vec<String>,
    /// Always "ferrox".
    pub platform: String,
    /// Inputs.
    pub inputs: Vec<TensorMeta>,
    /// Outputs.
    pub outputs: Vec<TensorMeta>,
}

/// One row of the repository index.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IndexEntry {
    /// Model.
    pub name: String,
    /// Version.
    pub version: String,
    /// READY or UNAVAILABLE.
    pub state: String,
    /// Why it is unavailable.
    pub reason: String,
}

/// What both front-ends share.
pub struct ServerState {
    /// Configuration, resolved.
    pub config: ServerConfig,
    /// Models.
    pub store: Arc<Store>,
    /// Experiments.
    pub router: router::Router,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Logging.
    pub log: log::Log,
    seq: AtomicU64,
    id_salt: u64,
    ready: AtomicBool,
    /// Drift monitors by model name (None: the serving version has no reference profile).
    monitors: std::sync::Mutex<std::collections::HashMap<String, Vec<(String, Option<Arc<monitor::Monitor>>)>>>,
}

impl ServerState {
    /// Checks a bearer token (constant-time comparison).
    pub fn authorized(&self, header: Option<&str>) -> bool {
        let Some(token) = &self.config.auth_token else { return true };
        let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer "))) else {
            return false;
        };
        let (a, b) = (given.trim().as_bytes(), token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Whether the server is ready (models loaded, not shutting down).
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Runs an inference request end to end; `start` is when the request arrived. A model name that
    /// an experiment routes goes to the variant the request is assigned to.
    pub async fn infer(&self, model: &str, version: Option<&str>, req: InferRequest, start: Instant) -> std::result::Result<InferResponse, ServeError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let routed = match version {
            None => self.router.for_endpoint(model),
            Some(_) => None,
        };
        let mut unit = None;
        let (target, assignment) = match &routed {
            Some(exp) => {
                let unit_key = exp.config.unit.as_deref().unwrap_or("unit_id");
                unit = req.param(unit_key).or_else(|| req.param("x-ferrox-unit")).map(str::to_owned);
                let force = req.param("x-ferrox-variant").or_else(|| req.param("variant"));
                let a = exp.assign(unit.as_deref(), force)?;
                (exp.config.variants[a.variant].model.as_str(), Some(a))
            }
            None => (model, None),
        };
        let v = match self.store.version(target, version) {
            Ok(v) => v,
            Err(e) => {
                self.metrics.unmatched_failure(e.cause);
                return Err(e);
            }
        };
        v.metrics.requests.increment(1);
        let id = req.id.clone().unwrap_or_else(|| format!("{:016x}{:08x}", self.id_salt, seq));
        let shadow = routed.as_ref().filter(|e| e.has_shadows());
        let result = self.run(&v, req, start, shadow.map(|e| e.as_ref()), &id).await;
        let elapsed = start.elapsed();
        v.metrics.latency.record(elapsed.as_secs_f64());
        if let Err(e) = &result {
            v.metrics.failure(e.cause).increment(1);
        }
        if let (Some(e), Some(a)) = (&routed, &assignment) {
            e.record(a, unit.as_deref(), &id, result.is_ok(), elapsed.as_secs_f64(), result.as_ref().ok().map(|o| o.as_slice()), target, &v.version);
        }
        if self.log.sample(seq) {
            self.log.request(serde_json::json!({
                "id": id, "model": model, "version": v.version, "status": result.as_ref().map(|_| 200).unwrap_or_else(|e| e.status),
                "seconds": elapsed.as_secs_f64(), "rows": result.as_ref().ok().and_then(|o| o.first()).map(|o| o.rows),
                "error": result.as_ref().err().map(|e| e.message.clone()),
                "experiment": routed.as_ref().map(|e| e.config.name.clone()),
                "variant": routed.as_ref().zip(assignment).map(|(e, a)| e.config.variants[a.variant].name.clone()),
            }));
        }
        let parameters = match (&routed, assignment) {
            (Some(e), Some(a)) => {
                let mut p = vec![("experiment", e.config.name.clone()), ("variant", e.config.variants[a.variant].name.clone())];
                if let Some(q) = a.propensity {
                    p.push(("propensity", format!("{q}")));
                }
                p
            }
            _ => Vec::new(),
        };
        result.map(|outputs| InferResponse { model_name: model.to_owned(), model_version: v.version.clone(), id, outputs, parameters })
    }

    async fn run(
        &self,
        v: &Arc<Version>,
        req: InferRequest,
        start: Instant,
        shadow: Option<&router::Experiment>,
        id: &str,
    ) -> std::result::Result<Vec<OutputTensor>, ServeError> {
        let _admitted = v.admit()?;
        let mut wanted = Vec::with_capacity(req.outputs.len().max(1));
        for o in &req.outputs {
            wanted.push((o.name.clone(), output_kind(&o.name)?, o.binary || req.binary_output));
        }
        if wanted.is_empty() {
            wanted.push(("predict".to_owned(), output_kind("predict")?, req.binary_output));
        }
        if req.contrib && !wanted.iter().any(|w| w.1 == crate::transform::pipeline::Output::Contrib) {
            wanted.push(("contrib".to_owned(), output_kind("contrib")?, req.binary_output));
        }
        let input = model_input(req.inputs, &v.columns)?;
        if let Some(m) = self.monitor_for(v) {
            if m.sampled() {
                m.offer(id, input.clone());
            }
        }
        let budget = match (req.timeout_us, self.config.request_timeout_ms) {
            (Some(us), _) => Some(Duration::from_micros(us)),
            (None, 0) => None,
            (None, ms) => Some(Duration::from_millis(ms)),
        };
        let deadline = budget.map(|b| start + b);
        match shadow {
            None => v.run(input, wanted, deadline).await,
            Some(exp) => {
                let copy = input.clone();
                let out = v.run(input, wanted, deadline).await?;
                exp.shadow(copy, &out);
                Ok(out)
            }
        }
    }

    /// The monitor of a served version, started on its first request when monitoring is on and
    /// the artifact carries a reference profile or a performance reference. Each version has its
    /// own (a canary's champion and challenger are watched apart); a model keeps the monitors of
    /// its last few versions.
    fn monitor_for(&self, v: &Arc<Version>) -> Option<Arc<monitor::Monitor>> {
        let cfg = self.config.monitoring.as_ref()?;
        // The request path reads the version's own slot: no lock, no lookup.
        v.monitor
            .get_or_init(|| {
                let started = match monitor::Monitor::start(&v.model, &v.version, v.deployable.clone(), cfg, self.metrics.clone(), self.log.clone()) {
                    Ok(m) => m,
                    Err(e) => {
                        self.log.event("monitoring_error", &v.model, serde_json::json!({"version": v.version, "error": e.to_string()}));
                        None
                    }
                };
                let mut map = self.monitors.lock().unwrap();
                let versions = map.entry(v.model.clone()).or_default();
                versions.retain(|(ver, _)| *ver != v.version);
                versions.push((v.version.clone(), started.clone()));
                while versions.len() > MONITORED_VERSIONS {
                    versions.remove(0);
                }
                started
            })
            .clone()
    }

    /// The monitoring status of a model's serving version (or of `version`): counters, the last
    /// windows, performance, recent alerts.
    pub fn monitoring(&self, model: &str) -> std::result::Result<serde_json::Value, ServeError> {
        self.monitoring_of(model, None)
    }

    /// The monitoring status of one version of a model (None: the serving one).
    pub fn monitoring_of(&self, model: &str, version: Option<&str>) -> std::result::Result<serde_json::Value, ServeError> {
        if self.config.monitoring.is_none() {
            return Err(ServeError::not_found("monitoring is off on this server (set [monitoring] in its config)"));
        }
        let serving = self.store.version(model, version)?;
        let map = self.monitors.lock().unwrap();
        let found = map.get(model).and_then(|vs| vs.iter().find(|(ver, _)| *ver == serving.version));
        match found {
            Some((_, Some(m))) => {
                let mut s = m.status();
                s["monitored_versions"] = serde_json::Value::from(map[model].iter().filter(|(_, m)| m.is_some()).map(|(v, _)| v.clone()).collect::<Vec<_>>());
                Ok(s)
            }
            Some((_, None)) => Err(ServeError::not_found(format!("model '{model}' has no reference profile to monitor against"))),
            None => Ok(serde_json::json!({"version": serving.version, "rows": 0, "windows": 0, "alerts": 0, "last_window": null})),
        }
    }

    /// Joins outcomes to what was served: to running experiments (`Router::feedback`) and, for
    /// items with a request `id` and a numeric `label`, to the monitors' sampled requests
    /// (realised performance). Without experiments running, items go to the monitors only.
    pub fn feedback(&self, items: &[serde_json::Value], experiment: Option<&str>) -> std::result::Result<router::FeedbackResult, ServeError> {
        let monitors: Vec<Arc<monitor::Monitor>> = match self.config.monitoring {
            Some(_) => self.monitors.lock().unwrap().values().flat_map(|vs| vs.iter().filter_map(|(_, m)| m.clone())).filter(|m| m.performance).collect(),
            None => Vec::new(),
        };
        let mut monitored = 0;
        if !monitors.is_empty() {
            let outcomes: Vec<(u64, f64)> = items
                .iter()
                .filter_map(|item| Some((item.get("id")?.as_str()?, item.get("label").and_then(router::number)?)))
                .filter(|(_, label)| label.is_finite())
                .map(|(id, label)| (monitor::id_hash(id), label))
                .collect();
            if !outcomes.is_empty() {
                let outcomes = Arc::new(outcomes);
                let mut queued = false;
                for m in &monitors {
                    queued |= m.outcomes(&outcomes);
                }
                if queued {
                    monitored = outcomes.len();
                }
            }
        }
        let mut r = if experiment.is_none() && self.router.all().is_empty() && !monitors.is_empty() {
            router::FeedbackResult::default()
        } else {
            self.router.feedback(items, experiment)?
        };
        r.monitored = monitored;
        Ok(r)
    }

    /// Metadata of a model (version None: the serving one).
    pub fn model_metadata(&self, model: &str, version: Option<&str>) -> std::result::Result<ModelMeta, ServeError> {
        let v = self.store.version(model, version)?;
        let entry = self.store.entry(model).ok_or_else(|| ServeError::not_found(format!("model '{model}' is not loaded")))?;
        let dep = &v.deployable;
        let inputs = dep
            .schema()
            .columns
            .iter()
            .map(|c| TensorMeta {
                name: c.name.clone(),
                datatype: match c.dtype {
                    ColumnType::Float => "FP64",
                    ColumnType::Integer => "INT64",
                    ColumnType::Bool => "BOOL",
                    ColumnType::String => "BYTES",
                }
                .into(),
                shape: vec![-1],
            })
            .collect();
        let outputs = dep
            .outputs()
            .iter()
            .map(|o| TensorMeta {
                name: o.name.into(),
                datatype: o.datatype.into(),
                shape: if o.width == 1 { vec![-1] } else { vec![-1, o.width as i64] },
            })
            .collect();
        Ok(ModelMeta { name: model.to_owned(), versions: entry.version_labels(), platform: "ferrox".into(), inputs, outputs })
    }

    /// Whether a model (version) is ready.
    pub fn model_ready(&self, model: &str, version: Option<&str>) -> bool {
        self.store.version(model, version).is_ok()
    }

    /// Loads a model: from `path` when given, else the version `version` already loaded (instant
    /// rollback), else from the model repository.
    /// With `rollback` (and no path), serves the loaded version `version`, or the one before the serving one.
    pub fn load(&self, model: &str, path: Option<&str>, version: Option<String>, rollback: bool) -> std::result::Result<Loaded, ServeError> {
        let loaded = self.load_version(model, path, version, rollback)?;
        self.prepare_monitors(model);
        Ok(loaded)
    }

    /// Starts the monitors of a model's loaded versions now, off the request path (a monitor copies
    /// the reference profile, which can take milliseconds).
    pub fn prepare_monitors(&self, model: &str) {
        if self.config.monitoring.is_none() {
            return;
        }
        if let Some(e) = self.store.entry(model) {
            for label in e.version_labels() {
                if let Ok(v) = self.store.version(model, Some(&label)) {
                    self.monitor_for(&v);
                }
            }
        }
    }

    fn load_version(&self, model: &str, path: Option<&str>, version: Option<String>, rollback: bool) -> std::result::Result<Loaded, ServeError> {
        match (path, &version) {
            (Some(p), _) => self.store.load(model, Source::Path(p.into()), version, None),
            (None, _) if rollback => self.store.activate(model, version.as_deref()),
            (None, Some(v)) if self.store.entry(model).and_then(|e| e.get(v)).is_some() => self.store.activate(model, Some(v)),
            (None, _) if self.store.repository.is_some() => self.store.load_from_repository(model),
            (None, Some(v)) => Err(ServeError::not_found(format!(
                "model '{model}' has no loaded version '{v}' and this server has no model repository; give a \"path\""
            ))),
            (None, _) => Err(ServeError::bad(format!(
                "load of '{model}' needs a \"path\" parameter (this server has no model repository)"
            ))),
        }
    }

    /// The repository index: loaded versions, and repository models not loaded.
    pub fn index(&self, ready_only: bool) -> Vec<IndexEntry> {
        let mut out = Vec::new();
        let entries = self.store.entries();
        for e in &entries {
            let serving = e.serving.load_full().map(|v| v.version.clone());
            for label in e.version_labels() {
                let state = if Some(&label) == serving.as_ref() { "READY" } else { "LOADED" };
                out.push(IndexEntry { name: e.name.clone(), version: label, state: state.into(), reason: String::new() });
            }
            if let Some(err) = e.last_error.lock().unwrap().clone() {
                if !ready_only {
                    out.push(IndexEntry { name: e.name.clone(), version: String::new(), state: "UNAVAILABLE".into(), reason: err });
                }
            }
        }
        if !ready_only {
            for name in self.store.repository_models() {
                if !entries.iter().any(|e| e.name == name) {
                    out.push(IndexEntry { name, version: String::new(), state: "UNAVAILABLE".into(), reason: "unloaded".into() });
                }
            }
        }
        if ready_only {
            out.retain(|e| e.state == "READY");
        }
        out
    }
}

/// A running server: its runtime, listeners and shutdown.
pub struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    state: Arc<ServerState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// REST address.
    pub http_addr: Option<SocketAddr>,
    /// gRPC address.
    pub grpc_addr: Option<SocketAddr>,
}

fn bind(host: &str, port: u16) -> Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind((host, port)).map_err(|e| Error::io(format!("cannot listen on {host}:{port}"), e))?;
    l.set_nonblocking(true).map_err(|e| Error::io("listener", e))?;
    Ok(l)
}

impl Server {
    /// Loads the configured models, binds the listeners and starts serving.
    pub fn start(config: ServerConfig) -> Result<Server> {
        let config = config.resolved()?;
        let threads = if config.threads == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(4)
        } else {
            config.threads
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(threads.max(2) * 2)
            .thread_name("ferrox-serve")
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the server runtime", e))?;
        let metrics = Metrics::new();
        let log = log::Log::new(metrics.clone(), config.log_events, config.log_requests);
        let store = Store::new(metrics.clone(), log.clone(), config.keep_versions, config.batching.clone(), config.model_repository.clone());
        let id_salt = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
            h.finish()
        };
        let events = config.event_log.clone().map(crate::experiment::eventlog::EventLog::open).transpose()?;
        let router = router::Router::new(router::Ctx { metrics: metrics.clone(), log: log.clone(), events });
        let state = Arc::new(ServerState { config: config.clone(), store: Arc::new(store), router, metrics, log, seq: AtomicU64::new(0), id_salt, ready: AtomicBool::new(false), monitors: Default::default() });
        let err = |e: ServeError| if e.integrity { Error::integrity(e.message) } else { Error::param(e.message) };
        {
            let _rt = runtime.enter();
            if config.model_repository.is_some() {
                for name in state.store.repository_models() {
                    state.store.load_from_repository(&name).map_err(err)?;
                }
            }
            for m in &config.models {
                state.store.load(&m.name, Source::Path(m.path.clone()), m.version.clone(), m.batching.clone()).map_err(err)?;
            }
            for e in &config.experiments {
                state.router.create(e.clone(), &state.store).map_err(err)?;
            }
        }
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut http_addr = None;
        let mut grpc_addr = None;
        if let Some(port) = config.http_port {
            let l = bind(&config.host, port)?;
            http_addr = Some(l.local_addr().map_err(|e| Error::io("listener", e))?);
            let _rt = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(l).map_err(|e| Error::io("listener", e))?;
            tasks.push(runtime.spawn(http::serve(listener, state.clone(), rx.clone())));
        }
        if let Some(port) = config.grpc_port {
            let l = bind(&config.host, port)?;
            grpc_addr = Some(l.local_addr().map_err(|e| Error::io("listener", e))?);
            let _rt = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(l).map_err(|e| Error::io("listener", e))?;
            tasks.push(runtime.spawn(grpc::serve(listener, state.clone(), rx.clone())));
        }
        {
            // Histogram samples are folded into buckets every second, scraped or not, so memory stays
            // flat; on a thread of its own, so the fold never holds up a request.
            let (m, stop) = (state.metrics.clone(), rx.clone());
            std::thread::Builder::new()
                .name("ferrox-metrics".into())
                .spawn(move || {
                    while !*stop.borrow() {
                        std::thread::sleep(Duration::from_millis(250));
                        m.upkeep();
                    }
                })
                .map_err(|e| Error::io("cannot start the metrics thread", e))?;
        }
        for e in state.store.entries() {
            state.prepare_monitors(&e.name);
        }
        state.ready.store(true, Ordering::Release);
        Ok(Server { runtime: Some(runtime), state, shutdown, tasks, http_addr, grpc_addr })
    }

    /// The shared state (models, metrics).
    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// Loads or swaps a model version from a file (verified; refused artifacts change nothing).
    pub fn load(&self, model: &str, path: &std::path::Path, version: Option<String>) -> std::result::Result<Loaded, ServeError> {
        let _rt = self.runtime.as_ref().map(|r| r.enter());
        let loaded = self.state.store.load(model, Source::Path(path.to_owned()), version, None)?;
        self.state.prepare_monitors(model);
        Ok(loaded)
    }

    /// A function that blocks until SIGINT or SIGTERM arrives or [`Server::stop`] is called; it holds
    /// no borrow of the server, so another thread may stop it meanwhile.
    pub fn signal_waiter(&self) -> Option<impl FnOnce() + Send + 'static> {
        let handle = self.runtime.as_ref()?.handle().clone();
        let mut rx = self.shutdown.subscribe();
        Some(move || {
            handle.block_on(async move {
                #[cfg(unix)]
                let term = async {
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                        Ok(mut s) => {
                            s.recv().await;
                        }
                        Err(_) => std::future::pending::<()>().await,
                    }
                };
                #[cfg(not(unix))]
                let term = std::future::pending::<()>();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term => {}
                    _ = rx.wait_for(|v| *v) => {}
                }
            })
        })
    }

    /// Stops accepting, finishes in-flight requests (up to `grace`), and shuts the runtime down.
    pub fn stop(&mut self, grace: Duration) {
        self.state.ready.store(false, Ordering::Release);
        let _ = self.shutdown.send(true);
        if let Some(rt) = self.runtime.take() {
            let tasks = std::mem::take(&mut self.tasks);
            rt.block_on(async {
                let all = futures_util::future::join_all(tasks);
                let _ = tokio::time::timeout(grace, all).await;
            });
            rt.shutdown_timeout(Duration::from_millis(100));
            self.state.router.shutdown();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}
