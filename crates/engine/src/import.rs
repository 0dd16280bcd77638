//! The main job: put a folder (or CSV list) of photos into Active Directory `thumbnailPhoto`,
//! safely, in bulk, resumably — and undo a whole run.
//!
//! # Pipeline
//! Inputs ([`crate::inputs`]) stream through a window of `window` items in flight (default
//! 32). Each item: look the user up (one search, which also returns the current photo) →
//! read and hash the source → convert it on the blocking pool, at most `image_threads` at once
//! (one per core) → compare with the directory's current bytes → back up the old photo
//! (fsync'd, [`photobulk_directory::BackupStore`]) → journal the intent (fsync'd,
//! [`crate::journal`]) → replace → journal done. Results are handed to the caller as each item
//! finishes. Memory is bounded by the window: at most `image_threads` decodes and `window`
//! small JPEGs exist at once, whatever the number of users.
//!
//! # Unchanged, resume, no double writes
//! "Unchanged" is decided from the directory's current bytes: if the SHA-256 of what the user
//! has equals what we would write, nothing is written. The journal adds a shortcut: when the
//! last write we recorded for this user came from a source file with the same SHA-256 and the
//! same imaging options, and the directory still holds exactly those bytes, the image is not
//! even decoded. A run killed at any point (kill -9, power) is finished by running the same
//! command again: users already written hold the new bytes and are skipped; an unfinished run of
//! the same job is *resumed* under the same run id, so `restore --run ID` covers all of it.
//!
//! # Errors
//! Per item; the batch goes on. Connection loss, timeouts and busy servers are marked
//! `retryable` (run again to finish). The whole run fails only when its own state cannot be kept
//! (the journal or the backup folder cannot be written): then no further write is sent.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use photobulk_directory::{
    sha256_hex, BackupReason, BackupRecord, BackupStore, Directory, DirectoryError, ListOptions,
    Lookup, User, WriteOptions,
};
use photobulk_imaging::{Crop, Options, Warning};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::inputs::{Input, Inputs, Take};
use crate::journal::{new_run_id, now_rfc3339, Intent, Journal, Record};
use crate::EngineError;

/// A flag set on Ctrl+C (or by a caller): items not yet writing stop, writes in flight finish.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// Set the flag on the first Ctrl+C (SIGINT); a second Ctrl+C exits at once with code 130
    /// (the journal is still consistent: intents are on disk before their writes are sent).
    /// Needs a running Tokio runtime. `on_first` is called once, e.g. to tell the user.
    pub fn on_ctrl_c(&self, on_first: impl Fn() + Send + 'static) {
        let flag = self.0.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
                on_first();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
}

/// What happened (or, in a dry run, would happen) to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The user had no photo; it was set.
    Set,
    /// The user's photo was replaced.
    Replace,
    /// The user already has exactly these bytes: nothing written.
    Unchanged,
    /// Not written because of an error (see `error`).
    Failed,
    /// Not attempted: a newer file for the same account won, or the run was cancelled first.
    Skipped,
}

/// Why an item failed or was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemError {
    /// `user_not_found`, `ambiguous`, `no_account`, `unreadable`, `image`, `superseded`,
    /// `cancelled`, `connection_lost`, `insufficient_rights`, ... (directory kinds as in
    /// `DirectoryError::kind`).
    pub kind: String,
    /// Running the same command again later may succeed without anyone changing anything.
    pub retryable: bool,
    pub message: String,
}

/// One input's result. JSON: one object per line with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct ImportItem {
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    pub action: Action,
    /// True in a dry run (`--plan`): `set`/`replace` are what would be done.
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// SHA-256 and size of the bytes written (or that would be / already are there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    /// The backup of the replaced photo (restore one user with `photobulk ad restore --backup`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// Other files naming the same account (the winner lists the losers, a loser the winner).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<PathBuf>,
}

