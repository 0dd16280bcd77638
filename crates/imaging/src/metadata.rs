//! What a photo carries besides pixels, for reports: EXIF (and GPS in it), XMP, and the
//! embedded ICC profile's description — read from container headers only, without
//! decoding any pixels, so a report over thousands of directory photos stays cheap.
//!
//! Covered: JPEG (APP1 `Exif`/XMP, APP2 `ICC_PROFILE`), PNG (`eXIf`, `iTXt` XMP,
//! `iCCP`, and ImageMagick's `Raw profile type exif/xmp/icc` text chunks), WebP (`EXIF`,
//! `XMP `, `ICCP` chunks), TIFF (IFD0: Exif/GPS IFD pointers, XMP tag 700, ICC tag
//! 34675) and, with the `heic` feature, HEIC (Exif and XMP items, `colr` profile).
//! GIF and BMP report nothing. Anything malformed reads as "not there": [`scan`] never
//! fails and never panics.
//!
//! "GPS" means the EXIF's IFD0 holds a GPS IFD pointer (tag 0x8825), the way every
//! camera and phone records a location; the same number elsewhere does not count.

use serde::Serialize;

/// Largest ICC profile or ImageMagick text chunk inflated while scanning a PNG.
const MAX_INFLATED: usize = 8 << 20;

/// What [`scan`] found. `#[non_exhaustive]`: more flags may be added; read the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Metadata {
    /// An EXIF block is present (any tags at all).
    pub has_exif: bool,
    /// The EXIF block points to a GPS IFD (tag 0x8825 in IFD0): a location may leak.
    pub has_gps: bool,
    /// An XMP packet is present.
    pub has_xmp: bool,
    /// Description of the embedded ICC profile (e.g. "Display P3"); `None` when there is
    /// no profile; `"unnamed ICC profile"` when one is present but its description is
    /// unreadable.
    pub icc: Option<String>,
}

/// Text used for a profile that is present but has no readable description.
pub const UNNAMED_PROFILE: &str = "unnamed ICC profile";

/// Scans `input`'s headers for EXIF, GPS, XMP and an ICC profile. Unknown formats and
/// malformed files give an empty [`Metadata`].
pub fn scan(input: &[u8]) -> Metadata {
    let mut m = Metadata::default();
    if input.starts_with(&[0xFF, 0xD8]) {
        scan_jpeg(input, &mut m);
    } else if input.starts_with(b"\x89PNG\r\n\x1a\n") {
        scan_png(input, &mut m);
    } else if input.len() >= 12 && &input[..4] == b"RIFF" && &input[8..12] == b"WEBP" {
        scan_webp(input, &mut m);
    } else if input.starts_with(b"II*\0") || input.starts_with(b"MM\0*") {
        scan_tiff_file(input, &mut m);
    } else {
        scan_heic(input, &mut m);
    }
    m
}

fn set_icc(m: &mut Metadata, profile: &[u8]) {
    if m.icc.is_none() && !profile.is_empty() {
        m.icc = Some(crate::icc::description(profile).unwrap_or_else(|| UNNAMED_PROFILE.into()));
    }
}

/// An EXIF payload starting at the TIFF header, or with JPEG's `Exif\0\0` before it.
fn add_exif(m: &mut Metadata, payload: &[u8]) {
    let tiff = payload.strip_prefix(b"Exif\0\0").unwrap_or(payload);
    m.has_exif = true;
    if let Some(t) = Tiff::new(tiff) {
        m.has_gps |= t.ifd0().any(|e| e.tag == TAG_GPS_IFD);
    }
}

