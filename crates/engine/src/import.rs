//! The main job: put a folder (or CSV list) of photos into Active Directory `thumbnailPhoto`,
//! safely, in bulk, resumably — and undo a whole run.
//!
//! # Pipeline
//! Inputs ([`crate::inputs`]) go through three phases, each with a window of `window` items in
//! flight (default 32); phases 1 and 3 run at the same time:
//! 1. **Find the users**: one search per input (it also returns the current photo, of which
//!    only the SHA-256 and size are kept, so 10,000 found users cost a few MB). Each found
//!    user goes straight on to phase 3's image work.
//! 2. **One user, one write**: inputs that turned out to name the same directory user (same
//!    objectGUID, else DN) — a file named by sAMAccountName and a CSV row naming the UPN, two
//!    CSV rows — are "two files for one user": the newest file wins, the others are skipped as
//!    `superseded`, and all of them are reported (plan and run) with the others in `also`.
//!    This needs every lookup done before the first write: phase 3 converts while the lookups
//!    go on, but sends no write before phase 2 has decided (a loser's conversion is wasted,
//!    which is rare and costs no write).
//! 3. **Convert and write**: read and hash the source → convert it on the image threads
//!    (a fixed pool of `image_threads`, default one per core, see `ImagePool`) → wait for
//!    phase 2 → compare with the directory's current bytes → read the photo being replaced
//!    again and back it up (fsync'd, [`photobulk_directory::BackupStore`]) → journal the
//!    intent (fsync'd, group commit, [`crate::journal`]) → replace → journal done. Image work
//!    and LDAP work overlap: while two items convert, other users are looked up or written.
//!    Results are handed to the caller as each item finishes. Memory is bounded by the
//!    window: at most `image_threads` decodes and `window` small JPEGs exist at once (found
//!    users waiting for an image thread hold a few hundred bytes each).
//!
//! Only the targets the job asks for are made: the CLI's online import asks for the AD photo
//! alone, and the imaging crate then decodes a 12 MP JPEG at 1/8 DCT scale (96 px from a
//! 375x500 decode). What that costs against `ldapmodify` is in `scripts/bench/README.md`.
//!
//! # Connection lost mid-run
//! See [`Reconnect`]: one reconnect (bounded attempts, exponential backoff) serves every
//! item in flight; lookups and reads are then retried, and a write whose answer was lost is
//! checked by reading the user back before it is sent again, so nobody is written twice. If
//! the server stays away, the items left fail at once as retryable, saying why.
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
//! Per item; the batch goes on. Connection loss and timeouts are first ridden out by
//! reconnecting (above); what still fails, and busy servers, are marked `retryable` (run again
//! to finish). The whole run fails only when its own state cannot be kept
//! (the journal or the backup folder cannot be written): then no further write is sent.

use photobulk_kind::ErrorKind;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use photobulk_directory::{
    sha256_hex, BackupReason, BackupRecord, BackupStore, Directory, DirectoryError, ListOptions,
    Lookup, LookupBatcher, User, WriteOptions,
};
use photobulk_imaging::{Crop, CropBox, FaceBox, Options, Warning};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::inputs::{refusal, Input, Inputs};
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

/// Why an item failed or was skipped (one type for every job and door).
pub use photobulk_kind::ItemError;

