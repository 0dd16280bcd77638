//! JPEG encoding at the highest quality that fits a byte budget.
//!
//! Encoder: our own ([`crate::jpegenc`]), byte-identical to mozjpeg (libjpeg-turbo) with
//! its fastest profile: baseline, 4:2:0, optimised Huffman tables, JFIF APP0 only (no
//! EXIF/XMP/ICC is ever written). See the crate docs for the measurements behind the
//! settings. mozjpeg itself (`encode`, test-only) is kept as the tests' reference.

use crate::jpegenc::{Prepared, Probe, Tables};
#[cfg(test)]
use std::panic::{catch_unwind, AssertUnwindSafe};

/// How mozjpeg is driven.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// libjpeg-turbo defaults (Annex K tables), optimised Huffman: fast.
    Baseline,
    /// mozjpeg's defaults: trellis quantisation, progressive, tuned tables: smaller, slower.
    #[allow(dead_code)]
    Trellis,
}

/// The mode [`crate::jpegenc`] reproduces (chosen by measurement, see crate docs).
#[cfg(test)]
pub(crate) const MODE: Mode = Mode::Baseline;

/// Typical shape of a JPEG's size against quality: `ln(size(q) / size(100))` for
/// q = 1..=100 (index q - 1), the mean over 22 measured curves (6 of the bench's
/// 12 MP phone-like photos and 5 scikit-image photos, each at 648 and at 96; standard
/// libjpeg tables, 4:2:0, optimised Huffman). The search scales this shape to each
/// image's own probes to guess the next quality; it only saves encodes, the answer
/// still comes from real encodes.
#[rustfmt::skip]
const SHAPE: [f32; 100] = [
    -3.527, -3.526, -3.452, -3.332, -3.212, -3.106, -3.012, -2.931, -2.855, -2.787, -2.726,
    -2.674, -2.619, -2.580, -2.535, -2.494, -2.456, -2.419, -2.390, -2.361, -2.328, -2.300,
    -2.273, -2.247, -2.225, -2.202, -2.179, -2.154, -2.136, -2.115, -2.096, -2.078, -2.056,
    -2.044, -2.022, -2.004, -1.994, -1.974, -1.960, -1.953, -1.931, -1.921, -1.910, -1.891,
    -1.881, -1.864, -1.857, -1.844, -1.826, -1.823, -1.819, -1.799, -1.785, -1.778, -1.766,
    -1.754, -1.738, -1.722, -1.713, -1.702, -1.684, -1.672, -1.654, -1.644, -1.625, -1.611,
    -1.597, -1.576, -1.560, -1.540, -1.520, -1.506, -1.483, -1.456, -1.450, -1.427, -1.396,
    -1.369, -1.351, -1.323, -1.292, -1.266, -1.229, -1.201, -1.173, -1.129, -1.101, -1.052,
    -1.017, -0.960, -0.914, -0.870, -0.796, -0.716, -0.630, -0.529, -0.421, -0.305, -0.116,
    0.000,
];

fn shape(q: u8) -> f64 {
    f64::from(SHAPE[usize::from(q.clamp(1, 100)) - 1])
}

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

/// Encode RGB8 `w` x `h` at `quality` (1..=100) with mozjpeg.
#[cfg(test)]
pub(crate) fn encode(
    rgb: &[u8],
    w: u32,
    h: u32,
    quality: u8,
    mode: Mode,
) -> Result<Vec<u8>, String> {
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
        let mut s = c
            .start_compress(Vec::with_capacity(rgb.len() / 4))
            .map_err(|e| e.to_string())?;
        s.write_scanlines(rgb).map_err(|e| e.to_string())?;
        s.finish().map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|p| {
        Err(p
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "encoder failed".into()))
    })
}

