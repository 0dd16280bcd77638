//! Choosing the square: one trait, one implementation per [`Crop`] value.
//!
//! The pipeline asks a [`CropStrategy`] for a [`Framing`] (a [`CropBox`] in
//! upright-source coordinates, the face it was framed on, warnings) and never looks at
//! which strategy it was. Geometric strategies need only the upright size; [`FaceCrop`]
//! says so through [`CropStrategy::wants_preview`] and is then handed a small upright
//! grey [`Preview`] of the picture (see `face.rs`). Callers keep passing `Crop` values
//! through untouched.

use crate::face::{self, Preview};
use crate::{Crop, CropBox, FaceBox, ImagingError, Warning};

/// Picks the square region of an upright `width` x `height` image to keep.
pub trait CropStrategy: std::fmt::Debug {
    /// A square box (`width == height`). It lies inside the image, except for
    /// strategies that pad, whose box may extend past the edges (filled with the
    /// background colour). For strategies that look at the picture, the box used
    /// when there is nothing to look at.
    fn crop_box(&self, width: u32, height: u32) -> CropBox;

    /// Whether [`CropStrategy::frame`] wants a [`Preview`] of the picture.
    fn wants_preview(&self) -> bool {
        false
    }

    /// The framing of an upright `width` x `height` image; `preview` is given when
    /// [`CropStrategy::wants_preview`] says so.
    fn frame(
        &self,
        width: u32,
        height: u32,
        preview: Option<&Preview>,
    ) -> Result<Framing, ImagingError> {
        let _ = preview;
        Ok(Framing {
            crop: self.crop_box(width, height),
            face: None,
            warnings: Vec::new(),
        })
    }
}

/// What a strategy chose, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Framing {
    pub crop: CropBox,
    /// The face the square was framed on (upright source pixels).
    pub face: Option<FaceBox>,
    /// [`Warning::NoFace`], [`Warning::SeveralFaces`], [`Warning::SmallFace`].
    pub warnings: Vec<Warning>,
}

/// Centre square: what Exchange does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Center;

/// Portrait sources keep the head: the square starts a sixth of the spare height from
/// the top (so the top third of the picture is kept, not its middle). Landscape
/// sources are centred horizontally, like [`Center`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Top;

/// Letterbox: a square as large as the longer side, the image centred inside it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pad;

impl CropStrategy for Center {
    fn crop_box(&self, w: u32, h: u32) -> CropBox {
        let s = w.min(h);
        CropBox {
            x: i64::from((w - s) / 2),
            y: i64::from((h - s) / 2),
            width: s,
            height: s,
        }
    }
}

impl CropStrategy for Top {
    fn crop_box(&self, w: u32, h: u32) -> CropBox {
        if h <= w {
            return Center.crop_box(w, h);
        }
        let spare = h - w;
        let y = ((f64::from(spare) / 6.0).round() as u32).min(spare);
        CropBox {
            x: 0,
            y: i64::from(y),
            width: w,
            height: w,
        }
    }
}

impl CropStrategy for Pad {
    fn crop_box(&self, w: u32, h: u32) -> CropBox {
        let s = w.max(h);
        CropBox {
            x: -i64::from((s - w) / 2),
            y: -i64::from((s - h) / 2),
            width: s,
            height: s,
        }
    }
}

/// Head and shoulders, framed like an ID photo: the main face's height is
/// [`FACE_SHARE`] of the square's side, its centre [`FACE_CENTRE_DOWN`] of the side from
/// the top and centred across; the square stays inside the image (it shrinks rather
/// than pads). No face: [`Top`]'s square (which centres landscapes), with
/// [`Warning::NoFace`].
#[derive(Debug, Clone, Copy)]
pub struct FaceCrop;

/// Face height as a share of the square's side (ID-photo rules ask 40-50 %... of the
/// head; the detector's box covers brows to chin, a little less than the head).
pub const FACE_SHARE: f64 = 0.45;

/// Where the face's centre sits, as a share of the side from the top.
pub const FACE_CENTRE_DOWN: f64 = 0.40;

/// Faces at least this share of the largest one's height count as "as large"; among
/// them the one nearest the picture's centre is the main face.
const AS_LARGE: f64 = 0.9;

impl CropStrategy for FaceCrop {
    fn crop_box(&self, w: u32, h: u32) -> CropBox {
        Top.crop_box(w, h)
    }

