//! Thread pools. Every parallel region runs on a local rayon pool sized exactly as asked, never on
//! rayon's global pool, so `num_threads` is honoured and callers' own pools are not oversubscribed.

use crate::error::{Error, Result};

/// The thread count used when the caller passes 0: the cores this process may run on.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Resolves a user `num_threads` (0 or negative = default) to a positive count.
pub fn resolve_threads(num_threads: i64) -> usize {
    if num_threads <= 0 {
        default_threads()
    } else {
        num_threads as usize
    }
}

/// Runs `f` inside a fresh local pool of `num_threads` threads (0 or less = [`default_threads`]).
pub fn run_in_pool<T: Send>(num_threads: i64, f: impl FnOnce() -> T + Send) -> Result<T> {
    let n = resolve_threads(num_threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("ferrox-{i}"))
        .build()
        .map_err(|e| Error::Internal(format!("could not start a pool of {n} threads: {e}")))?;
    Ok(pool.install(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_has_requested_size() {
        for n in [1, 2, 3] {
            let got = run_in_pool(n, rayon::current_num_threads).unwrap();
            assert_eq!(got, n as usize);
        }
        assert_eq!(run_in_pool(0, rayon::current_num_threads).unwrap(), default_threads());
    }
}
