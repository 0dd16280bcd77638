//! Imaging: any photo in, AD- and Exchange-ready JPEGs out.
//!
//! API CONTRACT (fixed; the implementation is being written). Other crates code against
//! exactly these names. Pure and synchronous: bytes in, bytes out, no I/O.

use serde::Serialize;

/// Limits checked before any pixel buffer is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Largest width x height accepted (default 100,000,000).
    pub max_pixels: u64,
    /// Largest width or height accepted (default 20,000).
    pub max_side: u32,
    /// Largest encoded input accepted in bytes (default 50 MiB = 52,428,800).
    pub max_input_bytes: usize,
}

/// How a non-square source becomes square. `#[non_exhaustive]`: a face-aware strategy
/// will be added later; callers only pass the value through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Crop {
    /// Centre square (what Exchange does). Default.
    #[default]
    Center,
    /// Portrait input keeps the head: the square is biased toward the top third.
    Top,
    /// Letterbox onto `Options::background`; no pixels lost.
    Pad,
}

/// One output to produce: a square JPEG of `size` x `size` pixels at most `max_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Short name used for folders and reports: "ad", "hd", or a caller's own.
    pub name: String,
    pub size: u32,
    pub max_bytes: usize,
}

impl Target {
    /// AD thumbnailPhoto: 96x96, <= 10,240 bytes (Entra Connect passes only <= 10 KB on).
    pub fn ad() -> Self { Target { name: "ad".into(), size: 96, max_bytes: 10_240 } }
    /// Exchange HD photo: 648x648, <= 245,760 bytes.
    pub fn hd() -> Self { Target { name: "hd".into(), size: 648, max_bytes: 245_760 } }
}

/// Everything `convert` needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Options {
    pub limits: Limits,
    pub crop: Crop,
    /// Colour that alpha is flattened onto, and `Crop::Pad` fills with. Default white.
    pub background: [u8; 3],
    /// Sources smaller than this on either side are refused (default 48).
    pub min_source_side: u32,
    pub targets: Vec<Target>,
}

/// What was read from the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// "jpeg", "png", "gif", "bmp", "tiff", "webp", "heic".
    pub format: String,
    /// Stored (pre-orientation) dimensions.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation 1..=8 that was applied (1 when none).
    pub orientation: u8,
}

/// Square region of the upright source that was used (may extend past the image for `Pad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CropBox { pub x: i64, pub y: i64, pub width: u32, pub height: u32 }

/// One produced JPEG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Output {
    pub target: String,
    pub width: u32,
    pub height: u32,
    pub crop: CropBox,
    /// JPEG quality chosen (highest that fit the budget).
    pub quality: u8,
    /// Hex SHA-256 of `jpeg`.
    pub sha256: String,
    #[serde(skip)]
    pub jpeg: Vec<u8>,
    /// `jpeg.len()`, for reports.
    pub bytes: usize,
}

/// Non-fatal notes, e.g. upscaling more than 2x.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Warning {
    Upscaled { target: String, factor_x100: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversion {
    pub source: SourceInfo,
    pub outputs: Vec<Output>,
    pub warnings: Vec<Warning>,
}

/// Every way a conversion fails. Messages are for administrators: say what and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImagingError {
    #[error("not a supported image (recognised: JPEG, PNG, GIF, BMP, TIFF, WebP, HEIC)")]
    UnknownFormat,
    #[error("input is {bytes} bytes, over the {limit}-byte limit")]
    InputTooLarge { bytes: usize, limit: usize },
    #[error("image is {width}x{height}, over the limits ({max_side} px a side, {max_pixels} pixels): refusing to decode")]
    TooManyPixels { width: u32, height: u32, max_side: u32, max_pixels: u64 },
    #[error("image is {width}x{height}, smaller than {min} px a side")]
    TooSmall { width: u32, height: u32, min: u32 },
    #[error("cannot decode {format} image: {reason}")]
    Decode { format: String, reason: String },
    #[error("{format} support is not built in (build with the `{feature}` feature)")]
    Unsupported { format: String, feature: String },
    #[error("target {target}: cannot fit {size}x{size} into {budget} bytes; smallest reached was {smallest} bytes at quality {quality}")]
    BudgetUnreachable { target: String, size: u32, budget: usize, smallest: usize, quality: u8 },
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

/// Decode, orient, crop, resize and encode `input` for every target in `opts`.
pub fn convert(input: &[u8], opts: &Options) -> Result<Conversion, ImagingError> { let _ = (input, opts); Err(ImagingError::InvalidOption("not yet implemented".into())) }

/// Read the format and stored dimensions without decoding pixels (used for reports).
pub fn probe(input: &[u8]) -> Result<SourceInfo, ImagingError> { let _ = input; Err(ImagingError::UnknownFormat) }
