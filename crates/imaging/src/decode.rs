//! Decoding: sniff the format, check limits from the header, decode to 8-bit RGB.
//!
//! The output keeps the *stored* orientation (the pipeline rotates only the small
//! result) and, for JPEG, may be DCT-scaled: the caller's `plan` sees the header's
//! geometry first and answers with the scale denominator it can afford.

use crate::colour::{self, Applied, Pixels};
use crate::{check_dims, check_input_len, orient, ImagingError, Limits, SourceInfo, Warning};
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Full-resolution pixel grid the decoder delivers, and the orientation still to apply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub width: u32,
    pub height: u32,
    pub orientation: u8,
}

/// What the caller's `plan` answers once it has seen the header's [`Geometry`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// JPEG DCT scale denominator: 1, 2, 4 or 8.
    pub denom: u32,
    /// The stored rectangle (full resolution) the crops need, filter reach included:
    /// a JPEG decoder decodes only it (at the scale, widened to whole rows and blocks)
    /// and stops after its last row. Other decoders decode everything.
    pub window: Window,
    /// JPEG: also record where each MCU starts ([`Decoded::recording`]) for a second
    /// decode of the same file ([`decode_replay`]). Needs the whole image
    /// (`window` all of it). Where our Huffman decoder does not run, nothing is recorded.
    pub record: bool,
}

/// A stored-pixel rectangle `[x0, x1) x [y0, y1)`, full resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub x0: u32,
    pub x1: u32,
    pub y0: u32,
    pub y1: u32,
}

impl Window {
    /// The whole of a `width` x `height` image.
    pub(crate) fn all(width: u32, height: u32) -> Window {
        Window {
            x0: 0,
            x1: width,
            y0: 0,
            y1: height,
        }
    }
}

/// Decoded pixels, still in the orientation `geometry.orientation` describes. The
/// (possibly DCT-scaled) image is `pix_width` x `pix_height` (smaller than `geometry`
/// when scaled); `rgb` holds RGB8 of only its part `buf_width` x `rows` at (`x0`, `y0`)
/// (a JPEG decode covers only the window the crop needs; other formats all of it).
#[derive(Debug)]
pub(crate) struct Decoded {
    pub info: SourceInfo,
    pub geometry: Geometry,
    pub rgb: Vec<u8>,
    pub pix_width: u32,
    pub pix_height: u32,
    pub x0: u32,
    pub y0: u32,
    pub buf_width: u32,
    pub rows: u32,
    /// Non-fatal notes from decoding (an unusable ICC profile).
    pub warnings: Vec<Warning>,
    /// Where each MCU starts, when the plan asked for it and it could be recorded.
    pub recording: Option<crate::huffman::Recording>,
}

/// What became of a source's embedded ICC profile.
#[derive(Debug, Default)]
struct Icc {
    /// Description of the profile the pixels were converted from.
    applied: Option<String>,
    warnings: Vec<Warning>,
}

