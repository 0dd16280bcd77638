//! The cloud job: put a folder (or CSV list) of photos into Exchange Online / Entra ID through
//! Microsoft Graph, as the HD 648x648 photo — the one job behind `photobulk graph upload`
//! and `Set-PhotoBulk -Target ExchangeOnline` (the sidecar's `bulk.plan`/`bulk.run`).
//!
//! # Pipeline
//! 1. **Who**: the tenant's users are listed once and every input is matched by
//!    [`UserIndex::resolve_all`] (id, UPN or mail; else alias, UPN prefix, mail prefix). Two
//!    inputs that land on one user are both refused (`duplicate`), as is a name two users
//!    answer to (`ambiguous`): nothing is uploaded for them. Two files naming one account
//!    are settled before that, as for AD ([`crate::inputs`]: the newest wins, the others are
//!    `superseded`).
//! 2. **Convert and upload, streaming**: each resolved input is read and converted to the HD
//!    JPEG on the blocking pool (at most `image_threads` at once), then handed to
//!    [`photobulk_graph::upload_resolved`] (check, journal "unchanged", backup once per run,
//!    intent, upload, journal). At most `workers` items are in flight, so memory is bounded
//!    however many photos there are: a few decodes and `workers` small JPEGs. Image work and
//!    uploads overlap; Graph's own limit (4 photo requests) and `Retry-After` apply below.
//! 3. **Results** reach the caller as each item finishes (`on_item`) and in input order at
//!    the end.
//!
//! Each run is a run of the upload journal ([`UploadJournal::begin_run`]): running the same
//! job again after a kill, a cancel or a lost connection continues it, so one
//! `restore --run` undoes every attempt. [`CloudJob::plan`] does steps 1-2 without writing
//! anything (no backup, no journal record, no upload) and says what each input would do.
//!
//! Cancellation ([`Cancel`]) stops items that have not started converting; uploads already
//! sent finish and are journaled.

use photobulk_kind::ErrorKind;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::stream;

use photobulk_graph::{
    sha256_hex, upload_resolved, BulkOptions, GraphClient, GraphError, UploadItem, UploadJournal,
    UploadStatus, User, UserIndex, WriteOptions,
};
use photobulk_imaging::Crop;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::hd::make_hd_pooled;
pub use crate::hd::HdPhoto;
use crate::import::{Cancel, ItemError};
use crate::inputs::{refusal, Input, Take};
use crate::ordered::in_input_order;

/// What happened (or, in a plan, would happen) to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudAction {
    /// Uploaded (and journaled).
    Uploaded,
    /// The journal records these exact bytes for this user: nothing sent.
    Unchanged,
    /// Plan: the user has no cloud photo; it would be set.
    WouldSet,
    /// Plan: the user's cloud photo would be replaced (and backed up first).
    WouldReplace,
    /// See `error`.
    Failed,
    /// Not attempted: a newer file for the same account won (`superseded`), or the run was
    /// cancelled first (`cancelled`).
    Skipped,
}

/// One input's result.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct CloudItem {
    pub file: PathBuf,
    /// `file.csv:LINE` when the input came from a CSV row.
    pub origin: Option<String>,
    /// The name the input gives (file-name account or CSV identity).
    #[serialize_always]
    pub account: Option<String>,
    /// The cloud user it resolved to.
    pub user: Option<User>,
    pub action: CloudAction,
    pub error: Option<ItemError>,
    /// The backup of the photo the user had before this run (taken by its first attempt).
    pub backup_id: Option<String>,
    pub hd: Option<HdPhoto>,
}

impl CloudItem {
    fn new(input: &Input) -> Self {
        CloudItem {
            file: input.path.clone(),
            origin: input.origin.clone(),
            account: input.account.clone(),
            user: None,
            action: CloudAction::Failed,
            error: None,
            backup_id: None,
            hd: None,
        }
    }

    fn fail(mut self, kind: ErrorKind, retryable: bool, message: String) -> Self {
        self.action = CloudAction::Failed;
        self.error = Some(ItemError::with(kind, retryable, message));
        self
    }

    fn graph_fail(self, e: &GraphError) -> Self {
        self.fail(e.kind(), e.is_retryable(), e.to_string())
    }

    fn skip(mut self, kind: ErrorKind, message: String) -> Self {
        self.action = CloudAction::Skipped;
        self.error = Some(ItemError::new(kind, message));
        self
    }

