//! Builds `csrc/entropy_hook.c` (see `src/huffman.rs`) against the headers libjpeg was
//! built from, which mozjpeg-sys (`links = "jpeg"`) exports as `DEP_JPEG_INCLUDE`.
//!
//! The shim reads and writes libjpeg internals (`jpegint.h`), so it is only right for
//! the headers it was written against. This script hashes them (FNV-1a 64 over
//! `jpeglib.h`, `jpegint.h`, `jpegcomp.h`, `jmorecfg.h`, in that order) and passes the
//! hash as `PB_LIBJPEG_HEADERS`; the shim compares it with its `PB_WRITTEN_AGAINST` and
//! refuses to compile on any difference (`#error`), and this script says which value the
//! new headers have, for the developer who has re-checked the shim against them.

use std::path::PathBuf;

const HEADERS: [&str; 4] = ["jpeglib.h", "jpegint.h", "jpegcomp.h", "jmorecfg.h"];

fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn main() {
    println!("cargo:rerun-if-changed=csrc/entropy_hook.c");
    println!("cargo:rerun-if-env-changed=DEP_JPEG_INCLUDE");
    let include = std::env::var_os("DEP_JPEG_INCLUDE")
        .expect("mozjpeg-sys exports its include directories as DEP_JPEG_INCLUDE");
    let dirs: Vec<PathBuf> = std::env::split_paths(&include).collect();
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for name in HEADERS {
        let path = dirs
            .iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{name} is not in DEP_JPEG_INCLUDE ({include:?})"));
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Line endings do not change a layout: hash the text with LF only.
        let text: Vec<u8> = bytes.into_iter().filter(|&b| b != b'\r').collect();
        hash = fnv1a(hash, name.as_bytes());
        hash = fnv1a(hash, &text);
    }
    let shim = std::fs::read_to_string("csrc/entropy_hook.c").expect("csrc/entropy_hook.c");
    let written_against = shim
        .lines()
        .find_map(|l| l.trim().strip_prefix("#define PB_WRITTEN_AGAINST "))
        .map(|v| v.trim().trim_end_matches("ULL").to_string());
    let hex = format!("0x{hash:016x}");
    if written_against.as_deref() != Some(hex.as_str()) {
        println!(
            "cargo:warning=libjpeg's headers (mozjpeg-sys) are not the ones csrc/entropy_hook.c \
             was written against: re-check every libjpeg field it reads or writes against the new \
             jpeglib.h/jpegint.h, then set PB_WRITTEN_AGAINST to {hex}ULL"
        );
    }
    let mut c = cc::Build::new();
    for dir in &dirs {
        c.include(dir);
    }
    c.define("PB_LIBJPEG_HEADERS", format!("{hex}ULL").as_str());
    // libjpeg's errors unwind (mozjpeg-sys `unwinding`) through `read_restart_marker`,
    // called from this file: built with unwind tables, like libjpeg itself.
    c.flag_if_supported("-fexceptions");
    c.file("csrc/entropy_hook.c")
        .warnings(true)
        .compile("photobulk_entropy_hook");
}
