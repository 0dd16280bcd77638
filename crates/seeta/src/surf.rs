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

//! The SURF-like feature map of a 40 x 40 window and the MLP classifiers that use it: the
//! later stages, run on the windows the LAB stage proposed (with box regression).
//!
//! rustface built the eight-channel integral image of every window in six passes. Here
//! column sums of the eight channels run down the window in straight loops, and sums
//! across are taken only at the rows where the stage's features have cell edges (exact
//! integer sums: the same values). The MLP layers keep rustface's float operations in the same order
//! per output (so scores are bit-identical) but run eight outputs at once over weights
//! transposed into blocks of eight at load time.

use crate::lab::WINDOW;

const CHANNELS: usize = 8;
const CELLS: usize = 4;
/// Values in one feature vector: 2 x 2 cells, 8 channels each.
pub(crate) const FEATURE_DIM: usize = CELLS * CHANNELS;
const BLOCK: usize = 8;
/// Prefix sums have one more entry than the window's side (the empty sum first).
const SIDE: usize = WINDOW + 1;

/// One pooled feature: a patch of 2 x 2 cells in the window, as the four cells'
/// (x0, y0, x1, y1) pixel ranges (end exclusive).
#[derive(Clone, Copy)]
struct Feature {
    cells: [(usize, usize, usize, usize); CELLS],
}

/// rustface's feature pool for a 40 x 40 sample: patch formats 1:1, 1:2, 2:1, 2:3, 3:2,
/// sides 16..=40 in steps of one, moved by 16 pixels, 2 x 2 cells.
fn feature_pool() -> Vec<Feature> {
    const FORMATS: [(usize, usize); 5] = [(1, 1), (1, 2), (2, 1), (2, 3), (3, 2)];
    let (sample, min, step) = (WINDOW, 16, 16);
    let mut pool = Vec::new();
    for (fw, fh) in FORMATS {
        for h in min..=sample {
            if h % 2 != 0 || h % fh != 0 {
                continue;
            }
            let w = h / fh * fw;
            if w % 2 != 0 || w < min || w > sample {
                continue;
            }
            for y in (0..=sample - h).step_by(step) {
                for x in (0..=sample - w).step_by(step) {
                    let (cw, ch) = (w / 2, h / 2);
                    let mut cells = [(0, 0, 0, 0); CELLS];
                    for (i, c) in cells.iter_mut().enumerate() {
                        let (cx, cy) = (x + (i % 2) * cw, y + (i / 2) * ch);
                        *c = (cx, cy, cx + cw, cy + ch);
                    }
                    pool.push(Feature { cells });
                }
            }
        }
    }
    pool
}

/// Prefix sums of the window's eight gradient channels, kept only at the rows a stage
/// needs: `snaps[slot[y]][ch][x]` = sum over rows < y and columns < x.
pub(crate) struct SurfMap {
    snaps: Vec<[[i32; SIDE]; CHANNELS]>,
    slot: [usize; SIDE],
    pool: Vec<Feature>,
}

impl Default for SurfMap {
    fn default() -> Self {
        SurfMap {
            snaps: Vec::new(),
            slot: [usize::MAX; SIDE],
            pool: feature_pool(),
        }
    }
}

