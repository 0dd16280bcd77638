//! The cloud backup folder: the current Graph photo of a user (or the fact that there was none)
//! is saved and fsync'd here before a replace or a removal is sent, so it can be put back.
//!
//! Same layout and durability order as the AD backups in `photobulk-directory`:
//!
//! ```text
//! DIR/index.jsonl        one CloudBackupRecord per line, appended, in the order taken
//! DIR/photos/ID.jpg      the saved bytes (".bin" when they are not a JPEG)
//! ```
//!
//! A line of `index.jsonl` (one line in the file):
//!
//! ```json
//! {"id":"20261125T120000000000001Z-4242-000001","time":"2026-11-25T12:00:00.000000Z",
//!  "user_id":"5f0b7c2e-…","upn":"john.smith@contoso.com","had_photo":true,
//!  "sha256":"9f86d0…","bytes":48123,"file":"photos/20261125T…-000001.jpg","reason":"replace"}
//! ```
//!
//! The saved bytes are what Graph returned (its re-encoded copy), which is what restoring puts
//! back. Photo file, then its folder, then the index line are fsync'd before the write goes out:
//! the folder is [`photobulk_store::BackupFolder`], shared with the AD target.

use std::path::Path;

use serde::{Deserialize, Serialize};

use photobulk_store::BackupFolder;

use crate::GraphError;

pub use photobulk_store::{sha256_hex, BackupReason};

/// One line of `index.jsonl`: the shared record, naming the user as [`CloudSubject`] does.
pub type CloudBackupRecord = photobulk_store::BackupRecord<CloudSubject>;

/// Who a cloud backup is about, as written in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudSubject {
    /// Entra object id: stable across UPN changes.
    pub user_id: String,
    pub upn: String,
}

/// A backup folder ([`photobulk_store::BackupFolder`] with cloud records). Cheap to clone.
#[derive(Debug, Clone)]
pub struct CloudBackupStore {
    folder: BackupFolder<CloudSubject>,
}

photobulk_store::store_error_into!(GraphError {
    Io => Io,
    BadLine => BadRecord,
    Corrupt => BackupCorrupt,
});

impl CloudBackupStore {
    /// Open (creating if needed) a backup folder.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, GraphError> {
        Ok(CloudBackupStore {
            folder: BackupFolder::open(dir)?,
        })
    }

    pub fn dir(&self) -> &Path {
        self.folder.dir()
    }

    /// Save `old` (`None`: the user had no photo) durably; returns the index record.
    pub fn save(
        &self,
        user_id: &str,
        upn: &str,
        old: Option<&[u8]>,
        reason: BackupReason,
    ) -> Result<CloudBackupRecord, GraphError> {
        let subject = CloudSubject {
            user_id: user_id.to_string(),
            upn: upn.to_string(),
        };
        Ok(self.folder.save(old, subject, reason)?)
    }

    /// Every record, oldest first (a torn final line is ignored).
    pub fn records(&self) -> Result<Vec<CloudBackupRecord>, GraphError> {
        Ok(self.folder.records()?)
    }

    /// The newest backup of this user (by object id) taken before a replace or removal.
    pub fn latest_for(&self, user_id: &str) -> Result<CloudBackupRecord, GraphError> {
        self.folder
            .latest(|w| w.user_id.eq_ignore_ascii_case(user_id))?
            .ok_or_else(|| GraphError::BackupNotFound(format!("user {user_id}")))
    }

    /// The record with this id.
    pub fn get(&self, id: &str) -> Result<CloudBackupRecord, GraphError> {
        self.folder
            .get(id)?
            .ok_or_else(|| GraphError::BackupNotFound(format!("id {id}")))
    }

    /// The saved bytes (`None`: the user had no photo), checked against the SHA-256.
    pub fn load(&self, record: &CloudBackupRecord) -> Result<Option<Vec<u8>>, GraphError> {
        Ok(self.folder.load(record)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn save_load_latest_and_corruption() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = CloudBackupStore::open(tmp.path()).expect("open");
        let a = store
            .save(
                "id-1",
                "a@x",
                Some(b"\xff\xd8old\xff\xd9"),
                BackupReason::Replace,
            )
            .expect("save");
        let b = store
            .save("id-1", "a@x", None, BackupReason::Remove)
            .expect("save");
        store
            .save("ID-1", "a@x", Some(b"zz"), BackupReason::Restore)
            .expect("save");
        assert_eq!(store.latest_for("id-1").expect("latest").id, b.id);
        assert_eq!(store.load(&b).expect("load"), None);
        assert_eq!(
            store.load(&a).expect("load").as_deref(),
            Some(&b"\xff\xd8old\xff\xd9"[..])
        );
        assert!(matches!(
            store.latest_for("id-2"),
            Err(GraphError::BackupNotFound(_))
        ));
        fs::write(tmp.path().join(a.file.as_deref().expect("file")), b"x").expect("tamper");
        assert!(matches!(
            store.load(&a),
            Err(GraphError::BackupCorrupt { .. })
        ));
        assert_eq!(store.records().expect("records").len(), 3);
    }
}
