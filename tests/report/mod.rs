//! `photobulk report` (the engine's photo report) against the real Samba AD DC (`PB_SAMBA_*`)
//! and the Graph emulator: a population with every flag at least once, the JSON and CSV exact
//! per user, the listing of a whole OU giving the same rows, and the HTML contact sheet loaded
//! in headless Chromium (Debian's `chromium`, installed by scripts/test): every card and both
//! photos per card in the DOM, the flag filter showing exactly the flagged cards.
//!
//! Users: OU=Report (`report.00001`–`report.00016`), disjoint from every other test.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use photobulk_directory::{Lookup, WriteOptions};
use photobulk_graph_emulator::{Config, Emulator, TEST_CLIENT_ID, TEST_SECRET, TEST_TENANT};
use serde_json::Value;

use crate::graph::hybrid::cloud_user;
use crate::util::Samba;

const BIN: &str = env!("CARGO_BIN_EXE_photobulk");

/// A head-and-shoulders-like picture (a light disc on a dark ground) at side `s`.
fn disc(w: u32, h: u32) -> Vec<u8> {
    let s = w.min(h);
    encode(image::RgbImage::from_fn(w, h, |x, y| {
        let (cx, cy, r) = (f64::from(w) / 2.0, f64::from(h) * 0.4, f64::from(s) / 4.0);
        let d = ((f64::from(x) - cx).powi(2) + (f64::from(y) - cy).powi(2)).sqrt();
        image::Rgb(if d < r { [230, 190, 160] } else { [30, 40, 80] })
    }))
}

fn checker(s: u32) -> Vec<u8> {
    encode(image::RgbImage::from_fn(s, s, |x, y| {
        let on = (x * 8 / s + y * 8 / s).is_multiple_of(2);
        image::Rgb(if on { [250, 250, 250] } else { [10, 10, 10] })
    }))
}

