//! Thread pools. Every parallel region runs on a local rayon pool sized exactly as asked, never on
//! rayon's global pool, so `num_threads` is honoured and callers' own pools are not oversubscribed.
//!
//! The default (`num_threads` 0 or less) shares the cores among the calls that run at once: a
//! process started by joblib or another parallel driver that sets `OMP_NUM_THREADS` gets that many
//! threads at most, and calls running side by side in threads of one process (an Optuna study with
//! `n_jobs > 1`, a threaded grid search) split the cores between them. `FERROX_NUM_THREADS` sets the
//! default outright.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a burst of concurrent calls keeps the default split after the overlap ends: trials of a
/// study start and stop out of step, and the next one should not grab every core in the gap.
const OVERLAP_MEMORY: Duration = Duration::from_secs(5);

struct Load {
    /// Calls with a default thread count running now.
    active: usize,
    /// The most calls seen running at once, and when that was last true.
    peak: usize,
    peak_at: Option<Instant>,
}

static LOAD: Mutex<Load> = Mutex::new(Load {
    active: 0,
    peak: 0,
    peak_at: None,
});

fn env_threads(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()?
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
}

/// The cores a default call may use when it runs alone: `FERROX_NUM_THREADS` if set, else the cores
/// this process may run on, capped by `OMP_NUM_THREADS` when a parallel driver has set it.
pub fn core_budget() -> usize {
    if let Some(n) = env_threads("FERROX_NUM_THREADS") {
        return n;
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    env_threads("OMP_NUM_THREADS").map_or(cores, |n| n.min(cores))
}

/// Threads for one of `sharing` calls running at once on `budget` cores.
fn share(budget: usize, sharing: usize) -> usize {
    (budget / sharing.max(1)).max(1)
}

fn lock() -> std::sync::MutexGuard<'static, Load> {
    LOAD.lock().unwrap_or_else(|e| e.into_inner())
}

/// The thread count a call passing 0 would get now.
pub fn default_threads() -> usize {
    let load = lock();
    let recent = load.peak_at.is_some_and(|t| t.elapsed() < OVERLAP_MEMORY);
    let sharing = (load.active + 1).max(if recent { load.peak } else { 0 });
    share(core_budget(), sharing)
}

/// A running call's claim on the cores; released when dropped.
pub struct Lease {
    threads: usize,
    counted: bool,
}

impl Lease {
    /// The threads this call uses.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.counted {
            let mut load = lock();
            load.active -= 1;
            if load.peak > 1 {
                // Keep the split a while after the overlap ends.
                load.peak_at = Some(Instant::now());
            }
        }
    }
}

/// Claims threads for one call: exactly `num_threads` when positive, else a share of the cores (see
/// the module text). Hold the lease while the threads run.
pub fn lease(num_threads: i64) -> Lease {
    if num_threads > 0 {
        return Lease {
            threads: num_threads as usize,
            counted: false,
        };
    }
    let mut load = lock();
    let now = Instant::now();
    if load
        .peak_at
        .is_none_or(|t| now.duration_since(t) >= OVERLAP_MEMORY)
    {
        load.peak = 0;
    }
    load.active += 1;
    if load.active >= load.peak {
        load.peak = load.active;
        load.peak_at = Some(now);
    }
    let threads = share(core_budget(), load.peak.max(load.active));
    Lease {
        threads,
        counted: true,
    }
}

/// Resolves a user `num_threads` (0 or negative = default) to a positive count.
pub fn resolve_threads(num_threads: i64) -> usize {
    if num_threads <= 0 {
        default_threads()
    } else {
        num_threads as usize
    }
}

/// Builds a local pool of `threads` threads.
pub fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ferrox-{i}"))
        .build()
        .map_err(|e| Error::Internal(format!("could not start a pool of {threads} threads: {e}")))
}

/// Whether the calling thread is a worker of a ferrox pool of exactly `threads` threads.
fn in_own_pool_of(threads: usize) -> bool {
    rayon::current_thread_index().is_some()
        && rayon::current_num_threads() == threads
        && std::thread::current().name().is_some_and(|n| n.starts_with("ferrox-"))
}

thread_local! {
    /// A one-thread pool kept by each calling thread for small calls (see [`run_solo`]).
    static SOLO: std::cell::OnceCell<Option<rayon::ThreadPool>> = const { std::cell::OnceCell::new() };
}

/// Runs `f` on one thread, in a one-thread pool that the calling thread keeps between calls: for
/// small requests (a few rows), where starting a pool would cost more than the work. Kernels inside
/// `f` that ask for one thread run in that pool as well.
pub fn run_solo<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T> {
    if in_own_pool_of(1) {
        return Ok(f());
    }
    let mut f = Some(f);
    let out = SOLO.with(|cell| {
        cell.get_or_init(|| pool(1).ok()).as_ref().map(|p| p.install(|| (f.take().expect("runs once"))()))
    });
    match out {
        Some(v) => Ok(v),
        None => run_in_pool(1, f.take().expect("not run")),
    }
}

/// Runs `f` inside a fresh local pool of `num_threads` threads (0 or less = a default share). Called
/// from a worker of a ferrox pool of that very size, `f` runs in that pool instead of a new one.
pub fn run_in_pool<T: Send>(num_threads: i64, f: impl FnOnce() -> T + Send) -> Result<T> {
    if num_threads > 0 && in_own_pool_of(num_threads as usize) {
        return Ok(f());
    }
    let lease = lease(num_threads);
    let pool = pool(lease.threads())?;
    let out = pool.install(f);
    drop(lease);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn pool_has_requested_size() {
        for n in [1, 2, 3] {
            let got = run_in_pool(n, rayon::current_num_threads).unwrap();
            assert_eq!(got, n as usize);
        }
    }

    #[test]
    fn shares_never_drop_below_one() {
        assert_eq!(share(8, 1), 8);
        assert_eq!(share(8, 3), 2);
        assert_eq!(share(2, 4), 1);
        assert_eq!(share(2, 0), 2);
    }

    #[test]
    fn concurrent_default_calls_split_the_cores() {
        // Other tests run alongside and may hold leases too, so compare against what they leave.
        let budget = core_budget();
        let callers = 4;
        let barrier = Arc::new(Barrier::new(callers));
        let got: Vec<usize> = (0..callers)
            .map(|_| {
                let b = barrier.clone();
                std::thread::spawn(move || {
                    run_in_pool(0, || {
                        b.wait();
                        rayon::current_num_threads()
                    })
                    .unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        // All four overlap, so the later ones see at least four calls; the total stays near the budget.
        assert!(got.iter().all(|&t| t >= 1 && t <= budget), "{got:?}");
        assert!(
            got.iter().filter(|&&t| t <= share(budget, callers)).count() >= 1,
            "{got:?}"
        );
        // Right after the overlap the split is remembered.
        assert!(
            default_threads() <= share(budget, callers.min(budget).max(2)),
            "{}",
            default_threads()
        );
    }
}
