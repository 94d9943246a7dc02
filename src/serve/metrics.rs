//! Prometheus metrics of one server instance: a `metrics-exporter-prometheus` recorder owned by the
//! server (no process-global state, so several servers in one process keep separate counts), with
//! handles registered once per model version so the request path only touches atomics.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

const META: Metadata<'static> = Metadata::new("ferrox::serve", Level::INFO, Some("ferrox::serve"));

/// Latency buckets, seconds: 25 µs to 10 s.
const SECONDS: &[f64] = &[
    25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1.0, 2.5, 10.0,
];
/// Rows per model call.
const ROWS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0];

/// Why a request failed (the `cause` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// 400
    BadRequest,
    /// 404
    NotFound,
    /// 429
    Overloaded,
    /// 504
    Deadline,
    /// 401
    Unauthorized,
    /// 413
    TooLarge,
    /// 500
    Internal,
}

impl Cause {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Cause::BadRequest => "bad_request",
            Cause::NotFound => "not_found",
            Cause::Overloaded => "overloaded",
            Cause::Deadline => "deadline",
            Cause::Unauthorized => "unauthorized",
            Cause::TooLarge => "too_large",
            Cause::Internal => "internal",
        }
    }
    const ALL: [Cause; 7] = [
        Cause::BadRequest,
        Cause::NotFound,
        Cause::Overloaded,
        Cause::Deadline,
        Cause::Unauthorized,
        Cause::TooLarge,
        Cause::Internal,
    ];
}

/// The server's recorder.
pub struct Metrics {
    recorder: PrometheusRecorder,
    unmatched_failures: [Counter; 7],
}

/// Handles of one model version.
pub struct VersionMetrics {
    /// ferrox_requests_total
    pub requests: Counter,
    /// ferrox_request_failures_total by cause
    failures: [Counter; 7],
    /// ferrox_request_duration_seconds
    pub latency: Histogram,
    /// ferrox_queue_duration_seconds
    pub queue: Histogram,
    /// ferrox_batch_rows
    pub batch_rows: Histogram,
    /// ferrox_rows_total
    pub rows: Counter,
    /// ferrox_in_flight_requests
    pub in_flight: Gauge,
}

impl VersionMetrics {
    /// The failure counter of a cause.
    pub fn failure(&self, c: Cause) -> &Counter {
        &self.failures[Cause::ALL.iter().position(|x| *x == c).unwrap_or(0)]
    }
}

fn key(name: &'static str, labels: Vec<Label>) -> Key {
    Key::from_parts(name, labels)
}

