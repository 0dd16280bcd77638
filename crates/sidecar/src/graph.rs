//! `graph.connect` and the `ExchangeOnline` bulk target, over `photobulk_graph`.
//!
//! The bulk target is the engine's cloud job ([`photobulk_engine::cloud`], the same job as
//! `photobulk graph upload`): one matching rule, two inputs for one user refused, streaming
//! conversion and upload, the upload journal (`upload-journal.jsonl` beside the backups) for
//! "unchanged", resume and restore of a run. This module only maps: protocol params → job,
//! [`CloudItem`] → `bulk/item` notifications, the request's cancellation → the engine's
//! `Cancel` (items not yet converting stop; uploads in flight finish and are journaled).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use photobulk_engine::cloud::{self, CloudAction, CloudItem, CloudJob};
use photobulk_graph::{
    CertificateCredential, Cloud, CloudBackupStore, Credentials, GraphClient, GraphConfig, Secret,
    UploadJournal, WriteOptions,
};
use photobulk_protocol::methods::{
    self as m, BulkItem, BulkParams, BulkSummary, BulkTarget, ItemStatus,
};
use photobulk_protocol::{ErrorCode, ResponseError};

use crate::common::inputs_of;
use crate::ctx::Ctx;
use crate::session::GraphBound;
use crate::{common, map};

pub(crate) async fn connect(
    p: m::GraphConnectParams,
    ctx: &Ctx,
) -> Result<m::GraphConnectResult, ResponseError> {
    let invalid = |msg: &str| ResponseError::new(ErrorCode::InvalidParams, msg.to_string());
    let given = |s: &Option<String>| {
        s.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
    };
    let (creds, auth) = if let Some(token) = given(&p.access_token) {
        (
            Credentials::AccessToken(Secret::new(token.trim())),
            "access_token",
        )
    } else {
        let tenant =
            given(&p.tenant).ok_or_else(|| invalid("tenant is required (or accessToken)"))?;
        let client_id =
            given(&p.client_id).ok_or_else(|| invalid("clientId is required (or accessToken)"))?;
        if let Some(cert) = given(&p.certificate_file) {
            let key = given(&p.certificate_key_file).unwrap_or_else(|| cert.clone());
            let read = |f: &str| std::fs::read(f).map_err(|e| map::io(f, &e));
            let certificate = CertificateCredential::from_pem(&read(&cert)?, &read(&key)?)
                .map_err(|e| map::graph(&e))?;
            (
                Credentials::Certificate {
                    tenant,
                    client_id,
                    certificate,
                },
                "certificate",
            )
        } else if let Some(secret) = given(&p.client_secret) {
            (
                Credentials::ClientSecret {
                    tenant,
                    client_id,
                    secret: Secret::new(secret),
                },
                "client_secret",
            )
        } else {
            return Err(invalid(
                "give clientSecret or certificateFile with tenant and clientId, or accessToken",
            ));
        }
    };
    let mut cfg = GraphConfig::for_cloud(match p.cloud {
        m::GraphCloud::Global => Cloud::Global,
        m::GraphCloud::UsGov => Cloud::UsGov,
        m::GraphCloud::UsGovDod => Cloud::UsGovDod,
        m::GraphCloud::China => Cloud::China,
    });
    if let Some(a) = given(&p.authority_url) {
        cfg.authority_url = a;
    }
    if let Some(g) = given(&p.graph_url) {
        cfg.graph_url = g;
    }
    cfg.ca_file = given(&p.ca_file).map(PathBuf::from);
    if let Some(n) = p.photo_concurrency {
        cfg.photo_concurrency = n.clamp(1, 16);
    }
    let graph_url = cfg.graph_url.clone();
    let client = GraphClient::new(cfg, creds).map_err(|e| map::graph(&e))?;
    client.sign_in().await.map_err(|e| map::graph(&e))?;
    // As `photobulk graph`: the given folder as is, else the default backup folder + /graph.
    let backup_dir = given(&p.backup_dir)
        .map(PathBuf::from)
        .or_else(|| ctx.session.default_backup_dir().map(|d| d.join("graph")));
    let backup = match &backup_dir {
        Some(d) => Some(CloudBackupStore::open(d).map_err(|e| map::graph(&e))?),
        None => None,
    };
    let journal_dir = backup_dir
        .clone()
        .unwrap_or_else(|| ctx.server.config.work_dir.join("photobulk-graph"));
    let journal =
        UploadJournal::open(journal_dir.join(photobulk_engine::locations::UPLOAD_JOURNAL))
            .map_err(|e| map::graph(&e))?;
    ctx.server
        .log(format_args!("signed in to Graph at {graph_url} ({auth})"));
    let result = m::GraphConnectResult {
        auth: auth.into(),
        graph_url,
        backup_dir: backup_dir.map(|d| d.display().to_string()),
        journal: journal.path().display().to_string(),
    };
    ctx.session
        .set_graph(GraphBound {
            client,
            backup,
            journal: Arc::new(journal),
        })
        .await;
    Ok(result)
}

