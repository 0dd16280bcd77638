//! `photobulk convert` end to end: the real binary on a temporary folder of real fixtures,
//! checking the files it writes, `manifest.json` (format documented in
//! `photobulk_engine::manifest`), `--json`, `--target`, `--crop`, `--ad-max-bytes` and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Exit code of a Rust program that panicked.
const PANIC_EXIT: i32 = 101;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A temp dir with `in/` holding `files` (name in `in/` ← fixture), and `out/` not yet made.
struct Job {
    dir: tempfile::TempDir,
}

impl Job {
    fn new(files: &[(&str, &str)]) -> Job {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("in")).expect("mkdir in");
        for (name, rel) in files {
            std::fs::copy(fixture(rel), dir.path().join("in").join(name))
                .unwrap_or_else(|e| panic!("copy {rel}: {e}"));
        }
        Job { dir }
    }

    fn input(&self) -> PathBuf {
        self.dir.path().join("in")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Runs `photobulk convert <inputs> --out out <extra>` from the job folder.
    fn run(&self, inputs: &[PathBuf], extra: &[&str]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_photobulk"))
            .current_dir(self.dir.path())
            .arg("convert")
            .args(inputs)
            .arg("--out")
            .arg(self.out())
            .args(extra)
            .output()
            .expect("run photobulk");
        assert_ne!(
            output.status.code(),
            Some(PANIC_EXIT),
            "photobulk panicked:\n{}",
            stderr(&output)
        );
        assert!(
            output.status.code().is_some(),
            "photobulk killed by a signal:\n{}",
            stderr(&output)
        );
        output
    }

    fn manifest(&self) -> Value {
        let path = self.out().join("manifest.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("manifest.json is not JSON: {e}\n{text}"))
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The manifest item whose `file` ends with `name`.
fn item<'a>(manifest: &'a Value, name: &str) -> &'a Value {
    manifest["items"]
        .as_array()
        .expect("items array")
        .iter()
        .find(|i| i["file"].as_str().is_some_and(|f| f.ends_with(name)))
        .unwrap_or_else(|| panic!("no manifest item for {name}: {:#}", manifest["items"]))
}

/// Decoded dimensions of a written JPEG, checking it is one.
fn jpeg_dims(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..2], b"\xFF\xD8", "{} is not a JPEG", path.display());
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    (img.width(), img.height())
}

/// The mixed folder of the brief: good files, one corrupt file, one account named twice, and a
/// file that is not an image.
fn mixed_job() -> Job {
    Job::new(&[
        ("John.Smith 648x648.jpg", "orient/jpeg_o6.jpg"),
        ("jane.doe.png", "orient/upright.png"),
        ("John.Smith648x648.jpg", "real/astronaut.jpg"),
        ("corrupt.jpg", "bad/truncated_header.jpg"),
        ("Bob.Jones a.jpg", "orient/jpeg_o1.jpg"),
        ("Bob.Jones b.png", "orient/upright.png"),
        ("Thumbs.db", "bad/text.jpg"),
    ])
}

#[test]
fn mixed_folder_writes_good_accounts_and_reports_the_rest() {
    let job = mixed_job();
    let run = job.run(&[job.input()], &[]);
    assert_ne!(
        run.status.code(),
        Some(0),
        "a file failed, so the exit code must be non-zero"
    );

    let out = job.out();
    for account in ["John.Smith", "jane.doe", "John.Smith648x648"] {
        assert_eq!(
            jpeg_dims(&out.join(format!("ad/{account}.jpg"))),
            (96, 96),
            "{account}"
        );
        assert_eq!(
            jpeg_dims(&out.join(format!("hd/{account}.jpg"))),
            (648, 648),
            "{account}"
        );
        let ad_bytes = std::fs::metadata(out.join(format!("ad/{account}.jpg")))
            .expect("ad file")
            .len();
        assert!(
            ad_bytes <= 10_240,
            "{account}: AD photo is {ad_bytes} bytes"
        );
    }
    for absent in [
        "ad/Bob.Jones.jpg",
        "hd/Bob.Jones.jpg",
        "ad/corrupt.jpg",
        "hd/corrupt.jpg",
        "ad/Thumbs.jpg",
    ] {
        assert!(!out.join(absent).exists(), "{absent} must not be written");
    }
    let written: Vec<_> = std::fs::read_dir(out.join("ad")).expect("ad/").collect();
    assert_eq!(
        written.len(),
        3,
        "ad/ holds exactly the three good accounts: {written:?}"
    );

    // The failure is named on stderr with its reason.
    let err = stderr(&run);
    assert!(
        err.contains("corrupt.jpg"),
        "stderr does not name the corrupt file:\n{err}"
    );
}

