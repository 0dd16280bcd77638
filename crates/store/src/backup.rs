//! The backup folder core shared by the AD and Graph targets: every old photo (or the fact that
//! there was none) is saved and fsync'd before a write is sent, so any change can be undone byte
//! for byte. Each target names its users its own way (the `W` of [`BackupRecord`]: DN and
//! objectGUID on-premises, object id and UPN in the cloud); the record, layout, ids, durability
//! order and checks are here, once.
//!
//! ```text
//! DIR/index.jsonl        one record per line, appended, in the order taken
//! DIR/photos/ID.jpg      the saved bytes (".bin" when they are not a JPEG)
//! ```
//!
//! Durability order: the photo file is written and fsync'd, its folder fsync'd, then the index
//! line is appended and fsync'd; only then does the caller send the write. A crash can leave an
//! unreferenced photo file, never an index line without its bytes, and never a write without a
//! backup.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Utc;
use crate::jsonl::{append_synced, open_append, read_jsonl, sync_dir};
use crate::StoreError;

const INDEX: &str = "index.jsonl";
const PHOTOS: &str = "photos";

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupReason {
    /// Before a replace.
    Replace,
    /// Before a removal.
    Remove,
    /// Before a restore put an older value back.
    Restore,
}

/// One line of `index.jsonl`: what was saved, about whom, and why. `W` is the target's way of
/// naming a user (DN and objectGUID on-premises, object id and UPN in the cloud); its fields
/// are written inline, between `time` and `had_photo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord<W> {
    /// Unique id: UTC time, process id, process-wide sequence number. Sorts by time.
    pub id: String,
    /// When the backup was taken, RFC 3339 UTC.
    pub time: String,
    /// Who the photo belongs to.
    #[serde(flatten)]
    pub who: W,
    /// Whether there was a photo (`false`: restoring removes it).
    pub had_photo: bool,
    /// Hex SHA-256 of the saved bytes (when there was a photo).
    pub sha256: Option<String>,
    /// Size of the saved bytes (0 when there was none).
    pub bytes: usize,
    /// Saved bytes, relative to the backup folder (when there was a photo).
    pub file: Option<String>,
    pub reason: BackupReason,
}

/// A backup folder whose records name users as `W` does. Cheap to clone and share between
/// concurrent writers: index appends are serialised by a process-wide lock.
pub struct BackupFolder<W> {
    dir: PathBuf,
    _who: PhantomData<fn() -> W>,
}

impl<W> Clone for BackupFolder<W> {
    fn clone(&self) -> Self {
        BackupFolder {
            dir: self.dir.clone(),
            _who: PhantomData,
        }
    }
}

impl<W> fmt::Debug for BackupFolder<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupFolder")
            .field("dir", &self.dir)
            .finish()
    }
}

static APPEND: Mutex<()> = Mutex::new(());
static SEQ: AtomicU64 = AtomicU64::new(0);

