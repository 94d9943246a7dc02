//! Multi-armed bandit allocation: Thompson sampling (Beta–Bernoulli or Gaussian rewards), top-two
//! Thompson, epsilon-greedy and UCB1, each turned into a probability per arm (the propensity that
//! off-policy evaluation needs) and mixed with an exploration floor so every arm keeps at least
//! `floor` of the traffic.
//!
//! Thompson probabilities are estimated by drawing from the posteriors (`draws` times): the share of
//! draws in which an arm is best (top-two: the leader's share times β, plus (1 − β) times the share
//! in which an arm is the first different leader of a resampling). The router draws a request's arm from these probabilities, so the
//! logged propensity is exactly the probability with which the arm was chosen.
//!
//! Posteriors: Beta(1 + Σr, 1 + n − Σr) for rewards in [0, 1]; for Gaussian rewards a normal with the
//! arm's mean and variance s²/n (s² the arm's sample variance, or the pooled one while an arm has
//! fewer than two rewards; an arm without rewards draws from a wide normal around the pooled mean).

use serde::{Deserialize, Serialize};

use crate::data::sample::SplitMix64;
use crate::error::{Error, Result};

/// The allocation rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    Thompson,
    TopTwo,
    EpsilonGreedy,
    Ucb1,
}

/// The reward model of Thompson sampling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reward {
    Bernoulli,
    Gaussian,
}

fn default_metric() -> String {
    "reward".into()
}

/// A bandit as declared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BanditConfig {
    pub policy: Policy,
    pub reward: Reward,
    /// The outcome field (in `POST /v2/feedback`) that rewards the arm.
    #[serde(default = "default_metric")]
    pub metric: String,
    /// Exploration share of epsilon-greedy.
    pub epsilon: f64,
    /// Every arm gets at least this probability.
    pub floor: f64,
    /// Top-two Thompson: probability of playing the leader.
    pub top_two_beta: f64,
    /// Posterior draws per update of the Thompson probabilities.
    pub draws: usize,
    /// Where the arms' statistics are kept across restarts (none: in memory only).
    pub state_path: Option<std::path::PathBuf>,
    /// Seed of the posterior draws.
    pub seed: u64,
}

impl Default for BanditConfig {
    fn default() -> Self {
        BanditConfig {
            policy: Policy::Thompson,
            reward: Reward::Bernoulli,
            metric: default_metric(),
            epsilon: 0.1,
            floor: 0.01,
            top_two_beta: 0.5,
            draws: 2000,
            state_path: None,
            seed: 0x5eed,
        }
    }
}

impl BanditConfig {
    /// Checks the settings for `k` arms.
    pub fn check(&self, k: usize) -> Result<()> {
        if k < 2 {
            return Err(Error::param("bandit: needs at least two arms"));
        }
        if !(0.0..1.0).contains(&(self.floor * k as f64)) || !self.floor.is_finite() {
            return Err(Error::param(format!("bandit.floor must lie in [0, 1/{k}) for {k} arms, got {}", self.floor)));
        }
        if !(0.0..=1.0).contains(&self.epsilon) {
            return Err(Error::param(format!("bandit.epsilon must lie in [0, 1], got {}", self.epsilon)));
        }
        if !(self.top_two_beta > 0.0 && self.top_two_beta < 1.0) {
            return Err(Error::param(format!("bandit.top_two_beta must lie in (0, 1), got {}", self.top_two_beta)));
        }
        if self.draws < 100 {
            return Err(Error::param(format!("bandit.draws must be at least 100, got {}", self.draws)));
        }
        Ok(())
    }
}

/// Rewards seen by one arm.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    pub name: String,
    pub n: f64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl Arm {
    /// Adds a reward.
    pub fn add(&mut self, r: f64) {
        self.n += 1.0;
        self.sum += r;
        self.sum_sq += r * r;
    }

    /// The mean reward (NaN without rewards).
    pub fn mean(&self) -> f64 {
        self.sum / self.n
    }
}

