//! Imaging: any photo in, AD- and Exchange-ready JPEGs out.
//!
//! # What it is for
//! Administrators hand PhotoBulk whatever their users' phones and cameras produced:
//! sideways iPhone HEICs, 12 MP JPEGs with GPS in the EXIF, CMYK scans, PNGs with
//! alpha. Directories want something else: Active Directory's `thumbnailPhoto` is a
//! 96x96 JPEG that must stay <= 10,240 bytes (or Entra Connect never passes it on to
//! Exchange Online), and Exchange's HD photo is 648x648. [`convert`] turns one into
//! the other: decode → apply orientation → choose a square crop → Lanczos3 resize →
//! encode at the highest JPEG quality that fits each byte budget, with no metadata.
//!
//! # Why it is shaped so
//! - **Pure and synchronous, bytes in → bytes out.** No files, no network, no threads:
//!   callers (CLI, engine) own I/O and parallelism, tests need no temp dirs, and the
//!   same input always gives the same bytes (the SHA-256 in [`Output`] is stable).
//! - **Every input is hostile.** Sizes are read from headers and checked against
//!   [`Limits`] *before* any pixel buffer exists, so a decompression bomb is an error,
//!   not an OOM; truncated or corrupt JPEGs are refused rather than padded with grey;
//!   codec failures (including libjpeg's unwinding errors) become [`ImagingError`] values.
//! - **Speed by not touching pixels we do not need.** A large JPEG is decoded at a
//!   reduced DCT scale (1/2, 1/4, 1/8, like Pillow's `draft`) whenever the crop still
//!   has at least [`DRAFT_SAFETY`] x the largest target's pixels; crop and resize are
//!   one `fast_image_resize` pass straight out of the *stored* (un-rotated) pixels,
//!   and only the small result is rotated upright; smaller targets are resized from
//!   the largest target's output (96 from 648), not from the source.
//! - **The crop is a strategy.** [`Crop`] values map to a [`CropStrategy`]; geometric
//!   ones see only the upright size, [`FaceCrop`] (the default, [`Crop::Face`]) also a
//!   small upright grey preview. Callers pass [`Crop`] through. See *Face crop* below.
//! - **One JPEG encoder, chosen by measurement** (see below); the quality search is a
//!   bracketed search that starts where a q100 sample of every 8th block row says the
//!   budget lies and follows the typical shape of JPEG size against quality (a phone
//!   photo at the 648 budget costs four probes that count symbols, then one write);
//!   the answer is still the highest quality that fits by real sizes; an unreachable
//!   budget names the smallest size reached.
//!
//! # Codecs
//! JPEG is decoded by `mozjpeg` (libjpeg-turbo with SIMD) with our own Huffman decoder
//! in place of libjpeg-turbo's for sequential scans (`huffman`: same coefficients, so
//! the same pixels, in ~55 % fewer instructions), and encoded by our own copy of
//! its baseline encoder (see *Encoder choice*); libjpeg-turbo can decode
//! at a DCT scale, handles CMYK/YCCK (Adobe-inverted CMYK is recognised by its APP14
//! marker), and is the fastest decoder we measured. PNG, GIF (first frame), BMP, TIFF
//! and WebP go through the `image` crate with its limits set; HEIC/HEIF through
//! libheif behind the `heic` feature. A HEIC's own rotation boxes (`irot`/`imir`) are
//! applied by libheif and its EXIF orientation is then ignored (iPhones write both);
//! a HEIC without such boxes gets its EXIF orientation applied like any other format.
//! libjpeg reports *corrupt entropy data* (a bad Huffman code, a marker in the middle
//! of a scan, data that ends early) only as a warning and carries on with grey; our
//! own libjpeg error manager (a small FFI module, `libjpeg_errors`) makes those
//! warnings a [`ImagingError::Decode`]. Padding bytes after a complete scan are not
//! corruption and still convert. Truncation is caught from the markers, before
//! libjpeg runs. EXIF in WebP and PNG is read with or without a leading `Exif\0\0`.
//!
//! Colour: greyscale, 16-bit, palette and CMYK sources all become 8-bit RGB; alpha is
//! flattened onto [`Options::background`]. An embedded ICC profile (JPEG APP2
//! `ICC_PROFILE`, PNG `iCCP`, WebP `ICCP`, TIFF tag 34675, HEIC `colr` ICC) is applied
//! before resizing: the pixels are converted to sRGB with `moxcms` (pure Rust, ICC v2 and
//! v4, matrix and LUT profiles, greyscale, CMYK for CMYK JPEGs), skipped when the profile
//! is sRGB already, and an unusable profile is a [`Warning::IccProfileIgnored`] (pixels
//! taken as sRGB), never a failure; [`SourceInfo::icc_profile`] names the profile that was
//! applied. HEIC `nclx` colour (no ICC) is taken as sRGB. Profiles are never copied to
//! the output. [`metadata::scan`] reports EXIF/GPS/XMP/ICC from headers only, for reports.
//!
//! # Face crop
//! The default crop frames head and shoulders like an ID photo: the main face (largest;
//! among faces at least 90 % as large, the one nearest the centre) is [`crop::FACE_SHARE`]
//! (45 %) of the square's side, its centre [`crop::FACE_CENTRE_DOWN`] (40 %) of the side
//! from the top, centred across; the square is clamped inside the image (it shrinks rather
//! than pads) and, as for every crop, a square smaller than a target is reported as
//! [`Warning::Upscaled`]. No face: [`Crop::Top`]'s square exactly (landscapes centred),
//! with [`Warning::NoFace`]; several: [`Warning::SeveralFaces`]; a face under
//! [`face::TRUSTED_FACE`] preview pixels: [`Warning::SmallFace`].
//!
//! **Pipeline.** The strategy says it wants a preview. A JPEG too large to be decoded
//! whole at full scale (short side >= 2 x [`DRAFT_SAFETY`] x 648) is parsed whole once
//! and then only in part: first all of it is decoded at the coarsest DCT scale that
//! keeps the preview's [`face::PREVIEW_SIDE`] (1/8 for a 12 MP photo), while our Huffman
//! decoder records where each MCU starts (`huffman::Recording`: the bit reader, DC
//! predictors and restart count, 80 bytes an MCU, for pictures up to
//! `RECORD_MAX_PIXELS`); at 1/8 a YCbCr 4:2:0 file (phone and camera photos) is
//! not run through libjpeg's per-MCU loop: libjpeg skips all but its last MCU row and
//! our decoder turns each skipped MCU into pixels itself (`huffman::DcPreview`:
//! libjpeg's 1x1 IDCT for luma, its SSE2 2x2 IDCT written as the same intrinsics for
//! chroma, libjpeg's own colour converter; the same pixels byte for byte, test
//! `dc_preview_matches_libjpeg`); the preview is made from those pixels (box filter, EXIF
//! orientation applied, BT.601 luma), faces are detected and the square chosen; then
//! only the window that square needs is decoded, at the scale it needs, and only the
//! MCUs libjpeg uses are parsed, the reader jumping to the recorded start of the first
//! one of each row (`decode::decode_replay`; the same pixels byte for byte as a decode
//! of the file, tests `replayed_mcus_*`, restart markers included). Smaller
//! pictures and other formats are decoded once, whole, at the scale the short side
//! affords, and the preview is made from those pixels; a JPEG our Huffman decoder does
//! not take (progressive, multi-scan) is decoded a second time (finer scale, only the
//! window) when the square is too small for the first scale.
//! Hostile input fails in the header checks before any pixel (or detector) work.
//!
//! Measured with `examples/face_cost.rs` under callgrind (bench photos, 12 MP, both
//! default targets, one thread; instructions, repeatable). `user01` (Orientation 6, a
//! face 438 px high framed in a 973 px square): `center` 289.6 M; `face` 455.4 M with
//! the old pipeline (a whole 1/2-scale decode, then a full-scale re-decode that parsed
//! the file again: 1.59x), 424.3 M when the second decode replayed recorded coefficients
//! (1.48x; recording them cost 52 M more than parsing), **352.9 M (1.22x)** with the MCU
//! starts. `user03` (no face: `top`'s 3000 px square): `center` 287.1 M, `face` 481.4 M
//! (1.68x): the whole-file parse of the first decode (~82 M) and the detector (~86 M)
//! buy nothing there. 9 of the 12 bench photos have a face found. The detector itself
//! (rustface) was ~78-80 M a photo on its 288x384 preview: LAB feature maps 18.5 M, SURF
//! feature maps 17.5 M, classifiers 19 M, its own loop and pyramid ~19 M, plus ~6.6 M
//! parsing the model per thread. Vendored as `photobulk-seeta` (`crates/seeta`, same
//! boxes and scores, see its README) it is ~34-35 M, the model parsed once per process:
//! `user01` `face` **304.1 M (1.05x `center`'s 289.5 M)**, `user03` `face` 432.0 M.
//! With the DC preview (2026-12-05, third session, same measurement): the first,
//! whole-picture decode of `user01` 120.7 M → 102.9 M (libjpeg's per-MCU loop, its
//! IDCT calls and their zeroing gone; the Huffman parse, ~80 M, is left); `user01`
//! `face` **286.3 M (0.99x `center`)**, `user03` (no face) 414.2 M (1.44x); all 12
//! bench photos 3,889.6 M → 3,676.3 M (`center` 3,331.4 M: 1.17x → 1.10x). A photo
//! with a face now costs about what `center` does; the 3 without one still pay the
//! preview decode (~100 M), the detector (~35 M) and a second parse of `top`'s square.
//!
//! **Detector (measured).** Candidates in the offline crate mirror: `rustface` 0.1.7
//! (SeetaFace's funnel-structured frontal cascade, pure Rust, 1.2 MB model in the crate)
//! and `tract-onnx`/`tract-tflite` 0.23.9 (an inference engine; it needs a model file
//! from elsewhere, e.g. an npm package, and pulls in a large dependency tree). Only
//! rustface was measured: it needs nothing but the mirror, and the time left went into
//! tuning it. `examples/faces.rs` on `../shared/faces` (7 annotated faces in 4 photos:
//! obama, biden, Tom_Hanks, the 4 of t1; 3 unannotated photos: two masked faces, a half
//! face), dev profile with dependencies at opt-level 3, on a 2-core machine shared with
//! two other builds (load 5-6: the times are relative, about 2-3x an idle machine's):
//!
//! Two runs on the same set (run 1 at 07:09 UTC, run 2 at 08:09); the load differed, so compare
//! rows within a run:
//!
//! | preview short side, window step, pyramid | found | missed | false | ms/photo, run 1 | ms/photo, run 2 |
//! |---|---|---|---|---|---|
//! | 176 px, step 4, 0.8 | 3 | 4 | 0 | 32.4 | 41.3 |
//! | 256 px, step 4, 0.8 | 5 | 2 | 3 | 63.1 | 86.5 |
//! | **288 px, step 6, 0.75** (chosen) | 5 | 2 | 3 | — | 68.3 |
//! | 288 px, step 5, 0.75 | 6 | 1 | 3 | 58.9 | 98.5 |
//! | 320 px, step 4, 0.8 | 6 | 1 | 3 | 160.0 | 147.7 |
//! | 320 px, step 6, 0.75 | 6 | 1 | 3 | 62.7 | 85.3 |
//!
//! Whole default conversion (both targets) in run 2, same files: `face` 129.2 ms/photo,
//! `center` 52.8 ms/photo, so detection and preview cost about as much as the rest of
//! the conversion on these ~1 MP photos: too slow for the bench target (see the report
//! of issue 15: the release bench was not run). "False" counts detections matching no
//! annotated box, all in t1 and obama_partial_face; whether the t1 ones are the group's
//! other, unannotated people was not checked by eye. No detection was made in the masked
//! pictures (they show masks only), nor in the flat and gradient test pictures. The cascade's window is 40 px and its pyramid never enlarges the
//! preview, so the smallest face found is 40 / (preview short side): 176 px missed every
//! face under 23 % of the short side (the group photo, the tall compositions). The score
//! threshold (0.95, 2.0, 4.5) changed nothing on this set; 2.0 is kept.
//!
//! # Encoder choice (measured)
//! `examples/encoder_compare.rs`: 7 sources (3 synthetic photos, 4 real photos),
//! centre crop, Lanczos3; for each encoder the highest quality that fits the budget
//! (the product's search); SSIM (luma, 8x8 windows) of the libjpeg-turbo-decoded
//! result against the resized original; mean wall ms per encode on a shared, loaded
//! 2-core machine (relative speeds are what matter). All at 4:2:0.
//!
//! | encoder | 96 <= 10,240 B | 96 <= 4,096 | 648 <= 245,760 | 648 <= 100,000 | 648 <= 50,000 | ms/encode 96 / 648 |
//! |---|---|---|---|---|---|---|
//! | image 0.25 (std tables, no Huffman opt.) | 0.99739 | 0.97830 | 0.99602 | 0.98461 | 0.96785 | 0.58 / 24.2 |
//! | jpeg-encoder 0.7 (optimised Huffman) | 0.99911 | 0.98645 | 0.99795 | 0.98630 | 0.97406 | 0.44 / 11.4 |
//! | **mozjpeg baseline** (libjpeg-turbo settings, optimised Huffman) | **0.99913** | **0.98688** | 0.99798 | 0.98632 | 0.97266 | **0.26 / 4.2** |
//! | mozjpeg trellis + progressive (its defaults) | 0.99910 | 0.98550 | **0.99809** | **0.98829** | **0.97528** | 4.8 / 69.0 |
//!
//! At the product's budgets the three good encoders are within 0.0001 SSIM of each
//! other; mozjpeg baseline is 2.7x faster than jpeg-encoder and 16x faster than
//! trellis, which matters because the budget search encodes several times. Trellis
//! only pays off for budgets far tighter than ours, and makes progressive files. So:
//! mozjpeg, baseline, optimised Huffman, 4:2:0. (The `image` crate's own decoder
//! misreads jpeg-encoder's 4:2:0 output on this version, another reason to keep
//! one libjpeg-turbo codec for both directions.)
//!
//! The budget search no longer calls mozjpeg: `jpegenc.rs` is the same baseline
//! encoder written out (libjpeg's RGB->YCbCr, 2x2 chroma averaging, islow forward DCT,
//! libjpeg's table scaling, optimised Huffman tables), checked **byte for byte**
//! against mozjpeg's fastest profile in its tests (11 sizes from 1x1 to 129x130 x 15
//! qualities, pictures with gradients, edges and noise). It transforms the picture
//! once and then prices each candidate table by quantising and counting symbols (no
//! bit writing), writes
//! only the chosen one, and accepts table scales between whole qualities (tenths of a
//! percent), so the search fills the budget instead of stopping at the whole quality
//! below it: on a real photo every budget between the sizes of q5 and q95 is filled to
//! at least 99 % (test `fit_budget_fills_the_budget_on_a_photo`). At the bench's
//! equal-bytes comparison (README) that is what puts photobulk's SSIM above
//! ImageMagick with `jpeg:size`, whose bytes land between two whole qualities.
//!
//! # Speed
//! `examples/speed.rs`: a synthetic 3000x4000 photographic JPEG (2.7 MB) to both
//! default targets, one thread, release. Decoding dominates (entropy decoding cannot
//! be scaled away): DCT-scaled 1/2 decode ~36 ms CPU of ~55–64 ms in all on this
//! shared machine under load; resize ~8 %, encode ~12 %. A 1/4 decode would save only
//! ~2 ms (Huffman decoding dominates) at a visible loss (SSIM vs full decode 0.9940
//! instead of 0.9974 at 648), so [`DRAFT_SAFETY`] stays at 2.
//!
//! Instruction counts (`valgrind --tool=callgrind target/release/photobulk convert`
//! over 4 of the bench's 12 MP photos; repeatable where wall time on this machine is
//! not), per image: ~465 M in all; DCT-scaled decode 297 M (Huffman decoding alone 207
//! M, the 4x4 IDCT 37 M), resize 52 M, JPEG encoding 93 M, SHA-256 12 M. Encoding was
//! 120 M when the budget search took four 648 encodes (100, 90, 98, 99); guided by a
//! typical size-against-quality curve (`encode.rs`) it takes three (100, 98, 99) and
//! picks the same quality. What is left is mostly libjpeg-turbo's Huffman decoder.
//! Rows below the last one the crops need (with the Lanczos3 reach of the targets
//! resized from the source; 96 comes from 648) are not decoded: the decompressor is
//! dropped there (outputs byte-identical; 4 bench photos under callgrind: 1,852.9 M →
//! 1,818.7 M instructions, -1.85 %, as only the upright half of them end below the
//! crop). Rows above and columns beside the crop's window (same reach on every side)
//! are not transformed either: the decode drives libjpeg-turbo through `mozjpeg-sys`
//! (`libjpeg_decode`: `jpeg_skip_scanlines`, `jpeg_crop_scanline`) into a buffer it
//! does not zero first (outputs byte-identical; same 4 photos: 1,817.4 M → 1,705.5 M,
//! -6.2 %: IDCT, colour conversion and memset; Huffman decoding is unchanged).
//! The same 4 photos with the budget refinement (up to 6 probes between two whole
//! qualities, plus a rewrite when stuffed bytes overshoot): 1,936.7 M in all, of which
//! `decode_mcu` 753 M (39 %) and the encoder's probes 352 M (18 %). At the default 648
//! budget photos land at q95+ where the tables between whole qualities are few and
//! coarse, so refining there buys little: capped at 2 probes from q95, 1,831.0 M (probes
//! 254 M).
//!
//! Then the two big ones, measured on 2 of the bench photos (`--threads 1`), outputs
//! byte-identical throughout: 935.1 M in all before. Our Huffman decoder (`huffman`,
//! installed into libjpeg's decompressor as its `decode_mcu`): `decode_mcu` 380.2 M →
//! 212.6 M, 775.4 M in all. The encoder's kernels (`simd`: quantise, nonzero mask and
//! symbols in one AVX2/SSE2 pass chosen at run time; colour conversion, downsampling and
//! forward DCT compiled for AVX2) and a sampled first guess instead of probing q100 at
//! 648: encoding ~247 M → ~110 M. Together 639.3 M (-31.6 %, ~320 M per image): Huffman
//! decoding 33 %, the encoder kernel 14 %, libjpeg's IDCTs 14 %, resize 13 %.
//!
//! Then smaller cuts, same 2 photos, outputs byte-identical: 630.1 M (after a review) →
//! 598.3 M with ZRL and end-of-block in the one-lookup table and fewer per-block
//! checks (`decode_mcu` 203.3 M → 169.2 M); → 589.9 M with the chroma downsampling
//! vectorised and the kernels' target features made to stick (`simd::Kernel::run`);
//! → 584.4 M with one `sin` per Lanczos3 weight and whole-pixel rotation. Of what is
//! left per image (~292 M under valgrind, which also counts a software SHA-256 the CPU
//! does in hardware, 13 M, and libde265's start-up tables, 12 M per image here, once per
//! process): Huffman decoding 85 M, libjpeg's IDCTs 46 M (the chroma takes a full 8x8
//! IDCT at 1/2 scale; its fast integer IDCT was measured no cheaper), resize 41 M,
//! encoding ~55 M, libjpeg's per-MCU loop and colour conversion 22 M. Wall time also
//! had page faults in it: glibc handed every photo's large buffers back to the kernel
//! and faulted them in again (~1,000 faults per photo); the binary now keeps freed
//! memory (`mallopt`, `crates/cli/alloc.rs`).