/// Converts `px` to sRGB with the embedded profile `icc` (`Err`: the container's profile
/// data itself was broken). Never fails: an unusable profile is a warning.
fn apply_icc(icc: Result<Option<Vec<u8>>, String>, px: &mut Vec<u8>, layout: Pixels) -> Icc {
    let result = icc.and_then(|p| match p {
        Some(p) => colour::to_srgb(&p, px, layout).map(Some),
        None => Ok(None),
    });
    match result {
        Ok(Some(Applied::Converted(name))) => Icc {
            applied: Some(name),
            warnings: Vec::new(),
        },
        Ok(Some(Applied::AlreadySrgb) | None) => Icc::default(),
        Err(reason) => Icc {
            applied: None,
            warnings: vec![Warning::IccProfileIgnored { reason }],
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Jpeg,
    Heic,
    Other(image::ImageFormat, &'static str),
}

fn sniff(input: &[u8]) -> Result<Kind, ImagingError> {
    if input.is_empty() {
        return Err(ImagingError::Empty);
    }
    if input.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Kind::Jpeg);
    }
    if is_heif(input) {
        return Ok(Kind::Heic);
    }
    use image::ImageFormat as F;
    match image::guess_format(input) {
        Ok(F::Png) => Ok(Kind::Other(F::Png, "png")),
        Ok(F::Gif) => Ok(Kind::Other(F::Gif, "gif")),
        Ok(F::Bmp) => Ok(Kind::Other(F::Bmp, "bmp")),
        Ok(F::Tiff) => Ok(Kind::Other(F::Tiff, "tiff")),
        Ok(F::WebP) => Ok(Kind::Other(F::WebP, "webp")),
        _ => Err(ImagingError::UnknownFormat),
    }
}

/// An ISO-BMFF `ftyp` box naming a HEIF brand (major or compatible).
pub(crate) fn is_heif(input: &[u8]) -> bool {
    const BRANDS: [&[u8; 4]; 8] = [
        b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
    ];
    if input.len() < 16 || &input[4..8] != b"ftyp" {
        return false;
    }
    let size = u32::from_be_bytes([input[0], input[1], input[2], input[3]]) as usize;
    let end = size.clamp(16, input.len());
    if &input[8..12] == b"avif" {
        return false;
    }
    std::iter::once(&input[8..12])
        .chain(input[16..end].chunks_exact(4))
        .any(|b| BRANDS.iter().any(|k| b == &k[..]))
}

fn decode_err(format: &str, reason: impl std::fmt::Display) -> ImagingError {
    ImagingError::Decode {
        format: format.into(),
        reason: reason.to_string(),
    }
}

/// Decode `input`. `plan` is called once with the header's geometry, before any pixel
/// buffer is allocated; it may refuse (e.g. too small) or return the JPEG DCT scale
/// denominator (1, 2, 4 or 8) to decode at. Other formats ignore the denominator.
pub(crate) fn decode(
    input: &[u8],
    limits: &Limits,
    background: [u8; 3],
    plan: &mut dyn FnMut(&Geometry) -> Result<Plan, ImagingError>,
) -> Result<Decoded, ImagingError> {
    check_input_len(input, limits)?;
    match sniff(input)? {
        Kind::Jpeg => jpeg::decode(input, limits, plan, None),
        Kind::Heic => heic::decode(input, limits, background, plan),
        Kind::Other(fmt, name) => decode_other(input, fmt, name, limits, background, plan),
    }
}

/// [`decode`] of a JPEG whose MCUs an earlier decode of the same `input`
/// recorded ([`Plan::record`]): only the MCUs the plan's window uses are parsed, each
/// found from where `recording` says it starts (at the plan's scale and window, as any
/// decode, and the same pixels).
pub(crate) fn decode_replay(
    input: &[u8],
    limits: &Limits,
    plan: &mut dyn FnMut(&Geometry) -> Result<Plan, ImagingError>,
    recording: crate::huffman::Recording,
) -> Result<Decoded, ImagingError> {
    check_input_len(input, limits)?;
    match sniff(input)? {
        Kind::Jpeg => jpeg::decode(input, limits, plan, Some(recording)),
        _ => Err(ImagingError::Internal(
            "an MCU recording replayed on a file that is not a JPEG".into(),
        )),
    }
}

/// Format, stored size and orientation, from headers only.
pub(crate) fn probe(input: &[u8]) -> Result<SourceInfo, ImagingError> {
    match sniff(input)? {
        Kind::Jpeg => jpeg::probe(input),
        Kind::Heic => heic::probe(input),
        Kind::Other(fmt, name) => {
            let mut dec = other_decoder(input, fmt, name, &Limits::default())?;
            let (width, height) = image::ImageDecoder::dimensions(&dec);
            let orientation = other_orientation(&mut dec);
            Ok(SourceInfo {
                format: name.into(),
                width,
                height,
                orientation,
                icc_profile: None,
            })
        }
    }
}

fn other_decoder<'a>(
    input: &'a [u8],
    fmt: image::ImageFormat,
    name: &str,
    limits: &Limits,
) -> Result<impl image::ImageDecoder + 'a, ImagingError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(input), fmt);
    // Sides and pixel count are checked by us from the header (to report them);
    // the allocation cap is image's own second line of defence: 16-bit RGBA worst case.
    let mut lim = image::Limits::default();
    lim.max_image_width = None;
    lim.max_image_height = None;
    lim.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(lim);
    reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(l) => {
            decode_err(name, format!("over the decoder's limits ({l})"))
        }
        e => decode_err(name, e),
    })
}

