//! Rough per-phase CPU cost on the synthetic 12 MP JPEG: mozjpeg decode at each DCT
//! scale, and one 648x648 encode. `cargo run --release -p photobulk-imaging --example phases`
#[path = "support/cpu.rs"]
mod cpu;
#[path = "../tests/support/ssim.rs"]
#[allow(dead_code)]
mod ssim;
#[path = "../tests/support/synth.rs"]
mod synth;
use cpu::cpu_ms;

use fast_image_resize as fr;

fn decode(jpeg: &[u8], num: u8) -> (Vec<u8>, u32, u32) {
    std::panic::catch_unwind(|| {
        let mut d = mozjpeg::Decompress::new_mem(jpeg).expect("hdr");
        d.scale(num);
        let mut s = d.rgb().expect("start");
        let (w, h) = (s.width() as u32, s.height() as u32);
        let px: Vec<u8> = s.read_scanlines().expect("read");
        s.finish().expect("finish");
        (px, w, h)
    })
    .expect("decode")
}

/// Centre square of a decoded image, Lanczos3 to `size`.
fn square(px: Vec<u8>, w: u32, h: u32, size: u32) -> Vec<u8> {
    let src = fr::images::Image::from_vec_u8(w, h, px, fr::PixelType::U8x3).expect("src");
    let side = f64::from(w.min(h));
    let mut dst = fr::images::Image::new(size, size, fr::PixelType::U8x3);
    let o = fr::ResizeOptions::new()
        .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3))
        .crop(
            (f64::from(w) - side) / 2.0,
            (f64::from(h) - side) / 2.0,
            side,
            side,
        );
    fr::Resizer::new()
        .resize(&src, &mut dst, &o)
        .expect("resize");
    dst.into_vec()
}

fn main() {
    let (w, h) = (3000u32, 4000u32);
    let rgb = synth::photo(w, h, 7);
    let mut jpeg = Vec::new();
    let e = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90);
    image::ImageEncoder::write_image(e, &rgb, w, h, image::ExtendedColorType::Rgb8)
        .expect("encode");
    println!("input {} bytes", jpeg.len());
    for num in [8u8, 6, 5, 4, 3, 2, 1] {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let c0 = cpu_ms();
            let (px, _, _) = decode(&jpeg, num);
            best = best.min(cpu_ms() - c0);
            assert!(!px.is_empty());
        }
        println!("decode at {num}/8: {best:.1} ms CPU");
    }
    for path in std::env::args().skip(1).map(Some).chain([None]) {
        let bytes = match &path {
            Some(p) => std::fs::read(p).expect("read"),
            None => jpeg.clone(),
        };
        let (px, w, h) = decode(&bytes, 8);
        for size in [648u32, 96] {
            let reference = square(px.clone(), w, h, size);
            for num in [1u8, 2, 3, 4, 5] {
                let (p2, w2, h2) = decode(&bytes, num);
                if w2.min(h2) < size {
                    continue;
                }
                let got = square(p2, w2, h2, size);
                let s = ssim::ssim(&reference, &got, size as usize, size as usize);
                println!("{:?} {size}: DCT {num}/8 ({}px short side, {:.2}x target) SSIM vs full decode {s:.5}", path.as_deref().unwrap_or("synthetic"), w2.min(h2), f64::from(w2.min(h2)) / f64::from(size));
            }
        }
    }
    let small = synth::photo(648, 648, 3);
    for fastest in [true, false] {
        let mut best = f64::MAX;
        let mut len = 0;
        for _ in 0..5 {
            let c0 = cpu_ms();
            let out = std::panic::catch_unwind(|| {
                let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
                if fastest {
                    c.set_fastest_defaults();
                }
                c.set_size(648, 648);
                c.set_quality(95.0);
                c.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
                c.set_optimize_coding(true);
                let mut s = c.start_compress(Vec::new()).expect("start");
                s.write_scanlines(&small).expect("write");
                s.finish().expect("finish")
            })
            .expect("encode");
            best = best.min(cpu_ms() - c0);
            len = out.len();
        }
        println!("encode 648 q95 fastest={fastest}: {best:.1} ms CPU, {len} bytes");
    }
}
