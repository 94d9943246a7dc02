//! Live drift monitoring of served rows: a sampled share of each model's requests is handed (through a
//! bounded queue that drops rather than waits) to a thread that feeds a [`DriftMonitor`] against the
//! reference profile embedded in the served artifact, in tumbling windows of rows.
//!
//! Per completed window the thread sets, for every profiled column, `ferrox_feature_drift` (the PSI
//! effect size), `ferrox_feature_drifted` (0 or 1), `ferrox_feature_missing_share` and counts
//! `ferrox_feature_unknown_categories_total`; per model `ferrox_drift_share` (share of drifted
//! columns), `ferrox_drift_windows_total` and `ferrox_drift_alerts_total`. Labels are `model` and
//! `feature` only (never the version), so the series stay bounded as versions come and go; a new
//! version starts a new monitor. An alert (`alert_after` drifted windows in a row, then `cooldown`
//! windows of quiet) is a `drift_alert` log line, a POST of the finding as JSON to `webhook` (plain
//! HTTP, 2 s timeout, failures counted) and an entry in the model's monitoring status.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Key, Label};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::log::{now_ts, Log};
use super::metrics::Metrics;
use super::store::execute;
use super::tensor::{concat, Data, ModelInput};
use crate::data::frame::{ColumnSource, DenseMatrix, FloatChunk, Frame, NumericSource};
use crate::drift::monitor::{DriftMonitor, MonitorConfig, TimeWindows, WindowFinding};
use crate::drift::performance;
use crate::drift::profile::{default_categorical, CompareOptions};
use crate::transform::deploy::{Deployable, Output, Tensor};

/// Monitoring settings (`[monitoring]` in the server config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Share of requests whose rows are monitored (every k-th request, k = round(1 / rate)).
    pub sample_rate: f64,
    /// Rows per window.
    pub window: usize,
    /// Windows by time instead: seconds per tumbling window (a window closes with the first sampled
    /// request after its end; `window` is then not used).
    pub window_seconds: Option<f64>,
    /// Drifted windows in a row that raise an alert.
    pub alert_after: usize,
    /// Windows after an alert during which no new alert fires.
    pub cooldown: usize,
    /// Significance of the per-column tests (corrected across columns).
    pub alpha: f64,
    /// The smallest PSI that counts as drift.
    pub min_effect: f64,
    /// Drifted columns that make a window drifted (1: any column).
    pub min_drifted_columns: usize,
    /// Sampled requests waiting at most; beyond it they are dropped (and counted).
    pub queue: usize,
    /// URL (`http://host:port/path`) that receives each alert as a JSON POST.
    pub webhook: Option<String>,
    /// Labelled sampled requests per realised-performance window.
    pub performance_window: usize,
    /// The metric performance alerts watch (default roc_auc for classifiers, mae for regressors).
    pub performance_metric: Option<String>,
    /// How much worse than on reference data (relative) the watched metric may get before a window
    /// counts as degraded.
    pub max_performance_drop: f64,
    /// Sampled requests remembered for joining outcomes (the oldest are forgotten first).
    pub outcome_capacity: usize,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            sample_rate: 0.1,
            window: 10_000,
            window_seconds: None,
            alert_after: 3,
            cooldown: 0,
            alpha: 0.05,
            min_effect: 0.1,
            min_drifted_columns: 1,
            queue: 256,
            webhook: None,
            performance_window: 1000,
            performance_metric: None,
            max_performance_drop: 0.05,
            outcome_capacity: 100_000,
        }
    }
}

impl MonitoringConfig {
    /// Checks the settings.
    pub fn check(&self) -> crate::Result<()> {
        if !(self.sample_rate > 0.0 && self.sample_rate <= 1.0) {
            return Err(crate::Error::param(format!("monitoring.sample_rate must lie in (0, 1], got {}", self.sample_rate)));
        }
        if self.window < 2 || self.alert_after == 0 || self.queue == 0 || self.min_drifted_columns == 0 {
            return Err(crate::Error::param("monitoring: window must be at least 2; alert_after, min_drifted_columns and queue positive"));
        }
        if let Some(w) = self.window_seconds {
            if !(w > 0.0 && w.is_finite()) {
                return Err(crate::Error::param(format!("monitoring.window_seconds must be a positive number of seconds, got {w}")));
            }
        }
        if self.performance_window < 2 || self.outcome_capacity == 0 {
            return Err(crate::Error::param("monitoring: performance_window must be at least 2 and outcome_capacity positive"));
        }
        if !(self.max_performance_drop >= 0.0 && self.max_performance_drop < 1.0) {
            return Err(crate::Error::param(format!("monitoring.max_performance_drop must lie in [0, 1), got {}", self.max_performance_drop)));
        }
        if let Some(m) = &self.performance_metric {
            if !matches!(m.as_str(), "roc_auc" | "accuracy" | "logloss" | "rmse" | "mae") {
                return Err(crate::Error::param(format!("monitoring.performance_metric must be roc_auc, accuracy, logloss, rmse or mae, got '{m}'")));
            }
        }
        if let Some(w) = &self.webhook {
            parse_http_url(w).map_err(|e| crate::Error::param(format!("monitoring.webhook: {e}")))?;
        }
        Ok(())
    }

