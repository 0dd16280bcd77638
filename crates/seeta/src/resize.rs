// This file is part of photobulk-seeta, a copy of rustface 0.1.7 (the Rust port of the
// SeetaFace Detection module) reworked for speed; see README.md. Original notice:
//
// This file is part of the SeetaFace Detection module, containing codes implementing the
// face detection method described in the following paper:
//
//      Funnel-structured cascade for multi-view face detection with alignment awareness,
//      Shuzhe Wu, Meina Kan, Zhenliang He, Shiguang Shan, Xilin Chen.
//      In Neurocomputing (under review)
//
// Copyright (C) 2016, Visual Information Processing and Learning (VIPL) group,
// Institute of Computing Technology, Chinese Academy of Sciences, Beijing, China.
//
// As an open-source face recognition engine: you can redistribute SeetaFace source codes
// and/or modify it under the terms of the BSD 2-Clause License.
//
// You should have received a copy of the BSD 2-Clause License along with the software.
// If not, see < https://opensource.org/licenses/BSD-2-Clause>.

//! SeetaFace's bilinear resize (pyramid levels and proposal windows), bit-identical to
//! rustface's per-pixel f64 formula
//! `(1 - wy) * ((1 - wx) * d1 + wx * d2) + wy * ((1 - wx) * d3 + wx * d4)`:
//! the two inner (horizontal) terms are computed once per source row and column and
//! reused by the destination rows that share them, then combined vertically in a
//! straight loop. Same operations on the same values, so the same bytes.

/// Every byte value as f64 (a load instead of a conversion).
static BYTE_F64: [f64; 256] = {
    let mut t = [0.0; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as f64;
        i += 1;
    }
    t
};

/// Per destination column (or row): source index and weight; scratch rows.
#[derive(Default)]
pub(crate) struct Resizer {
    xs: Vec<(usize, f64, f64)>,
    ys: Vec<(usize, f64, f64)>,
    /// Horizontally interpolated source rows (`dw` values each), by source row.
    rows: Vec<f64>,
    /// Which source row each slot of `rows` holds (two slots).
    held: [usize; 2],
}

fn table(out: &mut Vec<(usize, f64, f64)>, src: usize, dst: usize) {
    let scale = src as f64 / dst as f64;
    out.clear();
    out.extend((0..dst).map(|i| {
        let s = scale * i as f64;
        let n = (s as usize).min(src - 2);
        let w = s - n as f64;
        (n, w, 1.0 - w)
    }));
}

impl Resizer {
    /// Resize `src` (`sw` x `sh`, both >= 2) to `dw` x `dh` into `dst`.
    pub(crate) fn resize(
        &mut self,
        src: &[u8],
        sw: usize,
        sh: usize,
        dst: &mut Vec<u8>,
        dw: usize,
        dh: usize,
    ) {
        dst.clear();
        if sw == dw && sh == dh {
            dst.extend_from_slice(src);
            return;
        }
        table(&mut self.xs, sw, dw);
        table(&mut self.ys, sh, dh);
        dst.resize(dw * dh, 0);
        self.rows.clear();
        self.rows.resize(2 * dw, 0.0);
        self.held = [usize::MAX; 2];
        let ok = |t: &[(usize, f64, f64)]| t.iter().all(|&(_, w, _)| (0.0..=1.0).contains(&w));
        let inside = ok(&self.xs) && ok(&self.ys);
        let ys = std::mem::take(&mut self.ys);
        for (&(ny, wy, wy1), out) in ys.iter().zip(dst.chunks_exact_mut(dw)) {
            // Slots of source rows ny and ny + 1 (rows advance, so a row computed as
            // "ny + 1" is usually reused as the next "ny").
            let a = self.row(src, sw, ny, None);
            let b = self.row(src, sw, ny + 1, Some(a));
            let (ra, rb) = (
                &self.rows[a * dw..(a + 1) * dw],
                &self.rows[b * dw..(b + 1) * dw],
            );
            if inside {
                // Weights in 0..=1 on bytes: values in 0.0..256.0, where `as i32`
                // truncates like rustface's `as u8` (and vectorises).
                for ((o, &h0), &h1) in out.iter_mut().zip(ra).zip(rb) {
                    *o = (wy1 * h0 + wy * h1) as i32 as u8;
                }
            } else {
                // Windows under 40 pixels extrapolate past the last source row or
                // column: rustface's `as u8` saturates.
                for ((o, &h0), &h1) in out.iter_mut().zip(ra).zip(rb) {
                    *o = (wy1 * h0 + wy * h1).clamp(0.0, 255.0) as u8;
                }
            }
        }
        self.ys = ys;
    }

    /// The slot holding source row `y` interpolated across, computing it if needed.
    /// Never evicts slot `keep`; otherwise keeps row `y + 1` if held.
    fn row(&mut self, src: &[u8], sw: usize, y: usize, keep: Option<usize>) -> usize {
        if let Some(slot) = self.held.iter().position(|&h| h == y) {
            return slot;
        }
        let slot = match keep {
            Some(k) => 1 - k,
            None if self.held[0] == y + 1 => 1,
            None => 0,
        };
        let dw = self.xs.len();
        let line = &src[y * sw..(y + 1) * sw];
        for (h, &(nx, wx, wx1)) in self.rows[slot * dw..(slot + 1) * dw]
            .iter_mut()
            .zip(&self.xs)
        {
            let d1 = BYTE_F64[usize::from(line[nx])];
            let d2 = BYTE_F64[usize::from(line[nx + 1])];
            *h = wx1 * d1 + wx * d2;
        }
        self.held[slot] = y;
        slot
    }
}
