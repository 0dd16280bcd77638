//! `report.run`: one row per user in scope, streamed as `report/row` notifications, with the
//! flags administrators act on, optionally written as CSV.

use std::io::Write;

use photobulk_directory::{ListOptions, User};
use photobulk_protocol::methods::{self as m, flags, ReportRow};
use photobulk_protocol::ResponseError;

use crate::conn::Ctx;
use crate::{handlers, map};

/// Exchange Online takes an AD photo only up to this many bytes (KB 3062745).
const EXO_LIMIT: usize = 10_240;

pub(crate) async fn run(p: m::ReportParams, ctx: &Ctx) -> Result<m::ReportResult, ResponseError> {
    let b = ctx.session.bound().await?;
    let by = handlers::lookup(&p.match_by)?;
    let mut csv = match &p.csv_path {
        Some(path) => {
            let mut f = std::fs::File::create(path).map_err(|e| map::io(path, &e))?;
            writeln!(f, "Identity,DistinguishedName,UserPrincipalName,HasPhoto,Bytes,Width,Height,Format,Flags,Error")
                .map_err(|e| map::io(path, &e))?;
            Some(std::io::BufWriter::new(f))
        }
        None => None,
    };
    let mut result = m::ReportResult {
        csv_path: p.csv_path.clone(),
        ..Default::default()
    };
    let mut rows: Vec<ReportRow> = Vec::new();
    if p.identities.is_empty() {
        let users = b
            .dir
            .list_users(&ListOptions {
                base: p.search_base.clone(),
                only_with_photo: p.only_with_photo,
                fetch_photo: true,
            })
            .await
            .map_err(|e| map::directory(&e))?;
        let mut users = users;
        users.sort_by_key(|u| label(u).to_lowercase());
        rows.extend(users.iter().map(row_for));
    } else {
        for id in &p.identities {
            if ctx.cancel.is_cancelled() {
                break;
            }
            rows.push(match b.dir.find_user(&by, id, true).await {
                Ok(u) => ReportRow {
                    identity: id.clone(),
                    ..row_for(&u)
                },
                Err(e) => ReportRow {
                    identity: id.clone(),
                    error: Some(map::item(map::directory(&e))),
                    ..Default::default()
                },
            });
        }
    }
    for row in rows {
        if ctx.cancel.is_cancelled() {
            result.cancelled = true;
            break;
        }
        result.total += 1;
        result.with_photo += usize::from(row.has_photo);
        result.flagged += usize::from(!row.flags.is_empty());
        if let Some(w) = &mut csv {
            let _ = writeln!(w, "{}", csv_line(&row));
        }
        ctx.out
            .notify::<m::ReportRowNotice>(&m::ReportRowParams {
                request_id: ctx.id.clone(),
                row,
            })
            .await;
    }
    if let (Some(mut w), Some(path)) = (csv, &p.csv_path) {
        w.flush().map_err(|e| map::io(path, &e))?;
    }
    if result.cancelled {
        // The rows sent so far stand; the caller learns the report is partial.
        ctx.server.log(format_args!(
            "report.run {} cancelled after {} rows",
            ctx.id, result.total
        ));
    }
    Ok(result)
}

fn label(u: &User) -> String {
    u.sam_account_name
        .clone()
        .or_else(|| u.user_principal_name.clone())
        .unwrap_or_else(|| u.dn.clone())
}

pub(crate) fn row_for(u: &User) -> ReportRow {
    let mut row = ReportRow {
        identity: label(u),
        dn: Some(u.dn.clone()),
        user_principal_name: u.user_principal_name.clone(),
        has_photo: u.photo.is_some(),
        ..Default::default()
    };
    if let Some(photo) = &u.photo {
        row.bytes = Some(photo.len());
        row.flags = photo_flags(photo, &mut row);
    }
    row
}

/// The flags of one stored photo (and its format and size into `row`).
pub(crate) fn photo_flags(photo: &[u8], row: &mut ReportRow) -> Vec<String> {
    let mut f = Vec::new();
    if photo.len() > EXO_LIMIT {
        f.push(flags::OVER_10KB);
    }
    match photobulk_imaging::probe(photo) {
        Ok(info) => {
            if info.width != info.height {
                f.push(flags::NOT_SQUARE);
            }
            if info.width.min(info.height) < 96 {
                f.push(flags::UNDER_96PX);
            }
            if info.format != "jpeg" {
                f.push(flags::NOT_JPEG);
            }
            row.width = Some(info.width);
            row.height = Some(info.height);
            row.format = Some(info.format);
        }
        Err(_) => f.push(flags::UNREADABLE),
    }
    if jpeg_has_gps(photo) {
        f.push(flags::GPS_EXIF);
    }
    f.into_iter().map(str::to_string).collect()
}

