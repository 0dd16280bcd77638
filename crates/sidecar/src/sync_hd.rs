//! `environment.detect` and `photo.syncHdToAd` ("use existing HD"), over
//! `photobulk_engine::environment` and `photobulk_engine::sync_hd`.
//!
//! Both work on what the connection already has: the settings of `directory.connect` (probed
//! with a fresh connection, so the session's own binding is never unbound by a probe) and the
//! `graph.connect` client. The sync streams one `syncHd/item` and one `bulk/progress` per user
//! as it finishes (completion order); the result carries the counts and the journal.

use std::path::PathBuf;
use std::time::Duration;

use photobulk_engine::environment::{self as env, EnvironmentReport, SideProbe};
use photobulk_engine::import::Cancel;
use photobulk_engine::sync_hd::{
    sync_hd_to_ad, CloudMatch, SyncHdOptions, SyncItem, SyncJournal, SyncScope, SyncStatus,
    SyncSummary,
};
use photobulk_protocol::methods as m;
use photobulk_protocol::{ErrorCode, ItemError, ResponseError};

use crate::common::notify_progress;
use crate::ctx::Ctx;
use crate::{common, map};

/// `environment.detect`: probe whichever sides this connection has, each within the limit.
pub(crate) async fn environment(p: m::EnvironmentParams, ctx: &Ctx) -> m::EnvironmentInfo {
    let limit = Duration::from_millis(p.timeout_ms.unwrap_or(5_000).clamp(100, 60_000));
    let bound = ctx.session.bound_opt().await;
    let graph = ctx.session.graph_opt().await;
    photobulk_directory::install_crypto_provider();
    let report = env::detect(
        bound.as_ref().map(|b| b.settings.as_ref()),
        graph.as_ref().map(|g| &g.client),
        limit,
    )
    .await;
    ctx.server.log(format_args!(
        "environment.detect {}: {:?}",
        ctx.id, report.environment
    ));
    info(report)
}

fn info(r: EnvironmentReport) -> m::EnvironmentInfo {
    let side = |s: SideProbe| m::SideProbeInfo {
        configured: s.configured,
        ok: s.ok,
        detail: s.detail,
        elapsed_ms: s.elapsed_ms,
        server_kind: s.server_kind,
        naming_context: s.naming_context,
        users: s.users,
    };
    m::EnvironmentInfo {
        environment: match r.environment {
            env::Environment::OnPremises => m::EnvironmentKind::OnPremises,
            env::Environment::Cloud => m::EnvironmentKind::Cloud,
            env::Environment::Hybrid => m::EnvironmentKind::Hybrid,
            env::Environment::None => m::EnvironmentKind::None,
        },
        on_premises: side(r.on_premises),
        cloud: side(r.cloud),
    }
}