impl ImportItem {
    fn new(input: &Input, dry_run: bool) -> Self {
        ImportItem {
            file: input.path.clone(),
            origin: input.origin.clone(),
            account: input.account.clone(),
            dn: None,
            action: Action::Failed,
            dry_run,
            error: None,
            warnings: Vec::new(),
            sha256: None,
            bytes: None,
            backup_id: None,
            also: input.also.clone(),
        }
    }
    fn fail(mut self, kind: &str, retryable: bool, message: String) -> Self {
        self.action = Action::Failed;
        self.error = Some(ItemError {
            kind: kind.into(),
            retryable,
            message,
        });
        self
    }
    fn dir_fail(self, e: &DirectoryError) -> Self {
        let mut msg = e.to_string();
        if e.is_retryable() {
            msg.push_str(" (retryable: run the same command again to finish)");
        }
        self.fail(e.kind(), e.is_retryable(), msg)
    }
    fn skip(mut self, kind: &str, message: String) -> Self {
        self.action = Action::Skipped;
        self.error = Some(ItemError {
            kind: kind.into(),
            retryable: kind == "cancelled",
            message,
        });
        self
    }
}

/// Counts per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub total: usize,
    pub set: usize,
    pub replaced: usize,
    pub unchanged: usize,
    pub failed: usize,
    /// Of `failed`: how many may succeed on a re-run (connection lost, timeouts, busy).
    pub retryable: usize,
    pub skipped: usize,
}

impl ImportSummary {
    pub fn add(&mut self, it: &ImportItem) {
        self.total += 1;
        match it.action {
            Action::Set => self.set += 1,
            Action::Replace => self.replaced += 1,
            Action::Unchanged => self.unchanged += 1,
            Action::Failed => {
                self.failed += 1;
                if it.error.as_ref().is_some_and(|e| e.retryable) {
                    self.retryable += 1;
                }
            }
            Action::Skipped => self.skipped += 1,
        }
    }
    /// Users written (set + replaced).
    pub fn written(&self) -> usize {
        self.set + self.replaced
    }
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// Run id (`restore --run ID`); `None` for a dry run.
    pub run: Option<String>,
    pub resumed: bool,
    pub cancelled: bool,
    pub summary: ImportSummary,
    pub items: Vec<ImportItem>,
    /// Non-image files skipped in scanned folders.
    pub skipped_files: Vec<PathBuf>,
    /// Dry run with a scope: users in it that no input names (their label: sAMAccountName or DN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_without_file: Option<Vec<String>>,
}

/// What the journal should say about the job.
#[derive(Debug, Clone, Default)]
pub struct RunMeta {
    /// Fingerprint of the job ([`job_key`]): an unfinished run with the same key is resumed.
    pub job: String,
    pub server: Option<String>,
    pub inputs: Vec<String>,
}

/// Fingerprint of an import job: the same inputs, server, base, lookup and imaging options give
/// the same key.
pub fn job_key(
    inputs: &[PathBuf],
    server: &str,
    base: Option<&str>,
    by: &Lookup,
    options: &Options,
) -> String {
    let mut ins: Vec<String> = inputs
        .iter()
        .map(|p| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        })
        .collect();
    ins.sort();
    let v = serde_json::json!({
        "inputs": ins, "server": server.to_ascii_lowercase(), "base": base.map(str::to_ascii_lowercase),
        "by": by.attribute().to_ascii_lowercase(), "options": options,
    });
    sha256_hex(v.to_string().as_bytes())
}

/// Fingerprint of imaging options (same options + same source bytes = same output bytes).
pub fn options_key(options: &Options) -> String {
    sha256_hex(
        serde_json::to_string(options)
            .unwrap_or_default()
            .as_bytes(),
    )
}

/// An import into the directory.
#[derive(Debug, Clone)]
pub struct ImportJob {
    /// Imaging options; the first target is what is written (the AD photo).
    pub options: Options,
    pub by: Lookup,
    /// Items in flight (lookups, conversions waiting, writes). Default 32.
    pub window: usize,
    /// Conversions at once; 0 = one per core.
    pub image_threads: usize,
    /// Plan only: look up, convert and compare, write nothing (not even the journal).
    pub dry_run: bool,
    /// Back up every replaced photo here first. `None` = no backups (an explicit choice).
    pub backup: Option<BackupStore>,
    pub journal: Journal,
    /// Dry run: list the users under this DN and report those no input names.
    pub scope: Option<String>,
}

