//! `bulk.plan` / `bulk.run` for the ActiveDirectory target through the engine's import job
//! (`photobulk_engine::ImportJob`, issue 4): windowed lookups and writes, conversions on the
//! blocking pool, unchanged detection from the directory's bytes, backups, an fsync'd journal
//! and resume. This module only maps: protocol params → job, `ImportItem` → `bulk/item`
//! notifications, the request's cancellation token → the engine's `Cancel`.

use std::path::{Path, PathBuf};

use photobulk_engine::{import::Action, ImportItem, ImportJob, Journal, RunMeta};
use photobulk_imaging::{Options, Target};
use photobulk_protocol::methods::{BulkItem, BulkParams, BulkSummary, BulkTarget, ItemStatus};
use photobulk_protocol::{ErrorCode, ResponseError};

use crate::common::{self, inputs_of};
use crate::ctx::Ctx;

fn item_of(it: &ImportItem) -> BulkItem {
    let cancelled = it.error.as_ref().is_some_and(|e| e.kind == "cancelled");
    let status = match (it.action, it.dry_run) {
        (Action::Set | Action::Replace, true) => ItemStatus::Ready,
        (Action::Set | Action::Replace, false) => ItemStatus::Written,
        (Action::Unchanged, _) => ItemStatus::Unchanged,
        (Action::Failed, _) => ItemStatus::Failed,
        (Action::Skipped, _) if cancelled => ItemStatus::Cancelled,
        (Action::Skipped, _) => ItemStatus::Skipped,
    };
    BulkItem {
        target: Some(BulkTarget::ActiveDirectory),
        path: it.file.display().to_string(),
        identity: it.account.clone(),
        dn: it.dn.clone(),
        status,
        has_photo: match it.action {
            Action::Set => Some(false),
            Action::Replace | Action::Unchanged => Some(true),
            _ => None,
        },
        ad_path: None,
        ad_bytes: it.bytes,
        ad_sha256: it.sha256.clone(),
        hd_path: None,
        hd_bytes: None,
        hd_sha256: None,
        user_principal_name: None,
        backup_id: it.backup_id.clone(),
        error: it.error.as_ref().map(crate::map::engine_item),
        crop: it.crop.map(crate::common::crop_rect),
        face: it.face.map(crate::common::face_rect),
        // The engine's warnings are "kind: words" strings.
        warnings: it
            .warnings
            .iter()
            .map(|w| photobulk_protocol::methods::ImageWarning {
                kind: w.split(':').next().unwrap_or("warning").trim().to_string(),
                message: w.clone(),
            })
            .collect(),
    }
}

/// Run the engine's import (a dry run for `bulk.plan`). In a real run items stream as
/// `bulk/item` and `bulk/progress` notifications; all items are also returned. The journal is
/// `OUT/journal.jsonl` (a cancelled run has no `end` record: the same run with the same
/// `outDir` resumes it).
pub(crate) async fn import(
    p: &BulkParams,
    ctx: &Ctx,
    journal_path: &Path,
    dry_run: bool,
) -> Result<(Vec<BulkItem>, BulkSummary, bool), ResponseError> {
    let bound = ctx.session.bound().await?;
    let by = common::lookup(&p.match_by)?;
    // A plan reads the journal (unchanged, resume) and creates nothing, not even the file.
    let journal = if dry_run {
        Journal::read_only(journal_path)
    } else {
        Journal::open(journal_path)
    }
    .map_err(|e| ResponseError::new(ErrorCode::Io, e.to_string()))?;
    let wo = if dry_run {
        None
    } else {
        Some(common::write_options(&bound, p.no_backup)?)
    };
    let options = Options {
        crop: common::crop(p.crop),
        targets: vec![Target::ad()],
        ..Options::default()
    };
    let inputs = inputs_of(&p.items)?;
    let total = inputs.items.len();
    let paths: Vec<PathBuf> = p.items.iter().map(|i| PathBuf::from(&i.path)).collect();
    let meta = RunMeta {
        job: photobulk_engine::job_key(
            &paths,
            bound.dir.url(),
            bound.dir.base().ok(),
            &by,
            &options,
        ),
        server: Some(bound.dir.url().to_string()),
        inputs: paths.iter().map(|p| p.display().to_string()).collect(),
    };
    let job = ImportJob {
        options,
        by,
        // Small, so a cancel or a disconnect stops the run soon (writes in flight finish).
        window: 8,
        image_threads: p.throttle_limit as usize,
        dry_run,
        force: p.force,
        backup: wo.and_then(|w| w.backup),
        journal: journal.clone(),
        scope: None,
        reconnect: Default::default(),
    };
    let (cancel, bridge) = common::engine_cancel(ctx);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<BulkItem>();
    let dir = bound.dir.clone();
    let work = async move {
        let mut on_item = |it: &ImportItem| {
            let _ = tx.send(item_of(it));
        };
        job.run(&dir, inputs, &meta, &cancel, &mut on_item).await
    };
    let forward = common::forward_items(ctx, rx, total, dry_run, p.stream_items);
    let (report, (mut items, summary)) = tokio::join!(work, forward);
    // Notifications arrive in completion order; the returned list (the plan an admin reads
    // under -WhatIf) is in a stable order, by identity.
    items.sort_by(|a, b| a.identity.cmp(&b.identity));
    bridge.abort();
    let _ = journal.close();
    let report = report.map_err(|e| ResponseError::new(ErrorCode::Io, e.to_string()))?;
    Ok((items, summary, report.cancelled))
}
