//! The photo report's HTML contact sheet: counts and a bar chart of the flags on top (inline
//! SVG), then one card per user with the AD photo and the cloud photo side by side (and the
//! file a run would use, for `--photos`), its facts and its flags in plain words.
//!
//! # Reading well at 100,000 users
//! - The first [`STATIC_CARDS`] cards are plain HTML: with scripts off the page still shows
//!   the counts, the chart and those cards (and says where the rest are: the CSV).
//! - The rest travel as JSON in the page (each card's HTML as a string); a small inline script
//!   filters by flag (the select, a click on a bar, or `#flag=CODE` in the address) and by a
//!   search box over names, and shows matching cards [`PAGE`] at a time with "show more", so
//!   the browser never lays out 100,000 cards at once.
//! - Photos are small: the AD photo as stored (a 96 px JPEG, normally), the cloud and file
//!   photos as 96 px thumbnails. Inline as `data:` URIs (one file to mail) for small reports,
//!   or in a folder beside the page (`NAME_photos/`) with `loading="lazy"`.
//! - Nothing loads from the network.
//!
//! Cards and JSON rows go to side files while rows stream in; [`Sheet::finish`] writes the page
//! (head, counts, chart, cards, data, script) and removes them, so only one user's photos are
//! ever in memory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::{CloudSide, Flag, Item, PhotoFacts, ReportSummary};
use crate::report::escape;
use crate::EngineError;

/// Cards written as plain HTML (the rest only as data for the script).
pub const STATIC_CARDS: usize = 2000;
/// Cards the script shows at a time.
pub const PAGE: usize = 500;

#[derive(Debug)]
pub struct Sheet {
    path: PathBuf,
    cards_part: PathBuf,
    rows_part: PathBuf,
    cards: BufWriter<File>,
    rows: BufWriter<File>,
    /// `None`: photos inline; else the folder beside the page and its name as a link.
    folder: Option<(PathBuf, String)>,
    folder_made: bool,
    n: usize,
}