use serde::Serialize;

/// Limits checked before any pixel buffer is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Largest width x height accepted (default 100,000,000).
    pub max_pixels: u64,
    /// Largest width or height accepted (default 20,000).
    pub max_side: u32,
    /// Largest encoded input accepted in bytes (default 50 MiB = 52,428,800).
    pub max_input_bytes: usize,
}

/// How a non-square source becomes square. `#[non_exhaustive]`: callers only pass the
/// value through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Crop {
    /// Head and shoulders around the main face, like an ID photo ([`crop::FaceCrop`]);
    /// no face found: [`Crop::Top`]'s square with [`Warning::NoFace`]. Default.
    #[default]
    Face,
    /// Centre square (what Exchange does).
    Center,
    /// Portrait input keeps the head: the square is biased toward the top third.
    Top,
    /// Letterbox onto `Options::background`; no pixels lost.
    Pad,
}

/// One output to produce: a square JPEG of `size` x `size` pixels at most `max_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Short name used for folders and reports: "ad", "hd", or a caller's own.
    pub name: String,
    pub size: u32,
    pub max_bytes: usize,
}

impl Target {
    /// AD thumbnailPhoto: 96x96, <= 10,240 bytes (Entra Connect passes only <= 10 KB on).
    pub fn ad() -> Self {
        Target {
            name: "ad".into(),
            size: 96,
            max_bytes: 10_240,
        }
    }
    /// Exchange HD photo: 648x648, <= 245,760 bytes.
    pub fn hd() -> Self {
        Target {
            name: "hd".into(),
            size: 648,
            max_bytes: 245_760,
        }
    }
}

