//! Objectives: label checks, the starting score, and gradients/hessians of the loss at the current
//! scores. Scores and gradients of multiclass models are class-major: class `k` of row `i` is at
//! `k * n + i`.

use rayon::prelude::*;

use super::exact::ExactSum;
use super::params::{GbdtParams, ObjectiveKind};
use crate::error::{Error, Result};
use crate::predict::OutputTransform;

/// An objective with its parameters.
#[derive(Clone, Debug)]
pub struct Objective {
    kind: ObjectiveKind,
    num_class: usize,
    alpha: f64,
    rho: f64,
    sigmoid: f64,
    pos_weight: f64,
    neg_weight: f64,
    poisson_max_delta_step: f64,
    /// Ranking: query boundaries, label gains, truncation, normalisation.
    queries: Vec<usize>,
    label_gain: Vec<f64>,
    truncation: usize,
    norm: bool,
}

/// e^x to within a few units in the last place, for x clamped to [-708, 709] (so the result stays a
/// finite normal number): x = k ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor series to degree 13
/// (truncation error below 1e-17), and 2^k put straight into the exponent bits. No branches or calls,
/// so loops over it vectorise.
#[inline(always)]
pub fn exp_approx(x: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // ln 2 split in two: k * LN2_HI is exact for |k| < 2^11.
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    // Adding 1.5 * 2^52 rounds to an integer, left in the low bits of the sum.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    let x = x.clamp(-708.0, 709.0);
    let kd = x * LOG2E + SHIFT;
    let k = kd - SHIFT;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0;
    for d in [479_001_600.0, 39_916_800.0, 3_628_800.0, 362_880.0, 40_320.0, 5_040.0, 720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0] {
        p = p * r + 1.0 / d;
    }
    // The low 12 bits of kd's bits hold k (mod 2^12); k + 1023 lies in [1, 2046].
    let scale = f64::from_bits(kd.to_bits().wrapping_add(1023) << 52);
    p * scale
}

fn label_error(name: &str, want: &str, row: usize, v: f64) -> Error {
    Error::data(format!("the {name} objective needs {want}, but the label is {v} at row {row}"))
}

impl Objective {
    /// The objective of `params`, with its label weights resolved against `label` (is_unbalance).
    pub fn new(params: &GbdtParams, label: &[f64], weight: Option<&[f64]>, queries: Option<Vec<usize>>) -> Result<Self> {
        let mut o = Objective {
            kind: params.objective,
            num_class: params.num_class,
            alpha: params.alpha,
            rho: params.tweedie_variance_power,
            sigmoid: params.sigmoid,
            pos_weight: 1.0,
            neg_weight: 1.0,
            poisson_max_delta_step: 0.7,
            queries: Vec::new(),
            label_gain: params.label_gain.clone(),
            truncation: params.lambdarank_truncation_level.max(1),
            norm: params.lambdarank_norm,
        };
        if o.kind == ObjectiveKind::Lambdarank {
            o.queries = queries.ok_or_else(|| {
                Error::data("the lambdarank objective needs query groups: pass group= to the Dataset")
            })?;
        }
        o.check_labels(label)?;
        if o.kind == ObjectiveKind::Binary {
            if params.is_unbalance {
                let (mut pos, mut neg) = (0.0, 0.0);
                for (i, &y) in label.iter().enumerate() {
                    let w = weight.map_or(1.0, |w| w[i]);
                    if y > 0.5 {
                        pos += w
                    } else {
                        neg += w
                    }
                }
                if pos > 0.0 && neg > 0.0 {
                    if pos > neg {
                        o.neg_weight = pos / neg
                    } else {
                        o.pos_weight = neg / pos
                    }
                }
            }
            o.pos_weight *= params.scale_pos_weight;
        }
        Ok(o)
    }

    /// The objective kind.
    pub fn kind(&self) -> ObjectiveKind {
        self.kind
    }

    /// Scores per row (1, or num_class for multiclass).
    pub fn num_scores(&self) -> usize {
        if self.kind == ObjectiveKind::Multiclass {
            self.num_class
        } else {
            1
        }
    }

