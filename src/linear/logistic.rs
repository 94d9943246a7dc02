//! Logistic regression, binary (one coefficient vector) and multinomial (softmax over all classes),
//! L2-penalised or not, minimising scikit-learn's objective
//! `(1/S) sum_i s_i loss_i + 1/(2 C S) ||w||^2` (S = sum of sample weights, intercept unpenalised)
//! with L-BFGS or Newton steps solved by Cholesky. Both stop when max |gradient| <= tol, as
//! scikit-learn's solvers do.
//!
//! Every evaluation reads X once: per row block, the scores, the loss, the residuals and the
//! gradient (and, for Newton, the Hessian) are computed while the block is in cache. A C-ordered f64
//! X is read where it lies; other layouts are copied once into blocks.
//!
//! On many rows (binary problems), L-BFGS starts from the solution of the same objective on a fixed,
//! evenly strided subsample of rows (solved by Newton steps, cheap at that size) and uses that
//! subsample's Hessian as its initial inverse-Hessian approximation (in place of a scaled identity).
//! The quasi-Newton steps on the full data are then close to Newton steps from the first one, so far
//! fewer passes over X are needed; the stopping rule and the objective are unchanged.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};

use super::{block_t, check_weights, over_blocks, solve_spd, LinearModel};
use crate::data::frame::DenseMatrix;
use crate::error::{Error, Result};

/// The optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Solver {
    /// Limited-memory BFGS (history 10) with a backtracking Armijo line search.
    Lbfgs,
    /// Newton steps with the full Hessian (Cholesky), backtracking line search.
    NewtonCholesky,
}

/// Options, scikit-learn's names.
#[derive(Clone, Debug)]
pub struct Options {
    /// Inverse regularisation strength; infinity = no penalty.
    pub c: f64,
    /// Fit an (unpenalised) intercept.
    pub fit_intercept: bool,
    /// Stop when max |gradient| <= tol.
    pub tol: f64,
    /// Most iterations.
    pub max_iter: usize,
    /// Optimiser.
    pub solver: Solver,
}

/// Result of a fit.
#[derive(Clone, Debug)]
pub struct LogisticFit {
    /// The model: one output for two classes, else one per class.
    pub model: LinearModel,
    /// Iterations run.
    pub n_iter: usize,
    /// Whether the tolerance was reached.
    pub converged: bool,
    /// The final objective value (scikit-learn's scaling).
    pub objective: f64,
}

/// The rows of X as (rows, features) blocks of [`BLOCK`](super::BLOCK) rows.
enum Data<'a> {
    /// A C-ordered f64 matrix, read in place.
    Borrowed { flat: &'a [f64], m: usize },
    /// Any other layout, copied once: block b is (features, rows) and is used transposed.
    Copied(Vec<Mat<f64>>),
}

impl<'a> Data<'a> {
    /// Views a C-ordered f64 X in place (after checking that every value is finite), else copies it.
    fn new(x: &DenseMatrix<'a>) -> Result<Self> {
        let (n, m) = x.dim();
        if let DenseMatrix::F64(a) = x {
            if let Some(flat) = a.to_slice() {
                over_blocks(n, |_, rows| {
                    let part = &flat[rows.start * m..rows.end * m];
                    match part.iter().position(|v| !v.is_finite()) {
                        Some(at) => Err(super::non_finite_error(part[at], rows.start + at / m, at % m)),
                        None => Ok(()),
                    }
                })?;
                return Ok(Data::Borrowed { flat, m });
            }
        }
        Ok(Data::Copied(over_blocks(n, |_, rows| block_t(x, rows, None, None, false))?))
    }

    /// Block `b` (rows `rows`) as a (rows, features) matrix.
    fn block(&self, b: usize, rows: &std::ops::Range<usize>) -> MatRef<'_, f64> {
        match self {
            Data::Borrowed { flat, m } => {
                MatRef::from_row_major_slice(&flat[rows.start * m..rows.end * m], rows.len(), *m)
            }
            Data::Copied(blocks) => blocks[b].as_ref().transpose(),
        }
    }
}

struct Problem<'a> {
    data: Data<'a>,
    y: &'a [u32],
    sw: Option<&'a [f64]>,
    /// outputs (1 for binary)
    k: usize,
    /// parameters per output (features [+ intercept])
    p: usize,
    m: usize,
    fit_intercept: bool,
    s_total: f64,
    lambda: f64,
}