struct Ctx<'a> {
    job: &'a ImportJob,
    dir: &'a Directory,
    run: String,
    target: String,
    options_key: String,
    images: Arc<Semaphore>,
    cancel: &'a Cancel,
    /// Set when the journal or backup folder cannot be written: no further writes.
    fatal: std::sync::Mutex<Option<String>>,
}

impl ImportJob {
    /// Run over `inputs`, calling `on_item` as each item finishes (in completion order).
    pub async fn run(
        &self,
        dir: &Directory,
        inputs: Inputs,
        meta: &RunMeta,
        cancel: &Cancel,
        on_item: &mut (dyn FnMut(&ImportItem) + Send),
    ) -> Result<ImportReport, EngineError> {
        let target = self
            .options
            .targets
            .first()
            .map(|t| t.name.clone())
            .ok_or_else(|| EngineError::InvalidTargetName(String::new()))?;
        let (run, resumed) = if self.dry_run {
            (String::new(), false)
        } else {
            match self.journal.unfinished_run(&meta.job) {
                Some(id) => (id, true),
                None => (new_run_id(), false),
            }
        };
        if !self.dry_run {
            self.journal
                .append_durable(&Record::Run {
                    run: run.clone(),
                    time: now_rfc3339(),
                    job: meta.job.clone(),
                    resumed,
                    command: "import".into(),
                    server: meta.server.clone(),
                    by: Some(self.by.attribute().to_string()),
                    inputs: meta.inputs.clone(),
                    restores: None,
                })
                .await?;
        }
        let threads = match self.image_threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            n => n,
        };
        let ctx = Ctx {
            job: self,
            dir,
            run: run.clone(),
            target,
            options_key: options_key(&self.options),
            images: Arc::new(Semaphore::new(threads)),
            cancel,
            fatal: std::sync::Mutex::new(None),
        };
        let skipped_files = inputs.skipped;
        let mut summary = ImportSummary::default();
        let mut items = Vec::with_capacity(inputs.items.len());
        {
            let ctx = &ctx;
            let mut results = stream::iter(inputs.items)
                .map(|input| async move { ctx.one(input).await })
                .buffer_unordered(self.window.max(1));
            while let Some(item) = results.next().await {
                summary.add(&item);
                on_item(&item);
                items.push(item);
            }
        }
        let fatal = ctx.fatal.lock().ok().and_then(|f| f.clone());
        let mut users_without_file = None;
        if self.dry_run {
            if let Some(scope) = &self.scope {
                let users = dir
                    .list_users(&ListOptions {
                        base: Some(scope.clone()),
                        only_with_photo: false,
                        fetch_photo: false,
                    })
                    .await
                    .map_err(|e| EngineError::Directory(e.to_string()))?;
                let named: HashSet<String> = items
                    .iter()
                    .filter_map(|i| i.dn.as_ref().map(|d| d.to_lowercase()))
                    .collect();
                let mut missing: Vec<String> = users
                    .iter()
                    .filter(|u| !named.contains(&u.dn.to_lowercase()))
                    .map(|u| u.sam_account_name.clone().unwrap_or_else(|| u.dn.clone()))
                    .collect();
                missing.sort_by_key(|s| s.to_lowercase());
                users_without_file = Some(missing);
            }
        }
        let cancelled = cancel.is_cancelled();
        if !self.dry_run {
            // A cancelled or failed-fatally run has no `end`: running it again resumes it.
            if !cancelled && fatal.is_none() {
                self.journal.append(&Record::End {
                    run: run.clone(),
                    time: now_rfc3339(),
                    cancelled,
                    summary: serde_json::to_value(summary).unwrap_or_default(),
                })?;
            }
            self.journal.flush()?;
        }
        if let Some(reason) = fatal {
            return Err(EngineError::Stopped(reason));
        }
        Ok(ImportReport {
            run: (!self.dry_run).then_some(run),
            resumed,
            cancelled,
            summary,
            items,
            skipped_files,
            users_without_file,
        })
    }
}

