//! Plain stochastic gradient descent for linear models, scikit-learn's algorithm: per-sample updates
//! with a scaled weight vector, L2 shrinkage, cumulative L1 clipping (Tsuruoka et al.), learning-rate
//! schedules "optimal", "invscaling", "constant" and "adaptive", and the epoch-level stopping rule on
//! the average objective. Several binary or regression problems (one-vs-all) run in parallel.
//!
//! Sample weights. Without shuffling, rows are visited in storage order, once per epoch, each update
//! scaled by the row's weight: scikit-learn's rule, with its numbers. With shuffling, a weight counts
//! as a number of visits: a row of weight `w > 0` is visited `ceil(w)` times per epoch with its update
//! scaled by `w / ceil(w)` (weight 0 removes the row), and the epoch order is a seeded permutation of
//! the visits taken in a canonical order of their contents (row values, targets, scale), not of their
//! storage positions. Integer weights are then exactly equivalent to repeating rows, and a shuffled
//! fit does not depend on the order in which the rows were stored.

use rayon::prelude::*;

use crate::data::frame::DenseMatrix;
use crate::error::{Error, Result};

/// Per-sample loss on the raw prediction `p` for target `y`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// max(0, threshold - p y), y in {-1, +1} (threshold 1: SVM hinge; 0: perceptron).
    Hinge(f64),
    /// max(0, 1 - p y)^2.
    SquaredHinge,
    /// Smoothed hinge.
    ModifiedHuber,
    /// log(1 + exp(p)) - y p with y in {0, 1}.
    Log,
    /// (p - y)^2 / 2.
    Squared,
    /// Huber with threshold epsilon.
    Huber(f64),
    /// max(0, |y - p| - epsilon).
    EpsilonInsensitive(f64),
    /// max(0, |y - p| - epsilon)^2.
    SquaredEpsilonInsensitive(f64),
}

impl Loss {
    fn loss(self, y: f64, p: f64) -> f64 {
        match self {
            Loss::Hinge(t) => {
                let z = p * y;
                if z <= t {
                    t - z
                } else {
                    0.0
                }
            }
            Loss::SquaredHinge => {
                let z = 1.0 - p * y;
                if z > 0.0 {
                    z * z
                } else {
                    0.0
                }
            }
            Loss::ModifiedHuber => {
                let z = p * y;
                if z >= 1.0 {
                    0.0
                } else if z >= -1.0 {
                    (1.0 - z) * (1.0 - z)
                } else {
                    -4.0 * z
                }
            }
            Loss::Log => {
                // The piecewise log(1 + e^p) of scikit-learn's loss module, for equal numbers.
                let lp = if p <= -37.0 {
                    p.exp()
                } else if p <= -2.0 {
                    p.exp().ln_1p()
                } else if p <= 18.0 {
                    (1.0 + p.exp()).ln()
                } else if p <= 33.3 {
                    p + (-p).exp()
                } else {
                    p
                };
                lp - y * p
            }
            Loss::Squared => 0.5 * (p - y) * (p - y),
            Loss::Huber(d) => {
                let r = (p - y).abs();
                if r <= d {
                    0.5 * r * r
                } else {
                    d * (r - 0.5 * d)
                }
            }
            Loss::EpsilonInsensitive(e) => ((y - p).abs() - e).max(0.0),
            Loss::SquaredEpsilonInsensitive(e) => {
                let r = ((y - p).abs() - e).max(0.0);
                r * r
            }
        }
    }

