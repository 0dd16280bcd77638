//! Our own baseline JPEG encoder, built for the budget search: the colour conversion,
//! downsampling and forward DCT are done **once** per picture, and each quality the
//! search tries costs only a quantisation and a symbol count, from which the exact size
//! of the entropy-coded data follows (optimal Huffman tables are a function of the
//! counts). Only the quality finally chosen is written out.
//!
//! The arithmetic is libjpeg-turbo's, step for step, so the files are **byte-identical**
//! to what mozjpeg writes with its "fastest" profile, 4:2:0 and optimised Huffman tables
//! (the settings chosen by measurement, see the crate docs) — the tests compare whole
//! files with mozjpeg's for many sizes, qualities and contents:
//! - RGB → YCbCr with libjpeg's 16-bit fixed-point constants (`jccolor.c`);
//! - 2x2 chroma averaging with the alternating 1,2 bias (`jcsample.c`), edges replicated
//!   the way the prep controller and downsampler pad them (`jcprepct.c`);
//! - the accurate integer forward DCT (`jfdctint.c`, "islow"), quantisation by libjpeg's
//!   reciprocal method (`jcdctmgr.c`), dummy blocks for partial MCUs (`jccoefct.c`);
//! - optimal tables by `jpeg_gen_optimal_table` (`jchuff.c`), canonical codes, byte
//!   stuffing, padding with 1-bits; markers as `jcmarker.c` writes them: SOI, JFIF APP0,
//!   one DQT per table, SOF0 (SOF1 when a table needs 16 bits), four DHT, SOS, EOI.
//!
//! What the search needs is [`Prepared::probe`]'s `size_without_stuffing`: the exact
//! file size except for the 0x00 bytes stuffed after each 0xFF in the entropy-coded
//! data, which only writing reveals (about one byte in 256). It is a lower bound of the real size,
//! so a quality whose bound is over the budget surely does not fit.

use crate::simd::{self, Coded, Dispatch, Kernel, Quant};

/// `jpeg_natural_order`: the natural (row-major) index of the i-th coefficient in zigzag
/// order.
const NATURAL: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// ITU-T T.81 Annex K tables (natural order), libjpeg's defaults.
#[rustfmt::skip]
const STD_LUMA: [u32; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
];
#[rustfmt::skip]
const STD_CHROMA: [u32; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
];

/// The two quantisation tables (natural order) of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tables {
    pub luma: [u16; 64],
    pub chroma: [u16; 64],
}

impl Tables {
    /// libjpeg's `jpeg_set_quality(q, force_baseline = FALSE)` (mozjpeg's float scaling
    /// curve, truncated to a whole percentage like the C code does). The encoder itself
    /// works on [`Tables::per_mille`]; the tests compare this against mozjpeg.
    #[cfg(test)]
    pub(crate) fn quality(q: u8) -> Tables {
        Tables::per_mille(Tables::quality_per_mille(q))
    }

    /// The scale of libjpeg's quality `q` in tenths of a percent (libjpeg's whole
    /// percentage x 10).
    pub(crate) fn quality_per_mille(q: u8) -> u32 {
        let q = f32::from(q.clamp(1, 100));
        let scale = if q < 50.0 {
            5000.0 / q
        } else {
            200.0 - q * 2.0
        };
        scale as u32 * 10
    }

    /// The Annex K tables x `scale` / 1000, rounded, limited to 1..=32767: libjpeg's
    /// `jpeg_set_linear_quality(scale / 10)` when `scale` is a multiple of 10 (the same
    /// rounding), and the steps between two whole percentages otherwise, which the budget
    /// search uses to fill a budget more closely than whole qualities can.
    pub(crate) fn per_mille(scale: u32) -> Tables {
        let one = |base: &[u32; 64]| {
            let mut t = [0u16; 64];
            for (o, &b) in t.iter_mut().zip(base) {
                let v = (i64::from(b) * i64::from(scale) + 500) / 1000;
                *o = v.clamp(1, 32767) as u16;
            }
            t
        };
        Tables {
            luma: one(&STD_LUMA),
            chroma: one(&STD_CHROMA),
        }
    }

    fn sixteen_bit(&self) -> bool {
        self.luma.iter().chain(&self.chroma).any(|&v| v > 255)
    }
}

/// libjpeg's reciprocal quantiser for one table, in zigzag order: the quantised value of
/// a DCT output `x` (scaled by 8) is `sign(x) * (((|x| + corr) * recip) >> r)`, computed
/// like libjpeg-turbo's SIMD code as two 16-bit high multiplies (`recip`, then
/// `scale = 2^(32 - r)`); [`crate::simd`] applies it.
///
/// `compute_reciprocal(quantval << 3)` of `jcdctmgr.c` (16-bit DCTELEM). Quality
/// tables stay below 8,192 (q = 1 gives at most 6,050), so the divisor fits 16 bits.
fn divisors(table: &[u16; 64]) -> Quant {
    let mut d = Quant {
        recip: [0; 64],
        corr: [0; 64],
        scale: [0; 64],
    };
    for zz in 0..64 {
        d.set(zz, (u32::from(table[NATURAL[zz]]) << 3).min(65535));
    }
    d
}

