//! Memory hints: large buffers that are read at random (bins, gradients, outputs) are asked to be
//! backed by huge pages, so a random read misses the TLB far less often and filling a buffer costs a
//! page fault per 2 MiB instead of per 4 KiB. Large transform outputs freed by their owner are kept a
//! while and reused for the next output of a similar size, which then needs no fresh pages at all.

/// Asks for huge pages behind the untouched (just allocated, zero-filled by the kernel) buffer `v`.
pub fn advise_huge_pages<T>(v: &[T]) {
    advise_huge_pages_raw(v.as_ptr() as usize, std::mem::size_of_val(v));
}

/// A zero-filled vector of `len` elements (`zero` must be all zero bits, so the allocation comes
/// untouched from the kernel), asked to be backed by huge pages.
pub fn zeroed<T: Clone>(len: usize, zero: T) -> Vec<T> {
    let v = vec![zero; len];
    advise_huge_pages(&v);
    v
}

/// Asks for huge pages behind the untouched allocation at `start` of `bytes` bytes (Linux; a hint).
/// Buffers under 4 MiB are left alone.
pub fn advise_huge_pages_raw(start: usize, bytes: usize) {
    const HUGE: usize = 2 << 20;
    if bytes >= 2 * HUGE {
        // MADV_HUGEPAGE only changes how the kernel backs pages not yet touched, never their contents.
        #[cfg(target_os = "linux")]
        advise(start, bytes, HUGE, libc::MADV_HUGEPAGE);
        #[cfg(not(target_os = "linux"))]
        let _ = start;
    }
}

/// Marks the whole pages inside `start..start + bytes` free-on-pressure (Linux; a hint). Only for
/// memory that nothing reads until it is fully rewritten: the kernel may replace those pages by zero
/// pages.
fn advise_free(start: usize, bytes: usize) {
    #[cfg(target_os = "linux")]
    advise(start, bytes, 4096, libc::MADV_FREE);
    #[cfg(not(target_os = "linux"))]
    let _ = (start, bytes);
}

/// `madvise(advice)` over the whole `unit`-aligned units inside `start..start + bytes`.
#[cfg(target_os = "linux")]
fn advise(start: usize, bytes: usize, unit: usize, advice: libc::c_int) {
    let aligned = start.next_multiple_of(unit);
    let end = (start + bytes) / unit * unit;
    if end > aligned {
        // SAFETY: the range lies inside the caller's live allocation; the callers' advice never
        // changes what the program may observe there (see each caller). A failure is harmless.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, end - aligned, advice);
        }
    }
}

/// Large output buffers handed back after use, kept for the next output of a similar size.
///
/// A fresh buffer of hundreds of MiB costs a page fault and a kernel-zeroed page for every page on first
/// write; for a memory-bound transform that is as much time as the transform itself. A recycled buffer
/// is written in place instead. While a buffer waits here its pages are marked free-on-pressure
/// (`MADV_FREE`): the kernel may take them back at any time (the buffer then reads as zeros), so the
/// pool never holds memory the system needs. Buffers wait at most [`RECYCLE_SECONDS`] (checked on the
/// next use of the pool) and the pool holds at most [`RECYCLE_ENTRIES`] buffers and
/// [`RECYCLE_BYTES`] bytes.
struct Pool {
    entries: Vec<(std::time::Instant, Vec<f64>)>,
}

static POOL: std::sync::Mutex<Pool> = std::sync::Mutex::new(Pool { entries: Vec::new() });

/// Buffers under this size are left to the allocator.
pub const RECYCLE_MIN_BYTES: usize = 16 << 20;
/// The most buffers kept at once.
pub const RECYCLE_ENTRIES: usize = 4;
/// The most bytes kept at once.
pub const RECYCLE_BYTES: usize = 2 << 30;
/// How long a buffer is kept unused.
pub const RECYCLE_SECONDS: u64 = 60;