/// Noise: a JPEG far over 10 KB (but under AD's 100 KB).
fn noisy(s: u32) -> Vec<u8> {
    let mut v: u32 = 7;
    let img = image::RgbImage::from_fn(s, s, |_, _| {
        v = v.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let b = (v >> 16) as u8;
        image::Rgb([b, b.wrapping_mul(3), b.wrapping_mul(7)])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .encode_image(&img)
        .expect("encode");
    out
}

fn encode(img: image::RgbImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode");
    out.into_inner()
}

fn png(s: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(s, s, image::Rgb([9, 99, 199]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// `jpeg` with an EXIF APP1 whose IFD0 holds one pointer tag (0x8825 GPS, 0x8769 EXIF).
fn with_exif(jpeg: &[u8], tag: u16) -> Vec<u8> {
    let mut tiff = b"II\x2a\x00\x08\x00\x00\x00\x01\x00".to_vec();
    tiff.extend_from_slice(&tag.to_le_bytes());
    tiff.extend_from_slice(&[4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut seg = b"Exif\0\0".to_vec();
    seg.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(seg.len() + 2).expect("len").to_be_bytes());
    out.extend_from_slice(&seg);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn user(i: usize) -> String {
    format!("report.{i:05}")
}

fn set(flags: &[&str]) -> BTreeSet<String> {
    flags.iter().map(|s| s.to_string()).collect()
}

/// What every user of OU=Report is seeded as, and the flags the report must give it.
fn expected() -> BTreeMap<String, BTreeSet<String>> {
    let e: &[(usize, &[&str])] = &[
        (1, &["not_by_photobulk"]),
        (2, &["no_photo"]),
        (3, &["ad_only", "not_by_photobulk", "would_change"]),
        (4, &["cloud_only"]),
        (5, &["ad_only", "over_10kb", "not_by_photobulk"]),
        (6, &["differs", "not_by_photobulk"]),
        (
            7,
            &["ad_only", "not_square", "under_96px", "not_by_photobulk"],
        ),
        (8, &["ad_only", "under_96px", "not_by_photobulk"]),
        (9, &["ad_only", "not_jpeg", "not_by_photobulk"]),
        (10, &["ad_only", "gps_exif", "not_by_photobulk"]),
        (11, &["ad_only", "unreadable", "not_by_photobulk"]),
        (12, &["ad_only", "by_photobulk"]),
        (13, &["ad_only", "changed_since_photobulk"]),
        (14, &["ad_only", "exif_data", "not_by_photobulk"]),
        (15, &["cloud_unreadable", "not_by_photobulk"]),
        (16, &["not_by_photobulk"]),
    ];
    e.iter().map(|(i, f)| (user(*i), set(f))).collect()
}

struct Setup {
    samba: Samba,
    emu: Emulator,
    tmp: tempfile::TempDir,
    photos: PathBuf,
    run_id: String,
}

impl Setup {
    fn state(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    fn report(&self, args: &[&str]) -> (i32, Value, String) {
        let out = Command::new(BIN)
            .arg("report")
            .args(["--server", &self.samba.url, "--ca-file", &self.samba.ca])
            .args(["--bind", &self.samba.bind])
            .args([
                "--authority-url",
                &self.emu.base_url(),
                "--graph-url",
                &self.emu.graph_url(),
            ])
            .args(["--tenant", TEST_TENANT, "--client-id", TEST_CLIENT_ID])
            .arg("--state-dir")
            .arg(self.state())
            .arg("--photos")
            .arg(&self.photos)
            .arg("--json")
            .args(args)
            .env("PHOTOBULK_LDAP_PASSWORD", &self.samba.password)
            .env("PHOTOBULK_GRAPH_CLIENT_SECRET", TEST_SECRET)
            .env_remove("PHOTOBULK_STATE_DIR")
            .output()
            .expect("run photobulk report");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("report --json: {e}\nstderr: {stderr}"));
        (out.status.code().unwrap_or(-1), v, stderr)
    }
}

async fn setup() -> Setup {
    let samba = Samba::from_env();
    let domain = samba.domain();
    let dir = samba.fresh_ou("Report", 16).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let none = WriteOptions::without_backup();
    let dn_of = |i: usize| {
        let dir = dir.clone();
        async move {
            dir.find_user(&Lookup::SamAccountName, &user(i), false)
                .await
                .expect("seeded user")
                .dn
        }
    };
    let ad: Vec<(usize, Vec<u8>)> = vec![
        (1, disc(96, 96)),
        (3, disc(96, 96)),
        (5, noisy(200)),
        (6, disc(96, 96)),
        (7, disc(120, 80)),
        (8, disc(64, 64)),
        (9, png(96)),
        (10, with_exif(&disc(96, 96), 0x8825)),
        (11, b"this is not an image at all".to_vec()),
        (14, with_exif(&disc(96, 96), 0x8769)),
        (15, disc(96, 96)),
        (16, disc(96, 96)),
    ];
    for (i, bytes) in &ad {
        assert!(*i != 5 || bytes.len() > 10_240, "noisy JPEG too small");
        dir.set_photo(&dn_of(*i).await, bytes, &none)
            .await
            .unwrap_or_else(|e| panic!("set photo of {}: {e}", user(*i)));
    }
    // 12 and 13 by a PhotoBulk import (journal in the state folder); 13 replaced afterwards.
    let import_dir = tmp.path().join("import");
    std::fs::create_dir_all(&import_dir).expect("mkdir");
    for i in [12, 13] {
        std::fs::write(
            import_dir.join(format!("{} badge.jpg", user(i))),
            disc(400, 500),
        )
        .expect("write");
    }
    let out = Command::new(BIN)
        .arg("import")
        .arg(&import_dir)
        .args(["--server", &samba.url, "--ca-file", &samba.ca])
        .args(["--bind", &samba.bind])
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .arg("--backup-dir")
        .arg(tmp.path().join("backups"))
        .arg("--json")
        .env("PHOTOBULK_LDAP_PASSWORD", &samba.password)
        .env_remove("PHOTOBULK_STATE_DIR")
        .output()
        .expect("run import");
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal = std::fs::read_to_string(tmp.path().join("state/journal.jsonl")).expect("journal");
    let run_id = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["t"] == "run")
        .and_then(|r| r["run"].as_str().map(str::to_string))
        .expect("run record");
    dir.set_photo(&dn_of(13).await, &checker(96), &none)
        .await
        .expect("replace 13");

    // The tenant: users 1-15 (16 is not in the cloud); photos for 1 (the same picture as AD),
    // 4, 6 (another picture) and 15 (corrupt).
    let mut cfg = Config::with_users(0);
    cfg.users = (1..=15)
        .map(|i| cloud_user("report", i, &domain, true))
        .collect();
    let emu = Emulator::start(cfg).await.expect("emulator");
    let id = |i: usize| cloud_user("report", i, &domain, true).id;
    emu.seed_photo(&id(1), &disc(648, 648), 648, 648);
    emu.seed_photo(&id(4), &disc(648, 648), 648, 648);
    emu.seed_photo(&id(6), &checker(648), 648, 648);
    let mut corrupt = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
    corrupt.extend((0..3000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    emu.seed_photo(&id(15), &corrupt, 648, 648);

    // A photo folder: 1's file is the picture AD already has (no change), 3's another one.
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).expect("mkdir");
    std::fs::write(
        photos.join(format!("{} 648x648.jpg", user(1))),
        disc(648, 648),
    )
    .expect("w");
    std::fs::write(photos.join(format!("{} new.jpg", user(3))), checker(648)).expect("w");
    Setup {
        samba,
        emu,
        tmp,
        photos,
        run_id,
    }
}

fn flags_of(rows: &Value) -> BTreeMap<String, BTreeSet<String>> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let f = r["flags"]
                .as_array()
                .expect("flags")
                .iter()
                .map(|f| f.as_str().expect("code").to_string())
                .collect();
            (r["identity"].as_str().expect("identity").to_string(), f)
        })
        .collect()
}

/// Headless Chromium's DOM of `page` after its scripts ran.
fn dump_dom(page: &Path, hash: &str) -> String {
    let chromium = std::env::var("PB_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium (scripts/test does) or set PB_CHROMIUM"
    );
    let url = format!("file://{}{hash}", page.display());
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
            "--dump-dom",
            &url,
        ])
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The cards in a DOM dump: (identity, its `<figure>` classes with an `<img>`).
fn cards(dom: &str) -> Vec<(String, Vec<String>)> {
    dom.split("<div class=\"card ")
        .skip(1)
        .map(|c| {
            let id = c
                .split("<div class=\"id\">")
                .nth(1)
                .and_then(|s| s.split('<').next())
                .unwrap_or_default()
                .to_string();
            let imgs = c
                .split("<figure class=\"")
                .skip(1)
                .filter(|f| {
                    f.split("</figure>")
                        .next()
                        .is_some_and(|f| f.contains("<img"))
                })
                .map(|f| f.split('"').next().unwrap_or_default().to_string())
                .collect();
            (id, imgs)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_flags_every_case_exactly_in_json_csv_and_the_contact_sheet() {
    let s = setup().await;
    let list = s.tmp.path().join("users.txt");
    let mut names: Vec<String> = (1..=16).map(user).collect();
    names.push("nobody.here".into());
    std::fs::write(&list, names.join("\n")).expect("write list");
    let csv = s.tmp.path().join("report.csv");
    let html = s.tmp.path().join("report.html");
    let (code, v, stderr) = s.report(&[
        "--users",
        list.to_str().expect("utf8"),
        "--csv",
        csv.to_str().expect("utf8"),
        "--html",
        html.to_str().expect("utf8"),
    ]);
    assert_eq!(
        code, 0,
        "a report with flagged users still succeeds: {stderr}"
    );
    let mut want = expected();
    want.insert("nobody.here".into(), set(&["error"]));
    let got = flags_of(&v["rows"]);
    assert_eq!(got, want, "flags per user");
    // Every flag appears at least once.
    let seen: BTreeSet<&String> = got.values().flatten().collect();
    for f in photobulk_protocol::methods::flags::ALL {
        assert!(seen.contains(&f.to_string()), "no user has flag {f}");
    }
    let row = |id: &str| {
        v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["identity"] == id)
            .cloned()
            .expect("row")
    };
    assert_eq!(row(&user(12))["written"]["run"], s.run_id.as_str());
    assert!(row(&user(12))["written"]["time"].is_string());
    assert_eq!(row(&user(6))["cloud"]["state"], "photo");
    assert_eq!(row(&user(6))["cloud"]["photo"]["width"], 648);
    assert_eq!(row(&user(16))["cloud"]["state"], "not_in_cloud");
    assert_eq!(row(&user(2))["cloud"]["state"], "no_photo");
    assert_eq!(v["summary"]["total"], 17);
    assert_eq!(v["summary"]["with_ad_photo"], 14);
    assert_eq!(v["summary"]["with_cloud_photo"], 4);

    // CSV: one line per user in the order asked, the same flags, the cloud columns.
    let text = std::fs::read_to_string(&csv).expect("csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(photobulk_engine::audit::CSV_HEADER));
    let rows: Vec<Vec<String>> = lines
        .map(|l| photobulk_engine::inputs::parse_csv(l).remove(0).1)
        .collect();
    assert_eq!(rows.len(), 17);
    let header: Vec<&str> = photobulk_engine::audit::CSV_HEADER.split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect("column");
    for (r, name) in rows.iter().zip(&names) {
        assert_eq!(&r[col("Identity")], name);
        let flags: BTreeSet<String> = r[col("Flags")]
            .split(';')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect();
        assert_eq!(&flags, &want[name], "CSV flags of {name}");
    }
    let r6 = &rows[5];
    assert_eq!(r6[col("CloudPhoto")], "true");
    assert_eq!(r6[col("CloudWidth")], "648");
    assert_eq!(rows[11][col("WrittenByRun")], s.run_id);
    assert!(
        rows[16][col("Error")].contains("nobody.here"),
        "{:?}",
        rows[16]
    );

    // The contact sheet in a real browser: 17 cards, each with its AD and cloud figures (an
    // image where there is a photo), the flag filter showing exactly the flagged users.
    let dom = dump_dom(&html, "");
    let all = cards(&dom);
    assert_eq!(all.len(), 17, "cards in the DOM");
    for (id, imgs) in &all {
        let n: usize = id.trim_start_matches("report.").parse().unwrap_or(0);
        let has_ad = [1, 3, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16].contains(&n);
        let has_cloud = [1, 4, 6].contains(&n);
        assert_eq!(
            imgs.contains(&"ad".to_string()),
            has_ad,
            "AD image of {id}: {imgs:?}"
        );
        assert_eq!(
            imgs.contains(&"cloud".to_string()),
            has_cloud,
            "cloud image of {id}: {imgs:?}"
        );
    }
    assert_eq!(
        dom.matches("<figure class=\"ad\">").count(),
        16,
        "an AD figure per found user"
    );
    assert_eq!(dom.matches("<figure class=\"cloud\">").count(), 16);
    for flag in ["ad_only", "differs", "would_change", "no_photo"] {
        let dom = dump_dom(&html, &format!("#flag={flag}"));
        let shown: BTreeSet<String> = cards(&dom).into_iter().map(|(id, _)| id).collect();
        let want_ids: BTreeSet<String> = want
            .iter()
            .filter(|(_, f)| f.contains(flag))
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(shown, want_ids, "cards shown for #flag={flag}");
    }
    let dom = dump_dom(&html, "#q=report.0000");
    assert_eq!(cards(&dom).len(), 9, "search box: report.00001-00009");
    if let Ok(shot) = std::env::var("PB_REPORT_SCREENSHOT") {
        let _ = Command::new(
            std::env::var("PB_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        )
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1400,1800",
        ])
        .arg(format!("--screenshot={shot}"))
        .arg(format!("file://{}", html.display()))
        .output();
    }

    // A whole OU, listed by the paged search: the same rows (no error row).
    let (code, v, stderr) = s.report(&["--base", &format!("OU=Report,{}", s.samba.base)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(flags_of(&v["rows"]), expected());
}

/// The AD-like OpenLDAP profile (`scripts/slapd-ad`) with `PB_SLAPD_BIG_USERS` users with photos
/// in `PB_SLAPD_BIG_OU` (scripts/test seeds 100,000 while the build runs).
#[test]
fn report_over_a_hundred_thousand_users_streams_in_bounded_memory() {
    let get = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!(
                "{k} is not set: this test needs scripts/slapd-ad with a large seeded OU \
                 (scripts/test does it: `scripts/slapd-ad seed 100000 --ou Big --photo JPEG`)"
            )
        })
    };
    let n: usize = get("PB_SLAPD_BIG_USERS")
        .parse()
        .expect("PB_SLAPD_BIG_USERS");
    let ou = format!("{},{}", get("PB_SLAPD_BIG_OU"), get("PB_SLAPD_BASE"));
    assert!(
        Path::new("/usr/bin/time").exists(),
        "/usr/bin/time is missing (Debian package time; scripts/test installs it)"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let csv = tmp.path().join("big.csv");
    let html = tmp.path().join("big.html");
    let time = tmp.path().join("time.txt");
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg("-o")
        .arg(&time)
        .arg(BIN)
        .arg("report")
        .args([
            "--server",
            &get("PB_SLAPD_URL"),
            "--ca-file",
            &get("PB_SLAPD_CA"),
        ])
        .args(["--bind", &get("PB_SLAPD_BIND"), "--base", &ou])
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .arg("--csv")
        .arg(&csv)
        .arg("--html")
        .arg(&html)
        .env("PHOTOBULK_LDAP_PASSWORD", get("PB_SLAPD_PASSWORD"))
        .env_remove("PHOTOBULK_STATE_DIR")
        .output()
        .expect("run photobulk report");
    assert!(
        out.status.success(),
        "report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = std::fs::read_to_string(&csv).expect("csv").lines().count() - 1;
    assert!(rows >= n, "{rows} CSV rows for {n} users");
    let t = std::fs::read_to_string(&time).expect("time -v");
    let kb: u64 = t
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
        .expect("max RSS line");
    assert!(
        kb <= 150 * 1024,
        "peak RSS {} MB over {rows} users (limit 150 MB)",
        kb / 1024
    );
    // The sheet stays small: static cards for the first 2,000, data for the rest, photos beside it.
    let page = std::fs::read_to_string(&html).expect("html");
    assert_eq!(
        page.matches("<div class=\"card ").count(),
        photobulk_engine::audit::sheet::STATIC_CARDS
    );
    let photos = std::fs::read_dir(tmp.path().join("big_photos"))
        .expect("photo folder")
        .count();
    assert!(photos >= n, "{photos} photo files for {n} users");
    eprintln!("report over {rows} users: peak RSS {} MB", kb / 1024);
}
