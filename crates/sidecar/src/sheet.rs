//! The HTML contact sheet of `report.run` (`htmlPath`): one self-contained file (photos as
//! `data:` URIs, inline CSS, no script) with the counts on top and a grid of cards, one per
//! user — photo, identity, bytes, dimensions, format and its flags highlighted.
//!
//! Cards are written to `FILE.part` as rows stream in; [`Sheet::finish`] writes `FILE` (head,
//! counts, the cards copied over, foot) and removes the side file, so only one photo is ever
//! held in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use photobulk_protocol::methods::{flags, ReportResult, ReportRow};
use photobulk_protocol::ResponseError;

use crate::map;

/// Flags in the order and words a reader sees them (`no_photo` is the sheet's own).
const LABELS: &[(&str, &str)] = &[
    (
        flags::OVER_10KB,
        "over 10 KB (will not reach Exchange Online)",
    ),
    (flags::NOT_SQUARE, "not square"),
    (flags::UNDER_96PX, "under 96 px"),
    (flags::NOT_JPEG, "not JPEG"),
    (flags::GPS_EXIF, "GPS in EXIF"),
    (flags::UNREADABLE, "unreadable"),
    ("no_photo", "no photo"),
    ("error", "lookup failed"),
];

fn label(flag: &str) -> &str {
    LABELS
        .iter()
        .find(|(f, _)| *f == flag)
        .map(|(_, l)| *l)
        .unwrap_or(flag)
}

// HTML escaping: the engine's, which its own contact sheet uses.
use photobulk_engine::report::escape;

fn mime(format: Option<&str>) -> &'static str {
    match format {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("bmp") => "image/bmp",
        Some("webp") => "image/webp",
        Some("tiff") => "image/tiff",
        _ => "image/jpeg",
    }
}

#[derive(Debug)]
pub(crate) struct Sheet {
    path: PathBuf,
    part: PathBuf,
    cards: BufWriter<File>,
    counts: BTreeMap<&'static str, usize>,
}

impl Sheet {
    pub(crate) fn create(path: &Path) -> Result<Sheet, ResponseError> {
        let mut part = path.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        let f = File::create(&part).map_err(|e| map::io(part.display(), &e))?;
        Ok(Sheet {
            path: path.to_path_buf(),
            part,
            cards: BufWriter::new(f),
            counts: BTreeMap::new(),
        })
    }

    /// One user's card.
    pub(crate) fn card(
        &mut self,
        row: &ReportRow,
        photo: Option<&[u8]>,
    ) -> Result<(), ResponseError> {
        let mut fl: Vec<&str> = row.flags.iter().map(String::as_str).collect();
        if row.error.is_some() {
            fl.push("error");
        } else if !row.has_photo {
            fl.push("no_photo");
        }
        for f in &fl {
            if let Some((k, _)) = LABELS.iter().find(|(k, _)| k == f) {
                *self.counts.entry(k).or_default() += 1;
            }
        }
        let class = if fl.is_empty() {
            "card ok"
        } else {
            "card flagged"
        };
        let mut h = format!("<div class=\"{class}\">");
        match photo {
            Some(bytes) => h.push_str(&format!(
                "<img alt=\"\" src=\"data:{};base64,{}\">",
                mime(row.format.as_deref()),
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )),
            None => h.push_str("<div class=\"none\">no photo</div>"),
        }
        h.push_str(&format!(
            "<div class=\"id\">{}</div>",
            escape(&row.identity)
        ));
        if let Some(upn) = &row.user_principal_name {
            h.push_str(&format!("<div class=\"upn\">{}</div>", escape(upn)));
        }
        if let Some(bytes) = row.bytes {
            let dims = match (row.width, row.height) {
                (Some(w), Some(hh)) => format!(" · {w}×{hh}"),
                _ => String::new(),
            };
            let fmt = row
                .format
                .as_deref()
                .map(|f| format!(" · {f}"))
                .unwrap_or_default();
            h.push_str(&format!(
                "<div class=\"facts\">{bytes} bytes{dims}{}</div>",
                escape(&fmt)
            ));
        }
        for f in &fl {
            h.push_str(&format!(
                "<span class=\"flag {f}\">{}</span>",
                escape(label(f))
            ));
        }
        if let Some(e) = &row.error {
            h.push_str(&format!("<div class=\"err\">{}</div>", escape(&e.message)));
        }
        h.push_str("</div>\n");
        self.cards
            .write_all(h.as_bytes())
            .map_err(|e| map::io(self.part.display(), &e))
    }

