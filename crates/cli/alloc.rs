//! Keep freed memory for the next photo (glibc only).
//!
//! A 12 MP photo needs a few large buffers (the decoded window alone is ~7 MB), one set
//! per photo and worker. glibc's malloc serves allocations that large with a fresh
//! `mmap` and returns them with `munmap` when freed (its adaptive threshold only grows
//! to the size of the last freed block, and an equal request is still mapped), so every
//! photo faulted its buffers in page by page again: ~1,000 page faults and ~5 % of a
//! bulk conversion's time spent in the kernel. Raising the mmap and trim thresholds
//! lets those buffers come from, and go back to, the heap, where the next photo finds
//! them already mapped. The memory kept is bounded by what one photo per worker needs
//! at once; it is given back when the process exits. Other platforms and allocators
//! are left as they are.

/// Called once at start-up, before any thread exists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn keep_freed_memory() {
    use std::os::raw::c_int;
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // <malloc.h>: M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;
    // SAFETY: `mallopt` only sets allocator parameters (valid values: any non-negative
    // threshold; the mmap one at most 32 MiB on 64-bit, larger values are refused and
    // leave it unchanged); it is safe to call at any time.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 128 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn keep_freed_memory() {}