/// What the image step produced.
enum Prepared {
    /// The journal shortcut: same source, same options, the directory still has our bytes.
    Unchanged { sha256: String, bytes: usize },
    Converted {
        jpeg: Vec<u8>,
        sha256: String,
        source_sha256: String,
        warnings: Vec<String>,
    },
}

impl Ctx<'_> {
    async fn one(&self, input: Input) -> ImportItem {
        let dry = self.job.dry_run;
        let item = ImportItem::new(&input, dry);
        let account = match (&input.take, &input.account) {
            (Take::Yes, Some(a)) => a.clone(),
            (Take::Yes, None) | (Take::NoAccount, _) => return item.fail(
                "no_account",
                false,
                "the file name names no account (the account is the name up to the first space)"
                    .into(),
            ),
            (Take::Unreadable { reason }, _) => {
                return item.fail(
                    "unreadable",
                    false,
                    format!("cannot read {}: {reason}", input.path.display()),
                )
            }
            (Take::Superseded { by }, _) => {
                return item.skip(
                    "superseded",
                    format!(
                        "{} also names {}, and is newer: the newest file wins",
                        by.display(),
                        input.account.as_deref().unwrap_or("?")
                    ),
                )
            }
        };
        if self.cancel.is_cancelled() {
            return item.skip(
                "cancelled",
                "not started: the run was cancelled (Ctrl+C)".into(),
            );
        }
        if let Some(reason) = self.fatal() {
            return item.fail("stopped", true, format!("not written: {reason}"));
        }
        let user = match self.job.dir_find(self.dir, &account).await {
            Ok(u) => u,
            Err(e) => {
                self.journal_failed(None, Some(&account), &e);
                return item.dir_fail(&e);
            }
        };
        let mut item = ImportItem {
            dn: Some(user.dn.clone()),
            ..item
        };
        let current_sha = user.photo.as_deref().map(sha256_hex);
        let prepared = match self.prepare(&input, &user, current_sha.as_deref()).await {
            Ok(p) => p,
            Err((kind, msg)) => return item.fail(kind, false, msg),
        };
        let (jpeg, sha, source_sha) = match prepared {
            Prepared::Unchanged { sha256, bytes } => {
                item.action = Action::Unchanged;
                item.sha256 = Some(sha256);
                item.bytes = Some(bytes);
                return item;
            }
            Prepared::Converted {
                jpeg,
                sha256,
                source_sha256,
                warnings,
            } => {
                item.warnings = warnings;
                (jpeg, sha256, source_sha256)
            }
        };
        item.sha256 = Some(sha.clone());
        item.bytes = Some(jpeg.len());
        if current_sha.as_deref() == Some(sha.as_str()) {
            item.action = Action::Unchanged;
            return item;
        }
        let action = if user.photo.is_some() {
            Action::Replace
        } else {
            Action::Set
        };
        if dry {
            item.action = action;
            return item;
        }
        if self.cancel.is_cancelled() {
            return item.skip(
                "cancelled",
                "not written: the run was cancelled (Ctrl+C)".into(),
            );
        }
        if let Some(reason) = self.fatal() {
            return item.fail("stopped", true, format!("not written: {reason}"));
        }
        // Back up the old value, then record the intent, both durably, then write.
        let backup_id = match &self.job.backup {
            Some(store) => {
                let store = store.clone();
                let u = user.clone();
                match tokio::task::spawn_blocking(move || {
                    store.save(&u.subject(), u.photo.as_deref(), BackupReason::Replace)
                })
                .await
                {
                    Ok(Ok(rec)) => Some(rec.id),
                    Ok(Err(e)) => {
                        return self.stop(item, format!("cannot back up the old photo: {e}"))
                    }
                    Err(e) => return self.stop(item, format!("backup task failed: {e}")),
                }
            }
            None => None,
        };
        let intent = Record::Intent(Intent {
            run: self.run.clone(),
            time: now_rfc3339(),
            target: self.target.clone(),
            dn: user.dn.clone(),
            guid: user.object_guid.clone(),
            account: Some(account.clone()),
            file: Some(input.path.display().to_string()),
            source_sha256: Some(source_sha),
            options: Some(self.options_key.clone()),
            sha256: Some(sha.clone()),
            bytes: jpeg.len(),
            backup_id: backup_id.clone(),
            had_photo: Some(user.photo.is_some()),
        });
        if let Err(e) = self.job.journal.append_durable(&intent).await {
            return self.stop(item, e.to_string());
        }
        item.backup_id = backup_id;
        match self
            .dir
            .set_photo(&user.dn, &jpeg, &WriteOptions::without_backup())
            .await
        {
            Ok(_) => {
                let _ = self.job.journal.append(&Record::Done {
                    run: self.run.clone(),
                    time: now_rfc3339(),
                    target: self.target.clone(),
                    dn: user.dn.clone(),
                    sha256: Some(sha),
                });
                item.action = action;
                item
            }
            Err(e) => {
                self.journal_failed(Some(&user.dn), Some(&account), &e);
                item.dir_fail(&e)
            }
        }
    }

    async fn prepare(
        &self,
        input: &Input,
        user: &User,
        current_sha: Option<&str>,
    ) -> Result<Prepared, (&'static str, String)> {
        let permit = self
            .images
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ("internal", e.to_string()))?;
        let path = input.path.clone();
        let options = self.job.options.clone();
        let last = self.job.journal.last_write(&self.target, &user.dn).cloned();
        let options_key = self.options_key.clone();
        let current_sha = current_sha.map(str::to_string);
        let current_len = user.photo.as_ref().map(Vec::len);
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let limit = options.limits.max_input_bytes;
            let meta = std::fs::metadata(&path)
                .map_err(|e| ("unreadable", format!("cannot read {}: {e}", path.display())))?;
            if meta.len() > limit as u64 {
                return Err((
                    "image",
                    format!(
                        "{}: the file is {} bytes, over the {limit}-byte input limit",
                        path.display(),
                        meta.len()
                    ),
                ));
            }
            let data = std::fs::read(&path)
                .map_err(|e| ("unreadable", format!("cannot read {}: {e}", path.display())))?;
            let source_sha256 = sha256_hex(&data);
            if let (Some(last), Some(cur)) = (&last, &current_sha) {
                if last.source_sha256.as_deref() == Some(source_sha256.as_str())
                    && last.options.as_deref() == Some(options_key.as_str())
                    && last.sha256.as_deref() == Some(cur.as_str())
                {
                    return Ok(Prepared::Unchanged {
                        sha256: cur.clone(),
                        bytes: current_len.unwrap_or(0),
                    });
                }
            }
            let conv = photobulk_imaging::convert(&data, &options)
                .map_err(|e| ("image", format!("{}: {e}", path.display())))?;
            drop(data);
            let mut warnings = Vec::new();
            let target = options.targets.first().map(|t| t.size).unwrap_or(96);
            let (w, h) = (conv.source.width, conv.source.height);
            for wn in &conv.warnings {
                match wn {
                    Warning::Upscaled {
                        target,
                        factor_x100,
                    } => warnings.push(format!(
                        "upscaled {}.{:02}x for {target}",
                        factor_x100 / 100,
                        factor_x100 % 100
                    )),
                    other => warnings.push(format!("{other:?}")),
                }
            }
            if w != h && options.crop != Crop::Pad {
                warnings.push(format!("cropped: the source is {w}x{h}, not square"));
            }
            if w.min(h) < target {
                warnings.push(format!(
                    "small: the source is {w}x{h}, under {target}x{target}"
                ));
            }
            let out = conv
                .outputs
                .into_iter()
                .next()
                .ok_or(("image", "no output".to_string()))?;
            Ok(Prepared::Converted {
                sha256: out.sha256,
                jpeg: out.jpeg,
                source_sha256,
                warnings,
            })
        })
        .await
        .map_err(|e| ("internal", format!("image task failed: {e}")))?;
        result
    }

    fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }

    /// The run's own state cannot be kept: no further writes.
    fn stop(&self, item: ImportItem, reason: String) -> ImportItem {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert_with(|| reason.clone());
        }
        item.fail("stopped", false, format!("not written: {reason}"))
    }

    fn journal_failed(&self, dn: Option<&str>, account: Option<&str>, e: &DirectoryError) {
        if self.job.dry_run {
            return;
        }
        let _ = self.job.journal.append(&Record::Failed {
            run: self.run.clone(),
            time: now_rfc3339(),
            target: self.target.clone(),
            dn: dn.map(str::to_string),
            account: account.map(str::to_string),
            kind: e.kind().to_string(),
            retryable: e.is_retryable(),
            message: e.to_string(),
        });
    }
}

