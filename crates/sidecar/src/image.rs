//! `image.prepare`: convert files for the client (AD and HD JPEGs in an output folder,
//! optionally inline), through the engine's plan of a folder and `photobulk_imaging`.

use std::path::PathBuf;

use base64::Engine as _;
use photobulk_protocol::methods as m;
use photobulk_protocol::{ErrorCode, ResponseError};

use crate::common::{convert_file, crop, fresh_dir, targets_named, to_value, Outcome};
use crate::ctx::Ctx;
use crate::map;

pub(crate) async fn prepare(p: m::PrepareParams, ctx: &Ctx) -> Outcome {
    if p.paths.is_empty() {
        return Err(ResponseError::new(
            ErrorCode::InvalidParams,
            "paths is empty",
        ));
    }
    let targets = targets_named(&p.targets)?;
    let out_dir = match &p.out_dir {
        Some(d) => PathBuf::from(d),
        None => fresh_dir(ctx, "prepare")?,
    };
    let inputs: Vec<PathBuf> = p.paths.iter().map(PathBuf::from).collect();
    let cancel = ctx.cancel.clone();
    let crop_ = crop(p.crop);
    let include = p.include_data;
    let out = out_dir.clone();
    let items = tokio::task::spawn_blocking(move || {
        let plan = photobulk_engine::plan(&inputs, photobulk_engine::PlanOptions::default());
        let mut budget = photobulk_protocol::MAX_RESPONSE_BYTES - 256 * 1024;
        let mut items = Vec::new();
        for it in plan.items {
            let path = it.path.display().to_string();
            let mut item = m::PreparedItem {
                path: path.clone(),
                account: it.account.clone(),
                ok: false,
                outputs: vec![],
                error: None,
                crop: None,
                face: None,
                warnings: Vec::new(),
            };
            if cancel.is_cancelled() {
                item.error = Some(photobulk_protocol::ItemError::new(
                    ErrorCode::RequestCancelled,
                    "cancelled",
                ));
                items.push(item);
                continue;
            }
            let name = it.account.clone().unwrap_or_else(|| {
                it.path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "photo".into())
            });
            let result = match &it.verdict {
                photobulk_engine::Verdict::Duplicate { others } => Err(ResponseError::new(
                    ErrorCode::Duplicate,
                    format!(
                        "{name} is also named by {}",
                        others
                            .iter()
                            .map(|o| o.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
                photobulk_engine::Verdict::Unreadable { reason } => Err(ResponseError::new(
                    ErrorCode::Io,
                    format!("{path}: {reason}"),
                )),
                _ => convert_file(&it.path, &name, &targets, crop_, &out),
            };
            match result {
                Ok(conv) => {
                    item.ok = true;
                    item.crop = conv.crop;
                    item.face = conv.face;
                    item.warnings = conv.warnings;
                    for (o, file) in conv.outputs {
                        let b64_len = o.jpeg.len().div_ceil(3) * 4;
                        let data = (include && b64_len < budget).then(|| {
                            budget -= b64_len;
                            base64::engine::general_purpose::STANDARD.encode(&o.jpeg)
                        });
                        item.outputs.push(m::PreparedOutput {
                            target: o.target.clone(),
                            path: file.display().to_string(),
                            width: o.width,
                            height: o.height,
                            bytes: o.bytes,
                            sha256: o.sha256.clone(),
                            data_omitted: include && data.is_none(),
                            data,
                        });
                    }
                }
                Err(e) => item.error = Some(map::item(e)),
            }
            items.push(item);
        }
        items
    })
    .await
    .map_err(|e| ResponseError::new(ErrorCode::InternalError, e.to_string()))?;
    to_value(&m::PrepareResult {
        out_dir: out_dir.display().to_string(),
        items,
    })
}
