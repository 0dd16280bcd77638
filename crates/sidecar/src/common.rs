//! Helpers every method family shares: protocol ↔ library values (crop, lookup, boxes,
//! warnings), converting one file into the output folder, bulk inputs and items, and the
//! `bulk/item` / `bulk/progress` notifications. A leaf below the method families.

use std::path::{Path, PathBuf};

use photobulk_directory::{Lookup, WriteOptions};
use photobulk_engine::{Input, Inputs, Take};
use photobulk_imaging::{Crop as ImgCrop, Options, Target};
use photobulk_protocol::methods::{self as m, BulkItem, BulkSummary, ItemStatus};
use photobulk_protocol::{ErrorCode, ResponseError};
use serde::Serialize;
use serde_json::Value;

use crate::ctx::Ctx;
use crate::map;
use crate::session::Bound;

pub(crate) type Outcome = Result<Value, ResponseError>;

pub(crate) fn to_value<T: Serialize>(v: &T) -> Outcome {
    serde_json::to_value(v).map_err(|e| ResponseError::new(ErrorCode::InternalError, e.to_string()))
}

pub(crate) fn lookup(match_by: &Option<String>) -> Result<Lookup, ResponseError> {
    Lookup::parse(match_by.as_deref().unwrap_or("samaccountname"))
        .map_err(|e| ResponseError::new(ErrorCode::InvalidParams, format!("matchBy: {e}")))
}

pub(crate) fn crop(c: m::Crop) -> ImgCrop {
    match c {
        m::Crop::Face => ImgCrop::Face,
        m::Crop::Center => ImgCrop::Center,
        m::Crop::Top => ImgCrop::Top,
        m::Crop::Pad => ImgCrop::Pad,
    }
}

pub(crate) fn write_options(bound: &Bound, no_backup: bool) -> Result<WriteOptions, ResponseError> {
    match (&bound.backup, no_backup) {
        (_, true) => Ok(WriteOptions::without_backup()),
        (Some(s), false) => Ok(WriteOptions::backup_to(s.clone())),
        (None, false) => Err(map::directory(
            &photobulk_directory::DirectoryError::BackupRequired,
        )),
    }
}

