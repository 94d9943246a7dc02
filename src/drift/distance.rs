//! Distances between distributions: `wasserstein_distance` and `energy_distance` (scipy's CDF
//! integrals, with weights), `jensenshannon` and `hellinger` between probability vectors, and the
//! population stability index (PSI) with bin edges from reference quantiles.

use crate::error::{Error, Result};

/// A weighted 1-D sample sorted by value: values and, when weighted, their weights in the same order.
pub struct Sorted {
    /// Values, ascending.
    pub values: Vec<f64>,
    /// Weights in value order, or None for equal weights.
    pub weights: Option<Vec<f64>>,
}

/// Validates and sorts a sample with optional weights (scipy's `_validate_distribution` rules).
pub fn sorted_weighted(name: &str, values: &[f64], weights: Option<&[f64]>) -> Result<Sorted> {
    if values.is_empty() {
        return Err(Error::data(format!("'{name}' is empty: a distribution needs at least one value")));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(format!(
            "'{name}' holds a non-finite value ({}) at position {i}; distances need finite values",
            values[i]
        )));
    }
    match weights {
        None => {
            let mut v = values.to_vec();
            v.sort_unstable_by(|a, b| a.total_cmp(b));
            Ok(Sorted { values: v, weights: None })
        }
        Some(w) => {
            if w.len() != values.len() {
                return Err(Error::data(format!(
                    "'{name}' has {} values but {} weights; they must be the same size",
                    values.len(),
                    w.len()
                )));
            }
            if w.iter().any(|x| *x < 0.0 || x.is_nan()) {
                return Err(Error::data(format!("weights of '{name}' must be non-negative")));
            }
            let total: f64 = w.iter().sum();
            if !(total > 0.0 && total.is_finite()) {
                return Err(Error::data(format!(
                    "weights of '{name}' must sum to a positive finite number, got {total}"
                )));
            }
            let mut idx: Vec<usize> = (0..values.len()).collect();
            idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
            Ok(Sorted {
                values: idx.iter().map(|&i| values[i]).collect(),
                weights: Some(idx.iter().map(|&i| w[i]).collect()),
            })
        }
    }
}

/// ∫ |F_u - F_v|^p over the real line for p = 1 (returned as is) or p = 2 (square root taken).
pub fn cdf_distance(p: u32, u: &Sorted, v: &Sorted) -> f64 {
    let (nu, nv) = (u.values.len(), v.values.len());
    let tu: f64 = u.weights.as_ref().map(|w| w.iter().sum()).unwrap_or(nu as f64);
    let tv: f64 = v.weights.as_ref().map(|w| w.iter().sum()).unwrap_or(nv as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let (mut cu, mut cv) = (0.0f64, 0.0f64);
    let mut total = 0.0;
    let mut prev: Option<f64> = None;
    // Walk the merged values; between consecutive values both CDFs are constant.
    while i < nu || j < nv {
        let x = match (u.values.get(i), v.values.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        if let Some(px) = prev {
            let fu = if u.weights.is_some() { cu / tu } else { i as f64 / nu as f64 };
            let fv = if v.weights.is_some() { cv / tv } else { j as f64 / nv as f64 };
            let d = (fu - fv).abs();
            total += if p == 1 { d } else { d * d } * (x - px);
        }
        while i < nu && u.values[i] == x {
            if let Some(w) = &u.weights {
                cu += w[i];
            }
            i += 1;
        }
        while j < nv && v.values[j] == x {
            if let Some(w) = &v.weights {
                cv += w[j];
            }
            j += 1;
        }
        prev = Some(x);
    }
    if p == 1 {
        total
    } else {
        total.sqrt()
    }
}

/// `scipy.stats.wasserstein_distance` (first Wasserstein distance between 1-D distributions).
pub fn wasserstein_distance(u: &[f64], v: &[f64], uw: Option<&[f64]>, vw: Option<&[f64]>) -> Result<f64> {
    let u = sorted_weighted("u_values", u, uw)?;
    let v = sorted_weighted("v_values", v, vw)?;
    Ok(cdf_distance(1, &u, &v))
}

/// `scipy.stats.energy_distance`: √2 times the L2 distance between the CDFs.
pub fn energy_distance(u: &[f64], v: &[f64], uw: Option<&[f64]>, vw: Option<&[f64]>) -> Result<f64> {
    let u = sorted_weighted("u_values", u, uw)?;
    let v = sorted_weighted("v_values", v, vw)?;
    Ok(std::f64::consts::SQRT_2 * cdf_distance(2, &u, &v))
}

fn probability_pair(p: &[f64], q: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
    if p.len() != q.len() {
        return Err(Error::data(format!("p has {} entries but q has {}; they must match", p.len(), q.len())));
    }
    if p.is_empty() {
        return Err(Error::data("p and q are empty"));
    }
    for (name, x) in [("p", p), ("q", q)] {
        if x.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::data(format!("{name} must hold finite, non-negative weights")));
        }
        if x.iter().sum::<f64>() <= 0.0 {
            return Err(Error::data(format!("{name} sums to zero; it must hold some mass")));
        }
    }
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    Ok((p.iter().map(|v| v / sp).collect(), q.iter().map(|v| v / sq).collect()))
}

fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// `scipy.spatial.distance.jensenshannon`: the Jensen–Shannon distance (square root of the divergence)
/// between two probability vectors (normalised first), in the given log base (e by default).
pub fn jensenshannon(p: &[f64], q: &[f64], base: Option<f64>) -> Result<f64> {
    let (p, q) = probability_pair(p, q)?;
    if let Some(b) = base {
        if !(b > 0.0 && b != 1.0) {
            return Err(Error::param(format!("base must be positive and not 1, got {b}")));
        }
    }
    let mut js = 0.0;
    for (a, b) in p.iter().zip(&q) {
        let m = (a + b) / 2.0;
        js += rel_entr(*a, m) + rel_entr(*b, m);
    }
    if let Some(b) = base {
        js /= b.ln();
    }
    Ok((js / 2.0).sqrt())
}

/// The Hellinger distance between two probability vectors (normalised first):
/// H = √(1 − Σ √(pᵢ qᵢ)) = ‖√p − √q‖₂ / √2, in [0, 1].
pub fn hellinger(p: &[f64], q: &[f64]) -> Result<f64> {
    let (p, q) = probability_pair(p, q)?;
    let bc: f64 = p.iter().zip(&q).map(|(a, b)| (a * b).sqrt()).sum();
    Ok((1.0 - bc).max(0.0).sqrt())
}

/// The share each bin gets, with empty bins raised to `epsilon` (so the logarithm stays finite).
pub fn shares_with_floor(counts: &[f64], epsilon: f64) -> Vec<f64> {
    let total: f64 = counts.iter().sum();
    counts.iter().map(|c| if *c > 0.0 { c / total } else { epsilon }).collect()
}

/// PSI between two binned distributions given as counts: Σ (aᵢ − eᵢ) ln(aᵢ / eᵢ) over bins, with
/// shares of empty bins replaced by `epsilon`.
pub fn psi_from_counts(expected: &[f64], actual: &[f64], epsilon: f64) -> f64 {
    let e = shares_with_floor(expected, epsilon);
    let a = shares_with_floor(actual, epsilon);
    e.iter().zip(&a).map(|(e, a)| (a - e) * (a / e).ln()).sum()
}

