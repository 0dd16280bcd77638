//! Writes the face detector's luma previews as PGM files (by hand, release build):
//!
//!     cargo run --release -p photobulk-imaging --example face_dump -- OUT_DIR FILE...
//!
//! One `OUT_DIR/<file name>.pgm` per input, exactly what the `face` crop's detector sees
//! with the default settings. `crates/seeta/examples/detect_pgm.rs` runs the detector on
//! them (the vendored detector's identity checks against rustface 0.1.7).

use photobulk_imaging::face::Settings;
use photobulk_imaging::{find_faces, Limits};
use std::path::Path;

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args.next().expect("OUT_DIR FILE...");
    std::fs::create_dir_all(&out).expect("out dir");
    for f in args {
        let name = Path::new(&f)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dest = Path::new(&out).join(format!("{name}.pgm"));
        std::env::set_var("PHOTOBULK_DUMP_PREVIEW", &dest);
        let bytes = std::fs::read(&f).expect("read");
        let faces = find_faces(&bytes, &Limits::default(), &Settings::default()).expect("faces");
        println!("{name}: {} faces", faces.len());
    }
}
