//! Bulk uploads: many photos, one result per user, the run goes on whatever one user's
//! problem is.
//!
//! Each item is matched to a user ([`UserIndex`]: object id, UPN or mail; else alias
//! (`mailNickname`), UPN prefix or mail prefix, the cloud form of the file-name rule), skipped
//! when the journal already records the same bytes for that user, backed up, uploaded, then
//! journaled. Items run in a bounded window
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
use crate::journal::{JournalEntry, UploadIntent, UploadJournal};
use crate::write::WriteOptions;
use crate::GraphError;

/// Users by every name a photo file may carry, for matching a whole folder at once.
///
/// The matching rule, the same for `photobulk graph upload`, `graph photo …` and the sidecar
/// (so the PowerShell module):
/// 1. a full object id, UPN or primary SMTP address names that user;
/// 2. otherwise the name is a short name, looked up as the **alias** (`mailNickname`, what
///    Exchange Online calls users by), then the **UPN prefix** (`anna.berg` of
///    `anna.berg@contoso.com`), then the **mail prefix**. A short name that lands on two
///    different users by any of these ([`GraphError::Ambiguous`], naming each and how it
///    matched) is never guessed between: nothing is uploaded for it.
#[derive(Debug, Clone, Default)]
pub struct UserIndex {
    users: Vec<User>,
    /// id, UPN, mail (lower case) → users.
    exact: HashMap<String, Vec<usize>>,
    /// short name (lower case) → (user, how it matched), in rule order per user.
    short: HashMap<String, Vec<(usize, ShortMatch)>>,
}

/// How a short name matched a user (in the order they are tried).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShortMatch {
    /// `mailNickname`.
    Alias,
    /// The UPN up to `@`.
    UpnPrefix,
    /// The primary SMTP address up to `@`.
    MailPrefix,
}

impl ShortMatch {
    pub fn describe(self) -> &'static str {
        match self {
            ShortMatch::Alias => "alias",
            ShortMatch::UpnPrefix => "UPN prefix",
            ShortMatch::MailPrefix => "mail prefix",
        }
    }
}

fn prefix(s: &str) -> Option<&str> {
    s.split_once('@').map(|(p, _)| p).filter(|p| !p.is_empty())
}