    fn gradient(self, y: f64, p: f64) -> f64 {
        match self {
            Loss::Hinge(t) => {
                if p * y <= t {
                    -y
                } else {
                    0.0
                }
            }
            Loss::SquaredHinge => {
                let z = 1.0 - p * y;
                if z > 0.0 {
                    -2.0 * y * z
                } else {
                    0.0
                }
            }
            Loss::ModifiedHuber => {
                let z = p * y;
                if z >= 1.0 {
                    0.0
                } else if z >= -1.0 {
                    2.0 * (1.0 - z) * -y
                } else {
                    -4.0 * y
                }
            }
            Loss::Log => {
                if p > -37.0 {
                    let e = (-p).exp();
                    ((1.0 - y) - y * e) / (1.0 + e)
                } else {
                    p.exp() - y
                }
            }
            Loss::Squared => p - y,
            Loss::Huber(d) => {
                let r = p - y;
                if r.abs() <= d {
                    r
                } else {
                    d * r.signum()
                }
            }
            Loss::EpsilonInsensitive(e) => {
                if y - p > e {
                    -1.0
                } else if p - y > e {
                    1.0
                } else {
                    0.0
                }
            }
            Loss::SquaredEpsilonInsensitive(e) => {
                let z = y - p;
                if z > e {
                    -2.0 * (z - e)
                } else if z < -e {
                    2.0 * (-z - e)
                } else {
                    0.0
                }
            }
        }
    }
}

/// Learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// eta0.
    Constant,
    /// 1 / (alpha (t0 + t - 1)), Bottou's heuristic for t0.
    Optimal,
    /// eta0 / t^power_t.
    InvScaling,
    /// eta0, divided by 5 whenever the objective stalls.
    Adaptive,
}

/// SGD options, scikit-learn's names.
#[derive(Clone, Debug)]
pub struct Options {
    /// Loss.
    pub loss: Loss,
    /// Penalty strength.
    pub alpha: f64,
    /// L1 share of the penalty (0 = L2, 1 = L1); `penalty` None = no penalty.
    pub l1_ratio: f64,
    /// Whether any penalty applies.
    pub penalized: bool,
    /// Fit an intercept.
    pub fit_intercept: bool,
    /// Epochs at most.
    pub max_iter: usize,
    /// Stop when the average objective did not improve by tol for n_iter_no_change epochs; None = never.
    pub tol: Option<f64>,
    /// Epochs without improvement before stopping.
    pub n_iter_no_change: usize,
    /// Schedule.
    pub schedule: Schedule,
    /// Initial rate (constant, invscaling, adaptive).
    pub eta0: f64,
    /// Exponent of invscaling.
    pub power_t: f64,
    /// Shuffle the visits each epoch with this seed (None = rows in storage order); see the module notes
    /// for what a sample weight means in each case.
    pub shuffle_seed: Option<u64>,
}

/// One problem: targets, per-class weights for y > 0 and y <= 0, and the starting point.
#[derive(Clone, Debug)]
pub struct Problem {
    /// One target per row.
    pub y: Vec<f64>,
    /// Weight for rows with y > 0.
    pub weight_pos: f64,
    /// Weight for rows with y <= 0.
    pub weight_neg: f64,
    /// Starting coefficients (features).
    pub coef: Vec<f64>,
    /// Starting intercept.
    pub intercept: f64,
}

/// The result of one problem: coefficients, intercept, epochs run.
pub type Solved = (Vec<f64>, f64, usize);

/// The weights as scikit-learn's WeightVector keeps them: `w * wscale`, with the squared L2 norm and
/// the L1 norm stored, recomputed over the whole vector when a sample is added, scaled along with
/// `wscale`, and left as they are by the L1 truncation (the objective that decides when to stop reads
/// these stored values, so they follow scikit-learn's updates exactly).
struct Weights {
    w: Vec<f64>,
    wscale: f64,
    sq_norm: f64,
    l1_norm: f64,
}