impl Pool {
    fn expire(&mut self, now: std::time::Instant) {
        self.entries.retain(|(t, _)| now.duration_since(*t).as_secs() < RECYCLE_SECONDS);
    }
}

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // A panic while the lock was held cannot leave the list inconsistent (pushes and removals only).
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer of exactly `len` values taken from the pool, or None. Its values are left over from an
/// earlier use (or zeros): the caller must write every element.
pub fn take_recycled(len: usize) -> Option<Vec<f64>> {
    if len * std::mem::size_of::<f64>() < RECYCLE_MIN_BYTES {
        return None;
    }
    let mut p = pool();
    p.expire(std::time::Instant::now());
    // The smallest buffer that fits and is at most twice the size asked for.
    let best = (p.entries.iter().enumerate())
        .filter(|(_, (_, v))| v.len() >= len && v.len() / 2 <= len)
        .min_by_key(|(_, (_, v))| v.len())
        .map(|(i, _)| i)?;
    let (_, mut v) = p.entries.swap_remove(best);
    v.truncate(len);
    Some(v)
}

/// Hands a buffer back for reuse (large ones are kept for a while; others are freed now).
pub fn recycle(v: Vec<f64>) {
    let bytes = v.len() * std::mem::size_of::<f64>();
    if !(RECYCLE_MIN_BYTES..=RECYCLE_BYTES).contains(&bytes) {
        return;
    }
    advise_free(v.as_ptr() as usize, bytes);
    let now = std::time::Instant::now();
    let mut evicted = Vec::new();
    {
        let mut p = pool();
        p.expire(now);
        p.entries.push((now, v));
        // Oldest first out, until within both limits.
        while p.entries.len() > RECYCLE_ENTRIES
            || p.entries.iter().map(|(_, v)| v.len() * std::mem::size_of::<f64>()).sum::<usize>() > RECYCLE_BYTES
        {
            let oldest = (p.entries.iter().enumerate()).min_by_key(|(_, (t, _))| *t).map(|(i, _)| i).expect("not empty");
            evicted.push(p.entries.swap_remove(oldest).1);
        }
    }
    drop(evicted); // freed outside the lock
}

/// Frees every buffer the pool holds now.
pub fn release_recycled() {
    let all = std::mem::take(&mut pool().entries);
    drop(all);
}

/// The number of buffers and bytes the pool holds now.
pub fn recycled() -> (usize, usize) {
    let p = pool();
    (p.entries.len(), p.entries.iter().map(|(_, v)| v.len() * std::mem::size_of::<f64>()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test owns the global pool (tests run in parallel threads).
    #[test]
    fn the_pool_reuses_fitting_buffers_within_its_limits() {
        release_recycled();
        let n = RECYCLE_MIN_BYTES / 8;
        assert!(take_recycled(n).is_none());
        // Small buffers are not kept.
        recycle(vec![1.0; 1000]);
        assert_eq!(recycled().0, 0);
        let v = vec![3.0; n + 10];
        let at = v.as_ptr();
        recycle(v);
        assert_eq!(recycled(), (1, (n + 10) * 8));
        // Too small for the request, or more than twice its size: not taken.
        assert!(take_recycled(n + 11).is_none());
        assert!(take_recycled(n / 2 - 1).is_none());
        let w = take_recycled(n).expect("fits");
        assert_eq!((w.as_ptr(), w.len()), (at, n));
        assert!(w.iter().all(|&x| x == 3.0 || x == 0.0), "old values or reclaimed zeros");
        assert_eq!(recycled().0, 0);
        // At most RECYCLE_ENTRIES are kept, the oldest leave first.
        let bufs: Vec<Vec<f64>> = (0..RECYCLE_ENTRIES + 1).map(|i| vec![i as f64; n + i]).collect();
        let first = bufs[0].as_ptr();
        for b in bufs {
            recycle(b);
        }
        assert_eq!(recycled().0, RECYCLE_ENTRIES);
        let mut got = Vec::new();
        while let Some(b) = take_recycled(n) {
            assert_ne!(b.as_ptr(), first);
            got.push(b);
        }
        assert_eq!(got.len(), RECYCLE_ENTRIES);
        release_recycled();
        assert_eq!(recycled(), (0, 0));
    }
}