#[inline]
fn log1pexp(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

#[inline]
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl Problem<'_> {
    /// Objective, gradient (p*k, output-major) and optionally the Hessian ((p*k)^2).
    fn eval(&self, theta: &[f64], hess: bool) -> Result<(f64, Vec<f64>, Option<Mat<f64>>)> {
        let (p, k, m) = (self.p, self.k, self.m);
        let fi = self.fit_intercept;
        let n = self.y.len();
        let mut th = Mat::<f64>::zeros(m, k);
        let mut icpt = vec![0.0; k];
        for c in 0..k {
            for j in 0..m {
                th[(j, c)] = theta[c * p + j];
            }
            if fi {
                icpt[c] = theta[c * p + m];
            }
        }
        let parts = over_blocks(n, |b, rows| {
            let xb = self.data.block(b, &rows);
            let r = rows.len();
            let mut z = Mat::<f64>::zeros(r, k);
            matmul(z.as_mut(), Accum::Replace, xb, th.as_ref(), 1.0, Par::Seq);
            let mut loss = 0.0;
            let mut res = Mat::<f64>::zeros(r, k);
            // Hessian weights: binary d_i; multinomial probabilities kept for the blocks.
            let mut prob = Mat::<f64>::zeros(r, k);
            for (i, row) in rows.clone().enumerate() {
                let w = self.sw.map_or(1.0, |s| s[row]);
                let yi = self.y[row] as usize;
                if k == 1 {
                    let zi = z[(i, 0)] + icpt[0];
                    let yv = yi as f64;
                    loss += w * (log1pexp(zi) - yv * zi);
                    let s = sigmoid(zi);
                    res[(i, 0)] = w * (s - yv);
                    prob[(i, 0)] = w * s * (1.0 - s);
                } else {
                    let mut mx = f64::NEG_INFINITY;
                    for c in 0..k {
                        z[(i, c)] += icpt[c];
                        mx = mx.max(z[(i, c)]);
                    }
                    let mut se = 0.0;
                    for c in 0..k {
                        se += (z[(i, c)] - mx).exp();
                    }
                    let lse = mx + se.ln();
                    loss += w * (lse - z[(i, yi)]);
                    for c in 0..k {
                        let pc = (z[(i, c)] - lse).exp();
                        prob[(i, c)] = pc;
                        res[(i, c)] = w * (pc - if c == yi { 1.0 } else { 0.0 });
                    }
                }
            }
            let mut g = vec![0.0; p * k];
            let mut gw = Mat::<f64>::zeros(m, k);
            matmul(gw.as_mut(), Accum::Replace, xb.transpose(), res.as_ref(), 1.0, Par::Seq);
            for c in 0..k {
                for j in 0..m {
                    g[c * p + j] = gw[(j, c)];
                }
                if fi {
                    g[c * p + m] = (0..r).map(|i| res[(i, c)]).sum();
                }
            }
            let h = if hess && k == 1 {
                // Binary: the Hessian X~'DX~ (X~ = X with a column of ones when fitting the intercept)
                // is the Gram matrix of the rows sqrt(d_i) x~_i, d_i >= 0.
                let mut st = Mat::<f64>::zeros(p, r);
                for i in 0..r {
                    let sd = prob[(i, 0)].sqrt();
                    let col = &mut st.col_as_slice_mut(i)[..p];
                    match xb.row(i).try_as_row_major() {
                        Some(x) => col[..m].iter_mut().zip(x.as_slice()).for_each(|(o, &v)| *o = v * sd),
                        None => (0..m).for_each(|j| col[j] = xb[(i, j)] * sd),
                    }
                    if fi {
                        col[m] = sd;
                    }
                }
                let mut h = super::lower_gram(st.as_ref());
                super::centre_and_mirror(&mut h, 0.0, None);
                Some(h)
            } else if hess {
                let mut h = Mat::<f64>::zeros(p * k, p * k);
                let mut scaled = Mat::<f64>::zeros(r, m);
                let mut dv = vec![0.0; r];
                for c in 0..k {
                    for d in c..k {
                        for (i, row) in rows.clone().enumerate() {
                            let w = self.sw.map_or(1.0, |s| s[row]);
                            dv[i] = if k == 1 {
                                prob[(i, 0)]
                            } else {
                                let pc = prob[(i, c)];
                                w * pc * (if c == d { 1.0 } else { 0.0 } - prob[(i, d)])
                            };
                        }
                        for j in 0..m {
                            for i in 0..r {
                                scaled[(i, j)] = xb[(i, j)] * dv[i];
                            }
                        }
                        // Blocks of the Hessian: X'DX, X'd (intercept column) and sum(d).
                        let mut blk = Mat::<f64>::zeros(p, p);
                        matmul(blk.as_mut().submatrix_mut(0, 0, m, m), Accum::Replace, xb.transpose(), scaled.as_ref(), 1.0, Par::Seq);
                        if fi {
                            for j in 0..m {
                                let v: f64 = (0..r).map(|i| scaled[(i, j)]).sum();
                                blk[(j, m)] = v;
                                blk[(m, j)] = v;
                            }
                            blk[(m, m)] = dv.iter().sum();
                        }
                        for a in 0..p {
                            for b in 0..p {
                                h[(c * p + a, d * p + b)] = blk[(a, b)];
                                if c != d {
                                    h[(d * p + b, c * p + a)] = blk[(a, b)];
                                }
                            }
                        }
                    }
                }
                Some(h)
            } else {
                None
            };
            Ok((loss, g, h))
        })?;
        let mut f = 0.0;
        let mut g = vec![0.0; p * k];
        let mut h = if hess { Some(Mat::<f64>::zeros(p * k, p * k)) } else { None };
        for (l, gp, hp) in parts {
            f += l;
            for (a, b) in g.iter_mut().zip(&gp) {
                *a += b;
            }
            if let (Some(h), Some(hp)) = (h.as_mut(), hp) {
                *h += hp;
            }
        }
        let s = self.s_total;
        f /= s;
        g.iter_mut().for_each(|v| *v /= s);
        if let Some(h) = h.as_mut() {
            *h = &*h * (1.0 / s);
        }
        for c in 0..k {
            for j in 0..m {
                let t = theta[c * p + j];
                f += 0.5 * self.lambda * t * t;
                g[c * p + j] += self.lambda * t;
                if let Some(h) = h.as_mut() {
                    h[(c * p + j, c * p + j)] += self.lambda;
                }
            }
        }
        Ok((f, g, h))
    }

    /// Removes the class-common part of a multinomial parameter set (the objective does not change).
    fn center(&self, theta: &mut [f64]) {
        if self.k < 2 {
            return;
        }
        for j in 0..self.p {
            let mean: f64 = (0..self.k).map(|c| theta[c * self.p + j]).sum::<f64>() / self.k as f64;
            for c in 0..self.k {
                theta[c * self.p + j] -= mean;
            }
        }
    }
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |a, &b| a.max(b.abs()))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Fits a logistic regression. `y` holds class indices 0..n_classes; `init` warm-starts (p*k values).
#[allow(clippy::too_many_arguments)]
pub fn fit(
    x: &DenseMatrix<'_>,
    y: &[u32],
    n_classes: usize,
    sample_weight: Option<&[f64]>,
    opt: &Options,
    init: Option<&[f64]>,
    n_threads: i64,
) -> Result<LogisticFit> {
    let (n, m) = x.dim();
    if n_classes < 2 {
        return Err(Error::data(format!(
            "This solver needs samples of at least 2 classes in the data, but the data contains only one class: {n_classes} class(es)"
        )));
    }
    if y.len() != n {
        return Err(Error::data(format!("y has {} labels but X has {n} rows", y.len())));
    }
    if !(opt.c > 0.0) {
        return Err(Error::param(format!("C must be > 0 (inf for no penalty), got {}", opt.c)));
    }
    if !(opt.tol >= 0.0) {
        return Err(Error::param(format!("tol must be >= 0, got {}", opt.tol)));
    }
    check_weights(sample_weight, n)?;
    let k = if n_classes == 2 { 1 } else { n_classes };
    let p = m + opt.fit_intercept as usize;
    let s_total = sample_weight.map_or(n as f64, |w| w.iter().sum());
    let lambda = if opt.c.is_infinite() { 0.0 } else { 1.0 / (opt.c * s_total) };
    let mut theta = match init {
        Some(t) if t.len() == p * k => t.to_vec(),
        Some(t) => return Err(Error::param(format!("warm start has {} coefficients, expected {}", t.len(), p * k))),
        None => vec![0.0; p * k],
    };
    let (theta, n_iter, converged, f) = crate::parallel::run_in_pool(n_threads, || {
        let data = Data::new(x)?;
        let prob = Problem { data, y, sw: sample_weight, k, p, m, fit_intercept: opt.fit_intercept, s_total, lambda };
        match opt.solver {
            Solver::Lbfgs => {
                let pre = match subsample_rows(n, p, k) {
                    Some(rows) if opt.max_iter > 0 => warm_start_on_subsample(x, &prob, &rows, &mut theta, init.is_none(), opt)?,
                    _ => None,
                };
                lbfgs(&prob, &mut theta, opt, pre.as_ref())
            }
            Solver::NewtonCholesky => newton(&prob, &mut theta, opt),
        }
    })??;
    let mut coef = vec![0.0; k * m];
    let mut intercept = vec![0.0; k];
    for c in 0..k {
        coef[c * m..(c + 1) * m].copy_from_slice(&theta[c * p..c * p + m]);
        if opt.fit_intercept {
            intercept[c] = theta[c * p + m];
        }
    }
    Ok(LogisticFit {
        model: LinearModel {
            coef,
            intercept,
            n_features: m,
            n_outputs: k,
            classes: (0..n_classes).map(|c| c as f64).collect(),
            kind: "LogisticRegression".into(),
            meta: String::new(),
        },
        n_iter,
        converged,
        objective: f,
    })
}

