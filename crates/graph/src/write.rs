//! Photo writes with backups: replace, remove and restore a user's cloud photo, saving the
//! current one first (see [`crate::backup`]).

use bytes::Bytes;
use serde::Serialize;

use crate::backup::{BackupReason, CloudBackupRecord, CloudBackupStore};
use crate::client::{check_photo, GraphClient, User};
use crate::GraphError;

/// Where backups go. There is no default: writing without a backup must be asked for.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub backup: Option<CloudBackupStore>,
}

impl WriteOptions {
    /// Back up to `store` before every write.
    pub fn backup_to(store: CloudBackupStore) -> Self {
        WriteOptions {
            backup: Some(store),
        }
    }
    /// Write without backups (the old photo is lost).
    pub fn no_backup() -> Self {
        WriteOptions { backup: None }
    }
}

/// What a write did.
#[derive(Debug, Clone, Serialize)]
pub struct WriteOutcome {
    /// The backup taken first (none with [`WriteOptions::no_backup`]).
    pub backup: Option<CloudBackupRecord>,
    /// Whether there was a photo before.
    pub had_photo: Option<bool>,
}

/// Which backup to restore.
#[derive(Debug, Clone)]
pub enum RestoreFrom {
    /// The newest backup of the user taken before a replace or removal.
    Latest,
    /// A backup by id.
    Id(String),
}

impl GraphClient {
    /// Save the user's current photo (or that there is none) to the backup folder, if any.
    pub(crate) async fn backup_current(
        &self,
        user: &User,
        opts: &WriteOptions,
        reason: BackupReason,
    ) -> Result<WriteOutcome, GraphError> {
        match &opts.backup {
            None => Ok(WriteOutcome {
                backup: None,
                had_photo: None,
            }),
            Some(store) => {
                let old = self.get_photo(&user.id).await?;
                let rec =
                    store.save(&user.id, &user.user_principal_name, old.as_deref(), reason)?;
                Ok(WriteOutcome {
                    had_photo: Some(old.is_some()),
                    backup: Some(rec),
                })
            }
        }
    }

    /// Back up the current photo, then upload `jpeg` (≤ 4 MB JPEG; checked before anything
    /// is sent, the backup included).
    pub async fn set_photo(
        &self,
        user: &User,
        jpeg: Bytes,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, GraphError> {
        check_photo(&jpeg)?;
        let out = self
            .backup_current(user, opts, BackupReason::Replace)
            .await?;
        self.put_photo(&user.id, jpeg).await?;
        Ok(out)
    }

    /// Back up the current photo, then delete it.
    pub async fn remove_photo(
        &self,
        user: &User,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, GraphError> {
        let out = self
            .backup_current(user, opts, BackupReason::Remove)
            .await?;
        let had = self.delete_photo(&user.id).await?;
        Ok(WriteOutcome {
            had_photo: out.had_photo.or(Some(had)),
            ..out
        })
    }

    /// Put a backup back (the photo it saved, or no photo). The current photo is backed up
    /// first (reason `restore`), so a restore can itself be undone by id.
    pub async fn restore_photo(
        &self,
        user: &User,
        store: &CloudBackupStore,
        from: &RestoreFrom,
        opts: &WriteOptions,
    ) -> Result<(CloudBackupRecord, WriteOutcome), GraphError> {
        let record = match from {
            RestoreFrom::Latest => store.latest_for(&user.id)?,
            RestoreFrom::Id(id) => store.get(id)?,
        };
        let saved = store.load(&record)?;
        let out = self
            .backup_current(user, opts, BackupReason::Restore)
            .await?;
        match saved {
            Some(bytes) => self.put_photo(&user.id, Bytes::from(bytes)).await?,
            None => {
                self.delete_photo(&user.id).await?;
            }
        }
        Ok((record, out))
    }
}