/// One component's raw (unquantised) forward-DCT blocks, zigzag order, row-major over the
/// padded block grid (dummy blocks included).
struct Plane {
    blocks_w: usize,
    blocks: Vec<[i16; 64]>,
}

impl Plane {
    fn at(&self, bx: usize, by: usize) -> &[i16; 64] {
        &self.blocks[by * self.blocks_w + bx]
    }
}

/// A picture ready to be quantised and written at any quality.
pub(crate) struct Prepared {
    width: u32,
    height: u32,
    mcus_x: usize,
    mcus_y: usize,
    y: Plane,
    cb: Plane,
    cr: Plane,
}

/// `jpeg_fdct_islow` (accurate integer DCT, CONST_BITS 13, PASS1_BITS 2): output scaled
/// up by 8, in natural order.
#[inline(always)]
fn fdct_islow(data: &mut [i32; 64]) {
    const CONST_BITS: i32 = 13;
    const PASS1_BITS: i32 = 2;
    #[inline(always)]
    fn descale(x: i32, n: i32) -> i32 {
        (x + (1 << (n - 1))) >> n
    }
    // Pass 1: rows. The C stores each result into a 16-bit DCTELEM; the values fit.
    for row in 0..8 {
        let d = &mut data[row * 8..row * 8 + 8];
        let r = fdct_1d(std::array::from_fn(|i| d[i]));
        for (k, (o, v)) in d.iter_mut().zip(r).enumerate() {
            let v = if k % 4 == 0 {
                v << PASS1_BITS
            } else {
                descale(v, CONST_BITS - PASS1_BITS)
            };
            *o = i32::from(v as i16);
        }
    }
    // Pass 2: columns; removes PASS1_BITS, leaves the overall factor of 8.
    for col in 0..8 {
        let r = fdct_1d(std::array::from_fn(|i| data[i * 8 + col]));
        for (k, v) in r.into_iter().enumerate() {
            let v = descale(
                v,
                if k % 4 == 0 {
                    PASS1_BITS
                } else {
                    CONST_BITS + PASS1_BITS
                },
            );
            data[k * 8 + col] = i32::from(v as i16);
        }
    }
}

/// One 8-point pass of `jfdctint.c`'s butterfly, before descaling: outputs 0 and 4 are plain
/// sums, the other six are products scaled by 2^CONST_BITS (each pass descales them its way).
#[inline(always)]
fn fdct_1d(g: [i32; 8]) -> [i32; 8] {
    const F_0_298: i32 = 2446;
    const F_0_390: i32 = 3196;
    const F_0_541: i32 = 4433;
    const F_0_765: i32 = 6270;
    const F_0_899: i32 = 7373;
    const F_1_175: i32 = 9633;
    const F_1_501: i32 = 12299;
    const F_1_847: i32 = 15137;
    const F_1_961: i32 = 16069;
    const F_2_053: i32 = 16819;
    const F_2_562: i32 = 20995;
    const F_3_072: i32 = 25172;
    let tmp0 = g[0] + g[7];
    let tmp7 = g[0] - g[7];
    let tmp1 = g[1] + g[6];
    let tmp6 = g[1] - g[6];
    let tmp2 = g[2] + g[5];
    let tmp5 = g[2] - g[5];
    let tmp3 = g[3] + g[4];
    let tmp4 = g[3] - g[4];
    // Even part.
    let tmp10 = tmp0 + tmp3;
    let tmp13 = tmp0 - tmp3;
    let tmp11 = tmp1 + tmp2;
    let tmp12 = tmp1 - tmp2;
    let z1 = (tmp12 + tmp13) * F_0_541;
    let (o0, o4) = (tmp10 + tmp11, tmp10 - tmp11);
    let (o2, o6) = (z1 + tmp13 * F_0_765, z1 - tmp12 * F_1_847);
    // Odd part.
    let z1 = tmp4 + tmp7;
    let z2 = tmp5 + tmp6;
    let z3 = tmp4 + tmp6;
    let z4 = tmp5 + tmp7;
    let z5 = (z3 + z4) * F_1_175;
    let tmp4 = tmp4 * F_0_298;
    let tmp5 = tmp5 * F_2_053;
    let tmp6 = tmp6 * F_3_072;
    let tmp7 = tmp7 * F_1_501;
    let z1 = z1 * -F_0_899;
    let z2 = z2 * -F_2_562;
    let z3 = z3 * -F_1_961 + z5;
    let z4 = z4 * -F_0_390 + z5;
    [
        o0,
        tmp7 + z1 + z4,
        o2,
        tmp6 + z2 + z3,
        o4,
        tmp5 + z2 + z4,
        o6,
        tmp4 + z1 + z3,
    ]
}

