//! Power, sample size per arm and minimum detectable effect of the two-sample z and t tests, with the
//! definitions of statsmodels' `NormalIndPower` (ddof = 0) and `TTestIndPower`: `effect_size` is
//! standardised (Cohen's d), `nobs1` the size of the first arm, `ratio` = nobs2 / nobs1. Whichever of
//! effect size, nobs1, alpha and power is missing is solved for by bisection to full precision.

use super::dist::{nct_cdf, norm_cdf, norm_ppf, t_ppf};
use crate::drift::special::norm_sf;
use crate::error::{Error, Result};

/// The test whose power is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Test {
    Z,
    T,
}

/// The alternative hypothesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alternative {
    TwoSided,
    Larger,
    Smaller,
}

impl Test {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "z" => Ok(Test::Z),
            "t" => Ok(Test::T),
            _ => Err(Error::param(format!("test must be 'z' or 't', got '{s}'"))),
        }
    }
}

impl Alternative {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "two-sided" | "2s" => Ok(Alternative::TwoSided),
            "larger" => Ok(Alternative::Larger),
            "smaller" => Ok(Alternative::Smaller),
            _ => Err(Error::param(format!("alternative must be 'two-sided', 'larger' or 'smaller', got '{s}'"))),
        }
    }
}

/// The power of the test.
pub fn power(test: Test, d: f64, nobs1: f64, alpha: f64, ratio: f64, alt: Alternative) -> f64 {
    let nobs2 = nobs1 * ratio;
    let nobs = 1.0 / (1.0 / nobs1 + 1.0 / nobs2);
    let a = if alt == Alternative::TwoSided { alpha / 2.0 } else { alpha };
    let shift = d * nobs.sqrt();
    let upper = alt != Alternative::Smaller;
    let lower = alt != Alternative::Larger;
    match test {
        Test::Z => {
            let crit = -norm_ppf(a);
            let mut p = 0.0;
            if upper {
                p += norm_sf(crit - shift);
            }
            if lower {
                p += norm_cdf(-crit - shift);
            }
            p.clamp(0.0, 1.0)
        }
        Test::T => {
            let df = nobs1 - 1.0 + nobs2 - 1.0;
            let mut p = 0.0;
            if upper {
                p += 1.0 - nct_cdf(-t_ppf(a, df), df, shift);
            }
            if lower {
                p += nct_cdf(t_ppf(a, df), df, shift);
            }
            p.clamp(0.0, 1.0)
        }
    }
}

