//! The canary's decisions: a ramp of challenger shares, each step held for a minimum of units and
//! time, advanced only while the guardrails hold, and rolled back the moment one breaks.
//!
//! Guardrails, all evaluated at every check (the statistical ones are always valid, so looking at
//! every check does not inflate their error rate):
//! * error rate: the mSPRT of (challenger rate − champion rate − `max_error_rate_delta`) rejects at
//!   `alpha` with the difference above the margin (rates for the variance are (e + 1)/(n + 2), so zero
//!   errors still carry uncertainty);
//! * latency: the challenger's p99 of the current step exceeds both `max_p99_ratio` × the champion's
//!   and the champion's + `p99_slack_ms` (each with at least 50 requests in the step);
//! * predictions: the Kolmogorov–Smirnov distance between recent challenger and champion predictions
//!   exceeds `max_ks` (each with at least 100 predictions);
//! * the primary metric (when outcomes arrive, at least `min_outcomes` per variant): the sequential
//!   comparison's confidence sequence, with the pooled variance of both variants (the variance under
//!   no difference), lies entirely on the worse side of zero.

use serde::{Deserialize, Serialize};

use super::compare::{compare, Method, Options};
use super::estimate::Metric;
use super::moments::Moments;
use super::sequential::{msprt_pvalue, rho};
use crate::error::{Error, Result};

/// Which way the primary metric should move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Increase,
    Decrease,
}

/// A canary as declared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CanaryConfig {
    /// Challenger shares in percent, increasing, the last 100.
    pub steps: Vec<f64>,
    /// Distinct units routed to the challenger before a step may end.
    pub min_units: u64,
    /// Seconds a step lasts at least.
    pub min_seconds: f64,
    /// How often the guardrails are evaluated, in milliseconds.
    pub check_interval_ms: u64,
    /// Largest acceptable excess of the challenger's error rate over the champion's.
    pub max_error_rate_delta: f64,
    /// Largest acceptable ratio of p99 latencies (challenger / champion).
    pub max_p99_ratio: f64,
    /// Latency differences below this many milliseconds never break the latency guardrail.
    pub p99_slack_ms: f64,
    /// Largest acceptable KS distance between the variants' predictions (none: not checked).
    pub max_ks: Option<f64>,
    /// The outcome field (in `POST /v2/feedback`) that is the primary metric (none: not checked).
    pub metric: Option<String>,
    /// Better is an increase or a decrease of the primary metric.
    pub direction: Direction,
    /// Outcomes per variant before the primary metric is tested.
    pub min_outcomes: u64,
    /// Significance of the statistical guardrails.
    pub alpha: f64,
    /// Tuning sample size of the confidence sequences.
    pub tuning: f64,
    /// Units whose variant is remembered, so a unit never changes variant while the share ramps up.
    pub sticky_capacity: usize,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            steps: vec![1.0, 5.0, 25.0, 50.0, 100.0],
            min_units: 100,
            min_seconds: 60.0,
            check_interval_ms: 1000,
            max_error_rate_delta: 0.01,
            max_p99_ratio: 2.0,
            p99_slack_ms: 5.0,
            max_ks: Some(0.5),
            metric: None,
            direction: Direction::Increase,
            min_outcomes: 100,
            alpha: 0.05,
            tuning: 5000.0,
            sticky_capacity: 1_000_000,
        }
    }
}

impl CanaryConfig {
    /// Checks the settings.
    pub fn check(&self) -> Result<()> {
        if self.steps.is_empty() || self.steps.iter().any(|s| !(*s > 0.0 && *s <= 100.0)) || self.steps.windows(2).any(|w| w[1] <= w[0]) {
            return Err(Error::param(format!("canary.steps must be increasing percentages in (0, 100], got {:?}", self.steps)));
        }
        if self.steps.last() != Some(&100.0) {
            return Err(Error::param(format!("canary.steps must end at 100 (the challenger serving everything), got {:?}", self.steps)));
        }
        if !(self.min_seconds >= 0.0 && self.min_seconds.is_finite()) || self.check_interval_ms == 0 {
            return Err(Error::param("canary: min_seconds must be finite and non-negative, check_interval_ms positive"));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) || !(self.tuning >= 1.0) {
            return Err(Error::param(format!("canary: alpha must lie in (0, 1) and tuning be at least 1, got {} and {}", self.alpha, self.tuning)));
        }
        if !(self.max_error_rate_delta >= 0.0) || !(self.max_p99_ratio >= 1.0) || !(self.p99_slack_ms >= 0.0) {
            return Err(Error::param("canary: max_error_rate_delta and p99_slack_ms must be non-negative, max_p99_ratio at least 1"));
        }
        if matches!(self.max_ks, Some(k) if !(k > 0.0 && k <= 1.0)) {
            return Err(Error::param("canary.max_ks must lie in (0, 1]"));
        }
        Ok(())
    }
}