    /// How raw scores become predictions.
    pub fn transform(&self) -> OutputTransform {
        match self.kind {
            ObjectiveKind::Binary => OutputTransform::Sigmoid(self.sigmoid),
            ObjectiveKind::CrossEntropy => OutputTransform::Sigmoid(1.0),
            ObjectiveKind::Multiclass => OutputTransform::Softmax,
            ObjectiveKind::Poisson | ObjectiveKind::Tweedie => OutputTransform::Exp,
            _ => OutputTransform::Identity,
        }
    }

    fn check_labels(&self, label: &[f64]) -> Result<()> {
        let k = self.kind;
        for (i, &y) in label.iter().enumerate() {
            match k {
                ObjectiveKind::Binary if y != 0.0 && y != 1.0 => {
                    return Err(label_error("binary", "labels 0 or 1", i, y))
                }
                ObjectiveKind::CrossEntropy if !(0.0..=1.0).contains(&y) => {
                    return Err(label_error("cross_entropy", "labels in [0, 1]", i, y))
                }
                ObjectiveKind::Multiclass if y < 0.0 || y.fract() != 0.0 || y >= self.num_class as f64 => {
                    return Err(label_error(
                        "multiclass",
                        &format!("whole-number labels in 0..{} (num_class)", self.num_class),
                        i,
                        y,
                    ))
                }
                ObjectiveKind::Lambdarank if y < 0.0 || y.fract() != 0.0 || y >= self.label_gain.len() as f64 => {
                    return Err(label_error(
                        "lambdarank",
                        &format!("whole-number relevance labels in 0..{} (label_gain)", self.label_gain.len()),
                        i,
                        y,
                    ))
                }
                ObjectiveKind::Poisson | ObjectiveKind::Tweedie if y < 0.0 => {
                    return Err(label_error(if k == ObjectiveKind::Poisson { "poisson" } else { "tweedie" }, "labels >= 0", i, y))
                }
                _ => {}
            }
        }
        if matches!(k, ObjectiveKind::Poisson | ObjectiveKind::Tweedie) && label.iter().all(|&y| y == 0.0) {
            return Err(Error::data("the poisson/tweedie objective needs at least one positive label; all are 0"));
        }
        Ok(())
    }

    /// The starting raw score per class (boost_from_average), before any tree.
    /// The label average is an exact sum (see [`ExactSum`]), so it does not depend on the row order.
    pub fn init_scores(&self, label: &[f64], weight: Option<&[f64]>, boost_from_average: bool) -> Vec<f64> {
        let (sw, swy) = label_sums(label, weight);
        self.init_scores_from(label, weight, &sw, &swy, boost_from_average)
    }

    /// [`Objective::init_scores`] from the exact label sums (see [`label_sums`]): sums of shards of the
    /// data, merged, give the same scores as the whole data. Objectives whose start is a quantile need
    /// the labels themselves (`label`, `weight`).
    pub fn init_scores_from(&self, label: &[f64], weight: Option<&[f64]>, sw: &ExactSum, swy: &ExactSum, boost_from_average: bool) -> Vec<f64> {
        let k = self.num_scores();
        if !boost_from_average || matches!(self.kind, ObjectiveKind::Multiclass | ObjectiveKind::Custom | ObjectiveKind::Lambdarank) {
            return vec![0.0; k];
        }
        let (sw, swy) = (sw.value(), swy.value());
        let mean = if sw > 0.0 { swy / sw } else { 0.0 };
        let s = match self.kind {
            ObjectiveKind::Regression | ObjectiveKind::Huber => mean,
            ObjectiveKind::RegressionL1 => weighted_quantile(label, weight, 0.5),
            ObjectiveKind::Quantile => weighted_quantile(label, weight, self.alpha),
            ObjectiveKind::Poisson | ObjectiveKind::Tweedie => mean.max(1e-300).ln(),
            ObjectiveKind::Binary => {
                let p = (mean).clamp(1e-15, 1.0 - 1e-15);
                (p / (1.0 - p)).ln() / self.sigmoid
            }
            ObjectiveKind::CrossEntropy => {
                let p = mean.clamp(1e-15, 1.0 - 1e-15);
                (p / (1.0 - p)).ln()
            }
            ObjectiveKind::Multiclass | ObjectiveKind::Custom | ObjectiveKind::Lambdarank => 0.0,
        };
        vec![s]
    }