/// DCT of the 8x8 block at (`x0`, `y0`) of a `stride`-wide plane of samples, zigzag order.
#[inline(always)]
fn dct_block(samples: &[u8], stride: usize, x0: usize, y0: usize) -> [i16; 64] {
    let mut ws = [0i32; 64];
    for r in 0..8 {
        let row = &samples[(y0 + r) * stride + x0..(y0 + r) * stride + x0 + 8];
        for c in 0..8 {
            ws[r * 8 + c] = i32::from(row[c]) - 128;
        }
    }
    fdct_islow(&mut ws);
    let mut out = [0i16; 64];
    for (zz, o) in out.iter_mut().enumerate() {
        *o = ws[NATURAL[zz]] as i16;
    }
    out
}

/// libjpeg's `h2v2_downsample` of a `w` x `h` full-resolution plane to `cw` x `chh`
/// chroma samples: one per 2x2 (bias 1,2,1,2... along a row); the source repeats its
/// last column out to twice the chroma width and its last row to an even count;
/// chroma rows past `real_rows` repeat the last one.
#[inline(always)]
fn downsample(full: &[u8], w: usize, h: usize, cw: usize, chh: usize, real_rows: usize) -> Vec<u8> {
    let mut out = vec![0u8; cw * chh];
    let col = |x: usize| x.min(w - 1);
    for cy in 0..chh {
        let sy = cy.min(real_rows - 1);
        let r0 = &full[(2 * sy).min(h - 1) * w..][..w];
        let r1 = &full[(2 * sy + 1).min(h - 1) * w..][..w];
        let dst = &mut out[cy * cw..cy * cw + cw];
        // Samples whose two columns are inside the picture, sixteen at a time (an even
        // count: the bias alternates with the sample's column): no clamping, so the
        // loop vectorises; the rest (right edge, padding) clamp.
        let inside = (w / 2).min(cw) / 16 * 16;
        let (body, edge) = dst.split_at_mut(inside);
        for ((d, p0), p1) in body
            .chunks_exact_mut(16)
            .zip(r0.chunks_exact(32))
            .zip(r1.chunks_exact(32))
        {
            for i in 0..16 {
                // Each pair of samples as one 16-bit word: the compiler keeps it in
                // vector registers (16 lanes) instead of gathering bytes.
                let a = u16::from_le_bytes([p0[2 * i], p0[2 * i + 1]]);
                let b = u16::from_le_bytes([p1[2 * i], p1[2 * i + 1]]);
                let s = (a & 0xFF) + (a >> 8) + (b & 0xFF) + (b >> 8);
                d[i] = ((s + 1 + (i as u16 & 1)) >> 2) as u8;
            }
        }
        for (cx, d) in (inside..).zip(edge.iter_mut()) {
            let (a, b) = (col(2 * cx), col(2 * cx + 1));
            let bias = 1 + (cx as u32 & 1);
            let s = u32::from(r0[a]) + u32::from(r0[b]) + u32::from(r1[a]) + u32::from(r1[b]);
            *d = ((s + bias) >> 2) as u8;
        }
    }
    out
}

