//! The windowed JPEG decode (only the rows and columns the crop needs, see
//! `window_needed`) against a whole decode of the same file: same pixels, to within
//! rounding, for every orientation, crop, DCT scale and JPEG layout; damaged data is
//! still an error when it lies outside the window.

use super::*;

/// A deterministic RGB8 `w` x `h` picture with detail at several scales (so edges of
/// the decoded window would show if they leaked into the output).
fn picture(w: u32, h: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (f64::from(x), f64::from(y));
            let hash = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 24;
            let r = 128.0 + 90.0 * (fx / 37.0).sin() * (fy / 53.0).cos() + f64::from(hash % 24);
            let g = 128.0 + 100.0 * ((fx + fy) / 71.0).sin();
            let b = f64::from((x / 8 + y / 8) % 2) * 120.0 + fy / f64::from(h) * 100.0;
            px.extend([r, g, b].map(|v| v.clamp(0.0, 255.0) as u8));
        }
    }
    px
}

#[derive(Debug, Clone, Copy)]
enum Layout {
    Yuv420,
    Yuv444,
    Progressive420,
    Grey,
}

fn jpeg(w: u32, h: u32, layout: Layout) -> Vec<u8> {
    let rgb = picture(w, h);
    let (space, px) = match layout {
        Layout::Grey => (
            mozjpeg::ColorSpace::JCS_GRAYSCALE,
            rgb.chunks_exact(3).map(|p| p[1]).collect(),
        ),
        _ => (mozjpeg::ColorSpace::JCS_RGB, rgb),
    };
    let mut c = mozjpeg::Compress::new(space);
    c.set_size(w as usize, h as usize);
    c.set_quality(92.0);
    match layout {
        Layout::Yuv444 => c.set_chroma_sampling_pixel_sizes((1, 1), (1, 1)),
        Layout::Grey => {}
        _ => c.set_chroma_sampling_pixel_sizes((2, 2), (2, 2)),
    }
    if matches!(layout, Layout::Progressive420) {
        c.set_progressive_mode();
    }
    let mut s = c.start_compress(Vec::new()).expect("start");
    s.write_scanlines(&px).expect("write");
    s.finish().expect("finish")
}

/// `jpeg` with an APP1 EXIF segment holding Orientation = `o`.
fn with_orientation(jpeg: &[u8], o: u8) -> Vec<u8> {
    let mut tiff = b"Exif\0\0II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&u16::from(o).to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(tiff.len() + 2).expect("small").to_be_bytes());
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn options(crop: Crop, targets: &[u32]) -> Options {
    Options {
        crop,
        targets: targets
            .iter()
            .map(|&s| Target::new(format!("t{s}"), s, 200_000))
            .collect(),
        ..Options::default()
    }
}

/// (max abs difference, mean abs difference, identical) of two pixel buffers.
fn diff(a: &[u8], b: &[u8]) -> (u8, f64, bool) {
    assert_eq!(a.len(), b.len());
    let mut max = 0u8;
    let mut sum = 0u64;
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sum += u64::from(d);
    }
    (max, sum as f64 / a.len() as f64, a == b)
}

/// Every orientation, crop and layout, at DCT scales 1 (targets 648 + 96 from a 610 px
/// crop), 1/2 (150 + 48) and 1/4 (70), stored portrait and landscape with sides that
/// are not multiples of the block size.
#[test]
fn windowed_decode_matches_whole_decode() {
    let mut compared = 0;
    let mut identical = 0;
    for layout in [
        Layout::Yuv420,
        Layout::Yuv444,
        Layout::Progressive420,
        Layout::Grey,
    ] {
        for (w, h) in [(610, 803), (803, 610)] {
            let base = jpeg(w, h, layout);
            for o in 1..=8u8 {
                let src = with_orientation(&base, o);
                for crop in [Crop::Center, Crop::Top, Crop::Pad] {
                    for targets in [&[648, 96][..], &[150, 48], &[70]] {
                        let opts = options(crop, targets);
                        let cut = render(&src, &opts, false).expect("windowed");
                        let all = render(&src, &opts, true).expect("whole");
                        assert_eq!(cut.source, all.source);
                        assert_eq!(cut.crop, all.crop);
                        for (t, (a, b)) in targets.iter().zip(cut.pixels.iter().zip(&all.pixels)) {
                            let (max, mean, same) = diff(a, b);
                            assert!(
                                max <= 2 && mean < 0.1,
                                "{layout:?} {w}x{h} o{o} {crop:?} target {t}: max {max}, mean {mean}"
                            );
                            compared += 1;
                            identical += usize::from(same);
                        }
                    }
                }
            }
        }
    }
    // Differences, if any, are rare rounding: most outputs are the same bytes.
    eprintln!("{identical} of {compared} outputs identical");
    assert!(
        identical * 10 >= compared * 9,
        "{identical} of {compared} identical"
    );
}