/// Everything `convert` needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Options {
    pub limits: Limits,
    pub crop: Crop,
    /// Colour that alpha is flattened onto, and `Crop::Pad` fills with. Default white.
    pub background: [u8; 3],
    /// Sources smaller than this on either side are refused (default 48).
    pub min_source_side: u32,
    pub targets: Vec<Target>,
    /// Also return a small upright JPEG of the whole source ([`Conversion::thumbnail`],
    /// for contact sheets that draw the crop on it). Default off.
    pub thumbnail: bool,
}

/// What was read from the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// "jpeg", "png", "gif", "bmp", "tiff", "webp", "heic".
    pub format: String,
    /// Stored (pre-orientation) dimensions.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation 1..=8 that was applied (1 when none).
    pub orientation: u8,
    /// Description of the embedded ICC profile the pixels were converted from to sRGB
    /// (e.g. "Adobe RGB (1998)"); `None` when there was no profile, it was sRGB already,
    /// or it was unusable (then [`Warning::IccProfileIgnored`] says why). Always `None`
    /// from [`probe`], which reads no profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icc_profile: Option<String>,
}

/// Square region of the upright source that was used (may extend past the image for `Pad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CropBox {
    pub x: i64,
    pub y: i64,
    pub width: u32,
    pub height: u32,
}

