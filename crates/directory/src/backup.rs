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
//! Durability order: the photo file is written and fsync'd, its folder fsync'd, then the index
//! line is appended and fsync'd; only then does the caller send the LDAP modify. A crash can
//! leave an unreferenced photo file, never an index line without its bytes, and never a write
//! without a backup.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Utc;
use crate::DirectoryError;

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

/// One line of `index.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// Unique id: UTC time, process id, sequence number. Sorts by time.
    pub id: String,
    /// When the backup was taken, RFC 3339 UTC.
    pub time: String,
    /// The user's DN at the time.
    pub dn: String,
    /// objectGUID as a GUID string (AD byte order), or the entryUUID on OpenLDAP; stable across
    /// renames and moves, so restores find the user even if the DN changed.
    pub object_guid: Option<String>,
    pub sam_account_name: Option<String>,
    /// Whether the user had a photo. `false` means restore = remove the attribute.
    pub had_photo: bool,
    /// Hex SHA-256 of the saved bytes (when there was a photo).
    pub sha256: Option<String>,
    /// Size of the saved bytes (0 when there was none).
    pub bytes: usize,
    /// Saved bytes, relative to the backup folder (when there was a photo).
    pub file: Option<String>,
    pub reason: BackupReason,
}

/// Who a backup is about: enough to find the user again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject<'a> {
    pub dn: &'a str,
    pub object_guid: Option<&'a str>,
    pub sam_account_name: Option<&'a str>,
}

/// A backup folder. Cheap to clone and share between concurrent writers: index appends are
/// serialised by a process-wide lock, and ids carry a process-wide sequence number.
#[derive(Debug, Clone)]
pub struct BackupStore {
    dir: PathBuf,
}

static APPEND: Mutex<()> = Mutex::new(());
static SEQ: AtomicU64 = AtomicU64::new(0);