/// The decoder really decodes less: a centre crop of a sideways (Orientation 6)
/// landscape is a column band, a top crop of an upside-down portrait (3) the bottom.
#[test]
fn window_is_smaller_than_the_image() {
    let dec = |src: &[u8], window: decode::Window| {
        let mut plan = |_: &decode::Geometry| {
            Ok(decode::Plan {
                denom: 2,
                window,
                record: false,
            })
        };
        decode::decode(src, &Limits::default(), [255; 3], &mut plan).expect("decode")
    };
    let src = with_orientation(&jpeg(803, 610, Layout::Yuv420), 6);
    let all = dec(&src, decode::Window::all(803, 610));
    assert_eq!((all.x0, all.y0, all.buf_width, all.rows), (0, 0, 402, 305));
    let band = decode::Window {
        x0: 200,
        x1: 500,
        y0: 0,
        y1: 610,
    };
    let cut = dec(&src, band);
    assert!(cut.x0 <= 100 && cut.x0 + cut.buf_width >= 250, "{cut:?}");
    assert!(cut.buf_width < 200, "{cut:?}");
    assert_eq!((cut.y0, cut.rows), (0, 305));
    // At 1/2 scale of 4:2:0 the chroma needs no upsampling: the same pixels exactly.
    let row = |d: &decode::Decoded, y: u32, x: u32, n: u32| {
        let at = ((y - d.y0) * d.buf_width + (x - d.x0)) as usize * 3;
        d.rgb[at..at + n as usize * 3].to_vec()
    };
    for y in [0, 150, 304] {
        assert_eq!(
            row(&cut, y, cut.x0, cut.buf_width),
            row(&all, y, cut.x0, cut.buf_width)
        );
    }
    let bottom = decode::Window {
        x0: 0,
        x1: 803,
        y0: 400,
        y1: 610,
    };
    let cut = dec(&src, bottom);
    assert!(
        cut.y0 >= 190 && cut.y0 <= 200 && cut.y0 + cut.rows == 305,
        "{cut:?}"
    );
    for y in [cut.y0, 250, 304] {
        assert_eq!(row(&cut, y, 0, 402), row(&all, y, 0, 402));
    }
}

/// Damage in rows the window skips (above it) is still found: their entropy data is
/// decoded, only not transformed. Truncation is refused as before.
#[test]
fn damage_outside_the_window_is_still_an_error() {
    let base = jpeg(610, 803, Layout::Yuv420);
    // Upside down: the top crop is the stored bottom, so the window skips the top rows.
    let src = with_orientation(&base, 3);
    let opts = options(Crop::Top, &[150, 48]);
    let r = render(&src, &opts, false).expect("clean file");
    assert_eq!(r.pixels.len(), 2);
    let sos = src
        .windows(2)
        .rposition(|w| w == [0xFF, 0xDA])
        .expect("SOS");
    let start = sos + 2 + usize::from(u16::from_be_bytes([src[sos + 2], src[sos + 3]]));
    let mut garbage = src.clone();
    for pair in garbage[start + 50..start + 1050].chunks_exact_mut(2) {
        pair.copy_from_slice(&[0xFF, 0x00]);
    }
    match convert(&garbage, &opts) {
        Err(ImagingError::Decode { reason, .. }) => assert!(reason.contains("corrupt"), "{reason}"),
        other => panic!("damaged rows above the window: {other:?}"),
    }
    for cut in [start + 10, src.len() / 2, src.len() - 3] {
        assert!(
            matches!(
                convert(&src[..cut], &opts),
                Err(ImagingError::Decode { .. })
            ),
            "truncated at {cut}"
        );
    }
}