    /// Write the sheet: counts on top, then the cards.
    pub(crate) fn finish(mut self, r: &ReportResult) -> Result<(), ResponseError> {
        let part_err = |e: std::io::Error| map::io(self.part.display(), &e);
        self.cards.flush().map_err(part_err)?;
        drop(self.cards);
        let out_err = |e: std::io::Error| map::io(self.path.display(), &e);
        let mut out = BufWriter::new(File::create(&self.path).map_err(out_err)?);
        let mut head = String::from(HEAD);
        head.push_str(&format!(
            "<div class=\"counts\"><span><b>{}</b> users</span><span><b>{}</b> with a photo</span><span><b>{}</b> flagged</span>",
            r.total, r.with_photo, r.flagged
        ));
        for (k, l) in LABELS {
            let n = self.counts.get(k).copied().unwrap_or(0);
            let class = if n > 0 {
                format!("flag {k}")
            } else {
                "zero".into()
            };
            head.push_str(&format!(
                "<span class=\"{class}\"><b>{n}</b> {}</span>",
                escape(l)
            ));
        }
        if r.cancelled {
            head.push_str("<span class=\"flag error\">cancelled: partial report</span>");
        }
        head.push_str("</div>\n<div class=\"grid\">\n");
        out.write_all(head.as_bytes()).map_err(out_err)?;
        let mut cards = File::open(&self.part).map_err(|e| map::io(self.part.display(), &e))?;
        std::io::copy(&mut cards, &mut out).map_err(out_err)?;
        out.write_all(b"</div>\n</body>\n</html>\n")
            .map_err(out_err)?;
        out.flush().map_err(out_err)?;
        let _ = std::fs::remove_file(&self.part);
        Ok(())
    }
}

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>PhotoBulk contact sheet</title>
<style>
body{font-family:Segoe UI,Helvetica,Arial,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 8px}
.counts{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:14px}
.counts span{padding:4px 8px;border-radius:4px;background:#eee;font-size:13px}
.counts .zero{color:#888}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{background:#fff;border:2px solid #cfd8cf;border-radius:6px;padding:8px;font-size:12px;overflow-wrap:anywhere}
.card.flagged{border-color:#e0a030}
.card img,.card .none{display:block;width:96px;height:96px;margin:0 auto 6px;object-fit:contain;background:#f0f0f0}
.card .none{line-height:96px;text-align:center;color:#999}
.id{font-weight:600}.upn,.facts{color:#555}
.flag{display:inline-block;margin:3px 3px 0 0;padding:1px 5px;border-radius:3px;background:#fde2b0;color:#6a4300}
.flag.over_10kb,.flag.gps_exif,.flag.unreadable,.flag.error{background:#f8c4c4;color:#7a0000}
.flag.no_photo{background:#e4e4e4;color:#444}
.err{color:#7a0000;margin-top:4px}
</style>
</head>
<body>
<h1>PhotoBulk contact sheet</h1>
"#;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cards_escape_and_count() {
        let dir = tempfile_dir();
        let path = dir.join("r.html");
        let mut s = Sheet::create(&path).unwrap();
        let row = ReportRow {
            identity: "<script>x</script>".into(),
            has_photo: true,
            bytes: Some(3),
            width: Some(120),
            height: Some(80),
            format: Some("png".into()),
            flags: vec![flags::NOT_SQUARE.into()],
            ..Default::default()
        };
        s.card(&row, Some(b"abc")).unwrap();
        s.card(
            &ReportRow {
                identity: "n".into(),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        s.finish(&ReportResult {
            total: 2,
            with_photo: 1,
            flagged: 1,
            ..Default::default()
        })
        .unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(!html.contains("<script>x"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("data:image/png;base64,YWJj"));
        assert!(html.contains("<b>1</b> not square"));
        assert!(html.contains("<b>1</b> no photo"));
        assert!(!path.with_extension("html.part").exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("pb-sheet-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