    /// Not failed (uploaded, unchanged, or would be written).
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Counts of a run or plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CloudSummary {
    pub total: usize,
    pub uploaded: usize,
    pub unchanged: usize,
    pub would_set: usize,
    pub would_replace: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Failed or skipped items that running the same job again may finish.
    pub retryable: usize,
}

impl CloudSummary {
    pub fn add(&mut self, it: &CloudItem) {
        self.total += 1;
        match it.action {
            CloudAction::Uploaded => self.uploaded += 1,
            CloudAction::Unchanged => self.unchanged += 1,
            CloudAction::WouldSet => self.would_set += 1,
            CloudAction::WouldReplace => self.would_replace += 1,
            CloudAction::Failed => self.failed += 1,
            CloudAction::Skipped => self.skipped += 1,
        }
        if it.error.as_ref().is_some_and(|e| e.retryable) {
            self.retryable += 1;
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct CloudReport {
    /// The journal run (`None` for a plan).
    pub run: Option<String>,
    /// The run continues an unfinished run of the same job.
    pub resumed: bool,
    pub cancelled: bool,
    pub summary: CloudSummary,
    /// In input order.
    pub items: Vec<CloudItem>,
}

/// A cloud upload job (see the module docs).
#[derive(Debug, Clone)]
pub struct CloudJob {
    pub crop: Crop,
    /// Upload each file as it is (a JPEG of at most 4 MB), without converting it.
    pub raw: bool,
    /// Also write each HD JPEG to `out_dir/hd/NAME.jpg` (NAME: the input's account).
    pub out_dir: Option<PathBuf>,
    /// Upload even when the journal says the user has these bytes.
    pub force: bool,
    /// Items in flight (conversion, backup, upload). Default 8.
    pub workers: usize,
    /// Conversions at once. Default: one per core.
    pub image_threads: usize,
    /// Backups (`WriteOptions::backup_to`) or none.
    pub write: WriteOptions,
    /// The upload journal: "unchanged", resume, restore of a run.
    pub journal: Arc<UploadJournal>,
    /// The job's fingerprint ([`job_key`]): a re-run with the same key continues the run.
    pub job: String,
}

/// The fingerprint of a cloud job: the same tenant, inputs and options give the same key, so
/// running the same command again continues its unfinished run.
pub fn job_key(graph_url: &str, inputs: &[String], crop: Crop, raw: bool, force: bool) -> String {
    let mut inputs = inputs.to_vec();
    inputs.sort();
    let text = serde_json::json!({
        "command": "cloud upload",
        "graph": graph_url,
        "inputs": inputs,
        "crop": format!("{crop:?}"),
        "raw": raw,
        "force": force,
    })
    .to_string();
    sha256_hex(text.as_bytes())
}

impl CloudJob {
    pub fn new(write: WriteOptions, journal: Arc<UploadJournal>, job: String) -> Self {
        CloudJob {
            crop: Crop::default(),
            raw: false,
            out_dir: None,
            force: false,
            workers: 8,
            image_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            write,
            journal,
            job,
        }
    }

    /// Upload every input; `on_item` sees each result as it finishes. Only a failure of the
    /// run as a whole (listing users, starting the journal run) is an error.
    pub async fn run(
        &self,
        client: &GraphClient,
        inputs: Vec<Input>,
        cancel: &Cancel,
        on_item: &(dyn Fn(&CloudItem) + Sync),
    ) -> Result<CloudReport, GraphError> {
        let index = UserIndex::new(client.list_users().await?);
        let (run, resumed) = self.journal.begin_run(&self.job, "upload", None)?;
        let mut opts = BulkOptions::new(self.write.clone());
        opts.journal = Some(self.journal.clone());
        opts.force = self.force;
        opts.run = Some(run.clone());
        let (items, cancelled) = self
            .each(&index, inputs, cancel, on_item, |item, user, jpeg| {
                let opts = &opts;
                async move {
                    let upload = UploadItem {
                        key: user.id.clone(),
                        jpeg: jpeg.into(),
                        source: Some(item.file.display().to_string()),
                    };
                    let r = upload_resolved(client, upload, Ok(user), opts).await;
                    finish(item, r.status, r.error.as_ref(), r.backup_id)
                }
            })
            .await;
        let mut summary = CloudSummary::default();
        items.iter().for_each(|i| summary.add(i));
        let _ = self.journal.end(
            &run,
            cancelled,
            summary.uploaded,
            summary.unchanged,
            summary.failed + summary.skipped,
            summary.retryable,
        );
        Ok(CloudReport {
            run: Some(run),
            resumed,
            cancelled,
            summary,
            items,
        })
    }

    /// What [`CloudJob::run`] would do, writing nothing: who each input matches and whether
    /// its photo would be set, replaced or left unchanged (by the journal).
    pub async fn plan(
        &self,
        client: &GraphClient,
        inputs: Vec<Input>,
        on_item: &(dyn Fn(&CloudItem) + Sync),
    ) -> Result<CloudReport, GraphError> {
        let index = UserIndex::new(client.list_users().await?);
        let journal = &self.journal;
        let force = self.force;
        let (items, _) = self
            .each(
                &index,
                inputs,
                &Cancel::new(),
                on_item,
                |mut item, user, jpeg| async move {
                    let sha = sha256_hex(&jpeg);
                    if !force && journal.uploaded(&user.id).as_deref() == Some(sha.as_str()) {
                        item.action = CloudAction::Unchanged;
                        return item;
                    }
                    match client.photo_meta(&user.id).await {
                        Ok(Some(_)) => item.action = CloudAction::WouldReplace,
                        Ok(None) => item.action = CloudAction::WouldSet,
                        Err(e) => return item.graph_fail(&e),
                    }
                    item
                },
            )
            .await;
        let mut summary = CloudSummary::default();
        items.iter().for_each(|i| summary.add(i));
        Ok(CloudReport {
            run: None,
            resumed: false,
            cancelled: false,
            summary,
            items,
        })
    }

    /// Resolve every input, then convert and hand each resolved one to `act`, `workers` at a
    /// time. Returns the items in input order and whether the run was cancelled.
    async fn each<F, Fut>(
        &self,
        index: &UserIndex,
        inputs: Vec<Input>,
        cancel: &Cancel,
        on_item: &(dyn Fn(&CloudItem) + Sync),
        act: F,
    ) -> (Vec<CloudItem>, bool)
    where
        F: Fn(CloudItem, User, Vec<u8>) -> Fut,
        Fut: std::future::Future<Output = CloudItem>,
    {
        // Only inputs to be taken are resolved, so a superseded file cannot make its winner
        // a "duplicate".
        let keys: Vec<&str> = inputs
            .iter()
            .filter(|i| i.take == Take::Yes)
            .map(|i| i.account.as_deref().unwrap_or(""))
            .collect();
        let mut resolved = index.resolve_all(keys).into_iter();
        let targets: Vec<Option<Result<User, GraphError>>> = inputs
            .iter()
            .map(|i| (i.take == Take::Yes).then(|| resolved.next()).flatten())
            .collect();
        let images = Semaphore::new(self.image_threads.max(1));
        let (images, act) = (&images, &act);
        let work = inputs
            .into_iter()
            .zip(targets)
            .map(|(input, target)| async move {
                let item = self.one(input, target, cancel, images, act).await;
                on_item(&item);
                item
            });
        let items = in_input_order(stream::iter(work), self.workers).await;
        (items, cancel.is_cancelled())
    }

    async fn one<F, Fut>(
        &self,
        input: Input,
        target: Option<Result<User, GraphError>>,
        cancel: &Cancel,
        images: &Semaphore,
        act: F,
    ) -> CloudItem
    where
        F: FnOnce(CloudItem, User, Vec<u8>) -> Fut,
        Fut: std::future::Future<Output = CloudItem>,
    {
        let mut item = CloudItem::new(&input);
        if let Some((action, e)) = refusal(&input, CloudAction::Skipped, CloudAction::Failed) {
            item.action = action;
            item.error = Some(e);
            return item;
        }
        let user = match target {
            Some(Ok(u)) => u,
            Some(Err(e)) => return item.graph_fail(&e),
            None => return item.fail(ErrorKind::Internal, false, "not resolved".into()),
        };
        item.user = Some(user.clone());
        if cancel.is_cancelled() {
            return item.skip(
                ErrorKind::Cancelled,
                "cancelled before it was converted".into(),
            );
        }
        let name = input
            .account
            .clone()
            .unwrap_or_else(|| user.alias().to_string());
        let out = self.out_dir.clone();
        let converted = make_hd_pooled(images, input.path.clone(), name, self.crop, self.raw, out);
        let (jpeg, hd) = match converted.await {
            Ok(v) => v,
            Err((kind, message)) => return item.fail(kind, false, message),
        };
        item.hd = Some(hd);
        if cancel.is_cancelled() {
            return item.skip(
                ErrorKind::Cancelled,
                "cancelled before it was uploaded".into(),
            );
        }
        act(item, user, jpeg).await
    }
}

fn finish(
    mut item: CloudItem,
    status: UploadStatus,
    error: Option<&GraphError>,
    backup_id: Option<String>,
) -> CloudItem {
    item.backup_id = backup_id;
    match (status, error) {
        (_, Some(e)) => item.graph_fail(e),
        (UploadStatus::Uploaded, None) => {
            item.action = CloudAction::Uploaded;
            item
        }
        (UploadStatus::Unchanged, None) => {
            item.action = CloudAction::Unchanged;
            item
        }
        (UploadStatus::Failed, None) => item.fail(ErrorKind::Internal, false, "failed".into()),
    }
}