/// What one variant did, as the guardrails see it.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Requests answered or failed since the canary started.
    pub requests: f64,
    /// Of which failed (server-side: model errors, deadlines, overload).
    pub errors: f64,
    /// p99 latency in seconds over the current step, with the number of requests behind it.
    pub p99: Option<(f64, u64)>,
    /// The primary metric's moments (from outcomes).
    pub metric: Option<Moments>,
}

/// The first guardrail that breaks, in words; `ks` is the prediction distance with both sample sizes.
pub fn breach(cfg: &CanaryConfig, champion: &Observed, challenger: &Observed, ks: Option<(f64, usize, usize)>) -> Option<String> {
    if challenger.requests >= 10.0 && champion.requests >= 10.0 {
        let (rb, rc) = (champion.errors / champion.requests, challenger.errors / challenger.requests);
        let d = rc - rb - cfg.max_error_rate_delta;
        if d > 0.0 {
            let adj = |e: f64, n: f64| {
                let p = (e + 1.0) / (n + 2.0);
                p * (1.0 - p) / n
            };
            let var = adj(champion.errors, champion.requests) + adj(challenger.errors, challenger.requests);
            let p = msprt_pvalue(d, var, champion.requests + challenger.requests, rho(cfg.alpha, cfg.tuning));
            if p < cfg.alpha {
                return Some(format!(
                    "error rate {:.4} against the champion's {:.4} (margin {}; always-valid p = {:.2e})",
                    rc, rb, cfg.max_error_rate_delta, p
                ));
            }
        }
    }
    if let (Some((pb, nb)), Some((pc, nc))) = (champion.p99, challenger.p99) {
        if nb >= 50 && nc >= 50 && pc > pb * cfg.max_p99_ratio && pc > pb + cfg.p99_slack_ms * 1e-3 {
            return Some(format!("p99 latency {:.2} ms against the champion's {:.2} ms (at most {}x)", pc * 1e3, pb * 1e3, cfg.max_p99_ratio));
        }
    }
    if let (Some(limit), Some((d, na, nb))) = (cfg.max_ks, ks) {
        if na >= 100 && nb >= 100 && d > limit {
            return Some(format!("prediction distribution: KS distance {d:.3} from the champion's (at most {limit})"));
        }
    }
    if let (Some(name), Some(mb), Some(mc)) = (&cfg.metric, &champion.metric, &challenger.metric) {
        if mb.n >= cfg.min_outcomes as f64 && mc.n >= cfg.min_outcomes as f64 && mb.n >= 2.0 && mc.n >= 2.0 {
            let o = Options { metric: Metric::Mean, method: Method::Sequential, relative: false, alpha: cfg.alpha, tuning: cfg.tuning, cuped: false };
            // The variance of both arms under "no difference": the pooled sample's. A challenger at a
            // small share has few outcomes, and its own variance (a rare event seen once or never) would
            // understate the uncertainty.
            let all = mb.merge(mc);
            let pooled = all.m2_y / (all.n - 1.0);
            let with = |m: &Moments| Moments { m2_y: pooled * (m.n - 1.0), ..*m };
            if let Ok(c) = compare(&with(mb), &with(mc), &o) {
                let worse = match cfg.direction {
                    Direction::Increase => c.ci_high < 0.0,
                    Direction::Decrease => c.ci_low > 0.0,
                };
                if worse {
                    return Some(format!(
                        "primary metric '{name}': {:.4} against the champion's {:.4}, always-valid interval [{:.4}, {:.4}]",
                        c.treatment, c.control, c.ci_low, c.ci_high
                    ));
                }
            }
        }
    }
    None
}

