//! Structured JSON log lines (one per model event; one per sampled request), written to stderr by
//! a thread of their own through a bounded queue: a full queue drops the line and counts it, so
//! logging never delays an answer.

use std::io::Write;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::metrics::Metrics;

/// The sending side of the log.
#[derive(Clone)]
pub struct Log {
    tx: Option<SyncSender<String>>,
    metrics: Arc<Metrics>,
    events: bool,
    request_rate: f64,
}

/// Seconds since the epoch, with microseconds.
pub fn now_ts() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl Log {
    /// Starts the writer thread when anything is to be logged.
    pub fn new(metrics: Arc<Metrics>, events: bool, request_rate: f64) -> Log {
        let tx = if events || request_rate > 0.0 {
            let (tx, rx) = sync_channel::<String>(4096);
            std::thread::Builder::new()
                .name("ferrox-log".into())
                .spawn(move || {
                    let stderr = std::io::stderr();
                    for mut line in rx {
                        // One write per line, so lines of other writers never land inside one.
                        line.push('\n');
                        let _ = stderr.lock().write_all(line.as_bytes());
                    }
                })
                .ok()
                .map(|_| tx)
        } else {
            None
        };
        Log { tx, metrics, events, request_rate }
    }

    fn send(&self, line: String) {
        if let Some(tx) = &self.tx {
            if let Err(TrySendError::Full(_)) = tx.try_send(line) {
                self.metrics.log_dropped();
            }
        }
    }

    /// A model event: `{"ts":..,"event":..,"model":..,...fields}`.
    pub fn event(&self, event: &str, model: &str, fields: serde_json::Value) {
        if !self.events {
            return;
        }
        let mut obj = serde_json::json!({"ts": now_ts(), "event": event, "model": model});
        if let (Some(o), serde_json::Value::Object(f)) = (obj.as_object_mut(), fields) {
            o.extend(f);
        }
        self.send(obj.to_string());
    }

    /// Whether the request with this sequence number is sampled (deterministic: every k-th request).
    pub fn sample(&self, seq: u64) -> bool {
        if self.request_rate <= 0.0 {
            return false;
        }
        if self.request_rate >= 1.0 {
            return true;
        }
        let every = (1.0 / self.request_rate).round().max(1.0) as u64;
        seq % every == 0
    }

    /// A request line.
    pub fn request(&self, fields: serde_json::Value) {
        let mut obj = serde_json::json!({"ts": now_ts(), "event": "request"});
        if let (Some(o), serde_json::Value::Object(f)) = (obj.as_object_mut(), fields) {
            o.extend(f);
        }
        self.send(obj.to_string());
    }
}