impl Prepared {
    /// Colour-convert, downsample and transform `rgb` (`width` x `height`, 3 bytes a
    /// pixel). Panics if the buffer does not match; callers check.
    pub(crate) fn new(rgb: &[u8], width: u32, height: u32) -> Prepared {
        struct Run<'a>(&'a [u8], u32, u32);
        impl Dispatch<Prepared> for Run<'_> {
            #[inline(always)]
            fn call<K: Kernel>(self, _: K) -> Prepared {
                Prepared::new_with(self.0, self.1, self.2)
            }
        }
        simd::dispatch(Run(rgb, width, height))
    }

    /// [`Prepared::new`], compiled for the kernel's target features (the compiler
    /// vectorises the colour conversion, downsampling and DCT with them).
    #[inline(always)]
    fn new_with(rgb: &[u8], width: u32, height: u32) -> Prepared {
        let (w, h) = (width as usize, height as usize);
        assert!(w > 0 && h > 0 && rgb.len() == w * h * 3);
        let mcus_x = w.div_ceil(16);
        let mcus_y = h.div_ceil(16);
        // Full-resolution Y, Cb, Cr (jccolor.c, 16-bit fixed point).
        let mut yp = vec![0u8; w * h];
        let mut cbp = vec![0u8; w * h];
        let mut crp = vec![0u8; w * h];
        const HALF: i32 = 1 << 15;
        const OFF: i32 = (128 << 16) + HALF - 1;
        for (((px, y), cb), cr) in rgb
            .chunks_exact(3)
            .zip(yp.iter_mut())
            .zip(cbp.iter_mut())
            .zip(crp.iter_mut())
        {
            let (r, g, b) = (i32::from(px[0]), i32::from(px[1]), i32::from(px[2]));
            *y = ((19595 * r + 38470 * g + 7471 * b + HALF) >> 16) as u8;
            *cb = ((-11059 * r - 21709 * g + 32768 * b + OFF) >> 16) as u8;
            *cr = ((32768 * r - 27439 * g - 5329 * b + OFF) >> 16) as u8;
        }

        // Luma: real blocks cover ceil(w/8) x ceil(h/8); samples beyond the picture
        // repeat its last column / row (expand_right_edge, expand_bottom_edge).
        let (wb, hb) = (w.div_ceil(8), h.div_ceil(8));
        let (lw, lh) = (wb * 8, hb * 8);
        let mut luma = vec![0u8; lw * lh];
        for y in 0..lh {
            let src = &yp[y.min(h - 1) * w..y.min(h - 1) * w + w];
            let dst = &mut luma[y * lw..y * lw + lw];
            dst[..w].copy_from_slice(src);
            let last = src[w - 1];
            dst[w..].fill(last);
        }
        let y_plane = Self::plane(&luma, lw, wb, hb, mcus_x * 2, mcus_y * 2, 2);

        // Chroma: one sample per 2x2 (`downsample`).
        let (cw, chh) = (mcus_x * 8, mcus_y * 8);
        let real_rows = h.div_ceil(2);
        let cbd = downsample(&cbp, w, h, cw, chh, real_rows);
        let crd = downsample(&crp, w, h, cw, chh, real_rows);
        let cb_plane = Self::plane(&cbd, cw, mcus_x, mcus_y, mcus_x, mcus_y, 1);
        let cr_plane = Self::plane(&crd, cw, mcus_x, mcus_y, mcus_x, mcus_y, 1);
        Prepared {
            width,
            height,
            mcus_x,
            mcus_y,
            y: y_plane,
            cb: cb_plane,
            cr: cr_plane,
        }
    }

    /// Rows of MCUs (16 pixels each).
    pub(crate) fn mcu_rows(&self) -> usize {
        self.mcus_y
    }

    /// Transform the `real_w` x `real_h` real blocks of `samples` and add libjpeg's dummy
    /// blocks out to `pad_w` x `pad_h` (compress_first_pass): zero AC, and the DC of the
    /// block to the left (right edge) or of the MCU's last block in the row above
    /// (bottom). Copying the raw DC gives the same quantised DC as copying the quantised.
    #[inline(always)]
    fn plane(
        samples: &[u8],
        stride: usize,
        real_w: usize,
        real_h: usize,
        pad_w: usize,
        pad_h: usize,
        h_samp: usize,
    ) -> Plane {
        let mut blocks = vec![[0i16; 64]; pad_w * pad_h];
        for by in 0..real_h {
            for bx in 0..real_w {
                blocks[by * pad_w + bx] = dct_block(samples, stride, bx * 8, by * 8);
            }
            for bx in real_w..pad_w {
                let dc = blocks[by * pad_w + bx - 1][0];
                blocks[by * pad_w + bx][0] = dc;
            }
        }
        for by in real_h..pad_h {
            for mx in 0..pad_w / h_samp {
                let dc = blocks[(by - 1) * pad_w + mx * h_samp + h_samp - 1][0];
                for bi in 0..h_samp {
                    blocks[by * pad_w + mx * h_samp + bi][0] = dc;
                }
            }
        }
        Plane {
            blocks_w: pad_w,
            blocks,
        }
    }

    /// Every block in file order (MCU by MCU: four Y, then Cb, then Cr), with its
    /// component (0 Y, 1 Cb, 2 Cr).
    #[inline(always)]
    fn for_each_block(&self, rows: Rows, mut f: impl FnMut(usize, &[i16; 64])) {
        for my in (rows.first..self.mcus_y).step_by(rows.step) {
            for mx in 0..self.mcus_x {
                // One call site, so that `f` inlines (into the kernels' target features).
                for b in 0..6 {
                    let (c, block) = match b {
                        0..=3 => (0, self.y.at(2 * mx + (b & 1), 2 * my + (b >> 1))),
                        4 => (1, self.cb.at(mx, my)),
                        _ => (2, self.cr.at(mx, my)),
                    };
                    f(c, block);
                }
            }
        }
    }

    /// Symbol counts of the whole scan at `tables`: DC and AC, table 0 (Y) and 1
    /// (Cb, Cr), and the number of magnitude bits that follow the codes.
    fn stats(&self, tables: &Tables, rows: Rows) -> Stats {
        struct Run<'a>(&'a Prepared, &'a Tables, Rows);
        impl Dispatch<Stats> for Run<'_> {
            #[inline(always)]
            fn call<K: Kernel>(self, k: K) -> Stats {
                self.0.stats_with(k, self.1, self.2)
            }
        }
        simd::dispatch(Run(self, tables, rows))
    }

    #[inline(always)]
    fn stats_with<K: Kernel>(&self, k: K, tables: &Tables, rows: Rows) -> Stats {
        let div = [divisors(&tables.luma), divisors(&tables.chroma)];
        let mut st = Stats {
            dc: [[0; 257]; 2],
            ac: [[0; 257]; 2],
            extra_bits: 0,
        };
        let mut last_dc = [0i32; 3];
        let mut z = Coded::new();
        self.for_each_block(rows, |c, raw| {
            let t = usize::from(c > 0);
            let mut m = k.quantise(&div[t], raw, &mut z);
            let diff = i32::from(z.z[0]) - last_dc[c];
            last_dc[c] = i32::from(z.z[0]);
            st.dc[t][nbits(diff.unsigned_abs()) as usize & 31] += 1;
            let ac = &mut st.ac[t];
            // p = 16 x (index of the last nonzero coefficient + 1): the symbol of the
            // next one, k places on, is sym[k] - p when the run is at most 15.
            let mut p = 16u32;
            while m != 0 {
                let k = m.trailing_zeros() as usize & 63;
                let mut s = u32::from(z.sym[k]) - p;
                while s >= 256 {
                    ac[0xF0] += 1;
                    s -= 256;
                }
                ac[s as usize & 255] += 1;
                p = 16 * (k as u32 + 1);
                m &= m - 1;
            }
            if p < 16 * 64 {
                ac[0] += 1;
            }
        });
        // The magnitude bits: a symbol's low four bits count them.
        let mut extra = 0u64;
        for t in 0..2 {
            for (sym, (&d, &a)) in st.dc[t].iter().zip(&st.ac[t]).enumerate().take(256) {
                extra += (u64::from(d) + u64::from(a)) * (sym as u64 & 15);
            }
        }
        st.extra_bits = extra;
        st
    }

    /// Count the symbols at `tables` and derive the optimal Huffman tables: everything
    /// [`Prepared::write`] needs, and the exact size less the stuffed bytes.
    pub(crate) fn probe(&self, tables: &Tables) -> Probe {
        let stats = self.stats(tables, Rows::ALL);
        let huff = stats.tables();
        let bits = stats.bits(&huff);
        let size_without_stuffing = file_len(tables, &huff, bits);
        Probe {
            tables: *tables,
            huff,
            size_without_stuffing,
        }
    }

    /// A guess at [`Probe::size_without_stuffing`] at `tables` from every `step`-th row
    /// of MCUs only (the middle one of each `step`), at about 1 / `step` of a probe's
    /// cost: for aiming the first probe, never for deciding.
    pub(crate) fn estimate(&self, tables: &Tables, step: usize) -> usize {
        let rows = Rows {
            first: (step / 2).min(self.mcus_y - 1),
            step: step.max(1),
        };
        let stats = self.stats(tables, rows);
        let huff = stats.tables();
        let sampled = (rows.first..self.mcus_y).step_by(rows.step).count();
        let bits = stats.bits(&huff) * self.mcus_y as u64 / sampled as u64;
        file_len(tables, &huff, bits)
    }

    /// The exact size of the file [`Prepared::encode`] writes at `tables`, less the
    /// stuffed zero bytes (unknown until written): a lower bound of the real size.
    #[cfg(test)]
    pub(crate) fn size_without_stuffing(&self, tables: &Tables) -> usize {
        self.probe(tables).size_without_stuffing
    }

    /// The JPEG file at `tables`.
    #[cfg(test)]
    pub(crate) fn encode(&self, tables: &Tables) -> Vec<u8> {
        self.write(&self.probe(tables))
    }

    /// The JPEG file at the tables `probe` was made for.
    pub(crate) fn write(&self, probe: &Probe) -> Vec<u8> {
        struct Run<'a>(&'a Prepared, &'a Probe);
        impl Dispatch<Vec<u8>> for Run<'_> {
            #[inline(always)]
            fn call<K: Kernel>(self, k: K) -> Vec<u8> {
                self.0.write_with(k, self.1)
            }
        }
        simd::dispatch(Run(self, probe))
    }

    #[inline(always)]
    fn write_with<K: Kernel>(&self, k: K, probe: &Probe) -> Vec<u8> {
        let (tables, huff) = (&probe.tables, &probe.huff);
        let mut out = Vec::with_capacity(
            probe.size_without_stuffing + probe.size_without_stuffing / 128 + 64,
        );
        write_headers(&mut out, self.width, self.height, tables, huff);
        let div = [divisors(&tables.luma), divisors(&tables.chroma)];
        let codes: [Codes; 4] = [
            huff[0].codes(),
            huff[1].codes(),
            huff[2].codes(),
            huff[3].codes(),
        ];
        let mut w = BitWriter { acc: 0, n: 0, out };
        let mut last_dc = [0i32; 3];
        let mut z = Coded::new();
        self.for_each_block(Rows::ALL, |c, raw| {
            let t = usize::from(c > 0);
            let mut m = k.quantise(&div[t], raw, &mut z);
            let (dc, ac) = (&codes[t], &codes[2 + t]);
            let v = i32::from(z.z[0]);
            let diff = v - last_dc[c];
            last_dc[c] = v;
            let nb = nbits(diff.unsigned_abs());
            w.put_symbol(dc, nb as usize, diff, nb);
            let mut p = 16u32;
            while m != 0 {
                let k = m.trailing_zeros() as usize & 63;
                let mut s = u32::from(z.sym[k]) - p;
                while s >= 256 {
                    w.put(ac.code[0xF0], ac.size[0xF0]);
                    s -= 256;
                }
                w.put_symbol(ac, s as usize & 255, i32::from(z.z[k]), s & 15);
                p = 16 * (k as u32 + 1);
                m &= m - 1;
            }
            if p < 16 * 64 {
                w.put(ac.code[0], ac.size[0]);
            }
        });
        let mut out = w.finish();
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }
}