impl Weights {
    fn new(w: Vec<f64>) -> Self {
        let sq_norm = w.iter().map(|v| v * v).sum();
        let l1_norm = w.iter().map(|v| v.abs()).sum();
        Weights { w, wscale: 1.0, sq_norm, l1_norm }
    }
    fn dot(&self, x: &[f64]) -> f64 {
        self.w.iter().zip(x).map(|(a, b)| a * b).sum::<f64>() * self.wscale
    }
    fn add(&mut self, x: &[f64], c: f64) {
        let ws = self.wscale;
        let f = c / ws;
        let (mut l2, mut l1) = (0.0, 0.0);
        for (wj, &xj) in self.w.iter_mut().zip(x) {
            *wj += xj * f;
            l2 += *wj * *wj;
            l1 += wj.abs();
        }
        self.sq_norm = l2 * (ws * ws);
        self.l1_norm = l1 * ws;
    }
    fn scale(&mut self, c: f64) {
        self.wscale *= c;
        self.sq_norm *= c * c;
        self.l1_norm *= c.abs();
        if self.wscale < 1e-9 {
            self.reset();
        }
    }
    fn reset(&mut self) {
        let s = self.wscale;
        self.w.iter_mut().for_each(|v| *v *= s);
        self.wscale = 1.0;
    }
    fn l1norm(&self) -> f64 {
        self.l1_norm
    }
}

fn permutation(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut s = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
    idx
}

/// One visit of an epoch: a row and the factor its update is scaled by.
type Visit = (usize, f64);

/// The visits of one epoch before shuffling (see the module notes on weights).
fn visits(rows: &[Vec<f64>], sw: Option<&[f64]>, problems: &[Problem], shuffle: bool) -> Result<Vec<Visit>> {
    let n = rows.len();
    if !shuffle {
        return Ok((0..n).map(|i| (i, sw.map_or(1.0, |w| w[i]))).collect());
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| sw.map_or(true, |w| w[i] > 0.0)).collect();
    let scale = |i: usize| sw.map_or(1.0, |w| w[i] / w[i].ceil());
    order.sort_by(|&a, &b| {
        let by_row = rows[a].iter().zip(&rows[b]).map(|(u, v)| u.total_cmp(v)).find(|o| o.is_ne());
        by_row
            .or_else(|| problems.iter().map(|p| p.y[a].total_cmp(&p.y[b])).find(|o| o.is_ne()))
            .unwrap_or_else(|| scale(a).total_cmp(&scale(b)))
    });
    let total: f64 = order.iter().map(|&i| sw.map_or(1.0, |w| w[i].ceil())).sum();
    if total > u32::MAX as f64 {
        return Err(Error::data(format!(
            "sample weights ask for {total} row visits per epoch (a weight counts as that many visits when \
             shuffling); rescale the weights"
        )));
    }
    let mut out = Vec::with_capacity(total as usize);
    for i in order {
        let k = sw.map_or(1.0, |w| w[i].ceil()) as usize;
        out.extend(std::iter::repeat_n((i, scale(i)), k));
    }
    Ok(out)
}

