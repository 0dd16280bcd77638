//! Our own Huffman (entropy) decoder for sequential JPEG scans, standing in for
//! libjpeg-turbo's inside a running libjpeg decompressor.
//!
//! Entropy decoding is the one part of a JPEG decode that DCT scaling cannot shrink: every
//! coefficient of every block has to be parsed to find where the next one starts, even
//! for the rows and columns a crop throws away. In libjpeg-turbo it was ~41 % of all the
//! instructions `photobulk convert` spent on 12 MP photos. This decoder produces exactly
//! the same coefficients (so the same pixels: everything after it is still libjpeg) in
//! fewer instructions:
//!
//! - a 64-bit bit buffer refilled eight bytes at a time when none of them is `0xFF`
//!   (then no byte stuffing or marker can be among them), byte by byte otherwise;
//! - one table lookup that yields a whole AC step for the frequent short codes: a
//!   coefficient (run, value and the number of bits of code and magnitude together, as
//!   `stb_image` does), a run of sixteen zeros (ZRL) or the end of the block; a 10-bit lookahead table for the other codes up to 10 bits; the canonical
//!   `maxcode` walk (libjpeg's `jpeg_huff_decode`) for longer ones;
//! - a variant that parses without storing, for the MCUs `jpeg_skip_scanlines` discards.
//!
//! It is installed (see [`install`]) only where it is a drop-in: one sequential 8-bit
//! Huffman scan with every component, not started yet (checked by
//! `csrc/entropy_hook.c`, which reads libjpeg's private fields with the C compiler that
//! knows their layout). Anything else (progressive, arithmetic, multi-scan) stays with
//! libjpeg's own decoder, as does every scan while [`set_huffman_decoder`] says
//! [`HuffmanDecoder::Libjpeg`] (the binary's `PHOTOBULK_JPEG_DECODER=libjpeg`). Restart markers (common in camera files) are handled: at each
//! restart the decoder reads up to the marker and lets libjpeg check that it is the
//! expected `RSTn` (`read_restart_marker`), then starts afresh after it.
//!
//! Damaged data is reported as libjpeg's decoder reports it, through the decompressor's
//! error manager (whose strict form, `libjpeg_errors`, makes it an error): a code that
//! is in no table is `JWRN_HUFF_BAD_CODE`; needing bits past a marker is
//! `JWRN_HIT_MARKER`; data that ends without a marker goes to the source manager's
//! `fill_input_buffer` (`JWRN_JPEG_EOF`). A marker met while reading ahead is left for
//! libjpeg (`unread_marker`), exactly as its decoder does. One difference: libjpeg-turbo's
//! fast path silently decodes a code that is in no table as symbol 0; ours always
//! reports it.

use mozjpeg_sys::{
    boolean, jpeg_decompress_struct, jpeg_source_mgr, JBLOCKROW, JHUFF_TBL, JWRN_EXTRANEOUS_DATA,
    JWRN_HIT_MARKER, JWRN_HUFF_BAD_CODE, JWRN_JPEG_EOF,
};
use std::os::raw::{c_int, c_uint, c_void};

/// Bits of lookahead in the fast tables.
const FAST: u32 = 10;

/// Where a coefficient goes, by the zigzag position *after* it (the decoder's `k` once
/// the coefficient is taken): `AFTER[k]` is the natural (row-major) index of zigzag
/// position `k - 1`. Positions past the block's end give 63, like libjpeg's padded
/// `jpeg_natural_order`: a corrupt run past the end lands on 63, never out of the
/// block. `k` never exceeds 127 (it is below 64 before each step and a step is at most
/// 64), so 128 entries cover every `k`; every entry is below 64 (checked below).
const AFTER: [u8; 128] = {
    const ZZ: [u8; 64] = [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
        20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ];
    let mut t = [63u8; 128];
    let mut k = 1;
    while k <= 64 {
        t[k] = ZZ[k - 1];
        k += 1;
    }
    t[0] = 0;
    let mut i = 0;
    while i < 128 {
        assert!(t[i] < 64);
        i += 1;
    }
    t
};

#[cfg(test)]
thread_local! {
    /// Tests: leave libjpeg's own decoder in place (the reference ours is compared with),
    /// on this thread only, so tests that flip it do not change what others decode with.
    pub(crate) static LIBJPEG_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
thread_local! {
    /// Tests: DC previews started on this thread (`Installed::start_dc`).
    pub(crate) static DC_PREVIEWS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Which Huffman decoder JPEG scans are decoded with, process-wide.
///
/// Both give the same coefficients, so the same pixels (tests compare them on every
/// layout, scale, window, restart interval and on damaged data). [`HuffmanDecoder::Libjpeg`]
/// is the way back should ours ever misbehave in the field: the binary sets it from
/// `PHOTOBULK_JPEG_DECODER=libjpeg`, without a rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HuffmanDecoder {
    /// Ours (this module), where it is a drop-in; libjpeg's own elsewhere. The default.
    #[default]
    Photobulk,
    /// libjpeg-turbo's own decoder for every scan.
    Libjpeg,
}

impl HuffmanDecoder {
    /// `photobulk` or `libjpeg` (the names `PHOTOBULK_JPEG_DECODER` takes).
    pub fn as_str(self) -> &'static str {
        match self {
            HuffmanDecoder::Photobulk => "photobulk",
            HuffmanDecoder::Libjpeg => "libjpeg",
        }
    }

    /// Parses [`HuffmanDecoder::as_str`]'s names, case-insensitively.
    pub fn parse(s: &str) -> Option<HuffmanDecoder> {
        match s.trim().to_ascii_lowercase().as_str() {
            "photobulk" => Some(HuffmanDecoder::Photobulk),
            "libjpeg" => Some(HuffmanDecoder::Libjpeg),
            _ => None,
        }
    }
}

