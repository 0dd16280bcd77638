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

//! SeetaFace Detection's frontal face detector (funnel-structured cascade), vendored from
//! rustface 0.1.7 and reworked to cost a fraction of the CPU with the same results
//! (README.md). Grey image in, face boxes with scores out.

mod lab;
mod model;
mod resize;
mod surf;

pub use crate::model::{parse_model, read_model, Model};

use crate::lab::{LabMap, WINDOW};
use crate::model::Classifier;
use crate::resize::Resizer;
use crate::surf::{MlpBuffers, SurfMap};
use std::cmp::Ordering;
use std::sync::Arc;

/// A grey image: `width * height` bytes, row-major.
#[derive(Debug, Clone, Copy)]
pub struct ImageData<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
}

impl<'a> ImageData<'a> {
    /// # Panics
    ///
    /// If `data` is not `width * height` bytes.
    pub fn new(data: &'a [u8], width: u32, height: u32) -> Self {
        assert_eq!(data.len(), width as usize * height as usize);
        ImageData {
            data,
            width,
            height,
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Rectangle {
    x: i32,
    y: i32,
    width: u32,
    height: u32,
}

impl Rectangle {
    pub fn new(x: i32, y: i32, width: u32, height: u32) -> Self {
        Rectangle {
            x,
            y,
            width,
            height,
        }
    }

    pub fn x(&self) -> i32 {
        self.x
    }

    pub fn y(&self) -> i32 {
        self.y
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }
}

/// A detected face: its box in the input image and its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaceInfo {
    bbox: Rectangle,
    score: f64,
}

impl FaceInfo {
    pub fn bbox(&self) -> &Rectangle {
        &self.bbox
    }

    pub fn score(&self) -> f64 {
        self.score
    }
}

/// Create a face detector with `model`.
pub fn create_detector_with_model(model: Model) -> Box<dyn Detector> {
    Box::new(FuStDetector::new(Arc::new(model)))
}

/// Create a face detector sharing a parsed model (parse once, one detector per thread).
pub fn create_detector_with_shared_model(model: Arc<Model>) -> Box<dyn Detector> {
    Box::new(FuStDetector::new(model))
}

/// rustface's detector interface.
pub trait Detector: Send {
    /// Faces in a grey image.
    ///
    /// # Panics
    ///
    /// If the image has a zero side.
    fn detect(&mut self, image: &ImageData) -> Vec<FaceInfo>;

    /// The sliding window's steps (pixels, at least 1).
    ///
    /// # Panics
    ///
    /// If a step is 0.
    fn set_slide_window_step(&mut self, step_x: u32, step_y: u32);

    /// Smallest face to find (at least 20; as in rustface, the search starts at the
    /// 40-pixel window whatever this is).
    ///
    /// # Panics
    ///
    /// If under 20.
    fn set_min_face_size(&mut self, min_face_size: u32);

    /// Largest face to find (0: the image's shorter side).
    fn set_max_face_size(&mut self, max_face_size: u32);

    /// Ratio between pyramid levels, 0.01..=0.99.
    ///
    /// # Panics
    ///
    /// Outside that range.
    fn set_pyramid_scale_factor(&mut self, scale_factor: f32);

    /// Faces scoring under this are dropped.
    ///
    /// # Panics
    ///
    /// If not positive.
    fn set_score_thresh(&mut self, thresh: f64);
}

const MIN_WINDOW_SIZE: u32 = 20;

/// The funnel-structured detector; its buffers are reused from photo to photo.
pub struct FuStDetector {
    model: Arc<Model>,
    slide_wnd_step_x: u32,
    slide_wnd_step_y: u32,
    min_face_size: u32,
    max_face_size: u32,
    cls_thresh: f64,
    pyramid_scale_factor: f32,
    lab: LabMap,
    surf: SurfMap,
    mlp: MlpBuffers,
    resizer: Resizer,
    level: Vec<u8>,
    offsets: Vec<usize>,
    crop: Vec<u8>,
    window: Vec<u8>,
}

impl std::fmt::Debug for FuStDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuStDetector")
            .field("step", &(self.slide_wnd_step_x, self.slide_wnd_step_y))
            .field("min_face_size", &self.min_face_size)
            .field("max_face_size", &self.max_face_size)
            .field("cls_thresh", &self.cls_thresh)
            .field("pyramid_scale_factor", &self.pyramid_scale_factor)
            .finish()
    }
}