/// The face a [`Crop::Face`] square was framed on, in upright source pixels; `score` is
/// the detector's confidence (SeetaFace cascade score, 2 is its threshold here; higher is
/// surer).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub score: f64,
}

/// One produced JPEG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Output {
    pub target: String,
    pub width: u32,
    pub height: u32,
    pub crop: CropBox,
    /// JPEG quality chosen (highest that fit the budget).
    pub quality: u8,
    /// Hex SHA-256 of `jpeg`.
    pub sha256: String,
    #[serde(skip)]
    pub jpeg: Vec<u8>,
    /// `jpeg.len()`, for reports.
    pub bytes: usize,
}

/// Non-fatal notes, e.g. upscaling more than 2x.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Warning {
    Upscaled {
        target: String,
        factor_x100: u32,
    },
    /// The source's embedded ICC profile could not be used (unreadable, or for another
    /// colour space); its pixels were taken as sRGB.
    IccProfileIgnored {
        reason: String,
    },
    /// `face` crop: no face was found; the square is `top`'s (centred for landscapes).
    NoFace,
    /// `face` crop: `count` faces were found; the main one was framed.
    SeveralFaces {
        count: u32,
    },
    /// `face` crop: the face framed is small for the detector to be sure of
    /// (`height` source pixels); check the photo.
    SmallFace {
        height: u32,
    },
}

