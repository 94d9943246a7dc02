//! Sample-ratio mismatch: Pearson's chi-square goodness of fit of the units seen per arm against the
//! planned split (as `scipy.stats.chisquare(counts, total * weights / sum(weights))`).

use crate::drift::special::chi2_sf;
use crate::error::{Error, Result};

/// The SRM check.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Srm {
    pub statistic: f64,
    pub pvalue: f64,
    pub mismatch: bool,
    pub threshold: f64,
}

/// Chi-square test of `counts` against the split `weights` (any positive scale); a mismatch is a
/// p-value below `threshold`.
pub fn srm(counts: &[f64], weights: &[f64], threshold: f64) -> Result<Srm> {
    if counts.len() < 2 {
        return Err(Error::data(format!("counts needs at least 2 arms, got {}", counts.len())));
    }
    if weights.len() != counts.len() {
        return Err(Error::data(format!(
            "weights has {} values but counts has {}: one per arm",
            weights.len(),
            counts.len()
        )));
    }
    if let Some(c) = counts.iter().find(|c| !(c.is_finite() && **c >= 0.0)) {
        return Err(Error::data(format!("counts must be finite and non-negative, got {c}")));
    }
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
        return Err(Error::data(format!("weights must be finite and positive, got {w}")));
    }
    if !(threshold > 0.0 && threshold < 1.0) {
        return Err(Error::param(format!("threshold must lie in (0, 1), got {threshold}")));
    }
    let total: f64 = counts.iter().sum();
    if total <= 0.0 {
        return Err(Error::data("counts are all zero"));
    }
    let wsum: f64 = weights.iter().sum();
    let statistic: f64 = counts
        .iter()
        .zip(weights)
        .map(|(c, w)| {
            let e = total * w / wsum;
            (c - e) * (c - e) / e
        })
        .sum();
    let pvalue = chi2_sf(statistic, (counts.len() - 1) as f64);
    Ok(Srm { statistic, pvalue, mismatch: pvalue < threshold, threshold })
}

#[cfg(test)]
mod tests {
    #[test]
    fn balanced_counts_pass() {
        let r = super::srm(&[1000.0, 1000.0], &[1.0, 1.0], 0.001).unwrap();
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.pvalue, 1.0);
        assert!(super::srm(&[1200.0, 1000.0], &[0.5, 0.5], 0.001).unwrap().mismatch);
    }
}