fn solve(rows: &[Vec<f64>], visits: &[Visit], prob: &Problem, opt: &Options, t0: f64) -> Result<Solved> {
    let n = visits.len();
    let m = prob.coef.len();
    let mut w = Weights::new(prob.coef.clone());
    let mut intercept = prob.intercept;
    let mut q = vec![0.0; m];
    let mut u = 0.0;
    let alpha = opt.alpha;
    let l1 = if opt.penalized { opt.l1_ratio } else { 0.0 };
    let use_l2 = opt.penalized && opt.l1_ratio < 1.0;
    let use_l1 = opt.penalized && opt.l1_ratio > 0.0;
    let mut eta = opt.eta0;
    let mut optimal_init = 0.0;
    if opt.schedule == Schedule::Optimal {
        let typw = (1.0 / alpha.sqrt()).sqrt();
        let initial_eta0 = typw / opt.loss.gradient(1.0, -typw).max(1.0);
        optimal_init = 1.0 / (initial_eta0 * alpha);
    }
    let mut t = t0;
    let mut best = f64::INFINITY;
    let mut no_improve = 0;
    let mut epochs = 0;
    for epoch in 0..opt.max_iter {
        epochs = epoch + 1;
        let mut objective = 0.0;
        let order: Vec<usize> = match opt.shuffle_seed {
            Some(seed) => permutation(n, seed, epoch),
            None => (0..n).collect(),
        };
        for &v in &order {
            let (i, sw_i) = visits[v];
            let x = &rows[i];
            let y = prob.y[i];
            let p = w.dot(x) + intercept;
            match opt.schedule {
                Schedule::Optimal => eta = 1.0 / (alpha * (optimal_init + t - 1.0)),
                Schedule::InvScaling => eta = opt.eta0 / t.powf(opt.power_t),
                _ => {}
            }
            objective += opt.loss.loss(y, p);
            if opt.penalized {
                // scikit-learn squares the norm (sqrt of the squared norm), which can differ from the
                // squared norm in the last bit, and the stopping test compares these sums.
                let norm = w.sq_norm.sqrt();
                objective += alpha * ((1.0 - l1) * 0.5 * (norm * norm) + l1 * w.l1norm());
            }
            let cw = if y > 0.0 { prob.weight_pos } else { prob.weight_neg };
            let dloss = opt.loss.gradient(y, p).clamp(-1e12, 1e12);
            let update = -eta * dloss * (cw * sw_i);
            if use_l2 {
                w.scale((1.0 - (1.0 - l1) * eta * alpha).max(0.0));
            }
            if update != 0.0 {
                w.add(x, update);
            }
            if opt.fit_intercept && update != 0.0 {
                intercept += update;
            }
            if use_l1 {
                u += l1 * eta * alpha;
                let ws = w.wscale;
                for j in 0..m {
                    let z = w.w[j];
                    if ws * z > 0.0 {
                        w.w[j] = (w.w[j] - (u + q[j]) / ws).max(0.0);
                    } else if ws * z < 0.0 {
                        w.w[j] = (w.w[j] + (u - q[j]) / ws).min(0.0);
                    }
                    q[j] += ws * (w.w[j] - z);
                }
            }
            t += 1.0;
        }
        if !intercept.is_finite() || w.w.iter().any(|v| !v.is_finite()) {
            return Err(Error::data(format!(
                "Floating-point under-/overflow occurred at epoch #{epochs}. Scaling input data with StandardScaler \
                 or MinMaxScaler might help."
            )));
        }
        let avg = objective / n as f64;
        if let Some(tol) = opt.tol {
            if avg > best - tol {
                no_improve += 1;
            } else {
                no_improve = 0;
            }
        }
        if avg < best {
            best = avg;
        }
        if no_improve >= opt.n_iter_no_change {
            if opt.schedule == Schedule::Adaptive && eta > 1e-6 {
                eta /= 5.0;
                no_improve = 0;
            } else {
                break;
            }
        }
    }
    w.reset();
    Ok((w.w, intercept, epochs))
}

