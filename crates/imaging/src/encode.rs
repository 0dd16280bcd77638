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

/// Second probe when quality 100 does not fit: a typical photo at its budget lands
/// in the low 90s; from then on the search interpolates.
const SECOND_QUALITY: u8 = 90;

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
/// `max_bytes`. See [`search`].
pub(crate) fn fit_budget(rgb: &[u8], size: u32, max_bytes: usize) -> Result<Fit, FitError> {
    search(max_bytes, |q| encode(rgb, size, size, q, MODE))
}

/// Finds the highest quality in 1..=100 whose output fits `max_bytes`.
///
/// Every encode of a 648 px square costs ~4 ms, so the search is frugal: quality 100
/// first (most portraits fit the default budgets there: one encode), then 90, then it
/// narrows the bracket `(highest fitting, lowest failing)` by interpolating log(size)
/// between the bracket's ends, alternating with plain bisection so the worst case stays
/// about 2 x log2(100) encodes. It stops when the bracket ends are adjacent, so the
/// answer is the highest quality that fits among those next to a failing one (size is
/// not strictly monotonic in quality; the search trusts the bracket).
fn search(max_bytes: usize, mut enc: impl FnMut(u8) -> Result<Vec<u8>, String>) -> Result<Fit, FitError> {
    let budget = max_bytes as f64;
    let mut fit: Option<Fit> = None; // highest quality known to fit
    let mut fail: Option<(u8, usize)> = None; // lowest quality known not to fit
    let mut fail2: Option<(u8, usize)> = None; // the failing probe before that
    let mut smallest: Option<(usize, u8)> = None;
    let mut step = 0u32;
    loop {
        let lo = fit.as_ref().map_or(1, |f| f.quality + 1); // lowest untested candidate
        let hi = fail.map_or(100, |(q, _)| q - 1); // highest untested candidate
        if fail.is_some_and(|(q, _)| q == 1) || lo > hi {
            break;
        }
        let q = match step {
            0 => 100,
            1 => SECOND_QUALITY.clamp(lo, hi),
            _ if step % 2 == 0 => {
                // Interpolate in log(size) between the two nearest known points.
                let (qa, sa, qb, sb) = match (&fit, fail, fail2) {
                    (Some(f), Some((qf, sf)), _) => (f.quality, f.jpeg.len(), qf, sf),
                    (None, Some((qf, sf)), Some((qf2, sf2))) => (qf, sf, qf2, sf2),
                    _ => (lo, 0, hi, 0),
                };
                let (la, lb) = ((sa.max(1) as f64).ln(), (sb.max(1) as f64).ln());
                if sa > 0 && sb > 0 && (lb - la).abs() > 1e-9 {
                    let t = (budget.ln() - la) / (lb - la);
                    let est = f64::from(qa) + t * (f64::from(qb) - f64::from(qa));
                    (est.floor().clamp(f64::from(lo), f64::from(hi))) as u8
                } else {
                    lo + (hi - lo).div_ceil(2)
                }
            }
            _ => lo + (hi - lo).div_ceil(2),
        };
        step += 1;
        let jpeg = enc(q).map_err(FitError::Encoder)?;
        let n = jpeg.len();
        if n <= max_bytes {
            fit = Some(Fit { jpeg, quality: q });
            if q == 100 {
                break;
            }
        } else {
            if smallest.is_none_or(|(s, _)| n < s) {
                smallest = Some((n, q));
            }
            fail2 = fail;
            fail = Some((q, n));
        }
    }
    fit.ok_or_else(|| {
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
            let mut probes = 0;
            let got = search(budget, |q| {
                probes += 1;
                Ok(vec![0; size_at(q)])
            });
            assert!(probes <= 14, "budget {budget}: {probes} encodes");
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

    /// Realistic curve (size roughly exponential in quality): few encodes.
    #[test]
    fn search_is_frugal_on_jpeg_like_curves() {
        let size_at = |q: u8| (2_000.0 * (f64::from(q) / 22.0).exp()) as usize;
        for budget in [3_000usize, 10_240, 50_000, 100_000, 150_000, 200_000] {
            let mut probes = 0;
            let got = search(budget, |q| {
                probes += 1;
                Ok(vec![0; size_at(q)])
            })
            .expect("reachable");
            let want = (1..=100u8).rev().find(|q| size_at(*q) <= budget).expect("some");
            assert_eq!(got.quality, want, "budget {budget}");
            assert!(probes <= 6, "budget {budget}: {probes} encodes");
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