fn scan_jpeg(b: &[u8], m: &mut Metadata) {
    const XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
    const XMP_EXT: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";
    let mut app2: Vec<&[u8]> = Vec::new();
    let mut i = 2usize;
    loop {
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        if i < 3 || b.get(i - 1) != Some(&0xFF) {
            break;
        }
        let Some(&marker) = b.get(i) else { break };
        i += 1;
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xDA | 0xD9 | 0x00 => break,
            _ => {}
        }
        let Some(len) = b
            .get(i..i + 2)
            .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
        else {
            break;
        };
        let Some(seg) = b.get(i + 2..(i + len).max(i + 2)) else {
            break;
        };
        match marker {
            0xE1 if seg.starts_with(b"Exif\0\0") => add_exif(m, seg),
            0xE1 if seg.starts_with(XMP) || seg.starts_with(XMP_EXT) => m.has_xmp = true,
            0xE2 if seg.starts_with(crate::icc::JPEG_APP2_ID) => app2.push(seg),
            _ => {}
        }
        i += len.max(2);
    }
    match crate::icc::from_jpeg_app2(app2) {
        Ok(Some(p)) => set_icc(m, &p),
        Ok(None) => {}
        Err(_) => m.icc = Some(UNNAMED_PROFILE.into()),
    }
}

fn inflate(zlib: &[u8]) -> Option<Vec<u8>> {
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(zlib, MAX_INFLATED).ok()
}

/// ImageMagick's legacy "Raw profile type NAME" text: `\nNAME\n   LENGTH\nHEX...`.
fn raw_profile(text: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let mut parts = text.split_ascii_whitespace();
    let _name = parts.next()?;
    let len: usize = parts.next()?.parse().ok()?;
    let hex: Vec<u8> = parts.flat_map(str::bytes).collect();
    if len > MAX_INFLATED || hex.len() < len * 2 {
        return None;
    }
    hex.chunks_exact(2)
        .take(len)
        .map(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
        .collect()
}

fn scan_png(b: &[u8], m: &mut Metadata) {
    let mut i = 8usize;
    while let (Some(len), Some(kind)) = (b.get(i..i + 4), b.get(i + 4..i + 8)) {
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(data) = b.get(i + 8..(i + 8).saturating_add(len)) else {
            break;
        };
        match kind {
            b"eXIf" => add_exif(m, data),
            b"iCCP" => {
                // name\0, compression method (0 = zlib), compressed profile
                if let Some(z) = data.iter().position(|&c| c == 0) {
                    match data.get(z + 2..).and_then(inflate) {
                        Some(p) => set_icc(m, &p),
                        None => m.icc = m.icc.take().or(Some(UNNAMED_PROFILE.into())),
                    }
                }
            }
            b"tEXt" | b"zTXt" | b"iTXt" => png_text(kind, data, m),
            b"IEND" => break,
            _ => {}
        }
        i = i.saturating_add(12).saturating_add(len);
    }
}

fn png_text(kind: &[u8], data: &[u8], m: &mut Metadata) {
    let Some(z) = data.iter().position(|&c| c == 0) else {
        return;
    };
    let keyword = &data[..z];
    let rest = &data[z + 1..];
    if kind == b"iTXt" && keyword == b"XML:com.adobe.xmp" {
        m.has_xmp = true;
        return;
    }
    let Some(which) = keyword.strip_prefix(b"Raw profile type ") else {
        return;
    };
    match which {
        b"exif" | b"APP1" => m.has_exif = true,
        b"xmp" => {
            m.has_xmp = true;
            return;
        }
        b"icc" | b"icm" => {}
        _ => return,
    }
    // The payload is hex text: plain (tEXt), zlib after a method byte (zTXt), or iTXt's
    // flag, method, language\0, translated keyword\0, then text.
    let text = match kind {
        b"tEXt" => Some(rest.to_vec()),
        b"zTXt" => rest.get(1..).and_then(inflate),
        _ => (|| {
            let (flag, after) = (*rest.first()?, rest.get(2..)?);
            let l = after.iter().position(|&c| c == 0)?;
            let t = after[l + 1..].iter().position(|&c| c == 0)?;
            let body = &after[l + 1 + t + 1..];
            if flag == 1 {
                inflate(body)
            } else {
                Some(body.to_vec())
            }
        })(),
    };
    let payload = text.as_deref().and_then(raw_profile);
    match (which, payload) {
        (b"icc" | b"icm", Some(p)) => set_icc(m, &p),
        (b"icc" | b"icm", None) => m.icc = m.icc.take().or(Some(UNNAMED_PROFILE.into())),
        (_, Some(p)) => add_exif(m, &p),
        (_, None) => {}
    }
}

fn scan_webp(b: &[u8], m: &mut Metadata) {
    let mut i = 12usize;
    while let (Some(kind), Some(len)) = (b.get(i..i + 4), b.get(i + 4..i + 8)) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(data) = b.get(i + 8..(i + 8).saturating_add(len)) else {
            break;
        };
        match kind {
            b"EXIF" => add_exif(m, data),
            b"XMP " => m.has_xmp = true,
            b"ICCP" => set_icc(m, data),
            _ => {}
        }
        i = i
            .saturating_add(8)
            .saturating_add(len)
            .saturating_add(len & 1);
    }
}

