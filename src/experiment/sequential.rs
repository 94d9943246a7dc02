//! Always-valid inference: the asymptotic confidence sequence of Waudby-Smith et al. (Howard et al.'s
//! normal mixture) as GrowthBook's gbstats computes it, and the mSPRT p-value of the same normal
//! mixture, so the p-value is below α exactly when the sequence excludes zero.
//!
//! With N units in all, V the variance of the effect estimate and s² = V·N, the half-width is
//! √s² · √( 2(Nρ² + 1) / (N²ρ²) · ln(√(Nρ² + 1) / α) ), and ρ is chosen so the sequence is tightest
//! at N = `tuning`: ρ² = (−2 ln α + ln(−2 ln α + 1)) / tuning. The mixing prior of the mSPRT is
//! N(0, τ²) with τ² = s²ρ², whose likelihood ratio is √(V/(V+τ²)) · exp(θ̂²τ² / (2V(V+τ²))).

/// ρ of the confidence sequence tuned for `tuning` units.
pub fn rho(alpha: f64, tuning: f64) -> f64 {
    let l = -2.0 * alpha.ln();
    ((l + (l + 1.0).ln()) / tuning).sqrt()
}

/// Half-width of the (1 − α) confidence sequence at N units for an effect with variance `var`.
pub fn halfwidth(var: f64, n_total: f64, alpha: f64, rho: f64) -> f64 {
    let s2 = var * n_total;
    let r2 = rho * rho;
    let w = 2.0 * (n_total * r2 + 1.0) / (n_total * n_total * r2) * ((n_total * r2 + 1.0).sqrt() / alpha).ln();
    s2.sqrt() * w.sqrt()
}

/// The always-valid p-value of the mSPRT with mixing variance τ² = V·N·ρ²: min(1, 1/Λ).
pub fn msprt_pvalue(effect: f64, var: f64, n_total: f64, rho: f64) -> f64 {
    if !(var > 0.0) {
        return if effect == 0.0 { 1.0 } else { 0.0 };
    }
    let k = n_total * rho * rho; // τ²/V
    let log_lr = -0.5 * (1.0 + k).ln() + effect * effect / var * k / (2.0 * (1.0 + k));
    (-log_lr).exp().min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvalue_crosses_alpha_where_the_sequence_touches_zero() {
        let (alpha, n, var) = (0.05, 3000.0, 0.01);
        let r = rho(alpha, 5000.0);
        let h = halfwidth(var, n, alpha, r);
        assert!((msprt_pvalue(h, var, n, r) - alpha).abs() < 1e-12);
        // tightest near the tuning size: N·width² is smallest there
        let w = |n: f64| halfwidth(1.0 / n, n, alpha, r) * n.sqrt();
        assert!(w(5000.0) < w(2000.0) && w(5000.0) < w(20000.0));
    }
}
