//! The backup folder: every old photo (or the fact that there was none) is saved and fsync'd
//! here before a write is sent, so any change can be undone byte for byte.
//!
//! Layout of a backup folder:
//!
//! ```text
//! DIR/index.jsonl        one BackupRecord per line, appended, in the order taken
//! DIR/photos/ID.jpg      the saved bytes (".bin" when they are not a JPEG)
//! ```
//!
//! Each line of `index.jsonl` is a [`BackupRecord`] as JSON, for example:
//!
//! ```json
//! {"id":"20261122T224005000000007Z-4242-000001","time":"2026-11-22T22:40:05.000000Z",
//!  "dn":"CN=John Smith,OU=People,DC=photobulk,DC=test",
//!  "object_guid":"5f0b7c2e-1d2a-4e43-9f3a-0b1c2d3e4f50","sam_account_name":"john.smith",
//!  "had_photo":true,"sha256":"9f86d0…","bytes":8123,"file":"photos/20261122T…-000001.jpg",
//!  "reason":"replace"}
//! ```
//!
//! (one line in the file; wrapped here). `had_photo: false` records carry `sha256: null`,
//! `bytes: 0`, `file: null`: restoring them removes the attribute.
//!
//! The folder itself (ids, layout, durability, checks on load) is
//! [`photobulk_store::BackupFolder`], shared with the Graph target; this module is the AD record
//! and how a user is matched (objectGUID, else DN).
//!
//! Durability order: the photo file is written and fsync'd, its folder fsync'd, then the index
//! line is appended and fsync'd; only then does the caller send the LDAP modify. A crash can
//! leave an unreferenced photo file, never an index line without its bytes, and never a write
//! without a backup.

use std::path::Path;

use serde::{Deserialize, Serialize};

use photobulk_store::BackupFolder;

use crate::DirectoryError;

pub use photobulk_store::{sha256_hex, BackupReason};

/// One line of `index.jsonl`: the shared record, naming the user as [`AdSubject`] does.
pub type BackupRecord = photobulk_store::BackupRecord<AdSubject>;

/// Who an AD backup is about, as written in its record: enough to find the user again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdSubject {
    /// The user's DN at the time.
    pub dn: String,
    /// objectGUID as a GUID string (AD byte order), or the entryUUID on OpenLDAP; stable across
    /// renames and moves, so restores find the user even if the DN changed.
    pub object_guid: Option<String>,
    pub sam_account_name: Option<String>,
}

impl AdSubject {
    /// Whether `self` and `other` are the same user: by objectGUID when both have one (it
    /// survives renames and moves), else by DN, case-insensitively.
    pub fn is_same_user(&self, other: &AdSubject) -> bool {
        match (self.object_guid.as_deref(), other.object_guid.as_deref()) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => self.dn.eq_ignore_ascii_case(&other.dn),
        }
    }
}

/// A backup folder ([`photobulk_store::BackupFolder`] with AD records). Cheap to clone and
/// share between concurrent writers.
#[derive(Debug, Clone)]
pub struct BackupStore {
    folder: BackupFolder<AdSubject>,
}

photobulk_store::store_error_into!(DirectoryError {
    Io => BackupIo,
    BadLine => BackupIndex,
    Corrupt => BackupCorrupt,
});

