//! "Use existing HD": put each user's cloud HD photo (Exchange Online / Entra ID, through Graph)
//! into AD `thumbnailPhoto` as a 96x96 JPEG ≤ 10,240 bytes, replacing the 64x64 copy Exchange
//! wrote (or nothing).
//!
//! One library call ([`sync_hd_to_ad`]) so the CLI (`photobulk sync-hd-to-ad`) and the sidecar
//! run the same code. For every user in scope (everyone under a search base, or a list of
//! identities), in a bounded window:
//!
//! 1. read the cloud photo (`GET /users/{upn}/photo/$value`); 404 `ImageNotFound` is
//!    [`SyncStatus::NoCloudPhoto`], a user without a mailbox or not in the tenant is a skip of
//!    its own kind, anything else an item error;
//! 2. if the [`SyncJournal`] already records this user with the same source SHA-256 and AD still
//!    holds what was written from it, [`SyncStatus::Unchanged`] without converting anything;
//! 3. convert with the imaging crate to the AD target (a corrupt or unreadable cloud photo is an
//!    item error, the run goes on);
//! 4. if AD already holds exactly these bytes, [`SyncStatus::Unchanged`];
//! 5. else back up the current thumbnailPhoto ([`photobulk_directory::BackupStore`], through
//!    [`WriteOptions`]), write, and append a journal line (fsync'd) with the source and written
//!    SHA-256.
//!
//! Only problems with the run itself (listing users, opening the journal) are errors; each
//! user's outcome is a [`SyncItem`].
//!
//! The JSON form of [`SyncReport`] (`--json`): `{"items":[SyncItem…],"summary":{…},
//! "cancelled":false}`, an item being
//! `{"identity":"john.smith","dn":"CN=…","cloud_user":"john.smith@contoso.com",
//! "status":"written","source_sha256":"…","source_bytes":48123,"written_sha256":"…",
//! "written_bytes":6012,"backup_id":"2026…-000001","error":null}`; `status` is one of
//! `written`, `would_write`, `unchanged`, `no_cloud_photo`, `no_mailbox`, `not_in_cloud`,
//! `failed`; `error` is `{"kind":"image","message":"…"}` on failures.

use photobulk_kind::ErrorKind;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, StreamExt};

use photobulk_directory::{
    Directory, DirectoryError, ListOptions, Lookup, User as AdUser, WriteOptions,
};
use photobulk_graph::{GraphClient, GraphError, UserIndex};
use photobulk_imaging::{Crop, Options, Target};
use photobulk_store::{sha256_hex, JsonlLog, StoreError, Utc};
use serde::{Deserialize, Serialize};

use crate::import::Cancel;
use crate::ordered::in_input_order;

/// Which users to sync.
#[derive(Debug, Clone)]
pub enum SyncScope {
    /// Every user under `base` (default: the connection's search base).
    Under { base: Option<String> },
    /// These users, each found by `by` (an identity that matches none or several users is an
    /// item error).
    Identities { by: Lookup, values: Vec<String> },
}

/// How an AD user is found in the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudMatch {
    /// AD `userPrincipalName` = cloud UPN (what Entra Connect syncs by default). One photo
    /// request per user, no user listing.
    #[default]
    Upn,
    /// AD `mail` = cloud `mail` (the tenant's users are listed once).
    Mail,
    /// AD `sAMAccountName` = cloud UPN prefix, the seeds' alias rule (the tenant's users are
    /// listed once; an alias in two UPN domains is an item error).
    Alias,
}

/// How a sync runs. [`SyncHdOptions::new`] gives the defaults: match by UPN, AD target 96x96
/// ≤ 10,240 bytes, centre crop, 8 users in flight.
#[derive(Debug, Clone)]
pub struct SyncHdOptions {
    pub match_by: CloudMatch,
    /// The AD output (normally [`Target::ad`]).
    pub target: Target,
    pub crop: Crop,
    /// Backups of the AD photos replaced (the directory crate refuses writes without a policy).
    pub write: WriteOptions,
    /// Record of what was written from which cloud photo; without it, "unchanged" is decided by
    /// converting again and comparing bytes.
    pub journal: Option<Arc<SyncJournal>>,
    /// Users in flight. Graph photo requests are capped by the client on top of this.
    pub workers: usize,
    /// Decide everything, write nothing.
    pub dry_run: bool,
    /// Convert and compare even when the journal says the cloud photo was already synced.
    pub force: bool,
    /// Stop starting users once set (users in flight finish).
    pub cancel: Option<Cancel>,
}

