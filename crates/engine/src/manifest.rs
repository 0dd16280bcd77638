//! The manifest: the JSON record of a bulk conversion, written as `OUT/manifest.json`
//! and printed by `photobulk convert --json`.
//!
//! # Format (version 1)
//!
//! ```json
//! {
//!   "format": "photobulk-convert-manifest",
//!   "version": 1,
//!   "tool_version": "0.1.0",
//!   "finished_unix": 1795000000,
//!   "options": { "crop": "face", "background": [255,255,255],
//!                "targets": [{"name":"ad","size":96,"max_bytes":10240}, ...] },
//!   "summary": { "total": 3, "ok": 1, "failed": 1, "duplicate": 1, "no_account": 0, "skipped_files": 0 },
//!   "items": [
//!     { "file": "in/John.Smith 648x648.jpg", "account": "John.Smith", "status": "ok",
//!       "source": { "format": "jpeg", "width": 3000, "height": 4000, "orientation": 6 },
//!       "outputs": [ { "target": "ad", "path": "ad/John.Smith.jpg", "width": 96, "height": 96,
//!                      "bytes": 9312, "quality": 92, "sha256": "…",
//!                      "crop": { "x": 620, "y": 710, "width": 1780, "height": 1780 } } ],
//!       "crop": { "x": 620, "y": 710, "width": 1780, "height": 1780 },
//!       "face": { "x": 1110, "y": 1022, "width": 800, "height": 800, "score": 9.41 },
//!       "thumbnail": "thumbs/John.Smith.jpg",
//!       "warnings": [] },
//!     { "file": "in/Ann.Lee.jpg", "account": "Ann.Lee", "status": "ok", "…": "…",
//!       "crop": { "x": 0, "y": 167, "width": 3000, "height": 3000 },
//!       "warnings": [ { "kind": "no_face" } ] },
//!     { "file": "in/bad.jpg", "account": "bad", "status": "failed",
//!       "error": "cannot decode jpeg image: …" },
//!     { "file": "in/Bob.Jones a.jpg", "account": "Bob.Jones", "status": "duplicate",
//!       "error": "2 files name account Bob.Jones: in/Bob.Jones b.png", "duplicates": ["in/Bob.Jones b.png"] }
//!   ],
//!   "skipped_files": ["in/Thumbs.db"]
//! }
//! ```
//!
//! `status` is one of `ok`, `failed`, `duplicate`, `no_account`. Warnings have a `kind`:
//! `upscaled` (`target`, `factor_x100`), `icc_profile_ignored` (`reason`), and from the
//! `face` crop `no_face`, `several_faces` (`count`), `small_face` (`height`, source px).
//! `face.score` is the detector's confidence (2 is the threshold; higher is surer). Output `path`s are
//! relative to the manifest's folder. Items keep the planner's order.

use std::path::PathBuf;

use photobulk_imaging::{Crop, CropBox, FaceBox, SourceInfo, Target, Warning};
use serde::Serialize;

/// Top-level manifest; see the module docs for the JSON shape.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub format: &'static str,
    pub version: u32,
    pub tool_version: &'static str,
    pub finished_unix: u64,
    pub options: ManifestOptions,
    pub summary: Summary,
    pub items: Vec<ItemResult>,
    pub skipped_files: Vec<PathBuf>,
}

/// The conversion options that shaped every output.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestOptions {
    pub crop: Crop,
    pub background: [u8; 3],
    pub targets: Vec<Target>,
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub total: usize,
    pub ok: usize,
    pub failed: usize,
    pub duplicate: usize,
    pub no_account: usize,
    pub skipped_files: usize,
}

impl Summary {
    /// True when any item did not produce its outputs.
    pub fn any_failed(&self) -> bool {
        self.failed + self.duplicate + self.no_account > 0
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Failed,
    Duplicate,
    NoAccount,
}

/// One file's result.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    pub file: PathBuf,
    #[serialize_always]
    pub account: Option<String>,
    pub status: Status,
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<PathBuf>,
    pub source: Option<SourceInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<WrittenOutput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// The square kept (upright source pixels), the same for every output.
    pub crop: Option<CropBox>,
    /// The face the square was framed on (`face` crop, when one was found).
    pub face: Option<FaceBox>,
    /// The whole source, upright and small (relative path), for the contact sheet.
    pub thumbnail: Option<String>,
}

/// One JPEG written to disk.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenOutput {
    pub target: String,
    /// Relative to the output folder, with `/` separators.
    pub path: String,
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
    pub quality: u8,
    pub sha256: String,
    pub crop: CropBox,
}
