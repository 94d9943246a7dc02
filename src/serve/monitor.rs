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
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Key, Label};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::log::{now_ts, Log};
use super::metrics::Metrics;
use super::tensor::{Data, ModelInput};
use crate::data::frame::{DenseMatrix, Frame};
use crate::drift::monitor::{DriftMonitor, MonitorConfig};
use crate::drift::profile::{default_categorical, CompareOptions, ReferenceProfile};

/// Monitoring settings (`[monitoring]` in the server config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Share of requests whose rows are monitored (every k-th request, k = round(1 / rate)).
    pub sample_rate: f64,
    /// Rows per window.
    pub window: usize,
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
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            sample_rate: 0.1,
            window: 10_000,
            alert_after: 3,
            cooldown: 0,
            alpha: 0.05,
            min_effect: 0.1,
            min_drifted_columns: 1,
            queue: 256,
            webhook: None,
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
        if let Some(w) = &self.webhook {
            parse_http_url(w).map_err(|e| crate::Error::param(format!("monitoring.webhook: {e}")))?;
        }
        Ok(())
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
    state: Mutex<Value>,
    alerts: Mutex<VecDeque<Value>>,
}

/// The monitor of one served model version.
pub struct Monitor {
    tx: SyncSender<ModelInput>,
    every: u64,
    seq: AtomicU64,
    shared: Arc<Shared>,
    /// The version monitored.
    pub version: String,
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

fn update(dm: &mut DriftMonitor, input: &ModelInput, names: &[String]) -> crate::Result<Vec<crate::drift::monitor::WindowFinding>> {
    match input {
        ModelInput::Columns { batch } => {
            let schema = batch.schema();
            let frame = Frame::from_arrow(std::slice::from_ref(batch), &schema, &default_categorical(&schema))?;
            dm.update(&frame, 1)
        }
        _ => {
            let mut holder = Vec::new();
            let frame = frame_of(input, names, &mut holder)?;
            dm.update(&frame, 1)
        }
    }
}

impl Monitor {
    /// Starts the monitor thread of `model` version `version` against `profile`.
    pub fn start(model: &str, version: &str, profile: ReferenceProfile, cfg: &MonitoringConfig, metrics: Arc<Metrics>, log: Log) -> crate::Result<Arc<Monitor>> {
        let n = profile.names.len().max(1);
        let drift_share = (cfg.min_drifted_columns.min(n) as f64 - 0.5) / n as f64;
        let options = CompareOptions { alpha: cfg.alpha, min_effect: cfg.min_effect, drift_share, ..CompareOptions::default() };
        let mc = MonitorConfig { window: cfg.window, step: cfg.window, alert_after: cfg.alert_after, cooldown: cfg.cooldown, options, time: None };
        let names = profile.names.clone();
        let dm = DriftMonitor::new(profile, mc)?;
        let (tx, rx) = sync_channel(cfg.queue);
        let shared = Arc::new(Shared {
            rows: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            webhook_failures: AtomicU64::new(0),
            state: Mutex::new(json!({"windows": 0, "alerts": 0, "last_window": null})),
            alerts: Mutex::new(VecDeque::new()),
        });
        let (sh, m, v, webhook) = (shared.clone(), model.to_owned(), version.to_owned(), cfg.webhook.clone());
        std::thread::Builder::new()
            .name(format!("ferrox-monitor-{model}"))
            .spawn(move || run(rx, dm, names, sh, m, v, metrics, log, webhook))
            .map_err(|e| crate::Error::io("cannot start the monitoring thread", e))?;
        Ok(Arc::new(Monitor { tx, every: cfg.every(), seq: AtomicU64::new(0), shared, version: version.to_owned() }))
    }

    /// Whether this request is sampled.
    pub fn sampled(&self) -> bool {
        self.seq.fetch_add(1, Ordering::Relaxed) % self.every == 0
    }