impl SyncHdOptions {
    pub fn new(write: WriteOptions) -> Self {
        SyncHdOptions {
            match_by: CloudMatch::Upn,
            target: Target::ad(),
            crop: Crop::Face,
            write,
            journal: None,
            workers: 8,
            dry_run: false,
            force: false,
            cancel: None,
        }
    }
}

/// What happened to one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    /// thumbnailPhoto replaced (after a backup).
    Written,
    /// Dry run: would have been written.
    WouldWrite,
    /// AD already holds the photo made from this cloud photo.
    Unchanged,
    /// The user has no cloud photo (Graph 404 `ImageNotFound`).
    NoCloudPhoto,
    /// The cloud user has no Exchange Online mailbox, so no photo.
    NoMailbox,
    /// No cloud user matches (an on-premises-only account).
    NotInCloud,
    /// See `error`.
    Failed,
}

/// Why a user failed: a typed kind ([`ErrorKind`]: the directory's or Graph's own, or `image`,
/// `write`, `journal`, `ambiguous`, …) and a message for people (a Graph failure says so).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncError {
    pub kind: ErrorKind,
    pub message: String,
}

/// One user's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncItem {
    /// sAMAccountName, else the identity asked for, else the DN.
    pub identity: String,
    pub dn: Option<String>,
    /// The cloud user's UPN (or the key it was looked up by).
    pub cloud_user: Option<String>,
    pub status: SyncStatus,
    pub source_sha256: Option<String>,
    pub source_bytes: Option<usize>,
    pub written_sha256: Option<String>,
    pub written_bytes: Option<usize>,
    pub backup_id: Option<String>,
    pub error: Option<SyncError>,
}

impl SyncItem {
    /// An item with nothing decided yet (status `failed` until it is).
    fn new(identity: String, dn: Option<String>) -> Self {
        SyncItem {
            identity,
            dn,
            cloud_user: None,
            status: SyncStatus::Failed,
            source_sha256: None,
            source_bytes: None,
            written_sha256: None,
            written_bytes: None,
            backup_id: None,
            error: None,
        }
    }
}

/// Counts by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    pub total: usize,
    pub written: usize,
    pub would_write: usize,
    pub unchanged: usize,
    pub no_cloud_photo: usize,
    pub no_mailbox: usize,
    pub not_in_cloud: usize,
    pub failed: usize,
}

impl SyncSummary {
    fn add(&mut self, s: SyncStatus) {
        self.total += 1;
        *match s {
            SyncStatus::Written => &mut self.written,
            SyncStatus::WouldWrite => &mut self.would_write,
            SyncStatus::Unchanged => &mut self.unchanged,
            SyncStatus::NoCloudPhoto => &mut self.no_cloud_photo,
            SyncStatus::NoMailbox => &mut self.no_mailbox,
            SyncStatus::NotInCloud => &mut self.not_in_cloud,
            SyncStatus::Failed => &mut self.failed,
        } += 1;
    }
}

/// The whole run: items in scope order, the counts, and whether a cancel stopped it early.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub items: Vec<SyncItem>,
    pub summary: SyncSummary,
    pub cancelled: bool,
}