impl BackupStore {
    /// Open (creating if needed) a backup folder.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, DirectoryError> {
        Ok(BackupStore {
            folder: BackupFolder::open(dir)?,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        self.folder.dir()
    }

    /// Save `old` (the current value, or `None` when there is no photo) for `who`, durably.
    /// Returns the record appended to the index.
    pub fn save(
        &self,
        who: AdSubject,
        old: Option<&[u8]>,
        reason: BackupReason,
    ) -> Result<BackupRecord, DirectoryError> {
        Ok(self.folder.save(old, who, reason)?)
    }

    /// Every record, oldest first. A torn last line (crash mid-append) is ignored; any other
    /// bad line is an error.
    pub fn records(&self) -> Result<Vec<BackupRecord>, DirectoryError> {
        Ok(self.folder.records()?)
    }

    /// The record with this id.
    pub fn get(&self, id: &str) -> Result<BackupRecord, DirectoryError> {
        self.folder
            .get(id)?
            .ok_or_else(|| DirectoryError::BackupNotFound(format!("id {id}")))
    }

    /// Records about this user (matched by objectGUID when both sides have one, else by DN,
    /// case-insensitively), oldest first.
    pub fn records_for(&self, who: &AdSubject) -> Result<Vec<BackupRecord>, DirectoryError> {
        Ok(self
            .records()?
            .into_iter()
            .filter(|r| r.who.is_same_user(who))
            .collect())
    }

    /// The newest backup of this user taken before a replace or a removal (backups taken by a
    /// restore are skipped, so restoring twice is idempotent; restore those by id).
    pub fn latest_for(&self, who: &AdSubject) -> Result<BackupRecord, DirectoryError> {
        self.folder
            .latest(|w| w.is_same_user(who))?
            .ok_or_else(|| DirectoryError::BackupNotFound(format!("user {}", who.dn)))
    }

    /// The saved bytes of `record` (`None` when the user had no photo), checked against the
    /// recorded SHA-256.
    pub fn load(&self, record: &BackupRecord) -> Result<Option<Vec<u8>>, DirectoryError> {
        Ok(self.folder.load(record)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};
    use std::io::Write;

    const INDEX: &str = "index.jsonl";

    fn who(dn: &str) -> AdSubject {
        AdSubject {
            dn: dn.to_string(),
            object_guid: None,
            sam_account_name: Some("x".to_string()),
        }
    }

    fn with_guid(dn: &str, guid: &str) -> AdSubject {
        AdSubject {
            dn: dn.to_string(),
            object_guid: Some(guid.to_string()),
            sam_account_name: None,
        }
    }

    #[test]
    fn save_load_and_latest() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = BackupStore::open(tmp.path()).expect("open");
        let a = store
            .save(
                who("CN=A,DC=x"),
                Some(b"\xff\xd8one\xff\xd9"),
                BackupReason::Replace,
            )
            .expect("save");
        let b = store
            .save(who("cn=a,dc=x"), None, BackupReason::Remove)
            .expect("save");
        let c = store
            .save(who("CN=A,DC=x"), Some(b"two"), BackupReason::Restore)
            .expect("save");
        assert!(a.file.as_deref().is_some_and(|f| f.ends_with(".jpg")));
        assert!(c.file.as_deref().is_some_and(|f| f.ends_with(".bin")));
        assert_eq!(
            store.load(&a).expect("load").as_deref(),
            Some(&b"\xff\xd8one\xff\xd9"[..])
        );
        assert_eq!(store.load(&b).expect("load"), None);
        assert_eq!(store.records().expect("records").len(), 3);
        // restore-made backups are skipped by latest_for, found by id
        assert_eq!(
            store.latest_for(&who("CN=A,DC=X")).expect("latest").id,
            b.id
        );
        assert_eq!(store.get(&c.id).expect("get"), c);
        assert!(matches!(
            store.latest_for(&who("CN=B,DC=x")),
            Err(DirectoryError::BackupNotFound(_))
        ));
        // reopening sees the same index
        let again = BackupStore::open(tmp.path()).expect("reopen");
        assert_eq!(again.records().expect("records"), vec![a.clone(), b, c]);
        assert_eq!(
            a.sha256.as_deref(),
            Some(sha256_hex(b"\xff\xd8one\xff\xd9").as_str())
        );
    }

    #[test]
    fn guid_matching_survives_renames() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = BackupStore::open(tmp.path()).expect("open");
        let g = "0a1b2c3d-0000-0000-0000-000000000001";
        let r = store
            .save(with_guid("CN=Old,DC=x", g), None, BackupReason::Replace)
            .expect("save");
        let moved = with_guid("CN=New,OU=Moved,DC=x", g);
        assert_eq!(store.latest_for(&moved).expect("latest").id, r.id);
        // without a GUID on one side, the DN decides
        assert!(!moved.is_same_user(&who("CN=Old,DC=x")));
        assert!(who("cn=new,ou=moved,dc=x").is_same_user(&moved));
        assert_eq!(store.records_for(&moved).expect("records").len(), 1);
    }

    #[test]
    fn corrupt_bytes_are_not_restored_and_torn_lines_ignored() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = BackupStore::open(tmp.path()).expect("open");
        let r = store
            .save(who("CN=A"), Some(b"abc"), BackupReason::Replace)
            .expect("save");
        fs::write(tmp.path().join(r.file.as_deref().expect("file")), b"abd").expect("tamper");
        assert!(matches!(
            store.load(&r),
            Err(DirectoryError::BackupCorrupt { .. })
        ));
        let mut f = OpenOptions::new()
            .append(true)
            .open(tmp.path().join(INDEX))
            .expect("index");
        f.write_all(b"{\"id\":\"torn").expect("write");
        assert_eq!(store.records().expect("records").len(), 1);
        f.write_all(b"\n{}\n").expect("write");
        assert!(matches!(
            store.records(),
            Err(DirectoryError::BackupIndex { .. })
        ));
    }
}