fn scan_tiff_file(b: &[u8], m: &mut Metadata) {
    let Some(t) = Tiff::new(b) else { return };
    for e in t.ifd0() {
        match e.tag {
            TAG_EXIF_IFD => m.has_exif = true,
            TAG_GPS_IFD => {
                m.has_exif = true;
                m.has_gps = true;
            }
            TAG_XMP => m.has_xmp = true,
            TAG_ICC => match t.bytes(&e) {
                Some(p) => set_icc(m, p),
                None => m.icc = Some(UNNAMED_PROFILE.into()),
            },
            _ => {}
        }
    }
}

#[cfg(feature = "heic")]
fn scan_heic(b: &[u8], m: &mut Metadata) {
    use libheif_rs::{HeifContext, ItemId};
    if !crate::decode::is_heif(b) {
        return;
    }
    let found = std::panic::catch_unwind(|| -> Option<Metadata> {
        let ctx = HeifContext::read_from_bytes(b).ok()?;
        let h = ctx.primary_image_handle().ok()?;
        let mut out = Metadata::default();
        let mut ids: [ItemId; 8] = [0; 8];
        let n = h.metadata_block_ids(&mut ids, b"Exif");
        for id in ids.iter().take(n) {
            // HEIF Exif items start with a 4-byte offset to the TIFF header.
            if let Ok(block) = h.metadata(*id) {
                let off = block
                    .get(..4)
                    .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize);
                add_exif(&mut out, block.get(4 + off..).unwrap_or_default());
            }
        }
        let n = h.metadata_block_ids(&mut ids, b"mime");
        out.has_xmp = ids.iter().take(n).any(|id| {
            h.metadata_content_type(*id)
                .is_some_and(|t| t.contains("rdf+xml"))
        });
        if let Some(p) = h.color_profile_raw() {
            set_icc(&mut out, &p.data);
        }
        Some(out)
    });
    if let Ok(Some(found)) = found {
        *m = found;
    }
}

#[cfg(not(feature = "heic"))]
fn scan_heic(_b: &[u8], _m: &mut Metadata) {}

const TAG_EXIF_IFD: u16 = 0x8769;
const TAG_GPS_IFD: u16 = 0x8825;
const TAG_XMP: u16 = 700;
const TAG_ICC: u16 = 34675;

/// A TIFF structure (a TIFF file or an EXIF block), read with bounds checks only.
pub(crate) struct Tiff<'a> {
    t: &'a [u8],
    le: bool,
}

pub(crate) struct Entry {
    pub tag: u16,
    pub typ: u16,
    pub count: u32,
    /// Offset of the entry's 4-byte value/offset field.
    pub field: usize,
}

impl<'a> Tiff<'a> {
    pub(crate) fn new(t: &'a [u8]) -> Option<Self> {
        let le = match t.get(..4)? {
            b"II*\0" => true,
            b"MM\0*" => false,
            _ => return None,
        };
        Some(Tiff { t, le })
    }

    fn u16_at(&self, o: usize) -> Option<u16> {
        let s = self.t.get(o..o.checked_add(2)?)?;
        Some(if self.le {
            u16::from_le_bytes([s[0], s[1]])
        } else {
            u16::from_be_bytes([s[0], s[1]])
        })
    }

