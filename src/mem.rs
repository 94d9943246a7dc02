//! Memory hints: large buffers that are read at random (bins, gradients, outputs) are asked to be
//! backed by huge pages, so a random read misses the TLB far less often and filling a buffer costs a
//! page fault per 2 MiB instead of per 4 KiB.

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
#[cfg(target_os = "linux")]
pub fn advise_huge_pages_raw(start: usize, bytes: usize) {
    const HUGE: usize = 2 << 20;
    if bytes < 2 * HUGE {
        return;
    }
    let aligned = start.next_multiple_of(HUGE);
    let end = (start + bytes) / HUGE * HUGE;
    if end > aligned {
        // SAFETY: the range lies inside the caller's live allocation; MADV_HUGEPAGE only changes how
        // the kernel backs pages not yet touched, never their contents. A failure is harmless.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, end - aligned, libc::MADV_HUGEPAGE);
        }
    }
}

/// Asks for huge pages (a no-op off Linux).
#[cfg(not(target_os = "linux"))]
pub fn advise_huge_pages_raw(_: usize, _: usize) {}