/// A decode of `src` with `plan` that uses `rec` (`decode::decode_replay`) gives the
/// same rows and columns and the same pixels, byte for byte, as one that parses the
/// whole file again.
fn assert_replay_matches(
    src: &[u8],
    plan: &dyn Fn(&decode::Geometry) -> Result<decode::Plan, ImagingError>,
    rec: &crate::huffman::Recording,
    what: &str,
) {
    let again = decode::decode(src, &Limits::default(), [255; 3], &mut |g| plan(g)).expect(what);
    let replayed =
        decode::decode_replay(src, &Limits::default(), &mut |g| plan(g), rec.clone()).expect(what);
    assert_eq!(
        (replayed.x0, replayed.y0, replayed.buf_width, replayed.rows),
        (again.x0, again.y0, again.buf_width, again.rows),
        "{what}"
    );
    assert!(replayed.rgb == again.rgb, "{what}");
}

/// The `face` crop's second decode uses what the first one recorded (`Plan::record`,
/// `decode::decode_replay`: where each MCU starts, so that it parses only the window's
/// MCUs): the same pixels, byte for byte, as a decode that parses the whole file again,
/// for every DCT scale and three windows, baseline 4:2:0 and grey; where the recording
/// is not made (mozjpeg's default multi-scan output), nothing is recorded.
#[test]
fn replayed_mcus_decode_like_the_file() {
    let plan = |denom: u32, window: decode::Window, record: bool| {
        move |_: &decode::Geometry| {
            Ok(decode::Plan {
                denom,
                window,
                record,
            })
        }
    };
    let baseline = |grey: bool| {
        let rgb = picture(803, 610);
        let mut out = Vec::new();
        let e = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
        if grey {
            let g: Vec<u8> = rgb.chunks_exact(3).map(|p| p[1]).collect();
            image::ImageEncoder::write_image(e, &g, 803, 610, image::ExtendedColorType::L8)
        } else {
            image::ImageEncoder::write_image(e, &rgb, 803, 610, image::ExtendedColorType::Rgb8)
        }
        .expect("encode");
        out
    };
    for (layout, grey) in [("4:2:0", false), ("grey", true)] {
        let src = with_orientation(&baseline(grey), 6);
        let all = decode::Window::all(803, 610);
        let first = decode::decode(&src, &Limits::default(), [255; 3], &mut plan(8, all, true))
            .expect("first decode");
        assert_eq!((first.buf_width, first.rows), (101, 77), "{layout}");
        let rec = first
            .recording
            .unwrap_or_else(|| panic!("{layout}: not recorded"));
        for denom in [1, 2, 4, 8] {
            for window in [
                all,
                decode::Window {
                    x0: 200,
                    x1: 500,
                    y0: 100,
                    y1: 400,
                },
                decode::Window {
                    x0: 0,
                    x1: 803,
                    y0: 0,
                    y1: 333,
                },
            ] {
                assert_replay_matches(
                    &src,
                    &plan(denom, window, false),
                    &rec,
                    &format!("{layout} 1/{denom} {window:?}"),
                );
            }
        }
    }
    let progressive = jpeg(803, 610, Layout::Yuv420);
    let d = decode::decode(
        &progressive,
        &Limits::default(),
        [255; 3],
        &mut plan(8, decode::Window::all(803, 610), true),
    )
    .expect("progressive");
    assert!(d.recording.is_none());
}

/// The same on real files: restart markers (4:2:0, 4:2:2), CMYK with restarts, a phone
/// photo with EXIF orientation; the whole picture and a window in its middle (the
/// reader jumps into each row and across restart markers).
#[test]
fn replayed_mcus_on_the_fixtures() {
    for name in [
        "formats/restart.jpg",
        "formats/restart_rows_422.jpg",
        "real/pil_sample_cmyk.jpg",
        "real/hopper_orientation_6.jpg",
    ] {
        let src = crate::huffman_tests::fixture(name);
        let plan = |denom: u32, middle: bool, record: bool| {
            move |g: &decode::Geometry| {
                let window = if middle {
                    decode::Window {
                        x0: g.width / 3,
                        x1: g.width * 2 / 3,
                        y0: g.height / 3,
                        y1: g.height * 2 / 3,
                    }
                } else {
                    decode::Window::all(g.width, g.height)
                };
                Ok(decode::Plan {
                    denom,
                    window,
                    record,
                })
            }
        };
        let first = decode::decode(
            &src,
            &Limits::default(),
            [255; 3],
            &mut plan(8, false, true),
        )
        .expect(name);
        let rec = first.recording.expect(name);
        for denom in [1, 2] {
            for middle in [false, true] {
                assert_replay_matches(
                    &src,
                    &plan(denom, middle, false),
                    &rec,
                    &format!("{name} 1/{denom} middle {middle}"),
                );
            }
        }
    }
}