impl Metrics {
    /// A recorder with ferrox's buckets and help texts.
    pub fn new() -> Arc<Metrics> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full("ferrox_batch_rows".into()), ROWS))
            .expect("bucket lists are not empty")
            .build_recorder();
        let d = |name: &'static str, unit: Option<Unit>, help: &'static str, kind: u8| {
            let (k, h) = (KeyName::from_const_str(name), SharedString::const_str(help));
            match kind {
                0 => recorder.describe_counter(k, unit, h),
                1 => recorder.describe_gauge(k, unit, h),
                _ => recorder.describe_histogram(k, unit, h),
            }
        };
        d("ferrox_requests_total", None, "Inference requests received, by model and version.", 0);
        d("ferrox_request_failures_total", None, "Inference requests that failed, by cause.", 0);
        d("ferrox_request_duration_seconds", Some(Unit::Seconds), "Time from a request's arrival to its answer.", 2);
        d("ferrox_queue_duration_seconds", Some(Unit::Seconds), "Time a request waited for the model (batching queue).", 2);
        d("ferrox_batch_rows", None, "Rows per model call (dynamic batches included).", 2);
        d("ferrox_rows_total", None, "Rows predicted.", 0);
        d("ferrox_in_flight_requests", None, "Requests admitted and not yet answered.", 1);
        d("ferrox_model_events_total", None, "Model loads, swaps, refusals and unloads.", 0);
        d("ferrox_model_serving", None, "1 for the version each model serves.", 1);
        d("ferrox_experiment_assignments_total", None, "Requests routed to each variant of an experiment.", 0);
        d("ferrox_experiment_transitions_total", None, "Canary starts, steps, promotions and rollbacks.", 0);
        d("ferrox_experiment_share", None, "The share of traffic (0 to 1) a canary's challenger receives.", 1);
        d("ferrox_experiment_outcomes_total", None, "Outcomes (POST /v2/feedback) joined to each variant.", 0);
        d("ferrox_shadow_dropped_total", None, "Shadow scoring dropped because the shadow queue was full.", 0);
        d("ferrox_feature_drift", None, "PSI of each profiled feature in the last monitoring window.", 1);
        d("ferrox_feature_drifted", None, "1 when the feature drifted in the last monitoring window.", 1);
        d("ferrox_feature_missing_share", None, "Share of missing values of each feature in the last monitoring window.", 1);
        d("ferrox_feature_unknown_categories_total", None, "Served values of categories the reference never saw.", 0);
        d("ferrox_drift_share", None, "Share of drifted features in the last monitoring window.", 1);
        d("ferrox_drift_windows_total", None, "Monitoring windows compared with the reference profile.", 0);
        d("ferrox_drift_alerts_total", None, "Drift alerts raised (drifted windows in a row).", 0);
        d("ferrox_monitored_rows_total", None, "Served rows fed to drift monitoring.", 0);
        d("ferrox_log_dropped_total", None, "Log lines dropped because the log queue was full.", 0);
        let unmatched_failures = Cause::ALL.map(|c| {
            recorder.register_counter(
                &key("ferrox_request_failures_total", vec![Label::new("model", ""), Label::new("version", ""), Label::new("cause", c.label())]),
                &META,
            )
        });
        Arc::new(Metrics { recorder, unmatched_failures })
    }

    /// Handles for a model version.
    pub fn version(&self, model: &str, version: &str) -> VersionMetrics {
        let labels = || vec![Label::new("model", model.to_owned()), Label::new("version", version.to_owned())];
        let with = |extra: Label| {
            let mut l = labels();
            l.push(extra);
            l
        };
        let r = &self.recorder;
        VersionMetrics {
            requests: r.register_counter(&key("ferrox_requests_total", labels()), &META),
            failures: Cause::ALL.map(|c| r.register_counter(&key("ferrox_request_failures_total", with(Label::new("cause", c.label()))), &META)),
            latency: r.register_histogram(&key("ferrox_request_duration_seconds", labels()), &META),
            queue: r.register_histogram(&key("ferrox_queue_duration_seconds", labels()), &META),
            batch_rows: r.register_histogram(&key("ferrox_batch_rows", labels()), &META),
            rows: r.register_counter(&key("ferrox_rows_total", labels()), &META),
            in_flight: r.register_gauge(&key("ferrox_in_flight_requests", labels()), &META),
        }
    }

    /// A failure that reached no model (unknown model, bad auth, body too large).
    pub fn unmatched_failure(&self, c: Cause) {
        self.unmatched_failures[Cause::ALL.iter().position(|x| *x == c).unwrap_or(0)].increment(1);
    }

    /// Counts a model event.
    pub fn event(&self, model: &str, event: &'static str) {
        self.recorder
            .register_counter(
                &key("ferrox_model_events_total", vec![Label::new("model", model.to_owned()), Label::new("event", event)]),
                &META,
            )
            .increment(1);
    }

    /// Marks which version of a model serves.
    pub fn serving(&self, model: &str, version: &str, on: bool) {
        self.recorder
            .register_gauge(
                &key("ferrox_model_serving", vec![Label::new("model", model.to_owned()), Label::new("version", version.to_owned())]),
                &META,
            )
            .set(if on { 1.0 } else { 0.0 });
    }

    /// The assignment counter of an experiment's variant.
    pub fn assignment(&self, experiment: &str, variant: &str) -> Counter {
        self.recorder.register_counter(
            &key("ferrox_experiment_assignments_total", vec![Label::new("experiment", experiment.to_owned()), Label::new("variant", variant.to_owned())]),
            &META,
        )
    }

    /// Counts a rollout transition of an experiment.
    pub fn transition(&self, experiment: &str, event: &'static str) {
        self.recorder
            .register_counter(
                &key("ferrox_experiment_transitions_total", vec![Label::new("experiment", experiment.to_owned()), Label::new("transition", event)]),
                &META,
            )
            .increment(1);
    }

    /// Sets the traffic share of a variant.
    pub fn share(&self, experiment: &str, variant: &str, share: f64) {
        self.recorder
            .register_gauge(
                &key("ferrox_experiment_share", vec![Label::new("experiment", experiment.to_owned()), Label::new("variant", variant.to_owned())]),
                &META,
            )
            .set(share);
    }

    /// The outcome counter of an experiment's variant.
    pub fn outcomes(&self, experiment: &str, variant: &str) -> Counter {
        self.recorder.register_counter(
            &key("ferrox_experiment_outcomes_total", vec![Label::new("experiment", experiment.to_owned()), Label::new("variant", variant.to_owned())]),
            &META,
        )
    }

    /// The counter of shadow work dropped under pressure.
    pub fn shadow_dropped(&self, experiment: &str) -> Counter {
        self.recorder.register_counter(&key("ferrox_shadow_dropped_total", vec![Label::new("experiment", experiment.to_owned())]), &META)
    }

    /// A counter by key (series registered on first use).
    pub fn counter(&self, key: &Key) -> Counter {
        self.recorder.register_counter(key, &META)
    }

    /// A gauge by key.
    pub fn gauge(&self, key: &Key) -> Gauge {
        self.recorder.register_gauge(key, &META)
    }

    /// Counts a dropped log line.
    pub fn log_dropped(&self) {
        self.recorder.register_counter(&key("ferrox_log_dropped_total", vec![]), &META).increment(1);
    }

    /// Folds the samples histograms gathered since the last call into their buckets (otherwise they
    /// pile up until the next scrape); the server calls it every few seconds.
    pub fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        let v = m.version("flights", "2");
        v.requests.increment(3);
        v.latency.record(0.0004);
        v.failure(Cause::BadRequest).increment(1);
        let text = m.render();
        assert!(text.contains("ferrox_requests_total{model=\"flights\",version=\"2\"} 3"), "{text}");
        assert!(text.contains("ferrox_request_duration_seconds_bucket{model=\"flights\",version=\"2\",le=\"0.0005\"} 1"), "{text}");
        assert!(text.contains("ferrox_request_failures_total{model=\"flights\",version=\"2\",cause=\"bad_request\"} 1"), "{text}");
        assert!(text.contains("# HELP ferrox_requests_total"), "{text}");
    }
}