/// Problems with the run as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncHdError {
    #[error("listing AD users: {0}")]
    Directory(#[from] DirectoryError),
    #[error("listing cloud users: {0}")]
    Graph(#[from] GraphError),
    #[error("sync journal: {0}")]
    Journal(#[from] StoreError),
}

/// One line of the sync journal (JSON lines, fsync'd after each write):
/// `{"user":"<objectGUID or DN, lower case>","dn":"CN=…","cloud_user":"…","source_sha256":"…",
/// "written_sha256":"…","bytes":6012,"time":"2026-…Z","backup_id":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    pub user: String,
    pub dn: String,
    pub cloud_user: String,
    pub source_sha256: String,
    pub written_sha256: String,
    pub bytes: usize,
    pub time: String,
    #[serde(default)]
    pub backup_id: Option<String>,
}

/// What was written to AD from which cloud photo, per user (newest line wins).
#[derive(Debug)]
pub struct SyncJournal {
    log: JsonlLog,
    last: Mutex<HashMap<String, (String, String)>>,
}

impl SyncJournal {
    /// Open (creating) the journal at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let (log, records) = JsonlLog::open::<SyncRecord>(path)?;
        let last = records
            .into_iter()
            .map(|r| (r.user, (r.source_sha256, r.written_sha256)))
            .collect();
        Ok(SyncJournal {
            log,
            last: Mutex::new(last),
        })
    }

    pub fn path(&self) -> &Path {
        self.log.path()
    }

    /// `(source_sha256, written_sha256)` last recorded for this user key.
    pub fn last(&self, user: &str) -> Option<(String, String)> {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .cloned()
    }

    /// Append and fsync a record (`time` filled in when empty).
    pub fn record(&self, mut r: SyncRecord) -> Result<(), StoreError> {
        if r.time.is_empty() {
            r.time = Utc::now().rfc3339();
        }
        self.log.append(&r)?;
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(r.user, (r.source_sha256, r.written_sha256));
        Ok(())
    }

    /// Every record, oldest first.
    pub fn records(&self) -> Result<Vec<SyncRecord>, StoreError> {
        self.log.read()
    }
}

/// The journal key of an AD user: objectGUID (survives renames and moves), else the DN.
fn user_key(u: &AdUser) -> String {
    u.object_guid
        .as_deref()
        .unwrap_or(&u.dn)
        .to_ascii_lowercase()
}

/// Run the sync. `progress` is called once per user as it finishes (completion order); the
/// report lists users in scope order.
pub async fn sync_hd_to_ad(
    dir: &Directory,
    graph: &GraphClient,
    scope: &SyncScope,
    opts: &SyncHdOptions,
    progress: &(dyn Fn(&SyncItem) + Send + Sync),
) -> Result<SyncReport, SyncHdError> {
    // AD users in scope; identities that resolve to nobody (or to several) are items already.
    let users: Vec<Result<AdUser, SyncItem>> = match scope {
        SyncScope::Under { base } => dir
            .list_users(&ListOptions {
                base: base.clone(),
                only_with_photo: false,
                fetch_photo: true,
            })
            .await?
            .into_iter()
            .map(Ok)
            .collect(),
        // One OR search per 50 names (Directory::find_users), not one search each.
        // (A loop, not map_err: clippy's result_large_err refuses a closure whose Err is a
        // whole SyncItem.)
        SyncScope::Identities { by, values } => {
            let mut users = Vec::with_capacity(values.len());
            for (found, v) in dir
                .find_users(by, values, true)
                .await
                .into_iter()
                .zip(values)
            {
                users.push(match found {
                    Ok(u) => Ok(u),
                    Err(e) => Err(failed_item(v.clone(), e.kind(), e.to_string())),
                });
            }
            users
        }
    };
    let index = match opts.match_by {
        CloudMatch::Upn => None,
        CloudMatch::Mail | CloudMatch::Alias => Some(UserIndex::new(graph.list_users().await?)),
    };
    let imaging = Options {
        crop: opts.crop,
        targets: vec![opts.target.clone()],
        ..Options::default()
    };
    let ctx = Ctx {
        dir,
        graph,
        opts,
        index: index.as_ref(),
        imaging: &imaging,
    };

    let mut cancelled = false;
    let cancel = opts.cancel.clone();
    let work = stream::iter(users)
        .take_while(|_| {
            let stop = cancel.as_ref().is_some_and(Cancel::is_cancelled);
            cancelled |= stop;
            std::future::ready(!stop)
        })
        .map(|u| {
            let ctx = &ctx;
            async move {
                let item = match u {
                    Ok(user) => ctx.one(user).await,
                    Err(item) => item,
                };
                progress(&item);
                item
            }
        });
    let done = in_input_order(work, opts.workers).await;
    let mut report = SyncReport {
        cancelled,
        ..SyncReport::default()
    };
    for item in done {
        report.summary.add(item.status);
        report.items.push(item);
    }
    Ok(report)
}

fn failed_item(identity: String, kind: ErrorKind, message: String) -> SyncItem {
    SyncItem {
        error: Some(SyncError { kind, message }),
        ..SyncItem::new(identity, None)
    }
}

/// A user's outcome other than success: its status and why.
type Outcome = (SyncStatus, SyncError);

fn outcome(status: SyncStatus, kind: ErrorKind, message: String) -> Outcome {
    (status, SyncError { kind, message })
}

