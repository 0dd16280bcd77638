//! Our Huffman decoder (`huffman`) against libjpeg-turbo's own, inside the same libjpeg
//! decompressor: the same pixels for every chroma layout, size, quality, table shape
//! (optimised and standard tables, codes longer than the lookahead), DCT scale, window
//! (skipped rows decoded without storing, cropped columns) and restart interval; and on
//! damaged data it never accepts what libjpeg refuses nor decodes anything differently.

use crate::huffman::LIBJPEG_ONLY;
use crate::libjpeg_decode::Decompressor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

type Pixels = Result<Vec<u8>, String>;

/// Decodes the window `win` (fractions of the scaled width and height: x0, x1, y0, y1)
/// at scale `num`/8 with our decoder or, when `reference`, libjpeg's. Returns whether
/// ours was installed, and the pixels or libjpeg's error.
fn decode(jpeg: &[u8], num: u32, win: [f64; 4], reference: bool) -> (bool, Pixels) {
    LIBJPEG_ONLY.with(|c| c.set(reference));
    let mut own = false;
    let r = catch_unwind(AssertUnwindSafe(|| -> Pixels {
        let mut d = Decompressor::new(jpeg, &[]);
        let out = d.out();
        let (w, h) = d.start(num, out, crate::huffman::Tape::Off);
        own = d.own_huffman();
        let at = |f: f64, n: u32| ((f * f64::from(n)) as u32).min(n);
        let (x0, x1) = (at(win[0], w), at(win[1], w).max(at(win[0], w) + 1).min(w));
        let (y0, y1) = (at(win[2], h), at(win[3], h).max(at(win[2], h) + 1).min(h));
        let (x0, x1) = d.crop(x0, x1);
        let y0 = d.skip(y0);
        let px = d.read(x1 - x0, y1 - y0)?;
        if y1 == h {
            d.finish();
        }
        Ok(px)
    }));
    LIBJPEG_ONLY.with(|c| c.set(false));
    let r = r.unwrap_or_else(|p| {
        Err(p
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "panic".into()))
    });
    (own, r)
}

const FULL: [f64; 4] = [0.0, 1.0, 0.0, 1.0];
const WINDOW: [f64; 4] = [0.3, 0.8, 0.4, 0.9];

/// Ours and libjpeg's give identical pixels; returns whether ours was used.
fn same(jpeg: &[u8], num: u32, win: [f64; 4], what: &str) -> bool {
    let (own, ours) = decode(jpeg, num, win, false);
    let (_, theirs) = decode(jpeg, num, win, true);
    let theirs = theirs.unwrap_or_else(|e| panic!("{what}: libjpeg failed: {e}"));
    let ours = ours.unwrap_or_else(|e| panic!("{what}: ours failed: {e}"));
    assert!(
        ours == theirs,
        "{what} num {num} win {win:?}: pixels differ"
    );
    own
}

/// A noisy picture with edges and gradients: long codes, large coefficients and many
/// 0xFF bytes in the entropy-coded data at high quality.
fn picture(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity(w as usize * h as usize * 3);
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    for y in 0..h {
        for x in 0..w {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let n = (s >> 24) as i32 - 128;
            let (fx, fy) = (f64::from(x), f64::from(y));
            let r = 128.0 + 100.0 * (fx / 13.0).sin() * (fy / 29.0).cos();
            let g = if (x / 9 + y / 7) % 2 == 0 {
                40.0
            } else {
                220.0
            };
            let b = 255.0 * fy / f64::from(h.max(1));
            px.extend([r, g, b].map(|v| (v as i32 + n / 3).clamp(0, 255) as u8));
        }
    }
    px
}

#[derive(Debug, Clone, Copy)]
enum Layout {
    /// Chroma sampling (pixels per chroma sample, x and y).
    Colour(u8, u8),
    Grey,
}

fn jpeg(w: u32, h: u32, layout: Layout, quality: f32, optimise: bool) -> Vec<u8> {
    jpeg_of(picture(w, h, w * 31 + h), w, h, layout, quality, optimise)
}

fn jpeg_of(rgb: Vec<u8>, w: u32, h: u32, layout: Layout, quality: f32, optimise: bool) -> Vec<u8> {
    let (space, px) = match layout {
        Layout::Grey => (
            mozjpeg::ColorSpace::JCS_GRAYSCALE,
            rgb.chunks_exact(3).map(|p| p[1]).collect(),
        ),
        Layout::Colour(..) => (mozjpeg::ColorSpace::JCS_RGB, rgb),
    };
    let mut c = mozjpeg::Compress::new(space);
    // Baseline (mozjpeg's own defaults are progressive, which libjpeg decodes itself).
    c.set_fastest_defaults();
    c.set_size(w as usize, h as usize);
    c.set_quality(quality);
    c.set_optimize_coding(optimise);
    if let Layout::Colour(sx, sy) = layout {
        c.set_chroma_sampling_pixel_sizes((sx, sy), (sx, sy));
    }
    let mut s = c.start_compress(Vec::new()).expect("start");
    s.write_scanlines(&px).expect("write");
    s.finish().expect("finish")
}

