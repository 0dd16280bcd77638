//! Run `convert` (default options) over files and print one line each: the source
//! info, outputs or the error. Handy for eyeballing fixtures.
//!
//! `cargo run -p photobulk-imaging --example convert_files -- FILE... [--out DIR]`

use photobulk_imaging::{convert, Crop, Options};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let out = args.iter().position(|a| a == "--out").map(|i| {
        let d = args.get(i + 1).cloned().unwrap_or_else(|| ".".into());
        args.drain(i..(i + 2).min(args.len()));
        d
    });
    let mut opts = Options::default();
    if let Some(i) = args.iter().position(|a| a == "--top") {
        args.remove(i);
        opts.crop = Crop::Top;
    }
    for path in args {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                println!("{path}: cannot read: {e}");
                continue;
            }
        };
        match convert(&bytes, &opts) {
            Ok(c) => {
                println!(
                    "{path}: {} {}x{} o{} -> {} {:?}",
                    c.source.format,
                    c.source.width,
                    c.source.height,
                    c.source.orientation,
                    c.outputs
                        .iter()
                        .map(|o| format!(
                            "{} {}B q{} sha256:{}",
                            o.target,
                            o.bytes,
                            o.quality,
                            &o.sha256[..16]
                        ))
                        .collect::<Vec<_>>()
                        .join(", "),
                    c.warnings
                );
                if let Some(dir) = &out {
                    let stem = std::path::Path::new(&path)
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    for o in &c.outputs {
                        let _ = std::fs::write(format!("{dir}/{stem}.{}.jpg", o.target), &o.jpeg);
                    }
                }
            }
            Err(e) => println!("{path}: ERROR {e}"),
        }
    }
}