/// The highest quality whose encoding of the `size` x `size` RGB8 square is at most
/// `max_bytes`, then finer tables up to the next whole quality where they still fit.
///
/// The picture is transformed once ([`Prepared`]); the [`search`] runs on each quality's
/// exact size less its stuffed bytes (cheap: a quantisation and a symbol count), and
/// [`Chooser::refine`] fills the gap to the next whole quality in tenths of a percent of table
/// scale. The stuffed bytes (a 0x00 after each 0xFF of entropy-coded data, about one
/// byte in 256) are only known once written, so the choice aims at `max_bytes` less
/// 1/257 of it; the chosen tables are written and checked against the budget for real,
/// and a write that still overshoots lowers the aim by the stuffing it showed (at most
/// three rounds, then whole qualities downwards). Every output is at most `max_bytes`.
pub(crate) fn fit_budget(rgb: &[u8], size: u32, max_bytes: usize) -> Result<Fit, FitError> {
    if size == 0 || rgb.len() != size as usize * size as usize * 3 {
        return Err(FitError::Encoder(format!(
            "{} bytes of pixels for {size}x{size}",
            rgb.len()
        )));
    }
    let mut c = Chooser {
        p: Prepared::new(rgb, size, size),
        probes: Vec::new(),
    };
    let mut aim = max_bytes - max_bytes / 257;
    let first = c.first_guess(aim);
    let mut q = 100;
    for _ in 0..3 {
        let reachable;
        (q, reachable) =
            match search_from(aim, first, |q| Ok(c.bound(Tables::quality_per_mille(q)))) {
                Ok(q) => (q, true),
                Err(FitError::Unreachable { quality, .. }) => (quality, false),
                Err(e) => return Err(e),
            };
        let scale = if reachable {
            c.refine(q, aim)
        } else {
            Tables::quality_per_mille(q)
        };
        let jpeg = c.write(scale);
        if jpeg.len() <= max_bytes {
            return Ok(Fit { jpeg, quality: q });
        }
        if !reachable {
            return Err(FitError::Unreachable {
                smallest: jpeg.len(),
                quality: q,
            });
        }
        let stuffed = jpeg.len() - c.bound(scale);
        aim = max_bytes.saturating_sub(stuffed).min(aim.saturating_sub(1));
    }
    loop {
        q = q.saturating_sub(1).max(1);
        let jpeg = c.write(Tables::quality_per_mille(q));
        if jpeg.len() <= max_bytes {
            return Ok(Fit { jpeg, quality: q });
        }
        if q == 1 {
            return Err(FitError::Unreachable {
                smallest: jpeg.len(),
                quality: 1,
            });
        }
    }
}

/// At most this many probes between two whole qualities (see [`Chooser::refine`]),
/// [`REFINE_HIGH`] from quality [`HIGH`] up, where most quantisers are already 1..3 so the
/// tables between two qualities are few and far apart, and the picture is visually
/// lossless either way (at the default 648 budget phone photos land there: the cap
/// took 4 bench photos from 1,936.7 M to 1,831.0 M instructions)...
const REFINE: usize = 6;
const REFINE_HIGH: usize = 2;
const HIGH: u8 = 95;
/// ... and none once the fitting size is within 1/CLOSE of the aim.
const CLOSE: usize = 250;

/// The prepared picture and every probe made of it, by table scale (tenths of a
/// percent): a probe is counted once, and the one chosen is written without counting
/// its symbols again.
struct Chooser {
    p: Prepared,
    probes: Vec<(u32, Probe)>,
}

/// Pictures of at least this many MCU rows get a first guess from a sample
/// ([`Chooser::first_guess`]); smaller ones are cheap to probe at quality 100.
const SAMPLE_MIN_ROWS: usize = 16;
/// The sample's share: every this-many-th row of MCUs.
const SAMPLE_STEP: usize = 8;

impl Chooser {
    /// The quality to probe first for `aim`: 100 when a sample of the picture at 100
    /// ([`Prepared::estimate`]) says it may fit, else what [`predict`] makes of that
    /// estimate. A q100 probe is the dearest one (the most nonzero coefficients) and
    /// at the 648 budget phone photos never fit there; the search stays exact either
    /// way (it decides on real probes only).
    fn first_guess(&self, aim: usize) -> u8 {
        if self.p.mcu_rows() < SAMPLE_MIN_ROWS {
            return 100;
        }
        let est = self.p.estimate(
            &Tables::per_mille(Tables::quality_per_mille(100)),
            SAMPLE_STEP,
        );
        if est <= aim {
            100
        } else {
            predict(&[(100, est)], aim, 1, 99)
        }
    }