/// Interior bin edges at the reference quantiles k/bins (k = 1..bins-1, linear interpolation as
/// numpy's default), duplicates removed. With the two open-ended overflow bins below the first and
/// above the last edge, values outside the reference range still land in a bin.
pub fn quantile_edges(sorted_ref: &[f64], bins: usize) -> Vec<f64> {
    let n = sorted_ref.len();
    let mut edges = Vec::with_capacity(bins.saturating_sub(1));
    for k in 1..bins {
        let pos = (n - 1) as f64 * k as f64 / bins as f64;
        let lo = pos.floor() as usize;
        let frac = pos - lo as f64;
        let hi = (lo + 1).min(n - 1);
        let v = sorted_ref[lo] + (sorted_ref[hi] - sorted_ref[lo]) * frac;
        if edges.last().is_none_or(|&l: &f64| v > l) {
            edges.push(v);
        }
    }
    edges
}

/// Counts of sorted `values` in the bins (-inf, e₁], (e₁, e₂], ..., (e_last, +inf).
pub fn bin_counts_sorted(values: &[f64], weights: Option<&[f64]>, edges: &[f64]) -> Vec<f64> {
    if weights.is_none() {
        // Sorted values: each bin border is one binary search.
        let mut counts = Vec::with_capacity(edges.len() + 1);
        let mut prev = 0usize;
        for e in edges {
            let at = values.partition_point(|v| v <= e);
            counts.push((at - prev) as f64);
            prev = at;
        }
        counts.push((values.len() - prev) as f64);
        return counts;
    }
    let mut counts = vec![0.0; edges.len() + 1];
    let mut b = 0;
    for (i, &v) in values.iter().enumerate() {
        while b < edges.len() && v > edges[b] {
            b += 1;
        }
        counts[b] += weights.map(|w| w[i]).unwrap_or(1.0);
    }
    counts
}

/// The population stability index of `current` against `reference` over `bins` reference-quantile
/// bins plus overflow bins; empty bins count as share `epsilon`.
pub fn psi(reference: &[f64], current: &[f64], bins: usize, epsilon: f64) -> Result<f64> {
    if bins < 2 {
        return Err(Error::param(format!("bins must be at least 2, got {bins}")));
    }
    if !(epsilon > 0.0 && epsilon < 1.0) {
        return Err(Error::param(format!("epsilon must be in (0, 1), got {epsilon}")));
    }
    let r = super::twosample::sorted_sample("reference", reference)?;
    let c = super::twosample::sorted_sample("current", current)?;
    let edges = quantile_edges(&r, bins);
    Ok(psi_from_counts(&bin_counts_sorted(&r, None, &edges), &bin_counts_sorted(&c, None, &edges), epsilon))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scipy_doc_values() {
        assert!((wasserstein_distance(&[0., 1., 3.], &[5., 6., 8.], None, None).unwrap() - 5.0).abs() < 1e-12);
        let w = wasserstein_distance(&[0., 1.], &[0., 1.], Some(&[3., 1.]), Some(&[2., 2.])).unwrap();
        assert!((w - 0.25).abs() < 1e-12);
        let w = wasserstein_distance(&[3.4, 3.9, 7.5, 7.8], &[4.5, 1.4], Some(&[1.4, 0.9, 3.1, 7.2]), Some(&[3.2, 3.5]))
            .unwrap();
        assert!((w - 4.0781331438047861).abs() < 1e-12);
        let e = energy_distance(&[0.], &[2.], None, None).unwrap();
        assert!((e - 2.0).abs() < 1e-12);
    }

    #[test]
    fn js_and_hellinger_bounds() {
        assert!((jensenshannon(&[1., 0.], &[0., 1.], Some(2.0)).unwrap() - 1.0).abs() < 1e-12);
        assert!((hellinger(&[1., 0.], &[0., 1.]).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(hellinger(&[1., 2.], &[2., 4.]).unwrap(), 0.0);
    }

    #[test]
    fn psi_is_zero_on_same_data_and_grows_with_shift() {
        let r: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        assert!(psi(&r, &r, 10, 1e-4).unwrap().abs() < 1e-12);
        let c: Vec<f64> = r.iter().map(|v| v + 300.0).collect();
        assert!(psi(&r, &c, 10, 1e-4).unwrap() > 0.5);
    }
}