    fn u32_at(&self, o: usize) -> Option<u32> {
        let s = self.t.get(o..o.checked_add(4)?)?;
        let a = [s[0], s[1], s[2], s[3]];
        Some(if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    /// The entries of IFD0 that lie inside the data.
    pub(crate) fn ifd0(&self) -> impl Iterator<Item = Entry> + '_ {
        let ifd = self.u32_at(4).map_or(usize::MAX, |o| o as usize);
        let n = self.u16_at(ifd).unwrap_or(0);
        (0..usize::from(n)).map_while(move |k| {
            let e = ifd.checked_add(2 + k * 12)?;
            Some(Entry {
                tag: self.u16_at(e)?,
                typ: self.u16_at(e + 2)?,
                count: self.u32_at(e + 4)?,
                field: e + 8,
            })
        })
    }

    /// The bytes of a BYTE/UNDEFINED entry (inline when 4 or fewer).
    pub(crate) fn bytes(&self, e: &Entry) -> Option<&'a [u8]> {
        if !matches!(e.typ, 1 | 7) {
            return None;
        }
        let n = e.count as usize;
        let at = if n <= 4 {
            e.field
        } else {
            self.u32_at(e.field)? as usize
        };
        self.t.get(at..at.checked_add(n)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TIFF block with one IFD0 entry `tag` (LONG, value 0), in either byte order.
    fn tiff(le: bool, tag: u16) -> Vec<u8> {
        let mut t = Vec::new();
        if le {
            t.extend_from_slice(b"II*\0\x08\0\0\0\x01\0");
            t.extend_from_slice(&tag.to_le_bytes());
            t.extend_from_slice(&[4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        } else {
            t.extend_from_slice(b"MM\0*\0\0\0\x08\0\x01");
            t.extend_from_slice(&tag.to_be_bytes());
            t.extend_from_slice(&[0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
        t
    }

    fn jpeg_with(segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        for (m, seg) in segments {
            j.extend_from_slice(&[0xFF, *m]);
            j.extend_from_slice(&u16::try_from(seg.len() + 2).expect("small").to_be_bytes());
            j.extend_from_slice(seg);
        }
        j.extend_from_slice(&[0xFF, 0xDA, 0, 2, 0xFF, 0xD9]);
        j
    }

    fn exif_jpeg(le: bool, tag: u16) -> Vec<u8> {
        jpeg_with(&[(0xE1, [b"Exif\0\0".as_slice(), &tiff(le, tag)].concat())])
    }

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = u32::try_from(data.len())
            .expect("small")
            .to_be_bytes()
            .to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&[0; 4]); // CRC is not checked by the scan
        c
    }

    #[test]
    fn gps_pointer_found_in_both_byte_orders_and_not_elsewhere() {
        for le in [true, false] {
            let m = scan(&exif_jpeg(le, 0x8825));
            assert!(m.has_exif && m.has_gps, "le={le}: {m:?}");
            // The Exif sub-IFD pointer is EXIF, not GPS.
            let m = scan(&exif_jpeg(le, 0x8769));
            assert!(m.has_exif && !m.has_gps, "le={le}: {m:?}");
        }
        // 0x8825 as bytes in some other segment (a comment) is not GPS.
        let m = scan(&jpeg_with(&[(0xFE, vec![0x88, 0x25, 0x25, 0x88])]));
        assert_eq!(m, Metadata::default());
        // ... nor as the *value* of another IFD0 entry.
        let mut t = tiff(true, 0x010F);
        t[18..20].copy_from_slice(&0x8825u16.to_le_bytes());
        let m = scan(&jpeg_with(&[(0xE1, [b"Exif\0\0".as_slice(), &t].concat())]));
        assert!(m.has_exif && !m.has_gps);
    }

    #[test]
    fn jpeg_xmp_and_icc_description() {
        let xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>".to_vec();
        let profile = crate::icc::tests::profile_with_desc(false, "Adobe RGB (1998)");
        let (a, b) = profile.split_at(100);
        let icc1 = [crate::icc::JPEG_APP2_ID, &[1, 2], a].concat();
        let icc2 = [crate::icc::JPEG_APP2_ID, &[2, 2], b].concat();
        let m = scan(&jpeg_with(&[
            (0xE1, xmp),
            (0xE2, icc2),
            (0xE2, icc1.clone()),
        ]));
        assert!(m.has_xmp && !m.has_exif && !m.has_gps);
        assert_eq!(m.icc.as_deref(), Some("Adobe RGB (1998)"));
        // Half a profile is still a profile, just not a readable one.
        let m = scan(&jpeg_with(&[(0xE2, icc1)]));
        assert_eq!(m.icc.as_deref(), Some(UNNAMED_PROFILE));
    }

    #[test]
    fn png_webp_and_tiff_containers() {
        let profile = crate::icc::tests::profile_with_desc(true, "Display P3");
        let mut iccp = b"icc\0\0".to_vec();
        iccp.extend_from_slice(&miniz_oxide::deflate::compress_to_vec_zlib(&profile, 6));
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(png_chunk(b"IHDR", &[0; 13]));
        png.extend(png_chunk(b"iCCP", &iccp));
        png.extend(png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x/>"));
        png.extend(png_chunk(b"IDAT", &[0; 10]));
        png.extend(png_chunk(b"eXIf", &tiff(false, 0x8825)));
        png.extend(png_chunk(b"IEND", &[]));
        let m = scan(&png);
        assert_eq!(
            (m.has_exif, m.has_gps, m.has_xmp, m.icc.as_deref()),
            (true, true, true, Some("Display P3"))
        );

        // ImageMagick's hex "Raw profile type exif" in a zTXt chunk.
        let exif = [b"Exif\0\0".as_slice(), &tiff(true, 0x8825)].concat();
        let hex: String = exif.iter().map(|b| format!("{b:02x}")).collect();
        let text = format!("\nexif\n{:8}\n{hex}\n", exif.len());
        let mut ztxt = b"Raw profile type exif\0\0".to_vec();
        ztxt.extend_from_slice(&miniz_oxide::deflate::compress_to_vec_zlib(
            text.as_bytes(),
            6,
        ));
        let mut png2 = b"\x89PNG\r\n\x1a\n".to_vec();
        png2.extend(png_chunk(b"zTXt", &ztxt));
        let m = scan(&png2);
        assert!(m.has_exif && m.has_gps, "{m:?}");

        let mut webp = b"RIFF\0\0\0\0WEBP".to_vec();
        for (kind, data) in [
            (b"VP8X", vec![0u8; 10]),
            (b"ICCP", profile.clone()),
            (
                b"EXIF",
                [b"Exif\0\0".as_slice(), &tiff(true, 0x8769)].concat(),
            ),
            (b"XMP ", b"<x/>".to_vec()),
        ] {
            webp.extend_from_slice(kind);
            webp.extend_from_slice(&u32::try_from(data.len()).expect("small").to_le_bytes());
            webp.extend_from_slice(&data);
            if data.len() % 2 == 1 {
                webp.push(0);
            }
        }
        let m = scan(&webp);
        assert_eq!(
            (m.has_exif, m.has_gps, m.has_xmp, m.icc.as_deref()),
            (true, false, true, Some("Display P3"))
        );

        // TIFF: GPS pointer in IFD0, then an ICC tag pointing past the header.
        let mut t = b"II*\0\x08\0\0\0\x02\0".to_vec();
        t.extend_from_slice(&0x8825u16.to_le_bytes());
        t.extend_from_slice(&[4, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        t.extend_from_slice(&TAG_ICC.to_le_bytes());
        t.extend_from_slice(&7u16.to_le_bytes());
        t.extend_from_slice(&u32::try_from(profile.len()).expect("small").to_le_bytes());
        t.extend_from_slice(&38u32.to_le_bytes());
        t.extend_from_slice(&[0; 4]);
        assert_eq!(t.len(), 38);
        t.extend_from_slice(&profile);
        let m = scan(&t);
        assert_eq!(
            (m.has_exif, m.has_gps, m.has_xmp, m.icc.as_deref()),
            (true, true, false, Some("Display P3"))
        );
    }

    #[test]
    fn truncated_and_garbage_inputs_never_panic() {
        let j = exif_jpeg(true, 0x8825);
        for cut in 0..j.len() {
            let _ = scan(&j[..cut]);
        }
        assert_eq!(scan(b"not an image"), Metadata::default());
        assert_eq!(scan(&[]), Metadata::default());
        // A segment length that points far past the end.
        assert_eq!(
            scan(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 0]),
            Metadata::default()
        );
    }
}
