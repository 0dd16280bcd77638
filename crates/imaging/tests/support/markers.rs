//! Lists the marker segments of a JPEG up to its first SOS: enough to prove that an
//! output carries no APP1 (EXIF/XMP), APP2 (ICC), APP13 (IPTC) or any other metadata.

/// Marker bytes (the byte after 0xFF) of every segment before the first SOS, in order;
/// `None` when the stream is not a well-formed JPEG header.
pub fn header_markers(j: &[u8]) -> Option<Vec<u8>> {
    if j.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut i = 2;
    let mut out = Vec::new();
    loop {
        if *j.get(i)? != 0xFF {
            return None;
        }
        let m = *j.get(i + 1)?;
        out.push(m);
        if m == 0xDA {
            return Some(out);
        }
        let len = usize::from(u16::from_be_bytes([*j.get(i + 2)?, *j.get(i + 3)?]));
        i += 2 + len;
    }
}

/// True when the only APPn segment is a JFIF APP0 (and no COM segment).
pub fn only_jfif(j: &[u8]) -> bool {
    match header_markers(j) {
        Some(ms) => {
            ms.iter().all(|m| !(0xE1..=0xEF).contains(m) && *m != 0xFE)
                && ms.iter().filter(|m| **m == 0xE0).count() <= 1
                && j.get(6..11) == Some(b"JFIF\0".as_slice())
        }
        None => false,
    }
}