impl UserIndex {
    /// Index `users` by id, UPN and mail, and by alias, UPN prefix and mail prefix,
    /// case-insensitively.
    pub fn new(users: Vec<User>) -> Self {
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut short: HashMap<String, Vec<(usize, ShortMatch)>> = HashMap::new();
        for (i, u) in users.iter().enumerate() {
            let mut names = vec![
                u.id.to_ascii_lowercase(),
                u.user_principal_name.to_lowercase(),
            ];
            if let Some(m) = &u.mail {
                names.push(m.to_lowercase());
            }
            names.sort();
            names.dedup();
            for n in names.into_iter().filter(|n| !n.is_empty()) {
                exact.entry(n).or_default().push(i);
            }
            let candidates = [
                (
                    u.mail_nickname.as_deref().filter(|a| !a.is_empty()),
                    ShortMatch::Alias,
                ),
                (prefix(&u.user_principal_name), ShortMatch::UpnPrefix),
                (u.mail.as_deref().and_then(prefix), ShortMatch::MailPrefix),
            ];
            for (name, how) in candidates {
                let Some(name) = name else { continue };
                let list = short.entry(name.to_lowercase()).or_default();
                // one entry per user: the first rule that matched it
                if !list.iter().any(|(j, _)| *j == i) {
                    list.push((i, how));
                }
            }
        }
        UserIndex {
            users,
            exact,
            short,
        }
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

    /// The one user `key` names (see the rule on [`UserIndex`]). A name that two users answer
    /// to is [`GraphError::Ambiguous`], never a guess.
    pub fn find(&self, key: &str) -> Result<&User, GraphError> {
        let k = key.to_lowercase();
        if let Some(hits) = self.exact.get(&k) {
            return match hits.as_slice() {
                [i] => Ok(&self.users[*i]),
                many => Err(GraphError::Ambiguous {
                    key: key.to_string(),
                    matches: many
                        .iter()
                        .map(|i| self.users[*i].user_principal_name.clone())
                        .collect(),
                }),
            };
        }
        let mut hits: Vec<(usize, ShortMatch)> = self.short.get(&k).cloned().unwrap_or_default();
        hits.sort_by_key(|(i, how)| (*how, *i));
        match hits.as_slice() {
            [] => Err(GraphError::UserNotFound(key.to_string())),
            [(i, _)] => Ok(&self.users[*i]),
            many => Err(GraphError::Ambiguous {
                key: key.to_string(),
                matches: many
                    .iter()
                    .map(|(i, how)| {
                        format!(
                            "{} (by {})",
                            self.users[*i].user_principal_name,
                            how.describe()
                        )
                    })
                    .collect(),
            }),
        }
    }
}

impl UserIndex {
    /// Resolve every key ([`UserIndex::find`]) and refuse keys that land on one user: each of
    /// them is [`GraphError::Duplicate`] (naming the first and the other), so neither photo
    /// is uploaded and no two uploads race for one user. One result per key, in order.
    pub fn resolve_all<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Result<User, GraphError>> {
        let keys: Vec<&str> = keys.into_iter().collect();
        let mut targets: Vec<Result<User, GraphError>> = Vec::with_capacity(keys.len());
        let mut first_by_user: HashMap<String, usize> = HashMap::new();
        for (n, key) in keys.iter().enumerate() {
            let t = self.find(key).cloned();
            if let Ok(u) = &t {
                if let Some(&first) = first_by_user.get(&u.id) {
                    let dup = |second: &str| GraphError::Duplicate {
                        user: u.user_principal_name.clone(),
                        first: keys[first].to_string(),
                        second: second.to_string(),
                    };
                    if targets[first].is_ok() {
                        targets[first] = Err(dup(key));
                    }
                    targets.push(Err(dup(key)));
                    continue;
                }
                first_by_user.insert(u.id.clone(), n);
            }
            targets.push(t);
        }
        targets
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
    /// The run these uploads belong to ([`UploadJournal::begin_run`]). With a journal and a
    /// run, an intent naming the pre-run backup is recorded before each upload, and a user the
    /// run already has an intent for is not backed up again (its first backup is the pre-run
    /// photo; what Graph holds now may be our own upload).
    pub run: Option<String>,
}

impl BulkOptions {
    pub fn new(write: WriteOptions) -> Self {
        BulkOptions {
            write,
            journal: None,
            force: false,
            workers: 16,
            run: None,
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
    let targets = index.resolve_all(items.iter().map(|i| i.key.as_str()));
    let work = items
        .into_iter()
        .zip(targets)
        .enumerate()
        .map(|(n, (item, target))| async move {
            let r = upload_resolved(client, item, target, opts).await;
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

/// Upload one item to the user it was resolved to ([`UserIndex::resolve_all`]): check the
/// photo, skip it when the journal records these bytes, back up (once per run), journal the
/// intent, upload, journal the result. For callers that stream items themselves (convert one,
/// upload it, convert the next) instead of handing [`upload_all`] a finished list.
pub async fn upload_resolved(
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
    let run = opts.run.as_deref().filter(|_| opts.journal.is_some());
    let (Some(j), Some(run)) = (&opts.journal, run) else {
        // No run: backup, upload, journal (the old order).
        match client.set_photo(&user, item.jpeg, &opts.write).await {
            Ok(out) => {
                result.backup_id = out.backup.map(|b| b.id);
                if let Some(j) = &opts.journal {
                    if let Err(e) = j.record(done_entry(
                        &user,
                        &sha,
                        bytes,
                        &item.source,
                        &result.backup_id,
                        None,
                    )) {
                        // Uploaded but not recorded: say so (a re-run would upload it again).
                        result.error = Some(e);
                        return result;
                    }
                }
                result.status = UploadStatus::Uploaded;
            }
            Err(e) => result.error = Some(e),
        }
        return result;
    };
    // Within a run: the pre-run photo is backed up once, by the user's first intent.
    let (backup_id, had_photo) = match j.first_intent(run, &user.id) {
        Some(first) => (first.backup_id, first.had_photo),
        None => match client
            .backup_current(&user, &opts.write, crate::BackupReason::Replace)
            .await
        {
            Ok(out) => (out.backup.map(|b| b.id), out.had_photo),
            Err(e) => {
                result.error = Some(e);
                return result;
            }
        },
    };
    result.backup_id = backup_id.clone();
    if let Err(e) = j.intent(UploadIntent {
        run: run.to_string(),
        time: String::new(),
        user_id: user.id.clone(),
        upn: user.user_principal_name.clone(),
        sha256: Some(sha.clone()),
        bytes,
        source: item.source.clone(),
        backup_id: backup_id.clone(),
        had_photo,
    }) {
        result.error = Some(e);
        return result;
    }
    if let Err(e) = client.put_photo(&user.id, item.jpeg).await {
        result.error = Some(e);
        return result;
    }
    if let Err(e) = j.record(done_entry(
        &user,
        &sha,
        bytes,
        &item.source,
        &backup_id,
        Some(run),
    )) {
        result.error = Some(e);
        return result;
    }
    result.status = UploadStatus::Uploaded;
    result
}

fn done_entry(
    user: &User,
    sha: &str,
    bytes: usize,
    source: &Option<String>,
    backup_id: &Option<String>,
    run: Option<&str>,
) -> JournalEntry {
    JournalEntry {
        user_id: user.id.clone(),
        upn: user.user_principal_name.clone(),
        sha256: sha.to_string(),
        bytes,
        time: String::new(),
        source: source.clone(),
        backup_id: backup_id.clone(),
        run: run.map(str::to_string),
    }
}

/// Convenience: the backup store of a bulk run, if any.
pub fn backup_store(opts: &BulkOptions) -> Option<&CloudBackupStore> {
    opts.write.backup.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, upn: &str, mail: Option<&str>, alias: Option<&str>) -> User {
        User {
            id: id.into(),
            user_principal_name: upn.into(),
            mail: mail.map(Into::into),
            display_name: None,
            mail_nickname: alias.map(Into::into),
        }
    }

    #[test]
    fn alias_then_upn_prefix_then_mail_prefix_and_two_users_are_ambiguous() {
        let index = UserIndex::new(vec![
            // alias differs from the UPN prefix (the tenant of issue 19)
            user(
                "1",
                "anna.berg@contoso.com",
                Some("anna.berg@contoso.com"),
                Some("aberg"),
            ),
            // alias shared by two users
            user("2", "p.one@contoso.com", None, Some("shared")),
            user("3", "p.two@contoso.com", None, Some("shared")),
            // only the mail prefix says "jdoe"
            user("4", "u4@contoso.com", Some("jdoe@contoso.com"), Some("u4x")),
            // alias of one user = UPN prefix of another
            user("5", "kim@contoso.com", None, Some("kim")),
            user("6", "k.lee@contoso.com", None, Some("kim2")),
            user("7", "lee@contoso.com", None, Some("k.lee")),
        ]);
        assert_eq!(index.find("ABERG").expect("alias").id, "1");
        assert_eq!(index.find("anna.berg").expect("UPN prefix").id, "1");
        assert_eq!(index.find("anna.berg@contoso.com").expect("UPN").id, "1");
        assert_eq!(index.find("jdoe").expect("mail prefix").id, "4");
        assert_eq!(index.find("u4").expect("UPN prefix").id, "4");
        assert_eq!(
            index.find("kim").expect("alias = UPN prefix, one user").id,
            "5"
        );
        match index.find("shared") {
            Err(GraphError::Ambiguous { key, matches }) => {
                assert_eq!(key, "shared");
                assert_eq!(
                    matches,
                    vec![
                        "p.one@contoso.com (by alias)".to_string(),
                        "p.two@contoso.com (by alias)".to_string()
                    ]
                );
            }
            other => panic!("expected Ambiguous, got {other:?}"),
        }
        // "k.lee" is user 7's alias and user 6's UPN prefix: never a guess.
        match index.find("k.lee") {
            Err(GraphError::Ambiguous { matches, .. }) => assert_eq!(
                matches,
                vec![
                    "lee@contoso.com (by alias)".to_string(),
                    "k.lee@contoso.com (by UPN prefix)".to_string()
                ]
            ),
            other => panic!("expected Ambiguous, got {other:?}"),
        }
        assert!(matches!(
            index.find("nobody"),
            Err(GraphError::UserNotFound(_))
        ));
    }
}