/// Why an AD user has no cloud key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CloudKeyError {
    /// Nothing in the tenant to find it by, or no such cloud user.
    NotInCloud(String),
    /// Two cloud users answer to the name.
    Ambiguous(String),
}

impl std::fmt::Display for CloudKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloudKeyError::NotInCloud(m) | CloudKeyError::Ambiguous(m) => f.write_str(m),
        }
    }
}

/// The cloud key for an AD user (a UPN, or an object id found in `index`) and its UPN: the
/// one matching rule of `sync-hd-to-ad` and the photo report. `index` is needed for every
/// rule but [`CloudMatch::Upn`].
pub(crate) fn cloud_key(
    match_by: CloudMatch,
    index: Option<&UserIndex>,
    user: &AdUser,
) -> Result<(String, String), CloudKeyError> {
    let (ad_value, what) = match match_by {
        CloudMatch::Upn => (user.user_principal_name.as_deref(), "userPrincipalName"),
        CloudMatch::Mail => (user.mail.as_deref(), "mail"),
        CloudMatch::Alias => (user.sam_account_name.as_deref(), "sAMAccountName"),
    };
    let value = ad_value.ok_or_else(|| {
        CloudKeyError::NotInCloud(format!(
            "the AD user has no {what} to find it in the tenant by"
        ))
    })?;
    match index {
        None => Ok((value.to_string(), value.to_string())),
        Some(index) => {
            let found = match match_by {
                // The index knows ids, UPNs, mails and aliases; a mail must match a mail
                // and an alias must not contain '@'.
                CloudMatch::Alias if value.contains('@') => {
                    Err(GraphError::UserNotFound(value.into()))
                }
                _ => index.find(value),
            };
            match found {
                Ok(u) => Ok((u.id.clone(), u.user_principal_name.clone())),
                Err(e @ GraphError::Ambiguous { .. }) => {
                    Err(CloudKeyError::Ambiguous(e.to_string()))
                }
                Err(e) => Err(CloudKeyError::NotInCloud(e.to_string())),
            }
        }
    }
}

struct Ctx<'a> {
    dir: &'a Directory,
    graph: &'a GraphClient,
    opts: &'a SyncHdOptions,
    index: Option<&'a UserIndex>,
    imaging: &'a Options,
}

