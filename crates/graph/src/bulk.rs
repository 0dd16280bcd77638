//! Bulk uploads: many photos, one result per user, the run goes on whatever one user's
//! problem is.
//!
//! Each item is matched to a user ([`UserIndex`]: object id, UPN, mail or alias = UPN prefix,
//! the cloud form of the file-name rule), skipped when the journal already records the same
//! bytes for that user, backed up, uploaded, then journaled. Items run in a bounded window
//! ([`BulkOptions::workers`]); the client's photo limit (4 by default) caps what is actually in
//! flight at Graph, and a worker waiting out a `Retry-After` does not hold a photo slot, so the
//! other workers keep the slots busy.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::backup::{sha256_hex, CloudBackupStore};
use crate::client::{check_photo, GraphClient, User};
use crate::journal::{JournalEntry, UploadJournal};
use crate::write::WriteOptions;
use crate::GraphError;

/// Users by every name a photo file may carry, for matching a whole folder at once.
#[derive(Debug, Clone, Default)]
pub struct UserIndex {
    users: Vec<User>,
    by_name: HashMap<String, Vec<usize>>,
}

impl UserIndex {
    /// Index `users` by id, UPN, mail and alias (UPN prefix), case-insensitively.
    pub fn new(users: Vec<User>) -> Self {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, u) in users.iter().enumerate() {
            let mut names = vec![
                u.id.to_ascii_lowercase(),
                u.user_principal_name.to_lowercase(),
                u.alias().to_lowercase(),
            ];
            if let Some(m) = &u.mail {
                names.push(m.to_lowercase());
            }
            names.sort();
            names.dedup();
            for n in names {
                by_name.entry(n).or_default().push(i);
            }
        }
        UserIndex { users, by_name }
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// The one user `key` names. An alias shared by two UPN domains is
    /// [`GraphError::Ambiguous`], never a guess.
    pub fn find(&self, key: &str) -> Result<&User, GraphError> {
        let hits = self
            .by_name
            .get(&key.to_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match hits {
            [] => Err(GraphError::UserNotFound(key.to_string())),
            [i] => Ok(&self.users[*i]),
            many => Err(GraphError::Ambiguous {
                key: key.to_string(),
                matches: many
                    .iter()
                    .map(|i| self.users[*i].user_principal_name.clone())
                    .collect(),
            }),
        }
    }
}

/// One photo to upload.
#[derive(Debug, Clone)]
pub struct UploadItem {
    /// The name it was given under (file-name account, UPN, mail or id).
    pub key: String,
    /// The finished JPEG (the HD 648x648 from the imaging engine, normally).
    pub jpeg: Bytes,
    /// Where it came from, for the journal and reports.
    pub source: Option<String>,
}

/// How a bulk upload runs.
#[derive(Debug, Clone)]
pub struct BulkOptions {
    pub write: WriteOptions,
    /// Skip users whose journal entry has the same bytes; record each upload.
    pub journal: Option<Arc<UploadJournal>>,
    /// Upload even when the journal says the same bytes are there.
    pub force: bool,
    /// Users in flight (resolution, backup, upload, journal). Default 16.
    pub workers: usize,
}

impl BulkOptions {
    pub fn new(write: WriteOptions) -> Self {
        BulkOptions {
            write,
            journal: None,
            force: false,
            workers: 16,
        }
    }
}

/// What happened to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    /// Uploaded (and journaled, with a journal).
    Uploaded,
    /// The journal records these exact bytes for this user: nothing sent.
    Unchanged,
    /// See the error.
    Failed,
}

/// One item's outcome.
#[derive(Debug)]
pub struct UploadResult {
    pub key: String,
    pub source: Option<String>,
    pub user: Option<User>,
    pub status: UploadStatus,
    pub error: Option<GraphError>,
    pub backup_id: Option<String>,
}

/// Upload every item; results come back in input order, and `on_result` sees each as it
/// completes (progress bars, per-item output).
pub async fn upload_all(
    client: &GraphClient,
    index: &UserIndex,
    items: Vec<UploadItem>,
    opts: &BulkOptions,
    on_result: &(dyn Fn(&UploadResult) + Sync),
) -> Vec<UploadResult> {
    // Resolve first, so two photos for one user are both refused, not raced.
    let mut targets: Vec<Result<User, GraphError>> = Vec::with_capacity(items.len());
    let mut first_by_user: HashMap<String, usize> = HashMap::new();
    for (n, item) in items.iter().enumerate() {
        let t = index.find(&item.key).cloned();
        if let Ok(u) = &t {
            if let Some(&first) = first_by_user.get(&u.id) {
                let dup = |k: &str| GraphError::Duplicate {
                    user: u.user_principal_name.clone(),
                    first: items[first].key.clone(),
                    second: k.to_string(),
                };
                if let Ok(fu) = &targets[first] {
                    let e = GraphError::Duplicate {
                        user: fu.user_principal_name.clone(),
                        first: items[first].key.clone(),
                        second: item.key.clone(),
                    };
                    targets[first] = Err(e);
                }
                targets.push(Err(dup(&item.key)));
                continue;
            }
            first_by_user.insert(u.id.clone(), n);
        }
        targets.push(t);
    }
    let work = items
        .into_iter()
        .zip(targets)
        .enumerate()
        .map(|(n, (item, target))| async move {
            let r = upload_one(client, item, target, opts).await;
            on_result(&r);
            (n, r)
        });
    let mut out: Vec<(usize, UploadResult)> = stream::iter(work)
        .buffer_unordered(opts.workers.max(1))
        .collect()
        .await;
    out.sort_by_key(|(n, _)| *n);
    out.into_iter().map(|(_, r)| r).collect()
}

async fn upload_one(
    client: &GraphClient,
    item: UploadItem,
    target: Result<User, GraphError>,
    opts: &BulkOptions,
) -> UploadResult {
    let mut result = UploadResult {
        key: item.key.clone(),
        source: item.source.clone(),
        user: None,
        status: UploadStatus::Failed,
        error: None,
        backup_id: None,
    };
    let user = match target {
        Ok(u) => u,
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    result.user = Some(user.clone());
    if let Err(e) = check_photo(&item.jpeg) {
        result.error = Some(e);
        return result;
    }
    let sha = sha256_hex(&item.jpeg);
    if let Some(j) = &opts.journal {
        if !opts.force && j.uploaded(&user.id).as_deref() == Some(sha.as_str()) {
            result.status = UploadStatus::Unchanged;
            return result;
        }
    }
    let bytes = item.jpeg.len();
    match client.set_photo(&user, item.jpeg, &opts.write).await {
        Ok(out) => {
            result.backup_id = out.backup.map(|b| b.id);
            if let Some(j) = &opts.journal {
                let entry = JournalEntry {
                    user_id: user.id.clone(),
                    upn: user.user_principal_name.clone(),
                    sha256: sha,
                    bytes,
                    time: String::new(),
                    source: item.source.clone(),
                    backup_id: result.backup_id.clone(),
                };
                if let Err(e) = j.record(entry) {
                    // Uploaded but not recorded: say so (a re-run would upload it again).
                    result.error = Some(e);
                    return result;
                }
            }
            result.status = UploadStatus::Uploaded;
        }
        Err(e) => result.error = Some(e),
    }
    result
}

/// Convenience: the backup store of a bulk run, if any.
pub fn backup_store(opts: &BulkOptions) -> Option<&CloudBackupStore> {
    opts.write.backup.as_ref()
}