/// The `face` crop's preview decode (the whole picture at 1/8, recorded) has our
/// decoder compute the rows libjpeg skips (`huffman::DcPreview`: 1x1 and 2x2 IDCTs,
/// libjpeg's colour converter): the same pixels, byte for byte, as libjpeg's own decode
/// at 1/8, on baseline 4:2:0 pictures of awkward sizes (partial MCUs, one MCU row),
/// at qualities up to 100 with noise (large coefficients), with restart markers, and
/// on the fixtures; layouts it does not take (4:4:4, 4:2:2, grey, CMYK, progressive)
/// are decoded by libjpeg as before.
#[test]
fn dc_preview_matches_libjpeg() {
    let plan = |record: bool| {
        move |g: &decode::Geometry| {
            Ok(decode::Plan {
                denom: 8,
                window: decode::Window::all(g.width, g.height),
                record,
            })
        }
    };
    let baseline = |w: u32, h: u32, q: u8, noise: bool| {
        let mut rgb = picture(w, h);
        if noise {
            let mut seed = 0x2545_F491_4F6C_DD1D_u64 ^ u64::from(w * 31 + h);
            for p in &mut rgb {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *p = p.wrapping_add((seed % 97) as u8);
            }
        }
        // Baseline (one interleaved scan), 4:2:0.
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_fastest_defaults();
        c.set_size(w as usize, h as usize);
        c.set_quality(f32::from(q));
        c.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
        let mut s = c.start_compress(Vec::new()).expect("start");
        s.write_scanlines(&rgb).expect("write");
        s.finish().expect("finish")
    };
    let mut sources: Vec<(String, Vec<u8>, bool)> = Vec::new();
    for (w, h) in [
        (803, 610),
        (16, 16),
        (17, 9),
        (250, 31),
        (129, 1000),
        (1000, 8),
    ] {
        for (q, noise) in [(75, false), (92, false), (100, true)] {
            sources.push((
                format!("{w}x{h} q{q} noise {noise}"),
                with_orientation(&baseline(w, h, q, noise), 6),
                true,
            ));
        }
    }
    for (name, taken) in [
        ("formats/restart.jpg", true),
        ("formats/restart_rows_422.jpg", false),
        ("real/pil_sample_cmyk.jpg", false),
        ("real/hopper_orientation_6.jpg", true),
    ] {
        sources.push((name.into(), crate::huffman_tests::fixture(name), taken));
    }
    for (layout, name) in [(Layout::Yuv444, "4:4:4"), (Layout::Grey, "grey")] {
        sources.push((name.into(), jpeg(803, 610, layout), false));
    }
    for (what, src, taken) in &sources {
        let before = crate::huffman::DC_PREVIEWS.with(std::cell::Cell::get);
        let ours = decode::decode(src, &Limits::default(), [255; 3], &mut plan(true)).expect(what);
        let used = crate::huffman::DC_PREVIEWS.with(std::cell::Cell::get) > before;
        let theirs =
            decode::decode(src, &Limits::default(), [255; 3], &mut plan(false)).expect(what);
        assert_eq!(
            used,
            *taken && cfg!(target_arch = "x86_64") && ours.rows > 2,
            "{what}: preview taken"
        );
        assert_eq!(
            (ours.x0, ours.y0, ours.buf_width, ours.rows),
            (theirs.x0, theirs.y0, theirs.buf_width, theirs.rows),
            "{what}"
        );
        assert!(ours.rgb == theirs.rgb, "{what}: pixels differ");
        if *taken {
            assert!(ours.recording.is_some(), "{what}: recorded");
        }
    }
}
