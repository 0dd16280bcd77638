//! The `ExchangeOnPrem` target: the engine's hand-off ([`photobulk_engine::exchange`]) prepares
//! each 648x648 JPEG, journals an intent and hands the item to the client as `ready` with
//! `hdPath`/`hdSha256`; the client's session writes it (`Set-UserPhoto -PictureData`: the
//! sidecar cannot call Exchange), then sends the outcomes with `bulk.record`, which the engine
//! records. This module only maps protocol params and items.

use std::path::{Path, PathBuf};

use photobulk_engine::exchange::{self, HandOff, HandOffAction, HandOffItem, Outcome, RecordError};
use photobulk_protocol::methods::{
    self as m, BulkItem, BulkParams, BulkSummary, BulkTarget, ItemStatus,
};
use photobulk_protocol::{ErrorCode, ResponseError};

use crate::common::{self, inputs_of};
use crate::ctx::Ctx;
use crate::map;

fn item_of(it: &HandOffItem) -> BulkItem {
    let cancelled = it.error.as_ref().is_some_and(|e| e.kind == "cancelled");
    let status = match it.action {
        HandOffAction::Ready => ItemStatus::Ready,
        HandOffAction::Unchanged => ItemStatus::Unchanged,
        HandOffAction::Failed => ItemStatus::Failed,
        HandOffAction::Skipped if cancelled => ItemStatus::Cancelled,
        HandOffAction::Skipped => ItemStatus::Skipped,
    };
    common::hd_item(
        BulkTarget::ExchangeOnPrem,
        &it.file,
        it.account.as_ref(),
        status,
        it.error.as_ref(),
        it.hd.as_ref(),
    )
}

/// `bulk.plan` (`dry_run`) or `bulk.run` for ExchangeOnPrem.
pub(crate) async fn prepare(
    p: &BulkParams,
    ctx: &Ctx,
    out_dir: &Path,
    journal_path: &Path,
    dry_run: bool,
) -> Result<(Vec<BulkItem>, BulkSummary, bool), ResponseError> {
    let by = common::lookup(&p.match_by)?;
    let items = p.items.clone();
    let inputs = tokio::task::spawn_blocking(move || inputs_of(&items))
        .await
        .map_err(map::join)??;
    let total = inputs.items.len();
    let paths: Vec<PathBuf> = p.items.iter().map(|i| PathBuf::from(&i.path)).collect();
    let mut job = HandOff::new(common::crop(p.crop), by, out_dir.to_path_buf());
    job.force = p.force;
    job.dry_run = dry_run;
    job.image_threads = (p.throttle_limit as usize).max(1);
    let (cancel, bridge) = common::engine_cancel(ctx);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<BulkItem>();
    let work = async move {
        let on_item = |it: &HandOffItem| {
            let _ = tx.send(item_of(it));
        };
        job.prepare(journal_path, &paths, inputs.items, &cancel, &on_item)
            .await
    };
    let forward = common::forward_items(ctx, rx, total, dry_run, p.stream_items);
    let (report, (items, summary)) = tokio::join!(work, forward);
    bridge.abort();
    let report = report.map_err(|e| map::engine(&e))?;
    Ok((items, summary, report.cancelled))
}

/// `bulk.record`: the client's `Set-UserPhoto` outcomes into the newest ExchangeOnPrem run of
/// the journal.
pub(crate) async fn record(
    p: m::BulkRecordParams,
    _ctx: &Ctx,
) -> Result<m::BulkRecordResult, ResponseError> {
    let path = PathBuf::from(&p.journal);
    let outcomes: Vec<Outcome> = p
        .items
        .iter()
        .map(|it| Outcome {
            identity: it.identity.clone(),
            written: it.status == Some(ItemStatus::Written),
            sha256: it.hd_sha256.clone(),
            message: it.message.clone(),
        })
        .collect();
    let end = p.end;
    let done = tokio::task::spawn_blocking(move || exchange::record(&path, &outcomes, end))
        .await
        .map_err(map::join)?;
    match done {
        Ok(r) => Ok(m::BulkRecordResult {
            recorded: r.recorded,
            unknown: r.unknown,
        }),
        Err(RecordError::Engine(e)) => Err(map::engine(&e)),
        Err(e) => Err(ResponseError::new(ErrorCode::InvalidParams, e.to_string())),
    }
}