impl FuStDetector {
    pub fn new(model: Arc<Model>) -> Self {
        FuStDetector {
            model,
            slide_wnd_step_x: 4,
            slide_wnd_step_y: 4,
            min_face_size: 20,
            max_face_size: 0,
            cls_thresh: 3.85,
            pyramid_scale_factor: 0.8,
            lab: LabMap::default(),
            surf: SurfMap::default(),
            mlp: MlpBuffers::default(),
            resizer: Resizer::default(),
            level: Vec::new(),
            offsets: Vec::new(),
            crop: Vec::new(),
            window: Vec::new(),
        }
    }
}

impl Detector for FuStDetector {
    fn detect(&mut self, image: &ImageData) -> Vec<FaceInfo> {
        assert!(
            image.width() > 0 && image.height() > 0,
            "Illegal image: {}x{}",
            image.width(),
            image.height()
        );
        let mut min_img_size = image.height().min(image.width());
        if self.max_face_size > 0 {
            min_img_size = min_img_size.min(self.max_face_size);
        }
        let model = Arc::clone(&self.model);
        let mut faces = self.detect_impl(&model, image, WINDOW as f32 / min_img_size as f32);
        faces.retain(|f| f.score >= self.cls_thresh);
        faces
    }

    fn set_slide_window_step(&mut self, step_x: u32, step_y: u32) {
        assert!(step_x > 0, "Illegal horizontal step: {step_x}");
        assert!(step_y > 0, "Illegal vertical step: {step_y}");
        self.slide_wnd_step_x = step_x;
        self.slide_wnd_step_y = step_y;
    }

    fn set_min_face_size(&mut self, min_face_size: u32) {
        assert!(
            min_face_size >= MIN_WINDOW_SIZE,
            "Illegal min face size: {min_face_size}"
        );
        self.min_face_size = min_face_size;
    }

    fn set_max_face_size(&mut self, max_face_size: u32) {
        self.max_face_size = max_face_size;
    }

    fn set_pyramid_scale_factor(&mut self, scale_factor: f32) {
        assert!(
            (0.01..=0.99).contains(&scale_factor),
            "Illegal scale factor: {scale_factor}"
        );
        self.pyramid_scale_factor = scale_factor;
    }

    fn set_score_thresh(&mut self, thresh: f64) {
        assert!(thresh > 0.0, "Illegal threshold: {thresh}");
        self.cls_thresh = thresh;
    }
}