fn decode_other(
    input: &[u8],
    fmt: image::ImageFormat,
    name: &'static str,
    limits: &Limits,
    background: [u8; 3],
    plan: &mut dyn FnMut(&Geometry) -> Result<Plan, ImagingError>,
) -> Result<Decoded, ImagingError> {
    // BMP and WebP decoders refuse huge sizes while reading the header, as a decode
    // error: read the declared size first, so a bomb is reported as one.
    if let Some((w, h)) = declared_dims(input, fmt) {
        check_dims(w, h, limits)?;
    }
    let mut dec = other_decoder(input, fmt, name, limits)?;
    let (width, height) = image::ImageDecoder::dimensions(&dec);
    check_dims(width, height, limits)?;
    let orientation = other_orientation(&mut dec);
    let geometry = Geometry {
        width,
        height,
        orientation,
    };
    plan(&geometry)?;
    let icc = image::ImageDecoder::icc_profile(&mut dec)
        .map_err(|e| format!("unreadable ICC profile ({e})"));
    let img = image::DynamicImage::from_decoder(dec).map_err(|e| decode_err(name, e))?;
    if img.width() != width || img.height() != height {
        return Err(decode_err(name, "decoded size differs from the header's"));
    }
    // Colour first (alpha included), then flatten onto the sRGB background.
    let (rgb, icc) = if matches!(icc, Ok(None)) {
        (flatten(img, background), Icc::default())
    } else if img.color().has_alpha() {
        let mut px = img.into_rgba8().into_raw();
        let icc = apply_icc(icc, &mut px, Pixels::Rgba);
        (flatten_rgba(&px, background), icc)
    } else {
        let mut px = img.into_rgb8().into_raw();
        let icc = apply_icc(icc, &mut px, Pixels::Rgb);
        (px, icc)
    };
    Ok(Decoded {
        info: SourceInfo {
            format: name.into(),
            width,
            height,
            orientation,
            icc_profile: icc.applied,
        },
        geometry,
        rgb,
        pix_width: width,
        pix_height: height,
        x0: 0,
        y0: 0,
        buf_width: width,
        rows: height,
        warnings: icc.warnings,
        recording: None,
    })
}

/// EXIF orientation through `image`, which reads only EXIF that starts at the TIFF
/// header. Some writers (Pillow's WebP, some PNG `eXIf`) put JPEG's `Exif\0\0` first;
/// exiftool and Pillow still read those, and so do we.
fn other_orientation(dec: &mut impl image::ImageDecoder) -> u8 {
    let from_image = dec.orientation().map_or(1, |o| o.to_exif());
    if from_image != 1 {
        return from_image;
    }
    match dec.exif_metadata() {
        Ok(Some(exif)) => orient::from_exif_payload(&exif).unwrap_or(1),
        _ => 1,
    }
}