/// What one quality costs: its tables, the optimal Huffman tables for this picture at
/// them, and the file's size less the stuffed bytes (a lower bound of the real size).
pub(crate) struct Probe {
    tables: Tables,
    huff: [Huffman; 4],
    pub size_without_stuffing: usize,
}

#[inline(always)]
fn nbits(v: u32) -> u32 {
    32 - v.leading_zeros()
}

/// Which rows of MCUs a pass covers: `first`, `first + step`, ...
#[derive(Clone, Copy)]
struct Rows {
    first: usize,
    step: usize,
}

impl Rows {
    const ALL: Rows = Rows { first: 0, step: 1 };
}

struct Stats {
    dc: [[u32; 257]; 2],
    ac: [[u32; 257]; 2],
    extra_bits: u64,
}

impl Stats {
    /// The bits of the entropy-coded data with `huff` (from [`Stats::tables`]).
    fn bits(&self, huff: &[Huffman; 4]) -> u64 {
        let mut bits = self.extra_bits;
        for (t, h) in huff.iter().enumerate() {
            let counts = if t < 2 { &self.dc[t] } else { &self.ac[t - 2] };
            bits += h
                .lengths()
                .iter()
                .zip(counts.iter())
                .map(|(&l, &n)| u64::from(l) * u64::from(n))
                .sum::<u64>();
        }
        bits
    }

