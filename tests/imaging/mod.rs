//! `photobulk_imaging` against the real fixtures in `tests/fixtures/` (see its README for where
//! each file comes from and `scripts/make-fixtures` for how it is made).
//!
//! What is checked, and how:
//! - Orientation by **pixels**: each oriented fixture is converted, decoded, and compared (mean
//!   absolute difference per channel, 0..255) with the upright original converted the same way.
//!   The same comparison against the seven wrong rotations/flips of the reference must be far
//!   above the threshold, which proves the threshold can tell them apart.
//! - Every good fixture → both default targets: exact size, bytes ≤ budget, a clean decode, and no
//!   metadata segments (APP1 EXIF/XMP, APP13 IPTC, COM) nor tell-tale strings in the output.
//! - Every file in `bad/` is an `Err`, never a panic; truncated copies of every good fixture
//!   never panic.
//! - Colour (CMYK, greyscale, alpha) against references made by ImageMagick or computed here.
//!
//! On a pixel mismatch the got/want images are written to `tests/output/imaging/` (git-ignored)
//! for a human to look at.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use image::{imageops, ImageFormat, Rgb, RgbImage};
use photobulk_imaging::{
    convert, metadata, probe, Conversion, Crop, ImagingError, Limits, Options, Output, Target,
    Warning,
};

/// Largest mean absolute difference (0..255 per channel) between a correctly oriented output
/// and the reference. Measured headroom: ~1.3–2.7 for the generated fixtures, ~4.5 for Pillow's
/// hopper files (their pixels went through extra JPEG generations).
const SAME: f64 = 10.0;
/// Smallest difference a wrong orientation must show (measured 58–68 for these photos).
const DIFFERENT: f64 = 30.0;

// ------------------------------------------------------------------------------------------
// helpers
// ------------------------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

fn read(rel: &str) -> Vec<u8> {
    let path = fixtures().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// Relative paths (e.g. `orient/jpeg_o6.jpg`) of every file in a fixture folder, sorted.
fn list(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join(dir))
        .unwrap_or_else(|e| panic!("cannot list fixtures/{dir}: {e}"))
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "README.md")
        .map(|name| format!("{dir}/{name}"))
        .collect();
    names.sort();
    names
}

fn is_heic(rel: &str) -> bool {
    rel.ends_with(".heic")
}

/// Fixtures that must convert: everything outside `bad/` except the too-small ones, and HEIC only
/// when the `heic` feature is built in.
fn good_fixtures() -> Vec<String> {
    ["real", "orient", "formats", "meta", "edge", "colour"]
        .iter()
        .flat_map(|dir| list(dir))
        .filter(|rel| !rel.starts_with("edge/too_"))
        .filter(|rel| cfg!(feature = "heic") || !is_heic(rel))
        .collect()
}

fn expected_format(rel: &str) -> &'static str {
    match rel.rsplit('.').next().unwrap_or_default() {
        "jpg" => "jpeg",
        "png" => "png",
        "gif" => "gif",
        "bmp" => "bmp",
        "tif" => "tiff",
        "webp" => "webp",
        "heic" => "heic",
        other => panic!("fixture {rel}: unexpected extension {other}"),
    }
}

/// These tests compare with centre-crop references (orientation, colour, upscaling): they name
/// the centre crop, since the default is now the face crop (tested in crates/imaging/tests/face.rs).
fn opts() -> Options {
    Options {
        targets: vec![Target::ad(), Target::hd()],
        crop: Crop::Center,
        ..Options::default()
    }
}

fn opts_crop(crop: Crop) -> Options {
    Options { crop, ..opts() }
}

fn ad_only() -> Options {
    Options {
        targets: vec![Target::ad()],
        crop: Crop::Center,
        ..Options::default()
    }
}

fn convert_ok(rel: &str, opts: &Options) -> Conversion {
    let input = read(rel);
    match catch_unwind(AssertUnwindSafe(|| convert(&input, opts))) {
        Ok(Ok(conversion)) => conversion,
        Ok(Err(e)) => panic!("{rel}: convert failed: {e} ({e:?})"),
        Err(_) => panic!("{rel}: convert panicked"),
    }
}

fn output<'a>(conversion: &'a Conversion, target: &str) -> &'a Output {
    conversion
        .outputs
        .iter()
        .find(|o| o.target == target)
        .unwrap_or_else(|| panic!("no output for target {target}: {:?}", conversion.outputs))
}

fn decode(jpeg: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)
        .unwrap_or_else(|e| panic!("output does not decode as JPEG: {e}"))
        .to_rgb8()
}

/// Mean absolute difference per channel, 0..255.
fn mad(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(
        a.dimensions(),
        b.dimensions(),
        "comparing images of different sizes"
    );
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

fn mean_rgb(img: &RgbImage) -> [f64; 3] {
    let mut sum = [0u64; 3];
    for p in img.pixels() {
        for c in 0..3 {
            sum[c] += u64::from(p[c]);
        }
    }
    let n = f64::from(img.width() * img.height());
    [sum[0] as f64 / n, sum[1] as f64 / n, sum[2] as f64 / n]
}

/// The seven rotations/flips of a square image other than the identity.
fn wrong_orientations(img: &RgbImage) -> Vec<(&'static str, RgbImage)> {
    let flipped = imageops::flip_horizontal(img);
    vec![
        ("mirrored", flipped.clone()),
        ("rotated 180", imageops::rotate180(img)),
        ("flipped vertically", imageops::flip_vertical(img)),
        ("transposed", imageops::rotate90(&flipped)),
        ("rotated 90", imageops::rotate90(img)),
        ("transversed", imageops::rotate270(&flipped)),
        ("rotated 270", imageops::rotate270(img)),
    ]
}

/// Writes got/want to the git-ignored `tests/output/imaging/` for a human to look at.
fn save_mismatch(name: &str, got: &RgbImage, want: &RgbImage) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/output/imaging");
    let stem = name.replace(['/', '.'], "_");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = got.save(dir.join(format!("{stem}_got.png")));
        let _ = want.save(dir.join(format!("{stem}_want.png")));
    }
    format!("(images in {})", dir.display())
}

