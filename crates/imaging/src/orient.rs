//! EXIF orientation: reading it, and mapping between stored and upright coordinates.
//!
//! Orientation `o` (1..=8) says how the stored pixels must be transformed to be shown
//! upright. Rather than rotate a 12 MP buffer, the pipeline maps the upright crop box
//! back into stored coordinates, resizes straight from the stored pixels, and turns
//! only the small result upright.

use image::metadata::Orientation;

/// Orientation from an EXIF/TIFF block that starts at the TIFF header (`II*\0`/`MM\0*`).
/// Anything unreadable or out of range counts as 1 (upright).
pub(crate) fn from_tiff_exif(tiff: &[u8]) -> u8 {
    Orientation::from_exif_chunk(tiff).map_or(1, Orientation::to_exif)
}

/// Orientation from an EXIF payload that starts either at the TIFF header or with JPEG's
/// `Exif\0\0` APP1 prefix before it (some writers put that in WebP and PNG too).
/// `None` when no valid orientation tag is found.
pub(crate) fn from_exif_payload(exif: &[u8]) -> Option<u8> {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    Orientation::from_exif_chunk(tiff).map(Orientation::to_exif)
}

/// Whether orientation `o` swaps width and height.
pub(crate) fn transposes(o: u8) -> bool {
    (5..=8).contains(&o)
}

/// Upright size of a stored `w` x `h` image with orientation `o`.
pub(crate) fn upright_dims(w: u32, h: u32, o: u8) -> (u32, u32) {
    if transposes(o) {
        (h, w)
    } else {
        (w, h)
    }
}

/// Maps the upright rectangle `[x0, x1) x [y0, y1)` of an image stored as `w` x `h`
/// with orientation `o` to the stored rectangle holding the same pixels.
pub(crate) fn upright_rect_to_stored(o: u8, w: f64, h: f64, r: [f64; 4]) -> [f64; 4] {
    let [x0, x1, y0, y1] = r;
    match o {
        2 => [w - x1, w - x0, y0, y1],
        3 => [w - x1, w - x0, h - y1, h - y0],
        4 => [x0, x1, h - y1, h - y0],
        5 => [y0, y1, x0, x1],
        6 => [y0, y1, h - x1, h - x0],
        7 => [w - y1, w - y0, h - x1, h - x0],
        8 => [w - y1, w - y0, x0, x1],
        _ => r,
    }
}

/// Turns a stored-orientation RGB8 image upright; returns the pixels and new size.
/// One pass, a 3-byte copy per pixel: each upright row is a run through the stored
/// pixels with a fixed step (the `image` crate's `rotate90` costs several times more
/// per pixel, going through its generic pixel accessors).
pub(crate) fn apply(o: u8, rgb: Vec<u8>, w: u32, h: u32) -> Option<(Vec<u8>, u32, u32)> {
    let (w, h) = (w as usize, h as usize);
    if rgb.len() != w.checked_mul(h)?.checked_mul(3)? {
        return None;
    }
    if !(2..=8).contains(&o) {
        return Some((rgb, w as u32, h as u32));
    }
    if w == 0 || h == 0 {
        return Some((rgb, w as u32, h as u32));
    }
    let (uw, uh) = if transposes(o) { (h, w) } else { (w, h) };
    // Stored pixel index (x + y * w) of upright (ux, uy) is start(uy) + ux * step.
    let (w_, h_) = (w as isize, h as isize);
    let (start, row_step, step): (isize, isize, isize) = match o {
        2 => (w_ - 1, w_, -1),
        3 => (w_ * h_ - 1, -w_, -1),
        4 => ((h_ - 1) * w_, -w_, 1),
        5 => (0, 1, w_),
        6 => ((h_ - 1) * w_, 1, -w_),
        7 => (w_ * h_ - 1, -1, -w_),
        _ => (w_ - 1, -1, w_), // 8
    };
    // Whole pixels: one bounds check and one 3-byte copy each.
    let mut out = vec![[0u8; 3]; w * h];
    for (uy, row) in out.chunks_exact_mut(uw).enumerate() {
        let mut i = start + uy as isize * row_step;
        for px in row {
            let at = i as usize * 3;
            let p = &rgb[at..at + 3];
            *px = [p[0], p[1], p[2]];
            i += step;
        }
    }
    Some((out.into_flattened(), uw as u32, uh as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: for every orientation, every upright pixel of a small image found
    /// through `apply` must come from the stored pixel `upright_rect_to_stored` names.
    #[test]
    fn rect_mapping_agrees_with_pixel_transform() {
        let (w, h) = (5u32, 3u32);
        let stored: Vec<u8> = (0..w * h).flat_map(|i| [i as u8, 0, 0]).collect();
        for o in 1..=8u8 {
            let (up, uw, uh) = apply(o, stored.clone(), w, h).expect("apply");
            assert_eq!((uw, uh), upright_dims(w, h, o));
            for uy in 0..uh {
                for ux in 0..uw {
                    let r = [
                        f64::from(ux),
                        f64::from(ux + 1),
                        f64::from(uy),
                        f64::from(uy + 1),
                    ];
                    let [sx0, _, sy0, _] = upright_rect_to_stored(o, f64::from(w), f64::from(h), r);
                    let want = (sy0 as u32 * w + sx0 as u32) as u8;
                    assert_eq!(
                        up[((uy * uw + ux) * 3) as usize],
                        want,
                        "orientation {o} at ({ux},{uy})"
                    );
                }
            }
        }
    }

    /// Same pixels as the `image` crate's `apply_orientation`, for every orientation.
    #[test]
    fn apply_agrees_with_image_crate() {
        let (w, h) = (7u32, 4u32);
        let stored: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        for o in 1..=8u8 {
            let img = image::RgbImage::from_raw(w, h, stored.clone()).expect("raw");
            let mut d = image::DynamicImage::ImageRgb8(img);
            d.apply_orientation(Orientation::from_exif(o).expect("o"));
            let want = d.into_rgb8();
            let (got, gw, gh) = apply(o, stored.clone(), w, h).expect("apply");
            assert_eq!((gw, gh), want.dimensions(), "orientation {o}");
            assert_eq!(got, want.into_raw(), "orientation {o}");
        }
        assert!(apply(6, vec![0; 5], 2, 1).is_none());
    }
}
