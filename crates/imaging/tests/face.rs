//! The `face` crop on real portraits and on compositions made from them here: the person
//! off-centre on tall (9:16) and wide (16:9) canvases, and the photo stored rotated with
//! EXIF Orientation 6 and 8. Framing is checked as properties against the annotated face
//! boxes (`tests/fixtures/README.md`, `../shared/faces/README.md`), never as bytes.

use image::{DynamicImage, GenericImageView, ImageBuffer, Rgb, RgbImage};
use photobulk_imaging::face::detector_runs;
use photobulk_imaging::{convert, Conversion, Crop, CropBox, ImagingError, Options, Warning};
use std::path::PathBuf;

const OBAMA: &[u8] = include_bytes!("../../../tests/fixtures/real/obama.jpg");
const BIDEN: &[u8] = include_bytes!("../../../tests/fixtures/real/biden.jpg");
const OBAMA_FACE: Face = Face {
    x: 342.0,
    y: 95.0,
    w: 300.0,
    h: 300.0,
};
const BIDEN_FACE: Face = Face {
    x: 433.0,
    y: 211.0,
    w: 314.0,
    h: 314.0,
};

/// An annotated face box (upright source pixels).
#[derive(Debug, Clone, Copy)]
struct Face {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

fn face_opts() -> Options {
    Options::default()
}

fn run(input: &[u8], crop: Crop) -> Conversion {
    let opts = Options {
        crop,
        ..Options::default()
    };
    convert(input, &opts).expect("converts")
}

/// The "well framed": the face box lies inside the square with a margin, its
/// height is 22-70 % of the side, its centre in the middle 40 % across and 22-62 % down.
fn assert_well_framed(what: &str, cb: CropBox, f: Face) {
    assert_eq!(cb.width, cb.height, "{what}: square");
    let (x, y, s) = (cb.x as f64, cb.y as f64, f64::from(cb.width));
    let margin = 0.02 * s;
    assert!(
        f.x >= x + margin
            && f.y >= y + margin
            && f.x + f.w <= x + s - margin
            && f.y + f.h <= y + s - margin,
        "{what}: face {f:?} not inside crop {cb:?} with a margin"
    );
    let share = f.h / s;
    assert!(
        (0.22..=0.70).contains(&share),
        "{what}: face height {:.0} % of the side (crop {cb:?})",
        share * 100.0
    );
    let across = (f.x + f.w / 2.0 - x) / s;
    let down = (f.y + f.h / 2.0 - y) / s;
    assert!(
        (0.30..=0.70).contains(&across),
        "{what}: face centre {:.0} % across (crop {cb:?})",
        across * 100.0
    );
    assert!(
        (0.22..=0.62).contains(&down),
        "{what}: face centre {:.0} % down (crop {cb:?})",
        down * 100.0
    );
}

fn assert_inside(what: &str, cb: CropBox, w: u32, h: u32) {
    assert_eq!(cb.width, cb.height, "{what}: square");
    assert!(
        cb.x >= 0
            && cb.y >= 0
            && cb.x + i64::from(cb.width) <= i64::from(w)
            && cb.y + i64::from(cb.height) <= i64::from(h),
        "{what}: crop {cb:?} outside {w}x{h}"
    );
}

fn crop_of(c: &Conversion) -> CropBox {
    c.outputs[0].crop
}

fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .expect("encode");
    out
}

/// `jpeg` with an EXIF APP1 segment holding Orientation `o` right after SOI.
fn with_orientation(jpeg: &[u8], o: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&o.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(app1.len() + 2).expect("small").to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("decodes")
}

