//! Where the `face` crop's time goes on given photos (release build, by hand):
//!
//!     cargo run --release -p photobulk-imaging --example face_cost -- FILE...
//!
//! Per file, best of 5 runs (`FACE_COST_RUNS`), one thread: the whole default conversion with `face` and
//! with `center`, and `find_faces` alone (decode of the preview's source included);
//! then the face found, the square framed and whether the square forced a second
//! decode (its side under `DRAFT_SAFETY` x 648 at the first decode's scale).

use photobulk_imaging::face::Settings;
use photobulk_imaging::{convert, find_faces, Crop, Limits, Options};
use std::time::Instant;

fn best<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        out = Some(r);
    }
    (best, out.expect("one run"))
}

fn main() {
    let runs: usize = std::env::var("FACE_COST_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut sums = [0.0f64; 3];
    let files: Vec<String> = std::env::args().skip(1).collect();
    for path in &files {
        let bytes = std::fs::read(path).expect("read");
        let face = Options::default();
        let center = Options {
            crop: Crop::Center,
            ..Options::default()
        };
        // `FACE_COST_ONLY=face|center` runs that conversion alone (for callgrind).
        let only = std::env::var("FACE_COST_ONLY").unwrap_or_default();
        if !only.is_empty() {
            let o = if only == "center" { &center } else { &face };
            convert(&bytes, o).expect("convert");
            continue;
        }
        let (tf, cf) = best(runs, || convert(&bytes, &face).expect("face"));
        let (tc, _) = best(runs, || convert(&bytes, &center).expect("center"));
        let (td, faces) = best(runs, || {
            find_faces(&bytes, &Limits::default(), &Settings::default()).expect("faces")
        });
        sums[0] += tf;
        sums[1] += tc;
        sums[2] += td;
        let cb = cf.outputs[0].crop;
        println!(
            "{path}: face {tf:.1} ms, center {tc:.1} ms, find_faces {td:.1} ms; {} faces, framed {:?}, square {}x{} at ({}, {}), warnings {:?}",
            faces.len(),
            cf.face,
            cb.width,
            cb.height,
            cb.x,
            cb.y,
            cf.warnings.iter().map(|w| w.code()).collect::<Vec<_>>()
        );
    }
    let n = files.len().max(1) as f64;
    println!(
        "mean: face {:.1} ms, center {:.1} ms, find_faces {:.1} ms",
        sums[0] / n,
        sums[1] / n,
        sums[2] / n
    );
}
