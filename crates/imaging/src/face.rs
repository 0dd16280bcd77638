//! Face detection for the `face` crop: a small upright grey preview in, face boxes out.
//!
//! The detector is `photobulk-seeta` (`crates/seeta`: rustface 0.1.7, a Rust port of
//! SeetaFace Detection's funnel-structured frontal cascade, BSD-2, vendored and made
//! several times cheaper with identical results), with its model file compiled into this
//! crate (`model/seeta_fd_frontal_v1.0.bin`, copied unchanged from rustface, licence
//! beside it). The model is parsed from those bytes once per process, and each thread
//! keeps its detector for its next photos: no file is read at run time, and one conversion still uses
//! one thread (callers own parallelism).
//!
//! Detection runs on a preview whose shorter side is [`PREVIEW_SIDE`] pixels (the longer
//! at most twice that), made from pixels the pipeline decoded anyway (see `render` in
//! `lib.rs`), turned upright and converted to luma. The detector's smallest face is 40
//! preview pixels in effect (its window is 40 px and it never enlarges the preview), so a
//! face must be at least ~1/7 of the picture's shorter side to be found; faces under [`TRUSTED_FACE`] preview pixels are reported with
//! [`Warning::SmallFace`](crate::Warning::SmallFace).

use crate::decode::Decoded;
use crate::{orient, FaceBox, ImagingError};
use fast_image_resize as fr;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

/// Shorter side of the detection preview, in pixels (the longer one is at most twice it).
pub const PREVIEW_SIDE: u32 = 288;

/// Smallest face (in preview pixels) the cascade finds: its window is 40 px, and the
/// pyramid never enlarges the preview (a smaller `min_face` buys nothing but time).
pub const MIN_FACE: u32 = 40;

/// Faces smaller than this in the preview (pixels) are used, with a warning: the
/// cascade's false positives are mostly this small.
pub const TRUSTED_FACE: u32 = 48;

/// Cascade score threshold (SeetaFace suggests 0.95, 2.8 or 4.5); measured on
/// `../shared/faces` and the bench sources, see the crate docs.
pub const SCORE_THRESHOLD: f64 = 2.0;

static MODEL: &[u8] = include_bytes!("../model/seeta_fd_frontal_v1.0.bin");

/// Detector runs so far on the calling thread (tests use it to show that hostile input
/// fails before any detector work).
#[doc(hidden)]
pub fn detector_runs() -> u64 {
    RUNS.with(Cell::get)
}

/// The detector's knobs. [`Settings::default`] is what the `face` crop uses; others are
/// for measuring (`examples/faces.rs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Longer side of the preview (pixels).
    pub preview_side: u32,
    /// Smallest face searched for, in preview pixels (>= 20).
    pub min_face: u32,
    pub score_threshold: f64,
    /// Ratio between pyramid levels (0.1..0.99).
    pub pyramid_scale: f32,
    /// Sliding-window step in preview pixels.
    pub step: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            preview_side: PREVIEW_SIDE,
            min_face: MIN_FACE,
            score_threshold: SCORE_THRESHOLD,
            pyramid_scale: 0.75,
            step: 6,
        }
    }
}

type Cached = Option<(Settings, Box<dyn photobulk_seeta::Detector>)>;

thread_local! {
    static DETECTOR: RefCell<Cached> = const { RefCell::new(None) };
    static RUNS: Cell<u64> = const { Cell::new(0) };
}

/// An upright picture of the whole source, [`PREVIEW_SIDE`] on its shorter side (at most
/// twice that on the longer; never enlarged): RGB (the
/// contact sheet's thumbnail) and luma (what the detector sees).
#[derive(Debug, Clone)]
pub struct Preview {
    /// Row-major RGB8, `width * height * 3` bytes.
    pub rgb: Vec<u8>,
    /// Row-major luma, `width * height` bytes.
    pub gray: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Upright full-resolution source pixels per preview pixel, across and down.
    pub scale_x: f64,
    pub scale_y: f64,
}

fn internal(e: impl std::fmt::Display) -> ImagingError {
    ImagingError::Internal(format!("face preview: {e}"))
}

/// The preview of a decoded image (the decode must cover the whole picture).
pub(crate) fn preview(d: &Decoded) -> Result<Preview, ImagingError> {
    preview_sized(d, PREVIEW_SIDE)
}

