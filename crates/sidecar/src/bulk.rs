//! `bulk.plan` and `bulk.run`.
//!
//! With only the `ActiveDirectory` target both go through the engine's import job
//! ([`crate::bulk_engine`]). With `ExchangeOnPrem` (which needs the 648x648 files on disk for
//! the module's `Set-UserPhoto`) they run here, built on (`photobulk_engine::plan` for file naming and
//! duplicates, `photobulk_imaging::convert` per file, `photobulk_directory` per user), item by
//! item so a cancel, a disconnect or a shutdown stops between two users: the LDAP write in
//! flight completes and its journal line is written. The journal (`OUT/journal.ndjson`) gets a
//! header line, one line per finished item (written whole, flushed), and an end line.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use photobulk_directory::{sha256_hex, Lookup};
use photobulk_engine::naming::account_key;
use photobulk_engine::{PlanOptions, Verdict};
use photobulk_imaging::Target;
use photobulk_protocol::methods::{
    self as m, BulkItem, BulkParams, BulkSummary, BulkTarget, ItemStatus,
};
use photobulk_protocol::{ErrorCode, ResponseError};
use serde_json::json;

use crate::conn::Ctx;
use crate::handlers::{self, Bound};
use crate::map;

struct Entry {
    path: PathBuf,
    identity: Option<String>,
    problem: Option<ResponseError>,
}

/// Inputs → one entry per file, with the account it is for or why it cannot be done.
fn expand(items: &[m::BulkInput]) -> Vec<Entry> {
    let mut out = Vec::new();
    let unnamed: Vec<PathBuf> = items
        .iter()
        .filter(|i| i.identity.is_none())
        .map(|i| PathBuf::from(&i.path))
        .collect();
    for it in items {
        let Some(id) = &it.identity else { continue };
        let problem = if Path::new(&it.path).is_dir() {
            Some(ResponseError::new(
                ErrorCode::InvalidParams,
                format!("{}: a folder cannot be one user's photo", it.path),
            ))
        } else {
            None
        };
        out.push(Entry {
            path: PathBuf::from(&it.path),
            identity: Some(id.clone()),
            problem,
        });
    }
    if !unnamed.is_empty() {
        for it in photobulk_engine::plan(&unnamed, PlanOptions::default()).items {
            let problem = match &it.verdict {
                Verdict::NoAccount => Some(ResponseError::new(
                    ErrorCode::NoAccount,
                    format!("{}: the file name names no account (expected 'account.jpg' or 'account anything.jpg')", it.path.display()),
                )),
                Verdict::Unreadable { reason } => {
                    Some(ResponseError::new(ErrorCode::Io, format!("{}: {reason}", it.path.display())))
                }
                _ => None,
            };
            out.push(Entry {
                path: it.path,
                identity: it.account,
                problem,
            });
        }
    }
    // One account named twice (by file names or identities alike): neither wins.
    let mut keys: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, e) in out.iter().enumerate() {
        if let (Some(id), None) = (&e.identity, &e.problem) {
            keys.entry(account_key(id)).or_default().push(i);
        }
    }
    for idx in keys.values().filter(|v| v.len() > 1) {
        for &i in idx {
            let others: Vec<String> = idx
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| out[j].path.display().to_string())
                .collect();
            let who = out[i].identity.clone().unwrap_or_default();
            out[i].problem = Some(ResponseError::new(
                ErrorCode::Duplicate,
                format!(
                    "{who} is also named by {}: neither is written",
                    others.join(", ")
                ),
            ));
        }
    }
    out
}

fn item_for(e: &Entry, status: ItemStatus) -> BulkItem {
    BulkItem {
        path: e.path.display().to_string(),
        identity: e.identity.clone(),
        dn: None,
        status,
        has_photo: None,
        ad_path: None,
        ad_bytes: None,
        ad_sha256: None,
        hd_path: None,
        backup_id: None,
        error: e.problem.clone().map(map::item),
    }
}

fn count(s: &mut BulkSummary, status: ItemStatus) {
    match status {
        ItemStatus::Ready => s.ready += 1,
        ItemStatus::Written => s.written += 1,
        ItemStatus::Unchanged => s.unchanged += 1,
        ItemStatus::Skipped => s.skipped += 1,
        ItemStatus::Failed => s.failed += 1,
        ItemStatus::Cancelled => s.cancelled += 1,
    }
}

