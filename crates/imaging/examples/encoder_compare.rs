//! Which JPEG encoder gives the most quality per byte at our budgets, and how fast?
#![allow(dead_code)]
//!
//! `cargo run --release -p photobulk-imaging --example encoder_compare [photo files...]`
//!
//! For each source (synthetic photos plus any files given), centre-crop, Lanczos3 to
//! 648 and 96, then for each encoder find the highest quality that fits each budget
//! (the product's search) and report bytes, SSIM against the resized original, and ms
//! per encode. Numbers from this run are quoted in the crate docs.

#[path = "../tests/support/ssim.rs"]
mod ssim;
#[path = "../tests/support/synth.rs"]
mod synth;

use fast_image_resize as fr;
use std::time::Instant;

type EncFn = fn(&[u8], u32, u32, u8) -> Vec<u8>;

fn enc_image(rgb: &[u8], w: u32, h: u32, q: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let e = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q);
    image::ImageEncoder::write_image(e, rgb, w, h, image::ExtendedColorType::Rgb8)
        .expect("image encode");
    out
}

fn enc_jpeg_encoder(rgb: &[u8], w: u32, h: u32, q: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = jpeg_encoder::Encoder::new(&mut out, q);
    e.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    e.set_optimized_huffman_tables(true);
    e.encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .expect("jpeg-encoder");
    out
}

fn moz(rgb: &[u8], w: u32, h: u32, q: u8, fastest: bool) -> Vec<u8> {
    std::panic::catch_unwind(|| {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        if fastest {
            c.set_fastest_defaults();
        }
        c.set_size(w as usize, h as usize);
        c.set_quality(f32::from(q));
        c.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
        c.set_optimize_coding(true);
        let mut s = c.start_compress(Vec::new()).expect("start");
        s.write_scanlines(rgb).expect("write");
        s.finish().expect("finish")
    })
    .expect("mozjpeg")
}
fn enc_moz_baseline(rgb: &[u8], w: u32, h: u32, q: u8) -> Vec<u8> {
    moz(rgb, w, h, q, true)
}
fn enc_moz_trellis_progressive(rgb: &[u8], w: u32, h: u32, q: u8) -> Vec<u8> {
    moz(rgb, w, h, q, false)
}

/// Decoded with libjpeg-turbo (mozjpeg), the reference decoder, for every encoder alike.
fn decode(jpeg: &[u8]) -> Vec<u8> {
    std::panic::catch_unwind(|| {
        let d = mozjpeg::Decompress::new_mem(jpeg).expect("header");
        let mut s = d.rgb().expect("start");
        let px: Vec<u8> = s.read_scanlines().expect("read");
        s.finish().expect("finish");
        px
    })
    .expect("decode")
}

fn square_resize(rgb: &[u8], w: u32, h: u32, size: u32) -> Vec<u8> {
    let src = fr::images::Image::from_vec_u8(w, h, rgb.to_vec(), fr::PixelType::U8x3).expect("src");
    let side = w.min(h);
    let mut dst = fr::images::Image::new(size, size, fr::PixelType::U8x3);
    let opts = fr::ResizeOptions::new()
        .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3))
        .crop(
            f64::from((w - side) / 2),
            f64::from((h - side) / 2),
            f64::from(side),
            f64::from(side),
        );
    fr::Resizer::new()
        .resize(&src, &mut dst, &opts)
        .expect("resize");
    dst.into_vec()
}

fn main() {
    let encoders: [(&str, EncFn); 4] = [
        ("image 0.25", enc_image),
        ("jpeg-encoder 0.7", enc_jpeg_encoder),
        ("mozjpeg baseline", enc_moz_baseline),
        ("mozjpeg trellis+prog", enc_moz_trellis_progressive),
    ];
    let mut sources: Vec<(String, Vec<u8>, u32, u32)> = (0..3u64)
        .map(|s| {
            (
                "synthetic".to_string() + &s.to_string(),
                synth::photo(1400, 1800, s),
                1400,
                1800,
            )
        })
        .collect();
    for p in std::env::args().skip(1) {
        let img = image::open(&p).expect("open").to_rgb8();
        let (w, h) = img.dimensions();
        sources.push((p, img.into_raw(), w, h));
    }
    // (size, budgets): the product budgets, and tighter ones where encoders differ more.
    let cases: [(u32, &[usize]); 2] = [
        (96, &[10_240, 4_096, 2_500]),
        (648, &[245_760, 100_000, 50_000]),
    ];
    let mut sums: Vec<Vec<(f64, f64, f64, usize)>> =
        vec![vec![(0.0, 0.0, 0.0, 0); 6]; encoders.len()];
    for (name, rgb, w, h) in &sources {
        for (ci, (size, budgets)) in cases.iter().enumerate() {
            let orig = square_resize(rgb, *w, *h, *size);
            for (ei, (ename, enc)) in encoders.iter().enumerate() {
                let mut curve = Vec::new();
                let t = Instant::now();
                for q in 1..=100u8 {
                    curve.push((q, enc(&orig, *size, *size, q)));
                }
                let ms = t.elapsed().as_secs_f64() * 1000.0 / 100.0;
                for (bi, budget) in budgets.iter().enumerate() {
                    let best = curve
                        .iter()
                        .filter(|(_, j)| j.len() <= *budget)
                        .max_by_key(|(q, _)| *q);
                    let (q, bytes, s) = match best {
                        Some((q, j)) => (
                            *q,
                            j.len(),
                            ssim::ssim(&orig, &decode(j), *size as usize, *size as usize),
                        ),
                        None => (0, 0, 0.0),
                    };
                    println!("{name:>40} {size:>4} budget {budget:>7} {ename:>22}: q {q:>3} {bytes:>7} B ssim {s:.5} {ms:.2} ms/encode");
                    let e = &mut sums[ei][ci * 3 + bi];
                    e.0 += s;
                    e.1 += ms;
                    e.2 += bytes as f64;
                    e.3 += 1;
                }
            }
        }
    }
    println!(
        "\nmean over {} sources: SSIM at the highest quality that fits, bytes, ms per encode",
        sources.len()
    );
    for (ei, (ename, _)) in encoders.iter().enumerate() {
        for (ci, (size, budgets)) in cases.iter().enumerate() {
            for (bi, budget) in budgets.iter().enumerate() {
                let e = sums[ei][ci * 3 + bi];
                let n = e.3.max(1) as f64;
                println!(
                    "{ename:>22} {size:>4} <= {budget:>7}: ssim {:.5} bytes {:>8.0} {:.2} ms",
                    e.0 / n,
                    e.2 / n,
                    e.1 / n
                );
            }
        }
    }
}