impl ImportJob {
    async fn dir_find(&self, dir: &Directory, account: &str) -> Result<User, DirectoryError> {
        dir.find_user(&self.by, account, true).await
    }
}

/// One user's restore result.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreItem {
    pub dn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `set`/`replace` (bytes put back), `unchanged` (already as before the run), `failed`.
    pub action: Action,
    /// The backup put back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_id: Option<String>,
    /// Whether the user had a photo before the run (false: the restore removed it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub had_photo: Option<bool>,
    /// Backup of the photo the restore replaced (undo with `restore --run` of this restore run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

/// The result of a restore.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The restore's own run id (it can itself be restored).
    pub run: String,
    pub restores: String,
    pub restored: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub items: Vec<RestoreItem>,
}

/// Put back, byte for byte, every photo run `run_id` replaced, from the backups it took.
/// Users already back at their pre-run bytes are left alone. The photos being replaced are
/// themselves backed up (when `backup_new` is true), so a restore can be undone the same way.
pub async fn restore_run(
    dir: &Directory,
    journal: &Journal,
    store: &BackupStore,
    run_id: &str,
    window: usize,
    cancel: &Cancel,
    on_item: &mut (dyn FnMut(&RestoreItem) + Send),
) -> Result<RestoreReport, EngineError> {
    if !journal.has_run(run_id) {
        return Err(EngineError::UnknownRun(run_id.to_string()));
    }
    let mut first: Vec<Intent> = Vec::new();
    let mut seen = HashSet::new();
    for r in journal.records()? {
        if let Record::Intent(i) = r {
            if i.run == run_id && seen.insert((i.target.clone(), i.dn.to_lowercase())) {
                first.push(i);
            }
        }
    }
    let backups: HashMap<String, BackupRecord> = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.records())
            .await
            .map_err(|e| EngineError::Directory(e.to_string()))?
            .map_err(|e| EngineError::Directory(e.to_string()))?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect()
    };
    let run = new_run_id();
    journal
        .append_durable(&Record::Run {
            run: run.clone(),
            time: now_rfc3339(),
            job: format!("restore:{run_id}"),
            resumed: false,
            command: "restore".into(),
            server: Some(dir.url().to_string()),
            by: None,
            inputs: vec![],
            restores: Some(run_id.to_string()),
        })
        .await?;
    let backups = &backups;
    let run_ref = &run;
    let mut items = Vec::new();
    let (mut restored, mut unchanged, mut failed) = (0, 0, 0);
    {
        let mut results = stream::iter(first)
            .map(|intent| async move {
                restore_one(dir, journal, store, backups, run_ref, intent, cancel).await
            })
            .buffer_unordered(window.max(1));
        while let Some(item) = results.next().await {
            match item.action {
                Action::Set | Action::Replace => restored += 1,
                Action::Unchanged => unchanged += 1,
                _ => failed += 1,
            }
            on_item(&item);
            items.push(item);
        }
    }
    journal.append(&Record::End {
        run: run.clone(),
        time: now_rfc3339(),
        cancelled: cancel.is_cancelled(),
        summary: serde_json::json!({"restored": restored, "unchanged": unchanged, "failed": failed}),
    })?;
    journal.flush()?;
    Ok(RestoreReport {
        run,
        restores: run_id.to_string(),
        restored,
        unchanged,
        failed,
        items,
    })
}

