//! `report.html`: a contact sheet of a conversion, because people would rather look
//! than read. One card per file: the whole source as a thumbnail with the square that
//! was kept drawn on it (blue) and the face it was framed on (orange), so an admin sees
//! at a glance why a photo was framed as it was; then the outputs as they will be shown,
//! with their bytes and quality, or the error in plain words. Self-contained HTML (no
//! scripts, no network; the boxes are inline SVG over the thumbnail); images are linked
//! relative to the output folder.

use std::fmt::Write as _;

use photobulk_imaging::Warning;

use crate::manifest::{Manifest, Status};

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode a relative path for an `src` attribute (spaces, `#`, `%`, non-ASCII).
pub(crate) fn url_path(p: &str) -> String {
    let mut out = String::new();
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A warning in words an administrator reads at a glance.
fn warning_text(w: &Warning) -> String {
    match w {
        Warning::Upscaled { target, factor_x100 } => format!(
            "{target}: upscaled {}.{:02}x (the source is smaller than the target; it may look soft)",
            factor_x100 / 100,
            factor_x100 % 100
        ),
        Warning::NoFace => {
            "no face found: kept the top of a portrait / the centre of a landscape".into()
        }
        Warning::SeveralFaces { count } => {
            format!("{count} faces found: framed the largest (nearest the centre)")
        }
        Warning::SmallFace { height } => {
            format!("the face is small ({height} px high): check the framing")
        }
        other => format!("{other:?}"),
    }
}

/// The source thumbnail with the crop box (blue) and the face box (orange) drawn over it
/// in an SVG whose coordinates are the upright source's pixels.
fn source_figure(
    h: &mut String,
    thumb: &str,
    src: &photobulk_imaging::SourceInfo,
    cb: &photobulk_imaging::CropBox,
    face: Option<&photobulk_imaging::FaceBox>,
) {
    let (uw, uh) = if (5..=8).contains(&src.orientation) {
        (src.height, src.width)
    } else {
        (src.width, src.height)
    };
    let (uw, uh) = (uw.max(1), uh.max(1));
    // Shown at most 280 wide and 200 high, aspect kept.
    let k = (280.0 / f64::from(uw)).min(200.0 / f64::from(uh));
    let (sw, sh) = (
        ((f64::from(uw) * k).round() as u32).max(1),
        ((f64::from(uh) * k).round() as u32).max(1),
    );
    let _ = write!(
        h,
        "<div class=\"src\"><img src=\"{}\" width=\"{sw}\" height=\"{sh}\" alt=\"source\">\
<svg width=\"{sw}\" height=\"{sh}\" viewBox=\"0 0 {uw} {uh}\" preserveAspectRatio=\"none\">\
<rect class=\"crop\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#1e88e5\" \
stroke-width=\"2.5\" vector-effect=\"non-scaling-stroke\"><title>kept: {}x{} at {},{}</title></rect>",
        url_path(thumb),
        cb.x,
        cb.y,
        cb.width,
        cb.height,
        cb.width,
        cb.height,
        cb.x,
        cb.y
    );
    if let Some(f) = face {
        let _ = write!(
            h,
            "<rect class=\"face\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#fb8c00\" \
stroke-width=\"2\" vector-effect=\"non-scaling-stroke\"><title>face, score {:.2}</title></rect>",
            f.x, f.y, f.width, f.height, f.score
        );
    }
    h.push_str("</svg></div>");
}

/// Render the manifest as an HTML page.
pub fn html(m: &Manifest) -> String {
    let s = &m.summary;
    let mut h = String::new();
    h.push_str(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>PhotoBulk conversion report</title>\
<style>body{font-family:Segoe UI,Arial,sans-serif;margin:1.5em;background:#f6f6f6}\
.grid{display:flex;flex-wrap:wrap;gap:12px}.card{background:#fff;border-radius:6px;padding:10px;\
width:300px;box-shadow:0 1px 3px #0002}.card.bad{border-left:5px solid #c62828}.card.ok{border-left:5px solid #2e7d32}\
.imgs{display:flex;gap:8px;align-items:flex-end}.imgs img{border:1px solid #ccc}\
.src{position:relative;display:inline-block;line-height:0;margin:6px 0}.src img{border:1px solid #ccc}\
.src svg{position:absolute;left:1px;top:1px}\
.err{color:#c62828}.warn{color:#8a5a00;font-size:12px}.meta{color:#555;font-size:12px}h1{font-size:20px}</style></head><body>",
    );
    let _ = write!(
        h,
        "<h1>PhotoBulk conversion report</h1><p>{} files: <b>{} converted</b>, {} failed, {} duplicates, {} naming nobody; {} other files skipped.</p>",
        s.total, s.ok, s.failed, s.duplicate, s.no_account, s.skipped_files
    );
    h.push_str("<div class=\"grid\">");
    for it in &m.items {
        let ok = it.status == Status::Ok;
        let _ = write!(
            h,
            "<div class=\"card {}\"><b>{}</b><div class=\"meta\">{}</div>",
            if ok { "ok" } else { "bad" },
            escape(it.account.as_deref().unwrap_or("(no account)")),
            escape(&it.file.display().to_string())
        );
        if let Some(src) = &it.source {
            let _ = write!(
                h,
                "<div class=\"meta\">source {} {}x{}, orientation {}</div>",
                escape(&src.format),
                src.width,
                src.height,
                src.orientation
            );
        }
        if let (Some(thumb), Some(src), Some(cb)) = (&it.thumbnail, &it.source, &it.crop) {
            source_figure(&mut h, thumb, src, cb, it.face.as_ref());
        }
        if !it.outputs.is_empty() {
            h.push_str("<div class=\"imgs\">");
            for o in &it.outputs {
                // Show big targets at 160 px, small ones at their real size.
                let shown = o.width.min(160);
                let _ = write!(
                    h,
                    "<figure style=\"margin:0\"><img src=\"{}\" width=\"{shown}\" height=\"{shown}\" alt=\"{}\">\
<figcaption class=\"meta\">{} {}x{}<br>{} B, q{}</figcaption></figure>",
                    url_path(&o.path),
                    escape(&o.target),
                    escape(&o.target),
                    o.width,
                    o.height,
                    o.bytes,
                    o.quality
                );
            }
            h.push_str("</div>");
        }
        for w in &it.warnings {
            let _ = write!(
                h,
                "<div class=\"warn\">&#9888; {}</div>",
                escape(&warning_text(w))
            );
        }
        if let Some(e) = &it.error {
            let _ = write!(h, "<div class=\"err\">{}</div>", escape(e));
        }
        h.push_str("</div>");
    }
    h.push_str("</div></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_urls() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(url_path("ad/John Smith#1.jpg"), "ad/John%20Smith%231.jpg");
        assert_eq!(url_path("ad/zoë.jpg"), "ad/zo%C3%AB.jpg");
    }

    #[test]
    fn warnings_read_as_words() {
        let w = Warning::Upscaled {
            target: "hd".into(),
            factor_x100: 506,
        };
        assert_eq!(
            warning_text(&w),
            "hd: upscaled 5.06x (the source is smaller than the target; it may look soft)"
        );
    }
}
