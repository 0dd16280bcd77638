//! `graph.connect` and the `ExchangeOnline` bulk target, over `photobulk_graph`.
//!
//! A bulk run lists the tenant's users once ([`UserIndex`]: id, UPN or mail, else alias
//! (`mailNickname`), UPN prefix or mail prefix — the one rule `photobulk graph upload` uses; a
//! name two users answer to is refused), refuses two inputs that land on one user (neither is
//! uploaded), then converts and uploads in chunks: the 648x648 JPEGs of chunk n+1 are made on
//! the blocking pool while chunk n uploads through [`upload_all`] (backups of the cloud photo,
//! Graph's throttling and retries, at most 4 photo requests in flight). The upload journal
//! (`upload-journal.jsonl` beside the backups) decides "unchanged" — Graph re-encodes what it
//! stores, so its bytes never match — and makes a re-run skip users already uploaded. Each
//! bulk run is a run of that journal: a re-run of the same inputs after a cancel, a kill or
//! failures continues it, and a user is backed up once per run (its first intent), never again
//! on a resumed attempt. Cancellation is checked between chunks: uploads in flight finish and
//! are journaled.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use photobulk_graph::{
    upload_all, BulkOptions, CertificateCredential, Cloud, CloudBackupStore, Credentials,
    GraphClient, GraphConfig, Secret, UploadItem, UploadJournal, UploadResult, UploadStatus,
    UserIndex, WriteOptions,
};
use photobulk_imaging::Target;
use photobulk_protocol::methods::{
    self as m, BulkItem, BulkParams, BulkSummary, BulkTarget, ItemStatus,
};
use photobulk_protocol::{ErrorCode, ItemError, ResponseError};

use crate::common::{count, inputs_of, notify_item, skipped_input};
use crate::ctx::Ctx;
use crate::session::GraphBound;
use crate::{common, map};

/// Inputs converted and uploaded per chunk.
const CHUNK: usize = 16;

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

/// One input headed for the cloud.
struct Planned {
    item: BulkItem,
    /// Graph's object id when the input resolved to exactly one user.
    user: Option<photobulk_graph::User>,
}

fn skipped(mut item: BulkItem, err: ResponseError) -> BulkItem {
    item.status = ItemStatus::Skipped;
    item.error = Some(map::item(err));
    item
}

/// Inputs → items (resolved to cloud users, or skipped with why).
fn resolve(p: &BulkParams, index: &UserIndex) -> Result<Vec<Planned>, ResponseError> {
    let inputs = inputs_of(&p.items)?;
    let mut out: Vec<Planned> = Vec::with_capacity(inputs.items.len());
    let mut by_user: HashMap<String, Vec<usize>> = HashMap::new();
    for input in &inputs.items {
        let mut item = skipped_input(input, BulkTarget::ExchangeOnline);
        let mut user = None;
        if item.error.is_none() {
            let key = input.account.clone().unwrap_or_default();
            match index.find(&key) {
                Ok(u) => {
                    item.user_principal_name = Some(u.user_principal_name.clone());
                    by_user
                        .entry(u.id.to_ascii_lowercase())
                        .or_default()
                        .push(out.len());
                    user = Some(u.clone());
                }
                Err(e) => item = skipped(item, map::graph(&e)),
            }
        }
        out.push(Planned { item, user });
    }
    for idx in by_user.values().filter(|v| v.len() > 1) {
        let paths: Vec<String> = idx.iter().map(|&i| out[i].item.path.clone()).collect();
        for &i in idx {
            let who = out[i].item.user_principal_name.clone().unwrap_or_default();
            let err = ResponseError::new(
                ErrorCode::Duplicate,
                format!(
                    "{who} is named by {}: neither is uploaded",
                    paths.join(", ")
                ),
            );
            out[i].item = skipped(out[i].item.clone(), err);
            out[i].user = None;
        }
    }
    Ok(out)
}

/// Convert one chunk to HD JPEGs (blocking). Failures become finished items.
fn convert_chunk(
    chunk: Vec<Planned>,
    crop: photobulk_imaging::Crop,
    out: &Path,
) -> (Vec<(BulkItem, UploadItem)>, Vec<BulkItem>) {
    let (mut ready, mut failed) = (Vec::new(), Vec::new());
    for Planned { mut item, user } in chunk {
        let Some(user) = user else {
            failed.push(item);
            continue;
        };
        let name = item
            .identity
            .clone()
            .unwrap_or_else(|| user.alias().to_string());
        match common::convert_file(Path::new(&item.path), &name, &[Target::hd()], crop, out) {
            Ok(mut conv) if !conv.outputs.is_empty() => {
                conv.frame(&mut item);
                let (o, file) = conv.outputs.remove(0);
                item.hd_path = Some(file.display().to_string());
                item.hd_bytes = Some(o.bytes);
                item.hd_sha256 = Some(o.sha256.clone());
                let upload = UploadItem {
                    key: user.id.clone(),
                    jpeg: o.jpeg.into(),
                    source: Some(item.path.clone()),
                };
                ready.push((item, upload));
            }
            Ok(_) => {
                item.status = ItemStatus::Failed;
                item.error = Some(ItemError::new(ErrorCode::ImageInvalid, "no HD output"));
                failed.push(item);
            }
            Err(e) => {
                item.status = ItemStatus::Failed;
                item.error = Some(map::item(e));
                failed.push(item);
            }
        }
    }
    (ready, failed)
}