impl SurfMap {
    /// Compute the map of a 40 x 40 window for a stage reading the integral image at
    /// `rows` (sorted; from [`SurfMlp::rows`]). Channels per pixel, from the gradients
    /// dx, dy (central differences, doubled one-sided ones at the borders):
    /// dy >= 0: dx, |dx|; dy < 0: dx, |dx|; dx >= 0: dy, |dy|; dx < 0: dy, |dy|.
    /// Column sums run down the rows (straight loops over x, which vectorise); a row's
    /// running sums across are taken only where a feature's cell starts or ends.
    pub(crate) fn compute(&mut self, win: &[u8], rows: &[usize]) {
        debug_assert_eq!(win.len(), WINDOW * WINDOW);
        self.snaps.clear();
        self.slot = [usize::MAX; SIDE];
        let mut cols = [[0i32; WINDOW]; CHANNELS];
        let mut dx = [0i32; WINDOW];
        let mut dy = [0i32; WINDOW];
        let mut next = rows.iter().copied().peekable();
        for r in 0..=WINDOW {
            if next.peek() == Some(&r) {
                next.next();
                let mut snap = [[0i32; SIDE]; CHANNELS];
                for (p, col) in snap.iter_mut().zip(&cols) {
                    let mut acc = 0;
                    for (o, &v) in p[1..].iter_mut().zip(col) {
                        acc += v;
                        *o = acc;
                    }
                }
                self.slot[r] = self.snaps.len();
                self.snaps.push(snap);
            }
            if r == WINDOW || next.peek().is_none() {
                break;
            }
            let (up, down, k) = match r {
                0 => (0, 1, 2),
                r if r == WINDOW - 1 => (r - 1, r, 2),
                r => (r - 1, r + 1, 1),
            };
            let line = &win[r * WINDOW..(r + 1) * WINDOW];
            let up = &win[up * WINDOW..(up + 1) * WINDOW];
            let down = &win[down * WINDOW..(down + 1) * WINDOW];
            for ((d, &a), &b) in dy.iter_mut().zip(up).zip(down) {
                *d = (i32::from(b) - i32::from(a)) * k;
            }
            for ((d, &a), &b) in dx[1..WINDOW - 1].iter_mut().zip(line).zip(&line[2..]) {
                *d = i32::from(b) - i32::from(a);
            }
            dx[0] = (i32::from(line[1]) - i32::from(line[0])) * 2;
            dx[WINDOW - 1] = (i32::from(line[WINDOW - 1]) - i32::from(line[WINDOW - 2])) * 2;

            let [c0, c1, c2, c3, c4, c5, c6, c7] = &mut cols;
            for x in 0..WINDOW {
                let (vx, vy) = (dx[x], dy[x]);
                // Sign masks: all ones when negative.
                let (my, mx) = (vy >> 31, vx >> 31);
                let (ax, ay) = (vx.abs(), vy.abs());
                c0[x] += vx & !my;
                c1[x] += ax & !my;
                c2[x] += vx & my;
                c3[x] += ax & my;
                c4[x] += vy & !mx;
                c5[x] += ay & !mx;
                c6[x] += vy & mx;
                c7[x] += ay & mx;
            }
        }
    }

    /// Feature `id`'s normalised vector (rustface's arithmetic: i32 squares wrapping as
    /// in its release builds, an f64 sum, an f32 norm) into `out` (32 values).
    fn feature(&self, id: usize, out: &mut [f32]) {
        let f = &self.pool[id];
        let mut v = [0i32; FEATURE_DIM];
        for (cell, (x0, y0, x1, y1)) in v.chunks_exact_mut(CHANNELS).zip(f.cells) {
            let (top, bottom) = (&self.snaps[self.slot[y0]], &self.snaps[self.slot[y1]]);
            for (i, c) in cell.iter_mut().enumerate() {
                *c = bottom[i][x1] - top[i][x1] - bottom[i][x0] + top[i][x0];
            }
        }
        let prod: f64 = v.iter().map(|&x| f64::from(x.wrapping_mul(x))).sum();
        if prod != 0.0 {
            let norm = prod.sqrt() as f32;
            for (o, &x) in out.iter_mut().zip(&v) {
                *o = x as f32 / norm;
            }
        } else {
            out.fill(0.0);
        }
    }
}

/// A fully connected layer, weights transposed into blocks of [`BLOCK`] outputs:
/// `weights[(block * input + i) * BLOCK + lane]` (zero past the last output).
struct Layer {
    input: usize,
    output: usize,
    weights: Vec<f32>,
    biases: Vec<f32>,
    sigmoid: bool,
}

impl Layer {
    fn new(input: usize, output: usize, w: &[f32], biases: Vec<f32>, sigmoid: bool) -> Self {
        let blocks = output.div_ceil(BLOCK);
        let mut weights = vec![0.0; blocks * input * BLOCK];
        for o in 0..output {
            let (b, lane) = (o / BLOCK, o % BLOCK);
            for i in 0..input {
                weights[(b * input + i) * BLOCK + lane] = w[o * input + i];
            }
        }
        Layer {
            input,
            output,
            weights,
            biases,
            sigmoid,
        }
    }

