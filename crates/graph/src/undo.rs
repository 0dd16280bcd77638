//! Undo a bulk run: every user the run wrote to goes back to the photo it had before the
//! run's first write to it (the backup named by the user's first intent in the run, see
//! [`crate::journal`]), or to no photo. Attempts of one run (kill, resume, re-run after a
//! lost connection) share the run id, so one restore undoes all of them.
//!
//! The restore is itself a run (`command` `restore`, job `restore:RUN`): each photo it
//! replaces is backed up first and recorded with an intent, so a restore can be undone the
//! same way.

use bytes::Bytes;
use serde::Serialize;

use crate::backup::{BackupReason, CloudBackupStore};
use crate::client::{GraphClient, User};
use crate::journal::{JournalEntry, UploadIntent, UploadJournal};
use crate::write::WriteOptions;
use crate::ErrorKind;
use crate::GraphError;

/// One user's restore.
#[derive(Debug, Serialize)]
pub struct RestoredUser {
    pub user_id: String,
    pub upn: String,
    /// The backup put back (the pre-run photo, or "no photo").
    pub restored_id: Option<String>,
    /// Whether the user had a photo before the run (`false`: the restore removed it).
    pub had_photo: Option<bool>,
    /// Backup of the photo the restore replaced.
    pub backup_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
}

/// What a run restore did.
#[derive(Debug, Serialize)]
pub struct RunRestore {
    /// The restore's own run id.
    pub run: String,
    pub restores: String,
    pub restored: usize,
    pub failed: usize,
    pub users: Vec<RestoredUser>,
}

/// Put every user of `run_id` back to its pre-run photo (or none).
pub async fn restore_run(
    client: &GraphClient,
    journal: &UploadJournal,
    store: &CloudBackupStore,
    run_id: &str,
    on_user: &(dyn Fn(&RestoredUser) + Sync),
) -> Result<RunRestore, GraphError> {
    if !journal.has_run(run_id) {
        return Err(GraphError::BackupNotFound(format!(
            "run {run_id} (not in {})",
            journal.path().display()
        )));
    }
    let intents = journal.run_intents(run_id);
    let (run, _) = journal.begin_run(&format!("restore:{run_id}"), "restore", Some(run_id))?;
    let mut users = Vec::with_capacity(intents.len());
    let (mut restored, mut failed) = (0, 0);
    for intent in intents {
        let u = restore_user(client, journal, store, &run, &intent).await;
        if u.error.is_some() {
            failed += 1;
        } else {
            restored += 1;
        }
        on_user(&u);
        users.push(u);
    }
    journal.end(&run, false, restored, 0, failed, failed)?;
    Ok(RunRestore {
        run,
        restores: run_id.to_string(),
        restored,
        failed,
        users,
    })
}

async fn restore_user(
    client: &GraphClient,
    journal: &UploadJournal,
    store: &CloudBackupStore,
    run: &str,
    intent: &UploadIntent,
) -> RestoredUser {
    let mut out = RestoredUser {
        user_id: intent.user_id.clone(),
        upn: intent.upn.clone(),
        restored_id: intent.backup_id.clone(),
        had_photo: None,
        backup_id: None,
        error: None,
        error_kind: None,
    };
    let fail = |mut out: RestoredUser, e: GraphError| {
        out.error_kind = Some(e.kind());
        out.error = Some(e.to_string());
        out
    };
    let Some(id) = &intent.backup_id else {
        out.error_kind = Some(ErrorKind::NoBackup);
        out.error = Some("the run wrote this user without a backup (--no-backup)".into());
        return out;
    };
    let user = User {
        id: intent.user_id.clone(),
        user_principal_name: intent.upn.clone(),
        mail: None,
        display_name: None,
        mail_nickname: None,
    };
    match put_back(client, journal, store, run, &user, id).await {
        Ok((had, backup)) => {
            out.had_photo = Some(had);
            out.backup_id = backup;
            out
        }
        Err(e) => fail(out, e),
    }
}

/// Put backup `id` back for `user` within restore run `run`: back up what is there, record
/// the intent, write (or remove), record it done. Returns (the backup had a photo, the backup
/// of what was replaced).
pub async fn put_back(
    client: &GraphClient,
    journal: &UploadJournal,
    store: &CloudBackupStore,
    run: &str,
    user: &User,
    id: &str,
) -> Result<(bool, Option<String>), GraphError> {
    let rec = store.get(id)?;
    let saved = store.load(&rec)?;
    let now = client
        .backup_current(
            user,
            &WriteOptions::backup_to(store.clone()),
            BackupReason::Restore,
        )
        .await?;
    let backup_id = now.backup.map(|b| b.id);
    journal.intent(UploadIntent {
        run: run.to_string(),
        time: String::new(),
        user_id: user.id.clone(),
        upn: user.user_principal_name.clone(),
        sha256: rec.sha256.clone(),
        bytes: rec.bytes,
        source: Some(format!("backup {id}")),
        backup_id: backup_id.clone(),
        had_photo: now.had_photo,
    })?;
    match saved {
        Some(bytes) => client.put_photo(&user.id, Bytes::from(bytes)).await?,
        None => {
            client.delete_photo(&user.id).await?;
        }
    }
    journal.record(JournalEntry {
        user_id: user.id.clone(),
        upn: user.user_principal_name.clone(),
        // Never equal to an upload's hash: the next upload of any photo is sent.
        sha256: format!("restored:{}", rec.sha256.clone().unwrap_or_default()),
        bytes: rec.bytes,
        time: String::new(),
        source: Some(format!("backup {id}")),
        backup_id: backup_id.clone(),
        run: Some(run.to_string()),
    })?;
    Ok((rec.had_photo, backup_id))
}