impl Warning {
    /// The `kind` it serialises as (`"no_face"`, `"upscaled"`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Warning::Upscaled { .. } => "upscaled",
            Warning::IccProfileIgnored { .. } => "icc_profile_ignored",
            Warning::NoFace => "no_face",
            Warning::SeveralFaces { .. } => "several_faces",
            Warning::SmallFace { .. } => "small_face",
        }
    }
}

impl std::fmt::Display for Warning {
    /// For administrators: the code, then what it means.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::Upscaled {
                target,
                factor_x100,
            } => write!(
                f,
                "upscaled: {target} enlarged {}.{:02}x (the source is smaller than the target)",
                factor_x100 / 100,
                factor_x100 % 100
            ),
            Warning::IccProfileIgnored { reason } => {
                write!(f, "icc_profile_ignored: {reason}")
            }
            Warning::NoFace => f.write_str(
                "no_face: no face found; kept the top of a portrait, the centre of a landscape",
            ),
            Warning::SeveralFaces { count } => write!(
                f,
                "several_faces: {count} faces found; framed the largest, nearest the centre"
            ),
            Warning::SmallFace { height } => write!(
                f,
                "small_face: the face framed is only {height} px high; check the framing"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversion {
    pub source: SourceInfo,
    pub outputs: Vec<Output>,
    pub warnings: Vec<Warning>,
    /// The face the square was framed on (`face` crop, when one was found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face: Option<FaceBox>,
    /// The whole source, upright, at most [`face::PREVIEW_SIDE`] a side (when
    /// [`Options::thumbnail`] asked for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Thumbnail>,
}

/// A small upright JPEG of the whole source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    #[serde(skip)]
    pub jpeg: Vec<u8>,
}

/// Every way a conversion fails. Messages are for administrators: say what and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImagingError {
    #[error("not a supported image (recognised: JPEG, PNG, GIF, BMP, TIFF, WebP, HEIC)")]
    UnknownFormat,
    /// A zero-byte file (an interrupted copy, a placeholder): not "an unknown format".
    #[error("the file is empty (0 bytes)")]
    Empty,
    #[error("input is {bytes} bytes, over the {limit}-byte limit")]
    InputTooLarge { bytes: usize, limit: usize },
    #[error("image is {width}x{height}, over the limits ({max_side} px a side, {max_pixels} pixels): refusing to decode")]
    TooManyPixels {
        width: u32,
        height: u32,
        max_side: u32,
        max_pixels: u64,
    },
    #[error("image is {width}x{height}, smaller than {min} px a side")]
    TooSmall { width: u32, height: u32, min: u32 },
    #[error("cannot decode {format} image: {reason}")]
    Decode { format: String, reason: String },
    #[error("{format} support is not built in (build with the `{feature}` feature)")]
    Unsupported { format: String, feature: String },
    #[error("target {target}: cannot fit {size}x{size} into {budget} bytes; smallest reached was {smallest} bytes at quality {quality}")]
    BudgetUnreachable {
        target: String,
        size: u32,
        budget: usize,
        smallest: usize,
        quality: u8,
    },
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A failure inside the pipeline that no input should cause (a bug: please report).
    #[error("internal error: {0}")]
    Internal(String),
}

mod colour;
pub mod crop;
mod decode;
mod encode;
pub mod face;
// Our Huffman decoder, hooked into libjpeg's decompressor through csrc/entropy_hook.c:
// raw reads of libjpeg's source buffer and blocks; every block has its SAFETY note.
#[allow(unsafe_code)]
mod huffman;
mod icc;
mod jpegenc;
// FFI callbacks for libjpeg's error manager (mozjpeg's safe API cannot see warnings);
// the module's docs give the reasoning and every block its SAFETY note.
#[allow(unsafe_code)]
mod libjpeg_errors;
// The same for the windowed JPEG decode (`jpeg_skip_scanlines`, `jpeg_crop_scanline`).
#[cfg(test)]
#[allow(unsafe_code)]
mod huffman_tests;
#[allow(unsafe_code)]
mod libjpeg_decode;
pub mod metadata;
mod orient;
mod resize;
// AVX2/SSE2 kernels of the JPEG encoder, detected at run time; every block its SAFETY note.
#[allow(unsafe_code)]
mod simd;
#[cfg(test)]
mod window_tests;

mod fingerprint;
pub use crop::{CropStrategy, FaceCrop, Framing};
pub use fingerprint::{fingerprint, Fingerprint, SAME_PHOTO_MAX_DISTANCE};
pub use huffman::{huffman_decoder, set_huffman_decoder, HuffmanDecoder};

