//! Colour: pixels described by an embedded ICC profile become sRGB.
//!
//! Directory photos are shown by clients that assume sRGB, so an Adobe RGB or Display P3
//! photo that keeps its numbers looks washed out. The decoded pixels are converted to
//! sRGB (before any resizing) with `moxcms`: a pure-Rust CMS (RGB matrix/TRC and LUT
//! profiles, ICC v2 and v4, greyscale, CMYK through its LUTs), already built into every
//! binary as a dependency of `image`, so it costs no new code to trust or ship and no
//! system library.
//!
//! - A profile that maps every probe colour onto itself (within one level) is sRGB:
//!   nothing is done, so sRGB-tagged photos come out exactly as untagged ones.
//! - A profile that cannot be parsed, or whose colour space does not match the pixels,
//!   is a warning and the pixels are used as they are (as if sRGB), never a failure.
//! - CMYK pixels with a CMYK profile go through it; without a usable one the caller
//!   falls back to the naive conversion.

use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

/// How the pixels handed to [`to_srgb`] are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pixels {
    Rgb,
    Rgba,
    /// 4 bytes a pixel as libjpeg delivers them; Adobe (APP14) files store 255 - ink.
    Cmyk {
        adobe_inverted: bool,
    },
}

/// What [`to_srgb`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The profile is sRGB: pixels untouched.
    AlreadySrgb,
    /// Pixels converted from the profile named here (its description).
    Converted(String),
}

/// Pixels a transform call handles at once (bounded scratch memory).
const CHUNK: usize = 16 * 1024;

fn parse(icc: &[u8]) -> Result<ColorProfile, String> {
    ColorProfile::new_from_slice(icc).map_err(|e| format!("unreadable ICC profile ({e})"))
}

fn describe(icc: &[u8]) -> String {
    crate::icc::description(icc).unwrap_or_else(|| crate::metadata::UNNAMED_PROFILE.into())
}

/// Converts `px` in place to sRGB: RGB and RGBA stay 3 and 4 bytes a pixel (alpha kept);
/// CMYK becomes RGB (3 bytes a pixel). `Err` (with a reason for a warning) leaves `px`
/// untouched.
pub(crate) fn to_srgb(icc: &[u8], px: &mut Vec<u8>, layout: Pixels) -> Result<Applied, String> {
    let profile = parse(icc)?;
    let srgb = ColorProfile::new_srgb();
    let opts = TransformOptions::default();
    let err = |e: moxcms::CmsError| format!("ICC profile not usable ({e})");
    match (layout, profile.color_space) {
        (Pixels::Rgb | Pixels::Rgba, DataColorSpace::Rgb) => {
            let (l, n) = if layout == Pixels::Rgb {
                (Layout::Rgb, 3)
            } else {
                (Layout::Rgba, 4)
            };
            let t = profile
                .create_transform_8bit(l, &srgb, l, opts)
                .map_err(err)?;
            if is_identity(&*t, n)? {
                return Ok(Applied::AlreadySrgb);
            }
            let mut scratch = vec![0u8; CHUNK * n];
            for chunk in px.chunks_mut(CHUNK * n) {
                let src = &mut scratch[..chunk.len()];
                src.copy_from_slice(chunk);
                t.transform(src, chunk).map_err(err)?;
            }
            Ok(Applied::Converted(describe(icc)))
        }
        (Pixels::Rgb | Pixels::Rgba, DataColorSpace::Gray) => {
            // Grey sources arrive as R = G = B (+ alpha): feed channel 0 (and alpha).
            let (gl, dl, n, g) = if layout == Pixels::Rgb {
                (Layout::Gray, Layout::Rgb, 3, 1)
            } else {
                (Layout::GrayAlpha, Layout::Rgba, 4, 2)
            };
            let t = profile
                .create_transform_8bit(gl, &srgb, dl, opts)
                .map_err(err)?;
            let mut scratch = vec![0u8; CHUNK * g];
            for chunk in px.chunks_mut(CHUNK * n) {
                let src = &mut scratch[..chunk.len() / n * g];
                for (s, p) in src.chunks_exact_mut(g).zip(chunk.chunks_exact(n)) {
                    s[0] = p[0];
                    if g == 2 {
                        s[1] = p[3];
                    }
                }
                t.transform(src, chunk).map_err(err)?;
            }
            Ok(Applied::Converted(describe(icc)))
        }
        (Pixels::Cmyk { adobe_inverted }, DataColorSpace::Cmyk) => {
            let t = profile
                .create_transform_8bit(Layout::Rgba, &srgb, Layout::Rgb, opts)
                .map_err(err)?;
            let mut out = vec![0u8; px.len() / 4 * 3];
            let mut scratch = vec![0u8; CHUNK * 4];
            for (src, dst) in px.chunks(CHUNK * 4).zip(out.chunks_mut(CHUNK * 3)) {
                let s = &mut scratch[..src.len()];
                // ICC CMYK is ink amount: 0 = none. Adobe files store it inverted.
                for (a, b) in s.iter_mut().zip(src) {
                    *a = if adobe_inverted { 255 - *b } else { *b };
                }
                t.transform(s, dst).map_err(err)?;
            }
            *px = out;
            Ok(Applied::Converted(describe(icc)))
        }
        (_, cs) => Err(format!(
            "ICC profile is for {cs:?} data, not for these pixels; used as sRGB"
        )),
    }
}

