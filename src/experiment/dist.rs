//! The distributions behind the tests: Student t and normal tails and quantiles (tails from statrs'
//! regularised incomplete beta and `drift::special`'s erfc, quantiles polished by Newton steps to full
//! precision), and the non-central t CDF the power of a t test needs (Lenth's AS 243 series).

use statrs::function::{beta, erf};

use crate::drift::special::{ln_gamma, norm_sf};

/// P(Z ≤ z) for the standard normal.
pub fn norm_cdf(z: f64) -> f64 {
    norm_sf(-z)
}

/// The standard normal density.
pub fn norm_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The normal quantile: z with P(Z ≤ z) = p (p in (0, 1)).
pub fn norm_ppf(p: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return if p == 0.0 { f64::NEG_INFINITY } else if p == 1.0 { f64::INFINITY } else { f64::NAN };
    }
    let mut z = -std::f64::consts::SQRT_2 * erf::erfc_inv(2.0 * p);
    // Newton on the tail nearer to p, where it is accurate.
    for _ in 0..3 {
        let f = if p < 0.5 { norm_cdf(z) - p } else { (1.0 - p) - norm_sf(z) };
        let d = norm_pdf(z);
        if d == 0.0 {
            break;
        }
        z -= f / d;
    }
    z
}

/// P(T > t) for Student's t with `df` degrees of freedom.
pub fn t_sf(t: f64, df: f64) -> f64 {
    if t.is_nan() || !(df > 0.0) {
        return f64::NAN;
    }
    if df.is_infinite() {
        return norm_sf(t);
    }
    let x = df / (df + t * t);
    let half = 0.5 * beta::beta_reg(0.5 * df, 0.5, x);
    if t > 0.0 {
        half
    } else {
        1.0 - half
    }
}

/// P(T ≤ t).
pub fn t_cdf(t: f64, df: f64) -> f64 {
    t_sf(-t, df)
}

fn t_pdf(t: f64, df: f64) -> f64 {
    let ln = ln_gamma(0.5 * (df + 1.0)) - ln_gamma(0.5 * df) - 0.5 * (df * std::f64::consts::PI).ln()
        - 0.5 * (df + 1.0) * (t * t / df).ln_1p();
    ln.exp()
}

/// The Student t quantile: t with P(T ≤ t) = p.
pub fn t_ppf(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) || !(df > 0.0) {
        return f64::NAN;
    }
    if df.is_infinite() {
        return norm_ppf(p);
    }
    let lower = p.min(1.0 - p);
    let y = beta::inv_beta_reg(0.5 * df, 0.5, 2.0 * lower);
    let mut t = -(df * (1.0 - y) / y).sqrt(); // the lower-tail quantile (negative)
    for _ in 0..4 {
        let f = t_cdf(t, df) - lower;
        let d = t_pdf(t, df);
        if d == 0.0 || !f.is_finite() {
            break;
        }
        let step = f / d;
        t -= step;
        if step.abs() <= 1e-15 * t.abs() {
            break;
        }
    }
    if p < 0.5 {
        t
    } else {
        -t
    }
}

/// P(T ≤ t) for the non-central t with `df` degrees of freedom and non-centrality `delta`
/// (Lenth 1989, AS 243: a Poisson mixture of incomplete beta functions, summed until the bound on
/// the rest falls below 1e-15).
pub fn nct_cdf(t: f64, df: f64, delta: f64) -> f64 {
    if t.is_nan() || df.is_nan() || delta.is_nan() || !(df > 0.0) {
        return f64::NAN;
    }
    let (tt, del, neg) = if t < 0.0 { (-t, -delta, true) } else { (t, delta, false) };
    let mut out = 0.0;
    let x = tt * tt / (tt * tt + df);
    if x > 0.0 {
        let lambda = del * del;
        let mut p = 0.5 * (-0.5 * lambda).exp();
        let mut q = (2.0 / std::f64::consts::PI).sqrt() * p * del;
        let mut s = 0.5 - p;
        let mut a = 0.5;
        let b = 0.5 * df;
        let rxb = (1.0 - x).powf(b);
        let albeta = 0.5 * std::f64::consts::PI.ln() + ln_gamma(b) - ln_gamma(0.5 + b);
        let mut xodd = beta::beta_reg(a, b, x);
        let mut godd = 2.0 * rxb * (a * x.ln() - albeta).exp();
        let mut xeven = 1.0 - rxb;
        let mut geven = b * x * rxb;
        out = p * xodd + q * xeven;
        let mut en = 1.0;
        loop {
            a += 1.0;
            xodd -= godd;
            xeven -= geven;
            godd *= x * (a + b - 1.0) / a;
            geven *= x * (a + b - 0.5) / (a + 0.5);
            p *= lambda / (2.0 * en);
            q *= lambda / (2.0 * en + 1.0);
            s -= p;
            en += 1.0;
            out += p * xodd + q * xeven;
            let errbd = 2.0 * s * (xodd - godd);
            if (errbd.abs() <= 1e-15 && en > lambda / 2.0) || en > 5000.0 {
                break;
            }
        }
    }
    out += norm_sf(del);
    let out = out.clamp(0.0, 1.0);
    if neg {
        1.0 - out
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_invert_the_tails() {
        for &p in &[1e-6, 0.025, 0.3, 0.5, 0.9, 0.975] {
            assert!((norm_cdf(norm_ppf(p)) - p).abs() <= 1e-15 + 1e-13 * p);
            for &df in &[1.0, 3.5, 30.0, 1e4] {
                let t = t_ppf(p, df);
                assert!((t_cdf(t, df) - p).abs() <= 1e-11 * p, "p {p} df {df} t {t} cdf {}", t_cdf(t, df));
            }
        }
        // scipy.stats.t.ppf(0.975, 10) and scipy.stats.nct.cdf(1.5, 10, 0.8)
        assert!((t_ppf(0.975, 10.0) - 2.228138851986274).abs() < 1e-12);
        assert!((nct_cdf(1.5, 10.0, 0.8) - 0.7352271134419176).abs() < 1e-10, "{}", nct_cdf(1.5, 10.0, 0.8));
        assert!((nct_cdf(-2.0, 50.0, 1.2) - 0.0008755427885016692).abs() < 1e-11, "{}", nct_cdf(-2.0, 50.0, 1.2));
        assert!((nct_cdf(0.0, 10.0, 0.0) - 0.5).abs() < 1e-15);
    }
}