fn item_of(it: &CloudItem) -> BulkItem {
    let cancelled = it.error.as_ref().is_some_and(|e| e.kind == "cancelled");
    let status = match it.action {
        CloudAction::Uploaded => ItemStatus::Written,
        CloudAction::Unchanged => ItemStatus::Unchanged,
        CloudAction::WouldSet | CloudAction::WouldReplace => ItemStatus::Ready,
        CloudAction::Failed => ItemStatus::Failed,
        CloudAction::Skipped if cancelled => ItemStatus::Cancelled,
        CloudAction::Skipped => ItemStatus::Skipped,
    };
    let mut item = common::hd_item(
        BulkTarget::ExchangeOnline,
        &it.file,
        it.account.as_ref(),
        status,
        it.error.as_ref(),
        it.hd.as_ref(),
    );
    item.has_photo = match it.action {
        CloudAction::WouldSet => Some(false),
        CloudAction::WouldReplace => Some(true),
        _ => None,
    };
    item.user_principal_name = it.user.as_ref().map(|u| u.user_principal_name.clone());
    item.backup_id = it.backup_id.clone();
    item
}

/// `bulk.plan` (`dry_run`) or `bulk.run` for the ExchangeOnline target, through the engine's
/// cloud job ([`photobulk_engine::cloud`]). Returns the items, the summary, whether it was
/// cancelled, and the upload journal.
pub(crate) async fn bulk(
    p: &BulkParams,
    ctx: &Ctx,
    out_dir: &Path,
    dry_run: bool,
) -> Result<(Vec<BulkItem>, BulkSummary, bool, PathBuf), ResponseError> {
    let g = ctx.session.graph().await?;
    let write =
        match (&g.backup, p.no_backup || dry_run) {
            (_, true) => WriteOptions::no_backup(),
            (Some(s), false) => WriteOptions::backup_to(s.clone()),
            (None, false) => return Err(ResponseError::new(
                ErrorCode::BackupRequired,
                "no backup folder for cloud photos: give backupDir to graph.connect, or noBackup",
            )),
        };
    let items = p.items.clone();
    let inputs = tokio::task::spawn_blocking(move || inputs_of(&items))
        .await
        .map_err(map::join)??;
    let total = inputs.items.len();
    // One job = the same inputs, crop and tenant: a re-run after a kill, a cancel or a lost
    // connection continues the same run, so one restore undoes every attempt.
    let keys: Vec<String> = p
        .items
        .iter()
        .map(|i| format!("{}|{}", i.path, i.identity.as_deref().unwrap_or("")))
        .collect();
    let crop = common::crop(p.crop);
    let job_key = cloud::job_key(&g.client.config_graph_url(), &keys, crop, false, p.force);
    let mut job = CloudJob::new(write, g.journal.clone(), job_key);
    job.crop = crop;
    job.force = p.force;
    job.out_dir = (!dry_run).then(|| out_dir.to_path_buf());
    job.image_threads = (p.throttle_limit as usize).max(1);
    let (cancel, bridge) = common::engine_cancel(ctx);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<BulkItem>();
    let client = g.client.clone();
    let work = async move {
        let on_item = |it: &CloudItem| {
            let _ = tx.send(item_of(it));
        };
        if dry_run {
            job.plan(&client, inputs.items, &on_item).await
        } else {
            job.run(&client, inputs.items, &cancel, &on_item).await
        }
    };
    let forward = common::forward_items(ctx, rx, total, dry_run, p.stream_items);
    let (report, (items, summary)) = tokio::join!(work, forward);
    bridge.abort();
    let report = report.map_err(|e| map::graph(&e))?;
    if let Some(run) = &report.run {
        let s = g.client.stats();
        ctx.server.log(format_args!(
            "bulk.run {} ExchangeOnline: run {run}{}: {} written, {} unchanged, {} failed; {} requests, {} throttled, {} retries",
            ctx.id,
            if report.resumed { " (continued)" } else { "" },
            summary.written,
            summary.unchanged,
            summary.failed,
            s.requests,
            s.throttled,
            s.retries
        ));
    }
    Ok((
        items,
        summary,
        report.cancelled,
        g.journal.path().to_path_buf(),
    ))
}
