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

//! The LAB (locally assembled binary) feature map and its boosted classifier: the first,
//! cheap stage, run on every window of every pyramid level.
//!
//! rustface built four full-size integral images per level (sum, squared sum, 3x3 box sums
//! from them, then the feature map). Here: 3x3 box sums straight from the pixels (two
//! running 3-sums, `u16`), the feature map in tight row loops, and the window's standard
//! deviation from its own 1600 pixels, only for windows the boosted stages accept. All
//! integer sums are exact, so every value equals rustface's.

/// Windows are 40 x 40; a LAB feature covers 9 x 9 pixels (3 x 3 cells of 3 x 3).
pub(crate) const WINDOW: usize = 40;
const FEAT_SPAN: usize = 9;
const GROUP: usize = 10;
const STDDEV_THRESH: f64 = 10.0;

pub(crate) struct LabClassifier {
    /// Feature positions in the window (x, y), each in `0..=WINDOW - FEAT_SPAN`.
    features: Vec<(usize, usize)>,
    /// One threshold per base classifier (only each group's last one is used).
    thresh: Vec<f32>,
    /// Weights per base classifier, indexed by the feature value (no bounds check).
    weights: Vec<[f32; 256]>,
}

impl LabClassifier {
    pub(crate) fn new(
        features: Vec<(i32, i32)>,
        thresh: Vec<f32>,
        weights: Vec<f32>,
        stride: usize,
    ) -> Option<Self> {
        let max = (WINDOW - FEAT_SPAN) as i32;
        let ok = !features.is_empty()
            && features.len().is_multiple_of(GROUP)
            && stride == 256
            && thresh.len() == features.len()
            && weights.len() == features.len() * stride
            && features
                .iter()
                .all(|&(x, y)| (0..=max).contains(&x) && (0..=max).contains(&y));
        ok.then(|| LabClassifier {
            features: features
                .iter()
                .map(|&(x, y)| (x as usize, y as usize))
                .collect(),
            thresh,
            weights: weights
                .chunks_exact(256)
                .map(|w| {
                    let mut a = [0.0; 256];
                    a.copy_from_slice(w);
                    a
                })
                .collect(),
        })
    }

    /// The feature positions as offsets in a feature map `width` wide.
    pub(crate) fn offsets(&self, width: usize, out: &mut Vec<usize>) {
        out.clear();
        out.extend(self.features.iter().map(|&(x, y)| y * width + x));
    }

    /// The boosted score of the window at (x, y) of `map` (`offsets` from [`Self::offsets`]
    /// for this map's width); positive when every group passes and the window's pixels
    /// are not flat. Same float operations, same order, as rustface.
    pub(crate) fn classify(
        &self,
        map: &LabMap,
        offsets: &[usize],
        x: usize,
        y: usize,
    ) -> (bool, f32) {
        let base = y * map.width + x;
        let feat = &map.feat[base..];
        let mut score = 0.0f32;
        let mut positive = true;
        let groups = offsets
            .chunks_exact(GROUP)
            .zip(self.weights.chunks_exact(GROUP))
            .zip(self.thresh.chunks_exact(GROUP));
        for ((offs, weights), thresh) in groups {
            for (&o, w) in offs.iter().zip(weights) {
                score += w[usize::from(feat[o])];
            }
            positive = score >= thresh[GROUP - 1];
            if !positive {
                break;
            }
        }
        let positive = positive && map.std_dev(x, y) > STDDEV_THRESH;
        (positive, score)
    }
}

/// The LAB feature map of one pyramid level (and the level's pixels, for the
/// standard deviation).
#[derive(Default)]
pub(crate) struct LabMap {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
    /// Horizontal 3-sums, then (in place of the next rows) 3 x 3 box sums; `width` stride.
    box_sum: Vec<u16>,
    /// Feature values for top-left corners in `0..=height - 9` x `0..=width - 9`.
    feat: Vec<u8>,
}