    fn wants_preview(&self) -> bool {
        true
    }

    fn frame(&self, w: u32, h: u32, preview: Option<&Preview>) -> Result<Framing, ImagingError> {
        let no_face = || Framing {
            crop: Top.crop_box(w, h),
            face: None,
            warnings: vec![Warning::NoFace],
        };
        let Some(p) = preview else {
            return Ok(no_face());
        };
        let found = face::detect(p)?;
        if found.is_empty() {
            return Ok(no_face());
        }
        let boxes: Vec<FaceBox> = found.iter().map(|f| face::to_source(f, p, w, h)).collect();
        let i = main_face(&boxes, w, h);
        let mut warnings = Vec::new();
        if boxes.len() > 1 {
            warnings.push(Warning::SeveralFaces {
                count: u32::try_from(boxes.len()).unwrap_or(u32::MAX),
            });
        }
        if found[i].height < f64::from(face::TRUSTED_FACE) {
            warnings.push(Warning::SmallFace {
                height: boxes[i].height,
            });
        }
        Ok(Framing {
            crop: frame_face(w, h, &boxes[i]),
            face: Some(boxes[i]),
            warnings,
        })
    }
}

/// Index of the main face: the largest; among faces nearly as large ([`AS_LARGE`]), the
/// one nearest the centre. `faces` must not be empty.
pub(crate) fn main_face(faces: &[FaceBox], w: u32, h: u32) -> usize {
    let largest = faces.iter().map(|f| f.height).max().unwrap_or(0);
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let dist = |f: &FaceBox| {
        let fx = f64::from(f.x) + f64::from(f.width) / 2.0;
        let fy = f64::from(f.y) + f64::from(f.height) / 2.0;
        (fx - cx).powi(2) + (fy - cy).powi(2)
    };
    faces
        .iter()
        .enumerate()
        .filter(|(_, f)| f64::from(f.height) >= AS_LARGE * f64::from(largest))
        .min_by(|(_, a), (_, b)| dist(a).total_cmp(&dist(b)))
        .map_or(0, |(i, _)| i)
}

/// The square for face `f` of an upright `w` x `h` image (see [`FaceCrop`]).
pub(crate) fn frame_face(w: u32, h: u32, f: &FaceBox) -> CropBox {
    let min = w.min(h).max(1);
    let face = f64::from(f.height.max(f.width));
    let side = ((face / FACE_SHARE).round() as u32).clamp(1, min);
    let s = f64::from(side);
    let cx = f64::from(f.x) + f64::from(f.width) / 2.0;
    let cy = f64::from(f.y) + f64::from(f.height) / 2.0;
    let x = (cx - s / 2.0).round().clamp(0.0, f64::from(w - side));
    let y = (cy - FACE_CENTRE_DOWN * s)
        .round()
        .clamp(0.0, f64::from(h - side));
    CropBox {
        x: x as i64,
        y: y as i64,
        width: side,
        height: side,
    }
}