/// Compares every target of `got` with the same target of `want`: close to it, and far from each
/// wrong orientation of it. Returns the failures.
fn compare_upright(name: &str, got: &Conversion, want: &Conversion, same: f64) -> Vec<String> {
    let mut failures = Vec::new();
    for want_out in &want.outputs {
        let want_img = decode(&want_out.jpeg);
        let got_img = decode(&output(got, &want_out.target).jpeg);
        let d = mad(&got_img, &want_img);
        let label = format!("{name} [{}]", want_out.target);
        if d >= same {
            let saved = save_mismatch(&label, &got_img, &want_img);
            failures.push(format!(
                "{label}: differs from upright reference by {d:.2} (limit {same}) {saved}"
            ));
        }
        for (what, wrong) in wrong_orientations(&want_img) {
            let dw = mad(&got_img, &wrong);
            if dw <= DIFFERENT {
                failures.push(format!(
                    "{label}: only {dw:.2} from the reference {what} (need > {DIFFERENT}): content too symmetric or output wrongly oriented"
                ));
            }
        }
    }
    failures
}

/// Marker bytes (the xx of FF xx) of every segment in a JPEG, checking its structure.
fn jpeg_markers(jpeg: &[u8]) -> Result<Vec<u8>, String> {
    if jpeg.len() < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 {
        return Err("does not start with SOI".into());
    }
    let mut markers = vec![0xD8];
    let mut i = 2;
    loop {
        if i + 1 >= jpeg.len() {
            return Err("ends without EOI".into());
        }
        if jpeg[i] != 0xFF {
            return Err(format!("expected a marker at offset {i}"));
        }
        let m = jpeg[i + 1];
        if m == 0xFF {
            i += 1; // fill byte
            continue;
        }
        markers.push(m);
        if m == 0xD9 {
            if i + 2 != jpeg.len() {
                return Err(format!("{} bytes after EOI", jpeg.len() - i - 2));
            }
            return Ok(markers);
        }
        if i + 3 >= jpeg.len() {
            return Err("segment header cut off".into());
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        i += 2 + len;
        if m == 0xDA {
            // Entropy-coded data runs to the next marker that is not a stuffed 00 or an RSTn.
            while i + 1 < jpeg.len()
                && !(jpeg[i] == 0xFF && jpeg[i + 1] != 0 && !(0xD0..=0xD7).contains(&jpeg[i + 1]))
            {
                i += 1;
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every promise about one output: exact size, within budget, decodes, no metadata.
fn check_output(rel: &str, out: &Output, target: &Target) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |msg: String| failures.push(format!("{rel} [{}]: {msg}", target.name));
    if (out.width, out.height) != (target.size, target.size) {
        fail(format!(
            "reported {}x{}, want {}x{}",
            out.width, out.height, target.size, target.size
        ));
    }
    if out.bytes != out.jpeg.len() {
        fail(format!(
            "reports {} bytes but the JPEG has {}",
            out.bytes,
            out.jpeg.len()
        ));
    }
    if out.jpeg.len() > target.max_bytes {
        fail(format!(
            "{} bytes, over the {} budget",
            out.jpeg.len(),
            target.max_bytes
        ));
    }
    if !(1..=100).contains(&out.quality) {
        fail(format!("quality {} out of 1..=100", out.quality));
    }
    if out.sha256.len() != 64 || !out.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        fail(format!("sha256 {:?} is not 64 hex digits", out.sha256));
    }
    match image::load_from_memory_with_format(&out.jpeg, ImageFormat::Jpeg) {
        Ok(img) if (img.width(), img.height()) == (target.size, target.size) => {}
        Ok(img) => fail(format!("decodes as {}x{}", img.width(), img.height())),
        Err(e) => fail(format!("does not decode: {e}")),
    }
    match jpeg_markers(&out.jpeg) {
        Ok(markers) => {
            for m in markers {
                match m {
                    0xE1 => fail("has an APP1 segment (EXIF/XMP)".into()),
                    0xED => fail("has an APP13 segment (IPTC/Photoshop)".into()),
                    0xFE => fail("has a COM (comment) segment".into()),
                    0xE3..=0xEC | 0xEF => fail(format!("has an APP{} segment", m - 0xE0)),
                    _ => {}
                }
            }
        }
        Err(e) => fail(format!("malformed JPEG structure: {e}")),
    }
    for needle in [
        &b"Exif\0"[..],
        b"http://ns.adobe.com",
        b"Photoshop 3.0",
        b"FixturePhone",
        b"secret",
        b"Fixture Photographer",
    ] {
        if contains(&out.jpeg, needle) {
            fail(format!("contains {:?}", String::from_utf8_lossy(needle)));
        }
    }
    failures
}

fn assert_no_failures(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failure(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

// ------------------------------------------------------------------------------------------
// orientation
// ------------------------------------------------------------------------------------------

/// Oriented fixtures of the 300x200 astronaut crop: (file, EXIF orientation).
fn generated_oriented() -> Vec<(String, u8)> {
    let mut v: Vec<(String, u8)> = (1..=8)
        .map(|n| (format!("orient/jpeg_o{n}.jpg"), n))
        .collect();
    for n in [3, 6, 8] {
        v.push((format!("orient/png_o{n}.png"), n));
    }
    for n in [6, 8] {
        v.push((format!("orient/tiff_o{n}.tif"), n));
        v.push((format!("orient/webp_o{n}.webp"), n));
    }
    v
}

#[test]
fn every_exif_orientation_comes_out_upright() {
    let reference = convert_ok("orient/upright.png", &opts());
    assert_eq!(reference.source.orientation, 1);
    let mut failures = Vec::new();
    for (rel, n) in generated_oriented() {
        let got = convert_ok(&rel, &opts());
        if got.source.orientation != n {
            failures.push(format!(
                "{rel}: reports orientation {}, want {n}",
                got.source.orientation
            ));
        }
        let stored = if n <= 4 { (300, 200) } else { (200, 300) };
        if (got.source.width, got.source.height) != stored {
            failures.push(format!(
                "{rel}: reports stored size {}x{}, want {}x{}",
                got.source.width, got.source.height, stored.0, stored.1
            ));
        }
        failures.extend(compare_upright(&rel, &got, &reference, SAME));
    }
    assert_no_failures(failures);
}

#[test]
fn centre_crop_of_the_upright_landscape_is_reported() {
    let got = convert_ok("orient/jpeg_o6.jpg", &opts());
    for out in &got.outputs {
        assert_eq!(
            (out.crop.x, out.crop.y, out.crop.width, out.crop.height),
            (50, 0, 200, 200),
            "target {}: crop box is in upright coordinates of the 300x200 image",
            out.target
        );
    }
}

#[test]
fn phone_sized_jpeg_with_orientation_6_comes_out_upright() {
    // 1000x1500 stored, 1500x1000 upright: the same scene as upright.png at 5x, so the reference
    // is the upright crop converted the same way (a slightly looser limit for the HD target, whose
    // reference is an upscale from 200 px).
    let reference = convert_ok("orient/upright.png", &opts());
    let got = convert_ok("orient/large_o6.jpg", &opts());
    assert_eq!(got.source.orientation, 6);
    assert_eq!((got.source.width, got.source.height), (1000, 1500));
    assert_no_failures(compare_upright(
        "orient/large_o6.jpg",
        &got,
        &reference,
        SAME,
    ));
}

#[test]
fn pillow_hopper_orientations_come_out_upright() {
    // Square 128x128 sources: dimensions cannot tell a wrong orientation, only pixels can.
    let reference = convert_ok("real/hopper.jpg", &opts());
    let mut failures = Vec::new();
    for n in 2..=8u8 {
        let rel = format!("real/hopper_orientation_{n}.jpg");
        let got = convert_ok(&rel, &opts());
        if got.source.orientation != n {
            failures.push(format!(
                "{rel}: reports orientation {}, want {n}",
                got.source.orientation
            ));
        }
        failures.extend(compare_upright(&rel, &got, &reference, SAME));
    }
    assert_no_failures(failures);
}

#[test]
fn webp_with_improper_exif_header_is_still_oriented() {
    // Pillow's file stores its EXIF chunk with a stray "Exif\0\0" prefix. exiftool and Pillow
    // both still read Orientation=6, and so must we: writers that do this exist in the wild.
    let reference = convert_ok("real/hopper.jpg", &opts());
    let got = convert_ok("real/hopper_orientation_6.webp", &opts());
    assert_eq!(
        got.source.orientation, 6,
        "orientation read through the malformed EXIF header"
    );
    assert_no_failures(compare_upright(
        "real/hopper_orientation_6.webp",
        &got,
        &reference,
        SAME,
    ));
}

// ------------------------------------------------------------------------------------------
// HEIC
// ------------------------------------------------------------------------------------------

#[cfg(feature = "heic")]
#[test]
fn heic_converts() {
    let got = convert_ok("formats/plain.heic", &opts());
    assert_eq!(got.source.format, "heic");
    assert_eq!(got.source.orientation, 1);
    let reference = convert_ok("orient/upright.png", &opts());
    assert_no_failures(compare_upright(
        "formats/plain.heic",
        &got,
        &reference,
        SAME,
    ));
}

#[cfg(feature = "heic")]
#[test]
fn heic_with_only_exif_orientation_is_rotated() {
    // heif-enc copied the JPEG's EXIF Orientation=6 and wrote no irot box: the EXIF tag is the
    // only rotation there is, so it must be applied.
    let reference = convert_ok("orient/upright.png", &opts());
    let got = convert_ok("orient/heic_o6.heic", &opts());
    assert_eq!(got.source.orientation, 6);
    assert_no_failures(compare_upright(
        "orient/heic_o6.heic",
        &got,
        &reference,
        SAME,
    ));
}

#[cfg(feature = "heic")]
#[test]
fn heic_with_irot_and_exif_orientation_is_not_rotated_twice() {
    // iPhone-style: an irot box AND EXIF Orientation=6 describing the same rotation. libheif
    // applies irot; applying the EXIF tag as well would turn the photo sideways.
    let reference = convert_ok("orient/upright.png", &opts());
    let got = convert_ok("orient/heic_irot_exif6.heic", &opts());
    assert_no_failures(compare_upright(
        "orient/heic_irot_exif6.heic",
        &got,
        &reference,
        SAME,
    ));
}

#[cfg(not(feature = "heic"))]
#[test]
fn heic_without_the_feature_is_unsupported_not_unknown() {
    match convert(&read("formats/plain.heic"), &opts()) {
        Err(ImagingError::Unsupported { format, feature }) => {
            assert!(format.to_lowercase().contains("heic"), "format {format:?}");
            assert_eq!(feature, "heic");
        }
        other => panic!("want Unsupported {{ heic }}, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// every good fixture
// ------------------------------------------------------------------------------------------

#[test]
fn every_good_fixture_converts_to_both_targets_cleanly() {
    let targets = [Target::ad(), Target::hd()];
    let mut failures = Vec::new();
    let fixtures = good_fixtures();
    assert!(
        fixtures.len() >= 40,
        "only {} good fixtures found",
        fixtures.len()
    );
    for rel in fixtures {
        let input = read(&rel);
        let conversion = match catch_unwind(AssertUnwindSafe(|| convert(&input, &opts()))) {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                failures.push(format!("{rel}: {e}"));
                continue;
            }
            Err(_) => {
                failures.push(format!("{rel}: panicked"));
                continue;
            }
        };
        if conversion.source.format != expected_format(&rel) {
            failures.push(format!(
                "{rel}: format {:?}, want {:?}",
                conversion.source.format,
                expected_format(&rel)
            ));
        }
        match probe(&input) {
            Ok(info) if info == conversion.source => {}
            Ok(info)
                if (info.format.as_str(), info.width, info.height)
                    == (
                        conversion.source.format.as_str(),
                        conversion.source.width,
                        conversion.source.height,
                    ) => {}
            Ok(info) => failures.push(format!(
                "{rel}: probe says {info:?}, convert says {:?}",
                conversion.source
            )),
            Err(e) => failures.push(format!("{rel}: probe failed: {e}")),
        }
        if conversion.outputs.len() != targets.len() {
            failures.push(format!(
                "{rel}: {} outputs, want {}",
                conversion.outputs.len(),
                targets.len()
            ));
        }
        for target in &targets {
            match conversion.outputs.iter().find(|o| o.target == target.name) {
                Some(out) => failures.extend(check_output(&rel, out, target)),
                None => failures.push(format!("{rel}: no {} output", target.name)),
            }
        }
    }
    assert_no_failures(failures);
}

#[test]
fn gps_exif_xmp_iptc_and_comments_never_reach_the_output() {
    let input = read("meta/gps_xmp.jpg");
    // The fixture really carries them (so this test can fail).
    for needle in [
        &b"Exif\0"[..],
        b"http://ns.adobe.com",
        b"FixturePhone",
        b"secret jpeg comment",
        b"Photoshop 3.0",
    ] {
        assert!(
            contains(&input, needle),
            "fixture lacks {:?}",
            String::from_utf8_lossy(needle)
        );
    }
    let conversion = convert_ok("meta/gps_xmp.jpg", &opts());
    let failures = [Target::ad(), Target::hd()]
        .iter()
        .flat_map(|t| check_output("meta/gps_xmp.jpg", output(&conversion, &t.name), t))
        .collect();
    assert_no_failures(failures);
}

/// `metadata::scan` on real files: the GPS/XMP fixture, orientation fixtures (EXIF written by
/// exiftool into JPEG, PNG eXIf, TIFF IFD0, WebP EXIF and HEIC Exif items), and outputs.
#[test]
fn metadata_scan_reports_exif_gps_and_xmp_of_real_files() {
    let m = metadata::scan(&read("meta/gps_xmp.jpg"));
    assert!(m.has_exif && m.has_gps && m.has_xmp, "{m:?}");
    let mut files = vec![
        "orient/jpeg_o6.jpg",
        "orient/png_o6.png",
        "orient/webp_o6.webp",
        "real/hopper_orientation_6.jpg",
        "real/hopper_orientation_6.webp",
    ];
    if cfg!(feature = "heic") {
        files.extend(["orient/heic_o6.heic", "orient/heic_irot_exif6.heic"]);
    }
    for rel in files {
        let m = metadata::scan(&read(rel));
        assert!(m.has_exif && !m.has_gps, "{rel}: {m:?}");
    }
    // A TIFF's own IFD0 is not EXIF unless it points to an Exif or GPS IFD.
    let m = metadata::scan(&read("orient/tiff_o6.tif"));
    assert!(!m.has_gps, "{m:?}");
    for rel in [
        "orient/upright.png",
        "formats/lossy.webp",
        "real/astronaut.jpg",
    ] {
        assert_eq!(
            metadata::scan(&read(rel)),
            metadata::Metadata::default(),
            "{rel}"
        );
    }
    let out = convert_ok("meta/gps_xmp.jpg", &opts());
    for o in &out.outputs {
        assert_eq!(metadata::scan(&o.jpeg), metadata::Metadata::default());
    }
}

#[test]
fn conversion_is_deterministic() {
    let a = convert_ok("real/astronaut.jpg", &opts());
    let b = convert_ok("real/astronaut.jpg", &opts());
    for (x, y) in a.outputs.iter().zip(&b.outputs) {
        assert_eq!(x.sha256, y.sha256, "target {}", x.target);
        assert!(
            x.jpeg == y.jpeg,
            "target {}: bytes differ between runs",
            x.target
        );
    }
}

#[test]
fn upscaling_small_sources_warns_for_the_hd_target_only() {
    // hopper is 128x128: 648/128 = 5.06x for hd, 0.75x for ad.
    let got = convert_ok("real/hopper.jpg", &opts());
    let upscaled: Vec<&Warning> = got
        .warnings
        .iter()
        .filter(|w| matches!(w, Warning::Upscaled { .. }))
        .collect();
    assert_eq!(upscaled.len(), 1, "warnings: {:?}", got.warnings);
    match upscaled[0] {
        Warning::Upscaled {
            target,
            factor_x100,
        } => {
            assert_eq!(target, "hd");
            assert!(
                (500..=510).contains(factor_x100),
                "factor_x100 {factor_x100}, want ~506"
            );
        }
        other => panic!("unexpected warning {other:?}"),
    }
    let astronaut = convert_ok("real/astronaut.jpg", &opts());
    assert!(
        !astronaut
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::Upscaled { .. })),
        "512 -> 648 is under 2x: {:?}",
        astronaut.warnings
    );
}

// ------------------------------------------------------------------------------------------
// colour
// ------------------------------------------------------------------------------------------

fn load_png(rel: &str) -> RgbImage {
    image::load_from_memory_with_format(&read(rel), ImageFormat::Png)
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .to_rgb8()
}

fn assert_colours_match(rel: &str, reference_png: &str) {
    let got = decode(&output(&convert_ok(rel, &opts()), "ad").jpeg);
    let want = load_png(reference_png);
    let (g, w) = (mean_rgb(&got), mean_rgb(&want));
    let d = mad(&got, &want);
    let inverted = RgbImage::from_fn(want.width(), want.height(), |x, y| {
        let p = want.get_pixel(x, y);
        Rgb([255 - p[0], 255 - p[1], 255 - p[2]])
    });
    assert!(
        mad(&got, &inverted) > DIFFERENT,
        "{rel}: reference and its inverse are too alike to test"
    );
    for c in 0..3 {
        assert!(
            (g[c] - w[c]).abs() < 12.0,
            "{rel}: mean colour {g:.1?} vs ImageMagick's {w:.1?} (channel {c}); inverted CMYK? {}",
            save_mismatch(rel, &got, &want)
        );
    }
    assert!(
        d < 12.0,
        "{rel}: differs from ImageMagick's rendering by {d:.2} {}",
        save_mismatch(rel, &got, &want)
    );
}

// ------------------------------------------------------------------------------------------
// colour: embedded ICC profiles are converted to sRGB (tests/fixtures/colour/)
// ------------------------------------------------------------------------------------------

const ADOBE: &str = "Compatible with Adobe RGB (1998)";

/// Adobe RGB (220, 60, 50) is sRGB (254, 57, 45) by lcms2 (`scripts/make-fixtures` prints it);
/// unconverted it would stay (220, 60, 50), 34 levels off in red. Every container's profile
/// (JPEG APP2, PNG iCCP, TIFF tag 34675, WebP ICCP) must be found and applied.
#[test]
fn adobe_rgb_red_comes_out_as_its_srgb_value_in_every_container() {
    let want = [254.0, 57.0, 45.0];
    let mut failures = Vec::new();
    for rel in [
        "colour/adobergb_red.jpg",
        "colour/adobergb_red.png",
        "colour/adobergb_red.tif",
        "colour/adobergb_red.webp",
    ] {
        let c = convert_ok(rel, &opts());
        let icc_warning = c
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::IccProfileIgnored { .. }));
        if c.source.icc_profile.as_deref() != Some(ADOBE) || icc_warning {
            failures.push(format!(
                "{rel}: profile {:?}, warnings {:?}",
                c.source.icc_profile, c.warnings
            ));
        }
        for t in ["ad", "hd"] {
            let got = mean_rgb(&decode(&output(&c, t).jpeg));
            if (0..3).any(|i| (got[i] - want[i]).abs() > 4.0) {
                failures.push(format!("{rel} {t}: mean {got:.1?}, want about {want:?}"));
            }
        }
    }
    assert_no_failures(failures);
}

/// A photo converted by lcms2 from sRGB into Adobe RGB (profile embedded) comes back like the
/// sRGB original; read without its profile it would be visibly duller.
#[test]
fn adobe_rgb_photo_comes_back_like_its_srgb_original() {
    let adobe = convert_ok("colour/adobergb_photo.jpg", &opts());
    let srgb = convert_ok("colour/untagged.jpg", &opts());
    assert_eq!(adobe.source.icc_profile.as_deref(), Some(ADOBE));
    let got = decode(&output(&adobe, "hd").jpeg);
    let want = decode(&output(&srgb, "hd").jpeg);
    let d = mad(&got, &want);
    // The same file with its profile stripped: decoded as if sRGB.
    let stripped = strip_app2(&read("colour/adobergb_photo.jpg"));
    let naive = decode(&output(&convert(&stripped, &opts()).expect("stripped"), "hd").jpeg);
    let dn = mad(&naive, &want);
    assert!(
        d < 2.5 && dn > 2.0 * d,
        "with profile {d:.2} from the sRGB original, without {dn:.2} {}",
        save_mismatch("adobergb_photo", &got, &want)
    );
}

/// A JPEG without its APP2 segments.
fn strip_app2(j: &[u8]) -> Vec<u8> {
    let mut out = j[..2].to_vec();
    let mut i = 2;
    while j[i + 1] != 0xDA {
        let end = i + 2 + usize::from(u16::from_be_bytes([j[i + 2], j[i + 3]]));
        if j[i + 1] != 0xE2 {
            out.extend_from_slice(&j[i..end]);
        }
        i = end;
    }
    out.extend_from_slice(&j[i..]);
    out
}

/// sRGB-tagged pixels are not transformed at all: the outputs are byte-identical to those
/// of the same JPEG without the profile.
#[test]
fn srgb_tagged_jpeg_is_unchanged() {
    let tagged = convert_ok("colour/srgb_tagged.jpg", &opts());
    let plain = convert_ok("colour/untagged.jpg", &opts());
    assert_eq!(tagged.source.icc_profile, None);
    assert_eq!(tagged.warnings, plain.warnings);
    for (a, b) in tagged.outputs.iter().zip(&plain.outputs) {
        assert_eq!(a.sha256, b.sha256, "{}", a.target);
    }
}

/// A profile that is not one is a warning; the pixels are taken as sRGB and convert.
#[test]
fn broken_profile_is_a_warning_and_the_photo_still_converts() {
    let broken = convert_ok("colour/broken_profile.jpg", &opts());
    let plain = convert_ok("colour/untagged.jpg", &opts());
    assert_eq!(broken.source.icc_profile, None);
    assert!(
        broken
            .warnings
            .iter()
            .any(|w| matches!(w, Warning::IccProfileIgnored { .. })),
        "{:?}",
        broken.warnings
    );
    for (a, b) in broken.outputs.iter().zip(&plain.outputs) {
        assert_eq!(a.sha256, b.sha256, "{}", a.target);
    }
}

/// `metadata::scan` names the profiles of the colour fixtures.
#[test]
fn metadata_scan_names_embedded_profiles() {
    for ext in ["jpg", "png", "tif", "webp"] {
        let rel = format!("colour/adobergb_red.{ext}");
        assert_eq!(
            metadata::scan(&read(&rel)).icc.as_deref(),
            Some(ADOBE),
            "{rel}"
        );
    }
    assert_eq!(
        metadata::scan(&read("colour/srgb_tagged.jpg"))
            .icc
            .as_deref(),
        Some("sRGB")
    );
    assert_eq!(
        metadata::scan(&read("colour/broken_profile.jpg"))
            .icc
            .as_deref(),
        Some(metadata::UNNAMED_PROFILE)
    );
    assert_eq!(metadata::scan(&read("colour/untagged.jpg")).icc, None);
}

#[test]
fn cmyk_jpeg_from_imagemagick_has_sane_colours() {
    assert_colours_match("formats/cmyk.jpg", "formats/cmyk_ref96.png");
}

#[test]
fn real_cmyk_jpeg_from_pillow_has_sane_colours() {
    assert_colours_match("real/pil_sample_cmyk.jpg", "real/pil_sample_cmyk_ref96.png");
}

#[test]
fn greyscale_jpeg_comes_out_grey_and_like_the_photo() {
    let got = decode(&output(&convert_ok("formats/grey.jpg", &opts()), "hd").jpeg);
    let spread: f64 = got
        .pixels()
        .map(|p| f64::from(p[0].max(p[1]).max(p[2]) - p[0].min(p[1]).min(p[2])))
        .sum::<f64>()
        / f64::from(got.width() * got.height());
    assert!(
        spread < 3.0,
        "grey input gave colour output (mean channel spread {spread:.2})"
    );
    // Same luminance layout as the colour original (not inverted, not shifted).
    let colour = decode(&output(&convert_ok("orient/upright.png", &opts()), "hd").jpeg);
    let luma = |img: &RgbImage| {
        RgbImage::from_fn(img.width(), img.height(), |x, y| {
            let p = img.get_pixel(x, y);
            let l = (0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
                .round() as u8;
            Rgb([l, l, l])
        })
    };
    let d = mad(&luma(&got), &luma(&colour));
    assert!(
        d < SAME,
        "grey output differs from the photo's luminance by {d:.2}"
    );
}

/// rgba16.png flattened onto `bg` and scaled to 96x96 here, independently of the crate.
fn rgba16_reference(bg: [f64; 3]) -> RgbImage {
    let img = image::load_from_memory_with_format(&read("formats/rgba16.png"), ImageFormat::Png)
        .expect("rgba16.png decodes");
    assert!(
        matches!(img, image::DynamicImage::ImageRgba16(_)),
        "fixture is not 16-bit RGBA"
    );
    let rgba = img.to_rgba32f();
    let flat = RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y);
        let a = f64::from(p[3]);
        let ch = |c: usize| {
            (f64::from(p[c]) * 255.0 * a + bg[c] * (1.0 - a))
                .round()
                .clamp(0.0, 255.0) as u8
        };
        Rgb([ch(0), ch(1), ch(2)])
    });
    imageops::resize(&flat, 96, 96, imageops::FilterType::Lanczos3)
}

#[test]
fn sixteen_bit_alpha_is_flattened_onto_white() {
    let got = decode(&output(&convert_ok("formats/rgba16.png", &opts()), "ad").jpeg);
    let on_white = rgba16_reference([255.0; 3]);
    let on_black = rgba16_reference([0.0; 3]);
    let d = mad(&got, &on_white);
    assert!(
        d < SAME,
        "differs from the white-flattened reference by {d:.2} {}",
        save_mismatch("rgba16", &got, &on_white)
    );
    assert!(
        mad(&got, &on_black) > DIFFERENT,
        "looks flattened onto black"
    );
    // The fully transparent left edge is white.
    let left = imageops::crop_imm(&got, 0, 0, 4, 96).to_image();
    let m = mean_rgb(&left);
    assert!(
        m.iter().all(|&c| c > 235.0),
        "left edge (alpha ~0) is {m:.1?}, want white"
    );
}

#[test]
fn alpha_is_flattened_onto_the_configured_background() {
    let options = Options {
        background: [0, 0, 0],
        ..opts()
    };
    let got = decode(&output(&convert_ok("formats/rgba16.png", &options), "ad").jpeg);
    let left = imageops::crop_imm(&got, 0, 0, 4, 96).to_image();
    let m = mean_rgb(&left);
    assert!(
        m.iter().all(|&c| c < 20.0),
        "left edge (alpha ~0) is {m:.1?}, want black"
    );
}

#[test]
fn animated_gif_uses_the_first_frame() {
    let reference = convert_ok("orient/upright.png", &opts());
    let got = convert_ok("formats/animated.gif", &opts());
    assert_eq!(got.source.format, "gif");
    let img = decode(&output(&got, "ad").jpeg);
    let [r, g, b] = mean_rgb(&img);
    assert!(
        b < r + 40.0 && b < g + 40.0,
        "output is blue ({r:.0},{g:.0},{b:.0}): the second frame was used"
    );
    assert_no_failures(compare_upright(
        "formats/animated.gif",
        &got,
        &reference,
        SAME,
    ));
}

// ------------------------------------------------------------------------------------------
// crops and size rules
// ------------------------------------------------------------------------------------------

/// Fraction of pixels that are the portrait's saturated red "head".
fn red_fraction(img: &RgbImage) -> f64 {
    let red = img
        .pixels()
        .filter(|p| p[0] > 150 && p[1] < 90 && p[2] < 90)
        .count();
    red as f64 / f64::from(img.width() * img.height())
}

#[test]
fn top_crop_keeps_the_head_of_a_tall_portrait() {
    let rel = "edge/portrait_400x900.jpg";
    let centre = convert_ok(rel, &opts_crop(Crop::Center));
    let top = convert_ok(rel, &opts_crop(Crop::Top));
    let c = output(&centre, "hd");
    let t = output(&top, "hd");
    assert_eq!(
        (c.crop.x, c.crop.y, c.crop.width, c.crop.height),
        (0, 250, 400, 400),
        "centre crop box"
    );
    assert_eq!(
        (t.crop.x, t.crop.width, t.crop.height),
        (0, 400, 400),
        "top crop box {:?}",
        t.crop
    );
    assert!(
        t.crop.y <= 120 && t.crop.y + 400 >= 260,
        "top crop rows {}..{} lose the head (rows 120..260)",
        t.crop.y,
        t.crop.y + 400
    );
    // The whole ellipse (pi * 90 * 70 = 19,792 px) in a 400x400 square is 12.4% of it.
    let (fc, ft) = (
        red_fraction(&decode(&c.jpeg)),
        red_fraction(&decode(&t.jpeg)),
    );
    assert!(
        ft > 0.11,
        "top crop shows {:.1}% red, want the whole head (~12.4%)",
        ft * 100.0
    );
    assert!(
        fc < 0.02,
        "centre crop unexpectedly shows {:.1}% red",
        fc * 100.0
    );
    for target in ["ad", "hd"] {
        let out = output(&top, target);
        assert_no_failures(check_output(
            rel,
            out,
            &if target == "ad" {
                Target::ad()
            } else {
                Target::hd()
            },
        ));
    }
}

#[test]
fn pad_letterboxes_onto_the_background_without_losing_pixels() {
    let rel = "edge/portrait_400x900.jpg";
    let got = convert_ok(rel, &opts_crop(Crop::Pad));
    let out = output(&got, "hd");
    assert_eq!(
        (out.crop.x, out.crop.y, out.crop.width, out.crop.height),
        (-250, 0, 900, 900)
    );
    let img = decode(&out.jpeg);
    // 400 of 900 columns are the photo: 648 * 250/900 = 180 columns of white each side.
    for x0 in [0, 648 - 170] {
        let band = imageops::crop_imm(&img, x0, 0, 170, 648).to_image();
        let m = mean_rgb(&band);
        assert!(
            m.iter().all(|&c| c > 245.0),
            "side band at x={x0} is {m:.1?}, want white"
        );
    }
    // The whole ellipse (19,792 px) in the 900x900 padded square is 2.4% of it.
    let red = red_fraction(&img);
    assert!(
        red > 0.021,
        "padded output shows {:.2}% red, want the whole head (~2.4%)",
        red * 100.0
    );
}

#[test]
fn sources_under_48_px_are_too_small() {
    for (rel, w, h) in [
        ("edge/too_small_40x40.png", 40, 40),
        ("edge/too_narrow_40x200.png", 40, 200),
    ] {
        match convert(&read(rel), &opts()) {
            Err(ImagingError::TooSmall { width, height, min }) => {
                assert_eq!((width, height, min), (w, h, 48), "{rel}");
            }
            other => panic!("{rel}: want TooSmall, got {other:?}"),
        }
    }
}

#[test]
fn configured_limits_are_enforced() {
    let input = read("real/astronaut.jpg"); // 512x512
    let small_side = Options {
        limits: Limits {
            max_side: 500,
            ..Limits::default()
        },
        ..opts()
    };
    assert!(matches!(
        convert(&input, &small_side),
        Err(ImagingError::TooManyPixels {
            width: 512,
            height: 512,
            ..
        })
    ));
    let few_pixels = Options {
        limits: Limits {
            max_pixels: 512 * 511,
            ..Limits::default()
        },
        ..opts()
    };
    assert!(matches!(
        convert(&input, &few_pixels),
        Err(ImagingError::TooManyPixels { .. })
    ));
    let few_bytes = Options {
        limits: Limits {
            max_input_bytes: 1000,
            ..Limits::default()
        },
        ..opts()
    };
    match convert(&input, &few_bytes) {
        Err(ImagingError::InputTooLarge { bytes, limit }) => {
            assert_eq!((bytes, limit), (input.len(), 1000))
        }
        other => panic!("want InputTooLarge, got {other:?}"),
    }
}

#[test]
fn unreachable_budget_names_the_smallest_size_reached() {
    // 648x648 of a real photo needs ~5 KB even at quality 1 (Pillow: 5,293 B), so 2,000 B cannot
    // be met; the error must say how close it came.
    let tight = Target {
        name: "hd".into(),
        size: 648,
        max_bytes: 2_000,
    };
    let options = Options {
        targets: vec![tight],
        ..Options::default()
    };
    match convert(&read("real/astronaut.jpg"), &options) {
        Err(ImagingError::BudgetUnreachable {
            target,
            size,
            budget,
            smallest,
            ..
        }) => {
            assert_eq!((target.as_str(), size, budget), ("hd", 648, 2_000));
            assert!(smallest > 2_000, "smallest {smallest} would have fitted");
        }
        other => panic!("want BudgetUnreachable, got {other:?}"),
    }
}

#[test]
fn absurdly_small_budget_is_refused() {
    let tiny = Target {
        name: "ad".into(),
        size: 96,
        max_bytes: 200,
    };
    let options = Options {
        targets: vec![tiny],
        ..Options::default()
    };
    match convert(&read("real/astronaut.jpg"), &options) {
        Err(
            ImagingError::BudgetUnreachable { budget: 200, .. } | ImagingError::InvalidOption(_),
        ) => {}
        other => panic!("want BudgetUnreachable or InvalidOption, got {other:?}"),
    }
}

#[test]
fn custom_target_sizes_are_exact() {
    let targets = vec![
        Target {
            name: "tiny".into(),
            size: 48,
            max_bytes: 4_000,
        },
        Target {
            name: "odd".into(),
            size: 333,
            max_bytes: 102_400,
        },
    ];
    let options = Options {
        targets: targets.clone(),
        ..Options::default()
    };
    let got = convert_ok("orient/jpeg_o8.jpg", &options);
    let failures = targets
        .iter()
        .flat_map(|t| check_output("orient/jpeg_o8.jpg", output(&got, &t.name), t))
        .collect();
    assert_no_failures(failures);
}

// ------------------------------------------------------------------------------------------
// hostile input
// ------------------------------------------------------------------------------------------

#[test]
fn every_bad_fixture_is_an_error_not_a_panic() {
    let bad = list("bad");
    assert!(bad.len() >= 20, "only {} files in bad/", bad.len());
    let mut failures = Vec::new();
    for rel in bad {
        let input = read(&rel);
        let result = catch_unwind(AssertUnwindSafe(|| convert(&input, &opts())));
        let err = match result {
            Err(_) => {
                failures.push(format!("{rel}: panicked"));
                continue;
            }
            Ok(Ok(c)) => {
                failures.push(format!("{rel}: converted ({:?}) but must fail", c.source));
                continue;
            }
            Ok(Err(e)) => e,
        };
        if err.to_string().trim().is_empty() {
            failures.push(format!("{rel}: empty error message"));
        }
        // Where the failure has one right name, check it.
        let name = rel.trim_start_matches("bad/");
        let right = match name {
            "empty.jpg" => matches!(err, ImagingError::Empty),
            "text.jpg" => matches!(err, ImagingError::UnknownFormat),
            "png_100000x100000.png"
            | "sof_65500x65500.jpg"
            | "gif_65535x65535.gif"
            | "bmp_1000000x1000000.bmp"
            | "webp_vp8x_huge.webp" => matches!(err, ImagingError::TooManyPixels { .. }),
            "heic_garbage.heic" if !cfg!(feature = "heic") => {
                matches!(err, ImagingError::Unsupported { .. })
            }
            _ => !matches!(
                err,
                ImagingError::InvalidOption(_) | ImagingError::BudgetUnreachable { .. }
            ),
        };
        if !right {
            failures.push(format!("{rel}: wrong error kind: {err:?}"));
        }
    }
    assert_no_failures(failures);
}

#[test]
fn probe_of_bad_fixtures_never_panics() {
    let mut failures = Vec::new();
    for rel in list("bad") {
        let input = read(&rel);
        if catch_unwind(AssertUnwindSafe(|| probe(&input))).is_err() {
            failures.push(format!("{rel}: probe panicked"));
        }
    }
    assert_no_failures(failures);
}

#[test]
fn declared_dimensions_are_refused_before_decoding() {
    // The bombs say how big they are; probe must report it without allocating.
    for (rel, w, h) in [
        ("bad/png_100000x100000.png", 100_000, 100_000),
        ("bad/sof_65500x65500.jpg", 65_500, 65_500),
    ] {
        match probe(&read(rel)) {
            Ok(info) => assert_eq!((info.width, info.height), (w, h), "{rel}"),
            Err(e) => assert!(
                matches!(e, ImagingError::TooManyPixels { .. }),
                "{rel}: {e:?}"
            ),
        }
    }
}

/// Cut points for a file of `len` bytes: 24 spread over the file plus the last few bytes.
fn cut_points(len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..24).map(|i| len * i / 24).collect();
    cuts.extend([
        len.saturating_sub(1),
        len.saturating_sub(2),
        len.saturating_sub(17),
    ]);
    cuts.sort_unstable();
    cuts.dedup();
    cuts.retain(|&c| c < len);
    cuts
}