fn check(p: &BulkParams) -> Result<(), ResponseError> {
    if p.items.is_empty() {
        return Err(ResponseError::new(
            ErrorCode::InvalidParams,
            "items is empty",
        ));
    }
    if p.targets.is_empty() {
        return Err(ResponseError::new(
            ErrorCode::InvalidParams,
            "targets is empty (ActiveDirectory, ExchangeOnPrem)",
        ));
    }
    Ok(())
}

async fn bound_if_ad(p: &BulkParams, ctx: &Ctx) -> Result<Option<Bound>, ResponseError> {
    if p.targets.contains(&BulkTarget::ActiveDirectory) {
        Ok(Some(ctx.session.bound().await?))
    } else {
        Ok(None)
    }
}

pub(crate) async fn plan(p: BulkParams, ctx: &Ctx) -> Result<m::BulkPlanResult, ResponseError> {
    check(&p)?;
    if p.targets == [BulkTarget::ActiveDirectory] {
        let (items, summary, _, _, _) = crate::bulk_engine::import(&p, ctx, true).await?;
        return Ok(m::BulkPlanResult { items, summary });
    }
    let by = handlers::lookup(&p.match_by)?;
    let bound = bound_if_ad(&p, ctx).await?;
    let items = p.items.clone();
    let entries = tokio::task::spawn_blocking(move || expand(&items))
        .await
        .map_err(|e| ResponseError::new(ErrorCode::InternalError, e.to_string()))?;
    let mut summary = BulkSummary {
        total: entries.len(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(entries.len());
    for e in &entries {
        if ctx.cancel.is_cancelled() {
            return Err(ResponseError::new(
                ErrorCode::RequestCancelled,
                "bulk.plan cancelled",
            ));
        }
        let mut item = item_for(e, ItemStatus::Ready);
        if e.problem.is_some() {
            item.status = ItemStatus::Skipped;
        } else if let (Some(b), Some(id)) = (&bound, &e.identity) {
            match b.dir.find_user(&by, id, true).await {
                Ok(u) => {
                    item.dn = Some(u.dn);
                    item.has_photo = Some(u.photo.is_some());
                }
                Err(err) => {
                    item.status = ItemStatus::Skipped;
                    item.error = Some(map::item(map::directory(&err)));
                }
            }
        }
        count(&mut summary, item.status);
        out.push(item);
    }
    Ok(m::BulkPlanResult {
        items: out,
        summary,
    })
}

struct Journal {
    file: std::fs::File,
    path: PathBuf,
}

impl Journal {
    fn open(dir: &Path) -> Result<Journal, ResponseError> {
        let path = dir.join("journal.ndjson");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| map::io(path.display(), &e))?;
        Ok(Journal { file, path })
    }
    /// One whole line per call, flushed: a reader never sees half a record.
    fn line(&mut self, v: &serde_json::Value) {
        let mut bytes = serde_json::to_vec(v).unwrap_or_default();
        bytes.push(b'\n');
        let _ = self.file.write_all(&bytes);
        let _ = self.file.flush();
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) async fn run(p: BulkParams, ctx: &Ctx) -> Result<m::BulkRunResult, ResponseError> {
    check(&p)?;
    if p.targets == [BulkTarget::ActiveDirectory] {
        let (_, summary, cancelled, out_dir, journal) =
            crate::bulk_engine::import(&p, ctx, false).await?;
        return Ok(m::BulkRunResult {
            summary,
            cancelled,
            out_dir: out_dir.display().to_string(),
            journal: journal.display().to_string(),
        });
    }
    let by = handlers::lookup(&p.match_by)?;
    let bound = bound_if_ad(&p, ctx).await?;
    let write_opts = match &bound {
        Some(b) => Some(handlers::write_options(b, p.no_backup)?),
        None => None,
    };
    let out_dir = match &p.out_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| map::io(d, &e))?;
            PathBuf::from(d)
        }
        None => handlers::fresh_dir(ctx, "bulk")?,
    };
    let mut targets = Vec::new();
    if p.targets.contains(&BulkTarget::ActiveDirectory) {
        targets.push(Target::ad());
    }
    if p.targets.contains(&BulkTarget::ExchangeOnPrem) {
        targets.push(Target::hd());
    }
    let mut journal = Journal::open(&out_dir)?;
    let items = p.items.clone();
    let entries = tokio::task::spawn_blocking(move || expand(&items))
        .await
        .map_err(|e| ResponseError::new(ErrorCode::InternalError, e.to_string()))?;
    let total = entries.len();
    journal.line(
        &json!({"journal": "photobulk.bulk", "version": 1, "started": now_unix(), "total": total,
        "targets": p.targets, "force": p.force, "noBackup": p.no_backup}),
    );
    ctx.server
        .log(format_args!("bulk.run {}: {total} items", ctx.id));
    let mut summary = BulkSummary {
        total,
        ..Default::default()
    };
    let mut cancelled = false;
    for (i, e) in entries.iter().enumerate() {
        if ctx.cancel.is_cancelled() {
            cancelled = true;
            summary.cancelled += total - i;
            break;
        }
        let item = one(
            e,
            &by,
            bound.as_ref(),
            write_opts.as_ref(),
            &targets,
            &p,
            &out_dir,
        )
        .await;
        count(&mut summary, item.status);
        journal.line(&json!({"time": now_unix(), "item": item}));
        let current = item.identity.clone();
        ctx.out
            .notify::<m::BulkItemNotice>(&m::BulkItemParams {
                request_id: ctx.id.clone(),
                item,
            })
            .await;
        ctx.out
            .notify::<m::BulkProgress>(&m::BulkProgressParams {
                request_id: ctx.id.clone(),
                done: i + 1,
                total,
                current,
            })
            .await;
    }
    journal.line(&json!({"end": now_unix(), "cancelled": cancelled, "summary": summary}));
    let _ = journal.file.sync_all();
    ctx.server.log(format_args!(
        "bulk.run {}: {} written, {} unchanged, {} skipped, {} failed, {} cancelled",
        ctx.id,
        summary.written,
        summary.unchanged,
        summary.skipped,
        summary.failed,
        summary.cancelled
    ));
    Ok(m::BulkRunResult {
        summary,
        cancelled,
        out_dir: out_dir.display().to_string(),
        journal: journal.path.display().to_string(),
    })
}