// libjpeg reports fatal errors (and the corrupt-data warnings we treat as errors) by
// unwinding out of its error manager through libjpeg's C frames (mozjpeg-sys's
// `unwinding` feature; `libjpeg_errors`), and the decoders catch that unwind. Under
// `panic = "abort"` the first damaged photo would end the whole process instead of
// failing one item, so refuse to build that way rather than fail in the field.
#[cfg(panic = "abort")]
compile_error!(
    "photobulk-imaging needs panic = \"unwind\": libjpeg's errors unwind through C and are \
     caught per photo (see libjpeg_errors.rs); with panic = \"abort\" one bad JPEG would end the process"
);

/// A large JPEG is decoded at a reduced DCT scale only while the crop keeps at least
/// this many times the largest target's side (Pillow's `thumbnail` uses 2 the same way,
/// ImageMagick users pass `-define jpeg:size=` at 2x). Below 2 the DCT-scaled image is
/// resampled by less than 2x and fine detail softens measurably.
pub const DRAFT_SAFETY: f64 = 2.0;

/// Smallest `Target::max_bytes` accepted: below about 1 KB not even a 48x48 JPEG
/// (headers and tables alone are ~600 bytes) fits, so it is a mistake, not a budget.
pub const MIN_TARGET_BYTES: usize = 1_024;

/// Largest `Target::size` accepted (Exchange's largest photo is 648; this leaves room).
pub const MAX_TARGET_SIZE: u32 = 4_096;

impl Default for Limits {
    /// 100,000,000 pixels, 20,000 px a side, 50 MiB of input.
    fn default() -> Self {
        Limits {
            max_pixels: 100_000_000,
            max_side: 20_000,
            max_input_bytes: 52_428_800,
        }
    }
}

impl Default for Options {
    /// Default limits, face crop, white background, 48 px minimum, targets `ad` and `hd`.
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            crop: Crop::Face,
            background: [255, 255, 255],
            min_source_side: 48,
            targets: vec![Target::ad(), Target::hd()],
            thumbnail: false,
        }
    }
}

impl Target {
    /// A caller's own target.
    pub fn new(name: impl Into<String>, size: u32, max_bytes: usize) -> Self {
        Target {
            name: name.into(),
            size,
            max_bytes,
        }
    }
}

fn validate(opts: &Options) -> Result<(), ImagingError> {
    if opts.targets.is_empty() {
        return Err(ImagingError::InvalidOption("no targets given".into()));
    }
    for (i, t) in opts.targets.iter().enumerate() {
        if t.name.is_empty() {
            return Err(ImagingError::InvalidOption(format!(
                "target #{} has an empty name",
                i + 1
            )));
        }
        if t.size == 0 || t.size > MAX_TARGET_SIZE {
            return Err(ImagingError::InvalidOption(format!(
                "target {}: size {} is outside 1..={MAX_TARGET_SIZE}",
                t.name, t.size
            )));
        }
        if t.max_bytes < MIN_TARGET_BYTES {
            return Err(ImagingError::InvalidOption(format!(
                "target {}: budget of {} bytes is under the {MIN_TARGET_BYTES}-byte minimum",
                t.name, t.max_bytes
            )));
        }
        if opts.targets[..i].iter().any(|o| o.name == t.name) {
            return Err(ImagingError::InvalidOption(format!(
                "target name {} given twice",
                t.name
            )));
        }
    }
    Ok(())
}

pub(crate) fn check_input_len(input: &[u8], limits: &Limits) -> Result<(), ImagingError> {
    if input.len() > limits.max_input_bytes {
        return Err(ImagingError::InputTooLarge {
            bytes: input.len(),
            limit: limits.max_input_bytes,
        });
    }
    Ok(())
}