fn bisect(mut lo: f64, mut hi: f64, f: impl Fn(f64) -> f64) -> f64 {
    // f increasing, f(lo) < 0 < f(hi)
    for _ in 0..300 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The four quantities with the one given as `None` solved for: (effect_size, nobs1, alpha, power).
pub fn solve(
    test: Test,
    effect_size: Option<f64>,
    nobs1: Option<f64>,
    alpha: Option<f64>,
    power_: Option<f64>,
    ratio: f64,
    alt: Alternative,
) -> Result<(f64, f64, f64, f64)> {
    let missing = [effect_size.is_none(), nobs1.is_none(), alpha.is_none(), power_.is_none()];
    if missing.iter().filter(|m| **m).count() != 1 {
        return Err(Error::param(
            "exactly one of effect_size, nobs1, alpha and power must be None (the one to solve for)",
        ));
    }
    if !(ratio > 0.0 && ratio.is_finite()) {
        return Err(Error::param(format!("ratio must be positive, got {ratio}")));
    }
    if let Some(a) = alpha {
        super::check_alpha(a)?;
    }
    if let Some(p) = power_ {
        if !(p > 0.0 && p < 1.0) {
            return Err(Error::param(format!("power must lie in (0, 1), got {p}")));
        }
    }
    let min_n = if test == Test::T { 1.0 / (1.0 + ratio) * 2.0 } else { 0.0 };
    if let Some(n) = nobs1 {
        if !(n > min_n && n.is_finite()) {
            return Err(Error::param(format!("nobs1 must be larger than {min_n}, got {n}")));
        }
    }
    if let Some(d) = effect_size {
        if !d.is_finite() {
            return Err(Error::param(format!("effect_size must be finite, got {d}")));
        }
    }
    let pw = |d: f64, n: f64, a: f64| power(test, d, n, a, ratio, alt);
    match (effect_size, nobs1, alpha, power_) {
        (Some(d), Some(n), Some(a), None) => Ok((d, n, a, pw(d, n, a))),
        (Some(d), None, Some(a), Some(p)) => {
            let f = |n: f64| pw(d, n, a) - p;
            let lo = min_n.max(1e-9) * (1.0 + 1e-12) + 1e-12;
            if f(lo) >= 0.0 {
                return Err(Error::param(format!("power {p} is reached with any sample size: nothing to solve")));
            }
            let mut hi = 2.0f64.max(lo * 2.0);
            while f(hi) < 0.0 {
                hi *= 2.0;
                if hi > 1e15 {
                    return Err(Error::param(format!(
                        "effect_size {d} is too small to reach power {p} with any sample size"
                    )));
                }
            }
            Ok((d, bisect(lo, hi, f), a, p))
        }
        (None, Some(n), Some(a), Some(p)) => {
            if p <= a {
                return Err(Error::param(format!("power must exceed alpha to solve for effect_size, got power {p} and alpha {a}")));
            }
            let sign = if alt == Alternative::Smaller { -1.0 } else { 1.0 };
            let f = |d: f64| pw(sign * d, n, a) - p;
            let mut hi = 1.0;
            while f(hi) < 0.0 {
                hi *= 2.0;
                if hi > 1e12 {
                    return Err(Error::param("could not solve for effect_size"));
                }
            }
            Ok((sign * bisect(0.0, hi, f), n, a, p))
        }
        (Some(d), Some(n), None, Some(p)) => {
            let f = |a: f64| pw(d, n, a) - p;
            if f(1e-300) >= 0.0 || f(1.0 - 1e-16) < 0.0 {
                return Err(Error::param(format!("no alpha in (0, 1) gives power {p}")));
            }
            Ok((d, n, bisect(0.0, 1.0, f), p))
        }
        _ => unreachable!("exactly one is missing"),
    }
}

/// Units per arm that a two-sided z test at level `alpha` needs to detect an effect of `effect` with
/// `target` power, when the effect's variance at `n_per_arm` units per arm is `var`.
pub fn units_needed(effect: f64, var: f64, n_per_arm: f64, alpha: f64, target: f64) -> Option<f64> {
    if !(effect != 0.0 && var > 0.0 && effect.is_finite()) {
        return None;
    }
    let sigma = (var * n_per_arm / 2.0).sqrt();
    solve(Test::Z, Some((effect / sigma).abs()), None, Some(alpha), Some(target), 1.0, Alternative::TwoSided)
        .ok()
        .map(|r| r.1)
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solving_inverts_power() {
        for test in [Test::Z, Test::T] {
            let p = power(test, 0.3, 100.0, 0.05, 1.0, Alternative::TwoSided);
            let (_, n, _, _) = solve(test, Some(0.3), None, Some(0.05), Some(p), 1.0, Alternative::TwoSided).unwrap();
            assert!((n - 100.0).abs() < 1e-8, "{n}");
            let (d, _, _, _) = solve(test, None, Some(100.0), Some(0.05), Some(p), 1.0, Alternative::TwoSided).unwrap();
            assert!((d - 0.3).abs() < 1e-10);
        }
        // statsmodels NormalIndPower().solve_power(0.2, power=0.8, alpha=0.05) = 392.4430...
        let (_, n, _, _) = solve(Test::Z, Some(0.2), None, Some(0.05), Some(0.8), 1.0, Alternative::TwoSided).unwrap();
        assert!((n - 392.443).abs() < 1e-3, "{n}");
    }
}