    /// Where the probe of `scale` is kept, counting it first if it is new.
    fn probe(&mut self, scale: u32) -> usize {
        match self.probes.iter().position(|(s, _)| *s == scale) {
            Some(i) => i,
            None => {
                self.probes
                    .push((scale, self.p.probe(&Tables::per_mille(scale))));
                self.probes.len() - 1
            }
        }
    }

    fn bound(&mut self, scale: u32) -> usize {
        let i = self.probe(scale);
        self.probes[i].1.size_without_stuffing
    }

    fn write(&mut self, scale: u32) -> Vec<u8> {
        let i = self.probe(scale);
        self.p.write(&self.probes[i].1)
    }

    /// The finest scale between whole qualities `q` (fits `aim`) and `q + 1` (does not)
    /// found in [`REFINE`] probes, each aimed by interpolating the sizes either side
    /// (a little short of `aim`, so that most guesses fit and narrow the gap from below).
    fn refine(&mut self, q: u8, aim: usize) -> u32 {
        let mut fit = Tables::quality_per_mille(q);
        if q >= 100 {
            return fit;
        }
        let mut fail = Tables::quality_per_mille(q + 1);
        let (mut fit_n, mut fail_n) = (self.bound(fit), self.bound(fail));
        let probes = if q >= HIGH { REFINE_HIGH } else { REFINE };
        for _ in 0..probes {
            if fit <= fail + 1 || fail_n <= aim || fit_n > aim || fit_n >= aim - aim / CLOSE {
                break;
            }
            // Aim the guess an eighth of the gap under `aim`: sizes step unevenly with
            // the scale (neighbouring scales often round to the same tables), so a guess
            // aimed at `aim` itself tends to land just above it and waste the probe.
            let target = aim.saturating_sub((fail_n - fit_n) / 8).max(fit_n);
            let t = (fail_n - target) as f64 / (fail_n - fit_n).max(1) as f64;
            let step = (t * f64::from(fit - fail)).ceil() as u32;
            let s = (fail + step).clamp(fail + 1, fit - 1);
            let n = self.bound(s);
            if n <= aim {
                (fit, fit_n) = (s, n);
            } else {
                (fail, fail_n) = (s, n);
            }
        }
        fit
    }
}

/// Finds the highest quality in 1..=100 whose output fits `max_bytes`.
///
/// Every probe of a 648 px square costs a quantisation and a symbol count, so the search
/// is frugal. Quality 100
/// first (most portraits fit the default budgets there: one encode). Then each probe is
/// the highest quality that a model predicts to fit: [`SHAPE`] scaled to this image,
/// anchored at the nearest probe below the budget and stretched to pass through the
/// nearest one above it (or, before any probe fits, through the two lowest failing
/// ones). When the last two probes fell on the same side of the budget the model is
/// off, and the next probe bisects the bracket instead, so the worst case stays near
/// 2 x log2(100) encodes. At the default 648 budget a phone photo typically needs
/// three encodes (100, the guess, the guess + 1). It stops when the bracket
/// `(highest fitting, lowest failing)` has no untested quality between its ends, so the
/// answer is the highest quality that fits among those next to a failing one (size is
/// not strictly monotonic in quality; the search trusts the bracket).
#[cfg(test)]
fn search(
    max_bytes: usize,
    size_at: impl FnMut(u8) -> Result<usize, String>,
) -> Result<u8, FitError> {
    search_from(max_bytes, 100, size_at)
}