/// The preview at most `side` pixels a side.
pub(crate) fn preview_sized(d: &Decoded, side: u32) -> Result<Preview, ImagingError> {
    let g = d.geometry;
    let (uw, uh) = orient::upright_dims(g.width, g.height, g.orientation);
    // Stored (decoded) size of the preview, before it is turned upright.
    let (bw, bh) = (d.buf_width, d.rows);
    let side = f64::from(side.max(20));
    let (short, long) = (f64::from(bw.min(bh)), f64::from(bw.max(bh)));
    let k = (side / short).min(2.0 * side / long).min(1.0);
    let pw = ((f64::from(bw) * k).round() as u32).max(1);
    let ph = ((f64::from(bh) * k).round() as u32).max(1);
    let rgb = if (pw, ph) == (bw, bh) {
        d.rgb.clone()
    } else {
        let src =
            fr::images::ImageRef::new(bw, bh, &d.rgb, fr::PixelType::U8x3).map_err(internal)?;
        let mut dst = fr::images::Image::new(pw, ph, fr::PixelType::U8x3);
        let opts =
            fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Box));
        fr::Resizer::new()
            .resize(&src, &mut dst, &opts)
            .map_err(internal)?;
        dst.into_vec()
    };
    let (rgb, w, h) =
        orient::apply(g.orientation, rgb, pw, ph).ok_or_else(|| internal("orientation"))?;
    let gray = rgb
        .chunks_exact(3)
        .map(|p| {
            ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2]) + 128) >> 8) as u8
        })
        .collect();
    Ok(Preview {
        rgb,
        gray,
        width: w,
        height: h,
        scale_x: f64::from(uw) / f64::from(w),
        scale_y: f64::from(uh) / f64::from(h),
    })
}

/// A face found in a preview, in preview pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Found {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub score: f64,
}

/// The model, parsed once per process and shared by the threads' detectors.
fn model() -> Result<Arc<photobulk_seeta::Model>, ImagingError> {
    static PARSED: OnceLock<Result<Arc<photobulk_seeta::Model>, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            photobulk_seeta::parse_model(MODEL)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| ImagingError::Internal(format!("face model: {e}")))
}

fn new_detector(s: &Settings) -> Result<Box<dyn photobulk_seeta::Detector>, ImagingError> {
    let mut d = photobulk_seeta::create_detector_with_shared_model(model()?);
    d.set_min_face_size(s.min_face.max(20));
    d.set_score_thresh(if s.score_threshold > 0.0 {
        s.score_threshold
    } else {
        SCORE_THRESHOLD
    });
    d.set_pyramid_scale_factor(s.pyramid_scale.clamp(0.1, 0.99));
    d.set_slide_window_step(s.step.max(1), s.step.max(1));
    Ok(d)
}

/// Faces in `p` (preview pixels), best score first. A preview under the cascade's
/// window has none. The detector's own panics (it has asserts on its input) become
/// an internal error rather than ending the process.
pub(crate) fn detect(p: &Preview) -> Result<Vec<Found>, ImagingError> {
    detect_with(p, &Settings::default())
}

/// [`detect`] with other settings.
pub(crate) fn detect_with(p: &Preview, settings: &Settings) -> Result<Vec<Found>, ImagingError> {
    if p.width < 20 || p.height < 20 || p.gray.len() != (p.width * p.height) as usize {
        return Ok(Vec::new());
    }
    RUNS.with(|r| r.set(r.get() + 1));
    DETECTOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|(s, _)| s) != Some(settings) {
            *slot = Some((*settings, new_detector(settings)?));
        }
        let Some((_, det)) = slot.as_mut() else {
            return Err(ImagingError::Internal("face detector missing".into()));
        };
        let data = photobulk_seeta::ImageData::new(&p.gray, p.width, p.height);
        let faces = catch_unwind(AssertUnwindSafe(|| det.detect(&data)));
        let faces = match faces {
            Ok(f) => f,
            Err(_) => {
                // The detector's state may be half-updated: build a fresh one next time.
                *slot = None;
                return Err(ImagingError::Internal("face detector failed".into()));
            }
        };
        let mut out: Vec<Found> = faces
            .iter()
            .map(|f| {
                let b = f.bbox();
                Found {
                    x: f64::from(b.x()),
                    y: f64::from(b.y()),
                    width: f64::from(b.width()),
                    height: f64::from(b.height()),
                    score: f.score(),
                }
            })
            .filter(|f| f.width > 0.0 && f.height > 0.0)
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(out)
    })
}

/// A found face in upright full-resolution source pixels, clipped to the image.
pub(crate) fn to_source(f: &Found, p: &Preview, width: u32, height: u32) -> FaceBox {
    let (w, h) = (f64::from(width), f64::from(height));
    let x0 = (f.x * p.scale_x).clamp(0.0, w - 1.0);
    let y0 = (f.y * p.scale_y).clamp(0.0, h - 1.0);
    let x1 = ((f.x + f.width) * p.scale_x).clamp(x0 + 1.0, w);
    let y1 = ((f.y + f.height) * p.scale_y).clamp(y0 + 1.0, h);
    FaceBox {
        x: x0.round() as u32,
        y: y0.round() as u32,
        width: ((x1 - x0).round() as u32).max(1),
        height: ((y1 - y0).round() as u32).max(1),
        score: (f.score * 100.0).round() / 100.0,
    }
}