/// Whether the RGB(A) transform maps a grid of colours onto themselves (within 1 level).
fn is_identity(t: &moxcms::Transform8BitExecutor, n: usize) -> Result<bool, String> {
    const STEPS: [u8; 9] = [0, 32, 64, 96, 128, 160, 192, 224, 255];
    let mut src = Vec::with_capacity(STEPS.len().pow(3) * n);
    for r in STEPS {
        for g in STEPS {
            for b in STEPS {
                src.extend_from_slice(&[r, g, b, 255][..n]);
            }
        }
    }
    let mut dst = vec![0u8; src.len()];
    t.transform(&src, &mut dst)
        .map_err(|e| format!("ICC profile not usable ({e})"))?;
    Ok(src.iter().zip(&dst).all(|(a, b)| a.abs_diff(*b) <= 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(p: &ColorProfile) -> Vec<u8> {
        p.encode().expect("encode profile")
    }

    #[test]
    fn srgb_profile_is_left_alone() {
        let icc = encoded(&ColorProfile::new_srgb());
        let mut px = vec![10u8, 200, 30, 250, 128, 1];
        let before = px.clone();
        assert_eq!(
            to_srgb(&icc, &mut px, Pixels::Rgb),
            Ok(Applied::AlreadySrgb)
        );
        assert_eq!(px, before);
    }

    #[test]
    fn display_p3_red_becomes_a_redder_srgb_red() {
        let icc = encoded(&ColorProfile::new_display_p3());
        // P3 (200, 60, 40): redder than sRGB can show at the same numbers.
        let mut px = vec![200u8, 60, 40, 128];
        let got = to_srgb(&icc, &mut px, Pixels::Rgba);
        assert!(matches!(got, Ok(Applied::Converted(_))), "{got:?}");
        // By the P3 -> sRGB matrix: about (218, 42, 23).
        assert!(px[0] >= 212 && px[1] <= 54 && px[2] <= 36, "{px:?}");
        assert_eq!(px[3], 128, "alpha kept");
    }

    #[test]
    fn garbage_profile_is_an_error_and_leaves_pixels() {
        let mut px = vec![1u8, 2, 3];
        assert!(to_srgb(b"not a profile at all", &mut px, Pixels::Rgb).is_err());
        assert_eq!(px, [1, 2, 3]);
        // An RGB profile on CMYK pixels: not usable.
        let icc = encoded(&ColorProfile::new_display_p3());
        let mut px = vec![1u8, 2, 3, 4];
        let adobe = Pixels::Cmyk {
            adobe_inverted: true,
        };
        assert!(to_srgb(&icc, &mut px, adobe).is_err());
        assert_eq!(px, [1, 2, 3, 4]);
    }
}