impl FuStDetector {
    /// rustface's `detect_impl`: LAB stage on every pyramid level, NMS, then the MLP
    /// hierarchies on 40x40 crops of the original image, each stage regressing the boxes.
    fn detect_impl(&mut self, model: &Model, image: &ImageData, min_scale: f32) -> Vec<FaceInfo> {
        let first = model.hierarchy_sizes[0];
        let mut proposals: Vec<Vec<FaceInfo>> = vec![Vec::new(); first];
        let mut proposals_nms: Vec<Vec<FaceInfo>> = vec![Vec::new(); first];
        let (w1, h1) = (image.width(), image.height());
        let wnd = WINDOW as u32;
        let step = if self.pyramid_scale_factor > 0.0 && self.pyramid_scale_factor <= 1.0 {
            self.pyramid_scale_factor
        } else {
            0.8
        };

        let mut scale = 1.0f32;
        while scale >= min_scale {
            let ws = (w1 as f32 * scale) as u32;
            let hs = (h1 as f32 * scale) as u32;
            let level_scale = scale;
            scale *= step;
            // (rustface would panic here: a level under the window has no windows.)
            if ws < wnd || hs < wnd {
                continue;
            }
            self.resizer.resize(
                image.data(),
                w1 as usize,
                h1 as usize,
                &mut self.level,
                ws as usize,
                hs as usize,
            );
            self.lab.compute(&self.level, ws as usize, hs as usize);
            let width = (wnd as f32 / level_scale + 0.5) as u32;
            for (classifier, proposal) in model.classifiers[..first].iter().zip(&mut proposals) {
                let Classifier::Lab(c) = classifier else {
                    continue;
                };
                c.offsets(self.lab.width(), &mut self.offsets);
                let max_x = self.lab.width() - WINDOW;
                let max_y = self.lab.height() - WINDOW;
                for y in (0..=max_y).step_by(self.slide_wnd_step_y as usize) {
                    for x in (0..=max_x).step_by(self.slide_wnd_step_x as usize) {
                        let (positive, score) = c.classify(&self.lab, &self.offsets, x, y);
                        if positive {
                            proposal.push(FaceInfo {
                                bbox: Rectangle::new(
                                    (x as f32 / level_scale + 0.5) as i32,
                                    (y as f32 / level_scale + 0.5) as i32,
                                    width,
                                    width,
                                ),
                                score: f64::from(score),
                            });
                        }
                    }
                }
            }
        }
        // rustface ran every first-hierarchy classifier on a window before moving on,
        // each filling its own list: the same lists in the same order as here.

        for (p, nms) in proposals.iter_mut().zip(&mut proposals_nms) {
            non_maximum_suppression(p, nms, 0.8);
            p.clear();
        }

        let mut cls_idx = first;
        let mut model_idx = first;
        let mut buf_idx: Vec<usize> = Vec::new();
        for i in 1..model.hierarchy_sizes.len() {
            let hierarchy_size = model.hierarchy_sizes[i];
            buf_idx.clear();
            for _ in 0..hierarchy_size {
                let wnd_src = &model.wnd_src_id[cls_idx];
                let r = wnd_src[0];
                buf_idx.push(r);
                proposals[r].clear();
                for &k in wnd_src {
                    let (src, dst) = (proposals_nms[k].clone(), &mut proposals[r]);
                    dst.extend(src);
                }

                let k_max = model.num_stages[cls_idx];
                for k in 0..k_max {
                    let Classifier::Surf(classifier) = &model.classifiers[model_idx] else {
                        model_idx += 1;
                        continue;
                    };
                    let bboxes = &mut proposals[r];
                    let mut kept = 0;
                    for m in 0..bboxes.len() {
                        let b = bboxes[m].bbox;
                        if b.x + b.width as i32 <= 0 || b.y + b.height as i32 <= 0 {
                            continue;
                        }
                        let roi = self.window_data(image, b);
                        bboxes[m].bbox = roi;
                        self.surf.compute(&self.window, classifier.rows());
                        let (positive, score) = classifier.classify(&self.surf, &mut self.mlp);
                        if positive {
                            let p = classifier.outputs(&self.mlp);
                            let x = roi.x as f32;
                            let y = roi.y as f32;
                            let w = roi.width as f32;
                            let h = roi.height as f32;
                            let bbox_w = ((p[3] * 2.0 - 1.0) * w + w + 0.5).floor();
                            let nb = &mut bboxes[kept];
                            nb.bbox.width = bbox_w as u32;
                            nb.bbox.height = bbox_w as u32;
                            nb.bbox.x = ((p[1] * 2.0 - 1.0) * w + x + (w - bbox_w) * 0.5 + 0.5)
                                .floor() as i32;
                            nb.bbox.y = ((p[2] * 2.0 - 1.0) * h + y + (h - bbox_w) * 0.5 + 0.5)
                                .floor() as i32;
                            nb.score = f64::from(score);
                            kept += 1;
                        }
                    }
                    bboxes.truncate(kept);

                    if k + 1 < k_max {
                        non_maximum_suppression(&mut proposals[r], &mut proposals_nms[r], 0.8);
                        proposals[r].clone_from(&proposals_nms[r]);
                    } else if i == model.hierarchy_sizes.len() - 1 {
                        non_maximum_suppression(&mut proposals[r], &mut proposals_nms[r], 0.3);
                        proposals[r].clone_from(&proposals_nms[r]);
                    }
                    model_idx += 1;
                }
                cls_idx += 1;
            }
            for (j, &b) in buf_idx.iter().enumerate() {
                proposals_nms[j] = proposals[b].clone();
            }
        }
        proposals_nms.swap_remove(0)
    }