    /// Gradients and hessians at `scores` (row-parallel on the current pool; results do not depend on
    /// the thread count: each row's value is computed on its own).
    pub fn gradients(&self, scores: &[f64], label: &[f64], weight: Option<&[f64]>, grad: &mut [f32], hess: &mut [f32]) {
        let n = label.len();
        if self.kind == ObjectiveKind::Multiclass {
            let k = self.num_class;
            let factor = k as f64 / (k as f64 - 1.0);
            // Row-parallel: each task owns a run of rows in every class plane.
            const CH: usize = 4096;
            let mut gp: Vec<&mut [f32]> = grad.chunks_mut(n).collect();
            let mut hp: Vec<&mut [f32]> = hess.chunks_mut(n).collect();
            let mut tasks: Vec<(usize, Vec<&mut [f32]>, Vec<&mut [f32]>)> = Vec::new();
            let mut gsplit: Vec<std::slice::ChunksMut<'_, f32>> = gp.iter_mut().map(|p| p.chunks_mut(CH)).collect();
            let mut hsplit: Vec<std::slice::ChunksMut<'_, f32>> = hp.iter_mut().map(|p| p.chunks_mut(CH)).collect();
            for c in 0..n.div_ceil(CH) {
                let g: Vec<&mut [f32]> = gsplit.iter_mut().map(|it| it.next().unwrap()).collect();
                let h: Vec<&mut [f32]> = hsplit.iter_mut().map(|it| it.next().unwrap()).collect();
                tasks.push((c * CH, g, h));
            }
            tasks.into_par_iter().for_each(|(start, mut g, mut h)| {
                let mut p = vec![0.0f64; k];
                for r in 0..g[0].len() {
                    let i = start + r;
                    let mut mx = f64::NEG_INFINITY;
                    for (c, pc) in p.iter_mut().enumerate() {
                        *pc = scores[c * n + i];
                        mx = mx.max(*pc);
                    }
                    let mut sum = 0.0;
                    for pc in p.iter_mut() {
                        *pc = (*pc - mx).exp();
                        sum += *pc;
                    }
                    let y = label[i] as usize;
                    let w = weight.map_or(1.0, |w| w[i]);
                    for c in 0..k {
                        let pc = p[c] / sum;
                        let gv = if c == y { pc - 1.0 } else { pc };
                        g[c][r] = (gv * w) as f32;
                        h[c][r] = (factor * pc * (1.0 - pc) * w).max(1e-16) as f32;
                    }
                }
            });
            return;
        }
        if self.kind == ObjectiveKind::Lambdarank {
            // Queries are disjoint runs of rows: one task per query.
            let mut tasks = Vec::with_capacity(self.queries.len());
            let (mut g_rest, mut h_rest) = (grad, hess);
            for w in self.queries.windows(2) {
                let (g, gt) = g_rest.split_at_mut(w[1] - w[0]);
                let (h, ht) = h_rest.split_at_mut(w[1] - w[0]);
                tasks.push((w[0], g, h));
                g_rest = gt;
                h_rest = ht;
            }
            tasks.into_par_iter().for_each(|(start, g, h)| {
                let end = start + g.len();
                self.lambdarank_query(&scores[start..end], &label[start..end], g, h);
                if let Some(w) = weight {
                    for (k, (gv, hv)) in g.iter_mut().zip(h.iter_mut()).enumerate() {
                        *gv *= w[start + k] as f32;
                        *hv *= w[start + k] as f32;
                    }
                }
            });
            return;
        }
        if self.kind == ObjectiveKind::Binary {
            self.binary_gradients(scores, label, weight, grad, hess);
            return;
        }
        let this = self.clone();
        grad.par_chunks_mut(4096).zip(hess.par_chunks_mut(4096)).enumerate().for_each(|(c, (g, h))| {
            let start = c * 4096;
            for r in 0..g.len() {
                let i = start + r;
                let (gv, hv) = this.point(scores[i], label[i]);
                let w = weight.map_or(1.0, |w| w[i]);
                g[r] = (gv * w) as f32;
                h[r] = (hv * w) as f32;
            }
        });
    }

