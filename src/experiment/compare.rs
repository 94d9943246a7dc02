//! One treatment against control, read in one of three ways: fixed horizon (Welch's t test for means,
//! the z test for proportions and ratios), sequential (always valid at every look) or Bayesian; with
//! a decision in plain words.

use super::estimate::{estimate, Estimate, Metric};
use super::moments::Moments;
use super::{bayes, dist, power, sequential};
use crate::drift::special::norm_sf;
use crate::error::{Error, Result};

/// How the estimate is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Fixed,
    Sequential,
    Bayesian,
}

impl Method {
    /// Parses "fixed" / "sequential" / "bayesian".
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "fixed" => Ok(Method::Fixed),
            "sequential" => Ok(Method::Sequential),
            "bayesian" => Ok(Method::Bayesian),
            _ => Err(Error::param(format!("method must be 'fixed', 'sequential' or 'bayesian', got '{s}'"))),
        }
    }
}

/// What to compute.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    pub metric: Metric,
    pub method: Method,
    pub relative: bool,
    pub alpha: f64,
    /// The total sample size at which the confidence sequence is tightest (sequential only).
    pub tuning: f64,
    /// CUPED with the moments' `x` as the pre-period covariate.
    pub cuped: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { metric: Metric::Mean, method: Method::Fixed, relative: false, alpha: 0.05, tuning: 5000.0, cuped: false }
    }
}

/// JSON has no NaN: serde_json writes it as null, and null reads back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    let v: Option<f64> = serde::Deserialize::deserialize(d)?;
    Ok(v.unwrap_or(f64::NAN))
}

/// The result of one comparison (NaN where a number does not apply to the method).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Comparison {
    pub metric: Metric,
    pub method: Method,
    pub relative: bool,
    #[serde(deserialize_with = "nan_if_null")]
    pub alpha: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub n_control: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub n_treatment: f64,
    /// The control and treatment values (CUPED-adjusted when a covariate is used).
    #[serde(deserialize_with = "nan_if_null")]
    pub control: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub treatment: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub effect: f64,
    /// Standard error of the effect.
    #[serde(deserialize_with = "nan_if_null")]
    pub se: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub ci_low: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub ci_high: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub statistic: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub pvalue: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub df: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub chance_to_win: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub expected_loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub theta: f64,
    /// Units per arm still needed for 80% power at the observed effect (NaN when decided).
    #[serde(deserialize_with = "nan_if_null")]
    pub more_units: f64,
    pub decision: String,
}

fn decide(significant: bool, effect: f64, more: Option<f64>) -> (String, f64) {
    if significant {
        let d = if effect > 0.0 { "ship treatment" } else { "roll back" };
        return (d.into(), f64::NAN);
    }
    match more {
        Some(m) => {
            let m = m.ceil().max(1.0);
            (format!("keep collecting: about {} more units per arm for 80% power", m as u64), m)
        }
        None => ("keep collecting: no difference seen yet".into(), f64::NAN),
    }
}

/// Compares treatment with control.
pub fn compare(control: &Moments, treatment: &Moments, o: &Options) -> Result<Comparison> {
    super::check_alpha(o.alpha)?;
    if o.method == Method::Sequential && !(o.tuning >= 1.0 && o.tuning.is_finite()) {
        return Err(Error::param(format!("tuning must be a sample size of at least 1, got {}", o.tuning)));
    }
    let e: Estimate = estimate(control, treatment, o.metric, o.cuped, o.relative)?;
    let se = e.var.sqrt();
    let n_total = e.control.n + e.treatment.n;
    let mut r = Comparison {
        metric: o.metric,
        method: o.method,
        relative: o.relative,
        alpha: o.alpha,
        n_control: e.control.n,
        n_treatment: e.treatment.n,
        control: e.control.value,
        treatment: e.treatment.value,
        effect: e.effect,
        se,
        ci_low: f64::NAN,
        ci_high: f64::NAN,
        statistic: f64::NAN,
        pvalue: f64::NAN,
        df: e.df,
        chance_to_win: f64::NAN,
        expected_loss: f64::NAN,
        theta: e.theta,
        more_units: f64::NAN,
        decision: String::new(),
    };
    let more = || {
        let need = power::units_needed(e.effect, e.var, n_total / 2.0, o.alpha, 0.8)?;
        Some((need - n_total / 2.0).max(1.0))
    };
    let significant;
    match o.method {
        Method::Fixed => {
            let stat = e.effect / e.var_test.sqrt();
            let p = if e.df.is_infinite() { 2.0 * norm_sf(stat.abs()) } else { 2.0 * dist::t_sf(stat.abs(), e.df) };
            let q = if e.df.is_infinite() { dist::norm_ppf(1.0 - o.alpha / 2.0) } else { dist::t_ppf(1.0 - o.alpha / 2.0, e.df) };
            r.statistic = stat;
            r.pvalue = p.min(1.0);
            r.ci_low = e.effect - q * se;
            r.ci_high = e.effect + q * se;
            significant = r.pvalue < o.alpha;
        }
        Method::Sequential => {
            let rho = sequential::rho(o.alpha, o.tuning);
            let h = sequential::halfwidth(e.var, n_total, o.alpha, rho);
            r.statistic = e.effect / se;
            r.pvalue = sequential::msprt_pvalue(e.effect, e.var, n_total, rho);
            r.ci_low = e.effect - h;
            r.ci_high = e.effect + h;
            r.df = f64::INFINITY;
            significant = r.pvalue < o.alpha;
        }
        Method::Bayesian => {
            let (win, loss, ci) = if o.metric == Metric::Proportion && !o.cuped && !o.relative {
                let (sc, st) = (control.mean_y * control.n, treatment.mean_y * treatment.n);
                bayes::beta_binomial(control.n, sc.round(), treatment.n, st.round(), o.alpha)
            } else {
                bayes::gaussian(e.effect, e.var, o.alpha)
            };
            r.chance_to_win = win;
            r.expected_loss = loss;
            r.ci_low = ci.0;
            r.ci_high = ci.1;
            r.df = f64::INFINITY;
            significant = win >= 1.0 - o.alpha || win <= o.alpha;
            let (d, m) = decide(significant, win - 0.5, more());
            r.decision = d;
            r.more_units = m;
            return Ok(r);
        }
    }
    let (d, m) = decide(significant, e.effect, more());
    r.decision = d;
    r.more_units = m;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_the_evidence() {
        let c: Vec<f64> = (0..2000).map(|i| ((i * 7919) % 1000) as f64 / 1000.0).collect();
        let t: Vec<f64> = c.iter().map(|v| v + 0.2).collect();
        let (mc, mt) = (Moments::from_values("control", &c, None).unwrap(), Moments::from_values("treatment", &t, None).unwrap());
        for method in [Method::Fixed, Method::Sequential, Method::Bayesian] {
            let r = compare(&mc, &mt, &Options { method, ..Default::default() }).unwrap();
            assert_eq!(r.decision, "ship treatment", "{method:?}");
            let r = compare(&mt, &mc, &Options { method, ..Default::default() }).unwrap();
            assert_eq!(r.decision, "roll back");
        }
        let r = compare(&mc, &mc, &Options::default()).unwrap();
        assert!(r.decision.starts_with("keep collecting"), "{}", r.decision);
        assert!(compare(&mc, &mt, &Options { alpha: 1.5, ..Default::default() }).unwrap_err().to_string().contains("alpha"));
    }
}