    /// DC 0, DC 1, AC 0, AC 1.
    fn tables(&self) -> [Huffman; 4] {
        [
            Huffman::optimal(&self.dc[0]),
            Huffman::optimal(&self.dc[1]),
            Huffman::optimal(&self.ac[0]),
            Huffman::optimal(&self.ac[1]),
        ]
    }
}

/// A Huffman table as DHT carries it: code counts per length 1..=16 and the symbols.
struct Huffman {
    bits: [u8; 17],
    vals: Vec<u8>,
}

struct Codes {
    code: [u32; 256],
    size: [u32; 256],
}

impl Huffman {
    /// `jpeg_gen_optimal_table`, including its tie-breaking (the *last* symbol of the
    /// lowest count is taken first) and its reserved all-ones code point (symbol 256).
    fn optimal(counts: &[u32; 257]) -> Huffman {
        let mut freq = [0i64; 257];
        for (f, &c) in freq.iter_mut().zip(counts.iter()).take(256) {
            *f = i64::from(c);
        }
        freq[256] = 1;
        let mut codesize = [0u32; 257];
        let mut others = [-1i32; 257];
        // Symbols with a count, ascending: the C scans all 257 and skips zeros.
        let mut live: Vec<usize> = (0..257).filter(|&i| freq[i] != 0).collect();
        loop {
            let mut c1 = usize::MAX;
            let mut v = i64::MAX;
            for &i in &live {
                if freq[i] <= v {
                    v = freq[i];
                    c1 = i;
                }
            }
            let mut c2 = usize::MAX;
            v = i64::MAX;
            for &i in &live {
                if freq[i] <= v && i != c1 {
                    v = freq[i];
                    c2 = i;
                }
            }
            if c2 == usize::MAX {
                break;
            }
            freq[c1] += freq[c2];
            freq[c2] = 0;
            live.retain(|&i| i != c2);
            let mut c = c1;
            codesize[c] += 1;
            while others[c] >= 0 {
                c = others[c] as usize;
                codesize[c] += 1;
            }
            others[c] = c2 as i32;
            let mut c = c2;
            codesize[c] += 1;
            while others[c] >= 0 {
                c = others[c] as usize;
                codesize[c] += 1;
            }
        }
        let mut bits = [0u32; 33];
        for &s in &codesize {
            if s > 0 {
                bits[s.min(32) as usize] += 1;
            }
        }
        // Limit code lengths to 16 (JPEG's rule), as Annex K.3 / the C does.
        let mut i = 32;
        while i > 16 {
            while bits[i] > 0 {
                let mut j = i - 2;
                while bits[j] == 0 {
                    j -= 1;
                }
                bits[i] -= 2;
                bits[i - 1] += 1;
                bits[j + 1] += 2;
                bits[j] -= 1;
            }
            i -= 1;
        }
        while bits[i] == 0 {
            i -= 1;
        }
        bits[i] -= 1; // drop the reserved code point
        let mut out = [0u8; 17];
        for (o, &b) in out.iter_mut().zip(bits.iter()).skip(1) {
            *o = b as u8;
        }
        let mut vals = Vec::new();
        for len in 1..=32u32 {
            for (sym, &s) in codesize.iter().enumerate().take(256) {
                if s == len {
                    vals.push(sym as u8);
                }
            }
        }
        vals.truncate(out.iter().map(|&b| usize::from(b)).sum());
        Huffman { bits: out, vals }
    }

