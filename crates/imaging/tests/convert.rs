//! End-to-end tests of `convert` and `probe` on images generated in code.

mod support;

use image::{Rgb, RgbImage};
use photobulk_imaging::{
    convert, probe, Crop, CropBox, ImagingError, Limits, Options, Target, Warning,
};
use support::{markers, ssim, synth};

fn opts(targets: Vec<Target>, crop: Crop) -> Options {
    Options {
        crop,
        targets,
        ..Options::default()
    }
}

fn photo(w: u32, h: u32, seed: u64) -> RgbImage {
    RgbImage::from_raw(w, h, synth::photo(w, h, seed)).expect("buffer size")
}

mod basics {
    use super::*;

    #[test]
    fn default_targets_from_a_portrait_jpeg() {
        let src = support::jpeg(&photo(600, 800, 1), 90);
        let c = convert(&src, &Options::default()).expect("convert");
        assert_eq!(c.source.format, "jpeg");
        assert_eq!(
            (c.source.width, c.source.height, c.source.orientation),
            (600, 800, 1)
        );
        assert_eq!(c.outputs.len(), 2);
        let (ad, hd) = (&c.outputs[0], &c.outputs[1]);
        assert_eq!((ad.target.as_str(), ad.width, ad.height), ("ad", 96, 96));
        assert_eq!((hd.target.as_str(), hd.width, hd.height), ("hd", 648, 648));
        assert!(ad.bytes <= 10_240 && ad.bytes == ad.jpeg.len());
        assert!(hd.bytes <= 245_760 && hd.bytes == hd.jpeg.len());
        // The default crop is `face`; this picture has none, so it is `top`'s square
        // (a sixth of the spare 200 rows from the top), with a warning.
        assert_eq!(
            ad.crop,
            CropBox {
                x: 0,
                y: 33,
                width: 600,
                height: 600
            }
        );
        assert!(c.warnings.contains(&Warning::NoFace), "{:?}", c.warnings);
        assert_eq!(ad.sha256.len(), 64);
        assert!(ad
            .sha256
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert!(
            ad.quality >= 50,
            "quality {} for a 96 px thumbnail in 10 KB",
            ad.quality
        );
        // Upscaled 600 -> 648 is 1.08x: no warning about that, only that there was no face.
        assert_eq!(c.warnings, vec![Warning::NoFace]);
        for o in &c.outputs {
            assert!(markers::only_jfif(&o.jpeg));
            let img = support::decode_rgb(&o.jpeg);
            assert_eq!(img.dimensions(), (o.width, o.height));
        }
    }

    #[test]
    fn same_input_same_bytes() {
        let src = support::jpeg(&photo(300, 300, 2), 90);
        let a = convert(&src, &Options::default()).expect("convert");
        let b = convert(&src, &Options::default()).expect("convert");
        assert_eq!(a, b);
    }

    #[test]
    fn output_looks_like_the_source() {
        let up = photo(500, 500, 3);
        let src = support::png(up.as_raw(), 500, 500, image::ExtendedColorType::Rgb8);
        let c = convert(
            &src,
            &opts(vec![Target::new("x", 250, 200_000)], Crop::Center),
        )
        .expect("convert");
        let want = image::imageops::resize(&up, 250, 250, image::imageops::FilterType::Lanczos3);
        let got = support::decode_rgb(&c.outputs[0].jpeg);
        let s = ssim::ssim(want.as_raw(), got.as_raw(), 250, 250);
        assert!(s > 0.9, "ssim {s}");
    }

    #[test]
    fn alpha_is_flattened_onto_the_background() {
        // Left half opaque red, right half fully transparent.
        let (w, h) = (100u32, 100u32);
        let raw: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                if i % w < w / 2 {
                    [255, 0, 0, 255]
                } else {
                    [0, 0, 0, 0]
                }
            })
            .collect();
        let src = support::png(&raw, w, h, image::ExtendedColorType::Rgba8);
        let mut o = opts(vec![Target::new("x", 100, 100_000)], Crop::Center);
        o.background = [0, 0, 255];
        let out = support::decode_rgb(&convert(&src, &o).expect("convert").outputs[0].jpeg);
        let l = out.get_pixel(10, 50);
        let r = out.get_pixel(90, 50);
        assert!(l[0] > 200 && l[2] < 60, "left {l:?}");
        assert!(r[2] > 200 && r[0] < 60, "right {r:?}");
    }

    #[test]
    fn sixteen_bit_grey_png_becomes_rgb() {
        let (w, h) = (120u32, 90u32);
        let img = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(w, h, |x, _| {
            image::Luma([(x * 500) as u16])
        });
        let mut src = Vec::new();
        image::DynamicImage::ImageLuma16(img)
            .write_to(&mut std::io::Cursor::new(&mut src), image::ImageFormat::Png)
            .expect("png16");
        let c = convert(
            &src,
            &opts(vec![Target::new("x", 90, 50_000)], Crop::Center),
        )
        .expect("convert");
        let out = support::decode_rgb(&c.outputs[0].jpeg);
        let p = out.get_pixel(45, 45);
        assert!(
            p[0].abs_diff(p[1]) < 6 && p[1].abs_diff(p[2]) < 6,
            "grey stays grey: {p:?}"
        );
    }

    #[test]
    fn other_formats_decode() {
        let img = image::DynamicImage::ImageRgb8(photo(160, 120, 4));
        for (fmt, name) in [
            (image::ImageFormat::Gif, "gif"),
            (image::ImageFormat::Bmp, "bmp"),
            (image::ImageFormat::Tiff, "tiff"),
            (image::ImageFormat::WebP, "webp"),
            (image::ImageFormat::Png, "png"),
        ] {
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), fmt)
                .expect("encode");
            let info = probe(&bytes).expect("probe");
            assert_eq!(
                (info.format.as_str(), info.width, info.height),
                (name, 160, 120)
            );
            let c = convert(&bytes, &Options::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(c.source.format, name);
            assert_eq!(c.outputs[1].width, 648);
        }
    }

    #[test]
    fn upscaling_more_than_twice_warns() {
        let src = support::jpeg(&photo(200, 300, 5), 90);
        let c = convert(&src, &Options::default()).expect("convert");
        assert_eq!(
            c.warnings,
            vec![
                Warning::NoFace,
                Warning::Upscaled {
                    target: "hd".into(),
                    factor_x100: 324
                }
            ]
        );
    }

    #[test]
    fn too_small_after_orientation() {
        let src = support::with_exif_orientation(&support::jpeg(&photo(100, 40, 6), 90), 6);
        match convert(&src, &Options::default()) {
            Err(ImagingError::TooSmall {
                width: 40,
                height: 100,
                min: 48,
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_targets_are_refused() {
        let src = support::jpeg(&photo(100, 100, 7), 90);
        for targets in [
            vec![],
            vec![Target::new("x", 0, 10_000)],
            vec![Target::new("x", 96, 500)],
            vec![Target::new("x", 96, 10_000), Target::new("x", 48, 10_000)],
        ] {
            match convert(&src, &opts(targets.clone(), Crop::Center)) {
                Err(ImagingError::InvalidOption(_)) => {}
                other => panic!("{targets:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn unreachable_budget_names_smallest_size() {
        let src = support::jpeg(&photo(1200, 1200, 8), 95);
        match convert(
            &src,
            &opts(vec![Target::new("big", 1200, 1_024)], Crop::Center),
        ) {
            Err(ImagingError::BudgetUnreachable {
                target,
                size: 1200,
                budget: 1_024,
                smallest,
                quality: 1,
            }) => {
                assert_eq!(target, "big");
                assert!(smallest > 1_024);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cmyk_jpeg_inverted_adobe() {
        // libjpeg writes an Adobe APP14 marker for CMYK by itself; we feed it what
        // Photoshop stores there, inverted CMYK (255 = no ink). A uniform "red"
        // (C=0, M=255, Y=255, K=0) must come out red.
        let (w, h) = (64usize, 64usize);
        let inverted = [255u8, 0, 0, 255]; // 255 - ink
        let px: Vec<u8> = std::iter::repeat_n(inverted, w * h).flatten().collect();
        let jpeg = std::panic::catch_unwind(|| {
            let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_CMYK);
            c.set_size(w, h);
            c.set_quality(95.0);
            let mut s = c.start_compress(Vec::new()).expect("start");
            s.write_scanlines(&px).expect("write");
            s.finish().expect("finish")
        })
        .expect("mozjpeg");
        let c = convert(
            &jpeg,
            &opts(vec![Target::new("x", 64, 50_000)], Crop::Center),
        )
        .expect("convert");
        let out = support::decode_rgb(&c.outputs[0].jpeg);
        let p = out.get_pixel(32, 32);
        assert!(p[0] > 200 && p[1] < 50 && p[2] < 50, "{p:?}");
    }

    #[test]
    fn probe_reads_headers_only() {
        let src = support::with_exif_orientation(&support::jpeg(&photo(120, 80, 9), 90), 8);
        let info = probe(&src).expect("probe");
        assert_eq!(
            (
                info.format.as_str(),
                info.width,
                info.height,
                info.orientation
            ),
            ("jpeg", 120, 80, 8)
        );
    }
}

mod orientation {
    use super::*;

    /// A non-square, asymmetric picture: photo texture plus a solid block near the
    /// top-left corner so a mirror image is obviously different.
    fn upright() -> RgbImage {
        let mut img = photo(240, 160, 42);
        for y in 10..50 {
            for x in 10..90 {
                img.put_pixel(x, y, Rgb([250, 20, 20]));
            }
        }
        img
    }

    fn target() -> Options {
        opts(vec![Target::new("x", 160, 500_000)], Crop::Pad)
    }

    fn check(format: &str, make: impl Fn(&RgbImage, u16) -> Vec<u8>) {
        let up = upright();
        let want = support::decode_rgb(
            &convert(&make(&up, 1), &target())
                .expect("reference")
                .outputs[0]
                .jpeg,
        );
        let mirrored = support::decode_rgb(
            &convert(&make(&image::imageops::flip_horizontal(&up), 1), &target())
                .expect("mirror")
                .outputs[0]
                .jpeg,
        );
        let mirror_diff = ssim::mean_abs_diff(want.as_raw(), mirrored.as_raw());
        for o in 1..=8u8 {
            let stored = support::stored_for(&up, o);
            let src = make(&stored, u16::from(o));
            assert_eq!(
                probe(&src).expect("probe").orientation,
                o,
                "{format} orientation {o}"
            );
            let c = convert(&src, &target()).expect("convert");
            assert_eq!(c.source.orientation, o);
            assert_eq!((c.source.width, c.source.height), stored.dimensions());
            assert_eq!(
                c.outputs[0].crop,
                CropBox {
                    x: 0,
                    y: -40,
                    width: 240,
                    height: 240
                }
            );
            let got = support::decode_rgb(&c.outputs[0].jpeg);
            let d = ssim::mean_abs_diff(want.as_raw(), got.as_raw());
            assert!(
                d < 4.0 && d * 4.0 < mirror_diff,
                "{format} orientation {o}: mean abs diff {d} (mirror {mirror_diff})"
            );
        }
    }

    #[test]
    fn jpeg_exif_orientations_come_out_upright() {
        check("jpeg", |img, o| {
            support::with_exif_orientation(&support::jpeg(img, 95), o)
        });
    }

    #[test]
    fn png_exif_orientations_come_out_upright() {
        check("png", |img, o| {
            let png = support::png(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            );
            support::png_with_exif_orientation(&png, o)
        });
    }

    /// EXIF as JPEG's APP1 carries it, `Exif\0\0` first: some writers put that form into
    /// WebP and PNG too (Pillow's WebP). exiftool and Pillow read it; so must we.
    fn prefixed_exif(o: u16) -> Vec<u8> {
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend_from_slice(&support::exif_tiff(o));
        exif
    }

    #[test]
    fn webp_exif_orientations_come_out_upright_with_either_exif_form() {
        use image::ImageEncoder;
        for prefixed in [false, true] {
            check(
                if prefixed {
                    "webp (Exif\\0\\0)"
                } else {
                    "webp"
                },
                |img, o| {
                    let mut out = Vec::new();
                    let mut enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
                    let exif = if prefixed {
                        prefixed_exif(o)
                    } else {
                        support::exif_tiff(o)
                    };
                    enc.set_exif_metadata(exif).expect("webp takes EXIF");
                    enc.write_image(
                        img.as_raw(),
                        img.width(),
                        img.height(),
                        image::ExtendedColorType::Rgb8,
                    )
                    .expect("encode webp");
                    out
                },
            );
        }
    }

    #[test]
    fn png_exif_with_jpeg_style_prefix_is_read() {
        check("png (Exif\\0\\0)", |img, o| {
            let png = support::png(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            );
            let ihdr_end = 8 + 8 + 13 + 4;
            let mut out = png[..ihdr_end].to_vec();
            out.extend_from_slice(&support::png_chunk(b"eXIf", &prefixed_exif(o)));
            out.extend_from_slice(&png[ihdr_end..]);
            out
        });
    }

    #[test]
    fn large_jpeg_draft_decode_keeps_orientation() {
        // Big enough that the DCT-scaled path is taken for a 96 px target.
        let mut up = photo(1600, 1000, 43);
        for y in 50..300 {
            for x in 50..600 {
                up.put_pixel(x, y, Rgb([250, 20, 20]));
            }
        }
        let o = opts(vec![Target::new("x", 96, 50_000)], Crop::Pad);
        let want = support::decode_rgb(
            &convert(&support::jpeg(&up, 92), &o)
                .expect("reference")
                .outputs[0]
                .jpeg,
        );
        for orient in [3u8, 6, 7, 8] {
            let src = support::with_exif_orientation(
                &support::jpeg(&support::stored_for(&up, orient), 92),
                u16::from(orient),
            );
            let got = support::decode_rgb(&convert(&src, &o).expect("convert").outputs[0].jpeg);
            let d = ssim::mean_abs_diff(want.as_raw(), got.as_raw());
            assert!(d < 5.0, "orientation {orient}: {d}");
        }
    }
}

mod crops {
    use super::*;

    fn is_red(p: &Rgb<u8>) -> bool {
        p[0] > 180 && p[1] < 80 && p[2] < 80
    }
    fn is_green(p: &Rgb<u8>) -> bool {
        p[1] > 150 && p[0] < 80 && p[2] < 80
    }

    /// 200x400 portrait: top quarter red ("the head"), the rest green.
    fn portrait() -> Vec<u8> {
        let img = RgbImage::from_fn(200, 400, |_, y| {
            if y < 100 {
                Rgb([230, 0, 0])
            } else {
                Rgb([0, 200, 0])
            }
        });
        support::png(img.as_raw(), 200, 400, image::ExtendedColorType::Rgb8)
    }

    #[test]
    fn top_keeps_the_head_center_cuts_it() {
        let t = vec![Target::new("x", 100, 50_000)];
        let top = convert(&portrait(), &opts(t.clone(), Crop::Top)).expect("top");
        assert_eq!(
            top.outputs[0].crop,
            CropBox {
                x: 0,
                y: 33,
                width: 200,
                height: 200
            }
        );
        let img = support::decode_rgb(&top.outputs[0].jpeg);
        // Rows 33..100 of the source are red: the top third of the output.
        assert!(
            is_red(img.get_pixel(50, 5)) && is_red(img.get_pixel(50, 28)),
            "{:?}",
            img.get_pixel(50, 5)
        );
        assert!(is_green(img.get_pixel(50, 40)) && is_green(img.get_pixel(50, 95)));

        let center = convert(&portrait(), &opts(t, Crop::Center)).expect("center");
        assert_eq!(
            center.outputs[0].crop,
            CropBox {
                x: 0,
                y: 100,
                width: 200,
                height: 200
            }
        );
        let img = support::decode_rgb(&center.outputs[0].jpeg);
        assert!(is_green(img.get_pixel(50, 5)), "{:?}", img.get_pixel(50, 5));
    }

    #[test]
    fn pad_keeps_every_pixel_and_fills_bars() {
        // 400x200 landscape, green with a red marker in each corner.
        let img = RgbImage::from_fn(400, 200, |x, y| {
            let corner = !(40..360).contains(&x) && !(40..160).contains(&y);
            if corner {
                Rgb([230, 0, 0])
            } else {
                Rgb([0, 200, 0])
            }
        });
        let src = support::png(img.as_raw(), 400, 200, image::ExtendedColorType::Rgb8);
        let mut o = opts(vec![Target::new("x", 200, 100_000)], Crop::Pad);
        o.background = [255, 255, 255];
        let c = convert(&src, &o).expect("pad");
        assert_eq!(
            c.outputs[0].crop,
            CropBox {
                x: 0,
                y: -100,
                width: 400,
                height: 400
            }
        );
        let out = support::decode_rgb(&c.outputs[0].jpeg);
        let white = |p: &Rgb<u8>| p.0.iter().all(|v| *v > 235);
        for x in [2, 100, 197] {
            assert!(
                white(out.get_pixel(x, 10)) && white(out.get_pixel(x, 190)),
                "bars at x {x}"
            );
        }
        for (x, y) in [(8, 58), (191, 58), (8, 141), (191, 141)] {
            assert!(
                is_red(out.get_pixel(x, y)),
                "corner ({x},{y}): {:?}",
                out.get_pixel(x, y)
            );
        }
        assert!(is_green(out.get_pixel(100, 100)));
    }
}

mod hostile {
    use super::*;

    fn must_fail_cleanly(bytes: &[u8], what: &str) {
        match convert(bytes, &Options::default()) {
            Ok(c) => panic!("{what}: converted to {:?}", c.source),
            Err(e) => assert!(!e.to_string().is_empty(), "{what}"),
        }
        let _ = probe(bytes);
    }

    #[test]
    fn empty_and_text() {
        assert!(matches!(
            convert(b"", &Options::default()),
            Err(ImagingError::Empty)
        ));
        assert!(matches!(
            convert(b"Hello, this is not a photo.\n", &Options::default()),
            Err(ImagingError::UnknownFormat)
        ));
        assert!(matches!(probe(b""), Err(ImagingError::Empty)));
    }

    #[test]
    fn truncated_jpeg_and_png_at_many_cut_points() {
        let img = photo(200, 150, 11);
        let jpeg = support::with_exif_orientation(&support::jpeg(&img, 90), 6);
        let png = support::png(img.as_raw(), 200, 150, image::ExtendedColorType::Rgb8);
        for (name, full) in [("jpeg", &jpeg), ("png", &png)] {
            assert!(convert(full, &Options::default()).is_ok(), "{name} whole");
            let n = full.len();
            let mut cuts: Vec<usize> = (0..64.min(n)).collect();
            cuts.extend((1..40).map(|k| n * k / 40));
            cuts.extend(n.saturating_sub(8)..n);
            for cut in cuts {
                // A PNG cut inside its final IEND chunk still holds every pixel.
                if name == "png" && cut >= n - 12 {
                    if let Ok(c) = convert(&full[..cut], &Options::default()) {
                        assert_eq!(c.outputs[1].width, 648);
                    }
                    continue;
                }
                must_fail_cleanly(&full[..cut], &format!("{name} cut at {cut}/{n}"));
            }
        }
    }

    #[test]
    fn corrupt_bytes_never_panic() {
        let jpeg = support::jpeg(&photo(120, 120, 12), 90);
        for i in (2..jpeg.len()).step_by(37) {
            let mut b = jpeg.clone();
            b[i] ^= 0x5A;
            // May decode to garbage or fail; must not panic.
            let _ = convert(&b, &Options::default());
        }
    }

    #[test]
    fn png_declaring_100000_square_is_refused_before_decoding() {
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&support::png_chunk(b"IHDR", &ihdr));
        png.extend_from_slice(&support::png_chunk(
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        ));
        png.extend_from_slice(&support::png_chunk(b"IEND", &[]));
        match convert(&png, &Options::default()) {
            Err(ImagingError::TooManyPixels {
                width: 100_000,
                height: 100_000,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(
            probe(&png).map(|i| (i.width, i.height)).ok(),
            Some((100_000, 100_000))
        );
    }

    /// Where the entropy-coded data of a JPEG's last scan starts.
    fn scan_data_start(jpeg: &[u8]) -> usize {
        let sos = jpeg
            .windows(2)
            .rposition(|w| w == [0xFF, 0xDA])
            .expect("SOS");
        sos + 2 + usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]))
    }

    fn is_corrupt_data_error(r: Result<photobulk_imaging::Conversion, ImagingError>) -> bool {
        matches!(r, Err(ImagingError::Decode { ref reason, .. }) if reason.contains("corrupt"))
    }

    #[test]
    fn damaged_jpeg_scans_are_errors_padding_is_not() {
        let jpeg = support::jpeg(&photo(800, 800, 14), 90);
        let (start, n) = (scan_data_start(&jpeg), jpeg.len());
        assert_eq!(&jpeg[n - 2..], &[0xFF, 0xD9]);
        // Full-size decode (648 from 800) and DCT-scaled decode (96 from 800 at 1/4).
        let ad_only = opts(vec![Target::ad()], Crop::Center);
        for o in [&Options::default(), &ad_only] {
            assert!(convert(&jpeg, o).is_ok());
            // Scan cut short but closed with EOI: libjpeg would pad it with grey.
            let mut short = jpeg[..start + (n - start) / 2].to_vec();
            short.extend_from_slice(&[0xFF, 0xD9]);
            assert!(is_corrupt_data_error(convert(&short, o)), "cut scan + EOI");
            // A run of stuffed FF 00 (all one bits) is never a valid Huffman code.
            let mut garbage = jpeg.clone();
            for pair in garbage[start + 100..start + 2100].chunks_exact_mut(2) {
                pair.copy_from_slice(&[0xFF, 0x00]);
            }
            assert!(
                is_corrupt_data_error(convert(&garbage, o)),
                "garbage in the scan"
            );
            // Zero bytes after a complete scan (some camera firmware): every block is there.
            // libjpeg warns of extraneous bytes before EOI (more than its few bytes of
            // read-ahead), which is not corruption.
            let mut padded = jpeg[..n - 2].to_vec();
            padded.extend_from_slice(&[0; 32]);
            padded.extend_from_slice(&[0xFF, 0xD9]);
            assert!(convert(&padded, o).is_ok(), "padding before EOI");
        }
    }

    fn bmp_header(dib_size: u32, w: i32, h: i32) -> Vec<u8> {
        let mut b = b"BM".to_vec();
        b.extend_from_slice(&(54u32 + 12).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&54u32.to_le_bytes());
        b.extend_from_slice(&dib_size.to_le_bytes());
        b.extend_from_slice(&w.to_le_bytes());
        b.extend_from_slice(&h.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&24u16.to_le_bytes());
        b.extend_from_slice(&[0; 24]);
        b.extend_from_slice(&[0x55; 12]);
        b
    }

    /// The limits error naming `w` x `h`.
    fn refused(bytes: &[u8], o: &Options, w: u32, h: u32) -> bool {
        matches!(convert(bytes, o), Err(ImagingError::TooManyPixels { width, height, .. }) if (width, height) == (w, h))
    }

    #[test]
    fn bmp_and_webp_declaring_huge_sizes_are_refused_before_decoding() {
        // image's BMP and WebP decoders refuse these themselves, as decode errors.
        let d = Options::default();
        assert!(refused(
            &bmp_header(40, 1_000_000, 1_000_000),
            &d,
            1_000_000,
            1_000_000
        ));
        assert!(refused(
            &bmp_header(40, 1_000_000, -1_000_000),
            &d,
            1_000_000,
            1_000_000
        ));
        let mut vp8x = b"RIFF\x16\0\0\0WEBPVP8X\x0a\0\0\0".to_vec();
        vp8x.extend_from_slice(&[0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(refused(&vp8x, &d, 16_777_216, 16_777_216));
        // Small files over tighter limits.
        let mut tight = Options::default();
        tight.limits.max_side = 100;
        let img = image::DynamicImage::ImageRgb8(photo(160, 120, 15));
        for fmt in [image::ImageFormat::Bmp, image::ImageFormat::WebP] {
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), fmt)
                .expect("encode");
            assert!(refused(&bytes, &tight, 160, 120), "{fmt:?}");
        }
    }

    fn jpeg_with_sof(w: u16, h: u16) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        j.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
        j.extend_from_slice(&h.to_be_bytes());
        j.extend_from_slice(&w.to_be_bytes());
        j.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        j.extend_from_slice(&[
            0xFF, 0xDA, 0x00, 0x0C, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 0x3F, 0,
        ]);
        j.extend_from_slice(&[0x12, 0x34, 0x56, 0xFF, 0xD9]);
        j
    }

    #[test]
    fn jpeg_sof_declaring_65535_square_is_refused_before_decoding() {
        match convert(&jpeg_with_sof(65535, 65535), &Options::default()) {
            Err(ImagingError::TooManyPixels {
                width: 65535,
                height: 65535,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // With the limits lifted, libjpeg's own checks must still fail cleanly.
        let o = Options {
            limits: Limits {
                max_pixels: u64::MAX,
                max_side: u32::MAX,
                max_input_bytes: usize::MAX,
            },
            ..Options::default()
        };
        assert!(convert(&jpeg_with_sof(65535, 65535), &o).is_err());
        assert!(
            convert(&jpeg_with_sof(1000, 1000), &o).is_err(),
            "no tables: must fail"
        );
    }

    #[test]
    fn input_over_the_byte_limit() {
        let mut o = Options::default();
        o.limits.max_input_bytes = 100;
        let src = support::jpeg(&photo(100, 100, 13), 90);
        assert!(matches!(
            convert(&src, &o),
            Err(ImagingError::InputTooLarge { limit: 100, .. })
        ));
    }

    fn heic_built_in() -> bool {
        cfg!(feature = "heic")
    }

    #[test]
    fn heic_brand_is_recognised() {
        let mut b = vec![0, 0, 0, 24];
        b.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
        b.extend_from_slice(&[0; 32]);
        match convert(&b, &Options::default()) {
            Err(ImagingError::Unsupported { feature, .. }) => {
                assert_eq!(feature, "heic");
                assert!(!heic_built_in(), "heic feature is on but HEIC was refused");
            }
            Err(ImagingError::Decode { format, .. }) => assert_eq!(format, "heic"),
            other => panic!("{other:?}"),
        }
    }
}
