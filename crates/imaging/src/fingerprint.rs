//! "Is this the same photo?" across re-encodings: Graph stores what it is sent re-encoded, and
//! an AD thumbnail is a 96 px copy of a 648 px HD photo, so bytes never match. A fingerprint
//! is the centre square of the upright photo shrunk to 16x16 grey levels; two photos are the
//! same when their fingerprints differ by little on average.

use crate::{render, Crop, ImagingError, Options, Target};

/// Side of the fingerprint square.
const SIDE: u32 = 16;
/// Mean absolute grey-level difference (0..=255) up to which two photos count as the same.
/// Re-encoding at quality 60-95 and 96 px vs 648 px copies measure 1-4; a different person
/// or a different shot measures 20 and more.
pub const SAME_PHOTO_MAX_DISTANCE: u8 = 10;

/// A 16x16 grey thumbnail of the centre square of a photo (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(Vec<u8>);

impl Fingerprint {
    /// Mean absolute grey-level difference, 0 (identical) to 255.
    pub fn distance(&self, other: &Fingerprint) -> u8 {
        let sum: u64 = self
            .0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let n = self.0.len().max(1) as u64;
        u8::try_from(sum / n).unwrap_or(u8::MAX)
    }

    /// The same photo, re-encoded or resized ([`SAME_PHOTO_MAX_DISTANCE`]).
    pub fn same_photo(&self, other: &Fingerprint) -> bool {
        self.distance(other) <= SAME_PHOTO_MAX_DISTANCE
    }
}

/// The fingerprint of an encoded photo. Same limits and errors as [`crate::convert`]; any
/// source side of at least one pixel is accepted.
pub fn fingerprint(input: &[u8]) -> Result<Fingerprint, ImagingError> {
    let opts = Options {
        crop: Crop::Center,
        min_source_side: 1,
        targets: vec![Target {
            name: "fingerprint".into(),
            size: SIDE,
            max_bytes: usize::MAX,
        }],
        ..Options::default()
    };
    let r = render(input, &opts, false)?;
    let px = r.pixels.into_iter().next().unwrap_or_default();
    let grey = px
        .chunks_exact(3)
        .map(|p| {
            let y = 299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]);
            u8::try_from(y / 1000).unwrap_or(u8::MAX)
        })
        .collect();
    Ok(Fingerprint(grey))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32, q: u8, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q)
            .encode_image(&img)
            .unwrap();
        out
    }

    fn face(x: u32, y: u32, s: u32) -> [u8; 3] {
        // A light disc on a dark ground, scaled to the side `s`.
        let (cx, cy, r) = (s / 2, s * 2 / 5, s / 4);
        let d = (x.abs_diff(cx).pow(2) + y.abs_diff(cy).pow(2)) as f64;
        if d.sqrt() < f64::from(r) {
            [230, 190, 160]
        } else {
            [30, 40, 80]
        }
    }

    #[test]
    fn a_resized_reencoded_copy_is_the_same_photo_and_another_photo_is_not() {
        let hd = jpeg(648, 648, 90, |x, y| face(x, y, 648));
        let ad = jpeg(96, 96, 60, |x, y| face(x, y, 96));
        let other = jpeg(96, 96, 90, |x, y| {
            if (x / 12 + y / 12) % 2 == 0 {
                [250; 3]
            } else {
                [5; 3]
            }
        });
        let (a, b, c) = (
            fingerprint(&hd).unwrap(),
            fingerprint(&ad).unwrap(),
            fingerprint(&other).unwrap(),
        );
        assert!(a.same_photo(&b), "distance {}", a.distance(&b));
        assert!(!a.same_photo(&c), "distance {}", a.distance(&c));
        assert_eq!(a.distance(&a), 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_fingerprint() {
        assert!(fingerprint(b"not an image").is_err());
        assert!(fingerprint(&[]).is_err());
    }
}