/// [`search`] with `first` as the first probe instead of quality 100.
fn search_from(
    max_bytes: usize,
    first: u8,
    mut size_at: impl FnMut(u8) -> Result<usize, String>,
) -> Result<u8, FitError> {
    let mut fit: Option<u8> = None; // highest quality known to fit
    let mut fail: Option<u8> = None; // lowest quality known not to fit
    let mut probes: Vec<(u8, usize)> = Vec::new(); // (quality, bytes), in probe order
    let mut smallest: Option<(usize, u8)> = None;
    loop {
        let lo = fit.map_or(1, |f| f + 1); // lowest untested candidate
        let hi = fail.map_or(100, |q| q - 1); // highest untested candidate
        if fail == Some(1) || lo > hi {
            break;
        }
        let side = |i: usize| probes[i].1 <= max_bytes;
        let n = probes.len();
        let q = if n == 0 {
            first.clamp(1, 100)
        } else if n >= 3 && side(n - 1) == side(n - 2) {
            lo + (hi - lo).div_ceil(2)
        } else {
            predict(&probes, max_bytes, lo, hi)
        };
        let n = size_at(q).map_err(FitError::Encoder)?;
        probes.push((q, n));
        if n <= max_bytes {
            fit = Some(q);
            if q == 100 {
                break;
            }
        } else {
            if smallest.is_none_or(|(s, _)| n < s) {
                smallest = Some((n, q));
            }
            fail = Some(q);
        }
    }
    fit.ok_or_else(|| {
        let (smallest, quality) = smallest.unwrap_or((0, 1));
        FitError::Unreachable { smallest, quality }
    })
}