fn part(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

impl Sheet {
    /// Start a sheet at `path`.
    pub fn create(path: &Path, inline_photos: bool) -> Result<Sheet, EngineError> {
        let cards_part = part(path, ".cards.part");
        let rows_part = part(path, ".rows.part");
        let open = |p: &Path| {
            File::create(p)
                .map(BufWriter::new)
                .map_err(|e| EngineError::io(p, e))
        };
        let folder = if inline_photos {
            None
        } else {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "report".into());
            let name = format!("{stem}_photos");
            Some((path.with_file_name(&name), name))
        };
        Ok(Sheet {
            path: path.to_path_buf(),
            cards: open(&cards_part)?,
            rows: open(&rows_part)?,
            cards_part,
            rows_part,
            folder,
            folder_made: false,
            n: 0,
        })
    }

    /// The folder photos go to (`None` when inline).
    pub fn photo_folder(&self) -> Option<&Path> {
        self.folder.as_ref().map(|(p, _)| p.as_path())
    }

    /// An `src` for these photo bytes: a `data:` URI, or a file written to the folder.
    fn src(
        &mut self,
        bytes: &[u8],
        facts_format: Option<&str>,
        side: &str,
    ) -> Result<String, EngineError> {
        let (mime, ext) = match facts_format {
            Some("png") => ("image/png", "png"),
            Some("gif") => ("image/gif", "gif"),
            Some("bmp") => ("image/bmp", "bmp"),
            Some("webp") => ("image/webp", "webp"),
            Some("tiff") => ("image/tiff", "tif"),
            _ => ("image/jpeg", "jpg"),
        };
        match &self.folder {
            None => Ok(format!(
                "data:{mime};base64,{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )),
            Some((dir, name)) => {
                if !self.folder_made {
                    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
                    self.folder_made = true;
                }
                let file = format!("{:06}-{side}.{ext}", self.n);
                let p = dir.join(&file);
                std::fs::write(&p, bytes).map_err(|e| EngineError::io(&p, e))?;
                Ok(crate::report::url_path(&format!("{name}/{file}")))
            }
        }
    }

    /// One user's card.
    pub fn card(&mut self, item: &Item) -> Result<(), EngineError> {
        self.n += 1;
        let row = &item.row;
        let mut h = String::with_capacity(1024);
        let codes: Vec<&str> = row.flags.iter().map(|f| f.code()).collect();
        let class = if row.flagged() {
            "card flagged"
        } else {
            "card ok"
        };
        let q = [
            Some(row.identity.as_str()),
            row.user_principal_name.as_deref(),
            row.display_name.as_deref(),
            row.mail.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
        let _ = write!(
            h,
            "<div class=\"{class}\" data-flags=\"{}\" data-q=\"{}\"><div class=\"pics\">",
            codes.join(" "),
            escape(&q)
        );
        if row.error.is_none() {
            // AD photo: as stored, unless big (then a thumbnail like the others); unreadable
            // bytes get a placeholder, not a broken image.
            let readable = row.ad.as_ref().is_some_and(|f| f.format.is_some());
            let ad_src = match &item.ad_photo {
                Some(b) if readable && b.len() <= 24 * 1024 => {
                    let fmt = row.ad.as_ref().and_then(|f| f.format.clone());
                    Some(self.src(b, fmt.as_deref(), "ad")?)
                }
                Some(b) if readable => match thumbnail(b) {
                    Some(t) => Some(self.src(&t, Some("jpeg"), "ad")?),
                    None => None,
                },
                _ => None,
            };
            figure(&mut h, "AD", ad_src.as_deref(), row.ad.is_some(), "ad");
            if !matches!(row.cloud, CloudSide::NotChecked) {
                let src = match item.cloud_photo.as_deref().and_then(thumbnail) {
                    Some(t) => Some(self.src(&t, Some("jpeg"), "cloud")?),
                    None => None,
                };
                let has = matches!(row.cloud, CloudSide::Photo { .. });
                figure(&mut h, "cloud", src.as_deref(), has, "cloud");
            }
            if row.file.is_some() {
                let src = match &item.file_photo {
                    Some(b) => Some(self.src(b, Some("jpeg"), "file")?),
                    None => None,
                };
                figure(&mut h, "file", src.as_deref(), src.is_some(), "file");
            }
        }
        h.push_str("</div>");
        let _ = write!(h, "<div class=\"id\">{}</div>", escape(&row.identity));
        if let Some(n) = &row.display_name {
            let _ = write!(h, "<div class=\"name\">{}</div>", escape(n));
        }
        if let Some(upn) = &row.user_principal_name {
            let _ = write!(h, "<div class=\"upn\">{}</div>", escape(upn));
        }
        if let Some(f) = &row.ad {
            let _ = write!(
                h,
                "<div class=\"facts\">AD: {}</div>",
                escape(&facts_text(f))
            );
        }
        match &row.cloud {
            CloudSide::Photo { user, photo } => {
                let _ = write!(
                    h,
                    "<div class=\"facts\">cloud ({}): {}</div>",
                    escape(user),
                    escape(&facts_text(photo))
                );
            }
            CloudSide::NotInCloud { reason } => {
                let _ = write!(h, "<div class=\"facts\">cloud: {}</div>", escape(reason));
            }
            CloudSide::Failed { message, .. } => {
                let _ = write!(h, "<div class=\"err\">cloud: {}</div>", escape(message));
            }
            CloudSide::NoPhoto { .. } | CloudSide::NotChecked => {}
        }
        if let Some(p) = &row.file {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let _ = write!(h, "<div class=\"facts\">file: {}</div>", escape(&name));
        }
        if let Some(w) = &row.written {
            let _ = write!(
                h,
                "<div class=\"facts\">PhotoBulk run {}{}</div>",
                escape(&w.run),
                w.time
                    .as_deref()
                    .map(|t| format!(", {}", escape(t)))
                    .unwrap_or_default()
            );
        }
        for f in &row.flags {
            let _ = write!(
                h,
                "<span class=\"flag {}{}\">{}</span>",
                f.code(),
                if f.is_problem() { "" } else { " info" },
                escape(f.words())
            );
        }
        if let Some(e) = &row.error {
            let _ = write!(h, "<div class=\"err\">{}</div>", escape(&e.message));
        }
        h.push_str("</div>\n");
        if self.n <= STATIC_CARDS {
            self.cards
                .write_all(h.as_bytes())
                .map_err(|e| EngineError::io(&self.cards_part, e))?;
        } else {
            // One JSON string per line; `<` escaped so no `</script>` can end the block.
            let line = serde_json::to_string(&h)
                .unwrap_or_default()
                .replace('<', "\\u003c");
            self.rows
                .write_all(line.as_bytes())
                .and_then(|()| self.rows.write_all(b",\n"))
                .map_err(|e| EngineError::io(&self.rows_part, e))?;
        }
        Ok(())
    }

    /// Write the page and remove the side files.
    pub fn finish(mut self, s: &ReportSummary) -> Result<(), EngineError> {
        self.cards
            .flush()
            .map_err(|e| EngineError::io(&self.cards_part, e))?;
        self.rows
            .flush()
            .map_err(|e| EngineError::io(&self.rows_part, e))?;
        let out_err = |e: std::io::Error| EngineError::io(&self.path, e);
        let mut out = BufWriter::new(File::create(&self.path).map_err(out_err)?);
        let mut head = String::from(HEAD);
        let _ = write!(
            head,
            "<div class=\"counts\"><span><b>{}</b> users</span><span><b>{}</b> with an AD photo</span>",
            s.total, s.with_ad_photo
        );
        if s.cloud_checked {
            let _ = write!(
                head,
                "<span><b>{}</b> with a cloud photo</span>",
                s.with_cloud_photo
            );
        }
        let _ = write!(head, "<span><b>{}</b> flagged</span>", s.flagged);
        if s.cancelled {
            head.push_str("<span class=\"flag error\">cancelled: partial report</span>");
        }
        head.push_str("</div>\n");
        head.push_str(&chart(&s.counts));
        head.push_str(
            "<div class=\"tools\"><label>Flag <select id=\"flag\"><option value=\"\">every user</option>",
        );
        for f in Flag::ALL {
            let n = s.count(*f);
            if n > 0 {
                let _ = write!(
                    head,
                    "<option value=\"{}\">{} ({n})</option>",
                    f.code(),
                    escape(f.words())
                );
            }
        }
        head.push_str("<option value=\"ok\">nothing flagged</option></select></label> <label>Search <input id=\"q\" type=\"search\" placeholder=\"name, UPN, mail\"></label> <span id=\"shown\"></span></div>\n");
        if s.total > STATIC_CARDS {
            let _ = writeln!(
                head,
                "<noscript><p class=\"note\">The first {STATIC_CARDS} of {} users are shown; turn scripts on to page through and filter all of them, or open the CSV.</p></noscript>",
                s.total
            );
        }
        head.push_str("<div class=\"grid\" id=\"cards\">\n");
        out.write_all(head.as_bytes()).map_err(out_err)?;
        let copy = |from: &Path, out: &mut BufWriter<File>| -> Result<(), EngineError> {
            let mut f = File::open(from).map_err(|e| EngineError::io(from, e))?;
            std::io::copy(&mut f, out).map_err(|e| EngineError::io(&self.path, e))?;
            Ok(())
        };
        copy(&self.cards_part, &mut out)?;
        out.write_all(b"</div>\n<p><button id=\"more\" type=\"button\" hidden>show more</button></p>\n<script type=\"application/json\" id=\"rows\">[\n")
            .map_err(out_err)?;
        copy(&self.rows_part, &mut out)?;
        out.write_all(b"null]\n</script>\n").map_err(out_err)?;
        let _ = write!(
            out,
            "<script>var PAGE={PAGE};{SCRIPT}</script>\n</body>\n</html>\n"
        );
        out.flush().map_err(out_err)?;
        drop(out);
        drop(self.cards);
        drop(self.rows);
        let _ = std::fs::remove_file(&self.cards_part);
        let _ = std::fs::remove_file(&self.rows_part);
        Ok(())
    }
}

fn figure(h: &mut String, caption: &str, src: Option<&str>, has: bool, side: &str) {
    match src {
        Some(src) => {
            let _ = write!(
                h,
                "<figure class=\"{side}\"><img alt=\"{caption} photo\" loading=\"lazy\" src=\"{}\"><figcaption>{caption}</figcaption></figure>",
                escape(src)
            );
        }
        None => {
            let what = if has { "unreadable" } else { "none" };
            let _ = write!(
                h,
                "<figure class=\"{side}\"><div class=\"none\">{what}</div><figcaption>{caption}</figcaption></figure>"
            );
        }
    }
}

fn facts_text(f: &PhotoFacts) -> String {
    let mut t = format!("{} bytes", f.bytes);
    if let (Some(w), Some(h)) = (f.width, f.height) {
        let _ = write!(t, " · {w}×{h}");
    }
    if let Some(fmt) = &f.format {
        let _ = write!(t, " · {fmt}");
    }
    t
}

/// A 96 px JPEG of a photo for the sheet (`None` when it does not decode).
fn thumbnail(bytes: &[u8]) -> Option<Vec<u8>> {
    let opts = photobulk_imaging::Options {
        min_source_side: 1,
        targets: vec![photobulk_imaging::Target {
            name: "sheet".into(),
            size: 96,
            max_bytes: 16 * 1024,
        }],
        ..Default::default()
    };
    photobulk_imaging::convert(bytes, &opts)
        .ok()
        .and_then(|c| c.outputs.into_iter().next())
        .map(|o| o.jpeg)
}

/// Horizontal bars of the flag counts (inline SVG); each bar links to `#flag=CODE`.
fn chart(counts: &BTreeMap<&'static str, usize>) -> String {
    let shown: Vec<(Flag, usize)> = Flag::ALL
        .iter()
        .map(|f| (*f, counts.get(f.code()).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    if shown.is_empty() {
        return String::new();
    }
    let max = shown.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let (label_w, bar_w, row_h) = (260usize, 300usize, 20usize);
    let height = shown.len() * row_h + 4;
    let mut s = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"users per flag\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        label_w + bar_w + 70,
        label_w + bar_w + 70
    );
    for (i, (f, n)) in shown.iter().enumerate() {
        let y = i * row_h + 2;
        let w = (n * bar_w).div_ceil(max).max(2);
        let colour = if f.is_problem() { "#e0a030" } else { "#8fb0d0" };
        let _ = write!(
            s,
            "<a href=\"#flag={code}\" data-flag=\"{code}\"><text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\">{}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{w}\" height=\"{}\" fill=\"{colour}\"><title>{} users</title></rect><text x=\"{}\" y=\"{}\" font-size=\"12\">{n}</text></a>",
            label_w - 6,
            y + 13,
            escape(f.words()),
            row_h - 4,
            n,
            label_w + w + 4,
            y + 13,
            code = f.code(),
        );
    }
    s.push_str("</svg>\n");
    s
}

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' data: file:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>PhotoBulk photo report</title>
<style>
body{font-family:Segoe UI,Helvetica,Arial,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 8px}
.counts{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:10px}
.counts span{padding:4px 8px;border-radius:4px;background:#eee;font-size:13px}
.chart{display:block;margin:0 0 10px}
.chart a{cursor:pointer}
.tools{margin:0 0 12px;font-size:13px}
.tools select,.tools input{font-size:13px}
.note{color:#6a4300}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:10px}
.card{background:#fff;border:2px solid #cfd8cf;border-radius:6px;padding:8px;font-size:12px;overflow-wrap:anywhere}
.card.flagged{border-color:#e0a030}
.pics{display:flex;flex-wrap:wrap;gap:6px;justify-content:center;margin-bottom:6px}
figure{margin:0;text-align:center;color:#777;font-size:11px}
figure img,figure .none{display:block;width:96px;height:96px;object-fit:contain;background:#f0f0f0}
figure .none{line-height:96px;text-align:center;color:#999}
.id{font-weight:600}.upn,.name,.facts{color:#555}
.flag{display:inline-block;margin:3px 3px 0 0;padding:1px 5px;border-radius:3px;background:#fde2b0;color:#6a4300}
.flag.over_10kb,.flag.gps_exif,.flag.unreadable,.flag.error,.flag.cloud_unreadable,.flag.changed_since_photobulk{background:#f8c4c4;color:#7a0000}
.flag.info{background:#dde8f3;color:#234}
.flag.no_photo{background:#e4e4e4;color:#444}
.err{color:#7a0000;margin-top:4px}
</style>
</head>
<body>
<h1>PhotoBulk photo report</h1>
"#;

/// Filter and page the cards (see the module docs). Plain ES5: no framework, no network.
const SCRIPT: &str = r#"
(function(){
var grid=document.getElementById('cards'),sel=document.getElementById('flag'),box=document.getElementById('q'),
more=document.getElementById('more'),shownEl=document.getElementById('shown'),rows=[],i,shown=PAGE;
for(i=0;i<grid.children.length;i++){var el=grid.children[i];rows.push({f:' '+el.getAttribute('data-flags')+' ',q:el.getAttribute('data-q')||'',el:el,h:null});}
var data=JSON.parse(document.getElementById('rows').textContent);
function attr(h,name){var m=h.match(new RegExp(name+'="([^"]*)"'));return m?m[1]:'';}
for(i=0;i<data.length;i++){if(data[i]===null)continue;rows.push({f:' '+attr(data[i],'data-flags')+' ',q:attr(data[i],'data-q'),el:null,h:data[i]});}
function want(r,flag,q){
 if(flag==='ok'){if(r.el?r.el.className.indexOf('flagged')>=0:r.h.indexOf('card flagged')>=0)return false;}
 else if(flag&&r.f.indexOf(' '+flag+' ')<0)return false;
 return !q||r.q.indexOf(q)>=0;}
function apply(){
 var flag=sel.value,q=box.value.toLowerCase(),n=0,total=0,frag=document.createDocumentFragment();
 for(var j=0;j<rows.length;j++){var r=rows[j];if(!want(r,flag,q))continue;total++;if(n>=shown)continue;n++;
  if(!r.el){var t=document.createElement('div');t.innerHTML=r.h;r.el=t.firstChild;}frag.appendChild(r.el);}
 while(grid.firstChild)grid.removeChild(grid.firstChild);grid.appendChild(frag);
 more.hidden=n>=total;shownEl.textContent='showing '+n+' of '+total;}
function fromHash(){var m=location.hash.match(/flag=([a-z0-9_]+)/);if(m){sel.value=m[1];if(sel.value!==m[1]){var o=document.createElement('option');o.value=m[1];o.textContent=m[1];sel.appendChild(o);sel.value=m[1];}}
 var s=location.hash.match(/q=([^&]*)/);if(s)box.value=decodeURIComponent(s[1]);shown=PAGE;apply();}
sel.onchange=function(){shown=PAGE;apply();};box.oninput=function(){shown=PAGE;apply();};
more.onclick=function(){shown+=PAGE;apply();};
window.onhashchange=fromHash;fromHash();
})();
"#;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::audit::{Flag, Row};

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pb-audit-sheet-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn tiny_jpeg() -> Vec<u8> {
        let img = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 100, 50]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    fn item(id: &str, flags: Vec<Flag>, photo: Option<&[u8]>) -> Item {
        Item {
            row: Row {
                identity: id.into(),
                ad: photo.map(super::super::facts),
                flags,
                ..Default::default()
            },
            ad_photo: photo.map(<[u8]>::to_vec),
            ..Default::default()
        }
    }

    #[test]
    fn cards_escape_count_and_inline_photos() {
        let d = dir("inline");
        let path = d.join("r.html");
        let mut s = Sheet::create(&path, true).unwrap();
        let mut sum = ReportSummary::default();
        let jpeg = tiny_jpeg();
        for it in [
            item("<script>x</script>", vec![Flag::NotSquare], Some(&jpeg)),
            item("garbage", vec![Flag::Unreadable], Some(b"abc")),
            item("n", vec![Flag::NoPhoto], None),
        ] {
            sum.add(&it.row);
            s.card(&it).unwrap();
        }
        s.finish(&sum).unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(!html.contains("<script>x"));
        assert!(html.contains("&lt;script&gt;"));
        assert_eq!(
            html.matches("src=\"data:image/jpeg;base64,").count(),
            1,
            "unreadable bytes get no <img>"
        );
        assert!(html.contains("<div class=\"none\">unreadable</div>"));
        assert!(html.contains("<option value=\"not_square\">not square (1)</option>"));
        assert!(html.contains("href=\"#flag=no_photo\""));
        assert_eq!(html.matches("<div class=\"card ").count(), 3);
        assert!(!part(&path, ".cards.part").exists() && !part(&path, ".rows.part").exists());
        assert!(!d.join("r_photos").exists());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn past_the_static_cards_rows_become_script_data_and_photos_go_to_a_folder() {
        let d = dir("big");
        let path = d.join("big report.html");
        let mut s = Sheet::create(&path, false).unwrap();
        let mut sum = ReportSummary::default();
        let jpeg = tiny_jpeg();
        for n in 0..STATIC_CARDS + 3 {
            let it = item(&format!("u{n}</script>"), vec![Flag::AdOnly], Some(&jpeg));
            sum.add(&it.row);
            s.card(&it).unwrap();
        }
        s.finish(&sum).unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        assert_eq!(html.matches("<div class=\"card ").count(), STATIC_CARDS);
        // Three rows as JSON strings; no raw `<` inside the data block.
        let data = &html[html.find("id=\"rows\">").unwrap()..];
        let data = &data[..data.find("</script>").unwrap()];
        assert_eq!(data.matches("\\u003cdiv class=\\\"card ").count(), 3);
        assert!(!data[10..].contains('<'));
        assert!(html.contains("src=\"big%20report_photos/000001-ad.jpg\""));
        assert!(d.join("big report_photos/000001-ad.jpg").exists());
        assert!(d
            .join(format!("big report_photos/{:06}-ad.jpg", STATIC_CARDS + 3))
            .exists());
        let _ = std::fs::remove_dir_all(d);
    }
}