/// Whether a JPEG's EXIF (APP1) has a GPS IFD pointer (tag 0x8825) in IFD0. Reads only
/// headers; anything malformed is "no".
pub(crate) fn jpeg_has_gps(b: &[u8]) -> bool {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return false;
    }
    let mut i = 2;
    while i + 4 <= b.len() && b[i] == 0xFF {
        let marker = b[i + 1];
        if marker == 0xDA || marker == 0xD9 {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        let Some(seg) = b.get(i + 4..i + 2 + len) else {
            return false;
        };
        if marker == 0xE1 && seg.starts_with(b"Exif\0\0") && tiff_has_gps(&seg[6..]) {
            return true;
        }
        i += 2 + len;
    }
    false
}

fn tiff_has_gps(t: &[u8]) -> bool {
    let le = match t.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return false,
    };
    let u16_at = |o: usize| {
        t.get(o..o + 2).map(|s| {
            if le {
                u16::from_le_bytes([s[0], s[1]])
            } else {
                u16::from_be_bytes([s[0], s[1]])
            }
        })
    };
    let u32_at = |o: usize| {
        t.get(o..o + 4).map(|s| {
            let a = [s[0], s[1], s[2], s[3]];
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        })
    };
    let Some(ifd) = u32_at(4).map(|o| o as usize) else {
        return false;
    };
    let Some(n) = u16_at(ifd) else { return false };
    (0..usize::from(n)).any(|k| u16_at(ifd + 2 + k * 12) == Some(0x8825))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(['=', '+', '-', '@']) {
        // Quote, and defuse spreadsheet formulas.
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(r: &ReportRow) -> String {
    let opt = |v: Option<String>| v.unwrap_or_default();
    [
        csv_field(&r.identity),
        csv_field(&opt(r.dn.clone())),
        csv_field(&opt(r.user_principal_name.clone())),
        r.has_photo.to_string(),
        opt(r.bytes.map(|v| v.to_string())),
        opt(r.width.map(|v| v.to_string())),
        opt(r.height.map(|v| v.to_string())),
        opt(r.format.clone()),
        csv_field(&r.flags.join(";")),
        csv_field(&opt(r.error.as_ref().map(|e| e.message.clone()))),
    ]
    .join(",")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn exif_jpeg(le: bool, tag: u16) -> Vec<u8> {
        let mut tiff = Vec::new();
        if le {
            tiff.extend_from_slice(b"II\x2a\x00\x08\x00\x00\x00\x01\x00");
            tiff.extend_from_slice(&tag.to_le_bytes());
            tiff.extend_from_slice(&[4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        } else {
            tiff.extend_from_slice(b"MM\x00\x2a\x00\x00\x00\x08\x00\x01");
            tiff.extend_from_slice(&tag.to_be_bytes());
            tiff.extend_from_slice(&[0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
        let mut seg = b"Exif\0\0".to_vec();
        seg.extend_from_slice(&tiff);
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE1];
        j.extend_from_slice(&u16::try_from(seg.len() + 2).unwrap().to_be_bytes());
        j.extend_from_slice(&seg);
        j.extend_from_slice(&[0xFF, 0xDA, 0, 2, 0xFF, 0xD9]);
        j
    }

    #[test]
    fn gps_found_in_both_byte_orders_and_not_elsewhere() {
        assert!(jpeg_has_gps(&exif_jpeg(true, 0x8825)));
        assert!(jpeg_has_gps(&exif_jpeg(false, 0x8825)));
        assert!(!jpeg_has_gps(&exif_jpeg(true, 0x8769)));
        let j = exif_jpeg(true, 0x8825);
        for cut in 0..j.len() {
            let _ = jpeg_has_gps(&j[..cut]); // never panics
        }
        assert!(!jpeg_has_gps(b"not a jpeg"));
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=cmd()"), "\"'=cmd()\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
