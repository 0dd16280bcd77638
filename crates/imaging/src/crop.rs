//! Choosing the square: one trait, one implementation per [`Crop`] value.
//!
//! The pipeline asks a [`CropStrategy`] for a [`CropBox`] in upright-source coordinates
//! and never looks at which strategy it was. A face-aware strategy implements the same
//! trait (it would be handed a low-resolution preview, which a JPEG gives cheaply at
//! 1/8 DCT scale) and is returned by [`strategy`] for its new `Crop` variant; callers
//! keep passing `Crop` values through untouched.

use crate::{Crop, CropBox};

/// Picks the square region of an upright `width` x `height` image to keep.
pub trait CropStrategy: std::fmt::Debug {
    /// A square box (`width == height`). It lies inside the image, except for
    /// strategies that pad, whose box may extend past the edges (filled with the
    /// background colour).
    fn crop_box(&self, width: u32, height: u32) -> CropBox;
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

/// The strategy for a [`Crop`] value.
pub(crate) fn strategy(crop: Crop) -> &'static dyn CropStrategy {
    match crop {
        Crop::Center => &Center,
        Crop::Top => &Top,
        Crop::Pad => &Pad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