/// A standard normal draw (Box–Muller, one of the pair).
fn normal(rng: &mut SplitMix64) -> f64 {
    let u1 = 1.0 - rng.next_f64();
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Gamma(shape, 1) draw (Marsaglia and Tsang; shape < 1 through the boost u^(1/shape)).
fn gamma(rng: &mut SplitMix64, shape: f64) -> f64 {
    if shape < 1.0 {
        let u = 1.0 - rng.next_f64();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = 1.0 - rng.next_f64();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// A Beta(a, b) draw.
pub fn beta(rng: &mut SplitMix64, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    x / (x + y)
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

struct Posterior {
    kind: Reward,
    params: Vec<(f64, f64)>,
}

impl Posterior {
    fn new(cfg: &BanditConfig, arms: &[Arm]) -> Posterior {
        let params = match cfg.reward {
            Reward::Bernoulli => arms.iter().map(|a| (1.0 + a.sum.clamp(0.0, a.n), 1.0 + (a.n - a.sum).max(0.0))).collect(),
            Reward::Gaussian => {
                let (n, s, ss) = arms.iter().fold((0.0, 0.0, 0.0), |(n, s, ss), a| (n + a.n, s + a.sum, ss + a.sum_sq));
                let pooled_mean = if n > 0.0 { s / n } else { 0.0 };
                let pooled_var = if n > 1.0 { ((ss - s * s / n) / (n - 1.0)).max(1e-12) } else { 1.0 };
                arms.iter()
                    .map(|a| {
                        if a.n < 1.0 {
                            (pooled_mean, (pooled_var * 100.0).sqrt())
                        } else {
                            let var = if a.n >= 2.0 { ((a.sum_sq - a.sum * a.sum / a.n) / (a.n - 1.0)).max(1e-12) } else { pooled_var };
                            (a.mean(), (var / a.n).sqrt())
                        }
                    })
                    .collect()
            }
        };
        Posterior { kind: cfg.reward, params }
    }

    fn draw(&self, rng: &mut SplitMix64, out: &mut [f64]) {
        for (o, &(p, q)) in out.iter_mut().zip(&self.params) {
            *o = match self.kind {
                Reward::Bernoulli => beta(rng, p, q),
                Reward::Gaussian => p + q * normal(rng),
            };
        }
    }
}

/// The probability of choosing each arm under `cfg` given the arms' rewards (the floor applied).
pub fn probabilities(cfg: &BanditConfig, arms: &[Arm], rng: &mut SplitMix64) -> Vec<f64> {
    let k = arms.len();
    let mut p = vec![0.0; k];
    match cfg.policy {
        Policy::Thompson | Policy::TopTwo => {
            let post = Posterior::new(cfg, arms);
            let mut theta = vec![0.0; k];
            for _ in 0..cfg.draws {
                post.draw(rng, &mut theta);
                let leader = argmax(&theta);
                if cfg.policy == Policy::Thompson {
                    p[leader] += 1.0;
                    continue;
                }
                // Top-two: the leader with probability β, else the first resampled leader that differs
                // (after 100 draws without one, the runner-up of the last draw).
                p[leader] += cfg.top_two_beta;
                let mut other = None;
                for _ in 0..100 {
                    post.draw(rng, &mut theta);
                    let c = argmax(&theta);
                    if c != leader {
                        other = Some(c);
                        break;
                    }
                }
                let c = other.unwrap_or_else(|| {
                    let mut rest = theta.clone();
                    rest[leader] = f64::NEG_INFINITY;
                    argmax(&rest)
                });
                p[c] += 1.0 - cfg.top_two_beta;
            }
            for v in &mut p {
                *v /= cfg.draws as f64;
            }
        }
        Policy::EpsilonGreedy => {
            // Arms without rewards count as best, so each is tried.
            let means: Vec<f64> = arms.iter().map(|a| if a.n > 0.0 { a.mean() } else { f64::INFINITY }).collect();
            let best = argmax(&means);
            for v in &mut p {
                *v = cfg.epsilon / k as f64;
            }
            p[best] += 1.0 - cfg.epsilon;
        }
        Policy::Ucb1 => {
            let total: f64 = arms.iter().map(|a| a.n).sum();
            let score: Vec<f64> = arms
                .iter()
                .map(|a| if a.n > 0.0 { a.mean() + (2.0 * total.max(1.0).ln() / a.n).sqrt() } else { f64::INFINITY })
                .collect();
            p[argmax(&score)] = 1.0;
        }
    }
    let spare = 1.0 - cfg.floor * k as f64;
    for v in &mut p {
        *v = cfg.floor + spare * *v;
    }
    p
}

/// The saved state of a bandit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub experiment: String,
    pub policy: Policy,
    pub reward: Reward,
    pub arms: Vec<Arm>,
}

/// Writes the state atomically (temporary file, then rename).
pub fn save(path: &std::path::Path, state: &State) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_vec_pretty(state).map_err(|e| Error::Internal(format!("bandit state: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("bandit state: cannot create {}", dir.display()), e))?;
    }
    std::fs::write(&tmp, text).map_err(|e| Error::io(format!("bandit state: cannot write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("bandit state: cannot rename to {}", path.display()), e))
}

/// Reads a saved state (None when the file does not exist).
pub fn load(path: &std::path::Path) -> Result<Option<State>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::data(format!("bandit state {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("bandit state: cannot read {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arms(stats: &[(f64, f64)]) -> Vec<Arm> {
        stats.iter().enumerate().map(|(i, &(n, s))| Arm { name: format!("a{i}"), n, sum: s, sum_sq: s }).collect()
    }

    #[test]
    fn beta_draws_have_the_right_mean_and_variance() {
        let mut rng = SplitMix64::new(1);
        for (a, b) in [(0.5, 0.5), (2.0, 5.0), (30.0, 970.0)] {
            let n = 200_000;
            let x: Vec<f64> = (0..n).map(|_| beta(&mut rng, a, b)).collect();
            let m = x.iter().sum::<f64>() / n as f64;
            let v = x.iter().map(|y| (y - m) * (y - m)).sum::<f64>() / n as f64;
            let (em, ev) = (a / (a + b), a * b / ((a + b) * (a + b) * (a + b + 1.0)));
            assert!((m - em).abs() < 4.0 * (ev / n as f64).sqrt(), "{a} {b}: {m} vs {em}");
            assert!((v / ev - 1.0).abs() < 0.03, "{a} {b}: {v} vs {ev}");
        }
    }

    #[test]
    fn probabilities_sum_to_one_and_respect_the_floor() {
        let mut rng = SplitMix64::new(2);
        let a = arms(&[(1000.0, 40.0), (1000.0, 50.0), (1000.0, 60.0)]);
        for policy in [Policy::Thompson, Policy::TopTwo, Policy::EpsilonGreedy, Policy::Ucb1] {
            let cfg = BanditConfig { policy, floor: 0.02, ..Default::default() };
            let p = probabilities(&cfg, &a, &mut rng);
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{policy:?} {p:?}");
            assert!(p.iter().all(|v| *v >= 0.02 - 1e-12), "{policy:?} {p:?}");
            assert_eq!(argmax(&p), 2, "{policy:?} {p:?}");
        }
        // Top-two keeps the runner-up near 1 − β when the leader is clear.
        let clear = arms(&[(10000.0, 100.0), (10000.0, 500.0), (10000.0, 900.0)]);
        let p = probabilities(&BanditConfig { policy: Policy::TopTwo, floor: 0.0, ..Default::default() }, &clear, &mut rng);
        assert!((p[2] - 0.5).abs() < 0.01 && (p[1] - 0.5).abs() < 0.01, "{p:?}");
        // Untried arms are explored first.
        let fresh = arms(&[(10.0, 5.0), (0.0, 0.0)]);
        assert_eq!(argmax(&probabilities(&BanditConfig { policy: Policy::Ucb1, ..Default::default() }, &fresh, &mut rng)), 1);
        assert!(BanditConfig { floor: 0.5, ..Default::default() }.check(3).is_err());
    }

    #[test]
    fn thompson_finds_the_best_of_three_bernoulli_arms() {
        // 100k requests at rates 0.04 / 0.05 / 0.06, probabilities refreshed every 100 rewards.
        let rates = [0.04, 0.05, 0.06];
        let cfg = BanditConfig { draws: 1000, ..Default::default() };
        let mut a = arms(&[(0.0, 0.0), (0.0, 0.0), (0.0, 0.0)]);
        let (mut rng, mut world) = (SplitMix64::new(3), SplitMix64::new(4));
        let mut p = probabilities(&cfg, &a, &mut rng);
        let (n, mut best_late) = (100_000, 0);
        for i in 0..n {
            let u = world.next_f64();
            let mut acc = 0.0;
            let mut arm = p.len() - 1;
            for (j, v) in p.iter().enumerate() {
                acc += v;
                if u < acc {
                    arm = j;
                    break;
                }
            }
            let r = f64::from(u8::from(world.next_f64() < rates[arm]));
            a[arm].add(r);
            if i >= n / 2 && arm == 2 {
                best_late += 1;
            }
            if i % 100 == 99 {
                p = probabilities(&cfg, &a, &mut rng);
            }
        }
        let share = best_late as f64 / (n / 2) as f64;
        assert!(share >= 0.8, "best arm got {share:.3} of the last half");
    }

    #[test]
    fn state_round_trips() {
        let dir = std::env::temp_dir().join(format!("ferrox-bandit-{}", std::process::id()));
        let path = dir.join("b.json");
        let s = State { experiment: "e".into(), policy: Policy::Ucb1, reward: Reward::Gaussian, arms: arms(&[(3.0, 1.5)]) };
        save(&path, &s).unwrap();
        assert_eq!(load(&path).unwrap(), Some(s));
        assert_eq!(load(&dir.join("none.json")).unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
