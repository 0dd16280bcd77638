//! Crop + Lanczos3 resize in one `fast_image_resize` pass, straight from the stored
//! (possibly DCT-scaled, not yet rotated) pixels; only the small result is turned
//! upright and, for padded crops, placed on the background.

use crate::decode::Decoded;
use crate::{orient, CropBox, ImagingError};
use fast_image_resize as fr;

fn internal(e: impl std::fmt::Display) -> ImagingError {
    ImagingError::Internal(format!("resize: {e}"))
}

/// Reusable resizer (its convolution buffers are kept across targets).
pub(crate) struct Resizer {
    inner: fr::Resizer,
    options: fr::ResizeOptions,
}

impl std::fmt::Debug for Resizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resizer")
    }
}

/// Lanczos3, `sinc(x) sinc(x / 3)` on `[-3, 3)`, as `fast_image_resize`'s own but with
/// one `sin` instead of two: with `t = πx/3`, `sin(πx) = sin(3t) = sin t (3 - 4 sin² t)`.
/// The weights are computed for every output pixel of every resize (~50,000 per photo),
/// and `sin` was most of their cost.
fn lanczos3(x: f64) -> f64 {
    if !(-3.0..3.0).contains(&x) {
        return 0.0;
    }
    if x == 0.0 {
        return 1.0;
    }
    let t = std::f64::consts::PI * x / 3.0;
    let s = t.sin();
    let sin_pi_x = s * (3.0 - 4.0 * s * s);
    sin_pi_x / (3.0 * t) * (s / t)
}

impl Resizer {
    pub(crate) fn new() -> Self {
        let lanczos3 =
            fr::Filter::new("Lanczos3", lanczos3, 3.0).expect("a finite, positive support");
        Resizer {
            inner: fr::Resizer::new(),
            options: fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Custom(lanczos3))),
        }
    }

    fn resize(
        &mut self,
        src: &[u8],
        (sw, sh): (u32, u32),
        crop: [f64; 4],
        (tw, th): (u32, u32),
    ) -> Result<Vec<u8>, ImagingError> {
        let src = fr::images::ImageRef::new(sw, sh, src, fr::PixelType::U8x3).map_err(internal)?;
        let mut dst = fr::images::Image::new(tw, th, fr::PixelType::U8x3);
        let [left, top, width, height] = crop;
        let opts = self.options.crop(left, top, width, height);
        self.inner.resize(&src, &mut dst, &opts).map_err(internal)?;
        Ok(dst.into_vec())
    }

    /// The upright `size` x `size` picture of crop box `cb` (upright, full-resolution
    /// coordinates) of `d`, with anything outside the image filled with `bg`.
    pub(crate) fn render(
        &mut self,
        d: &Decoded,
        cb: CropBox,
        size: u32,
        bg: [u8; 3],
    ) -> Result<Vec<u8>, ImagingError> {
        let g = d.geometry;
        let o = g.orientation;
        let (uw, uh) = orient::upright_dims(g.width, g.height, o);
        let (cx, cy, cs) = (cb.x as f64, cb.y as f64, f64::from(cb.width.max(1)));
        let (vx0, vx1) = (cx.max(0.0), (cx + cs).min(f64::from(uw)));
        let (vy0, vy1) = (cy.max(0.0), (cy + cs).min(f64::from(uh)));
        if vx1 <= vx0 || vy1 <= vy0 {
            return Err(internal("crop box misses the image"));
        }
        // Where the visible part lands in the output square.
        let s = f64::from(size) / cs;
        let place = |a: f64, b: f64| -> (u32, u32) {
            let p0 = (((a - 0.0) * s).round() as u32).min(size - 1);
            let p1 = ((b * s).round() as u32).clamp(p0 + 1, size);
            (p0, p1 - p0)
        };
        let (dx, dw) = place(vx0 - cx, vx1 - cx);
        let (dy, dh) = place(vy0 - cy, vy1 - cy);
        // The same region in stored, decoded-pixel coordinates.
        let [sx0, sx1, sy0, sy1] = orient::upright_rect_to_stored(
            o,
            f64::from(g.width),
            f64::from(g.height),
            [vx0, vx1, vy0, vy1],
        );
        let kx = f64::from(d.pix_width) / f64::from(g.width);
        let ky = f64::from(d.pix_height) / f64::from(g.height);
        // Only the part `d.buf_width` x `d.rows` at (`d.x0`, `d.y0`) of the (scaled)
        // image was decoded; the crop, with its filter reach, lies inside it.
        let (bw, bh) = (f64::from(d.buf_width), f64::from(d.rows));
        let left = (sx0 * kx - f64::from(d.x0)).clamp(0.0, bw - 1.0);
        let top = (sy0 * ky - f64::from(d.y0)).clamp(0.0, bh - 1.0);
        let crop = [
            left,
            top,
            ((sx1 - sx0) * kx).min(bw - left),
            ((sy1 - sy0) * ky).min(bh - top),
        ];
        let stored_out = if orient::transposes(o) {
            (dh, dw)
        } else {
            (dw, dh)
        };
        let px = self.resize(&d.rgb, (d.buf_width, d.rows), crop, stored_out)?;
        let (px, w, h) = orient::apply(o, px, stored_out.0, stored_out.1)
            .ok_or_else(|| internal("orientation"))?;
        if (w, h) == (size, size) {
            return Ok(px);
        }
        let mut canvas: Vec<u8> = std::iter::repeat_n(bg, size as usize * size as usize)
            .flatten()
            .collect();
        let row = w as usize * 3;
        for y in 0..h as usize {
            let at = ((dy as usize + y) * size as usize + dx as usize) * 3;
            canvas[at..at + row].copy_from_slice(&px[y * row..(y + 1) * row]);
        }
        Ok(canvas)
    }

    /// A `from` x `from` RGB8 square resized to `to` x `to`.
    pub(crate) fn square_from_square(
        &mut self,
        src: &[u8],
        from: u32,
        to: u32,
    ) -> Result<Vec<u8>, ImagingError> {
        let f = f64::from(from);
        self.resize(src, (from, from), [0.0, 0.0, f, f], (to, to))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lanczos3_is_sinc_times_sinc_over_3() {
        let sinc = |x: f64| {
            if x == 0.0 {
                1.0
            } else {
                (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
            }
        };
        for i in -700..=700 {
            let x = f64::from(i) / 200.0;
            let want = if (-3.0..3.0).contains(&x) {
                sinc(x) * sinc(x / 3.0)
            } else {
                0.0
            };
            let got = super::lanczos3(x);
            assert!((got - want).abs() < 1e-12, "x {x}: {got} vs {want}");
        }
    }
}
