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
//!
//! The first photo on each worker still maps those buffers in for the first time, and on
//! a virtual machine a 4 KiB page fault is dear: touching 64 MiB took 193 ms of CPU in
//! 4 KiB pages and 123 ms in 2 MiB pages here, and a 12-photo `convert` on two workers
//! took ~10,000 faults. So every thread allocates from the one main heap (glibc's
//! per-thread arenas are given up: the photo work makes few large allocations, and
//! small ones come from each thread's cache without the lock), the heap grows 64 MiB at
//! a time, and its first 64 MiB are advised as transparent huge pages
//! (`madvise(MADV_HUGEPAGE)`, what Debian's default THP mode `madvise` waits for) before
//! anything touches them. Measured on that 12-photo `convert` (`perf stat`, this build
//! and the one before, alternating): 670–1,300 faults instead of ~10,100 and 500–620 ms
//! of CPU instead of 620–730. Where THP is off the advice changes nothing;
//! `PHOTOBULK_NO_HUGE_HEAP=1` leaves the heap as glibc makes it.

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
    if std::env::var_os("PHOTOBULK_NO_HUGE_HEAP").is_none() {
        huge_heap();
    }
}

/// One heap for every thread, grown by 64 MiB at once and advised as transparent huge pages
/// (see the module docs).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn huge_heap() {
    use std::os::raw::{c_int, c_void};
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
        fn sbrk(increment: isize) -> *mut c_void;
        fn malloc(size: usize) -> *mut c_void;
        fn free(p: *mut c_void);
        fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }
    // <malloc.h>: M_TOP_PAD -2, M_ARENA_MAX -8. <sys/mman.h>: MADV_HUGEPAGE 14.
    const M_TOP_PAD: c_int = -2;
    const M_ARENA_MAX: c_int = -8;
    const MADV_HUGEPAGE: c_int = 14;
    const HUGE: usize = 2 << 20;
    // SAFETY: mallopt only sets parameters; sbrk(0) only reads the break; the malloc'd block
    // is freed at once; madvise(MADV_HUGEPAGE) is advice about memory the heap owns (between
    // the break before and after the heap grew), never moving or changing its contents.
    unsafe {
        mallopt(M_ARENA_MAX, 1);
        mallopt(M_TOP_PAD, 64 << 20);
        let b0 = sbrk(0) as usize;
        // black_box: the compiler may drop a malloc whose block is never used.
        let p = std::hint::black_box(malloc(1 << 20));
        let b1 = sbrk(0) as usize;
        let (start, end) = (b0.next_multiple_of(HUGE), b1 & !(HUGE - 1));
        if end > start {
            madvise(start as *mut c_void, end - start, MADV_HUGEPAGE);
        }
        free(p);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn keep_freed_memory() {}