impl Ctx<'_> {
    /// The cloud key for `user` (a UPN, or an object id found in the index).
    fn cloud_key(&self, user: &AdUser) -> Result<(String, String), Outcome> {
        cloud_key(self.opts.match_by, self.index, user).map_err(|e| match e {
            CloudKeyError::NotInCloud(m) => {
                outcome(SyncStatus::NotInCloud, ErrorKind::UserNotFound, m)
            }
            CloudKeyError::Ambiguous(m) => outcome(SyncStatus::Failed, ErrorKind::Ambiguous, m),
        })
    }

    async fn one(&self, user: AdUser) -> SyncItem {
        let identity = user
            .sam_account_name
            .clone()
            .unwrap_or_else(|| user.dn.clone());
        let mut item = SyncItem::new(identity, Some(user.dn.clone()));
        match self.run(&user, &mut item).await {
            Ok(status) => item.status = status,
            Err((status, error)) => {
                item.status = status;
                item.error = Some(error);
            }
        }
        item
    }

    async fn run(&self, user: &AdUser, item: &mut SyncItem) -> Result<SyncStatus, Outcome> {
        let fail = |kind: ErrorKind, message: String| outcome(SyncStatus::Failed, kind, message);
        let (key, upn) = self.cloud_key(user)?;
        item.cloud_user = Some(upn);
        let cloud = match self.graph.get_photo(&key).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(SyncStatus::NoCloudPhoto),
            Err(e @ GraphError::NoMailbox { .. }) => {
                return Err(outcome(SyncStatus::NoMailbox, e.kind(), e.to_string()))
            }
            Err(e @ GraphError::UserNotFound(_)) => {
                return Err(outcome(
                    SyncStatus::NotInCloud,
                    ErrorKind::UserNotFound,
                    e.to_string(),
                ))
            }
            Err(e) => return Err(fail(e.kind(), format!("Microsoft Graph: {e}"))),
        };
        let source_sha = sha256_hex(&cloud);
        item.source_sha256 = Some(source_sha.clone());
        item.source_bytes = Some(cloud.len());
        let current_sha = user.photo.as_deref().map(sha256_hex);
        let ukey = user_key(user);

        if let (Some(j), false) = (&self.opts.journal, self.opts.force) {
            if let Some((src, written)) = j.last(&ukey) {
                if src == source_sha && current_sha.as_deref() == Some(written.as_str()) {
                    item.written_sha256 = Some(written);
                    return Ok(SyncStatus::Unchanged);
                }
            }
        }

        let imaging = self.imaging.clone();
        let converted =
            tokio::task::spawn_blocking(move || photobulk_imaging::convert(&cloud, &imaging))
                .await
                .map_err(|e| fail(ErrorKind::Internal, format!("conversion task: {e}")))?
                .map_err(|e| {
                    fail(
                        ErrorKind::Image,
                        format!("the cloud photo cannot be converted: {e}"),
                    )
                })?;
        let jpeg = converted
            .outputs
            .into_iter()
            .next()
            .map(|o| o.jpeg)
            .ok_or_else(|| {
                fail(
                    ErrorKind::Internal,
                    "the conversion produced no output".into(),
                )
            })?;
        let written_sha = sha256_hex(&jpeg);
        item.written_sha256 = Some(written_sha.clone());
        item.written_bytes = Some(jpeg.len());
        let record = |backup_id: Option<String>| SyncRecord {
            user: ukey.clone(),
            dn: user.dn.clone(),
            cloud_user: item.cloud_user.clone().unwrap_or_default(),
            source_sha256: source_sha.clone(),
            written_sha256: written_sha.clone(),
            bytes: jpeg.len(),
            time: String::new(),
            backup_id,
        };

        if current_sha.as_deref() == Some(written_sha.as_str()) {
            // Same bytes already there (e.g. an earlier run without the journal): record it so
            // the next run skips the conversion too.
            if let (Some(j), false) = (&self.opts.journal, self.opts.dry_run) {
                if j.last(&ukey).map(|(s, _)| s) != Some(source_sha.clone()) {
                    j.record(record(None))
                        .map_err(|e| fail(ErrorKind::Journal, e.to_string()))?;
                }
            }
            return Ok(SyncStatus::Unchanged);
        }
        if self.opts.dry_run {
            return Ok(SyncStatus::WouldWrite);
        }
        let outcome = self
            .dir
            .set_photo(&user.dn, &jpeg, &self.opts.write)
            .await
            .map_err(|e| fail(ErrorKind::Write, e.to_string()))?;
        let backup_id = outcome.backup.map(|b| b.id);
        item.backup_id.clone_from(&backup_id);
        if let Some(j) = &self.opts.journal {
            j.record(record(backup_id)).map_err(|e| {
                fail(
                    ErrorKind::Journal,
                    format!("written, but the journal could not record it: {e}"),
                )
            })?;
        }
        Ok(SyncStatus::Written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_keeps_the_newest_record_per_user() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("sync-hd.jsonl");
        let j = SyncJournal::open(&path).expect("open");
        let rec = |src: &str, out: &str| SyncRecord {
            user: "guid-1".into(),
            dn: "CN=A".into(),
            cloud_user: "a@x".into(),
            source_sha256: src.into(),
            written_sha256: out.into(),
            bytes: 1,
            time: String::new(),
            backup_id: None,
        };
        j.record(rec("s1", "w1")).expect("record");
        j.record(rec("s2", "w2")).expect("record");
        drop(j);
        let j = SyncJournal::open(&path).expect("reopen");
        assert_eq!(j.last("guid-1"), Some(("s2".into(), "w2".into())));
        assert_eq!(j.last("guid-2"), None);
        assert_eq!(j.records().expect("records").len(), 2);
        assert!(j.records().expect("records")[0].time.ends_with('Z'));
    }

    #[test]
    fn summary_counts_every_status() {
        let mut s = SyncSummary::default();
        for st in [
            SyncStatus::Written,
            SyncStatus::Unchanged,
            SyncStatus::Unchanged,
            SyncStatus::NoCloudPhoto,
            SyncStatus::Failed,
        ] {
            s.add(st);
        }
        assert_eq!(
            (s.total, s.written, s.unchanged, s.no_cloud_photo, s.failed),
            (5, 1, 2, 1, 1)
        );
        assert_eq!(
            serde_json::to_value(SyncStatus::NoCloudPhoto).expect("json"),
            "no_cloud_photo"
        );
    }
}