/// One input's result. JSON: one object per line with `--json`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct ImportItem {
    pub file: PathBuf,
    pub origin: Option<String>,
    #[serialize_always]
    pub account: Option<String>,
    pub dn: Option<String>,
    pub action: Action,
    /// True in a dry run (`--plan`): `set`/`replace` are what would be done.
    pub dry_run: bool,
    pub error: Option<ItemError>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The square kept (upright source pixels), when the photo was converted this run.
    pub crop: Option<CropBox>,
    /// The face it was framed on (`face` crop, when one was found).
    pub face: Option<FaceBox>,
    /// SHA-256 and size of the bytes written (or that would be / already are there).
    pub sha256: Option<String>,
    pub bytes: Option<usize>,
    /// The backup of the replaced photo (restore one user with `photobulk ad restore --backup`).
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
            crop: None,
            face: None,
            sha256: None,
            bytes: None,
            backup_id: None,
            also: input.also.clone(),
        }
    }
    fn fail(mut self, kind: ErrorKind, retryable: bool, message: String) -> Self {
        self.action = Action::Failed;
        self.error = Some(ItemError::with(kind, retryable, message));
        self
    }
    fn dir_fail(self, e: &DirectoryError) -> Self {
        let mut msg = e.to_string();
        if e.is_retryable() {
            msg.push_str(" (retryable: run the same command again to finish)");
        }
        self.fail(e.kind(), e.is_retryable(), msg)
    }
    fn halted(self, h: Halt) -> Self {
        match h {
            Halt::Cancelled(m) => self.skip(ErrorKind::Cancelled, m),
            Halt::Stopped(m) => self.fail(ErrorKind::Stopped, true, m),
            Halt::GaveUp(m) => self.fail(ErrorKind::ConnectionLost, true, m),
        }
    }
    fn op_fail(self, f: &OpFailure) -> Self {
        let mut it = self.dir_fail(&f.err);
        if let (Some(why), Some(e)) = (&f.gave_up, it.error.as_mut()) {
            e.message = format!("{}; {why}", e.message);
        }
        it
    }
    fn skip(mut self, kind: ErrorKind, message: String) -> Self {
        self.action = Action::Skipped;
        self.error = Some(ItemError::with(kind, kind == "cancelled", message));
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

/// Inputs as a job fingerprint sees them: canonical paths (as given when they do not resolve),
/// sorted, so the same folders named another way are the same job.
pub fn input_keys(inputs: &[PathBuf]) -> Vec<String> {
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
    ins
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
    let ins = input_keys(inputs);
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
    /// Write even when the directory already holds exactly these bytes (PowerShell's `-Force`):
    /// nothing is reported `unchanged`, and the replaced photo is still backed up first.
    pub force: bool,
    /// Back up every replaced photo here first. `None` = no backups (an explicit choice).
    pub backup: Option<BackupStore>,
    pub journal: Journal,
    /// Dry run: list the users under this DN and report those no input names.
    pub scope: Option<String>,
    /// What to do when the connection drops mid-run.
    pub reconnect: Reconnect,
}

/// How a run rides out a dropped connection (server restarted, network blip, DC failover).
///
/// When a lookup, read or write fails because the connection is gone (`connection_lost`,
/// `connect`, `timeout`), the run opens a new connection — one for all items in flight
/// ([`Directory::reconnect`]) — waiting `first_delay`, then twice as long after each failed
/// attempt up to `max_delay`, at most `attempts` times; then the failed operations are tried
/// again (at most [`MAX_OP_RETRIES`] times each). A write whose answer was lost is first
/// checked by reading the user back: if the directory already holds the new bytes it is
/// recorded as done, not sent again. When every attempt fails the run gives up on the
/// connection: the items still to do fail at once as retryable, with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// Reconnect attempts per outage; 0: never reconnect (items fail on the first drop).
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Reconnect {
    /// 6 attempts, waiting 0.5, 1, 2, 4, 8 and 8 s: ~24 s, long enough for a DC restart.
    fn default() -> Self {
        Reconnect {
            attempts: 6,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// Times one operation (lookup, read, write) is tried again after a successful reconnect.
pub const MAX_OP_RETRIES: u32 = 3;

/// The connection is gone (as opposed to the server answering with an error).
fn is_outage(e: &DirectoryError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionLost | ErrorKind::Connect | ErrorKind::Timeout
    )
}

/// Why an item does not go on (see `Ctx::halt`).
enum Halt {
    Cancelled(String),
    Stopped(String),
    GaveUp(String),
}

/// A directory operation that failed for good; `gave_up` says why no reconnect helped.
struct OpFailure {
    err: DirectoryError,
    gave_up: Option<String>,
}

/// An input whose user was found (phase 1), before its image work. The user's photo bytes
/// are not kept (only their SHA-256 and size), so 10,000 resolved users cost a few MB.
struct Resolved {
    index: usize,
    input: Input,
    item: ImportItem,
    user: User,
    current_sha: Option<String>,
    current_len: Option<usize>,
}

/// The image work's threads: exactly `n` of them, fed through a queue (the semaphore in
/// front keeps at most `n` jobs queued or running). Tokio's blocking pool would bound the
/// concurrency just as well, but over a long run it spreads the jobs over many threads, and
/// each thread's malloc arena keeps its own freed multi-MB source and decode buffers: with a
/// fixed pool the peak RSS is `n` arenas' worth, whatever the number of users. The threads end
/// when the pool is dropped (end of the run).
struct ImagePool {
    tx: std::sync::mpsc::Sender<PoolJob>,
}

type PoolJob = Box<dyn FnOnce() + Send>;

impl ImagePool {
    fn new(n: usize) -> Result<Self, EngineError> {
        let (tx, rx) = std::sync::mpsc::channel::<PoolJob>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..n.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("photobulk-image-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })
                .map_err(|e| EngineError::Stopped(format!("cannot start an image thread: {e}")))?;
        }
        Ok(ImagePool { tx })
    }

    /// Run `f` on one of the pool's threads. A panic in `f` is an error, and the thread lives on.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: PoolJob = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .map_err(|_| "the image work panicked".to_string());
            let _ = done.send(r);
        });
        self.tx
            .send(job)
            .map_err(|_| "the image threads stopped".to_string())?;
        result
            .await
            .map_err(|_| "the image threads stopped".to_string())?
    }
}