static USE_LIBJPEG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Chooses the Huffman decoder for every later decode in this process.
pub fn set_huffman_decoder(d: HuffmanDecoder) {
    USE_LIBJPEG.store(
        d == HuffmanDecoder::Libjpeg,
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// The Huffman decoder in use (see [`set_huffman_decoder`]).
pub fn huffman_decoder() -> HuffmanDecoder {
    if USE_LIBJPEG.load(std::sync::atomic::Ordering::Relaxed) {
        HuffmanDecoder::Libjpeg
    } else {
        HuffmanDecoder::Photobulk
    }
}

/// `struct pb_scan` of `csrc/entropy_hook.c`.
#[repr(C)]
struct ScanC {
    blocks_in_mcu: c_int,
    block_comp: [c_int; 10],
    block_dc_tbl: [c_int; 10],
    block_ac_tbl: [c_int; 10],
    block_ac_needed: [c_int; 10],
    restart_interval: c_uint,
    dc_tables: [*const JHUFF_TBL; 4],
    ac_tables: [*const JHUFF_TBL; 4],
}

type DecodeMcu =
    unsafe extern "C-unwind" fn(*mut jpeg_decompress_struct, *mut JBLOCKROW) -> boolean;

extern "C-unwind" {
    fn pb_entropy_scan(cinfo: *mut jpeg_decompress_struct, out: *mut ScanC) -> c_int;
    fn pb_entropy_set_decode_mcu(cinfo: *mut jpeg_decompress_struct, f: DecodeMcu);
    fn pb_entropy_set_unread_marker(cinfo: *mut jpeg_decompress_struct, marker: c_int);
    fn pb_entropy_read_restart_marker(cinfo: *mut jpeg_decompress_struct) -> boolean;
    fn pb_entropy_columns(
        cinfo: *mut jpeg_decompress_struct,
        per_row: *mut c_uint,
        first: *mut c_uint,
        last: *mut c_uint,
    );
    fn pb_dc_layout(cinfo: *mut jpeg_decompress_struct, out: *mut DcLayoutC) -> c_int;
    fn pb_dc_color_row(
        cinfo: *mut jpeg_decompress_struct,
        y: *const u8,
        cb: *const u8,
        cr: *const u8,
        rgb: *mut u8,
    );
}

/// `struct pb_dc` of `csrc/entropy_hook.c`.
#[repr(C)]
struct DcLayoutC {
    mcus_per_row: c_uint,
    mcu_rows: c_uint,
    output_width: c_uint,
    output_height: c_uint,
    quant: [[c_int; 64]; 3],
}

/// One Huffman table, ready for decoding.
struct Table {
    /// For AC tables: a whole step per `FAST`-bit prefix, when its code (and magnitude)
    /// fit: `value << 16 | step << 8 | bits`, where `step` is how far the zigzag position
    /// moves (run + 1 for a coefficient, 16 for ZRL, 64 for EOB, which ends the block),
    /// and `bits` what code and magnitude take together; 0 when they do not fit.
    fast_ac: [i32; 1 << FAST],
    /// Code length `<< 8 | symbol` per `FAST`-bit prefix for codes up to `FAST` bits; 0
    /// for longer codes.
    lookup: [u16; 1 << FAST],
    /// libjpeg's `maxcode` (largest code of each length, -1 if none; `[17]` a sentinel)
    /// and `valoffset`, for codes longer than `FAST`.
    maxcode: [i32; 18],
    valoffset: [i32; 17],
    huffval: [u8; 256],
}

impl Table {
    /// A table with no codes (every lookup misses, every long code is bad).
    fn empty() -> Table {
        Table {
            fast_ac: [0; 1 << FAST],
            lookup: [0; 1 << FAST],
            maxcode: [-1; 18],
            valoffset: [0; 17],
            huffval: [0; 256],
        }
    }

    /// `jpeg_make_d_derived_tbl`, without its checks (libjpeg ran them on this very
    /// table when the scan started), but never out of bounds on any input: `None` for a
    /// table libjpeg would have refused.
    fn new(t: &JHUFF_TBL, ac: bool) -> Option<Table> {
        let mut huffsize = [0u8; 257];
        let mut p = 0usize;
        for l in 1..=16u8 {
            let n = usize::from(t.bits[usize::from(l)]);
            if p + n > 256 {
                return None;
            }
            huffsize[p..p + n].fill(l);
            p += n;
        }
        let count = p;
        // DC symbols are magnitude categories: libjpeg refuses tables with any above 15.
        if !ac && t.huffval[..count].iter().any(|&s| s > 15) {
            return None;
        }
        let mut huffcode = [0u32; 257];
        let (mut code, mut si, mut p) = (0u32, u32::from(huffsize[0]), 0usize);
        while huffsize[p] != 0 {
            while u32::from(huffsize[p]) == si {
                huffcode[p] = code;
                code += 1;
                p += 1;
            }
            if code >= 1 << si {
                return None;
            }
            code <<= 1;
            si += 1;
        }
        let mut tb = Table {
            huffval: t.huffval,
            ..Table::empty()
        };
        let mut p = 0usize;
        for l in 1..=16usize {
            let n = usize::from(t.bits[l]);
            if n > 0 {
                tb.valoffset[l] = p as i32 - huffcode[p] as i32;
                p += n;
                tb.maxcode[l] = huffcode[p - 1] as i32;
            }
        }
        tb.maxcode[17] = 0x000F_FFFF;
        for i in 0..count {
            let len = u32::from(huffsize[i]);
            if len > FAST {
                continue;
            }
            let sym = t.huffval[i];
            let shift = FAST - len;
            let first = (huffcode[i] << shift) as usize;
            for c in first..first + (1 << shift) {
                tb.lookup[c] = (len as u16) << 8 | u16::from(sym);
                if !ac {
                    continue;
                }
                let (run, size) = (u32::from(sym >> 4), u32::from(sym & 15));
                tb.fast_ac[c] = if size == 0 {
                    // ZRL (sixteen zeros) or, for any other run, end of block, as
                    // libjpeg reads them. The zero this step stores lands on a position
                    // that is zero anyway (inside the run, or 63 past the block's end).
                    let step: i32 = if run == 15 { 16 } else { 64 };
                    step << 8 | len as i32
                } else if len + size <= FAST {
                    let bits = (c as u32 >> (FAST - len - size)) & ((1 << size) - 1);
                    let value = extend(bits as i32, size);
                    value << 16 | ((run + 1) << 8) as i32 | (len + size) as i32
                } else {
                    0
                };
            }
        }
        Some(tb)
    }
}

/// JPEG's magnitude category decoding (`HUFF_EXTEND`): `bits` are the `size` bits that
/// follow a symbol.
#[inline(always)]
fn extend(bits: i32, size: u32) -> i32 {
    if bits < 1 << (size - 1) {
        bits + (-1 << size) + 1
    } else {
        bits
    }
}

/// Per block of the MCU: which tables, which DC predictor, whether AC values are used.
#[derive(Clone, Copy, Default)]
struct Block {
    dc: u8,
    ac: u8,
    comp: u8,
    ac_needed: bool,
}

/// The decoder's state between MCUs (libjpeg keeps a pointer to it in `client_data`).
pub(crate) struct Entropy {
    /// The scan's tables (at most 4 DC and 4 AC), indexed `& 7` without bounds checks.
    tables: Box<[Table; 8]>,
    blocks: [Block; 10],
    nblocks: usize,
    last_dc: [i32; 4],
    /// MCUs between restart markers (0: none), and MCUs left before the next one.
    restart_interval: u32,
    restarts_to_go: u32,
    reader: Reader,
    /// Decode only, or also record where each MCU starts (for a later decode of the same
    /// file), or use such a recording to parse only the MCUs libjpeg uses.
    tape: Tape,
    /// While set, the MCUs libjpeg skips (null `mcu`) are decoded into it (1/8 scale).
    dc: Option<Box<DcPreview>>,
}

/// Where each MCU of one scan starts: the decoder's whole state before it (bit reader,
/// DC predictors, restart count), taken while the scan is decoded once, so that a
/// second decode of the same file (another DCT scale, another window) can parse only
/// the MCUs it uses ([`Tape::Replay`]): it jumps to the first MCU of the window in each
/// row and skips the rest. 80 bytes an MCU (3.8 MB for a 12 MP 4:2:0 photo).
#[derive(Clone, Default)]
pub(crate) struct Recording {
    marks: Vec<Mark>,
}

/// The decoder's state before one MCU (the reader whole: after a restart marker it
/// reads from a new start).
#[derive(Clone, Copy)]
struct Mark {
    reader: Reader,
    last_dc: [i32; 4],
    restarts_to_go: u32,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recording({} MCUs)", self.marks.len())
    }
}

impl Recording {
    /// An empty recording with room for `mcus` MCUs.
    pub(crate) fn with_capacity(mcus: usize) -> Recording {
        Recording {
            marks: Vec::with_capacity(mcus),
        }
    }
}

/// What [`install`] does besides decoding.
#[derive(Debug, Default)]
pub(crate) enum Tape {
    /// Decode the data into libjpeg's blocks (and nothing else).
    #[default]
    Off,
    /// Decode, and record where every MCU starts (all of the scan: the decode must
    /// reach every MCU, e.g. no rows dropped at the end).
    Record(Recording),
    /// Decode the same file's same scan again, parsing only the MCUs libjpeg uses:
    /// skipped rows (`mcu` null) and columns outside its crop are not parsed, and the
    /// reader jumps to the recorded start of each MCU that follows a gap. `next` is the
    /// index of the next MCU libjpeg asks for, `at` the one the reader stands before,
    /// `cols` (MCUs per row, first and last column used) read from libjpeg once.
    Replay {
        rec: Recording,
        next: usize,
        at: usize,
        cols: Option<(usize, usize, usize)>,
    },
}

/// A 1/8-scale decode of a YCbCr 4:2:0 picture made by this decoder instead of
/// libjpeg's per-MCU machinery: libjpeg skips the rows (`jpeg_skip_scanlines`, which
/// calls the decoder with a null MCU) and each such MCU is decoded here into three
/// planes: luma by libjpeg's 1x1 IDCT (`jpeg_idct_1x1`: the dequantised DC, descaled,
/// range-limited), chroma by its 2x2 IDCT as libjpeg-turbo's SSE2 code computes it
/// (`jsimd_idct_2x2_sse2`: 16-bit dequantisation, 32-bit sums, saturating packs), at
/// the output size (no upsampling at this scale); then libjpeg's own colour converter
/// makes the RGB rows. The same pixels as libjpeg's decode (tests
/// `dc_preview_matches_libjpeg`), without its per-MCU and per-block calls, zeroing
/// and buffering: on a 12 MP bench photo libjpeg's share of the whole-picture 1/8
/// decode was ~32 M instructions besides the ~80 M of Huffman parsing; this costs ~14 M
/// (the decode 120.7 M → 102.9 M, callgrind, `examples/face_cost.rs`).
pub(crate) struct DcPreview {
    per_row: usize,
    /// Bytes per plane row (a multiple of 64, past the last MCU's pixels).
    stride: usize,
    /// Rows the preview computes (libjpeg decodes the rest).
    plane_rows: usize,
    width: c_uint,
    /// Luma DC quantiser; chroma tables (natural order).
    qy: i32,
    qc: [[i16; 64]; 2],
    /// Y, Cb, Cr, `stride` x (`plane_rows` + 1) each (one spare row of padding).
    planes: [Vec<u8>; 3],
    /// MCUs decoded so far, and the next one's row and column.
    next: usize,
    row: usize,
    col: usize,
    /// The MCU's blocks: zero between MCUs except the luma DCs.
    blocks: [[i16; 64]; 6],
}

/// libjpeg's post-IDCT range limit (`IDCT_range_limit`, indexed `& RANGE_MASK`): the
/// value's low 10 bits taken as signed, clamped to -128..=127, plus 128.
#[inline(always)]
fn range_limit(v: i32) -> u8 {
    let s = ((v << 22) >> 22).clamp(-128, 127);
    (s + 128) as u8
}

/// `jpeg_idct_1x1`: `dc` dequantised by `q`, descaled by 3 bits, range-limited.
#[inline(always)]
fn idct_1x1(dc: i16, q: i32) -> u8 {
    let v = i32::from(dc) * q;
    range_limit((v + 4) >> 3)
}

/// `jsimd_idct_2x2_sse2` (libjpeg-turbo, x86-64) written out in scalar code: rows
/// `[out[0], out[1]]`. The reference for [`idct_2x2`] (test `idct_2x2_is_libjpegs`).
#[cfg(test)]
fn idct_2x2_scalar(c: &[i16; 64], q: &[i16; 64]) -> [[u8; 2]; 2] {
    const F362: i32 = 29692;
    const F127: i32 = 10426;
    const F085: i32 = 6967;
    const F072: i32 = 5906;
    // pmullw: the low 16 bits of the product.
    let d = |i: usize| i32::from(c[i].wrapping_mul(q[i]));
    let odd = |a: i32, b: i32, e: i32, f: i32| {
        (a.wrapping_mul(F362))
            .wrapping_add(b.wrapping_mul(-F127))
            .wrapping_add(e.wrapping_mul(F085).wrapping_add(f.wrapping_mul(-F072)))
    };
    // Pass 1, columns 0, 1, 3, 5, 7: A (top half) and B (bottom), descaled by 13.
    let mut a = [0i32; 5];
    let mut b = [0i32; 5];
    for (j, col) in [0usize, 1, 3, 5, 7].into_iter().enumerate() {
        let tmp0 = odd(d(8 + col), d(24 + col), d(40 + col), d(56 + col));
        let tmp10 = d(col).wrapping_shl(15);
        a[j] = tmp10.wrapping_add(tmp0).wrapping_add(1 << 12) >> 13;
        b[j] = tmp10.wrapping_sub(tmp0).wrapping_add(1 << 12) >> 13;
    }
    // Pass 2: packssdw of the odd terms, descaled by 20, packed with saturation.
    let sat = |v: i32| v.clamp(-32768, 32767);
    let row = |r: &[i32; 5]| -> [u8; 2] {
        let tmp0 = odd(sat(r[1]), sat(r[2]), sat(r[3]), sat(r[4]));
        let tmp10 = r[0].wrapping_shl(15);
        let out = |v: i32| (((v.wrapping_add(1 << 19)) >> 20).clamp(-128, 127) + 128) as u8;
        [out(tmp10.wrapping_add(tmp0)), out(tmp10.wrapping_sub(tmp0))]
    };
    [row(&a), row(&b)]
}

#[cfg(all(test, target_arch = "x86_64"))]
#[test]
fn idct_2x2_is_libjpegs() {
    // The intrinsics against the scalar reading of the same assembly, on random blocks:
    // small values, photo-like ones and the extremes (16-bit wrap, saturating packs).
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..20_000 {
        let span: i64 = match round % 4 {
            0 => 8,
            1 => 300,
            2 => 2048,
            _ => 65_536,
        };
        let pick = |v: u64| ((v as i64).rem_euclid(span) - span / 2) as i16;
        let c: [i16; 64] = std::array::from_fn(|i| {
            let v = next();
            if i > 0 && v % 3 == 0 {
                0
            } else {
                pick(v >> 8)
            }
        });
        let q: [i16; 64] = std::array::from_fn(|_| {
            let v = next();
            if round % 4 == 3 {
                v as i16
            } else {
                (v % 255 + 1) as i16
            }
        });
        assert_eq!(idct_2x2(&c, &q), idct_2x2_scalar(&c, &q), "{c:?} {q:?}");
    }
}

/// `jsimd_idct_2x2_sse2` (libjpeg-turbo's `simd/x86_64/jidctred-sse2.asm`), the same
/// instructions as intrinsics: rows `[out[0], out[1]]` of the 2x2 output.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn idct_2x2(c: &[i16; 64], q: &[i16; 64]) -> [[u8; 2]; 2] {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86-64 (every intrinsic below is SSE2); the loads read
    // 8 coefficients (16 bytes) from row `row < 8` of a 64-coefficient block.
    unsafe {
        let ld =
            |p: &[i16; 64], row: usize| _mm_loadu_si128(p.as_ptr().add(row * 8).cast::<__m128i>());
        let pair = |lo: i16, hi: i16| {
            _mm_set1_epi32(((i32::from(hi) << 16) as u32 | u32::from(lo as u16)) as i32)
        };
        let f362_mf127 = pair(29692, -10426);
        let f085_mf072 = pair(6967, -5906);
        // Pass 1: columns. Odd part.
        let x0 = _mm_mullo_epi16(ld(c, 1), ld(q, 1));
        let x1 = _mm_mullo_epi16(ld(c, 3), ld(q, 3));
        let x2 = _mm_mullo_epi16(ld(c, 5), ld(q, 5));
        let x3 = _mm_mullo_epi16(ld(c, 7), ld(q, 7));
        let hi = _mm_slli_epi32(_mm_cmpeq_epi32(x0, x0), 16);
        let x4 = _mm_madd_epi16(_mm_unpacklo_epi16(x0, x1), f362_mf127);
        let x5 = _mm_madd_epi16(_mm_unpacklo_epi16(x2, x3), f085_mf072);
        let x0 = _mm_or_si128(_mm_srli_epi32(x0, 16), _mm_and_si128(x1, hi));
        let x2 = _mm_or_si128(_mm_srli_epi32(x2, 16), _mm_and_si128(x3, hi));
        let x0 = _mm_madd_epi16(x0, f362_mf127);
        let x2 = _mm_madd_epi16(x2, f085_mf072);
        let x4 = _mm_add_epi32(x4, x5); // tmp0[col0 col1 -- col3]
        let x0 = _mm_add_epi32(x0, x2); // tmp0[col1 col3 col5 col7]

        // Even part.
        let x6 = _mm_mullo_epi16(ld(c, 0), ld(q, 0));
        let x1 = _mm_srai_epi32(_mm_and_si128(x6, hi), 1); // tmp10[col1 col3 col5 col7]
        let x6 = _mm_srai_epi32(_mm_slli_epi32(x6, 16), 1); // tmp10[col0 ...]
        let a0 = _mm_add_epi32(x6, x4);
        let a = _mm_add_epi32(x1, x0); // A1 A3 A5 A7
        let b0 = _mm_sub_epi32(x6, x4);
        let b = _mm_sub_epi32(x1, x0); // B1 B3 B5 B7
        let p1 = _mm_set1_epi32(1 << 12);
        let x6 = _mm_srai_epi32(_mm_add_epi32(_mm_unpacklo_epi32(a0, b0), p1), 13); // A0 B0
        let x1 = _mm_srai_epi32(_mm_add_epi32(_mm_unpacklo_epi64(a, b), p1), 13); // A1 A3 B1 B3
        let x7 = _mm_srai_epi32(_mm_add_epi32(_mm_unpackhi_epi64(a, b), p1), 13); // A5 A7 B5 B7

        // Pass 2: rows.
        let x1 = _mm_madd_epi16(_mm_packs_epi32(x1, x1), f362_mf127);
        let x7 = _mm_madd_epi16(_mm_packs_epi32(x7, x7), f085_mf072);
        let t0 = _mm_add_epi32(x1, x7); // tmp0[row0 row1 ...]
        let t10 = _mm_slli_epi32(x6, 15);
        let cc = _mm_add_epi32(t10, t0);
        let dd = _mm_sub_epi32(t10, t0);
        let x6 = _mm_unpacklo_epi32(cc, dd); // C0 D0 C1 D1
        let x6 = _mm_srai_epi32(_mm_add_epi32(x6, _mm_set1_epi32(1 << 19)), 20);
        let x6 = _mm_packs_epi32(x6, x6);
        let x6 = _mm_packs_epi16(x6, x6);
        let x6 = _mm_add_epi8(x6, _mm_set1_epi8(-128));
        let w = (_mm_cvtsi128_si32(x6) as u32).to_le_bytes();
        [[w[0], w[1]], [w[2], w[3]]]
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn idct_2x2(_c: &[i16; 64], _q: &[i16; 64]) -> [[u8; 2]; 2] {
    // Never called: `start_dc` runs only on x86-64.
    [[0; 2]; 2]
}

impl DcPreview {
    /// The pixels of the next MCU, from its six blocks (Y00, Y01, Y10, Y11, Cb, Cr),
    /// leaving the chroma blocks zero again.
    #[inline(always)]
    fn put(&mut self) {
        // Position by counters (no division per MCU).
        let (y, x) = (2 * self.row, 2 * self.col);
        self.next += 1;
        self.col += 1;
        if self.col == self.per_row {
            self.col = 0;
            self.row += 1;
        }
        let blocks = &mut self.blocks;
        if y >= self.plane_rows {
            // Below the rows the preview computes (libjpeg decodes those).
            blocks[4] = [0; 64];
            blocks[5] = [0; 64];
            return;
        }
        let s = self.stride;
        let at = y * s + x;
        let [py, pcb, pcr] = &mut self.planes;
        let qy = self.qy;
        if let Some(t) = py.get_mut(at..at + 2) {
            t[0] = idct_1x1(blocks[0][0], qy);
            t[1] = idct_1x1(blocks[1][0], qy);
        }
        if let Some(t) = py.get_mut(at + s..at + s + 2) {
            t[0] = idct_1x1(blocks[2][0], qy);
            t[1] = idct_1x1(blocks[3][0], qy);
        }
        let (_, chroma) = blocks.split_at_mut(4);
        for (plane, (blk, q)) in [pcb, pcr].into_iter().zip(chroma.iter_mut().zip(&self.qc)) {
            let v = idct_2x2(blk, q);
            *blk = [0; 64];
            if let Some(t) = plane.get_mut(at..at + 2) {
                t.copy_from_slice(&v[0]);
            }
            if let Some(t) = plane.get_mut(at + s..at + s + 2) {
                t.copy_from_slice(&v[1]);
            }
        }
    }

    /// RGB8 of the first `rows` rows (`width` pixels each), by libjpeg's colour
    /// converter; `None` unless every MCU of those rows was decoded.
    fn rgb(&self, cinfo: &mut jpeg_decompress_struct, rows: usize) -> Option<Vec<u8>> {
        if rows > self.plane_rows || self.next < rows.div_ceil(2) * self.per_row {
            return None;
        }
        let w = self.width as usize;
        if w + 64 > self.stride || cinfo.output_width != self.width {
            return None;
        }
        let mut out = vec![0u8; rows * w * 3];
        for (y, line) in out.chunks_exact_mut(w * 3).enumerate() {
            let at = y * self.stride;
            // SAFETY: each plane has `stride` readable bytes from `at` (row `y` of
            // `plane_rows` + 1), more than the `width` samples plus the SIMD reads past
            // them; `line` holds `width x 3` bytes, what the converter writes for one
            // row of `output_width` (checked equal to `width`) RGB pixels.
            unsafe {
                pb_dc_color_row(
                    cinfo,
                    self.planes[0].as_ptr().add(at),
                    self.planes[1].as_ptr().add(at),
                    self.planes[2].as_ptr().add(at),
                    line.as_mut_ptr(),
                );
            }
        }
        Some(out)
    }
}

/// The bit reader's hot part, copied into a local for each MCU so that the decoding
/// loop keeps it in registers (written back around the slow paths).
#[derive(Clone, Copy)]
struct Hot {
    /// Bit buffer, most significant bit first: `nbits` valid bits at the top. Bits below
    /// them are either zero or the next bytes of the data (a fast refill reads eight
    /// bytes and keeps only whole bytes; the rest it reads again next time).
    acc: u64,
    nbits: u32,
    /// Next byte of `data` to read.
    pos: usize,
}

/// The bit reader.
#[derive(Clone, Copy)]
struct Reader {
    hot: Hot,
    /// Bytes of `data` that may be read: up to the end of the buffer, or up to the
    /// position of the marker found (no byte after a marker is ever read).
    limit: usize,
    /// The entropy-coded data: libjpeg's source buffer from where the scan starts.
    data: *const u8,
    /// `data`'s length (to give libjpeg back its `bytes_in_buffer`).
    len: usize,
    /// Zero bits appended after a marker (at the bottom of `nbits`): using any of them is
    /// reading past the end of the segment.
    pad: u32,
    /// The code of the marker that ended the data, 0 until one is found (no marker
    /// code is 0: 0xFF 0x00 is a stuffed byte).
    marker: u8,
}

/// Replaces libjpeg's entropy decoder in `cinfo` with ours if the scan is one we decode
/// (see the module docs). Call right after `jpeg_start_decompress`. The returned state
/// must outlive every later call into `cinfo` (the decompressor points to it); `None`
/// when libjpeg keeps decoding by itself.
///
/// # Safety
/// `cinfo` is a started decompressor reading from a memory source whose buffer stays
/// valid for as long as the returned state is in use.
pub(crate) unsafe fn install(cinfo: &mut jpeg_decompress_struct, tape: Tape) -> Option<Installed> {
    #[cfg(test)]
    if LIBJPEG_ONLY.with(std::cell::Cell::get) {
        return None;
    }
    if huffman_decoder() == HuffmanDecoder::Libjpeg {
        return None;
    }
    // SAFETY: `ScanC` is plain data (integers and raw pointers), all-zero is valid.
    let mut scan: ScanC = unsafe { std::mem::zeroed() };
    // SAFETY: `cinfo` is a live decompressor (caller's contract); the C side only reads it.
    if unsafe { pb_entropy_scan(cinfo, &mut scan) } == 0 {
        return None;
    }
    let nblocks = usize::try_from(scan.blocks_in_mcu)
        .ok()
        .filter(|n| (1..=10).contains(n))?;
    let mut tables: Box<[Table; 8]> = Box::new(std::array::from_fn(|_| Table::empty()));
    let mut used = 0usize;
    let mut index = [[None::<u8>; 4]; 2];
    let mut table = |ac: bool, n: c_int| -> Option<u8> {
        let n = usize::try_from(n).ok().filter(|&n| n < 4)?;
        if let Some(i) = index[usize::from(ac)][n] {
            return Some(i);
        }
        let ptr = if ac {
            scan.ac_tables[n]
        } else {
            scan.dc_tables[n]
        };
        // SAFETY: libjpeg's table for this scan (it decoded with it when the scan
        // started), owned by the decompressor, which outlives this call.
        let t = unsafe { ptr.as_ref() }?;
        // At most 4 DC and 4 AC tables (`n < 4`, each made once): `used < 8`.
        tables[used] = Table::new(t, ac)?;
        let i = u8::try_from(used).ok()?;
        used += 1;
        index[usize::from(ac)][n] = Some(i);
        Some(i)
    };
    let mut blocks = [Block::default(); 10];
    for (b, blk) in blocks.iter_mut().enumerate().take(nblocks) {
        *blk = Block {
            dc: table(false, scan.block_dc_tbl[b])?,
            ac: table(true, scan.block_ac_tbl[b])?,
            comp: u8::try_from(scan.block_comp[b]).ok().filter(|&c| c < 4)?,
            ac_needed: scan.block_ac_needed[b] != 0,
        };
    }
    // SAFETY: the source manager is set (`jpeg_mem_src`), and its buffer holds the rest
    // of the file from the scan's first byte (caller's contract).
    let src = unsafe { cinfo.src.as_ref() }?;
    if src.next_input_byte.is_null() {
        return None;
    }
    let st = Installed::new(Entropy {
        tables,
        blocks,
        nblocks,
        last_dc: [0; 4],
        restart_interval: scan.restart_interval,
        restarts_to_go: scan.restart_interval,
        reader: Reader::at(src),
        tape,
        dc: None,
    });
    cinfo.common.client_data = st.0.as_ptr().cast::<c_void>();
    // SAFETY: `decode_mcu` has the C signature libjpeg calls, and finds its state through
    // `client_data`, set just above.
    unsafe { pb_entropy_set_decode_mcu(cinfo, decode_mcu) };
    Some(st)
}

/// The decoder state libjpeg points to (`client_data`), owned through a raw pointer
/// from [`Box::into_raw`]: no `Box` (whose moves and reborrows would invalidate the
/// pointer C holds) exists while libjpeg uses it. Freed on drop, which its owner does
/// only after the decompressor is destroyed or will not decode again.
pub(crate) struct Installed(std::ptr::NonNull<Entropy>);

impl Installed {
    fn new(e: Entropy) -> Installed {
        // SAFETY: `Box::into_raw` never returns null.
        Installed(unsafe { std::ptr::NonNull::new_unchecked(Box::into_raw(Box::new(e))) })
    }

    /// The recording made by a [`Tape::Record`] decode (call after the last MCU: the
    /// decompressor must not decode again).
    pub(crate) fn take_recording(&mut self) -> Option<Recording> {
        // SAFETY: made by `Box::into_raw` in `new` and not freed; the caller's contract:
        // libjpeg is not inside `decode_mcu` (single-threaded, no decode running).
        let e = unsafe { &mut *self.0.as_ptr() };
        match std::mem::take(&mut e.tape) {
            Tape::Record(r) => Some(r),
            other => {
                e.tape = other;
                None
            }
        }
    }

    /// Starts the DC preview when the started, unread decompressor `cinfo` (at scale
    /// 1/8) has the one layout it handles: from now on the MCUs libjpeg skips are
    /// decoded into it. Returns how many rows (from the top) to skip so that the
    /// preview computes them: all but the last iMCU row (libjpeg decodes that one, and
    /// then reads to the end of the file as usual). `None`: not this layout.
    pub(crate) fn start_dc(&mut self, cinfo: &mut jpeg_decompress_struct) -> Option<u32> {
        if !cfg!(target_arch = "x86_64") {
            // The 2x2 IDCT below reproduces libjpeg-turbo's x86-64 SIMD one.
            return None;
        }
        // SAFETY: all-zero is a valid `DcLayoutC` (integers).
        let mut l: DcLayoutC = unsafe { std::mem::zeroed() };
        // SAFETY: `cinfo` is the started decompressor this decoder is installed in; the
        // C side only reads it.
        if unsafe { pb_dc_layout(cinfo, &mut l) } == 0 {
            return None;
        }
        let rows = (l.output_height.saturating_sub(1) / 2) * 2;
        if rows == 0 {
            return None;
        }
        let per_row = l.mcus_per_row as usize;
        // Room for every MCU's 2x2 pixels, and for the SIMD colour converter's
        // 32-byte reads past the last column.
        let stride = (2 * per_row).div_ceil(64) * 64 + 64;
        let plane_rows = rows as usize;
        let q16 = |c: usize| -> [i16; 64] { std::array::from_fn(|i| l.quant[c][i] as i16) };
        let dc = DcPreview {
            per_row,
            stride,
            plane_rows,
            width: l.output_width,
            qy: l.quant[0][0],
            qc: [q16(1), q16(2)],
            planes: std::array::from_fn(|_| vec![0u8; stride * (plane_rows + 1)]),
            next: 0,
            row: 0,
            col: 0,
            blocks: [[0; 64]; 6],
        };
        // SAFETY: as in `take_recording`.
        let e = unsafe { &mut *self.0.as_ptr() };
        if matches!(e.tape, Tape::Replay { .. }) {
            return None;
        }
        e.dc = Some(Box::new(dc));
        #[cfg(test)]
        DC_PREVIEWS.with(|n| n.set(n.get() + 1));
        Some(rows)
    }

    /// Ends the DC preview (after the rows `start_dc` named were skipped) and returns
    /// its RGB pixels, `rows` rows of the output width, converted by libjpeg's own
    /// colour converter; `None` when no preview was running or it did not cover them.
    pub(crate) fn take_dc(
        &mut self,
        cinfo: &mut jpeg_decompress_struct,
        rows: u32,
    ) -> Option<Vec<u8>> {
        // SAFETY: as in `take_recording`.
        let e = unsafe { &mut *self.0.as_ptr() };
        let dc = e.dc.take()?;
        dc.rgb(cinfo, rows as usize)
    }

    /// Whether this decoder uses a recording (the data is then not read to its end:
    /// nothing after the scan, e.g. `jpeg_finish_decompress`, may be asked of libjpeg).
    pub(crate) fn replaying(&self) -> bool {
        // SAFETY: as in `take_recording`.
        matches!(unsafe { &(*self.0.as_ptr()).tape }, Tape::Replay { .. })
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        // SAFETY: made by `Box::into_raw` in `new`, freed once, here.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// libjpeg's `decode_mcu` method: decode one MCU's blocks into `mcu` (zeroed by the
/// caller), or parse and discard them when `mcu` is null.
unsafe extern "C-unwind" fn decode_mcu(
    cinfo: *mut jpeg_decompress_struct,
    mcu: *mut JBLOCKROW,
) -> boolean {
    // SAFETY: libjpeg passes the decompressor `install` hooked; its `client_data` is the
    // `Entropy` that `install` returned, which its owner keeps alive while decoding.
    let cinfo = unsafe { &mut *cinfo };
    let st = unsafe { &mut *cinfo.common.client_data.cast::<Entropy>() };
    // SAFETY: `mcu`, when not null, holds `blocks_in_MCU` pointers to zeroed blocks.
    unsafe { st.mcu(cinfo, mcu) };
    1
}

/// Reports damaged data as libjpeg's decoder does: warning `code` (with parameters
/// `parm`) through the decompressor's error manager, whose strict form
/// (`libjpeg_errors`) unwinds. Should a manager return instead, this unwinds anyway:
/// the data cannot be decoded further.
#[cold]
#[inline(never)]
fn corrupt(cinfo: &mut jpeg_decompress_struct, code: c_int, parm: [c_int; 2]) -> ! {
    // SAFETY: the error manager libjpeg itself reports through (set before the header
    // was read); `msg_parm` is a C union whose integer member libjpeg's WARNMS2 writes.
    unsafe {
        if let Some(err) = cinfo.common.err.as_mut() {
            err.msg_code = code;
            let ints = &mut *err.msg_parm.i();
            ints[0] = parm[0];
            ints[1] = parm[1];
            if let Some(emit) = err.emit_message {
                emit(&mut cinfo.common, -1);
            }
        }
    }
    std::panic::resume_unwind(Box::new(format!(
        "corrupt image data (libjpeg warning {code})"
    )))
}

impl Entropy {
    unsafe fn mcu(&mut self, cinfo: &mut jpeg_decompress_struct, mcu: *mut JBLOCKROW) {
        if let Tape::Replay { .. } = self.tape {
            // SAFETY: as below.
            unsafe { self.replayed(cinfo, mcu) };
            return;
        }
        if self.restart_interval != 0 {
            if self.restarts_to_go == 0 {
                self.restart(cinfo);
            }
            self.restarts_to_go -= 1;
        }
        if let Tape::Record(rec) = &mut self.tape {
            rec.marks.push(Mark {
                reader: self.reader,
                last_dc: self.last_dc,
                restarts_to_go: self.restarts_to_go,
            });
        }
        // SAFETY: see `decode_mcu`: `mcu`, when not null, holds one valid, exclusive,
        // zeroed block per block of the MCU.
        unsafe {
            if mcu.is_null() && self.dc.is_some() {
                self.dc_mcu(cinfo);
            } else if mcu.is_null() {
                self.blocks::<false>(cinfo, mcu);
            } else {
                self.blocks::<true>(cinfo, mcu);
            }
        }
        self.after_mcu(cinfo);
    }

    /// One MCU libjpeg skips, decoded into the DC preview (see [`DcPreview`]).
    ///
    /// # Safety
    /// `self.dc` is set, so the scan has the layout `pb_dc_layout` accepted (6 blocks).
    #[inline(never)]
    unsafe fn dc_mcu(&mut self, cinfo: &mut jpeg_decompress_struct) {
        let Some(mut dc) = self.dc.take() else {
            return;
        };
        let mut ptrs: [*mut [i16; 64]; 6] = [std::ptr::null_mut(); 6];
        for (p, b) in ptrs.iter_mut().zip(dc.blocks.iter_mut()) {
            *p = b;
        }
        // SAFETY: six valid, exclusive blocks, one per block of the MCU, zero but for
        // the luma DCs (the only luma coefficient stored at this scale, overwritten).
        unsafe { self.blocks::<true>(cinfo, ptrs.as_mut_ptr().cast::<JBLOCKROW>()) };
        dc.put();
        self.dc = Some(dc);
    }

    /// The checks and bookkeeping after each parsed MCU.
    #[inline(always)]
    fn after_mcu(&mut self, cinfo: &mut jpeg_decompress_struct) {
        let r = &mut self.reader;
        if r.pad > r.hot.nbits {
            corrupt(cinfo, JWRN_HIT_MARKER, [0, 0]);
        }
        // As libjpeg's own decoder keeps it current.
        r.give_back(cinfo);
    }

    /// One MCU of a [`Tape::Replay`] decode: parsed (after a jump to its recorded start
    /// when the one before it was not, or a restart marker lies between) only when
    /// libjpeg will use it.
    ///
    /// # Safety
    /// As [`Entropy::blocks`] with `STORE`, when `mcu` is not null.
    #[inline(never)]
    unsafe fn replayed(&mut self, cinfo: &mut jpeg_decompress_struct, mcu: *mut JBLOCKROW) {
        let Tape::Replay {
            rec,
            next,
            at,
            cols,
        } = &mut self.tape
        else {
            return;
        };
        let i = *next;
        *next += 1;
        if mcu.is_null() {
            return;
        }
        let (per_row, first, last) = *cols.get_or_insert_with(|| {
            let (mut n, mut a, mut b): (c_uint, c_uint, c_uint) = (0, 0, 0);
            // SAFETY: `cinfo` is the started decompressor this decoder is installed in;
            // the C side only reads it.
            unsafe { pb_entropy_columns(cinfo, &mut n, &mut a, &mut b) };
            let (n, a, b) = (n as usize, a as usize, b as usize);
            if n == 0 || a > b || b >= n {
                (n.max(1), 0, n.max(1) - 1)
            } else {
                (n, a, b)
            }
        });
        let col = i % per_row;
        if col < first || col > last {
            // Decoded by libjpeg's loop, never transformed: left zero.
            return;
        }
        let Some(&m) = rec.marks.get(i) else {
            corrupt(cinfo, JWRN_HIT_MARKER, [0, 0]);
        };
        let restarted = self.restart_interval != 0 && m.restarts_to_go + 1 == self.restart_interval;
        if *at != i || restarted {
            self.reader = m.reader;
            self.last_dc = m.last_dc;
            self.restarts_to_go = m.restarts_to_go;
        }
        *at = i + 1;
        // SAFETY: the caller's contract.
        unsafe { self.blocks::<true>(cinfo, mcu) };
        self.after_mcu(cinfo);
    }

    /// The blocks of one MCU, stored into `mcu` when `STORE` (then `mcu` holds one valid,
    /// exclusive, zeroed block per block of the MCU), parsed only otherwise.
    #[inline(always)]
    unsafe fn blocks<const STORE: bool>(
        &mut self,
        cinfo: &mut jpeg_decompress_struct,
        mcu: *mut JBLOCKROW,
    ) {
        let Entropy {
            tables,
            blocks,
            nblocks,
            last_dc,
            reader: r,
            ..
        } = self;
        let mut h = r.hot;
        let mut scratch = [0i16; 64];
        for (b, blk) in blocks[..*nblocks].iter().enumerate() {
            let (dct, act) = (
                &tables[usize::from(blk.dc) & 7],
                &tables[usize::from(blk.ac) & 7],
            );
            ensure(&mut h, r, cinfo);
            let s = u32::from(symbol(&mut h, r, cinfo, dct));
            let diff = if s == 0 { 0 } else { receive_extend(&mut h, s) };
            let c = usize::from(blk.comp) & 3;
            let dc = last_dc[c].wrapping_add(diff);
            last_dc[c] = dc;
            if STORE {
                // SAFETY: the caller's contract: `b < blocks_in_MCU` valid block pointers.
                let block = unsafe { &mut **mcu.add(b) };
                block[0] = dc as i16;
                if blk.ac_needed {
                    ac::<true>(&mut h, r, cinfo, act, block);
                } else {
                    ac::<false>(&mut h, r, cinfo, act, block);
                }
            } else {
                ac::<false>(&mut h, r, cinfo, act, &mut scratch);
            }
        }
        r.hot = h;
    }

    /// libjpeg's `process_restart`: the data up to the restart marker must be used up
    /// (at most the padding bits of its last byte left), the marker must be the next
    /// `RSTn` (libjpeg checks), and decoding starts afresh after it.
    #[cold]
    #[inline(never)]
    fn restart(&mut self, cinfo: &mut jpeg_decompress_struct) {
        let r = &mut self.reader;
        let real = |r: &Reader| r.hot.nbits.saturating_sub(r.pad);
        let mut left = real(r);
        while r.marker == 0 {
            // Bytes not read ahead yet: read on to the marker (discarding), counting them.
            r.hot.acc = 0;
            r.hot.nbits = 0;
            r.refill_slow(cinfo);
            left += real(r);
        }
        if left >= 8 {
            // As libjpeg's `next_marker` reports bytes skipped to find a marker.
            let marker = c_int::from(r.marker);
            corrupt(cinfo, JWRN_EXTRANEOUS_DATA, [(left / 8) as c_int, marker]);
        }
        // The source positioned just past the marker (`unread_marker` was set when it
        // was found), as libjpeg's decoder leaves it.
        r.give_back(cinfo);
        // SAFETY: `cinfo` is the decompressor being decoded.
        unsafe { pb_entropy_read_restart_marker(cinfo) };
        // SAFETY: libjpeg's source after reading the marker: the rest of the data.
        *r = Reader::at(unsafe { &*cinfo.src });
        self.last_dc = [0; 4];
        self.restarts_to_go = self.restart_interval;
    }
}

/// The AC coefficients of one block, stored when `STORE`.
#[inline(always)]
fn ac<const STORE: bool>(
    h: &mut Hot,
    r: &mut Reader,
    cinfo: &mut jpeg_decompress_struct,
    t: &Table,
    block: &mut [i16; 64],
) {
    // The zigzag position of the next coefficient: below 64 before each step, and a
    // step moves it by at most 64, so it stays below 128 (`AFTER`'s length).
    let mut k = 1usize;
    loop {
        ensure(h, r, cinfo);
        let f = t.fast_ac[(h.acc >> (64 - FAST)) as usize];
        if f != 0 {
            k += ((f >> 8) & 0xFF) as usize;
            let n = (f & 0xFF) as u32;
            h.acc <<= n;
            h.nbits -= n;
            if STORE {
                put(block, k, (f >> 16) as i16);
            }
        } else {
            let rs = symbol(h, r, cinfo, t);
            let (run, s) = (usize::from(rs >> 4), u32::from(rs & 15));
            if s != 0 {
                k += run + 1;
                let v = receive_extend(h, s);
                if STORE {
                    put(block, k, v as i16);
                }
            } else if run == 15 {
                k += 16;
            } else {
                break;
            }
        }
        if k >= 64 {
            break;
        }
    }
}

/// Stores the coefficient taken with the step that brought the zigzag position to `k`.
#[inline(always)]
fn put(block: &mut [i16; 64], k: usize, v: i16) {
    debug_assert!(k < AFTER.len());
    // SAFETY: `k < 128` (see `ac`), the length of `AFTER`, whose entries are all below
    // 64 (checked when it is built), the length of `block`.
    unsafe {
        let i = usize::from(*AFTER.get_unchecked(k));
        *block.get_unchecked_mut(i) = v;
    }
}

/// At least 32 bits in the buffer (zeros after a marker), enough for one code and its
/// magnitude bits.
#[inline(always)]
fn ensure(h: &mut Hot, r: &mut Reader, cinfo: &mut jpeg_decompress_struct) {
    if h.nbits >= 32 {
        return;
    }
    if h.pos + 8 <= r.limit {
        // SAFETY: `pos + 8 <= limit <= len`: inside the source buffer.
        let w = u64::from_be_bytes(unsafe {
            std::ptr::read_unaligned(r.data.add(h.pos).cast::<[u8; 8]>())
        });
        // Any 0xFF byte in w? (A zero byte in !w.)
        let nw = !w;
        if nw.wrapping_sub(0x0101_0101_0101_0101) & w & 0x8080_8080_8080_8080 == 0 {
            h.acc |= w >> h.nbits;
            let take = (63 - h.nbits) >> 3;
            h.pos += take as usize;
            h.nbits += take * 8;
            return;
        }
    }
    r.hot = *h;
    r.refill_slow(cinfo);
    *h = r.hot;
}

/// One Huffman symbol from table `t`; the buffer holds at least 16 bits.
#[inline(always)]
fn symbol(h: &mut Hot, r: &mut Reader, cinfo: &mut jpeg_decompress_struct, t: &Table) -> u8 {
    let e = t.lookup[(h.acc >> (64 - FAST)) as usize];
    if e != 0 {
        let n = u32::from(e >> 8);
        h.acc <<= n;
        h.nbits -= n;
        return e as u8;
    }
    r.hot = *h;
    let s = r.symbol_long(cinfo, t);
    *h = r.hot;
    s
}

/// `size` (1..=15) magnitude bits, sign-extended.
#[inline(always)]
fn receive_extend(h: &mut Hot, size: u32) -> i32 {
    let bits = (h.acc >> (64 - size)) as i32;
    h.acc <<= size;
    h.nbits -= size;
    extend(bits, size)
}

impl Reader {
    /// A reader at the start of `src`'s buffer: the scan's data, or what follows a
    /// restart marker.
    fn at(src: &jpeg_source_mgr) -> Reader {
        Reader {
            hot: Hot {
                acc: 0,
                nbits: 0,
                pos: 0,
            },
            limit: src.bytes_in_buffer,
            data: src.next_input_byte,
            len: src.bytes_in_buffer,
            pad: 0,
            marker: 0,
        }
    }

    /// Gives libjpeg's source manager the position read up to (bytes read ahead
    /// included, as libjpeg's own decoder counts them).
    fn give_back(&self, cinfo: &mut jpeg_decompress_struct) {
        // SAFETY: the memory source `install` read `data` and `len` from (or, after a
        // restart, the same source after libjpeg read the marker).
        if let Some(src) = unsafe { cinfo.src.as_mut() } {
            src.next_input_byte = self.data.wrapping_add(self.hot.pos);
            src.bytes_in_buffer = self.len - self.hot.pos;
        }
    }

    #[cold]
    #[inline(never)]
    fn refill_slow(&mut self, cinfo: &mut jpeg_decompress_struct) {
        let h = &mut self.hot;
        // Drop what a fast refill left below the valid bits: bytes are added one by one.
        h.acc = if h.nbits == 0 {
            0
        } else {
            h.acc & (u64::MAX << (64 - h.nbits))
        };
        while self.hot.nbits <= 56 {
            if self.marker != 0 {
                let add = 64 - self.hot.nbits;
                self.hot.nbits += add;
                self.pad += add;
                break;
            }
            let pos = self.hot.pos;
            if pos >= self.limit {
                self.end_of_buffer(cinfo);
                continue;
            }
            // SAFETY: `pos < limit <= len`.
            let mut byte = unsafe { *self.data.add(pos) };
            if byte == 0xFF {
                // 0xFF 0x00 is a stuffed 0xFF; 0xFF (0xFF...) nn is marker nn.
                let mut p = pos + 1;
                // SAFETY: `p < limit` checked before each read.
                while p < self.limit && unsafe { *self.data.add(p) } == 0xFF {
                    p += 1;
                }
                if p >= self.limit {
                    self.end_of_buffer(cinfo);
                    continue;
                }
                // SAFETY: `p < limit`.
                let code = unsafe { *self.data.add(p) };
                if code != 0 {
                    // Consumed like libjpeg does (the marker is libjpeg's to act on).
                    self.hot.pos = p + 1;
                    self.limit = p + 1;
                    self.marker = code;
                    // SAFETY: `cinfo` is the decompressor being decoded.
                    unsafe { pb_entropy_set_unread_marker(cinfo, c_int::from(code)) };
                    continue;
                }
                byte = 0xFF;
                self.hot.pos = p + 1;
            } else {
                self.hot.pos = pos + 1;
            }
            let h = &mut self.hot;
            h.acc |= u64::from(byte) << (56 - h.nbits);
            h.nbits += 8;
        }
    }

    /// The source buffer is used up with no marker: ask the source manager for more,
    /// as libjpeg does. A memory source has none: under the strict error manager that
    /// is "Premature end of JPEG file"; otherwise it supplies a fake EOI marker.
    #[cold]
    fn end_of_buffer(&mut self, cinfo: &mut jpeg_decompress_struct) {
        // SAFETY: the memory source `install` read from; its callbacks are libjpeg's.
        let refilled = unsafe {
            let src = &mut *cinfo.src;
            src.next_input_byte = self.data.wrapping_add(self.hot.pos);
            src.bytes_in_buffer = 0;
            match src.fill_input_buffer {
                Some(fill) => fill(cinfo) != 0,
                None => false,
            }
        };
        // SAFETY: after `fill_input_buffer` the source describes its new buffer.
        let src = unsafe { &*cinfo.src };
        if !refilled || src.bytes_in_buffer == 0 || src.next_input_byte.is_null() {
            corrupt(cinfo, JWRN_JPEG_EOF, [0, 0]);
        }
        self.data = src.next_input_byte;
        self.len = src.bytes_in_buffer;
        self.limit = self.len;
        self.hot.pos = 0;
    }

    /// A code longer than `FAST` bits: libjpeg's canonical walk over `maxcode`.
    #[cold]
    #[inline(never)]
    fn symbol_long(&mut self, cinfo: &mut jpeg_decompress_struct, t: &Table) -> u8 {
        let h = &mut self.hot;
        let look = (h.acc >> 48) as i32;
        for l in FAST as usize + 1..=16 {
            let code = look >> (16 - l);
            if code <= t.maxcode[l] {
                h.acc <<= l;
                h.nbits -= l as u32;
                return t.huffval[((code + t.valoffset[l]) & 0xFF) as usize];
            }
        }
        corrupt(cinfo, JWRN_HUFF_BAD_CODE, [0, 0])
    }
}