/// `photo.syncHdToAd`.
pub(crate) async fn run(p: m::SyncHdParams, ctx: &Ctx) -> Result<m::SyncHdResult, ResponseError> {
    let bound = ctx.session.bound().await?;
    let graph = ctx.session.graph().await?;
    let write = common::write_options(&bound, p.no_backup || p.dry_run)?;
    let journal_path = match (&p.journal, &bound.backup_dir) {
        (Some(j), _) => PathBuf::from(j),
        (None, Some(d)) => d.join(photobulk_engine::locations::SYNC_HD_JOURNAL),
        (None, None) => common::fresh_dir(ctx, "photobulk-sync-hd")?
            .join(photobulk_engine::locations::SYNC_HD_JOURNAL),
    };
    let journal = SyncJournal::open(&journal_path).map_err(|e| {
        ResponseError::new(
            ErrorCode::Io,
            format!("sync journal {}: {e}", journal_path.display()),
        )
    })?;
    let mut opts = SyncHdOptions::new(write);
    opts.match_by = match p.cloud_match {
        m::CloudMatch::Upn => CloudMatch::Upn,
        m::CloudMatch::Mail => CloudMatch::Mail,
        m::CloudMatch::Alias => CloudMatch::Alias,
    };
    opts.crop = common::crop(p.crop);
    opts.journal = Some(std::sync::Arc::new(journal));
    opts.dry_run = p.dry_run;
    opts.force = p.force;
    let cancel = Cancel::new();
    opts.cancel = Some(cancel.clone());
    let scope = if p.identities.is_empty() {
        SyncScope::Under {
            base: p.search_base.clone(),
        }
    } else {
        SyncScope::Identities {
            by: common::lookup(&p.match_by)?,
            values: p.identities.clone(),
        }
    };
    // Items leave the engine's callback through a channel; this task numbers and sends them.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<SyncItem>();
    // Under a search base the count is known only at the end: `total` then grows with `done`.
    let total = p.identities.len();
    // The engine's future is not `Send` for every lifetime (closures over borrowed streams), so
    // it runs on a blocking-pool thread driven by this runtime's handle, with owned clones.
    let handle = tokio::runtime::Handle::current();
    let (dir, client) = (bound.dir.clone(), graph.client.clone());
    let work = tokio::task::spawn_blocking(move || {
        let progress = move |i: &SyncItem| {
            let _ = tx.send(i.clone());
        };
        handle.block_on(sync_hd_to_ad(&dir, &client, &scope, &opts, &progress))
    });
    let forward = async {
        let mut done = 0usize;
        loop {
            tokio::select! {
                _ = ctx.cancel.cancelled(), if !cancel.is_cancelled() => cancel.cancel(),
                next = rx.recv() => {
                    let Some(item) = next else { break };
                    done += 1;
                    notify(ctx, item, done, total.max(done)).await;
                }
            }
        }
    };
    let (report, ()) = tokio::join!(work, forward);
    let report = report
        .map_err(|e| ResponseError::new(ErrorCode::InternalError, e.to_string()))?
        .map_err(|e| map::sync_hd(&e))?;
    let s = &report.summary;
    ctx.server.log(format_args!(
        "photo.syncHdToAd {}: {} written, {} would write, {} unchanged, {} failed",
        ctx.id, s.written, s.would_write, s.unchanged, s.failed
    ));
    Ok(m::SyncHdResult {
        summary: summary(&report.summary),
        cancelled: report.cancelled,
        journal: journal_path.display().to_string(),
    })
}

async fn notify(ctx: &Ctx, item: SyncItem, done: usize, total: usize) {
    let item = wire_item(item);
    ctx.out
        .notify::<m::SyncHdItemNotice>(&m::SyncHdItemParams {
            request_id: ctx.id.clone(),
            item: item.clone(),
        })
        .await;
    notify_progress(ctx, done, total, Some(item.identity)).await;
}

/// The engine's item in the wire's words; its error `kind` becomes one of the protocol's
/// error kinds, the engine's own kind kept in `detail`.
fn wire_item(i: SyncItem) -> m::SyncHdItem {
    let status = match i.status {
        SyncStatus::Written => m::SyncHdStatus::Written,
        SyncStatus::WouldWrite => m::SyncHdStatus::WouldWrite,
        SyncStatus::Unchanged => m::SyncHdStatus::Unchanged,
        SyncStatus::NoCloudPhoto => m::SyncHdStatus::NoCloudPhoto,
        SyncStatus::NoMailbox => m::SyncHdStatus::NoMailbox,
        SyncStatus::NotInCloud => m::SyncHdStatus::NotInCloud,
        SyncStatus::Failed => m::SyncHdStatus::Failed,
    };
    let error = i.error.map(|e| {
        let code = match i.status {
            SyncStatus::NoMailbox => ErrorCode::NoMailbox,
            SyncStatus::NotInCloud => ErrorCode::UserNotFound,
            _ => map::kind_code(e.kind, false),
        };
        ItemError {
            detail: Some(e.kind.to_string()),
            ..ItemError::new(code, e.message)
        }
    });
    m::SyncHdItem {
        identity: i.identity,
        dn: i.dn,
        cloud_user: i.cloud_user,
        status,
        source_sha256: i.source_sha256,
        source_bytes: i.source_bytes,
        written_sha256: i.written_sha256,
        written_bytes: i.written_bytes,
        backup_id: i.backup_id,
        error,
    }
}

fn summary(s: &SyncSummary) -> m::SyncHdSummary {
    m::SyncHdSummary {
        total: s.total,
        written: s.written,
        would_write: s.would_write,
        unchanged: s.unchanged,
        no_cloud_photo: s.no_cloud_photo,
        no_mailbox: s.no_mailbox,
        not_in_cloud: s.not_in_cloud,
        failed: s.failed,
    }
}