struct Ctx<'a> {
    job: &'a ImportJob,
    dir: &'a Directory,
    run: String,
    target: String,
    options_key: String,
    images: Arc<Semaphore>,
    pool: ImagePool,
    cancel: &'a Cancel,
    /// Set when the journal or backup folder cannot be written: no further writes.
    fatal: std::sync::Mutex<Option<String>>,
    /// One reconnect at a time (the others wait for its outcome).
    reconnecting: tokio::sync::Mutex<()>,
    /// Set when reconnecting failed `attempts` times: the remaining items fail at once.
    gave_up: std::sync::Mutex<Option<String>>,
    /// Phase 1's lookups, sent to the server together while they wait at the same time.
    lookups: LookupBatcher,
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
            pool: ImagePool::new(threads)?,
            cancel,
            fatal: std::sync::Mutex::new(None),
            reconnecting: tokio::sync::Mutex::new(()),
            gave_up: std::sync::Mutex::new(None),
            lookups: LookupBatcher::new(),
        };
        let skipped_files = inputs.skipped;
        let mut summary = ImportSummary::default();
        let mut items = Vec::with_capacity(inputs.items.len());
        let finish = std::sync::Mutex::new(|item: ImportItem| {
            summary.add(&item);
            on_item(&item);
            items.push(item);
        });
        // Both halves below hand on finished items (never across an await).
        let finish = |item: ImportItem| {
            let mut f = finish.lock().unwrap_or_else(|p| p.into_inner());
            f(item)
        };
        let window = self.window.max(1);
        let ctx = &ctx;
        // Phases 1 and 3 overlap: an input's photo is converted as soon as its user is found,
        // while the other lookups go on, so the image threads are busy from the first user on.
        // No write is sent before every lookup is done and phase 2 has said which input wins
        // for each user.
        let (found_tx, found_rx) = tokio::sync::mpsc::unbounded_channel::<Resolved>();
        let (merged_tx, merged_rx) = tokio::sync::watch::channel(None::<Arc<Verdicts>>);
        let lookups = async {
            let mut same_user = Vec::new();
            let mut found = stream::iter(inputs.items.into_iter().enumerate())
                .map(|(index, input)| async move { ctx.resolve(index, input).await })
                .buffer_unordered(window);
            while let Some(r) = found.next().await {
                match r {
                    Ok(r) => {
                        same_user.push(SameUser::of(&r));
                        // The receiver lives until every resolved input is taken.
                        let _ = found_tx.send(r);
                    }
                    Err(item) => finish(item),
                }
            }
            drop(found_tx);
            // Phase 2: one user, one write — whatever names led to them.
            let _ = merged_tx.send(Some(Arc::new(merge_same_user(same_user))));
        };
        let work = async {
            let resolved = stream::unfold(found_rx, |mut rx| async move {
                rx.recv().await.map(|r| (r, rx))
            });
            let results = resolved
                .map(|r| {
                    let merged = merged_rx.clone();
                    async move { ctx.write(r, merged).await }
                })
                .buffer_unordered(window);
            let mut results = std::pin::pin!(results);
            while let Some(item) = results.next().await {
                finish(item);
            }
        };
        futures_util::future::join(lookups, work).await;
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
        crop: CropBox,
        face: Option<FaceBox>,
    },
}