/// Runs SGD on each problem (in parallel), starting at learning-rate step `t0`.
pub fn fit(
    x: &DenseMatrix<'_>,
    problems: &[Problem],
    sample_weight: Option<&[f64]>,
    opt: &Options,
    t0: f64,
    n_threads: i64,
) -> Result<Vec<Solved>> {
    let (n, m) = x.dim();
    if n == 0 {
        return Err(Error::data("SGD needs at least one row"));
    }
    if !(opt.alpha >= 0.0) || (opt.schedule == Schedule::Optimal && opt.alpha == 0.0) {
        return Err(Error::param(format!(
            "alpha must be >= 0 (and > 0 with learning_rate='optimal'), got {}",
            opt.alpha
        )));
    }
    if opt.schedule != Schedule::Optimal && !(opt.eta0 > 0.0) {
        return Err(Error::param(format!("eta0 must be > 0 with this learning_rate, got {}", opt.eta0)));
    }
    super::check_weights(sample_weight, n)?;
    for p in problems {
        if p.y.len() != n || p.coef.len() != m {
            return Err(Error::Internal("SGD problem shapes disagree with X".into()));
        }
        super::check_target(&p.y, "y")?;
    }
    // Rows as contiguous f64 (the updates touch every row once per epoch).
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let r: Vec<f64> = match x {
            DenseMatrix::F32(a) => a.row(i).iter().map(|&v| v as f64).collect(),
            DenseMatrix::F64(a) => a.row(i).to_vec(),
        };
        if let Some(j) = r.iter().position(|v| !v.is_finite()) {
            return Err(Error::data(format!("Input X contains {} at row {i}, column {j}", r[j])));
        }
        rows.push(r);
    }
    let visits = visits(&rows, sample_weight, problems, opt.shuffle_seed.is_some())?;
    if visits.is_empty() {
        return Err(Error::data("SGD needs at least one row with a non-zero sample weight"));
    }
    crate::parallel::run_in_pool(n_threads, || {
        problems.par_iter().map(|p| solve(&rows, &visits, p, opt, t0)).collect::<Result<Vec<_>>>()
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn squared_loss_learns_a_line() {
        let n = 2000;
        let x = Array2::from_shape_fn((n, 1), |(i, _)| (i % 50) as f64 / 25.0 - 1.0);
        let y: Vec<f64> = (0..n).map(|i| 3.0 * x[[i, 0]] + 1.0).collect();
        let opt = Options {
            loss: Loss::Squared,
            alpha: 1e-6,
            l1_ratio: 0.0,
            penalized: true,
            fit_intercept: true,
            max_iter: 50,
            tol: Some(1e-6),
            n_iter_no_change: 5,
            schedule: Schedule::InvScaling,
            eta0: 0.05,
            power_t: 0.25,
            shuffle_seed: Some(3),
        };
        let p = Problem { y, weight_pos: 1.0, weight_neg: 1.0, coef: vec![0.0], intercept: 0.0 };
        let r = fit(&DenseMatrix::F64(x.view()), &[p], None, &opt, 1.0, 2).unwrap();
        assert!((r[0].0[0] - 3.0).abs() < 1e-2 && (r[0].1 - 1.0).abs() < 1e-2, "{:?}", r[0]);
    }

    #[test]
    fn shuffled_integer_weights_equal_repeated_rows_in_any_storage_order() {
        let n = 40;
        let x = Array2::from_shape_fn((n, 3), |(i, j)| (((i * 7 + j * 13) % 17) as f64) / 8.0 - 1.0);
        let y: Vec<f64> = (0..n).map(|i| if (i * 5) % 3 == 0 { 1.0 } else { -1.0 }).collect();
        let w: Vec<f64> = (0..n).map(|i| ((i * 11) % 4) as f64).collect();
        let opt = Options {
            loss: Loss::Hinge(1.0),
            alpha: 1e-3,
            l1_ratio: 0.15,
            penalized: true,
            fit_intercept: true,
            max_iter: 30,
            tol: Some(1e-3),
            n_iter_no_change: 5,
            schedule: Schedule::Optimal,
            eta0: 0.0,
            power_t: 0.5,
            shuffle_seed: Some(42),
        };
        let problem = |y: Vec<f64>| Problem { y, weight_pos: 1.0, weight_neg: 1.0, coef: vec![0.0; 3], intercept: 0.0 };
        let weighted = fit(&DenseMatrix::F64(x.view()), &[problem(y.clone())], Some(&w), &opt, 1.0, 1).unwrap();
        // The same rows repeated by their weights, stored in reverse order.
        let rep: Vec<usize> = (0..n).rev().flat_map(|i| std::iter::repeat_n(i, w[i] as usize)).collect();
        let xr = Array2::from_shape_fn((rep.len(), 3), |(r, j)| x[[rep[r], j]]);
        let yr: Vec<f64> = rep.iter().map(|&i| y[i]).collect();
        let repeated = fit(&DenseMatrix::F64(xr.view()), &[problem(yr)], None, &opt, 1.0, 2).unwrap();
        assert_eq!(weighted, repeated);
        assert!(weighted[0].0.iter().any(|&c| c != 0.0));
    }
}
