//! The HD photo (648x648 JPEG) of one input file, as the cloud job and the Exchange
//! on-premises hand-off make it.

use photobulk_kind::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::sync::Semaphore;

use photobulk_graph::sha256_hex;
use photobulk_imaging::{Crop, CropBox, FaceBox, Options, Target, Warning};
use serde::Serialize;

/// The HD JPEG made for an input.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct HdPhoto {
    pub bytes: usize,
    pub sha256: String,
    /// Where it was written (`out_dir/hd/NAME.jpg`), when the job writes files.
    pub path: Option<PathBuf>,
    /// The square taken from the (upright) source; `None` for raw uploads.
    pub crop: Option<CropBox>,
    /// The face the `face` crop framed.
    pub face: Option<FaceBox>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// Read and convert one file to the HD JPEG (or take it raw); write it to `out/hd/NAME.jpg`
/// when asked. Errors are (kind, message): `unreadable`, `image` (an empty file says so),
/// `io`.
pub fn make_hd(
    path: &Path,
    name: &str,
    crop: Crop,
    raw: bool,
    out: Option<&Path>,
) -> Result<(Vec<u8>, HdPhoto), (ErrorKind, String)> {
    let shown = path.display();
    let data = std::fs::read(path)
        .map_err(|e| (ErrorKind::Unreadable, format!("cannot read {shown}: {e}")))?;
    if data.is_empty() {
        return Err((
            ErrorKind::Image,
            format!("{shown}: the file is empty (0 bytes)"),
        ));
    }
    let (jpeg, mut hd) = if raw {
        let hd = HdPhoto {
            bytes: data.len(),
            sha256: sha256_hex(&data),
            path: None,
            crop: None,
            face: None,
            warnings: Vec::new(),
        };
        (data, hd)
    } else {
        let opts = Options {
            crop,
            targets: vec![Target::hd()],
            ..Options::default()
        };
        let conv = photobulk_imaging::convert(&data, &opts)
            .map_err(|e| (ErrorKind::Image, format!("{shown}: {e}")))?;
        drop(data);
        let o = conv
            .outputs
            .into_iter()
            .next()
            .ok_or((ErrorKind::Image, format!("{shown}: no HD output")))?;
        let hd = HdPhoto {
            bytes: o.jpeg.len(),
            sha256: o.sha256,
            path: None,
            crop: Some(o.crop),
            face: conv.face,
            warnings: conv.warnings,
        };
        (o.jpeg, hd)
    };
    if let Some(out) = out {
        let dir = out.join(Target::hd().name);
        std::fs::create_dir_all(&dir).map_err(|e| {
            (
                ErrorKind::Io,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        let file = dir.join(format!("{}.jpg", crate::naming::safe_file_name(name)));
        crate::convert::write_atomic(&file, &jpeg).map_err(|e| (ErrorKind::Io, e.to_string()))?;
        hd.path = Some(file);
    }
    Ok((jpeg, hd))
}

/// [`make_hd`] on the blocking pool, holding one of `images`' permits while it runs, so a job
/// converts at most as many photos at once as the pool has permits. A closed pool or a
/// conversion task that died is an `internal` error.
pub(crate) async fn make_hd_pooled(
    images: &Semaphore,
    path: PathBuf,
    name: String,
    crop: Crop,
    raw: bool,
    out: Option<PathBuf>,
) -> Result<(Vec<u8>, HdPhoto), (ErrorKind, String)> {
    let Ok(_permit) = images.acquire().await else {
        return Err((ErrorKind::Internal, "image pool closed".into()));
    };
    tokio::task::spawn_blocking(move || make_hd(&path, &name, crop, raw, out.as_deref()))
        .await
        .unwrap_or_else(|e| Err((ErrorKind::Internal, format!("image task failed: {e}"))))
}