    /// Code length of each symbol (0 for symbols not in the table).
    fn lengths(&self) -> [u32; 256] {
        let mut len = [0u32; 256];
        let mut p = 0;
        for l in 1..=16 {
            for _ in 0..self.bits[l] {
                len[usize::from(self.vals[p])] = l as u32;
                p += 1;
            }
        }
        len
    }

    /// Canonical codes (`jpeg_make_c_derived_tbl`).
    fn codes(&self) -> Codes {
        let mut c = Codes {
            code: [0; 256],
            size: [0; 256],
        };
        let mut code = 0u32;
        let mut p = 0;
        for l in 1..=16u32 {
            for _ in 0..self.bits[l as usize] {
                let s = usize::from(self.vals[p]);
                c.code[s] = code;
                c.size[s] = l;
                code += 1;
                p += 1;
            }
            code <<= 1;
        }
        c
    }
}

struct BitWriter {
    acc: u64,
    n: u32,
    out: Vec<u8>,
}

impl BitWriter {
    /// `size` (<= 32) low bits of `code`, most significant first; 0xFF is followed by
    /// 0x00. Bytes leave the accumulator four at a time.
    #[inline(always)]
    fn put(&mut self, code: u32, size: u32) {
        self.acc = (self.acc << size) | u64::from(code);
        self.n += size;
        if self.n >= 32 {
            self.n -= 32;
            let word = (self.acc >> self.n) as u32;
            let inv = !word;
            if inv.wrapping_sub(0x0101_0101) & !inv & 0x8080_8080 == 0 {
                self.out.extend_from_slice(&word.to_be_bytes());
            } else {
                for b in word.to_be_bytes() {
                    self.out.push(b);
                    if b == 0xFF {
                        self.out.push(0);
                    }
                }
            }
        }
    }

    /// A Huffman symbol followed by the `nb` magnitude bits of `v` (negative values as
    /// `v - 1`, libjpeg's one's complement).
    #[inline(always)]
    fn put_symbol(&mut self, codes: &Codes, sym: usize, v: i32, nb: u32) {
        let bits = (if v < 0 { v - 1 } else { v }) as u32 & ((1u32 << nb) - 1);
        self.put((codes.code[sym] << nb) | bits, codes.size[sym] + nb);
    }

    /// The bits left, the last byte padded with 1-bits.
    fn finish(mut self) -> Vec<u8> {
        let pad = (8 - self.n % 8) % 8;
        let mut n = self.n + pad;
        let acc = (self.acc << pad) | ((1u64 << pad) - 1);
        while n >= 8 {
            n -= 8;
            let b = (acc >> n) as u8;
            self.out.push(b);
            if b == 0xFF {
                self.out.push(0);
            }
        }
        self.out
    }
}

/// The size of a file with `bits` bits of entropy-coded data (less stuffed bytes):
/// headers, the data padded to a byte, and EOI.
fn file_len(tables: &Tables, huff: &[Huffman; 4], bits: u64) -> usize {
    header_len(tables, huff) + bits.div_ceil(8) as usize + 2
}

fn header_len(tables: &Tables, huff: &[Huffman; 4]) -> usize {
    let dqt = if tables.sixteen_bit() {
        2 * 133
    } else {
        2 * 69
    };
    let dht: usize = huff.iter().map(|h| 2 + 2 + 1 + 16 + h.vals.len()).sum();
    2 + 18 + dqt + 19 + dht + 14
}

