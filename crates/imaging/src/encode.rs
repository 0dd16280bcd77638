//! JPEG encoding at the highest quality that fits a byte budget.
//!
//! Encoder: mozjpeg (libjpeg-turbo + SIMD). Settings: baseline, 4:2:0, optimised
//! Huffman tables, JFIF APP0 only (no EXIF/XMP/ICC is ever written). See the crate
//! docs for the measurements behind the choice.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// How mozjpeg is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// libjpeg-turbo defaults (Annex K tables), optimised Huffman: fast.
    Baseline,
    /// mozjpeg's defaults: trellis quantisation, progressive, tuned tables: smaller, slower.
    #[allow(dead_code)]
    Trellis,
}

/// The mode used by [`fit_budget`] (chosen by measurement, see crate docs).
pub(crate) const MODE: Mode = Mode::Baseline;

/// First quality tried: most photos fit both default budgets at or above it, so the
/// search usually needs about four encodes instead of seven.
const START_QUALITY: u8 = 92;

#[derive(Debug)]
pub(crate) struct Fit {
    pub jpeg: Vec<u8>,
    pub quality: u8,
}

#[derive(Debug)]
pub(crate) enum FitError {
    Unreachable { smallest: usize, quality: u8 },
    Encoder(String),
}

/// Encode RGB8 `w` x `h` at `quality` (1..=100).
pub(crate) fn encode(rgb: &[u8], w: u32, h: u32, quality: u8, mode: Mode) -> Result<Vec<u8>, String> {
    if rgb.len() != w as usize * h as usize * 3 {
        return Err(format!("{} bytes of pixels for {w}x{h}", rgb.len()));
    }
    // mozjpeg reports libjpeg's fatal errors by unwinding; turn them into values.
    catch_unwind(AssertUnwindSafe(|| -> Result<Vec<u8>, String> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        if mode == Mode::Baseline {
            c.set_fastest_defaults();
        }
        c.set_size(w as usize, h as usize);
        c.set_quality(f32::from(quality.clamp(1, 100)));
        c.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
        c.set_optimize_coding(true);
        let mut s = c.start_compress(Vec::with_capacity(rgb.len() / 4)).map_err(|e| e.to_string())?;
        s.write_scanlines(rgb).map_err(|e| e.to_string())?;
        s.finish().map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|p| {
        Err(p.downcast_ref::<String>().cloned().unwrap_or_else(|| "encoder failed".into()))
    })
}

/// The highest quality whose encoding of the `size` x `size` RGB8 square is at most
/// `max_bytes`: a binary search over 1..=100 that starts at [`START_QUALITY`] and
/// keeps the best fitting result it has seen (size is not strictly monotonic in
/// quality, so the answer is the highest *probed* quality that fits).
pub(crate) fn fit_budget(rgb: &[u8], size: u32, max_bytes: usize) -> Result<Fit, FitError> {
    search(max_bytes, |q| encode(rgb, size, size, q, MODE))
}

fn search(max_bytes: usize, mut enc: impl FnMut(u8) -> Result<Vec<u8>, String>) -> Result<Fit, FitError> {
    let (mut lo, mut hi) = (1u8, 100u8);
    let mut best: Option<Fit> = None;
    let mut smallest: Option<(usize, u8)> = None;
    let mut first = true;
    while lo <= hi {
        let q = if first { START_QUALITY } else { lo + (hi - lo).div_ceil(2) };
        first = false;
        let jpeg = enc(q).map_err(FitError::Encoder)?;
        if jpeg.len() <= max_bytes {
            lo = q + 1;
            if best.as_ref().is_none_or(|b| q > b.quality) {
                best = Some(Fit { jpeg, quality: q });
            }
        } else {
            if smallest.is_none_or(|(n, _)| jpeg.len() < n) {
                smallest = Some((jpeg.len(), q));
            }
            if q == 1 {
                break;
            }
            hi = q - 1;
        }
    }
    best.ok_or_else(|| {
        let (smallest, quality) = smallest.unwrap_or((0, 1));
        FitError::Unreachable { smallest, quality }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake encoder whose size falls with quality: the search must find the exact
    /// highest fitting quality for every budget, and name q=1 when none fits.
    #[test]
    fn search_finds_highest_fitting_quality() {
        let size_at = |q: u8| 1_000 + usize::from(q) * 100;
        for budget in [1_000usize, 1_099, 1_100, 1_150, 5_000, 10_200, 11_000, 20_000] {
            let got = search(budget, |q| Ok(vec![0; size_at(q)]));
            let want = (1..=100u8).rev().find(|q| size_at(*q) <= budget);
            match (got, want) {
                (Ok(f), Some(q)) => assert_eq!(f.quality, q, "budget {budget}"),
                (Err(FitError::Unreachable { smallest, quality }), None) => {
                    assert_eq!((smallest, quality), (1_100, 1), "budget {budget}");
                }
                (g, w) => panic!("budget {budget}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn encoded_jpeg_has_only_jfif_app_marker() {
        let rgb: Vec<u8> = (0..64 * 64 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let j = encode(&rgb, 64, 64, 90, MODE).expect("encode");
        assert_eq!(&j[..4], &[0xFF, 0xD8, 0xFF, 0xE0]);
        // Walk the header segments up to SOS: APP0 (JFIF) is the only APPn.
        let mut i = 2;
        let mut seen = Vec::new();
        while j[i + 1] != 0xDA {
            assert_eq!(j[i], 0xFF);
            seen.push(j[i + 1]);
            i += 2 + usize::from(u16::from_be_bytes([j[i + 2], j[i + 3]]));
        }
        assert_eq!(seen.iter().filter(|m| (0xE0..=0xEF).contains(*m) || **m == 0xFE).count(), 1, "{seen:02X?}");
    }

    #[test]
    fn wrong_buffer_length_is_an_error() {
        assert!(encode(&[0; 10], 64, 64, 90, MODE).is_err());
    }
}