    /// The box's pixels (zero outside the image) resized to the 40x40 window in
    /// `self.window`; returns the box with a negative x or y moved to 0 (rustface's
    /// `get_window_data` did that to the proposal, width and height unchanged).
    fn window_data(&mut self, img: &ImageData, mut roi: Rectangle) -> Rectangle {
        let (rw, rh) = (roi.width as i32, roi.height as i32);
        let (iw, ih) = (img.width() as i32, img.height() as i32);
        let pad_right = (roi.x + rw - iw).max(0);
        let pad_left = if roi.x >= 0 {
            0
        } else {
            let t = roi.x;
            roi.x = 0;
            -t
        };
        let pad_bottom = (roi.y + rh - ih).max(0);
        let pad_top = if roi.y >= 0 {
            0
        } else {
            let t = roi.y;
            roi.y = 0;
            -t
        };
        // rustface copied `rw - pad_left - pad_right` pixels a row from (roi.x, roi.y)
        // after the shift above, into columns pad_left.. of each row.
        self.crop.clear();
        self.crop.resize((rw * rh) as usize, 0);
        let len = (rw - pad_left - pad_right).max(0) as usize;
        let data = img.data();
        for row in pad_top..(rh - pad_bottom).max(pad_top) {
            if len == 0 {
                break;
            }
            let sy = roi.y + row - pad_top;
            let src = (sy * iw + roi.x) as usize;
            let dst = (row * rw + pad_left) as usize;
            self.crop[dst..dst + len].copy_from_slice(&data[src..src + len]);
        }
        self.resizer.resize(
            &self.crop,
            rw as usize,
            rh as usize,
            &mut self.window,
            WINDOW,
            WINDOW,
        );
        roi
    }
}

/// rustface's non-maximum suppression: best score first, each kept box absorbs the
/// later ones overlapping it by more than `iou_thresh` (adding their scores).
fn non_maximum_suppression(bboxes: &mut [FaceInfo], nms: &mut Vec<FaceInfo>, iou_thresh: f32) {
    nms.clear();
    bboxes.sort_by(|a, b| {
        if a.score > b.score {
            Ordering::Less
        } else if a.score < b.score {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    });
    let mut merged = vec![false; bboxes.len()];
    let mut select = 0;
    loop {
        while select < bboxes.len() && merged[select] {
            select += 1;
        }
        if select == bboxes.len() {
            break;
        }
        let mut kept = bboxes[select];
        merged[select] = true;
        let b = kept.bbox;
        let area1 = (b.width * b.height) as f32;
        let (x1, y1) = (b.x, b.y);
        let x2 = b.x + b.width as i32 - 1;
        let y2 = b.y + b.height as i32 - 1;
        select += 1;
        for i in select..bboxes.len() {
            if merged[i] {
                continue;
            }
            let o = bboxes[i].bbox;
            let x = x1.max(o.x);
            let y = y1.max(o.y);
            let w = x2.min(o.x + o.width as i32 - 1) - x + 1;
            let h = y2.min(o.y + o.height as i32 - 1) - y + 1;
            if w <= 0 || h <= 0 {
                continue;
            }
            let area2 = (o.width * o.height) as f32;
            let inter = (w * h) as f32;
            if inter / (area1 + area2 - inter) > iou_thresh {
                merged[i] = true;
                kept.score += bboxes[i].score;
            }
        }
        nms.push(kept);
    }
}
