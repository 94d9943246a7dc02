//! Bayesian readings: a Gaussian posterior of the effect (flat prior: N(θ̂, V)), and for proportions
//! independent Beta(1 + successes, 1 + failures) posteriors per arm (uniform prior). Both give the
//! chance that treatment beats control, the expected loss of shipping it (E[max(0, control −
//! treatment)]) and a central credible interval.

use statrs::function::beta::beta_reg;

use super::dist::{norm_cdf, norm_pdf, norm_ppf};
use crate::drift::special::ln_gamma;

/// (chance to win, expected loss, credible interval) under the posterior N(mean, var).
pub fn gaussian(mean: f64, var: f64, alpha: f64) -> (f64, f64, (f64, f64)) {
    let sd = var.sqrt();
    if !(sd > 0.0) {
        let win = if mean > 0.0 { 1.0 } else if mean < 0.0 { 0.0 } else { 0.5 };
        return (win, (-mean).max(0.0), (mean, mean));
    }
    let z = mean / sd;
    let q = norm_ppf(1.0 - alpha / 2.0);
    (norm_cdf(z), sd * norm_pdf(z) - mean * norm_cdf(-z), (mean - q * sd, mean + q * sd))
}

fn ln_beta_pdf(x: f64, a: f64, b: f64) -> f64 {
    (a - 1.0) * x.ln() + (b - 1.0) * (-x).ln_1p() - (ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b))
}

/// Beta–Binomial: P(p_t > p_c) and E[max(0, p_c − p_t)] by Simpson's rule over the treatment
/// posterior (inner integrals in closed form through the incomplete beta), and a credible interval
/// for p_t − p_c from the normal with the posteriors' means and variances.
pub fn beta_binomial(n_c: f64, s_c: f64, n_t: f64, s_t: f64, alpha: f64) -> (f64, f64, (f64, f64)) {
    let (ac, bc) = (1.0 + s_c, 1.0 + n_c - s_c);
    let (at, bt) = (1.0 + s_t, 1.0 + n_t - s_t);
    let mean = |a: f64, b: f64| a / (a + b);
    let var = |a: f64, b: f64| a * b / ((a + b) * (a + b) * (a + b + 1.0));
    let (mt, st) = (mean(at, bt), var(at, bt).sqrt());
    let mc = mean(ac, bc);
    let lo = (mt - 14.0 * st).max(0.0);
    let hi = (mt + 14.0 * st).min(1.0);
    let steps = 4000usize;
    let h = (hi - lo) / steps as f64;
    let (mut win, mut loss) = (0.0, 0.0);
    for i in 0..=steps {
        let x = lo + h * i as f64;
        let w = if i == 0 || i == steps { 1.0 } else if i % 2 == 1 { 4.0 } else { 2.0 };
        let f = if x <= 0.0 || x >= 1.0 { 0.0 } else { ln_beta_pdf(x, at, bt).exp() };
        if f == 0.0 {
            continue;
        }
        let cx = beta_reg(ac, bc, x);
        win += w * f * cx;
        loss += w * f * (mc * (1.0 - beta_reg(ac + 1.0, bc, x)) - x * (1.0 - cx));
    }
    let d = mt - mc;
    let sd = (var(at, bt) + var(ac, bc)).sqrt();
    let q = norm_ppf(1.0 - alpha / 2.0);
    ((win * h / 3.0).clamp(0.0, 1.0), (loss * h / 3.0).max(0.0), (d - q * sd, d + q * sd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_arms_are_a_coin_flip() {
        let (w, l, ci) = beta_binomial(1000.0, 100.0, 1000.0, 100.0, 0.05);
        assert!((w - 0.5).abs() < 1e-6, "{w}");
        assert!(l > 0.0 && ci.0 < 0.0 && ci.1 > 0.0);
        let (w, _, _) = gaussian(0.0, 1.0, 0.05);
        assert_eq!(w, 0.5);
    }
}