#[test]
fn manifest_records_every_file_with_its_status() {
    let job = mixed_job();
    job.run(&[job.input()], &[]);
    let m = job.manifest();
    assert_eq!(m["format"], "photobulk-convert-manifest");
    assert_eq!(m["version"], 1);
    let s = &m["summary"];
    assert_eq!(
        (
            s["total"].as_u64(),
            s["ok"].as_u64(),
            s["failed"].as_u64(),
            s["duplicate"].as_u64()
        ),
        (Some(6), Some(3), Some(1), Some(2)),
        "summary {s:#}"
    );
    assert_eq!(
        m["items"].as_array().map(Vec::len),
        Some(6),
        "one item per image file"
    );

    let john = item(&m, "John.Smith 648x648.jpg");
    assert_eq!(john["account"], "John.Smith");
    assert_eq!(john["status"], "ok");
    assert_eq!(john["source"]["format"], "jpeg");
    assert_eq!(
        john["source"]["orientation"], 6,
        "EXIF orientation recorded"
    );
    let outputs = john["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 2);
    for o in outputs {
        let target = o["target"].as_str().expect("target");
        let path = o["path"].as_str().expect("path");
        assert_eq!(
            path,
            format!("{target}/John.Smith.jpg"),
            "paths are relative to the manifest folder"
        );
        let on_disk = std::fs::metadata(job.out().join(path))
            .expect("written file")
            .len();
        assert_eq!(
            o["bytes"].as_u64(),
            Some(on_disk),
            "{path}: manifest bytes = file size"
        );
        assert_eq!(o["sha256"].as_str().map(str::len), Some(64));
        let size = if target == "ad" { 96 } else { 648 };
        assert_eq!(
            (o["width"].as_u64(), o["height"].as_u64()),
            (Some(size), Some(size))
        );
    }

    // No space: the account is the whole stem — just another account name.
    let nospace = item(&m, "John.Smith648x648.jpg");
    assert_eq!(nospace["account"], "John.Smith648x648");
    assert_eq!(nospace["status"], "ok");
    assert_eq!(item(&m, "jane.doe.png")["account"], "jane.doe");

    let bad = item(&m, "corrupt.jpg");
    assert_eq!(bad["status"], "failed");
    let reason = bad["error"].as_str().expect("failed item has an error");
    assert!(
        reason.to_lowercase().contains("jpeg"),
        "error should say what was wrong: {reason:?}"
    );

    let a = item(&m, "Bob.Jones a.jpg");
    let b = item(&m, "Bob.Jones b.png");
    for (dup, other) in [(a, "Bob.Jones b.png"), (b, "Bob.Jones a.jpg")] {
        assert_eq!(dup["status"], "duplicate");
        assert_eq!(dup["account"], "Bob.Jones");
        assert!(
            dup.get("outputs")
                .is_none_or(|o| o.as_array().is_some_and(Vec::is_empty)),
            "duplicate wrote outputs"
        );
        let names: Vec<&str> = dup["duplicates"]
            .as_array()
            .expect("duplicates")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            names.iter().any(|n| n.ends_with(other)),
            "{dup:#} does not name {other}"
        );
        assert!(
            dup["error"]
                .as_str()
                .is_some_and(|e| e.contains("Bob.Jones")),
            "{dup:#}"
        );
    }

    let skipped: Vec<&str> = m["skipped_files"]
        .as_array()
        .expect("skipped_files")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        skipped.iter().any(|f| f.ends_with("Thumbs.db")),
        "Thumbs.db not listed as skipped: {skipped:?}"
    );
}

