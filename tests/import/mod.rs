//! `photobulk import` / `photobulk restore --run` end to end: the real binary against the real
//! Samba AD DC from `PB_SAMBA_*` (`scripts/samba-dc`; these tests FAIL, not skip, without it),
//! plus private Samba instances that two tests stop (and one restarts) mid-run.
//!
//! Users (disjoint, so the tests run in parallel, and disjoint from tests/ad):
//! seed.00001–00300 + seed.01901–01909 (folder of 300 + 20 hostile files, re-run),
//! seed.00401–00460 (restore), seed.00501–00520 (offline LDIF applied with ldapmodify),
//! seed.00601–00610 (CSV by mail, plan), seed.00701–01300 (Ctrl+C),
//! imp.00001–02000 in OU=Imp (kill -9; seeded by the test with `scripts/samba-dc seed 2000 --ou Imp`),
//! seed.00611–00615 (two names for one user); the "Samba stopped" and "Samba restarted" tests
//! seed their own instances (127.0.0.27 and 127.0.0.28, /tmp/pb-import-{stop,restart}-PID).
//!
//! Counting writes: every write is preceded by a durable `intent` record in the journal, and
//! Samba keeps, per attribute, a version number that goes up by one on every change
//! (replPropertyMetaData). Each test gives its users photos no earlier run produced (a per-run
//! nonce in the pixels), so "written exactly once" is checked both ways: one `done` record per
//! user, and Samba's thumbnailPhoto version up by exactly 1.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use photobulk_directory::{BackupStore, ListOptions, PhotoItem, WriteOptions};
use serde_json::Value;

use crate::util::Samba;

const BIN: &str = env!("CARGO_BIN_EXE_photobulk");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

impl Samba {
    fn conn_args(&self) -> Vec<String> {
        vec![
            "--server".into(),
            self.url.clone(),
            "--ca-file".into(),
            self.ca.clone(),
            "--bind".into(),
            self.bind.clone(),
        ]
    }

    /// sAMAccountName (lower case) → (DN, photo) for every user under `ou`.
    fn photos(&self, ou: &str) -> HashMap<String, (String, Option<Vec<u8>>)> {
        rt().block_on(async {
            let d = self.connect().await;
            let users = d
                .list_users(&ListOptions {
                    base: Some(format!("{ou},{}", self.base)),
                    only_with_photo: false,
                    fetch_photo: true,
                })
                .await
                .expect("list users");
            users
                .into_iter()
                .filter_map(|u| {
                    u.sam_account_name
                        .clone()
                        .map(|s| (s.to_lowercase(), (u.dn, u.photo)))
                })
                .collect()
        })
    }

    /// sAMAccountName (lower case) → uSNChanged, read with ldapsearch. Samba moves an entry's
    /// uSNChanged on every change of its content (and not on a write of identical bytes), so an
    /// unchanged value proves nothing was changed on the server.
    fn usns(&self, ou: &str) -> HashMap<String, u64> {
        let pw = tempfile::NamedTempFile::new().expect("pw file");
        std::fs::write(pw.path(), &self.password).expect("pw");
        let out = Command::new("ldapsearch")
            .env("LDAPTLS_CACERT", &self.ca)
            .args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                &self.url,
                "-D",
                &self.bind,
            ])
            .arg("-y")
            .arg(pw.path())
            .args([
                "-b",
                &format!("{ou},{}", self.base),
                "-E",
                "pr=500/noprompt",
            ])
            .args(["(objectClass=user)", "sAMAccountName", "uSNChanged"])
            .output()
            .expect("run ldapsearch (Debian ldap-utils)");
        assert!(out.status.success(), "ldapsearch: {}", stderr(&out));
        let mut m = HashMap::new();
        let mut sam = None;
        let mut usn = 0;
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(std::iter::once(""))
        {
            if line.is_empty() {
                if let Some(s) = sam.take() {
                    m.insert(s, usn);
                }
                usn = 0;
            } else if let Some(v) = line.strip_prefix("sAMAccountName: ") {
                sam = Some(v.to_lowercase());
            } else if let Some(v) = line.strip_prefix("uSNChanged: ") {
                usn = v.trim().parse().expect("uSNChanged");
            }
        }
        m
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sha(data: &[u8]) -> String {
    photobulk_directory::sha256_hex(data)
}

fn nonce() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

/// A 160x120 JPEG no other run has produced: colours and stripes from (nonce, index).
fn write_photo(path: &Path, nonce: u64, index: u64) {
    let mut x = (nonce ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (r, g, b) = (next() as u8, next() as u8, next() as u8);
    let stripe = 4 + (next() % 16) as u32;
    let img = image::RgbImage::from_fn(160, 120, |px, py| {
        let on = (px / stripe + py / 9).is_multiple_of(2);
        let k = (px + py) as u8;
        if on {
            image::Rgb([r.wrapping_add(k), g, b.wrapping_sub(k)])
        } else {
            image::Rgb([255 - r, g.wrapping_add(k), 255 - b])
        }
    });
    let mut f = std::fs::File::create(path).expect("create photo");
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut f, 92)
        .encode_image(&img)
        .expect("encode photo");
}

/// A temp folder with `in/` (photos) and `state/` (journal, backups).
struct Job {
    dir: tempfile::TempDir,
}