/// What phase 1 learnt about a resolved input that phase 2 needs.
struct SameUser {
    index: usize,
    key: String,
    dn: String,
    path: PathBuf,
    origin: Option<String>,
    account: String,
}

impl SameUser {
    fn of(r: &Resolved) -> Self {
        SameUser {
            index: r.index,
            key: match &r.user.object_guid {
                Some(g) => format!("guid:{}", g.to_ascii_lowercase()),
                None => format!("dn:{}", r.user.dn.to_lowercase()),
            },
            dn: r.user.dn.clone(),
            path: r.input.path.clone(),
            origin: r.input.origin.clone(),
            account: r.input.account.clone().unwrap_or_default(),
        }
    }
}

/// Phase 2's word on one input that shares its user with others.
enum Verdict {
    /// Written: these other files named the same user.
    Wins { also: Vec<PathBuf> },
    /// Not written (`superseded`): `winner` names the same user and is newer.
    Loses { winner: PathBuf, message: String },
}

/// By input index; inputs alone on their user have none.
type Verdicts = HashMap<usize, Verdict>;

/// Among resolved inputs for the same directory user (same objectGUID, else same DN — e.g.
/// one file named by sAMAccountName and a CSV row naming the UPN), the newest file wins
/// (modification time, ties broken by path, then by CSV line); the others are skipped
/// (`superseded`), and every one of them lists the others in `also`.
fn merge_same_user(mut found: Vec<SameUser>) -> Verdicts {
    found.sort_by_key(|f| f.index);
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, f) in found.iter().enumerate() {
        groups.entry(f.key.as_str()).or_default().push(i);
    }
    let mut verdicts = Verdicts::new();
    for idx in groups.values().filter(|g| g.len() > 1) {
        let mtime = |i: usize| {
            std::fs::metadata(&found[i].path)
                .and_then(|m| m.modified())
                .ok()
        };
        let winner = idx
            .iter()
            .copied()
            .max_by(|&a, &b| {
                mtime(a)
                    .cmp(&mtime(b))
                    .then_with(|| found[a].path.cmp(&found[b].path))
                    .then_with(|| found[b].origin.cmp(&found[a].origin))
            })
            .unwrap_or(idx[0]);
        let w = &found[winner];
        let win_name = match &w.origin {
            Some(o) => format!("{} ({o})", w.path.display()),
            None => w.path.display().to_string(),
        };
        let mut also = Vec::new();
        let mut losers: Vec<usize> = idx.iter().copied().filter(|&i| i != winner).collect();
        losers.sort_unstable();
        for i in losers {
            let f = &found[i];
            verdicts.insert(
                f.index,
                Verdict::Loses {
                    winner: w.path.clone(),
                    message: format!(
                        "{win_name} is for the same user ({}, named here as {}) and is \
                         newer: the newest file wins",
                        w.dn, f.account
                    ),
                },
            );
            also.push(f.path.clone());
        }
        verdicts.insert(w.index, Verdict::Wins { also });
    }
    verdicts
}