async fn restore_one(
    dir: &Directory,
    journal: &Journal,
    store: &BackupStore,
    backups: &HashMap<String, BackupRecord>,
    run: &str,
    intent: Intent,
    cancel: &Cancel,
) -> RestoreItem {
    let mut item = RestoreItem {
        dn: intent.dn.clone(),
        account: intent.account.clone(),
        action: Action::Failed,
        restored_id: intent.backup_id.clone(),
        had_photo: None,
        backup_id: None,
        error: None,
    };
    let fail = |mut item: RestoreItem, kind: &str, retryable: bool, message: String| {
        item.action = Action::Failed;
        item.error = Some(ItemError {
            kind: kind.into(),
            retryable,
            message,
        });
        item
    };
    let Some(id) = &intent.backup_id else {
        return fail(
            item,
            "no_backup",
            false,
            "the run wrote this user without a backup (--no-backup)".into(),
        );
    };
    let Some(rec) = backups.get(id).cloned() else {
        return fail(
            item,
            "backup_not_found",
            false,
            format!("backup {id} is not in {}", store.dir().display()),
        );
    };
    item.had_photo = Some(rec.had_photo);
    if cancel.is_cancelled() {
        item.action = Action::Skipped;
        return item;
    }
    // Find the user again: by GUID when known (survives renames and moves), else by DN.
    let found = match &intent.guid {
        Some(g) => dir.find_by_guid(g, true).await,
        None => dir.read_user(&intent.dn, true).await,
    };
    let user = match found {
        Ok(u) => u,
        Err(e) => return fail(item, e.kind(), e.is_retryable(), e.to_string()),
    };
    item.dn = user.dn.clone();
    let current = user.photo.as_deref().map(sha256_hex);
    if current == rec.sha256 {
        item.action = Action::Unchanged;
        return item;
    }
    let s2 = store.clone();
    let r2 = rec.clone();
    let bytes = match tokio::task::spawn_blocking(move || s2.load(&r2)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return fail(item, e.kind(), false, e.to_string()),
        Err(e) => return fail(item, "internal", false, e.to_string()),
    };
    let s3 = store.clone();
    let u2 = user.clone();
    let backup = match tokio::task::spawn_blocking(move || {
        s3.save(&u2.subject(), u2.photo.as_deref(), BackupReason::Restore)
    })
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return fail(
                item,
                e.kind(),
                false,
                format!("cannot back up the current photo: {e}"),
            )
        }
        Err(e) => return fail(item, "internal", false, e.to_string()),
    };
    item.backup_id = Some(backup.id.clone());
    let intent_rec = Record::Intent(Intent {
        run: run.to_string(),
        time: now_rfc3339(),
        target: intent.target.clone(),
        dn: user.dn.clone(),
        guid: user.object_guid.clone(),
        account: intent.account.clone(),
        file: None,
        source_sha256: None,
        options: None,
        sha256: rec.sha256.clone(),
        bytes: rec.bytes,
        backup_id: Some(backup.id),
        had_photo: Some(user.photo.is_some()),
    });
    if let Err(e) = journal.append_durable(&intent_rec).await {
        return fail(item, "journal", false, e.to_string());
    }
    let res = match &bytes {
        Some(b) => {
            dir.set_photo(&user.dn, b, &WriteOptions::without_backup())
                .await
        }
        None => {
            dir.remove_photo(&user.dn, &WriteOptions::without_backup())
                .await
        }
    };
    match res {
        Ok(_) => {
            let _ = journal.append(&Record::Done {
                run: run.to_string(),
                time: now_rfc3339(),
                target: intent.target,
                dn: user.dn.clone(),
                sha256: rec.sha256.clone(),
            });
            item.action = if user.photo.is_some() {
                Action::Replace
            } else {
                Action::Set
            };
            item
        }
        Err(e) => fail(item, e.kind(), e.is_retryable(), e.to_string()),
    }
}