pub(crate) fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn same_pixels_as_libjpeg_for_every_layout_scale_and_window() {
    let layouts = [
        Layout::Colour(2, 2),
        Layout::Colour(2, 1),
        Layout::Colour(1, 2),
        Layout::Colour(1, 1),
        Layout::Grey,
    ];
    let mut checked = 0;
    for layout in layouts {
        for &(w, h) in &[(1, 1), (15, 9), (64, 48), (161, 97)] {
            for &(q, opt) in &[(50.0, true), (92.0, true), (100.0, true), (92.0, false)] {
                let file = jpeg(w, h, layout, q, opt);
                for num in [8, 4, 2, 1] {
                    for win in [FULL, WINDOW] {
                        let what = format!("{layout:?} {w}x{h} q{q} optimised {opt}");
                        assert!(same(&file, num, win, &what), "{what}: ours not installed");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 5 * 4 * 4 * 4 * 2);
}

#[test]
fn standard_tables_have_codes_longer_than_the_lookahead() {
    // The picture above at q100 with libjpeg's standard (unoptimised) tables: the AC
    // tables' 16-bit codes are used, so the slow path is exercised, not just compiled.
    let file = jpeg(161, 97, Layout::Colour(2, 2), 100.0, false);
    assert!(same(&file, 8, FULL, "q100 standard tables"));
    // 0xFF bytes (stuffed) in the scan: the byte-by-byte refill is exercised too.
    let sos = scan_start(&file);
    let stuffed = file[sos..]
        .windows(2)
        .filter(|p| p == &[0xFF, 0x00])
        .count();
    assert!(stuffed > 20, "only {stuffed} stuffed bytes");
}

/// The code length of each AC symbol of the file's first AC table (0: no code).
fn ac_code_lengths(jpeg: &[u8]) -> [u8; 256] {
    for (_, range) in segments(jpeg).into_iter().filter(|s| s.0 == 0xC4) {
        let dht = &jpeg[range];
        let mut t = 0;
        while t < dht.len() {
            let counts = &dht[t + 1..t + 17];
            let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
            if dht[t] >> 4 == 1 {
                let mut lengths = [0u8; 256];
                let mut v = t + 17;
                for (l, &c) in counts.iter().enumerate() {
                    for _ in 0..c {
                        lengths[usize::from(dht[v])] = l as u8 + 1;
                        v += 1;
                    }
                }
                return lengths;
            }
            t += 17 + n;
        }
    }
    panic!("no AC table");
}

#[test]
fn zero_runs_and_block_ends_with_short_codes_take_the_one_lookup_path() {
    // Blocks that are one high DCT basis function have all their energy in one late
    // coefficient: the last one (62 zeros before it: three ZRL symbols of sixteen zeros
    // and a run of 14) or zigzag 50 (three ZRL and a run of 1, where a wrong ZRL step
    // would put the coefficient elsewhere). Mixed with the
    // noisy picture (which ends most blocks early with EOB), optimised tables give both
    // ZRL and EOB codes short enough for the table that decodes a whole step in one
    // lookup; those steps store a zero inside the run or past the block's end, which
    // must not change any pixel.
    let (w, h) = (96u32, 64u32);
    let mut rgb = picture(w, h, 7);
    for y in 0..h {
        for x in 0..w {
            if (x / 8 + y / 8) % 3 != 0 {
                let (u, v) = if (x / 8 + y / 8) % 2 == 0 {
                    (7, 7)
                } else {
                    (4, 6)
                };
                let c = |i: u32, f: u32| {
                    (f64::from((2 * (i % 8) + 1) * f) * std::f64::consts::PI / 16.0).cos()
                };
                let v = (128.0 + 110.0 * c(x, u) * c(y, v)).round() as u8;
                let i = (y * w + x) as usize * 3;
                rgb[i..i + 3].copy_from_slice(&[v, v, v]);
            }
        }
    }
    for layout in [Layout::Grey, Layout::Colour(2, 2)] {
        let file = jpeg_of(rgb.clone(), w, h, layout, 95.0, true);
        let lengths = ac_code_lengths(&file);
        let (zrl, eob) = (lengths[0xF0], lengths[0x00]);
        assert!(
            (1..=10).contains(&zrl) && (1..=10).contains(&eob),
            "{layout:?}: ZRL {zrl} bits, EOB {eob} bits"
        );
        for num in [8, 4, 2, 1] {
            for win in [FULL, WINDOW] {
                let what = format!("checkerboard {layout:?} num {num}");
                assert!(same(&file, num, win, &what), "{what}: ours not installed");
            }
        }
    }
}

#[test]
fn same_pixels_on_the_fixtures_including_restart_markers_and_cmyk() {
    let files = [
        ("real/astronaut.jpg", true),
        ("real/hopper.jpg", true),
        ("real/pil_sample_cmyk.jpg", true), // CMYK, restart markers
        ("formats/restart.jpg", true),
        ("formats/restart_rows_422.jpg", true),
        ("formats/cmyk.jpg", true),
        ("formats/grey.jpg", true),
        ("orient/large_o6.jpg", true),
        ("edge/portrait_400x900.jpg", true),
        ("colour/adobergb_photo.jpg", true),
        ("formats/progressive.jpg", false), // libjpeg's own progressive decoder
    ];
    for (rel, ours) in files {
        let file = fixture(rel);
        for num in [8, 2, 1] {
            for win in [FULL, WINDOW] {
                assert_eq!(same(&file, num, win, rel), ours, "{rel}: installed?");
            }
        }
    }
}

/// The marker segments from SOI up to and including SOS: marker code and the range of
/// the segment's payload (after its length field).
fn segments(jpeg: &[u8]) -> Vec<(u8, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        out.push((jpeg[i + 1], i + 4..i + 2 + len));
        if jpeg[i + 1] == 0xDA {
            break;
        }
        i += 2 + len;
    }
    out
}

/// Offset of the first byte of entropy-coded data (after the SOS segment).
fn scan_start(jpeg: &[u8]) -> usize {
    let sos = segments(jpeg).into_iter().find(|s| s.0 == 0xDA);
    sos.expect("no SOS").1.end
}

/// Damaged copies: ours never succeeds where libjpeg fails, and never decodes
/// differently where both succeed. Returns (both failed, only ours failed).
fn damaged(name: &str, file: &[u8]) -> (usize, usize) {
    let sos = scan_start(file);
    let body = file.len() - 2 - sos;
    let mut variants: Vec<Vec<u8>> = Vec::new();
    for i in 0..97 {
        let at = sos + body * i / 97;
        for v in [0x00u8, 0xFF, 0x5A] {
            let mut f = file.to_vec();
            f[at] = if v == 0x5A { f[at] ^ v } else { v };
            variants.push(f);
        }
        // A stray marker inside the scan (restart and EOI).
        let mut f = file.to_vec();
        f.splice(at..at, [0xFF, if i % 2 == 0 { 0xD3 } else { 0xD9 }]);
        variants.push(f);
        // Truncated, without and with an EOI after the cut.
        variants.push(file[..at].to_vec());
        let mut f = file[..at].to_vec();
        f.extend_from_slice(&[0xFF, 0xD9]);
        variants.push(f);
    }
    let (mut both, mut only_ours) = (0, 0);
    for (n, f) in variants.iter().enumerate() {
        let (_, ours) = decode(f, 8, FULL, false);
        let (_, theirs) = decode(f, 8, FULL, true);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => assert!(a == b, "{name} variant {n}: both decode, differently"),
            (Ok(_), Err(e)) => panic!("{name} variant {n}: libjpeg refuses ({e}), ours accepts"),
            (Err(_), Ok(_)) => only_ours += 1,
            (Err(_), Err(_)) => both += 1,
        }
    }
    (both, only_ours)
}

#[test]
fn damaged_data_is_never_accepted_where_libjpeg_refuses_it() {
    let synthetic = jpeg(161, 97, Layout::Colour(2, 2), 92.0, true);
    for (name, file) in [
        ("synthetic 4:2:0", synthetic),
        ("restart.jpg", fixture("formats/restart.jpg")),
        ("pil_sample_cmyk.jpg", fixture("real/pil_sample_cmyk.jpg")),
    ] {
        let (both, only_ours) = damaged(name, &file);
        // Most damage is caught by both; ours may also catch what libjpeg-turbo's fast
        // path lets through (it decodes a code that is in no table as symbol 0, silently).
        // Measured: 396 / 448 / 504 of the 582 refused by both, 6 / 3 / 0 by ours only.
        assert!(
            both > 350,
            "{name}: only {both} of 582 damaged copies refused by both"
        );
        assert!(only_ours < 20, "{name}: {only_ours} refused by ours only");
    }
}

#[test]
fn damaged_fixtures_stay_errors() {
    for rel in [
        "bad/corrupt_huffman.jpg",
        "bad/truncated_scan.jpg",
        "bad/truncated_quarter.jpg",
    ] {
        let file = fixture(rel);
        let (_, ours) = decode(&file, 8, FULL, false);
        let (_, theirs) = decode(&file, 8, FULL, true);
        assert!(theirs.is_err(), "{rel}: libjpeg accepts it");
        let e = ours.expect_err(rel);
        assert!(
            e.contains("Corrupt JPEG data") || e.contains("Premature end"),
            "{rel}: {e}"
        );
    }
}