    /// rustface: `sum(input[i] * w[o][i])` in order of i (from `Sum`'s own start value),
    /// plus the bias, then ReLU or the logistic function.
    fn compute(&self, input: &[f32], output: &mut Vec<f32>) {
        let start: f32 = std::iter::empty::<f32>().sum();
        output.clear();
        let input = &input[..self.input];
        for (b, w) in self.weights.chunks_exact(self.input * BLOCK).enumerate() {
            let mut acc = [start; BLOCK];
            for (&x, w) in input.iter().zip(w.chunks_exact(BLOCK)) {
                for lane in 0..BLOCK {
                    acc[lane] += x * w[lane];
                }
            }
            let n = BLOCK.min(self.output - b * BLOCK);
            for (&a, &bias) in acc[..n].iter().zip(&self.biases[b * BLOCK..]) {
                let x = a + bias;
                output.push(if self.sigmoid {
                    1.0 / (1.0 + (-x).exp())
                } else if x > 0.0 {
                    x
                } else {
                    0.0
                });
            }
        }
    }
}

pub(crate) struct SurfMlp {
    /// Pool indices of the input features (the model's ids minus one).
    features: Vec<usize>,
    /// The rows where its features' cells start or end (sorted, distinct).
    rows: Vec<usize>,
    thresh: f32,
    layers: Vec<Layer>,
}

/// Scratch vectors for [`SurfMlp::classify`].
#[derive(Default)]
pub(crate) struct MlpBuffers {
    input: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
}

impl SurfMlp {
    /// `layers`: (input size, output size, weights row-major per output, biases).
    pub(crate) fn new(
        ids: Vec<i32>,
        thresh: f32,
        layers: Vec<(usize, usize, Vec<f32>, Vec<f32>)>,
    ) -> Option<Self> {
        let pool = feature_pool().len() as i32;
        // rustface also looked up the dimension of feature `id` (not `id - 1`).
        if ids.iter().any(|&id| id < 1 || id >= pool) || layers.len() < 2 {
            return None;
        }
        let n = layers.len();
        let mut out = Vec::with_capacity(n);
        let mut prev = layers[0].0;
        for (k, (input, output, w, b)) in layers.into_iter().enumerate() {
            if input != prev || w.len() != input * output || b.len() != output || output == 0 {
                return None;
            }
            prev = output;
            out.push(Layer::new(input, output, &w, b, k == n - 1));
        }
        let features: Vec<usize> = ids.iter().map(|&id| (id - 1) as usize).collect();
        let pool = feature_pool();
        let mut rows: Vec<usize> = features
            .iter()
            .flat_map(|&f| pool[f].cells.iter().flat_map(|c| [c.1, c.3]))
            .collect();
        rows.sort_unstable();
        rows.dedup();
        Some(SurfMlp {
            features,
            rows,
            thresh,
            layers: out,
        })
    }

    /// The rows [`SurfMap::compute`] must keep for this classifier.
    pub(crate) fn rows(&self) -> &[usize] {
        &self.rows
    }

    pub(crate) fn output_dim(&self) -> usize {
        self.layers.last().map_or(0, |l| l.output)
    }

    /// Classify the window in `map`; `bufs.a` holds the outputs afterwards (score, then
    /// the box regression).
    pub(crate) fn classify(&self, map: &SurfMap, bufs: &mut MlpBuffers) -> (bool, f32) {
        bufs.input.clear();
        bufs.input.resize(self.features.len() * FEATURE_DIM, 0.0);
        for (&id, out) in self
            .features
            .iter()
            .zip(bufs.input.chunks_exact_mut(FEATURE_DIM))
        {
            map.feature(id, out);
        }
        self.layers[0].compute(&bufs.input, &mut bufs.a);
        for layer in &self.layers[1..] {
            layer.compute(&bufs.a, &mut bufs.b);
            std::mem::swap(&mut bufs.a, &mut bufs.b);
        }
        let score = bufs.a[0];
        (score > self.thresh, score)
    }

    pub(crate) fn outputs<'a>(&self, bufs: &'a MlpBuffers) -> &'a [f32] {
        &bufs.a
    }
}
