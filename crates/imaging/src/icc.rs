//! ICC profiles: finding them in containers and reading their description.
//!
//! Only what both the metadata scan and the colour conversion need: reassembling a
//! JPEG's `ICC_PROFILE` APP2 chunks, and the profile's `desc` tag (ICC v2
//! `textDescriptionType` or v4 `multiLocalizedUnicodeType`) as plain, printable text.
//! Everything here is hostile input: lengths are checked, never trusted.

/// Longest description returned (profiles are hostile; reports are for people).
const MAX_DESCRIPTION_CHARS: usize = 200;

/// The `ICC_PROFILE\0` APP2 identifier.
pub(crate) const JPEG_APP2_ID: &[u8] = b"ICC_PROFILE\0";

/// Reassembles a profile from the payloads of a JPEG's APP2 segments (each as libjpeg or a
/// marker walk delivers it, starting with `ICC_PROFILE\0`, then sequence number 1..=n
/// and n). Other APP2 segments are ignored. `Err` when chunks are present but the set is
/// not complete and consistent (a missing, repeated or out-of-range sequence number);
/// `Ok(None)` when there is no ICC chunk at all.
pub(crate) fn from_jpeg_app2<'a>(
    payloads: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<Vec<u8>>, String> {
    let mut chunks: Vec<(u8, u8, &[u8])> = Vec::new();
    for p in payloads {
        let Some(rest) = p.strip_prefix(JPEG_APP2_ID) else {
            continue;
        };
        if rest.len() < 2 {
            return Err("ICC_PROFILE chunk without a sequence number".into());
        }
        chunks.push((rest[0], rest[1], &rest[2..]));
    }
    if chunks.is_empty() {
        return Ok(None);
    }
    let count = chunks[0].1;
    if count == 0 || chunks.len() != usize::from(count) || chunks.iter().any(|c| c.1 != count) {
        return Err(format!(
            "ICC_PROFILE chunks are inconsistent ({} chunks, count says {count})",
            chunks.len()
        ));
    }
    chunks.sort_unstable_by_key(|c| c.0);
    if chunks.iter().zip(1u8..).any(|(c, want)| c.0 != want) {
        return Err("ICC_PROFILE chunks are missing or repeated".into());
    }
    Ok(Some(
        chunks.iter().flat_map(|c| c.2.iter().copied()).collect(),
    ))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Whether `p` looks like an ICC profile at all: a 128-byte header with the `acsp`
/// signature and a tag count that fits.
pub(crate) fn looks_valid(p: &[u8]) -> bool {
    p.len() >= 132
        && p.get(36..40) == Some(b"acsp")
        && be32(p, 128).is_some_and(|n| (n as usize).saturating_mul(12) <= p.len() - 132)
}

/// The profile's description (`desc` tag), printable and trimmed; `None` when the
/// profile is not readable or has no usable description.
pub(crate) fn description(p: &[u8]) -> Option<String> {
    if !looks_valid(p) {
        return None;
    }
    let count = be32(p, 128)? as usize;
    let (off, size) = (0..count).find_map(|i| {
        let e = 132 + i * 12;
        (p.get(e..e + 4)? == b"desc")
            .then(|| Some((be32(p, e + 4)? as usize, be32(p, e + 8)? as usize)))?
    })?;
    let tag = p.get(off..off.checked_add(size)?)?;
    let text = match tag.get(..4)? {
        // ICC v2 textDescriptionType: ASCII count (with its NUL), then ASCII.
        b"desc" => {
            let n = be32(tag, 8)? as usize;
            let ascii = tag.get(12..12usize.checked_add(n)?)?;
            ascii.iter().map(|&b| char::from(b)).collect::<String>()
        }
        // ICC v4 multiLocalizedUnicodeType: records of (language, country, length, offset)
        // pointing at UTF-16BE text; English preferred, else the first record.
        b"mluc" => {
            let n = be32(tag, 8)? as usize;
            let rec = be32(tag, 12)? as usize;
            if rec < 12 {
                return None;
            }
            let records: Vec<&[u8]> = (0..n.min(256))
                .filter_map(|i| tag.get(16 + i * rec..16 + i * rec + 12))
                .collect();
            let pick = records
                .iter()
                .find(|r| &r[..2] == b"en")
                .or_else(|| records.first())?;
            let (len, at) = (be32(pick, 4)? as usize, be32(pick, 8)? as usize);
            let utf16: Vec<u16> = tag
                .get(at..at.checked_add(len)?)?
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&utf16)
        }
        _ => return None,
    };
    let clean: String = text
        .chars()
        .take_while(|&c| c != '\0')
        .filter(|c| !c.is_control())
        .take(MAX_DESCRIPTION_CHARS)
        .collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal profile: header with `acsp`, one `desc` tag of the given type.
    pub(crate) fn profile_with_desc(v4: bool, text: &str) -> Vec<u8> {
        let mut tag = Vec::new();
        if v4 {
            let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
            tag.extend_from_slice(b"mluc\0\0\0\0");
            tag.extend_from_slice(&1u32.to_be_bytes());
            tag.extend_from_slice(&12u32.to_be_bytes());
            tag.extend_from_slice(b"enUS");
            tag.extend_from_slice(&(utf16.len() as u32).to_be_bytes());
            tag.extend_from_slice(&28u32.to_be_bytes());
            tag.extend_from_slice(&utf16);
        } else {
            tag.extend_from_slice(b"desc\0\0\0\0");
            tag.extend_from_slice(&(text.len() as u32 + 1).to_be_bytes());
            tag.extend_from_slice(text.as_bytes());
            tag.push(0);
        }
        let mut p = vec![0u8; 128];
        p[36..40].copy_from_slice(b"acsp");
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(b"desc");
        p.extend_from_slice(&144u32.to_be_bytes());
        p.extend_from_slice(&(tag.len() as u32).to_be_bytes());
        p.extend_from_slice(&tag);
        let len = p.len() as u32;
        p[..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    #[test]
    fn reads_v2_and_v4_descriptions() {
        assert_eq!(
            description(&profile_with_desc(false, "Adobe RGB (1998)")).as_deref(),
            Some("Adobe RGB (1998)")
        );
        assert_eq!(
            description(&profile_with_desc(true, "Display P3")).as_deref(),
            Some("Display P3")
        );
        assert_eq!(description(&profile_with_desc(false, "  \u{7}  ")), None);
        assert_eq!(description(b"not a profile"), None);
        let p = profile_with_desc(true, "Display P3");
        for cut in 0..p.len() {
            let _ = description(&p[..cut]); // never panics
        }
    }

    #[test]
    fn jpeg_chunks_reassemble_in_sequence_order() {
        let a = [JPEG_APP2_ID, &[2, 2], b"world"].concat();
        let b = [JPEG_APP2_ID, &[1, 2], b"hello "].concat();
        let other = b"MPF\0whatever".to_vec();
        let got = from_jpeg_app2([a.as_slice(), other.as_slice(), b.as_slice()]);
        assert_eq!(got, Ok(Some(b"hello world".to_vec())));
        assert_eq!(from_jpeg_app2([other.as_slice()]), Ok(None));
        assert!(from_jpeg_app2([a.as_slice()]).is_err()); // chunk 1 missing
        assert!(from_jpeg_app2([b.as_slice(), b.as_slice()]).is_err()); // repeated
    }
}