    /// Hands sampled rows to the thread; dropped (and counted) when it is behind.
    pub fn offer(&self, input: ModelInput) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(input) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counters, the last window and the recent alerts, as JSON.
    pub fn status(&self) -> Value {
        let mut s = self.shared.state.lock().unwrap().clone();
        s["version"] = Value::from(self.version.clone());
        s["rows"] = Value::from(self.shared.rows.load(Ordering::Relaxed));
        s["dropped"] = Value::from(self.shared.dropped.load(Ordering::Relaxed));
        s["errors"] = Value::from(self.shared.errors.load(Ordering::Relaxed));
        s["webhook_failures"] = Value::from(self.shared.webhook_failures.load(Ordering::Relaxed));
        s["recent_alerts"] = Value::from(self.shared.alerts.lock().unwrap().iter().cloned().collect::<Vec<_>>());
        s
    }
}

#[allow(clippy::too_many_arguments)]
fn run(rx: Receiver<ModelInput>, mut dm: DriftMonitor, names: Vec<String>, sh: Arc<Shared>, model: String, version: String, metrics: Arc<Metrics>, log: Log, webhook: Option<String>) {
    let ml = || vec![Label::new("model", model.clone())];
    let windows = metrics.counter(&Key::from_parts("ferrox_drift_windows_total", ml()));
    let alerts = metrics.counter(&Key::from_parts("ferrox_drift_alerts_total", ml()));
    let rows_metric = metrics.counter(&Key::from_parts("ferrox_monitored_rows_total", ml()));
    let share = gauge(&metrics, "ferrox_drift_share", ml());
    let mut per_feature: HashMap<String, (metrics::Gauge, metrics::Gauge, metrics::Gauge, metrics::Counter)> = HashMap::new();
    let mut last_error: Option<String> = None;
    for input in rx {
        let n = input.rows() as u64;
        let result = update(&mut dm, &input, &names);
        let findings = match result {
            Ok(f) => f,
            Err(e) => {
                sh.errors.fetch_add(1, Ordering::Relaxed);
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    log.event("monitoring_error", &model, json!({"version": version, "error": msg}));
                    last_error = Some(msg);
                }
                continue;
            }
        };
        sh.rows.fetch_add(n, Ordering::Relaxed);
        rows_metric.increment(n);
        for f in findings {
            windows.increment(1);
            share.set(f.report.share_drifted);
            for c in &f.report.columns {
                let (drift, drifted, missing, unknown) = per_feature.entry(c.column.clone()).or_insert_with(|| {
                    let fl = || vec![Label::new("model", model.clone()), Label::new("feature", c.column.clone())];
                    (
                        gauge(&metrics, "ferrox_feature_drift", fl()),
                        gauge(&metrics, "ferrox_feature_drifted", fl()),
                        gauge(&metrics, "ferrox_feature_missing_share", fl()),
                        metrics.counter(&Key::from_parts("ferrox_feature_unknown_categories_total", fl())),
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
            {
                let mut st = sh.state.lock().unwrap();
                st["windows"] = Value::from(dm.windows_seen);
                st["alerts"] = Value::from(dm.alerts);
                st["consecutive_drifted"] = Value::from(dm.consecutive);
                st["last_window"] = summary.clone();
            }
            if f.alert {
                alerts.increment(1);
                let alert = json!({"ts": now_ts(), "event": "drift_alert", "model": model, "version": version,
                    "window": f.window, "drifted_columns": drifted, "share_drifted": f.report.share_drifted});
                log.event("drift_alert", &model, json!({"version": version, "window": f.window, "drifted_columns": drifted}));
                {
                    let mut a = sh.alerts.lock().unwrap();
                    a.push_back(alert.clone());
                    while a.len() > 32 {
                        a.pop_front();
                    }
                }
                if let Some(url) = &webhook {
                    match post_json(url, alert.to_string().as_bytes()) {
                        Ok(code) if (200..300).contains(&code) => {}
                        Ok(code) => {
                            sh.webhook_failures.fetch_add(1, Ordering::Relaxed);
                            log.event("webhook_failed", &model, json!({"url": url, "status": code}));
                        }
                        Err(e) => {
                            sh.webhook_failures.fetch_add(1, Ordering::Relaxed);
                            log.event("webhook_failed", &model, json!({"url": url, "error": e}));
                        }
                    }
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
