//! A/B-test statistics: pure functions on per-arm sufficient statistics, no I/O, so the model server's
//! router and Python call the same code.
//!
//! * [`moments`]: per-arm centred moments (from values, raw sums, or merged chunks).
//! * [`estimate`]: the effect and its variance for mean, proportion and ratio metrics (delta method),
//!   absolute or relative, with CUPED (Deng et al. 2013).
//! * [`compare`]: the three ways to read an estimate: fixed-horizon (Welch t / z), sequential
//!   (always-valid confidence sequences and the mSPRT p-value), Bayesian (posterior chance to win and
//!   expected loss).
//! * [`srm`], [`power`]: sample-ratio mismatch and power / sample size / minimum detectable effect.
//! * [`events`]: per-arm moments straight from Arrow record batches; [`html`]: the report page.
//! * [`eventlog`]: the server's rolling Arrow IPC event log and its reader.
//! * [`bandit`]: allocation policies (Thompson, top-two Thompson, epsilon-greedy, UCB1) with an
//!   exploration floor and exact propensities; [`rollout`]: the canary's guardrail checks.

pub mod bandit;
pub mod bayes;
pub mod compare;
pub mod dist;
pub mod estimate;
pub mod eventlog;
pub mod events;
pub mod html;
pub mod moments;
pub mod power;
pub mod rollout;
pub mod sequential;
pub mod srm;

pub use compare::{compare, Comparison, Method, Options};
pub use estimate::{Estimate, Metric};
pub use moments::Moments;

use crate::error::{Error, Result};

/// Checks a significance level.
pub fn check_alpha(alpha: f64) -> Result<()> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::param(format!("alpha must lie in (0, 1), got {alpha}")));
    }
    Ok(())
}