    /// Binary log-loss gradients, the same formulas as [`Objective::point`] in a loop with no calls or
    /// branches (the exponential is [`exp_approx`]), which the compiler vectorises.
    fn binary_gradients(&self, scores: &[f64], label: &[f64], weight: Option<&[f64]>, grad: &mut [f32], hess: &mut [f32]) {
        let (sig, pw, nw) = (self.sigmoid, self.pos_weight, self.neg_weight);
        const CH: usize = 4096;
        grad.par_chunks_mut(CH).zip(hess.par_chunks_mut(CH)).enumerate().for_each(|(c, (g, h))| {
            let at = c * CH..c * CH + g.len();
            let (s, y) = (&scores[at.clone()], &label[at.clone()]);
            let one = |s: f64, y: f64| -> (f64, f64) {
                let pos = y > 0.5;
                let sign = if pos { 1.0 } else { -1.0 };
                let lw = if pos { pw } else { nw };
                let response = -sign * sig / (1.0 + exp_approx(sign * sig * s));
                let abs = response.abs();
                (response * lw, (abs * (sig - abs)).max(1e-16) * lw)
            };
            match weight {
                None => {
                    for (((g, h), &s), &y) in g.iter_mut().zip(h.iter_mut()).zip(s).zip(y) {
                        let (gv, hv) = one(s, y);
                        *g = gv as f32;
                        *h = hv as f32;
                    }
                }
                Some(w) => {
                    for ((((g, h), &s), &y), &w) in g.iter_mut().zip(h.iter_mut()).zip(s).zip(y).zip(&w[at]) {
                        let (gv, hv) = one(s, y);
                        *g = (gv * w) as f32;
                        *h = (hv * w) as f32;
                    }
                }
            }
        });
    }

    /// LambdaRank gradients of one query: every pair of documents with different labels, one of
    /// them ranked within the truncation level, weighted by the NDCG change of swapping them.
    fn lambdarank_query(&self, scores: &[f64], label: &[f64], g: &mut [f32], h: &mut [f32]) {
        let cnt = scores.len();
        let mut order: Vec<usize> = (0..cnt).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let gain = |i: usize| self.label_gain[label[i] as usize];
        let mut ideal: Vec<f64> = (0..cnt).map(gain).collect();
        ideal.sort_by(|a, b| b.total_cmp(a));
        let max_dcg: f64 = ideal.iter().take(self.truncation).enumerate().map(|(r, &gv)| gv / (2.0 + r as f64).log2()).sum();
        let mut lambdas = vec![0.0f64; cnt];
        let mut hess = vec![0.0f64; cnt];
        if max_dcg > 0.0 {
            let inv_max = 1.0 / max_dcg;
            let (best, worst) = (scores[order[0]], scores[order[cnt - 1]]);
            let mut sum_lambdas = 0.0;
            for i in 0..cnt.min(self.truncation) {
                for j in i + 1..cnt {
                    let (a, b) = (order[i], order[j]);
                    if label[a] == label[b] {
                        continue;
                    }
                    let (high, low, hr, lr) = if label[a] > label[b] { (a, b, i, j) } else { (b, a, j, i) };
                    let delta_score = scores[high] - scores[low];
                    let discount = (1.0 / (2.0 + hr as f64).log2() - 1.0 / (2.0 + lr as f64).log2()).abs();
                    let mut delta = (gain(high) - gain(low)) * discount * inv_max;
                    if self.norm && best != worst {
                        delta /= 0.01 + delta_score.abs();
                    }
                    let p = 1.0 / (1.0 + (self.sigmoid * delta_score).exp());
                    let lam = -self.sigmoid * p * delta;
                    let hes = self.sigmoid * self.sigmoid * p * (1.0 - p) * delta;
                    lambdas[low] -= lam;
                    hess[low] += hes;
                    lambdas[high] += lam;
                    hess[high] += hes;
                    sum_lambdas -= 2.0 * lam;
                }
            }
            if self.norm && sum_lambdas > 0.0 {
                let f = (1.0 + sum_lambdas).log2() / sum_lambdas;
                for (l, hv) in lambdas.iter_mut().zip(hess.iter_mut()) {
                    *l *= f;
                    *hv *= f;
                }
            }
        }
        for k in 0..cnt {
            g[k] = lambdas[k] as f32;
            h[k] = hess[k].max(1e-16) as f32;
        }
    }