async fn one(
    e: &Entry,
    by: &Lookup,
    bound: Option<&Bound>,
    write_opts: Option<&photobulk_directory::WriteOptions>,
    targets: &[Target],
    p: &BulkParams,
    out_dir: &Path,
) -> BulkItem {
    let mut item = item_for(e, ItemStatus::Ready);
    if e.problem.is_some() {
        item.status = ItemStatus::Skipped;
        return item;
    }
    let id = e.identity.clone().unwrap_or_default();
    let fail = |mut item: BulkItem, status: ItemStatus, err: ResponseError| {
        item.status = status;
        item.error = Some(map::item(err));
        item
    };
    let user = match bound {
        Some(b) => match b.dir.find_user(by, &id, !p.force).await {
            Ok(u) => Some(u),
            Err(err) => return fail(item, ItemStatus::Skipped, map::directory(&err)),
        },
        None => None,
    };
    if let Some(u) = &user {
        item.dn = Some(u.dn.clone());
        item.has_photo = (!p.force).then_some(u.photo.is_some());
    }
    let (path, name, targets, crop, out) = (
        e.path.clone(),
        id.clone(),
        targets.to_vec(),
        handlers::crop(p.crop),
        out_dir.to_path_buf(),
    );
    let converted = tokio::task::spawn_blocking(move || {
        handlers::convert_file(&path, &name, &targets, crop, &out)
    })
    .await;
    let outputs = match converted {
        Ok(Ok(o)) => o,
        Ok(Err(err)) => return fail(item, ItemStatus::Failed, err),
        Err(join) => {
            return fail(
                item,
                ItemStatus::Failed,
                ResponseError::new(ErrorCode::InternalError, join.to_string()),
            )
        }
    };
    let mut ad_jpeg = None;
    for (o, file) in outputs {
        match o.target.as_str() {
            "ad" => {
                item.ad_path = Some(file.display().to_string());
                item.ad_bytes = Some(o.bytes);
                item.ad_sha256 = Some(o.sha256.clone());
                ad_jpeg = Some(o.jpeg);
            }
            _ => item.hd_path = Some(file.display().to_string()),
        }
    }
    let (Some(b), Some(u), Some(jpeg), Some(wo)) = (bound, &user, ad_jpeg, write_opts) else {
        return item; // nothing for the sidecar to write: Ready (the module pushes the HD photo)
    };
    if !p.force && u.photo.as_deref().map(sha256_hex).as_deref() == item.ad_sha256.as_deref() {
        item.status = ItemStatus::Unchanged;
        return item;
    }
    match b.dir.set_photo(&u.dn, &jpeg, wo).await {
        Ok(o) => {
            item.status = ItemStatus::Written;
            item.backup_id = o.backup.map(|r| r.id);
            item
        }
        Err(err) => fail(item, ItemStatus::Failed, map::directory(&err)),
    }
}
