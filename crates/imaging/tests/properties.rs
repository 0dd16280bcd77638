//! Property tests: any source size/aspect, any crop, any budget → exact dimensions,
//! bytes within budget (or a BudgetUnreachable that says why), decodable output,
//! no metadata. Case counts are modest so the suite runs in seconds.

mod support;

use image::{Rgb, RgbImage};
use photobulk_imaging::{convert, Crop, ImagingError, Options, Target};
use proptest::prelude::*;
use support::markers;

/// Cheap textured image (gradient + hashed noise): fast to make at 2000x2000.
fn textured(w: u32, h: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(374_761_393)
            ^ y.wrapping_mul(668_265_263)
            ^ seed.wrapping_mul(2_246_822_519))
        .rotate_left(13);
        let noise = (n >> 24) as u8 / 4;
        Rgb([
            (x * 255 / w) as u8 / 2 + noise,
            (y * 255 / h) as u8 / 2 + noise,
            ((x + y) % 256) as u8 / 2 + noise,
        ])
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 20, ..ProptestConfig::default() })]

    #[test]
    fn outputs_fit_exactly(
        w in 48u32..2000,
        h in 48u32..2000,
        seed in any::<u32>(),
        crop in prop_oneof![Just(Crop::Face), Just(Crop::Center), Just(Crop::Top), Just(Crop::Pad)],
        png in any::<bool>(),
        orientation in 1u16..=8,
        small in 16u32..200,
        small_budget in 1_024usize..12_000,
        big in 200u32..700,
        big_budget in 8_000usize..300_000,
    ) {
        let img = textured(w, h, seed);
        let src = if png {
            support::png(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        } else {
            support::with_exif_orientation(&support::jpeg(&img, 85), orientation)
        };
        let targets = vec![Target::new("small", small, small_budget), Target::new("big", big, big_budget)];
        let opts = Options { crop, targets: targets.clone(), ..Options::default() };
        match convert(&src, &opts) {
            Ok(c) => {
                prop_assert_eq!(c.outputs.len(), 2);
                for (o, t) in c.outputs.iter().zip(&targets) {
                    prop_assert_eq!(&o.target, &t.name);
                    prop_assert_eq!((o.width, o.height), (t.size, t.size));
                    prop_assert!(o.bytes <= t.max_bytes, "{} bytes > {}", o.bytes, t.max_bytes);
                    prop_assert_eq!(o.bytes, o.jpeg.len());
                    prop_assert!((1..=100).contains(&o.quality));
                    prop_assert!(markers::only_jfif(&o.jpeg), "{:02X?}", markers::header_markers(&o.jpeg));
                    let d = support::decode_rgb(&o.jpeg);
                    prop_assert_eq!(d.dimensions(), (t.size, t.size));
                    prop_assert_eq!(o.crop.width, o.crop.height);
                    if crop != Crop::Pad {
                        // Inside the upright image.
                        let (uw, uh) = if orientation >= 5 && !png { (h, w) } else { (w, h) };
                        prop_assert!(o.crop.x >= 0 && o.crop.y >= 0);
                        prop_assert!(o.crop.x + i64::from(o.crop.width) <= i64::from(uw));
                        prop_assert!(o.crop.y + i64::from(o.crop.height) <= i64::from(uh));
                    }
                }
            }
            Err(ImagingError::BudgetUnreachable { budget, smallest, .. }) => {
                prop_assert!(smallest > budget);
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 10, ..ProptestConfig::default() })]

    /// Pictures without faces (a flat colour, a gradient landscape): the `face` crop is
    /// exactly today's `top` (which centres landscapes), pixels included, with `no_face`;
    /// and the same input gives the same result twice.
    #[test]
    fn no_face_keeps_todays_crop_exactly(
        w in 48u32..1600,
        h in 48u32..1600,
        flat in any::<bool>(),
        colour in any::<[u8; 3]>(),
    ) {
        let img = if flat {
            RgbImage::from_pixel(w, h, Rgb(colour))
        } else {
            RgbImage::from_fn(w, h, |x, y| Rgb([(x * 200 / w) as u8 + 20, (y * 120 / h) as u8 + 90, 180]))
        };
        let src = support::jpeg(&img, 85);
        let run = |crop| convert(&src, &Options { crop, ..Options::default() }).expect("converts");
        let face = run(Crop::Face);
        let top = run(Crop::Top);
        prop_assert!(face.face.is_none());
        prop_assert!(face.warnings.contains(&photobulk_imaging::Warning::NoFace));
        for (a, b) in face.outputs.iter().zip(&top.outputs) {
            prop_assert_eq!(a.crop, b.crop);
            prop_assert_eq!(&a.sha256, &b.sha256);
        }
        let again = run(Crop::Face);
        prop_assert_eq!(
            face.outputs.iter().map(|o| &o.sha256).collect::<Vec<_>>(),
            again.outputs.iter().map(|o| &o.sha256).collect::<Vec<_>>()
        );
    }
}