/// The strategy for a [`Crop`] value.
pub(crate) fn strategy(crop: Crop) -> &'static dyn CropStrategy {
    match crop {
        Crop::Face => &FaceCrop,
        Crop::Center => &Center,
        Crop::Top => &Top,
        Crop::Pad => &Pad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn face_in(w: u32, h: u32, fx: f64, fy: f64, fs: f64) -> FaceBox {
        // A face box of side `fs` (share of the short side) at (`fx`, `fy`) (shares of
        // the free room), inside the image.
        let side = ((f64::from(w.min(h)) * fs) as u32).clamp(1, w.min(h));
        FaceBox {
            x: (f64::from(w - side) * fx) as u32,
            y: (f64::from(h - side) * fy) as u32,
            width: side,
            height: side,
            score: 3.0,
        }
    }

    proptest! {
        #[test]
        fn face_squares_are_square_inside_and_deterministic(
            w in 1u32..6000, h in 1u32..6000,
            fx in 0.0f64..=1.0, fy in 0.0f64..=1.0, fs in 0.0f64..=1.0,
        ) {
            let f = face_in(w, h, fx, fy, fs);
            let cb = frame_face(w, h, &f);
            prop_assert_eq!(cb.width, cb.height);
            prop_assert!(cb.width >= 1 && cb.width <= w.min(h));
            prop_assert!(cb.x >= 0 && cb.y >= 0);
            prop_assert!(cb.x + i64::from(cb.width) <= i64::from(w));
            prop_assert!(cb.y + i64::from(cb.height) <= i64::from(h));
            prop_assert_eq!(cb, frame_face(w, h, &f));
        }

        #[test]
        fn a_face_with_room_around_it_is_framed_like_an_id_photo(
            w in 400u32..6000, h in 400u32..6000,
            fx in 0.2f64..=0.8, fy in 0.2f64..=0.6, fs in 0.05f64..=0.3,
        ) {
            let f = face_in(w, h, fx, fy, fs);
            let cb = frame_face(w, h, &f);
            let s = f64::from(cb.width);
            // The face is always inside the square.
            prop_assert!(i64::from(f.x) >= cb.x && i64::from(f.y) >= cb.y);
            prop_assert!(i64::from(f.x + f.width) <= cb.x + i64::from(cb.width));
            prop_assert!(i64::from(f.y + f.height) <= cb.y + i64::from(cb.height));
            // When the square did not have to shrink or move, the rule holds exactly.
            let want = (f64::from(f.height) / FACE_SHARE).round();
            if want <= f64::from(w.min(h)) {
                prop_assert!((s - want).abs() <= 1.0);
            }
        }

        #[test]
        fn main_face_is_the_largest_or_nearly(
            sizes in proptest::collection::vec(20u32..400, 1..6),
        ) {
            let faces: Vec<FaceBox> = sizes.iter().enumerate().map(|(i, &s)| FaceBox {
                x: 10 + 450 * i as u32, y: 100, width: s, height: s, score: 2.5,
            }).collect();
            let i = main_face(&faces, 3000, 1000);
            let largest = *sizes.iter().max().unwrap_or(&0);
            prop_assert!(f64::from(faces[i].height) >= AS_LARGE * f64::from(largest));
        }
    }

    #[test]
    fn face_strategy_without_a_preview_is_top() {
        for (w, h) in [(3000, 4000), (400, 300), (100, 100)] {
            let f = FaceCrop.frame(w, h, None).expect("frames");
            assert_eq!(f.crop, Top.crop_box(w, h));
            assert_eq!(f.warnings, vec![Warning::NoFace]);
        }
    }

    #[test]
    fn id_photo_numbers() {
        // A 300-px face at (340, 100) in 1000x1500: side 667, face centre 40 % down.
        let f = FaceBox {
            x: 340,
            y: 100,
            width: 300,
            height: 300,
            score: 5.0,
        };
        let cb = frame_face(1000, 1500, &f);
        assert_eq!(cb.width, 667);
        assert_eq!(cb.x, 157);
        assert_eq!(cb.y, 0); // 250 - 267 < 0: the square stops at the top edge
        let f = FaceBox { y: 600, ..f };
        let cb = frame_face(1000, 1500, &f);
        assert_eq!(cb.y, 750 - 267);
    }

    #[test]
    fn center_square_in_the_middle() {
        assert_eq!(
            Center.crop_box(400, 300),
            CropBox {
                x: 50,
                y: 0,
                width: 300,
                height: 300
            }
        );
        assert_eq!(
            Center.crop_box(300, 500),
            CropBox {
                x: 0,
                y: 100,
                width: 300,
                height: 300
            }
        );
        assert_eq!(
            Center.crop_box(77, 77),
            CropBox {
                x: 0,
                y: 0,
                width: 77,
                height: 77
            }
        );
    }

    #[test]
    fn top_biases_portraits_upward_and_centres_landscapes() {
        // 3000x4000 portrait: spare 1000, square starts at 167 instead of 500.
        assert_eq!(
            Top.crop_box(3000, 4000),
            CropBox {
                x: 0,
                y: 167,
                width: 3000,
                height: 3000
            }
        );
        assert_eq!(Top.crop_box(400, 300), Center.crop_box(400, 300));
        assert_eq!(
            Top.crop_box(100, 101),
            CropBox {
                x: 0,
                y: 0,
                width: 100,
                height: 100
            }
        );
    }

    #[test]
    fn pad_box_covers_the_whole_image() {
        assert_eq!(
            Pad.crop_box(400, 300),
            CropBox {
                x: 0,
                y: -50,
                width: 400,
                height: 400
            }
        );
        assert_eq!(
            Pad.crop_box(301, 500),
            CropBox {
                x: -99,
                y: 0,
                width: 500,
                height: 500
            }
        );
    }
}
