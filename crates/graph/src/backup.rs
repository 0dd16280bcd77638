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
//! back. Photo file, then its folder, then the index line are fsync'd before the write goes out.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Utc;
use crate::GraphError;

const INDEX: &str = "index.jsonl";
const PHOTOS: &str = "photos";

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupReason {
    Replace,
    Remove,
    Restore,
}

/// One line of `index.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudBackupRecord {
    /// UTC time, process id, sequence number. Sorts by time.
    pub id: String,
    pub time: String,
    /// Entra object id: stable across UPN changes.
    pub user_id: String,
    pub upn: String,
    pub had_photo: bool,
    pub sha256: Option<String>,
    pub bytes: usize,
    pub file: Option<String>,
    pub reason: BackupReason,
}

/// A backup folder. Cheap to clone; index appends are serialised process-wide.
#[derive(Debug, Clone)]
pub struct CloudBackupStore {
    dir: PathBuf,
}

static APPEND: Mutex<()> = Mutex::new(());
static SEQ: AtomicU64 = AtomicU64::new(0);

impl CloudBackupStore {
    /// Open (creating if needed) a backup folder.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, GraphError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(dir.join(PHOTOS)).map_err(GraphError::io(&dir))?;
        Ok(CloudBackupStore { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Save `old` (`None`: the user had no photo) durably; returns the index record.
    pub fn save(
        &self,
        user_id: &str,
        upn: &str,
        old: Option<&[u8]>,
        reason: BackupReason,
    ) -> Result<CloudBackupRecord, GraphError> {
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
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(GraphError::io(&path))?;
                f.write_all(data).map_err(GraphError::io(&path))?;
                f.sync_all().map_err(GraphError::io(&path))?;
                sync_dir(&self.dir.join(PHOTOS))?;
                (Some(sha256_hex(data)), data.len(), Some(rel))
            }
            None => (None, 0, None),
        };
        let record = CloudBackupRecord {
            id,
            time: now.rfc3339(),
            user_id: user_id.to_string(),
            upn: upn.to_string(),
            had_photo: old.is_some(),
            sha256,
            bytes,
            file,
            reason,
        };
        let index = self.dir.join(INDEX);
        let mut line = serde_json::to_string(&record)
            .map_err(|e| GraphError::io(&index)(std::io::Error::other(e)))?;
        line.push('\n');
        let _guard = APPEND.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&index)
            .map_err(GraphError::io(&index))?;
        f.write_all(line.as_bytes())
            .map_err(GraphError::io(&index))?;
        f.sync_data().map_err(GraphError::io(&index))?;
        Ok(record)
    }

    /// Every record, oldest first (a torn final line is ignored).
    pub fn records(&self) -> Result<Vec<CloudBackupRecord>, GraphError> {
        read_jsonl(&self.dir.join(INDEX))
    }

    /// The newest backup of this user (by object id) taken before a replace or removal.
    pub fn latest_for(&self, user_id: &str) -> Result<CloudBackupRecord, GraphError> {
        self.records()?
            .into_iter()
            .rev()
            .find(|r| r.user_id.eq_ignore_ascii_case(user_id) && r.reason != BackupReason::Restore)
            .ok_or_else(|| GraphError::BackupNotFound(format!("user {user_id}")))
    }

    /// The record with this id.
    pub fn get(&self, id: &str) -> Result<CloudBackupRecord, GraphError> {
        self.records()?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| GraphError::BackupNotFound(format!("id {id}")))
    }

    /// The saved bytes (`None`: the user had no photo), checked against the SHA-256.
    pub fn load(&self, record: &CloudBackupRecord) -> Result<Option<Vec<u8>>, GraphError> {
        if !record.had_photo {
            return Ok(None);
        }
        let rel = record.file.as_deref().unwrap_or("");
        if rel.is_empty() || rel.contains("..") || Path::new(rel).is_absolute() {
            return Err(GraphError::BadRecord {
                path: self.dir.join(INDEX),
                line: 0,
                reason: format!("record {} names no usable file: {rel:?}", record.id),
            });
        }
        let path = self.dir.join(rel);
        let data = fs::read(&path).map_err(GraphError::io(&path))?;
        let found = sha256_hex(&data);
        let expected = record.sha256.clone().unwrap_or_default();
        if found != expected {
            return Err(GraphError::BackupCorrupt {
                id: record.id.clone(),
                path,
                expected,
                found,
            });
        }
        Ok(Some(data))
    }
}

/// Read a JSON-lines file of `T`, oldest first. Missing file = empty; a torn final line (crash
/// mid-append) is ignored; any other bad line is an error.
pub(crate) fn read_jsonl<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Vec<T>, GraphError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(GraphError::io(path)(e)),
    };
    let lines: Vec<String> = BufReader::new(f)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(GraphError::io(path))?;
    let last = lines.len();
    let mut out = Vec::with_capacity(last);
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(line) {
            Ok(r) => out.push(r),
            Err(_) if n + 1 == last => {}
            Err(e) => {
                return Err(GraphError::BadRecord {
                    path: path.to_path_buf(),
                    line: n + 1,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), GraphError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(GraphError::io(dir))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    crate::auth::hex(&Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

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
