//! A libjpeg decompressor driven through its C API, for what the `mozjpeg` crate's safe
//! API does not offer: decoding only a window of the image. `jpeg_skip_scanlines` skips
//! the rows above the window (their entropy data is still read, but no IDCT, upsampling
//! or colour conversion is done for them) and `jpeg_crop_scanline` limits each row to
//! the window's columns (widened by libjpeg to iMCU boundaries), so a crop of a 12 MP
//! photo pays the inverse DCT and colour conversion only for the pixels it uses.
//!
//! Everything else is as in `mozjpeg`'s `Decompress`: the error manager is the strict
//! one from `libjpeg_errors` (fatal errors and corrupt-data warnings unwind with a
//! `String`; the caller catches the unwind), the source is the file in memory
//! (`jpeg_mem_src`), and `Drop` destroys the decompressor, which is also how a decode
//! that stops after the rows it needs is abandoned.

use mozjpeg_sys::{
    jpeg_create_decompress, jpeg_crop_scanline, jpeg_decompress_struct, jpeg_destroy_decompress,
    jpeg_error_mgr, jpeg_finish_decompress, jpeg_mem_src, jpeg_read_header, jpeg_read_scanlines,
    jpeg_save_markers, jpeg_skip_scanlines, jpeg_start_decompress, JDIMENSION, J_COLOR_SPACE,
};
use std::marker::PhantomData;
use std::os::raw::{c_int, c_ulong};

/// A decompressor reading `'a`-borrowed JPEG bytes.
pub(crate) struct Decompressor<'a> {
    // Boxed: libjpeg keeps pointers to both for the decompressor's lifetime.
    cinfo: Box<jpeg_decompress_struct>,
    _err: Box<jpeg_error_mgr>,
    /// Our Huffman decoder's state when it replaced libjpeg's (`huffman::install`);
    /// libjpeg points to it, so it lives as long as the decompressor (freed in `Drop`
    /// after `jpeg_destroy_decompress`).
    entropy: Option<crate::huffman::Installed>,
    _input: PhantomData<&'a [u8]>,
}

impl std::fmt::Debug for Decompressor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decompressor")
    }
}

impl Drop for Decompressor<'_> {
    fn drop(&mut self) {
        // SAFETY: `cinfo` was set up by `jpeg_create_decompress` in `new` (which is the
        // only constructor) and is destroyed once, here; destroying is valid in any state.
        unsafe { jpeg_destroy_decompress(&mut self.cinfo) };
        // libjpeg no longer points to it.
        self.entropy = None;
    }
}

/// The colour spaces the decoder can deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    /// RGB8, from YCbCr, RGB or greyscale sources.
    Rgb,
    /// CMYK8 as stored (YCCK is converted to CMYK), for CMYK/YCCK sources.
    Cmyk,
}