fn write_headers(out: &mut Vec<u8>, w: u32, h: u32, tables: &Tables, huff: &[Huffman; 4]) {
    out.extend_from_slice(&[0xFF, 0xD8]);
    // JFIF 1.01, no density unit, 1:1, no thumbnail.
    out.extend_from_slice(&[
        0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    ]);
    let sixteen = |t: &[u16; 64]| t.iter().any(|&v| v > 255);
    for (id, t) in [(0u8, &tables.luma), (1, &tables.chroma)] {
        let wide = sixteen(t);
        let len: u16 = if wide { 2 + 1 + 128 } else { 2 + 1 + 64 };
        out.extend_from_slice(&[0xFF, 0xDB]);
        out.extend_from_slice(&len.to_be_bytes());
        out.push(id | (u8::from(wide) << 4));
        for &n in &NATURAL {
            let v = t[n];
            if wide {
                out.extend_from_slice(&v.to_be_bytes());
            } else {
                out.push(v as u8);
            }
        }
    }
    // SOF0, or SOF1 when a table needs 16-bit entries (not baseline).
    let sof = if tables.sixteen_bit() { 0xC1 } else { 0xC0 };
    out.extend_from_slice(&[0xFF, sof, 0, 17, 8]);
    out.extend_from_slice(&(h as u16).to_be_bytes());
    out.extend_from_slice(&(w as u16).to_be_bytes());
    out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    // DHT in the order the scan's components need them: Y DC, Y AC, Cb DC, Cb AC.
    for (class_id, h) in [
        (0x00u8, &huff[0]),
        (0x10, &huff[2]),
        (0x01, &huff[1]),
        (0x11, &huff[3]),
    ] {
        out.extend_from_slice(&[0xFF, 0xC4]);
        out.extend_from_slice(&((2 + 1 + 16 + h.vals.len()) as u16).to_be_bytes());
        out.push(class_id);
        out.extend_from_slice(&h.bits[1..]);
        out.extend_from_slice(&h.vals);
    }
    out.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mozjpeg(rgb: &[u8], w: u32, h: u32, q: u8) -> Vec<u8> {
        crate::encode::encode(rgb, w, h, q, crate::encode::Mode::Baseline).expect("mozjpeg")
    }

    /// Photo-like content: smooth gradients, a few edges, noise.
    fn picture(w: u32, h: u32, seed: u32) -> Vec<u8> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        let mut v = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let edge = if (x / 7 + y / 11) % 5 == 0 { 60 } else { 0 };
                let base = [
                    (x * 255 / w.max(1)) as i32,
                    (y * 255 / h.max(1)) as i32,
                    ((x + y) * 127 / (w + h).max(1)) as i32 + edge,
                ];
                for b in base {
                    let n = (rnd() % 41) as i32 - 20;
                    v.push((b + n).clamp(0, 255) as u8);
                }
            }
        }
        v
    }

    #[test]
    fn byte_identical_to_mozjpeg_baseline() {
        let sizes = [
            (1, 1),
            (7, 3),
            (8, 8),
            (9, 17),
            (16, 16),
            (17, 31),
            (33, 15),
            (48, 48),
            (96, 96),
            (100, 75),
            (129, 130),
        ];
        for (i, &(w, h)) in sizes.iter().enumerate() {
            let rgb = picture(w, h, i as u32);
            let p = Prepared::new(&rgb, w, h);
            for q in [1u8, 5, 10, 24, 25, 49, 50, 51, 75, 85, 90, 97, 98, 99, 100] {
                let t = Tables::quality(q);
                let ours = p.encode(&t);
                let theirs = mozjpeg(&rgb, w, h, q);
                assert!(
                    ours == theirs,
                    "{w}x{h} q{q}: {} vs {} bytes, first difference at {:?}",
                    ours.len(),
                    theirs.len(),
                    ours.iter().zip(&theirs).position(|(a, b)| a != b)
                );
                let bound = p.size_without_stuffing(&t);
                let stuffed = count_stuffing(&ours);
                assert_eq!(bound + stuffed, ours.len(), "{w}x{h} q{q}");
            }
        }
    }

    #[test]
    fn flat_and_extreme_pictures_match_too() {
        for (w, h, fill) in [
            (24u32, 40u32, [0u8, 0, 0]),
            (40, 24, [255, 255, 255]),
            (16, 9, [255, 0, 0]),
        ] {
            let rgb: Vec<u8> = (0..w * h).flat_map(|_| fill).collect();
            let p = Prepared::new(&rgb, w, h);
            for q in [1u8, 50, 100] {
                assert_eq!(
                    p.encode(&Tables::quality(q)),
                    mozjpeg(&rgb, w, h, q),
                    "{w}x{h} {fill:?} q{q}"
                );
            }
        }
        // Checkerboard of black and white: the largest DCT coefficients.
        let (w, h) = (64u32, 64u32);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                if (i % w + i / w) % 2 == 0 {
                    [0u8; 3]
                } else {
                    [255u8; 3]
                }
            })
            .collect();
        let p = Prepared::new(&rgb, w, h);
        for q in [1u8, 50, 100] {
            assert_eq!(
                p.encode(&Tables::quality(q)),
                mozjpeg(&rgb, w, h, q),
                "checkerboard q{q}"
            );
        }
    }

    fn count_stuffing(jpeg: &[u8]) -> usize {
        // Entropy-coded data: after the SOS segment, up to EOI.
        let mut i = 2;
        while jpeg[i + 1] != 0xDA {
            i += 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        }
        i += 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        jpeg[i..jpeg.len() - 2]
            .windows(2)
            .filter(|w| w == &[0xFF, 0x00])
            .count()
    }
}
