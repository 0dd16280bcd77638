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

//! The model file: a funnel of hierarchies, each a list of cascades (stages) of LAB boosted
//! or SURF-MLP classifiers. Parsed from bytes once; checked so that detection never
//! indexes out of range (rustface panicked on such models instead).

use crate::lab::LabClassifier;
use crate::surf::{SurfMlp, FEATURE_DIM};
use std::io;

pub(crate) enum Classifier {
    Lab(LabClassifier),
    Surf(SurfMlp),
}

/// A parsed detection model (share it between detectors with an `Arc`).
pub struct Model {
    pub(crate) classifiers: Vec<Classifier>,
    pub(crate) wnd_src_id: Vec<Vec<usize>>,
    pub(crate) hierarchy_sizes: Vec<usize>,
    pub(crate) num_stages: Vec<usize>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("classifiers", &self.classifiers.len())
            .field("hierarchy_sizes", &self.hierarchy_sizes)
            .finish()
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("face model: {what}"))
}

/// Load a model from any stream or buffer.
pub fn read_model<R: io::Read>(mut buf: R) -> Result<Model, io::Error> {
    let mut bytes = Vec::new();
    buf.read_to_end(&mut bytes)?;
    parse_model(&bytes)
}

/// Parse a model from its bytes.
pub fn parse_model(bytes: &[u8]) -> Result<Model, io::Error> {
    let model = Reader { bytes, pos: 0 }.read()?;
    model.check()?;
    Ok(model)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn word(&mut self) -> Result<[u8; 4], io::Error> {
        let w = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "face model: truncated"))?;
        self.pos += 4;
        Ok([w[0], w[1], w[2], w[3]])
    }

    fn i32(&mut self) -> Result<i32, io::Error> {
        Ok(i32::from_le_bytes(self.word()?))
    }

    fn count(&mut self) -> Result<usize, io::Error> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| invalid("negative count"))?;
        // Every counted item takes at least 4 bytes: a count past the end is corrupt.
        if n > (self.bytes.len() - self.pos) / 4 + 1 {
            return Err(invalid("count past the end"));
        }
        Ok(n)
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, io::Error> {
        let end = n
            .checked_mul(4)
            .and_then(|b| b.checked_add(self.pos))
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "face model: truncated"))?;
        let mut v = vec![0.0f32; n];
        for (o, c) in v.iter_mut().zip(self.bytes[self.pos..end].chunks_exact(4)) {
            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        self.pos = end;
        Ok(v)
    }

    fn read(mut self) -> Result<Model, io::Error> {
        let num_hierarchy = self.count()?;
        let mut classifiers = Vec::new();
        let mut hierarchy_sizes = Vec::with_capacity(num_hierarchy);
        let mut num_stages = Vec::new();
        let mut wnd_src_id = Vec::new();
        for _ in 0..num_hierarchy {
            let hierarchy_size = self.count()?;
            hierarchy_sizes.push(hierarchy_size);
            for _ in 0..hierarchy_size {
                let num_stage = self.count()?;
                num_stages.push(num_stage);
                for _ in 0..num_stage {
                    let c = match self.i32()? {
                        0 => Classifier::Lab(self.lab()?),
                        1 => Classifier::Surf(self.surf()?),
                        _ => return Err(invalid("unknown classifier kind")),
                    };
                    classifiers.push(c);
                }
                let num_wnd_src = self.i32()?;
                let mut src = Vec::new();
                for _ in 0..num_wnd_src.max(0) {
                    let id = self.i32()?;
                    src.push(usize::try_from(id).map_err(|_| invalid("window source"))?);
                }
                wnd_src_id.push(src);
            }
        }
        Ok(Model {
            classifiers,
            wnd_src_id,
            hierarchy_sizes,
            num_stages,
        })
    }

    fn lab(&mut self) -> Result<LabClassifier, io::Error> {
        let num_base = self.count()?;
        let num_bin = self.count()?;
        let mut features = Vec::with_capacity(num_base);
        for _ in 0..num_base {
            let x = self.i32()?;
            let y = self.i32()?;
            features.push((x, y));
        }
        let thresh = self.f32s(num_base)?;
        let weights = self.f32s(num_base * (num_bin + 1))?;
        LabClassifier::new(features, thresh, weights, num_bin + 1).ok_or_else(|| invalid("LAB"))
    }

    fn surf(&mut self) -> Result<SurfMlp, io::Error> {
        let num_layer = self.count()?;
        let num_feat = self.count()?;
        let mut feature_ids = Vec::with_capacity(num_feat);
        for _ in 0..num_feat {
            feature_ids.push(self.i32()?);
        }
        let thresh = self.f32s(1)?[0];
        let mut layers = Vec::new();
        let mut input_dim = self.count()?;
        for _ in 1..num_layer {
            let output_dim = self.count()?;
            let weights = self.f32s(input_dim * output_dim)?;
            let biases = self.f32s(output_dim)?;
            layers.push((input_dim, output_dim, weights, biases));
            input_dim = output_dim;
        }
        if layers.is_empty() || layers[0].0 != FEATURE_DIM * num_feat {
            return Err(invalid("MLP input size"));
        }
        SurfMlp::new(feature_ids, thresh, layers).ok_or_else(|| invalid("MLP"))
    }
}

impl Model {
    /// The detector's assumptions: the first hierarchy is LAB boosted classifiers (run on
    /// the pyramid), the later ones SURF MLPs (run on 40x40 windows with box regression),
    /// window sources in range.
    fn check(&self) -> Result<(), io::Error> {
        let first = *self
            .hierarchy_sizes
            .first()
            .ok_or_else(|| invalid("empty"))?;
        if self.num_stages.len() != self.hierarchy_sizes.iter().sum::<usize>()
            || self.num_stages.len() != self.wnd_src_id.len()
            || self.classifiers.len() != self.num_stages.iter().sum::<usize>()
            || self.num_stages[..first].iter().any(|&n| n != 1)
        {
            return Err(invalid("structure"));
        }
        for (i, c) in self.classifiers.iter().enumerate() {
            match c {
                Classifier::Lab(_) if i < first => {}
                Classifier::Surf(s) if i >= first && s.output_dim() >= 4 => {}
                _ => return Err(invalid("classifier order")),
            }
        }
        // Window sources of the later hierarchies index proposal lists
        // (all proposal lists are indexed by the first hierarchy's classifiers).
        if self.hierarchy_sizes.iter().any(|&h| h > first)
            || self.wnd_src_id[first..]
                .iter()
                .any(|src| src.is_empty() || src.iter().any(|&s| s >= first))
        {
            return Err(invalid("window sources"));
        }
        Ok(())
    }
}
