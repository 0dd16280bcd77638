//! The upload journal: one durable line per completed upload, so a bulk run that was killed or
//! failed half-way can be run again without uploading anyone twice, and so "unchanged" can be
//! decided at all (Graph re-encodes photos: its bytes and ETag never equal what was sent).
//!
//! `FILE` is JSON lines, appended and fsync'd after Graph confirmed the upload:
//!
//! ```json
//! {"user_id":"5f0b7c2e-…","upn":"john.smith@contoso.com","sha256":"9f86d0…","bytes":48123,
//!  "time":"2026-11-25T12:00:00.000000Z","source":"John.Smith.jpg","backup_id":"2026…-000001"}
//! ```
//!
//! A user counts as done with a photo when the newest line for its object id has the SHA-256 of
//! the bytes about to be sent. A crash between Graph's 200 and the append means that one user is
//! uploaded again on the next run (at most one per request in flight): at-least-once, never lost.
//!
//! This is the Graph target's own record until the engine's run journal covers cloud targets.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use photobulk_store::jsonl::JsonlLog;
use photobulk_store::Utc;

use crate::GraphError;

/// One completed upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub user_id: String,
    pub upn: String,
    /// SHA-256 of the bytes sent.
    pub sha256: String,
    pub bytes: usize,
    pub time: String,
    /// Where the photo came from (file name or caller's key).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub backup_id: Option<String>,
}

/// An open journal.
#[derive(Debug)]
pub struct UploadJournal {
    log: JsonlLog,
    done: Mutex<HashMap<String, String>>,
}

impl UploadJournal {
    /// Open (creating) the journal at `path` and read what it already records.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GraphError> {
        let (log, entries) = JsonlLog::open::<JournalEntry>(path)?;
        let done = entries
            .into_iter()
            .map(|e| (e.user_id.to_ascii_lowercase(), e.sha256))
            .collect();
        Ok(UploadJournal {
            log,
            done: Mutex::new(done),
        })
    }

    pub fn path(&self) -> &Path {
        self.log.path()
    }

    /// The SHA-256 last uploaded for this user, if any.
    pub fn uploaded(&self, user_id: &str) -> Option<String> {
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user_id.to_ascii_lowercase())
            .cloned()
    }

    /// Number of users recorded.
    pub fn len(&self) -> usize {
        self.done.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append and fsync one entry (`time` is filled in when empty).
    pub fn record(&self, mut entry: JournalEntry) -> Result<(), GraphError> {
        if entry.time.is_empty() {
            entry.time = Utc::now().rfc3339();
        }
        self.log.append(&entry)?;
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(entry.user_id.to_ascii_lowercase(), entry.sha256);
        Ok(())
    }

    /// Every entry in the file, oldest first.
    pub fn entries(&self) -> Result<Vec<JournalEntry>, GraphError> {
        Ok(self.log.read()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;

    fn entry(id: &str, sha: &str) -> JournalEntry {
        JournalEntry {
            user_id: id.into(),
            upn: format!("{id}@x"),
            sha256: sha.into(),
            bytes: 3,
            time: String::new(),
            source: None,
            backup_id: None,
        }
    }

    #[test]
    fn survives_reopen_and_torn_lines() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("sub/journal.jsonl");
        let j = UploadJournal::open(&path).expect("open");
        j.record(entry("A", "1")).expect("record");
        j.record(entry("b", "2")).expect("record");
        j.record(entry("a", "3")).expect("record");
        drop(j);
        // a crash mid-append
        let mut f = OpenOptions::new().append(true).open(&path).expect("f");
        f.write_all(br#"{"user_id":"c","up"#).expect("w");
        drop(f);
        let j = UploadJournal::open(&path).expect("reopen");
        assert_eq!(j.uploaded("a").as_deref(), Some("3"));
        assert_eq!(j.uploaded("B").as_deref(), Some("2"));
        assert_eq!(j.uploaded("c"), None);
        j.record(entry("c", "4")).expect("record after torn line");
        drop(j);
        let j = UploadJournal::open(&path).expect("reopen");
        assert_eq!(j.uploaded("c").as_deref(), Some("4"));
        assert_eq!(j.len(), 3);
        assert_eq!(j.entries().expect("entries").len(), 4);
        assert!(std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .all(|l| l.ends_with('}')));
    }
}
