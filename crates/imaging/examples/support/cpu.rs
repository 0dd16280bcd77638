//! CPU time for the examples that time the image work (shared with `#[path]`).

/// CPU time this thread has run, in ms, from the kernel's scheduler statistics (wall time
/// is meaningless on a shared, loaded machine). NaN where `/proc` has no such file.
pub fn cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |ns| ns / 1e6)
}
