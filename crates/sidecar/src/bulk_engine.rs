//! `bulk.plan` / `bulk.run` for the ActiveDirectory target through the engine's import job
//! (`photobulk_engine::ImportJob`, issue 4): windowed lookups and writes, conversions on the
//! blocking pool, unchanged detection from the directory's bytes, backups, an fsync'd journal
//! and resume. This module only maps: protocol params → job, `ImportItem` → `bulk/item`
//! notifications, the request's cancellation token → the engine's `Cancel`.

use std::path::{Path, PathBuf};

use photobulk_engine::{
    import::Action, Cancel, ImportItem, ImportJob, Input, Inputs, Journal, RunMeta, Take,
};
use photobulk_imaging::{Options, Target};
use photobulk_protocol::methods::{
    self as m, BulkItem, BulkParams, BulkSummary, BulkTarget, ItemStatus,
};
use photobulk_protocol::{ErrorCode, ItemError, ResponseError};

use crate::conn::Ctx;
use crate::handlers;

/// The engine's error kinds (directory kinds and its own) → protocol kinds.
fn kind_of(engine_kind: &str) -> ErrorCode {
    match engine_kind {
        "user_not_found" | "no_such_object" => ErrorCode::UserNotFound,
        "ambiguous" => ErrorCode::AmbiguousUser,
        "no_account" => ErrorCode::NoAccount,
        "superseded" => ErrorCode::Duplicate,
        "cancelled" => ErrorCode::RequestCancelled,
        "unreadable" | "backup_io" => ErrorCode::Io,
        "image" => ErrorCode::ImageInvalid,
        "insufficient_rights" | "unwilling" | "strong_auth_required" => ErrorCode::AccessDenied,
        "invalid_credentials" => ErrorCode::InvalidCredentials,
        "timeout" | "connection_lost" | "server_busy" => ErrorCode::Unavailable,
        "connect" | "tls" => ErrorCode::ConnectionFailed,
        "photo_too_large" => ErrorCode::PhotoTooLarge,
        "photo_rejected" => ErrorCode::PhotoRejected,
        _ => ErrorCode::Directory,
    }
}

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
        error: it.error.as_ref().map(|e| ItemError {
            kind: kind_of(&e.kind).kind().to_string(),
            message: e.message.clone(),
            retryable: e.retryable,
            detail: Some(e.kind.clone()),
        }),
        crop: it.crop.map(crate::handlers::crop_rect),
        face: it.face.map(crate::handlers::face_rect),
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

/// An item for `input` of `target`: `Skipped` with why when the input will not be used
/// (no account, unreadable, superseded by a newer file for the same account), else `Ready`.
pub(crate) fn skipped_input(input: &Input, target: BulkTarget) -> BulkItem {
    let path = input.path.display().to_string();
    let error = match &input.take {
        Take::Yes => None,
        Take::NoAccount => Some(ItemError::new(
            ErrorCode::NoAccount,
            format!("{path}: the file name names no account (expected 'account.jpg' or 'account anything.jpg')"),
        )),
        Take::Unreadable { reason } => {
            Some(ItemError::new(ErrorCode::Io, format!("{path}: {reason}")))
        }
        Take::Superseded { by } => Some(ItemError::new(
            ErrorCode::Duplicate,
            format!("{path}: the newer {} names the same account", by.display()),
        )),
    };
    BulkItem {
        target: Some(target),
        path,
        identity: input.account.clone(),
        dn: None,
        status: if error.is_some() {
            ItemStatus::Skipped
        } else {
            ItemStatus::Ready
        },
        has_photo: None,
        ad_path: None,
        ad_bytes: None,
        ad_sha256: None,
        hd_path: None,
        hd_bytes: None,
        hd_sha256: None,
        user_principal_name: None,
        backup_id: None,
        error,
        crop: None,
        face: None,
        warnings: Vec::new(),
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
    let by = handlers::lookup(&p.match_by)?;
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
        Some(handlers::write_options(&bound, p.no_backup)?)
    };
    let options = Options {
        crop: handlers::crop(p.crop),
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
    let cancel = Cancel::new();
    let bridge = {
        let (token, c) = (ctx.cancel.clone(), cancel.clone());
        tokio::spawn(async move {
            token.cancelled().await;
            c.cancel();
        })
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<BulkItem>();
    let dir = bound.dir.clone();
    let work = async move {
        let mut on_item = |it: &ImportItem| {
            let _ = tx.send(item_of(it));
        };
        job.run(&dir, inputs, &meta, &cancel, &mut on_item).await
    };
    let forward = async {
        let (mut items, mut summary, mut done) = (
            Vec::new(),
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
            } else if p.stream_items {
                notify_progress(ctx, done, total, item.identity.clone()).await;
            }
            items.push(item);
        }
        (items, summary)
    };
    let (report, (mut items, summary)) = tokio::join!(work, forward);
    // Notifications arrive in completion order; the returned list (the plan an admin reads
    // under -WhatIf) is in a stable order, by identity.
    items.sort_by(|a, b| a.identity.cmp(&b.identity));
    bridge.abort();
    let _ = journal.close();
    let report = report.map_err(|e| ResponseError::new(ErrorCode::Io, e.to_string()))?;
    Ok((items, summary, report.cancelled))
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