    fn time_windows(&self) -> Option<TimeWindows> {
        self.window_seconds.map(|w| TimeWindows { column: TIME_COLUMN.to_owned(), width: w, step: w })
    }

    fn every(&self) -> u64 {
        (1.0 / self.sample_rate).round().max(1.0) as u64
    }
}

fn parse_http_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("only http:// URLs are supported, got {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("bad port in {url:?}"))?),
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok((host.to_owned(), port, path.to_owned()))
}

/// POSTs `body` as JSON; returns the status code.
fn post_json(url: &str, body: &[u8]) -> Result<u16, String> {
    let (host, port, path) = parse_http_url(url)?;
    let addr = (host.as_str(), port).to_socket_addrs().map_err(|e| e.to_string())?.next().ok_or("no address")?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: ferrox\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}

struct Shared {
    rows: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
    webhook_failures: AtomicU64,
    outcomes_joined: AtomicU64,
    outcomes_unmatched: AtomicU64,
    state: Mutex<Value>,
    alerts: Mutex<VecDeque<Value>>,
}

/// Sampled requests monitored in one go at most.
const MAX_BATCH: usize = 256;
/// How long the monitor thread naps when its queue is empty.
const POLL_NAP: Duration = Duration::from_millis(5);

/// What the request path hands to a monitor thread.
enum Msg {
    /// Sampled rows, with the hash of their request id.
    Rows { id: u64, input: ModelInput },
    /// Outcomes (label or true value) by request id hash.
    Outcomes(Arc<Vec<(u64, f64)>>),
}

/// The monitor of one served model version.
pub struct Monitor {
    tx: SyncSender<Msg>,
    every: u64,
    seq: AtomicU64,
    shared: Arc<Shared>,
    /// The version monitored.
    pub version: String,
    /// Whether it tracks performance (the artifact carries a performance reference).
    pub performance: bool,
}

/// The hash requests and outcomes are joined by.
pub fn id_hash(id: &str) -> u64 {
    super::router::fnv1a64(&[id.as_bytes()])
}

fn gauge(m: &Metrics, name: &'static str, labels: Vec<Label>) -> metrics::Gauge {
    m.gauge(&Key::from_parts(name, labels))
}

fn frame_of<'a>(input: &'a ModelInput, names: &[String], holder: &'a mut Vec<f64>) -> crate::Result<Frame<'a>> {
    match input {
        ModelInput::Matrix { data, rows, cols } => {
            let v: &[f64] = match data {
                Data::F64(v) => v,
                Data::F32(v) => {
                    holder.extend(v.iter().map(|x| *x as f64));
                    holder
                }
                _ => return Err(crate::Error::data("monitoring: a matrix input that is not float")),
            };
            let view = ndarray::ArrayView2::from_shape((*rows, *cols), v).map_err(|e| crate::Error::Internal(e.to_string()))?;
            let names = (names.len() == *cols).then(|| names.to_vec());
            Frame::from_dense(DenseMatrix::F64(view), names, &[])
        }
        ModelInput::Columns { .. } => Err(crate::Error::Internal("columns are read by update".into())),
    }
}

/// The column that carries each row's arrival time when windows are timed.
const TIME_COLUMN: &str = "__ferrox_arrival_seconds__";

