//! Multiple-testing correction of a family of p-values: Benjamini–Hochberg (false discovery rate, the
//! default), Holm and Bonferroni (family-wise error rate). NaN p-values (columns not tested) are left
//! out of the family and stay NaN.

use crate::error::{Error, Result};

/// A correction method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Correction {
    /// Benjamini–Hochberg step-up (as `scipy.stats.false_discovery_control(method="bh")`).
    BenjaminiHochberg,
    /// Holm's step-down.
    Holm,
    /// Bonferroni: p · m.
    Bonferroni,
    /// No correction.
    None,
}

impl Correction {
    /// Parses "bh" / "fdr_bh" / "holm" / "bonferroni" / "none".
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "bh" | "fdr_bh" | "benjamini-hochberg" => Ok(Correction::BenjaminiHochberg),
            "holm" => Ok(Correction::Holm),
            "bonferroni" => Ok(Correction::Bonferroni),
            "none" => Ok(Correction::None),
            _ => Err(Error::param(format!(
                "correction must be 'bh', 'holm', 'bonferroni' or 'none', got '{s}'"
            ))),
        }
    }

    /// The name as accepted by [`Correction::parse`].
    pub fn name(&self) -> &'static str {
        match self {
            Correction::BenjaminiHochberg => "bh",
            Correction::Holm => "holm",
            Correction::Bonferroni => "bonferroni",
            Correction::None => "none",
        }
    }
}

/// Adjusted p-values, in the input order.
pub fn adjust(pvalues: &[f64], method: Correction) -> Result<Vec<f64>> {
    if let Some(p) = pvalues.iter().find(|p| !p.is_nan() && !(0.0..=1.0).contains(*p)) {
        return Err(Error::data(format!("p-values must lie in [0, 1], got {p}")));
    }
    let idx: Vec<usize> = (0..pvalues.len()).filter(|&i| !pvalues[i].is_nan()).collect();
    let m = idx.len();
    let mut out = vec![f64::NAN; pvalues.len()];
    if m == 0 {
        return Ok(out);
    }
    let mut order = idx.clone();
    order.sort_by(|&a, &b| pvalues[a].total_cmp(&pvalues[b]));
    let mf = m as f64;
    match method {
        Correction::None => {
            for &i in &idx {
                out[i] = pvalues[i];
            }
        }
        Correction::Bonferroni => {
            for &i in &idx {
                out[i] = (pvalues[i] * mf).min(1.0);
            }
        }
        Correction::Holm => {
            let mut running: f64 = 0.0;
            for (rank, &i) in order.iter().enumerate() {
                let v = (pvalues[i] * (mf - rank as f64)).min(1.0);
                running = running.max(v);
                out[i] = running;
            }
        }
        Correction::BenjaminiHochberg => {
            let mut running: f64 = 1.0;
            for (rank, &i) in order.iter().enumerate().rev() {
                let v = pvalues[i] * mf / (rank + 1) as f64;
                running = running.min(v);
                out[i] = running.min(1.0);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_values() {
        let p = [0.01, 0.04, 0.03, 0.005];
        let near = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-15);
        let bh = adjust(&p, Correction::BenjaminiHochberg).unwrap();
        assert!(near(&bh, &[0.02, 0.04, 0.04, 0.02]), "{bh:?}");
        let holm = adjust(&p, Correction::Holm).unwrap();
        assert!(near(&holm, &[0.03, 0.06, 0.06, 0.02]), "{holm:?}");
        let bon = adjust(&[0.3, f64::NAN, 0.6], Correction::Bonferroni).unwrap();
        assert_eq!(bon[0], 0.6);
        assert!(bon[1].is_nan());
        assert_eq!(bon[2], 1.0);
    }
}