/// The highest quality in `lo..=hi` that [`SHAPE`], fitted to `probes`, predicts to fit
/// `budget` (`lo` when none is predicted to).
fn predict(probes: &[(u8, usize)], budget: usize, lo: u8, hi: u8) -> u8 {
    let below = probes
        .iter()
        .filter(|p| p.1 <= budget)
        .max_by_key(|p| p.0)
        .copied();
    let mut above: Vec<(u8, usize)> = probes.iter().filter(|p| p.1 > budget).copied().collect();
    above.sort_unstable_by_key(|p| p.0);
    let slope = |(qa, na): (u8, usize), (qb, nb): (u8, usize)| {
        let d = shape(qb) - shape(qa);
        if d.abs() > 1e-9 {
            ((nb.max(1) as f64).ln() - (na.max(1) as f64).ln()) / d
        } else {
            1.0
        }
    };
    let (anchor, a) = match (below, above.first(), above.get(1)) {
        (Some(b), Some(&f), _) => (b, slope(b, f)),
        (None, Some(&f1), Some(&f2)) => (f1, slope(f1, f2)),
        (None, Some(&f), None) => (f, 1.0),
        (Some(b), None, _) => (b, 1.0),
        (None, None, _) => return lo + (hi - lo).div_ceil(2),
    };
    let a = a.max(0.05);
    let target = (budget.max(1) as f64).ln() - (anchor.1.max(1) as f64).ln();
    (lo..=hi)
        .rev()
        .find(|&q| a * (shape(q) - shape(anchor.0)) <= target + 1e-12)
        .unwrap_or(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`search`] on a fake encoder of sizes `size_at`: what it found, the highest quality
    /// that really fits (by trying all), and how many encodes it asked for.
    fn run_search(
        budget: usize,
        size_at: impl Fn(u8) -> usize,
    ) -> (Result<u8, FitError>, Option<u8>, usize) {
        let mut probes = 0;
        let got = search(budget, |q| {
            probes += 1;
            Ok(size_at(q))
        });
        let want = (1..=100u8).rev().find(|q| size_at(*q) <= budget);
        (got, want, probes)
    }

    /// A fake encoder whose size falls with quality: the search must find the exact
    /// highest fitting quality for every budget, and name q=1 when none fits.
    #[test]
    fn search_finds_highest_fitting_quality() {
        let size_at = |q: u8| 1_000 + usize::from(q) * 100;
        for budget in [
            1_000usize, 1_099, 1_100, 1_150, 5_000, 10_200, 11_000, 20_000,
        ] {
            let (got, want, probes) = run_search(budget, size_at);
            assert!(probes <= 14, "budget {budget}: {probes} encodes");
            match (got, want) {
                (Ok(f), Some(q)) => assert_eq!(f, q, "budget {budget}"),
                (Err(FitError::Unreachable { smallest, quality }), None) => {
                    assert_eq!((smallest, quality), (1_100, 1), "budget {budget}");
                }
                (g, w) => panic!("budget {budget}: got {g:?}, want {w:?}"),
            }
        }
    }

    /// A curve unlike libjpeg's (size exponential in quality): still exact, and within
    /// the bisection safeguard's bound.
    #[test]
    fn search_is_exact_on_exponential_curves() {
        let size_at = |q: u8| (2_000.0 * (f64::from(q) / 22.0).exp()) as usize;
        for budget in [3_000usize, 10_240, 50_000, 100_000, 150_000, 200_000] {
            let (got, want, probes) = run_search(budget, size_at);
            assert_eq!(
                got.expect("reachable"),
                want.expect("some"),
                "budget {budget}"
            );
            assert!(probes <= 14, "budget {budget}: {probes} encodes");
        }
    }

    /// Curves of libjpeg's shape (steeper or flatter than the typical one, as images
    /// differ): few encodes.
    #[test]
    fn search_is_frugal_on_jpeg_like_curves() {
        for stretch in [0.7, 1.0, 1.4] {
            for top in [12_000.0, 300_000.0] {
                let size_at = |q: u8| (top * (stretch * shape(q)).exp()) as usize;
                for frac in [0.1, 0.2, 0.35, 0.5, 0.8, 0.95] {
                    let budget = (top * frac) as usize;
                    let (got, want, probes) = run_search(budget, size_at);
                    assert_eq!(
                        got.expect("reachable"),
                        want.expect("some"),
                        "stretch {stretch}, budget {budget}"
                    );
                    assert!(
                        probes <= 5,
                        "stretch {stretch}, budget {budget}: {probes} encodes"
                    );
                }
            }
        }
    }

    /// On a real photo, the budget search lands within 1 % under every budget between
    /// the sizes of quality 5 and quality 95 (the refinement between whole qualities
    /// fills the gap), within 10 % up to quality 99, and never over it.
    #[test]
    fn fit_budget_fills_the_budget_on_a_photo() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/real/astronaut.jpg"
        );
        let img = image::open(path).expect("astronaut fixture").to_rgb8();
        let size = img.width().min(img.height());
        let square = image::imageops::crop_imm(&img, 0, 0, size, size).to_image();
        let rgb = square.as_raw();
        let p = Prepared::new(rgb, size, size);
        let lo = p.probe(&Tables::quality(5)).size_without_stuffing;
        let hi = p.probe(&Tables::quality(99)).size_without_stuffing;
        let mut worst = 1.0f64;
        for i in 0..=24 {
            let budget = lo + (hi - lo) * i / 24;
            let fit = fit_budget(rgb, size, budget).expect("fits");
            assert!(fit.jpeg.len() <= budget, "{} > {budget}", fit.jpeg.len());
            let filled = fit.jpeg.len() as f64 / budget as f64;
            // From q95 most quantisers are 1..3, so neighbouring tables are far apart,
            // and the refinement spends only REFINE_HIGH probes there.
            let floor = if fit.quality < HIGH { 0.99 } else { 0.90 };
            assert!(
                filled >= floor,
                "budget {budget}: {} bytes at q{} ({filled:.4})",
                fit.jpeg.len(),
                fit.quality
            );
            worst = worst.min(filled);
        }
        eprintln!("worst fill {worst:.4} over budgets {lo}..{hi}");
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
        assert_eq!(
            seen.iter()
                .filter(|m| (0xE0..=0xEF).contains(*m) || **m == 0xFE)
                .count(),
            1,
            "{seen:02X?}"
        );
    }

    #[test]
    fn wrong_buffer_length_is_an_error() {
        assert!(encode(&[0; 10], 64, 64, 90, MODE).is_err());
    }
}
