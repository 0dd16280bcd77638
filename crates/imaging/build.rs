//! Builds `csrc/entropy_hook.c` (see `src/huffman.rs`) against the headers libjpeg was
//! built from, which mozjpeg-sys (`links = "jpeg"`) exports as `DEP_JPEG_INCLUDE`.

fn main() {
    println!("cargo:rerun-if-changed=csrc/entropy_hook.c");
    println!("cargo:rerun-if-env-changed=DEP_JPEG_INCLUDE");
    let include = std::env::var_os("DEP_JPEG_INCLUDE")
        .expect("mozjpeg-sys exports its include directories as DEP_JPEG_INCLUDE");
    let mut c = cc::Build::new();
    for dir in std::env::split_paths(&include) {
        c.include(dir);
    }
    // libjpeg's errors unwind (mozjpeg-sys `unwinding`) through `read_restart_marker`,
    // called from this file: built with unwind tables, like libjpeg itself.
    c.flag_if_supported("-fexceptions");
    c.file("csrc/entropy_hook.c")
        .warnings(true)
        .compile("photobulk_entropy_hook");
}