    #[inline]
    fn point(&self, s: f64, y: f64) -> (f64, f64) {
        match self.kind {
            ObjectiveKind::Regression | ObjectiveKind::Custom => (s - y, 1.0),
            ObjectiveKind::RegressionL1 => ((s - y).signum() * ((s - y) != 0.0) as i32 as f64, 1.0),
            ObjectiveKind::Huber => {
                let d = s - y;
                (d.clamp(-self.alpha, self.alpha), 1.0)
            }
            ObjectiveKind::Quantile => {
                let d = s - y;
                (if d >= 0.0 { 1.0 - self.alpha } else { -self.alpha }, 1.0)
            }
            ObjectiveKind::Poisson => (s.exp() - y, (s + self.poisson_max_delta_step).exp()),
            ObjectiveKind::Tweedie => {
                let a = ((1.0 - self.rho) * s).exp();
                let b = ((2.0 - self.rho) * s).exp();
                (-y * a + b, -y * (1.0 - self.rho) * a + (2.0 - self.rho) * b)
            }
            ObjectiveKind::Binary => {
                let sign = if y > 0.5 { 1.0 } else { -1.0 };
                let lw = if y > 0.5 { self.pos_weight } else { self.neg_weight };
                let response = -sign * self.sigmoid / (1.0 + (sign * self.sigmoid * s).exp());
                let abs = response.abs();
                (response * lw, (abs * (self.sigmoid - abs)).max(1e-16) * lw)
            }
            ObjectiveKind::CrossEntropy => {
                let p = 1.0 / (1.0 + (-s).exp());
                (p - y, (p * (1.0 - p)).max(1e-16))
            }
            ObjectiveKind::Multiclass | ObjectiveKind::Lambdarank => {
                unreachable!("multiclass and ranking gradients are computed above")
            }
        }
    }

    /// For L1 and quantile: leaf outputs are refit to the weighted quantile of the residuals of
    /// each leaf's rows, as the gradient alone says only which way to move.
    pub fn renews_leaves(&self) -> Option<f64> {
        match self.kind {
            ObjectiveKind::RegressionL1 => Some(0.5),
            ObjectiveKind::Quantile => Some(self.alpha),
            _ => None,
        }
    }
}

/// Exact sums of the weights and of weight x label: the parts of the label average.
pub fn label_sums(label: &[f64], weight: Option<&[f64]>) -> (ExactSum, ExactSum) {
    let (mut sw, mut swy) = (ExactSum::new(), ExactSum::new());
    for (i, &y) in label.iter().enumerate() {
        let w = weight.map_or(1.0, |w| w[i]);
        sw.add(w);
        swy.add(w * y);
    }
    (sw, swy)
}