impl<W: Serialize + DeserializeOwned> BackupFolder<W> {
    /// Open a backup folder. Nothing is created until the first [`BackupFolder::save`] (a plan
    /// or `-WhatIf` that opens one leaves no folder behind); a path that exists and is not a
    /// folder is refused here, before any write is attempted.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::io(&dir)(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a folder",
            )));
        }
        Ok(BackupFolder {
            dir,
            _who: PhantomData,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index file.
    pub fn index_path(&self) -> PathBuf {
        self.dir.join(INDEX)
    }

    /// Save `old` (`who`'s current value, or `None` when there is none) durably, then append
    /// its record. Returns that record.
    pub fn save(
        &self,
        old: Option<&[u8]>,
        who: W,
        reason: BackupReason,
    ) -> Result<BackupRecord<W>, StoreError> {
        let now = Utc::now();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("{}-{}-{seq:06}", now.compact(), std::process::id());
        let photos = self.dir.join(PHOTOS);
        if !photos.is_dir() {
            fs::create_dir_all(&photos).map_err(StoreError::io(&photos))?;
            sync_dir(&self.dir)?;
        }
        let (sha256, bytes, file) = match old {
            Some(data) => {
                let ext = if data.starts_with(&[0xff, 0xd8]) {
                    "jpg"
                } else {
                    "bin"
                };
                let rel = format!("{PHOTOS}/{id}.{ext}");
                let path = self.dir.join(&rel);
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(StoreError::io(&path))?;
                f.write_all(data).map_err(StoreError::io(&path))?;
                f.sync_all().map_err(StoreError::io(&path))?;
                sync_dir(&self.dir.join(PHOTOS))?;
                (Some(sha256_hex(data)), data.len(), Some(rel))
            }
            None => (None, 0, None),
        };
        let record = BackupRecord {
            id,
            time: now.rfc3339(),
            who,
            had_photo: old.is_some(),
            sha256,
            bytes,
            file,
            reason,
        };
        let index = self.index_path();
        let _guard = APPEND.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = open_append(&index)?;
        append_synced(&mut f, &index, &record)?;
        Ok(record)
    }

    /// Every record, oldest first. A torn last line (crash mid-append) is ignored; any other
    /// bad line is an error.
    pub fn records(&self) -> Result<Vec<BackupRecord<W>>, StoreError> {
        read_jsonl(&self.index_path())
    }

    /// The record with this id.
    pub fn get(&self, id: &str) -> Result<Option<BackupRecord<W>>, StoreError> {
        Ok(self.records()?.into_iter().find(|r| r.id == id))
    }

    /// The newest record for which `is_user` holds, taken before a replace or a removal
    /// (backups taken by a restore are skipped, so restoring twice is idempotent).
    pub fn latest(
        &self,
        is_user: impl Fn(&W) -> bool,
    ) -> Result<Option<BackupRecord<W>>, StoreError> {
        Ok(self
            .records()?
            .into_iter()
            .rev()
            .find(|r| r.reason != BackupReason::Restore && is_user(&r.who)))
    }

    /// The saved bytes of `record` (`None` when there was no photo), checked against the
    /// recorded SHA-256. A record naming a file outside the folder is refused.
    pub fn load(&self, record: &BackupRecord<W>) -> Result<Option<Vec<u8>>, StoreError> {
        if !record.had_photo {
            return Ok(None);
        }
        let rel = record.file.as_deref().unwrap_or("");
        if rel.is_empty() || rel.contains("..") || Path::new(rel).is_absolute() {
            return Err(StoreError::BadLine {
                path: self.index_path(),
                line: 0,
                reason: format!("record {} names no usable file: {rel:?}", record.id),
            });
        }
        let path = self.dir.join(rel);
        let data = fs::read(&path).map_err(StoreError::io(&path))?;
        let found = sha256_hex(&data);
        let expected = record.sha256.clone().unwrap_or_default();
        if found != expected {
            return Err(StoreError::Corrupt {
                id: record.id.clone(),
                path,
                expected,
                found,
            });
        }
        Ok(Some(data))
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct Who {
        name: String,
    }

    type Rec = BackupRecord<Who>;

    #[test]
    fn open_creates_nothing_until_the_first_save() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("backups");
        let f = BackupFolder::<Who>::open(&dir).expect("open");
        assert!(
            !dir.exists(),
            "a plan that opens the folder leaves nothing behind"
        );
        assert!(f.records().expect("records of a missing folder").is_empty());
        let r = save(&f, "a", Some(b"\xff\xd8old"), BackupReason::Replace);
        assert_eq!(
            f.load(&r).expect("load").as_deref(),
            Some(&b"\xff\xd8old"[..])
        );
        let file = tmp.path().join("a-file");
        std::fs::write(&file, b"x").expect("write");
        assert!(
            BackupFolder::<Who>::open(&file).is_err(),
            "a file is not a backup folder"
        );
    }

    fn save(f: &BackupFolder<Who>, who: &str, old: Option<&[u8]>, reason: BackupReason) -> Rec {
        let who = Who { name: who.into() };
        f.save(old, who, reason).expect("save")
    }

    #[test]
    fn save_load_latest_get_and_corruption() {
        let tmp = tempfile::tempdir().expect("tmp");
        let f = BackupFolder::<Who>::open(tmp.path()).expect("open");
        assert!(
            !tmp.path().join(INDEX).exists(),
            "the index is made by the first save"
        );
        let a = save(&f, "a", Some(b"\xff\xd8one\xff\xd9"), BackupReason::Replace);
        assert!(tmp.path().join(INDEX).exists());
        let b = save(&f, "a", None, BackupReason::Remove);
        let c = save(&f, "a", Some(b"two"), BackupReason::Restore);
        assert!(a.file.as_deref().is_some_and(|p| p.ends_with(".jpg")));
        assert!(c.file.as_deref().is_some_and(|p| p.ends_with(".bin")));
        assert_eq!(
            f.load(&a).expect("load").as_deref(),
            Some(&b"\xff\xd8one\xff\xd9"[..])
        );
        assert_eq!(f.load(&b).expect("load"), None);
        assert_eq!(
            f.latest(|w| w.name == "a").expect("latest"),
            Some(b.clone())
        );
        assert_eq!(f.latest(|w| w.name == "z").expect("latest"), None);
        assert_eq!(f.get(&c.id).expect("get"), Some(c.clone()));
        let again = BackupFolder::<Who>::open(tmp.path()).expect("reopen");
        assert_eq!(again.records().expect("records"), vec![a.clone(), b, c]);
        assert_eq!(
            a.sha256.as_deref(),
            Some(sha256_hex(b"\xff\xd8one\xff\xd9").as_str())
        );
        fs::write(tmp.path().join(a.file.as_deref().expect("file")), b"x").expect("tamper");
        assert!(matches!(f.load(&a), Err(StoreError::Corrupt { .. })));
        let mut evil = a.clone();
        evil.file = Some("../../etc/passwd".into());
        assert!(matches!(f.load(&evil), Err(StoreError::BadLine { .. })));
    }

    #[test]
    fn ids_are_unique_under_concurrency() {
        let tmp = tempfile::tempdir().expect("tmp");
        let f = BackupFolder::<Who>::open(tmp.path()).expect("open");
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let f = f.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let who = format!("u{t}-{i}");
                        save(&f, &who, Some(who.as_bytes()), BackupReason::Replace);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("join");
        }
        let recs = f.records().expect("records");
        assert_eq!(recs.len(), 100);
        let ids: std::collections::HashSet<_> = recs.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 100);
        for r in &recs {
            assert_eq!(
                f.load(r).expect("load").as_deref(),
                Some(r.who.name.as_bytes())
            );
        }
    }

    #[test]
    fn hex_digits() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