/// Moments of one value (for merging outcomes as they arrive).
pub fn one(v: f64) -> Moments {
    Moments { n: 1.0, mean_y: v, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(requests: f64, errors: f64) -> Observed {
        Observed { requests, errors, ..Default::default() }
    }

    #[test]
    fn error_guardrail_catches_a_bad_challenger_and_spares_an_equal_one() {
        let cfg = CanaryConfig::default();
        assert!(breach(&cfg, &obs(5000.0, 25.0), &obs(60.0, 12.0), None).is_some());
        assert!(breach(&cfg, &obs(5000.0, 25.0), &obs(60.0, 1.0), None).is_none());
        assert!(breach(&cfg, &obs(5000.0, 25.0), &obs(5.0, 5.0), None).is_none(), "too few requests to judge");
        // equal rates never break it, whatever the sample
        assert!(breach(&cfg, &obs(1e6, 5000.0), &obs(1e6, 5000.0), None).is_none());
    }

    #[test]
    fn latency_distribution_and_metric_guardrails() {
        let cfg = CanaryConfig { metric: Some("reward".into()), min_outcomes: 10, ..Default::default() };
        let mut b = obs(1000.0, 0.0);
        let mut c = obs(1000.0, 0.0);
        b.p99 = Some((0.002, 500));
        c.p99 = Some((0.020, 500));
        assert!(breach(&cfg, &b, &c, None).unwrap().contains("p99"));
        c.p99 = Some((0.003, 500));
        assert!(breach(&cfg, &b, &c, None).is_none(), "within the slack");
        assert!(breach(&cfg, &b, &c, Some((0.9, 500, 500))).unwrap().contains("KS"));
        assert!(breach(&cfg, &b, &c, Some((0.1, 500, 500))).is_none());
        let m = |vals: &[f64]| Moments::from_values("m", vals, None).unwrap();
        let good: Vec<f64> = (0..2000).map(|i| f64::from(i % 10 < 5)).collect();
        let bad: Vec<f64> = (0..2000).map(|i| f64::from(i % 10 < 2)).collect();
        b.metric = Some(m(&good));
        c.metric = Some(m(&bad));
        assert!(breach(&cfg, &b, &c, None).unwrap().contains("primary metric"));
        c.metric = Some(m(&good));
        assert!(breach(&cfg, &b, &c, None).is_none());
        let worse_if_lower = CanaryConfig { direction: Direction::Decrease, ..cfg.clone() };
        b.metric = Some(m(&bad));
        assert!(breach(&worse_if_lower, &b, &c, None).is_some());
    }

    #[test]
    fn equal_variants_are_rarely_rolled_back_though_checked_all_along() {
        // 400 simulated A/A canaries (10 % conversion, challenger at 5 %), the metric guardrail looked at
        // after every 10 challenger outcomes up to 1 000: false rollbacks stay near alpha.
        let cfg = CanaryConfig { metric: Some("y".into()), min_outcomes: 50, ..Default::default() };
        let mut rng = crate::data::sample::SplitMix64::new(11);
        let mut false_rollbacks = 0;
        let runs = 400;
        for _ in 0..runs {
            let (mut b, mut c) = (Moments::default(), Moments::default());
            let add = |m: &mut Moments, v: f64| *m = if m.n == 0.0 { one(v) } else { m.merge(&one(v)) };
            let mut hit = false;
            for _look in 0..100 {
                for _ in 0..10 {
                    add(&mut c, f64::from(u8::from(rng.next_f64() < 0.1)));
                    for _ in 0..19 {
                        add(&mut b, f64::from(u8::from(rng.next_f64() < 0.1)));
                    }
                }
                let ob = Observed { requests: b.n, metric: Some(b), ..Default::default() };
                let oc = Observed { requests: c.n, metric: Some(c), ..Default::default() };
                if breach(&cfg, &ob, &oc, None).is_some() {
                    hit = true;
                    break;
                }
            }
            false_rollbacks += usize::from(hit);
        }
        let rate = false_rollbacks as f64 / runs as f64;
        assert!(rate <= 0.06, "false rollback rate {rate}");
        // The same for error rates of 2 % in both, looked at every 10 challenger requests.
        let mut false_rollbacks = 0;
        for _ in 0..runs {
            let (mut b, mut c) = (Observed::default(), Observed::default());
            for _look in 0..100 {
                for _ in 0..10 {
                    c.requests += 1.0;
                    c.errors += f64::from(u8::from(rng.next_f64() < 0.02));
                    for _ in 0..19 {
                        b.requests += 1.0;
                        b.errors += f64::from(u8::from(rng.next_f64() < 0.02));
                    }
                }
                if breach(&cfg, &b, &c, None).is_some() {
                    false_rollbacks += 1;
                    break;
                }
            }
        }
        let rate_errors = false_rollbacks as f64 / runs as f64;
        assert!(rate_errors <= 0.06, "false rollback rate on errors {rate_errors}");
    }

    #[test]
    fn a_rare_event_seen_once_in_a_small_arm_is_no_evidence() {
        // 10 % conversion in both; the challenger's 50 outcomes happen to hold one conversion.
        let cfg = CanaryConfig { metric: Some("conversion".into()), min_outcomes: 50, ..Default::default() };
        let m = |n: usize, k: usize| Moments::from_values("m", &(0..n).map(|i| f64::from(u8::from(i < k))).collect::<Vec<_>>(), None).unwrap();
        let b = Observed { requests: 5000.0, metric: Some(m(5000, 500)), ..Default::default() };
        let c = Observed { requests: 50.0, metric: Some(m(50, 1)), ..Default::default() };
        assert!(breach(&cfg, &b, &c, None).is_none());
    }

    #[test]
    fn steps_are_checked() {
        assert!(CanaryConfig::default().check().is_ok());
        for steps in [vec![], vec![5.0, 1.0, 100.0], vec![1.0, 50.0], vec![0.0, 100.0]] {
            assert!(CanaryConfig { steps, ..Default::default() }.check().is_err());
        }
    }
}