type Outcome = (Vec<f64>, usize, bool, f64);

/// Rows of the subsample that warm-starts L-BFGS: every `stride`-th row, or None when the data are
/// too small (or the problem too wide, or multinomial) for it to pay.
fn subsample_rows(n: usize, p: usize, k: usize) -> Option<Vec<usize>> {
    const MIN_ROWS: usize = 20_000;
    let size = MIN_ROWS.max(40 * p);
    if k != 1 || n < 4 * size || p > 600 {
        return None;
    }
    let stride = n / size;
    Some((0..size).map(|t| t * stride).collect())
}

/// Solves the objective on the subsample `rows` (same penalty, loss averaged over the subsample) by
/// Newton steps from `theta`, moves `theta` there when `move_start` (no warm start was given), and
/// returns the Cholesky factor of the subsample's Hessian at that point. None (and `theta` kept) when
/// the subsample lacks a class or has no weight, or the Hessian cannot be factored.
fn warm_start_on_subsample(
    x: &DenseMatrix<'_>,
    full: &Problem<'_>,
    rows: &[usize],
    theta: &mut Vec<f64>,
    move_start: bool,
    opt: &Options,
) -> Result<Option<faer::linalg::solvers::Llt<f64>>> {
    let m = full.m;
    let mut xs = ndarray::Array2::<f64>::zeros((rows.len(), m));
    for (t, &i) in rows.iter().enumerate() {
        match x {
            DenseMatrix::F32(a) => xs.row_mut(t).iter_mut().zip(a.row(i)).for_each(|(o, &v)| *o = v as f64),
            DenseMatrix::F64(a) => xs.row_mut(t).assign(&a.row(i)),
        }
    }
    let ys: Vec<u32> = rows.iter().map(|&i| full.y[i]).collect();
    let ws: Option<Vec<f64>> = full.sw.map(|w| rows.iter().map(|&i| w[i]).collect());
    let s_total = ws.as_ref().map_or(rows.len() as f64, |w| w.iter().sum());
    if !(s_total > 0.0) || ys.iter().all(|&c| c == ys[0]) {
        return Ok(None);
    }
    let xv = DenseMatrix::F64(xs.view());
    let sub = Problem {
        data: Data::new(&xv)?,
        y: &ys,
        sw: ws.as_deref(),
        k: full.k,
        p: full.p,
        m,
        fit_intercept: full.fit_intercept,
        s_total,
        lambda: full.lambda,
    };
    let sub_opt = Options { max_iter: 50, solver: Solver::NewtonCholesky, ..opt.clone() };
    let mut t = theta.clone();
    newton(&sub, &mut t, &sub_opt)?;
    if move_start && t.iter().all(|v| v.is_finite()) {
        *theta = t;
    }
    let (_, _, hs) = sub.eval(theta, true)?;
    Ok(hs.and_then(|h| h.llt(faer::Side::Lower).ok()))
}