/// Width and height as the header declares them, for formats whose decoder refuses
/// large sizes before `image` can report them (BMP, WebP). `None` when the header is
/// not readable: the decoder then reports what is wrong.
fn declared_dims(input: &[u8], fmt: image::ImageFormat) -> Option<(u32, u32)> {
    let u16le = |i: usize| {
        input
            .get(i..i + 2)
            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let u24le = |i: usize| {
        input
            .get(i..i + 3)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], 0]))
    };
    let u32le = |i: usize| {
        input
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    match fmt {
        image::ImageFormat::Bmp => {
            // 14-byte file header, then the DIB header: OS/2 1.x (12 bytes) has u16 sides;
            // every later one i32 sides, height negative for top-down rows.
            if !input.starts_with(b"BM") {
                return None;
            }
            match u32le(14)? {
                12 => Some((u16le(18)?, u16le(20)?)),
                16.. => {
                    let w = i32::from_le_bytes(u32le(18)?.to_le_bytes());
                    let h = i32::from_le_bytes(u32le(22)?.to_le_bytes());
                    Some((u32::try_from(w).ok()?, h.unsigned_abs()))
                }
                _ => None,
            }
        }
        image::ImageFormat::WebP => {
            // RIFF header (12 bytes), then the first chunk: its FourCC at 12, data at 20.
            if input.get(8..12)? != b"WEBP" {
                return None;
            }
            match input.get(12..16)? {
                // Extended: flags (4 bytes), then canvas width - 1 and height - 1, 24 bits each.
                b"VP8X" => Some((u24le(24)? + 1, u24le(27)? + 1)),
                // Lossy: 3-byte frame tag, start code 9D 01 2A, then 14-bit sides (2 bits scale).
                b"VP8 " if input.get(23..26)? == [0x9D, 0x01, 0x2A] => {
                    Some((u16le(26)? & 0x3FFF, u16le(28)? & 0x3FFF))
                }
                // Lossless: signature 0x2F, then width - 1 and height - 1 in 14 bits each.
                b"VP8L" if input.get(20)? == &0x2F => {
                    let bits = u32le(21)?;
                    Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// RGB8 of any decoded image, alpha composited onto `bg` (straight alpha, sRGB values).
pub(crate) fn flatten(img: image::DynamicImage, bg: [u8; 3]) -> Vec<u8> {
    if !img.color().has_alpha() {
        return img.into_rgb8().into_raw();
    }
    flatten_rgba(&img.into_rgba8().into_raw(), bg)
}

/// RGBA8 composited onto `bg` (straight alpha, sRGB values), as RGB8.
fn flatten_rgba(rgba: &[u8], bg: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgba.len() / 4 * 3);
    for p in rgba.chunks_exact(4) {
        let a = u32::from(p[3]);
        for c in 0..3 {
            out.push(((u32::from(p[c]) * a + u32::from(bg[c]) * (255 - a) + 127) / 255) as u8);
        }
    }
    out
}

/// Text of a caught libjpeg/libheif unwind or any other panic.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "decoder failed".into())
}

mod jpeg {
    use super::*;
    use crate::libjpeg_decode::{Decompressor, Out};
    use mozjpeg::{Decompress, Marker};

    /// Walks the marker segments up to the first scan and returns the first SOF's
    /// declared width and height, so limits are checked before libjpeg sees the file.
    /// Then requires an EOI marker after that scan's start: libjpeg pads a truncated
    /// file with grey and reports success, and a half-grey directory photo is worse
    /// than an error. EOI is searched from the end (cheap for whole files; files with
    /// trailing data such as MPO still pass).
    pub(super) fn scan(input: &[u8]) -> Result<(u32, u32), ImagingError> {
        let trunc = || decode_err("jpeg", "file is truncated (no end-of-image marker)");
        let n = input.len();
        let mut i = 2usize; // after SOI
        let mut sof: Option<(u32, u32)> = None;
        loop {
            // Markers may be preceded by any number of 0xFF fill bytes.
            while i < n && input[i] == 0xFF {
                i += 1;
            }
            if i >= n {
                return Err(trunc());
            }
            if i < 1 || input[i - 1] != 0xFF {
                return Err(decode_err("jpeg", format!("expected a marker at byte {i}")));
            }
            let m = input[i];
            i += 1;
            match m {
                0x01 | 0xD0..=0xD7 => continue, // TEM, stray restart markers
                0xD8 | 0xD9 | 0x00 => {
                    return Err(decode_err(
                        "jpeg",
                        format!("unexpected marker 0x{m:02X} before the scan"),
                    ))
                }
                _ => {}
            }
            if i + 2 > n {
                return Err(trunc());
            }
            let len = usize::from(u16::from_be_bytes([input[i], input[i + 1]]));
            if len < 2 {
                return Err(decode_err(
                    "jpeg",
                    format!("bad segment length {len} in marker 0x{m:02X}"),
                ));
            }
            if matches!(m, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) && sof.is_none() {
                if len < 7 || i + 7 > n {
                    return Err(trunc());
                }
                let h = u16::from_be_bytes([input[i + 3], input[i + 4]]);
                let w = u16::from_be_bytes([input[i + 5], input[i + 6]]);
                sof = Some((u32::from(w), u32::from(h)));
            }
            i += len;
            if i > n {
                return Err(trunc());
            }
            if m == 0xDA {
                break;
            }
        }
        let dims =
            sof.ok_or_else(|| decode_err("jpeg", "no frame header (SOF) before the scan"))?;
        if !input[i..].windows(2).rev().any(|w| w == [0xFF, 0xD9]) {
            return Err(trunc());
        }
        Ok(dims)
    }

    struct Header {
        width: u32,
        height: u32,
        orientation: u8,
        adobe: bool,
        /// The profile from the APP2 `ICC_PROFILE` chunks (`Err`: an incomplete set).
        icc: Result<Option<Vec<u8>>, String>,
    }

    /// Orientation, Adobe marker and ICC profile from the saved APP1/APP2/APP14 marker
    /// segments `(code, data)` of a `width` x `height` file.
    fn header(markers: &[(u8, &[u8])], (width, height): (u32, u32)) -> Header {
        const APP1: u8 = 0xE1;
        const APP2: u8 = 0xE2;
        const APP14: u8 = 0xEE;
        let mut orientation = 1;
        let mut adobe = false;
        for &(m, data) in markers {
            match m {
                APP1 if orientation == 1 && data.starts_with(b"Exif\0\0") => {
                    orientation = orient::from_tiff_exif(&data[6..]);
                }
                APP14 if data.starts_with(b"Adobe") => adobe = true,
                _ => {}
            }
        }
        let icc = crate::icc::from_jpeg_app2(
            markers
                .iter()
                .filter(|(m, _)| *m == APP2)
                .map(|(_, data)| *data),
        );
        Header {
            width,
            height,
            orientation,
            adobe,
            icc,
        }
    }

    fn caught<T>(f: impl FnOnce() -> Result<T, ImagingError>) -> Result<T, ImagingError> {
        // mozjpeg reports libjpeg's fatal errors by unwinding (its documented contract).
        catch_unwind(AssertUnwindSafe(f))
            .unwrap_or_else(|p| Err(decode_err("jpeg", panic_text(&*p))))
    }

    pub(super) fn probe(input: &[u8]) -> Result<SourceInfo, ImagingError> {
        caught(|| {
            let d = Decompress::with_markers(&[Marker::APP(1)])
                .from_mem(input)
                .map_err(|e| decode_err("jpeg", e))?;
            let (w, h) = d.size();
            let size = (
                u32::try_from(w).unwrap_or(u32::MAX),
                u32::try_from(h).unwrap_or(u32::MAX),
            );
            let markers = d.markers().map(|m| {
                let code = u8::try_from(std::os::raw::c_int::from(m.marker)).unwrap_or(0);
                (code, m.data)
            });
            let h = header(&markers.collect::<Vec<_>>(), size);
            Ok(SourceInfo {
                format: "jpeg".into(),
                width: h.width,
                height: h.height,
                orientation: h.orientation,
                icc_profile: None,
            })
        })
    }

    pub(super) fn decode(
        input: &[u8],
        limits: &Limits,
        plan: &mut dyn FnMut(&Geometry) -> Result<Plan, ImagingError>,
        replay: Option<crate::huffman::Recording>,
    ) -> Result<Decoded, ImagingError> {
        let (sof_w, sof_h) = scan(input)?;
        check_dims(sof_w, sof_h, limits)?;
        caught(|| {
            // Corrupt entropy-coded data is only a warning to libjpeg (it pads with grey
            // and succeeds); this error manager makes it an error, like truncation above.
            let mut d = Decompressor::new(input, &[0xE1, 0xE2, 0xEE]);
            let mut h = header(&d.markers().collect::<Vec<_>>(), d.size());
            check_dims(h.width, h.height, limits)?;
            let geometry = Geometry {
                width: h.width,
                height: h.height,
                orientation: h.orientation,
            };
            let Plan {
                denom,
                window,
                record,
            } = plan(&geometry)?;
            let num = match denom {
                8 => 1,
                4 => 2,
                2 => 4,
                _ => 8,
            };
            let out = d.out();
            let icc_data = std::mem::replace(&mut h.icc, Ok(None));
            let tape = match replay {
                Some(rec) => crate::huffman::Tape::Replay {
                    rec,
                    next: 0,
                    at: usize::MAX,
                    cols: None,
                },
                // Room for every MCU at 4:2:0 (more are allotted as needed).
                None if record => {
                    crate::huffman::Tape::Record(crate::huffman::Recording::with_capacity(
                        (h.width as usize).div_ceil(16) * (h.height as usize).div_ceil(16),
                    ))
                }
                None => crate::huffman::Tape::Off,
            };
            let (pw, ph) = d.start(num, out, tape);
            if pw == 0 || ph == 0 {
                return Err(decode_err("jpeg", "decoder returned no pixels"));
            }
            // Only the window's pixels: columns outside it are cropped away (libjpeg
            // widens the crop to the left to a block boundary), rows above it are
            // skipped (entropy-decoded, no IDCT or colour), and rows below it are never
            // decoded: dropping the decompressor there aborts it (jpeg_destroy), which
            // skips the rest of the entropy-coded data, most of the decode's cost.
            let (x0, x1) = scaled_span(window.x0, window.x1, h.width, pw);
            let (y0, y1) = scaled_span(window.y0, window.y1, h.height, ph);
            let (x0, x1) = d.crop(x0, x1);
            let y0 = d.skip(y0);
            if d.next_row() != y0 || y1 <= y0 {
                return Err(decode_err(
                    "jpeg",
                    "decoder skipped the wrong number of rows",
                ));
            }
            let (bw, n) = (x1 - x0, y1 - y0);
            // A whole picture recorded at 1/8 (the `face` crop's preview decode): all
            // but its last iMCU row are skipped by libjpeg and decoded by our Huffman
            // decoder straight into pixels (`huffman::DcPreview`, the same pixels).
            let dc_rows = if record && num == 1 && (x0, x1, y0, y1) == (0, pw, 0, ph) {
                d.start_dc()
            } else {
                None
            };
            let mut px = match dc_rows {
                Some(rows) => {
                    if d.skip(rows) != rows || d.next_row() != rows {
                        return Err(decode_err(
                            "jpeg",
                            "decoder skipped the wrong number of rows",
                        ));
                    }
                    let mut head = d
                        .take_dc(rows)
                        .ok_or_else(|| decode_err("jpeg", "preview rows missing"))?;
                    let tail = d.read(bw, ph - rows).map_err(|e| decode_err("jpeg", e))?;
                    head.extend_from_slice(&tail);
                    head
                }
                None => d.read(bw, n).map_err(|e| decode_err("jpeg", e))?,
            };
            if y1 == ph && !d.replaying() {
                d.finish();
            }
            // Only a whole image's recording is of use (all rows read, all MCUs decoded).
            let recording = d.take_recording().filter(|_| y0 == 0 && y1 == ph);
            drop(d);
            let (rgb, icc) = match out {
                Out::Cmyk => {
                    let layout = Pixels::Cmyk {
                        adobe_inverted: h.adobe,
                    };
                    let icc = apply_icc(icc_data, &mut px, layout);
                    // Converted through the profile: now RGB. Otherwise the naive formula.
                    let rgb = if icc.applied.is_some() {
                        px
                    } else {
                        cmyk_to_rgb(&px, h.adobe)
                    };
                    (rgb, icc)
                }
                Out::Rgb => {
                    let icc = apply_icc(icc_data, &mut px, Pixels::Rgb);
                    (px, icc)
                }
            };
            if rgb.len() != bw as usize * n as usize * 3 {
                return Err(decode_err("jpeg", "decoder returned no pixels"));
            }
            Ok(Decoded {
                info: SourceInfo {
                    format: "jpeg".into(),
                    width: h.width,
                    height: h.height,
                    orientation: h.orientation,
                    icc_profile: icc.applied,
                },
                geometry,
                rgb,
                pix_width: pw,
                pix_height: ph,
                x0,
                y0,
                buf_width: bw,
                rows: n,
                warnings: icc.warnings,
                recording,
            })
        })
    }

    /// The scaled span `[a, b)` of `scaled` pixels covering the full-resolution span
    /// `[lo, hi)` of `full`: outward rounding plus one pixel each side for rounding;
    /// never empty.
    fn scaled_span(lo: u32, hi: u32, full: u32, scaled: u32) -> (u32, u32) {
        if lo == 0 && hi >= full {
            return (0, scaled);
        }
        let full = u64::from(full.max(1));
        let a = (u64::from(lo) * u64::from(scaled) / full).saturating_sub(1);
        let b = (u64::from(hi) * u64::from(scaled)).div_ceil(full) + 1;
        let b = b.min(u64::from(scaled)) as u32;
        let a = (a as u32).min(b.saturating_sub(1));
        (a, b.max(a + 1))
    }

    /// Naive CMYK → RGB (no ICC): what browsers and Pillow do without a profile.
    /// Photoshop (Adobe APP14) writes CMYK inverted: 255 means no ink.
    pub(super) fn cmyk_to_rgb(px: &[u8], adobe_inverted: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(px.len() / 4 * 3);
        for p in px.chunks_exact(4) {
            let (c, m, y, k) = if adobe_inverted {
                (
                    u32::from(p[0]),
                    u32::from(p[1]),
                    u32::from(p[2]),
                    u32::from(p[3]),
                )
            } else {
                (
                    255 - u32::from(p[0]),
                    255 - u32::from(p[1]),
                    255 - u32::from(p[2]),
                    255 - u32::from(p[3]),
                )
            };
            out.push(((c * k + 127) / 255) as u8);
            out.push(((m * k + 127) / 255) as u8);
            out.push(((y * k + 127) / 255) as u8);
        }
        out
    }
}

#[cfg(not(feature = "heic"))]
mod heic {
    use super::*;

    fn unsupported() -> ImagingError {
        ImagingError::Unsupported {
            format: "HEIC/HEIF".into(),
            feature: "heic".into(),
        }
    }

    pub(super) fn probe(_input: &[u8]) -> Result<SourceInfo, ImagingError> {
        Err(unsupported())
    }

    pub(super) fn decode(
        _input: &[u8],
        _limits: &Limits,
        _background: [u8; 3],
        _plan: &mut dyn FnMut(&Geometry) -> Result<Plan, ImagingError>,
    ) -> Result<Decoded, ImagingError> {
        Err(unsupported())
    }
}

#[cfg(feature = "heic")]
mod heic {
    use super::*;
    use libheif_rs::{ColorSpace, HeifContext, ImageHandle, ItemId, RgbChroma};

    fn herr(e: impl std::fmt::Display) -> ImagingError {
        decode_err("heic", e)
    }

    /// Whether the file's `meta` box holds an `irot` or `imir` property. libheif applies
    /// those itself; when present, the EXIF orientation must not be applied on top.
    pub(super) fn has_transform_boxes(input: &[u8]) -> bool {
        let mut i = 0usize;
        while i + 8 <= input.len() {
            let size =
                u32::from_be_bytes([input[i], input[i + 1], input[i + 2], input[i + 3]]) as usize;
            let kind = &input[i + 4..i + 8];
            let end = match size {
                0 => input.len(),
                1 => return false, // 64-bit box before meta: not something we need to walk
                s => i.saturating_add(s).min(input.len()),
            };
            if kind == b"meta" {
                let meta = &input[i..end];
                // irot and imir are 9-byte boxes: size 9, type, one payload byte.
                return meta
                    .windows(8)
                    .any(|w| w == b"\0\0\0\x09irot" || w == b"\0\0\0\x09imir");
            }
            if end <= i {
                return false;
            }
            i = end;
        }
        false
    }

    fn exif_orientation(handle: &ImageHandle) -> u8 {
        let mut ids: [ItemId; 4] = [0; 4];
        let n = handle.metadata_block_ids(&mut ids, b"Exif");
        for id in ids.iter().take(n) {
            if let Ok(block) = handle.metadata(*id) {
                // HEIF Exif items start with a 4-byte offset to the TIFF header.
                if block.len() > 4 {
                    let off = u32::from_be_bytes([block[0], block[1], block[2], block[3]]) as usize;
                    if let Some(tiff) = block.get(4 + off..) {
                        return orient::from_tiff_exif(tiff);
                    }
                }
            }
        }
        1
    }

    struct Opened {
        ctx: HeifContext,
        exif: u8,
        boxes: bool,
    }

    fn open(input: &[u8]) -> Result<Opened, ImagingError> {
        let ctx = HeifContext::read_from_bytes(input).map_err(herr)?;
        let exif = exif_orientation(&ctx.primary_image_handle().map_err(herr)?);
        Ok(Opened {
            ctx,
            exif,
            boxes: has_transform_boxes(input),
        })
    }

    pub(super) fn probe(input: &[u8]) -> Result<SourceInfo, ImagingError> {
        let o = open(input)?;
        let handle = o.ctx.primary_image_handle().map_err(herr)?;
        let (w, h) = stored_dims(&handle);
        Ok(SourceInfo {
            format: "heic".into(),
            width: w,
            height: h,
            orientation: if o.boxes { 1 } else { o.exif },
            icc_profile: None,
        })
    }

    /// Size as stored (before irot): `ispe` when given, else the handle's size.
    fn stored_dims(handle: &ImageHandle) -> (u32, u32) {
        let (iw, ih) = (handle.ispe_width(), handle.ispe_height());
        if iw > 0 && ih > 0 {
            (iw as u32, ih as u32)
        } else {
            (handle.width(), handle.height())
        }
    }

    pub(super) fn decode(
        input: &[u8],
        limits: &Limits,
        background: [u8; 3],
        plan: &mut dyn FnMut(&Geometry) -> Result<Plan, ImagingError>,
    ) -> Result<Decoded, ImagingError> {
        let o = open(input)?;
        let handle = o.ctx.primary_image_handle().map_err(herr)?;
        let (sw, sh) = stored_dims(&handle);
        check_dims(sw, sh, limits)?;
        let orientation = if o.boxes { 1 } else { o.exif };
        // Before decoding: the size after libheif's own transforms is the handle's.
        plan(&Geometry {
            width: handle.width(),
            height: handle.height(),
            orientation,
        })?;
        let alpha = handle.has_alpha_channel();
        let chroma = if alpha {
            RgbChroma::Rgba
        } else {
            RgbChroma::Rgb
        };
        let img = catch_unwind(AssertUnwindSafe(|| {
            handle.decode(ColorSpace::Rgb(chroma), None)
        }))
        .unwrap_or_else(|p| {
            Err(libheif_rs::HeifError {
                code: libheif_rs::HeifErrorCode::DecoderPluginError,
                sub_code: libheif_rs::HeifErrorSubCode::Unspecified,
                message: panic_text(&*p),
            })
        })
        .map_err(herr)?;
        let planes = img.planes();
        let plane = planes
            .interleaved
            .ok_or_else(|| herr("decoder returned no interleaved plane"))?;
        // The decoded image's size, not the handle's: with irot it is the rotated one.
        let (w, h) = (plane.width, plane.height);
        check_dims(w, h, limits)?;
        let bpp = if alpha { 4 } else { 3 };
        let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
        for row in 0..h as usize {
            let start = row * plane.stride;
            let line = plane
                .data
                .get(start..start + w as usize * bpp)
                .ok_or_else(|| herr("decoded plane is shorter than its size"))?;
            if alpha {
                let flat = flatten_rgba_row(line, background);
                rgb.extend_from_slice(&flat);
            } else {
                rgb.extend_from_slice(line);
            }
        }
        // libheif converts YCbCr to RGB but leaves the colour space alone: apply the
        // `colr` ICC profile when there is one (nclx-only files are taken as sRGB).
        let icc = apply_icc(
            Ok(handle.color_profile_raw().map(|p| p.data)),
            &mut rgb,
            Pixels::Rgb,
        );
        Ok(Decoded {
            info: SourceInfo {
                format: "heic".into(),
                width: sw,
                height: sh,
                orientation,
                icc_profile: icc.applied,
            },
            geometry: Geometry {
                width: w,
                height: h,
                orientation,
            },
            rgb,
            pix_width: w,
            pix_height: h,
            x0: 0,
            y0: 0,
            buf_width: w,
            rows: h,
            warnings: icc.warnings,
            recording: None,
        })
    }

    fn flatten_rgba_row(line: &[u8], bg: [u8; 3]) -> Vec<u8> {
        let mut out = Vec::with_capacity(line.len() / 4 * 3);
        for p in line.chunks_exact(4) {
            let a = u32::from(p[3]);
            for c in 0..3 {
                out.push(((u32::from(p[c]) * a + u32::from(bg[c]) * (255 - a) + 127) / 255) as u8);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageFormat as F;

    fn encoded(w: u32, h: u32, fmt: F) -> Vec<u8> {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::new(w, h));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), fmt)
            .expect("encode");
        out
    }

    fn riff(chunk: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&(u32::try_from(data.len()).expect("small") + 12).to_le_bytes());
        v.extend_from_slice(b"WEBP");
        v.extend_from_slice(chunk);
        v.extend_from_slice(&u32::try_from(data.len()).expect("small").to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn declared_dims_of_encoded_files() {
        assert_eq!(
            declared_dims(&encoded(161, 97, F::Bmp), F::Bmp),
            Some((161, 97))
        );
        // image writes lossless WebP (VP8L).
        assert_eq!(
            declared_dims(&encoded(161, 97, F::WebP), F::WebP),
            Some((161, 97))
        );
    }

    #[test]
    fn declared_dims_of_crafted_headers() {
        // BITMAPINFOHEADER, top-down (negative height).
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0; 12]);
        bmp.extend_from_slice(&40u32.to_le_bytes());
        bmp.extend_from_slice(&1_000_000i32.to_le_bytes());
        bmp.extend_from_slice(&(-700_000i32).to_le_bytes());
        assert_eq!(declared_dims(&bmp, F::Bmp), Some((1_000_000, 700_000)));
        // OS/2 1.x core header: u16 sides.
        let mut core = b"BM".to_vec();
        core.extend_from_slice(&[0; 12]);
        core.extend_from_slice(&12u32.to_le_bytes());
        core.extend_from_slice(&[0x34, 0x12, 0x78, 0x56]);
        assert_eq!(declared_dims(&core, F::Bmp), Some((0x1234, 0x5678)));
        // VP8X canvas: 24-bit sides minus one.
        let vp8x = riff(b"VP8X", &[0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x01, 0x02, 0x00]);
        assert_eq!(declared_dims(&vp8x, F::WebP), Some((16_777_216, 0x0202)));
        // VP8 key frame: tag, start code, 14-bit sides with 2 scale bits on top.
        let vp8 = riff(
            b"VP8 ",
            &[0x50, 0x2A, 0x00, 0x9D, 0x01, 0x2A, 0x2C, 0xC1, 0xC8, 0x00],
        );
        assert_eq!(declared_dims(&vp8, F::WebP), Some((300, 200)));
        // Nothing readable: leave it to the decoder.
        assert_eq!(declared_dims(b"BM", F::Bmp), None);
        assert_eq!(declared_dims(&riff(b"VP8 ", &[0; 10]), F::WebP), None);
        assert_eq!(declared_dims(b"RIFF\0\0\0\0WEBP", F::WebP), None);
    }
}
