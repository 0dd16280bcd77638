//! Prints every face the detector finds in grey PGM previews (by hand, release build):
//!
//!     cargo run --release -p photobulk-seeta --example detect_pgm -- DIR [FILE_NAME...]
//!
//! With only DIR: all `*.pgm` in it (sorted) for four settings, boxes and full-precision
//! scores; compare with `detect_pgm.rustface-0.1.7.txt` (README.md). With file names:
//! those files, PhotoBulk's default settings only (for callgrind).

use photobulk_seeta::{create_detector_with_model, read_model, ImageData};
use std::path::{Path, PathBuf};

/// min_face, score threshold, pyramid scale, step.
type Variant = (u32, f64, f32, u32);

static MODEL: &[u8] = include_bytes!("../../imaging/model/seeta_fd_frontal_v1.0.bin");

fn read_pgm(p: &Path) -> (Vec<u8>, u32, u32) {
    let b = std::fs::read(p).expect("read");
    let head = String::from_utf8_lossy(&b[..b.len().min(20)]).to_string();
    let mut it = head.split_whitespace();
    assert_eq!(it.next(), Some("P5"), "{}: not a binary PGM", p.display());
    let mut num = || -> u32 { it.next().and_then(|v| v.parse().ok()).expect("PGM size") };
    let (w, h) = (num(), num());
    let n = (w * h) as usize;
    (b[b.len() - n..].to_vec(), w, h)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("DIR [FILE_NAME...]"));
    let named: Vec<PathBuf> = args.map(|n| dir.join(n)).collect();
    let (files, variants): (Vec<PathBuf>, &[Variant]) = if named.is_empty() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("DIR")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pgm"))
            .collect();
        files.sort();
        (
            files,
            &[
                (40, 2.0, 0.75, 6),
                (40, 2.0, 0.7, 6),
                (20, 0.5, 0.8, 4),
                (40, 0.1, 0.5, 3),
            ],
        )
    } else {
        (named, &[(40, 2.0, 0.75, 6)])
    };
    for &(mf, th, sc, st) in variants {
        println!("# min_face {mf} thresh {th} scale {sc} step {st}");
        let model = read_model(std::io::Cursor::new(MODEL)).expect("model");
        let mut d = create_detector_with_model(model);
        d.set_min_face_size(mf);
        d.set_score_thresh(th);
        d.set_pyramid_scale_factor(sc);
        d.set_slide_window_step(st, st);
        for f in &files {
            let (g, w, h) = read_pgm(f);
            let faces = d.detect(&ImageData::new(&g, w, h));
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
            println!("{} {}x{}: {}", name.unwrap_or_default(), w, h, faces.len());
            for fa in faces {
                let b = fa.bbox();
                println!(
                    "  {} {} {} {} {:?}",
                    b.x(),
                    b.y(),
                    b.width(),
                    b.height(),
                    fa.score()
                );
            }
        }
    }
}
