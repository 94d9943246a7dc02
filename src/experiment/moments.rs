//! Per-arm sufficient statistics as centred moments (count, means, sums of squared deviations and the
//! cross-product), built in two passes from per-unit values, from raw sums, or merged across chunks
//! (Chan et al.), so variances keep full precision even when the means are large.

use crate::error::{Error, Result};

/// The sufficient statistics of one arm: `y` is the metric (the numerator of a ratio metric), `x` the
/// denominator of a ratio metric or the pre-period covariate of CUPED (all zero when unused).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Moments {
    pub n: f64,
    pub mean_y: f64,
    /// Σ (y − ȳ)²
    pub m2_y: f64,
    pub mean_x: f64,
    /// Σ (x − x̄)²
    pub m2_x: f64,
    /// Σ (y − ȳ)(x − x̄)
    pub c_xy: f64,
}

fn check_finite(name: &str, v: &[f64]) -> Result<()> {
    if let Some(i) = v.iter().position(|a| !a.is_finite()) {
        return Err(Error::data(format!("{name} holds a non-finite value ({}) at index {i}", v[i])));
    }
    Ok(())
}

impl Moments {
    /// Two-pass moments of per-unit values `y` (and `x`, same length, when given).
    pub fn from_values(name: &str, y: &[f64], x: Option<(&str, &[f64])>) -> Result<Self> {
        if y.is_empty() {
            return Err(Error::data(format!("{name} is empty: each arm needs at least 2 units")));
        }
        check_finite(name, y)?;
        let n = y.len() as f64;
        let mean_y = y.iter().sum::<f64>() / n;
        let m2_y = y.iter().map(|v| (v - mean_y) * (v - mean_y)).sum::<f64>();
        let mut m = Moments { n, mean_y, m2_y, ..Default::default() };
        if let Some((xname, x)) = x {
            if x.len() != y.len() {
                return Err(Error::data(format!(
                    "{xname} has {} values but {name} has {}: one per unit",
                    x.len(),
                    y.len()
                )));
            }
            check_finite(xname, x)?;
            let mean_x = x.iter().sum::<f64>() / n;
            let (mut m2_x, mut c_xy) = (0.0, 0.0);
            for (a, b) in y.iter().zip(x) {
                let dx = b - mean_x;
                m2_x += dx * dx;
                c_xy += (a - mean_y) * dx;
            }
            m.mean_x = mean_x;
            m.m2_x = m2_x;
            m.c_xy = c_xy;
        }
        Ok(m)
    }

    /// Moments from raw sums: n, Σy, Σy², Σx, Σx², Σxy.
    pub fn from_sums(name: &str, n: f64, sy: f64, syy: f64, sx: f64, sxx: f64, sxy: f64) -> Result<Self> {
        for (what, v) in [("n", n), ("sum", sy), ("sum_sq", syy), ("sum_x", sx), ("sum_x_sq", sxx), ("sum_xy", sxy)] {
            if !v.is_finite() {
                return Err(Error::data(format!("{name}.{what} must be finite, got {v}")));
            }
        }
        if n < 1.0 {
            return Err(Error::data(format!("{name}.n must be at least 1, got {n}")));
        }
        let (mean_y, mean_x) = (sy / n, sx / n);
        Ok(Moments {
            n,
            mean_y,
            m2_y: (syy - sy * mean_y).max(0.0),
            mean_x,
            m2_x: (sxx - sx * mean_x).max(0.0),
            c_xy: sxy - sy * mean_x,
        })
    }

    /// The moments of the union of two samples (Chan, Golub and LeVeque's update).
    pub fn merge(&self, o: &Moments) -> Moments {
        if self.n == 0.0 {
            return *o;
        }
        if o.n == 0.0 {
            return *self;
        }
        let n = self.n + o.n;
        let dy = o.mean_y - self.mean_y;
        let dx = o.mean_x - self.mean_x;
        let f = self.n * o.n / n;
        Moments {
            n,
            mean_y: self.mean_y + dy * o.n / n,
            m2_y: self.m2_y + o.m2_y + dy * dy * f,
            mean_x: self.mean_x + dx * o.n / n,
            m2_x: self.m2_x + o.m2_x + dx * dx * f,
            c_xy: self.c_xy + o.c_xy + dy * dx * f,
        }
    }

    /// Sample variance of y (ddof = 1).
    pub fn var_y(&self) -> f64 {
        self.m2_y / (self.n - 1.0)
    }
    /// Sample variance of x (ddof = 1).
    pub fn var_x(&self) -> f64 {
        self.m2_x / (self.n - 1.0)
    }
    /// Sample covariance of y and x (ddof = 1).
    pub fn cov_xy(&self) -> f64 {
        self.c_xy / (self.n - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_pass_sums_and_merge_agree() {
        let y: Vec<f64> = (0..101).map(|i| 1e6 + (i as f64 * 0.37).sin()).collect();
        let x: Vec<f64> = (0..101).map(|i| (i as f64 * 0.11).cos()).collect();
        let a = Moments::from_values("y", &y, Some(("x", &x))).unwrap();
        let (l, r) = (Moments::from_values("y", &y[..40], Some(("x", &x[..40]))).unwrap(), Moments::from_values("y", &y[40..], Some(("x", &x[40..]))).unwrap());
        let m = l.merge(&r);
        assert!((a.m2_y - m.m2_y).abs() <= 1e-9 * a.m2_y);
        assert!((a.c_xy - m.c_xy).abs() <= 1e-9 * a.c_xy.abs());
        assert!(Moments::from_values("control", &[], None).unwrap_err().to_string().contains("control"));
        assert!(Moments::from_values("control", &[1.0, f64::NAN], None).unwrap_err().to_string().contains("index 1"));
    }
}