impl Ctx<'_> {
    /// The user already holds exactly `sha`, but the journal has no `done` for it — a write
    /// whose answer was lost when the server went away (or a photo put there by hand). Record
    /// it as done so the journal says what the directory holds; nothing is sent.
    fn adopt(&self, dn: &str, sha: &str) {
        let known = self.job.journal.last_write(&self.target, dn);
        if known.and_then(|l| l.sha256.as_deref()) == Some(sha) {
            return;
        }
        let _ = self.job.journal.append(&Record::Done {
            run: self.run.clone(),
            time: now_rfc3339(),
            target: self.target.clone(),
            dn: dn.to_string(),
            sha256: Some(sha.to_string()),
        });
    }

    /// Phase 1: which user the input names (or why none).
    async fn resolve(&self, index: usize, input: Input) -> Result<Resolved, ImportItem> {
        let dry = self.job.dry_run;
        let item = ImportItem::new(&input, dry);
        if let Some((action, e)) = refusal(&input, Action::Skipped, Action::Failed) {
            let mut item = item;
            item.action = action;
            item.error = Some(e);
            return Err(item);
        }
        let Some(account) = input.account.clone() else {
            return Err(item.fail(
                ErrorKind::NoAccount,
                false,
                "the file name names no account (the account is the name up to the first space)"
                    .into(),
            ));
        };
        if let Some(h) = self.halt("started") {
            return Err(item.halted(h));
        }
        let by = input.by.as_ref().unwrap_or(&self.job.by);
        let mut user = match self
            .dir_op(|| self.lookups.find(self.dir, by, &account, true))
            .await
        {
            Ok(u) => u,
            Err(f) => {
                self.journal_failed(None, Some(&account), &f.err);
                return Err(item.op_fail(&f));
            }
        };
        let current_sha = user.photo.as_deref().map(sha256_hex);
        let current_len = user.photo.as_ref().map(Vec::len);
        user.photo = None;
        Ok(Resolved {
            index,
            item: ImportItem {
                dn: Some(user.dn.clone()),
                ..item
            },
            input,
            user,
            current_sha,
            current_len,
        })
    }

    /// Why no new item may start (or write) now: the run is cancelled, cannot keep its
    /// state, or has given up on the connection. `what`: "started" or "written".
    fn halt(&self, what: &str) -> Option<Halt> {
        if self.cancel.is_cancelled() {
            return Some(Halt::Cancelled(format!(
                "not {what}: the run was cancelled (Ctrl+C)"
            )));
        }
        if let Some(reason) = self.fatal() {
            return Some(Halt::Stopped(format!("not written: {reason}")));
        }
        self.gave_up().map(|why| {
            Halt::GaveUp(format!(
                "not {what}: {why} (retryable: run the same command again to finish)"
            ))
        })
    }

    /// Phase 3: convert, then (once phase 2 has spoken) compare, back up, journal, write.
    async fn write(
        &self,
        r: Resolved,
        mut merged: tokio::sync::watch::Receiver<Option<Arc<Verdicts>>>,
    ) -> ImportItem {
        let Resolved {
            index,
            input,
            mut item,
            user,
            current_sha,
            current_len,
        } = r;
        let dry = self.job.dry_run;
        if let Some(h) = self.halt("started") {
            return item.halted(h);
        }
        let account = input.account.clone().unwrap_or_default();
        let prepared = self
            .prepare(&input, &user.dn, current_sha.as_deref(), current_len)
            .await;
        let verdicts = match merged.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_default(),
            Err(_) => return item.fail(ErrorKind::Internal, false, "phase 2 ended".into()),
        };
        match verdicts.get(&index) {
            Some(Verdict::Loses { winner, message }) => {
                item.also.push(winner.clone());
                return item.skip(ErrorKind::Superseded, message.clone());
            }
            Some(Verdict::Wins { also }) => item.also.extend(also.iter().cloned()),
            None => {}
        }
        let prepared = match prepared {
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
                crop,
                face,
            } => {
                item.warnings = warnings;
                item.crop = Some(crop);
                item.face = face;
                (jpeg, sha256, source_sha256)
            }
        };
        item.sha256 = Some(sha.clone());
        item.bytes = Some(jpeg.len());
        if !self.job.force && current_sha.as_deref() == Some(sha.as_str()) {
            self.adopt(&user.dn, &sha);
            item.action = Action::Unchanged;
            return item;
        }
        if dry {
            item.action = if current_sha.is_some() {
                Action::Replace
            } else {
                Action::Set
            };
            return item;
        }
        if let Some(h) = self.halt("written") {
            return item.halted(h);
        }
        // The photo being replaced, read again now (the lookup kept only its hash): it is what
        // the backup must hold, and it may have changed since the lookup.
        let old = if current_sha.is_some() {
            match self.dir_op(|| self.dir.read_user(&user.dn, true)).await {
                Ok(u) => u.photo,
                Err(f) => {
                    self.journal_failed(Some(&user.dn), Some(&account), &f.err);
                    return item.op_fail(&f);
                }
            }
        } else {
            None
        };
        if !self.job.force && old.as_deref().map(sha256_hex).as_deref() == Some(sha.as_str()) {
            self.adopt(&user.dn, &sha);
            item.action = Action::Unchanged;
            return item;
        }
        let action = if old.is_some() {
            Action::Replace
        } else {
            Action::Set
        };
        // Back up the old value, then record the intent, both durably, then write.
        let backup_id = match &self.job.backup {
            Some(store) => {
                let store = store.clone();
                let who = user.subject();
                let old = old.clone();
                match tokio::task::spawn_blocking(move || {
                    store.save(who, old.as_deref(), BackupReason::Replace)
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
        drop(old);
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
            had_photo: Some(action == Action::Replace),
        });
        if let Err(e) = self.job.journal.append_durable(&intent).await {
            return self.stop(item, e.to_string());
        }
        item.backup_id = backup_id;
        match self.send_photo(&user.dn, &jpeg, &sha).await {
            Ok(()) => {
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
            Err(f) => {
                self.journal_failed(Some(&user.dn), Some(&account), &f.err);
                item.op_fail(&f)
            }
        }
    }

    /// Replace the photo, riding out a dropped connection. A write whose answer was lost is
    /// not simply sent again: after reconnecting, the user is read back, and if the directory
    /// already holds `sha` the write landed and is not repeated.
    async fn send_photo(&self, dn: &str, jpeg: &[u8], sha: &str) -> Result<(), OpFailure> {
        let mut tries = 0;
        loop {
            let generation = self.dir.generation();
            let plain = WriteOptions::without_backup();
            let Err(err) = self.dir.set_photo(dn, jpeg, &plain).await else {
                return Ok(());
            };
            self.recover(err, generation, &mut tries).await?;
            let now = self.dir_op(|| self.dir.read_user(dn, true)).await?;
            if now.photo.as_deref().map(sha256_hex).as_deref() == Some(sha) {
                return Ok(());
            }
        }
    }

    /// Run a read-only directory operation, reconnecting and trying again after an outage.
    async fn dir_op<T, F, Fut>(&self, mut op: F) -> Result<T, OpFailure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, DirectoryError>>,
    {
        let mut tries = 0;
        loop {
            let generation = self.dir.generation();
            match op().await {
                Ok(v) => return Ok(v),
                Err(err) => self.recover(err, generation, &mut tries).await?,
            }
        }
    }

    /// After `err` on connection `generation`: `Ok` when it was an outage, retries are left
    /// and the connection is back (try again); else the failure to report.
    async fn recover(
        &self,
        err: DirectoryError,
        generation: u64,
        tries: &mut u32,
    ) -> Result<(), OpFailure> {
        if !is_outage(&err) || *tries >= MAX_OP_RETRIES {
            return Err(OpFailure { err, gave_up: None });
        }
        *tries += 1;
        self.reconnect(generation).await.map_err(|why| OpFailure {
            err,
            gave_up: Some(why),
        })
    }

    /// Replace connection `seen` (bounded attempts with backoff). Items that hit the same
    /// outage wait here for the first one's outcome. `Err` with the reason once given up.
    async fn reconnect(&self, seen: u64) -> Result<(), String> {
        let _one = self.reconnecting.lock().await;
        if let Some(why) = self.gave_up() {
            return Err(why);
        }
        if self.dir.generation() != seen {
            return Ok(());
        }
        let policy = self.job.reconnect;
        let started = Instant::now();
        let mut delay = policy.first_delay;
        let mut last = String::from("not attempted");
        let mut tried = 0;
        while tried < policy.attempts && !self.cancel.is_cancelled() {
            let until = Instant::now() + delay;
            while Instant::now() < until && !self.cancel.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(100).min(delay)).await;
            }
            tried += 1;
            match self.dir.reconnect(seen).await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            delay = (delay * 2).min(policy.max_delay);
        }
        let why = format!(
            "the connection was lost and {tried} reconnect attempt(s) over {:.0} s failed \
             (last: {last})",
            started.elapsed().as_secs_f64()
        );
        if let Ok(mut g) = self.gave_up.lock() {
            g.get_or_insert_with(|| why.clone());
        }
        Err(why)
    }

    fn gave_up(&self) -> Option<String> {
        self.gave_up.lock().ok().and_then(|g| g.clone())
    }

    async fn prepare(
        &self,
        input: &Input,
        dn: &str,
        current_sha: Option<&str>,
        current_len: Option<usize>,
    ) -> Result<Prepared, (ErrorKind, String)> {
        let permit = self
            .images
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| (ErrorKind::Internal, e.to_string()))?;
        let path = input.path.clone();
        let options = self.job.options.clone();
        // With `force` the journal's "already written from this source" shortcut is not taken.
        let last = if self.job.force {
            None
        } else {
            self.job.journal.last_write(&self.target, dn).cloned()
        };
        let options_key = self.options_key.clone();
        let current_sha = current_sha.map(str::to_string);
        let result = self
            .pool
            .run(move || {
                let _permit = permit;
                let limit = options.limits.max_input_bytes;
                let meta = std::fs::metadata(&path).map_err(|e| {
                    (
                        ErrorKind::Unreadable,
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                if meta.len() > limit as u64 {
                    return Err((
                        ErrorKind::Image,
                        format!(
                            "{}: the file is {} bytes, over the {limit}-byte input limit",
                            path.display(),
                            meta.len()
                        ),
                    ));
                }
                let data = std::fs::read(&path).map_err(|e| {
                    (
                        ErrorKind::Unreadable,
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
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
                    .map_err(|e| (ErrorKind::Image, format!("{}: {e}", path.display())))?;
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
                            "upscaled: {}.{:02}x for {target}",
                            factor_x100 / 100,
                            factor_x100 % 100
                        )),
                        other => warnings.push(other.to_string()),
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
                    .ok_or((ErrorKind::Image, "no output".to_string()))?;
                Ok(Prepared::Converted {
                    sha256: out.sha256,
                    crop: out.crop,
                    jpeg: out.jpeg,
                    source_sha256,
                    warnings,
                    face: conv.face,
                })
            })
            .await
            .map_err(|e| (ErrorKind::Internal, format!("image task failed: {e}")))?;
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
        item.fail(ErrorKind::Stopped, false, format!("not written: {reason}"))
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

/// One user's restore result.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct RestoreItem {
    pub dn: String,
    pub account: Option<String>,
    /// `set`/`replace` (bytes put back), `unchanged` (already as before the run), `failed`.
    pub action: Action,
    /// The backup put back.
    pub restored_id: Option<String>,
    /// Whether the user had a photo before the run (false: the restore removed it).
    pub had_photo: Option<bool>,
    /// Backup of the photo the restore replaced (undo with `restore --run` of this restore run).
    pub backup_id: Option<String>,
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
    let first = journal.first_intents(run_id)?;
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
    let fail = |mut item: RestoreItem, kind: ErrorKind, retryable: bool, message: String| {
        item.action = Action::Failed;
        item.error = Some(ItemError::with(kind, retryable, message));
        item
    };
    let Some(id) = &intent.backup_id else {
        return fail(
            item,
            ErrorKind::NoBackup,
            false,
            "the run wrote this user without a backup (--no-backup)".into(),
        );
    };
    let Some(rec) = backups.get(id).cloned() else {
        return fail(
            item,
            ErrorKind::BackupNotFound,
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
        Err(e) => return fail(item, ErrorKind::Internal, false, e.to_string()),
    };
    let s3 = store.clone();
    let u2 = user.clone();
    let backup = match tokio::task::spawn_blocking(move || {
        s3.save(u2.subject(), u2.photo.as_deref(), BackupReason::Restore)
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
        Err(e) => return fail(item, ErrorKind::Internal, false, e.to_string()),
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
        return fail(item, ErrorKind::Journal, false, e.to_string());
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