impl Job {
    fn new() -> Job {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("in")).expect("mkdir in");
        Job { dir }
    }
    fn input(&self) -> PathBuf {
        self.dir.path().join("in")
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    /// One generated photo per `(file name, index)` in `in/`.
    fn photos(&self, nonce: u64, files: impl IntoIterator<Item = (String, u32)>) {
        for (name, i) in files {
            write_photo(&self.input().join(name), nonce, u64::from(i));
        }
    }
    fn command(&self, samba: &Samba, args: &[&str]) -> Command {
        self.command_on(samba, &[&self.input()], args)
    }
    fn command_on(&self, samba: &Samba, inputs: &[&Path], args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.env("PHOTOBULK_LDAP_PASSWORD", &samba.password)
            .env_remove("PHOTOBULK_LDAP_SERVER")
            .env_remove("PHOTOBULK_BACKUP_DIR")
            .env_remove("PHOTOBULK_STATE_DIR")
            .arg("import")
            .args(inputs)
            .args(samba.conn_args())
            .arg("--state-dir")
            .arg(self.state())
            .arg("--json")
            .args(args);
        c
    }
    /// Run to the end; returns (exit code, item lines, summary line).
    fn import(&self, samba: &Samba, args: &[&str]) -> (i32, Vec<Value>, Value) {
        let out = self.command(samba, args).output().expect("run photobulk");
        parse_json_lines(&out)
    }
    fn journal(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.state().join("journal.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
    fn count(&self, kind: &str) -> usize {
        self.journal().iter().filter(|r| r["t"] == kind).count()
    }
    /// Start the import in the background, its output piped.
    fn spawn(&self, samba: &Samba, args: &[&str]) -> std::process::Child {
        self.command(samba, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start import")
    }
    /// Wait until the journal holds `n` `done` records (at most `secs` seconds); panics if
    /// `child` ends first.
    fn wait_for_done(&self, n: usize, secs: u64, child: &mut std::process::Child) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.count("done") < n {
            assert!(
                Instant::now() < deadline,
                "the run never reached {n} writes"
            );
            if let Some(status) = child.try_wait().expect("wait") {
                panic!("the import ended before reaching {n} writes: {status}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Per DN (lower case): how many records of `kind` the journal holds.
fn per_dn(journal: &[Value], kind: &str) -> HashMap<String, usize> {
    let mut m: HashMap<String, usize> = HashMap::new();
    for r in journal.iter().filter(|r| r["t"] == kind) {
        *m.entry(r["dn"].as_str().expect("dn").to_lowercase())
            .or_default() += 1;
    }
    m
}

fn parse_json_lines(out: &Output) -> (i32, Vec<Value>, Value) {
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("photobulk killed by a signal:\n{}", stderr(out)));
    assert_ne!(code, 101, "photobulk panicked:\n{}", stderr(out));
    let mut items = Vec::new();
    let mut summary = Value::Null;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        match v["type"].as_str() {
            Some("item") => items.push(v),
            Some("summary") => summary = v,
            _ => panic!("unexpected line {line}"),
        }
    }
    assert!(
        summary.is_object(),
        "no summary line (exit {code}):\n{}",
        stderr(out)
    );
    (code, items, summary)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn records_of<'a>(journal: &'a [Value], kind: &str, run: &str) -> Vec<&'a Value> {
    journal
        .iter()
        .filter(|r| r["t"] == kind && r["run"] == run)
        .collect()
}

fn seed_name(i: u32) -> String {
    format!("seed.{i:05}")
}

// ---------------------------------------------------------------------------------------------

#[test]
fn folder_of_300_and_20_hostile_files_writes_each_good_user_once_and_rerun_writes_nothing() {
    let samba = Samba::from_env();
    let job = Job::new();
    let nonce = nonce();
    job.photos(
        nonce,
        (1..=300).map(|i| (format!("{} badge.jpg", seed_name(i)), i)),
    );
    // 20 hostile files.
    let fx = |rel: &str| Path::new(ROOT).join("tests/fixtures").join(rel);
    let broken = [
        ("seed.01901.jpg", "bad/truncated_header.jpg"),
        ("seed.01902.jpg", "bad/text.jpg"),
        ("seed.01903 x.png", "bad/png_bad_zlib.png"),
        ("seed.01904.gif", "bad/gif_no_frames.gif"),
        ("seed.01905.jpg", "bad/sof_zero_dims.jpg"),
        ("seed.01906.png", "edge/too_small_40x40.png"),
        ("seed.01907.jpg", "bad/empty.jpg"),
        ("seed.01908.jpg", "bad/only_soi.jpg"),
        ("seed.01909.bmp", "bad/bmp_1000000x1000000.bmp"),
    ];
    for (name, rel) in broken {
        std::fs::copy(fx(rel), job.input().join(name)).expect("copy fixture");
    }
    let unknown = [
        "nobody.00001.jpg",
        "nobody.00002 a.jpg",
        "Seed.99999.jpg",
        "seed.1.jpg",
    ];
    let metachar = [
        "star*user.jpg",
        "seed.0000*.jpg",
        "*.jpg",
        "x)(sAMAccountName=seed.00001.jpg",
        "back\\slash.jpg",
    ];
    for name in unknown.iter().chain(&metachar) {
        write_photo(&job.input().join(name), nonce, 9999);
    }
    // A second, older file for seed.00299: the newer one (in the 300) must win.
    let older = job.input().join("seed.00299 2019.jpg");
    write_photo(&older, nonce, 77_777);
    std::fs::File::options()
        .write(true)
        .open(&older)
        .and_then(|f| f.set_modified(SystemTime::now() - Duration::from_secs(86_400 * 365)))
        .expect("backdate");
    write_photo(&job.input().join(" no account.jpg"), nonce, 5);
    assert_eq!(std::fs::read_dir(job.input()).expect("ls").count(), 320);

    let before = samba.photos("OU=Seed");
    let versions_before = samba.usns("OU=Seed");
    let (code, items, summary) = job.import(&samba, &[]);
    assert_eq!(code, 1, "some files failed, so exit 1: {summary}");
    let s = &summary["summary"];
    assert_eq!(n(&s["total"]), 320, "{summary}");
    assert_eq!(n(&s["set"]) + n(&s["replaced"]), 300, "{summary}");
    assert_eq!(n(&s["failed"]), 19, "{summary}");
    assert_eq!(n(&s["skipped"]), 1, "{summary}");
    assert_eq!(n(&s["retryable"]), 0, "{summary}");
    let run = summary["run"].as_str().expect("run id").to_string();

    // Every bad file reported with its reason.
    let by_file: HashMap<String, &Value> = items
        .iter()
        .map(|i| {
            (
                Path::new(i["file"].as_str().expect("file"))
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
                i,
            )
        })
        .collect();
    assert_eq!(by_file.len(), 320);
    for (name, _) in broken {
        let it = by_file[name];
        assert_eq!(it["action"], "failed", "{it}");
        assert_eq!(it["error"]["kind"], "image", "{it}");
        assert!(it["dn"].as_str().is_some(), "the user exists: {it}");
    }
    for name in unknown.iter().chain(&metachar) {
        let it = by_file[*name];
        assert_eq!(it["error"]["kind"], "user_not_found", "{name}: {it}");
        assert!(it["dn"].is_null(), "{it}");
    }
    let old = by_file["seed.00299 2019.jpg"];
    assert_eq!(old["action"], "skipped", "{old}");
    assert_eq!(old["error"]["kind"], "superseded", "{old}");
    assert!(
        old["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("seed.00299 badge.jpg")),
        "names the winner: {old}"
    );
    let win = by_file["seed.00299 badge.jpg"];
    assert!(
        win["also"].to_string().contains("seed.00299 2019.jpg"),
        "the winner lists the loser: {win}"
    );
    assert_eq!(by_file[" no account.jpg"]["error"]["kind"], "no_account");

    // The journal: exactly 300 intents and 300 dones, one per good user, none for bad files.
    let journal = job.journal();
    let intents = records_of(&journal, "intent", &run);
    let dones = records_of(&journal, "done", &run);
    assert_eq!(intents.len(), 300);
    assert_eq!(dones.len(), 300);
    let done_dns: HashSet<String> = dones
        .iter()
        .map(|r| r["dn"].as_str().expect("dn").to_lowercase())
        .collect();
    assert_eq!(done_dns.len(), 300, "no DN written twice");

    // The directory: each good user holds exactly the bytes journaled, changed once (Samba's
    // version); the users of broken files are untouched.
    let after = samba.photos("OU=Seed");
    let versions = samba.usns("OU=Seed");
    let done_sha: HashMap<String, String> = dones
        .iter()
        .map(|r| {
            (
                r["dn"].as_str().expect("dn").to_lowercase(),
                r["sha256"].as_str().expect("sha").to_string(),
            )
        })
        .collect();
    for i in 1..=300u32 {
        let name = seed_name(i);
        let (dn, photo) = &after[&name];
        let photo = photo
            .as_deref()
            .unwrap_or_else(|| panic!("{name} has no photo"));
        assert_eq!(sha(photo), done_sha[&dn.to_lowercase()], "{name}");
        assert!(photo.len() <= 10_240, "{name}: {} bytes", photo.len());
        let img = image::load_from_memory(photo).expect("a JPEG");
        assert_eq!((img.width(), img.height()), (96, 96), "{name}");
        assert!(
            versions[&name] > versions_before[&name],
            "{name}: Samba saw the change"
        );
    }
    assert_eq!(
        sha(after["seed.00299"].1.as_deref().expect("photo")),
        by_file["seed.00299 badge.jpg"]["sha256"]
            .as_str()
            .expect("sha"),
        "the newest file won"
    );
    for i in 1901..=1909u32 {
        let name = seed_name(i);
        assert_eq!(after[&name].1, before[&name].1, "{name} untouched");
        assert_eq!(
            versions[&name], versions_before[&name],
            "{name} never written"
        );
    }

    // Re-running the unchanged folder writes nothing.
    let (_, _, summary2) = job.import(&samba, &[]);
    let s2 = &summary2["summary"];
    assert_eq!(n(&s2["unchanged"]), 300, "{summary2}");
    assert_eq!(n(&s2["set"]) + n(&s2["replaced"]), 0, "{summary2}");
    let run2 = summary2["run"].as_str().expect("run id");
    assert_ne!(run2, run, "the first run finished: a new run");
    let journal = job.journal();
    assert_eq!(records_of(&journal, "intent", run2).len(), 0);
    // Only this test's users: other tests write other seed users in parallel.
    let usns = samba.usns("OU=Seed");
    for i in (1..=300u32).chain(1901..=1909) {
        let name = seed_name(i);
        assert_eq!(
            usns[&name], versions[&name],
            "{name}: no change on the server"
        );
    }
}

#[test]
fn restore_of_a_run_returns_every_photo_byte_identical() {
    let samba = Samba::from_env();
    let job = Job::new();
    let nonce = nonce();
    let users: Vec<String> = (401..=460).map(seed_name).collect();
    // Before: odd users have a photo of their own (odd bytes, not even a JPEG), even users none.
    let before: HashMap<String, Option<Vec<u8>>> = rt().block_on(async {
        let d = samba.connect().await;
        let mut m = HashMap::new();
        let mut set = Vec::new();
        let mut clear = Vec::new();
        for (k, u) in users.iter().enumerate() {
            let dn = d
                .find_user(&photobulk_directory::Lookup::SamAccountName, u, false)
                .await
                .expect("user")
                .dn;
            if k % 2 == 0 {
                let bytes = format!("before {u} {nonce}").into_bytes();
                set.push(PhotoItem {
                    dn,
                    photo: bytes.clone(),
                });
                m.insert(u.clone(), Some(bytes));
            } else {
                clear.push(dn);
                m.insert(u.clone(), None);
            }
        }
        for r in d.set_photos(set, &WriteOptions::without_backup()).await {
            r.expect("set before");
        }
        for r in d
            .remove_photos(clear, &WriteOptions::without_backup())
            .await
        {
            r.expect("clear before");
        }
        m
    });
    for (k, u) in users.iter().enumerate() {
        write_photo(&job.input().join(format!("{u}.jpg")), nonce, k as u64);
    }
    let (code, _, summary) = job.import(&samba, &[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(n(&summary["summary"]["replaced"]), 30, "{summary}");
    assert_eq!(n(&summary["summary"]["set"]), 30, "{summary}");
    let run = summary["run"].as_str().expect("run").to_string();
    let mid = samba.photos("OU=Seed");
    for u in &users {
        assert_ne!(mid[u].1, before[u], "{u} was changed by the import");
    }
    // The backups are on by default, in STATE/ad-backups.
    let store = BackupStore::open(job.state().join("ad-backups")).expect("backups");
    assert_eq!(store.records().expect("index").len(), 60);

    let restore = |extra: &[&str]| {
        let out = Command::new(BIN)
            .env("PHOTOBULK_LDAP_PASSWORD", &samba.password)
            .env_remove("PHOTOBULK_BACKUP_DIR")
            .args(["restore", "--run", &run])
            .args(samba.conn_args())
            .arg("--state-dir")
            .arg(job.state())
            .arg("--json")
            .args(extra)
            .output()
            .expect("run restore");
        parse_json_lines(&out)
    };
    let (code, items, summary) = restore(&[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(n(&summary["restored"]), 60, "{summary}");
    assert_eq!(items.len(), 60);
    let after = samba.photos("OU=Seed");
    for u in &users {
        assert_eq!(
            after[u].1, before[u],
            "{u}: byte for byte as before the run"
        );
    }
    // Restoring again finds everyone already restored and writes nothing.
    let (code, _, summary) = restore(&[]);
    assert_eq!(code, 0);
    assert_eq!(n(&summary["restored"]), 0, "{summary}");
    assert_eq!(n(&summary["unchanged"]), 60, "{summary}");
    // An unknown run is an error, not an empty success.
    let out = Command::new(BIN)
        .env("PHOTOBULK_LDAP_PASSWORD", &samba.password)
        .args(["restore", "--run", "no-such-run"])
        .args(samba.conn_args())
        .arg("--state-dir")
        .arg(job.state())
        .output()
        .expect("run restore");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no run \"no-such-run\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn offline_ldif_applies_with_ldapmodify() {
    let samba = Samba::from_env();
    let job = Job::new();
    let nonce = nonce();
    let users: Vec<String> = (501..=520).map(seed_name).collect();
    let found = samba.photos("OU=Seed");
    let mut csv = String::from("\"DistinguishedName\",\"SamAccountName\"\r\n");
    for (k, u) in users.iter().enumerate() {
        write_photo(&job.input().join(format!("{u} 2024.jpg")), nonce, k as u64);
        csv.push_str(&format!("\"{}\",\"{u}\"\r\n", found[u].0));
    }
    // One account the export does not have: a placeholder DN that ldapmodify refuses.
    write_photo(&job.input().join("not.exported.jpg"), nonce, 99);
    let users_csv = job.dir.path().join("users.csv");
    std::fs::write(&users_csv, csv).expect("users.csv");
    let out_dir = job.dir.path().join("out");
    let out = Command::new(BIN)
        .env_remove("PHOTOBULK_LDAP_SERVER")
        .arg("import")
        .arg(job.input())
        .arg("--out")
        .arg(&out_dir)
        .arg("--users")
        .arg(&users_csv)
        .output()
        .expect("run offline import");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("21 entries, 1 with PLACEHOLDER DNs"),
        "{text}"
    );
    for f in ["manifest.json", "report.html", "thumbnailPhoto.ldif"] {
        assert!(out_dir.join(f).is_file(), "{f}");
    }
    let ldif = out_dir.join("thumbnailPhoto.ldif");
    let ldif_text = std::fs::read_to_string(&ldif).expect("ldif");
    assert!(ldif_text.contains("dn: CN=not.exported,CN=Users,DC=example,DC=invalid"));

    let pw = job.dir.path().join("pw");
    std::fs::write(&pw, &samba.password).expect("pw");
    let lm = Command::new("ldapmodify")
        .env("LDAPTLS_CACERT", &samba.ca)
        .args(["-x", "-c", "-H", &samba.url, "-D", &samba.bind])
        .arg("-y")
        .arg(&pw)
        .arg("-f")
        .arg(&ldif)
        .output()
        .expect("run ldapmodify (Debian ldap-utils)");
    let lm_out = String::from_utf8_lossy(&lm.stdout).into_owned() + &stderr(&lm);
    assert_eq!(lm_out.matches("modifying entry").count(), 21, "{lm_out}");
    assert_eq!(
        lm_out.matches("No such object").count(),
        1,
        "only the placeholder fails: {lm_out}"
    );
    let after = samba.photos("OU=Seed");
    for u in &users {
        let file = std::fs::read(out_dir.join("ad").join(format!("{u}.jpg"))).expect("ad jpeg");
        assert_eq!(
            after[u].1.as_deref(),
            Some(&file[..]),
            "{u}: LDIF carried the bytes"
        );
    }
}

#[test]
fn csv_by_mail_and_plan_write_nothing_until_run() {
    let samba = Samba::from_env();
    let job = Job::new();
    let nonce = nonce();
    let photos = job.dir.path().join("photos");
    std::fs::create_dir(&photos).expect("mkdir");
    let mut csv = String::from("Identity,Path\n");
    for i in 601..=610u32 {
        let u = seed_name(i);
        write_photo(&photos.join(format!("p{i}.jpg")), nonce, u64::from(i));
        csv.push_str(&format!("{u}@photobulk.test,../photos/p{i}.jpg\n"));
    }
    csv.push_str("nobody@photobulk.test,../photos/p601.jpg\n");
    std::fs::write(job.input().join("list.csv"), csv).expect("csv");
    let versions_before = samba.usns("OU=Seed");
    let csv = job.input().join("list.csv");
    let plan = || {
        parse_json_lines(
            &job.command_on(&samba, &[&csv], &["--by", "mail", "--plan"])
                .output()
                .expect("plan"),
        )
    };
    let (code, items, summary) = plan();
    assert_eq!(code, 1, "one row names nobody: {summary}");
    assert_eq!(summary["dry_run"], true);
    assert_eq!(items.len(), 11);
    let planned = items
        .iter()
        .filter(|i| i["action"] == "set" || i["action"] == "replace")
        .count();
    assert_eq!(planned, 10, "{items:?}");
    assert!(items.iter().all(|i| i["dry_run"] == true));
    let nobody = items
        .iter()
        .find(|i| i["account"] == "nobody@photobulk.test")
        .expect("the nobody row");
    assert_eq!(nobody["error"]["kind"], "user_not_found", "{nobody}");
    assert_eq!(job.count("intent"), 0, "a plan writes no journal records");
    let usns = samba.usns("OU=Seed");
    for i in 601..=610u32 {
        let name = seed_name(i);
        assert_eq!(
            usns[&name], versions_before[&name],
            "{name}: a plan writes nothing"
        );
    }

    // Now for real; then the plan says unchanged.
    let (_, _, summary) = parse_json_lines(
        &job.command_on(&samba, &[&csv], &["--by", "mail"])
            .output()
            .expect("run"),
    );
    assert_eq!(
        n(&summary["summary"]["set"]) + n(&summary["summary"]["replaced"]),
        10,
        "{summary}"
    );
    let (_, items, _) = plan();
    assert_eq!(
        items.iter().filter(|i| i["action"] == "unchanged").count(),
        10,
        "{items:?}"
    );
}

#[test]
fn kill_9_mid_run_then_rerun_writes_nobody_twice() {
    let samba = Samba::from_env();
    let seeded = Command::new(Path::new(ROOT).join("scripts/samba-dc"))
        .args(["seed", "2000", "--ou", "Imp", "--dir", &samba.dir])
        .output()
        .expect("seed OU=Imp");
    assert!(
        seeded.status.success(),
        "seeding OU=Imp: {}",
        stderr(&seeded)
    );
    let job = Job::new();
    let nonce = nonce();
    job.photos(nonce, (1..=2000).map(|i| (format!("imp.{i:05}.jpg"), i)));
    let versions_before = samba.usns("OU=Imp");
    assert_eq!(versions_before.len(), 2000);

    let mut child = job
        .command(&samba, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start import");
    job.wait_for_done(400, 240, &mut child);
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let journal1 = job.journal();
    let run = journal1[0]["run"].as_str().expect("run").to_string();
    assert_eq!(
        records_of(&journal1, "end", &run).len(),
        0,
        "killed before the end"
    );
    let done1: HashSet<String> = records_of(&journal1, "done", &run)
        .iter()
        .map(|r| r["dn"].as_str().expect("dn").to_lowercase())
        .collect();
    assert!(done1.len() >= 400 && done1.len() < 2000, "{}", done1.len());
    let intents1: HashSet<String> = records_of(&journal1, "intent", &run)
        .iter()
        .map(|r| r["dn"].as_str().expect("dn").to_lowercase())
        .collect();
    let in_flight: HashSet<&String> = intents1.difference(&done1).collect();
    assert!(
        in_flight.len() <= 32,
        "at most the window was in flight: {}",
        in_flight.len()
    );
    // The server's state at the kill: users done so far must not change again.
    let usn_at_kill = samba.usns("OU=Imp");
    let dn_of: HashMap<String, String> = samba
        .photos("OU=Imp")
        .into_iter()
        .map(|(sam, (dn, _))| (dn.to_lowercase(), sam))
        .collect();
    for dn in &done1 {
        assert!(
            usn_at_kill[&dn_of[dn]] > versions_before[&dn_of[dn]],
            "{dn} changed before the kill"
        );
    }

    let (code, _, summary) = job.import(&samba, &[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["resumed"], true, "{summary}");
    assert_eq!(summary["run"], run.as_str(), "the same run, resumed");
    let s = &summary["summary"];
    assert_eq!(n(&s["failed"]), 0, "{summary}");
    assert_eq!(
        n(&s["set"]) + n(&s["replaced"]) + n(&s["unchanged"]),
        2000,
        "{summary}"
    );
    assert!(n(&s["unchanged"]) >= done1.len() as u64, "{summary}");

    let journal = job.journal();
    let mut dones: HashMap<String, usize> = HashMap::new();
    let mut sha_of: HashMap<String, String> = HashMap::new();
    for r in records_of(&journal, "done", &run) {
        let dn = r["dn"].as_str().expect("dn").to_lowercase();
        *dones.entry(dn.clone()).or_default() += 1;
        sha_of.insert(dn, r["sha256"].as_str().expect("sha").to_string());
    }
    // Intents of the second pass: only users the first pass had not finished.
    let second_intents: Vec<String> = journal[journal1.len()..]
        .iter()
        .filter(|r| r["t"] == "intent")
        .map(|r| r["dn"].as_str().expect("dn").to_lowercase())
        .collect();
    for dn in &second_intents {
        assert!(
            !done1.contains(dn),
            "{dn} was done before the kill and written again"
        );
    }
    let after = samba.photos("OU=Imp");
    let versions = samba.usns("OU=Imp");
    assert_eq!(after.len(), 2000);
    for (sam, (dn, photo)) in &after {
        let dn = dn.to_lowercase();
        let photo = photo
            .as_deref()
            .unwrap_or_else(|| panic!("{sam} has no photo"));
        // Users in flight at the kill may have been written by the first pass without a `done`
        // record; the re-run then found their bytes already there (unchanged) and wrote nothing.
        let expected = sha_of.get(&dn).cloned().unwrap_or_else(|| {
            assert!(in_flight.contains(&dn), "{sam}: no done and not in flight");
            journal1
                .iter()
                .find(|r| {
                    r["t"] == "intent"
                        && r["dn"].as_str().map(str::to_lowercase) == Some(dn.clone())
                })
                .and_then(|r| r["sha256"].as_str())
                .expect("intent sha")
                .to_string()
        });
        assert_eq!(sha(photo), expected, "{sam} holds the right photo");
        assert!(
            dones.get(&dn).copied().unwrap_or(0) <= 1,
            "{sam} done twice"
        );
        assert!(
            versions[sam] > versions_before[sam],
            "{sam}: Samba saw the change"
        );
        if done1.contains(&dn) {
            assert_eq!(
                versions[sam], usn_at_kill[sam],
                "{sam} was done before the kill: the re-run must not change it"
            );
        }
    }
    // Client side: the re-run sent a write (an intent is journaled before every write) only for
    // users the first pass had not finished.
    assert!(
        second_intents.len() <= 2000 - done1.len(),
        "{} writes in the re-run for {} unfinished users",
        second_intents.len(),
        2000 - done1.len()
    );
}

#[test]
fn ctrl_c_finishes_writes_in_flight_and_the_rerun_resumes() {
    let samba = Samba::from_env();
    let job = Job::new();
    let nonce = nonce();
    job.photos(
        nonce,
        (701..=1300).map(|i| (format!("{}.jpg", seed_name(i)), i)),
    );
    let mut child = job.spawn(&samba, &["--window", "8"]);
    job.wait_for_done(100, 120, &mut child);
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(st.success());
    let out = child.wait_with_output().expect("wait");
    let (code, items, summary) = parse_json_lines(&out);
    assert_eq!(code, 1, "cancelled runs exit 1: {summary}");
    assert_eq!(summary["cancelled"], true, "{summary}");
    assert!(stderr(&out).contains("Ctrl+C"), "{}", stderr(&out));
    let run = summary["run"].as_str().expect("run").to_string();
    let journal = job.journal();
    let intents: HashSet<String> = records_of(&journal, "intent", &run)
        .iter()
        .map(|r| r["dn"].as_str().expect("dn").to_lowercase())
        .collect();
    let dones: HashSet<String> = records_of(&journal, "done", &run)
        .iter()
        .map(|r| r["dn"].as_str().expect("dn").to_lowercase())
        .collect();
    assert_eq!(
        intents, dones,
        "every write started was finished and journaled"
    );
    assert!(dones.len() < 600, "stopped early: {}", dones.len());
    let cancelled = items
        .iter()
        .filter(|i| i["error"]["kind"] == "cancelled")
        .count();
    assert_eq!(cancelled + dones.len(), 600, "{summary}");
    assert_eq!(records_of(&journal, "end", &run).len(), 0);

    let (code, _, summary) = job.import(&samba, &[]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["run"], run.as_str(), "resumed: {summary}");
    let s = &summary["summary"];
    assert_eq!(n(&s["unchanged"]), dones.len() as u64, "{summary}");
    assert_eq!(
        n(&s["set"]) + n(&s["replaced"]),
        600 - dones.len() as u64,
        "{summary}"
    );
}

/// A private Samba DC on its own loopback address that a test may stop and start again;
/// purged when dropped.
struct OwnSamba {
    dir: PathBuf,
    ip: &'static str,
}

impl OwnSamba {
    /// Start it (provisioning a fresh one) and seed `count` users in OU=`ou` (`ou.00001`...).
    fn start(ip: &'static str, tag: &str, ou: &str, count: u32) -> (OwnSamba, Samba) {
        let own = OwnSamba {
            dir: PathBuf::from(format!("/tmp/pb-import-{tag}-{}", std::process::id())),
            ip,
        };
        let start = own.script(&["start"]);
        assert!(
            start.status.success(),
            "starting a private Samba: {}",
            stderr(&start)
        );
        let samba = Samba::from_exports(&String::from_utf8_lossy(&start.stdout));
        let seeded = own.script(&["seed", &count.to_string(), "--ou", ou]);
        assert!(seeded.status.success(), "seeding: {}", stderr(&seeded));
        (own, samba)
    }

    fn script(&self, args: &[&str]) -> Output {
        Command::new(Path::new(ROOT).join("scripts/samba-dc"))
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .args(["--ip", self.ip])
            .output()
            .expect("run scripts/samba-dc")
    }

    fn run(&self, cmd: &str) {
        let out = self.script(&[cmd]);
        assert!(out.status.success(), "samba-dc {cmd}: {}", stderr(&out));
    }
}

impl Drop for OwnSamba {
    fn drop(&mut self) {
        let _ = self.script(&["stop", "--purge"]);
    }
}

/// Every user under `ou` holds a photo, and it is the one the journal's `done` records say.
fn assert_photos_match_journal(samba: &Samba, ou: &str, journal: &[Value], count: usize) {
    let done_sha: HashMap<String, String> = journal
        .iter()
        .filter(|r| r["t"] == "done")
        .map(|r| {
            (
                r["dn"].as_str().expect("dn").to_lowercase(),
                r["sha256"].as_str().expect("sha").to_string(),
            )
        })
        .collect();
    let after = samba.photos(ou);
    assert_eq!(after.len(), count);
    for (sam, (dn, photo)) in &after {
        let photo = photo
            .as_deref()
            .unwrap_or_else(|| panic!("{sam} has no photo"));
        assert_eq!(
            Some(&sha(photo)),
            done_sha.get(&dn.to_lowercase()),
            "{sam} holds the photo the journal says"
        );
    }
}

#[test]
fn samba_stopped_mid_run_fails_retryable_then_rerun_completes() {
    let (own, samba) = OwnSamba::start("127.0.0.27", "stop", "Stop", 300);
    let job = Job::new();
    job.photos(nonce(), (1..=300).map(|i| (format!("stop.{i:05}.jpg"), i)));
    let mut child = job.spawn(
        &samba,
        &[
            "--window",
            "2",
            "--timeout",
            "10",
            "--reconnect-attempts",
            "2",
        ],
    );
    job.wait_for_done(30, 120, &mut child);
    own.run("stop");
    let (code, items, summary) = parse_json_lines(&child.wait_with_output().expect("wait"));
    assert_eq!(code, 1, "{summary}");
    let s = &summary["summary"];
    let written = n(&s["set"]) + n(&s["replaced"]);
    assert!((30..300).contains(&written), "{summary}");
    assert_eq!(n(&s["failed"]), 300 - written, "{summary}");
    assert_eq!(
        n(&s["retryable"]),
        n(&s["failed"]),
        "every failure is retryable: {summary}"
    );
    for it in items.iter().filter(|i| i["action"] == "failed") {
        let msg = it["error"]["message"].as_str().expect("message");
        assert!(
            msg.contains("run the same command again") && msg.contains("reconnect attempt"),
            "a clear message: {it}"
        );
        assert!(
            ["connection_lost", "connect", "timeout"]
                .contains(&it["error"]["kind"].as_str().unwrap_or("")),
            "{it}"
        );
    }
    own.run("start");
    let (code, _, summary2) = job.import(&samba, &["--window", "8"]);
    assert_eq!(code, 0, "{summary2}");
    let s2 = &summary2["summary"];
    assert_eq!(n(&s2["failed"]), 0, "{summary2}");
    assert_eq!(
        n(&s2["set"]) + n(&s2["replaced"]) + n(&s2["unchanged"]),
        300,
        "{summary2}"
    );
    let journal = job.journal();
    assert!(
        per_dn(&journal, "done").values().all(|&c| c == 1),
        "no user written twice"
    );
    assert_photos_match_journal(&samba, "OU=Stop", &journal, 300);
}

/// Issue 4: the connection drops mid-run and the server comes back: the run reconnects
/// (backoff), retries what failed in the outage, and finishes in one go — every user once.
#[test]
fn samba_restarted_mid_run_reconnects_and_writes_everyone_once() {
    let (own, samba) = OwnSamba::start("127.0.0.28", "restart", "Restart", 300);
    let job = Job::new();
    job.photos(
        nonce(),
        (1..=300).map(|i| (format!("restart.{i:05}.jpg"), i)),
    );
    let mut child = job.spawn(&samba, &["--window", "8", "--timeout", "10"]);
    job.wait_for_done(60, 120, &mut child);
    own.run("stop");
    let done_at_stop = job.count("done");
    std::thread::sleep(Duration::from_secs(2));
    own.run("start");
    let out = child.wait_with_output().expect("wait");
    let (code, _, summary) = parse_json_lines(&out);
    assert_eq!(code, 0, "{summary}\n{}", stderr(&out));
    let s = &summary["summary"];
    assert_eq!(n(&s["failed"]), 0, "{summary}");
    assert_eq!(n(&s["set"]), 300, "{summary}");
    assert!(done_at_stop < 300, "stopped mid-run: {done_at_stop} done");
    let journal = job.journal();
    let intents = per_dn(&journal, "intent");
    let dones = per_dn(&journal, "done");
    assert_eq!(intents.len(), 300);
    assert!(
        intents.values().all(|&c| c == 1),
        "one intent per user: a write lost in the outage is checked, not journaled again"
    );
    assert_eq!(dones.len(), 300);
    assert!(dones.values().all(|&c| c == 1), "no user written twice");
    assert_photos_match_journal(&samba, "OU=Restart", &journal, 300);
    // Nothing left to do.
    let (code, _, summary2) = job.import(&samba, &[]);
    assert_eq!(code, 0, "{summary2}");
    assert_eq!(n(&summary2["summary"]["unchanged"]), 300, "{summary2}");
}

/// Issue 4: two names that are one directory user — a file named by sAMAccountName and a CSV
/// row naming the UPN, or two CSV rows — are "two files for one user": the newest wins, both
/// are reported (plan and run), and the user is written once.
#[test]
fn two_names_for_one_user_are_one_write_newest_wins() {
    let samba = Samba::from_env();
    let job = Job::new();
    let nonce = nonce();
    let photos = job.dir.path().join("photos");
    std::fs::create_dir(&photos).expect("mkdir");
    let old = SystemTime::now() - Duration::from_secs(86_400 * 30);
    let backdate = |p: &Path| {
        std::fs::File::options()
            .write(true)
            .open(p)
            .and_then(|f| f.set_modified(old))
            .expect("backdate");
    };
    // seed.00611..00613: folder file (old) + UPN row (new): the UPN row wins.
    // seed.00614: folder file (new) + UPN row (old): the folder file wins.
    // seed.00615: two CSV rows (UPN and mail) for the same user: the newer file wins.
    let mut upn_csv = String::from("UserPrincipalName,Path\n");
    let mut mail_csv = String::from("Mail,Path\n");
    for i in 611..=615u32 {
        let u = seed_name(i);
        let file = job.input().join(format!("{u}.jpg"));
        write_photo(&file, nonce, u64::from(i));
        let row = photos.join(format!("upn{i}.jpg"));
        write_photo(&row, nonce, u64::from(i) + 1000);
        upn_csv.push_str(&format!("{u}@photobulk.test,../photos/upn{i}.jpg\n"));
        if i == 614 || i == 615 {
            backdate(&row);
        } else {
            backdate(&file);
        }
    }
    std::fs::remove_file(job.input().join("seed.00615.jpg")).expect("rm");
    write_photo(&photos.join("mail615.jpg"), nonce, 61_500);
    mail_csv.push_str("SEED.00615@photobulk.test,../photos/mail615.jpg\n");
    let lists = job.dir.path().join("lists");
    std::fs::create_dir(&lists).expect("mkdir");
    std::fs::write(lists.join("upn.csv"), upn_csv).expect("csv");
    std::fs::write(lists.join("mail.csv"), mail_csv).expect("csv");
    let (upn, mail) = (lists.join("upn.csv"), lists.join("mail.csv"));
    let inputs: [&Path; 3] = [&job.input(), &upn, &mail];
    let winner_of = |i: u32| match i {
        611..=613 => format!("upn{i}.jpg"),
        614 => format!("{}.jpg", seed_name(i)),
        _ => "mail615.jpg".to_string(),
    };
    let check = |items: &[Value], dry: bool| {
        assert_eq!(items.len(), 10, "{items:?}");
        for i in 611..=615u32 {
            let name = |it: &Value| {
                Path::new(it["file"].as_str().expect("file"))
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned()
            };
            let mine: Vec<&Value> = items
                .iter()
                .filter(|it| {
                    it["dn"].as_str().is_some_and(|d| {
                        d.to_lowercase()
                            .starts_with(&format!("cn={}", seed_name(i)))
                    })
                })
                .collect();
            assert_eq!(mine.len(), 2, "{i}: {mine:?}");
            let (win, lose): (Vec<&Value>, Vec<&Value>) =
                mine.into_iter().partition(|it| it["action"] != "skipped");
            assert_eq!(win.len(), 1, "{i}: one winner");
            let (win, lose) = (win[0], lose[0]);
            assert_eq!(name(win), winner_of(i), "{i}: the newest file wins: {win}");
            assert_eq!(win["action"], "set", "{win}");
            assert_eq!(win["dry_run"], dry);
            assert_eq!(lose["error"]["kind"], "superseded", "{lose}");
            let msg = lose["error"]["message"].as_str().expect("message");
            assert!(
                msg.contains(&winner_of(i)) && msg.contains("same user"),
                "the loser names the winner: {lose}"
            );
            assert!(
                win["also"].to_string().contains(&name(lose)),
                "the winner lists the loser: {win}"
            );
        }
    };
    // Clear first: the users must start without a photo for "set".
    let found = samba.photos("OU=Seed");
    rt().block_on(async {
        let d = samba.connect().await;
        let dns = (611..=615)
            .map(|i| found[&seed_name(i)].0.clone())
            .collect();
        for r in d.remove_photos(dns, &WriteOptions::without_backup()).await {
            r.expect("clear");
        }
    });
    let (code, items, summary) = parse_json_lines(
        &job.command_on(&samba, &inputs, &["--plan"])
            .output()
            .expect("plan"),
    );
    assert_eq!(code, 0, "superseded files are not failures: {summary}");
    check(&items, true);

    let (code, items, summary) =
        parse_json_lines(&job.command_on(&samba, &inputs, &[]).output().expect("run"));
    assert_eq!(code, 0, "{summary}");
    assert_eq!(n(&summary["summary"]["set"]), 5, "{summary}");
    assert_eq!(n(&summary["summary"]["skipped"]), 5, "{summary}");
    check(&items, false);
    let journal = job.journal();
    let intents = per_dn(&journal, "intent");
    assert_eq!(intents.len(), 5);
    assert!(intents.values().all(|&c| c == 1), "one write per user");
    let after = samba.photos("OU=Seed");
    for it in items.iter().filter(|it| it["action"] == "set") {
        let account = seed_name(
            (611..=615u32)
                .find(|i| {
                    it["dn"].as_str().is_some_and(|d| {
                        d.to_lowercase()
                            .starts_with(&format!("cn={}", seed_name(*i)))
                    })
                })
                .expect("one of ours"),
        );
        assert_eq!(
            after[&account].1.as_deref().map(sha).as_deref(),
            it["sha256"].as_str(),
            "{account} holds the winner's photo"
        );
    }
}

/// Issue 19: a run that lost its server, then the same command again after the server is
/// back, is **one** run (continued, not a new id), and one `restore --run` puts every user of
/// both attempts back byte for byte (or back to no photo). Its own Samba (stopped mid-run), on
/// `PB_UNDO_SAMBA_IP` or 127.0.0.29.
#[test]
fn lost_connection_then_rerun_is_one_run_and_one_restore_undoes_both_attempts() {
    let ip: &'static str = Box::leak(
        std::env::var("PB_UNDO_SAMBA_IP")
            .unwrap_or_else(|_| "127.0.0.29".into())
            .into_boxed_str(),
    );
    let count = 120u32;
    let (own, samba) = OwnSamba::start(ip, "undo", "Undo", count);
    let nonce = nonce();
    let names: Vec<String> = (1..=count).map(|i| format!("undo.{i:05}")).collect();
    // Before: every third user has a photo of its own (not even a JPEG), the others none.
    rt().block_on(async {
        let d = samba.connect().await;
        let mut set = Vec::new();
        for (k, u) in names.iter().enumerate().filter(|(k, _)| k % 3 == 0) {
            let _ = k;
            let dn = d
                .find_user(&photobulk_directory::Lookup::SamAccountName, u, false)
                .await
                .expect("user")
                .dn;
            set.push(PhotoItem {
                dn,
                photo: format!("before {u} {nonce}").into_bytes(),
            });
        }
        for r in d.set_photos(set, &WriteOptions::without_backup()).await {
            r.expect("set before");
        }
    });
    let before: HashMap<String, Option<Vec<u8>>> = samba
        .photos("OU=Undo")
        .into_iter()
        .map(|(k, (_, p))| (k, p))
        .collect();
    assert_eq!(before.len(), count as usize);

    let job = Job::new();
    job.photos(
        nonce,
        names
            .iter()
            .enumerate()
            .map(|(k, u)| (format!("{u}.jpg"), k as u32)),
    );
    // A plan leaves the state folder (journal, backups) exactly as it was: here, absent.
    let (code, _, plan) = job.import(&samba, &["--plan"]);
    assert_eq!(code, 0, "{plan}");
    assert!(
        !job.state().exists(),
        "import --plan created {:?}",
        tree(&job.state())
    );
    let mut child = job.spawn(
        &samba,
        &[
            "--window",
            "2",
            "--timeout",
            "10",
            "--reconnect-attempts",
            "2",
        ],
    );
    job.wait_for_done(20, 120, &mut child);
    own.run("stop");
    let (code, _, first) = parse_json_lines(&child.wait_with_output().expect("wait"));
    assert_eq!(code, 1, "{first}");
    assert!(n(&first["summary"]["retryable"]) > 0, "{first}");
    let run = first["run"].as_str().expect("run id").to_string();

    own.run("start");
    let (code, _, second) = job.import(&samba, &["--window", "8"]);
    assert_eq!(code, 0, "{second}");
    assert_eq!(
        second["run"],
        run.as_str(),
        "the re-run continues the run: {second}"
    );
    assert_eq!(second["resumed"], true, "{second}");
    let after_run = samba.photos("OU=Undo");
    assert!(
        names.iter().all(|u| after_run[u].1 != before[u]),
        "everyone written"
    );

    let runs = Command::new(BIN)
        .args(["runs", "--state-dir"])
        .arg(job.state())
        .arg("--graph-backup-dir")
        .arg(job.state().join("graph-backups"))
        .output()
        .expect("runs");
    let listed = String::from_utf8_lossy(&runs.stdout);
    assert!(
        listed.contains(&run) && listed.contains("complete, resumed"),
        "{listed}"
    );

    // With a journal and backups in place, a plan still changes nothing in them.
    let snapshot = tree(&job.state());
    let (_, _, plan) = job.import(&samba, &["--plan"]);
    assert_eq!(n(&plan["summary"]["unchanged"]), u64::from(count), "{plan}");
    assert_eq!(
        tree(&job.state()),
        snapshot,
        "import --plan changed the state folder"
    );

    // One user, "before run RUN" (not the latest backup).
    let one = &names[0];
    let out = Command::new(BIN)
        .env("PHOTOBULK_LDAP_PASSWORD", &samba.password)
        .env_remove("PHOTOBULK_BACKUP_DIR")
        .args(["ad", "restore", "--user", one, "--run", &run])
        .args(samba.conn_args())
        .arg("--backup-dir")
        .arg(job.state().join("ad-backups"))
        .arg("--state-dir")
        .arg(job.state())
        .output()
        .expect("ad restore --run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        samba.photos("OU=Undo")[one].1,
        before[one],
        "{one} as before the run"
    );
    // ...and back to the run's photo, so the whole-run restore below has work for everyone.
    let (code, _, _) = job.import(&samba, &[]);
    assert_eq!(code, 0);

    let out = Command::new(BIN)
        .env("PHOTOBULK_LDAP_PASSWORD", &samba.password)
        .env_remove("PHOTOBULK_BACKUP_DIR")
        .args(["restore", "--run", &run])
        .args(samba.conn_args())
        .arg("--state-dir")
        .arg(job.state())
        .arg("--json")
        .output()
        .expect("restore");
    let (code, _, summary) = parse_json_lines(&out);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(n(&summary["restored"]), u64::from(count), "{summary}");
    let after = samba.photos("OU=Undo");
    for u in &names {
        assert_eq!(
            after[u].1, before[u],
            "{u}: as before the run, byte for byte"
        );
    }
}

/// Every path under `dir` with its size and SHA-256 (a `find` listing with contents).
fn tree(dir: &Path) -> Vec<(String, u64, String)> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<(String, u64, String)>) {
        let Ok(rd) = std::fs::read_dir(d) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
            if p.is_dir() {
                out.push((rel + "/", 0, String::new()));
                walk(base, &p, out);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                out.push((rel, bytes.len() as u64, sha(&bytes)));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