impl<'a> Decompressor<'a> {
    /// Reads the header of `input`, keeping the APPn markers `save` names (`0xE0 + n`).
    /// Unwinds (caught by the caller) on fatal errors.
    pub(crate) fn new(input: &'a [u8], save: &[u8]) -> Decompressor<'a> {
        let mut err = Box::new(crate::libjpeg_errors::strict_error_mgr());
        // SAFETY: an all-zero `jpeg_decompress_struct` is what C callers start from
        // (integers, null pointers and `None` callbacks); `jpeg_create_decompress` then
        // initialises it, with `err` (boxed, so it does not move) as its error manager.
        let mut cinfo: Box<jpeg_decompress_struct> = Box::new(unsafe { std::mem::zeroed() });
        cinfo.common.err = &mut *err;
        let mut d = Decompressor {
            cinfo,
            _err: err,
            entropy: None,
            _input: PhantomData,
        };
        // SAFETY: as above; from here on `Drop` destroys the decompressor. `input` is
        // borrowed for `'a`, as long as `d` lives, so libjpeg's source pointer stays valid.
        unsafe {
            jpeg_create_decompress(&mut *d.cinfo);
            for &m in save {
                jpeg_save_markers(&mut d.cinfo, c_int::from(m), 0xFFFF);
            }
            jpeg_mem_src(&mut d.cinfo, input.as_ptr(), input.len() as c_ulong);
            jpeg_read_header(&mut d.cinfo, 1);
        }
        d
    }

    /// Whether our Huffman decoder replaced libjpeg's (see `huffman::install`).
    #[cfg(test)]
    pub(crate) fn own_huffman(&self) -> bool {
        self.entropy.is_some()
    }

    /// Stored width and height (before any scaling).
    pub(crate) fn size(&self) -> (u32, u32) {
        (self.cinfo.image_width, self.cinfo.image_height)
    }

    /// What the decoder delivers for this file's colour space.
    pub(crate) fn out(&self) -> Out {
        match self.cinfo.jpeg_color_space {
            J_COLOR_SPACE::JCS_CMYK | J_COLOR_SPACE::JCS_YCCK => Out::Cmyk,
            _ => Out::Rgb,
        }
    }

    /// The saved marker segments: (marker code, data).
    pub(crate) fn markers(&self) -> impl Iterator<Item = (u8, &[u8])> + '_ {
        let mut m = self.cinfo.marker_list;
        std::iter::from_fn(move || {
            // SAFETY: libjpeg's saved-marker list, owned by the decompressor (which `self`
            // borrows), null-terminated, each `data` holding `data_length` bytes.
            let node = unsafe { m.as_ref() }?;
            m = node.next;
            let data = if node.data.is_null() {
                &[][..]
            } else {
                unsafe { std::slice::from_raw_parts(node.data, node.data_length as usize) }
            };
            Some((node.marker, data))
        })
    }

    /// Starts decompressing at scale `num`/8 to `out`; returns the scaled width and height.
    /// `tape`: whether our Huffman decoder also records where each MCU starts, or uses
    /// such a recording of this file to parse only the MCUs the window needs
    /// (`huffman::Tape`; where libjpeg keeps its own decoder, a recording is not made and
    /// a replay decodes the data as usual).
    pub(crate) fn start(&mut self, num: u32, out: Out, tape: crate::huffman::Tape) -> (u32, u32) {
        self.cinfo.scale_num = num;
        self.cinfo.scale_denom = 8;
        self.cinfo.out_color_space = match out {
            Out::Rgb => J_COLOR_SPACE::JCS_RGB,
            Out::Cmyk => J_COLOR_SPACE::JCS_CMYK,
        };
        // SAFETY: header read in `new`; libjpeg checks its own state.
        unsafe { jpeg_start_decompress(&mut self.cinfo) };
        // SAFETY: started just above, reading `'a`-borrowed bytes (`jpeg_mem_src`), which
        // outlive `self`; the state is kept in `self` for as long as libjpeg uses it.
        self.entropy = unsafe { crate::huffman::install(&mut self.cinfo, tape) };
        (self.cinfo.output_width, self.cinfo.output_height)
    }

    /// What a `Tape::Record` decode recorded (after its last row).
    pub(crate) fn take_recording(&mut self) -> Option<crate::huffman::Recording> {
        self.entropy.as_mut()?.take_recording()
    }

    /// Starts the DC preview (`huffman::DcPreview`) on a decompressor started at scale
    /// 1/8 whose layout it handles, before any row is read: returns the rows to skip
    /// (`skip`) so that it computes them, then `take_dc` gives their pixels.
    pub(crate) fn start_dc(&mut self) -> Option<u32> {
        if self.cinfo.output_scanline != 0 {
            return None;
        }
        self.entropy.as_mut()?.start_dc(&mut self.cinfo)
    }

    /// The DC preview's RGB rows `0..rows` (see `start_dc`), ending it.
    pub(crate) fn take_dc(&mut self, rows: u32) -> Option<Vec<u8>> {
        self.entropy.as_mut()?.take_dc(&mut self.cinfo, rows)
    }

