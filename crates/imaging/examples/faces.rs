//! Measures the `face` crop's detector on real portraits (release build, by hand):
//!
//!     cargo run --release -p photobulk-imaging --example faces -- ../shared/faces [MORE_DIRS...]
//!
//! For each detector setting: faces found / missed / false against the annotated boxes of
//! `../shared/faces/README.md` (a detection matches when its centre lies in an annotated
//! box and the sizes are within 2x), and wall ms per photo of `find_faces` (decode of the
//! preview's source included) and of the whole default conversion with `face` and with
//! `center`. Files without annotations (extra folders, masked faces) are listed with what
//! was found.

use photobulk_imaging::face::Settings;
use photobulk_imaging::{convert, find_faces, Crop, FaceBox, Limits, Options};
use std::path::PathBuf;
use std::time::Instant;

fn annotated(name: &str) -> Option<Vec<(u32, u32, u32, u32)>> {
    Some(match name {
        "obama.jpg" => vec![(342, 95, 300, 300)],
        "biden.jpg" => vec![(433, 211, 314, 314)],
        "Tom_Hanks_54745.png" => vec![(14, 16, 85, 85)],
        "t1.jpg" => vec![
            (1114, 277, 118, 118),
            (448, 271, 139, 139),
            (729, 356, 114, 114),
            (561, 386, 116, 116),
        ],
        _ => return None,
    })
}

fn matches(f: &FaceBox, a: &(u32, u32, u32, u32)) -> bool {
    let (cx, cy) = (f.x + f.width / 2, f.y + f.height / 2);
    let inside = cx >= a.0 && cx <= a.0 + a.2 && cy >= a.1 && cy <= a.1 + a.3;
    let r = f64::from(f.height) / f64::from(a.3);
    inside && (0.5..=2.0).contains(&r)
}

fn main() {
    let dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for d in &dirs {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(d)
            .expect("folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("jpg" | "jpeg" | "png")
                )
            })
            .collect();
        entries.sort();
        for p in entries {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, std::fs::read(&p).expect("read")));
        }
    }
    let base = Settings::default();
    let v = |preview_side, min_face, pyramid_scale, step| Settings {
        preview_side,
        min_face,
        pyramid_scale,
        step,
        ..base
    };
    // The rows of the crate docs' table (the first six), then the speed variants of
    // 2026-12-05 (pyramid 0.7 / step 8).
    let variants = [
        ("default", base),
        (
            "176 px, min 20 (2x upsampled), 0.8, step 4",
            v(176, 20, 0.8, 4),
        ),
        ("256 px, min 40, 0.8, step 4", v(256, 40, 0.8, 4)),
        ("288 px, min 40, 0.75, step 5", v(288, 40, 0.75, 5)),
        ("320 px, min 40, 0.8, step 4", v(320, 40, 0.8, 4)),
        ("320 px, min 40, 0.75, step 6", v(320, 40, 0.75, 6)),
        (
            "320 px, min 40, 0.8, step 4, threshold 0.95",
            Settings {
                score_threshold: 0.95,
                ..v(320, 40, 0.8, 4)
            },
        ),
        (
            "320 px, min 40, 0.8, step 4, threshold 4.5",
            Settings {
                score_threshold: 4.5,
                ..v(320, 40, 0.8, 4)
            },
        ),
        ("288 px, min 40, 0.75, step 8", v(288, 40, 0.75, 8)),
        ("288 px, min 40, 0.7, step 6", v(288, 40, 0.7, 6)),
        ("288 px, min 40, 0.7, step 8", v(288, 40, 0.7, 8)),
    ];
    let limits = Limits::default();
    println!("| setting | found | missed | false | unannotated detections | ms/photo |");
    println!("|---|---|---|---|---|---|");
    for (label, s) in &variants {
        let (mut found, mut missed, mut false_, mut other) = (0, 0, 0, 0);
        let mut notes = Vec::new();
        // Warm the per-thread detector (model parse) outside the timing.
        if let Some((_, data)) = files.first() {
            let _ = find_faces(data, &limits, s);
        }
        let t = Instant::now();
        let mut results = Vec::new();
        for (_, data) in &files {
            results.push(find_faces(data, &limits, s).unwrap_or_default());
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0 / files.len().max(1) as f64;
        for ((name, _), faces) in files.iter().zip(&results) {
            match annotated(name) {
                Some(boxes) => {
                    let hit = boxes
                        .iter()
                        .filter(|a| faces.iter().any(|f| matches(f, a)))
                        .count();
                    found += hit;
                    missed += boxes.len() - hit;
                    false_ += faces
                        .iter()
                        .filter(|f| !boxes.iter().any(|a| matches(f, a)))
                        .count();
                }
                None => {
                    other += faces.len();
                    notes.push(format!("{name}: {}", faces.len()));
                }
            }
        }
        println!(
            "| {label} | {found} | {missed} | {false_} | {other} ({}) | {ms:.1} |",
            notes.join(", ")
        );
        if *label == "default" {
            for ((name, _), faces) in files.iter().zip(&results) {
                let list: Vec<String> = faces
                    .iter()
                    .map(|f| {
                        format!(
                            "({}, {}, {}, {}; {:.2})",
                            f.x, f.y, f.width, f.height, f.score
                        )
                    })
                    .collect();
                eprintln!("  {name}: {}", list.join(" "));
            }
        }
    }
    for crop in [Crop::Face, Crop::Center] {
        let opts = Options {
            crop,
            ..Options::default()
        };
        let t = Instant::now();
        for (_, data) in &files {
            let _ = convert(data, &opts);
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0 / files.len().max(1) as f64;
        println!("convert, crop {crop:?}: {ms:.1} ms/photo");
    }
}
