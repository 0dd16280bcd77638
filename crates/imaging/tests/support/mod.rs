//! Helpers shared by the integration tests: synthetic images, encoders that write
//! the metadata we must strip, a small SSIM, and a JPEG marker walker.
#![allow(dead_code)]

pub mod markers;
pub mod ssim;
pub mod synth;

use image::{ImageEncoder, RgbImage};

/// Baseline JPEG of an RGB8 image (image crate's encoder), no metadata.
pub fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encode jpeg");
    out
}

/// PNG of an RGB8 or RGBA8 buffer.
pub fn png(raw: &[u8], w: u32, h: u32, color: image::ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(raw, w, h, color)
        .expect("encode png");
    out
}

/// TIFF-structured EXIF (starting at `II*\0`) holding one tag: Orientation = `o`.
pub fn exif_tiff(o: u16) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"II*\0");
    t.extend_from_slice(&8u32.to_le_bytes()); // IFD0 offset
    t.extend_from_slice(&1u16.to_le_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_le_bytes()); // count
    t.extend_from_slice(&o.to_le_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    t
}

/// `jpeg` with an APP1 EXIF segment (orientation `o`, plus fake GPS-ish padding text)
/// inserted right after SOI, as cameras write it.
pub fn with_exif_orientation(jpeg: &[u8], o: u16) -> Vec<u8> {
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&exif_tiff(o));
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// CRC-32 (PNG's) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A PNG chunk with a correct CRC.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    c.extend_from_slice(&body);
    c.extend_from_slice(&crc32(&body).to_be_bytes());
    c
}

/// `png` with an `eXIf` chunk (orientation `o`) inserted after IHDR.
pub fn png_with_exif_orientation(png: &[u8], o: u16) -> Vec<u8> {
    let ihdr_end = 8 + 8 + 13 + 4;
    let mut out = png[..ihdr_end].to_vec();
    out.extend_from_slice(&png_chunk(b"eXIf", &exif_tiff(o)));
    out.extend_from_slice(&png[ihdr_end..]);
    out
}

/// The stored image that orientation `o` turns into `upright` (what a camera writes).
pub fn stored_for(upright: &RgbImage, o: u8) -> RgbImage {
    use image::imageops::{flip_horizontal, flip_vertical, rotate180, rotate270, rotate90};
    match o {
        2 => flip_horizontal(upright),
        3 => rotate180(upright),
        4 => flip_vertical(upright),
        5 => flip_horizontal(&rotate90(upright)), // transpose
        6 => rotate270(upright),
        7 => flip_horizontal(&rotate270(upright)), // transverse
        8 => rotate90(upright),
        _ => upright.clone(),
    }
}

/// Decode a JPEG output to RGB8.
pub fn decode_rgb(jpeg: &[u8]) -> RgbImage {
    image::load_from_memory(jpeg)
        .expect("output decodes")
        .to_rgb8()
}