impl LabMap {
    /// Compute the map of a `width` x `height` grey image (both at least [`WINDOW`]).
    pub(crate) fn compute(&mut self, pixels: &[u8], width: usize, height: usize) {
        debug_assert!(width >= WINDOW && height >= WINDOW && pixels.len() == width * height);
        self.width = width;
        self.height = height;
        self.pixels.clear();
        self.pixels.extend_from_slice(pixels);

        // Horizontal 3-sums of every row (columns 0..=width-3), then vertical 3-sums of
        // those: the 3x3 box sum with its top-left corner at (x, y), rows 0..=height-3.
        let mut h = vec![0u16; width * height];
        for (src, dst) in pixels.chunks_exact(width).zip(h.chunks_exact_mut(width)) {
            let n = width - 2;
            let (a, b, c) = (&src[..n], &src[1..n + 1], &src[2..n + 2]);
            for (((d, &a), &b), &c) in dst[..n].iter_mut().zip(a).zip(b).zip(c) {
                *d = u16::from(a) + u16::from(b) + u16::from(c);
            }
        }
        self.box_sum.clear();
        self.box_sum.resize(width * (height - 2), 0);
        for (r, dst) in self.box_sum.chunks_exact_mut(width).enumerate() {
            let (a, b, c) = (
                &h[r * width..(r + 1) * width],
                &h[(r + 1) * width..(r + 2) * width],
                &h[(r + 2) * width..(r + 3) * width],
            );
            for (((d, &a), &b), &c) in dst.iter_mut().zip(a).zip(b).zip(c) {
                *d = a + b + c;
            }
        }

        // Each feature compares the centre cell's sum with its 8 neighbours', clockwise
        // from the top-left: bits 0x80 0x40 0x20 / 0x10 . 0x08 / 0x04 0x02 0x01.
        let n = width - (FEAT_SPAN - 1);
        let rows = height - (FEAT_SPAN - 1);
        self.feat.clear();
        self.feat.resize(width * rows, 0);
        let bs = &self.box_sum;
        for (r, dst) in self.feat.chunks_exact_mut(width).enumerate() {
            let r0 = &bs[r * width..(r + 1) * width];
            let r3 = &bs[(r + 3) * width..(r + 4) * width];
            let r6 = &bs[(r + 6) * width..(r + 7) * width];
            let (t0, t3, t6) = (&r0[..n], &r0[3..n + 3], &r0[6..n + 6]);
            let (m0, m3, m6) = (&r3[..n], &r3[3..n + 3], &r3[6..n + 6]);
            let (b0, b3, b6) = (&r6[..n], &r6[3..n + 3], &r6[6..n + 6]);
            for i in 0..n {
                let w = m3[i];
                let v = (u8::from(w >= t0[i]) << 7)
                    | (u8::from(w >= t3[i]) << 6)
                    | (u8::from(w >= t6[i]) << 5)
                    | (u8::from(w >= m0[i]) << 4)
                    | (u8::from(w >= m6[i]) << 3)
                    | (u8::from(w >= b0[i]) << 2)
                    | (u8::from(w >= b3[i]) << 1)
                    | u8::from(w >= b6[i]);
                dst[i] = v;
            }
        }
    }

    pub(crate) fn width(&self) -> usize {
        self.width
    }

    pub(crate) fn height(&self) -> usize {
        self.height
    }

    /// Standard deviation of the window's pixels: exact integer sums, then rustface's
    /// float formula.
    fn std_dev(&self, x: usize, y: usize) -> f64 {
        let mut sum = 0u32;
        let mut sq = 0u32;
        for row in self.pixels[y * self.width..]
            .chunks(self.width)
            .take(WINDOW)
        {
            for &p in &row[x..x + WINDOW] {
                sum += u32::from(p);
                sq += u32::from(p) * u32::from(p);
            }
        }
        let area = (WINDOW * WINDOW) as f64;
        let mean = f64::from(sum) / area;
        let m2 = f64::from(sq) / area;
        (m2 - mean * mean).sqrt()
    }
}