pub(crate) fn check_dims(width: u32, height: u32, limits: &Limits) -> Result<(), ImagingError> {
    if width == 0 || height == 0 {
        return Err(ImagingError::Decode {
            format: "image".into(),
            reason: format!("header declares {width}x{height}"),
        });
    }
    if width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(ImagingError::TooManyPixels {
            width,
            height,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

/// The largest DCT scale denominator (1, 2, 4, 8) that keeps a crop of `crop_side`
/// stored pixels at least `DRAFT_SAFETY` x `largest_target` pixels wide.
fn draft_denominator(crop_side: u32, largest_target: u32) -> u32 {
    let need = f64::from(largest_target) * DRAFT_SAFETY;
    [8u32, 4, 2]
        .into_iter()
        .find(|d| f64::from(crop_side) / f64::from(*d) >= need)
        .unwrap_or(1)
}

/// Largest image (pixels) whose MCU starts the `face` crop records between its two
/// decodes (80 bytes an MCU: 0.3 bytes a pixel at 4:2:0, 1.25 at 4:4:4, so at most
/// 63 MB); larger ones are parsed twice instead.
const RECORD_MAX_PIXELS: u64 = 50_000_000;

/// The coarsest JPEG DCT scale denominator that keeps the face preview's short side
/// ([`face::PREVIEW_SIDE`]) for an upright short side of `short` pixels.
fn preview_denominator(short: u32) -> u32 {
    [8u32, 4, 2]
        .into_iter()
        .find(|d| short / d >= face::PREVIEW_SIDE)
        .unwrap_or(1)
}

/// The stored rectangle (full resolution) that crop box `cb` of the upright image
/// needs, including on every side the reach of the widest Lanczos3 kernel any target
/// resized from the source can use (3 lobes of the crop-to-`smallest`-target scale) and
/// slack for DCT-scaled rounding. Pixels outside it are never read, so the output is
/// the same as from a full decode.
fn window_needed(g: &decode::Geometry, cb: CropBox, smallest: u32, denom: u32) -> decode::Window {
    let (uw, uh) = orient::upright_dims(g.width, g.height, g.orientation);
    let (cx, cy, cs) = (cb.x as f64, cb.y as f64, f64::from(cb.width.max(1)));
    let visible = [
        cx.max(0.0),
        (cx + cs).min(f64::from(uw)),
        cy.max(0.0),
        (cy + cs).min(f64::from(uh)),
    ];
    let [x0, x1, y0, y1] = orient::upright_rect_to_stored(
        g.orientation,
        f64::from(g.width),
        f64::from(g.height),
        visible,
    );
    let reach = 3.0 * cs / f64::from(smallest.max(1)) + 16.0 + 4.0 * f64::from(denom);
    let lo = |v: f64| (v - reach).floor().max(0.0) as u32;
    let hi = |v: f64, max: u32| {
        let v = (v + reach).ceil();
        if v >= f64::from(max) {
            max
        } else {
            v.max(1.0) as u32
        }
    };
    decode::Window {
        x0: lo(x0).min(g.width.saturating_sub(1)),
        x1: hi(x1, g.width),
        y0: lo(y0).min(g.height.saturating_sub(1)),
        y1: hi(y1, g.height),
    }
}

/// Decode, orient, crop, resize and encode `input` for every target in `opts`.
pub fn convert(input: &[u8], opts: &Options) -> Result<Conversion, ImagingError> {
    let r = render(input, opts, false)?;
    let cb = r.crop;
    let mut outputs = Vec::with_capacity(opts.targets.len());
    for (t, px) in opts.targets.iter().zip(r.pixels) {
        let fit = encode::fit_budget(&px, t.size, t.max_bytes).map_err(|e| match e {
            encode::FitError::Unreachable { smallest, quality } => {
                ImagingError::BudgetUnreachable {
                    target: t.name.clone(),
                    size: t.size,
                    budget: t.max_bytes,
                    smallest,
                    quality,
                }
            }
            encode::FitError::Encoder(reason) => {
                ImagingError::Internal(format!("jpeg encoder: {reason}"))
            }
        })?;
        outputs.push(Output {
            target: t.name.clone(),
            width: t.size,
            height: t.size,
            crop: cb,
            quality: fit.quality,
            sha256: sha256_hex(&fit.jpeg),
            bytes: fit.jpeg.len(),
            jpeg: fit.jpeg,
        });
    }
    Ok(Conversion {
        source: r.source,
        outputs,
        warnings: r.warnings,
        face: r.face,
        thumbnail: r.thumbnail,
    })
}

/// Every target's RGB8 pixels (in `opts.targets` order), before encoding.
struct Rendered {
    source: SourceInfo,
    crop: CropBox,
    face: Option<FaceBox>,
    thumbnail: Option<Thumbnail>,
    pixels: Vec<Vec<u8>>,
    warnings: Vec<Warning>,
}

/// Decode, orient, crop and resize `input` for every target in `opts`. `whole`: decode
/// the whole image, not only the window the crop needs (for tests comparing the two).
fn render(input: &[u8], opts: &Options, whole: bool) -> Result<Rendered, ImagingError> {
    validate(opts)?;
    check_input_len(input, &opts.limits)?;
    let largest = opts.targets.iter().map(|t| t.size).max().unwrap_or(1);
    let strategy = crop::strategy(opts.crop);
    let min = opts.min_source_side;
    let too_small = |g: &decode::Geometry| -> Result<(u32, u32), ImagingError> {
        let (w, h) = orient::upright_dims(g.width, g.height, g.orientation);
        if w < min || h < min {
            return Err(ImagingError::TooSmall {
                width: w,
                height: h,
                min,
            });
        }
        Ok((w, h))
    };
    // The decode plan for crop box `cb`: the DCT scale it affords and the window it needs.
    let plan_for = |g: &decode::Geometry, cb: CropBox| -> decode::Plan {
        let denom = draft_denominator(cb.width, largest);
        // The smallest target resized from the source itself (see the loop below: the
        // others come from the largest target's output).
        let from_source = opts
            .targets
            .iter()
            .map(|t| t.size)
            .filter(|&s| s == largest || largest > cb.width || largest < 2 * s)
            .min()
            .unwrap_or(largest);
        let window = if whole {
            decode::Window::all(g.width, g.height)
        } else {
            window_needed(g, cb, from_source, denom)
        };
        decode::Plan {
            denom,
            window,
            record: false,
        }
    };
    let mut thumbnail = None;
    let (decoded, framing) = if strategy.wants_preview() {
        // The strategy looks at the picture. A JPEG too large to be decoded whole at full
        // scale is decoded twice: first all of it at the coarsest scale that still gives
        // the preview, recording where each MCU starts; then, once the square is chosen,
        // only the window it needs at the scale it needs, parsing only the MCUs in it
        // (`decode::decode_replay`). Anything else is decoded once, whole, at the scale
        // the largest square (the short side) affords, and the preview made from those
        // pixels; a JPEG whose MCUs could not be recorded is decoded again when the square
        // chosen is too small for that scale.
        let mut first_denom = 1;
        let mut recorded = false;
        let mut plan = |g: &decode::Geometry| -> Result<decode::Plan, ImagingError> {
            let (w, h) = too_small(g)?;
            let side = w.min(h);
            first_denom = draft_denominator(side, largest);
            recorded =
                first_denom > 1 && u64::from(g.width) * u64::from(g.height) <= RECORD_MAX_PIXELS;
            Ok(decode::Plan {
                denom: if recorded {
                    preview_denominator(side)
                } else {
                    first_denom
                },
                window: decode::Window::all(g.width, g.height),
                record: recorded,
            })
        };
        let mut decoded = decode::decode(input, &opts.limits, opts.background, &mut plan)?;
        let (uw, uh) = too_small(&decoded.geometry)?;
        let preview = face::preview(&decoded)?;
        let framing = strategy.frame(uw, uh, Some(&preview))?;
        if opts.thumbnail {
            thumbnail = Some(thumbnail_of(&preview));
        }
        let cb = framing.crop;
        let mut plan = |g: &decode::Geometry| -> Result<decode::Plan, ImagingError> {
            too_small(g)?;
            Ok(plan_for(g, cb))
        };
        let scaled = decoded.pix_width < decoded.geometry.width
            || decoded.pix_height < decoded.geometry.height;
        let decoded = if let Some(rec) = decoded.recording.take() {
            decode::decode_replay(input, &opts.limits, &mut plan, rec)?
        } else if scaled
            && (recorded || draft_denominator(framing.crop.width, largest) < first_denom)
        {
            decode::decode(input, &opts.limits, opts.background, &mut plan)?
        } else {
            decoded
        };
        (decoded, framing)
    } else {
        let mut plan = |g: &decode::Geometry| -> Result<decode::Plan, ImagingError> {
            let (w, h) = too_small(g)?;
            let mut p = plan_for(g, strategy.crop_box(w, h));
            if opts.thumbnail {
                // The thumbnail shows the whole picture.
                p.window = decode::Window::all(g.width, g.height);
            }
            Ok(p)
        };
        let decoded = decode::decode(input, &opts.limits, opts.background, &mut plan)?;
        let (uw, uh) = too_small(&decoded.geometry)?;
        let framing = strategy.frame(uw, uh, None)?;
        if opts.thumbnail {
            thumbnail = Some(thumbnail_of(&face::preview(&decoded)?));
        }
        (decoded, framing)
    };
    let cb = framing.crop;

    // Largest target first, from the source; the others from it when it is both a real
    // downscale of the source and at least twice their size (96 from 648).
    let mut order: Vec<usize> = (0..opts.targets.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(opts.targets[i].size));
    let mut resizer = resize::Resizer::new();
    let mut rendered: Vec<Option<Vec<u8>>> = vec![None; opts.targets.len()];
    let mut warnings = decoded.warnings.clone();
    warnings.extend(framing.warnings.iter().cloned());
    let mut intermediate: Option<(u32, usize)> = None;
    for &i in &order {
        let t = &opts.targets[i];
        let factor_x100 = u64::from(t.size) * 100 / u64::from(cb.width.max(1));
        if factor_x100 > 200 {
            warnings.push(Warning::Upscaled {
                target: t.name.clone(),
                factor_x100: u32::try_from(factor_x100).unwrap_or(u32::MAX),
            });
        }
        let pixels = match intermediate {
            Some((size, j)) if size >= 2 * t.size => {
                let src = rendered[j].as_deref().unwrap_or_default();
                resizer.square_from_square(src, size, t.size)?
            }
            _ => {
                let px = resizer.render(&decoded, cb, t.size, opts.background)?;
                if intermediate.is_none() && t.size <= cb.width {
                    intermediate = Some((t.size, i));
                }
                px
            }
        };
        rendered[i] = Some(pixels);
    }
    Ok(Rendered {
        source: decoded.info,
        crop: cb,
        face: framing.face,
        thumbnail,
        pixels: rendered
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect(),
        warnings,
    })
}

/// The contact-sheet thumbnail: the preview's RGB at quality 80.
fn thumbnail_of(p: &face::Preview) -> Thumbnail {
    let prepared = jpegenc::Prepared::new(&p.rgb, p.width, p.height);
    Thumbnail {
        width: p.width,
        height: p.height,
        jpeg: prepared.write(&prepared.probe(&jpegenc::Tables::per_mille(
            jpegenc::Tables::quality_per_mille(80),
        ))),
    }
}

/// The faces the `face` crop's detector finds in `input` with `settings` (upright source
/// pixels, best score first), with no crop or encode; for measuring the detector
/// (`examples/faces.rs`) and tests. The whole picture is decoded at the DCT scale that
/// keeps at least twice the preview's size.
pub fn find_faces(
    input: &[u8],
    limits: &Limits,
    settings: &face::Settings,
) -> Result<Vec<FaceBox>, ImagingError> {
    check_input_len(input, limits)?;
    let side = settings.preview_side.max(20);
    let mut plan = |g: &decode::Geometry| -> Result<decode::Plan, ImagingError> {
        Ok(decode::Plan {
            denom: draft_denominator(g.width.max(g.height), side),
            window: decode::Window::all(g.width, g.height),
            record: false,
        })
    };
    let decoded = decode::decode(input, limits, [255, 255, 255], &mut plan)?;
    let g = decoded.geometry;
    let (uw, uh) = orient::upright_dims(g.width, g.height, g.orientation);
    let p = face::preview_sized(&decoded, side)?;
    if std::env::var_os("PHOTOBULK_DUMP_PREVIEW").is_some() {
        dump_preview(&p);
    }
    Ok(face::detect_with(&p, settings)?
        .iter()
        .map(|f| face::to_source(f, &p, uw, uh))
        .collect())
}

/// `PHOTOBULK_DUMP_PREVIEW=FILE` (measuring only, `examples/face_dump.rs`): the detector's
/// luma preview written to FILE as a binary PGM.
fn dump_preview(p: &face::Preview) {
    if let Some(path) = std::env::var_os("PHOTOBULK_DUMP_PREVIEW") {
        let mut out = format!("P5\n{} {}\n255\n", p.width, p.height).into_bytes();
        out.extend_from_slice(&p.gray);
        if let Err(e) = std::fs::write(&path, out) {
            eprintln!("preview dump: {e}");
        }
    }
}

/// Read the format and stored dimensions without decoding pixels (used for reports).
/// `orientation` is the one [`convert`] would apply.
pub fn probe(input: &[u8]) -> Result<SourceInfo, ImagingError> {
    decode::probe(input)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    s
}