    /// Whether MCUs are found from a recording (then `finish` must not be called: the
    /// data is not read to its end).
    pub(crate) fn replaying(&self) -> bool {
        self.entropy
            .as_ref()
            .is_some_and(crate::huffman::Installed::replaying)
    }

    /// Bytes per output pixel.
    pub(crate) fn components(&self) -> usize {
        usize::try_from(self.cinfo.output_components).unwrap_or(0)
    }

    /// Limits output rows to columns `x0..x1` (scaled); libjpeg widens them to the
    /// left to an iMCU boundary. Returns the columns it will really deliver. Must come
    /// before the first row is read or skipped.
    pub(crate) fn crop(&mut self, x0: u32, x1: u32) -> (u32, u32) {
        let (mut off, mut width): (JDIMENSION, JDIMENSION) = (x0, x1.saturating_sub(x0));
        if width == 0 || x1 > self.cinfo.output_width {
            return (0, self.cinfo.output_width);
        }
        // SAFETY: decompression started, no row read yet (libjpeg checks both and
        // errors otherwise); `off` and `width` are valid for the call.
        unsafe { jpeg_crop_scanline(&mut self.cinfo, &mut off, &mut width) };
        (off, off + width)
    }

    /// Skips `n` rows (no IDCT or colour conversion for them); returns how many.
    pub(crate) fn skip(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        // SAFETY: decompression started; libjpeg clamps `n` to the rows left.
        unsafe { jpeg_skip_scanlines(&mut self.cinfo, n) }
    }

    /// The next row, if any: its index (scaled) in the image.
    pub(crate) fn next_row(&self) -> u32 {
        self.cinfo.output_scanline
    }

    /// Reads the next `n` rows into a new buffer of `n` rows of `width x components`
    /// bytes (the width after `crop`). The buffer is not zeroed first: libjpeg writes
    /// every byte of every row it returns, and fewer rows than asked is an error.
    pub(crate) fn read(&mut self, width: u32, n: u32) -> Result<Vec<u8>, String> {
        let row = (width as usize)
            .checked_mul(self.components())
            .filter(|&r| r > 0)
            .ok_or("no pixels")?;
        if self.cinfo.output_width != width {
            return Err("row width differs from the decoder's".into());
        }
        let len = row.checked_mul(n as usize).ok_or("image too large")?;
        let mut px: Vec<u8> = Vec::new();
        px.try_reserve_exact(len)
            .map_err(|_| "out of memory for the pixels")?;
        let base: *mut u8 = px.spare_capacity_mut().as_mut_ptr().cast();
        let mut done = 0usize;
        while done < n as usize {
            // Up to 4 rows a call (libjpeg's largest `rec_outbuf_height`).
            let k = (n as usize - done).min(4);
            let mut rows: [*mut u8; 4] = [std::ptr::null_mut(); 4];
            for (i, r) in rows.iter_mut().take(k).enumerate() {
                // SAFETY: `done + i < n`, so the offset is inside the `len` reserved bytes.
                *r = unsafe { base.add((done + i) * row) };
            }
            // SAFETY: each of the `k` pointers addresses `row` bytes of `px`'s capacity
            // (`output_width x output_components`, checked above), which is exactly what
            // libjpeg writes per row; it writes at most `k` rows.
            let got = unsafe { jpeg_read_scanlines(&mut self.cinfo, rows.as_mut_ptr(), k as u32) };
            if got == 0 {
                return Err("decoder returned fewer rows than the image has".into());
            }
            done += got as usize;
        }
        // SAFETY: rows 0..n were all written by libjpeg (every byte of each row).
        unsafe { px.set_len(len) };
        Ok(px)
    }

    /// Reads to the end of the file after the last row (for files decoded whole).
    pub(crate) fn finish(&mut self) {
        // SAFETY: decompression started and every row was read or skipped.
        unsafe { jpeg_finish_decompress(&mut self.cinfo) };
    }
}