#[test]
fn json_flag_prints_the_manifest() {
    let job = mixed_job();
    let run = job.run(&[job.input()], &["--json"]);
    let stdout = String::from_utf8(run.stdout.clone()).expect("UTF-8 stdout");
    let printed: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("--json output does not parse: {e}\n{stdout}"));
    let written = job.manifest();
    assert_eq!(printed["summary"], written["summary"]);
    assert_eq!(printed["items"], written["items"]);
    assert_ne!(
        run.status.code(),
        Some(0),
        "--json does not change the exit code"
    );
}

#[test]
fn all_good_files_exit_zero() {
    let job = Job::new(&[
        ("ann.lee 2024.webp", "orient/webp_o8.webp"),
        ("cmyk.user.jpg", "formats/cmyk.jpg"),
    ]);
    let run = job.run(&[job.input()], &[]);
    assert_eq!(run.status.code(), Some(0), "stderr:\n{}", stderr(&run));
    assert_eq!(jpeg_dims(&job.out().join("hd/ann.lee.jpg")), (648, 648));
    assert_eq!(jpeg_dims(&job.out().join("ad/cmyk.user.jpg")), (96, 96));
    assert_eq!(job.manifest()["summary"]["ok"], 2);
}

#[test]
fn target_ad_writes_only_ad() {
    let job = Job::new(&[("jane.doe.png", "orient/upright.png")]);
    let run = job.run(&[job.input()], &["--target", "ad"]);
    assert_eq!(run.status.code(), Some(0), "stderr:\n{}", stderr(&run));
    assert_eq!(jpeg_dims(&job.out().join("ad/jane.doe.jpg")), (96, 96));
    let hd = job.out().join("hd");
    assert!(
        !hd.exists() || std::fs::read_dir(&hd).expect("hd/").next().is_none(),
        "hd/ was written to"
    );
    let m = job.manifest();
    let outputs = item(&m, "jane.doe.png")["outputs"]
        .as_array()
        .expect("outputs")
        .clone();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["target"], "ad");
}

#[test]
fn explicit_files_are_accepted_as_inputs() {
    let job = Job::new(&[
        ("John.Smith 648x648.jpg", "orient/jpeg_o3.jpg"),
        ("other.png", "orient/upright.png"),
    ]);
    let run = job.run(&[job.input().join("John.Smith 648x648.jpg")], &[]);
    assert_eq!(run.status.code(), Some(0), "stderr:\n{}", stderr(&run));
    assert!(job.out().join("ad/John.Smith.jpg").exists());
    assert!(
        !job.out().join("ad/other.jpg").exists(),
        "only the named file is converted"
    );
    assert_eq!(job.manifest()["summary"]["total"], 1);
}

#[test]
fn ad_max_bytes_sets_the_ad_budget() {
    let job = Job::new(&[("astro.naut.jpg", "real/astronaut.jpg")]);
    let run = job.run(&[job.input()], &["--ad-max-bytes", "4000"]);
    assert_eq!(run.status.code(), Some(0), "stderr:\n{}", stderr(&run));
    let bytes = std::fs::metadata(job.out().join("ad/astro.naut.jpg"))
        .expect("ad file")
        .len();
    assert!(
        bytes <= 4000,
        "AD photo is {bytes} bytes, over --ad-max-bytes 4000"
    );
    let m = job.manifest();
    let ad = m["options"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["name"] == "ad")
        .cloned();
    assert_eq!(ad.map(|t| t["max_bytes"].clone()), Some(Value::from(4000)));
}