/// `photo` scaled by `k` on a `cw` x `ch` canvas (a soft grey-blue gradient, like a
/// wall) at (`ox`, `oy`); returns the JPEG and the face box moved with it.
fn composition(
    photo: &[u8],
    f: Face,
    k: f64,
    cw: u32,
    ch: u32,
    ox: u32,
    oy: u32,
) -> (Vec<u8>, Face) {
    let src = decode(photo);
    let (w, h) = src.dimensions();
    let (sw, sh) = ((f64::from(w) * k) as u32, (f64::from(h) * k) as u32);
    let small = src
        .resize_exact(sw, sh, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let mut canvas: RgbImage = ImageBuffer::from_fn(cw, ch, |x, y| {
        let t = (x + y) as f32 / (cw + ch) as f32;
        Rgb([
            (150.0 + 40.0 * t) as u8,
            (160.0 + 30.0 * t) as u8,
            (175.0 + 20.0 * t) as u8,
        ])
    });
    image::imageops::overlay(&mut canvas, &small, i64::from(ox), i64::from(oy));
    let moved = Face {
        x: f.x * k + f64::from(ox),
        y: f.y * k + f64::from(oy),
        w: f.w * k,
        h: f.h * k,
    };
    (jpeg(&canvas, 90), moved)
}

#[test]
fn obama_head_and_shoulders_is_framed() {
    let c = run(OBAMA, Crop::Face);
    assert_well_framed("obama", crop_of(&c), OBAMA_FACE);
    assert_inside("obama", crop_of(&c), 910, 1137);
    let f = c.face.expect("a face");
    assert!(f.score > 0.0);
    assert!(!c.warnings.contains(&Warning::NoFace), "{:?}", c.warnings);
}

/// The vendored detector (`crates/seeta`, rewritten for speed) must find what rustface 0.1.7
/// found: its output on these two previews, recorded from the crate itself in
/// `crates/seeta/examples/detect_pgm.rustface-0.1.7.txt` (preview boxes, full scores):
/// obama 288x360 `105 32 96 96` 22.419179618358612, biden 254x576 `108 53 80 80`
/// 8.994494557380676. Here as source boxes (preview box times the preview's scale) with
/// the scores rounded as [`photobulk_imaging::FaceBox`] carries them.
#[test]
fn the_detector_finds_what_rustface_0_1_7_found() {
    use photobulk_imaging::{face::Settings, find_faces, Limits};
    for (what, input, (w, h), (pw, ph), bx, score) in [
        (
            "obama",
            OBAMA,
            (910.0, 1137.0),
            (288.0, 360.0),
            [105.0, 32.0, 96.0, 96.0],
            22.42,
        ),
        (
            "biden",
            BIDEN,
            (970.0, 2204.0),
            (254.0, 576.0),
            [108.0, 53.0, 80.0, 80.0],
            8.99,
        ),
    ] {
        let faces = find_faces(input, &Limits::default(), &Settings::default()).expect(what);
        assert_eq!(faces.len(), 1, "{what}: {faces:?}");
        let f = faces[0];
        assert_eq!(f.score, score, "{what}: {f:?}");
        let (sx, sy) = (w / pw, h / ph);
        let want = [bx[0] * sx, bx[1] * sy, bx[2] * sx, bx[3] * sy];
        let got = [f.x, f.y, f.width, f.height].map(f64::from);
        for (g, e) in got.iter().zip(want) {
            assert!(
                (g - e).abs() <= 1.0,
                "{what}: {got:?} vs rustface's {want:?}"
            );
        }
    }
}

#[test]
fn biden_full_length_keeps_the_head() {
    let c = run(BIDEN, Crop::Face);
    assert_well_framed("biden", crop_of(&c), BIDEN_FACE);
    assert_inside("biden", crop_of(&c), 970, 2204);
    // The old default kept the suit: the face is not even inside the centre square.
    let center = crop_of(&run(BIDEN, Crop::Center));
    assert!(center.y as f64 > BIDEN_FACE.y + BIDEN_FACE.h, "{center:?}");
}

#[test]
fn face_is_the_default() {
    assert_eq!(Options::default().crop, Crop::Face);
    assert_eq!(Crop::default(), Crop::Face);
    let c = convert(BIDEN, &face_opts()).expect("converts");
    assert_well_framed("biden default", crop_of(&c), BIDEN_FACE);
}

#[test]
fn off_centre_on_tall_and_wide_canvases() {
    let cases = [
        (
            "obama 9:16 right low",
            OBAMA,
            OBAMA_FACE,
            0.6,
            1080,
            1920,
            480,
            1000,
        ),
        (
            "obama 9:16 left high",
            OBAMA,
            OBAMA_FACE,
            0.6,
            1080,
            1920,
            20,
            80,
        ),
        (
            "obama 16:9 right",
            OBAMA,
            OBAMA_FACE,
            0.7,
            1920,
            1080,
            1200,
            150,
        ),
        (
            "obama 16:9 left",
            OBAMA,
            OBAMA_FACE,
            0.7,
            1920,
            1080,
            60,
            200,
        ),
        (
            "biden 16:9 left",
            BIDEN,
            BIDEN_FACE,
            0.48,
            1920,
            1080,
            150,
            10,
        ),
        (
            "biden 9:16 right",
            BIDEN,
            BIDEN_FACE,
            0.5,
            1080,
            1920,
            560,
            700,
        ),
    ];
    for (what, photo, face, k, cw, ch, ox, oy) in cases {
        let (input, f) = composition(photo, face, k, cw, ch, ox, oy);
        let c = run(&input, Crop::Face);
        assert_inside(what, crop_of(&c), cw, ch);
        assert_well_framed(what, crop_of(&c), f);
    }
}

#[test]
fn exif_orientation_6_and_8_are_applied_before_detection() {
    let upright = decode(OBAMA);
    // Orientation 6 is stored turned 90 degrees anticlockwise (shown after a clockwise
    // turn); 8 the other way.
    for (o, stored) in [(6u16, upright.rotate270()), (8, upright.rotate90())] {
        let input = with_orientation(&jpeg(&stored.to_rgb8(), 92), o);
        let c = run(&input, Crop::Face);
        assert_eq!(c.source.orientation, o as u8);
        assert_inside("rotated", crop_of(&c), 910, 1137);
        assert_well_framed(&format!("obama orientation {o}"), crop_of(&c), OBAMA_FACE);
    }
}

#[test]
fn no_face_keeps_todays_top_and_center_exactly() {
    // A flat portrait and a landscape-like gradient: nothing for the detector.
    let flat = jpeg(
        &ImageBuffer::from_pixel(600, 900, Rgb([120u8, 140, 160])),
        90,
    );
    let land = jpeg(
        &ImageBuffer::from_fn(1200, 700, |x, y| {
            Rgb([(x / 5) as u8, (100 + y / 7) as u8, (200 - y / 4) as u8])
        }),
        90,
    );
    for (what, input, old) in [
        ("flat portrait", &flat, Crop::Top),
        ("landscape", &land, Crop::Center),
    ] {
        let face = run(input, Crop::Face);
        let today = run(input, old);
        assert_eq!(face.face, None, "{what}");
        assert!(
            face.warnings.contains(&Warning::NoFace),
            "{what}: {:?}",
            face.warnings
        );
        assert_eq!(crop_of(&face), crop_of(&today), "{what}");
        let hashes = |c: &Conversion| {
            c.outputs
                .iter()
                .map(|o| o.sha256.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            hashes(&face),
            hashes(&today),
            "{what}: same pixels as today"
        );
    }
}

#[test]
fn deterministic() {
    let a = run(BIDEN, Crop::Face);
    let b = run(BIDEN, Crop::Face);
    assert_eq!(a.face, b.face);
    assert_eq!(crop_of(&a), crop_of(&b));
    assert_eq!(a.outputs[0].sha256, b.outputs[0].sha256);
}

#[test]
fn hostile_input_fails_before_any_detector_work() {
    let before = detector_runs();
    // A JPEG header declaring 60000x60000: refused from the header.
    let mut bomb = jpeg(&ImageBuffer::from_pixel(16, 16, Rgb([0u8, 0, 0])), 80);
    let sof = bomb
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("SOF0");
    bomb[sof + 5..sof + 7].copy_from_slice(&60000u16.to_be_bytes());
    bomb[sof + 7..sof + 9].copy_from_slice(&60000u16.to_be_bytes());
    match convert(&bomb, &face_opts()) {
        Err(ImagingError::TooManyPixels { .. }) => {}
        other => panic!("bomb: {other:?}"),
    }
    // Truncated, not an image, too small.
    let truncated = &OBAMA[..OBAMA.len() / 2];
    assert!(matches!(
        convert(truncated, &face_opts()),
        Err(ImagingError::Decode { .. })
    ));
    assert!(matches!(
        convert(b"not a photo at all", &face_opts()),
        Err(ImagingError::UnknownFormat)
    ));
    let tiny = jpeg(&ImageBuffer::from_pixel(30, 30, Rgb([9u8, 9, 9])), 80);
    assert!(matches!(
        convert(&tiny, &face_opts()),
        Err(ImagingError::TooSmall { .. })
    ));
    assert_eq!(detector_runs(), before, "the detector ran on hostile input");
    // And it does run on a real photo (the counter works).
    let _ = run(OBAMA, Crop::Face);
    assert!(detector_runs() > before);
}

#[test]
fn thumbnail_is_the_whole_source_upright() {
    let opts = Options {
        thumbnail: true,
        ..Options::default()
    };
    for crop in [Crop::Face, Crop::Center] {
        let c = convert(
            BIDEN,
            &Options {
                crop,
                ..opts.clone()
            },
        )
        .expect("converts");
        let t = c.thumbnail.expect("a thumbnail");
        // The preview's size: the long side at most twice the short one's target.
        let long = 2 * photobulk_imaging::face::PREVIEW_SIDE;
        assert_eq!(t.height, long, "{crop:?}");
        assert!((f64::from(t.width) - f64::from(long) * 970.0 / 2204.0).abs() <= 1.0);
        let img = decode(&t.jpeg);
        assert_eq!(img.dimensions(), (t.width, t.height));
    }
    assert!(run(BIDEN, Crop::Face).thumbnail.is_none());
}

// ---- the other real photos of ../shared/faces: only where that folder exists ----

fn shared_faces() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/faces");
    if dir.join("t1.jpg").exists() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

#[test]
fn shared_group_photo_frames_the_largest_face() {
    let Some(dir) = shared_faces() else { return };
    let input = std::fs::read(dir.join("t1.jpg")).expect("read");
    let c = run(&input, Crop::Face);
    assert_inside("t1", crop_of(&c), 1280, 886);
    assert!(
        c.warnings
            .iter()
            .any(|w| matches!(w, Warning::SeveralFaces { count } if *count >= 2)),
        "{:?}",
        c.warnings
    );
    // The largest annotated face (448, 271, 139, 139) is the one framed.
    assert_well_framed(
        "t1",
        crop_of(&c),
        Face {
            x: 448.0,
            y: 271.0,
            w: 139.0,
            h: 139.0,
        },
    );
}

#[test]
fn shared_odd_photos_give_sound_squares() {
    let Some(dir) = shared_faces() else { return };
    for (name, w, h) in [
        ("Tom_Hanks_54745.png", 112, 112),
        ("obama_partial_face.jpg", 491, 1137),
        ("mask_white.jpg", 680, 366),
        ("mask_blue.jpg", 709, 354),
    ] {
        let input = std::fs::read(dir.join(name)).expect("read");
        let c = run(&input, Crop::Face);
        assert_inside(name, crop_of(&c), w, h);
        if c.face.is_none() {
            assert!(c.warnings.contains(&Warning::NoFace), "{name}");
            assert_eq!(crop_of(&c), crop_of(&run(&input, Crop::Top)), "{name}");
        }
    }
    // Tom Hanks is already a tight square around the face: the whole picture is kept.
    let tom = run(
        &std::fs::read(dir.join("Tom_Hanks_54745.png")).expect("read"),
        Crop::Face,
    );
    assert_eq!(crop_of(&tom).width, 112);
}
