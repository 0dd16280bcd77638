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
//! rustface's: the same f64 expression per pixel, with the per-column and per-row
//! positions and weights computed once instead of per pixel.

/// Per destination column (or row): source index and weight.
#[derive(Default)]
pub(crate) struct Resizer {
    xs: Vec<(usize, f64)>,
    ys: Vec<(usize, f64)>,
}

fn table(out: &mut Vec<(usize, f64)>, src: usize, dst: usize) {
    let scale = src as f64 / dst as f64;
    out.clear();
    out.extend((0..dst).map(|i| {
        let s = scale * i as f64;
        let n = (s as usize).min(src - 2);
        (n, s - n as f64)
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
        dst.reserve(dw * dh);
        for &(ny, wy) in &self.ys {
            let r0 = &src[ny * sw..(ny + 1) * sw];
            let r1 = &src[(ny + 1) * sw..(ny + 2) * sw];
            dst.extend(self.xs.iter().map(|&(nx, wx)| {
                let d1 = f64::from(r0[nx]);
                let d2 = f64::from(r0[nx + 1]);
                let d3 = f64::from(r1[nx]);
                let d4 = f64::from(r1[nx + 1]);
                let v = (1.0 - wy) * ((1.0 - wx) * d1 + wx * d2)
                    + wy * ((1.0 - wx) * d3 + wx * d4);
                v as u8
            }));
        }
    }
}