#[test]
fn crop_option_reaches_the_imaging_engine() {
    let job = Job::new(&[("tall.person.jpg", "edge/portrait_400x900.jpg")]);
    let crop_y = |mode: &str| {
        let run = job.run(&[job.input()], &["--crop", mode]);
        assert_eq!(
            run.status.code(),
            Some(0),
            "--crop {mode}: {}",
            stderr(&run)
        );
        let m = job.manifest();
        assert_eq!(m["options"]["crop"], mode);
        let hd = item(&m, "tall.person.jpg")["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .find(|o| o["target"] == "hd")
            .cloned()
            .expect("hd output");
        (
            hd["crop"]["x"].as_i64().expect("x"),
            hd["crop"]["y"].as_i64().expect("y"),
        )
    };
    assert_eq!(crop_y("center"), (0, 250));
    let (_, top_y) = crop_y("top");
    assert!(
        top_y <= 120,
        "top crop starts at row {top_y}: the head (rows 120..260) is cut"
    );
    assert_eq!(crop_y("pad"), (-250, 0));
}

#[test]
fn folder_of_bad_files_fails_cleanly() {
    let bad: Vec<(String, String)> = std::fs::read_dir(fixture("bad"))
        .expect("bad/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .map(|name| (name.clone(), format!("bad/{name}")))
        .collect();
    let files: Vec<(&str, &str)> = bad.iter().map(|(n, r)| (n.as_str(), r.as_str())).collect();
    let job = Job::new(&files);
    let run = job.run(&[job.input()], &[]);
    assert_ne!(run.status.code(), Some(0));
    let m = job.manifest();
    let items = m["items"].as_array().expect("items");
    assert_eq!(items.len(), bad.len(), "one item per bad file");
    for i in items {
        assert_eq!(i["status"], "failed", "{i:#}");
        assert!(i["error"].as_str().is_some_and(|e| !e.is_empty()), "{i:#}");
    }
    let err = stderr(&run);
    for (name, _) in &bad {
        assert!(err.contains(name.as_str()), "stderr does not name {name}");
    }
}

#[test]
fn missing_input_is_an_error_naming_it() {
    let job = Job::new(&[]);
    let missing = job.input().join("nobody here.jpg");
    let run = job.run(&[missing], &[]);
    assert_ne!(run.status.code(), Some(0));
    assert!(
        stderr(&run).contains("nobody here.jpg"),
        "stderr:\n{}",
        stderr(&run)
    );
}

/// `photobulk convert` with `PHOTOBULK_JPEG_DECODER` set to `value`, writing to `out`.
fn convert_with_decoder(job: &Job, out: &str, value: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_photobulk"))
        .current_dir(job.dir.path())
        .env("PHOTOBULK_JPEG_DECODER", value)
        .arg("convert")
        .arg(job.input())
        .arg("--out")
        .arg(job.dir.path().join(out))
        .output()
        .expect("run photobulk")
}

#[test]
fn libjpeg_decoder_switch_gives_the_same_photos() {
    // Real camera photos (one with restart markers), 4:2:0 and 4:2:2: our Huffman decoder is
    // installed for each, so the switch changes which decoder runs; the pixels must not change.
    let job = Job::new(&[
        ("hopper.jpg", "real/hopper.jpg"),
        ("astronaut.jpg", "real/astronaut.jpg"),
        ("restart.jpg", "formats/restart.jpg"),
        ("rows422.jpg", "formats/restart_rows_422.jpg"),
    ]);
    let ours = convert_with_decoder(&job, "ours", "");
    let theirs = convert_with_decoder(&job, "libjpeg", "libjpeg");
    assert_eq!(ours.status.code(), Some(0), "{}", stderr(&ours));
    assert_eq!(theirs.status.code(), Some(0), "{}", stderr(&theirs));
    let mut compared = 0;
    for target in ["ad", "hd"] {
        for account in ["hopper", "astronaut", "restart", "rows422"] {
            let name = format!("{target}/{account}.jpg");
            let a = std::fs::read(job.dir.path().join("ours").join(&name)).expect(&name);
            let b = std::fs::read(job.dir.path().join("libjpeg").join(&name)).expect(&name);
            assert!(
                a == b,
                "{name}: libjpeg's decoder gave other pixels than ours"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 8);
}

#[test]
fn unknown_jpeg_decoder_is_refused_before_any_work() {
    let job = Job::new(&[("hopper.jpg", "real/hopper.jpg")]);
    let out = convert_with_decoder(&job, "out", "turbo");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("PHOTOBULK_JPEG_DECODER must be libjpeg or photobulk, not \"turbo\""),
        "{err}"
    );
    assert!(!job.dir.path().join("out").exists(), "nothing is written");
}