impl BackupStore {
    /// Open (creating if needed) a backup folder.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, DirectoryError> {
        let dir = dir.as_ref().to_path_buf();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DirectoryError::BackupIo { path, source }
        };
        fs::create_dir_all(dir.join(PHOTOS)).map_err(io(&dir))?;
        let index = dir.join(INDEX);
        if !index.exists() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&index)
                .map_err(io(&index))?;
            f.sync_all().map_err(io(&index))?;
            sync_dir(&dir)?;
        }
        Ok(BackupStore { dir })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Save `old` (the current value, or `None` when there is no photo) for `who`, durably.
    /// Returns the record appended to the index.
    pub fn save(
        &self,
        who: &Subject<'_>,
        old: Option<&[u8]>,
        reason: BackupReason,
    ) -> Result<BackupRecord, DirectoryError> {
        let now = Utc::now();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("{}-{}-{seq:06}", now.compact(), std::process::id());
        let (sha256, bytes, file) = match old {
            Some(data) => {
                let ext = if data.starts_with(&[0xff, 0xd8]) {
                    "jpg"
                } else {
                    "bin"
                };
                let rel = format!("{PHOTOS}/{id}.{ext}");
                let path = self.dir.join(&rel);
                let io = |source| DirectoryError::BackupIo {
                    path: path.clone(),
                    source,
                };
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(io)?;
                f.write_all(data).map_err(io)?;
                f.sync_all().map_err(io)?;
                sync_dir(&self.dir.join(PHOTOS))?;
                (Some(sha256_hex(data)), data.len(), Some(rel))
            }
            None => (None, 0, None),
        };
        let record = BackupRecord {
            id,
            time: now.rfc3339(),
            dn: who.dn.to_string(),
            object_guid: who.object_guid.map(str::to_string),
            sam_account_name: who.sam_account_name.map(str::to_string),
            had_photo: old.is_some(),
            sha256,
            bytes,
            file,
            reason,
        };
        let mut line = serde_json::to_string(&record).map_err(|e| DirectoryError::BackupIo {
            path: self.dir.join(INDEX),
            source: std::io::Error::other(e),
        })?;
        line.push('\n');
        let index = self.dir.join(INDEX);
        let io = |source| DirectoryError::BackupIo {
            path: index.clone(),
            source,
        };
        let _guard = APPEND.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&index)
            .map_err(io)?;
        f.write_all(line.as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)?;
        Ok(record)
    }

    /// Every record, oldest first. A torn last line (crash mid-append) is ignored; any other
    /// bad line is an error.
    pub fn records(&self) -> Result<Vec<BackupRecord>, DirectoryError> {
        let index = self.dir.join(INDEX);
        let f = match File::open(&index) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(DirectoryError::BackupIo {
                    path: index,
                    source,
                })
            }
        };
        let lines: Vec<String> = BufReader::new(f)
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|source| DirectoryError::BackupIo {
                path: index.clone(),
                source,
            })?;
        let mut out = Vec::with_capacity(lines.len());
        let last = lines.len();
        for (n, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<BackupRecord>(line) {
                Ok(r) => out.push(r),
                Err(_) if n + 1 == last => {} // torn final append
                Err(e) => {
                    return Err(DirectoryError::BackupIndex {
                        path: index.clone(),
                        line: n + 1,
                        reason: e.to_string(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// The record with this id.
    pub fn get(&self, id: &str) -> Result<BackupRecord, DirectoryError> {
        self.records()?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| DirectoryError::BackupNotFound(format!("id {id}")))
    }

    /// Records about this user (matched by objectGUID when both sides have one, else by DN,
    /// case-insensitively), oldest first.
    pub fn records_for(&self, who: &Subject<'_>) -> Result<Vec<BackupRecord>, DirectoryError> {
        Ok(self
            .records()?
            .into_iter()
            .filter(|r| same_subject(r, who))
            .collect())
    }

    /// The newest backup of this user taken before a replace or a removal (backups taken by a
    /// restore are skipped, so restoring twice is idempotent; restore those by id).
    pub fn latest_for(&self, who: &Subject<'_>) -> Result<BackupRecord, DirectoryError> {
        self.records_for(who)?
            .into_iter()
            .rev()
            .find(|r| r.reason != BackupReason::Restore)
            .ok_or_else(|| DirectoryError::BackupNotFound(format!("user {}", who.dn)))
    }

    /// The saved bytes of `record` (`None` when the user had no photo), checked against the
    /// recorded SHA-256.
    pub fn load(&self, record: &BackupRecord) -> Result<Option<Vec<u8>>, DirectoryError> {
        if !record.had_photo {
            return Ok(None);
        }
        let rel = record
            .file
            .as_deref()
            .ok_or_else(|| DirectoryError::BackupIndex {
                path: self.dir.join(INDEX),
                line: 0,
                reason: format!("record {} has a photo but no file", record.id),
            })?;
        if rel.contains("..") || Path::new(rel).is_absolute() {
            return Err(DirectoryError::BackupIndex {
                path: self.dir.join(INDEX),
                line: 0,
                reason: format!(
                    "record {} names a file outside the folder: {rel}",
                    record.id
                ),
            });
        }
        let path = self.dir.join(rel);
        let data = fs::read(&path).map_err(|source| DirectoryError::BackupIo {
            path: path.clone(),
            source,
        })?;
        let found = sha256_hex(&data);
        let expected = record.sha256.clone().unwrap_or_default();
        if found != expected {
            return Err(DirectoryError::BackupCorrupt {
                id: record.id.clone(),
                path,
                expected,
                found,
            });
        }
        Ok(Some(data))
    }
}

fn same_subject(r: &BackupRecord, who: &Subject<'_>) -> bool {
    match (r.object_guid.as_deref(), who.object_guid) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => r.dn.eq_ignore_ascii_case(who.dn),
    }
}

fn sync_dir(dir: &Path) -> Result<(), DirectoryError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| DirectoryError::BackupIo {
            path: dir.to_path_buf(),
            source,
        })
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(dn: &str) -> Subject<'_> {
        Subject {
            dn,
            object_guid: None,
            sam_account_name: Some("x"),
        }
    }

    #[test]
    fn save_load_and_latest() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = BackupStore::open(tmp.path()).expect("open");
        let a = store
            .save(
                &who("CN=A,DC=x"),
                Some(b"\xff\xd8one\xff\xd9"),
                BackupReason::Replace,
            )
            .expect("save");
        let b = store
            .save(&who("cn=a,dc=x"), None, BackupReason::Remove)
            .expect("save");
        let c = store
            .save(&who("CN=A,DC=x"), Some(b"two"), BackupReason::Restore)
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
            .save(
                &Subject {
                    dn: "CN=Old,DC=x",
                    object_guid: Some(g),
                    sam_account_name: None,
                },
                None,
                BackupReason::Replace,
            )
            .expect("save");
        let moved = Subject {
            dn: "CN=New,OU=Moved,DC=x",
            object_guid: Some(g),
            sam_account_name: None,
        };
        assert_eq!(store.latest_for(&moved).expect("latest").id, r.id);
    }

    #[test]
    fn corrupt_bytes_are_not_restored_and_torn_lines_ignored() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = BackupStore::open(tmp.path()).expect("open");
        let r = store
            .save(&who("CN=A"), Some(b"abc"), BackupReason::Replace)
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

    #[test]
    fn ids_are_unique_under_concurrency() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = BackupStore::open(tmp.path()).expect("open");
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let dn = format!("CN=u{t}-{i}");
                        store
                            .save(&who(&dn), Some(dn.as_bytes()), BackupReason::Replace)
                            .expect("save");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("join");
        }
        let recs = store.records().expect("records");
        assert_eq!(recs.len(), 100);
        let ids: std::collections::HashSet<_> = recs.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 100);
        for r in &recs {
            assert_eq!(
                store.load(r).expect("load").as_deref(),
                Some(r.dn.as_bytes())
            );
        }
    }
}
