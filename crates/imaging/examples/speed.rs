//! Time `convert` on a realistic 12 MP phone-sized JPEG (3000x4000, ~2.3 MB,
//! photographic texture), both default targets (ad 96 + hd 648), one thread.
//!
//! `cargo run --release -p photobulk-imaging --example speed [N] [file.jpg...]`

#[path = "support/cpu.rs"]
mod cpu;
#[path = "../tests/support/synth.rs"]
mod synth;
use cpu::cpu_ms;

use photobulk_imaging::{convert, Options};
use std::time::Instant;

fn make_12mp() -> Vec<u8> {
    let (w, h) = (3000u32, 4000u32);
    let rgb = synth::photo(w, h, 7);
    // Quality picked so the file is about the size of a phone's 12 MP JPEG.
    let mut best = Vec::new();
    for q in [80u8, 85, 88, 90, 92, 94] {
        let mut out = Vec::new();
        let e = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q);
        image::ImageEncoder::write_image(e, &rgb, w, h, image::ExtendedColorType::Rgb8)
            .expect("encode");
        let done = out.len() >= 2_300_000;
        best = out;
        if done {
            break;
        }
    }
    best
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let mut inputs: Vec<(String, Vec<u8>)> = args
        .map(|p| (p.clone(), std::fs::read(&p).expect("read")))
        .collect();
    if inputs.is_empty() {
        inputs.push(("synthetic 3000x4000".into(), make_12mp()));
    }
    let opts = Options::default();
    for (name, bytes) in &inputs {
        let c = convert(bytes, &opts).expect("convert");
        let mut times = Vec::with_capacity(n);
        let mut cpu = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let c0 = cpu_ms();
            let c2 = convert(bytes, &opts).expect("convert");
            cpu.push(cpu_ms() - c0);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(c2.outputs[0].sha256, c.outputs[0].sha256);
        }
        times.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / n as f64;
        println!(
            "{name}: {} bytes, {}x{} -> {}; CPU median {:.1} ms, min {:.1} ms; wall median {:.1} ms, mean {:.1} ms, min {:.1} ms over {n} runs ({:.1} img/s by CPU)",
            bytes.len(),
            c.source.width,
            c.source.height,
            c.outputs.iter().map(|o| format!("{} {}B q{}", o.target, o.bytes, o.quality)).collect::<Vec<_>>().join(", "),
            cpu[n / 2],
            cpu[0],
            times[n / 2],
            mean,
            times[0],
            1000.0 / cpu[n / 2]
        );
    }
}