/// A fresh output folder under the work folder.
pub(crate) fn fresh_dir(ctx: &Ctx, prefix: &str) -> Result<PathBuf, ResponseError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = ctx
        .server
        .config
        .work_dir
        .join(format!("photobulk-{prefix}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| map::io(dir.display(), &e))?;
    Ok(dir)
}

/// One file converted: its outputs (with the files written) and how it was framed.
#[derive(Debug)]
pub(crate) struct Converted {
    pub outputs: Vec<(photobulk_imaging::Output, PathBuf)>,
    pub crop: Option<m::CropRect>,
    pub face: Option<m::FaceRect>,
    pub warnings: Vec<m::ImageWarning>,
}

pub(crate) fn crop_rect(c: photobulk_imaging::CropBox) -> m::CropRect {
    m::CropRect {
        x: c.x,
        y: c.y,
        width: c.width,
        height: c.height,
    }
}

pub(crate) fn face_rect(f: photobulk_imaging::FaceBox) -> m::FaceRect {
    m::FaceRect {
        x: f.x,
        y: f.y,
        width: f.width,
        height: f.height,
        score: f.score,
    }
}

pub(crate) fn image_warning(w: &photobulk_imaging::Warning) -> m::ImageWarning {
    m::ImageWarning {
        kind: w.code().to_string(),
        message: w.to_string(),
    }
}

/// Convert one file for `targets`, write `out/<target>/<name>.jpg` for each.
pub(crate) fn convert_file(
    path: &Path,
    name: &str,
    targets: &[Target],
    crop_: ImgCrop,
    out: &Path,
) -> Result<Converted, ResponseError> {
    let data = std::fs::read(path).map_err(|e| map::io(path.display(), &e))?;
    let opts = Options {
        crop: crop_,
        targets: targets.to_vec(),
        ..Options::default()
    };
    let conv = photobulk_imaging::convert(&data, &opts).map_err(|e| map::imaging(&e))?;
    let mut written = Converted {
        outputs: Vec::new(),
        crop: conv.outputs.first().map(|o| crop_rect(o.crop)),
        face: conv.face.map(face_rect),
        warnings: conv.warnings.iter().map(image_warning).collect(),
    };
    for o in conv.outputs {
        let dir = out.join(&o.target);
        std::fs::create_dir_all(&dir).map_err(|e| map::io(dir.display(), &e))?;
        let file = dir.join(format!(
            "{}.jpg",
            photobulk_engine::naming::safe_file_name(name)
        ));
        photobulk_engine::convert::write_atomic(&file, &o.jpeg)
            .map_err(|e| ResponseError::new(ErrorCode::Io, e.to_string()))?;
        written.outputs.push((o, file));
    }
    Ok(written)
}

pub(crate) fn targets_named(names: &[String]) -> Result<Vec<Target>, ResponseError> {
    if names.is_empty() {
        return Ok(vec![Target::ad(), Target::hd()]);
    }
    names
        .iter()
        .map(|n| match n.to_ascii_lowercase().as_str() {
            "ad" => Ok(Target::ad()),
            "hd" => Ok(Target::hd()),
            _ => Err(ResponseError::new(
                ErrorCode::InvalidParams,
                format!("unknown target {n:?} (ad, hd)"),
            )),
        })
        .collect()
}

pub(crate) fn count(s: &mut BulkSummary, status: ItemStatus) {
    match status {
        ItemStatus::Ready => s.ready += 1,
        ItemStatus::Written => s.written += 1,
        ItemStatus::Unchanged => s.unchanged += 1,
        ItemStatus::Skipped => s.skipped += 1,
        ItemStatus::Failed => s.failed += 1,
        ItemStatus::Cancelled => s.cancelled += 1,
    }
}

pub(crate) fn inputs_of(items: &[m::BulkInput]) -> Result<Inputs, ResponseError> {
    let unnamed: Vec<PathBuf> = items
        .iter()
        .filter(|i| i.identity.is_none())
        .map(|i| PathBuf::from(&i.path))
        .collect();
    let mut inputs = if unnamed.is_empty() {
        Inputs::default()
    } else {
        photobulk_engine::collect(&unnamed, false)
            .map_err(|e| ResponseError::new(ErrorCode::Io, e.to_string()))?
    };
    for it in items {
        if let Some(id) = &it.identity {
            inputs.items.push(Input {
                path: PathBuf::from(&it.path),
                account: Some(id.clone()),
                take: Take::Yes,
                also: Vec::new(),
                origin: None,
                by: None,
            });
        }
    }
    Ok(inputs)
}

/// One finished item of a bulk run, to the client: its `bulk/item` notice, then `bulk/progress`.
pub(crate) async fn notify_item(ctx: &Ctx, item: &BulkItem, done: usize, total: usize) {
    ctx.out
        .notify::<m::BulkItemNotice>(&m::BulkItemParams {
            request_id: ctx.id.clone(),
            item: item.clone(),
        })
        .await;
    notify_progress(ctx, done, total, item.identity.clone()).await;
}

/// `bulk/progress` for the request being served.
pub(crate) async fn notify_progress(ctx: &Ctx, done: usize, total: usize, current: Option<String>) {
    ctx.out
        .notify::<m::BulkProgress>(&m::BulkProgressParams {
            request_id: ctx.id.clone(),
            done,
            total,
            current,
        })
        .await;
}

/// The engine's [`photobulk_engine::Cancel`] for the request being served, set when its
/// cancellation token fires (`$/cancelRequest`, a disconnect). Abort the handle when done.
pub(crate) fn engine_cancel(ctx: &Ctx) -> (photobulk_engine::Cancel, tokio::task::JoinHandle<()>) {
    let cancel = photobulk_engine::Cancel::new();
    let bridge = {
        let (token, c) = (ctx.cancel.clone(), cancel.clone());
        tokio::spawn(async move {
            token.cancelled().await;
            c.cancel();
        })
    };
    (cancel, bridge)
}

/// Items of an engine job as they finish → `bulk/item` notifications (a run) or progress
/// alone (a plan that streams its items later), counted; returns them in completion order.
pub(crate) async fn forward_items(
    ctx: &Ctx,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<BulkItem>,
    total: usize,
    dry_run: bool,
    stream_items: bool,
) -> (Vec<BulkItem>, BulkSummary) {
    let (mut items, mut summary, mut done) = (
        Vec::with_capacity(total),
        BulkSummary {
            total,
            ..Default::default()
        },
        0,
    );
    while let Some(item) = rx.recv().await {
        done += 1;
        count(&mut summary, item.status);
        if !dry_run {
            notify_item(ctx, &item, done, total).await;
        } else if stream_items {
            notify_progress(ctx, done, total, item.identity.clone()).await;
        }
        items.push(item);
    }
    (items, summary)
}

/// A bulk item for an engine job's item that carries an HD photo (cloud upload, Exchange
/// hand-off): file, account, status, error, and the HD file with its framing. The caller adds
/// what only its target knows (UPN, backup id, whether the user had a photo).
pub(crate) fn hd_item(
    target: m::BulkTarget,
    file: &Path,
    account: Option<&String>,
    status: ItemStatus,
    error: Option<&photobulk_engine::import::ItemError>,
    hd: Option<&photobulk_engine::cloud::HdPhoto>,
) -> BulkItem {
    BulkItem {
        target: Some(target),
        path: file.display().to_string(),
        identity: account.cloned(),
        dn: None,
        status,
        has_photo: None,
        ad_path: None,
        ad_bytes: None,
        ad_sha256: None,
        hd_path: hd
            .and_then(|h| h.path.as_ref())
            .map(|p| p.display().to_string()),
        hd_bytes: hd.map(|h| h.bytes),
        hd_sha256: hd.map(|h| h.sha256.clone()),
        user_principal_name: None,
        backup_id: None,
        error: error.map(map::engine_item),
        crop: hd.and_then(|h| h.crop).map(crop_rect),
        face: hd.and_then(|h| h.face).map(face_rect),
        warnings: hd
            .map(|h| h.warnings.iter().map(image_warning).collect())
            .unwrap_or_default(),
    }
}