/// L-BFGS; `pre` (a Cholesky factor of a Hessian estimate) replaces the scaled identity as the
/// initial inverse-Hessian approximation when given.
fn lbfgs(
    prob: &Problem<'_>,
    theta: &mut Vec<f64>,
    opt: &Options,
    pre: Option<&faer::linalg::solvers::Llt<f64>>,
) -> Result<Outcome> {
    use faer::linalg::solvers::Solve;
    const HISTORY: usize = 10;
    let ftol = 64.0 * f64::EPSILON;
    prob.center(theta);
    let (mut f, mut g, _) = prob.eval(theta, false)?;
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut it = 0;
    let mut converged = max_abs(&g) <= opt.tol;
    while !converged && it < opt.max_iter {
        it += 1;
        // Two-loop recursion.
        let mut q = g.clone();
        let mut alphas = vec![0.0; s_hist.len()];
        for h in (0..s_hist.len()).rev() {
            let rho = 1.0 / dot(&y_hist[h], &s_hist[h]);
            alphas[h] = rho * dot(&s_hist[h], &q);
            for (qv, yv) in q.iter_mut().zip(&y_hist[h]) {
                *qv -= alphas[h] * yv;
            }
        }
        if let Some(llt) = pre {
            let qm = llt.solve(&Mat::<f64>::from_fn(q.len(), 1, |i, _| q[i]));
            q.iter_mut().enumerate().for_each(|(i, v)| *v = qm[(i, 0)]);
        } else {
            let gamma = match (s_hist.last(), y_hist.last()) {
                (Some(s), Some(y)) => dot(s, y) / dot(y, y),
                _ => 1.0 / max_abs(&g).max(1e-12).max(g.iter().map(|v| v * v).sum::<f64>().sqrt()),
            };
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for h in 0..s_hist.len() {
            let rho = 1.0 / dot(&y_hist[h], &s_hist[h]);
            let beta = rho * dot(&y_hist[h], &q);
            for (qv, sv) in q.iter_mut().zip(&s_hist[h]) {
                *qv += (alphas[h] - beta) * sv;
            }
        }
        let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..60 {
            let cand: Vec<f64> = theta.iter().zip(&d).map(|(t, dv)| t + step * dv).collect();
            let (fc, gc, _) = prob.eval(&cand, false)?;
            if fc.is_finite() && fc <= f + 1e-4 * step * slope {
                accepted = Some((cand, fc, gc));
                break;
            }
            step *= 0.5;
        }
        let Some((mut cand, fc, gc)) = accepted else { break };
        prob.center(&mut cand);
        let s: Vec<f64> = cand.iter().zip(theta.iter()).map(|(a, b)| a - b).collect();
        let yv: Vec<f64> = gc.iter().zip(&g).map(|(a, b)| a - b).collect();
        if dot(&s, &yv) > 1e-12 * dot(&yv, &yv).sqrt() * dot(&s, &s).sqrt() {
            s_hist.push(s);
            y_hist.push(yv);
            if s_hist.len() > HISTORY {
                s_hist.remove(0);
                y_hist.remove(0);
            }
        }
        let f_old = f;
        *theta = cand;
        f = fc;
        g = gc;
        converged = max_abs(&g) <= opt.tol;
        if !converged && (f_old - f) / f_old.abs().max(f.abs()).max(1.0) <= ftol {
            // No further decrease is measurable: as scipy's L-BFGS-B, this is convergence.
            converged = true;
            break;
        }
    }
    Ok((theta.clone(), it, converged, f))
}

fn newton(prob: &Problem<'_>, theta: &mut Vec<f64>, opt: &Options) -> Result<Outcome> {
    prob.center(theta);
    let dim = theta.len();
    let mut it = 0;
    let mut converged = false;
    let (mut f, mut g, mut h) = prob.eval(theta, true)?;
    while it < opt.max_iter {
        let mut rhs = Mat::<f64>::zeros(dim, 1);
        for i in 0..dim {
            rhs[(i, 0)] = -g[i];
        }
        let (step, _) = solve_spd(h.as_ref().expect("hessian requested"), &rhs)?;
        let d: Vec<f64> = (0..dim).map(|i| step[(i, 0)]).collect();
        let slope = dot(&g, &d);
        let decrement = -slope;
        if max_abs(&g) <= opt.tol && 0.5 * decrement <= opt.tol {
            converged = true;
            break;
        }
        it += 1;
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..40 {
            let mut cand: Vec<f64> = theta.iter().zip(&d).map(|(a, b)| a + t * b).collect();
            prob.center(&mut cand);
            let (fc, gc, hc) = prob.eval(&cand, true)?;
            if fc.is_finite() && fc <= f + 1e-4 * t * slope.min(0.0) {
                accepted = Some((cand, fc, gc, hc));
                break;
            }
            t *= 0.5;
        }
        let Some((cand, fc, gc, hc)) = accepted else { break };
        *theta = cand;
        f = fc;
        g = gc;
        h = hc;
    }
    if !converged {
        converged = max_abs(&g) <= opt.tol;
    }
    Ok((theta.clone(), it, converged, f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn solvers_agree_and_threads_do_not_matter() {
        let n = 6000;
        let x = Array2::from_shape_fn((n, 3), |(i, j)| ((((i * 31 + j * 17) % 23) as f64) / 7.0 - 1.5) * (j + 1) as f64);
        let y: Vec<u32> = (0..n)
            .map(|i| {
                let z = x[[i, 0]] - 0.5 * x[[i, 1]] + 0.2 * x[[i, 2]] + ((i * 7919) % 13) as f64 / 6.0 - 1.0;
                if z > 0.0 { 1 } else { 0 }
            })
            .collect();
        let mut opt = Options { c: 1.0, fit_intercept: true, tol: 1e-10, max_iter: 500, solver: Solver::Lbfgs };
        let d = DenseMatrix::F64(x.view());
        let a = fit(&d, &y, 2, None, &opt, None, 1).unwrap();
        let a3 = fit(&d, &y, 2, None, &opt, None, 3).unwrap();
        assert_eq!(a.model, a3.model);
        opt.solver = Solver::NewtonCholesky;
        let b = fit(&d, &y, 2, None, &opt, None, 2).unwrap();
        assert!(a.converged && b.converged);
        for (u, v) in a.model.coef.iter().zip(&b.model.coef) {
            assert!((u - v).abs() < 1e-6, "{:?} vs {:?}", a.model.coef, b.model.coef);
        }
        // X as float32 (copied into blocks) gives the same optimum as the f64 view.
        let x32 = x.mapv(|v| v as f32);
        let a32 = fit(&DenseMatrix::F32(x32.view()), &y, 2, None, &opt, None, 2).unwrap();
        for (u, v) in a32.model.coef.iter().zip(&b.model.coef) {
            assert!((u - v).abs() < 1e-5, "{:?} vs {:?}", a32.model.coef, b.model.coef);
        }
        let y3: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
        let c = fit(&d, &y3, 3, None, &opt, None, 2).unwrap();
        assert_eq!(c.model.n_outputs, 3);
        assert!(c.converged);
    }

    #[test]
    fn subsample_warm_start_reaches_the_same_optimum_in_fewer_passes() {
        let n = 100_000;
        assert!(subsample_rows(n, 4, 1).is_some() && subsample_rows(n, 4, 3).is_none());
        let x = Array2::from_shape_fn((n, 3), |(i, j)| ((((i * 31 + j * 17) % 97) as f64) / 30.0 - 1.6) * (j + 1) as f64);
        let y: Vec<u32> = (0..n)
            .map(|i| {
                let z = 0.8 * x[[i, 0]] - 0.5 * x[[i, 1]] + 0.3 * x[[i, 2]] + ((i * 7919) % 101) as f64 / 25.0 - 2.0;
                u32::from(z > 0.0)
            })
            .collect();
        let d = DenseMatrix::F64(x.view());
        let opt = Options { c: 1.0, fit_intercept: true, tol: 1e-9, max_iter: 500, solver: Solver::Lbfgs };
        let a = fit(&d, &y, 2, None, &opt, None, 1).unwrap();
        let a2 = fit(&d, &y, 2, None, &opt, None, 2).unwrap();
        assert_eq!(a.model, a2.model);
        let b = fit(&d, &y, 2, None, &Options { solver: Solver::NewtonCholesky, ..opt.clone() }, None, 2).unwrap();
        assert!(a.converged && b.converged);
        for (u, v) in a.model.coef.iter().chain(&a.model.intercept).zip(b.model.coef.iter().chain(&b.model.intercept)) {
            assert!((u - v).abs() < 1e-7 * v.abs().max(1.0), "{:?} vs {:?}", a.model, b.model);
        }
        assert!(a.objective <= b.objective + 1e-12);
        assert!(a.n_iter <= 12, "{} iterations", a.n_iter);
    }
}