fn finished(mut item: BulkItem, r: &UploadResult) -> BulkItem {
    item.status = match r.status {
        UploadStatus::Uploaded => ItemStatus::Written,
        UploadStatus::Unchanged => ItemStatus::Unchanged,
        UploadStatus::Failed => ItemStatus::Failed,
    };
    item.backup_id = r.backup_id.clone();
    if let Some(u) = &r.user {
        item.user_principal_name = Some(u.user_principal_name.clone());
    }
    item.error = r.error.as_ref().map(|e| map::item(map::graph(e)));
    item
}

/// `bulk.plan` (`dry_run`) or `bulk.run` for the ExchangeOnline target. Returns the items,
/// the summary, whether it was cancelled, and the upload journal.
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
    let users = g.client.list_users().await.map_err(|e| map::graph(&e))?;
    let index = UserIndex::new(users);
    let params = p.clone();
    let planned = {
        let index = index.clone();
        tokio::task::spawn_blocking(move || resolve(&params, &index))
            .await
            .map_err(|e| ResponseError::new(ErrorCode::InternalError, e.to_string()))??
    };
    let total = planned.len();
    let mut summary = BulkSummary {
        total,
        ..Default::default()
    };
    let journal = g.journal.path().to_path_buf();
    if dry_run {
        let items: Vec<BulkItem> = planned
            .into_iter()
            .map(|mut pl| {
                if pl.user.is_some() {
                    pl.item.status = ItemStatus::Ready;
                }
                count(&mut summary, pl.item.status);
                pl.item
            })
            .collect();
        return Ok((items, summary, false, journal));
    }
    // One job = the same inputs, crop and tenant: a re-run after a kill, a cancel or a lost
    // connection continues the same run, so one restore undoes every attempt.
    let job = {
        let mut inputs: Vec<(String, Option<String>)> = p
            .items
            .iter()
            .map(|i| (i.path.clone(), i.identity.clone()))
            .collect();
        inputs.sort();
        let text = serde_json::json!({
            "command": "bulk ExchangeOnline",
            "graph": g.client.config_graph_url(),
            "inputs": inputs,
            "crop": format!("{:?}", p.crop),
            "force": p.force,
        })
        .to_string();
        photobulk_graph::sha256_hex(text.as_bytes())
    };
    let (run, resumed) = g
        .journal
        .begin_run(&job, "upload", None)
        .map_err(|e| map::graph(&e))?;
    ctx.server.log(format_args!(
        "bulk.run {} ExchangeOnline: run {run}{}",
        ctx.id,
        if resumed { " (continued)" } else { "" }
    ));
    let mut opts = BulkOptions::new(write);
    opts.journal = Some(g.journal.clone());
    opts.force = p.force;
    opts.workers = 8;
    opts.run = Some(run.clone());
    let crop = common::crop(p.crop);
    let mut chunks: Vec<Vec<Planned>> = Vec::new();
    let mut rest = planned.into_iter().peekable();
    while rest.peek().is_some() {
        chunks.push(rest.by_ref().take(CHUNK).collect());
    }
    let mut chunks = chunks.into_iter();
    let convert = |chunk: Vec<Planned>| {
        let out = out_dir.to_path_buf();
        tokio::task::spawn_blocking(move || convert_chunk(chunk, crop, &out))
    };
    let mut next = chunks.next().map(convert);
    let (mut done, mut items, mut cancelled) = (0usize, Vec::with_capacity(total), false);
    while let Some(job) = next.take() {
        let (ready, failed) = job
            .await
            .map_err(|e| ResponseError::new(ErrorCode::InternalError, e.to_string()))?;
        next = chunks.next().map(convert);
        let mut finished_items = failed;
        if ctx.cancel.is_cancelled() {
            cancelled = true;
        }
        if cancelled {
            finished_items.extend(ready.into_iter().map(|(mut i, _)| {
                i.status = ItemStatus::Cancelled;
                i.error = Some(ItemError::new(ErrorCode::RequestCancelled, "cancelled"));
                i
            }));
        } else {
            let mut waiting: HashMap<String, BulkItem> = HashMap::new();
            let mut uploads = Vec::with_capacity(ready.len());
            for (item, upload) in ready {
                waiting.insert(upload.key.clone(), item);
                uploads.push(upload);
            }
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<BulkItem>();
            let work = async {
                let tx = tx;
                let on_result = |r: &UploadResult| {
                    if let Some(item) = waiting.get(&r.key) {
                        let _ = tx.send(finished(item.clone(), r));
                    }
                };
                upload_all(&g.client, &index, uploads, &opts, &on_result).await
            };
            let forward = async {
                while let Some(item) = rx.recv().await {
                    done += 1;
                    count(&mut summary, item.status);
                    notify_item(ctx, &item, done, total).await;
                    items.push(item);
                }
            };
            tokio::join!(work, forward);
        }
        for item in finished_items {
            done += 1;
            count(&mut summary, item.status);
            notify_item(ctx, &item, done, total).await;
            items.push(item);
        }
    }
    let retryable = items
        .iter()
        .filter(|i: &&BulkItem| i.error.as_ref().is_some_and(|e| e.retryable))
        .count();
    let _ = g.journal.end(
        &run,
        cancelled,
        summary.written,
        summary.unchanged,
        summary.failed + summary.cancelled,
        retryable,
    );
    let s = g.client.stats();
    ctx.server.log(format_args!(
        "bulk.run {} ExchangeOnline: {} written, {} unchanged, {} failed; {} requests, {} throttled, {} retries",
        ctx.id, summary.written, summary.unchanged, summary.failed, s.requests, s.throttled, s.retries
    ));
    Ok((items, summary, cancelled, journal))
}
