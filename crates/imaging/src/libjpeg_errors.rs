//! A libjpeg error manager under which damaged image data is an error, not a warning.
//!
//! libjpeg treats corrupt entropy-coded data (a bad Huffman code, a marker in the middle
//! of a scan, data that ends early) as a *warning*: it fills the rest of the image with
//! grey or garbage and reports success. mozjpeg's default error manager silences every
//! warning, and its safe API cannot read them back afterwards (`Decompress` keeps its
//! `jpeg_error_mgr` private; `DecompressBuilder::with_err` only takes one by value). So
//! this module builds its own error manager, which takes a few lines of FFI:
//!
//! - `jpeg_std_error` fills in libjpeg's defaults (message table, `format_message`);
//! - `error_exit` unwinds with libjpeg's message, exactly as mozjpeg's own does (its
//!   documented contract; the JPEG decoder catches the unwind and returns an error);
//! - `emit_message` unwinds the same way for the warnings [`is_corruption`] names, and
//!   ignores every other message (benign warnings and trace output), as mozjpeg does.
//!
//! Unwinding out of `emit_message` is no different from unwinding out of `error_exit`:
//! both are called from the same C code, which mozjpeg-sys's `unwinding` feature builds
//! with `-fexceptions`, and libjpeg allows a decompressor to be abandoned from any
//! callback (its original `longjmp` contract); `Decompress`'s `Drop` then destroys it.
//! The unwind payload is a `String`, as mozjpeg's.

use mozjpeg_sys::jpeg_error_mgr as ErrorMgr; // what `mozjpeg::Decompress::with_err` takes
use mozjpeg_sys::{
    jpeg_common_struct, jpeg_std_error, JWRN_EXTRANEOUS_DATA, JWRN_HIT_MARKER, JWRN_HUFF_BAD_CODE,
    JWRN_JPEG_EOF, JWRN_MUST_RESYNC,
};
use std::ffi::CStr;
use std::os::raw::c_int;

/// libjpeg's `JMSG_LENGTH_MAX`: the size of the buffer `format_message` writes into.
const JMSG_LENGTH_MAX: usize = 200;

/// The EOI (end-of-image) marker code, as libjpeg reports markers.
const EOI: c_int = 0xD9;

/// An error manager for decoding: fatal errors and corrupt-data warnings unwind with a
/// `String` payload that says what libjpeg found.
pub(crate) fn strict_error_mgr() -> ErrorMgr {
    // SAFETY: `jpeg_error_mgr` is a plain C struct whose fields are integers, raw pointers
    // and `Option`s of function pointers, for all of which all-zero bytes are valid
    // (0, null, `None`). `jpeg_std_error` then only writes into the struct it is given
    // (function pointers and pointers to libjpeg's static message table).
    let mut err: ErrorMgr = unsafe { std::mem::zeroed() };
    unsafe { jpeg_std_error(&mut err) };
    err.error_exit = Some(error_exit);
    err.emit_message = Some(emit_message);
    err
}

/// Whether libjpeg's warning `code` (with its first two integer parameters) means the
/// decoded pixels are not what the file's encoder wrote:
/// - `JWRN_HUFF_BAD_CODE`: "Corrupt JPEG data: bad Huffman code";
/// - `JWRN_HIT_MARKER`: "Corrupt JPEG data: premature end of data segment";
/// - `JWRN_JPEG_EOF`: "Premature end of JPEG file";
/// - `JWRN_MUST_RESYNC`: a restart marker is missing or out of order;
/// - `JWRN_EXTRANEOUS_DATA` before any marker but EOI: entropy data was skipped to find
///   a restart marker or the next scan.
///
/// Not corruption: extraneous bytes just before EOI (padding that some camera firmware
/// writes after a complete scan; every MCU was decoded), unknown JFIF/Adobe versions,
/// a bad ICC chunk, and non-sequential SOS parameters that libjpeg ignores.
fn is_corruption(code: c_int, parm: [c_int; 2]) -> bool {
    match code {
        JWRN_HUFF_BAD_CODE | JWRN_HIT_MARKER | JWRN_JPEG_EOF | JWRN_MUST_RESYNC => true,
        JWRN_EXTRANEOUS_DATA => parm[1] != EOI,
        _ => false,
    }
}

