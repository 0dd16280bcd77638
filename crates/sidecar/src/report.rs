//! `report.run`: one row per user in scope, streamed as `report/row` notifications, with the
//! flags administrators act on, optionally written as CSV and as an HTML contact sheet.
//!
//! Nothing holds every user's photo at once: for "all users" the directory is listed without
//! photos (names and DNs only), then photos are read in a window of [`WINDOW`] and each row is
//! sent, written to the CSV and the sheet, and dropped. The sheet's cards go to a side file
//! while rows stream; the counts at its top are known only at the end, so the final file is
//! written then (head, counts, the cards copied over, foot).

use std::io::Write;

use futures_util::stream::{self, StreamExt};
use photobulk_directory::{ListOptions, User};
use photobulk_protocol::methods::{self as m, flags, ReportRow};
use photobulk_protocol::ResponseError;

use crate::conn::Ctx;
use crate::{handlers, map};

/// Exchange Online takes an AD photo only up to this many bytes (KB 3062745).
const EXO_LIMIT: usize = 10_240;
/// Photo reads in flight while listing all users.
const WINDOW: usize = 8;

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
    let mut sheet = match &p.html_path {
        Some(path) => Some(crate::sheet::Sheet::create(std::path::Path::new(path))?),
        None => None,
    };
    let mut result = m::ReportResult {
        csv_path: p.csv_path.clone(),
        html_path: p.html_path.clone(),
        ..Default::default()
    };
    // (identity asked for, or None when listing; the user or the error)
    type Found = (
        Option<String>,
        Result<User, photobulk_directory::DirectoryError>,
    );
    let rows: std::pin::Pin<Box<dyn futures_util::Stream<Item = Found> + Send + '_>> =
        if p.identities.is_empty() {
            let mut users = b
                .dir
                .list_users(&ListOptions {
                    base: p.search_base.clone(),
                    only_with_photo: p.only_with_photo,
                    fetch_photo: false,
                })
                .await
                .map_err(|e| map::directory(&e))?;
            users.sort_by_key(|u| label(u).to_lowercase());
            let dir = b.dir.clone();
            Box::pin(
                stream::iter(users)
                    .map(move |mut u| {
                        let dir = dir.clone();
                        async move {
                            match dir.read_photo(&u.dn).await {
                                Ok(photo) => {
                                    u.photo = photo;
                                    (None, Ok(u))
                                }
                                Err(e) => (Some(label(&u)), Err(e)),
                            }
                        }
                    })
                    .buffered(WINDOW),
            )
        } else {
            let dir = b.dir.clone();
            Box::pin(
                stream::iter(p.identities.clone())
                    .map(move |id| {
                        let (dir, by) = (dir.clone(), by.clone());
                        async move {
                            let found = dir.find_user(&by, &id, true).await;
                            (Some(id), found)
                        }
                    })
                    .buffered(WINDOW),
            )
        };
    let mut rows = rows;
    while let Some((asked, found)) = rows.next().await {
        if ctx.cancel.is_cancelled() {
            result.cancelled = true;
            break;
        }
        let (row, photo) = match found {
            Ok(mut u) => {
                let mut row = row_for(&u);
                if let Some(id) = asked {
                    row.identity = id;
                }
                (row, u.photo.take())
            }
            Err(e) => (
                ReportRow {
                    identity: asked.unwrap_or_default(),
                    error: Some(map::item(map::directory(&e))),
                    ..Default::default()
                },
                None,
            ),
        };
        result.total += 1;
        result.with_photo += usize::from(row.has_photo);
        result.flagged += usize::from(!row.flags.is_empty());
        if let Some(w) = &mut csv {
            let _ = writeln!(w, "{}", csv_line(&row));
        }
        if let Some(s) = &mut sheet {
            s.card(&row, photo.as_deref())?;
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
    if let Some(s) = sheet {
        s.finish(&result)?;
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
    if photobulk_imaging::metadata::scan(photo).has_gps {
        f.push(flags::GPS_EXIF);
    }
    f.into_iter().map(str::to_string).collect()
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
    fn gps_flag_comes_from_the_imaging_metadata_scan() {
        let flags_of = |j: &[u8]| photo_flags(j, &mut ReportRow::default());
        assert!(flags_of(&exif_jpeg(true, 0x8825)).contains(&flags::GPS_EXIF.to_string()));
        assert!(flags_of(&exif_jpeg(false, 0x8825)).contains(&flags::GPS_EXIF.to_string()));
        assert!(!flags_of(&exif_jpeg(true, 0x8769)).contains(&flags::GPS_EXIF.to_string()));
        let j = exif_jpeg(true, 0x8825);
        for cut in 0..j.len() {
            let _ = flags_of(&j[..cut]); // never panics
        }
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=cmd()"), "\"'=cmd()\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