/// Feeds one frame to a monitor, with the arrival time as an extra column when windows are timed.
fn feed(dm: &mut DriftMonitor, mut frame: Frame<'_>, timed: bool) -> crate::Result<Vec<WindowFinding>> {
    if timed {
        // The arrival time as one more (owned) column, which the monitor's time windows read.
        let times = arrow_array::Float64Array::from(vec![seconds_now(); frame.n_rows]);
        frame.names.push(TIME_COLUMN.to_owned());
        frame.columns.push(ColumnSource::Numeric(NumericSource::from_chunks(vec![FloatChunk::F64(times)])));
    }
    dm.update(&frame, 1)
}

fn update(dm: &mut DriftMonitor, input: &ModelInput, names: &[String], timed: bool) -> crate::Result<Vec<WindowFinding>> {
    match input {
        ModelInput::Columns { batch } => {
            let schema = batch.schema();
            let frame = Frame::from_arrow(std::slice::from_ref(batch), &schema, &default_categorical(&schema))?;
            feed(dm, frame, timed)
        }
        _ => {
            let mut holder = Vec::new();
            let frame = frame_of(input, names, &mut holder)?;
            feed(dm, frame, timed)
        }
    }
}

fn seconds_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Values outside the training range, per schema column (numeric columns with a known range).
fn out_of_range(input: &ModelInput, ranges: &[(String, f64, f64)], counts: &mut [u64]) {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
    let outside = |v: f64, lo: f64, hi: f64| v < lo || v > hi;
    match input {
        ModelInput::Matrix { data, rows, cols } if *cols == ranges.len() => {
            let mut count = |get: &dyn Fn(usize) -> f64| {
                for r in 0..*rows {
                    for (j, (_, lo, hi)) in ranges.iter().enumerate() {
                        let v = get(r * cols + j);
                        counts[j] += u64::from(outside(v, *lo, *hi));
                    }
                }
            };
            match data {
                Data::F64(v) => count(&|i| v[i]),
                Data::F32(v) => count(&|i| v[i] as f64),
                _ => {}
            }
        }
        ModelInput::Columns { batch } => {
            for (j, (name, lo, hi)) in ranges.iter().enumerate() {
                let Some(a) = batch.column_by_name(name) else { continue };
                let n = if let Some(x) = a.as_primitive_opt::<Float64Type>() {
                    x.iter().flatten().filter(|v| outside(*v, *lo, *hi)).count()
                } else if let Some(x) = a.as_primitive_opt::<Float32Type>() {
                    x.iter().flatten().filter(|v| outside(*v as f64, *lo, *hi)).count()
                } else if let Some(x) = a.as_primitive_opt::<Int64Type>() {
                    x.iter().flatten().filter(|v| outside(*v as f64, *lo, *hi)).count()
                } else if let Some(x) = a.as_primitive_opt::<Int32Type>() {
                    x.iter().flatten().filter(|v| outside(*v as f64, *lo, *hi)).count()
                } else {
                    0
                };
                counts[j] += n as u64;
            }
        }
        _ => {}
    }
}

/// The first score of every row: P(class 1) of a binary classifier, the prediction of a regressor.
fn scores(dep: &Deployable, input: &ModelInput, binary: bool) -> Result<Vec<f64>, String> {
    let (name, kind) = if binary { ("predict_proba", Output::PredictProba) } else { ("predict", Output::Predict) };
    let out = execute(dep, input, &vec![(name.to_owned(), kind, false)], 1).map_err(|e| e.message)?;
    match out.first().map(|o| &o.tensor) {
        Some(Tensor::F64 { data, cols }) => {
            let (c, k) = ((*cols).max(1), if binary && *cols >= 2 { 1 } else { 0 });
            Ok(data.iter().skip(k).step_by(c).copied().collect())
        }
        _ => Err("the model's scores are not numeric".into()),
    }
}