/// libjpeg's text for the message in `cinfo`'s error manager.
fn message(cinfo: &mut jpeg_common_struct) -> String {
    // SAFETY: libjpeg only calls the error manager's methods on a `cinfo` whose `err`
    // points at it (mozjpeg keeps it boxed for the decompressor's lifetime); null is
    // handled anyway.
    let Some(err) = (unsafe { cinfo.err.as_ref() }) else {
        return "unknown libjpeg error".into();
    };
    let code = err.msg_code;
    let Some(format) = err.format_message else {
        return format!("libjpeg message {code}");
    };
    // mozjpeg-sys declares the buffer as `&[u8; 80]`, but libjpeg writes up to
    // JMSG_LENGTH_MAX bytes into it: call it with a pointer to a buffer that large.
    type FormatMessage = unsafe extern "C-unwind" fn(&mut jpeg_common_struct, *mut u8);
    let mut buf = [0u8; JMSG_LENGTH_MAX];
    // SAFETY: same C function, same ABI (a reference and a raw pointer are both one
    // pointer); libjpeg's `format_message` writes at most JMSG_LENGTH_MAX bytes,
    // NUL-terminated (snprintf), into `buf`.
    unsafe {
        let format: FormatMessage = std::mem::transmute(format);
        format(cinfo, buf.as_mut_ptr());
    }
    CStr::from_bytes_until_nul(&buf)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("libjpeg message {code}"))
}

/// libjpeg's `error_exit`: must not return; unwinds, as mozjpeg's own does.
extern "C-unwind" fn error_exit(cinfo: &mut jpeg_common_struct) {
    let text = format!("libjpeg fatal error: {}", message(cinfo));
    // resume_unwind, not panic!: no panic hook output for what is an ordinary bad input.
    std::panic::resume_unwind(Box::new(text));
}

/// libjpeg's `emit_message`: level -1 is a warning, 0 and up trace output.
extern "C-unwind" fn emit_message(cinfo: &mut jpeg_common_struct, msg_level: c_int) {
    if msg_level >= 0 {
        return; // trace output
    }
    // SAFETY: as in `message`; `msg_parm` is a C union, read as its integer member (what
    // libjpeg's WARNMS2 wrote; for parameterless warnings the values are unused).
    let Some((code, parm)) = (unsafe { cinfo.err.as_mut() }).map(|err| {
        let ints = unsafe { *err.msg_parm.i() };
        (err.msg_code, [ints[0], ints[1]])
    }) else {
        return;
    };
    if is_corruption(code, parm) {
        let text = format!(
            "corrupt image data ({}), refusing to return a partly garbled image",
            message(cinfo)
        );
        std::panic::resume_unwind(Box::new(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruption_warnings() {
        assert!(is_corruption(JWRN_HUFF_BAD_CODE, [0, 0]));
        assert!(is_corruption(JWRN_HIT_MARKER, [0, 0]));
        assert!(is_corruption(JWRN_JPEG_EOF, [0, 0]));
        assert!(is_corruption(JWRN_MUST_RESYNC, [0xD3, 0xD2]));
        assert!(is_corruption(JWRN_EXTRANEOUS_DATA, [40, 0xD3]));
        assert!(!is_corruption(JWRN_EXTRANEOUS_DATA, [2, EOI]));
        assert!(!is_corruption(mozjpeg_sys::JWRN_JFIF_MAJOR, [3, 0]));
        assert!(!is_corruption(mozjpeg_sys::JWRN_ADOBE_XFORM, [7, 0]));
    }
}