/// The weighted `q`-quantile of `values`: the first value whose cumulative weight reaches `q` of the total.
pub fn weighted_quantile(values: &[f64], weight: Option<&[f64]>, q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let w = |i: usize| weight.map_or(1.0, |w| w[i]);
    let total: f64 = idx.iter().map(|&i| w(i)).sum();
    let target = q * total;
    let mut acc = 0.0;
    for &i in &idx {
        acc += w(i);
        if acc >= target {
            return values[i];
        }
    }
    values[idx[idx.len() - 1]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_grad(o: &Objective, s: f64, y: f64) -> (f64, f64) {
        let loss = |s: f64| match o.kind {
            ObjectiveKind::Regression => 0.5 * (s - y).powi(2),
            ObjectiveKind::Binary => {
                let p = 1.0 / (1.0 + (-s).exp());
                -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
            }
            ObjectiveKind::Poisson => s.exp() - y * s,
            ObjectiveKind::CrossEntropy => {
                let p = 1.0 / (1.0 + (-s).exp());
                -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
            }
            _ => unreachable!(),
        };
        let e = 1e-4;
        ((loss(s + e) - loss(s - e)) / (2.0 * e), (loss(s + e) - 2.0 * loss(s) + loss(s - e)) / (e * e))
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (obj, ys) in [
            ("regression", vec![-1.5, 0.0, 3.0]),
            ("binary", vec![0.0, 1.0]),
            ("cross_entropy", vec![0.0, 0.3, 1.0]),
        ] {
            let p = GbdtParams { objective: match obj { "regression" => ObjectiveKind::Regression, "binary" => ObjectiveKind::Binary, _ => ObjectiveKind::CrossEntropy }, ..Default::default() };
            let o = Objective::new(&p, &ys, None, None).unwrap();
            for &y in &ys {
                for s in [-2.0, 0.1, 1.7] {
                    let (g, h) = o.point(s, y);
                    let (ng, nh) = numeric_grad(&o, s, y);
                    assert!((g - ng).abs() < 1e-5, "{obj} g {g} vs {ng}");
                    assert!((h - nh).abs() < 1e-3, "{obj} h {h} vs {nh}");
                }
            }
        }
    }

    #[test]
    fn exp_approx_is_within_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -708.0;
        while x <= 709.0 {
            for dx in [0.0, 1e-9, 0.346_573_590_279_972_6, 0.5] {
                let (a, b) = (exp_approx(x + dx), (x + dx).min(709.0).exp());
                worst = worst.max(((a - b) / b).abs());
            }
            x += 0.013_7;
        }
        assert!(worst < 1e-15, "{worst}");
        assert_eq!(exp_approx(0.0), 1.0);
        assert!(exp_approx(-1e6) > 0.0 && exp_approx(-1e6) < 1e-307);
        assert!(exp_approx(1e6).is_finite() && exp_approx(1e6) > 1e307);
    }

    #[test]
    fn binary_gradients_match_the_pointwise_formula() {
        let p = GbdtParams { objective: ObjectiveKind::Binary, ..Default::default() };
        let n = 10_000;
        let y: Vec<f64> = (0..n).map(|i| ((i * 7) % 3 == 0) as u8 as f64).collect();
        let s: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() * 40.0).collect();
        let w: Vec<f64> = (0..n).map(|i| 0.5 + (i % 5) as f64).collect();
        let o = Objective::new(&p, &y, None, None).unwrap();
        for weight in [None, Some(&w[..])] {
            let (mut g, mut h) = (vec![0f32; n], vec![0f32; n]);
            o.gradients(&s, &y, weight, &mut g, &mut h);
            for i in 0..n {
                let (gv, hv) = o.point(s[i], y[i]);
                let wi = weight.map_or(1.0, |w| w[i]);
                let (eg, eh) = ((gv * wi) as f32, (hv * wi) as f32);
                assert!((g[i] - eg).abs() <= 2.0 * f32::EPSILON * eg.abs().max(1e-30), "g {i}: {} vs {eg}", g[i]);
                assert!((h[i] - eh).abs() <= 2.0 * f32::EPSILON * eh.abs(), "h {i}: {} vs {eh}", h[i]);
            }
        }
    }

    #[test]
    fn labels_outside_the_domain_name_the_row() {
        let p = GbdtParams { objective: ObjectiveKind::Binary, ..Default::default() };
        let e = Objective::new(&p, &[0.0, 1.0, 2.0], None, None).unwrap_err();
        assert!(e.to_string().contains("row 2"), "{e}");
        let p = GbdtParams { objective: ObjectiveKind::Multiclass, num_class: 3, ..Default::default() };
        assert!(Objective::new(&p, &[0.0, 3.0], None, None).unwrap_err().to_string().contains("row 1"));
        let p = GbdtParams { objective: ObjectiveKind::Poisson, ..Default::default() };
        assert!(Objective::new(&p, &[1.0, -1.0], None, None).unwrap_err().to_string().contains("row 1"));
    }

    #[test]
    fn init_scores_boost_from_average() {
        let p = GbdtParams { objective: ObjectiveKind::Binary, ..Default::default() };
        let y = [1.0, 0.0, 0.0, 0.0];
        let o = Objective::new(&p, &y, None, None).unwrap();
        assert!((o.init_scores(&y, None, true)[0] - (0.25f64 / 0.75).ln()).abs() < 1e-12);
        assert_eq!(weighted_quantile(&[3.0, 1.0, 2.0], None, 0.5), 2.0);
    }
}