impl Monitor {
    /// Starts the monitor thread of `model` version `version`: feature drift against the
    /// artifact's reference profile, and — when the artifact carries a performance reference —
    /// prediction drift, estimated performance and, with outcomes, realised performance.
    pub fn start(model: &str, version: &str, deployable: Arc<Deployable>, cfg: &MonitoringConfig, metrics: Arc<Metrics>, log: Log) -> crate::Result<Option<Arc<Monitor>>> {
        let features = match deployable.reference_profile() {
            Some(profile) => {
                let n = profile.names.len().max(1);
                let drift_share = (cfg.min_drifted_columns.min(n) as f64 - 0.5) / n as f64;
                let options = CompareOptions { alpha: cfg.alpha, min_effect: cfg.min_effect, drift_share, ..CompareOptions::default() };
                let mc = MonitorConfig { window: cfg.window, step: cfg.window, alert_after: cfg.alert_after, cooldown: cfg.cooldown, options, time: cfg.time_windows() };
                Some((profile.names.clone(), DriftMonitor::new(profile.clone(), mc)?))
            }
            None => None,
        };
        let predictions = match deployable.monitoring() {
            Some(m) => {
                let options = CompareOptions { alpha: cfg.alpha, min_effect: cfg.min_effect, drift_share: 0.5, ..CompareOptions::default() };
                let mc = MonitorConfig { window: cfg.window, step: cfg.window, alert_after: cfg.alert_after, cooldown: cfg.cooldown, options, time: cfg.time_windows() };
                Some(DriftMonitor::new(m.performance.predictions.clone(), mc)?)
            }
            None => None,
        };
        if features.is_none() && predictions.is_none() {
            return Ok(None);
        }
        let performance = predictions.is_some();
        let (tx, rx) = sync_channel(cfg.queue);
        let shared = Arc::new(Shared {
            rows: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            webhook_failures: AtomicU64::new(0),
            outcomes_joined: AtomicU64::new(0),
            outcomes_unmatched: AtomicU64::new(0),
            state: Mutex::new(json!({"windows": 0, "alerts": 0, "last_window": null})),
            alerts: Mutex::new(VecDeque::new()),
        });
        let ranges: Vec<(String, f64, f64)> = deployable
            .schema()
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.min.unwrap_or(f64::NEG_INFINITY), c.max.unwrap_or(f64::INFINITY)))
            .collect();
        let worker = Worker {
            sh: shared.clone(),
            model: model.to_owned(),
            version: version.to_owned(),
            metrics,
            log,
            cfg: cfg.clone(),
            deployable,
            features,
            predictions,
            ranges,
        };
        std::thread::Builder::new()
            .name(format!("ferrox-monitor-{model}"))
            .spawn(move || worker.run(rx))
            .map_err(|e| crate::Error::io("cannot start the monitoring thread", e))?;
        Ok(Some(Arc::new(Monitor { tx, every: cfg.every(), seq: AtomicU64::new(0), shared, version: version.to_owned(), performance })))
    }

    /// Whether this request is sampled.
    pub fn sampled(&self) -> bool {
        self.seq.fetch_add(1, Ordering::Relaxed) % self.every == 0
    }

    /// Hands sampled rows (of request `id`) to the thread; dropped (and counted) when it is behind.
    pub fn offer(&self, id: &str, input: ModelInput) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(Msg::Rows { id: id_hash(id), input }) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands outcomes (request id hash, value) to the thread, joined there to the requests' scores
    /// when they were sampled. Returns whether they were queued.
    pub fn outcomes(&self, items: &Arc<Vec<(u64, f64)>>) -> bool {
        if !self.performance {
            return false;
        }
        // Outcomes are not on the request path and are few: wait a little for room rather than lose them.
        let mut msg = Msg::Outcomes(items.clone());
        for _ in 0..200 {
            match self.tx.try_send(msg) {
                Ok(()) => return true,
                Err(TrySendError::Full(m)) => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TrySendError::Disconnected(_)) => break,
            }
        }
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Counters, the last window and the recent alerts, as JSON.
    pub fn status(&self) -> Value {
        let mut s = self.shared.state.lock().unwrap().clone();
        s["version"] = Value::from(self.version.clone());
        s["rows"] = Value::from(self.shared.rows.load(Ordering::Relaxed));
        s["dropped"] = Value::from(self.shared.dropped.load(Ordering::Relaxed));
        s["errors"] = Value::from(self.shared.errors.load(Ordering::Relaxed));
        s["webhook_failures"] = Value::from(self.shared.webhook_failures.load(Ordering::Relaxed));
        s["outcomes_joined"] = Value::from(self.shared.outcomes_joined.load(Ordering::Relaxed));
        s["outcomes_unmatched"] = Value::from(self.shared.outcomes_unmatched.load(Ordering::Relaxed));
        s["recent_alerts"] = Value::from(self.shared.alerts.lock().unwrap().iter().cloned().collect::<Vec<_>>());
        s
    }
}

struct Worker {
    sh: Arc<Shared>,
    model: String,
    version: String,
    metrics: Arc<Metrics>,
    log: Log,
    cfg: MonitoringConfig,
    deployable: Arc<Deployable>,
    features: Option<(Vec<String>, DriftMonitor)>,
    predictions: Option<DriftMonitor>,
    ranges: Vec<(String, f64, f64)>,
}