#[test]
fn truncated_copies_of_every_good_fixture_never_panic() {
    let fixtures = good_fixtures();
    let options = ad_only();
    // Two workers: the sandbox has two cores.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = [0, 1]
            .into_iter()
            .map(|worker| {
                let (fixtures, options) = (&fixtures, &options);
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for rel in fixtures.iter().skip(worker).step_by(2) {
                        let input = read(rel);
                        for cut in cut_points(input.len()) {
                            let part = &input[..cut];
                            match catch_unwind(AssertUnwindSafe(|| convert(part, options))) {
                                Err(_) => failures
                                    .push(format!("{rel} cut at {cut}/{}: panicked", input.len())),
                                Ok(Ok(c)) => failures.extend(check_output(
                                    &format!("{rel} cut at {cut}"),
                                    output(&c, "ad"),
                                    &Target::ad(),
                                )),
                                Ok(Err(_)) => {}
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    });
    assert_no_failures(failures);
}

#[test]
fn fixtures_readme_lists_every_file() {
    let readme =
        std::fs::read_to_string(fixtures().join("README.md")).expect("tests/fixtures/README.md");
    let missing: Vec<String> = ["real", "orient", "formats", "meta", "edge", "bad", "colour"]
        .iter()
        .flat_map(|dir| list(dir))
        .filter(|rel| {
            let name = rel.rsplit('/').next().unwrap_or_default();
            // Numbered families are listed once as a range, e.g. `jpeg_o1..o8.jpg`.
            let family = name
                .split(|c: char| c.is_ascii_digit())
                .next()
                .unwrap_or(name);
            !readme.contains(name) && !readme.contains(&format!("`{family}"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "tests/fixtures/README.md does not mention: {missing:?}"
    );
}
