//! The effect of treatment over control and its variance, from the two arms' moments.
//!
//! * mean: difference of means, Welch's variance and degrees of freedom;
//! * proportion: difference of rates, unpooled variance p(1 − p)/n (for intervals) and pooled variance (for the
//!   z test, as statsmodels' `proportions_ztest`);
//! * ratio: Σy/Σx per arm with the delta-method variance
//!   Var(R̂) = (s²_y − 2R s_xy + R² s²_x) / (n x̄²);
//! * CUPED: y − θ(x − x̄) with θ = Cov(y, x)/Var(x) of both arms pooled;
//! * relative: the lift t/c − 1 with the delta-method variance Var_t/c² + t² Var_c/c⁴.

use super::moments::Moments;
use crate::error::{Error, Result};

/// The kind of metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Mean,
    Proportion,
    Ratio,
}

impl Metric {
    /// Parses "mean" / "proportion" / "ratio".
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(Metric::Mean),
            "proportion" => Ok(Metric::Proportion),
            "ratio" => Ok(Metric::Ratio),
            _ => Err(Error::param(format!("metric must be 'mean', 'proportion' or 'ratio', got '{s}'"))),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Mean => "mean",
            Metric::Proportion => "proportion",
            Metric::Ratio => "ratio",
        }
    }
}

/// One arm's point estimate, the variance of that estimate, and the per-unit variance.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArmEstimate {
    pub n: f64,
    pub value: f64,
    /// Var of `value` (the per-unit variance over n).
    pub var: f64,
}

/// The effect with what every reading of it needs.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Estimate {
    pub control: ArmEstimate,
    pub treatment: ArmEstimate,
    /// Treatment minus control, or the relative lift.
    pub effect: f64,
    /// Var of `effect` (unpooled; delta method for ratios and lifts).
    pub var: f64,
    /// Var of the absolute difference under H0 as the test uses it (pooled for proportions).
    pub var_test: f64,
    /// Welch–Satterthwaite degrees of freedom for means; infinite (normal) otherwise.
    pub df: f64,
    /// The CUPED θ (0 without a covariate).
    pub theta: f64,
    pub relative: bool,
}

fn check_arm(name: &str, m: &Moments) -> Result<()> {
    if !(m.n >= 2.0) {
        return Err(Error::data(format!("{name} needs at least 2 units, got {}", m.n)));
    }
    Ok(())
}

/// The CUPED θ of both arms pooled: Cov(y, x) / Var(x) of the union of the two samples.
pub fn cuped_theta(c: &Moments, t: &Moments) -> f64 {
    let all = c.merge(t);
    if all.m2_x > 0.0 {
        all.c_xy / all.m2_x
    } else {
        0.0
    }
}

/// The arm's value and its variance.
fn arm(m: &Moments, metric: Metric, theta: Option<(f64, f64)>, name: &str) -> Result<ArmEstimate> {
    let n = m.n;
    match metric {
        Metric::Mean | Metric::Proportion => {
            if metric == Metric::Proportion && !(0.0..=1.0).contains(&m.mean_y) {
                return Err(Error::data(format!("{name}: a proportion needs 0/1 values, the mean is {}", m.mean_y)));
            }
            match theta {
                // A rate's variance is p(1 − p)/n (the Wald form statsmodels uses), a mean's s²/n.
                None if metric == Metric::Proportion => {
                    Ok(ArmEstimate { n, value: m.mean_y, var: m.mean_y * (1.0 - m.mean_y) / n })
                }
                None => Ok(ArmEstimate { n, value: m.mean_y, var: m.var_y() / n }),
                Some((th, pooled_mean_x)) => {
                    let v = (m.m2_y - 2.0 * th * m.c_xy + th * th * m.m2_x) / (n - 1.0);
                    Ok(ArmEstimate { n, value: m.mean_y - th * (m.mean_x - pooled_mean_x), var: v.max(0.0) / n })
                }
            }
        }
        Metric::Ratio => {
            if m.mean_x == 0.0 {
                return Err(Error::data(format!("{name}: the denominators sum to zero, the ratio is undefined")));
            }
            let r = m.mean_y / m.mean_x;
            let v = (m.var_y() - 2.0 * r * m.cov_xy() + r * r * m.var_x()) / (n * m.mean_x * m.mean_x);
            Ok(ArmEstimate { n, value: r, var: v.max(0.0) })
        }
    }
}

/// The effect of treatment over control.
pub fn estimate(control: &Moments, treatment: &Moments, metric: Metric, cuped: bool, relative: bool) -> Result<Estimate> {
    check_arm("control", control)?;
    check_arm("treatment", treatment)?;
    if cuped && metric == Metric::Ratio {
        return Err(Error::param("covariate (CUPED) applies to 'mean' and 'proportion' metrics, not 'ratio'"));
    }
    let (theta, th) = if cuped {
        let th = cuped_theta(control, treatment);
        (th, Some((th, control.merge(treatment).mean_x)))
    } else {
        (0.0, None)
    };
    let c = arm(control, metric, th, "control")?;
    let t = arm(treatment, metric, th, "treatment")?;
    let diff = t.value - c.value;
    let var_diff = c.var + t.var;
    let var_test = if metric == Metric::Proportion && !cuped {
        let p = (control.mean_y * control.n + treatment.mean_y * treatment.n) / (control.n + treatment.n);
        p * (1.0 - p) * (1.0 / control.n + 1.0 / treatment.n)
    } else {
        var_diff
    };
    let df = if metric == Metric::Mean {
        let num = var_diff * var_diff;
        let den = c.var * c.var / (c.n - 1.0) + t.var * t.var / (t.n - 1.0);
        if den > 0.0 {
            num / den
        } else {
            f64::INFINITY
        }
    } else {
        f64::INFINITY
    };
    let (effect, var) = if relative {
        if c.value == 0.0 {
            return Err(Error::data("control: the control value is zero, a relative lift is undefined (use relative=False)"));
        }
        let cv = c.value;
        (t.value / cv - 1.0, t.var / (cv * cv) + t.value * t.value * c.var / (cv * cv * cv * cv))
    } else {
        (diff, var_diff)
    };
    let var_test = if relative { var } else { var_test };
    Ok(Estimate { control: c, treatment: t, effect, var, var_test, df, theta, relative })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_df_and_pooled_proportion() {
        let c = Moments::from_values("control", &[1.0, 2.0, 3.0, 4.0], None).unwrap();
        let t = Moments::from_values("treatment", &[2.0, 4.0, 6.0], None).unwrap();
        let e = estimate(&c, &t, Metric::Mean, false, false).unwrap();
        assert!((e.effect - 1.5).abs() < 1e-15);
        // scipy.stats.ttest_ind([1,2,3,4],[2,4,6], equal_var=False).df
        let vc: f64 = (5.0 / 3.0) / 4.0;
        let vt: f64 = 4.0 / 3.0;
        let df = (vc + vt).powi(2) / (vc * vc / 3.0 + vt * vt / 2.0);
        assert!((e.df - df).abs() < 1e-12);
        assert!(estimate(&c, &t, Metric::Ratio, true, false).is_err());
    }
}