/// Windows in a row a performance metric was worse than allowed, and the cooldown left.
#[derive(Default)]
struct Decay {
    run: usize,
    cooldown: usize,
}

impl Decay {
    /// Counts a window; true when it raises an alert.
    fn window(&mut self, degraded: bool, alert_after: usize, cooldown: usize) -> bool {
        if self.cooldown > 0 {
            self.cooldown -= 1;
            self.run = 0;
            return false;
        }
        self.run = if degraded { self.run + 1 } else { 0 };
        if self.run >= alert_after {
            self.run = 0;
            self.cooldown = cooldown;
            return true;
        }
        false
    }
}

impl Worker {
    fn labels(&self) -> Vec<Label> {
        vec![Label::new("model", self.model.clone()), Label::new("version", self.version.clone())]
    }

    fn labels_with(&self, key: &'static str, value: &str) -> Vec<Label> {
        let mut l = self.labels();
        l.push(Label::new(key, value.to_owned()));
        l
    }

    fn error(&self, last: &mut Option<String>, msg: String) {
        self.sh.errors.fetch_add(1, Ordering::Relaxed);
        if last.as_deref() != Some(msg.as_str()) {
            self.log.event("monitoring_error", &self.model, json!({"version": self.version, "error": msg}));
            *last = Some(msg);
        }
    }

    /// Logs, records and POSTs an alert.
    fn alert(&self, alert: Value) {
        let kind = alert["event"].as_str().unwrap_or("alert").to_owned();
        self.log.event(&kind, &self.model, alert.clone());
        {
            let mut a = self.sh.alerts.lock().unwrap();
            a.push_back(alert.clone());
            while a.len() > 32 {
                a.pop_front();
            }
        }
        if let Some(url) = &self.cfg.webhook {
            match post_json(url, alert.to_string().as_bytes()) {
                Ok(code) if (200..300).contains(&code) => {}
                Ok(code) => {
                    self.sh.webhook_failures.fetch_add(1, Ordering::Relaxed);
                    self.log.event("webhook_failed", &self.model, json!({"url": url, "status": code}));
                }
                Err(e) => {
                    self.sh.webhook_failures.fetch_add(1, Ordering::Relaxed);
                    self.log.event("webhook_failed", &self.model, json!({"url": url, "error": e}));
                }
            }
        }
    }

    /// The metric performance alerts watch, and whether a value is worse than the reference by more
    /// than `max_performance_drop` (relative).
    fn degraded(&self, metric: &str, value: f64) -> bool {
        let Some(reference) = self.deployable.monitoring().and_then(|m| m.performance.metric(metric)) else { return false };
        let drop = self.cfg.max_performance_drop;
        if !value.is_finite() {
            return false;
        }
        if performance::higher_is_better(metric) {
            value < reference * (1.0 - drop)
        } else {
            value > reference * (1.0 + drop)
        }
    }

