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
pub(crate) fn apply(o: u8, rgb: Vec<u8>, w: u32, h: u32) -> Option<(Vec<u8>, u32, u32)> {
    if !(2..=8).contains(&o) {
        return Some((rgb, w, h));
    }
    let img = image::RgbImage::from_raw(w, h, rgb)?;
    let mut dynimg = image::DynamicImage::ImageRgb8(img);
    dynimg.apply_orientation(Orientation::from_exif(o)?);
    let out = dynimg.into_rgb8();
    let (nw, nh) = out.dimensions();
    Some((out.into_raw(), nw, nh))
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
}
