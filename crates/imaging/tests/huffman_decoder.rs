//! The process-wide switch between our Huffman decoder and libjpeg's
//! ([`set_huffman_decoder`], what `PHOTOBULK_JPEG_DECODER=libjpeg` sets), and a seeded
//! differential test of the two over randomly damaged JPEGs: the stand-in for a
//! `cargo fuzz` run where cargo-fuzz is not installed (machines with no crate registry).
//!
//! Its own test binary with a single test: the switch is global, so nothing else may
//! decode in this process while it is flipped.

mod support;

use image::{Rgb, RgbImage};
use photobulk_imaging::{
    convert, huffman_decoder, set_huffman_decoder, Crop, HuffmanDecoder, Options, Target,
};

fn fixture(rel: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The AD and HD targets, centre crop: full-scale decodes of the small fixtures and a
/// DCT-scaled one for the 96x96.
fn options() -> Options {
    Options {
        crop: Crop::Center,
        targets: vec![
            Target::new("ad", 96, 10_240),
            Target::new("hd", 648, 245_760),
        ],
        ..Options::default()
    }
}

/// Every output's bytes with the given decoder, or the error's text. The encoder is
/// deterministic, so equal bytes mean equal decoded pixels.
fn run(d: HuffmanDecoder, file: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    set_huffman_decoder(d);
    let r = convert(file, &options())
        .map(|c| c.outputs.into_iter().map(|o| o.jpeg).collect())
        .map_err(|e| e.to_string());
    set_huffman_decoder(HuffmanDecoder::Photobulk);
    r
}

/// Offset of the first byte after the SOS segment.
fn scan_start(f: &[u8]) -> usize {
    let sos = f
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("an SOS marker");
    sos + 2 + usize::from(f[sos + 2]) * 256 + usize::from(f[sos + 3])
}

/// xorshift64*: a fixed seed, so every run tests the same variants.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A copy of `file` with one to three random changes inside its entropy-coded data:
/// a byte set to 0x00 / 0xFF / random, a bit flipped, a stray RSTn or EOI marker, or
/// the file cut short (with or without an EOI after the cut).
fn mutate(file: &[u8], rng: &mut Rng) -> Vec<u8> {
    let start = scan_start(file);
    let mut f = file.to_vec();
    for _ in 0..1 + rng.below(3) {
        let end = f.len().saturating_sub(2).max(start + 1);
        let at = start + rng.below(end - start);
        match rng.below(7) {
            0 => f[at] = 0x00,
            1 => f[at] = 0xFF,
            2 => f[at] = rng.next() as u8,
            3 => f[at] ^= 1 << rng.below(8),
            4 => {
                let m = if rng.below(2) == 0 {
                    0xD0 + rng.below(8) as u8
                } else {
                    0xD9
                };
                f.splice(at..at, [0xFF, m]);
            }
            5 => f.truncate(at),
            _ => {
                f.truncate(at);
                f.extend_from_slice(&[0xFF, 0xD9]);
            }
        }
    }
    f
}

#[test]
fn the_switch_changes_the_decoder_and_both_agree_on_random_damage() {
    assert_eq!(huffman_decoder(), HuffmanDecoder::Photobulk, "the default");
    assert_eq!(
        HuffmanDecoder::parse(" LibJPEG "),
        Some(HuffmanDecoder::Libjpeg)
    );
    assert_eq!(
        HuffmanDecoder::parse("photobulk"),
        Some(HuffmanDecoder::Photobulk)
    );
    assert_eq!(HuffmanDecoder::parse("turbo"), None);

    let mut synthetic = RgbImage::new(161, 97);
    for (x, y, p) in synthetic.enumerate_pixels_mut() {
        let v = ((x * 37 + y * 11) ^ (x * y)) as u8;
        *p = Rgb([v, v.wrapping_mul(3), 255 - v]);
    }
    let files = [
        ("synthetic 4:2:0 q92", support::jpeg(&synthetic, 92)),
        ("restart.jpg", fixture("formats/restart.jpg")),
        (
            "restart_rows_422.jpg",
            fixture("formats/restart_rows_422.jpg"),
        ),
        ("grey.jpg", fixture("formats/grey.jpg")),
        ("cmyk.jpg", fixture("formats/cmyk.jpg")),
        ("progressive.jpg", fixture("formats/progressive.jpg")),
    ];
    let mut rng = Rng(0x0005_EED0_FB01_D000_u64);
    let (mut both_ok, mut both_failed, mut only_ours_failed) = (0, 0, 0);
    for (name, file) in &files {
        // Undamaged: the same bytes from either decoder.
        let ours = run(HuffmanDecoder::Photobulk, file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let theirs = run(HuffmanDecoder::Libjpeg, file).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(ours == theirs, "{name}: the decoders give different pixels");
        for n in 0..120 {
            let f = mutate(file, &mut rng);
            match (
                run(HuffmanDecoder::Photobulk, &f),
                run(HuffmanDecoder::Libjpeg, &f),
            ) {
                (Ok(a), Ok(b)) => {
                    assert!(
                        a == b,
                        "{name} variant {n}: both decode it, to different pixels"
                    );
                    both_ok += 1;
                }
                (Ok(_), Err(e)) => {
                    panic!("{name} variant {n}: libjpeg refuses it ({e}), ours accepts it")
                }
                (Err(_), Ok(_)) => only_ours_failed += 1,
                (Err(_), Err(_)) => both_failed += 1,
            }
        }
    }
    eprintln!(
        "720 damaged variants: {both_ok} decoded identically by both, {both_failed} refused by \
         both, {only_ours_failed} refused by ours only"
    );
    // Ours is stricter in one known way (libjpeg-turbo's fast path decodes a code that is in
    // no table as symbol 0): that shows the switch really changes the decoder, and stays rare.
    assert!(
        only_ours_failed >= 1,
        "no variant told the decoders apart: is the switch inert?"
    );
    assert!(
        only_ours_failed * 20 < both_failed,
        "ours refuses far more than libjpeg"
    );
    assert!(
        both_ok >= 50 && both_failed >= 100,
        "the variants should exercise both outcomes"
    );
    assert_eq!(huffman_decoder(), HuffmanDecoder::Photobulk);
}