    fn run(mut self, rx: Receiver<Msg>) {
        let m = self.metrics.clone();
        let ml = self.labels();
        let windows = m.counter(&Key::from_parts("ferrox_drift_windows_total", ml.clone()));
        let alerts = m.counter(&Key::from_parts("ferrox_drift_alerts_total", ml.clone()));
        let perf_alerts = m.counter(&Key::from_parts("ferrox_performance_alerts_total", ml.clone()));
        let rows_metric = m.counter(&Key::from_parts("ferrox_monitored_rows_total", ml.clone()));
        let share = gauge(&m, "ferrox_drift_share", ml.clone());
        let pred_drift = gauge(&m, "ferrox_prediction_drift", ml.clone());
        let pred_drifted = gauge(&m, "ferrox_prediction_drifted", ml.clone());
        let out_of_range_metrics: Vec<metrics::Counter> =
            self.ranges.iter().map(|(n, _, _)| m.counter(&Key::from_parts("ferrox_feature_out_of_range_total", self.labels_with("feature", n)))).collect();
        let mut per_feature: HashMap<String, (metrics::Gauge, metrics::Gauge, metrics::Gauge, metrics::Counter)> = HashMap::new();
        let reference = self.deployable.monitoring().map(|r| r.performance.clone());
        let binary = reference.as_ref().is_some_and(|r| r.binary());
        let watched = self.cfg.performance_metric.clone().unwrap_or_else(|| if binary { "roc_auc".into() } else { "mae".into() });
        if let Some(r) = &reference {
            for (k, v) in &r.metrics {
                gauge(&m, "ferrox_reference_performance", self.labels_with("metric", k)).set(*v);
            }
            self.sh.state.lock().unwrap()["reference_performance"] = Value::Object(r.metrics.iter().map(|(k, v)| (k.clone(), json!(v))).collect());
        }
        let loss_models: Vec<(String, Deployable)> = self.deployable.monitoring().map(|r| r.loss_models.clone()).unwrap_or_default();
        // Scores (and predicted losses) of the rows of the window in progress.
        let (mut win_scores, mut win_abs, mut win_sq) = (Vec::<f64>::new(), Vec::<f64>::new(), Vec::<f64>::new());
        // Scores of sampled requests waiting for their outcome, oldest first.
        let mut waiting: HashMap<u64, f64> = HashMap::new();
        let mut order: VecDeque<u64> = VecDeque::new();
        let (mut joined_scores, mut joined_outcomes) = (Vec::<f64>::new(), Vec::<f64>::new());
        let (mut estimated_decay, mut realised_decay) = (Decay::default(), Decay::default());
        let mut out_counts = vec![0u64; self.ranges.len()];
        let mut realised_windows = 0u64;
        let timed = self.cfg.window_seconds.is_some();
        let mut last_error: Option<String> = None;
        // Sampled requests that queued up are monitored together: one drift update and one scoring
        // call for the lot, so the thread keeps up with more traffic on less CPU.
        let mut queue: VecDeque<Msg> = VecDeque::new();
        loop {
            if queue.is_empty() {
                // Poll with short naps rather than block: a thread parked on the channel would be woken
                // (a system call) by every sampled request on the request path.
                match rx.try_recv() {
                    Ok(m) => queue.push_back(m),
                    Err(TryRecvError::Empty) => {
                        std::thread::sleep(POLL_NAP);
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
                while queue.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(m) => queue.push_back(m),
                        Err(_) => break,
                    }
                }
            }
            let Some(msg) = queue.pop_front() else { continue };
            let (ids, input) = match msg {
                Msg::Rows { id, input } => {
                    let mut ids = vec![(id, input.rows())];
                    let mut parts = vec![input];
                    while let Some(Msg::Rows { input: next, .. }) = queue.front() {
                        if !parts[0].same_layout(next) {
                            break;
                        }
                        if let Some(Msg::Rows { id, input }) = queue.pop_front() {
                            ids.push((id, input.rows()));
                            parts.push(input);
                        }
                    }
                    let input = if parts.len() == 1 {
                        parts.pop().expect("one part")
                    } else {
                        match concat(parts) {
                            Some(all) => all,
                            None => {
                                self.error(&mut last_error, "monitoring: sampled requests of one layout did not concatenate".into());
                                continue;
                            }
                        }
                    };
                    (ids, input)
                }
                Msg::Outcomes(items) => {
                    for &(id, value) in items.iter() {
                        let Some(score) = waiting.remove(&id) else {
                            self.sh.outcomes_unmatched.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        if binary && value != 0.0 && value != 1.0 {
                            self.error(&mut last_error, format!("an outcome of {value} for a binary classifier (expected 0 or 1)"));
                            continue;
                        }
                        self.sh.outcomes_joined.fetch_add(1, Ordering::Relaxed);
                        joined_scores.push(score);
                        joined_outcomes.push(value);
                        if joined_scores.len() >= self.cfg.performance_window {
                            let threshold = reference.as_ref().map_or(0.5, |r| r.threshold);
                            match performance::realised(binary, &joined_scores, &joined_outcomes, threshold) {
                                Ok(values) => {
                                    realised_windows += 1;
                                    for (k, v) in &values {
                                        gauge(&m, "ferrox_realised_performance", self.labels_with("metric", k)).set(if v.is_finite() { *v } else { 0.0 });
                                    }
                                    let value = values.iter().find(|(k, _)| *k == watched).map(|(_, v)| *v).unwrap_or(f64::NAN);
                                    let degraded = self.degraded(&watched, value);
                                    let summary = json!({"window": realised_windows - 1, "rows": joined_scores.len(),
                                        "metrics": values.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<String, Value>>(),
                                        "degraded": degraded});
                                    self.sh.state.lock().unwrap()["realised_performance"] = summary;
                                    if realised_decay.window(degraded, self.cfg.alert_after, self.cfg.cooldown) {
                                        perf_alerts.increment(1);
                                        self.alert(json!({"ts": now_ts(), "event": "performance_alert", "source": "realised", "model": self.model,
                                            "version": self.version, "metric": watched, "value": value,
                                            "reference": reference.as_ref().and_then(|r| r.metric(&watched))}));
                                    }
                                }
                                Err(e) => self.error(&mut last_error, e.to_string()),
                            }
                            joined_scores.clear();
                            joined_outcomes.clear();
                        }
                    }
                    continue;
                }
            };
            let n = input.rows() as u64;
            out_of_range(&input, &self.ranges, &mut out_counts);
            let mut findings = Vec::new();
            if let Some((names, dm)) = self.features.as_mut() {
                match update(dm, &input, names, timed) {
                    Ok(f) => findings = f,
                    Err(e) => {
                        let msg = e.to_string();
                        self.error(&mut last_error, msg);
                        continue;
                    }
                }
            }
            let mut pred_findings = Vec::new();
            if let Some(r) = &reference {
                match scores(&self.deployable, &input, binary) {
                    Ok(s) => {
                        let mut at = 0;
                        for &(id, rows) in &ids {
                            if let Some(&first) = s.get(at) {
                                if waiting.insert(id, first).is_none() {
                                    order.push_back(id);
                                }
                            }
                            at += rows;
                        }
                        while order.len() > self.cfg.outcome_capacity {
                            if let Some(old) = order.pop_front() {
                                waiting.remove(&old);
                            }
                        }
                        for (metric, lm) in &loss_models {
                            match scores(lm, &input, false) {
                                Ok(v) if metric == "mae" => win_abs.extend(v),
                                Ok(v) => win_sq.extend(v),
                                Err(e) => self.error(&mut last_error, format!("loss model {metric}: {e}")),
                            }
                        }
                        let view = ndarray::ArrayView2::from_shape((s.len(), 1), &s).expect("one column");
                        let frame = Frame::from_dense(DenseMatrix::F64(view), Some(r.predictions.names.clone()), &[]);
                        win_scores.extend_from_slice(&s);
                        match (frame, self.predictions.as_mut()) {
                            (Ok(frame), Some(pm)) => match feed(pm, frame, timed) {
                                Ok(f) => pred_findings = f,
                                Err(e) => self.error(&mut last_error, e.to_string()),
                            },
                            (Err(e), _) => self.error(&mut last_error, e.to_string()),
                            _ => {}
                        }
                    }
                    Err(e) => self.error(&mut last_error, format!("scoring the monitored rows: {e}")),
                }
            }
            self.sh.rows.fetch_add(n, Ordering::Relaxed);
            rows_metric.increment(n);
            for (c, k) in out_of_range_metrics.iter().zip(out_counts.iter_mut()) {
                if *k > 0 {
                    c.increment(*k);
                    *k = 0;
                }
            }
            // Performance windows close with the prediction windows (the same row counts).
            for pf in pred_findings {
                let col = &pf.report.columns[0];
                let effect = if col.effect_size.is_finite() { col.effect_size } else { 0.0 };
                pred_drift.set(effect);
                pred_drifted.set(if col.drift { 1.0 } else { 0.0 });
                let take = ((pf.end_row - pf.start_row) as usize).min(win_scores.len());
                let estimate = match (&reference, binary) {
                    (Some(r), true) => r.calibration.as_ref().map(|c| performance::estimate_binary(&win_scores[..take], c, r.threshold)),
                    (Some(_), false) if !win_abs.is_empty() && win_abs.len() == win_sq.len() => {
                        let t = take.min(win_abs.len());
                        Some(performance::estimate_regression(&win_abs[..t], &win_sq[..t]))
                    }
                    _ => None,
                };
                win_scores.drain(..take);
                let t = take.min(win_abs.len());
                win_abs.drain(..t);
                let t = take.min(win_sq.len());
                win_sq.drain(..t);
                let mut est_json = serde_json::Map::new();
                let mut watched_value = f64::NAN;
                match estimate {
                    Some(Ok(es)) => {
                        for (k, e) in &es {
                            let fin = |v: f64| if v.is_finite() { v } else { 0.0 };
                            gauge(&m, "ferrox_estimated_performance", self.labels_with("metric", k)).set(fin(e.value));
                            gauge(&m, "ferrox_estimated_performance_lower", self.labels_with("metric", k)).set(fin(e.lower));
                            gauge(&m, "ferrox_estimated_performance_upper", self.labels_with("metric", k)).set(fin(e.upper));
                            est_json.insert(k.clone(), json!({"value": e.value, "lower": e.lower, "upper": e.upper}));
                            if *k == watched {
                                watched_value = e.value;
                            }
                        }
                    }
                    Some(Err(e)) => self.error(&mut last_error, e.to_string()),
                    None => {}
                }
                let degraded = self.degraded(&watched, watched_value);
                {
                    let mut st = self.sh.state.lock().unwrap();
                    st["prediction_drift"] = json!({"window": pf.window, "effect_size": col.effect_size, "pvalue": col.pvalue, "drift": col.drift});
                    st["estimated_performance"] = json!({"window": pf.window, "metrics": est_json, "degraded": degraded});
                }
                if estimated_decay.window(degraded, self.cfg.alert_after, self.cfg.cooldown) {
                    perf_alerts.increment(1);
                    self.alert(json!({"ts": now_ts(), "event": "performance_alert", "source": "estimated", "model": self.model,
                        "version": self.version, "window": pf.window, "metric": watched, "value": watched_value,
                        "reference": reference.as_ref().and_then(|r| r.metric(&watched))}));
                }
            }
            for f in findings {
                windows.increment(1);
                share.set(f.report.share_drifted);
                for c in &f.report.columns {
                    let (drift, drifted, missing, unknown) = per_feature.entry(c.column.clone()).or_insert_with(|| {
                        let fl = self.labels_with("feature", &c.column);
                        (
                            gauge(&m, "ferrox_feature_drift", fl.clone()),
                            gauge(&m, "ferrox_feature_drifted", fl.clone()),
                            gauge(&m, "ferrox_feature_missing_share", fl.clone()),
                            m.counter(&Key::from_parts("ferrox_feature_unknown_categories_total", fl)),
                        )
                    });
                    drift.set(if c.effect_size.is_finite() { c.effect_size } else { 0.0 });
                    drifted.set(if c.drift { 1.0 } else { 0.0 });
                    missing.set(if c.null_share_current.is_finite() { c.null_share_current } else { 0.0 });
                    unknown.increment(c.n_unseen);
                }
                let drifted: Vec<&str> = f.report.columns.iter().filter(|c| c.drift).map(|c| c.column.as_str()).collect();
                let summary = json!({
                    "window": f.window, "start_row": f.start_row, "end_row": f.end_row, "drifted": f.report.dataset_drift,
                    "share_drifted": f.report.share_drifted, "drifted_columns": drifted,
                    "columns": f.report.columns.iter().map(|c| json!({"column": c.column, "effect_size": c.effect_size,
                        "pvalue_corrected": c.pvalue_corrected, "drift": c.drift, "missing_share": c.null_share_current,
                        "unseen_categories": c.n_unseen, "status": c.status})).collect::<Vec<_>>(),
                });
                let (seen, total, consecutive) = self.features.as_ref().map(|(_, dm)| (dm.windows_seen, dm.alerts, dm.consecutive)).unwrap_or_default();
                {
                    let mut st = self.sh.state.lock().unwrap();
                    st["windows"] = Value::from(seen);
                    st["alerts"] = Value::from(total);
                    st["consecutive_drifted"] = Value::from(consecutive);
                    st["last_window"] = summary;
                }
                if f.alert {
                    alerts.increment(1);
                    self.alert(json!({"ts": now_ts(), "event": "drift_alert", "model": self.model, "version": self.version,
                        "window": f.window, "drifted_columns": drifted, "share_drifted": f.report.share_drifted}));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_parsed_and_checked() {
        assert_eq!(parse_http_url("http://127.0.0.1:9000/hook").unwrap(), ("127.0.0.1".into(), 9000, "/hook".into()));
        assert_eq!(parse_http_url("http://alerts").unwrap(), ("alerts".into(), 80, "/".into()));
        assert!(parse_http_url("https://x").is_err());
        assert!(MonitoringConfig { sample_rate: 0.0, ..Default::default() }.check().is_err());
        assert_eq!(MonitoringConfig { sample_rate: 0.1, ..Default::default() }.every(), 10);
    }
}
